"""Hostile files and states: every reader and loader answers with a named error, or loads.

Properties over arbitrary bytes, truncations and bit flips of valid files, and
random states: the only exceptions allowed are ``ValueError`` (and, for a
missing file, ``FileNotFoundError``), and a state that is refused leaves the
loading object as it was. The examples per property follow the hypothesis
profile (``ci``: 200; ``HYPOTHESIS_PROFILE=thorough``: 10,000).
"""

from __future__ import annotations

import gzip
import io
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.identify import Record, load_records, save_records
from gaba_control.cmapss.data import read_cmapss_file
from gaba_control.controller import GABAController
from gaba_control.nn import GABALoss
from gaba_control.trace import TraceRecorder, load_trace

QUICK = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_trace_bytes(tmp_path) -> bytes:
    recorder = TraceRecorder(2)
    for t in range(1, 6):
        recorder.record(step=t, epoch=0, grad_norms=[3.0, 1.0], shares=[0.75, 0.25],
                        raw=[0.25, 0.75], ema=[0.5, 0.5], weights=[0.5, 0.5],
                        applied_weights=[0.5, 0.5], losses=[1.0, 1.0], lr=1e-3, active=True,
                        valid=True)
    trace = recorder.to_trace(controller={"num_tasks": 2, "beta": 0.99, "warmup": 0,
                                          "lambda_min": 0.05}, method="gaba", subset="FD001",
                              seed=0, task_names=("rul", "health"), config={}, versions={})
    return trace.save(tmp_path / "valid.npz").read_bytes()


def _mangled(data: bytes, draw_cut, draw_flips) -> bytes:
    out = bytearray(data[:draw_cut])
    for position, value in draw_flips:
        if out:
            out[position % len(out)] = value
    return bytes(out)


mangling = st.tuples(st.integers(0, 10_000),
                     st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                              max_size=4))


@QUICK
@given(st.one_of(st.binary(max_size=2000), mangling))
def test_any_trace_file_loads_or_is_a_named_value_error(tmp_path, content):
    path = tmp_path / "t.npz"
    if isinstance(content, tuple):
        cut, flips = content
        content = _mangled(_valid_trace_bytes(tmp_path), cut, flips)
    path.write_bytes(content)
    try:
        trace = load_trace(path)
    except ValueError as error:
        assert "t.npz" in str(error)
    else:
        assert len(trace) >= 0 and trace.grad_norms.shape[-1] == trace.num_tasks


_ROW = " ".join(["1", "1"] + ["0.5"] * 24)


@QUICK
@given(st.lists(st.one_of(st.just(_ROW), st.text(max_size=80)), max_size=30),
       st.booleans(), st.integers(0, 5000))
def test_any_cmapss_file_reads_or_is_a_named_value_error(tmp_path, lines, gzipped, cut):
    text = "\n".join(lines).encode("utf-8", errors="replace")
    data = gzip.compress(text)[:cut] if gzipped and cut else (gzip.compress(text)
                                                              if gzipped else text)
    path = tmp_path / ("f.txt.gz" if gzipped else "f.txt")
    path.write_bytes(data)
    try:
        table = read_cmapss_file(path)
    except ValueError as error:
        assert path.name in str(error)
    else:
        assert table.shape[1] == 26 and np.all(np.isfinite(table))


@QUICK
@given(st.one_of(st.binary(max_size=2000), mangling))
def test_any_records_file_loads_or_is_a_named_value_error(tmp_path, content):
    path = tmp_path / "r.npz"
    if isinstance(content, tuple):
        cut, flips = content
        record = Record("main", "FD001", 0, "prbs", 0.05, 0.4, 0.05, np.full(10, 0.05),
                        np.full(10, 500.0), np.zeros(10, np.int64), {})
        content = _mangled(save_records([record], tmp_path / "ok.npz").read_bytes(), cut,
                           flips)
    path.write_bytes(content)
    try:
        records = load_records(path)
    except ValueError as error:
        assert "r.npz" in str(error)
    else:
        assert all(r.lam.shape == r.ratio.shape for r in records)


values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5))


@QUICK
@given(st.lists(values, min_size=2, max_size=2), st.lists(values, min_size=2, max_size=2),
       st.one_of(values, st.just(3)))
def test_any_controller_state_loads_or_is_refused_untouched(ema, weights, step):
    ctrl = GABAController(2)
    try:
        ctrl.load_state_dict({"step": step, "ema": np.array(ema, dtype=float),
                              "weights": np.array(weights, dtype=float), "config": ctrl.config})
    except (ValueError, TypeError, OverflowError):
        assert ctrl.gate.step == 0 and np.all(ctrl.iir.state == 0.5)
    else:  # accepted: the loop runs and stays on the simplex
        out = ctrl.step(np.array([3.0, 1.0])).weights
        assert np.all(np.isfinite(out)) and abs(out.sum() - 1) < 1e-9


@QUICK
@given(st.lists(values, min_size=2, max_size=2), st.lists(values, min_size=2, max_size=2),
       st.integers(-3, 10**6), st.lists(values, min_size=2, max_size=2))
def test_any_gaba_loss_state_loads_or_is_refused_untouched(ema, weights, step, norms):
    gaba = GABALoss(2, warmup=2)
    state = gaba.state_dict()
    before = {k: v.clone() for k, v in state.items()}
    state.update(ema=torch.tensor(ema, dtype=torch.float64),
                 last_weights=torch.tensor(weights, dtype=torch.float64),
                 step=torch.tensor(step), last_norms=torch.tensor(norms, dtype=torch.float64))
    try:
        gaba.load_state_dict(state)
    except ValueError:
        for k, v in gaba.state_dict().items():
            assert torch.allclose(v.double(), before[k].double(), rtol=0, atol=0,
                                  equal_nan=True), k
    else:
        out = gaba.update_from_norms([3.0, 1.0])
        assert torch.all(torch.isfinite(out)) and abs(float(out.sum()) - 1) < 1e-9
        assert int(gaba.step) == step + 1 >= 1


def test_a_truncated_checkpoint_is_named(tmp_path):
    buffer = io.BytesIO()
    torch.save({"model": {}}, buffer)
    (tmp_path / "checkpoint.pt").write_bytes(buffer.getvalue()[:20])
    from gaba_control.cmapss.train import TrainConfig, _load_checkpoint

    with pytest.raises(ValueError, match="not a readable training checkpoint"):
        _load_checkpoint(tmp_path / "checkpoint.pt", TrainConfig())
    assert math.isfinite(1.0)
