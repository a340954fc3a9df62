"""Seller statements in the DAGs: the deadline watch warns about statements still unsent the way
it warns about a missing filing, and housekeeping ends their retention (PStTG § 24(3)) at the
boundary, with a dry run. The ledger and the feeds are built as in
``tests/integration/test_statement_ledger.py``."""

from __future__ import annotations

import types
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from statement_feeds import Run
from test_dac7_annual import REPO, fresh_dag, notifications  # noqa: F401 - a fixture

from reporting.ledger import open_ledger
from reporting.ledger.statements import read_delivery_report

VILNIUS = ZoneInfo("Europe/Vilnius")  # the demo operator files in LT


def filed_with_statements(tmp_path: Path, url: str, *, record: bool = True) -> Run:
    """A production filing of 2025 in LT with three sellers; their statements made 2026-01-20."""
    with open_ledger(url) as ledger:
        run = Run(ledger, tmp_path / "out", {"S1": 1, "S2": 2, "S3": 3}, environment="prod", authority="LT")
        feed = run.feed(*(run.statement(s, f"st-{s.lower()}") for s in ("S1", "S2", "S3")))
        if record:
            ledger.record_statements(feed, at=datetime(2026, 1, 20, 9))
    return run


def test_the_deadline_dag_has_a_statements_task() -> None:
    dag = fresh_dag("dac7_deadline")
    assert [t.task_id for t in dag.tasks] == ["check_deadline", "check_statements", "check_calendar"]


def test_the_deadline_warns_about_unsent_statements(
    notifications: list[tuple[str, str]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from dac7_support.deadline import check_statements

    monkeypatch.delenv("DAC7_DEADLINE_WARN", raising=False)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    filed_with_statements(tmp_path, url)
    config = REPO / "dac7.toml"
    before = check_statements(2025, date(2026, 1, 24), config, url)
    assert before == {"year": 2025, "due": False, "unsent": {}, "without_statements": []}
    assert notifications == []
    with open_ledger(url) as ledger:
        report = tmp_path / "d.csv"
        report.write_text(
            "statement_id,time,status,detail\nst-s1,2026-01-21T10:00:00Z,sent,\n"
            "st-s2,2026-01-21T10:00:00Z,failed,bounced\n",
            encoding="utf-8",
        )
        ledger.mark_statements(read_delivery_report(report), source=report.name)
    result = check_statements(2025, date(2026, 1, 25), config, url)
    assert result == {"year": 2025, "due": True, "unsent": {"LT": 2}, "without_statements": []}
    ((subject, text),) = notifications
    assert subject == "DAC7 2025: 2 seller statement(s) not delivered"
    assert "by 2026-01-31" in text and "warning from 2026-01-25" in text
    assert "Filed with LT: 1 pending, 1 failed" in text and "dac7 statements mark-sent" in text
    assert "S1" not in text and "Ona" not in text  # counts only
    notifications.clear()
    with open_ledger(url) as ledger:
        report.write_text(
            "statement_id,time,status\nst-s2,2026-01-26T10:00:00Z,sent\nst-s3,2026-01-26T10:00:00Z,sent\n",
            encoding="utf-8",
        )
        ledger.mark_statements(read_delivery_report(report), source=report.name)
    assert check_statements(2025, date(2026, 1, 27), config, url)["unsent"] == {}
    assert notifications == []


def test_the_deadline_warns_about_a_filing_without_statements(
    notifications: list[tuple[str, str]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from dac7_support.deadline import check_statements

    monkeypatch.delenv("DAC7_DEADLINE_WARN", raising=False)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    filed_with_statements(tmp_path, url, record=False)
    result = check_statements(2025, date(2026, 1, 31), REPO / "dac7.toml", url)
    assert result == {"year": 2025, "due": True, "unsent": {}, "without_statements": ["LT"]}
    ((subject, text),) = notifications
    assert subject == "DAC7 2025: no statements recorded for LT"
    assert "no statement for them" in text


def test_housekeeping_ends_the_retention_at_the_boundary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Made on 20 January 2026: kept until 31 December 2036 23:59:59 in Vilnius, deleted from
    1 January 2037 00:00 there (PStTG § 24(3)); the task takes the run's logical date."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    run = filed_with_statements(tmp_path, url)
    monkeypatch.setenv("DAC7_LEDGER_URL", url)
    monkeypatch.setenv("DAC7_OUT_DIR", str(run.out))
    monkeypatch.setenv("DAC7_CONFIG", str(REPO / "dac7.toml"))
    monkeypatch.delenv("DAC7_STATEMENT_RETENTION_DRY_RUN", raising=False)
    dag = fresh_dag("dac7_housekeeping")
    assert [t.task_id for t in dag.tasks] == [
        "prune_staging",
        "expire_statements",
        "expire_due_diligence",
        "expire_verifications",
    ]
    task = dag.get_task("expire_statements").python_callable

    def at(moment: datetime, dry: bool = False) -> dict[str, Any]:
        context = {
            "logical_date": moment,
            "dag_run": types.SimpleNamespace(run_after=None),
            "params": {"statements_dry_run": dry},
        }
        monkeypatch.setitem(task.__globals__, "get_current_context", lambda: context)
        result: dict[str, Any] = task()
        return result

    pages = sorted((run.out / "2025" / "statements").rglob("*.html"))
    assert len(pages) == 3
    kept = datetime(2036, 12, 31, 23, 59, 59, tzinfo=VILNIUS)
    assert at(kept) == {"dry_run": False, "statements": 0, "files": 0, "feeds": 0, "missing_files": 0}
    due = datetime(2037, 1, 1, 0, 0, tzinfo=VILNIUS)
    assert at(due, dry=True) == {"dry_run": True, "statements": 3, "files": 3, "feeds": 1, "missing_files": 0}
    assert all(p.is_file() for p in pages)
    monkeypatch.setenv("DAC7_STATEMENT_RETENTION_DRY_RUN", "1")
    assert at(due.astimezone(UTC))["dry_run"] is True  # the same instant in UTC, still a dry run
    monkeypatch.delenv("DAC7_STATEMENT_RETENTION_DRY_RUN")
    assert at(due) == {"dry_run": False, "statements": 3, "files": 3, "feeds": 1, "missing_files": 0}
    assert not any(p.exists() for p in pages)
    with open_ledger(url) as ledger:
        assert {(s.seller_id, s.html_path, s.erased is not None) for s in ledger.statements()} == {(None, None, True)}


def test_housekeeping_fails_on_a_missing_page_unless_acknowledged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A page not found where the ledger says fails the task, naming the statement, and keeps its
    content; the ``statements_missing_ok`` Param erases it all the same."""
    from reporting.ledger import RetentionError

    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    run = filed_with_statements(tmp_path, url)
    monkeypatch.setenv("DAC7_LEDGER_URL", url)
    monkeypatch.delenv("DAC7_OUT_DIR", raising=False)  # every statement has its output directory recorded
    monkeypatch.setenv("DAC7_CONFIG", str(REPO / "dac7.toml"))
    monkeypatch.delenv("DAC7_STATEMENT_RETENTION_DRY_RUN", raising=False)
    task = fresh_dag("dac7_housekeeping").get_task("expire_statements").python_callable

    def at(moment: datetime, missing_ok: bool = False) -> dict[str, Any]:
        context = {
            "logical_date": moment,
            "dag_run": types.SimpleNamespace(run_after=None),
            "params": {"statements_dry_run": False, "statements_missing_ok": missing_ok},
        }
        monkeypatch.setitem(task.__globals__, "get_current_context", lambda: context)
        result: dict[str, Any] = task()
        return result

    next((run.out / "2025" / "statements").rglob("st-s2.html")).unlink()
    due = datetime(2037, 1, 1, 0, 0, tzinfo=VILNIUS)
    with pytest.raises(RetentionError, match=r"1 statement\(s\) .* not found .*first: st-s2\)"):
        at(due)
    with open_ledger(url) as ledger:
        assert [s.statement_id for s in ledger.statements() if s.erased is None] == ["st-s2"]
    assert at(due, missing_ok=True) == {"dry_run": False, "statements": 1, "files": 0, "feeds": 1, "missing_files": 1}
    with open_ledger(url) as ledger:
        assert all(s.erased is not None and s.seller_id is None for s in ledger.statements())
