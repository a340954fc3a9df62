"""How each published message reached its authority, and each filing's state with who and when.

The events (``ledger_transmissions``, revision 0007_transmissions):

* an outbox package for a portal upload is ``prepared``; a person says it was ``uploaded``
  (``dac7 ledger mark-uploaded``, or the DAC7 view);
* a DIP transfer to the BZSt is ``started`` (a ticket), then ``transmitted`` when finished, or
  ``aborted`` (its ticket is never used again: the next try starts a new transfer); its
  protocol, once fetched and applied (:mod:`reporting.ledger.status`), is ``confirmed``.

A filing's state is read from the message, these events and the status imports
(:func:`filing_states`): ``rendered`` -> ``approved`` (production) -> ``published`` ->
``uploaded`` | ``transmitted`` -> ``accepted`` | ``partially_rejected`` | ``rejected``; each step
with who acted and when. This is the query API for other parts of the project (the deadline
checks, the DAC7 view): ``Ledger.filing_states(...)`` and ``Ledger.transmissions(...)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

import reporting.ledger.schema as t
from reporting.ledger.errors import LedgerError
from reporting.ledger.model import (
    ABORTED,
    ACCEPTED,
    CONFIRMED,
    DIP,
    OUTBOX,
    PREPARED,
    PUBLISHED,
    REJECTED,
    RENDERED,
    STARTED,
    TRANSMISSION_CHANNELS,
    TRANSMISSION_EVENTS,
    TRANSMITTED,
    UPLOADED,
)

#: A filing's states, in the order a filing goes through them.
APPROVED = "approved"
PARTIALLY_REJECTED = "partially_rejected"
FILING_STATES = (RENDERED, APPROVED, PUBLISHED, UPLOADED, TRANSMITTED, ACCEPTED, PARTIALLY_REJECTED, REJECTED)
#: The states after which a filing waits for the authority's answer.
SENT_STATES = (UPLOADED, TRANSMITTED)
_DETAIL_MAX = 500
_Query = TypeVar("_Query", bound="sa.Select[Any]")


#: The optional filters of the ledger's readers on the messages table: keyword -> column.
_MESSAGE_FILTERS = {
    "year": "reporting_year",
    "authority": "authority",
    "environment": "environment",
    "operator_id": "operator_id",
    "message_ref_id": "message_ref_id",
    "status": "status",
}


def where_given(query: _Query, *filters: tuple[sa.ColumnElement[Any], object]) -> _Query:
    """``query`` narrowed to each (column, value) of ``filters`` whose value is given (None
    leaves its column free)."""
    for column, value in filters:
        if value is not None:
            query = query.where(column == value)
    return query


def messages_where(query: _Query, **given: object) -> _Query:
    """``query`` narrowed to the messages of the given ``year``, ``authority``, ``environment``,
    ``operator_id``, ``message_ref_id`` and ``status`` (each None: any); the readers' one filter."""
    m = t.messages
    return where_given(query, *((m.c[_MESSAGE_FILTERS[name]], value) for name, value in given.items()))


@dataclass(frozen=True, slots=True)
class TransmissionEvent:
    message_ref_id: str
    event: str  # one of TRANSMISSION_EVENTS
    channel: str  # dip | outbox
    ticket: str | None  # the DIP data transfer number
    actor: str
    at: datetime  # naive UTC
    detail: str | None


@dataclass(frozen=True, slots=True)
class FilingStep:
    state: str  # one of FILING_STATES
    by: str | None  # who acted: a person, the run, the authority
    at: datetime | None  # naive UTC


@dataclass(frozen=True, slots=True)
class FilingState:
    """One message's way to its authority: its current ``state`` and every step with who and when."""

    message_ref_id: str
    environment: str
    authority: str
    reporting_year: int
    operator_id: str
    file_name: str
    message_status: str  # the ledger's message status (rendered, published, accepted ...)
    state: str  # the last step's state (or "discarded")
    steps: tuple[FilingStep, ...]
    channel: str | None  # dip | outbox, once prepared or transmitted
    ticket: str | None  # the DIP ticket of the finished transfer
    rejected_records: int

    @property
    def waiting_for_answer(self) -> bool:
        """Sent (uploaded or transmitted) and no status document applied yet."""
        return self.state in SENT_STATES

    def step(self, state: str) -> FilingStep | None:
        return next((s for s in self.steps if s.state == state), None)


def record_event(
    conn: Connection,
    message_id: int,
    *,
    event: str,
    channel: str,
    actor: str,
    at: datetime,
    ticket: str | None = None,
    detail: str | None = None,
) -> None:
    if event not in TRANSMISSION_EVENTS or channel not in TRANSMISSION_CHANNELS:
        raise LedgerError(f"unknown transmission event {event!r} on channel {channel!r}")
    who = (actor or "").strip()[:200]
    if not who:
        raise LedgerError(f"a {event} event names who acted")
    conn.execute(
        sa.insert(t.transmissions).values(
            message_id=message_id,
            event=event,
            channel=channel,
            ticket=ticket,
            actor=who,
            at=at,
            detail=(detail or None) and detail[:_DETAIL_MAX],
        )
    )


def events(
    conn: Connection,
    *,
    message_ref_id: str | None = None,
    year: int | None = None,
    authority: str | None = None,
    environment: str | None = None,
    ticket: str | None = None,
) -> list[TransmissionEvent]:
    m, x = t.messages, t.transmissions
    query = sa.select(x, m.c.message_ref_id).join(m, m.c.id == x.c.message_id).order_by(x.c.at, x.c.id)
    query = messages_where(
        query, message_ref_id=message_ref_id, year=year, authority=authority, environment=environment
    )
    query = where_given(query, (x.c.ticket, ticket))
    return [
        TransmissionEvent(
            message_ref_id=row.message_ref_id,
            event=row.event,
            channel=row.channel,
            ticket=row.ticket,
            actor=row.actor,
            at=row.at,
            detail=row.detail,
        )
        for row in conn.execute(query)
    ]


def filing_states(
    conn: Connection,
    *,
    year: int | None = None,
    authority: str | None = None,
    environment: str | None = None,
    operator_id: str | None = None,
    message_ref_id: str | None = None,
) -> list[FilingState]:
    m, r, i = t.messages, t.records, t.status_imports
    query = sa.select(m).order_by(m.c.created, m.c.id)
    query = messages_where(query, year=year, authority=authority, environment=environment, operator_id=operator_id)
    query = messages_where(query, message_ref_id=message_ref_id)
    messages = conn.execute(query).all()
    if not messages:
        return []
    ids = [row.id for row in messages]
    by_message: dict[int, list[Any]] = defaultdict(list)
    imports: dict[int, list[Any]] = defaultdict(list)
    rejected: dict[int, int] = defaultdict(int)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in conn.execute(
            sa.select(t.transmissions).where(t.transmissions.c.message_id.in_(chunk)).order_by(t.transmissions.c.id)
        ):
            by_message[row.message_id].append(row)
        for row in conn.execute(sa.select(i).where(i.c.message_id.in_(chunk)).order_by(i.c.id)):
            imports[row.message_id].append(row)
        for row in conn.execute(
            sa.select(r.c.message_id, sa.func.count())
            .where(r.c.message_id.in_(chunk), r.c.status == REJECTED)
            .group_by(r.c.message_id)
        ):
            rejected[row[0]] = int(row[1])
    return [_state(row, by_message[row.id], imports[row.id], rejected[row.id]) for row in messages]


def _state(msg: Any, evs: Sequence[Any], imports: Sequence[Any], rejected: int) -> FilingState:
    steps = [FilingStep(RENDERED, msg.triggered_by or f"run {msg.run_id}", msg.created)]
    if msg.approved_by:
        steps.append(FilingStep(APPROVED, msg.approved_by, msg.approved_at))
    if msg.published:
        steps.append(FilingStep(PUBLISHED, msg.triggered_by or f"run {msg.run_id}", msg.published))
    channel = ticket = None
    for ev in evs:
        if ev.event in (PREPARED, STARTED, TRANSMITTED, UPLOADED):
            channel = ev.channel
        if ev.event == UPLOADED:
            steps.append(FilingStep(UPLOADED, ev.actor, ev.at))
        elif ev.event == TRANSMITTED:
            ticket = ev.ticket
            steps.append(FilingStep(TRANSMITTED, ev.actor, ev.at))
    for imp in imports:
        steps.append(FilingStep(imp.outcome, f"{msg.authority} ({imp.format})", imp.imported))
    state = "discarded" if msg.status == "discarded" else steps[-1].state
    return FilingState(
        message_ref_id=msg.message_ref_id,
        environment=msg.environment,
        authority=msg.authority,
        reporting_year=msg.reporting_year,
        operator_id=msg.operator_id,
        file_name=msg.file_name,
        message_status=msg.status,
        state=state,
        steps=tuple(steps),
        channel=channel,
        ticket=ticket,
        rejected_records=rejected,
    )


def open_transfers(evs: Sequence[Any]) -> list[str]:
    """The DIP tickets ``started`` and neither ``aborted`` nor ``transmitted`` since, oldest first:
    transfers whose end the ledger does not know (the process stopped, or the ledger write after
    the finish failed). Such a transfer may have gone through; it is settled before a new one."""
    ended = {e.ticket for e in evs if e.event in (ABORTED, TRANSMITTED)}
    tickets: list[str] = []
    for e in evs:
        if e.event == STARTED and e.ticket and e.ticket not in ended and e.ticket not in tickets:
            tickets.append(e.ticket)
    return tickets


def filed_at(messages: sa.FromClause) -> sa.ColumnElement[datetime]:
    """When a message of ``messages`` (the messages table, or an alias of it) counts as filed: when
    it was sent, i.e. its first ``transmitted`` (DIP) or ``uploaded`` (outbox) event. Every
    authority takes one of those two channels, so a message published and never sent is not filed
    (nor is one whose DIP transfer was aborted). A message the authority answered (accepted or
    rejected) without any such event was sent by hand before the ledger recorded transmissions:
    its publication stands for its filing. NULL: not filed.

    The one rule of "filed" for every reader of the ledger: the rejections and their corrections
    (:mod:`reporting.ledger.rejections`), the filing calendar and the deadline warnings
    (``reporting.open_items``), and the DAC7 view's board (:func:`filed_times`)."""
    tx = t.transmissions
    sent = (
        sa.select(sa.func.min(tx.c.at))
        .where(tx.c.message_id == messages.c.id, tx.c.event.in_(SENT_STATES))
        .correlate_except(tx)  # the message may be two levels up (a rejected message's refiling)
        .scalar_subquery()
    )
    answered = sa.case((messages.c.status.in_((ACCEPTED, REJECTED)), messages.c.published), else_=None)
    column: sa.ColumnElement[datetime] = sa.func.coalesce(sent, answered)
    return column


def filed_times(conn: Connection, **period: str | int | None) -> dict[str, datetime]:
    """When each filed message was filed (:func:`filed_at`, naive UTC), by MessageRefId; a message
    not filed (rendered, discarded, or published and not sent) is not in it. ``period``: the
    messages' ``year``, ``authority``, ``environment`` and ``operator_id`` (each None: any)."""
    m = t.messages
    query = messages_where(sa.select(m.c.message_ref_id, filed_at(m).label("filed_at")), **period)
    return {row.message_ref_id: row.filed_at for row in conn.execute(query) if row.filed_at is not None}


def check_sendable(msg: Any, evs: Sequence[Any], *, what: str) -> None:
    """A message may be sent once: published (or answered already: never), not sent before."""
    if msg.status != PUBLISHED:
        if msg.status == RENDERED:
            reason = "it was never published (publish it first; a production filing needs its approval)"
        else:
            reason = f"it is {msg.status}"
        raise LedgerError(f"message {msg.message_ref_id} cannot be {what}: {reason}")
    done = [e for e in evs if e.event in (UPLOADED, TRANSMITTED)]
    if done:
        first = done[0]
        how = "uploaded" if first.event == UPLOADED else f"transmitted (DIP ticket {first.ticket})"
        raise LedgerError(
            f"message {msg.message_ref_id} was {how} by {first.actor} on {first.at:%Y-%m-%d %H:%M} UTC already: "
            "it is never sent twice; its answer comes with dac7 status-import (or dac7 protocol-fetch)"
        )


__all__ = [
    "ABORTED",
    "APPROVED",
    "CONFIRMED",
    "DIP",
    "FILING_STATES",
    "OUTBOX",
    "PARTIALLY_REJECTED",
    "SENT_STATES",
    "FilingState",
    "FilingStep",
    "TransmissionEvent",
    "filed_at",
    "filed_times",
    "open_transfers",
]
