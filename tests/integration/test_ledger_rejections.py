"""The ledger's rejections (``reporting.ledger.rejections``) on SQLite and PostgreSQL alike: a
record rejected and corrected, a message rejected as a whole and filed again (the NULL-safe
match of the PlatformOperator's key, whose seller_key is NULL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from ledger_filing import Filer, current

from reporting.ledger import Ledger, default_ledger_url, open_ledger
from reporting.ledger.model import RecordError, StatusReport


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    url = default_ledger_url(tmp_path) if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    with open_ledger(url) as led:
        yield led


def status(ledger: Ledger, ref: str, doc_ref_ids: tuple[str, ...], at: datetime, digest: str) -> None:
    report = StatusReport(
        format="eu-dac7-status",
        outcome="partially_rejected" if doc_ref_ids else "rejected",
        message_ref_id=ref,
        record_errors=(RecordError(code="40080", doc_ref_ids=doc_ref_ids),) if doc_ref_ids else (),
    )
    ledger.record_status(report, file_name="status.xml", sha256=digest * 64, at=at)


def test_rejections_and_their_corrections(ledger: Ledger) -> None:
    de = Filer(ledger, environment="prod", authority="DE", year=2025)
    [ref] = de.record(de.plan(current(sellers={"S1": 1, "S2": 1})))
    ledger.mark_published(ref, at=datetime(2026, 1, 20, 9))
    s2 = next(r.doc_ref_id for r in ledger.records(ref) if r.seller_key == "S2")
    status(ledger, ref, (s2,), datetime(2026, 2, 10, 9), "a")
    fr = Filer(ledger, environment="prod", authority="FR", year=2025)
    [whole] = fr.record(fr.plan(current(sellers={"S1": 1})))
    ledger.mark_published(whole, at=datetime(2026, 1, 21, 9))
    status(ledger, whole, (), datetime(2026, 1, 22, 9), "b")
    found = {r.message_ref_id: r for r in ledger.rejections(environment="prod")}
    assert (found[ref].doc_ref_id, found[ref].open_records, found[ref].rejected_at) == (
        s2,
        1,
        datetime(2026, 2, 10, 9),
    )
    assert (found[whole].whole_message, found[whole].records, found[whole].open_records) == (True, 2, 2)

    [fix] = de.record(de.plan(current(sellers={"S1": 1, "S2": 1})))
    ledger.mark_published(fix, at=datetime(2026, 2, 12, 8))
    [again] = fr.record(fr.plan(current(sellers={"S1": 1})))
    ledger.mark_published(again, at=datetime(2026, 1, 23, 8))
    found = {r.message_ref_id: r for r in ledger.rejections(environment="prod")}
    assert found[ref].open_records == 1 and found[whole].open_records == 2  # published, not sent yet
    ledger.record_transmission(
        fix, event="started", channel="dip", actor="ana", ticket="T2", at=datetime(2026, 2, 12, 9)
    )
    ledger.record_transmission(
        fix, event="transmitted", channel="dip", actor="ana", ticket="T2", at=datetime(2026, 2, 12, 9)
    )
    ledger.record_transmission(again, event="uploaded", channel="outbox", actor="ana", at=datetime(2026, 1, 23, 9))
    found = {r.message_ref_id: r for r in ledger.rejections(environment="prod")}
    assert (found[ref].open_records, found[ref].corrected_at) == (0, datetime(2026, 2, 12, 9))
    assert (found[whole].open_records, found[whole].corrected_at) == (0, datetime(2026, 1, 23, 9))
