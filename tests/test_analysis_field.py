"""The field study: each method's behaviour on known sources, and the study's outputs."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.field import (
    FIELD,
    field_models_response,
    field_simulation_response,
    gradnorm_stability_response,
    loop_table,
    orthogonal_gramian,
    run,
    run_open_source,
    settling_step,
    share_small,
)
from gaba_control.controller import GABAController


@pytest.fixture(scope="module")
def simulation():
    return field_simulation_response(quick=True)


def test_memoryless_aggregators_on_orthogonal_gradients(simulation):
    """MGDA: w ∝ 1/g² inverts the shares (small task gets r/(1+r)); UPGrad: equal weights."""
    for r in (10.0, 100.0, 500.0):
        assert simulation.row(f"constant {r:g}×", "mgda")["share"] == pytest.approx(r / (1 + r),
                                                                                   rel=1e-6)
        assert simulation.row(f"constant {r:g}×", "upgrad")["share"] == pytest.approx(
            1 / (1 + r), rel=1e-6)


def test_loss_readers_are_blind_to_a_gradient_imbalance(simulation):
    for method in ("uncertainty", "dwa", "famo"):
        row = simulation.row("constant 100×", method)
        assert row["share"] == pytest.approx(simulation.row("constant 100×", "equal")["share"])


def test_gaba_row_is_the_controller_itself(simulation):
    ctrl = GABAController(2, beta=0.99, warmup=100, lambda_min=0.05)
    g = np.array([100.0, 1.0])
    w = np.array([ctrl.step(g).weights for _ in range(1000)])
    expected = float(np.median(share_small(w, g)[-250:]))
    assert simulation.row("constant 100×", "gaba")["share"] == pytest.approx(expected)


def test_gradnorm_reaches_its_target_and_its_softmax_form_stays_positive(simulation):
    """Equal losses ⇒ GradNorm's target is equal weighted norms: share ½.

    (Where the paper's form crosses zero is tested in test_lti_methods.py.)
    """
    assert simulation.row("constant 10×", "gradnorm")["share"] == pytest.approx(0.5, abs=0.01)
    for row in simulation.rows:
        if row["method"] == "gradnorm_softmax":
            assert row["diverged"] == 0 and row["w_min"] > 0


def test_gramian_of_orthogonal_gradients():
    g = np.array([[3.0, 4.0], [1.0, 2.0]])
    np.testing.assert_array_equal(orthogonal_gramian(g)[0], np.diag([9.0, 16.0]))


def test_open_source_runs_every_method_over_runs():
    g = np.tile([[5.0, 1.0], [50.0, 1.0]], (200, 1, 1))
    for name in FIELD:
        w = run_open_source(name, g, np.ones_like(g))
        assert w.shape == g.shape and np.all(np.isfinite(w)), name


@pytest.mark.parametrize("name", FIELD)
def test_runs_side_by_side_are_the_runs_alone(name):
    """The head-to-head steps every source's runs together: each run's weights must be
    those it gets alone, bit for bit (regression: the batching that cut the study's time)."""
    rng = np.random.default_rng(1)
    alone = [np.exp(rng.normal(size=(150, 1, 2))) * [40.0, 1.0],
             np.exp(rng.normal(size=(150, 2, 2))) * [3.0, 1.0]]
    together = run_open_source(name, np.concatenate(alone, axis=1),
                               np.ones((150, 3, 2)))
    np.testing.assert_array_equal(together[:, :1], run_open_source(name, alone[0],
                                                                  np.ones_like(alone[0])))
    np.testing.assert_array_equal(together[:, 1:], run_open_source(name, alone[1],
                                                                  np.ones_like(alone[1])))


def test_settling_step_of_a_known_exponential():
    t = np.arange(1000)
    u = (1 - 0.99 ** t)[:, None]
    # the move is measured to the last value 1 − 0.99^999: within 5 % of it once
    # 0.99^t − 0.99^999 ≤ 0.05 (1 − 0.99^999), first at t = 298
    final = 1 - 0.99**999
    expected = int(np.argmax(0.99 ** t - 0.99**999 <= 0.05 * final))
    assert expected == 298
    assert settling_step(u) == expected


def test_models_and_stability_map():
    models = field_models_response(steps=200)
    assert set(models.magnitude) == {"gaba", "uncertainty", "famo", "dwa", "mgda", "upgrad"}
    assert models.magnitude["gaba"][0] == pytest.approx(1.0, rel=1e-3)  # DC, off the floor
    stability = gradnorm_stability_response(ratios=(20.0, 500.0), factors=(0.5, 2.0),
                                            max_steps=10000)
    assert np.all(stability.low["plain step"][:, 0] > 0)
    assert np.all(stability.low["plain step"][:, 1] < 0)
    assert np.all(stability.low["Adam"][:, 0] > 0) and np.all(stability.low["Adam"][:, 1] < 0)
    assert 500 < stability.crossing_ratio() < 1000
    assert "relay" in loop_table()


@pytest.mark.slow
def test_study_writes_its_figures_and_claims(tmp_path):
    study = run(tmp_path, seed=0, trace=None, quick=True)
    names = {p.stem for p in study.figures}
    assert {"field_bode", "field_step", "field_gradnorm_stability", "field_simulation"} <= names
    assert all(p.is_file() for p in study.figures)
    verdicts = {c.claim.split(" ")[0]: c.verdict for c in study.claims}
    assert verdicts["GradNorm"] in ("holds", "refuted")
    assert any(c.verdict == "refuted" and "open-loop" in c.claim for c in study.claims)
