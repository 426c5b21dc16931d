"""NASA C-MAPSS turbofan data, a multi-task 1D-CNN, RUL/health metrics and training.

The package turns the run-to-failure records into windows, targets and health
labels (:mod:`~gaba_control.cmapss.data`), defines the two-head network
(:mod:`~gaba_control.cmapss.model`), scores it (:mod:`~gaba_control.cmapss.metrics`)
and trains it with GABA or equal weights (:mod:`~gaba_control.cmapss.train`),
recording the loop's signals for :mod:`gaba_control.trace`.
"""

from gaba_control.cmapss.data import (
    SUBSETS,
    CMAPSSData,
    default_data_dir,
    load_subset,
    read_cmapss_file,
)
from gaba_control.cmapss.metrics import health_accuracy, macro_f1, phm08_score, rmse
from gaba_control.cmapss.model import MultiTaskCNN

__all__ = [
    "SUBSETS",
    "CMAPSSData",
    "MultiTaskCNN",
    "default_data_dir",
    "health_accuracy",
    "load_subset",
    "macro_f1",
    "phm08_score",
    "read_cmapss_file",
    "rmse",
]
