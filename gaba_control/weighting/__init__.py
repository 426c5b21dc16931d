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
========== ================================================================

The closed-loop methods besides GABA are :class:`Law` objects (one module
each, written once for numpy and torch) run by :class:`LawLoss`.

>>> method_names()  # doctest: +NORMALIZE_WHITESPACE
('gaba', 'equal', 'fixed', 'schedule', 'replay', 'prbs', 'multisine', 'gradnorm',
 'gradnorm_softmax', 'uncertainty', 'dwa', 'famo', 'upgrad', 'mgda')
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

__all__ = [
    "DEFAULT_SCHEDULE_TRACE",
    "DWA",
    "FAMO",
    "GABA",
    "MGDA",
    "PRBS",
    "DWALaw",
    "Equal",
    "FAMOLaw",
    "Fixed",
    "GradNorm",
    "GradNormLaw",
    "GradNormSoftmax",
    "GramianLaw",
    "Law",
    "LawLoss",
    "LawMethod",
    "LawSimulator",
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
    "law_weights",
    "median_ratio",
    "method_names",
    "option_owners",
    "register",
    "replay_weights",
    "schedule_weights",
    "shared_gramian",
    "torchjd_weighting",
]
