"""Each run's manifest and reports kept under ``<out>/runs/<run>/`` (``reporting.publish``), so that
no later run, of either environment, hides them from the DAC7 view."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from reporting.due_diligence import VIEW_LINK
from reporting.publish import keep_run_copy, run_key


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
