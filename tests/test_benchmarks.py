"""The controller benchmark runs and its two implementations agree (no timing asserted)."""

import re

from benchmarks import bench_controller


def test_quick_benchmark_prints_a_table_and_exact_agreement(capsys):
    bench_controller.main(["--quick"])
    out = capsys.readouterr().out
    row = r"\| `GABAController.run`, 2e\+04 steps x K=2 \| [\d.]+ ms \| \d+x faster \|"
    assert re.search(row, out)
    assert "max |loop - run| over 2e4 steps: 0.0e+00" in out
