"""Trace recorder, versioned file, loading errors and replay through the numpy controller."""

import json

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from gaba_control.controller import GABAController
from gaba_control.nn import GABALoss
from gaba_control.trace import (
    ARRAY_FIELDS,
    TRACE_VERSION,
    TraceRecorder,
    load_trace,
    replay_trace,
    save_trace,
)

CONFIG = {"num_tasks": 2, "beta": 0.9, "warmup": 5, "lambda_min": 0.05}


def norms(steps=60, num_tasks=2, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.lognormal(sigma=1.0, size=(steps, num_tasks))
    g[:, 0] *= 300.0  # one loud task, as RUL on C-MAPSS
    g[17::40] = np.nan  # invalid measurements
    g[23::40] = 0.0  # all-zero: invalid too
    return g


def recorded_from_controller(g, config=CONFIG):
    ctrl = GABAController(
        config["num_tasks"],
        beta=config["beta"],
        warmup=config["warmup"],
        lambda_min=config["lambda_min"],
    )
    rec = TraceRecorder(config["num_tasks"])
    for t, row in enumerate(g):
        out = ctrl.step(row)
        rec.record(
            step=out.step,
            epoch=t // 20,
            grad_norms=row,
            shares=out.shares,
            raw=out.raw,
            ema=out.ema,
            weights=out.weights,
            applied_weights=out.weights,
            losses=np.ones(config["num_tasks"]),
            lr=1e-3,
            active=out.active,
            valid=out.valid,
        )
    return rec.to_trace(
        controller=config,
        method="gaba",
        subset="FD001",
        seed=7,
        task_names=("rul", "health"),
        config={"lr": 1e-3},
    )


def test_round_trip(tmp_path):
    trace = recorded_from_controller(norms())
    path = save_trace(trace, tmp_path / "sub" / "trace.npz")
    loaded = load_trace(path)
    for name in ARRAY_FIELDS:
        assert_array_equal(getattr(loaded, name), getattr(trace, name))
        assert getattr(loaded, name).dtype == getattr(trace, name).dtype
    assert loaded.metadata() == trace.metadata()
    assert loaded.format_version == TRACE_VERSION
    assert set(loaded.versions) == {"python", "numpy", "torch", "gaba_control"}
    assert [p.name for p in path.parent.iterdir()] == ["trace.npz"]  # no temporary left


def test_file_loads_without_pickle(tmp_path):
    path = save_trace(recorded_from_controller(norms(10)), tmp_path / "t.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert json.loads(str(archive["metadata"]))["format_version"] == TRACE_VERSION


def _rewrite(path, target, edit_metadata=None, drop=None):
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files if k != drop}
    if edit_metadata is not None:
        metadata = json.loads(str(arrays["metadata"]))
        edit_metadata(metadata)
        arrays["metadata"] = np.array(json.dumps(metadata))
    np.savez(target, **arrays)
    return target


def test_unknown_version_is_refused(tmp_path):
    path = save_trace(recorded_from_controller(norms(10)), tmp_path / "t.npz")
    bad = _rewrite(path, tmp_path / "v99.npz", lambda m: m.update(format_version=99))
    with pytest.raises(ValueError, match="unknown trace format version 99"):
        load_trace(bad)


@pytest.mark.parametrize("field", ["grad_norms", "weights", "valid"])
def test_missing_array_field_is_named(tmp_path, field):
    path = save_trace(recorded_from_controller(norms(10)), tmp_path / "t.npz")
    bad = _rewrite(path, tmp_path / "bad.npz", drop=field)
    with pytest.raises(ValueError, match=f"missing array field.*{field}"):
        load_trace(bad)


def test_missing_metadata_and_not_a_trace(tmp_path):
    path = save_trace(recorded_from_controller(norms(10)), tmp_path / "t.npz")
    bad = _rewrite(path, tmp_path / "bad.npz", lambda m: m.pop("seed"))
    with pytest.raises(ValueError, match=r"metadata is missing field.*seed"):
        load_trace(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a gaba_control trace"):
        load_trace(other)
    with pytest.raises(FileNotFoundError, match=r"nothing\.npz"):
        load_trace(tmp_path / "nothing.npz")


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99, 0.999])
@pytest.mark.parametrize("num_tasks", [2, 3, 5, 8])
def test_replay_reproduces_controller_trace(tmp_path, beta, num_tasks):
    config = {"num_tasks": num_tasks, "beta": beta, "warmup": 5, "lambda_min": 0.01}
    trace = recorded_from_controller(norms(60, num_tasks, seed=num_tasks), config)
    loaded = load_trace(save_trace(trace, tmp_path / "t.npz"))
    assert_allclose(replay_trace(loaded), trace.weights, rtol=0, atol=1e-12)


def test_replay_reproduces_torch_gaba_loss_float32():
    # GABALoss runs the loop in float32; the numpy replay in float64 from the same norms.
    g = norms(400)
    gaba = GABALoss(2, beta=0.99, warmup=20, lambda_min=0.05)
    rec = TraceRecorder(2)
    for row in g:
        gaba.update_from_norms(row)
        t = gaba.telemetry()
        rec.record(
            step=t["step"],
            epoch=0,
            grad_norms=t["norms"],
            shares=t["shares"],
            raw=t["raw"],
            ema=t["ema"],
            weights=t["weights"],
            applied_weights=t["weights"],
            losses=[1.0, 1.0],
            lr=0.0,
            active=t["active"],
            valid=t["valid"],
        )
    trace = rec.to_trace(
        controller={"num_tasks": 2, "beta": 0.99, "warmup": 20, "lambda_min": 0.05}, method="gaba"
    )
    assert trace.active.sum() == 380 and not trace.valid[17]
    assert_allclose(replay_trace(trace), trace.weights, rtol=0, atol=1e-6)
    assert np.abs(trace.weights - 0.5).max() > 0.1  # the loop actually moved


def test_replay_needs_trace_from_step_one():
    trace = recorded_from_controller(norms(10))
    shifted = type(trace)(**{**trace.__dict__, "step": trace.step + 3})
    with pytest.raises(ValueError, match="starts at step 4"):
        replay_trace(shifted)


def test_recorder_checks_fields():
    rec = TraceRecorder(2)
    row = dict(
        step=1,
        epoch=0,
        grad_norms=[1.0, 2.0],
        shares=[0.3, 0.7],
        raw=[0.7, 0.3],
        ema=[0.5, 0.5],
        weights=[0.5, 0.5],
        applied_weights=[0.5, 0.5],
        losses=[1.0, 1.0],
        lr=0.1,
        active=False,
        valid=True,
    )
    with pytest.raises(ValueError, match=r"missing field.*shares"):
        rec.record(**{k: v for k, v in row.items() if k != "shares"})
    with pytest.raises(ValueError, match="grad_norms must have shape"):
        rec.record(**{**row, "grad_norms": [1.0, 2.0, 3.0]})
    with pytest.raises(TypeError, match="unexpected keyword"):
        rec.record(**row, extra=1)
    rec.record(**{**row, "grad_norms": torch.tensor([1.0, 2.0])})
    assert len(rec) == 1
    empty = TraceRecorder(3).arrays()
    assert empty["grad_norms"].shape == (0, 3) and empty["step"].dtype == np.int64


def test_recorder_spans_blocks():
    rec = TraceRecorder(3, chunk=4)
    g = norms(11, 3)
    for t, row in enumerate(g, start=1):
        rec.record(
            step=t,
            epoch=0,
            grad_norms=row,
            shares=row,
            raw=row,
            ema=row,
            weights=row,
            applied_weights=row,
            losses=row,
            lr=t * 0.1,
            active=t > 2,
            valid=True,
        )
    arrays = rec.arrays()
    assert len(rec) == 11
    assert_array_equal(arrays["grad_norms"], g)
    assert arrays["step"].tolist() == list(range(1, 12))
    assert arrays["active"].tolist() == [False, False] + [True] * 9


def test_truncated_and_empty_traces_name_the_file(tmp_path):
    trace = _tiny_trace_for_corruption()
    path = trace.save(tmp_path / "t.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.npz").write_bytes(b"")
    for name in ("cut.npz", "empty.npz"):
        with pytest.raises(ValueError, match=rf"{name}: not a readable gaba_control trace"):
            load_trace(tmp_path / name)


def _tiny_trace_for_corruption():
    recorder = TraceRecorder(2)
    for t in range(1, 4):
        recorder.record(step=t, epoch=0, grad_norms=[2.0, 1.0], shares=[2 / 3, 1 / 3],
                        raw=[1 / 3, 2 / 3], ema=[0.5, 0.5], weights=[0.5, 0.5],
                        applied_weights=[0.5, 0.5], losses=[1.0, 1.0], lr=1e-3, active=True,
                        valid=True)
    return recorder.to_trace(controller={"num_tasks": 2, "beta": 0.99, "warmup": 0,
                                         "lambda_min": 0.05}, method="gaba", subset="FD001",
                             seed=0, task_names=("rul", "health"), config={}, versions={})


def test_an_empty_trace_saves_loads_and_replays(tmp_path):
    recorder = TraceRecorder(2)
    trace = recorder.to_trace(controller={"num_tasks": 2, "beta": 0.99, "warmup": 100,
                                          "lambda_min": 0.05}, method="gaba", subset="FD001",
                              seed=0, task_names=("rul", "health"), config={}, versions={})
    loaded = load_trace(trace.save(tmp_path / "empty.npz"))
    assert len(loaded) == 0
    assert replay_trace(loaded).shape == (0, 2)
