"""RMSE, PHM08 score, accuracy and macro-F1 against hand-computed values."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from gaba_control.cmapss.metrics import (
    confusion_matrix,
    health_accuracy,
    macro_f1,
    phm08_score,
    rmse,
)


def test_rmse_hand_value():
    # errors 1, -2, 2 -> mean square 3
    assert_allclose(rmse([1.0, 0.0, 5.0], [0.0, 2.0, 3.0]), math.sqrt(3.0), rtol=1e-15)


def test_rmse_accepts_tensors():
    assert_allclose(rmse(torch.tensor([1.0, 2.0]), np.array([1.0, 4.0])), math.sqrt(2.0), rtol=1e-7)


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (-13.0, math.e - 1),  # early by 13 cycles: exp(13/13) - 1
        (-26.0, math.exp(2) - 1),
        (10.0, math.e - 1),  # late by 10 cycles: exp(10/10) - 1
        (20.0, math.exp(2) - 1),
        (0.0, 0.0),
    ],
)
def test_phm08_single_terms(d, expected):
    assert_allclose(phm08_score([50.0 + d], [50.0]), expected, rtol=1e-12, atol=1e-15)


def test_phm08_is_asymmetric_and_sums():
    late, early = phm08_score([10.0], [0.0]), phm08_score([0.0], [10.0])
    assert late > early  # late predictions are penalised more
    assert_allclose(phm08_score([10.0, 0.0], [0.0, 10.0]), late + early, rtol=1e-15)


# errors below ~1e-300 underflow exp(d/10) - 1 to 0: keep them out of the "zero only if exact" claim
@given(
    st.lists(
        st.floats(-100, 100).filter(lambda x: x == 0 or abs(x) > 1e-12), min_size=1, max_size=20
    )
)
def test_phm08_nonnegative_and_zero_only_when_exact(d):
    d = np.array(d)
    score = phm08_score(d, np.zeros_like(d))
    assert score >= 0
    assert (score == 0) == bool(np.all(d == 0))


def test_accuracy_and_confusion():
    pred, true = [0, 0, 1, 2, 2, 1], [0, 1, 1, 2, 0, 1]
    assert_allclose(health_accuracy(pred, true), 4 / 6, rtol=1e-15)
    assert confusion_matrix(pred, true).tolist() == [[1, 0, 1], [1, 2, 0], [0, 0, 1]]


def test_macro_f1_hand_value():
    # class 0: TP 1, FP 1, FN 1 -> 1/2; class 1: TP 2, FP 0, FN 1 -> 4/5; class 2: TP 1, FP 1 -> 2/3
    pred, true = [0, 0, 1, 2, 2, 1], [0, 1, 1, 2, 0, 1]
    assert_allclose(macro_f1(pred, true), (1 / 2 + 4 / 5 + 2 / 3) / 3, rtol=1e-15)


def test_macro_f1_perfect_and_missing_class():
    assert macro_f1([0, 1, 2], [0, 1, 2]) == 1.0
    # class 2 absent from both: left out of the mean
    assert macro_f1([0, 1], [0, 1]) == 1.0
    # class 1 present but never predicted: F1 = 0 counts
    assert_allclose(macro_f1([0, 0], [0, 1]), (2 / 3 + 0.0) / 2, rtol=1e-15)


def test_errors():
    with pytest.raises(ValueError, match="same length"):
        rmse([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="empty"):
        phm08_score([], [])
    with pytest.raises(ValueError, match="labels must lie"):
        macro_f1([0, 3], [0, 1])
