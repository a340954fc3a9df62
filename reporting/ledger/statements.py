"""The delivery record of seller statements: which statement was made for which filed record,
whether the platform delivered it (pending, sent, failed) and when, and its retention.

The law behind it:

- every reportable seller receives the information reported about them by 31 January of the
  following year (PStTG § 22(2); Directive 2011/16/EU, Annex V, Section III(A));
- the operator records the content and the date of each such notice (PStTG § 24(1) Nr. 4), by
  31 January of the year after the reporting period (§ 24(2) Nr. 3);
- those records are kept for ten years (§ 24(3) sentence 1), counted from the end of the
  calendar year in which they were made (sentence 3), and the records of § 24(1) Nr. 2 to 5 are
  deleted when that time has run (sentence 2); not deleting them, or not in time, is an
  administrative offence (§ 25(1) Nr. 9), and so is not keeping them ten years (§ 25(1) Nr. 8).

Source of these readings: the PStTG as published on gesetze-im-internet.de (consolidated text,
last amended by Art. 5 G v. 22.12.2025; source DE-PStTG of the project's legal notes): § 22(2),
§ 24(1) Nr. 4, § 24(2) Nr. 3, § 24(3) sentences 1 to 3 and § 25(1) Nr. 8 and 9 were checked
word for word against that text, including the quotation in :func:`retention_ends`.

So each statement of the feed ``statements/statements.jsonl`` becomes one row of
``ledger_statements`` (its ids, the hash of its HTML page, the hash and the canonical JSON of its
feed object, made = ``created``), and each delivery report line one row of
``ledger_statement_events``. The rows hold personal data (``content``, ``seller_id``) until
:func:`erase_expired` removes it; the error messages here name statement ids, MessageRefIds and
DocRefIds, never a name, TIN, address or birth date.

Counting: a statement that a later recorded statement replaces (its ``replaces``) is *superseded*;
it is counted as such and never as pending, sent or failed, whatever its own delivery status
(which stays in its row and history). The pending, sent and failed counts are those of the
statements that nothing replaces: what the sellers should hold now.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import reporting.ledger.schema as t
from reporting.ledger.errors import DeliveryReportError, LedgerError, RetentionError, StatementFeedError
from reporting.ledger.model import (
    DELIVERY_STATUSES,
    FAILED,
    INITIAL,
    PENDING,
    REPORTED_STATUSES,
    RESEND,
    SELLER,
    SENT,
    STATEMENT_KINDS,
    canonical_json,
)
from reporting.vocabulary import DEFAULT_OPERATOR, ENVIRONMENTS, STATEMENTS_DIR, STATEMENTS_FEED, STATEMENTS_RUNS_DIR

#: The feed's file in a run's output directory, and the folder of the pages.
FEED_NAME = STATEMENTS_FEED
RUN_FEEDS_DIR = STATEMENTS_RUNS_DIR  # statements/runs/<run_id>.jsonl: each run's own feed, the same bytes
#: Years a statement's record is kept, from the end of the year it was made (PStTG § 24(3)).
RETENTION_YEARS = 10
#: The keys of a delivery report (CSV header, JSON object keys).
REPORT_KEYS = ("statement_id", "time", "status", "detail")
_BATCH = 500
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_MAX_DETAIL = 500
#: How far a delivery event may lie ahead of the ledger's clock (clocks of two systems differ).
CLOCK_SKEW = timedelta(minutes=5)

log = logging.getLogger(__name__)


def _utc(at: datetime | None = None) -> datetime:
    at = at or datetime.now(UTC)
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


# ------------------------------------------------------------------------------------ the feed


@dataclass(frozen=True, slots=True)
class FeedStatement:
    """What the ledger keeps of one line of ``statements.jsonl``."""

    line: int
    statement_id: str
    replaces: str | None
    kind: str
    seller_id: str
    year: int
    environment: str
    language: str
    authority: str
    message_ref_id: str
    doc_ref_id: str
    html_path: str
    sha256: str
    content_hash: str
    content: str


def read_feed(feed: Path, *, rows: Path | None = None) -> Iterator[FeedStatement]:
    """The statements of a feed, one line at a time (memory flat in the number of statements);
    a malformed line is a :class:`StatementFeedError` naming the file, the line and the key.

    ``rows``: the feed's rows as the statements' writer made them, line for line
    (``reporting.statements.build.ledger_row``: ``[summary, content_hash, content]``, the
    summary checked here as the feed object is), read instead of the feed: the canonical JSON of
    each statement was made by the process that wrote it. Errors name the feed."""
    name = Path(feed).name
    source = Path(feed) if rows is None else Path(rows)
    try:
        handle = open(source, encoding="utf-8")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise StatementFeedError(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    with handle:
        number = 0
        try:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except ValueError:
                    raise StatementFeedError(f"{name} line {number}: not a JSON object") from None
                if rows is None:
                    yield _feed_statement(name, number, obj)
                    continue
                if not (
                    isinstance(obj, list) and len(obj) == 3 and isinstance(obj[1], str) and isinstance(obj[2], str)
                ):
                    raise StatementFeedError(f"{name} line {number}: not a statement's row")
                yield _feed_statement(name, number, obj[0], content=obj[2], content_hash=obj[1])
        except UnicodeDecodeError:
            raise StatementFeedError(f"{name} line {number + 1}: not UTF-8 text") from None


def _feed_statement(
    name: str, line: int, obj: Any, *, content: str | None = None, content_hash: str | None = None
) -> FeedStatement:
    """One statement of a feed, checked; ``content`` and ``content_hash``: its canonical JSON and
    the sha256 of it where the writer made them (``obj`` then its summary, see :func:`read_feed`)."""
    where = f"{name} line {line}"
    if not isinstance(obj, dict):
        raise StatementFeedError(f"{where}: not a JSON object")

    def text(key: str, limit: int, parent: dict[str, Any] | None = None, label: str | None = None) -> str:
        value = (obj if parent is None else parent).get(key)
        if not isinstance(value, str) or not value.strip():
            raise StatementFeedError(f"{where}: key {label or key!r} must be a non-empty string")
        if len(value) > limit:
            raise StatementFeedError(f"{where}: key {label or key!r} is longer than {limit} characters")
        return value

    statement_id = text("statement_id", 200)
    where = f"{where} (statement {statement_id})"
    for key in ("identity", "filed_with"):
        if not isinstance(obj.get(key), dict):
            raise StatementFeedError(f"{where}: key {key!r} must be an object")
    for key in ("receiving_states", "activities"):
        if not isinstance(obj.get(key), list):
            raise StatementFeedError(f"{where}: key {key!r} must be a list")
    kind = obj.get("kind")
    if kind not in STATEMENT_KINDS:
        raise StatementFeedError(f"{where}: key 'kind' must be one of {', '.join(STATEMENT_KINDS)}")
    replaces = obj.get("replaces")
    if replaces is not None and (not isinstance(replaces, str) or not replaces.strip() or len(replaces) > 200):
        raise StatementFeedError(f"{where}: key 'replaces' must be a statement_id or null")
    if (kind == INITIAL) != (replaces is None):
        raise StatementFeedError(
            f"{where}: key 'replaces': an initial statement replaces nothing (null), a correction or deletion "
            "names the statement it replaces"
        )
    if replaces == statement_id:
        raise StatementFeedError(f"{where}: key 'replaces' names the statement itself")
    year = obj.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 9999:
        raise StatementFeedError(f"{where}: key 'year' must be a reporting year (an integer)")
    environment = obj.get("environment")
    if environment not in ENVIRONMENTS:
        raise StatementFeedError(f"{where}: key 'environment' must be one of {', '.join(ENVIRONMENTS)}")
    filed = obj["filed_with"]
    country = text("country", 2, filed, "filed_with.country")
    if not _COUNTRY.match(country):
        raise StatementFeedError(f"{where}: key 'filed_with.country' must be a country code (two capitals)")
    currency = obj.get("currency")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise StatementFeedError(f"{where}: key 'currency' must be an ISO 4217 code (three capitals)")
    html_path = text("html_path", 400)
    parts = html_path.split("/")
    if (
        parts[0] != STATEMENTS_DIR
        or len(parts) < 2
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in html_path
        or "\x00" in html_path
        or not html_path.endswith(".html")
    ):
        raise StatementFeedError(
            f"{where}: key 'html_path' must be a relative path under {STATEMENTS_DIR}/ ending in .html, "
            "without empty, '.' or '..' parts"
        )
    sha256 = obj.get("sha256")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise StatementFeedError(f"{where}: key 'sha256' must be 64 lower-case hex digits")
    if content is None:
        content = canonical_json(obj)
        content_hash = None
    return FeedStatement(
        line=line,
        statement_id=statement_id,
        replaces=replaces,
        kind=kind,
        seller_id=text("seller_id", 200),
        year=year,
        environment=environment,
        language=text("language", 35),
        authority=country,
        message_ref_id=text("message_ref_id", 170, filed, "filed_with.message_ref_id"),
        doc_ref_id=text("doc_ref_id", 200, filed, "filed_with.doc_ref_id"),
        html_path=html_path,
        sha256=sha256,
        # reporting.ledger.model.content_hash(obj), without making the canonical JSON a second time
        content_hash=content_hash or hashlib.sha256(content.encode("utf-8")).hexdigest(),
        content=content,
    )


def statement_sellers(engine: Engine, doc_ref_ids: Iterable[str]) -> dict[str, str]:
    """The seller of each of these DocRefIds that is a ReportableSeller record of this ledger
    (resends aside, in any period and state): what the statements' writer asks of every record
    it reads, the seller_key of :meth:`reporting.ledger.db.Ledger.known_records` without making
    a record of everything else known of it (one query per 500 ids)."""
    ids = sorted(set(doc_ref_ids))
    m, r = t.messages, t.records
    found: dict[str, tuple[str, str | None]] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            query = (
                sa.select(r.c.doc_ref_id, r.c.kind, r.c.seller_key)
                .join(m, m.c.id == r.c.message_id)
                .where(r.c.doc_ref_id.in_(ids[start : start + 500]), r.c.doc_type != RESEND)
            )
            for doc_ref_id, kind, seller_key in conn.execute(query):
                found[doc_ref_id] = (kind, seller_key)  # the last row of an id, as known_records keeps it
    return {d: key for d, (kind, key) in found.items() if kind == SELLER and key is not None}


def output_dir_of(feed: Path) -> Path | None:
    """The output directory of a feed: the parent of the nearest ``statements`` folder above it,
    absolute; None when no folder above the feed is called ``statements``."""
    for folder in Path(feed).absolute().parents:
        if folder.name == STATEMENTS_DIR:
            return folder.parent
    return None


def record_feed(
    engine: Engine, feed: Path, *, out_dir: Path | None = None, at: datetime | None = None, rows: Path | None = None
) -> int:
    """Record every statement of ``feed`` as pending, in one transaction; returns how many were
    new. A statement already recorded with the same hashes is left as it is (recording a feed twice
    changes nothing); with another ``sha256`` or content it is an error naming the statement.

    Each statement must belong to its filing: ``filed_with.message_ref_id`` is a message of this
    ledger of the same environment, authority and year, and ``filed_with.doc_ref_id`` a
    ReportableSeller record of it with the statement's ``seller_id``.

    A ``replaces`` that names a statement recorded before (or earlier in the feed) must be of the
    same seller and environment. One that names a statement this ledger never recorded (an
    operator who starts recording statements mid-year: the earlier notice predates the ledger, or
    its feed was lost) is recorded as given with ``replaces_recorded`` false, and a warning gives
    how many (no ids of sellers, no personal data): the correction or deletion is a notice that
    must be on record all the same (PStTG § 24(1) Nr. 4).

    Each statement's ``out_dir`` is recorded absolute: ``out_dir``, else :func:`output_dir_of` the
    feed (NULL when the feed is in no ``statements`` folder: the retention then looks under
    ``<out_root>/<year>/``).

    ``rows``: the feed's rows as the writer of the statements made them (see :func:`read_feed`),
    read instead of the feed: the same record, without parsing each statement back and making
    its canonical JSON here."""
    now = _utc(at)
    name = Path(feed).name
    where_out = Path(out_dir).absolute() if out_dir is not None else output_dir_of(feed)
    folder = str(where_out) if where_out is not None else None
    if folder is not None and len(folder) > 1000:
        raise StatementFeedError(f"{name}: the output directory's path is longer than 1000 characters")
    new = unrecorded = 0
    try:
        with engine.begin() as conn:
            batch: list[FeedStatement] = []
            for item in read_feed(feed, rows=rows):
                batch.append(item)
                if len(batch) >= _BATCH:
                    added, orphans = _record_batch(conn, name, batch, now, folder)
                    new, unrecorded = new + added, unrecorded + orphans
                    batch = []
            if batch:
                added, orphans = _record_batch(conn, name, batch, now, folder)
                new, unrecorded = new + added, unrecorded + orphans
    except sa.exc.IntegrityError:
        # the checks above ran before another writer recorded the same statements
        raise LedgerError(
            f"{name}: another process recorded statements of this feed at the same time; nothing was recorded "
            "by this one: record the feed again (it is idempotent)"
        ) from None
    if unrecorded:
        log.warning(
            "%s: %d correction or deletion statement(s) replace a statement this ledger never recorded "
            "(recorded with replaces_recorded false: the earlier notice predates the ledger or its feed was lost)",
            name,
            unrecorded,
        )
    return new


def _record_batch(
    conn: Connection, name: str, batch: list[FeedStatement], now: datetime, out_dir: str | None
) -> tuple[int, int]:
    """Record one batch; returns (statements recorded, of those replacing an unrecorded one)."""
    s, m, r = t.statements, t.messages, t.records
    ids = {x.statement_id for x in batch} | {x.replaces for x in batch if x.replaces}
    known = {
        row.statement_id: row
        for row in conn.execute(
            sa.select(s.c.statement_id, s.c.sha256, s.c.content_hash, s.c.environment, s.c.seller_id).where(
                s.c.statement_id.in_(ids)
            )
        )
    }
    messages = {
        row.message_ref_id: row
        for row in conn.execute(
            sa.select(m.c.message_ref_id, m.c.environment, m.c.authority, m.c.reporting_year).where(
                m.c.message_ref_id.in_({x.message_ref_id for x in batch})
            )
        )
    }
    filed = {
        (row.message_ref_id, row.doc_ref_id): row.seller_key
        for row in conn.execute(
            sa.select(m.c.message_ref_id, r.c.doc_ref_id, r.c.seller_key)
            .join(m, m.c.id == r.c.message_id)
            .where(r.c.doc_ref_id.in_({x.doc_ref_id for x in batch}), r.c.kind == SELLER)
        )
    }
    rows: list[dict[str, Any]] = []
    seen: dict[str, FeedStatement] = {}
    unrecorded = 0
    for x in batch:
        where = f"{name} line {x.line} (statement {x.statement_id})"
        earlier = known.get(x.statement_id) or seen.get(x.statement_id)
        if earlier is not None:
            if earlier.sha256 != x.sha256:
                raise StatementFeedError(
                    f"{where}: statement {x.statement_id} is already recorded with another sha256 of its page; "
                    "a statement never changes: a changed one is a new statement that replaces it"
                )
            if earlier.content_hash != x.content_hash:
                raise StatementFeedError(
                    f"{where}: statement {x.statement_id} is already recorded with other content; a statement "
                    "never changes: a changed one is a new statement that replaces it"
                )
            continue
        msg = messages.get(x.message_ref_id)
        if msg is None:
            raise StatementFeedError(
                f"{where}: key 'filed_with.message_ref_id': message {x.message_ref_id} is not in this ledger "
                "(a statement is made from a filing recorded here)"
            )
        if (msg.environment, msg.authority, msg.reporting_year) != (x.environment, x.authority, x.year):
            raise StatementFeedError(
                f"{where}: message {x.message_ref_id} is a filing of {msg.authority} {msg.reporting_year} "
                f"({msg.environment}); the statement says {x.authority} {x.year} ({x.environment})"
            )
        seller = filed.get((x.message_ref_id, x.doc_ref_id))
        if seller is None:
            raise StatementFeedError(
                f"{where}: key 'filed_with.doc_ref_id': {x.doc_ref_id} is no ReportableSeller record of message "
                f"{x.message_ref_id}"
            )
        if seller != x.seller_id:
            raise StatementFeedError(
                f"{where}: key 'seller_id': record {x.doc_ref_id} of message {x.message_ref_id} is another seller's"
            )
        replaces_recorded: bool | None = None
        if x.replaces:
            target = known.get(x.replaces) or seen.get(x.replaces)
            replaces_recorded = target is not None
            if target is None:
                unrecorded += 1
            elif target.environment != x.environment or target.seller_id not in (None, x.seller_id):
                raise StatementFeedError(
                    f"{where}: key 'replaces': statement {x.replaces} is another seller's or another environment's"
                )
        seen[x.statement_id] = x
        rows.append(
            {
                "statement_id": x.statement_id,
                "replaces": x.replaces,
                "replaces_recorded": replaces_recorded,
                "kind": x.kind,
                "seller_id": x.seller_id,
                "message_ref_id": x.message_ref_id,
                "doc_ref_id": x.doc_ref_id,
                "environment": x.environment,
                "authority": x.authority,
                "reporting_year": x.year,
                "language": x.language,
                "html_path": x.html_path,
                "out_dir": out_dir,
                "sha256": x.sha256,
                "content_hash": x.content_hash,
                "content": x.content,
                "created": now,
                "status": PENDING,
                "status_changed": now,
            }
        )
    if rows:
        conn.execute(sa.insert(s), rows)
        conn.execute(
            sa.insert(t.statement_events),
            [
                {"statement_id": x["statement_id"], "at": now, "status": PENDING, "source": name[:400], "recorded": now}
                for x in rows
            ],
        )
    return len(rows), unrecorded


# ---------------------------------------------------------------------------- delivery reports


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One line of a delivery report; ``where`` names the file and line (or item) for errors."""

    where: str
    statement_id: str
    at: datetime  # naive UTC
    status: str
    detail: str | None


def read_delivery_report(path: str | Path) -> Iterator[DeliveryEvent]:
    """The events of a delivery report: CSV with the header ``statement_id,time,status[,detail]``,
    a JSON list of objects, or JSON Lines; chosen by the extension (``.csv``, ``.json``,
    ``.jsonl``/``.ndjson``), else by the first character (``[`` a list, ``{`` JSON Lines, else
    CSV). CSV and JSON Lines are read a line at a time; a JSON list is read whole.

    ``time`` is ISO 8601 with its offset (``Z`` or ``+01:00``); ``status`` is ``sent`` or
    ``failed``. A bad line raises :class:`DeliveryReportError` naming the file, the line and the
    rule."""
    path = Path(path)
    name = path.name
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DeliveryReportError(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    with handle:
        try:
            yield from _report_events(path, name, handle)
        except UnicodeDecodeError:
            raise DeliveryReportError(f"{name}: not UTF-8 text") from None
        except csv.Error as exc:
            raise DeliveryReportError(f"{name}: not CSV ({exc})") from None


def _report_events(path: Path, name: str, handle: TextIO) -> Iterator[DeliveryEvent]:
    kind = _report_format(path, handle)
    if kind == "csv":
        yield from _csv_events(name, handle)
    elif kind == "jsonl":
        for number, text in enumerate(handle, start=1):
            if text.strip():
                yield _event(f"{name} line {number}", _json(f"{name} line {number}", text))
    else:
        try:
            items = json.load(handle)
        except json.JSONDecodeError as exc:
            raise DeliveryReportError(f"{name}: not JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(items, list):
            raise DeliveryReportError(f"{name}: a JSON delivery report is a list of objects")
        for number, item in enumerate(items, start=1):
            yield _event(f"{name} item {number}", item)


def _report_format(path: Path, handle: TextIO) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".jsonl", ".ndjson"):
        return "jsonl" if suffix != ".csv" else "csv"
    start = handle.read(4096).lstrip()
    handle.seek(0)
    if suffix == ".json":
        return "jsonl" if start.startswith("{") else "json"
    return "json" if start.startswith("[") else "jsonl" if start.startswith("{") else "csv"


def _json(where: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise DeliveryReportError(f"{where}: not a JSON object") from None


def _csv_events(name: str, handle: TextIO) -> Iterator[DeliveryEvent]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None or [h.strip() for h in header] not in (list(REPORT_KEYS[:3]), list(REPORT_KEYS)):
        raise DeliveryReportError(
            f"{name} line 1: the header must be statement_id,time,status or statement_id,time,status,detail"
        )
    width = len(header)
    for row in reader:
        where = f"{name} line {reader.line_num}"
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != width:
            raise DeliveryReportError(f"{where}: {len(row)} field(s), the header has {width}")
        yield _event(where, dict(zip(REPORT_KEYS, row, strict=False)))


def _event(where: str, obj: Any) -> DeliveryEvent:
    if not isinstance(obj, dict):
        raise DeliveryReportError(f"{where}: not an object with statement_id, time and status")
    unknown = set(obj) - set(REPORT_KEYS)
    if unknown:
        raise DeliveryReportError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    statement_id = obj.get("statement_id")
    if not isinstance(statement_id, str) or not statement_id.strip():
        raise DeliveryReportError(f"{where}: statement_id is missing")
    statement_id = statement_id.strip()
    time = obj.get("time")
    if not isinstance(time, str):
        raise DeliveryReportError(f"{where}: time is missing (ISO 8601 with offset, e.g. 2026-01-20T09:30:00Z)")
    try:
        at = datetime.fromisoformat(time.strip())
    except ValueError:
        raise DeliveryReportError(f"{where}: time {time[:40]!r} is not ISO 8601 (e.g. 2026-01-20T09:30:00Z)") from None
    if at.tzinfo is None:
        raise DeliveryReportError(f"{where}: time {time[:40]!r} has no offset: give Z or +HH:MM")
    status = obj.get("status")
    if status not in REPORTED_STATUSES:
        shown = repr(status)[:20]
        raise DeliveryReportError(f"{where}: status {shown} must be one of {', '.join(REPORTED_STATUSES)}")
    detail = obj.get("detail")
    if detail is not None and not isinstance(detail, str):
        raise DeliveryReportError(f"{where}: detail must be text")
    detail = (detail or "").strip() or None
    if detail and len(detail) > _MAX_DETAIL:
        raise DeliveryReportError(f"{where}: detail is longer than {_MAX_DETAIL} characters")
    return DeliveryEvent(where, statement_id, _utc(at), status, detail)


@dataclass(slots=True)
class DeliveryOutcome:
    """What a delivery report changed: no personal data, counts only."""

    source: str
    events: int = 0  # lines read
    recorded: int = 0  # new events in the history
    changed: int = 0  # of those, how many set a statement's current status
    older: int = 0  # new events older than the current status: history only
    repeated: int = 0  # events already recorded (the same report again)
    statuses: Counter[str] = field(default_factory=Counter)  # recorded events per status


def mark_delivery(
    engine: Engine, events: Iterable[DeliveryEvent], *, source: str, at: datetime | None = None
) -> DeliveryOutcome:
    """Apply delivery events in one transaction: all of them or, on the first bad line, none.

    Each new event joins the statement's history. It becomes the current status when the
    statement is pending, or when it is later than the current status's time (at the same time,
    ``sent`` wins over ``failed``); an older event stays in the history only. An event already
    recorded (same statement, time and status) changes nothing.

    An event cannot have happened after ``at`` (now) plus :data:`CLOCK_SKEW`, nor before its
    statement was recorded (``created``): either is a :class:`DeliveryReportError` naming the
    file, the line and the rule, and nothing is applied."""
    now = _utc(at)
    outcome = DeliveryOutcome(source=source)
    try:
        with engine.begin() as conn:
            batch: list[DeliveryEvent] = []
            for event in events:
                batch.append(event)
                if len(batch) >= _BATCH:
                    _mark_batch(conn, batch, outcome, now)
                    batch = []
            if batch:
                _mark_batch(conn, batch, outcome, now)
    except sa.exc.IntegrityError:
        raise LedgerError(
            f"{source}: another delivery report was recorded at the same time; nothing of this one was applied: "
            "apply it again (it is idempotent)"
        ) from None
    return outcome


def _mark_batch(conn: Connection, batch: list[DeliveryEvent], outcome: DeliveryOutcome, now: datetime) -> None:
    s, e = t.statements, t.statement_events
    ids = {x.statement_id for x in batch}
    current: dict[str, tuple[str, datetime]] = {}
    created: dict[str, datetime] = {}
    for row in conn.execute(
        sa.select(s.c.statement_id, s.c.status, s.c.status_changed, s.c.created).where(s.c.statement_id.in_(ids))
    ):
        current[row.statement_id] = (row.status, row.status_changed)
        created[row.statement_id] = row.created
    recorded = {
        (row.statement_id, row.at, row.status)
        for row in conn.execute(sa.select(e.c.statement_id, e.c.at, e.c.status).where(e.c.statement_id.in_(ids)))
    }
    changed: dict[str, tuple[str, datetime]] = {}
    rows: list[dict[str, Any]] = []
    for x in batch:
        outcome.events += 1
        if x.statement_id not in current:
            raise DeliveryReportError(
                f"{x.where}: statement {x.statement_id} is not in this ledger (record its feed first); "
                "nothing was applied"
            )
        if x.at > now + CLOCK_SKEW:
            raise DeliveryReportError(
                f"{x.where}: time {x.at:%Y-%m-%d %H:%M:%S} UTC is in the future (more than "
                f"{CLOCK_SKEW.seconds // 60} minutes after {now:%Y-%m-%d %H:%M:%S} UTC): a delivery is reported "
                "once it happened"
            )
        if x.at < created[x.statement_id]:
            raise DeliveryReportError(
                f"{x.where}: time {x.at:%Y-%m-%d %H:%M:%S} UTC is before statement {x.statement_id} was recorded "
                f"({created[x.statement_id]:%Y-%m-%d %H:%M:%S} UTC): a statement is delivered after it is made"
            )
        key = (x.statement_id, x.at, x.status)
        if key in recorded:
            outcome.repeated += 1
            continue
        recorded.add(key)
        rows.append(
            {
                "statement_id": x.statement_id,
                "at": x.at,
                "status": x.status,
                "detail": x.detail,
                "source": outcome.source[:400],
                "recorded": now,
            }
        )
        outcome.recorded += 1
        outcome.statuses[x.status] += 1
        status, since = current[x.statement_id]
        if _supersedes(x.status, x.at, status, since):
            current[x.statement_id] = changed[x.statement_id] = (x.status, x.at)
        else:
            outcome.older += 1
    if rows:
        conn.execute(sa.insert(e), rows)
    for statement_id, (status, since) in changed.items():
        conn.execute(sa.update(s).where(s.c.statement_id == statement_id).values(status=status, status_changed=since))
    outcome.changed += len(changed)


def _supersedes(status: str, at: datetime, current: str, since: datetime) -> bool:
    """Whether an event (``status`` at ``at``) becomes the current status over ``current``."""
    if current == PENDING:
        return True
    if at != since:
        return at > since
    return status == SENT and current == FAILED


# ------------------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class StatementCounts:
    """Statements of one environment, authority and year by delivery status (see the module's
    words on counting: ``superseded`` are never in the other three), of one operator of a group
    (the operator whose message reported the seller)."""

    environment: str
    authority: str
    year: int
    pending: int = 0
    sent: int = 0
    failed: int = 0
    superseded: int = 0
    operator_id: str = DEFAULT_OPERATOR

    @property
    def unsent(self) -> int:
        """What still has to reach a seller: pending and failed, superseded ones aside."""
        return self.pending + self.failed


@dataclass(frozen=True, slots=True)
class StatementInfo:
    """A statement's row without its content (no personal data but the seller id)."""

    statement_id: str
    replaces: str | None
    replaces_recorded: bool | None  # False: ``replaces`` names a statement this ledger never recorded
    kind: str
    seller_id: str | None
    message_ref_id: str
    doc_ref_id: str
    environment: str
    authority: str
    year: int
    language: str
    html_path: str | None
    out_dir: str | None  # the run's output directory, absolute (None: recorded before it was kept)
    sha256: str
    created: datetime
    status: str
    status_changed: datetime
    superseded_by: str | None
    erased: datetime | None


@dataclass(frozen=True, slots=True)
class StatementEvent:
    at: datetime
    status: str
    detail: str | None
    source: str
    recorded: datetime


def _replacing() -> sa.Subquery:
    s = t.statements
    return (
        sa.select(s.c.replaces, sa.func.min(s.c.statement_id).label("by"))
        .where(s.c.replaces.is_not(None))
        .group_by(s.c.replaces)
        .subquery()
    )


def statement_counts(
    engine: Engine, *, year: int | None = None, environment: str | None = None
) -> list[StatementCounts]:
    """Counts per environment, authority, year and operator (one grouped query; no content read)."""
    s, m = t.statements, t.messages
    later = _replacing()
    bucket = sa.case((later.c.by.is_not(None), "superseded"), else_=s.c.status).label("bucket")
    query = (
        sa.select(
            s.c.environment, s.c.authority, s.c.reporting_year, m.c.operator_id, bucket, sa.func.count().label("n")
        )
        .join(m, m.c.message_ref_id == s.c.message_ref_id)
        .outerjoin(later, later.c.replaces == s.c.statement_id)
        .group_by(s.c.environment, s.c.authority, s.c.reporting_year, m.c.operator_id, bucket)
    )
    if year is not None:
        query = query.where(s.c.reporting_year == year)
    if environment is not None:
        query = query.where(s.c.environment == environment)
    found: dict[tuple[str, str, int, str], dict[str, int]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            key = (row.environment, row.authority, row.reporting_year, row.operator_id)
            found.setdefault(key, {})[row.bucket] = int(row.n)
    return [
        StatementCounts(env, authority, yr, **counts, operator_id=operator)
        for (env, authority, yr, operator), counts in sorted(
            found.items(), key=lambda kv: (-kv[0][2], kv[0][0], kv[0][1], kv[0][3] != DEFAULT_OPERATOR, kv[0][3])
        )
    ]


def _info(row: Any) -> StatementInfo:
    return StatementInfo(
        statement_id=row.statement_id,
        replaces=row.replaces,
        replaces_recorded=row.replaces_recorded,
        kind=row.kind,
        seller_id=row.seller_id,
        message_ref_id=row.message_ref_id,
        doc_ref_id=row.doc_ref_id,
        environment=row.environment,
        authority=row.authority,
        year=row.reporting_year,
        language=row.language,
        html_path=row.html_path,
        out_dir=row.out_dir,
        sha256=row.sha256,
        created=row.created,
        status=row.status,
        status_changed=row.status_changed,
        superseded_by=row.by,
        erased=row.erased,
    )


def _columns(later: sa.Subquery) -> list[Any]:
    s = t.statements
    return [c for c in s.c if c.name != "content"] + [later.c.by]


def list_statements(
    engine: Engine,
    *,
    year: int | None = None,
    status: str | None = None,
    environment: str | None = None,
    authority: str | None = None,
) -> Iterator[StatementInfo]:
    """Statements in the order they were recorded, streamed; ``status`` is a delivery status or
    ``superseded`` (then a delivery status means: of the statements nothing replaces)."""
    if status is not None and status not in (*DELIVERY_STATUSES, "superseded"):
        raise ValueError(f"status {status!r}: expected one of {', '.join((*DELIVERY_STATUSES, 'superseded'))}")
    s = t.statements
    later = _replacing()
    query = sa.select(*_columns(later)).outerjoin(later, later.c.replaces == s.c.statement_id).order_by(s.c.id)
    for column, value in ((s.c.reporting_year, year), (s.c.environment, environment), (s.c.authority, authority)):
        if value is not None:
            query = query.where(column == value)
    if status == "superseded":
        query = query.where(later.c.by.is_not(None))
    elif status is not None:
        query = query.where(s.c.status == status, later.c.by.is_(None))
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=_BATCH).execute(query):
            yield _info(row)


def get_statement(engine: Engine, statement_id: str) -> StatementInfo | None:
    s = t.statements
    later = _replacing()
    query = (
        sa.select(*_columns(later))
        .outerjoin(later, later.c.replaces == s.c.statement_id)
        .where(s.c.statement_id == statement_id)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return _info(row) if row is not None else None


def statement_history(engine: Engine, statement_id: str) -> list[StatementEvent]:
    """A statement's delivery events in the order they happened."""
    e = t.statement_events
    query = sa.select(e).where(e.c.statement_id == statement_id).order_by(e.c.at, e.c.id)
    with engine.connect() as conn:
        return [StatementEvent(r.at, r.status, r.detail, r.source, r.recorded) for r in conn.execute(query)]


# ------------------------------------------------------------------------------------ retention


def retention_ends(created: datetime, zone: ZoneInfo) -> datetime:
    """The first instant at which a statement's record is no longer kept: ten years after the end
    of the calendar year in which it was made (PStTG § 24(3) sentence 3: the period starts "mit
    Ablauf des Kalenderjahres, in dem die Aufzeichnungen erstellt worden sind"), i.e. 1 January
    00:00 of the year made + 11, in ``zone`` (the filing state's time zone; the year made is read
    in that zone too). ``created`` is naive UTC, as the ledger keeps it. Returned as aware UTC."""
    made = created.replace(tzinfo=UTC).astimezone(zone).year
    return datetime(made + RETENTION_YEARS + 1, 1, 1, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Expired:
    """A statement whose retention has ended: its page (if still there) and the ledger content go."""

    statement_id: str
    environment: str
    authority: str
    year: int
    created: datetime
    html_path: str | None
    out_dir: str | None


@dataclass(slots=True)
class RetentionOutcome:
    dry_run: bool
    statements: int = 0  # statements whose retention ended (erased, or that would be)
    files: int = 0  # pages deleted (or that would be)
    feeds: int = 0  # feed files deleted (statements.jsonl and the runs' copies), or that would be
    missing_files: int = 0  # pages not found (erased all the same only with missing_ok)
    statement_ids: list[str] = field(default_factory=list)  # the first 100, for the log
    missing_ids: list[str] = field(default_factory=list)  # the first 100 whose page was not found


def erase_expired(
    engine: Engine,
    out_root: Path | None,
    *,
    now: datetime,
    zone_of: Any,
    dry_run: bool = False,
    missing_ok: bool = False,
) -> RetentionOutcome:
    """Delete what PStTG § 24(3) requires deleted: for each statement whose ten years have run
    (:func:`retention_ends` <= ``now``), its HTML page and the ledger's ``content``,
    ``seller_id`` and ``html_path``, and the ``detail`` of its delivery events (the platform's
    free text, which may hold personal data); its ids, hashes, status and delivery dates stay (no
    personal data), and ``erased`` says when. The page is ``<out_dir>/<html_path>`` with the
    ``out_dir`` recorded with the statement, else ``<out_root>/<year>/<html_path>`` (statements
    recorded without it). A feed ``statements/statements.jsonl`` (with each run's copy under
    ``statements/runs/``) goes when every statement
    recorded from that output directory (or, without one, for that year) is erased. ``dry_run``
    changes nothing and counts what would go.

    A page that is not found where the ledger says is an error for its statement: the others are
    erased, its ledger content is kept, and :class:`RetentionError` names how many and the first
    statement ids, so that no page with personal data is left behind unnoticed. With
    ``missing_ok`` (the operator has made sure the pages are gone) such statements are erased all
    the same and counted in ``missing_files``. A dry run never raises: it counts them.

    ``zone_of(authority)`` gives the time zone of a filing state (``reporting.deadlines.time_zone``).
    Statements are examined in batches from the oldest; memory is flat."""
    aware_now = now if now.tzinfo else now.replace(tzinfo=UTC)
    outcome = RetentionOutcome(dry_run=dry_run)
    s, e = t.statements, t.statement_events
    # Made in the local year Y, due from 1 January Y + 11 local; in the UTC year N a local year is
    # at most N + 1, so only Y <= N - 10 can be due: made before 1 January N - 9 (a day's margin
    # for the zone). The query reads no later statement.
    horizon = datetime(aware_now.astimezone(UTC).year - RETENTION_YEARS + 1, 1, 2)
    erased = Counter[tuple[str, int | str]]()  # per output directory, or per reporting year without one
    last = 0
    while True:
        query = (
            sa.select(
                s.c.id,
                s.c.statement_id,
                s.c.environment,
                s.c.authority,
                s.c.reporting_year,
                s.c.created,
                s.c.html_path,
                s.c.out_dir,
            )
            .where(s.c.erased.is_(None), s.c.created < horizon, s.c.id > last)
            .order_by(s.c.id)
            .limit(_BATCH)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            break
        last = rows[-1].id
        chunk = [
            Expired(r.statement_id, r.environment, r.authority, r.reporting_year, r.created, r.html_path, r.out_dir)
            for r in rows
            if retention_ends(r.created, zone_of(r.authority)) <= aware_now
        ]
        going: list[str] = []
        for x in chunk:
            if x.html_path:
                page = _expired_page(out_root, x)
                if page is None or not page.is_file():
                    outcome.missing_files += 1
                    if len(outcome.missing_ids) < 100:
                        outcome.missing_ids.append(x.statement_id)
                    if not missing_ok:
                        continue
                else:
                    outcome.files += 1
                    if not dry_run:
                        page.unlink()
            outcome.statements += 1
            erased[_feed_key(x)] += 1
            going.append(x.statement_id)
            if len(outcome.statement_ids) < 100:
                outcome.statement_ids.append(x.statement_id)
        if going and not dry_run:
            with engine.begin() as conn:
                conn.execute(
                    sa.update(s)
                    .where(s.c.statement_id.in_(going))
                    .values(content=None, seller_id=None, html_path=None, erased=_utc(aware_now))
                )
                conn.execute(sa.update(e).where(e.c.statement_id.in_(going)).values(detail=None))
    for key in sorted(erased, key=str):
        outcome.feeds += _drop_feed(engine, out_root, key, erased[key], dry_run)
    if outcome.missing_files and not missing_ok and not dry_run:
        raise RetentionError(
            f"PStTG § 24(3): the retention of {outcome.missing_files} statement(s) has ended but their page was not "
            f"found where the ledger says (first: {', '.join(outcome.missing_ids[:20])}); their ledger content "
            f"was kept. {outcome.statements} other statement(s) were erased. Find the pages (the output "
            "directory moved?) or, once you have made sure they are gone, run again acknowledging it "
            "(missing_ok)"
        )
    return outcome


def _feed_key(x: Expired) -> tuple[str, int | str]:
    return ("dir", x.out_dir) if x.out_dir else ("year", x.year)


def _expired_page(out_root: Path | None, x: Expired) -> Path | None:
    if x.html_path is None:
        return None
    if x.out_dir:
        return _page_in(Path(x.out_dir), x.html_path)
    return _page(out_root, x.year, x.html_path) if out_root is not None else None


def _drop_feed(engine: Engine, out_root: Path | None, key: tuple[str, int | str], erased: int, dry_run: bool) -> int:
    """Delete the feed of an output directory (or, for statements recorded without one, of a
    year under ``out_root``) once none of its statements is left unerased; 1 if it went."""
    s = t.statements
    kind, value = key
    if kind == "dir":
        feed = Path(str(value)) / STATEMENTS_DIR / FEED_NAME
        which = s.c.out_dir == str(value)
    elif out_root is not None:
        feed = Path(out_root) / str(value) / STATEMENTS_DIR / FEED_NAME
        which = sa.and_(s.c.reporting_year == int(value), s.c.out_dir.is_(None))
    else:
        return 0
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).where(which, s.c.erased.is_(None))).scalar_one()
    remaining = left - (erased if dry_run else 0)
    # the feed and each run's own copy of its feed (``statements/runs/<run_id>.jsonl``): every
    # statement they hold is erased by now, and they hold personal data
    feeds = [f for f in (feed, *sorted((feed.parent / RUN_FEEDS_DIR).glob("*.jsonl"))) if f.is_file()]
    if remaining > 0 or not feeds:
        return 0
    if not dry_run:
        for f in feeds:
            f.unlink()
    return len(feeds)


def _page(out_root: Path, year: int, html_path: str) -> Path | None:
    """``<out_root>/<year>/<html_path>`` if it stays inside ``<out_root>/<year>/statements``."""
    return _page_in(Path(out_root) / str(year), html_path)


def _page_in(out_dir: Path, html_path: str) -> Path | None:
    """``<out_dir>/<html_path>`` if it stays inside ``<out_dir>/statements``."""
    root = (out_dir / STATEMENTS_DIR).resolve()
    parts = html_path.split("/")
    if parts[0] != STATEMENTS_DIR or any(p in ("", ".", "..") for p in parts):
        return None
    target = (out_dir / html_path).resolve()
    return target if target.is_relative_to(root) else None


def statement_page(out_root: Path, info: StatementInfo) -> Path | None:
    """The HTML page of a statement, if it is a file inside the ``statements/`` folder of the
    output directory recorded with it, where that directory lies under ``out_root`` (else of
    ``<out_root>/<year>/``), with no ``..`` and no symbolic link out of it, and its bytes still
    have the recorded sha256. Nothing outside ``out_root`` is ever served."""
    from reporting.files import file_sha256

    if not info.html_path:
        return None
    page = None
    if info.out_dir and Path(info.out_dir).resolve().is_relative_to(Path(out_root).resolve()):
        page = _page_in(Path(info.out_dir), info.html_path)
    if page is None:
        page = _page(out_root, info.year, info.html_path)
    if page is None or not page.is_file():
        return None
    return page if file_sha256(page) == info.sha256 else None
