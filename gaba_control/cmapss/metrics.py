r"""Scores for the two C-MAPSS tasks: RUL error (RMSE, PHM08 score) and health states.

All functions take array-likes (numpy arrays, torch tensors, lists), compute in
float64 with numpy and return Python floats. No scikit-learn.
"""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix", "health_accuracy", "macro_f1", "phm08_score", "rmse"]


def _as_array(values, dtype=np.float64) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype).reshape(-1)


def _paired(predicted, true, dtype=np.float64):
    predicted, true = _as_array(predicted, dtype), _as_array(true, dtype)
    if predicted.shape != true.shape:
        raise ValueError(
            f"predicted and true must have the same length, got {predicted.size} and {true.size}"
        )
    if predicted.size == 0:
        raise ValueError("predicted and true must not be empty")
    return predicted, true


def rmse(predicted, true) -> float:
    r"""Root-mean-square error :math:`\sqrt{\tfrac1N Σ (\hat y − y)^2}`.

    Examples
    --------
    >>> rmse([3.0, 0.0], [0.0, 4.0])   # sqrt((9 + 16) / 2)
    3.5355339059327378
    """
    predicted, true = _paired(predicted, true)
    return float(np.sqrt(np.mean((predicted - true) ** 2)))


def phm08_score(predicted, true) -> float:
    r"""PHM08 challenge score: asymmetric, late predictions cost more.

    With :math:`d = \hat y − y` (predicted minus true RUL),

    .. math::
        s = Σ_i \begin{cases} e^{−d_i/13} − 1 & d_i < 0 \\ e^{d_i/10} − 1 & d_i ≥ 0 \end{cases}

    Lower is better; a perfect prediction scores 0. An error beyond about
    7,100 cycles (``e^{d/10}`` past the float64 range) scores ``inf``, without
    an overflow warning: the exponential score of a diverged model is unbounded.

    Examples
    --------
    >>> round(phm08_score([10.0], [0.0]), 6)    # late by 10: e − 1
    1.718282
    >>> round(phm08_score([0.0], [13.0]), 6)    # early by 13: e − 1
    1.718282
    >>> phm08_score([5.0, 7.0], [5.0, 7.0])
    0.0
    >>> phm08_score([1e5], [0.0])
    inf
    """
    predicted, true = _paired(predicted, true)
    d = predicted - true
    with np.errstate(over="ignore"):  # inf is the score's value there (see above)
        terms = np.where(
            d < 0, np.expm1(-np.minimum(d, 0.0) / 13.0), np.expm1(np.maximum(d, 0.0) / 10.0)
        )
        return float(np.sum(terms))


def confusion_matrix(predicted, true, num_classes: int = 3) -> np.ndarray:
    """Counts ``C[t, p]`` of true class ``t`` predicted as ``p``.

    Examples
    --------
    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2]).tolist()
    [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    """
    predicted, true = _paired(predicted, true, dtype=np.int64)
    for name, labels in (("predicted", predicted), ("true", true)):
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(
                f"{name} labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}"
            )
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def health_accuracy(predicted, true) -> float:
    """Share of correctly classified health states.

    Examples
    --------
    >>> health_accuracy([0, 1, 1, 2], [0, 1, 2, 2])
    0.75
    """
    predicted, true = _paired(predicted, true, dtype=np.int64)
    return float(np.mean(predicted == true))


def macro_f1(predicted, true, num_classes: int = 3) -> float:
    r"""Unweighted mean of the per-class F1 scores :math:`2PR/(P+R)`.

    A class with no true and no predicted samples is left out of the mean; a
    class with samples but no correct prediction contributes F1 = 0.

    Examples
    --------
    Class 0: P = R = 1 (F1 1); class 1: P = 1/2, R = 1 (F1 2/3); class 2:
    P = 1, R = 1/2 (F1 2/3); mean 7/9.

    >>> round(macro_f1([0, 1, 1, 2], [0, 1, 2, 2]), 6)
    0.777778
    """
    matrix = confusion_matrix(predicted, true, num_classes)
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    present = (support + predicted_count) > 0
    denominator = support + predicted_count  # 2TP + FP + FN
    f1 = np.divide(2.0 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float(np.mean(f1[present]))
