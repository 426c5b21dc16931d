"""Weighting methods, one small module each, behind one registry.

Every method implements :class:`WeightingMethod`: what it measures, its
options, a numpy twin (the applied trajectory of an open-loop method, the
:class:`~gaba_control.controller.GABAController` of GABA) and the torch module
the training loop calls. ``gaba-control train --method NAME`` and ``compare``
look methods up with :func:`get_method`; a new method is one new module that
registers itself.

========== ================================================================
gaba       the closed loop
equal      ``1/K``
fixed      constant weights (default GABA's saturated output)
schedule   GABA's pipeline on a constant reading (open loop)
replay     another run's ``λ*`` (open loop)
prbs       operating point + PRBS (plant identification)
multisine  operating point + multisine (plant identification)
gradnorm   GradNorm, the paper's raw weights (Chen et al. 2018)
gradnorm_softmax  GradNorm with ``w = K·softmax(θ)`` (positive)
uncertainty  uncertainty weighting (Kendall et al. 2018)
dwa        dynamic weight average (Liu et al. 2019)
famo       FAMO (Liu et al. 2023)
upgrad     UPGrad through torchjd (Quinton & Rey 2024)
mgda       MGDA through torchjd (Désidéri 2012)
gaba_antiwindup  GABA, floor clamping the EMA state (anti-windup)
gaba_inverse     GABA, inverse-norm law ``λ ∝ 1/g``
gaba_integral    GABA, integral action on the log weighted-share error
gaba_log_ema     GABA, EMA in the log domain
gaba_relative_floor  GABA, floor ``ρ/K``
========== ================================================================

The ``gaba_*`` variants are GABA's loop with one block swapped (:class:`LoopLaw`,
one module each). The closed-loop methods besides GABA are :class:`Law` objects (one module
each, written once for numpy and torch) run by :class:`LawLoss`.

>>> method_names()  # doctest: +NORMALIZE_WHITESPACE
('gaba', 'equal', 'fixed', 'schedule', 'replay', 'prbs', 'multisine', 'gradnorm',
 'gradnorm_softmax', 'uncertainty', 'dwa', 'famo', 'upgrad', 'mgda', 'gaba_antiwindup',
 'gaba_inverse', 'gaba_integral', 'gaba_log_ema', 'gaba_relative_floor')
>>> controller = {"num_tasks": 2, "beta": 0.99, "warmup": 100, "lambda_min": 0.05}
>>> get_method("fixed")(controller, weights=[1, 3]).trajectory(2).tolist()
[[0.25, 0.75], [0.25, 0.75]]
"""

# registration order is the order of --method choices, so the imports are not sorted
from ._base import (  # noqa: I001
    Option,
    SourcedGABALoss,
    WeightingMethod,
    check_options_belong,
    get_method,
    method_names,
    option_owners,
    register,
)
from ._gaba import GABA
from ._equal import Equal
from ._fixed import Fixed, fixed_weights
from ._schedule import DEFAULT_SCHEDULE_TRACE, Schedule, median_ratio, schedule_weights
from ._replay import Replay, replay_weights
from ._excitation import PRBS, Multisine, excitation_weights
from ._law import (
    Law,
    LawLoss,
    LawMethod,
    LawSimulator,
    Measurement,
    adam_update,
    law_weights,
    shared_gramian,
)
from ._gradnorm import GradNorm, GradNormLaw, GradNormSoftmax, gradnorm_weight_gradient
from ._uncertainty import UncertaintyLaw, UncertaintyWeighting
from ._dwa import DWA, DWALaw
from ._famo import FAMO, FAMOLaw, famo_weights
from ._aggregators import MGDA, GramianLaw, UPGrad, torchjd_weighting
from ._loop_law import LoopLaw, LoopVariant
from ._gaba_antiwindup import AntiWindupLaw, GABAAntiWindup, recovery_steps
from ._gaba_inverse import GABAInverse, InverseNormLaw, inverse_norm_weights, plaw_weighted_shares
from ._gaba_integral import GABAIntegral, IntegralLaw
from ._gaba_log_ema import GABALogEMA, LogEMALaw
from ._gaba_relative_floor import GABARelativeFloor

__all__ = [
    "DEFAULT_SCHEDULE_TRACE",
    "DWA",
    "FAMO",
    "GABA",
    "MGDA",
    "PRBS",
    "AntiWindupLaw",
    "DWALaw",
    "Equal",
    "FAMOLaw",
    "Fixed",
    "GABAAntiWindup",
    "GABAIntegral",
    "GABAInverse",
    "GABALogEMA",
    "GABARelativeFloor",
    "GradNorm",
    "GradNormLaw",
    "GradNormSoftmax",
    "GramianLaw",
    "IntegralLaw",
    "InverseNormLaw",
    "Law",
    "LawLoss",
    "LawMethod",
    "LawSimulator",
    "LogEMALaw",
    "LoopLaw",
    "LoopVariant",
    "Measurement",
    "Multisine",
    "Option",
    "Replay",
    "Schedule",
    "SourcedGABALoss",
    "UPGrad",
    "UncertaintyLaw",
    "UncertaintyWeighting",
    "WeightingMethod",
    "adam_update",
    "check_options_belong",
    "excitation_weights",
    "famo_weights",
    "fixed_weights",
    "get_method",
    "gradnorm_weight_gradient",
    "inverse_norm_weights",
    "law_weights",
    "median_ratio",
    "method_names",
    "option_owners",
    "plaw_weighted_shares",
    "recovery_steps",
    "register",
    "replay_weights",
    "schedule_weights",
    "shared_gramian",
    "torchjd_weighting",
]
