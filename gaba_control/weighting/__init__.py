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
========== ================================================================

>>> method_names()
('gaba', 'equal', 'fixed', 'schedule', 'replay', 'prbs', 'multisine')
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

__all__ = [
    "DEFAULT_SCHEDULE_TRACE",
    "GABA",
    "PRBS",
    "Equal",
    "Fixed",
    "Multisine",
    "Option",
    "Replay",
    "Schedule",
    "SourcedGABALoss",
    "WeightingMethod",
    "check_options_belong",
    "excitation_weights",
    "fixed_weights",
    "get_method",
    "median_ratio",
    "method_names",
    "option_owners",
    "register",
    "replay_weights",
    "schedule_weights",
]
