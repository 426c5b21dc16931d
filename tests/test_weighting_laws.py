"""The field's weight laws: numpy/torch parity, resume, hostile inputs, validation, fixed points."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gaba_control.weighting import (
    AntiWindupLaw,
    DWALaw,
    FAMOLaw,
    GradNormLaw,
    GramianLaw,
    IntegralLaw,
    InverseNormLaw,
    LawLoss,
    LogEMALaw,
    LoopLaw,
    UncertaintyLaw,
    get_method,
    law_weights,
)

CONTROLLER = {"num_tasks": 2, "beta": 0.99, "warmup": 100, "lambda_min": 0.05}


def make_laws(k: int = 2):
    return {
        "gradnorm": GradNormLaw(k),
        "gradnorm_softmax": GradNormLaw(k, positive=True),
        "uncertainty": UncertaintyLaw(k),
        "dwa": DWALaw(k, steps_per_epoch=7),
        "famo": FAMOLaw(k),
        "upgrad": GramianLaw(k, "upgrad"),
        "mgda": GramianLaw(k, "mgda"),
        # GABA's loop with one block swapped (short warmup and memory: 60-step sequences)
        "gaba_loop": LoopLaw(k, beta=0.9, warmup=5, floor=0.05),
        "gaba_antiwindup": AntiWindupLaw(k, beta=0.9, warmup=5, floor=0.05),
        "gaba_inverse": InverseNormLaw(k, beta=0.9, warmup=5, floor=0.05),
        "gaba_integral": IntegralLaw(k, beta=0.9, warmup=5, floor=0.05),
        "gaba_log_ema": LogEMALaw(k, beta=0.9, warmup=5, floor=0.05),
    }


LAW_NAMES = tuple(make_laws())


def sequence(seed: int, steps: int = 60, k: int = 2):
    """Norms, losses and Gramians of a synthetic run (imbalanced, decaying losses)."""
    rng = np.random.default_rng(seed)
    norms = np.exp(rng.normal(size=(steps, k))) * np.geomspace(30, 1, k)
    losses = np.exp(rng.normal(scale=0.1, size=(steps, k))) * np.linspace(3, 1, steps)[:, None]
    cos = rng.uniform(-0.9, 0.9, size=steps)
    gram = np.einsum("ti,tj->tij", norms, norms)
    gram[:, 0, 1] *= cos
    gram[:, 1, 0] *= cos
    return norms, losses, gram


def torch_weights(law, norms, losses, gram, post=None):
    module = LawLoss(law, warmup=0)
    out = []
    for t in range(norms.shape[0]):
        out.append(module.update_from_measurement(norms[t], losses[t],
                                                  gram[t] if law.measures == "gramian" else None))
        if module.needs_post_step:
            module.post_step_losses(torch.as_tensor(post[t]))
    return torch.stack(out).numpy(), module


@pytest.mark.parametrize("name", LAW_NAMES)
def test_numpy_twin_matches_torch_module(name):
    law = make_laws()[name]
    norms, losses, gram = sequence(1)
    post = np.concatenate([losses[1:], losses[-1:]])
    twin = law_weights(law, norms, losses, gramians=gram if law.measures == "gramian" else None)
    module, _ = torch_weights(law, norms, losses, gram, post)
    np.testing.assert_allclose(module, twin, rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(twin))


@pytest.mark.parametrize("name", LAW_NAMES)
def test_batched_runs_equal_the_runs_one_by_one(name):
    law = make_laws()[name]
    runs = [sequence(seed, steps=40) for seed in (4, 5, 6)]
    norms = np.stack([r[0] for r in runs], axis=1)
    losses = np.stack([r[1] for r in runs], axis=1)
    gram = np.stack([r[2] for r in runs], axis=1)
    norms[7, 1, 0] = np.nan  # one invalid reading in one run only
    losses[9, 2, 1] = 0.0
    together = law_weights(law, norms, losses, gramians=gram)
    for i in range(3):
        alone = law_weights(law, norms[:, i], losses[:, i], gramians=gram[:, i])
        np.testing.assert_allclose(together[:, i], alone, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", LAW_NAMES)
def test_state_dict_resumes_bit_identically(name):
    laws = make_laws()
    norms, losses, gram = sequence(2)
    post = np.concatenate([losses[1:], losses[-1:]])
    whole, _ = torch_weights(laws[name], norms, losses, gram, post)
    first, module = torch_weights(laws[name], norms[:25], losses[:25], gram[:25], post[:25])
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    fresh = LawLoss(make_laws()[name], warmup=0)
    fresh.load_state_dict(torch.load(buffer))
    rest = []
    for t in range(25, norms.shape[0]):
        rest.append(fresh.update_from_measurement(
            norms[t], losses[t], gram[t] if fresh.law.measures == "gramian" else None))
        if fresh.needs_post_step:
            fresh.post_step_losses(torch.as_tensor(post[t]))
    assert np.array_equal(np.concatenate([first, torch.stack(rest).numpy()]), whole)


@pytest.mark.parametrize("name", LAW_NAMES)
@pytest.mark.parametrize("bad", ["nan_norm", "inf_norm", "nan_loss", "zero_loss", "inf_gram"])
def test_invalid_measurement_never_enters_the_state(name, bad):
    law = make_laws()[name]
    module = LawLoss(law, warmup=0)
    norms, losses, gram = sequence(3, steps=5)
    for t in range(4):
        module.update_from_measurement(norms[t], losses[t], gram[t])
        if module.needs_post_step:
            module.post_step_losses(torch.as_tensor(losses[t + 1]))
    before = {k: v.clone() for k, v in module.law_state().items()}
    applied = module.law_applied.clone()
    g, loss, gm = norms[4].copy(), losses[4].copy(), gram[4].copy()
    if bad == "nan_norm":
        g[0] = np.nan
    elif bad == "inf_norm":
        g[1] = np.inf
    elif bad == "nan_loss":
        loss[0] = np.nan
    elif bad == "zero_loss":
        loss[:] = 0.0
    else:
        gm[0, 1] = np.inf
    weights = module.update_from_measurement(g, loss, gm)
    if bad == "zero_loss" and not law.positive_losses:
        return  # a zero loss is a valid reading for a law that takes no log or ratio of it
    if bad == "inf_gram" and law.measures != "gramian":
        return  # a law that does not read the Gramian ignores it
    assert torch.equal(weights, applied.to(weights.dtype))
    if name != "dwa":  # DWA counts the step (its epoch clock runs), nothing else moves
        for key, value in module.law_state().items():
            if key == "step":  # GABA's loops count it, as GABA's gate does
                assert value == before[key] + 1
                continue
            assert torch.equal(value, before[key]), key
    assert not module.needs_post_step
    module.post_step_losses(torch.tensor([float("nan"), 1.0]))  # ignored, not an error


def test_famo_post_step_nonfinite_is_ignored():
    module = LawLoss(FAMOLaw(2), warmup=0)
    module.update_from_measurement([1.0, 1.0], [2.0, 1.0])
    before = module.law_state()["logits"].clone()
    module.post_step_losses(torch.tensor([float("inf"), 1.0]))
    assert torch.equal(module.law_state()["logits"], before)


@pytest.mark.parametrize("name", LAW_NAMES)
def test_loaded_state_is_validated(name):
    module = LawLoss(make_laws()[name], warmup=0)
    state = module.state_dict()
    key = next(k for k in state if k.startswith("law_") and k not in ("law_config",))
    poisoned = dict(state)
    poisoned[key] = torch.full_like(state[key], float("nan"))
    with pytest.raises(ValueError, match=key):
        LawLoss(make_laws()[name], warmup=0).load_state_dict(poisoned)
    wrong_shape = dict(state)
    wrong_shape[key] = torch.zeros(5, dtype=torch.float64)
    with pytest.raises(ValueError, match="shape"):
        LawLoss(make_laws()[name], warmup=0).load_state_dict(wrong_shape)


def test_loaded_state_of_another_configuration_is_refused():
    state = LawLoss(GradNormLaw(2, alpha=0.5), warmup=0).state_dict()
    with pytest.raises(ValueError, match=r"alpha=0\.5"):
        LawLoss(GradNormLaw(2, alpha=1.5), warmup=0).load_state_dict(state)
    state = LawLoss(DWALaw(2, steps_per_epoch=3), warmup=0).state_dict()
    with pytest.raises(ValueError, match="steps_per_epoch"):
        LawLoss(DWALaw(2, steps_per_epoch=4), warmup=0).load_state_dict(state)


def test_negative_adam_variance_and_fractional_count_are_refused():
    module = LawLoss(UncertaintyLaw(2), warmup=0)
    state = dict(module.state_dict())
    state["law_adam_v"] = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="adam_v"):
        LawLoss(UncertaintyLaw(2), warmup=0).load_state_dict(state)
    state = dict(module.state_dict())
    state["law_adam_t"] = torch.tensor(2.5, dtype=torch.float64)
    with pytest.raises(ValueError, match="adam_t"):
        LawLoss(UncertaintyLaw(2), warmup=0).load_state_dict(state)


@pytest.mark.parametrize(("method", "options", "flag"), [
    ("gradnorm", {"gradnorm_alpha": -1.0}, "--gradnorm-alpha"),
    ("gradnorm", {"gradnorm_lr": 0.0}, "--gradnorm-lr"),
    ("gradnorm_softmax", {"gradnorm_lr": math.inf}, "--gradnorm-lr"),
    ("uncertainty", {"uw_lr": -1e-3}, "--uw-lr"),
    ("dwa", {"dwa_temperature": 0.0}, "--dwa-temperature"),
    ("famo", {"famo_lr": math.nan}, "--famo-lr"),
    ("famo", {"famo_gamma": -0.1}, "--famo-gamma"),
])
def test_bad_options_name_their_flag(method, options, flag):
    with pytest.raises(ValueError, match=flag):
        get_method(method)(CONTROLLER, **options)


def test_options_of_the_wrong_type_raise_type_error():
    with pytest.raises(TypeError, match="--famo-lr"):
        get_method("famo")(CONTROLLER, famo_lr="fast")
    with pytest.raises(TypeError, match="takes no"):
        get_method("dwa")(CONTROLLER, famo_lr=0.1)
    with pytest.raises(TypeError, match="steps_per_epoch"):
        DWALaw(2, steps_per_epoch=2.0)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        get_method("dwa")(CONTROLLER).module(10)


def test_law_module_rejects_other_sensors_and_overrides():
    with pytest.raises(ValueError, match="refresh_every"):
        LawLoss(UncertaintyLaw(2), refresh_every=2)
    with pytest.raises(TypeError, match="Law"):
        LawLoss("uncertainty")


# ------------------------------------------------------------------ hostile sequences

_value = st.one_of(
    st.floats(min_value=0.0, max_value=1e30, allow_nan=False),
    st.sampled_from([0.0, 1e-300, 1e300, math.inf, math.nan]),
)


@settings(deadline=None)
@given(st.sampled_from(LAW_NAMES), st.lists(st.tuples(_value, _value, _value, _value),
                                            min_size=1, max_size=30))
def test_weights_stay_finite_under_any_measurements(name, rows):
    law = make_laws()[name]
    arr = np.array(rows, dtype=np.float64)
    norms, losses = arr[:, :2], arr[:, 2:]
    gram = np.einsum("ti,tj->tij", norms, norms)
    with np.errstate(all="ignore"):
        w = law_weights(law, norms, losses, gramians=gram)
    assert np.all(np.isfinite(w))
    if name in ("gradnorm_softmax", "uncertainty", "dwa", "famo", "mgda"):
        assert np.all(w >= 0)
    if name in ("famo", "mgda"):
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-9)
    if name in ("gradnorm_softmax", "dwa"):
        np.testing.assert_allclose(w.sum(axis=1), 2.0, rtol=1e-9)


# ------------------------------------------------------------------ fixed points and bounds

def test_uncertainty_settles_at_half_the_inverse_loss():
    """Kendall's fixed point w_i = 1/(2 L_i): ∂/∂s (½e^{-s}L + ½s) = 0 ⇒ e^{-s} = 1/L."""
    law = UncertaintyLaw(2, lr=0.05)
    losses = np.tile([4.0, 0.25], (4000, 1))
    w = law_weights(law, np.ones_like(losses), losses)
    np.testing.assert_allclose(w[-1], [1 / 8, 2.0], rtol=2e-2)


def test_gradnorm_equalises_weighted_norms_when_losses_fall_alike():
    """Equal loss ratios ⇒ r = 1 ⇒ target Ḡ: w_i g_i equal, w = K g⁻¹/Σg⁻¹ (within the chatter)."""
    g = np.array([4.0, 1.0])
    law = GradNormLaw(2, lr=1e-2, positive=True)
    w = law_weights(law, np.tile(g, (3000, 1)), np.ones((3000, 2)))
    expected = 2 * (1 / g) / np.sum(1 / g)
    np.testing.assert_allclose(w[-500:].mean(axis=0), expected, rtol=0.02)


def test_dwa_weights_lie_in_its_bound():
    """r ∈ [a, b] ⇒ λ_k ≥ K/(1 + (K−1) e^{(b−a)/T}) (the module docstring's bound)."""
    rng = np.random.default_rng(0)
    losses = np.exp(rng.uniform(-1, 1, size=(200, 3)))
    w = law_weights(DWALaw(3, steps_per_epoch=1), np.ones_like(losses), losses)
    r = losses[1:] / losses[:-1]
    span = r.max() - r.min()
    assert w.min() >= 3 / (1 + 2 * np.exp(span / 2)) - 1e-12
    assert w.max() <= 3 / (1 + 2 * np.exp(-span / 2)) + 1e-12


def test_famo_weights_favour_the_task_that_improves_less():
    """Task 0's loss does not fall, task 1's falls: ξ_0 rises, so z_0 > ½."""
    law = FAMOLaw(2)
    steps = 200
    losses = np.column_stack([np.ones(steps), np.geomspace(1.0, 0.1, steps)])
    post = np.column_stack([np.ones(steps), losses[:, 1] * 0.99])
    w = law_weights(law, np.ones_like(losses), losses, post_losses=post)
    z = w[-1] * losses[-1] / np.sum(w[-1] * losses[-1])  # w_i ∝ z_i/ℓ_i
    z0 = z[0]
    assert z0 > 0.5


def test_gradnorm_paper_form_can_turn_a_weight_negative():
    """Counterexample to a bound: the raw weights leave [0, K] under a large imbalance."""
    g = np.array([500.0, 1.0])
    law = GradNormLaw(2, lr=0.05)
    w = law_weights(law, np.tile(g, (400, 1)), np.ones((400, 2)))
    assert w.min() < 0
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w.sum(axis=1), 2.0, rtol=1e-9)


def test_softmax_form_stays_positive_under_the_same_imbalance():
    g = np.array([500.0, 1.0])
    w = law_weights(GradNormLaw(2, lr=0.05, positive=True), np.tile(g, (400, 1)),
                    np.ones((400, 2)))
    assert w.min() > 0


# ------------------------------------------------------------------ real gradients

def _tiny_problem(seed=0):
    torch.manual_seed(seed)
    backbone = torch.nn.Linear(5, 4, dtype=torch.float64)
    heads = torch.nn.ModuleList(torch.nn.Linear(4, 1, dtype=torch.float64) for _ in range(2))
    x = torch.randn(16, 5, dtype=torch.float64)
    y = torch.randn(16, 2, dtype=torch.float64)
    return backbone, heads, x, y


@pytest.mark.parametrize("name", LAW_NAMES)
def test_module_on_real_gradients_matches_the_twin_on_its_own_telemetry(name):
    backbone, heads, x, y = _tiny_problem()
    module = LawLoss(make_laws()[name], warmup=0)
    params = [*backbone.parameters(), *heads.parameters()]
    opt = torch.optim.SGD(params, lr=0.05)
    rows, grams, applied, post = [], [], [], []
    for _ in range(12):
        z = backbone(x)
        losses = [(h(z)[:, 0] - y[:, i]).pow(2).mean() * s
                  for i, (h, s) in enumerate(zip(heads, (30.0, 1.0), strict=True))]
        grads = [torch.autograd.grad(l_, list(backbone.parameters()), retain_graph=True)
                 for l_ in losses]
        flat = torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in grads])
        grams.append((flat @ flat.T).numpy())
        loss = module(losses, params, backbone.parameters())
        t = module.telemetry()
        rows.append((t["norms"], t["losses"]))
        applied.append(t["applied_weights"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            z = backbone(x)
            after = [(h(z)[:, 0] - y[:, i]).pow(2).mean() * s
                     for i, (h, s) in enumerate(zip(heads, (30.0, 1.0), strict=True))]
        post.append(torch.stack(after).numpy())
        module.post_step_losses(after)
    norms = np.array([r[0] for r in rows])
    losses = np.array([r[1] for r in rows])
    twin = law_weights(make_laws()[name], norms, losses, post_losses=np.array(post),
                       gramians=np.array(grams))
    np.testing.assert_allclose(np.array(applied), twin, rtol=1e-9, atol=1e-12)


def test_uncertainty_weight_has_no_upper_bound():
    """Counterexample to a bound: w* = 1/(2L) grows without limit as a loss goes to zero."""
    losses = np.tile([1e-4, 1.0], (3000, 1))
    w = law_weights(UncertaintyLaw(2, lr=0.05), np.ones_like(losses), losses)
    assert w[-1, 0] == pytest.approx(1 / (2 * 1e-4), rel=1e-3)  # 10⁴ × its start of ½


def exact_upgrad_two_tasks(r: float, cos: float) -> np.ndarray:
    """UPGrad (Quinton & Rey 2024) for g_1 = r·e, ‖g_2‖ = 1 at cosine ``cos`` < 0, preference ½.

    Row 1 projected onto the dual cone: g_1 − (⟨g_1,g_2⟩/‖g_2‖²) g_2, i.e.
    weights (1, −cos·r); row 2: g_2 − (⟨g_1,g_2⟩/‖g_1‖²) g_1, weights (−cos/r, 1); averaged.
    """
    return 0.5 * np.array([1.0 - cos / r, 1.0 - cos * r])


@pytest.mark.parametrize("r", [1.0, 3.0, 10.0])
def test_upgrad_through_torchjd_matches_the_exact_projection_for_small_imbalances(r):
    gram = np.array([[[r * r, -0.9 * r], [-0.9 * r, 1.0]]])
    ones = np.ones((1, 2))
    w = law_weights(GramianLaw(2, "upgrad"), ones, ones, gramians=gram)[0]
    np.testing.assert_allclose(w, exact_upgrad_two_tasks(r, -0.9), rtol=0.02)


def test_torchjd_upgrad_defaults_depart_from_the_projection_at_large_imbalances():
    """torchjd's default projector normalises G and adds reg_eps = 1e-4 to its diagonal: once
    the small task's normalised diagonal 1/r² falls below that (r ≳ 100) the weight on the
    small task is no longer UPGrad's, e.g. at r = 1000 about 5 instead of 450 (measured)."""
    ones = np.ones((1, 2))
    out = {}
    for r in (100.0, 1000.0):
        gram = np.array([[[r * r, -0.9 * r], [-0.9 * r, 1.0]]])
        out[r] = law_weights(GramianLaw(2, "upgrad"), ones, ones, gramians=gram)[0, 1]
    assert out[100.0] < 0.7 * exact_upgrad_two_tasks(100.0, -0.9)[1]
    assert out[1000.0] < 0.05 * exact_upgrad_two_tasks(1000.0, -0.9)[1]
    # MGDA stays on the simplex however ill-conditioned the Gramian
    m = law_weights(GramianLaw(2, "mgda"), ones, ones,
                    gramians=np.array([[[1e6, -900.0], [-900.0, 1.0]]]))[0]
    assert np.all(m >= 0) and m.sum() == pytest.approx(1.0)
