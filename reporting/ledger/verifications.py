"""The record of verifications in the ledger database: every call of a verification adapter, each
adapter's cache of conclusive answers, and their deletion when the retention ends.

The law behind it:

- the operator checks the TIN and the VAT number a seller gives through an electronic interface
  that a member state or the EU offers free of charge, where one exists (PStTG § 18(1) sentence 2);
- it may rely on due diligence done for earlier periods when the information was collected and
  checked "vor nicht mehr als 36 Monaten" (not more than 36 months ago) and it has no reason to
  doubt it (§ 20(2)): the cache, whose age :mod:`reporting.verification` limits accordingly;
- it records, for each seller, the information processed for due diligence, the time and the
  outcome of the processing (§ 24(1) Nr. 2), at the time of the processing (§ 24(2) Nr. 2);
- those records are kept ten years from the end of the calendar year in which they were made, and
  then deleted (§ 24(3) sentences 1 to 3).

Source of these readings: the PStTG as published on gesetze-im-internet.de (consolidated text, last
amended by Art. 5 G v. 22.12.2025; source DE-PStTG of the project's legal notes).

Neither table holds an identifier: a keyed hash (HMAC-SHA256, :func:`reporting.verification.model.
identifier_hash`) finds an identifier's rows again, and the last three characters let a person
recognise it. ``seller_id`` is the platform's id of the seller. Rows are deleted whole when their
retention ends (:func:`delete_expired`); nothing of them stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import reporting.ledger.schema as t
from reporting.ledger.model import INVALID

#: ten years from the end of the calendar year of the record (PStTG § 24(3) sentences 1 and 3)
RETENTION_YEARS = 10
_BATCH = 500  # hashes per IN (...) list: well under SQLite's parameter limit
#: the text columns cut to their length before they are written: PostgreSQL refuses a longer text
#: (SQLite keeps it), and a refused row would lose the record of a call already made
_CUT = ("identifier_masked", "seller_id", "country", "detail", "evidence", "source")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call of a verification adapter, as ``ledger_verification_calls`` keeps it."""

    at: datetime  # naive UTC
    adapter: str
    kind: str
    country: str
    identifier_hash: str
    identifier_masked: str
    seller_id: str | None
    attempt: int
    outcome: str
    detail: str | None
    evidence: str | None
    request_date: date | None
    source: str
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A conclusive answer (verified or invalid) of an adapter about one identifier.
    ``identifier_hash`` is the cache key (:func:`reporting.verification.model.cache_key`): the
    identifier's keyed hash for a VAT number; for a TIN, the keyed hash of the identifier and the
    seller type, whose answers differ."""

    adapter: str
    identifier_hash: str
    kind: str
    country: str
    state: str
    detail: str | None
    evidence: str | None
    request_date: date | None
    source: str
    checked_at: datetime  # naive UTC


@dataclass(frozen=True, slots=True)
class ExpiredVerifications:
    """What :func:`delete_expired` deleted (or, in a dry run, would delete)."""

    calls: int
    cached: int
    before: datetime  # records made before this instant (UTC) are due
    dry_run: bool


def utc_naive(at: datetime) -> datetime:
    """Naive UTC, as the ledger stores every timestamp (a naive value is taken as UTC)."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def record(engine: Engine, calls: Sequence[CallRecord], answers: Sequence[CachedAnswer] = ()) -> None:
    """Record ``calls`` and put ``answers`` into the cache (replacing an adapter's earlier answer
    about the same identifier), in one transaction."""
    if not calls and not answers:
        return
    with engine.begin() as conn:
        if calls:
            conn.execute(sa.insert(t.verification_calls), [_call_row(c) for c in calls])
        if answers:
            _upsert(conn, [_answer_row(a) for a in answers])


def cached_answers(
    engine: Engine,
    adapter: str,
    hashes: Iterable[str],
    *,
    checked_since: datetime,
    invalid_since: datetime | None = None,
) -> dict[str, CachedAnswer]:
    """The cached answers of ``adapter`` about ``hashes`` (cache keys) given at or after
    ``checked_since``, and an invalid one only at or after ``invalid_since`` too, by key."""
    c = t.verification_cache
    since = utc_naive(checked_since)
    wanted = sorted(set(hashes))
    found: dict[str, CachedAnswer] = {}
    fresh_enough = c.c.checked_at >= since
    if invalid_since is not None:
        fresh_enough = sa.and_(fresh_enough, sa.or_(c.c.state != INVALID, c.c.checked_at >= utc_naive(invalid_since)))
    with engine.connect() as conn:
        for i in range(0, len(wanted), _BATCH):
            query = sa.select(c).where(
                c.c.adapter == adapter,
                c.c.identifier_hash.in_(wanted[i : i + _BATCH]),
                fresh_enough,
            )
            for r in conn.execute(query):
                found[r.identifier_hash] = CachedAnswer(
                    r.adapter,
                    r.identifier_hash,
                    r.kind,
                    r.country,
                    r.state,
                    r.detail,
                    r.evidence,
                    r.request_date,
                    r.source,
                    r.checked_at,
                )
    return found


def calls(
    engine: Engine,
    *,
    seller_id: str | None = None,
    identifier_hash: str | None = None,
    adapter: str | None = None,
    limit: int | None = None,
) -> list[CallRecord]:
    """The recorded calls, oldest first, of a seller, an identifier or an adapter."""
    v = t.verification_calls
    query = sa.select(v).order_by(v.c.at, v.c.id)
    if seller_id is not None:
        query = query.where(v.c.seller_id == seller_id)
    if identifier_hash is not None:
        query = query.where(v.c.identifier_hash == identifier_hash)
    if adapter is not None:
        query = query.where(v.c.adapter == adapter)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [
            CallRecord(
                r.at,
                r.adapter,
                r.kind,
                r.country,
                r.identifier_hash,
                r.identifier_masked,
                r.seller_id,
                r.attempt,
                r.outcome,
                r.detail,
                r.evidence,
                r.request_date,
                r.source,
                r.duration_ms,
            )
            for r in conn.execute(query)
        ]


def retention_cutoff(before: datetime, zone: ZoneInfo) -> datetime:
    """The instant (naive UTC) before which a record made is due for deletion at ``before``.

    A record made in the local year Y is kept until the end of Y + 10 (§ 24(3): ten years, counted
    from the end of the calendar year in which it was made) and is due from 1 January Y + 11,
    00:00 in ``zone``, the operator's ``[reporting] timezone`` (``config.reporting.tz``): it
    decides in which year a record made around midnight on 31 December was made, so it has no
    default. At ``before`` (local year N) the records of the local years up to N - 11 are due:
    those made before 1 January N - 10, 00:00 local."""
    if not isinstance(zone, ZoneInfo):
        raise TypeError(
            "the retention of the verification record needs the operator's time zone (config.reporting.tz, "
            "[reporting] timezone): it decides in which year a record was made"
        )
    tz = zone
    aware = before if before.tzinfo else before.replace(tzinfo=UTC)
    local_year = aware.astimezone(tz).year
    return utc_naive(datetime(local_year - RETENTION_YEARS, 1, 1, tzinfo=tz))


def delete_expired(engine: Engine, *, before: datetime, zone: ZoneInfo, dry_run: bool = False) -> ExpiredVerifications:
    """Delete the calls and the cached answers whose retention has ended at ``before`` (PStTG
    § 24(3) sentence 2: the deletion is mandatory): every row made before :func:`retention_cutoff`
    (``zone``: the operator's ``[reporting] timezone``, required). A cached answer is as old as the
    call that gave it. ``dry_run`` counts and deletes nothing."""
    cutoff = retention_cutoff(before, zone)
    v, c = t.verification_calls, t.verification_cache
    with engine.begin() as conn:
        old_calls = _count(conn, v, v.c.at < cutoff)
        old_cached = _count(conn, c, c.c.checked_at < cutoff)
        if not dry_run:
            conn.execute(sa.delete(v).where(v.c.at < cutoff))
            conn.execute(sa.delete(c).where(c.c.checked_at < cutoff))
    return ExpiredVerifications(old_calls, old_cached, cutoff, dry_run)


def _count(conn: Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one())


def _cut(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with each text of :data:`_CUT` cut to its column's length in ``table``."""
    for name in _CUT:
        value = row.get(name)
        length = getattr(table.c[name].type, "length", None) if name in table.c else None
        if isinstance(value, str) and length is not None and len(value) > length:
            row[name] = value[:length]
    return row


def _call_row(c: CallRecord) -> dict[str, Any]:
    row = {
        "at": utc_naive(c.at),
        "adapter": c.adapter,
        "kind": c.kind,
        "country": c.country,
        "identifier_hash": c.identifier_hash,
        "identifier_masked": c.identifier_masked,
        "seller_id": c.seller_id,
        "attempt": c.attempt,
        "outcome": c.outcome,
        "detail": c.detail,
        "evidence": c.evidence,
        "request_date": c.request_date,
        "source": c.source,
        "duration_ms": c.duration_ms,
    }
    return _cut(t.verification_calls, row)


def _answer_row(a: CachedAnswer) -> dict[str, Any]:
    row = {
        "adapter": a.adapter,
        "identifier_hash": a.identifier_hash,
        "kind": a.kind,
        "country": a.country,
        "state": a.state,
        "detail": a.detail,
        "evidence": a.evidence,
        "request_date": a.request_date,
        "source": a.source,
        "checked_at": utc_naive(a.checked_at),
    }
    return _cut(t.verification_cache, row)


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert the cache rows, replacing an adapter's row for the same identifier (SQLite and
    PostgreSQL: ``INSERT ... ON CONFLICT (adapter, identifier_hash) DO UPDATE``)."""
    c = t.verification_cache
    updated = [k for k in rows[0] if k not in ("adapter", "identifier_hash")]
    stmt: sa.Executable
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(c)
        stmt = pg.on_conflict_do_update(
            index_elements=[c.c.adapter, c.c.identifier_hash], set_={k: pg.excluded[k] for k in updated}
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(c)
        stmt = lite.on_conflict_do_update(
            index_elements=[c.c.adapter, c.c.identifier_hash], set_={k: lite.excluded[k] for k in updated}
        )
    # the last answer about an identifier wins when a batch holds two
    latest = {(r["adapter"], r["identifier_hash"]): r for r in rows}
    conn.execute(stmt, list(latest.values()))
