r"""Weight laws: the closed-loop methods besides GABA, written once for numpy and torch.

A :class:`Law` is a small state machine over K numbers. Each training step it
reads one :class:`Measurement` (the per-task gradient norms on the shared
parameters, the task losses and, for the Jacobian aggregators, the Gramian of
the shared task gradients) and returns the weights the step's gradient is
formed with, ``Σ_i w_i ∇L_i``, together with its next state. A law that also
reads the losses of the same batch *after* the optimizer step (FAMO) says so
in :attr:`Law.post_step` and gets them through :meth:`Law.after_step`.

The arithmetic uses the array-API namespace of the state (as
:mod:`gaba_control.formulas` does for GABA), so the same source is the numpy
twin (:func:`law_weights`, the analyses) and the torch module
(:class:`LawLoss`, training); parity tests hold them together.

Measurement policy (every law alike)
------------------------------------
A measurement is *valid* when every norm is finite and ``≥ 0``, every loss is
finite (and ``> 0`` for a law with :attr:`Law.positive_losses`, which takes
logarithms or ratios of losses) and the Gramian, when read, is finite. On an
invalid step the state does not read the measurement (:meth:`Law.hold`) and
the previous step's weights are applied again, so a NaN, an ``inf`` or a zero
loss never enters the state; GABALoss's ``nonfinite="skip"`` then delivers no
gradient for that step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
from array_api_compat import device as _device
from torch import Tensor

from gaba_control._validation import check_num_tasks
from gaba_control.formulas import array_namespace
from gaba_control.nn import GABALoss

__all__ = [
    "Law",
    "LawLoss",
    "Measurement",
    "adam_update",
    "law_weights",
    "softmax",
    "softmax_vjp",
]


@dataclass(frozen=True)
class Measurement:
    """What a law may read at one step (arrays of one namespace, shape ``(K,)``)."""

    norms: Any
    losses: Any
    gramian: Any = None


def softmax(x, xp=None):
    """``exp(x) / Σ exp(x)`` over the last axis, shifted by the maximum (no overflow)."""
    xp = xp or array_namespace(x)
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def softmax_vjp(z, d, xp=None):
    """``Jᵀ d`` for the softmax Jacobian ``J = diag(z) − z zᵀ`` at output ``z``."""
    xp = xp or array_namespace(z)
    return z * (d - xp.sum(z * d, axis=-1, keepdims=True))


def adam_update(param, grad, m, v, t, *, lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                weight_decay: float = 0.0):
    r"""One Adam step (Kingma & Ba 2015, Algorithm 1; ``torch.optim.Adam``'s L2 ``weight_decay``).

    .. math::
        g ← g + γθ,\quad m ← β_1 m + (1−β_1) g,\quad v ← β_2 v + (1−β_2) g^2,\\
        θ ← θ − η\,\frac{m/(1−β_1^t)}{\sqrt{v/(1−β_2^t)} + ε}

    Returns ``(param, m, v, t)``; ``t`` is the step count after this step.
    """
    xp = array_namespace(param)
    b1, b2 = betas
    t = t + 1
    g = grad + weight_decay * param
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * g * g
    tc = column(t, param)
    m_hat = m / (1.0 - b1 ** tc)
    v_hat = v / (1.0 - b2 ** tc)
    return param - lr * m_hat / (xp.sqrt(v_hat) + eps), m, v, t


def full(like, shape, value):
    """``value`` over ``like``'s batch axes (all but the last) then ``shape``.

    In ``like``'s namespace, dtype and device: a law's state for one run
    (``like`` of shape ``(K,)``) or for many at once (``(R, K)``).
    """
    xp = array_namespace(like)
    return xp.full((*like.shape[:-1], *shape), value, dtype=like.dtype, device=_device(like))


def column(x, like):
    """A per-run scalar ``(...,)`` as ``(..., 1)`` to broadcast against ``like`` ``(..., K)``."""
    return x[..., None] if x.ndim < like.ndim else x  # numpy and torch alike, no wrapper


class Law:
    """Base class of a weight law (see the module docstring).

    Subclasses set :attr:`measures`, implement :meth:`initial_state` and
    :meth:`step` (and :meth:`after_step` with :attr:`post_step`), and list their
    hyperparameters in :attr:`hyperparameters` (validated in ``__init__`` by
    :meth:`check`, recorded in a ``state_dict`` and compared on load).
    """

    #: what the law reads: "norms", "losses" or "gramian"
    measures: ClassVar[str] = "norms"
    #: whether the law reads the same batch's losses after the optimizer step
    post_step: ClassVar[bool] = False
    #: whether a loss ``≤ 0`` makes the measurement invalid (logs, ratios of losses)
    positive_losses: ClassVar[bool] = False
    #: hyperparameter names, in the order of :meth:`config`
    hyperparameters: ClassVar[tuple[str, ...]] = ()
    #: whether :class:`LawLoss` may run it with ``refresh_every > 1`` (one law step per
    #: refresh, :meth:`hold` on the steps between: the law's own pole is per refresh)
    refreshes: ClassVar[bool] = False

    def __init__(self, num_tasks: int, **hyper):
        self.num_tasks = check_num_tasks(num_tasks)
        unknown = sorted(set(hyper) - set(self.hyperparameters))
        if unknown:
            raise TypeError(f"{type(self).__name__} takes no argument(s) {', '.join(unknown)}")
        self.check(**hyper)

    def check(self, **hyper) -> None:
        """Validate and store the hyperparameters (``ValueError``/``TypeError`` naming them)."""

    def config(self) -> tuple[float, ...]:
        """The hyperparameters as floats (saved with the state, compared on load)."""
        return tuple(float(getattr(self, name)) for name in self.hyperparameters)

    def initial_state(self, like) -> dict:
        """The state before the first step, arrays in ``like``'s namespace/dtype/device."""
        raise NotImplementedError

    def step(self, state: dict, m: Measurement) -> tuple[Any, dict]:
        """``(weights applied this step, next state)`` from a valid measurement."""
        raise NotImplementedError

    def hold(self, state: dict) -> dict:
        """The next state after an invalid step (default: unchanged)."""
        return state

    def after_step(self, state: dict, post_losses) -> dict:
        """The state after reading the same batch's losses past the optimizer step."""
        return state

    def check_state(self, state: Mapping[str, np.ndarray]) -> None:
        """``ValueError`` for a state this law could not have produced (default: finite)."""
        for name, value in state.items():
            if not np.all(np.isfinite(value)):
                raise ValueError(f"state['law_{name}'] must be finite, got {value.tolist()}")

    def valid_mask(self, m: Measurement):
        """The measurement policy of the module docstring, per run (shape ``(...,)``)."""
        # 0 ≤ x < inf is "finite and non-negative" (NaN fails both) in one reduction; the
        # reductions are the arrays' own methods (positional axis: numpy and torch alike),
        # the namespace wrappers cost more than the arithmetic on K numbers every step
        inf = float("inf")
        ok = ((m.norms >= 0) & (m.norms < inf)).all(-1)
        if self.positive_losses:
            ok = ok & ((m.losses > 0) & (m.losses < inf)).all(-1)
        else:
            ok = ok & ((m.losses > -inf) & (m.losses < inf)).all(-1)
        if m.gramian is not None:
            ok = ok & ((m.gramian > -inf) & (m.gramian < inf)).all(-1).all(-1)
        return ok

    def valid(self, m: Measurement) -> bool:
        """Whether every run's measurement is valid (one host read)."""
        xp = array_namespace(m.losses)
        return bool(xp.all(self.valid_mask(m)))


def law_weights(law: Law, norms, losses, *, post_losses=None, gramians=None) -> np.ndarray:
    """The numpy twin: the weights ``law`` applies to a recorded run, shape ``(T, ..., K)``.

    Parameters
    ----------
    norms, losses : array_like (T, ..., K)
        The measurement of each step (float64); axes between the first and
        the last are independent runs, simulated at once.
    post_losses : array_like (T, ..., K), optional
        The same batch's losses after each optimizer step (laws with
        ``post_step``; default: the next step's ``losses``, the last step's repeated).
    gramians : array_like (T, ..., K, K), optional
        For a law that measures the Gramian.

    Invalid measurements follow the policy of the module docstring, run by run.

    Examples
    --------
    >>> from gaba_control.weighting import DWALaw
    >>> law = DWALaw(2, steps_per_epoch=1)
    >>> law_weights(law, [[1, 1]] * 4, [[4, 4], [2, 4], [1, 4], [1, 4]]).round(3).tolist()
    [[1.0, 1.0], [1.0, 1.0], [0.876, 1.124], [0.876, 1.124]]
    """
    norms = np.asarray(norms, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if norms.ndim < 2 or norms.shape != losses.shape or norms.shape[-1] != law.num_tasks:
        raise ValueError(f"norms and losses must both have shape (T, ..., {law.num_tasks}), got "
                         f"{norms.shape} and {losses.shape}")
    if law.measures == "gramian" and gramians is None:
        raise ValueError(f"{type(law).__name__} measures the Gramian: pass gramians=")
    if post_losses is None:
        post_losses = np.concatenate([losses[1:], losses[-1:]]) if len(losses) else losses
    post_losses = np.asarray(post_losses, dtype=np.float64)
    sim = LawSimulator(law, norms.shape[1:])
    out = np.empty_like(norms)
    for t in range(norms.shape[0]):
        out[t] = sim.step(norms[t], losses[t], None if gramians is None else gramians[t])
        if law.post_step:
            sim.after_step(post_losses[t])
    return out


class LawSimulator:
    """The numpy twin one step at a time, for loops closed through a simulated plant.

    ``shape`` is ``(..., K)``: the runs simulated at once. :meth:`step` takes
    one measurement per run and returns the weights applied; a law with
    ``post_step`` then takes the same batch's post-step losses in
    :meth:`after_step`. Invalid readings follow the module's policy run by run.
    """

    def __init__(self, law: Law, shape):
        self.law = law
        like = np.zeros(tuple(shape))
        if like.ndim < 1 or like.shape[-1] != law.num_tasks:
            raise ValueError(f"shape must end in K={law.num_tasks}, got {tuple(shape)}")
        self.state = law.initial_state(like)
        self.applied, _ = law.step(law.initial_state(like), _neutral(like))
        self._stepped: dict | None = None
        self._ok = None

    def step(self, norms, losses, gramian=None) -> np.ndarray:
        law = self.law
        m = Measurement(np.asarray(norms, dtype=np.float64), np.asarray(losses, dtype=np.float64),
                        None if gramian is None else np.asarray(gramian, dtype=np.float64))
        ok = law.valid_mask(m)
        with np.errstate(all="ignore"):  # invalid runs compute garbage that `where` drops
            weights, stepped = law.step(self.state, m)
        ok = ok & _finite_rows(weights, stepped)  # a step that would poison the state is held
        if ok.all():  # the common case: every run steps (same result as the masked update)
            self.applied, self.state = np.array(weights, dtype=np.float64), stepped
        else:
            self.applied = np.where(column(ok, weights), weights, self.applied)
            self.state = _where_state(ok, stepped, law.hold(self.state))
        self._ok = ok
        return self.applied.copy()

    def after_step(self, post_losses) -> None:
        if not self.law.post_step or self._ok is None:
            return
        post = np.asarray(post_losses, dtype=np.float64)
        ok = self._ok & np.all(np.isfinite(post), axis=-1)
        if self.law.positive_losses:
            ok &= np.all(post > 0, axis=-1)
        with np.errstate(all="ignore"):
            after = self.law.after_step(self.state, post)
        ok = ok & _finite_rows(None, after)
        self.state = _where_state(ok, after, self.state)
        self._ok = None


def _finite_rows(weights, state: dict):
    """Per run: whether the weights and every state entry are finite."""
    xp = array_namespace(next(iter(state.values())))
    batch = _batch_ndim(state)
    ok = None
    for value in ([] if weights is None else [weights]) + list(state.values()):
        row = xp.isfinite(value)
        while row.ndim > batch:
            row = row.all(-1)  # the method: no namespace wrapper (numpy and torch alike)
        ok = row if ok is None else ok & row
    return ok


def _batch_ndim(state: dict) -> int:
    """The number of run axes of a state (every law keeps a per-run scalar, e.g. a count)."""
    return min(v.ndim for v in state.values())


def _where_state(mask, new: dict, old: dict) -> dict:
    return {k: np.where(column(mask, old[k]) if old[k].ndim > mask.ndim else mask,
                        new[k], old[k]) for k in old}


def _neutral(like: np.ndarray) -> Measurement:
    one = np.ones_like(like)
    k = like.shape[-1]
    return Measurement(one, one, np.broadcast_to(np.eye(k), (*like.shape[:-1], k, k)))


class LawLoss(GABALoss):
    """A :class:`GABALoss` whose applied weights come from a :class:`Law`; GABA runs alongside.

    The loop measures the per-task gradients as GABALoss does (its ``sensor``,
    exact by default, every step), advances GABA's state (its ``λ*`` stays in the
    telemetry) and hands the measurement to the law, whose weights form the
    loss and the delivered gradient ``Σ_i w_i ∇L_i`` (recorded as
    ``applied_weights``). The law's state lives in buffers ``law_<name>``
    (float64), so ``state_dict``/``load_state_dict`` carry it, together with
    its hyperparameters, which a load compares.

    Parameters
    ----------
    law : Law
    **gaba_kwargs
        Passed to :class:`GABALoss` (``beta``, ``warmup``, ``lambda_min``,
        ``nonfinite``, ``refresh_every``, ``sensor``); no accumulation, and the
        exact sensor for a law that reads the Gramian.
        ``refresh_every = N > 1`` needs a law with :attr:`Law.refreshes` (the
        GABA-family loop laws): the law steps on GABA's refresh steps only and
        holds (:meth:`Law.hold`) with its last weights in between.
    """

    def __init__(self, law: Law, **gaba_kwargs):
        if not isinstance(law, Law):
            raise TypeError(f"law must be a Law, got {type(law).__name__}")
        if not law.refreshes and gaba_kwargs.get("refresh_every", 1) != 1:
            raise ValueError(f"{type(law).__name__} steps every step: refresh_every must be 1, "
                             f"got {gaba_kwargs['refresh_every']!r}")
        # the Gramian is formed from the exact sensor's per-task gradients
        needs = {"accumulation_steps": 1, **({"sensor": "exact"} if law.measures == "gramian"
                                             else {})}
        for name, needed in needs.items():
            if gaba_kwargs.get(name, needed) != needed:
                raise ValueError(f"{type(law).__name__}'s module needs {name}={needed!r}, got "
                                 f"{gaba_kwargs[name]!r}")
        super().__init__(law.num_tasks, **gaba_kwargs)
        self.law = law
        self._gramian: Tensor | None = None
        self._pending_post = False
        like = torch.zeros(law.num_tasks, dtype=torch.float64)
        self._law_names = tuple(law.initial_state(like))
        for name, value in law.initial_state(like).items():
            self.register_buffer("law_" + name, value.clone())
        self.register_buffer("law_applied", torch.full((law.num_tasks,), float("nan"),
                                                       dtype=torch.float64))
        self.register_state_dict_post_hook(_save_law_config)
        self.register_load_state_dict_pre_hook(_check_law_state)

    def extra_repr(self) -> str:
        return f"law={type(self.law).__name__}{self.law.config()}, " + super().extra_repr()

    # -- state as a dict of the buffers
    def law_state(self) -> dict[str, Tensor]:
        """The law's current state (the buffers themselves, not copies)."""
        return {name: getattr(self, "law_" + name) for name in self._law_names}

    def _store(self, state: Mapping[str, Tensor]) -> None:
        for name in self._law_names:
            getattr(self, "law_" + name).copy_(state[name])

    # -- hooks into GABALoss
    def _observe_gradients(self, task_grads, shared_index) -> None:
        if self.law.measures == "gramian":
            self._gramian = shared_gramian(task_grads, shared_index, device=self.ema.device)

    @torch.no_grad()
    def _step_with(self, norms, losses, applied) -> Tensor:
        if applied is not None:
            raise TypeError("a law's module takes its weights from the law, not weights=")
        self._advance(norms, losses)
        values = self._loss_values(losses).to(device=self.ema.device, dtype=torch.float64)
        gramian, self._gramian = self._gramian, None
        state = self.law_state()
        if not bool(self.last_step.measured):  # between refreshes: nothing read, the law holds
            stepped, m = None, None
        else:
            m = Measurement(norms.to(torch.float64), values,
                            None if gramian is None else gramian.to(torch.float64))
            stepped = self.law.step(state, m) if self.law.valid(m) else None
        if stepped is not None and bool(_finite_rows(*stepped)):
            weights, state = stepped
            self.law_applied.copy_(weights)  # first: weights may alias a state buffer
            self._store(state)
            self._pending_post = self.law.post_step
        else:
            self._store(self.law.hold(state))
            if not bool(torch.all(torch.isfinite(self.law_applied))):
                first, _ = self.law.step(self.law.initial_state(self.law_applied),
                                         _neutral_torch(self.law_applied))
                self.law_applied.copy_(first)
            self._pending_post = False
        used = self.law_applied.to(self.ema.dtype).clone()
        self.last_step = _replace_applied(self.last_step, used)
        return used

    def update_from_measurement(self, norms, losses, gramian=None) -> Tensor:
        """One step from given measurements (no gradients): the applied weights.

        The replay/parity entry point, as :meth:`GABALoss.update_from_norms`.
        """
        norms = torch.as_tensor(norms, dtype=torch.float64, device=self.ema.device)
        losses = torch.as_tensor(losses, dtype=torch.float64, device=self.ema.device)
        if gramian is not None:
            self._gramian = torch.as_tensor(gramian, dtype=torch.float64, device=self.ema.device)
        elif self.law.measures == "gramian":
            raise ValueError(f"{type(self.law).__name__} measures the Gramian: pass gramian=")
        return self._step_with(norms, list(losses), None)

    @property
    def needs_post_step(self) -> bool:
        """Whether :meth:`post_step_losses` should be called after this optimizer step."""
        return self._pending_post

    @torch.no_grad()
    def post_step_losses(self, losses) -> None:
        """Hand the law the same batch's losses after the optimizer step (FAMO)."""
        if not self._pending_post:
            return
        self._pending_post = False
        values = torch.stack([torch.as_tensor(v).detach().to(device=self.ema.device,
                                                             dtype=torch.float64)
                              for v in losses]).reshape(-1)
        if values.shape != (self.num_tasks,):
            raise ValueError(f"losses must be {self.num_tasks} values, got {tuple(values.shape)}")
        if not bool(torch.all(torch.isfinite(values))) or (
                self.law.positive_losses and not bool(torch.all(values > 0))):
            return  # an invalid reading never enters the state
        after = self.law.after_step(self.law_state(), values)
        if bool(_finite_rows(None, after)):
            self._store(after)

    def reset(self) -> None:
        super().reset()
        if hasattr(self, "law"):
            self._store(self.law.initial_state(self.law_applied))
            self.law_applied.fill_(float("nan"))
            self._pending_post = False


def _neutral_torch(like: Tensor) -> Measurement:
    one = torch.ones_like(like)
    return Measurement(one, one, torch.eye(like.shape[0], dtype=like.dtype, device=like.device))


def _replace_applied(step, applied: Tensor):
    return replace(step, applied_weights=applied.detach().clone())


def shared_gramian(task_grads, shared_index, *, device) -> Tensor:
    """``G_ij = Σ_p ⟨∂L_i/∂p, ∂L_j/∂p⟩`` over the shared parameters, float64, ``(K, K)``."""
    k = len(task_grads)
    gram = torch.zeros((k, k), dtype=torch.float64, device=device)
    for j in shared_index:
        rows = [g[j] for g in task_grads]
        if all(r is None for r in rows):
            continue
        ref = next(r for r in rows if r is not None)
        flat = torch.stack([torch.zeros(ref.numel(), dtype=torch.float64, device=ref.device)
                            if r is None else r.reshape(-1).to(torch.float64) for r in rows])
        gram += (flat @ flat.T).to(device)
    return gram


def _save_law_config(module: LawLoss, state_dict, prefix, local_metadata) -> None:
    state_dict[prefix + "law_config"] = torch.tensor(module.law.config(), dtype=torch.float64)


def _check_law_state(module: LawLoss, state_dict, prefix, local_metadata, strict, missing_keys,
                     unexpected_keys, error_msgs) -> None:
    law = module.law
    saved = state_dict.pop(prefix + "law_config", None)
    if saved is not None:
        saved = torch.as_tensor(saved, dtype=torch.float64).reshape(-1).tolist()
        ours = law.config()
        if len(saved) != len(ours):
            raise ValueError(f"state was saved by a law with {len(saved)} hyperparameters, "
                             f"{type(law).__name__} has {len(ours)}")
        for name, a, b in zip(law.hyperparameters, saved, ours, strict=True):
            if not math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0):
                raise ValueError(f"state was saved with {name}={a:g}, this "
                                 f"{type(law).__name__} has {name}={b:g}")
    like = torch.zeros(law.num_tasks, dtype=torch.float64)
    expected = law.initial_state(like)
    loaded = {}
    for name, ref in expected.items():
        value = state_dict.get(prefix + "law_" + name)
        if value is None:
            continue
        value = torch.as_tensor(value).detach().cpu()
        if value.shape != ref.shape:
            raise ValueError(f"state['law_{name}'] must have shape {tuple(ref.shape)}, got "
                             f"{tuple(value.shape)}")
        loaded[name] = value.to(torch.float64).numpy()
    law.check_state(loaded)
    applied = state_dict.get(prefix + "law_applied")
    if applied is not None:
        applied = torch.as_tensor(applied).detach().cpu().to(torch.float64)
        if applied.shape != (law.num_tasks,) or not (
                bool(torch.all(torch.isfinite(applied))) or bool(torch.all(torch.isnan(applied)))):
            raise ValueError(f"state['law_applied'] must be {law.num_tasks} finite weights "
                             f"(or all NaN before the first step), got {applied.tolist()}")


class LawMethod:
    """Mixin of a registered method whose weights come from a :class:`Law`.

    Subclasses (also :class:`~gaba_control.weighting.WeightingMethod`) implement
    :meth:`law`; the torch module is a :class:`LawLoss` around it.
    """

    closed_loop = True

    def law(self, steps_per_epoch: int | None = None) -> Law:
        """The numpy/torch law with this method's options."""
        raise NotImplementedError

    def check(self) -> None:
        self.law(steps_per_epoch=1)  # validates the options, naming them

    def module(self, num_steps: int, *, steps_per_epoch: int | None = None) -> LawLoss:
        kwargs = {k: self.controller[k] for k in ("beta", "warmup", "lambda_min")}
        return LawLoss(self.law(steps_per_epoch=steps_per_epoch), **kwargs)

    def summary(self, source=None) -> dict:
        law = self.law(steps_per_epoch=1)
        return {"method": self.name, "law": type(law).__name__,
                **{name: getattr(law, name) for name in law.hyperparameters
                   if name != "steps_per_epoch"}}


def check_flag(value, name: str) -> bool:
    """``value`` if it is a bool, else ``TypeError`` naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_real(value, name: str, *, low: float, high: float = math.inf,
               low_open: bool = False, flag: str | None = None) -> float:
    """``value`` as a float in ``[low, high)`` (``(low, high)`` with ``low_open``), else raise."""
    label = flag or name
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{label} must be a real number, got {type(value).__name__}")
    value = float(value)
    ok = math.isfinite(value) and (value > low if low_open else value >= low) and value < high
    if not ok:
        bracket = "(" if low_open else "["
        upper = "inf" if high == math.inf else f"{high:g}"
        raise ValueError(f"{label} must be finite and lie in {bracket}{low:g}, {upper}), "
                         f"got {value!r}")
    return value


def check_adam_state(state: Mapping[str, np.ndarray]) -> None:
    """``ValueError`` unless a loaded Adam state (``adam_v ≥ 0``, ``adam_t`` a count) is one."""
    if "adam_v" in state and np.any(state["adam_v"] < 0):
        raise ValueError(f"state['law_adam_v'] must be >= 0, got {state['adam_v'].tolist()}")
    if "adam_t" in state and (state["adam_t"] < 0 or state["adam_t"] != np.floor(
            state["adam_t"])):
        raise ValueError(f"state['law_adam_t'] must be a count >= 0, got {state['adam_t']}")


def optimizer_step(param, grad, state: Mapping, *, lr: float, sgd: bool,
                   weight_decay: float = 0.0):
    """The law's optimizer: Adam (:func:`adam_update`), or with ``sgd`` a plain step.

    The plain step ``θ ← θ − η(g + γθ)`` is the form the papers' equations
    write (and the one the small-signal models of
    :mod:`gaba_control.lti.methods` are exact for); Adam is what is trained.
    Returns ``(param, adam_m, adam_v, adam_t)`` (the moments untouched by ``sgd``
    but the count advanced, so an initial-step rule such as GradNorm's ``L(0)``
    sees the same clock).
    """
    if sgd:
        return (param - lr * (grad + weight_decay * param), state["adam_m"], state["adam_v"],
                state["adam_t"] + 1)
    return adam_update(param, grad, state["adam_m"], state["adam_v"], state["adam_t"], lr=lr,
                       weight_decay=weight_decay)
