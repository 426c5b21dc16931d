"""The CPU fast paths of the exact sensor give exactly what the per-parameter paths give."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gaba_control.nn import _sensor as S

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
CPU = torch.device("cpu")


def _reference_norms(task_grads, shared_index):
    """Per parameter through robust_norm, then the norm of norms (the device path)."""
    present = [g[j] for g in task_grads for j in shared_index if g[j] is not None]
    acc = S.accumulation_dtype(present)
    return torch.stack([
        torch.linalg.vector_norm(torch.stack([S.robust_norm(g[j], acc) for j in shared_index
                                              if g[j] is not None]))
        for g in task_grads])


def _reference_nonfinite(task_grads, shared_index):
    shared = set(shared_index)
    return torch.tensor([any(not bool(torch.all(torch.isfinite(g))) for j, g in enumerate(row)
                             if j not in shared and g is not None) for row in task_grads])


@given(exponent=st.integers(-40, 40), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16),
       special=st.sampled_from([None, math.nan, math.inf, 0.0]))
def test_fast_paths_equal_the_per_parameter_paths(exponent, dtype, seed, special):
    gen = torch.Generator().manual_seed(seed)
    scale = 10.0 ** exponent

    def tensor(*shape):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype)

    grads = [[tensor(30), None, tensor(4, 3), tensor(5)],
             [tensor(30), tensor(6), torch.zeros(12, dtype=dtype), None]]
    if special is not None:
        grads[1][3] = torch.full((5,), special, dtype=dtype)  # a head (not shared) gradient
        grads[0][2] = grads[0][2].clone().fill_(special) if special == 0.0 else grads[0][2]
    shared = [0, 1, 2]
    fast = S.shared_norms(grads, shared, device=CPU, dtype=torch.float64)
    assert torch.equal(fast.isnan(), _reference_norms(grads, shared).isnan())
    finite = ~fast.isnan()
    assert torch.equal(fast[finite], _reference_norms(grads, shared)[finite])  # bit for bit
    assert torch.equal(S.nonfinite_elsewhere(grads, shared, device=CPU),
                       _reference_nonfinite(grads, shared))
    # the exact sensor's one fused call: the two readings above, NaN where a head is not finite
    fused = S.exact_norms(grads, shared, device=CPU, dtype=torch.float64)
    expected = torch.where(_reference_nonfinite(grads, shared), math.nan, fast)
    assert torch.equal(fused.isnan(), expected.isnan())
    assert torch.equal(fused[~fused.isnan()], expected[~expected.isnan()])


@given(k=st.integers(2, 6), n=st.integers(1, 12), exponent=st.integers(-4, 3),  # finite in fp16
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_tasks_reaching_as_many_shared_parameters_take_one_reduction_bit_for_bit(
        k, n, exponent, dtype, seed):
    # every task reaches every shared parameter (the usual model): the per-task norms come
    # from one reduction over a (K, n) view, which must give the per-row reductions' bits
    gen = torch.Generator().manual_seed(seed)
    scale = 10.0 ** exponent
    grads = [[(torch.randn(3 + j, generator=gen, dtype=torch.float64) * scale).to(dtype)
              for j in range(n + 1)] for _ in range(k)]
    shared = list(range(n))
    reference = _reference_norms(grads, shared)
    assert torch.equal(S.shared_norms(grads, shared, device=CPU, dtype=torch.float64), reference)
    assert torch.equal(S.exact_norms(grads, shared, device=CPU, dtype=torch.float64), reference)


def test_a_finite_head_gradient_whose_norm_overflows_is_not_flagged():
    huge = torch.full((4,), 3e38, dtype=torch.float32)  # finite; its float32 norm is inf
    grads = [[torch.ones(3), huge], [torch.ones(3), None]]
    assert torch.equal(S.nonfinite_elsewhere(grads, [0], device=CPU),
                       torch.tensor([False, False]))
    assert not S.exact_norms(grads, [0], device=CPU, dtype=torch.float64).isnan().any()
    grads[0][1] = huge.clone().index_fill_(0, torch.tensor([2]), math.nan)
    assert torch.equal(S.nonfinite_elsewhere(grads, [0], device=CPU),
                       torch.tensor([True, False]))
    assert torch.equal(S.exact_norms(grads, [0], device=CPU, dtype=torch.float64).isnan(),
                       torch.tensor([True, False]))


_NORM = st.one_of(st.floats(0.0, float(np.float32(3e38)), width=32),
                  st.sampled_from([math.nan, math.inf, 0.0]))


@given(k=st.integers(2, 7), dtype=st.sampled_from([torch.float32, torch.float64]),
       data=st.data(), step=st.integers(0, 300), beta=st.sampled_from([0.5, 0.9, 0.99, 0.999]),
       lambda_min=st.sampled_from([0.0, 0.01, 0.05, 0.1]))
def test_loop_update_on_numpy_views_is_bit_identical_to_torch(k, dtype, data, step, beta,
                                                               lambda_min):
    # GABALoss runs its K-number update on numpy views of CPU buffers (a fraction of
    # torch's per-operation cost): the same formulas must give the same bits
    from gaba_control.nn.gaba_loss import loop_update

    norms = torch.tensor(data.draw(st.lists(_NORM, min_size=k, max_size=k)), dtype=dtype)
    ema = torch.tensor(data.draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k)),
                       dtype=dtype)
    settings = {"num_tasks": k, "beta": beta, "warmup": 100, "lambda_min": lambda_min}
    with np.errstate(all="ignore"):  # as GABALoss runs it: torch never warns
        on_numpy = loop_update(ema.numpy(), norms.numpy(), step, **settings)
    on_torch = loop_update(ema, norms, torch.tensor(step), **settings)
    for a, b in zip(on_numpy, on_torch, strict=True):
        a = torch.from_numpy(np.asarray(a))
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.numpy().tobytes() == b.numpy().tobytes()


def test_gaba_loss_takes_the_host_path_only_where_it_is_exact():
    from gaba_control.nn.gaba_loss import _on_host

    assert _on_host(torch.zeros(7, dtype=torch.float64), torch.ones(7, dtype=torch.float64))
    assert not _on_host(torch.zeros(8, dtype=torch.float64), torch.ones(8, dtype=torch.float64))
    assert not _on_host(torch.zeros(2), torch.ones(2, dtype=torch.float64))  # mixed dtypes
    assert not _on_host(torch.zeros(2, dtype=torch.float16), torch.ones(2, dtype=torch.float16))


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_float64_path_is_kept_for_float64_gradients(dtype):
    grads = [[torch.randn(5, dtype=torch.float64), torch.randn(3).to(dtype)]]
    assert torch.equal(S.shared_norms(grads, [0, 1], device=CPU, dtype=torch.float64),
                       _reference_norms(grads, [0, 1]))
