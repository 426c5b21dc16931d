"""Training internals without the real data: weight sources, delivered gradients, divergence."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from gaba_control.cmapss.data import CMAPSSData
from gaba_control.cmapss.model import MultiTaskCNN
from gaba_control.cmapss.train import (
    TrainConfig,
    make_weighting,
    train,
)
from gaba_control.nn import GABALoss
from gaba_control.trace import load_trace, replay_trace
from gaba_control.weighting import SourcedGABALoss


def tiny_data(n=96, channels=4, window=10, seed=0) -> CMAPSSData:
    gen = torch.Generator().manual_seed(seed)
    rul = torch.randint(0, 126, (n,), generator=gen).float()
    health = torch.where(rul < 30, 2, torch.where(rul < 100, 1, 0))
    x = torch.randn(n, channels, window, generator=gen) + rul[:, None, None] / 60
    return CMAPSSData(
        subset="FD001",
        x_train=x,
        rul_train=rul,
        health_train=health,
        x_val=x[:32],
        rul_val=rul[:32],
        health_val=health[:32],
        x_test=x[:16],
        rul_test=rul[:16],
        health_test=health[:16],
        rul_test_uncapped=rul[:16],
        channels=tuple(f"s{i}" for i in range(channels)),
        dropped_channels=(),
        conditions=np.zeros((1, 3)),
        mean=np.zeros((1, channels)),
        std=np.ones((1, channels)),
        train_units=np.arange(1, 5),
        val_units=np.arange(5, 6),
        padded_test_units=(),
    )


def _losses(model, data):
    rul, logits = model(data.x_train[:32])
    return [
        torch.nn.functional.mse_loss(rul, data.rul_train[:32]),
        torch.nn.functional.cross_entropy(logits, data.health_train[:32]),
    ]


def test_equal_delivers_the_equal_weight_gradient():
    data = tiny_data()
    torch.manual_seed(0)
    model = MultiTaskCNN(4, 10)
    weighting = make_weighting("equal", warmup=0)
    weighting(_losses(model, data), model.parameters(), model.backbone.parameters()).backward()
    delivered = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    losses = _losses(model, data)
    (0.5 * losses[0] + 0.5 * losses[1]).backward()
    for got, want in zip(delivered, (p.grad for p in model.parameters()), strict=True):
        assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6 * want.abs().max().item())
    assert_allclose(weighting.last_applied.numpy(), [0.5, 0.5], rtol=0, atol=0)


def test_equal_runs_the_gaba_loop_alongside():
    # same model, same batches: the shadow telemetry equals plain GABA's on the first step,
    # and over steps the sourced loop is the GABA loop fed with the measured norms.
    data = tiny_data()
    torch.manual_seed(0)
    model = MultiTaskCNN(4, 10)
    sourced = SourcedGABALoss(2, source=lambda step, w: torch.tensor([0.5, 0.5]), warmup=1)
    plain = GABALoss(2, warmup=1)
    for _ in range(3):
        sourced(_losses(model, data), model.parameters(), model.backbone.parameters())
        plain.update_from_norms(sourced.last_step.norms)
        assert_allclose(sourced.telemetry()["weights"], plain.telemetry()["weights"], rtol=1e-6)
    assert abs(sourced.telemetry()["weights"][0] - 0.5) > 1e-3  # GABA moved, training did not


def test_make_weighting_methods():
    assert type(make_weighting("gaba")) is GABALoss
    assert isinstance(make_weighting("equal"), SourcedGABALoss)
    fixed = make_weighting("fixed", weights=[1, 3])
    assert_allclose(fixed.source(1, torch.zeros(2)).numpy(), [0.25, 0.75], rtol=0, atol=0)
    with pytest.raises(TypeError, match="takes no option"):
        make_weighting("gaba", weights=[1, 3])
    with pytest.raises(ValueError, match="method must be one of"):
        make_weighting("no_such_method")


def test_train_on_tiny_data_writes_outputs_and_replays(tmp_path):
    config = TrainConfig(
        method="gaba",
        epochs=2,
        batch_size=16,
        warmup=3,
        beta=0.9,
        out=str(tmp_path),
        progress=False,
        threads=1,
    )
    metrics = train(config, data=tiny_data())
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint.pt", "metrics.json", "trace.npz"}
    assert metrics["num_steps"] == 12 and not metrics["diverged"]
    assert np.isfinite(metrics["test_rmse"]) and 0 <= metrics["test_macro_f1"] <= 1
    trace = load_trace(tmp_path / "trace.npz")
    assert trace.step.tolist() == list(range(1, 13)) and trace.epoch.tolist() == [0] * 6 + [1] * 6
    assert trace.controller == {"num_tasks": 2, "beta": 0.9, "warmup": 3, "lambda_min": 0.05}
    assert_allclose(replay_trace(trace), trace.weights, rtol=0, atol=1e-6)
    assert_allclose(trace.applied_weights, trace.weights, rtol=0, atol=0)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and checkpoint["step"] == 12
    assert int(checkpoint["gaba"]["step"]) == 12


def test_training_is_deterministic(tmp_path):
    runs = []
    for name in ("a", "b"):
        config = TrainConfig(
            method="equal",
            epochs=1,
            batch_size=16,
            warmup=2,
            out=str(tmp_path / name),
            progress=False,
            threads=1,
            seed=4,
        )
        train(config, data=tiny_data())
        runs.append(load_trace(tmp_path / name / "trace.npz"))
    np.testing.assert_array_equal(runs[0].grad_norms, runs[1].grad_norms)
    np.testing.assert_array_equal(runs[0].losses, runs[1].losses)


def test_non_finite_loss_stops_and_is_recorded(tmp_path):
    data = tiny_data()
    bad = replace(data, x_train=data.x_train.clone().index_fill_(0, torch.arange(96), float("nan")))
    config = TrainConfig(epochs=2, batch_size=16, out=str(tmp_path), progress=False, threads=1)
    metrics = train(config, data=bad)
    assert metrics["diverged"] and metrics["divergence"]["step"] == 1
    assert metrics["divergence"]["losses"] == ["nan", "nan"]
    assert metrics["test_rmse"] is None
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["diverged"] is True and saved["test_rmse"] is None
    trace = load_trace(tmp_path / "trace.npz")
    assert len(trace) == 1 and not np.isfinite(trace.losses[0]).any()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "lr"),
        ({"rul_scale": 0.0}, "rul_scale"),
        ({"method": "pcgrad"}, "method"),
        ({"max_batches": 0}, "max_batches"),
    ],
)
def test_bad_config_raises_before_work(tmp_path, change, message):
    config = TrainConfig(out=str(tmp_path / "never"), progress=False, **change)
    with pytest.raises(ValueError, match=message):
        train(config, data=tiny_data())
    assert not (tmp_path / "never").exists()


def _resume_config(tmp_path, name, method="gaba", **kw):
    return TrainConfig(method=method, epochs=3, batch_size=16, out=str(tmp_path / name),
                       progress=False, threads=1, warmup=3, **kw)


@pytest.mark.parametrize("method", ["gaba", "gradnorm", "uncertainty", "dwa", "famo", "upgrad"])
def test_an_interrupted_run_resumes_bit_identically(tmp_path, monkeypatch, method):
    from gaba_control.cmapss import train as train_module

    reference = train(_resume_config(tmp_path, "whole", method), data=tiny_data())
    real = train_module._step_losses
    calls = {"n": 0}
    per_step = 2 if method == "famo" else 1  # FAMO reads the batch again after the step

    def dies_mid_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == per_step * (steps_per_epoch + 2) + 1:  # the third step of epoch two
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    steps_per_epoch = reference["num_steps"] // 3
    monkeypatch.setattr(train_module, "_step_losses", dies_mid_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(_resume_config(tmp_path, "cut", method), data=tiny_data())
    assert not (tmp_path / "cut" / "metrics.json").exists()
    assert (tmp_path / "cut" / "checkpoint.pt").is_file()  # epoch one was checkpointed
    monkeypatch.setattr(train_module, "_step_losses", real)
    resumed = train(_resume_config(tmp_path, "cut", method, resume=True), data=tiny_data())
    a, b = load_trace(tmp_path / "whole" / "trace.npz"), load_trace(tmp_path / "cut" / "trace.npz")
    for name in ("step", "grad_norms", "weights", "ema", "losses", "applied_weights"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for key in ("test_rmse", "test_phm08_score", "val_rmse", "num_steps"):
        assert resumed[key] == reference[key], key
    assert resumed["history"] == reference["history"]
    assert (reference["resumed_at_epochs"], resumed["resumed_at_epochs"]) == ([], [1])


def test_resume_refuses_another_configuration(tmp_path):
    train(_resume_config(tmp_path, "r"), data=tiny_data())
    with pytest.raises(ValueError, match=r"was written with lr=0\.001; this run has lr=0\.01"):
        train(_resume_config(tmp_path, "r", resume=True, lr=0.01), data=tiny_data())
    (tmp_path / "r" / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable training checkpoint"):
        train(_resume_config(tmp_path, "r", resume=True), data=tiny_data())


@pytest.mark.parametrize("method", ["gaba", "gaba_log_ema"])
def test_the_run_reads_the_chosen_sensor(tmp_path, method):
    """``--sensor``: the loop hands the module what its sensor needs. Step 1 is the same
    model on the same batch for every sensor, so the losses agree, and the last shared
    layer's norms, a subset of the shared parameters, can only be smaller than the exact
    ones; the representation's norms are another quantity altogether."""
    traces, runs = {}, {}
    for sensor in ("exact", "last_layer", "representation"):
        config = _resume_config(tmp_path, f"{method}-{sensor}", method,
                                options={"sensor": sensor})
        runs[sensor] = train(config, data=tiny_data())
        traces[sensor] = load_trace(tmp_path / f"{method}-{sensor}" / "trace.npz")
    first = {s: t.grad_norms[0] for s, t in traces.items()}
    for sensor in ("last_layer", "representation"):
        assert np.array_equal(traces[sensor].losses[0], traces["exact"].losses[0])
        assert not np.allclose(first[sensor], first["exact"])
        assert runs[sensor]["weight_source"]["sensor"] == sensor
    assert np.all(first["last_layer"] <= first["exact"] * (1 + 1e-6))
    assert np.all(np.isfinite(traces["representation"].grad_norms))


def test_the_default_sensor_leaves_the_cache_key_alone(tmp_path):
    from analysis.compare import plan_jobs

    def key(options):
        (job,) = plan_jobs(["FD001"], ["gaba"], [0], cache=tmp_path, base={"epochs": 1},
                           options={"gaba": options})
        return job.key

    assert key({"sensor": "exact"}) == key({}) != key({"sensor": "last_layer"})
