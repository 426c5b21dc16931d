"""The report command end to end: files, table, stale-file removal, determinism."""

import hashlib
import re

import pytest

from analysis import report
from analysis.cli import main


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("report")
    assert main(["report", "--quick", "--outdir", str(outdir), "--no-progress"]) == 0
    return outdir


def test_report_embeds_every_figure_and_a_complete_table(quick_report):
    text = (quick_report / "REPORT.md").read_text()
    embedded = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert len(embedded) >= 10
    for name in embedded:
        assert (quick_report / name).exists()
        assert (quick_report / name).with_suffix(".svg").exists()
    table = text.split("## Verification table", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) >= 80
    for row in rows:
        assert re.search(r"\| (holds|\*\*refuted\*\*|not testable)", row), row
    counts = re.search(r"(\d+) claims: (\d+) hold, (\d+) refuted, (\d+) not testable", text)
    total, held, refuted, untestable = map(int, counts.groups())
    assert total == len(rows) == held + refuted + untestable
    assert refuted > 0 and held > 0


def test_rerun_removes_stale_files_and_partial_runs_keep_others(quick_report):
    stale = quick_report / "bode_old_name.png"
    stale.write_bytes(b"stale")
    manifest = quick_report / report.MANIFEST
    manifest.write_text(manifest.read_text() + "bode_old_name.png\n")
    before = sorted(p.name for p in quick_report.glob("*.png"))
    report.run_report(quick_report, quick=True, only=["bode"], progress=False)
    assert stale.exists()  # a partial run leaves other files alone
    report.run_report(quick_report, quick=True, progress=False)
    assert not stale.exists()
    after = sorted(p.name for p in quick_report.glob("*.png"))
    assert after == sorted(set(before) - {"bode_old_name.png"})


def test_figures_are_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for outdir in (a, b):
        report.run_report(outdir, quick=True, only=["bode", "bounds"], progress=False)
    files = sorted(p.name for p in a.iterdir() if p.suffix in {".png", ".svg"})
    assert files
    assert [digest(a / f) for f in files] == [digest(b / f) for f in files]


def test_unknown_study_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown study"):
        report.run_report(tmp_path, only=["nope"], progress=False)


@pytest.mark.cmapss
@pytest.mark.slow
def test_report_trains_a_quick_trace(tmp_path, cmapss_dir):
    args = ["report", "--quick", "--train", "--data-dir", str(cmapss_dir), "--outdir",
            str(tmp_path), "--only", "real_loop", "step_response", "--no-progress"]
    assert main(args) == 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "real trace: FD001 gaba" in text
    assert "real_loop.png" in text


def test_a_manifest_cannot_delete_outside_its_folder(tmp_path, capsys):
    outdir, victim = tmp_path / "out", tmp_path / "precious.txt"
    victim.write_text("not the report's")
    outdir.mkdir()
    (outdir / report.MANIFEST).write_text(f"../precious.txt\n{victim}\n")
    report._remove_stale(outdir, [], outdir / "REPORT.md", partial=False)
    assert victim.read_text() == "not the report's"
    assert "outside" in capsys.readouterr().err


def test_atomic_writes_are_durable_and_contained(tmp_path, monkeypatch):
    import os

    from gaba_control import _io

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    _io.atomic_write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").read_text() == "x" and len(synced) == 2  # file, then directory
    assert _io.inside("sub/f.png", tmp_path) == (tmp_path / "sub/f.png").resolve()
    for bad in ("../f.png", "/etc/passwd", "sub/../../f.png"):
        with pytest.raises(ValueError, match="lies outside"):
            _io.inside(bad, tmp_path)
