r"""Tight bounds of the saturation output ``λ* = max(x, λ_min)/Σ max(x, λ_min)``.

Two input regions matter:

* ``"simplex"``: any point of the probability simplex ``Δ``;
* ``"reachable"``: what the loop can feed the saturation. Raw weights are
  ``(1 − s)/(K−1)`` for shares ``s ∈ Δ`` (:mod:`.plaw`), which is exactly
  ``Δ ∩ [0, 1/(K−1)]^K``; the EMA, a convex combination started at ``1/K``,
  stays in that convex set. The bounds are suprema/infima: a vertex of the
  set is reached by raw weights, and by the EMA only in the limit ``n → ∞``
  of a constant input (or at once for ``β = 0``).

Throughout ``u = 1/(K−1)`` and the bounds are for one component (all are
alike by symmetry). The controller validates ``λ_min < 1/K``; these functions
describe any ``0 ≤ λ_min < 1``.

See Also
--------
gaba_control.formulas.floor_renormalise : the map bounded here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gaba_control._validation import check_num_tasks
from gaba_control.formulas import floor_renormalise
from gaba_control.theory._checks import check_theory_lambda_min

__all__ = [
    "REGIONS",
    "OutputBounds",
    "bound_attainers",
    "degenerate_num_tasks",
    "extreme_point_candidates",
    "is_degenerate",
    "output_bounds",
    "reachable_output_bounds",
    "search_output_extremes",
    "simplex_output_bounds",
]

#: Input regions of the saturation that the bounds are taken over.
REGIONS = ("reachable", "simplex")


@dataclass(frozen=True)
class OutputBounds:
    """Tight bounds of one output weight and the inputs that attain them.

    Attributes
    ----------
    num_tasks, lambda_min, region :
        The configuration.
    lower, upper : float
        ``min`` and ``max`` of ``λ*_0`` over the region.
    lower_point, upper_point : ndarray (K,)
        Inputs ``x`` in the region with ``λ*_0(x)`` equal to the bound.
    degenerate : bool
        Every output is ``1/K`` whatever the input (reachable region only).
    """

    num_tasks: int
    lambda_min: float
    region: str
    lower: float
    upper: float
    lower_point: np.ndarray
    upper_point: np.ndarray
    degenerate: bool

    @property
    def width(self) -> float:
        """``upper − lower``: how much the saturation lets one weight move."""
        return self.upper - self.lower

    def plot(self, ax=None):
        """Draw the bounds against ``1/K`` as a horizontal interval; return the axes."""
        import matplotlib.pyplot as plt

        if ax is None:  # a new figure, never whatever plt.gca() holds
            _, ax = plt.subplots()
        ax.hlines(0.0, self.lower, self.upper, linewidth=6, label=f"{self.region} range")
        ax.axvline(1.0 / self.num_tasks, linestyle="--", color="k", label="1/K")
        ax.set_yticks([])
        ax.set_xlabel("output weight λ*")
        ax.set_title(f"K = {self.num_tasks}, λ_min = {self.lambda_min:g}")
        ax.legend()
        return ax


def simplex_output_bounds(num_tasks: int, lambda_min: float) -> tuple[float, float]:
    r"""Tight bounds over the whole simplex: ``[λ_min, 1]/(1 + (K−1)λ_min)``.

    Notes
    -----
    Write ``λ*_0 = a/(a + D)`` with ``a = max(x_0, λ_min)`` and
    ``D = Σ_{j≠0} max(x_j, λ_min)``. *Upper*: ``D ≥ max((K−1)λ_min, 1 − x_0)``
    and ``a/(a + D)`` increases with ``x_0``, so ``x = e_0`` is optimal:
    ``1/(1 + (K−1)λ_min)``. *Lower*: ``D`` is convex in ``x``, so on
    ``Σ_{j≠0} x_j ≤ 1`` it is largest at a vertex, ``x = e_1`` with
    ``D = 1 + (K−2)λ_min``; with ``x_0 = 0`` (``a = λ_min``) this gives
    ``λ_min/(1 + (K−1)λ_min)``, and ``x_0 > λ_min`` only raises the ratio
    (``≥ x_0/(1 + (K−2)λ_min)``).

    Examples
    --------
    >>> [round(b, 6) for b in simplex_output_bounds(2, 0.05)]
    [0.047619, 0.952381]
    """
    num_tasks = check_num_tasks(num_tasks)
    lambda_min = check_theory_lambda_min(lambda_min)
    denominator = 1.0 + (num_tasks - 1) * lambda_min
    return lambda_min / denominator, 1.0 / denominator


def reachable_output_bounds(num_tasks: int, lambda_min: float) -> tuple[float, float]:
    r"""Tight bounds over what the loop produces, ``Δ ∩ [0, 1/(K−1)]^K``.

    Returns
    -------
    (float, float)
        For ``λ_min < u = 1/(K−1)``:
        ``λ_min/(1 + λ_min)`` and ``u / (u + max((K−2)/(K−1), (K−1)λ_min))``.
        For ``λ_min ≥ u`` (:func:`is_degenerate`): ``(1/K, 1/K)``.

    Notes
    -----
    *Lower*. Write ``λ*_0 = a/(a + D)`` with ``a = max(x_0, λ_min) ≥ λ_min``
    and ``D = Σ_{j≠0} max(x_j, λ_min) = 1 − x_0 + L``, ``L`` the total lift of
    the ``m`` floored coordinates. The unfloored others are at most ``u``
    each, so they sum to at most ``(K−1−m)u = 1 − mu``; hence the floored ones
    sum to at least ``mu − x_0`` and ``L ≤ mλ_min − (mu − x_0) ≤ x_0``. So
    ``D ≤ 1`` everywhere and ``λ*_0 ≥ a/(a + 1) ≥ λ_min/(1 + λ_min)``, with
    equality at ``x = (0, u, …, u)`` (``x_0`` floored, ``D = 1``), for every
    ``K``.
    *Upper*. ``λ*_0 = a/(a + D)`` increases with ``x_0`` as long as ``D`` can
    be kept at its minimum, so take ``x_0 = u``. The others sum to
    ``1 − u = (K−2)/(K−1)`` and ``D ≥ max(Σ_{j≠0} x_j, (K−1)λ_min)``; the
    equal split ``x_j = (K−2)/(K−1)^2`` attains it (all above ``λ_min``, or
    all at or below it). For ``K = 2`` both bounds equal the simplex ones.
    At ``λ_min = u`` both formulas give ``1/K``; beyond, every reachable
    coordinate is at most ``u ≤ λ_min``, all are floored and
    ``λ* = 1/K`` exactly.

    Examples
    --------
    >>> [round(b, 6) for b in reachable_output_bounds(3, 0.05)]
    [0.047619, 0.5]
    >>> [round(b, 6) for b in simplex_output_bounds(3, 0.05)]
    [0.045455, 0.909091]
    """
    num_tasks = check_num_tasks(num_tasks)
    lambda_min = check_theory_lambda_min(lambda_min)
    if is_degenerate(num_tasks, lambda_min):
        return 1.0 / num_tasks, 1.0 / num_tasks
    u = 1.0 / (num_tasks - 1)
    rest = max((num_tasks - 2) / (num_tasks - 1), (num_tasks - 1) * lambda_min)
    return lambda_min / (1.0 + lambda_min), u / (u + rest)


def bound_attainers(num_tasks: int, lambda_min: float,
                    region: str = "reachable") -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(x_lower, x_upper)`` in ``region`` at which ``λ*_0`` hits its bounds.

    ``"simplex"``: ``e_1`` and ``e_0``. ``"reachable"``: ``(0, u, …, u)`` and
    ``(u, w, …, w)`` with ``u = 1/(K−1)``, ``w = (K−2)/(K−1)^2``; in the
    degenerate regime every reachable point attains ``1/K``.

    Examples
    --------
    >>> lo, hi = bound_attainers(3, 0.05)
    >>> lo, hi
    (array([0. , 0.5, 0.5]), array([0.5 , 0.25, 0.25]))
    >>> floor_renormalise(hi, 0.05)[0].round(6)
    np.float64(0.5)
    """
    num_tasks = check_num_tasks(num_tasks)
    check_theory_lambda_min(lambda_min)
    _check_region(region)
    if region == "simplex":
        eye = np.eye(num_tasks)
        return eye[1].copy(), eye[0].copy()
    u = 1.0 / (num_tasks - 1)
    lower = np.full(num_tasks, u)
    lower[0] = 0.0
    upper = np.full(num_tasks, (num_tasks - 2) / (num_tasks - 1) ** 2)
    upper[0] = u
    return lower, upper


def output_bounds(num_tasks: int, lambda_min: float, region: str = "reachable") -> OutputBounds:
    """Bounds, attainers and width in one object (see the two bound functions).

    Examples
    --------
    >>> b = output_bounds(20, 0.05)  # near-degenerate: 1/(K−1) = 0.0526
    >>> round(b.lower, 6), round(b.upper, 6), round(b.width, 6)
    (0.047619, 0.052493, 0.004874)
    """
    _check_region(region)
    bounds = (reachable_output_bounds if region == "reachable" else simplex_output_bounds)
    lower, upper = bounds(num_tasks, lambda_min)
    lower_point, upper_point = bound_attainers(num_tasks, lambda_min, region)
    degenerate = region == "reachable" and is_degenerate(num_tasks, lambda_min)
    return OutputBounds(int(num_tasks), float(lambda_min), region, lower, upper,
                        lower_point, upper_point, degenerate)


def is_degenerate(num_tasks: int, lambda_min: float) -> bool:
    r"""True when every reachable input is floored everywhere: ``λ_min ≥ 1/(K−1)``.

    Notes
    -----
    Reachable coordinates are at most ``u = 1/(K−1)``; if ``u ≤ λ_min`` every
    one is lifted to ``λ_min`` and the output is exactly uniform. The
    controller's check ``λ_min < 1/K < 1/(K−1)`` excludes this regime.

    Examples
    --------
    >>> is_degenerate(21, 0.05), is_degenerate(20, 0.05)
    (True, False)
    """
    num_tasks = check_num_tasks(num_tasks)
    lambda_min = check_theory_lambda_min(lambda_min)
    return 1.0 / (num_tasks - 1) <= lambda_min


def degenerate_num_tasks(lambda_min: float) -> int | None:
    r"""Smallest ``K`` with ``1/(K−1) ≤ λ_min`` (uniform output); ``None`` for ``λ_min = 0``.

    Notes
    -----
    ``1/(K−1) ≤ λ_min ⇔ K ≥ 1 + 1/λ_min``, so ``K = 1 + ⌈1/λ_min⌉`` (at least
    2), checked with the same float comparison as :func:`is_degenerate`.

    Examples
    --------
    >>> degenerate_num_tasks(0.05)
    21
    >>> degenerate_num_tasks(0.3)
    5
    """
    lambda_min = check_theory_lambda_min(lambda_min)
    if lambda_min == 0.0:
        return None
    k = max(2, 1 + math.ceil(1.0 / lambda_min))
    while k > 2 and is_degenerate(k - 1, lambda_min):
        k -= 1
    while not is_degenerate(k, lambda_min):
        k += 1
    return k


def extreme_point_candidates(num_tasks: int, lambda_min: float,
                             region: str = "reachable") -> np.ndarray:
    r"""All points where ``λ*_0`` can take its extremes over ``region``.

    Returns
    -------
    ndarray (M, K)
        Points of the region whose coordinates, except at most one, lie in the
        breakpoint set ``{0, λ_min, h}`` (``h = 1`` or ``1/(K−1)``), one per
        pattern up to permutations of coordinates ``1 … K−1``.

    Notes
    -----
    On each piece where the set of floored coordinates is fixed, ``λ*_0`` is
    a ratio of two affine functions with a positive denominator, which is
    quasi-linear, so its extremes over the piece lie at the piece's vertices.
    A piece is the polytope ``{Σx = 1, l_j ≤ x_j ≤ h_j}`` with bounds from
    ``{0, λ_min, h}``; a vertex has ``K−1`` active bound constraints, i.e. all
    coordinates but one at a breakpoint. ``λ*_0`` is symmetric in the other
    coordinates, so counts suffice: ``O(K^2)`` candidates.

    Examples
    --------
    >>> extreme_point_candidates(2, 0.05, "simplex").shape[1]
    2
    """
    num_tasks = check_num_tasks(num_tasks)
    lambda_min = check_theory_lambda_min(lambda_min)
    _check_region(region)
    high = 1.0 if region == "simplex" else 1.0 / (num_tasks - 1)
    levels = sorted({0.0, high, *([lambda_min] if 0.0 < lambda_min < high else [])})
    points = []
    for first_free in (True, False):
        others_fixed = num_tasks - 1 if first_free else num_tasks - 2
        firsts = [None] if first_free else levels
        for first in firsts:
            for counts in _compositions(others_fixed, len(levels)):
                fixed = [v for v, c in zip(levels, counts, strict=True) for _ in range(c)]
                free = 1.0 - sum(fixed) - (0.0 if first is None else first)
                if not -1e-12 <= free <= high + 1e-12:
                    continue
                free = min(max(free, 0.0), high)
                point = [free, *fixed] if first is None else [first, free, *fixed]
                points.append(point)
    return np.array(points, dtype=float)


def search_output_extremes(num_tasks: int, lambda_min: float,
                           region: str = "reachable") -> tuple[float, float]:
    """Brute-force ``(min, max)`` of ``λ*_0`` over :func:`extreme_point_candidates`.

    An independent check of the closed forms, exact up to rounding.

    Examples
    --------
    >>> lo, hi = search_output_extremes(5, 0.05)
    >>> bool(np.allclose((lo, hi), reachable_output_bounds(5, 0.05)))
    True
    """
    points = extreme_point_candidates(num_tasks, lambda_min, region)
    values = floor_renormalise(points, lambda_min)[:, 0]
    return float(values.min()), float(values.max())


def _compositions(total: int, parts: int):
    """All tuples of ``parts`` non-negative ints summing to ``total``."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def _check_region(region: str) -> None:
    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
