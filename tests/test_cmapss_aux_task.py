"""The third task: next-cycle sensor regression (targets, head, a three-task run, resume)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from test_cmapss_train import tiny_data

from gaba_control.cmapss.data import _windows_and_next
from gaba_control.cmapss.model import MultiTaskCNN
from gaba_control.cmapss.train import TrainConfig, task_names, train
from gaba_control.trace import load_trace


def _units(lengths, channels=3):
    rows = []
    for unit, n in enumerate(lengths, start=1):
        for cycle in range(1, n + 1):
            rows.append([unit, cycle])
    raw = np.array(rows, float)
    normalised = np.random.default_rng(0).normal(size=(len(rows), channels))
    return raw, normalised


def test_next_cycle_target_is_the_next_windows_last_column_within_a_unit():
    raw, normalised = _units([12, 7, 15])
    window = 5
    x, rul, nxt = _windows_and_next(raw, normalised, [1, 2, 3], window)
    assert nxt.shape == (x.shape[0], normalised.shape[1])
    unit_of = np.concatenate([np.full(max(n, window) - window + 1, u)
                              for u, n in zip([1, 2, 3], [12, 7, 15], strict=True)])
    for i in range(x.shape[0]):
        last = i + 1 == x.shape[0] or unit_of[i + 1] != unit_of[i]
        if last:  # the unit's failure cycle has no next cycle
            assert np.isnan(nxt[i]).all() and rul[i] == 0
        else:
            np.testing.assert_array_equal(nxt[i], x[i + 1][:, -1])


def test_short_unit_is_padded_and_its_targets_stay_aligned():
    raw, normalised = _units([3], channels=2)
    x, rul, nxt = _windows_and_next(raw, normalised, [1], 5)
    assert x.shape == (1, 2, 5) and np.isnan(nxt).all() and rul.tolist() == [0]


def test_model_has_a_third_head_only_when_asked():
    x = torch.zeros(4, 6, 10)
    assert len(MultiTaskCNN(6, 10)(x)) == 2
    *_, nxt = MultiTaskCNN(6, 10, next_cycle=True)(x)
    assert nxt.shape == (4, 6)
    with pytest.raises(TypeError, match="next_cycle"):
        MultiTaskCNN(6, 10, next_cycle=1)


def _aux_data():
    data = tiny_data()
    nxt = torch.randn(data.x_train.shape[0], data.x_train.shape[1],
                      generator=torch.Generator().manual_seed(1))
    nxt[::7] = float("nan")  # unit ends
    return dataclasses.replace(data, next_train=nxt, next_val=nxt[:32])


def _config(tmp_path, name, **kw):
    return TrainConfig(method=kw.pop("method", "gaba"), epochs=3, batch_size=16,
                       out=str(tmp_path / name), progress=False, threads=1, warmup=3,
                       aux_task="next_cycle", **kw)


@pytest.mark.parametrize("method", ["gaba", "gaba_integral", "equal"])
def test_three_task_run_records_three_tasks(tmp_path, method):
    metrics = train(_config(tmp_path, method, method=method), data=_aux_data())
    trace = load_trace(tmp_path / method / "trace.npz")
    assert trace.task_names == ("rul", "health", "next_cycle")
    assert trace.grad_norms.shape[1] == 3 and np.isfinite(trace.grad_norms).all()
    assert np.allclose(trace.applied_weights.sum(axis=1), 1.0) or method != "gaba"
    assert metrics["status"] == "ok"


def test_three_task_run_resumes_bit_identically(tmp_path, monkeypatch):
    from gaba_control.cmapss import train as train_module

    reference = train(_config(tmp_path, "whole"), data=_aux_data())
    real = train_module._step_losses
    calls = {"n": 0}
    steps_per_epoch = reference["num_steps"] // 3

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "_step_losses", dies)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path, "cut"), data=_aux_data())
    monkeypatch.setattr(train_module, "_step_losses", real)
    resumed = train(_config(tmp_path, "cut", resume=True), data=_aux_data())
    a, b = load_trace(tmp_path / "whole" / "trace.npz"), load_trace(tmp_path / "cut" / "trace.npz")
    for name in ("grad_norms", "weights", "losses", "applied_weights"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert resumed["test_rmse"] == reference["test_rmse"]


def test_unknown_aux_task_and_missing_targets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="aux_task"):
        train(dataclasses.replace(_config(tmp_path, "x"), aux_task="jigsaw"), data=_aux_data())
    with pytest.raises(ValueError, match="next-cycle targets"):
        train(_config(tmp_path, "y"), data=tiny_data())
    assert task_names(TrainConfig()) == ("rul", "health")
