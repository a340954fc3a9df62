"""The deadline DAG's calendar task (``check_calendar``): a warning for a rejection left
uncorrected, none once the correction is filed, and a filing published but not accepted after its
due day. The demo operator files in LT (the EU generic table: no weekend rule, no window)."""

from __future__ import annotations

import types
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from ledger_filing import Filer, current
from test_dac7_annual import REPO, notifications  # noqa: F401 - a fixture

from reporting.ledger import Ledger, open_ledger
from reporting.ledger.model import RecordError, StatusReport

CONFIG = REPO / "dac7.toml"


def reject(ledger: Ledger, ref: str, doc_ref_id: str, at: datetime) -> None:
    report = StatusReport(
        format="eu-dac7-status",
        outcome="partially_rejected",
        message_ref_id=ref,
        record_errors=(RecordError(code="40080", doc_ref_ids=(doc_ref_id,)),),
    )
    ledger.record_status(report, file_name="status.xml", sha256="a" * 64, at=at)


@pytest.fixture
def filed(tmp_path: Path) -> tuple[str, str, str]:
    """LT 2025, production: S1 and S2 filed on 20 January 2026; S2's record rejected on 10 February."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with open_ledger(url) as ledger:
        f = Filer(ledger, environment="prod", authority="LT", year=2025)
        [ref] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
        ledger.record_approval([ref], approved_by="jonas", triggered_by="ana")  # four eyes
        ledger.mark_published(ref, at=datetime(2026, 1, 20, 8))
        ledger.mark_uploaded(ref, by="ana", at=datetime(2026, 1, 20, 9))
        s2 = next(r.doc_ref_id for r in ledger.records(ref) if r.seller_key == "S2")
        reject(ledger, ref, s2, datetime(2026, 2, 10, 9))
    return url, ref, s2


def test_a_rejection_left_uncorrected_is_warned_about_until_it_is_corrected(
    notifications: list[tuple[str, str]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    filed: tuple[str, str, str],
) -> None:
    from dac7_support.deadline import check_calendar

    url, ref, s2 = filed
    monkeypatch.delenv("DAC7_CORRECTION_DAYS", raising=False)
    result = check_calendar(None, date(2026, 2, 11), CONFIG, url)
    assert result == {"year": None, "rejections": {"LT": 1}, "not_accepted": []}
    ((subject, text),) = notifications
    assert subject == "DAC7 LT: 1 open item(s) of the calendar"
    assert f"record {s2} of message {ref} (2025) rejected on 2026-02-10, not corrected" in text
    assert "the authority states no time: correct without delay" in text and "What to do:" in text
    assert "S2" not in text.replace(s2, "").replace(ref, "")  # ids only, no seller
    notifications.clear()

    monkeypatch.setenv("DAC7_CORRECTION_DAYS", "14")  # day 0: 10 February; due 24 February
    check_calendar(2025, date(2026, 2, 24), CONFIG, url)
    ((_, text),) = notifications
    assert "correction due 2026-02-24 (due today)" in text
    notifications.clear()
    check_calendar(2025, date(2026, 2, 25), CONFIG, url)
    assert "correction due 2026-02-24 (1 day overdue)" in notifications[0][1]
    notifications.clear()

    with open_ledger(url, create=False) as ledger:  # the next run files the correction
        f = Filer(ledger, environment="prod", authority="LT", year=2025)
        [fix] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
        ledger.record_approval([fix], approved_by="jonas", triggered_by="ana")  # four eyes
        ledger.mark_published(fix, at=datetime(2026, 2, 26, 9))
    assert check_calendar(None, date(2026, 2, 27), CONFIG, url)["rejections"] == {"LT": 1}  # not uploaded yet
    notifications.clear()
    with open_ledger(url, create=False) as ledger:
        ledger.mark_uploaded(fix, by="ana", at=datetime(2026, 2, 26, 10))
    assert check_calendar(None, date(2026, 2, 27), CONFIG, url)["rejections"] == {}
    assert notifications == []


def test_a_filing_published_but_not_accepted_after_its_due_day_is_warned_about(
    notifications: list[tuple[str, str]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from dac7_support.deadline import check_calendar

    monkeypatch.delenv("DAC7_CORRECTION_DAYS", raising=False)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with open_ledger(url) as ledger:
        f = Filer(ledger, environment="prod", authority="LT", year=2025)
        [ref] = f.record(f.plan(current(sellers={"S1": 1})))
        ledger.record_approval([ref], approved_by="jonas", triggered_by="ana")  # four eyes
        ledger.mark_published(ref, at=datetime(2026, 1, 19, 9))
        ledger.mark_uploaded(ref, by="ana", at=datetime(2026, 1, 20, 9))
    assert check_calendar(None, date(2026, 1, 31), CONFIG, url)["not_accepted"] == []  # the due day itself
    assert notifications == []
    assert check_calendar(None, date(2026, 2, 1), CONFIG, url)["not_accepted"] == ["LT"]
    ((_, text),) = notifications
    assert "The filing of 2025 was due 2026-01-31: filed 2026-01-20 (in time); no accepted status imported yet." in text


def test_the_calendar_task_reads_the_run_date_and_the_ledger(
    dagbag: Any,
    notifications: list[tuple[str, str]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    filed: tuple[str, str, str],
) -> None:
    url, _, _ = filed
    monkeypatch.setenv("DAC7_LEDGER_URL", url)
    monkeypatch.setenv("DAC7_CONFIG", str(CONFIG))
    monkeypatch.delenv("DAC7_CORRECTION_DAYS", raising=False)
    check = dagbag.dags["dac7_deadline"].get_task("check_calendar").python_callable
    context = {
        "logical_date": datetime(2026, 3, 2, 7, tzinfo=UTC),
        "dag_run": types.SimpleNamespace(run_after=None),
        "params": {"reporting_year": None},
    }
    monkeypatch.setitem(check.__globals__, "get_current_context", lambda: context)
    assert check() == {"year": None, "rejections": {"LT": 1}, "not_accepted": []}
    assert len(notifications) == 1


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_the_deadline_warning_counts_a_published_filing_only_once_sent(
    notifications: list[tuple[str, str]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from dac7_support.deadline import check_deadline

    monkeypatch.delenv("DAC7_DEADLINE_WARN", raising=False)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with open_ledger(url) as ledger:
        f = Filer(ledger, environment="prod", authority="LT", year=2025)
        [ref] = f.record(f.plan(current(sellers={"S1": 1})))
        ledger.record_approval([ref], approved_by="jonas", triggered_by="ana")  # four eyes
        ledger.mark_published(ref, at=datetime(2026, 1, 20, 9))
    assert check_deadline(2025, date(2026, 1, 26), CONFIG, ledger_url=url)["missing"] == ["LT"]
    assert notifications[0][0] == "DAC7 2025: no production filing sent yet for LT"
    notifications.clear()
    with open_ledger(url, create=False) as ledger:
        ledger.mark_uploaded(ref, by="ana", at=datetime(2026, 1, 21, 9))
    assert check_deadline(2025, date(2026, 1, 26), CONFIG, ledger_url=url)["missing"] == []
    assert notifications == []
