"""The filing ledger in a database: every message and record sent, their states, the status
errors, and the filing lock.

SQLite (a file beside the output, the default) or PostgreSQL, through SQLAlchemy Core; the schema
is migrated to the newest revision whenever a ledger is opened. Every query is scoped by
environment: test filings never count for production.

The ledger holds personal data (the content of every record sent, so that a later deletion can be
rendered): protect it like the output files. A new SQLite file is created with mode 0600.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

import reporting.ledger.schema as t
from reporting.errors import hide_database_values
from reporting.ledger.errors import ApprovalMissingError, LedgerError, LedgerLockedError, UnknownMessageError
from reporting.ledger.model import (
    ACCEPTED,
    CORRECTION,
    DELETED,
    DELETION,
    DISCARDED,
    MESSAGE_TYPES,
    PLATFORM_OPERATOR,
    PUBLISHED,
    REJECTED,
    RENDERED,
    RESEND,
    SELLER,
    SENT,
    SUPERSEDED,
    KnownRecord,
    LiveRecord,
    PlannedMessage,
    PlannedRecord,
    RecordKey,
    StatusReport,
    canonical_json,
    period_label,
)
from reporting.ledger.plan import Problem, ledger_problems
from reporting.ledger.rejections import Rejection, rejections
from reporting.ledger.statements import (
    DeliveryEvent,
    DeliveryOutcome,
    StatementCounts,
    StatementEvent,
    StatementInfo,
    get_statement,
    list_statements,
    mark_delivery,
    record_feed,
    statement_counts,
    statement_history,
    statement_sellers,
)
from reporting.ledger.transmissions import (
    FilingState,
    TransmissionEvent,
    check_sendable,
    filed_times,
    filing_states,
    messages_where,
    open_transfers,
    record_event,
)
from reporting.ledger.transmissions import events as transmission_events
from reporting.vocabulary import DEFAULT_OPERATOR, ENVIRONMENTS, PROD

log = logging.getLogger(__name__)

SCRIPT_LOCATION = "reporting.ledger:migrations"
_LIVE_MESSAGES = (PUBLISHED, ACCEPTED)
_LIVE_RECORDS = (SENT, ACCEPTED, REJECTED)
_BATCH = 500  # ids per IN (...) list: well under SQLite's parameter limit
RECORD_BATCH = 5_000  # records of a message inserted per statement (record_message)
#: The key of the due-diligence lock of an operator in ``ledger_locks`` (environment, authority,
#: year): no filing period has it (environments are test and prod, authorities member states).
DUE_DILIGENCE_LOCK = ("dd", "DD", 0)


def open_ledger(url: str, *, create: bool = True, scratch: bool = False) -> Ledger:
    """Open the ledger at ``url`` and migrate it to the newest schema revision.

    ``create=False`` refuses a SQLite file that does not exist yet (for commands that only read).
    ``scratch=True``: the SQLite file is a working copy that nobody else reads and that is dropped
    whole if the process fails before its owner renames it into place
    (:func:`reporting.stages.plan.stage_ledger`, a preview's ledger): its transactions are not
    synced to disk one by one (``synchronous=OFF``, the rollback journal in memory), the owner
    syncs the file once before the rename; a transaction still rolls back as before.
    Use it as a context manager, or call :meth:`Ledger.close`.
    """
    u = make_url(url)
    backend = u.get_backend_name()
    # every engine is made with hide_parameters: a failed statement's error names the statement,
    # never the values bound to it (record contents, TINs, names)
    if backend == "sqlite":
        engine = _sqlite_engine(u, create=create, scratch=scratch)
    elif backend == "postgresql":
        engine = sa.create_engine(
            u, pool_pre_ping=True, hide_parameters=True, execution_options={"compiled_cache": COMPILED}
        )
    else:
        raise LedgerError(f"the ledger runs on SQLite or PostgreSQL; {backend} is not supported")
    # and PostgreSQL's own lines that quote them (DETAIL: Key (...)=(...), Failing row contains ...)
    sa.event.listen(engine, "handle_error", hide_database_values)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return Ledger(engine)


class SharedCompiledCache(MutableMapping[Any, Any]):
    """SQLAlchemy's compiled statements, shared by every ledger engine of a process whose dialect is
    configured the same (the engines' ``compiled_cache``).

    SQLAlchemy keys a compiled statement by the dialect object that compiled it, and every engine
    has a dialect object of its own: a run opens a ledger per authority (27 in a preview, in the
    render, the validation and the publish), and each compiled every statement again, about 10 ms
    of each ledger's work. Here the key's dialect is replaced by the first dialect seen of the
    same class, DB-API module and settings (:func:`_dialect_settings`: the server version, the
    parameter style, every plain value the dialect holds), so such engines share one statement
    compiled once; a dialect configured in any way differently keeps statements of its own.
    The statements are what that dialect would compile: the same SQL, the same parameters.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self._cache: MutableMapping[Any, Any] = sa.util.LRUCache(capacity)
        self._same: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._first: dict[Any, Any] = {}
        self._mutex = threading.Lock()

    def _key(self, key: Any) -> Any:
        if not isinstance(key, tuple) or not key or not isinstance(key[0], sa.engine.Dialect):
            return key
        dialect = key[0]
        if getattr(dialect, "server_version_info", None) is None:  # not connected yet: its own
            return key
        same = self._same.get(dialect)
        if same is None:
            with self._mutex:
                same = self._first.setdefault(_dialect_settings(dialect), dialect)
                self._same[dialect] = same
        return key if same is dialect else (same, *key[1:])

    def get(self, key: Any, default: Any = None) -> Any:
        return self._cache.get(self._key(key), default)

    def __getitem__(self, key: Any) -> Any:
        return self._cache[self._key(key)]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._cache[self._key(key)] = value

    def __delitem__(self, key: Any) -> None:
        del self._cache[self._key(key)]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._cache))

    def __len__(self) -> int:
        return len(self._cache)


_PLAIN = (str, int, float, bool, type(None))


def _dialect_settings(dialect: sa.engine.Dialect) -> tuple[Any, ...]:
    """What makes two dialect objects compile alike: their class, their DB-API module and every
    plain value they hold (the server version, the parameter style, the flags the first
    connection set), and by identity anything callable they were given (a JSON serializer, be it
    a function, a ``functools.partial`` or an object)."""
    plain = []
    for name, value in sorted(vars(dialect).items()):
        if hasattr(getattr(type(dialect), name, None), "__get__"):
            continue  # a value the class computes on first use and keeps (memoized): no setting
        if isinstance(value, _PLAIN) or (isinstance(value, tuple) and all(isinstance(v, _PLAIN) for v in value)):
            plain.append((name, value))
        elif callable(value):  # a function, a functools.partial, a callable object: by identity
            plain.append((name, id(value)))
    return (type(dialect), id(getattr(dialect, "dbapi", None)), tuple(plain))


#: the compiled statements of every ledger engine of the process (:class:`SharedCompiledCache`)
COMPILED = SharedCompiledCache()


def _sqlite_engine(u: sa.URL, *, create: bool, scratch: bool = False) -> Engine:
    if u.database in (None, "", ":memory:"):
        engine = sa.create_engine(
            u,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
            execution_options={"compiled_cache": COMPILED},
        )
    else:
        path = Path(u.database)
        if not path.exists():
            if not create:
                raise LedgerError(f"there is no ledger at {path}: nothing was recorded there yet (or the URL is wrong)")
            path.parent.mkdir(parents=True, exist_ok=True)
            # The owner only, before SQLite writes a byte: the ledger holds personal data.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        elif path.stat().st_mode & 0o077:
            log.warning("the ledger %s can be read by other users; it holds personal data: chmod 600 it", path)
        engine = sa.create_engine(
            u, connect_args={"timeout": 30}, hide_parameters=True, execution_options={"compiled_cache": COMPILED}
        )

    @sa.event.listens_for(engine, "connect")
    def _foreign_keys(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if scratch:  # a working copy: three synced commits per authority of a render otherwise
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()

    return engine


@functools.cache
def _head_revision() -> str | None:
    """The newest revision of the ledger's migrations (their scripts read once per process)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return ScriptDirectory.from_config(cfg).get_current_head()


def _at_head(conn: Connection) -> bool:
    """Whether the ledger on ``conn`` is at the newest revision already (then nothing is migrated:
    a run opens each authority's ledger several times, and reading every migration script each
    time took about 50 ms)."""
    from alembic.runtime.migration import MigrationContext

    head = _head_revision()
    context = MigrationContext.configure(conn, opts={"version_table": t.VERSION_TABLE})
    return head is not None and context.get_current_heads() == (head,)


def upgrade(engine: Engine) -> None:
    """Apply the ledger's Alembic migrations up to head, in process (no alembic.ini)."""
    from alembic import command
    from alembic.config import Config

    with engine.connect() as conn:
        if _at_head(conn):
            return
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # two runs opening a new ledger at once
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_advisory_key("migrations"))))
        elif conn.dialect.name == "sqlite":
            # the same in SQLite: the database's write lock taken before Alembic reads the
            # revision, so that a second process waits (the busy timeout) and then finds the
            # ledger at head; and every migration in this one transaction (pysqlite runs a
            # CREATE outside any otherwise: two processes creating a new ledger at once failed
            # with "table ledger_messages already exists", and a process that died half-way
            # left the tables without their revision)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _advisory_key(*parts: object) -> int:
    digest = hashlib.sha256(b"dac7-ledger:" + ":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _utc(at: datetime | None = None) -> datetime:
    """Naive UTC, as the ledger stores every timestamp."""
    at = at or datetime.now(UTC)
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


# ------------------------------------------------------------------------------------------ views


@dataclass(frozen=True, slots=True)
class MessageInfo:
    message_ref_id: str
    environment: str
    authority: str
    operator: str
    reporting_year: int
    message_type_indic: str
    file_name: str
    sha256: str
    run_id: str
    transfer_id: str | None
    created: datetime
    published: datetime | None
    status: str
    sellers: int
    records: int
    rejected_records: int
    errors: int
    triggered_by: str | None
    approved_by: str | None
    #: the operator of the group that filed it (``default``: ``[operator]``)
    operator_id: str = DEFAULT_OPERATOR


@dataclass(frozen=True, slots=True)
class RecordInfo:
    kind: str
    seller_key: str | None
    doc_type: str
    doc_type_indic: str
    doc_ref_id: str
    corr_doc_ref_id: str | None
    content_hash: str
    status: str
    superseded_by: str | None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    scope: str  # file | record
    code: str
    details: str | None
    doc_ref_id: str | None
    fields: tuple[str, ...]
    format: str


@dataclass(frozen=True, slots=True)
class LockInfo:
    environment: str
    authority: str
    year: int
    holder: str
    acquired: datetime
    host: str | None
    pid: int | None
    operator_id: str = DEFAULT_OPERATOR

    def describe(self) -> str:
        where = f", pid {self.pid} on {self.host}" if self.pid else ""
        return f"held by {self.holder} since {self.acquired:%Y-%m-%d %H:%M:%S} UTC{where}"


@dataclass(frozen=True, slots=True)
class StatusOutcome:
    """What a status import changed."""

    message_ref_id: str
    format: str
    outcome: str
    message_status: str
    rejected_doc_ref_ids: tuple[str, ...]
    file_errors: int
    record_errors: int
    unmatched_doc_ref_ids: tuple[str, ...] = ()  # named by the authority, not in the message
    notes: tuple[str, ...] = ()
    already_imported: bool = False


# ----------------------------------------------------------------------------------------- ledger


class Ledger:
    """One ledger database. Methods open their own transactions unless they take ``conn``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ lock

    @contextmanager
    def lock(
        self, environment: str, authority: str, year: int, *, holder: str, operator_id: str = DEFAULT_OPERATOR
    ) -> Iterator[LockInfo]:
        """Hold the filing lock of one period and authority: a second run fails fast with
        :class:`LedgerLockedError` instead of filing the same period at the same time.

        PostgreSQL: a session advisory lock (it ends with its session, also when the process
        dies). SQLite: a row in ``ledger_locks``; a run that died leaves it behind. It is taken
        over when its process ran on this machine and has ended; otherwise it is removed with
        :meth:`break_lock` (``dac7 ledger unlock``). A retry of the same run (same ``holder``)
        takes over its own row. Each operator of a group (``operator_id``) has locks of its own:
        two operators file the same period at once.
        """
        _check_environment(environment)
        info = LockInfo(environment, authority, year, holder, _utc(), socket.gethostname(), os.getpid(), operator_id)
        manager = self._advisory_lock if self.dialect == "postgresql" else self._row_lock
        with manager(info):
            yield info

    @contextmanager
    def due_diligence_lock(self, operator_id: str = DEFAULT_OPERATOR, *, holder: str) -> Iterator[LockInfo]:
        """Hold the lock of an operator's due-diligence state (its daily run, the platform's report
        of the actions it sent, an adapter's verifications): the filing lock's mechanism (an
        advisory lock on PostgreSQL, a row of ``ledger_locks`` on SQLite), keyed
        :data:`DUE_DILIGENCE_LOCK`: a second writer fails fast with :class:`LedgerLockedError`."""
        environment, authority, year = DUE_DILIGENCE_LOCK
        info = LockInfo(environment, authority, year, holder, _utc(), socket.gethostname(), os.getpid(), operator_id)
        manager = self._advisory_lock if self.dialect == "postgresql" else self._row_lock
        with manager(info):
            yield info

    def lock_holder(
        self, environment: str, authority: str, year: int, operator_id: str = DEFAULT_OPERATOR
    ) -> LockInfo | None:
        """Who holds (or last held, on PostgreSQL) the filing lock of a period, if anyone."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.locks).where(*_lock_key(environment, authority, year, operator_id))).first()
        return _lock_info(row) if row is not None else None

    def break_lock(
        self, environment: str, authority: str, year: int, operator_id: str = DEFAULT_OPERATOR
    ) -> LockInfo | None:
        """Remove a stale lock (SQLite: the row of a run that died); returns what it was.

        On PostgreSQL the lock is held by a database session and ends with it: a lock held by a
        live session is not broken (:class:`LedgerLockedError`); a leftover holder row is removed.
        """
        held = self.lock_holder(environment, authority, year, operator_id)
        if self.dialect == "postgresql":
            key = _lock_advisory_key(environment, authority, year, operator_id)
            with self.engine.connect() as conn:
                free = conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one()
                if free:
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()
            if not free:
                raise LedgerLockedError(
                    f"{_period(authority, year, environment, operator_id)}: the lock is held by a live PostgreSQL "
                    f"session ({held.describe() if held else 'holder unknown'}); it ends with that session and "
                    "cannot be broken from here"
                )
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.locks).where(*_lock_key(environment, authority, year, operator_id)))
        return held

    @contextmanager
    def _row_lock(self, info: LockInfo) -> Iterator[None]:
        where = _lock_key(info.environment, info.authority, info.year, info.operator_id)
        try:
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(t.locks).where(*where)).first()
                if row is not None:
                    held = _lock_info(row)
                    if row.holder == info.holder:
                        log.warning("taking over the filing lock left by an earlier attempt of %s", info.holder)
                    elif _died_here(held):
                        log.warning(
                            "taking over the filing lock of %s: its process %s on this machine has ended",
                            held.holder,
                            held.pid,
                        )
                    else:
                        raise LedgerLockedError(_locked(info, held, breakable=True))
                    conn.execute(sa.delete(t.locks).where(*where))
                conn.execute(sa.insert(t.locks).values(_lock_row(info)))
        except sa.exc.IntegrityError:  # another process inserted it between our read and write
            raise LedgerLockedError(
                _locked(
                    info,
                    self.lock_holder(info.environment, info.authority, info.year, info.operator_id),
                    breakable=True,
                )
            ) from None
        try:
            yield
        finally:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(t.locks).where(*where, t.locks.c.holder == info.holder))

    @contextmanager
    def _advisory_lock(self, info: LockInfo) -> Iterator[None]:
        key = _lock_advisory_key(info.environment, info.authority, info.year, info.operator_id)
        where = _lock_key(info.environment, info.authority, info.year, info.operator_id)
        conn = self.engine.connect()
        try:
            got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one()
            conn.commit()
            if not got:
                held = self.lock_holder(info.environment, info.authority, info.year, info.operator_id)
                raise LedgerLockedError(_locked(info, held, breakable=False))
            try:
                # Who holds it, for the error of the next run (a dead session's row is replaced).
                conn.execute(sa.delete(t.locks).where(*where))
                conn.execute(sa.insert(t.locks).values(_lock_row(info)))
                conn.commit()
                yield
            finally:
                try:
                    conn.rollback()
                    conn.execute(sa.delete(t.locks).where(*where, t.locks.c.holder == info.holder))
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                    conn.commit()
                except sa.exc.SQLAlchemyError:
                    log.warning("could not release the filing lock cleanly; closing its session releases it")
                    conn.invalidate()
        finally:
            conn.close()

    # ------------------------------------------------------------------------------ live state

    def live_records(
        self, environment: str, authority: str, year: int, *, operator_id: str = DEFAULT_OPERATOR
    ) -> dict[RecordKey, LiveRecord]:
        """The version of each record that counts as filed in a period: from published or accepted
        messages, not superseded or deleted, not a resend or a deletion. A record the authority
        rejected inside an accepted message is live with ``rejected=True``. A period is one
        operator's (``operator_id``): two operators of a group never share a live state."""
        _check_environment(environment)
        m, r = t.messages, t.records
        query = (
            sa.select(
                r.c.kind,
                r.c.seller_key,
                r.c.doc_ref_id,
                r.c.doc_type_indic,
                r.c.content_hash,
                r.c.content,
                r.c.status,
                m.c.message_ref_id,
            )
            .join(m, m.c.id == r.c.message_id)
            .where(
                m.c.environment == environment,
                m.c.authority == authority,
                m.c.reporting_year == year,
                m.c.operator_id == operator_id,
                m.c.status.in_(_LIVE_MESSAGES),
                r.c.doc_type.not_in((RESEND, DELETION)),
                r.c.status.in_(_LIVE_RECORDS),
            )
            .order_by(r.c.id)
        )
        out: dict[RecordKey, LiveRecord] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                # Ordered by id: should two versions qualify, the latest wins.
                out[(row.kind, row.seller_key)] = LiveRecord(
                    kind=row.kind,
                    seller_key=row.seller_key,
                    doc_ref_id=row.doc_ref_id,
                    doc_type_indic=row.doc_type_indic,
                    content_hash=row.content_hash,
                    content=json.loads(row.content),
                    message_ref_id=row.message_ref_id,
                    rejected=row.status == REJECTED,
                )
        return out

    def filed_sellers(self, environment: str, year: int, *, operator_id: str | None = None) -> dict[str, int]:
        """How many sellers count as filed for a year, per authority: the sellers of
        :meth:`live_records`, counted in the database (one query; no record content is read).
        Authorities without a filed seller are left out. ``operator_id``: one operator's of a
        group (None: every operator's, added up per authority)."""
        _check_environment(environment)
        m, r = t.messages, t.records
        query = (
            sa.select(m.c.authority, m.c.operator_id, sa.func.count(sa.distinct(r.c.seller_key)).label("sellers"))
            .join(m, m.c.id == r.c.message_id)
            .where(
                m.c.environment == environment,
                m.c.reporting_year == year,
                m.c.status.in_(_LIVE_MESSAGES),
                r.c.kind == SELLER,
                r.c.doc_type.not_in((RESEND, DELETION)),
                r.c.status.in_(_LIVE_RECORDS),
            )
            .group_by(m.c.authority, m.c.operator_id)
        )
        if operator_id is not None:
            query = query.where(m.c.operator_id == operator_id)
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                if row.sellers:  # a seller of two operators is two sellers filed, one by each
                    out[row.authority] = out.get(row.authority, 0) + int(row.sellers)
        return out

    def known_records(self, doc_ref_ids: Iterable[str]) -> dict[str, KnownRecord]:
        """What the ledger knows of these DocRefIds, in any period and state (resends aside)."""
        with self.engine.connect() as conn:
            return self._known_records(conn, doc_ref_ids)

    def _known_records(self, conn: Connection, doc_ref_ids: Iterable[str]) -> dict[str, KnownRecord]:
        """What the ledger knows of ``doc_ref_ids``, asked for :data:`_BATCH` at a time as they
        come: only the ids it knows are held, never the whole list."""
        m, r = t.messages, t.records
        out: dict[str, KnownRecord] = {}
        given = iter(doc_ref_ids)
        while batch := sorted(set(itertools.islice(given, _BATCH))):
            query = (
                sa.select(
                    r.c.doc_ref_id,
                    r.c.kind,
                    r.c.seller_key,
                    r.c.doc_type,
                    r.c.status,
                    m.c.message_ref_id,
                    m.c.status.label("message_status"),
                    m.c.environment,
                    m.c.authority,
                    m.c.reporting_year,
                )
                .join(m, m.c.id == r.c.message_id)
                .where(r.c.doc_ref_id.in_(batch), r.c.doc_type != RESEND)
            )
            for row in conn.execute(query):
                out[row.doc_ref_id] = KnownRecord(
                    doc_ref_id=row.doc_ref_id,
                    kind=row.kind,
                    seller_key=row.seller_key,
                    doc_type=row.doc_type,
                    status=row.status,
                    message_ref_id=row.message_ref_id,
                    message_status=row.message_status,
                    environment=row.environment,
                    authority=row.authority,
                    year=row.reporting_year,
                )
        return out

    def problems(
        self,
        planned: Sequence[PlannedMessage],
        *,
        environment: str,
        authority: str,
        year: int,
        operator_id: str = DEFAULT_OPERATOR,
    ) -> list[Problem]:
        """:func:`reporting.ledger.ledger_problems` against this ledger's state of the period."""
        live = self.live_records(environment, authority, year, operator_id=operator_id)
        # streamed as the records come (the records may be read back from a file)
        ids = (
            ref
            for msg in planned
            for r in msg.records
            for ref in ((r.doc_ref_id, r.corr_doc_ref_id) if r.corr_doc_ref_id else (r.doc_ref_id,))
        )
        return ledger_problems(planned, live, known=self.known_records(ids))

    # --------------------------------------------------------------------------------- writing

    def record_message(
        self,
        planned: PlannedMessage,
        *,
        message_ref_id: str,
        authority: str,
        operator: str,
        year: int,
        environment: str,
        file_name: str,
        sha256: str,
        run_id: str,
        transfer_id: str | None = None,
        triggered_by: str | None = None,
        params: str | dict[str, Any] | None = None,
        approved_by: str | None = None,
        approved_at: datetime | None = None,
        created: datetime | None = None,
        operator_id: str = DEFAULT_OPERATOR,
        content_texts: Callable[[Iterable[PlannedRecord]], Iterable[str]] | None = None,
    ) -> None:
        """Record a rendered message and its records (status rendered / sent), in one transaction.

        Refused: a MessageRefId or DocRefId already in the ledger (EU rules 50009, 80000), a resend
        of a PlatformOperator never recorded for the period, and a rendered but unpublished message
        of another run for the same period (publish or discard it first). ``operator_id``: the
        operator of the group that files it (``operator`` is its TIN as the message names it);
        the period's state is that operator's own. ``content_texts``: the canonical JSON of each
        record's content, in order, where the records do not carry it
        (:meth:`reporting.ledger.contents.ContentStore.texts`); by default that of their content.
        """
        _check_environment(environment)
        period = _period(authority, year, environment, operator_id)
        if planned.environment != environment or planned.authority not in ("", authority):
            raise LedgerError(
                f"message {message_ref_id}: planned for {planned.authority} {planned.environment}, "
                f"recorded for {authority} {environment}"
            )
        if planned.year not in (None, year):
            raise LedgerError(f"message {message_ref_id}: planned for {planned.year}, recorded for {year}")
        if planned.message_type_indic not in MESSAGE_TYPES or not planned.records:
            raise LedgerError(f"message {message_ref_id}: {planned.message_type_indic} with no records")
        if params is not None and not isinstance(params, str):
            params = json.dumps(params, sort_keys=True, default=str)
        m = t.messages
        resent = [x.doc_ref_id for x in planned.records if x.doc_type == RESEND]
        try:
            with self.engine.begin() as conn:
                if conn.execute(sa.select(m.c.id).where(m.c.message_ref_id == message_ref_id)).first():
                    raise LedgerError(
                        f"MessageRefId {message_ref_id} is already in the ledger (EU rule 50009): "
                        "MessageRefIds are never reused"
                    )
                for other in self._pending(conn, environment, authority, year, operator_id):
                    if other.run_id != run_id:
                        raise LedgerError(
                            f"{period}: message {other.message_ref_id} of run {other.run_id} was rendered but never "
                            f"published; publish or discard it first (dac7 ledger discard {other.message_ref_id})"
                        )
                used = self._known_records(conn, (x.doc_ref_id for x in planned.records if x.doc_type != RESEND))
                if used:
                    raise LedgerError(
                        f"DocRefId(s) {', '.join(sorted(used)[:5])} are already in the ledger (EU rule 80000): "
                        "DocRefIds are never reused"
                    )
                for doc_ref_id in resent:
                    target = self._record_in_period(conn, doc_ref_id, environment, authority, year, operator_id)
                    if target is None or target.kind != PLATFORM_OPERATOR:
                        raise LedgerError(
                            f"message {message_ref_id} resends {doc_ref_id}, which is no PlatformOperator recorded "
                            f"for {period} (EU rule 80013)"
                        )
                now = _utc(created)
                message_id = conn.execute(
                    sa.insert(m)
                    .values(
                        message_ref_id=message_ref_id,
                        environment=environment,
                        authority=authority,
                        operator=operator,
                        operator_id=operator_id,
                        reporting_year=year,
                        message_type_indic=planned.message_type_indic,
                        file_name=file_name,
                        sha256=sha256,
                        run_id=run_id,
                        transfer_id=transfer_id,
                        created=now,
                        status=RENDERED,
                        status_changed=now,
                        triggered_by=triggered_by,
                        params=params,
                        approved_by=approved_by,
                        approved_at=_utc(approved_at) if approved_at else None,
                    )
                    .returning(m.c.id)
                ).scalar_one()
                texts = (
                    content_texts(planned.records)
                    if content_texts is not None
                    else (canonical_json(x.content) for x in planned.records)
                )
                rows = (
                    (
                        message_id,
                        i,
                        x.kind,
                        x.seller_key,
                        x.doc_type,
                        x.doc_type_indic,
                        x.doc_ref_id,
                        x.corr_doc_ref_id,
                        x.content_hash,
                        text,
                        SENT,
                    )
                    for i, (x, text) in enumerate(zip(planned.records, texts, strict=True))
                )
                # in batches, in the one transaction: the rows' JSON texts of a message of a million
                # sellers are never all in memory at once
                while batch := list(itertools.islice(rows, RECORD_BATCH)):
                    insert_records(conn, batch)
        except sa.exc.IntegrityError as exc:
            # The constraints hold even when two writers race past the checks above.
            raise LedgerError(
                f"message {message_ref_id} breaks a ledger constraint (a MessageRefId or DocRefId used twice, "
                f"or a malformed record); nothing was recorded: {_constraint(exc)}"
            ) from None

    def mark_published(
        self, message_ref_id: str, *, conn: Connection | None = None, at: datetime | None = None
    ) -> None:
        """Mark a rendered message published; the records it corrects or deletes become superseded
        or deleted. Pass ``conn`` to do it inside the caller's transaction (see :meth:`publishing`)."""
        if conn is None:
            with self.engine.begin() as own:
                self._mark_published(own, message_ref_id, _utc(at))
        else:
            self._mark_published(conn, message_ref_id, _utc(at))

    @contextmanager
    def publishing(
        self,
        message_ref_id: str,
        *,
        at: datetime | None = None,
        triggered_by: str | None = None,
        approved_by: str | None = None,
    ) -> Iterator[Connection]:
        """A transaction in which the message is marked published: the caller moves its file into
        place inside the ``with`` block. If that raises, the ledger change rolls back.

        The ledger is written first, so that a refusal (wrong order, a message already published)
        stops before the file moves. A failure of the commit itself, after the block, is the one
        case where the file is in place and the ledger is not: the caller may move the file back.
        """
        with self.engine.begin() as conn:
            self._mark_published(conn, message_ref_id, _utc(at), triggered_by=triggered_by, approved_by=approved_by)
            yield conn

    def _mark_published(
        self,
        conn: Connection,
        message_ref_id: str,
        at: datetime,
        *,
        triggered_by: str | None = None,
        approved_by: str | None = None,
    ) -> None:
        msg = self._message_row(conn, message_ref_id, for_update=True)
        if msg.status != RENDERED:
            raise LedgerError(f"message {message_ref_id} is {msg.status}: only a rendered message can be published")
        period = _period(msg.authority, msg.reporting_year, msg.environment, msg.operator_id)
        r = t.records
        for rec in conn.execute(sa.select(r).where(r.c.message_id == msg.id).order_by(r.c.position)).all():
            if rec.doc_type not in (CORRECTION, DELETION, RESEND):
                continue
            target_id = rec.doc_ref_id if rec.doc_type == RESEND else rec.corr_doc_ref_id
            target = self._live_record(conn, target_id, msg)
            if target is None:
                raise LedgerError(
                    f"message {message_ref_id}: record {rec.doc_ref_id} ({rec.doc_type}) names {target_id}, which is "
                    f"not a live record of {period}; publish the messages of a plan in order, and plan again after "
                    "a status import or a discard"
                )
            if rec.doc_type == RESEND:
                continue
            conn.execute(
                sa.update(r)
                .where(r.c.id == target.id)
                .values(
                    status=SUPERSEDED if rec.doc_type == CORRECTION else DELETED,
                    prior_status=target.status,
                    superseded_by=rec.doc_ref_id,
                )
            )
        done: dict[str, Any] = {"status": PUBLISHED, "published": at, "status_changed": at}
        if triggered_by:  # who asked for the run, and who approved the filing (four eyes)
            done["triggered_by"] = triggered_by[:200]
        if approved_by:
            done["approved_by"], done["approved_at"] = approved_by[:200], at
        conn.execute(sa.update(t.messages).where(t.messages.c.id == msg.id).values(**done))

    def record_approval(
        self,
        message_ref_ids: Sequence[str],
        *,
        approved_by: str,
        triggered_by: str | None,
        at: datetime | None = None,
    ) -> None:
        """Record that ``approved_by`` approved these rendered messages (the four-eyes approval of a
        production filing), before they are published: :meth:`check_approved` reads it back at
        publish. The approver must be named and must not be the person who triggered the run."""
        approver = (approved_by or "").strip()[:200]
        if not approver:
            raise LedgerError("an approval names its approver")
        if triggered_by and approver == triggered_by[:200]:
            raise LedgerError(
                f"{approver} triggered the run and cannot approve its filing: four eyes need a second person"
            )
        now = _utc(at)
        with self.engine.begin() as conn:
            for message_ref_id in message_ref_ids:
                msg = self._message_row(conn, message_ref_id, for_update=True)
                if msg.status != RENDERED:
                    raise LedgerError(f"message {message_ref_id} is {msg.status}: only a rendered message is approved")
                values: dict[str, Any] = {"approved_by": approver, "approved_at": now}
                if triggered_by:
                    values["triggered_by"] = triggered_by[:200]
                conn.execute(sa.update(t.messages).where(t.messages.c.id == msg.id).values(**values))

    @staticmethod
    def check_approved(info: MessageInfo) -> MessageInfo:
        """The message, if a second person's approval is recorded for it; else :class:`ApprovalMissingError`."""
        message_ref_id = info.message_ref_id
        if not info.approved_by:
            raise ApprovalMissingError(
                f"message {message_ref_id} of this production filing has no recorded approval: four eyes need a "
                "second person to approve it in the approval step (marking that step done, clearing it or "
                "running publish alone records none); nothing was published"
            )
        if info.triggered_by and info.approved_by == info.triggered_by:
            raise ApprovalMissingError(
                f"message {message_ref_id} was approved by {info.approved_by}, who triggered the run: four eyes "
                "need a second person; nothing was published"
            )
        return info

    def discard(self, message_ref_id: str, *, at: datetime | None = None) -> None:
        """Give up a rendered message that was never published (a run that died between render and
        publish). Its ids stay used: they are never reused."""
        with self.engine.begin() as conn:
            msg = self._message_row(conn, message_ref_id, for_update=True)
            if msg.status != RENDERED:
                raise LedgerError(
                    f"message {message_ref_id} is {msg.status}: only a rendered, unpublished message can be discarded"
                )
            now = _utc(at)
            conn.execute(
                sa.update(t.messages).where(t.messages.c.id == msg.id).values(status=DISCARDED, status_changed=now)
            )

    def forget_rendered(self, message_ref_id: str, *, run_id: str) -> None:
        """Remove a message that this very run rendered and never published, so that a retried
        render of the run writes it again with the same ids (the ids never left this machine).
        Any other message is refused: a published message stays, a message of another run is
        :meth:`discard`-ed."""
        with self.engine.begin() as conn:
            msg = self._message_row(conn, message_ref_id, for_update=True)
            if msg.status != RENDERED or msg.run_id != run_id:
                raise LedgerError(
                    f"message {message_ref_id} is {msg.status} (run {msg.run_id}): only a rendered message of "
                    f"run {run_id} itself can be rendered again"
                )
            conn.execute(sa.delete(t.errors).where(t.errors.c.message_id == msg.id))
            conn.execute(sa.delete(t.records).where(t.records.c.message_id == msg.id))
            conn.execute(sa.delete(t.messages).where(t.messages.c.id == msg.id))

    # --------------------------------------------------------------------------------- reading

    def pending(
        self, environment: str, authority: str, year: int, *, operator_id: str = DEFAULT_OPERATOR
    ) -> list[MessageInfo]:
        """Messages of one operator rendered but never published (a crash between render and publish)."""
        _check_environment(environment)
        with self.engine.connect() as conn:
            return self._pending(conn, environment, authority, year, operator_id)

    def _pending(
        self, conn: Connection, environment: str, authority: str, year: int, operator_id: str
    ) -> list[MessageInfo]:
        return self._messages(
            conn, year=year, authority=authority, environment=environment, status=RENDERED, operator_id=operator_id
        )

    def messages(
        self,
        year: int | None = None,
        authority: str | None = None,
        environment: str | None = None,
        *,
        operator_id: str | None = None,
    ) -> list[MessageInfo]:
        """Every message, oldest first, optionally of one year, authority, environment, and of one
        operator of a group (``operator_id``; None: every operator's)."""
        with self.engine.connect() as conn:
            return self._messages(
                conn, year=year, authority=authority, environment=environment, operator_id=operator_id
            )

    def message(self, message_ref_id: str) -> MessageInfo:
        with self.engine.connect() as conn:
            found = self._messages(conn, message_ref_id=message_ref_id)
        if not found:
            raise UnknownMessageError(f"MessageRefId {message_ref_id} is not in this ledger")
        return found[0]

    def messages_holding(self, doc_ref_ids: Iterable[str]) -> dict[str, tuple[str, frozenset[str]]]:
        """The messages that carry any of these DocRefIds, as a record of their own or as a
        PlatformOperator resent unchanged (OECD0, which keeps an earlier message's DocRefId):
        MessageRefId -> (its status, the DocRefIds of these it carries)."""
        wanted = sorted(set(doc_ref_ids))
        m, r = t.messages, t.records
        held: dict[str, tuple[str, set[str]]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _BATCH):
                rows = conn.execute(
                    sa.select(m.c.message_ref_id, m.c.status, r.c.doc_ref_id)
                    .join(m, m.c.id == r.c.message_id)
                    .where(r.c.doc_ref_id.in_(wanted[start : start + _BATCH]))
                )
                for row in rows:
                    held.setdefault(row.message_ref_id, (row.status, set()))[1].add(row.doc_ref_id)
        return {ref: (status, frozenset(ids)) for ref, (status, ids) in held.items()}

    def records(self, message_ref_id: str) -> list[RecordInfo]:
        """The records of a message in body order (without their content)."""
        m, r = t.messages, t.records
        query = (
            sa.select(r)
            .join(m, m.c.id == r.c.message_id)
            .where(m.c.message_ref_id == message_ref_id)
            .order_by(r.c.position)
        )
        with self.engine.connect() as conn:
            return [
                RecordInfo(
                    kind=row.kind,
                    seller_key=row.seller_key,
                    doc_type=row.doc_type,
                    doc_type_indic=row.doc_type_indic,
                    doc_ref_id=row.doc_ref_id,
                    corr_doc_ref_id=row.corr_doc_ref_id,
                    content_hash=row.content_hash,
                    status=row.status,
                    superseded_by=row.superseded_by,
                )
                for row in conn.execute(query)
            ]

    def errors(self, message_ref_id: str) -> list[ErrorInfo]:
        """The file and record errors the authority reported for a message."""
        m, e, i = t.messages, t.errors, t.status_imports
        query = (
            sa.select(e, i.c.format)
            .join(m, m.c.id == e.c.message_id)
            .join(i, i.c.id == e.c.import_id)
            .where(m.c.message_ref_id == message_ref_id)
            .order_by(e.c.id)
        )
        with self.engine.connect() as conn:
            return [
                ErrorInfo(
                    scope=row.scope,
                    code=row.code,
                    details=row.details,
                    doc_ref_id=row.doc_ref_id,
                    fields=tuple(json.loads(row.fields)) if row.fields else (),
                    format=row.format,
                )
                for row in conn.execute(query)
            ]

    def _messages(
        self,
        conn: Connection,
        *,
        year: int | None = None,
        authority: str | None = None,
        environment: str | None = None,
        status: str | None = None,
        message_ref_id: str | None = None,
        operator_id: str | None = None,
    ) -> list[MessageInfo]:
        m, r, e = t.messages, t.records, t.errors
        counts = (
            sa.select(
                r.c.message_id,
                sa.func.count().label("records"),
                sa.func.sum(sa.case((r.c.kind == SELLER, 1), else_=0)).label("sellers"),
                sa.func.sum(sa.case((r.c.status == REJECTED, 1), else_=0)).label("rejected"),
            )
            .group_by(r.c.message_id)
            .subquery()
        )
        errs = sa.select(e.c.message_id, sa.func.count().label("errors")).group_by(e.c.message_id).subquery()
        query = (
            sa.select(m, counts.c.records, counts.c.sellers, counts.c.rejected, errs.c.errors)
            .outerjoin(counts, counts.c.message_id == m.c.id)
            .outerjoin(errs, errs.c.message_id == m.c.id)
            .order_by(m.c.created, m.c.id)
        )
        query = messages_where(query, year=year, authority=authority, environment=environment, status=status)
        query = messages_where(query, message_ref_id=message_ref_id, operator_id=operator_id)
        return [
            MessageInfo(
                message_ref_id=row.message_ref_id,
                environment=row.environment,
                authority=row.authority,
                operator=row.operator,
                reporting_year=row.reporting_year,
                message_type_indic=row.message_type_indic,
                file_name=row.file_name,
                sha256=row.sha256,
                run_id=row.run_id,
                transfer_id=row.transfer_id,
                created=row.created,
                published=row.published,
                status=row.status,
                sellers=int(row.sellers or 0),
                records=int(row.records or 0),
                rejected_records=int(row.rejected or 0),
                errors=int(row.errors or 0),
                triggered_by=row.triggered_by,
                approved_by=row.approved_by,
                operator_id=row.operator_id,
            )
            for row in conn.execute(query)
        ]

    def _message_row(self, conn: Connection, message_ref_id: str, *, for_update: bool = False) -> Any:
        query = sa.select(t.messages).where(t.messages.c.message_ref_id == message_ref_id)
        if for_update and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise UnknownMessageError(f"MessageRefId {message_ref_id} is not in this ledger")
        return row

    def _record_in_period(
        self, conn: Connection, doc_ref_id: str, environment: str, authority: str, year: int, operator_id: str
    ) -> Any:
        m, r = t.messages, t.records
        return conn.execute(
            sa.select(r)
            .join(m, m.c.id == r.c.message_id)
            .where(
                r.c.doc_ref_id == doc_ref_id,
                r.c.doc_type != RESEND,
                m.c.environment == environment,
                m.c.authority == authority,
                m.c.reporting_year == year,
                m.c.operator_id == operator_id,
            )
        ).first()

    def _live_record(self, conn: Connection, doc_ref_id: str | None, msg: Any) -> Any:
        """The record ``doc_ref_id`` if it is live in the period of ``msg``, else None."""
        if not doc_ref_id:
            return None
        m, r = t.messages, t.records
        return conn.execute(
            sa.select(r)
            .join(m, m.c.id == r.c.message_id)
            .where(
                r.c.doc_ref_id == doc_ref_id,
                r.c.doc_type.not_in((RESEND, DELETION)),
                r.c.status.in_(_LIVE_RECORDS),
                m.c.status.in_(_LIVE_MESSAGES),
                m.c.environment == msg.environment,
                m.c.authority == msg.authority,
                m.c.reporting_year == msg.reporting_year,
                m.c.operator_id == msg.operator_id,
            )
        ).first()

    def rejections(self, *, environment: str | None = None, year: int | None = None) -> list[Rejection]:
        """Every record and message the authorities rejected, and whether a correction was filed
        since (:mod:`reporting.ledger.rejections`); ids, counts and times, no content."""
        return rejections(self.engine, environment=environment, year=year)

    # ------------------------------------------------------------------------ seller statements

    def record_statements(
        self, feed: Path, *, out_dir: Path | None = None, at: datetime | None = None, rows: Path | None = None
    ) -> int:
        """Record every statement of a ``statements.jsonl`` as pending (streamed, one
        transaction); returns how many were new. Idempotent: the same feed again changes nothing;
        a statement_id recorded before with another sha256 is a
        :class:`~reporting.ledger.errors.StatementFeedError` naming it. ``out_dir`` is the output
        directory that holds ``statements/`` (by default the parent of the nearest ``statements``
        folder above the feed), recorded absolute so that the retention finds the pages. ``rows``:
        the feed's rows as the statements' writer made them, read instead of the feed. See
        :mod:`reporting.ledger.statements` (PStTG § 22, § 24)."""
        return record_feed(self.engine, Path(feed), out_dir=out_dir, at=at, rows=rows)

    def statement_sellers(self, doc_ref_ids: Iterable[str]) -> dict[str, str]:
        """DocRefId -> seller_key of the ReportableSeller records among ``doc_ref_ids`` (resends
        aside): whom each statement of a filing is for (see
        :func:`reporting.ledger.statements.statement_sellers`)."""
        return statement_sellers(self.engine, doc_ref_ids)

    def mark_statements(
        self, events: Iterable[DeliveryEvent], *, source: str, at: datetime | None = None
    ) -> DeliveryOutcome:
        """Apply a delivery report's events, all or none (:func:`reporting.ledger.statements.mark_delivery`)."""
        return mark_delivery(self.engine, events, source=source, at=at)

    def statement_counts(self, *, year: int | None = None, environment: str | None = None) -> list[StatementCounts]:
        """Statements per environment, authority, year and operator of a group (``operator_id`` of
        each count: the operator whose message reported the seller): pending, sent, failed,
        superseded."""
        return statement_counts(self.engine, year=year, environment=environment)

    def statements(
        self,
        *,
        year: int | None = None,
        status: str | None = None,
        environment: str | None = None,
        authority: str | None = None,
    ) -> Iterator[StatementInfo]:
        """Statements without their content, streamed in the order they were recorded."""
        return list_statements(self.engine, year=year, status=status, environment=environment, authority=authority)

    def statement(self, statement_id: str) -> StatementInfo | None:
        return get_statement(self.engine, statement_id)

    def statement_history(self, statement_id: str) -> list[StatementEvent]:
        return statement_history(self.engine, statement_id)

    def recorded_statements(self, statement_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """statement_id -> (sha256 of its page, its recorded feed object as canonical JSON, None
        once erased) for those of ``statement_ids`` the ledger holds: one query per call, so that
        a rebuild of the statements checks them in batches (personal data: never log the content)."""
        s = t.statements
        found: dict[str, tuple[str, str | None]] = {}
        ids = list(dict.fromkeys(statement_ids))
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(s.c.statement_id, s.c.sha256, s.c.content).where(
                    s.c.statement_id.in_(ids[start : start + 500])
                )
                for row in conn.execute(query):
                    found[row.statement_id] = (row.sha256, row.content)
        return found

    # ---------------------------------------------------------------------------- transmissions

    def record_transmission(
        self,
        message_ref_id: str,
        *,
        event: str,
        channel: str,
        actor: str,
        ticket: str | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record one event of a message's way to its authority (see
        :mod:`reporting.ledger.transmissions`). ``uploaded`` and ``transmitted`` are refused for a
        message not published, or sent already: a message is never sent twice."""
        with self.engine.begin() as conn:
            msg = self._message_row(conn, message_ref_id, for_update=True)
            if event in ("uploaded", "transmitted", "prepared", "started"):
                check_sendable(msg, transmission_events(conn, message_ref_id=message_ref_id), what=event)
            record_event(
                conn, msg.id, event=event, channel=channel, actor=actor, at=_utc(at), ticket=ticket, detail=detail
            )

    def mark_uploaded(self, message_ref_id: str, *, by: str, at: datetime | None = None) -> FilingState:
        """A person says that they uploaded this published message in the authority's portal (the
        outbox). Refused for a message not published, or sent already; for a production message
        without a second person's approval (four eyes, :meth:`check_approved`); and while a DIP
        transfer of it is open (it may have gone through: ``dac7 transmit`` settles it first).
        Returns its new state."""
        info = self.message(message_ref_id)
        if info.environment == PROD:
            self.check_approved(info)
        still_open = open_transfers(self.transmissions(message_ref_id))
        if still_open:
            raise LedgerError(
                f"message {message_ref_id} has a DIP transfer open ({', '.join(still_open)}): it may have gone "
                "through; settle it first (dac7 transmit aborts it or finds it finished); nothing was recorded"
            )
        self.record_transmission(message_ref_id, event="uploaded", channel="outbox", actor=by, at=at)
        return self.filing_states(message_ref_id=message_ref_id)[0]

    def transmissions(
        self,
        message_ref_id: str | None = None,
        *,
        year: int | None = None,
        authority: str | None = None,
        environment: str | None = None,
        ticket: str | None = None,
    ) -> list[TransmissionEvent]:
        """The transmission events, oldest first, of one message or of a period."""
        with self.engine.connect() as conn:
            return transmission_events(
                conn,
                message_ref_id=message_ref_id,
                year=year,
                authority=authority,
                environment=environment,
                ticket=ticket,
            )

    def filing_states(
        self,
        year: int | None = None,
        authority: str | None = None,
        environment: str | None = None,
        *,
        operator_id: str | None = None,
        message_ref_id: str | None = None,
    ) -> list[FilingState]:
        """Every message's filing state with who acted and when, oldest first (rendered, approved,
        published, uploaded or transmitted, then accepted, partially rejected or rejected)."""
        with self.engine.connect() as conn:
            return filing_states(
                conn,
                year=year,
                authority=authority,
                environment=environment,
                operator_id=operator_id,
                message_ref_id=message_ref_id,
            )

    def filed_times(
        self,
        year: int | None = None,
        authority: str | None = None,
        environment: str | None = None,
        *,
        operator_id: str | None = None,
    ) -> dict[str, datetime]:
        """When each message counts as filed (naive UTC), by MessageRefId: its first transmission
        to the DIP or its upload from the outbox; the publication of one the authority answered
        without either. A message only published is not filed, and not in it
        (:func:`reporting.ledger.transmissions.filed_at`: the rule the rejections, the calendar,
        the deadline warnings and the board share)."""
        with self.engine.connect() as conn:
            return filed_times(conn, year=year, authority=authority, environment=environment, operator_id=operator_id)

    def awaiting_protocol(self, environment: str | None = None) -> list[FilingState]:
        """DIP transfers finished whose protocol has not been applied yet."""
        return [
            s
            for s in self.filing_states(environment=environment)
            if s.channel == "dip" and s.ticket and s.state == "transmitted"
        ]

    # ---------------------------------------------------------------------------------- status

    def record_status(
        self, report: StatusReport, *, file_name: str, sha256: str, at: datetime | None = None
    ) -> StatusOutcome:
        """Apply an authority's status to its message, in one transaction (see
        :func:`reporting.ledger.status.import_status`, which parses the document).

        Accepted: the message and its sent records become accepted. Partially rejected: the same,
        except the records named in record errors, which become rejected (a rejected deletion
        gives its record back its state). Rejected: the message and all its records; what its
        corrections and deletions replaced is live again. The same document twice changes nothing.
        """
        now = _utc(at)
        m, r = t.messages, t.records
        with self.engine.begin() as conn:
            msg = self._status_target(conn, report)
            if conn.execute(sa.select(t.status_imports.c.id).where(t.status_imports.c.sha256 == sha256)).first():
                return StatusOutcome(
                    message_ref_id=msg.message_ref_id,
                    format=report.format,
                    outcome=report.outcome,
                    message_status=msg.status,
                    rejected_doc_ref_ids=(),
                    file_errors=0,
                    record_errors=0,
                    already_imported=True,
                )
            if msg.status in (RENDERED, DISCARDED):
                raise LedgerError(
                    f"message {msg.message_ref_id} is {msg.status}: it was never published, so no status applies to it"
                )
            new_status = REJECTED if report.outcome == "rejected" else ACCEPTED
            if msg.status in (ACCEPTED, REJECTED) and msg.status != new_status:
                raise LedgerError(
                    f"message {msg.message_ref_id} is already {msg.status} by an earlier status document; this one "
                    f"says {report.outcome}: not applied, check with the authority which is right"
                )
            import_id = conn.execute(
                sa.insert(t.status_imports)
                .values(
                    message_id=msg.id,
                    format=report.format,
                    status_message_ref_id=report.status_message_ref_id,
                    outcome=report.outcome,
                    file_name=file_name,
                    sha256=sha256,
                    imported=now,
                )
                .returning(t.status_imports.c.id)
            ).scalar_one()
            rows: list[dict[str, Any]] = [
                {"scope": "file", "code": f.code, "details": f.details, "doc_ref_id": None, "fields": None}
                for f in report.file_errors
            ]
            for e in report.record_errors:
                fields = json.dumps(list(e.fields)) if e.fields else None
                rows += [
                    {"scope": "record", "code": e.code, "details": e.details, "doc_ref_id": d, "fields": fields}
                    for d in (e.doc_ref_ids or (None,))
                ]
            if rows:
                conn.execute(sa.insert(t.errors), [{"message_id": msg.id, "import_id": import_id, **x} for x in rows])
            recs = conn.execute(sa.select(r).where(r.c.message_id == msg.id)).all()
            named = report.rejected_doc_ref_ids if new_status == ACCEPTED else {x.doc_ref_id for x in recs}
            # A partial rejection that names no record: which records stand is not known.
            promote = new_status == ACCEPTED and not (report.outcome == "partially_rejected" and not named)
            rejected: list[str] = []
            for rec in recs:
                if rec.doc_ref_id in named:
                    rejected.append(rec.doc_ref_id)
                    if rec.status != REJECTED:
                        conn.execute(sa.update(r).where(r.c.id == rec.id).values(status=REJECTED))
                    if rec.doc_type == DELETION or (new_status == REJECTED and rec.doc_type == CORRECTION):
                        self._restore(conn, rec)
                elif rec.status == SENT and promote:
                    conn.execute(sa.update(r).where(r.c.id == rec.id).values(status=ACCEPTED))
            conn.execute(sa.update(m).where(m.c.id == msg.id).values(status=new_status, status_changed=now))
            mine = {x.doc_ref_id for x in recs}
            return StatusOutcome(
                message_ref_id=msg.message_ref_id,
                format=report.format,
                outcome=report.outcome,
                message_status=new_status,
                rejected_doc_ref_ids=tuple(rejected),
                file_errors=len(report.file_errors),
                record_errors=len(report.record_errors),
                unmatched_doc_ref_ids=tuple(sorted(report.rejected_doc_ref_ids - mine)),
                notes=report.notes,
            )

    def _status_target(self, conn: Connection, report: StatusReport) -> Any:
        m = t.messages
        if report.message_ref_id:
            row = conn.execute(sa.select(m).where(m.c.message_ref_id == report.message_ref_id)).first()
            if row is not None:
                return row
        if report.transfer_id:
            row = conn.execute(sa.select(m).where(m.c.transfer_id == report.transfer_id)).first()
            if row is not None:
                return row
        names = [f"MessageRefId {report.message_ref_id}"] if report.message_ref_id else []
        names += [f"transfer ticket {report.transfer_id}"] if report.transfer_id else []
        raise UnknownMessageError(
            f"the status document answers {' / '.join(names) or 'no message it names'}, which is not in this "
            "ledger (another ledger, or another environment's?); nothing was imported"
        )

    def _restore(self, conn: Connection, rec: Any) -> None:
        """The record that a rejected correction or deletion replaced is live again."""
        r = t.records
        conn.execute(
            sa.update(r)
            .where(
                r.c.doc_ref_id == rec.corr_doc_ref_id,
                r.c.doc_type != RESEND,
                r.c.superseded_by == rec.doc_ref_id,
            )
            .values(status=sa.func.coalesce(r.c.prior_status, SENT), prior_status=None, superseded_by=None)
        )


#: the columns of a record as :meth:`Ledger.record_message` inserts them, in the order of its rows
RECORD_COLUMNS = (
    "message_id",
    "position",
    "kind",
    "seller_key",
    "doc_type",
    "doc_type_indic",
    "doc_ref_id",
    "corr_doc_ref_id",
    "content_hash",
    "content",
    "status",
)


def insert_records(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert records into ``ledger_records``, each a tuple of :data:`RECORD_COLUMNS`' values, in
    the caller's transaction.

    SQLite: the DB-API cursor's ``executemany`` of the insert SQLAlchemy compiles for those
    columns (:func:`_records_insert`), the tuples as they are: SQLAlchemy's executemany of the same
    insert builds a dict and runs its parameter processing for each row first (about 8 µs a row,
    a fifth of the insert), and none of these columns has a value converted on the way to SQLite
    (:func:`_records_insert` checks it), so the values stored are the same. Another database: the
    Core insert with a dict per row, as always.
    """
    sql = _records_insert(conn.dialect) if conn.dialect.name == "sqlite" else None
    if sql is None:
        conn.execute(sa.insert(t.records), [dict(zip(RECORD_COLUMNS, row, strict=True)) for row in rows])
    else:
        conn.exec_driver_sql(sql, rows)


_RECORDS_INSERTS: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def _records_insert(dialect: sa.engine.Dialect) -> str | None:
    """The positional SQL of the insert of :data:`RECORD_COLUMNS` into ``ledger_records`` as
    ``dialect`` compiles it, once per dialect; None where its parameters are not in that order or
    a column's value would be converted (a bind processor): then only the Core insert will do."""
    try:
        return _RECORDS_INSERTS[dialect]
    except KeyError:
        pass
    compiled = sa.insert(t.records).compile(dialect=dialect, column_keys=list(RECORD_COLUMNS))
    plain = dialect.positional and tuple(compiled.positiontup or ()) == RECORD_COLUMNS
    plain = plain and not any(compiled._bind_processors.get(name) for name in RECORD_COLUMNS)
    sql = compiled.string if plain else None
    _RECORDS_INSERTS[dialect] = sql
    return sql


def _check_environment(environment: str) -> None:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment {environment!r}: expected one of {', '.join(ENVIRONMENTS)}")


def _period(authority: str, year: int, environment: str, operator_id: str) -> str:
    """A period as messages name it, with its operator where a group has several."""
    label = period_label(authority, year, environment)
    return label if operator_id == DEFAULT_OPERATOR else f"{label} of operator {operator_id}"


def _lock_key(environment: str, authority: str, year: int, operator_id: str) -> list[sa.ColumnElement[bool]]:
    c = t.locks.c
    return [
        c.environment == environment,
        c.authority == authority,
        c.reporting_year == year,
        c.operator_id == operator_id,
    ]


def _lock_advisory_key(environment: str, authority: str, year: int, operator_id: str) -> int:
    """The PostgreSQL advisory lock of a period: the default operator's as before groups were."""
    if operator_id == DEFAULT_OPERATOR:
        return _advisory_key(environment, authority, year)
    return _advisory_key(environment, authority, year, operator_id)


def _lock_row(info: LockInfo) -> dict[str, Any]:
    return {
        "environment": info.environment,
        "authority": info.authority,
        "reporting_year": info.year,
        "holder": info.holder,
        "acquired": info.acquired,
        "host": info.host,
        "pid": info.pid,
        "operator_id": info.operator_id,
    }


def _died_here(held: LockInfo) -> bool:
    """Whether the holder of a SQLite lock row ran on this machine and its process has ended (a
    run killed while it held the lock): then the lock is stale and is taken over. A process that
    still runs, or one on another machine, is never presumed dead."""
    if not held.pid or held.host != socket.gethostname():
        return False
    try:
        os.kill(held.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _lock_info(row: Any) -> LockInfo:
    return LockInfo(
        row.environment,
        row.authority,
        row.reporting_year,
        row.holder,
        row.acquired,
        row.host,
        row.pid,
        row.operator_id,
    )


def _locked(info: LockInfo, held: LockInfo | None, *, breakable: bool) -> str:
    if (info.environment, info.authority, info.year) == DUE_DILIGENCE_LOCK:
        operator = f" --operator {info.operator_id}" if info.operator_id != DEFAULT_OPERATOR else ""
        text = (
            f"the due-diligence state of operator {info.operator_id} is being written by another run or report "
            f"({held.describe() if held else 'holder unknown'}): try again when it has finished"
        )
        return text + (f"; if it died, remove its lock with `dac7 due-diligence unlock{operator}`" if breakable else "")
    period = _period(info.authority, info.year, info.environment, info.operator_id)
    text = (
        f"{period} is being filed by another run ({held.describe() if held else 'holder unknown'}); "
        "two runs cannot file the same period and authority at once: wait for it to finish"
    )
    if breakable:
        operator = f" --operator {info.operator_id}" if info.operator_id != DEFAULT_OPERATOR else ""
        text += (
            "; if that run died, remove its lock with "
            f"`dac7 ledger unlock --environment {info.environment} --authority {info.authority} --year {info.year}"
            f"{operator}`"
        )
    return text


def _constraint(exc: sa.exc.IntegrityError) -> str:
    """The driver's one-line reason, without the statement or its parameters (personal data)."""
    return str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()[0]
