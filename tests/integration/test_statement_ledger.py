"""The delivery record of seller statements on real databases (SQLite and PostgreSQL): recording
a statements feed, the delivery report of ``dac7 statements mark-sent`` (CSV, JSON, JSON Lines)
and its errors, the counts, and the retention of PStTG § 24(3) at its boundary.

The feeds are written here by hand, following the contract of ``statements/statements.jsonl``
exactly; their statements belong to filings recorded in the same ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from statement_feeds import Run, current

from reporting.cli import main
from reporting.ledger import (
    CORRECTION,
    DeliveryReportError,
    Ledger,
    RetentionError,
    StatementFeedError,
    content_hash,
    default_ledger_url,
    open_ledger,
)
from reporting.ledger import schema as t
from reporting.ledger.statements import erase_expired, read_delivery_report, retention_ends

BERLIN = ZoneInfo("Europe/Berlin")
MADE = datetime(2026, 1, 20, 9, 0)  # naive UTC, as the ledger keeps it


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return default_ledger_url(tmp_path)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(ledger_url) as led:
        yield led


def rows(ledger: Ledger, table: sa.Table) -> list[Any]:
    with ledger.engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)))


# ------------------------------------------------------------------------------------ recording


def test_a_feed_is_recorded_once_as_pending(ledger: Ledger, tmp_path: Path) -> None:
    run = Run(ledger, tmp_path, {"S1": 1, "S2": 2})
    a, b = run.statement("S1", "st-a"), run.statement("S2", "st-b")
    feed = run.feed(a, b)
    assert ledger.record_statements(feed, at=MADE) == 2
    assert ledger.record_statements(feed) == 0  # the same feed again: nothing changes
    recorded = rows(ledger, t.statements)
    assert [(r.statement_id, r.status, r.seller_id, r.kind, r.replaces) for r in recorded] == [
        ("st-a", "pending", "S1", "initial", None),
        ("st-b", "pending", "S2", "initial", None),
    ]
    first = recorded[0]
    assert (first.message_ref_id, first.doc_ref_id) == (run.refs[0], run.docs["S1"])
    assert (first.environment, first.authority, first.reporting_year, first.language) == ("test", "DE", 2025, "de-DE")
    assert first.created == MADE and first.status_changed == MADE
    assert first.content_hash == content_hash(a) and json.loads(first.content) == a
    assert first.html_path == "statements/st/st-a.html" and first.sha256 == a["sha256"]
    assert [(e.statement_id, e.status, e.at) for e in rows(ledger, t.statement_events)] == [
        ("st-a", "pending", MADE),
        ("st-b", "pending", MADE),
    ]
    assert ledger.statement_counts() == [ledger.statement_counts()[0]]
    (counts,) = ledger.statement_counts()
    assert (counts.pending, counts.sent, counts.failed, counts.superseded, counts.unsent) == (2, 0, 0, 0, 2)


def test_a_statement_id_recorded_with_another_page_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    run = Run(ledger, tmp_path, {"S1": 1})
    ledger.record_statements(run.feed(run.statement("S1", "st-a")))
    changed = run.statement("S1", "st-a", page="<html>other</html>")
    with pytest.raises(StatementFeedError, match=r"line 1 \(statement st-a\).*another sha256"):
        ledger.record_statements(run.feed(changed))
    same_page_other_content = run.statement("S1", "st-a") | {"language": "fr"}
    with pytest.raises(StatementFeedError, match="st-a is already recorded with other content"):
        ledger.record_statements(run.feed(same_page_other_content))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "amended"}, "key 'kind' must be one of initial, correction, deletion"),
        ({"replaces": "st-0"}, "an initial statement replaces nothing"),
        ({"sha256": "ABC"}, "key 'sha256' must be 64 lower-case hex digits"),
        ({"html_path": "statements/../../etc/passwd.html"}, "key 'html_path' must be a relative path"),
        ({"html_path": "/tmp/x.html"}, "key 'html_path' must be a relative path"),
        ({"environment": "dev"}, "key 'environment' must be one of test, prod"),
        ({"year": "2025"}, "key 'year' must be a reporting year"),
        ({"seller_id": ""}, "key 'seller_id' must be a non-empty string"),
        ({"identity": None}, "key 'identity' must be an object"),
        ({"currency": "eur"}, "key 'currency' must be an ISO 4217 code"),
        ({"seller_id": "S2"}, "key 'seller_id': record .* is another seller's"),
        ({"year": 2024}, "is a filing of DE 2025 .test.; the statement says DE 2024"),
    ],
)
def test_a_malformed_line_names_file_line_and_key_and_records_nothing(
    ledger: Ledger, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    run = Run(ledger, tmp_path, {"S1": 1, "S2": 2})
    good = run.statement("S2", "st-b")
    bad = run.statement("S1", "st-a") | change
    with pytest.raises(StatementFeedError, match=message) as caught:
        ledger.record_statements(run.feed(good, bad))
    assert "statements.jsonl line 2" in str(caught.value)
    assert "12345678901" not in str(caught.value) and "Ona" not in str(caught.value)  # no personal data
    assert rows(ledger, t.statements) == []  # the good first line was not recorded either


def rows_of(run: Run, *statements: dict[str, Any]) -> Path:
    """The rows the statements' writer makes with a feed of ``statements``."""
    from reporting.statements.build import ledger_row

    path = run.out / "rows.tmp"
    path.write_bytes(b"".join(ledger_row(s) for s in statements))
    return path


def test_the_writers_rows_record_what_the_feed_records(ledger: Ledger, tmp_path: Path) -> None:
    """Recorded from the rows the writer made (each statement's canonical JSON made there): the
    same rows, events and hashes as from the feed read back; the same statements again change
    nothing, whichever of the two is recorded."""
    run = Run(ledger, tmp_path, {"S1": 1, "S2": 2})
    a, b = run.statement("S1", "st-a"), run.statement("S2", "st-b")
    feed = run.feed(a, b)
    assert ledger.record_statements(feed, at=MADE, rows=rows_of(run, a, b)) == 2
    recorded = rows(ledger, t.statements)
    assert [(r.statement_id, r.seller_id, r.doc_ref_id, r.sha256) for r in recorded] == [
        ("st-a", "S1", run.docs["S1"], a["sha256"]),
        ("st-b", "S2", run.docs["S2"], b["sha256"]),
    ]
    assert [r.content_hash for r in recorded] == [content_hash(a), content_hash(b)]
    assert [json.loads(r.content) for r in recorded] == [a, b]
    assert [e.source for e in rows(ledger, t.statement_events)] == ["statements.jsonl"] * 2  # the feed's name
    assert ledger.record_statements(feed) == 0
    assert ledger.record_statements(feed, rows=rows_of(run, a, b)) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "amended"}, "key 'kind' must be one of initial, correction, deletion"),
        ({"sha256": "ABC"}, "key 'sha256' must be 64 lower-case hex digits"),
        ({"identity": None}, "key 'identity' must be an object"),
        ({"activities": {}}, "key 'activities' must be a list"),
        ({"seller_id": "S2"}, "key 'seller_id': record .* is another seller's"),
    ],
)
def test_a_row_is_checked_as_its_feed_line_is(
    ledger: Ledger, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    run = Run(ledger, tmp_path, {"S1": 1, "S2": 2})
    good, bad = run.statement("S2", "st-b"), run.statement("S1", "st-a") | change
    with pytest.raises(StatementFeedError, match=message) as caught:
        ledger.record_statements(run.feed(good, bad), rows=rows_of(run, good, bad))
    assert "statements.jsonl line 2" in str(caught.value)
    assert rows(ledger, t.statements) == []


def test_a_row_that_is_not_a_statements_row_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    run = Run(ledger, tmp_path, {"S1": 1})
    a = run.statement("S1", "st-a")
    broken = run.out / "broken.tmp"
    broken.write_text(json.dumps([a, "0" * 64]) + "\n", encoding="utf-8")
    with pytest.raises(StatementFeedError, match=r"statements.jsonl line 1: not a statement's row"):
        ledger.record_statements(run.feed(a), rows=broken)


def test_the_seller_of_each_reportable_seller_record(ledger: Ledger, tmp_path: Path) -> None:
    """What the statements' writer asks of each record read: the seller of a ReportableSeller
    record; nothing for the PlatformOperator's record or a DocRefId the ledger does not know."""
    run = Run(ledger, tmp_path, {"S1": 1, "S2": 2})
    operator = [r.doc_ref_id for r in ledger.records(run.refs[0]) if r.seller_key is None]
    asked = [run.docs["S2"], run.docs["S1"], *operator, "DE2025-UNKNOWN"]
    assert operator
    assert ledger.statement_sellers(asked) == {run.docs["S1"]: "S1", run.docs["S2"]: "S2"}
    known = ledger.known_records(asked)
    assert ledger.statement_sellers(asked) == {
        d: k.seller_key for d, k in known.items() if k.kind == "seller" and k.seller_key is not None
    }


def test_a_statement_names_a_filing_of_this_ledger(ledger: Ledger, tmp_path: Path) -> None:
    run = Run(ledger, tmp_path, {"S1": 1})
    stray = run.statement("S1", "st-a")
    stray["filed_with"] = {"country": "DE", "message_ref_id": "DE2025-unknown", "doc_ref_id": "x"}
    with pytest.raises(StatementFeedError, match="message DE2025-unknown is not in this ledger"):
        ledger.record_statements(run.feed(stray))
    stray["filed_with"] = {"country": "DE", "message_ref_id": run.refs[0], "doc_ref_id": "DE2025-nothing"}
    with pytest.raises(StatementFeedError, match="DE2025-nothing is no ReportableSeller record"):
        ledger.record_statements(run.feed(stray))
    (tmp_path / "2025" / "statements" / "statements.jsonl").write_text("{not json\n", encoding="utf-8")
    with pytest.raises(StatementFeedError, match=r"statements\.jsonl line 1: not a JSON object"):
        ledger.record_statements(tmp_path / "2025" / "statements" / "statements.jsonl")


def test_a_correction_replaces_the_earlier_statement_in_the_counts(ledger: Ledger, tmp_path: Path) -> None:
    run = Run(ledger, tmp_path, {"S1": 1, "S2": 2})
    ledger.record_statements(run.feed(run.statement("S1", "st-a"), run.statement("S2", "st-b")), at=MADE)
    correction_refs = run.filer.file(current({"S1": 5, "S2": 2}))  # S1 corrected
    assert run.filer.ledger.records(correction_refs[0])[-1].doc_type == CORRECTION
    newer = run.statement("S1", "st-c", kind="correction", replaces="st-a", ref=correction_refs[0])
    assert ledger.record_statements(run.feed(newer), at=MADE) == 1
    (counts,) = ledger.statement_counts(year=2025)
    # st-a is superseded, not unsent; st-b and st-c are pending
    assert (counts.pending, counts.sent, counts.failed, counts.superseded, counts.unsent) == (2, 0, 0, 1, 2)
    info = ledger.statement("st-a")
    assert info is not None and info.superseded_by == "st-c" and info.status == "pending"
    assert [s.statement_id for s in ledger.statements(status="superseded")] == ["st-a"]
    assert [s.statement_id for s in ledger.statements(status="pending")] == ["st-b", "st-c"]


def test_a_correction_of_a_statement_never_recorded_is_recorded_and_flagged(
    ledger: Ledger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator who starts recording statements mid-year: the earlier notice predates the
    ledger. The correction and the deletion are notices too and are recorded as given."""
    run = Run(ledger, tmp_path, {"S1": 1, "S2": 2})
    ledger.record_statements(run.feed(run.statement("S2", "st-b")), at=MADE)
    correction_refs = run.filer.file(current({"S1": 5, "S2": 2}))
    orphan = run.statement("S1", "st-c", kind="correction", replaces="st-zz", ref=correction_refs[0])
    known = run.statement("S2", "st-d", kind="correction", replaces="st-b")
    with caplog.at_level("WARNING", logger="reporting.ledger.statements"):
        assert ledger.record_statements(run.feed(orphan, known), at=MADE) == 2
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    said = warning.getMessage()
    assert "statements.jsonl: 1 correction or deletion statement(s) replace a statement this ledger never" in said
    assert "S1" not in said and "Ona" not in said and "12345678901" not in said
    c, d = ledger.statement("st-c"), ledger.statement("st-d")
    assert c is not None and (c.replaces, c.replaces_recorded, c.status) == ("st-zz", False, "pending")
    assert d is not None and (d.replaces, d.replaces_recorded) == ("st-b", True)
    b = ledger.statement("st-b")
    assert b is not None and b.replaces_recorded is None and b.superseded_by == "st-d"
    (counts,) = ledger.statement_counts(year=2025)
    assert (counts.pending, counts.superseded) == (2, 1)  # st-c and st-d; st-b superseded
    caplog.clear()
    with caplog.at_level("WARNING", logger="reporting.ledger.statements"):
        assert ledger.record_statements(run.feed(orphan, known)) == 0  # again: nothing, no warning
    assert not caplog.records


def test_a_replaces_of_another_sellers_or_environments_statement_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    run = Run(ledger, tmp_path, {"S1": 1, "S2": 2})
    ledger.record_statements(run.feed(run.statement("S1", "st-a"), run.statement("S2", "st-b")), at=MADE)
    theft = run.statement("S2", "st-c", kind="correction", replaces="st-a")
    with pytest.raises(
        StatementFeedError, match=r"line 1 \(statement st-c\): key 'replaces': statement st-a is another"
    ):
        ledger.record_statements(run.feed(theft))
    prod = Run(ledger, tmp_path / "prod", {"S1": 1}, environment="prod")
    across = prod.statement("S1", "st-p", kind="correction", replaces="st-a")
    with pytest.raises(StatementFeedError, match="statement st-a is another seller's or another environment's"):
        ledger.record_statements(prod.feed(across))
    assert ledger.statement("st-c") is None and ledger.statement("st-p") is None


# ------------------------------------------------------------------------------ delivery reports


def recorded(ledger: Ledger, tmp_path: Path) -> Run:
    run = Run(ledger, tmp_path, {"S1": 1, "S2": 2, "S3": 3})
    ledger.record_statements(
        run.feed(run.statement("S1", "st-a"), run.statement("S2", "st-b"), run.statement("S3", "st-c")), at=MADE
    )
    return run


def mark(ledger: Ledger, path: Path) -> Any:
    return ledger.mark_statements(read_delivery_report(path), source=path.name)


def test_a_csv_report_marks_sent_and_failed_and_is_idempotent(ledger: Ledger, tmp_path: Path) -> None:
    recorded(ledger, tmp_path)
    report = tmp_path / "delivery.csv"
    report.write_text(
        "statement_id,time,status,detail\n"
        "st-a,2026-01-21T10:00:00Z,sent,\n"
        "st-b,2026-01-21T11:00:00+01:00,failed,mailbox full\n",
        encoding="utf-8",
    )
    out = mark(ledger, report)
    assert (out.events, out.recorded, out.changed, out.older, out.repeated) == (2, 2, 2, 0, 0)
    assert dict(out.statuses) == {"sent": 1, "failed": 1}
    a, b = ledger.statement("st-a"), ledger.statement("st-b")
    assert a is not None and (a.status, a.status_changed) == ("sent", datetime(2026, 1, 21, 10, 0))
    assert b is not None and (b.status, b.status_changed) == ("failed", datetime(2026, 1, 21, 10, 0))  # +01:00
    assert [(e.status, e.detail) for e in ledger.statement_history("st-b")] == [
        ("pending", None),
        ("failed", "mailbox full"),
    ]
    again = mark(ledger, report)
    assert (again.recorded, again.changed, again.repeated) == (0, 0, 2)
    (counts,) = ledger.statement_counts()
    assert (counts.pending, counts.sent, counts.failed, counts.unsent) == (1, 1, 1, 2)


def test_an_older_event_stays_in_the_history_only(ledger: Ledger, tmp_path: Path) -> None:
    recorded(ledger, tmp_path)
    newer = tmp_path / "newer.jsonl"
    newer.write_text('{"statement_id": "st-a", "time": "2026-01-22T08:00:00Z", "status": "sent"}\n', encoding="utf-8")
    older = tmp_path / "older.json"
    older.write_text(
        json.dumps([{"statement_id": "st-a", "time": "2026-01-21T08:00:00Z", "status": "failed", "detail": "bounce"}]),
        encoding="utf-8",
    )
    mark(ledger, newer)
    out = mark(ledger, older)
    assert (out.recorded, out.changed, out.older) == (1, 0, 1)
    info = ledger.statement("st-a")
    assert info is not None and (info.status, info.status_changed) == ("sent", datetime(2026, 1, 22, 8, 0))
    assert [(e.at, e.status) for e in ledger.statement_history("st-a")] == [
        (MADE, "pending"),
        (datetime(2026, 1, 21, 8, 0), "failed"),
        (datetime(2026, 1, 22, 8, 0), "sent"),
    ]
    # a later failure (a retry that bounced) does change it; at the same time, sent wins
    later = tmp_path / "later.csv"
    later.write_text(
        "statement_id,time,status\nst-a,2026-01-23T08:00:00Z,failed\nst-b,2026-01-23T08:00:00Z,failed\n"
        "st-b,2026-01-23T08:00:00Z,sent\n",
        encoding="utf-8",
    )
    mark(ledger, later)
    assert [ledger.statement(s).status for s in ("st-a", "st-b")] == ["failed", "sent"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "r.csv",
            "statement_id,time,status\nst-a,2026-01-21T10:00:00Z,sent\nst-x,2026-01-21T10:00:00Z,sent\n",
            r"r.csv line 3: statement st-x is not in this ledger",
        ),
        (
            "r.csv",
            "statement_id,time,status\nst-a,2026-01-21T10:00:00Z,sent\nst-b,2026-01-21 10:00,sent\n",
            r"r.csv line 3: time '2026-01-21 10:00' has no offset",
        ),
        (
            "r.csv",
            "statement_id,time,status\nst-a,2026-01-21T10:00:00Z,sent\nst-b,yesterday,sent\n",
            r"r.csv line 3: time 'yesterday' is not ISO 8601",
        ),
        (
            "r.csv",
            "statement_id,time,status\nst-a,2026-01-21T10:00:00Z,sent\nst-b,2026-01-21T10:00:00Z,read\n",
            r"r.csv line 3: status 'read' must be one of sent, failed",
        ),
        ("r.csv", "id,when,status\nst-a,2026-01-21T10:00:00Z,sent\n", r"r.csv line 1: the header must be"),
        (
            "r.csv",
            "statement_id,time,status\nst-a,2026-01-21T10:00:00Z\n",
            r"r.csv line 2: 2 field\(s\), the header has 3",
        ),
        (
            "r.jsonl",
            '{"statement_id": "st-a", "time": "2026-01-21T10:00:00Z", "status": "sent"}\n{"statement_id": "st-b"',
            r"r.jsonl line 2: not a JSON object",
        ),
        (
            "r.json",
            '[{"statement_id": "st-a", "time": "2026-01-21T10:00:00Z", "status": "sent", "tin": "1"}]',
            r"r.json item 1: unknown key\(s\) tin",
        ),
        ("r.json", '{"statement_id": "st-a"', r"r.jsonl? line 1: not a JSON object"),
    ],
)
def test_a_bad_report_line_is_named_and_nothing_is_applied(
    ledger: Ledger, tmp_path: Path, name: str, text: str, message: str
) -> None:
    recorded(ledger, tmp_path)
    report = tmp_path / name
    report.write_text(text, encoding="utf-8")
    with pytest.raises(DeliveryReportError, match=message):
        mark(ledger, report)
    assert [e.status for e in rows(ledger, t.statement_events)] == ["pending"] * 3  # st-a's line 2 undone
    assert {s.status for s in ledger.statements()} == {"pending"}


@pytest.mark.parametrize(
    ("time", "message"),
    [
        ("2026-02-01T12:05:01Z", r"line 3: time 2026-02-01 12:05:01 UTC is in the future \(more than 5 minutes after"),
        ("2026-02-01T13:05:01+01:00", r"line 3: time 2026-02-01 12:05:01 UTC is in the future"),
        ("2026-01-20T08:59:59Z", r"line 3: time 2026-01-20 08:59:59 UTC is before statement st-b was recorded"),
        ("2026-01-20T09:59:59+01:00", r"line 3: time 2026-01-20 08:59:59 UTC is before statement st-b was recorded"),
    ],
)
def test_a_delivery_after_now_or_before_the_statement_is_refused(
    ledger: Ledger, tmp_path: Path, time: str, message: str
) -> None:
    """Now is 2026-02-01 12:00 UTC; the statements were recorded 2026-01-20 09:00 UTC (MADE)."""
    recorded(ledger, tmp_path)
    report = tmp_path / "r.csv"
    report.write_text(f"statement_id,time,status\nst-a,2026-01-21T10:00:00Z,sent\nst-b,{time},sent\n", encoding="utf-8")
    with pytest.raises(DeliveryReportError, match=message):
        ledger.mark_statements(read_delivery_report(report), source=report.name, at=datetime(2026, 2, 1, 12, 0))
    assert {s.status for s in ledger.statements()} == {"pending"}  # all or nothing: st-a's line undone


def test_a_delivery_at_the_bounds_is_accepted(ledger: Ledger, tmp_path: Path) -> None:
    """Exactly when the statement was recorded, and exactly five minutes after now: both accepted."""
    recorded(ledger, tmp_path)
    report = tmp_path / "r.csv"
    report.write_text(
        "statement_id,time,status\nst-a,2026-01-20T09:00:00Z,sent\nst-b,2026-02-01T12:05:00Z,failed\n",
        encoding="utf-8",
    )
    out = ledger.mark_statements(read_delivery_report(report), source=report.name, at=datetime(2026, 2, 1, 12, 0))
    assert out.changed == 2
    assert [ledger.statement(s).status for s in ("st-a", "st-b")] == ["sent", "failed"]  # type: ignore[union-attr]


def test_mark_sent_refuses_a_future_time_naming_file_and_line(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded(ledger, tmp_path)
    report = tmp_path / "delivery.jsonl"
    report.write_text('{"statement_id": "st-a", "time": "2999-01-01T00:00:00Z", "status": "sent"}\n', encoding="utf-8")
    assert main(["statements", "mark-sent", "--file", str(report), "--ledger", ledger_url]) == 2
    err = capsys.readouterr().err
    assert (
        "delivery.jsonl line 1: time 2999-01-01 00:00:00 UTC is in the future" in err and "nothing was applied" in err
    )


def test_the_report_format_is_found_by_content_without_extension(ledger: Ledger, tmp_path: Path) -> None:
    recorded(ledger, tmp_path)
    for name, text in (
        ("a", '[{"statement_id": "st-a", "time": "2026-01-21T10:00:00Z", "status": "sent"}]'),
        ("b", '{"statement_id": "st-b", "time": "2026-01-21T10:00:00Z", "status": "sent"}\n'),
        ("c", "\ufeffstatement_id,time,status\nst-c,2026-01-21T10:00:00Z,sent\n"),
    ):
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert mark(ledger, tmp_path / name).changed == 1
    assert {s.status for s in ledger.statements()} == {"sent"}


def test_mark_sent_command(ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recorded(ledger, tmp_path)
    report = tmp_path / "delivery.csv"
    report.write_text("statement_id,time,status\nst-a,2026-01-21T10:00:00Z,sent\n", encoding="utf-8")
    assert main(["statements", "mark-sent", "--file", str(report), "--ledger", ledger_url]) == 0
    said = capsys.readouterr().out
    assert "1 line(s); 1 new event(s) (1 sent); 1 statement(s) changed status" in said
    assert main(["statements", "list", "--status", "sent", "--ledger", ledger_url]) == 0
    listed = capsys.readouterr().out
    assert "st-a" in listed and "st-b" not in listed and "2025 DE test: 2 pending, 1 sent, 0 failed" in listed
    report.write_text("statement_id,time,status\nst-b,2026-01-21T10:00:00Z,sent\nst-x,2026-01-21T10:00:00Z,sent\n")
    assert main(["statements", "mark-sent", "--file", str(report), "--ledger", ledger_url]) == 2
    err = capsys.readouterr().err
    assert "delivery.csv line 3: statement st-x is not in this ledger" in err and "nothing was applied" in err
    assert ledger.statement("st-b").status == "pending"  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------ retention


def test_retention_ends_ten_years_after_the_end_of_the_year_made() -> None:
    # PStTG § 24(3): made in 2026 (Berlin), kept to the end of 2036, deleted from 1 January 2037
    assert retention_ends(datetime(2026, 1, 20, 9), BERLIN) == datetime(2037, 1, 1, tzinfo=BERLIN).astimezone(UTC)
    # 31 Dec 2026 23:30 UTC is already 2027 in Berlin: made in 2027
    assert retention_ends(datetime(2026, 12, 31, 23, 30), BERLIN) == datetime(2038, 1, 1, tzinfo=BERLIN)
    assert retention_ends(datetime(2026, 12, 31, 22, 59, 59), BERLIN) == datetime(2037, 1, 1, tzinfo=BERLIN)


def test_housekeeping_erases_at_the_boundary_and_not_before(ledger: Ledger, tmp_path: Path) -> None:
    run = recorded(ledger, tmp_path)  # made 2026-01-20 (MADE)
    ledger.mark_statements(read_delivery_report(_csv(tmp_path, "st-a,2026-01-21T10:00:00Z,sent")), source="d.csv")
    (tmp_path / "2025" / "statements" / "statements.jsonl").touch()
    (tmp_path / "2025" / "statements" / "runs").mkdir(mode=0o700)
    run_feed = tmp_path / "2025" / "statements" / "runs" / "run-1.jsonl"  # a run's own copy of its feed
    run_feed.touch()
    pages = sorted((tmp_path / "2025" / "statements").rglob("*.html"))
    assert len(pages) == 3

    def zone(_authority: str) -> ZoneInfo:
        return BERLIN

    kept = datetime(2036, 12, 31, 23, 59, 59, tzinfo=BERLIN)
    out = erase_expired(ledger.engine, tmp_path, now=kept, zone_of=zone)
    assert (out.statements, out.files, out.feeds) == (0, 0, 0)
    due = datetime(2037, 1, 1, 0, 0, tzinfo=BERLIN)
    dry = erase_expired(ledger.engine, tmp_path, now=due, zone_of=zone, dry_run=True)
    assert (dry.statements, dry.files, dry.feeds, dry.dry_run) == (3, 3, 2, True)
    assert all(p.exists() for p in pages) and ledger.statement("st-a").seller_id == "S1"  # type: ignore[union-attr]
    assert run_feed.exists()
    done = erase_expired(ledger.engine, tmp_path, now=due, zone_of=zone)
    assert (done.statements, done.files, done.feeds) == (3, 3, 2)
    assert not any(p.exists() for p in pages)
    assert not (tmp_path / "2025" / "statements" / "statements.jsonl").exists()
    assert not run_feed.exists()
    for r in rows(ledger, t.statements):
        assert (r.content, r.seller_id, r.html_path) == (None, None, None)
        assert r.erased == datetime(2036, 12, 31, 23, 0)  # 1 January 00:00 in Berlin, in UTC
    # the ids, hashes and delivery dates stay: the record that the notice was given
    info = ledger.statement("st-a")
    assert info is not None and info.status == "sent" and len(ledger.statement_history("st-a")) == 2
    assert erase_expired(ledger.engine, tmp_path, now=due, zone_of=zone).statements == 0  # once
    assert run.year == 2025


def _berlin(_authority: str) -> ZoneInfo:
    return BERLIN


DUE = datetime(2037, 1, 1, 0, 0, tzinfo=BERLIN)  # the retention of statements made in 2026 ends


def test_the_output_directory_is_recorded_and_retention_finds_the_pages_there(ledger: Ledger, tmp_path: Path) -> None:
    run = recorded(ledger, tmp_path)  # feed under <tmp>/2025/statements/: out_dir <tmp>/2025
    info = ledger.statement("st-a")
    assert info is not None and info.out_dir == str((tmp_path / "2025").absolute())
    other = Run(ledger, tmp_path / "elsewhere", {"S4": 4}, year=2024)
    away = tmp_path / "elsewhere" / "2024" / "statements" / "away.jsonl"
    away.parent.mkdir(parents=True, exist_ok=True)
    away.write_text(json.dumps(other.statement("S4", "st-e")) + "\n", encoding="utf-8")
    explicit = tmp_path / "copy.jsonl"  # a feed outside any statements folder, its directory given
    explicit.write_bytes(away.read_bytes())
    assert ledger.record_statements(explicit, out_dir=tmp_path / "elsewhere" / "2024", at=MADE) == 1
    assert ledger.statement("st-e").out_dir == str(tmp_path / "elsewhere" / "2024")  # type: ignore[union-attr]
    (tmp_path / "2025" / "statements" / "statements.jsonl").touch()
    pages = sorted(tmp_path.rglob("*.html"))
    assert len(pages) == 4
    # no out_root at all: every statement has its directory, and every page is found
    done = erase_expired(ledger.engine, None, now=DUE, zone_of=_berlin)
    assert (done.statements, done.files, done.missing_files, done.feeds) == (4, 4, 0, 1)
    assert not any(p.exists() for p in pages) and not (tmp_path / "2025" / "statements" / "statements.jsonl").exists()
    assert run.year == 2025


def test_a_page_not_found_is_an_error_and_keeps_its_content_unless_acknowledged(ledger: Ledger, tmp_path: Path) -> None:
    recorded(ledger, tmp_path)
    report = tmp_path / "d.csv"
    report.write_text(
        "statement_id,time,status,detail\nst-a,2026-01-21T10:00:00Z,failed,Ona Example moved\n"
        "st-b,2026-01-21T10:00:00Z,sent,\n",
        encoding="utf-8",
    )
    ledger.mark_statements(read_delivery_report(report), source="d.csv")
    lost = next((tmp_path / "2025" / "statements").rglob("st-b.html"))
    lost.unlink()
    (tmp_path / "2025" / "statements" / "statements.jsonl").touch()
    dry = erase_expired(ledger.engine, tmp_path, now=DUE, zone_of=_berlin, dry_run=True)  # counts, never raises
    assert (dry.statements, dry.files, dry.missing_files, dry.missing_ids, dry.feeds) == (2, 2, 1, ["st-b"], 0)
    with pytest.raises(
        RetentionError, match=r"retention of 1 statement\(s\) has ended but their page was not found"
    ) as caught:
        erase_expired(ledger.engine, tmp_path, now=DUE, zone_of=_berlin)
    said = str(caught.value)
    assert "first: st-b)" in said and "2 other statement(s) were erased" in said and "missing_ok" in said
    assert "S2" not in said and "Ona" not in said
    b = rows(ledger, t.statements)[1]
    assert (b.statement_id, b.seller_id, b.erased) == ("st-b", "S2", None) and b.content is not None
    a = rows(ledger, t.statements)[0]
    assert (a.seller_id, a.content, a.html_path) == (None, None, None) and a.erased is not None
    # the platform's free text goes with the rest: it may name the seller
    assert [(e.status, e.detail) for e in ledger.statement_history("st-a")] == [("pending", None), ("failed", None)]
    assert (tmp_path / "2025" / "statements" / "statements.jsonl").exists()  # st-b is not erased yet
    again = erase_expired(ledger.engine, tmp_path, now=DUE, zone_of=_berlin, missing_ok=True)
    assert (again.statements, again.files, again.missing_files, again.feeds) == (1, 0, 1, 1)
    b = rows(ledger, t.statements)[1]
    assert (b.seller_id, b.content) == (None, None) and b.erased is not None
    assert not (tmp_path / "2025" / "statements" / "statements.jsonl").exists()


def test_without_out_root_a_statement_recorded_without_its_directory_is_not_found(
    ledger: Ledger, tmp_path: Path
) -> None:
    run = Run(ledger, tmp_path, {"S1": 1})
    loose = tmp_path / "loose.jsonl"  # in no statements folder: no out_dir recorded
    loose.write_text(json.dumps(run.statement("S1", "st-a")) + "\n", encoding="utf-8")
    ledger.record_statements(loose, at=MADE)
    assert ledger.statement("st-a").out_dir is None  # type: ignore[union-attr]
    with pytest.raises(RetentionError, match="first: st-a"):
        erase_expired(ledger.engine, None, now=DUE, zone_of=_berlin)
    assert ledger.statement("st-a").erased is None  # type: ignore[union-attr]
    done = erase_expired(ledger.engine, tmp_path, now=DUE, zone_of=_berlin)  # <out_root>/<year>/html_path
    assert (done.statements, done.files) == (1, 1)


def _csv(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "d.csv"
    path.write_text("statement_id,time,status\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_report_that_is_not_utf8_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    recorded(ledger, tmp_path)
    report = tmp_path / "latin1.csv"
    report.write_bytes(
        "statement_id,time,status,detail\nst-a,2026-01-21T10:00:00Z,sent,Zustellung über\n".encode("latin-1")
    )
    with pytest.raises(DeliveryReportError, match=r"latin1\.csv: not UTF-8 text"):
        mark(ledger, report)
    assert {s.status for s in ledger.statements()} == {"pending"}


def test_feeds_reports_and_retention_run_in_batches(ledger: Ledger, tmp_path: Path) -> None:
    """1,201 statements: more than two batches of 500 in each step, with the same results."""
    sellers = {f"S{n:04d}": n for n in range(1201)}
    run = Run(ledger, tmp_path, sellers)
    feed = tmp_path / "big.jsonl"
    with feed.open("w", encoding="utf-8") as out:
        for seller in sellers:
            item = run.statement(seller, f"st-{seller}", page=f"<p>{seller}</p>")
            out.write(json.dumps(item) + "\n")
    assert ledger.record_statements(feed, at=MADE) == 1201
    assert ledger.record_statements(feed) == 0
    report = tmp_path / "big.csv"
    report.write_text(
        "statement_id,time,status\n"
        + "".join(f"st-{s},2026-01-21T10:00:00Z,{'failed' if n % 3 == 0 else 'sent'}\n" for n, s in enumerate(sellers)),
        encoding="utf-8",
    )
    out = mark(ledger, report)
    assert (out.recorded, out.changed, dict(out.statuses)) == (1201, 1201, {"sent": 800, "failed": 401})
    (counts,) = ledger.statement_counts()
    assert (counts.pending, counts.sent, counts.failed) == (0, 800, 401)
    done = erase_expired(ledger.engine, tmp_path, now=datetime(2037, 1, 1, tzinfo=BERLIN), zone_of=lambda _: BERLIN)
    assert (done.statements, done.files, done.missing_files) == (1201, 1201, 0)
    assert len(done.statement_ids) == 100
    assert not list((tmp_path / "2025" / "statements").rglob("*.html"))
