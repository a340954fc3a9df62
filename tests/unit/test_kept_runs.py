"""Each run's manifest and reports kept under ``<out>/runs/<run>/`` (``reporting.stages.publish``), so that
no later run, of either environment, hides them from the DAC7 view."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from reporting.reports.due_diligence import VIEW_LINK
from reporting.stages.publish import keep_earlier_run, keep_run_copy, run_key


@pytest.mark.parametrize(
    ("run_id", "key"),
    [
        ("9b1f6c2e-4d3a-4e5f-8a7b-0c1d2e3f4a5b", "9b1f6c2e-4d3a-4e5f-8a7b-0c1d2e3f4a5b"),
        ("manual__2026-01-20T07:00:00+00:00", "manual__2026-01-20T07_00_00_00_00"),
        ("../../etc", "_.._etc"),
        ("", "_"),
    ],
)
def test_a_runs_folder_name_is_its_id_made_safe(run_id: str, key: str) -> None:
    assert run_key(run_id) == key
    assert "/" not in key and not key.startswith(".")


def test_the_run_copy_is_owner_only_and_its_report_links_back_to_the_view(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "reports").mkdir(parents=True)
    page = f'<a id="back-to-view" href="{VIEW_LINK}">Back</a>'
    (out / "reports" / "due_diligence.html").write_text(page, encoding="utf-8")
    (out / "reports" / "run_summary.html").write_text("summary", encoding="utf-8")
    manifest = {"run_id": "r1", "run_copy": "runs/r1", "files": []}

    folder = keep_run_copy(out, manifest)

    assert folder == out / "runs" / "r1"
    assert json.loads((folder / "manifest.json").read_text(encoding="utf-8")) == manifest
    assert sorted(p.name for p in (folder / "reports").iterdir()) == ["due_diligence.html", "run_summary.html"]
    # two folders deeper than reports/: ../../../../due-diligence from <year>/files/runs/r1/reports/
    assert (folder / "reports" / "due_diligence.html").read_text(encoding="utf-8") == (
        '<a id="back-to-view" href="../../../../due-diligence">Back</a>'
    )
    for path in (folder / "manifest.json", folder / "reports" / "due_diligence.html"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (out / "runs", folder, folder / "reports"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path

    # a retried finalize of the same run writes its copy again
    (out / "reports" / "run_summary.html").write_text("summary, again", encoding="utf-8")
    keep_run_copy(out, manifest)
    assert (folder / "reports" / "run_summary.html").read_text(encoding="utf-8") == "summary, again"


def test_the_kept_due_diligence_report_opens_the_years_data_docs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "reports" / "data-docs" / "extract").mkdir(parents=True)
    (out / "reports" / "data-docs" / "extract" / "index.html").write_text("docs", encoding="utf-8")
    page = (
        "<p>Data checks (Great Expectations Data Docs):</p>"
        '<ul><li><a href="data-docs/extract/index.html">extract</a></li></ul>'
    )
    (out / "reports" / "due_diligence.html").write_text(page, encoding="utf-8")

    folder = keep_run_copy(out, {"run_id": "r1", "run_copy": "runs/r1", "files": []})

    kept = (folder / "reports" / "due_diligence.html").read_text(encoding="utf-8")
    [href] = re.findall(r'href="([^"]+)"', kept)
    assert href == "../../../reports/data-docs/extract/index.html"
    assert (folder / "reports" / href).resolve() == (out / "reports" / "data-docs" / "extract" / "index.html")
    assert "the links open the Data Docs of the year's latest run" in kept


def test_the_seller_reports_are_kept_as_they_were_when_a_later_run_replaces_them(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "reports").mkdir(parents=True)
    for name in ("decisions.parquet", "figures.parquet"):
        (out / "reports" / name).write_bytes(b"run 1")
        (out / "reports" / name).chmod(0o600)
    folder = keep_run_copy(out, {"run_id": "r1", "run_copy": "runs/r1", "files": []})
    for name in ("decisions.parquet", "figures.parquet"):  # the next run writes a new file and renames it
        tmp = out / "reports" / f".{name}.tmp"
        tmp.write_bytes(b"run 2")
        tmp.replace(out / "reports" / name)
        assert (folder / "reports" / name).read_bytes() == b"run 1"
        assert stat.S_IMODE((folder / "reports" / name).stat().st_mode) == 0o600


def _manifest(run_id: str, environment: str, timestamp: str, *, kept: bool) -> dict[str, object]:
    m: dict[str, object] = {
        "run_id": run_id,
        "reporting_year": 2025,
        "environment": environment,
        "preview": False,
        "timestamp_utc": timestamp,
        "files": [{"authority": "LT", "file": f"LT/LT{environment.upper()}.xml"}],
        "reports": ["reports/run_summary.html", "reports/due_diligence.html"],
    }
    if kept:
        m["run_copy"] = f"runs/{run_key(run_id)}"
    return m


def test_a_production_run_published_before_runs_were_kept_stays_after_a_test_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "plugins"))
    import dac7_view

    out = tmp_path / "2025"
    (out / "reports").mkdir(parents=True)
    prod = _manifest("manual__2026-01-15T06:00:00+00:00", "prod", "2026-01-15T06:00:00", kept=False)
    (out / "manifest.json").write_text(json.dumps(prod), encoding="utf-8")
    (out / "reports" / "run_summary.html").write_text("summary of prod", encoding="utf-8")

    # the test run: it keeps the earlier run before its reports replace that run's, then its own
    assert keep_earlier_run(out, "test-run") == out / "runs" / run_key(prod["run_id"])  # type: ignore[arg-type]
    (out / "reports" / "run_summary.html").write_text("summary of test", encoding="utf-8")
    test = _manifest("test-run", "test", "2026-01-20T07:00:00", kept=True)
    keep_run_copy(out, test)
    (out / "manifest.json").write_text(json.dumps(test), encoding="utf-8")

    runs, problems = dac7_view.runs_of(out)
    assert problems == []
    assert [(r.run_id, r.environment) for r in runs] == [("test-run", "test"), (prod["run_id"], "prod")]
    y = dac7_view.YearView(2025, test, "", {}, runs=runs)
    shown = y.latest("prod")
    assert shown is not None and shown.run_id == prod["run_id"]
    assert (out / shown.report("run_summary.html")).read_text(encoding="utf-8") == "summary of prod"  # type: ignore[operator]

    # a retry of the test run, or a later run, keeps nothing again
    assert keep_earlier_run(out, "test-run") is None
    assert keep_earlier_run(out, "later") is None


def test_a_run_kept_without_its_seller_reports_gets_them_before_a_later_run_replaces_them(tmp_path: Path) -> None:
    """A run kept by a version that kept the manifest and the other reports only: the next run
    adds that run's seller reports to its copy, from ``reports/``, before replacing them."""
    out = tmp_path / "2025"
    prod = _manifest("manual__2026-01-15T06:00:00+00:00", "prod", "2026-01-15T06:00:00", kept=True)
    folder = out / str(prod["run_copy"])
    (folder / "reports").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(prod), encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(prod), encoding="utf-8")
    (out / "reports").mkdir()
    for name in ("decisions.parquet", "figures.parquet"):
        (out / "reports" / name).write_bytes(f"{name} of prod".encode())

    assert keep_earlier_run(out, "test-run") is None  # kept already: no second copy
    for name in ("decisions.parquet", "figures.parquet"):
        kept = folder / "reports" / name
        assert kept.read_bytes() == f"{name} of prod".encode()
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        # the test run replaces reports/ by rename: the kept file stays the production run's
        (out / "reports" / f".{name}.new").write_bytes(b"of test")
        (out / "reports" / f".{name}.new").replace(out / "reports" / name)
        assert kept.read_bytes() == f"{name} of prod".encode()
    assert keep_earlier_run(out, "test-run") is None  # again: nothing changes
    assert sorted(p.name for p in (folder / "reports").iterdir()) == ["decisions.parquet", "figures.parquet"]
