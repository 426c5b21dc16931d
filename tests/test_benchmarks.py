"""The controller benchmark runs and its two implementations agree (no timing asserted)."""

import re

from benchmarks import bench_controller


def test_quick_benchmark_prints_a_table_and_exact_agreement(capsys):
    bench_controller.main(["--quick"])
    out = capsys.readouterr().out
    row = r"\| `GABAController.run`, 2e\+04 steps x K=2 \| [\d.]+ ms \| \d+x faster \|"
    assert re.search(row, out)
    assert "max |loop - run| over 2e4 steps: 0.0e+00" in out


def test_identification_benchmark_runs_and_recovers_its_plant(capsys):
    from benchmarks import bench_identify

    bench_identify.main(["--quick"])
    out = capsys.readouterr().out
    assert re.search(r"\| whole per-group analysis .* \| [\d.]+ s \(target < 5 s\) \|", out)
    gain = float(re.search(r"DC gain ([\d.]+) \(true 1\.2\)", out).group(1))
    assert abs(gain - 1.2) < 0.15  # the synthetic plant's elasticity, recovered


def test_methods_benchmark_times_every_method(capsys):
    from benchmarks import bench_methods

    assert bench_methods.main(["--quick", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    for name in bench_methods.METHODS:
        assert f"| {name} |" in out
    times = bench_methods.time_methods(2, batch_size=8)
    assert set(times) == set(bench_methods.METHODS)
    assert all(len(v) == 2 and min(v) > 0 for v in times.values())
