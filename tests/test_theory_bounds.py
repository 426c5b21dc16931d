"""Tight bounds of the saturation output (gaba_control.theory.bounds) against numeric searches."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import linprog, minimize

from gaba_control._validation import check_lambda_min
from gaba_control.formulas import floor_renormalise
from gaba_control.theory import bounds

KS = list(range(2, 13))
LAMBDA_MINS = [0.0, 0.01, 0.05, 0.1, 0.2, 1 / 3, 0.45, 0.5, 0.7, 0.99]


def _closed_form(region):
    return bounds.reachable_output_bounds if region == "reachable" else bounds.simplex_output_bounds


def _random_points(k, region, count, rng):
    s = rng.dirichlet(np.full(k, 0.3), size=count)  # concentration < 1 reaches faces and corners
    return s if region == "simplex" else (1.0 - s) / (k - 1)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("lambda_min", LAMBDA_MINS)
@pytest.mark.parametrize("region", bounds.REGIONS)
def test_closed_form_equals_vertex_enumeration(k, lambda_min, region):
    assert_allclose(bounds.search_output_extremes(k, lambda_min, region),
                    _closed_form(region)(k, lambda_min), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("k", [2, 3, 5, 8, 12])
@pytest.mark.parametrize("lambda_min", [0.0, 0.05, 0.1, 0.3])
@pytest.mark.parametrize("region", bounds.REGIONS)
def test_random_points_stay_inside_and_bounds_are_attained(k, lambda_min, region):
    rng = np.random.default_rng(k * 1000 + int(lambda_min * 100))
    points = _random_points(k, region, 20_000, rng)
    out = floor_renormalise(points, lambda_min)
    lo, hi = _closed_form(region)(k, lambda_min)
    assert out.min() >= lo - 1e-12
    assert out.max() <= hi + 1e-12
    x_lo, x_hi = bounds.bound_attainers(k, lambda_min, region)
    for x in (x_lo, x_hi):  # the attainers lie in the region
        assert x.sum() == pytest.approx(1.0) and x.min() >= 0.0
        assert x.max() <= (1.0 if region == "simplex" else 1 / (k - 1)) + 1e-15
    assert floor_renormalise(x_lo, lambda_min)[0] == pytest.approx(lo, rel=1e-12, abs=1e-15)
    assert floor_renormalise(x_hi, lambda_min)[0] == pytest.approx(hi, rel=1e-12)


def _lp_extreme(k, lambda_min, region, floored, sense):
    """Exact extreme of λ*_0 on one floor pattern by the Charnes–Cooper LP (None if empty).

    On the pattern (x_j ≤ λmin for j in ``floored``, ≥ λmin otherwise) λ*_0 = N(x)/D(x) with
    N, D affine; substituting y = t·x, t = 1/D(x) turns min/max N/D into an LP in (y, t).
    """
    high = 1.0 if region == "simplex" else 1.0 / (k - 1)
    free = [j for j in range(k) if j not in floored]
    c = np.zeros(k + 1)  # variables y_0 … y_{K−1}, t
    if 0 in floored:
        c[k] = lambda_min
    else:
        c[0] = 1.0
    a_eq = [np.r_[np.ones(k), -1.0]]  # Σ y = t
    d = np.zeros(k + 1)
    d[free] = 1.0
    d[k] = len(floored) * lambda_min
    a_eq.append(d)  # D(y, t) = 1
    a_ub, b_ub = [], []
    for j in range(k):
        row = np.zeros(k + 1)
        row[j], row[k] = 1.0, -high  # y_j ≤ h t
        a_ub.append(row)
        b_ub.append(0.0)
        row = np.zeros(k + 1)
        sign = 1.0 if j in floored else -1.0  # y_j ≤ λmin t  or  y_j ≥ λmin t
        row[j], row[k] = sign, -sign * lambda_min
        a_ub.append(row)
        b_ub.append(0.0)
    res = linprog(sense * c, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.array(a_eq), b_eq=[0.0, 1.0],
                  bounds=[(0, None)] * (k + 1), method="highs")
    return sense * res.fun if res.status == 0 else None


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("lambda_min", [0.0, 0.05, 0.2, 0.3, 0.6])
@pytest.mark.parametrize("region", bounds.REGIONS)
def test_closed_form_equals_linear_programming_over_floor_patterns(k, lambda_min, region):
    lows, highs = [], []
    for mask in range(2**k):
        floored = {j for j in range(k) if mask >> j & 1}
        for sense, found in ((1.0, lows), (-1.0, highs)):
            value = _lp_extreme(k, lambda_min, region, floored, sense)
            if value is not None:
                found.append(value)
    assert_allclose((min(lows), max(highs)), _closed_form(region)(k, lambda_min),
                    rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("k", [3, 5, 8])
@pytest.mark.parametrize("lambda_min", [0.05, 0.12])
def test_local_optimisation_does_not_beat_the_reachable_bounds(k, lambda_min):
    # SLSQP over s in the simplex (x = (1 − s)/(K−1)) from random starts: a third, independent
    # search (the objective is only piecewise smooth, so it finds local extremes).
    rng = np.random.default_rng(k)
    lo, hi = bounds.reachable_output_bounds(k, lambda_min)
    cons = ({"type": "eq", "fun": lambda s: s.sum() - 1.0},)

    def weight(s):
        return floor_renormalise((1.0 - s) / (k - 1), lambda_min)[0]

    found_lo, found_hi = np.inf, -np.inf
    for start in rng.dirichlet(np.ones(k), size=15):
        for sign in (1.0, -1.0):
            res = minimize(lambda s, sg=sign: sg * weight(s), start, method="SLSQP",
                           bounds=[(0.0, 1.0)] * k, constraints=cons)
            value = weight(np.clip(res.x, 0.0, 1.0) / np.clip(res.x, 0.0, 1.0).sum())
            found_lo, found_hi = min(found_lo, value), max(found_hi, value)
    assert found_lo >= lo - 1e-9
    assert found_hi <= hi + 1e-9


@given(st.integers(2, 12), st.floats(0.0, 0.999), st.integers(0, 2**32 - 1))
def test_property_random_points_inside_their_bounds(k, lambda_min, seed):
    rng = np.random.default_rng(seed)
    for region in bounds.REGIONS:
        x = _random_points(k, region, 1, rng)[0]
        lo, hi = _closed_form(region)(k, lambda_min)
        w = floor_renormalise(x, lambda_min)
        assert lo - 1e-12 <= w.min() and w.max() <= hi + 1e-12
    lo, hi = bounds.reachable_output_bounds(k, lambda_min)
    s_lo, s_hi = bounds.simplex_output_bounds(k, lambda_min)
    assert s_lo - 1e-12 <= lo and hi <= s_hi + 1e-12  # reachable ⊂ simplex


@given(st.integers(2, 12), st.floats(0.0, 0.999))
def test_property_bounds_attained_by_their_attainers(k, lambda_min):
    for region in bounds.REGIONS:
        b = bounds.output_bounds(k, lambda_min, region)
        assert floor_renormalise(b.lower_point, lambda_min)[0] == pytest.approx(b.lower, abs=1e-12)
        assert floor_renormalise(b.upper_point, lambda_min)[0] == pytest.approx(b.upper, abs=1e-12)
        assert b.lower <= 1 / k + 1e-12 <= b.upper + 2e-12


@pytest.mark.parametrize("lambda_min", LAMBDA_MINS)
def test_two_tasks_reachable_equals_simplex(lambda_min):
    assert_allclose(bounds.reachable_output_bounds(2, lambda_min),
                    bounds.simplex_output_bounds(2, lambda_min), rtol=1e-15)


@pytest.mark.parametrize("k", [3, 5, 8])
def test_reachable_closed_forms_are_the_lead_s_formulas(k):
    lam = 0.05
    u = 1 / (k - 1)
    lo, hi = bounds.reachable_output_bounds(k, lam)
    assert lo == pytest.approx(lam / (1 + lam))
    assert hi == pytest.approx(u / (u + max((k - 2) / (k - 1), (k - 1) * lam)))


# --- degenerate regime -----------------------------------------------------------------------
@pytest.mark.parametrize("lambda_min", [0.01, 0.05, 0.1, 0.2, 0.3, 1 / 3, 0.5, 0.99])
def test_degenerate_num_tasks_is_smallest_uniform_k(lambda_min):
    k = bounds.degenerate_num_tasks(lambda_min)
    assert bounds.is_degenerate(k, lambda_min)
    assert k == 2 or not bounds.is_degenerate(k - 1, lambda_min)
    assert bounds.reachable_output_bounds(k, lambda_min) == (1 / k, 1 / k)
    rng = np.random.default_rng(1)
    out = floor_renormalise(_random_points(k, "reachable", 1000, rng), lambda_min)
    assert_allclose(out, 1 / k, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="lambda_min"):  # the controller excludes it
        check_lambda_min(lambda_min, k)


def test_degenerate_at_paper_floor_and_near_degenerate_width():
    assert bounds.degenerate_num_tasks(0.05) == 21  # 1/(21−1) = 0.05
    assert bounds.degenerate_num_tasks(0.0) is None
    near = bounds.output_bounds(20, 0.05)
    # lower λmin/(1+λmin); upper (1/19)/(1/19 + max(18/19, 19·0.05))
    assert near.lower == pytest.approx(0.05 / 1.05)
    assert near.upper == pytest.approx((1 / 19) / (1 / 19 + 0.95))
    assert round(near.width, 6) == 0.004874
    with pytest.raises(ValueError):  # λmin < 1/K fails at K = 20 already (1/20 = 0.05)
        check_lambda_min(0.05, 20)
    largest = bounds.output_bounds(19, 0.05)  # the largest K the controller accepts
    assert check_lambda_min(0.05, 19) == 0.05
    assert largest.upper == pytest.approx((1 / 18) / (1 / 18 + 17 / 18))
    widths = [bounds.output_bounds(k, 0.05).width for k in range(2, 22)]
    assert np.all(np.diff(widths) < 0) and widths[-1] == 0.0


# --- seed 002 ----------------------------------------------------------------------------------
def test_seed002_two_task_bound_is_right_and_tight():
    # seed: [λmin/(1+λmin), 1/(1+λmin)] = [0.04762, 0.95238] at λmin = 0.05
    lo, hi = bounds.reachable_output_bounds(2, 0.05)
    assert (round(lo, 5), round(hi, 5)) == (0.04762, 0.95238)
    assert_allclose(floor_renormalise(np.array([0.0, 1.0]), 0.05), [lo, hi])


def test_seed002_general_k_bound_holds_on_the_simplex_but_is_loose_for_the_loop():
    # seed: λ* ∈ [λmin/(1+λmin(K−1)), 1/(1+λmin(K−1))] for K tasks. Tight over the simplex;
    # the loop (reachable set) can reach neither end for K ≥ 3: e.g. K = 3: [0.04762, 0.5]
    # instead of [0.04545, 0.90909].
    s_lo, s_hi = bounds.simplex_output_bounds(3, 0.05)
    assert (round(s_lo, 5), round(s_hi, 5)) == (round(0.05 / 1.1, 5), round(1 / 1.1, 5))
    r_lo, r_hi = bounds.reachable_output_bounds(3, 0.05)
    assert (round(r_lo, 5), r_hi) == (0.04762, 0.5)


def test_seed002_pitfall_values():
    # seed: λmin = 0.4 on K = 2 gives [0.286, 0.714] (right)
    assert [round(b, 3) for b in bounds.reachable_output_bounds(2, 0.4)] == [0.286, 0.714]
    # seed: at λmin = 0.5 (K = 2) "the curve collapses to a horizontal line at 0.5". Wrong:
    # the output still spans [1/3, 2/3]; K = 2 degenerates only at λmin ≥ 1/(K−1) = 1.
    lo, hi = bounds.reachable_output_bounds(2, 0.5)
    assert (lo, hi) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert not bounds.is_degenerate(2, 0.5)


def test_plot_and_argument_checks():
    import matplotlib.pyplot as plt

    ax = bounds.output_bounds(3, 0.05).plot()
    assert ax.get_xlabel() == "output weight λ*"
    plt.close("all")
    with pytest.raises(ValueError, match="lambda_min"):
        bounds.reachable_output_bounds(3, 1.0)
    with pytest.raises(ValueError, match="region"):
        bounds.output_bounds(3, 0.05, region="box")
    with pytest.raises(TypeError, match="num_tasks"):
        bounds.simplex_output_bounds(3.0, 0.05)
    assert math.isclose(sum(bounds.bound_attainers(4, 0.05)[1]), 1.0)


@pytest.mark.parametrize("k", KS)
def test_seed002_floor_guarantee_lambda_min_over_one_plus_lambda_min_holds_for_every_k(k):
    # seed: "every task always has at least λmin/(1+λmin) weight". For what the loop can
    # produce this is the tight lower bound for EVERY K (as long as λmin < 1/(K−1)), sharper
    # than the seed's own general-K formula λmin/(1+(K−1)λmin).
    lam = 0.05
    lo, _ = bounds.reachable_output_bounds(k, lam)
    assert lo == pytest.approx(lam / (1 + lam), rel=1e-15)
    assert lo >= bounds.simplex_output_bounds(k, lam)[0]
