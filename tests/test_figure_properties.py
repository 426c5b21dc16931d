"""What the report's figures must show, checked on the figure objects (issue 13's review)."""

import numpy as np
import pytest

from analysis._common import _plain_log_ticks, new_figure


def test_narrow_log_axes_get_plain_labels_wide_ones_keep_powers():
    fig, (narrow, wide) = new_figure(1, 2)
    narrow.semilogy([1, 2], [0.04, 0.6])
    wide.semilogy([1, 2], [1e-6, 1.0])
    _plain_log_ticks(fig)
    fig.canvas.draw()
    labels = [t.get_text() for t in narrow.yaxis.get_ticklabels(which="both") if t.get_text()]
    assert "0.1" in labels and "0.5" in labels
    assert not any("10^" in t or "times" in t for t in labels), labels
    wide_labels = [t.get_text() for t in wide.yaxis.get_ticklabels() if t.get_text()]
    assert any("10^" in t for t in wide_labels), wide_labels  # powers of ten stay


def test_bounds_figure_draws_the_valid_range_only():
    from analysis.bounds import bounds_response

    bounds = bounds_response(num_tasks=(2, 3, 8), panel_tasks=(2, 3, 8),
                             fractions=(0.0, 0.5, 1.0, 1.2), samples=50, optimise_up_to=2,
                             rng=np.random.default_rng(0))
    fig = bounds.plot()
    for ax in fig.axes:
        for line in ax.get_lines():
            x = np.asarray(line.get_xdata(), float)
            if x.size > 2:  # curves and markers, not the reference lines
                assert np.all((x >= 0) & (x < 1)), (ax.get_title(), x.max())  # K·λmin < 1


def test_saturation_curves_refuse_a_floor_outside_the_valid_range():
    from analysis.bounds import saturation_curve_response

    with pytest.raises(ValueError, match="lambda_mins"):
        saturation_curve_response((0.05, 0.5))
    with pytest.raises(ValueError, match="k3_lambda_min"):
        saturation_curve_response((0.05,), k3_lambda_min=0.4)


def test_step_response_panels_share_one_step_axis_and_show_the_whole_trace(tmp_path):
    from analysis.step_response import step_response
    from gaba_control.controller import GABAController
    from gaba_control.trace import TraceRecorder

    ctrl = GABAController(2, beta=0.99, warmup=100, lambda_min=0.05)
    rec = TraceRecorder(2)
    g = np.tile([499.0, 1.0], (900, 1))
    out = ctrl.run(g)
    for t in range(900):
        rec.record(step=t + 1, epoch=t // 300, grad_norms=g[t], shares=out.shares[t],
                   raw=out.raw[t], ema=out.ema[t], weights=out.weights[t],
                   applied_weights=out.weights[t], losses=np.ones(2), lr=1e-3,
                   active=bool(out.active[t]), valid=True)
    trace = rec.to_trace(controller={"num_tasks": 2, "beta": 0.99, "warmup": 100,
                                     "lambda_min": 0.05}, method="gaba", subset="FD001",
                         seed=0, task_names=("rul", "health"))
    fig = step_response(n_steps=900, loop_steps=150, trace=trace).plot()
    top, bottom = fig.axes[0], next(a for a in fig.axes if "Real trace" in a.get_title())
    assert top.get_xlim() == bottom.get_xlim()
    assert bottom.get_xlim()[1] >= 900
    assert "RUL" in bottom.get_ylabel()
