"""The due-diligence state in the ledger: each seller's row per operator, its history, the daily
runs; what the platform reports it sent (``dac7 due-diligence mark``), what a verification
answered (:func:`record_verifications`, the seam of the verification adapters), the queries of the
compliance view, and the retention.

The law behind it (PStTG; readings and sources in ``docs/guide/due-diligence.md``):

- § 24(1) Nr. 2: for each seller, the information processed for due diligence, the time and the
  result: each run's changes of scope and item states, and each verification, are events;
- § 24(1) Nr. 5: for each seller against whom § 23 is enforced, the content and time of the
  request, the reminders, the measure, the information its release rests on and the release's
  time: the platform's reports and the run's ``data_received``;
- § 24(3): kept ten years from the end of the calendar year in which they were made, then
  deleted (:func:`erase_expired`).

No value of a data item is stored: an item's ``_hash`` is a digest of it. Events name items,
states, dates and the source of a report, never a value. Every writer holds the operator's
due-diligence lock (:meth:`reporting.ledger.db.Ledger.due_diligence_lock`).

A report of actions is JSON Lines, one object per action the platform performed::

    {"seller_id": "S-1001", "action": "request", "at": "2026-03-02T09:30:00Z"}
    {"seller_id": "S-1001", "action": "reminder_1", "at": "2026-03-16T09:30:00+01:00", "operator_id": "default"}

``operator_id`` (default ``default``) and ``reference`` (the platform's id of the message, kept
as evidence, 200 characters at most) are optional; no other key is taken. Every line is checked
(:func:`read_action_reports`), then applied in one transaction: all or nothing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import reporting.ledger.schema as t
from reporting.diligence_cycle import (
    LAST_MEASURE_DAY,
    CycleSettings,
    DueAction,
    MarkRefused,
    SellerCycle,
    action_rank,
    due_actions,
    mark,
    next_action,
    relied_until,
)
from reporting.ledger.desk import NO_NEXT_ACTION, desk_batch, refresh_desk
from reporting.ledger.errors import DueDiligenceReportError, LedgerError
from reporting.ledger.model import DD_VERIFICATION, DESK_BLOCKED, DESK_REMINDED_TWICE, DESK_REQUESTED
from reporting.ledger.statements import retention_ends
from reporting.vocabulary import (
    DEFAULT_OPERATOR,
    DUE_DILIGENCE_ACTIONS,
    DUE_DILIGENCE_CYCLE_COLUMNS,
    DUE_DILIGENCE_ITEMS,
    IN_SCOPE,
    ITEM_INVALID,
    ITEM_MISSING,
    ITEM_NOT_APPLICABLE,
    ITEM_UNVERIFIED,
    ITEM_VERIFIED,
    MEASURES,
    OPERATOR_ID_PATTERN,
    PRE_REPORT_NOTICE,
    RELEASE,
    REQUEST,
    VERIFICATION_RESULTS,
)

_BATCH = 500
#: How far a reported time may lie ahead of the ledger's clock (two systems' clocks differ).
CLOCK_SKEW = timedelta(minutes=5)
#: The keys of a line of a report of actions.
REPORT_KEYS = ("seller_id", "action", "at", "operator_id", "reference")
_OPERATOR = re.compile(OPERATOR_ID_PATTERN)
#: The columns of a state row, in the table's order.
STATE_COLUMNS: tuple[str, ...] = tuple(c.name for c in t.due_diligence.c)
#: The columns of the request cycle (what a report of actions changes).
CYCLE_COLUMNS = DUE_DILIGENCE_CYCLE_COLUMNS


def _utc(at: datetime) -> datetime:
    """Naive UTC, as the ledger keeps every instant."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The filing state's day of an instant (naive: UTC)."""
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    return aware.astimezone(zone).date()


def split_items(text: str | None) -> tuple[str, ...]:
    """``"tin,vat"`` as the items, in item order."""
    found = {i for i in (text or "").split(",") if i}
    return tuple(i for i in DUE_DILIGENCE_ITEMS if i in found)


def join_items(items: Iterable[str]) -> str:
    found = set(items)
    return ",".join(i for i in DUE_DILIGENCE_ITEMS if i in found)


def item_states(row: Any) -> dict[str, str]:
    """Item -> state of a state row."""
    return {i: getattr(row, f"{i}_state") for i in DUE_DILIGENCE_ITEMS}


def cycle_of(row: Any) -> SellerCycle:
    """The :class:`SellerCycle` of a state row (a Row or anything with its columns as attributes)."""
    states = item_states(row)
    return SellerCycle(
        seller_id=row.seller_id,
        in_scope=row.scope == IN_SCOPE,
        needs=tuple(i for i, s in states.items() if s in (ITEM_MISSING, ITEM_INVALID)),
        invalid=tuple(i for i, s in states.items() if s == ITEM_INVALID),
        registered_at=row.registered_at,
        notice_due=row.notice_due,
        notice_on=row.notice_on,
        request_due=row.request_due,
        requested_on=row.requested_on,
        requested_items=split_items(row.requested_items),
        reminder_1_on=row.reminder_1_on,
        reminder_2_on=row.reminder_2_on,
        measure=row.measure,
        measure_on=row.measure_on,
        release_due=row.release_due,
        cycles=row.cycles,
    )


def cycle_values(c: SellerCycle) -> dict[str, Any]:
    """The cycle's columns of a state row."""
    return {
        "notice_due": c.notice_due,
        "notice_on": c.notice_on,
        "request_due": c.request_due,
        "requested_on": c.requested_on,
        "requested_items": join_items(c.requested_items) or None,
        "reminder_1_on": c.reminder_1_on,
        "reminder_2_on": c.reminder_2_on,
        "measure": c.measure,
        "measure_on": c.measure_on,
        "release_due": c.release_due,
        "cycles": c.cycles,
    }


# ------------------------------------------------------------------------------ the daily run


#: What makes a seller's state open: an item lacking, a request cycle, a release due, the notice
#: not sent while in scope (a run computes such a seller every day; the others when they change).
OPEN_SQL = (
    "needs <> '' or requested_on is not null or release_due is not null "
    f"or (scope = '{IN_SCOPE}' and notice_on is null)"
)
#: The columns of :func:`state_keys`: what tells a run whether it must compute a seller again.
KEY_COLUMNS = ("seller_id", "fingerprint", "scope", "period", "reverify_on", "open")


def _text(dialect: str, column: str) -> str:
    return f"coalesce(cast({column} as {'varchar' if dialect == 'postgresql' else 'text'}), '')"


@contextmanager
def state_keys(engine: Engine, operator_id: str) -> Iterator[pa.RecordBatchReader]:
    """Every state row of the operator, narrow (:data:`KEY_COLUMNS`, as text, '' for NULL; open
    '1' or '0'): a stream of batches."""
    d = engine.dialect.name
    cols = ", ".join(_text(d, c) + f" as {c}" for c in KEY_COLUMNS[:-1])
    sql = (
        f"select {cols}, case when {OPEN_SQL} then '1' else '0' end as open "
        "from ledger_due_diligence where operator_id = :operator_id"
    )
    with _read(engine, sql, operator_id, KEY_COLUMNS) as reader:
        yield reader


@contextmanager
def state_rows(engine: Engine, operator_id: str, seller_ids: pa.Table | None = None) -> Iterator[pa.RecordBatchReader]:
    """The operator's state rows, every column as text ('' for NULL): a stream of batches. With
    ``seller_ids`` (a table of one column ``seller_id``) and ADBC, those sellers' only (their
    ids staged in a temporary table of the ledger, one join); otherwise all of them (the caller
    keeps the ones it needs)."""
    d = engine.dialect.name
    cols = ", ".join(_text(d, f"s.{c}") + f" as {c}" for c in STATE_COLUMNS)
    if seller_ids is not None:
        adbc = _adbc_connection(engine)
        if adbc is not None:
            cur = adbc.cursor()
            try:
                cur.adbc_ingest("dd_ids", seller_ids, mode="create", temporary=True)
                cur.execute(
                    f"select {cols} from ledger_due_diligence as s inner join dd_ids as i on i.seller_id = s.seller_id "
                    f"where s.operator_id = '{_checked_operator(operator_id)}'"
                )
                yield cur.fetch_record_batch()
            finally:
                cur.close()
                adbc.rollback()
                adbc.close()
            return
    sql = f"select {cols} from ledger_due_diligence as s where s.operator_id = :operator_id"
    with _read(engine, sql, operator_id, STATE_COLUMNS) as reader:
        yield reader


def _checked_operator(operator_id: str) -> str:
    """An operator id written into a query as a literal: letters, digits and ``_`` only."""
    if not _OPERATOR.fullmatch(operator_id):
        raise ValueError(f"not an operator id: {operator_id!r}")
    return operator_id


@contextmanager
def _read(engine: Engine, sql: str, operator_id: str, columns: tuple[str, ...]) -> Iterator[pa.RecordBatchReader]:
    """The rows of ``sql`` (``:operator_id`` its one parameter; every column text) as batches:
    ADBC's own stream where the ``fast`` extra reaches the ledger, else the DB-API's rows."""
    schema = pa.schema([(c, pa.string()) for c in columns])
    adbc = _adbc_connection(engine)
    if adbc is not None:
        cur = adbc.cursor()
        try:
            cur.execute(sql.replace(":operator_id", f"'{_checked_operator(operator_id)}'"))
            yield cur.fetch_record_batch()
        finally:
            cur.close()
            adbc.rollback()
            adbc.close()
        return
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=_BATCH * 20).execute(
            sa.text(sql), {"operator_id": operator_id}
        )

        def batches() -> Iterator[pa.RecordBatch]:
            for part in result.partitions(_BATCH * 20):
                values = list(zip(*part, strict=True)) if part else [() for _ in columns]
                yield pa.RecordBatch.from_arrays([pa.array(list(v), pa.string()) for v in values], schema=schema)

        yield pa.RecordBatchReader.from_batches(schema, batches())


def last_run_date(engine: Engine, operator_id: str) -> date | None:
    """The latest day a run computed for the operator (None: never)."""
    r = t.due_diligence_runs
    with engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(r.c.run_date)).where(r.c.operator_id == operator_id)).scalar()
    return value if value is None or isinstance(value, date) else date.fromisoformat(str(value))


def write_run(
    engine: Engine,
    rows: pa.RecordBatchReader,
    events: pa.RecordBatchReader,
    run: dict[str, Any],
    settings: CycleSettings | None = None,
) -> tuple[int, int]:
    """Write what a run changed in one transaction: its state rows replace the rows of the same
    key (upsert), its events are appended, the compliance desk's rows of the changed sellers are
    computed again from their new state with ``settings`` (the run's; all of the operator's rows
    when the desk was computed with other settings or by no run: :func:`desk_needs_all`), and the
    run's own row (of its operator and day: a rerun of the day replaces it), with ``desk``: the
    sellers the desk lists. Streams of Arrow batches with the tables' columns and types; through
    ADBC's bulk ingest into temporary tables where the ``fast`` extra reaches the ledger (SQLite,
    PostgreSQL: ``COPY``), else through the DB-API in batches. Returns (rows, events) written."""
    settings = settings or CycleSettings()
    every = desk_needs_all(engine, run["operator_id"], settings)
    adbc = _adbc_connection(engine)
    if adbc is None:
        return _write_run_dbapi(engine, rows, events, run, settings, every)
    try:
        return _write_run_adbc(adbc, engine.dialect.name, rows, events, run, settings, every)
    finally:
        adbc.close()


def desk_needs_all(engine: Engine, operator_id: str, settings: CycleSettings) -> bool:
    """Whether a run must compute every desk row of the operator: the desk was computed with other
    settings than the run's, or by no run (none yet, or only runs before revision
    0009_due_diligence_desk)."""
    with engine.connect() as conn:
        return desk_settings(conn, operator_id) != settings


def _adbc_connection(engine: Engine) -> Any | None:
    """An ADBC connection (read-write) to the ledger's SQLite file or PostgreSQL database, or None."""
    url = engine.url
    try:
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") and not url.query:
            import adbc_driver_sqlite.dbapi

            conn = adbc_driver_sqlite.dbapi.connect(str(url.database))
            cur = conn.cursor()
            cur.execute("PRAGMA busy_timeout = 30000")  # as SQLAlchemy's connections wait (timeout 30)
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()
            return conn
        if url.get_backend_name() == "postgresql":
            import adbc_driver_postgresql.dbapi

            return adbc_driver_postgresql.dbapi.connect(
                url.set(drivername="postgresql").render_as_string(hide_password=False)
            )
    except ImportError:
        return None
    return None


def _for_ledger(reader: pa.RecordBatchReader, dialect: str) -> pa.RecordBatchReader:
    """The batches as the ledger stores them: on SQLite, each value as the text SQLAlchemy writes
    (dates ``YYYY-MM-DD``, times ``YYYY-MM-DD HH:MM:SS.ffffff``, which Arrow's cast gives); on
    PostgreSQL as they are."""
    if dialect != "sqlite":
        return reader
    schema = pa.schema([(f.name, pa.string() if _is_time(f.type) else f.type) for f in reader.schema])
    return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in reader))


def _is_time(kind: pa.DataType) -> bool:
    return bool(pa.types.is_date(kind) or pa.types.is_timestamp(kind))


def _write_run_adbc(
    conn: Any,
    dialect: str,
    rows: pa.RecordBatchReader,
    events: pa.RecordBatchReader,
    run: dict[str, Any],
    settings: CycleSettings,
    every: bool,
) -> tuple[int, int]:
    def insert(table: sa.Table, staged: str, columns: list[str], key: tuple[str, ...] = ()) -> str:
        names = ", ".join(f'"{c}"' for c in columns)
        sql = f"insert into {table.name} ({names}) select {names} from {staged} where true"
        if key:
            keys = ", ".join(key)
            updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
            sql += f" on conflict ({keys}) do update set {updates}"
        return sql

    operator = _checked_operator(run["operator_id"])
    cur = conn.cursor()
    try:
        written = cur.adbc_ingest("dd_rows_in", _for_ledger(rows, dialect), mode="create", temporary=True)
        cur.execute(insert(t.due_diligence, "dd_rows_in", list(rows.schema.names), ("operator_id", "seller_id")))
        appended = cur.adbc_ingest("dd_events_in", _for_ledger(events, dialect), mode="create", temporary=True)
        cur.execute(insert(t.due_diligence_events, "dd_events_in", list(events.schema.names)))
        # the desk: the changed sellers' rows (or all of the operator's) computed from their new state
        desk = t.due_diligence_desk.name
        of = f"operator_id = '{operator}'"
        changed = "" if every else f" and seller_id in (select seller_id from dd_rows_in where {of})"
        cols = ", ".join(_text(dialect, c) + f" as {c}" for c in STATE_COLUMNS)
        cur.execute(f"select {cols} from ledger_due_diligence where {of}{changed}")
        found = [
            pa.RecordBatch.from_pylist(desk_batch(b.to_pylist(), settings), schema=_DESK_SCHEMA)
            for b in cur.fetch_record_batch()
        ]
        cur.execute(f"delete from {desk} where {of}{changed}")
        if any(b.num_rows for b in found):
            staged = pa.RecordBatchReader.from_batches(_DESK_SCHEMA, iter(found))
            cur.adbc_ingest("dd_desk_in", _for_ledger(staged, dialect), mode="create", temporary=True)
            cur.execute(insert(t.due_diligence_desk, "dd_desk_in", list(_DESK_SCHEMA.names)))
            cur.execute("drop table dd_desk_in")
        if every and dialect == "postgresql":  # the planner's figures of a table just filled
            cur.execute(f"analyze {desk}")
        cur.execute(f"select count(*) from {desk} where {of}")
        listed = cur.fetchone()
        run_table = pa.Table.from_pylist([{**run, "desk": int(listed[0]) if listed else 0}], schema=_RUN_SCHEMA)
        runs = pa.RecordBatchReader.from_batches(run_table.schema, run_table.to_batches())
        cur.adbc_ingest("dd_run_in", _for_ledger(runs, dialect), mode="create", temporary=True)
        cur.execute(insert(t.due_diligence_runs, "dd_run_in", run_table.schema.names, ("operator_id", "run_date")))
        for staged in ("dd_rows_in", "dd_events_in", "dd_run_in"):
            cur.execute(f"drop table {staged}")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cur.close()
    return int(written or 0), int(appended or 0)


_RUN_SCHEMA = pa.schema(
    [
        ("operator_id", pa.string()),
        ("run_date", pa.date32()),
        ("run_id", pa.string()),
        ("finished", pa.timestamp("us")),
        ("sellers", pa.int64()),
        ("in_scope", pa.int64()),
        ("changed", pa.int64()),
        ("events", pa.int64()),
        ("actions", pa.string()),
        ("feed_sha256", pa.string()),
        ("settings", pa.string()),
        ("desk", pa.int64()),
    ]
)
#: A desk row as Arrow batches carry it (dates as dates, the rest as text or integers).
_DESK_SCHEMA = pa.schema(
    [
        (
            c.name,
            pa.date32()
            if isinstance(c.type, sa.Date)
            else pa.int64()
            if isinstance(c.type, sa.Integer)
            else pa.string(),
        )
        for c in t.due_diligence_desk.c
    ]
)


def _write_run_dbapi(
    engine: Engine,
    rows: pa.RecordBatchReader,
    events: pa.RecordBatchReader,
    run: dict[str, Any],
    settings: CycleSettings,
    every: bool,
) -> tuple[int, int]:
    written = appended = 0
    operator_id = run["operator_id"]
    changed: list[str] = []
    with engine.begin() as conn:
        upsert = _upsert(conn, t.due_diligence, ("operator_id", "seller_id"))
        for batch in rows:
            if batch.num_rows:
                conn.execute(upsert, batch.to_pylist())
                written += batch.num_rows
                changed += [str(s) for s in batch.column("seller_id").to_pylist()]
        for batch in events:
            if batch.num_rows:
                conn.execute(sa.insert(t.due_diligence_events), batch.to_pylist())
                appended += batch.num_rows
        refresh_desk(conn, operator_id, None if every else changed, settings)
        if every and conn.dialect.name == "postgresql":  # the planner's figures of a table just filled
            conn.exec_driver_sql(f"analyze {t.due_diligence_desk.name}")
        k = t.due_diligence_desk
        listed = conn.execute(sa.select(sa.func.count()).select_from(k).where(k.c.operator_id == operator_id))
        run = {**run, "desk": int(listed.scalar_one())}
        conn.execute(_upsert(conn, t.due_diligence_runs, ("operator_id", "run_date")), [run])
    return written, appended


def _upsert(conn: Connection, table: sa.Table, key: tuple[str, ...]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE every other column (SQLite and PostgreSQL)."""
    from sqlalchemy.dialects import postgresql, sqlite

    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table)
        return pg.on_conflict_do_update(
            index_elements=list(key), set_={c.name: pg.excluded[c.name] for c in table.c if c.name not in key}
        )
    lite = sqlite.insert(table)
    return lite.on_conflict_do_update(
        index_elements=list(key), set_={c.name: lite.excluded[c.name] for c in table.c if c.name not in key}
    )


# ------------------------------------------------------------------------- reports of actions


@dataclass(frozen=True, slots=True)
class ActionReport:
    """One line of a report of actions; ``where`` names the file and line for errors."""

    where: str
    line: int
    seller_id: str
    operator_id: str
    action: str
    at: datetime  # naive UTC
    reference: str | None = None


def read_action_reports(path: str | Path) -> Iterator[ActionReport]:
    """The lines of a report of actions (JSON Lines), each checked: a bad line raises
    :class:`DueDiligenceReportError` naming the file, the line and the field."""
    path = Path(path)
    name = path.name
    try:
        handle = open(path, encoding="utf-8-sig")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise DueDiligenceReportError(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    with handle:
        number = 0
        try:
            for number, text in enumerate(handle, start=1):
                if text.strip():
                    yield _action_report(f"{name} line {number}", number, text)
        except UnicodeDecodeError:
            raise DueDiligenceReportError(f"{name} line {number + 1}: not UTF-8 text") from None


def _action_report(where: str, line: int, text: str) -> ActionReport:
    try:
        obj = json.loads(text)
    except ValueError:
        raise DueDiligenceReportError(f"{where}: not a JSON object") from None
    if not isinstance(obj, dict):
        raise DueDiligenceReportError(f"{where}: not a JSON object (seller_id, action, at)")
    unknown = sorted(set(obj) - set(REPORT_KEYS))
    if unknown:
        raise DueDiligenceReportError(
            f"{where}: unknown field(s) {', '.join(map(str, unknown))[:200]}; the fields are {', '.join(REPORT_KEYS)}"
        )
    seller_id = obj.get("seller_id")
    if not isinstance(seller_id, str) or not seller_id.strip() or len(seller_id.strip()) > 200:
        raise DueDiligenceReportError(f"{where}: field seller_id must be a seller's id (text, 1 to 200 characters)")
    seller_id = seller_id.strip()
    action = obj.get("action")
    if action not in DUE_DILIGENCE_ACTIONS:
        raise DueDiligenceReportError(
            f"{where}: field action is {repr(action)[:40]}; expected one of {', '.join(DUE_DILIGENCE_ACTIONS)}"
        )
    at = obj.get("at")
    if not isinstance(at, str):
        raise DueDiligenceReportError(f"{where}: field at is missing (ISO 8601 with offset, e.g. 2026-03-02T09:30:00Z)")
    try:
        when = datetime.fromisoformat(at.strip())
    except ValueError:
        raise DueDiligenceReportError(
            f"{where}: field at {at[:40]!r} is not ISO 8601 (e.g. 2026-03-02T09:30:00Z)"
        ) from None
    if when.tzinfo is None:
        raise DueDiligenceReportError(f"{where}: field at {at[:40]!r} has no offset: give Z or +HH:MM")
    operator_id = obj.get("operator_id", DEFAULT_OPERATOR)
    if not isinstance(operator_id, str) or not _OPERATOR.fullmatch(operator_id):
        raise DueDiligenceReportError(
            f"{where}: field operator_id must be an operator's id ('{DEFAULT_OPERATOR}' or an [operators.ID]'s)"
        )
    reference = obj.get("reference")
    if reference is not None and (not isinstance(reference, str) or len(reference) > 200):
        raise DueDiligenceReportError(f"{where}: field reference must be text of at most 200 characters")
    return ActionReport(where, line, seller_id, operator_id, action, _utc(when), (reference or "").strip() or None)


@dataclass(slots=True)
class MarkOutcome:
    """What a report of actions changed: counts only (no personal data)."""

    source: str
    lines: int = 0
    recorded: int = 0  # actions recorded
    repeated: int = 0  # already recorded (the same report again)
    late_measures: int = 0  # measures taken after day 180 (recorded: they happened)
    actions: Counter[str] = field(default_factory=Counter)


def apply_action_reports(
    engine: Engine, reports: Sequence[ActionReport], *, source: str, now: datetime, zone: ZoneInfo
) -> MarkOutcome:
    """Apply a report of actions in one transaction: all or, at the first line the cycle refuses
    (:func:`reporting.diligence_cycle.mark`), none, with a :class:`DueDiligenceReportError` that
    names the line, the seller and why. Each seller's lines are applied in the order of their
    time (then of the cycle). A line already recorded (same operator, seller, action and time)
    changes nothing. A time after ``now`` plus :data:`CLOCK_SKEW` is refused, as is a seller the
    operator's state does not hold. The caller holds the due-diligence lock of every operator
    named (:meth:`reporting.ledger.db.Ledger.mark_due_diligence`)."""
    outcome = MarkOutcome(source=source)
    limit = _utc(now) + CLOCK_SKEW
    for r in reports:
        outcome.lines += 1
        if r.at > limit:
            raise DueDiligenceReportError(
                f"{r.where}: field at {r.at:%Y-%m-%d %H:%M:%S} UTC is in the future (more than "
                f"{CLOCK_SKEW.seconds // 60} minutes after {_utc(now):%Y-%m-%d %H:%M:%S} UTC): an action is reported "
                "once it was performed; nothing was applied"
            )
    ordered = sorted(reports, key=lambda r: (r.operator_id, r.seller_id, r.at, action_rank(r.action), r.line))
    recorded_at = _utc(now)
    try:
        with engine.begin() as conn:
            for chunk in _by_sellers(ordered, _SELLERS_PER_READ):
                _apply_chunk(conn, chunk, outcome, zone, recorded_at, source)
    except sa.exc.IntegrityError:
        raise LedgerError(f"{source}: the ledger refused the report; nothing of it was applied") from None
    return outcome


#: Sellers whose rows are read with one query (SQLite takes 32,766 parameters since 3.32).
_SELLERS_PER_READ = 5_000


def _by_sellers(ordered: list[ActionReport], size: int) -> Iterator[list[ActionReport]]:
    """Consecutive runs of ``ordered`` (sorted by operator and seller) of at most ``size``
    sellers each, a seller's lines never split."""
    chunk: list[ActionReport] = []
    sellers = 0
    last: tuple[str, str] | None = None
    for r in ordered:
        key = (r.operator_id, r.seller_id)
        if key != last:
            if sellers == size:
                yield chunk
                chunk, sellers = [], 0
            sellers += 1
            last = key
        chunk.append(r)
    if chunk:
        yield chunk


def _apply_chunk(
    conn: Connection,
    chunk: list[ActionReport],
    outcome: MarkOutcome,
    zone: ZoneInfo,
    recorded_at: datetime,
    source: str,
) -> None:
    d, e = t.due_diligence, t.due_diligence_events
    rows: dict[tuple[str, str], Any] = {}
    seen: set[tuple[str, str, str, datetime]] = set()
    for operator_id in sorted({r.operator_id for r in chunk}):
        ids = sorted({r.seller_id for r in chunk if r.operator_id == operator_id})
        lean = sa.select(*(d.c[c] for c in _MARK_COLUMNS)).where(d.c.operator_id == operator_id, d.c.seller_id.in_(ids))
        for row in conn.execute(lean):
            rows[(operator_id, row.seller_id)] = row
        for ev in conn.execute(
            sa.select(e.c.seller_id, e.c.kind, e.c.at).where(
                e.c.operator_id == operator_id, e.c.seller_id.in_(ids), e.c.kind.in_(DUE_DILIGENCE_ACTIONS)
            )
        ):
            seen.add((operator_id, ev.seller_id, ev.kind, ev.at))
    cycles: dict[tuple[str, str], SellerCycle] = {}
    updated: dict[tuple[str, str], date] = {}
    events: list[dict[str, Any]] = []
    for r in chunk:
        key = (r.operator_id, r.seller_id)
        if key not in rows:
            raise DueDiligenceReportError(
                f"{r.where}: seller {r.seller_id} has no due-diligence state for operator {r.operator_id} (the feed "
                "never named it; another operator's, or a typo?); nothing was applied"
            )
        if (r.operator_id, r.seller_id, r.action, r.at) in seen:
            outcome.repeated += 1
            continue
        seen.add((r.operator_id, r.seller_id, r.action, r.at))
        before = cycles.get(key) or _lean_cycle(rows[key])
        on = local_day(r.at, zone)
        try:
            after = mark(before, r.action, on)
        except MarkRefused as exc:
            raise DueDiligenceReportError(
                f"{r.where}: seller {r.seller_id}, action {r.action} on {on}: {exc}; nothing was applied"
            ) from None
        if r.action in MEASURES and before.requested_on and (on - before.requested_on).days > LAST_MEASURE_DAY:
            outcome.late_measures += 1
        cycles[key] = after
        updated[key] = max(updated.get(key, rows[key].updated), on)
        events.append(_action_event(r, before, after, on, recorded_at, source))
        outcome.recorded += 1
        outcome.actions[r.action] += 1
    # through the driver: a report of a first day names every seller, and SQLAlchemy's handling of
    # each parameter would cost more than the database's work (the values as SQLAlchemy stores them)
    mark_param = _placeholder(conn)
    columns = (*CYCLE_COLUMNS, "updated", "changed")
    if cycles:
        sets = ", ".join(f"{c} = {mark_param}" for c in columns)
        conn.exec_driver_sql(
            f"update ledger_due_diligence set {sets} where operator_id = {mark_param} and seller_id = {mark_param}",
            [
                (
                    *(_driver(v, conn) for v in cycle_values(c).values()),
                    _driver(updated[(operator_id, seller_id)], conn),
                    _driver(recorded_at, conn),
                    operator_id,
                    seller_id,
                )
                for (operator_id, seller_id), c in cycles.items()
            ],
        )
    for operator_id in sorted({op for op, _ in cycles}):
        _refresh_desk(conn, operator_id, [seller for op, seller in cycles if op == operator_id])
    if events:
        names = ("operator_id", "seller_id", "at", "kind", "detail", "source", "recorded")
        conn.exec_driver_sql(
            f'insert into ledger_due_diligence_events (operator_id, seller_id, "at", kind, detail, source, recorded) '
            f"values ({', '.join([mark_param] * len(names))})",
            [tuple(_driver(ev[n], conn) for n in names) for ev in events],
        )


def _refresh_desk(conn: Connection, operator_id: str, seller_ids: list[str]) -> None:
    """The compliance desk's rows of sellers whose state was just written (a report of actions, a
    verification), with the settings of the operator's latest run; nothing before a run wrote the
    desk (that run fills it)."""
    settings = desk_settings(conn, operator_id)
    if settings is not None and seller_ids:
        refresh_desk(conn, operator_id, seller_ids, settings)


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _driver(value: Any, conn: Connection) -> Any:
    """A value as the driver takes it where SQLAlchemy's types are bypassed: on SQLite, a date or
    a time as the text SQLAlchemy stores (``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if conn.dialect.name != "sqlite":
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


#: What a report of actions reads of a state row: the cycle, and the items lacking as one text.
_MARK_COLUMNS = ("seller_id", "scope", "needs", "registered_at", "updated", *CYCLE_COLUMNS)


def _lean_cycle(row: Any) -> SellerCycle:
    """The cycle of a row of :data:`_MARK_COLUMNS` (what :func:`reporting.diligence_cycle.mark`
    reads; the invalid items are not among it)."""
    return SellerCycle(
        seller_id=row.seller_id,
        in_scope=row.scope == IN_SCOPE,
        needs=split_items(row.needs),
        registered_at=row.registered_at,
        notice_due=row.notice_due,
        notice_on=row.notice_on,
        request_due=row.request_due,
        requested_on=row.requested_on,
        requested_items=split_items(row.requested_items),
        reminder_1_on=row.reminder_1_on,
        reminder_2_on=row.reminder_2_on,
        measure=row.measure,
        measure_on=row.measure_on,
        release_due=row.release_due,
        cycles=row.cycles,
    )


def _action_event(
    r: ActionReport, before: SellerCycle, after: SellerCycle, on: date, recorded_at: datetime, source: str
) -> dict[str, Any]:
    """The history's row of an action reported sent (PStTG § 24(1) Nr. 5: its content, as the
    items it asked for, and its time)."""
    detail: dict[str, Any] = {"on": on.isoformat()}
    if r.action == RELEASE:
        detail["measure"] = before.measure
    if before.requested_on is not None and r.action != PRE_REPORT_NOTICE:
        detail["requested_on"] = before.requested_on.isoformat()
    if r.action == REQUEST:
        detail["items"] = list(after.requested_items)
    if r.reference:
        detail["reference"] = r.reference
    return {
        "operator_id": r.operator_id,
        "seller_id": r.seller_id,
        "at": r.at,
        "kind": r.action,
        "detail": json.dumps(detail, sort_keys=True),
        "source": source[:400],
        "recorded": recorded_at,
    }


# ------------------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class Verification:
    """What a verification adapter found of one item of one seller: ``state`` verified or
    invalid, ``source`` the adapter and its evidence (``vies:consultation 1234``, never a value),
    ``at`` when it answered."""

    seller_id: str
    item: str
    state: str
    source: str
    at: datetime
    operator_id: str = DEFAULT_OPERATOR
    #: the digest of the value that was verified (the state's ``<item>_hash`` when it was read):
    #: recorded only while the state still holds that value, else passed over as stale (the
    #: value changed, or went, since); None records whatever value the state holds
    value_hash: str | None = None


def record_verifications(engine: Engine, results: Iterable[Verification], *, now: datetime, zone: ZoneInfo) -> int:
    """Record verifications in one transaction (all or none): each sets its item's state to
    verified or invalid, the item's ``_checked`` to the day it answered, recomputes the seller's
    ``needs``, and appends a ``verification`` event. Refused (:class:`DueDiligenceReportError`):
    an unknown seller, item or state, an item the source does not hold (missing or not
    applicable: there is nothing to verify), a time in the future. The verification holds while
    the item's value is the one the last run saw: a changed value is unverified again at the
    next run, and a verified one after 36 months (PStTG § 20(2)). A verification with a
    ``value_hash`` that the state no longer holds is passed over (not recorded, not counted).
    The caller holds the due-diligence lock. Returns how many were recorded."""
    d, e = t.due_diligence, t.due_diligence_events
    limit = _utc(now) + CLOCK_SKEW
    n = 0
    touched: dict[str, set[str]] = {}
    with engine.begin() as conn:
        for number, v in enumerate(results, start=1):
            where = f"verification {number} (seller {v.seller_id}, item {v.item})"
            if v.item not in DUE_DILIGENCE_ITEMS:
                raise DueDiligenceReportError(f"{where}: not a due-diligence item ({', '.join(DUE_DILIGENCE_ITEMS)})")
            if v.state not in VERIFICATION_RESULTS:
                raise DueDiligenceReportError(
                    f"{where}: state {v.state!r}; expected {' or '.join(VERIFICATION_RESULTS)}"
                )
            if not v.source or len(v.source) > 400:
                raise DueDiligenceReportError(f"{where}: the source must name the adapter (1 to 400 characters)")
            at = _utc(v.at)
            if at > limit:
                raise DueDiligenceReportError(f"{where}: its time {at:%Y-%m-%d %H:%M:%S} UTC is in the future")
            row = conn.execute(
                sa.select(d).where(d.c.operator_id == v.operator_id, d.c.seller_id == v.seller_id)
            ).first()
            if row is None:
                raise DueDiligenceReportError(f"{where}: no due-diligence state for operator {v.operator_id}")
            if v.value_hash is not None and getattr(row, f"{v.item}_hash") != v.value_hash:
                continue  # the value changed since it was read: the next run sees it unverified
            states = item_states(row)
            was = states[v.item]
            if was in (ITEM_MISSING, ITEM_NOT_APPLICABLE):
                raise DueDiligenceReportError(f"{where}: the item is {was}: there is no value to verify")
            states[v.item] = v.state
            needs = join_items(i for i, s in states.items() if s in (ITEM_MISSING, ITEM_INVALID))
            day = local_day(at, zone)
            reverify_on = row.reverify_on
            if v.state == ITEM_VERIFIED:  # runs out the day after it may no longer be relied on
                runs_out = relied_until(day) + timedelta(days=1)
                reverify_on = min(reverify_on, runs_out) if reverify_on else runs_out
            conn.execute(
                sa.update(d)
                .where(d.c.operator_id == v.operator_id, d.c.seller_id == v.seller_id)
                .values(
                    {
                        f"{v.item}_state": v.state,
                        f"{v.item}_checked": day,
                        "needs": needs,
                        "reverify_on": reverify_on,
                        "updated": max(row.updated, day),
                        "changed": _utc(now),
                    }
                )
            )
            conn.execute(
                sa.insert(e).values(
                    operator_id=v.operator_id,
                    seller_id=v.seller_id,
                    at=at,
                    kind=DD_VERIFICATION,
                    detail=json.dumps({"item": v.item, "state": v.state, "was": was}, sort_keys=True),
                    source=v.source[:400],
                    recorded=_utc(now),
                )
            )
            touched.setdefault(v.operator_id, set()).add(v.seller_id)
            n += 1
        for operator_id, sellers in sorted(touched.items()):
            _refresh_desk(conn, operator_id, sorted(sellers))
    return n


#: The items a verification adapter checks: a seller's TINs and its VAT number (the other items
#: have no electronic interface to check them against, PStTG § 18(1) sentence 2).
VERIFIABLE_ITEMS: tuple[str, ...] = ("tin", "vat")


@dataclass(frozen=True, slots=True)
class VerificationDue:
    """A seller with items to verify: each item's digest as the state holds it (the value to look
    up in the source), its type and residence country (a VAT number without its prefix)."""

    seller_id: str
    seller_type: str | None
    country: str | None
    items: dict[str, str]  # item -> the digest of its value


def verification_due(
    engine: Engine,
    operator_id: str,
    *,
    recheck_invalid: dict[str, date] | None = None,
    limit: int | None,
) -> tuple[list[VerificationDue], int]:
    """The sellers whose items a verification should check (:data:`VERIFIABLE_ITEMS`), at most
    ``limit`` items (None: all), and how many items are due in all: of the sellers in scope or in an open
    cycle, each item that is unverified (new, changed, or its 36 months ran out: the run made it
    so), and each item of ``recheck_invalid`` found invalid before the day it maps to (a VAT
    number VIES found not registered, asked again when its answer may no longer be reused).
    First the sellers never tried (no ``verification`` event), then those tried longest ago (the
    latest one), among equals those in an open cycle first, then by the day of their last change
    and their id: an item that cannot be verified goes to the back of the queue once tried, so
    that it does not take every day's calls (an open cycle's item that a service keeps failing
    would), and none waits for ever."""
    d, e = t.due_diligence, t.due_diligence_events
    recheck = recheck_invalid or {}
    due_of: dict[str, sa.ColumnElement[bool]] = {}
    for item in VERIFIABLE_ITEMS:
        state, checked = d.c[f"{item}_state"], d.c[f"{item}_checked"]
        cond = state == ITEM_UNVERIFIED
        if item in recheck:
            cond = sa.or_(cond, sa.and_(state == ITEM_INVALID, checked < recheck[item]))
        due_of[item] = cond
    where = sa.and_(
        d.c.operator_id == operator_id,
        sa.or_(d.c.scope == IN_SCOPE, d.c.requested_on.is_not(None)),
        sa.or_(*due_of.values()),
    )
    tried = (
        sa.select(e.c.seller_id, sa.func.max(e.c.at).label("tried"))
        .where(e.c.operator_id == operator_id, e.c.kind == DD_VERIFICATION)
        .group_by(e.c.seller_id)
        .subquery()
    )
    flags = [sa.case((c, 1), else_=0).label(f"{i}_due") for i, c in due_of.items()]
    query = (
        sa.select(
            d.c.seller_id,
            d.c.seller_type,
            d.c.country,
            *(d.c[f"{i}_hash"] for i in VERIFIABLE_ITEMS),
            *flags,
        )
        .outerjoin(tried, tried.c.seller_id == d.c.seller_id)
        .where(where)
        .order_by(
            sa.case((tried.c.tried.is_(None), 0), else_=1),
            tried.c.tried,
            sa.case((d.c.requested_on.is_(None), 1), else_=0),
            d.c.updated,
            d.c.seller_id,
        )
    )
    total_query = sa.select(*(sa.func.coalesce(sa.func.sum(sa.case((c, 1), else_=0)), 0) for c in due_of.values()))
    out: list[VerificationDue] = []
    taken = 0
    with engine.connect() as conn:
        total = sum(int(n or 0) for n in conn.execute(total_query.where(where)).one())
        if limit is None or limit > 0:
            for row in conn.execute(query if limit is None else query.limit(limit)):
                items = {i: getattr(row, f"{i}_hash") for i in VERIFIABLE_ITEMS if getattr(row, f"{i}_due")}
                if limit is not None:
                    items = dict(list(items.items())[: limit - taken])
                if not items:
                    break
                out.append(VerificationDue(row.seller_id, row.seller_type, row.country, items))
                taken += len(items)
    return out, total


def record_unverified(engine: Engine, attempts: Iterable[Verification], *, now: datetime, repeat: bool = True) -> int:
    """Record that items could not be verified (a service that did not answer, no adapter for
    such an identifier, a value no service takes): a ``verification`` event each, ``state``
    unverified and the reason as its ``source``; the item's state is not changed (it stays
    unverified, and is tried again once the others had their turn: :func:`verification_due`).
    PStTG § 24(1) Nr. 2 asks for the outcome of each processing, this one too. With ``repeat``
    false (an attempt that called no service: no adapter for it, a TIN without its issuing
    state), an attempt is not recorded again while the item's latest ``verification`` event says
    the same (unverified, the same reason) and the seller's state was not written since (a
    changed value writes it): one event, not one a day. An attempt whose
    ``value_hash`` the state no longer holds, or whose seller has no state, is passed over.
    Returns how many apply (recorded, or the same as recorded before); the caller holds the
    due-diligence lock."""
    d, e = t.due_diligence, t.due_diligence_events
    n = 0
    with engine.begin() as conn:
        for v in attempts:
            if v.item not in DUE_DILIGENCE_ITEMS:
                raise DueDiligenceReportError(f"seller {v.seller_id}: {v.item!r} is not a due-diligence item")
            row = conn.execute(
                sa.select(d.c[f"{v.item}_state"], d.c[f"{v.item}_hash"], d.c.changed).where(
                    d.c.operator_id == v.operator_id, d.c.seller_id == v.seller_id
                )
            ).first()
            if row is None or (v.value_hash is not None and row[1] != v.value_hash):
                continue
            n += 1
            source = v.source[:400] or "verification"
            if not repeat and _same_as_last(conn, v, source, row.changed):
                continue
            conn.execute(
                sa.insert(e).values(
                    operator_id=v.operator_id,
                    seller_id=v.seller_id,
                    at=_utc(v.at),
                    kind=DD_VERIFICATION,
                    detail=json.dumps({"item": v.item, "state": ITEM_UNVERIFIED, "was": row[0]}, sort_keys=True),
                    source=source,
                    recorded=_utc(now),
                )
            )
    return n


def _same_as_last(conn: sa.Connection, v: Verification, source: str, changed: datetime) -> bool:
    """Whether the item's latest ``verification`` event is this one's (unverified, ``source``)
    and was recorded after the seller's state was last written (``changed``, UTC)."""
    e = t.due_diligence_events
    last = conn.execute(
        sa.select(e.c.detail, e.c.source, e.c.recorded)
        .where(
            e.c.operator_id == v.operator_id,
            e.c.seller_id == v.seller_id,
            e.c.kind == DD_VERIFICATION,
            e.c.detail.like(f'%"item": "{v.item}"%'),
        )
        .order_by(e.c.recorded.desc(), e.c.id.desc())
        .limit(1)
    ).first()
    if last is None or last.source != source:
        return False
    return bool(json.loads(last.detail).get("state") == ITEM_UNVERIFIED and last.recorded > changed)


# ------------------------------------------------------------------------------------ queries


@dataclass(frozen=True, slots=True)
class SellerState:
    """A seller's due-diligence state (no personal data but the seller's id)."""

    operator_id: str
    seller_id: str
    seller_type: str | None
    country: str | None
    scope: str
    period: int
    items: dict[str, str]
    checked: dict[str, date | None]
    cycle: SellerCycle
    first_seen: date
    updated: date

    @property
    def needs(self) -> tuple[str, ...]:
        return self.cycle.needs


def _state(row: Any) -> SellerState:
    return SellerState(
        operator_id=row.operator_id,
        seller_id=row.seller_id,
        seller_type=row.seller_type,
        country=row.country,
        scope=row.scope,
        period=row.period,
        items=item_states(row),
        checked={i: getattr(row, f"{i}_checked") for i in DUE_DILIGENCE_ITEMS},
        cycle=cycle_of(row),
        first_seen=row.first_seen,
        updated=row.updated,
    )


def seller_state(engine: Engine, seller_id: str, operator_id: str = DEFAULT_OPERATOR) -> SellerState | None:
    d = t.due_diligence
    with engine.connect() as conn:
        row = conn.execute(sa.select(d).where(d.c.operator_id == operator_id, d.c.seller_id == seller_id)).first()
    return _state(row) if row is not None else None


def seller_states(engine: Engine, seller_id: str) -> list[SellerState]:
    """A seller's state with every operator of a group that has one, in the order of operator."""
    d = t.due_diligence
    with engine.connect() as conn:
        rows = conn.execute(sa.select(d).where(d.c.seller_id == seller_id).order_by(d.c.operator_id)).all()
    return [_state(r) for r in rows]


def last_run_dates(engine: Engine) -> dict[str, date]:
    """Each operator's latest day a run computed, by operator id (the day the state stands at)."""
    r = t.due_diligence_runs
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(r.c.operator_id, sa.func.max(r.c.run_date)).group_by(r.c.operator_id).order_by(r.c.operator_id)
        ).all()
    return {op: day if isinstance(day, date) else date.fromisoformat(str(day)) for op, day in rows}


def desk_not_filled(engine: Engine) -> list[str]:
    """The operators whose latest run wrote no compliance desk (a run before revision
    0009_due_diligence_desk): their list is empty until their next run fills it."""
    r = t.due_diligence_runs
    latest = sa.select(r.c.operator_id, sa.func.max(r.c.run_date).label("day")).group_by(r.c.operator_id).subquery()
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(r.c.operator_id)
                .join(latest, sa.and_(latest.c.operator_id == r.c.operator_id, latest.c.day == r.c.run_date))
                .where(r.c.desk.is_(None))
                .order_by(r.c.operator_id)
            ).scalars()
        )


def _last_run_texts(engine: Engine) -> list[tuple[str, str | None]]:
    """(operator id, the ``settings`` text of its latest run), in the order of operator."""
    r = t.due_diligence_runs
    latest = sa.select(r.c.operator_id, sa.func.max(r.c.run_date).label("day")).group_by(r.c.operator_id).subquery()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(r.c.operator_id, r.c.settings)
            .join(latest, sa.and_(latest.c.operator_id == r.c.operator_id, latest.c.day == r.c.run_date))
            .order_by(r.c.operator_id)
        ).all()
    return [(op, text) for op, text in rows]


def desk_settings(conn: Connection, operator_id: str) -> CycleSettings | None:
    """The settings the operator's desk was computed with: its latest run's, where that run wrote
    the desk (None: no run since revision 0009_due_diligence_desk; the next run fills the desk)."""
    r = t.due_diligence_runs
    row = conn.execute(
        sa.select(r.c.settings, r.c.desk).where(r.c.operator_id == operator_id).order_by(r.c.run_date.desc()).limit(1)
    ).first()
    if row is None or row.desk is None:
        return None
    return settings_from_json(row.settings)


def last_run_settings(engine: Engine) -> dict[str, CycleSettings | None]:
    """Each operator's ``[due_diligence]`` settings its latest run scheduled with (the run's row),
    by operator id; None for a run that did not record them (before revision
    0008_due_diligence_run_settings) or whose record cannot be read."""
    return {op: settings_from_json(text) for op, text in _last_run_texts(engine)}


def last_run_zones(engine: Engine) -> dict[str, str | None]:
    """The time zone each operator's latest run counted its days in (``[reporting] timezone``,
    kept with the run's settings as ``timezone``), by operator id; None for a run that did not
    record one (a run made before the zone was recorded) or whose record cannot be read."""
    zones: dict[str, str | None] = {}
    for op, text in _last_run_texts(engine):
        try:
            value = json.loads(text) if text else None
        except ValueError:
            value = None
        zone = value.get("timezone") if isinstance(value, dict) else None
        zones[op] = zone if isinstance(zone, str) and zone else None
    return zones


def settings_json(settings: CycleSettings, timezone: str | None = None) -> str:
    """The settings as the run's row keeps them (JSON, dates ISO), and ``timezone``, the zone the
    run counted its days in (``[reporting] timezone``), where given."""
    value: dict[str, Any] = {
        "measure": settings.measure,
        "reminder_1_days": settings.reminder_1_days,
        "reminder_2_days": settings.reminder_2_days,
        "measure_day": settings.measure_day,
        "reporting_since": settings.reporting_since.isoformat(),
    }
    if timezone:
        value["timezone"] = timezone
    return json.dumps(value, sort_keys=True)


def settings_from_json(text: str | None) -> CycleSettings | None:
    """:func:`settings_json`'s settings again; None for none, or for a text that is not such."""
    if not text:
        return None
    try:
        value = json.loads(text)
        settings = CycleSettings(
            measure=str(value["measure"]),
            reminder_1_days=int(value["reminder_1_days"]),
            reminder_2_days=int(value["reminder_2_days"]),
            measure_day=int(value["measure_day"]),
            reporting_since=date.fromisoformat(str(value["reporting_since"])),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return None if settings.problems() else settings


@dataclass(frozen=True, slots=True)
class Attention:
    """A seller that needs attention: what it lacks, where its cycle stands, its next action and
    the day that action is (or was first) due, and every action due on the day asked (what the
    feed of a run of that day lists for the seller)."""

    state: SellerState
    next_action: str | None
    next_date: date | None
    due: tuple[DueAction, ...] = ()

    @property
    def seller_id(self) -> str:
        return self.state.seller_id


def _needing_attention() -> sa.ColumnElement[bool]:
    """A state row that needs attention: an item lacking, a cycle open, a release due, or in scope
    without the notice sent."""
    d = t.due_diligence
    return sa.or_(
        d.c.needs != "",
        d.c.requested_on.is_not(None),
        d.c.release_due.is_not(None),
        sa.and_(d.c.scope == IN_SCOPE, d.c.notice_on.is_(None)),
    )


def needs_attention(
    engine: Engine,
    settings: CycleSettings,
    today: date,
    *,
    operator_id: str | None = None,
    country: str | None = None,
    action: str | None = None,
) -> Iterator[Attention]:
    """The sellers that lack an item or have an action due or coming (a notice not sent, an open
    cycle), in the order of operator and seller id, streamed; filtered by the seller's country
    and by an action: its next action (:func:`reporting.diligence_cycle.next_action`, as of
    ``today``) or one due that day (:func:`reporting.diligence_cycle.due_actions`: a notice and a
    request due on the same day are both found); :data:`NO_NEXT_ACTION`: those with none."""
    d = t.due_diligence
    query = sa.select(d).where(_needing_attention())
    if operator_id is not None:
        query = query.where(d.c.operator_id == operator_id)
    if country is not None:
        query = query.where(d.c.country == country)
    query = query.order_by(d.c.operator_id, d.c.seller_id)
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=_BATCH).execute(query):
            state = _state(row)
            nxt = next_action(state.cycle, settings, today)
            due = tuple(due_actions(state.cycle, settings, today))
            if action == NO_NEXT_ACTION:
                if nxt is not None:
                    continue
            elif action is not None and (nxt is None or nxt[0] != action) and all(a.action != action for a in due):
                continue
            yield Attention(state, nxt[0] if nxt else None, nxt[1] if nxt else None, due)


def attention_countries(engine: Engine, *, operator_id: str | None = None) -> list[str]:
    """The countries of the sellers that need attention (the list's filter), sorted; a seller
    without a country is not among them (it is found without a filter)."""
    d = t.due_diligence
    query = sa.select(d.c.country).distinct().where(_needing_attention(), d.c.country.is_not(None))
    if operator_id is not None:
        query = query.where(d.c.operator_id == operator_id)
    with engine.connect() as conn:
        return sorted(str(c) for c in conn.execute(query).scalars())


def due_today(
    engine: Engine, settings: CycleSettings, today: date, *, operator_id: str = DEFAULT_OPERATOR
) -> Iterator[tuple[str, Any]]:
    """(seller_id, :class:`reporting.diligence_cycle.DueAction`) for every action due on ``today``
    by the state as it stands (what the feed of a run of ``today`` lists)."""
    for a in needs_attention(engine, settings, today, operator_id=operator_id):
        for due in a.due:
            yield a.seller_id, due


@dataclass(frozen=True, slots=True)
class StageCounts:
    """Sellers per stage of the cycle, for one operator or all: in scope; of those, lacking an
    item; requested (an open cycle before its second reminder); reminded twice (no measure yet);
    blocked (under a measure); released (ever: a release recorded)."""

    in_scope: int = 0
    incomplete: int = 0
    requested: int = 0
    reminded_twice: int = 0
    blocked: int = 0
    released: int = 0


def stage_counts(engine: Engine, *, operator_id: str | None = None, country: str | None = None) -> StageCounts:
    """Sellers per stage (:class:`StageCounts`), of one operator or all, of one country or all
    (the seller's residence country, as the state holds it)."""
    d, e = t.due_diligence, t.due_diligence_events
    open_ = d.c.requested_on.is_not(None)
    query = sa.select(
        sa.func.count().filter(d.c.scope == IN_SCOPE),
        sa.func.count().filter(d.c.scope == IN_SCOPE, d.c.needs != ""),
        sa.func.count().filter(open_, d.c.reminder_2_on.is_(None)),
        sa.func.count().filter(open_, d.c.reminder_2_on.is_not(None), d.c.measure_on.is_(None)),
        sa.func.count().filter(d.c.measure_on.is_not(None)),
    )
    freed_sellers = sa.select(e.c.operator_id, e.c.seller_id).where(e.c.kind == RELEASE)
    if operator_id is not None:
        query = query.where(d.c.operator_id == operator_id)
        freed_sellers = freed_sellers.where(e.c.operator_id == operator_id)
    if country is not None:
        query = query.where(d.c.country == country)
        of_country = sa.select(d.c.operator_id, d.c.seller_id).where(d.c.country == country)
        freed_sellers = freed_sellers.where(sa.tuple_(e.c.operator_id, e.c.seller_id).in_(of_country))
    released = sa.select(sa.func.count()).select_from(freed_sellers.distinct().subquery())
    with engine.connect() as conn:
        counts = conn.execute(query).one()
        freed = conn.execute(released).scalar_one()
    in_scope, incomplete, requested, reminded_twice, blocked = (int(x or 0) for x in counts)
    return StageCounts(in_scope, incomplete, requested, reminded_twice, blocked, released=int(freed or 0))


def desk_stage_counts(engine: Engine, *, operator_ids: Iterable[str], country: str | None = None) -> StageCounts:
    """:func:`stage_counts` of the operators listed, the cycle's stages and the incomplete read from
    the compliance desk (``ledger_due_diligence_desk``: one ``GROUP BY stage``; every seller in
    such a stage, or incomplete, needs attention, so the desk holds it), the sellers in scope from
    the state, the released from the history."""
    d, e, k = t.due_diligence, t.due_diligence_events, t.due_diligence_desk
    ops = sorted(set(operator_ids))
    if not ops:
        return StageCounts()
    lacking = sa.and_(k.c.scope == IN_SCOPE, sa.or_(k.c.items_missing != "", k.c.items_invalid != ""))
    stages = (
        sa.select(k.c.stage, sa.func.count(), sa.func.count().filter(lacking))
        .where(k.c.operator_id.in_(ops))
        .group_by(k.c.stage)
    )
    in_scope = sa.select(sa.func.count()).select_from(d).where(d.c.operator_id.in_(ops), d.c.scope == IN_SCOPE)
    freed_sellers = sa.select(e.c.operator_id, e.c.seller_id).where(e.c.kind == RELEASE, e.c.operator_id.in_(ops))
    if country is not None:
        stages = stages.where(k.c.country == country)
        in_scope = in_scope.where(d.c.country == country)
        of_country = sa.select(d.c.operator_id, d.c.seller_id).where(d.c.country == country)
        freed_sellers = freed_sellers.where(sa.tuple_(e.c.operator_id, e.c.seller_id).in_(of_country))
    released = sa.select(sa.func.count()).select_from(freed_sellers.distinct().subquery())
    with engine.connect() as conn:
        per_stage = {str(s): (int(n), int(m)) for s, n, m in conn.execute(stages).all()}
        scope = int(conn.execute(in_scope).scalar_one() or 0)
        freed = int(conn.execute(released).scalar_one() or 0)
    return StageCounts(
        in_scope=scope,
        incomplete=sum(m for _, m in per_stage.values()),
        requested=per_stage.get(DESK_REQUESTED, (0, 0))[0],
        reminded_twice=per_stage.get(DESK_REMINDED_TWICE, (0, 0))[0],
        blocked=per_stage.get(DESK_BLOCKED, (0, 0))[0],
        released=freed,
    )


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    at: datetime
    kind: str
    detail: dict[str, Any]
    source: str
    recorded: datetime


def seller_history(engine: Engine, seller_id: str, operator_id: str = DEFAULT_OPERATOR) -> list[HistoryEvent]:
    """A seller's due-diligence events in the order they happened (no value of an item)."""
    e = t.due_diligence_events
    query = sa.select(e).where(e.c.operator_id == operator_id, e.c.seller_id == seller_id).order_by(e.c.at, e.c.id)
    with engine.connect() as conn:
        return [
            HistoryEvent(r.at, r.kind, json.loads(r.detail) if r.detail else {}, r.source, r.recorded)
            for r in conn.execute(query)
        ]


def incomplete_sellers(engine: Engine, seller_ids: Iterable[str], operator_id: str = DEFAULT_OPERATOR) -> set[str]:
    """Those of ``seller_ids`` that still lack an item (missing or invalid): for the approval
    page's count of reportable sellers still incomplete."""
    d = t.due_diligence
    ids = sorted(set(seller_ids))
    out: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(ids), _BATCH):
            query = sa.select(d.c.seller_id).where(
                d.c.operator_id == operator_id, d.c.seller_id.in_(ids[start : start + _BATCH]), d.c.needs != ""
            )
            out.update(conn.execute(query).scalars())
    return out


# ---------------------------------------------------------------------------------- retention


@dataclass(slots=True)
class DueDiligenceRetention:
    dry_run: bool
    events: int = 0  # events whose retention ended (deleted, or that would be)
    states: int = 0  # state rows unchanged since a year whose retention ended, no cycle open


def erase_expired(engine: Engine, *, now: datetime, zone: ZoneInfo, dry_run: bool = False) -> DueDiligenceRetention:
    """Delete what PStTG § 24(3) requires deleted: each event ten years after the end of the
    calendar year in which it was recorded (:func:`reporting.ledger.statements.retention_ends`,
    in the filing state's zone ``zone``), and each state row last changed in such a year whose
    cycle is not open (a later run makes it again if the seller is active). ``dry_run`` counts."""
    aware = now if now.tzinfo else now.replace(tzinfo=UTC)
    outcome = DueDiligenceRetention(dry_run=dry_run)
    # made in the local year Y, due from 1 January Y + 11 local: only Y <= N - 10 can be due in
    # the UTC year N; the query reads nothing later (a day's margin for the zone)
    horizon = datetime(aware.astimezone(UTC).year - 9, 1, 2)
    e, d = t.due_diligence_events, t.due_diligence
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(e.c.id, e.c.recorded)
                .where(e.c.recorded < horizon, e.c.id > last)
                .order_by(e.c.id)
                .limit(_BATCH * 10)
            ).all()
        if not rows:
            break
        last = rows[-1].id
        going = [r.id for r in rows if retention_ends(r.recorded, zone) <= aware]
        outcome.events += len(going)
        if going and not dry_run:
            with engine.begin() as conn:
                for start in range(0, len(going), _BATCH):
                    conn.execute(sa.delete(e).where(e.c.id.in_(going[start : start + _BATCH])))
    with engine.connect() as conn:
        stale = [
            (r.operator_id, r.seller_id)
            for r in conn.execute(
                sa.select(d.c.operator_id, d.c.seller_id, d.c.changed).where(
                    d.c.changed < horizon, d.c.requested_on.is_(None)
                )
            )
            if retention_ends(r.changed, zone) <= aware
        ]
    outcome.states = len(stale)
    if stale and not dry_run:
        with engine.begin() as conn:
            k = t.due_diligence_desk
            for operator_id, seller_id in stale:
                conn.execute(sa.delete(d).where(d.c.operator_id == operator_id, d.c.seller_id == seller_id))
                conn.execute(sa.delete(k).where(k.c.operator_id == operator_id, k.c.seller_id == seller_id))
    return outcome
