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


@pytest.mark.slow
def test_report_embeds_every_figure_with_a_number_and_a_caption(quick_report):
    text = (quick_report / "REPORT.md").read_text()
    embedded = re.findall(r"!\[Figure (\d+): [^\]]*\]\(([^)]+\.png)\)", text)
    assert len(embedded) >= 10
    assert [int(n) for n, _ in embedded] == list(range(1, len(embedded) + 1))
    for n, name in embedded:
        for ext in (".png", ".svg", ".pdf"):
            assert (quick_report / name).with_suffix(ext).exists()
        caption = re.search(rf"\*\*Figure {n}\.\*\* (.*)", text).group(1)
        assert len(caption.split("(PDF]")[0]) > 60, (name, caption)  # a sentence, not a title
    tables = re.findall(r"\*\*Table (\d+)\.\*\* ?(.*)", text)
    assert [int(n) for n, _ in tables] == list(range(1, len(tables) + 1))
    assert all(len(caption) > 15 for _, caption in tables), tables
    for cited in set(re.findall(r"\]\(#(fig-[\w-]+|tab-\d+|sec-\w+)\)", text)):
        assert f'<a id="{cited}"></a>' in text, cited  # every citation resolves


@pytest.mark.slow
def test_steps_and_epochs_are_counted_from_one(quick_report):
    text = (quick_report / "REPORT.md").read_text()
    # regression: the seed audit printed a trace's 0-based epoch ("epoch 0") for the same peak
    # the real-loop study called epoch 1
    assert not re.search(r"\bepoch 0\b", text)
    assert "loop index" not in text


@pytest.mark.slow
def test_report_opens_with_findings_and_contents(quick_report):
    text = (quick_report / "REPORT.md").read_text()
    headings = re.findall(r"^## (.*)$", text, flags=re.M)
    assert headings[:2] == ["Findings", "Contents"]
    numbered = [h for h in headings if re.match(r"\d+\. ", h)]
    assert [int(h.split(".")[0]) for h in numbered] == list(range(1, len(numbered) + 1))
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    for h in numbered:
        assert f"[{h}]" in contents


@pytest.mark.slow
def test_audit_appendix_has_every_claim_once_with_stable_ids(quick_report):
    text = (quick_report / "REPORT.md").read_text()
    audit = text.split("## Appendix A.", 1)[1].split("## Appendix B.", 1)[0]
    rows = re.findall(r'<a id="([A-Z]{3}-[0-9a-f]{4})"></a>\*\*\1\*\* ([^:]+):', audit)
    assert len(rows) >= 80 and len({i for i, _ in rows}) == len(rows)
    for _, verdict in rows:
        assert verdict in ("holds", "**refuted**", "*not testable*")
    counts = re.search(r"(\d+) claims audited .*?: (\d+) hold, (\d+) refuted, (\d+) not testable",
                       text)
    total, held, refuted, untestable = map(int, counts.groups())
    assert total == len(rows) == held + refuted + untestable
    assert refuted > 0 and held > 0
    for group in audit.split("\n### ")[1:]:  # refuted rows first within each seed's group
        order = [report.VERDICT_ORDER.index({"**refuted**": "refuted", "holds": "holds"}.get(
            v, "not testable")) for v in re.findall(r"\*\*[A-Z]{3}-[0-9a-f]{4}\*\* ([^:]+):",
                                                    group)]
        assert order == sorted(order)


def test_claim_ids_depend_on_the_claim_not_its_position():
    from analysis._common import Claim

    a = Claim("x holds", "seed 001", "t", "s", "r", "tol", "holds")
    b = Claim("y holds", "seed 001", "t", "s", "r", "tol", "refuted")
    assert report.claim_id("bode", a) == report.claim_id("bode", a)
    assert report.claim_id("bode", a) != report.claim_id("bode", b)
    assert report.claim_id("bode", a).startswith("BOD-")
    assert report.claim_group(a) == "seed 001"
    assert report.claim_group(Claim("z", "issue 6", "", "", "", "", "holds")) == "toolkit"


def test_a_citation_of_a_missing_figure_is_an_error(tmp_path):
    from analysis._common import Study

    study = Study("bode", "Bode", "see {fig:nope}")
    with pytest.raises(ValueError, match="nope"):
        report.render([study], trace=None, seed=0, quick=True, timings={})


@pytest.mark.slow
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


@pytest.mark.slow
def test_figures_are_deterministic_and_worker_processes_change_nothing(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for outdir, jobs in ((a, 1), (b, 2)):
        report.run_report(outdir, quick=True, only=["bode", "bounds"], progress=False, jobs=jobs)
    files = sorted(p.name for p in a.iterdir() if p.suffix in {".png", ".svg", ".pdf", ".json"})
    assert files == sorted(p.name for p in b.iterdir()
                           if p.suffix in {".png", ".svg", ".pdf", ".json"})
    assert [digest(a / f) for f in files] == [digest(b / f) for f in files]

    def without_times(path):
        return path.read_text().split("## Appendix B.")[0]

    assert without_times(a / "REPORT.md") == without_times(b / "REPORT.md")


def test_jobs_out_of_range_is_refused_before_any_work(tmp_path):
    for bad in (0, -1, 65):
        with pytest.raises(ValueError, match="jobs"):
            report.run_report(tmp_path / "out", quick=True, only=["bode"], jobs=bad)
    assert not (tmp_path / "out").exists()


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
