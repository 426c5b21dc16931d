"""The loop's sensor in torch: checked inputs, per-task gradients, their norms.

Everything here is stateless; :class:`~gaba_control.nn.GABALoss` calls it once
per forward. The argument checks run before any gradient is taken, so a bad
call raises without touching the module's state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

__all__ = [
    "accumulation_dtype",
    "as_loss_list",
    "as_param_lists",
    "as_representation",
    "check_reaches_shared",
    "exact_norms",
    "nonfinite_elsewhere",
    "robust_norm",
    "shared_norms",
    "task_gradients",
    "untracked_leaves",
]

TaskGrads = Sequence[Sequence["Tensor | None"]]


def as_loss_list(losses, num_tasks: int, *, require_grad: bool = True) -> list[Tensor]:
    """Return ``losses`` as a list of ``num_tasks`` scalar tensors (that require grad).

    Accepts any iterable of 0-d tensors, or a 1-D tensor of length ``K``
    (unbound into its entries, which keeps the graph).
    """
    if isinstance(losses, Tensor):
        if losses.dim() != 1:
            raise ValueError(
                f"losses given as one tensor must be 1-D with num_tasks={num_tasks} entries, "
                f"got shape {tuple(losses.shape)}"
            )
        items = list(losses.unbind(0))
    elif isinstance(losses, (str, bytes)) or not isinstance(losses, Iterable):
        raise TypeError(
            f"losses must be a sequence of {num_tasks} scalar tensors or a 1-D tensor, "
            f"got {type(losses).__name__}"
        )
    else:
        items = list(losses)
    if len(items) != num_tasks:
        raise ValueError(f"expected num_tasks={num_tasks} losses, got {len(items)}")
    for i, loss in enumerate(items):
        _check_loss(loss, i, require_grad)
    return items


def _check_loss(loss, i: int, require_grad: bool = True) -> None:
    if not isinstance(loss, Tensor):
        raise TypeError(f"losses[{i}] must be a torch.Tensor, got {type(loss).__name__}")
    if loss.dim() != 0:
        raise ValueError(
            f"losses[{i}] must be a scalar (0-d) tensor, got shape {tuple(loss.shape)}; "
            "reduce it first, e.g. with .mean()"
        )
    if not loss.is_floating_point():
        raise TypeError(f"losses[{i}] must have a floating dtype, got {loss.dtype}")
    if require_grad and not loss.requires_grad:
        raise ValueError(
            f"losses[{i}] does not require grad (detached, or computed under torch.no_grad()?); "
            "for validation put the module in eval() mode"
        )


def as_param_lists(params, shared_params) -> tuple[list[Tensor], list[int]]:
    """Materialise ``params`` and ``shared_params``; return params and the shared positions.

    Frozen tensors (``requires_grad=False``) are left out of both, as a plain
    ``backward()`` leaves them alone. Raises if either holds no trainable
    tensor, holds a non-tensor or a duplicate, or if a shared parameter is not
    one of ``params`` (matched by identity).
    """
    params = _materialise(params, "params")
    shared = _materialise(shared_params, "shared_params")
    position = {id(p): i for i, p in enumerate(params)}
    shared_index = [position.get(id(p)) for p in shared]
    if len(position) < len(params) or None in shared_index or len(set(shared_index)) < len(shared):
        _raise_for_param_lists(params, shared, position)
    return params, shared_index


def _raise_for_param_lists(params, shared, position) -> None:
    """The error :func:`as_param_lists` found (its usual path only counts)."""
    first: dict[int, int] = {}
    for i, p in enumerate(params):
        if id(p) in first:
            raise ValueError(f"params[{i}] is a duplicate of params[{first[id(p)]}]")
        first[id(p)] = i
    seen: set[int] = set()
    for j, p in enumerate(shared):
        i = position.get(id(p))
        if i is None:
            raise ValueError(
                f"shared_params[{j}] (shape {tuple(p.shape)}) is not in params; "
                "shared_params must be a subset of params"
            )
        if i in seen:
            raise ValueError(f"shared_params[{j}] is a duplicate (params[{i}] listed twice)")
        seen.add(i)


def _materialise(items, name: str) -> list[Tensor]:
    if isinstance(items, Tensor):  # one parameter: iterating it would yield its rows
        items = [items]
    elif isinstance(items, torch.nn.Module):
        raise TypeError(f"{name} must be an iterable of tensors; pass module.parameters()")
    try:
        items = list(items)
    except TypeError:
        raise TypeError(
            f"{name} must be an iterable of tensors, got {type(items).__name__}"
        ) from None
    if not items:
        raise ValueError(f"{name} is empty; it must hold at least one parameter")
    if not all(isinstance(p, Tensor) for p in items):
        i, p = next((i, p) for i, p in enumerate(items) if not isinstance(p, Tensor))
        raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {type(p).__name__}")
    trainable = [p for p in items if p.requires_grad]
    if not trainable:
        raise ValueError(
            f"{name} holds no trainable parameter: all {len(items)} have requires_grad=False "
            "(frozen); at least one must be trained"
        )
    return trainable


def as_representation(representation) -> Tensor:
    """Check the shared representation ``z`` of the representation sensor."""
    if representation is None:
        raise ValueError("sensor='representation' needs representation= (the backbone output z)")
    if not isinstance(representation, Tensor):
        raise TypeError(
            f"representation must be a torch.Tensor, got {type(representation).__name__}"
        )
    if not representation.is_floating_point():
        raise TypeError(f"representation must have a floating dtype, got {representation.dtype}")
    if not representation.requires_grad:
        raise ValueError("representation does not require grad: pass the backbone output z itself")
    return representation


def task_gradients(losses: Sequence[Tensor], inputs: Sequence[Tensor], *, retain_last: bool):
    """``∂L_i/∂p`` for every task ``i`` and input ``p`` (``None`` where ``L_i`` misses ``p``).

    The graph is kept for all but the last task, unless ``retain_last`` (the
    naive sensor needs it for its own backward afterwards).
    """
    last = len(losses) - 1
    return [
        torch.autograd.grad(loss, inputs, retain_graph=retain_last or i < last, allow_unused=True)
        for i, loss in enumerate(losses)
    ]


def check_reaches_shared(task_grads: TaskGrads, shared_index: Sequence[int], *,
                         what: str = "any of shared_params") -> None:
    """Raise ``ValueError`` if some task's loss reaches none of the shared inputs."""
    for i, grads in enumerate(task_grads):
        if all(grads[j] is None for j in shared_index):
            if what == "representation":
                raise ValueError(
                    f"losses[{i}] was not computed from representation: pass the tensor z the "
                    "task heads were applied to (the backbone output of this forward pass)"
                )
            raise ValueError(
                f"losses[{i}] does not depend on {what}: its gradient norm on "
                "the shared parameters is undefined (check the model wiring or shared_params)"
            )


def untracked_leaves(losses: Sequence[Tensor], params: Sequence[Tensor]) -> list[Tensor]:
    """Trainable leaf tensors the losses depend on that ``params`` leaves out.

    Walks the autograd graph once (``AccumulateGrad`` nodes); such tensors
    would silently receive no gradient from the exact sensor.
    """
    known = {id(p) for p in params}
    seen, stack, found = set(), [loss.grad_fn for loss in losses if loss.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        leaf = getattr(node, "variable", None)
        if leaf is not None and leaf.requires_grad and id(leaf) not in known:
            found.append(leaf)
        stack.extend(fn for fn, _ in node.next_functions)
    return found


def nonfinite_elsewhere(task_grads: TaskGrads, shared_index: Sequence[int], *, device) -> Tensor:
    """Bool ``(K,)``: task ``i`` has a non-finite gradient on a parameter outside ``shared_index``.

    No host synchronisation; an all-False tensor when every parameter is shared.
    """
    shared = set(shared_index)
    if device.type == "cpu":
        return _nonfinite_elsewhere_cpu(task_grads, shared)
    rows = []
    for grads in task_grads:
        flags = [
            _to_device(~torch.all(torch.isfinite(g)), device)
            for j, g in enumerate(grads)
            if j not in shared and g is not None
        ]
        rows.append(
            torch.stack(flags).any() if flags else torch.zeros((), dtype=torch.bool, device=device)
        )
    return torch.stack(rows)


def _nonfinite_elsewhere_cpu(task_grads: TaskGrads, shared: set) -> Tensor:
    """:func:`nonfinite_elsewhere` on the host: one fused norm call per task, read once.

    A norm is finite when every entry is, and NaN or infinite when one is not;
    it can also overflow for finite entries (float32 squares above ~3e38), so a
    task whose norms do not sum to a finite number is checked entry by entry:
    the answer is exact, only the usual (finite) step is cheaper.
    """
    rows = []
    for grads in task_grads:
        others = [g for j, g in enumerate(grads) if j not in shared and g is not None]
        bad = False
        if others:
            norms = torch._foreach_norm(others, 2, dtype=_widest(others))
            if not math.isfinite(float(torch.stack(norms).sum())):
                bad = any(not bool(torch.all(torch.isfinite(g))) for g in others)
        rows.append(bad)
    return torch.tensor(rows, dtype=torch.bool)


def _widest(tensors: Sequence[Tensor]) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def accumulation_dtype(tensors: Iterable[Tensor]) -> torch.dtype:
    """float64 if any tensor is float64, else float32 (never accumulate in half precision)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


#: a float32 sum of squares is exact to rounding when the norm lies inside this range
#: (squares of entries below ~1e-19 underflow, a norm above ~1.8e19 overflows)
_SAFE_FLOAT32_NORM = (1e-17, 1e17)


def robust_norm(grad: Tensor, acc: torch.dtype) -> Tensor:
    """``‖grad‖₂`` without overflow or underflow over the whole range of ``grad``'s dtype.

    A float32 accumulation squares the entries, so it overflows for norms
    above ~1.8e19 and loses entries below ~1e-19, although the shares the loop
    reads are scale-invariant. On the CPU the float32 result is checked on the
    host and recomputed in float64 when it leaves :data:`_SAFE_FLOAT32_NORM`
    (rare, so the usual step keeps float32 speed); on an accelerator the norm
    is accumulated in float64 directly (a memory-bound reduction, no host
    synchronisation). float64 covers every float32/float16/bfloat16 value
    squared.
    """
    if acc == torch.float64 or grad.device.type != "cpu":
        return torch.linalg.vector_norm(grad, dtype=torch.float64)
    norm = torch.linalg.vector_norm(grad, dtype=acc)
    low, high = _SAFE_FLOAT32_NORM
    value = float(norm)
    if low < value < high or (value == 0.0 and not bool(torch.any(grad != 0))):
        return norm.to(torch.float64)
    return torch.linalg.vector_norm(grad, dtype=torch.float64)


def shared_norms(
    task_grads: TaskGrads, shared_index: Sequence[int], *, device, dtype: torch.dtype
) -> Tensor:
    r"""Per-task norms ``g_i = sqrt(Σ_p ||∂L_i/∂p||²)`` over the shared parameters.

    Each parameter's norm is taken by :func:`robust_norm` (no overflow or
    underflow over the gradient dtype's range), then the norm of those norms
    in float64 (which equals the square root of the summed squares). The
    result, shape ``(K,)``, is cast to ``dtype`` on ``device``. Unreached
    parameters (``None``) contribute zero. Nothing here synchronises a GPU.
    """
    present = [g[j] for g in task_grads for j in shared_index if g[j] is not None]
    acc = accumulation_dtype(present)
    if (acc == torch.float32 and device.type == "cpu" and present
            and all(g.device.type == "cpu" for g in present)):
        return _shared_norms_cpu(task_grads, shared_index, present, dtype)
    rows = []
    for grads in task_grads:
        parts = [
            _to_device(robust_norm(grads[j], acc), device)
            for j in shared_index
            if grads[j] is not None
        ]
        rows.append(torch.linalg.vector_norm(torch.stack(parts)))
    return torch.stack(rows).to(dtype)


def _shared_norms_cpu(task_grads: TaskGrads, shared_index: Sequence[int], present, dtype):
    """:func:`shared_norms` on the CPU in float32: the same values as :func:`robust_norm`
    parameter by parameter, from one fused norm call and one read of the results (not one
    host read per parameter); the norms outside :data:`_SAFE_FLOAT32_NORM` (or zero) are
    recomputed in float64 as there."""
    values = torch.stack(torch._foreach_norm(present, 2, dtype=torch.float32)).tolist()
    return _rows_of_norms(task_grads, shared_index, present, values, dtype)


def _rows_of_norms(task_grads: TaskGrads, shared_index: Sequence[int], present,
                   values: list[float], dtype) -> Tensor:
    """Per-task norms from the float32 norms ``values`` (read to the host) of the ``present``
    shared gradients, task-major; those outside :data:`_SAFE_FLOAT32_NORM` (or zero) are
    recomputed in float64 as :func:`robust_norm` does."""
    norms = torch.tensor(values, dtype=torch.float64)  # float32 → float64 is exact
    low, high = _SAFE_FLOAT32_NORM
    for k, value in enumerate(values):
        if not low < value < high:
            norms[k] = torch.linalg.vector_norm(present[k], dtype=torch.float64)
    counts = [sum(grads[j] is not None for j in shared_index) for grads in task_grads]
    if len(set(counts)) == 1:
        # every task reaches as many shared parameters (the usual case): one reduction over
        # the rows, the same bits as one per row (tested)
        rows = torch.linalg.vector_norm(norms.view(len(counts), counts[0]), dim=1)
    else:
        rows = torch.stack([torch.linalg.vector_norm(row) for row in norms.split(counts)])
    return rows if rows.dtype == dtype else rows.to(dtype)


def exact_norms(task_grads: TaskGrads, shared_index: Sequence[int], *, device,
                dtype: torch.dtype) -> Tensor:
    """The exact sensor's reading: :func:`shared_norms`, NaN for a task whose gradient is
    non-finite on some other parameter (:func:`nonfinite_elsewhere`).

    On the CPU in float32 both come from one fused norm call over every
    gradient and one read of its results; the values are those of the two
    functions called one after the other.
    """
    shared = set(shared_index)
    present = [g[j] for g in task_grads for j in shared_index if g[j] is not None]
    others = [[g for j, g in enumerate(grads) if j not in shared and g is not None]
              for grads in task_grads]
    every = present + [g for row in others for g in row]
    # the fused path: float32 accumulation (no float64 gradient), everything on the host
    if not (present and device.type == "cpu"
            and all(g.is_cpu and g.dtype != torch.float64 for g in every)):
        norms = shared_norms(task_grads, shared_index, device=device, dtype=dtype)
        bad = nonfinite_elsewhere(task_grads, shared_index, device=norms.device)
        return torch.where(bad, float("nan"), norms)
    values = torch.stack(torch._foreach_norm(every, 2, dtype=torch.float32)).tolist()
    norms = _rows_of_norms(task_grads, shared_index, present, values[:len(present)], dtype)
    start = len(present)
    for i, row in enumerate(others):
        mine = values[start:start + len(row)]
        start += len(row)
        # a norm is finite iff every entry is, unless the float32 squares overflowed
        if not all(map(math.isfinite, mine)) and any(
                not bool(torch.all(torch.isfinite(g))) for g in row):
            norms[i] = float("nan")
    return norms


def _to_device(tensor: Tensor, device) -> Tensor:
    # Parameters may live on other devices (model parallel); skip the call in the usual case.
    return tensor if tensor.device == device else tensor.to(device)
