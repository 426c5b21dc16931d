"""``compare`` on real engines: loky processes, a ``dask.distributed.LocalCluster`` and a local
Ray cluster (worker processes on loopback), each started here and reached through the
environment (``DASK_SCHEDULER_ADDRESS``, ``RAY_ADDRESS``) by a ``gaba-control compare``
subprocess. For each engine a worker is killed mid-job by its pid (read from the job's
``running.json``): the job continues from its checkpoint, the cache stays consistent (no run
lost or duplicated, no checkpoint or worker record left) and every number equals that of an
uninterrupted run on the local backend.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.compare import RUNNING, compare

pytestmark = [pytest.mark.cmapss, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
METRICS = ("test_rmse", "test_phm08_score", "test_macro_f1", "val_rmse")
# 3 epochs of 20 batches: long enough to be killed after the first epoch's checkpoint
EPOCHS, BATCHES = 3, 12


@pytest.fixture(scope="module")
def reference(cmapss_dir, tmp_path_factory):
    """The uninterrupted runs, on the local (loky) backend in this process."""
    root = tmp_path_factory.mktemp("reference")
    response = compare(["FD001"], ["gaba", "equal"], [0], out=root / "out", cache=root / "cache",
                       quick=True, epochs=EPOCHS, max_batches=BATCHES, threads=1,
                       data_dir=str(cmapss_dir), progress=False, figures=False)
    return {r["method"]: r for r in response.rows}


@contextlib.contextmanager
def _dask():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  worker_dashboard_address=None) as cluster:
        yield {"DASK_SCHEDULER_ADDRESS": cluster.scheduler_address}


@contextlib.contextmanager
def _ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield {"RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _loky():
    yield {}


ENGINES = {"loky": _loky, "dask": _dask, "ray": _ray}


def _ancestors(pid: int) -> set:
    psutil = pytest.importorskip("psutil")
    return {p.pid for p in psutil.Process(pid).parents()}


@pytest.mark.parametrize("backend", list(ENGINES))
def test_a_killed_worker_reruns_its_job_from_the_checkpoint(backend, reference, cmapss_dir,
                                                             tmp_path):
    cache = tmp_path / "cache"
    cli = [sys.executable, "-m", "gaba_control.analysis.cli", "compare", "--backend", backend,
           "--jobs", "2", "--subsets", "FD001", "--methods", "gaba", "equal", "--seeds", "0",
           "--quick",
           "--epochs", str(EPOCHS), "--max-batches", str(BATCHES), "--threads", "1",
           "--data-dir", str(cmapss_dir), "--cache", str(cache), "--out", str(tmp_path / "out"),
           "--no-figures", "--no-progress"]
    with ENGINES[backend]() as address:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DASK_SCHEDULER_ADDRESS", "RAY_ADDRESS")}
        process = subprocess.Popen(cli, cwd=REPO, env={**env, **address}, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 600
            while not list(cache.rglob("checkpoint.pt")):
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "no checkpoint within 600 s"
                time.sleep(0.05)
            victim = next(cache.rglob("checkpoint.pt")).parent
            pid = json.loads((victim / RUNNING).read_text())["pid"]
            lineage = _ancestors(pid)
            if address:  # the job runs on the cluster started here, not one of the subprocess's
                assert os.getpid() in lineage and process.pid not in lineage
            else:
                assert process.pid in lineage  # loky: a worker of the compare process
            os.kill(pid, signal.SIGKILL)
            _, stderr = process.communicate(timeout=900)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, stderr
    finished = {p.parent: json.loads(p.read_text()) for p in cache.rglob("metrics.json")}
    assert sorted(d.parent.name for d in finished) == ["equal", "gaba"]  # none lost
    assert len(list(cache.glob("FD001/*/*"))) == 2  # no duplicate directory
    assert not list(cache.rglob("checkpoint.pt")) and not list(cache.rglob(RUNNING))
    assert len((tmp_path / "out" / "runs.csv").read_text().splitlines()) == 1 + 2
    assert finished[victim]["resumed_at_epochs"], "the killed job continued from its checkpoint"
    assert finished[victim]["worker"]["pid"] != pid
    for directory, metrics in finished.items():
        assert metrics["status"] == "ok", metrics.get("error")
        expected = reference[directory.parent.name]
        assert directory.name.endswith(expected["hash"])  # the same job, the same cache key
        for name in METRICS:  # bit-identical to the uninterrupted run
            assert metrics[name] == expected[name], (directory.parent.name, name)
