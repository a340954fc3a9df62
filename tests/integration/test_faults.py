"""Faults between steps: a run killed (as by ``kill -9``) at each named point of the publish
(``reporting/faults.py``), then run again. After the rerun the output directory holds exactly
the files the ledger says are published, a file that is not is moved aside (never uploaded with
the others), and the manifest lists every published file of the year, whatever crashed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from builders import Marketplace, write_config

from reporting.faults import POINTS
from reporting.ledger import open_ledger

KILLED = 137


def _market(extra_seller: bool = False) -> Marketplace:
    m = Marketplace()
    for seller in ("S1", "S2"):
        m.seller(seller)
        m.sales(seller, 30, 10_00)
    if extra_seller:
        m.seller("S3")
        m.sales("S3", 30, 10_00)
    return m


class Runs:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.config = write_config(tmp_path / "dac7.toml")
        self.ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
        self.out = tmp_path / "out"

    def run(self, m: Marketplace, fault: str | None = None, year: int = 2025) -> subprocess.CompletedProcess[str]:
        db = self.tmp / "source.db"
        db.unlink(missing_ok=True)
        url = m.write(f"sqlite:///{db}")
        args = ["run", "--config", str(self.config), "--source", url, "--year", str(year), "--as-of", "2026-01-31"]
        args += ["--out", str(self.out), "--staging", str(self.tmp / "st"), "--ledger", self.ledger]
        env = {k: v for k, v in os.environ.items() if k not in ("DAC7_FAULT", "DAC7_LEDGER_URL")}
        if fault:
            env["DAC7_FAULT"] = fault
        code = "import sys; from reporting.cli import main; sys.exit(main(sys.argv[1:]))"
        return subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    def published(self) -> set[str]:
        with open_ledger(self.ledger) as ledger:
            return {m.file_name for m in ledger.messages() if m.status in ("published", "accepted", "rejected")}

    def in_output(self) -> set[str]:
        return {f"{p.parent.name}/{p.name}" for p in self.out.glob("[A-Z][A-Z]/*")}

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.out / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("point", [p for p in POINTS if p != "publish.between_authorities"])
def test_a_run_killed_at_any_point_leaves_the_output_as_the_ledger_says_after_a_rerun(
    tmp_path: Path, point: str
) -> None:
    runs = Runs(tmp_path)
    killed = runs.run(_market(), fault=point)
    assert killed.returncode == KILLED, killed.stderr
    # the rerun, with one more seller: the first run's sellers are filed once, whatever happened
    rerun = runs.run(_market(extra_seller=True))
    assert rerun.returncode == 0, rerun.stderr
    published = runs.published()
    assert published, "nothing is published after the rerun"
    assert runs.in_output() == published  # no file the ledger does not call published, none missing
    manifest = runs.manifest()
    listed = {f["file"] for f in manifest["published_files"]}
    assert listed == published and all(f["in_output"] for f in manifest["published_files"])
    with open_ledger(runs.ledger) as ledger:
        live_sellers = sorted(
            r.seller_key
            for m in ledger.messages()
            if m.status == "published"
            for r in ledger.records(m.message_ref_id)
            if r.kind == "seller" and r.status == "sent"
        )
    assert live_sellers == ["S1", "S2", "S3"]  # each seller filed once: no duplicate to upload
    if point == "publish.after_rename":
        # the killed run's file was in place before its transaction committed: set aside
        [aside] = manifest["set_aside"]
        assert aside["status"] == "discarded"
        assert (runs.out / "set-aside" / aside["file"]).is_file()
        assert f"moved to set-aside/{aside['file'].split('/')[0]}" in rerun.stderr
    else:
        assert manifest["set_aside"] == []


def test_a_rerun_with_nothing_to_file_lists_the_earlier_files(tmp_path: Path) -> None:
    """The manifest of a run that files nothing still lists every published file of the year,
    from the ledger, so that the view serves them."""
    runs = Runs(tmp_path)
    assert runs.run(_market()).returncode == 0
    first = runs.manifest()
    assert [f["file"] for f in first["files"]] == sorted(runs.published())
    again = runs.run(_market())
    assert again.returncode == 0 and "nothing to file" in again.stdout.lower()
    manifest = runs.manifest()
    assert manifest["files"] == []
    assert {f["file"] for f in manifest["published_files"]} == runs.published() == runs.in_output()


def test_a_run_sets_aside_only_the_files_of_its_own_period(tmp_path: Path) -> None:
    """An output folder shared by two years: the 2025 run leaves the 2024 run's unrecorded file
    alone (that period is not under its lock); the 2024 rerun sets it aside."""
    runs = Runs(tmp_path)
    m = Marketplace()
    m.seller("OLD")
    m.sales("OLD", 30, 10_00, start="2024-05-01 10:00:00")
    m.seller("NEW")
    m.sales("NEW", 30, 10_00)
    assert runs.run(m, fault="publish.after_rename", year=2024).returncode == KILLED
    [left] = runs.in_output()
    assert runs.run(m, year=2025).returncode == 0
    assert left in runs.in_output() and runs.manifest()["set_aside"] == []
    assert runs.run(m, year=2024).returncode == 0
    assert left not in runs.in_output() and (runs.out / "set-aside" / left).is_file()
    assert runs.in_output() == runs.published()


def test_a_folder_locked_by_another_run_is_left_for_that_run(tmp_path: Path) -> None:
    """A folder of another authority in the output, whose period another run holds: this run's
    finalize does not wait for it or fail on it; it says so."""
    import sqlalchemy as sa

    from reporting.ledger import schema as t

    runs = Runs(tmp_path)
    assert runs.run(_market()).returncode == 0
    (runs.out / "DE").mkdir()
    with open_ledger(runs.ledger) as ledger, ledger.engine.begin() as conn:
        conn.execute(
            sa.insert(t.locks).values(
                environment="test", authority="DE", reporting_year=2025, holder="other-run",
                acquired=sa.func.now(), host="another-machine", pid=1,
            )
        )  # fmt: skip
    again = runs.run(_market())
    assert again.returncode == 0, again.stderr
    assert "DE/ not checked for files to set aside: DE 2025 (test) is being filed by another run" in again.stderr
