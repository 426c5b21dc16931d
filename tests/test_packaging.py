"""The wheel: one import name (``gaba_control``), the studies inside it as
``gaba_control.analysis``, and ``gaba-control report --quick`` working from a fresh virtual
environment outside the repository."""

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(dist), str(REPO)],
                   check=True, cwd=dist)
    (path,) = dist.glob("gaba_control-*.whl")
    return path


def test_the_wheel_holds_one_import_name(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"gaba_control"}
    # every package of the source tree is in it, the studies under their installed name
    for folder in [p for p in (REPO / "gaba_control").iterdir() if (p / "__init__.py").is_file()]:
        assert f"gaba_control/{folder.name}/__init__.py" in names, folder.name
    studies = {p.name for p in (REPO / "analysis").glob("*.py")}
    assert studies <= {n.split("/")[-1] for n in names if n.startswith("gaba_control/analysis/")}
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "gaba-control = gaba_control.analysis.cli:main" in archive.read(entry).decode()


def test_a_fresh_venv_outside_the_repository_runs_the_report(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the dependencies from this environment, without a network: a path entry only, so the
    # repository's editable install (activated by a .pth file there) is not seen
    (site / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GABA_RESULTS_DIR")}
    env["MPLBACKEND"] = "Agg"
    probe = subprocess.run(
        [str(python), "-c",
         "import importlib.util, gaba_control, gaba_control.analysis as a\n"
         "print(gaba_control.__file__)\n"
         "print(importlib.util.find_spec('analysis') is None)\n"
         "print(type(a.bode_response(betas=(0.99,))).__name__)"],
        cwd=work, env=env, check=True, capture_output=True, text=True).stdout.split()
    assert Path(probe[0]).is_relative_to(site)  # the installed copy, not the checkout
    assert probe[1:] == ["True", "BodeResponse"]  # no top-level `analysis`
    result = subprocess.run([str(env_dir / "bin" / "gaba-control"), "report", "--quick",
                             "--outdir", "report"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    text = (work / "report" / "REPORT.md").read_text()
    assert "Traceback" not in result.stderr
    assert "no committed" in text  # the studies that read a checkout's results say so
