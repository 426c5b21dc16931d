r"""Low-order discrete plant models from input/output records: ARX and output-error.

Model structures (``q⁻¹`` the one-step delay, ``n_k`` the input delay):

* ARX: ``A(q) y_t = B(q) u_t + e_t``, fitted by linear least squares on lagged
  regressors; consistent only when the noise is ``e/A`` (equation error);
* OE (output error): ``y_t = B(q)/F(q) u_t + v_t`` for any stationary ``v``:
  the simulated output's squared error is minimised
  (:func:`scipy.optimize.least_squares`), starting from the ARX fit; consistent
  for any noise that is independent of the input (Ljung 1999, §8.3),

with ``B(q) = b_1 q^{-n_k} + … + b_{n_b} q^{-n_k-n_b+1}`` and
``A, F = 1 + a_1 q⁻¹ + …``. Each model is returned with its
``control.TransferFunction(num, den, dt=1)`` (coefficients in powers of ``z``,
``num``/``den`` padded to a common length so that ``z⁻¹`` means one step).

Training drifts. Both the input and the output are passed through the same
high-pass prefilter ``L(q) = [(1+p)/2 · (1 − q⁻¹)/(1 − p q⁻¹)]²``, ``p = e^{−ω_hp}``
(second order: a linear drift is removed in steady state, a quadratic one
becomes a constant), each stage started at rest on its first input sample;
since ``L`` and the plant are both linear and time-invariant,
``L y = G (L u) + L v``: the plant is unchanged and the drift below ``ω_hp`` is
suppressed (Ljung 1999, §14.4).

Fit is ``100 (1 − ‖y − ŷ‖/‖y − ȳ‖)`` % on the prefiltered output with ``ŷ`` the
*simulated* model output (NRMSE fit, as in identification toolboxes).

Reference: Ljung, L. (1999). *System Identification: Theory for the User*,
2nd ed., Prentice Hall.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, signal

from gaba_control._validation import check_no_extra_kwargs

__all__ = [
    "OrderSelection",
    "PlantModel",
    "fit_arx",
    "fit_oe",
    "fit_percent",
    "prefilter",
    "select_order",
]


def _records(x, name):
    from gaba_control.plant.spectral import _records as records

    return records(x, name)


def _check_order(value, name: str, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def prefilter(x: np.ndarray, highpass: float | None) -> np.ndarray:
    """``L(q) x`` with the high-pass of the module docstring; ``highpass=None``: unchanged.

    Examples
    --------
    >>> out = prefilter(np.full(50, 3.0), 0.01)  # a constant is removed at once
    >>> float(np.max(np.abs(out))) < 1e-12
    True
    """
    x = np.asarray(x, dtype=np.float64)
    if highpass is None:
        return x
    if not (isinstance(highpass, float) and 0 < highpass < math.pi):
        raise ValueError(f"highpass must be a float in (0, π) rad/step, got {highpass!r}")
    p = math.exp(-highpass)
    b, a = (1 + p) / 2 * np.array([1.0, -1.0]), np.array([1.0, -p])
    for _ in range(2):
        x = signal.lfilter(b, a, x, zi=signal.lfilter_zi(b, a) * x[0])[0]
    return x


def fit_percent(y, y_hat) -> float:
    """NRMSE fit ``100 (1 − ‖y − ŷ‖/‖y − ȳ‖)`` over all records (−inf … 100)."""
    y = np.concatenate([np.asarray(r, float) for r in (y if isinstance(y, list) else [y])])
    y_hat = np.concatenate([np.asarray(r, float)
                            for r in (y_hat if isinstance(y_hat, list) else [y_hat])])
    scale = np.linalg.norm(y - y.mean())
    return float(100 * (1 - np.linalg.norm(y - y_hat) / scale)) if scale > 0 else math.nan


@dataclass(frozen=True)
class PlantModel:
    """A fitted ``y = B(q)/A(q) u`` (A is F for an output-error model).

    Attributes
    ----------
    structure : "arx" or "oe"
    b : (nb,) numerator coefficients of ``q^{-nk} … q^{-nk-nb+1}``
    a : (na + 1,) denominator ``[1, a_1, …]`` in powers of ``q⁻¹``
    nk : input delay in steps
    fit : fit % on the estimation records (simulated output)
    noise_std : standard deviation of the simulation residual
    highpass : the prefilter's corner (rad/step) or None
    """

    structure: str
    b: np.ndarray
    a: np.ndarray
    nk: int
    fit: float
    noise_std: float
    highpass: float | None

    @property
    def orders(self) -> tuple[int, int, int]:
        return len(self.a) - 1, len(self.b), self.nk

    @property
    def numerator(self) -> np.ndarray:
        """``B`` in powers of ``q⁻¹`` with the delay as leading zeros."""
        return np.concatenate([np.zeros(self.nk), self.b])

    def transfer_function(self):
        """The model as ``control.TransferFunction(num, den, dt=1)`` (powers of ``z``)."""
        import control

        num, den = self.numerator, self.a
        n = max(num.size, den.size)
        num = np.concatenate([num, np.zeros(n - num.size)])
        den = np.concatenate([den, np.zeros(n - den.size)])
        return control.TransferFunction(num, den, dt=1)

    @property
    def poles(self) -> np.ndarray:
        return np.roots(self.a) if self.a.size > 1 else np.zeros(0)

    @property
    def stable(self) -> bool:
        return bool(np.all(np.abs(self.poles) < 1))

    @property
    def dc_gain(self) -> float:
        return float(self.numerator.sum() / self.a.sum())

    def frequency_response(self, omega) -> np.ndarray:
        """``G(e^{jω})`` on ``omega`` rad/step."""
        z = np.exp(-1j * np.asarray(omega, dtype=float))
        num = np.polyval(self.numerator[::-1], z)
        den = np.polyval(self.a[::-1], z)
        return num / den

    def simulate(self, u) -> np.ndarray:
        """Output of the model from rest for input ``u`` (no prefilter)."""
        return signal.lfilter(self.numerator, self.a, np.asarray(u, dtype=float))

    def predict(self, u_records, y_records=None) -> list[np.ndarray]:
        """Simulated prefiltered outputs of the records (the quantity :attr:`fit` scores)."""
        return [self.simulate(prefilter(u, self.highpass)) for u in _records(u_records, "u")]

    def score(self, u_records, y_records) -> float:
        """Fit % of the simulated model on other records (prefiltered as in the fit)."""
        ys = [prefilter(y, self.highpass) for y in _records(y_records, "y")]
        return fit_percent(ys, self.predict(u_records))


def _prepared(u, y, highpass, skip):
    us, ys = _records(u, "u"), _records(y, "y")
    if len(us) != len(ys):
        raise ValueError(f"u has {len(us)} records, y has {len(ys)}")
    if not (isinstance(skip, (int, np.integer)) and skip >= 0):
        raise ValueError(f"skip must be an int >= 0, got {skip!r}")
    out = []
    for i, (ur, yr) in enumerate(zip(us, ys, strict=True)):
        if ur.size != yr.size:
            raise ValueError(f"record {i}: u has {ur.size} samples, y has {yr.size}")
        out.append((prefilter(ur, highpass), prefilter(yr, highpass)))
    return out, skip


def _arx_lstsq(records, na, nb, nk, skip):
    lag = max(na, nk + nb - 1)
    rows, targets = [], []
    for ur, yr in records:
        n = ur.size
        if n - max(lag, skip) < na + nb + 1:
            raise ValueError(f"a record of {n} samples is too short for orders "
                             f"na={na}, nb={nb}, nk={nk}")
        t = np.arange(max(lag, skip), n)
        cols = [-yr[t - i] for i in range(1, na + 1)]
        cols += [ur[t - nk - j] for j in range(nb)]
        rows.append(np.column_stack(cols))
        targets.append(yr[t])
    phi, target = np.vstack(rows), np.concatenate(targets)
    theta = np.linalg.lstsq(phi, target, rcond=None)[0]
    return np.concatenate([[1.0], theta[:na]]), theta[na:]


def _simulate_records(records, b, f, nk, skip):
    num = np.concatenate([np.zeros(nk), b])
    return [(signal.lfilter(num, f, ur)[skip:], yr[skip:]) for ur, yr in records]


def _model(structure, records, a, b, nk, skip, highpass):
    sims = _simulate_records(records, b, a, nk, skip)
    y_hat = [s for s, _ in sims]
    y = [t for _, t in sims]
    residual = np.concatenate([t - s for s, t in sims])
    return PlantModel(structure, np.asarray(b, float), np.asarray(a, float), nk,
                      fit_percent(y, y_hat), float(np.std(residual)), highpass)


def fit_arx(u, y, na: int = 1, nb: int = 1, nk: int = 1, *, highpass: float | None = 0.005,
            skip: int = 0, **kwargs) -> PlantModel:
    """Least-squares ARX fit ``A(q) y = B(q) u + e`` over one or several records.

    Parameters
    ----------
    u, y : array (N,) or sequence of arrays
        Input and output records (same length within a record).
    na, nb, nk : int
        Orders: ``na ≥ 0`` poles, ``nb ≥ 1`` numerator coefficients, delay ``nk ≥ 0``.
    highpass : float or None
        Prefilter corner in rad/step (see the module docstring); None: no prefilter.
    skip : int
        Leading samples of each record left out of the fit (after prefiltering).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> u = np.sign(rng.standard_normal(5000))
    >>> y = signal.lfilter([0, 0.5], [1, -0.9], u) + 0.05 * rng.standard_normal(5000)
    >>> m = fit_arx(u, y, 1, 1, 1, highpass=None)
    >>> [round(float(c), 2) for c in (m.a[1], m.b[0])], abs(m.dc_gain - 5.0) < 0.2
    ([-0.9, 0.5], True)
    """
    check_no_extra_kwargs(kwargs, "fit_arx")
    na, nb, nk = _check_order(na, "na", 0), _check_order(nb, "nb", 1), _check_order(nk, "nk", 0)
    records, skip = _prepared(u, y, highpass, skip)
    a, b = _arx_lstsq(records, na, nb, nk, skip)
    return _model("arx", records, a, b, nk, skip, highpass)


def _stabilised(f: np.ndarray) -> np.ndarray:
    """``f`` with roots outside the unit circle reflected inside (same magnitude response)."""
    if f.size <= 1:
        return f
    roots = np.roots(f)
    outside = np.abs(roots) >= 1
    if not outside.any():
        return f
    roots[outside] = 0.99 / np.conj(roots[outside])
    return np.real(np.poly(roots))


def fit_oe(u, y, nb: int = 1, nf: int = 1, nk: int = 1, *, highpass: float | None = 0.005,
           skip: int = 0, **kwargs) -> PlantModel:
    """Output-error fit ``y = B(q)/F(q) u + v`` (simulation error minimised, from ARX).

    Parameters as :func:`fit_arx` (``nf`` poles). The search starts from the
    ARX fit with its poles reflected inside the unit circle; the result's
    :attr:`PlantModel.stable` says whether the fitted poles are.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> u = np.sign(rng.standard_normal(4000))
    >>> y = signal.lfilter([0, 0.2], [1, -0.8], u) + 0.5 * rng.standard_normal(4000)
    >>> m = fit_oe(u, y, 1, 1, 1, highpass=None)   # white output noise: ARX would be biased
    >>> round(float(m.poles[0]), 1), round(m.dc_gain, 1)
    (0.8, 1.0)
    """
    check_no_extra_kwargs(kwargs, "fit_oe")
    nb, nf, nk = _check_order(nb, "nb", 1), _check_order(nf, "nf", 0), _check_order(nk, "nk", 0)
    records, skip = _prepared(u, y, highpass, skip)
    a0, b0 = _arx_lstsq(records, nf, nb, nk, skip)
    a0 = _stabilised(a0)
    if nf:  # the ARX gain with a reflected denominator: refit B for this F by least squares
        b0 = _refit_numerator(records, a0, nb, nk, skip)

    def residuals(theta):
        b, f = theta[:nb], np.concatenate([[1.0], theta[nb:]])
        sims = _simulate_records(records, b, f, nk, skip)
        r = np.concatenate([t - s for s, t in sims])
        return r if np.all(np.isfinite(r)) else np.full(r.shape, 1e150)

    theta0 = np.concatenate([b0, a0[1:]])
    result = optimize.least_squares(residuals, theta0, method="lm" if theta0.size <= sum(
        ur.size - skip for ur, _ in records) else "trf", xtol=1e-12, ftol=1e-12, max_nfev=2000)
    b, f = result.x[:nb], np.concatenate([[1.0], result.x[nb:]])
    return _model("oe", records, f, b, nk, skip, highpass)


def _refit_numerator(records, f, nb, nk, skip):
    rows, targets = [], []
    for ur, yr in records:
        filtered = signal.lfilter([1.0], f, ur)
        t = np.arange(max(skip, nk + nb - 1), ur.size)
        rows.append(np.column_stack([filtered[t - nk - j] for j in range(nb)]))
        targets.append(yr[t])
    return np.linalg.lstsq(np.vstack(rows), np.concatenate(targets), rcond=None)[0]


@dataclass(frozen=True)
class OrderSelection:
    """Candidates scored on held-out records, and the model chosen."""

    structure: str
    candidates: list  # [(na_or_nf, nb, nk)]
    validation_fit: list  # fit % on the held-out records, per candidate
    estimation_fit: list  # in-sample fit %, for reference only
    chosen: PlantModel
    tolerance: float

    def table(self) -> list[dict]:
        return [{"structure": self.structure, "poles": c[0], "nb": c[1], "nk": c[2],
                 "validation_fit": v, "estimation_fit": e,
                 "chosen": c == self.chosen.orders}
                for c, v, e in zip(self.candidates, self.validation_fit, self.estimation_fit,
                                   strict=True)]


def select_order(u_est, y_est, u_val, y_val, *, structure: str = "oe",
                 poles=(0, 1, 2), numerators=(1, 2), delays=(1,), tolerance: float = 1.0,
                 highpass: float | None = 0.005, skip: int = 0) -> OrderSelection:
    """Fit every order on the estimation records, score each on the held-out ones.

    The chosen model is the *smallest* (fewest parameters) whose held-out fit
    lies within ``tolerance`` percentage points of the best: more parameters
    must earn their place on data they were not fitted to.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> def record(seed):
    ...     r = np.random.default_rng(seed)
    ...     u = np.sign(r.standard_normal(3000))
    ...     return u, signal.lfilter([0, 0.3], [1, -0.7], u) + 0.3 * r.standard_normal(3000)
    >>> (ue, ye), (uv, yv) = record(0), record(1)
    >>> choice = select_order(ue, ye, uv, yv, highpass=None)
    >>> choice.chosen.orders
    (1, 1, 1)
    """
    if structure not in ("oe", "arx"):
        raise ValueError(f"structure must be 'oe' or 'arx', got {structure!r}")
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
        raise ValueError(f"tolerance must be a number >= 0, got {tolerance!r}")
    fit = fit_oe if structure == "oe" else fit_arx
    candidates, models = [], []
    for n_poles, nb, nk in itertools.product(poles, numerators, delays):
        candidates.append((int(n_poles), int(nb), int(nk)))
        if structure == "oe":
            models.append(fit(u_est, y_est, nb, n_poles, nk, highpass=highpass, skip=skip))
        else:
            models.append(fit(u_est, y_est, n_poles, nb, nk, highpass=highpass, skip=skip))
    scores = [m.score(u_val, y_val) if m.stable else -math.inf for m in models]
    finite = [s for s in scores if math.isfinite(s)]
    if not finite:
        raise ValueError("no candidate order gave a stable model with a finite held-out fit")
    best = max(finite)
    eligible = [i for i, s in enumerate(scores) if s >= best - tolerance]
    chosen = min(eligible, key=lambda i: (sum(candidates[i][:2]), -scores[i]))
    return OrderSelection(structure, candidates, scores, [m.fit for m in models],
                          models[chosen], float(tolerance))

