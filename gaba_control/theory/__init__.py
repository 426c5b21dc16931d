"""Closed-form theory of the GABA loop, one module per concept.

* :mod:`.iir` — the EMA as a first-order IIR low-pass: time constant,
  half-life, settling, exact 3 dB cutoff, frequency and step response.
* :mod:`.variance` — stationary and finite-window variance reduction for
  i.i.d. and AR(1) input.
* :mod:`.plaw` — the P-law identity ``1/K + e/(K−1) = (Σg − g_i)/((K−1)Σg)``
  and the raw-weight range.
* :mod:`.bounds` — tight bounds of the floor + renormalise output over the
  simplex and over the reachable set, and the degenerate regime.
* :mod:`.warmup` — the jump at the first active step and the EMA trajectory
  after the gate opens.

Every function states its result and derives it in its Notes; the Examples
run as doctests.
"""

from gaba_control.theory.bounds import (
    OutputBounds,
    bound_attainers,
    degenerate_num_tasks,
    extreme_point_candidates,
    is_degenerate,
    output_bounds,
    reachable_output_bounds,
    search_output_extremes,
    simplex_output_bounds,
)
from gaba_control.theory.iir import (
    cutoff_approximation_error,
    cutoff_frequency,
    cutoff_frequency_approx,
    dc_gain,
    fraction_settled,
    frequency_response,
    half_life,
    impulse_response,
    magnitude_response,
    nyquist_gain,
    phase_response,
    settling_steps,
    settling_time,
    step_response,
    time_constant,
)
from gaba_control.theory.plaw import (
    ProportionalLawIdentity,
    proportional_law_identity,
    raw_weight_attainers,
    raw_weight_range,
)
from gaba_control.theory.variance import (
    finite_window_std_reduction,
    input_output_covariance,
    input_sample_variance,
    output_autocovariance,
    output_sample_variance,
    sample_variance_ratio,
    stationary_output_sample_variance,
    std_reduction,
    variance_ratio,
)
from gaba_control.theory.warmup import (
    WarmupJump,
    active_steps,
    ema_after_active_steps,
    first_active_step,
    settling_progress,
    steps_until_floor,
    warmup_jump,
    weights_after_active_steps,
)

__all__ = [
    "OutputBounds",
    "ProportionalLawIdentity",
    "WarmupJump",
    "active_steps",
    "bound_attainers",
    "cutoff_approximation_error",
    "cutoff_frequency",
    "cutoff_frequency_approx",
    "dc_gain",
    "degenerate_num_tasks",
    "ema_after_active_steps",
    "extreme_point_candidates",
    "finite_window_std_reduction",
    "first_active_step",
    "fraction_settled",
    "frequency_response",
    "half_life",
    "impulse_response",
    "input_output_covariance",
    "input_sample_variance",
    "is_degenerate",
    "magnitude_response",
    "nyquist_gain",
    "output_autocovariance",
    "output_bounds",
    "output_sample_variance",
    "phase_response",
    "proportional_law_identity",
    "raw_weight_attainers",
    "raw_weight_range",
    "reachable_output_bounds",
    "sample_variance_ratio",
    "search_output_extremes",
    "settling_progress",
    "settling_steps",
    "settling_time",
    "simplex_output_bounds",
    "stationary_output_sample_variance",
    "std_reduction",
    "step_response",
    "steps_until_floor",
    "time_constant",
    "variance_ratio",
    "warmup_jump",
    "weights_after_active_steps",
]
