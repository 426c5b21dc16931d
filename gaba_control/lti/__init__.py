"""python-control and scipy.signal models of the GABA loop.

* :mod:`~gaba_control.lti.iir` — the EMA as a first-order IIR filter
  (``control``, ``scipy.signal.dlti``, ``lfilter`` coefficients, diagonal
  ``K``-channel state space) and its frequency and step responses.
* :mod:`~gaba_control.lti.loop` — the whole loop as named python-control
  blocks joined by :func:`control.interconnect`, and its simulation.
* :mod:`~gaba_control.lti.small_signal` — the loop linearised around an
  operating point, as a python-control state-space model.
* :mod:`~gaba_control.lti.decimated` — the loop refreshed every ``N`` steps.
* :mod:`~gaba_control.lti.methods` — every weighting method's law as a
  small-signal model, in one frame with GABA's.
"""

from .decimated import (
    DecimatedResponse,
    decimated_noise_gain,
    decimated_time_constant,
    decimated_transfer_function,
    refresh_steps,
    simulate_decimated,
    simulate_decimated_control,
)
from .iir import (
    EmaFrequencyResponse,
    EmaStepResponse,
    ema_dlti,
    ema_filter,
    ema_frequency_response,
    ema_lfilter_coefficients,
    ema_state_space,
    ema_step_response,
    ema_transfer_function,
    signal_names,
)
from .loop import (
    LoopResponse,
    gaba_loop,
    loop_blocks,
    loop_initial_state,
    simulate_loop,
)
from .small_signal import SmallSignalResponse, small_signal_loop, small_signal_response

__all__ = [
    "DecimatedResponse",
    "EmaFrequencyResponse",
    "EmaStepResponse",
    "LoopResponse",
    "SmallSignalResponse",
    "decimated_noise_gain",
    "decimated_time_constant",
    "decimated_transfer_function",
    "ema_dlti",
    "ema_filter",
    "ema_frequency_response",
    "ema_lfilter_coefficients",
    "ema_state_space",
    "ema_step_response",
    "ema_transfer_function",
    "gaba_loop",
    "loop_blocks",
    "loop_initial_state",
    "refresh_steps",
    "signal_names",
    "simulate_decimated",
    "simulate_decimated_control",
    "simulate_loop",
    "small_signal_loop",
    "small_signal_response",
]
