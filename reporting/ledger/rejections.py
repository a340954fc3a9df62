"""What the authorities rejected, and whether a correction was filed since: read from the ledger.

Two kinds of rejection:

* **a record** the authority rejected inside a message it accepted (a partial rejection: the
  record is named by a record error of a status document). It is corrected once a correction or
  deletion of it is filed: the record is superseded or deleted by a record of a sent (published
  and transmitted or uploaded) or accepted message (a correction the authority rejects as a
  whole gives the record back, and it is open again).
* **a message** rejected as a whole. It is corrected once every record it carried (resends
  aside) is filed again: a record of the same kind and seller in a sent or accepted message of
  the same period (environment, authority, year, operator), sent after it.

When: the rejection is dated by the import of the status document that said so (the ledger does
not know when the authority wrote it); the correction by the sending of the message that carries
it: transmitted to the DIP or marked uploaded from the outbox
(:func:`reporting.ledger.transmissions.filed_at`, the one rule of "filed"). A correction published
and not sent (or whose DIP transfer was aborted) leaves the rejection open.

No record content is read: ids, counts and times only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

import reporting.ledger.schema as t
from reporting.ledger.model import (
    ACCEPTED,
    CORRECTION,
    DELETED,
    DELETION,
    PUBLISHED,
    REJECTED,
    RESEND,
    SUPERSEDED,
)
from reporting.ledger.transmissions import filed_at
from reporting.vocabulary import DEFAULT_OPERATOR


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected record (``doc_ref_id``) or one message rejected as a whole (``doc_ref_id``
    None), with how many of its records are still to be filed again."""

    environment: str
    authority: str
    year: int
    message_ref_id: str
    doc_ref_id: str | None
    records: int  # 1 for a record; the records a rejected message carried (resends aside)
    open_records: int  # of those, not corrected or filed again yet
    rejected_at: datetime | None  # the import of the status document that rejected it (UTC)
    corrected_at: datetime | None  # when the (last) correction was filed; None while open
    operator_id: str = DEFAULT_OPERATOR

    @property
    def corrected(self) -> bool:
        return self.open_records == 0

    @property
    def whole_message(self) -> bool:
        return self.doc_ref_id is None


def rejections(engine: Engine, *, environment: str | None = None, year: int | None = None) -> list[Rejection]:
    """Every rejection of the ledger (of one environment and year), oldest message first."""
    with engine.connect() as conn:
        rows = [*_record_rejections(conn, environment, year), *_message_rejections(conn, environment, year)]
    return sorted(rows, key=lambda x: (x.rejected_at or datetime.min, x.message_ref_id, x.doc_ref_id or ""))


def _where(m: sa.Table, environment: str | None, year: int | None) -> list[sa.ColumnElement[bool]]:
    out = []
    if environment is not None:
        out.append(m.c.environment == environment)
    if year is not None:
        out.append(m.c.reporting_year == year)
    return out


def _record_rejections(conn: sa.Connection, environment: str | None, year: int | None) -> list[Rejection]:
    m, r, e, i = t.messages, t.records, t.errors, t.status_imports
    fixer = r.alias("fixer")
    fixer_msg = m.alias("fixer_msg")
    # when the status document that named the record was imported
    named_at = (
        sa.select(sa.func.min(i.c.imported))
        .select_from(e.join(i, i.c.id == e.c.import_id))
        .where(e.c.message_id == m.c.id, e.c.scope == "record", e.c.doc_ref_id == r.c.doc_ref_id)
        .scalar_subquery()
    )
    named = sa.exists().where(e.c.message_id == m.c.id, e.c.scope == "record", e.c.doc_ref_id == r.c.doc_ref_id)
    query = (
        sa.select(
            m.c.environment,
            m.c.authority,
            m.c.reporting_year,
            m.c.operator_id,
            m.c.message_ref_id,
            r.c.doc_ref_id,
            r.c.status,
            named_at.label("rejected_at"),
            filed_at(fixer_msg).label("corrected_at"),
        )
        .select_from(
            r.join(m, m.c.id == r.c.message_id)
            .outerjoin(
                fixer,
                sa.and_(
                    fixer.c.doc_ref_id == r.c.superseded_by,
                    fixer.c.corr_doc_ref_id == r.c.doc_ref_id,
                    fixer.c.doc_type.in_((CORRECTION, DELETION)),
                ),
            )
            .outerjoin(fixer_msg, fixer_msg.c.id == fixer.c.message_id)
        )
        .where(m.c.status == ACCEPTED, r.c.doc_type != RESEND, sa.or_(r.c.status == REJECTED, named))
        .where(*_where(m, environment, year))
        .order_by(m.c.id, r.c.position)
    )
    out = []
    for row in conn.execute(query):
        fixed = (
            row.status in (SUPERSEDED, DELETED)
            and row.corrected_at is not None  # the correction's message is published or accepted
        )
        out.append(
            Rejection(
                environment=row.environment,
                authority=row.authority,
                year=row.reporting_year,
                message_ref_id=row.message_ref_id,
                doc_ref_id=row.doc_ref_id,
                records=1,
                open_records=0 if fixed else 1,
                rejected_at=row.rejected_at,
                corrected_at=row.corrected_at if fixed else None,
                operator_id=row.operator_id,
            )
        )
    return out


def _message_rejections(conn: sa.Connection, environment: str | None, year: int | None) -> list[Rejection]:
    m, r, i = t.messages, t.records, t.status_imports
    later_r, later_m = r.alias("later_r"), m.alias("later_m")
    # the first filing, after the rejected message, of the same record (kind and seller) in its period
    refiled = (
        sa.select(sa.func.min(filed_at(later_m)))
        .select_from(later_r.join(later_m, later_m.c.id == later_r.c.message_id))
        .where(
            later_m.c.environment == m.c.environment,
            later_m.c.authority == m.c.authority,
            later_m.c.reporting_year == m.c.reporting_year,
            later_m.c.operator_id == m.c.operator_id,
            later_m.c.status.in_((PUBLISHED, ACCEPTED)),
            filed_at(later_m) > filed_at(m),
            later_r.c.kind == r.c.kind,
            later_r.c.seller_key.is_not_distinct_from(r.c.seller_key),
            later_r.c.doc_type != RESEND,
        )
        .scalar_subquery()
    )
    per_record = (
        sa.select(m.c.id.label("message_id"), refiled.label("refiled"))
        .select_from(r.join(m, m.c.id == r.c.message_id))
        .where(m.c.status == REJECTED, r.c.doc_type != RESEND, *_where(m, environment, year))
        .subquery()
    )
    counts = (
        sa.select(
            per_record.c.message_id,
            sa.func.count().label("records"),
            sa.func.count(per_record.c.refiled).label("refiled"),
            sa.func.max(per_record.c.refiled).label("last"),
        )
        .group_by(per_record.c.message_id)
        .subquery()
    )
    rejected_at = (
        sa.select(sa.func.min(i.c.imported))
        .where(i.c.message_id == m.c.id, i.c.outcome == "rejected")
        .scalar_subquery()
    )
    query = (
        sa.select(
            m.c.environment,
            m.c.authority,
            m.c.reporting_year,
            m.c.operator_id,
            m.c.message_ref_id,
            rejected_at.label("rejected_at"),
            counts.c.records,
            counts.c.refiled,
            counts.c.last,
        )
        .select_from(m.join(counts, counts.c.message_id == m.c.id))
        .order_by(m.c.id)
    )
    out = []
    for row in conn.execute(query):
        open_records = int(row.records) - int(row.refiled)
        out.append(
            Rejection(
                environment=row.environment,
                authority=row.authority,
                year=row.reporting_year,
                message_ref_id=row.message_ref_id,
                doc_ref_id=None,
                records=int(row.records),
                open_records=open_records,
                rejected_at=row.rejected_at,
                corrected_at=row.last if open_records == 0 else None,
                operator_id=row.operator_id,
            )
        )
    return out
