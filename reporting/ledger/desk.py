"""The compliance desk's list in the ledger (``ledger_due_diligence_desk``, revision
0009_due_diligence_desk): per operator and seller that needs attention, what the DAC7 view shows.

A desk row is a function of the seller's state row and the settings of the operator's latest daily
run (:func:`desk_values`); it does not depend on the day, so a seller's row is written only when
its state changes (the run's changed sellers, a report of actions, a verification) or when the
run's settings change (then every row of the operator). The next action does not depend on the
day either (the first of a notice, a request, the open cycle's step due or not yet, a release: a
column). What does is read with the day of the latest run (:meth:`DeskRow.due` and its SQL twin in
the ``action`` filter): an enforcement step is due from its first day; a notice, a request and a
release are due while their row says so. This is :func:`reporting.diligence_cycle.due_actions` and
:func:`~reporting.diligence_cycle.next_action`, split at the day.

Ids, item codes and dates only: no value of an item, no name (the state row holds none either).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import reporting.ledger.schema as t
from reporting.diligence_cycle import (
    CycleSettings,
    DueAction,
    SellerCycle,
    due_diligence_deadline,
    next_step,
)
from reporting.ledger.model import DESK_BLOCKED, DESK_OTHER, DESK_REMINDED_TWICE, DESK_REQUESTED
from reporting.vocabulary import (
    DUE_DILIGENCE_ACTIONS,
    DUE_DILIGENCE_CYCLE_COLUMNS,
    DUE_DILIGENCE_ITEMS,
    IN_SCOPE,
    ITEM_INVALID,
    ITEM_MISSING,
    ITEM_UNVERIFIED,
    PRE_REPORT_NOTICE,
    RELEASE,
    REQUEST,
)

#: The columns of a desk row, in the table's order.
DESK_COLUMNS: tuple[str, ...] = tuple(c.name for c in t.due_diligence_desk.c)
#: The columns of the request cycle a desk row repeats from the state row (and the CSV shows).
DESK_CYCLE_COLUMNS = tuple(c for c in DUE_DILIGENCE_CYCLE_COLUMNS if c in DESK_COLUMNS)
#: The date columns of a desk row, and those of a state row that a desk row is computed from.
_DATES = frozenset(c.name for c in t.due_diligence_desk.c if isinstance(c.type, sa.Date))
_STATE_DATES = (
    "registered_at",
    "notice_due",
    "notice_on",
    "request_due",
    "requested_on",
    "reminder_1_on",
    "reminder_2_on",
    "measure_on",
    "release_due",
)
#: The ``action`` filter that keeps the sellers with no next action (an item lacking out of scope,
#: a request cycle waiting for the platform's report of a step).
NO_NEXT_ACTION = "none"
#: Seller ids per statement when rows are refreshed by id (SQLite takes 32,766 parameters).
_IDS_PER_STATEMENT = 5_000


def _day(value: Any) -> date | None:
    """A date as a row holds it: a date, the text SQLite keeps (``YYYY-MM-DD``), '' or None."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _items(text: Any) -> tuple[str, ...]:
    found = {i for i in str(text or "").split(",") if i}
    return tuple(i for i in DUE_DILIGENCE_ITEMS if i in found)


def _join(items: Iterable[str]) -> str:
    found = set(items)
    return ",".join(i for i in DUE_DILIGENCE_ITEMS if i in found)


def desk_values(row: Mapping[Any, Any], settings: CycleSettings) -> dict[str, Any] | None:
    """The desk row of a state row (a mapping of ``ledger_due_diligence``'s columns; dates as dates
    or as ISO text), computed with the settings of the operator's latest run; None when the seller
    needs no attention (nothing lacking, no cycle open, no release due, the notice sent or not due:
    ``reporting.ledger.due_diligence.needs_attention``'s rule)."""
    states = {i: row[f"{i}_state"] for i in DUE_DILIGENCE_ITEMS}
    missing = tuple(i for i, s in states.items() if s == ITEM_MISSING)
    invalid = tuple(i for i, s in states.items() if s == ITEM_INVALID)
    needs = tuple(i for i, s in states.items() if s in (ITEM_MISSING, ITEM_INVALID))
    day = {c: _day(row[c]) for c in _STATE_DATES}
    in_scope = row["scope"] == IN_SCOPE
    if not (
        str(row.get("needs") or "")
        or day["requested_on"]
        or day["release_due"]
        or (in_scope and day["notice_on"] is None)
    ):
        return None
    c = SellerCycle(
        seller_id=row["seller_id"],
        in_scope=in_scope,
        needs=needs,
        invalid=invalid,
        registered_at=day["registered_at"],
        notice_due=day["notice_due"],
        notice_on=day["notice_on"],
        request_due=day["request_due"],
        requested_on=day["requested_on"],
        requested_items=_items(row["requested_items"]),
        reminder_1_on=day["reminder_1_on"],
        reminder_2_on=day["reminder_2_on"],
        measure=row["measure"] or None,
        measure_on=day["measure_on"],
        release_due=day["release_due"],
    )
    if c.measure_on is not None:
        stage = DESK_BLOCKED
    elif c.requested_on is not None:
        stage = DESK_REMINDED_TWICE if c.reminder_2_on is not None else DESK_REQUESTED
    else:
        stage = DESK_OTHER
    step = next_step(c, settings) if c.requested_on is not None and c.outstanding else None
    request = c.requested_on is None and c.request_due is not None
    notice_from = c.notice_due if in_scope and c.notice_on is None else None
    release_from = c.release_due if c.requested_on is not None and not c.outstanding and c.measure_on else None
    # the next action does not depend on the day: the first of the notice, the request, the open
    # cycle's step (due or not yet) and the release (a step and a release never go together)
    nxt: tuple[str, date | None] | None = None
    if notice_from is not None:
        nxt = (PRE_REPORT_NOTICE, notice_from)
    elif request:
        nxt = (REQUEST, c.request_due)
    elif step:
        nxt = (step[0], step[1])
    elif release_from is not None:
        nxt = (RELEASE, release_from)
    return {
        "operator_id": row["operator_id"],
        "seller_id": row["seller_id"],
        "period": int(row["period"]),
        "country": row["country"] or None,
        "seller_type": row["seller_type"] or None,
        "scope": row["scope"],
        "stage": stage,
        "items_missing": _join(missing),
        "items_invalid": _join(invalid),
        "items_unverified": _join(i for i, s in states.items() if s == ITEM_UNVERIFIED),
        "notice_on": c.notice_on,
        "requested_on": c.requested_on,
        "requested_items": _join(c.requested_items) or None,
        "reminder_1_on": c.reminder_1_on,
        "reminder_2_on": c.reminder_2_on,
        "measure": c.measure,
        "measure_on": c.measure_on,
        "release_due": c.release_due,
        "notice_from": notice_from,
        "request_from": c.request_due if request else None,
        "request_latest": (
            due_diligence_deadline(c.request_due.year, c.registered_at, settings.reporting_since)
            if request and c.request_due is not None
            else None
        ),
        "step": step[0] if step else None,
        "step_from": step[1] if step else None,
        "step_latest": step[2] if step else None,
        "release_from": release_from,
        "next_action": nxt[0] if nxt else None,
        "next_on": nxt[1] if nxt else None,
    }


@dataclass(frozen=True, slots=True)
class DeskRow:
    """A seller of the desk's list as the ledger holds it; :meth:`due` and :meth:`next` give the
    actions due and the next action on a day (the operator's latest run's)."""

    operator_id: str
    seller_id: str
    period: int
    country: str | None
    seller_type: str | None
    scope: str
    stage: str
    items_missing: tuple[str, ...]
    items_invalid: tuple[str, ...]
    items_unverified: tuple[str, ...]
    notice_on: date | None
    requested_on: date | None
    requested_items: tuple[str, ...]
    reminder_1_on: date | None
    reminder_2_on: date | None
    measure: str | None
    measure_on: date | None
    release_due: date | None
    notice_from: date | None
    request_from: date | None
    request_latest: date | None
    step: str | None
    step_from: date | None
    step_latest: date | None
    release_from: date | None
    next_action: str | None
    next_on: date | None

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> DeskRow:
        """A row of ``ledger_due_diligence_desk`` (or :func:`desk_values`)."""
        return cls(
            operator_id=row["operator_id"],
            seller_id=row["seller_id"],
            period=int(row["period"]),
            country=row["country"],
            seller_type=row["seller_type"],
            scope=row["scope"],
            stage=row["stage"],
            items_missing=_items(row["items_missing"]),
            items_invalid=_items(row["items_invalid"]),
            items_unverified=_items(row["items_unverified"]),
            requested_items=_items(row["requested_items"]),
            measure=row["measure"],
            step=row["step"],
            next_action=row["next_action"],
            **{c: _day(row[c]) for c in DESK_COLUMNS if c in _DATES},
        )

    @property
    def needs(self) -> tuple[str, ...]:
        """The items missing or invalid, in item order."""
        lacking = {*self.items_missing, *self.items_invalid}
        return tuple(i for i in DUE_DILIGENCE_ITEMS if i in lacking)

    def due(self, today: date) -> tuple[DueAction, ...]:
        """The actions due on ``today`` (the day of the state: the latest run's), in cycle order:
        what that run's feed lists for the seller."""
        out: list[DueAction] = []
        if self.notice_from is not None:
            latest = date(self.notice_from.year, 12, 31)
            out.append(DueAction(self.seller_id, PRE_REPORT_NOTICE, self.notice_from, latest, today))
        if self.request_from is not None and self.request_latest is not None:
            out.append(
                DueAction(
                    self.seller_id,
                    REQUEST,
                    self.request_from,
                    self.request_latest,
                    today,
                    self.needs,
                    self.items_invalid,
                )
            )
        if self.step and self.step_from is not None and self.step_latest is not None and self.step_from <= today:
            outstanding = tuple(i for i in self.requested_items if i in self.needs)
            invalid = tuple(i for i in outstanding if i in self.items_invalid)
            out.append(
                DueAction(
                    self.seller_id,
                    self.step,
                    self.step_from,
                    self.step_latest,
                    today,
                    outstanding,
                    invalid,
                    self.requested_on,
                )
            )
        if self.release_from is not None:
            out.append(
                DueAction(
                    self.seller_id,
                    RELEASE,
                    self.release_from,
                    self.release_from,
                    today,
                    (),
                    (),
                    self.requested_on,
                    self.measure,
                )
            )
        return tuple(out)

    def next(self) -> tuple[str, date] | None:
        """The next action and the day it is (or was first) due, as the row holds them: the first
        due, else the open cycle's next step (due or not yet); None when nothing is open. It does
        not depend on the day (:func:`desk_values`)."""
        if self.next_action is None or self.next_on is None:
            return None
        return self.next_action, self.next_on


# ------------------------------------------------------------------------------------ writing


def desk_batch(rows: Iterable[Mapping[Any, Any]], settings: CycleSettings) -> list[dict[str, Any]]:
    """The desk rows of state rows (those that need attention)."""
    return [v for v in (desk_values(r, settings) for r in rows) if v is not None]


def refresh_desk(conn: Connection, operator_id: str, seller_ids: Iterable[str] | None, settings: CycleSettings) -> int:
    """Write the desk rows of the operator's ``seller_ids`` (None: all its sellers) from their
    state rows as they stand in ``conn``'s transaction: rows replaced, a seller that needs no
    attention any more (or has no state) taken off. Returns the desk rows written."""
    d, k = t.due_diligence, t.due_diligence_desk
    written = 0
    if seller_ids is None:
        conn.execute(sa.delete(k).where(k.c.operator_id == operator_id))
        result = conn.execute(
            sa.select(d).where(d.c.operator_id == operator_id), execution_options={"yield_per": 2_000}
        )
        found = [desk_batch(part, settings) for part in result.mappings().partitions(2_000)]
        for values in found:  # written once read (a server-side cursor takes no other statement)
            if values:
                conn.execute(sa.insert(k), values)
                written += len(values)
        return written
    ids = sorted(set(seller_ids))
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = ids[start : start + _IDS_PER_STATEMENT]
        conn.execute(sa.delete(k).where(k.c.operator_id == operator_id, k.c.seller_id.in_(chunk)))
        rows = conn.execute(sa.select(d).where(d.c.operator_id == operator_id, d.c.seller_id.in_(chunk))).mappings()
        values = desk_batch(rows, settings)
        if values:
            conn.execute(sa.insert(k), values)
            written += len(values)
    return written


# ------------------------------------------------------------------------------------ reading


@dataclass(frozen=True, slots=True)
class DeskFilter:
    """The list's filters: the day of each operator's latest run (the operators listed), and an
    operator, a country, an action (:data:`NO_NEXT_ACTION`: none)."""

    as_of: Mapping[str, date]
    operator_id: str | None = None
    country: str | None = None
    action: str | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        k = t.due_diligence_desk
        operators = [op for op in self.as_of if self.operator_id in (None, op)]
        if not operators:  # an operator without a run: no row (and no day for an action's filter)
            return [sa.false()]
        out: list[sa.ColumnElement[bool]] = [k.c.operator_id.in_(operators)]
        if self.country is not None:
            out.append(k.c.country == self.country)
        if self.action is not None:
            out.append(_action_filter(self.action, self._day(operators)))
        return out

    def _day(self, operators: list[str]) -> sa.ColumnElement[Any]:
        """The day of the state of the row's operator, as SQL."""
        k = t.due_diligence_desk
        if len(operators) == 1:
            return sa.literal(self.as_of[operators[0]], sa.Date)
        return sa.case(
            *((k.c.operator_id == op, sa.literal(self.as_of[op], sa.Date)) for op in operators),
            else_=sa.null(),
        )


def _action_filter(action: str, today: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """The rows for which ``action`` is due on ``today`` or is the next action (:meth:`DeskRow.due`,
    :meth:`DeskRow.next`, as SQL); :data:`NO_NEXT_ACTION`: those with none."""
    k = t.due_diligence_desk
    if action == NO_NEXT_ACTION:
        return k.c.next_action.is_(None)
    if action == PRE_REPORT_NOTICE:
        return k.c.notice_from.is_not(None)
    if action == REQUEST:
        return k.c.request_from.is_not(None)
    if action == RELEASE:
        return k.c.release_from.is_not(None)
    if action not in DUE_DILIGENCE_ACTIONS:
        raise ValueError(f"not an action of the feed: {action!r}")
    # the next action, or a step due from its first day (beside a notice due, which comes first)
    return sa.or_(k.c.next_action == action, sa.and_(k.c.step == action, k.c.step_from <= today))


def desk_count(engine: Engine, f: DeskFilter) -> int:
    """How many sellers pass the filters."""
    k = t.due_diligence_desk
    if not f.as_of:
        return 0
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(k).where(*f.where())).scalar_one())


def desk_page(engine: Engine, f: DeskFilter, *, offset: int, limit: int) -> list[DeskRow]:
    """A page of the list, in the order of operator and seller id."""
    k = t.due_diligence_desk
    if not f.as_of:
        return []
    query = sa.select(k).where(*f.where()).order_by(k.c.operator_id, k.c.seller_id).offset(offset).limit(limit)
    with engine.connect() as conn:
        return [DeskRow.of(r) for r in conn.execute(query).mappings()]


def desk_stream(engine: Engine, f: DeskFilter, *, batch: int = 2_000) -> Iterator[DeskRow]:
    """The whole list, in the order of operator and seller id, read through a server-side cursor
    in batches (the connection open while it is read)."""
    k = t.due_diligence_desk
    if not f.as_of:
        return
    query = sa.select(k).where(*f.where()).order_by(k.c.operator_id, k.c.seller_id)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
        for part in result.mappings().partitions(batch):
            for r in part:
                yield DeskRow.of(r)


def desk_countries(engine: Engine, *, operator_ids: Iterable[str]) -> list[str]:
    """The countries of the desk's sellers, sorted (a seller without one is not among them)."""
    k = t.due_diligence_desk
    query = sa.select(k.c.country).distinct().where(k.c.operator_id.in_(list(operator_ids)), k.c.country.is_not(None))
    with engine.connect() as conn:
        return sorted(str(c) for c in conn.execute(query).scalars())
