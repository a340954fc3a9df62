"""The rules of the due-diligence cycle: from the first request to the measure and its release,
for one seller, as pure functions of dates (the readable reference of the daily run's set-based
SQL, which a property test holds to it: :mod:`reporting.due_diligence`).

The law (PStTG, the German transposition of Directive 2011/16/EU, Annex V; the readings, their
sources and what is unsure are in ``docs/guide/due-diligence.md``):

- § 17: the operator collects the seller's data (:data:`reporting.vocabulary.DUE_DILIGENCE_ITEMS`);
  § 20(1): by 31 December of the reporting period, for a seller registered when the operator
  became a reporting operator (§ 4(3), 1 January 2023 at the earliest) by 31 December of the
  second period (:func:`due_diligence_deadline`); § 20(2): data collected and verified less than
  36 months ago may be relied on (:data:`RELY_MONTHS`);
- § 22(1): before the first report the seller is told that its data will be reported;
- § 23: a seller that does not answer the request is reminded twice; without the data after the
  second reminder, a measure (the account closed and re-registration prevented, or the payment of
  the consideration withheld) is taken no earlier than 60 and no later than 180 days after the
  original request, and lifted as soon as the data arrives.

Days are counted as the law counts a period that starts with an event: the request's day is day
0, the next day day 1 (§ 187(1) BGB, through § 108(1) AO). The measure's window is day
:data:`FIRST_MEASURE_DAY` to day :data:`LAST_MEASURE_DAY`; the cycle proposes it from
``measure_day`` (default 61: the 60 days have run at the end of day 60, see the guide).

A cycle is one request and what follows it: its items are those the request asked for; it
closes when none of them is missing or invalid any more (after the release, where a measure was
taken). Items found missing or invalid later are asked for by a new request.

A leaf: the standard library and :mod:`reporting.vocabulary` only (the ledger, the run, the CLI,
the DAGs and the Airflow plugin read it).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from reporting.vocabulary import (
    CLOSE_ACCOUNT,
    DUE_DILIGENCE_ACTIONS,
    DUE_DILIGENCE_ITEMS,
    MEASURES,
    PRE_REPORT_NOTICE,
    RELEASE,
    REMINDER_1,
    REMINDER_2,
    REQUEST,
    WITHHOLD_PAYOUTS,
)

#: § 23 sentence 2: the measure is taken "nicht aber vor Ablauf von 60 Tagen" and "spätestens
#: nach 180 Tagen" since the original request: day 60 to day 180 (the request's day is day 0).
FIRST_MEASURE_DAY = 60
LAST_MEASURE_DAY = 180
#: The last days of the two reminders: each must come before the next step, and the measure
#: after the second reminder by day 180.
REMINDER_1_LATEST_DAY = LAST_MEASURE_DAY - 2
REMINDER_2_LATEST_DAY = LAST_MEASURE_DAY - 1
#: § 20(2) Nr. 1: data "vor nicht mehr als 36 Monaten erhoben und überprüft" may be relied on.
RELY_MONTHS = 36
#: § 4(3), § 29: the rules apply from the reporting period 2023; a seller registered on
#: 1 January 2023 (or on the day a later operator became a reporting operator) is pre-existing.
RULES_BEGAN = date(2023, 1, 1)

#: Defaults of ``[due_diligence]`` (the law says "two reminders" and no dates for them).
DEFAULT_REMINDER_1_DAYS = 14
DEFAULT_REMINDER_2_DAYS = 14
DEFAULT_MEASURE_DAY = 61

#: The legal basis each action of the feed names (PStTG; the guide gives the Directive's place).
LEGAL_BASIS: dict[str, str] = {
    PRE_REPORT_NOTICE: "PStTG § 22(1)",
    REQUEST: "PStTG §§ 17, 18(1), 20(1)",
    REMINDER_1: "PStTG § 23 sentence 1",
    REMINDER_2: "PStTG § 23 sentence 1",
    CLOSE_ACCOUNT: "PStTG § 23 sentence 2 no. 1",
    WITHHOLD_PAYOUTS: "PStTG § 23 sentence 2 no. 2",
    RELEASE: "PStTG § 23 sentence 3",
}

#: The keys of one object of ``due_diligence/actions.jsonl``, in the order each line has them (a
#: public contract: keys are added, never renamed).
FEED_KEYS = (
    "seller_id",
    "operator_id",
    "action",
    "items_missing",
    "items_invalid",
    "due_date",
    "latest_date",
    "legal_basis",
    "date",
    "request_date",
    "day",
    "overdue",
    "reaches_day_180",
    "measure",
)


@dataclass(frozen=True, slots=True)
class CycleSettings:
    """``[due_diligence]``: the operator's choices within the law. ``measure``: which measure of
    § 23 sentence 2 it takes; ``reminder_1_days``: days from the request (as sent) to the first
    reminder; ``reminder_2_days``: from the first reminder (as sent) to the second, but by day
    :data:`REMINDER_2_LATEST_DAY` (a late first reminder leaves less time);
    ``measure_day``: the day after the request from which the measure is due (60 to 180);
    ``reporting_since``: the day the operator became a reporting operator (§ 4(3))."""

    measure: str = WITHHOLD_PAYOUTS
    reminder_1_days: int = DEFAULT_REMINDER_1_DAYS
    reminder_2_days: int = DEFAULT_REMINDER_2_DAYS
    measure_day: int = DEFAULT_MEASURE_DAY
    reporting_since: date = RULES_BEGAN

    def problems(self) -> list[str]:
        """What is wrong with these settings, each naming its key (empty: none)."""
        out = []
        if self.measure not in MEASURES:
            out.append(f"measure = {self.measure!r}; expected one of {', '.join(MEASURES)}")
        for key in ("reminder_1_days", "reminder_2_days"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                out.append(f"{key} must be a whole number of days >= 1")
        if not out and self.reminder_1_days + self.reminder_2_days > REMINDER_2_LATEST_DAY:
            out.append(
                f"reminder_1_days + reminder_2_days must be at most {REMINDER_2_LATEST_DAY}: both reminders come "
                f"before the measure, which is due by day {LAST_MEASURE_DAY} after the request (PStTG § 23)"
            )
        m = self.measure_day
        if not isinstance(m, int) or isinstance(m, bool) or not FIRST_MEASURE_DAY <= m <= LAST_MEASURE_DAY:
            out.append(
                f"measure_day must be a day from {FIRST_MEASURE_DAY} to {LAST_MEASURE_DAY} after the original request "
                "(PStTG § 23 sentence 2)"
            )
        if self.reporting_since < RULES_BEGAN:
            out.append(f"reporting_since must be {RULES_BEGAN} or later: the rules apply from the period 2023")
        return out


@dataclass(frozen=True, slots=True)
class SellerCycle:
    """What the cycle knows of one seller: whether it is in scope today, the items it must still
    supply (``needs``: missing or invalid, in item order; ``invalid`` among them), the dates of
    what the platform reported sent, and the due dates the runs fixed (the first day each action
    was due: they stay put while the action waits, so the feed of every day says the same)."""

    seller_id: str
    in_scope: bool
    needs: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()
    registered_at: date | None = None
    notice_due: date | None = None
    notice_on: date | None = None
    request_due: date | None = None
    requested_on: date | None = None
    requested_items: tuple[str, ...] = ()
    reminder_1_on: date | None = None
    reminder_2_on: date | None = None
    measure: str | None = None
    measure_on: date | None = None
    release_due: date | None = None
    cycles: int = 0

    @property
    def outstanding(self) -> tuple[str, ...]:
        """The items of the open cycle's request still missing or invalid."""
        return tuple(i for i in self.requested_items if i in self.needs)


@dataclass(frozen=True, slots=True)
class DueAction:
    """One action due: an object of the feed (:meth:`feed_object`)."""

    seller_id: str
    action: str
    due_date: date
    latest_date: date
    today: date
    items_missing: tuple[str, ...] = ()
    items_invalid: tuple[str, ...] = ()
    request_date: date | None = None
    measure: str | None = None  # the measure a release lifts

    @property
    def day(self) -> int | None:
        """Days since the original request (its day is day 0), where there is one."""
        return (self.today - self.request_date).days if self.request_date else None

    @property
    def overdue(self) -> bool:
        return self.today > self.latest_date

    @property
    def reaches_day_180(self) -> bool:
        """A measure on or after its last day (day 180 after the original request)."""
        return (
            self.action in MEASURES
            and self.request_date is not None
            and self.day is not None
            and (self.day >= LAST_MEASURE_DAY)
        )

    def feed_object(self, operator_id: str) -> dict[str, Any]:
        """The line of ``actions.jsonl``, keys in :data:`FEED_KEYS` order, dates as ISO text."""
        return {
            "seller_id": self.seller_id,
            "operator_id": operator_id,
            "action": self.action,
            "items_missing": list(self.items_missing),
            "items_invalid": list(self.items_invalid),
            "due_date": self.due_date.isoformat(),
            "latest_date": self.latest_date.isoformat(),
            "legal_basis": LEGAL_BASIS[self.action],
            "date": self.today.isoformat(),
            "request_date": self.request_date.isoformat() if self.request_date else None,
            "day": self.day,
            "overdue": self.overdue,
            "reaches_day_180": self.reaches_day_180,
            "measure": self.measure,
        }


# ------------------------------------------------------------------------------------- dates


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months, the day of month kept or, where the month is shorter, its last
    day (2023-03-31 + 11 months = 2024-02-29), as DuckDB adds an interval of months."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def relied_until(checked: date) -> date:
    """The last day a verification of ``checked`` may be relied on (§ 20(2) Nr. 1: not more than
    36 months ago): 36 months later; the next day it is due again."""
    return add_months(checked, RELY_MONTHS)


def is_pre_existing(registered_at: date | None, reporting_since: date = RULES_BEGAN) -> bool:
    """§ 4(3): registered on the platform on the day the operator became a reporting operator
    (1 January 2023, or later for a later operator) or before. Unknown: not pre-existing."""
    return registered_at is not None and registered_at <= reporting_since


def due_diligence_deadline(period: int, registered_at: date | None, reporting_since: date = RULES_BEGAN) -> date:
    """§ 20(1): 31 December of the reporting period ``period``; for a pre-existing seller, 31
    December of the second reporting period (the year after the operator's first) if later."""
    year = period
    if is_pre_existing(registered_at, reporting_since):
        year = max(period, reporting_since.year + 1)
    return date(year, 12, 31)


def measure_due(requested_on: date, reminder_2_on: date, settings: CycleSettings) -> date:
    """The first day the measure is due: ``measure_day`` after the request, and after the second
    reminder."""
    return max(requested_on + timedelta(days=settings.measure_day), reminder_2_on + timedelta(days=1))


# ------------------------------------------------------------------------------------- cycle


def advance(c: SellerCycle, today: date) -> SellerCycle:
    """The cycle as a run on ``today`` leaves it: an open cycle whose requested items all came in
    closes (unless a measure waits for its release, which is then due from today); the
    notice and a request are due from the first day they are (and stay so), and not while the
    seller is out of scope. What the platform sent is never changed here (:func:`mark`)."""
    if c.requested_on is not None and not c.outstanding and c.measure_on is None:
        c = replace(
            c,
            request_due=None,
            requested_on=None,
            requested_items=(),
            reminder_1_on=None,
            reminder_2_on=None,
            cycles=c.cycles + 1,
        )
    if c.requested_on is None:
        c = replace(c, request_due=(c.request_due or today) if c.needs and c.in_scope else None, release_due=None)
    else:
        waiting = c.measure_on is not None and not c.outstanding
        c = replace(c, release_due=(c.release_due or today) if waiting else None)
    if c.notice_on is None:
        c = replace(c, notice_due=(c.notice_due or today) if c.in_scope else None)
    return c


def due_actions(c: SellerCycle, settings: CycleSettings, today: date) -> list[DueAction]:
    """The actions due on ``today`` for a cycle as :func:`advance` left it, in cycle order."""
    out: list[DueAction] = []
    if c.in_scope and c.notice_on is None and c.notice_due is not None:
        out.append(DueAction(c.seller_id, PRE_REPORT_NOTICE, c.notice_due, date(c.notice_due.year, 12, 31), today))
    if c.requested_on is None:
        if c.request_due is not None:
            latest = due_diligence_deadline(c.request_due.year, c.registered_at, settings.reporting_since)
            out.append(DueAction(c.seller_id, REQUEST, c.request_due, latest, today, c.needs, c.invalid))
        return out
    req = c.requested_on
    missing = c.outstanding
    invalid = tuple(i for i in missing if i in c.invalid)
    if missing:
        step = _next_step(c, settings)
        if step is not None and step[1] <= today:
            action, due, latest = step
            out.append(DueAction(c.seller_id, action, due, latest, today, missing, invalid, req))
    elif c.measure_on is not None and c.release_due is not None:
        out.append(DueAction(c.seller_id, RELEASE, c.release_due, c.release_due, today, (), (), req, c.measure))
    return out


def _next_step(c: SellerCycle, settings: CycleSettings) -> tuple[str, date, date] | None:
    """The next enforcement step of an open cycle with items outstanding, with its first and last
    day, whether or not it is due yet; None after the measure."""
    req = c.requested_on
    assert req is not None
    if c.reminder_1_on is None:
        return REMINDER_1, req + timedelta(days=settings.reminder_1_days), req + timedelta(days=REMINDER_1_LATEST_DAY)
    if c.reminder_2_on is None:
        latest = req + timedelta(days=REMINDER_2_LATEST_DAY)
        # the spacing, but by its last day (a late first reminder leaves less time), and after the first
        due = max(
            min(c.reminder_1_on + timedelta(days=settings.reminder_2_days), latest), c.reminder_1_on + timedelta(1)
        )
        return REMINDER_2, due, latest
    if c.measure_on is None:
        return settings.measure, measure_due(req, c.reminder_2_on, settings), req + timedelta(days=LAST_MEASURE_DAY)
    return None


def next_step(c: SellerCycle, settings: CycleSettings) -> tuple[str, date, date] | None:
    """The next enforcement step of an open cycle with items outstanding (action, first day, last
    day), due or not yet; None after the measure (the compliance desk keeps it with the seller)."""
    return _next_step(c, settings)


def next_action(c: SellerCycle, settings: CycleSettings, today: date) -> tuple[str, date] | None:
    """The next action of a seller and the day it is (or was first) due, due or not yet: what the
    compliance view shows. None when nothing is open."""
    due = due_actions(c, settings, today)
    if due:
        return due[0].action, due[0].due_date
    if c.requested_on is not None and c.outstanding:
        step = _next_step(c, settings)
        if step is not None:
            return step[0], step[1]
    return None


class MarkRefused(ValueError):
    """A report of an action sent that the cycle cannot take (out of order, too early, twice)."""


def mark(c: SellerCycle, action: str, on: date) -> SellerCycle:
    """The cycle after the platform reports ``action`` sent on ``on`` (the filing state's day of
    its time). Refused (:class:`MarkRefused`, saying why): an action out of the cycle's order, a
    second one of a kind, a reminder not after the step before it, a measure before the second
    reminder or before day :data:`FIRST_MEASURE_DAY` after the request (§ 23 sentence 2), a
    release before the requested data came in (§ 23 sentence 3). A measure after day
    :data:`LAST_MEASURE_DAY` is taken (it happened; it was late). A release closes the cycle."""
    if action == PRE_REPORT_NOTICE:
        if c.notice_on is not None:
            raise MarkRefused(f"the pre-report notice is recorded as sent on {c.notice_on} already")
        return replace(c, notice_on=on)
    if action == REQUEST:
        if c.requested_on is not None:
            raise MarkRefused(f"the request of {c.requested_on} is still open; its cycle closes when its data came in")
        if not c.needs:
            raise MarkRefused("nothing is missing or invalid for this seller: no request was due")
        return replace(c, requested_on=on, requested_items=c.needs, reminder_1_on=None, reminder_2_on=None)
    req = c.requested_on
    if req is None:
        raise MarkRefused(f"no request is open for this seller: a {action} follows a request")
    if action == REMINDER_1:
        if c.reminder_1_on is not None:
            raise MarkRefused(f"the first reminder is recorded as sent on {c.reminder_1_on} already")
        if on <= req:
            raise MarkRefused(f"the first reminder must come after the request of {req}")
        return replace(c, reminder_1_on=on)
    if action == REMINDER_2:
        if c.reminder_1_on is None:
            raise MarkRefused("the second reminder follows the first, which is not recorded")
        if c.reminder_2_on is not None:
            raise MarkRefused(f"the second reminder is recorded as sent on {c.reminder_2_on} already")
        if on <= c.reminder_1_on:
            raise MarkRefused(f"the second reminder must come after the first of {c.reminder_1_on}")
        return replace(c, reminder_2_on=on)
    if action in MEASURES:
        if c.measure_on is not None:
            raise MarkRefused(f"the measure {c.measure} is recorded as taken on {c.measure_on} already")
        if c.reminder_2_on is None:
            raise MarkRefused("a measure comes after the second reminder (PStTG § 23 sentence 2)")
        if on <= c.reminder_2_on:
            raise MarkRefused(f"the measure must come after the second reminder of {c.reminder_2_on}")
        day = (on - req).days
        if day < FIRST_MEASURE_DAY:
            raise MarkRefused(
                f"the measure is dated day {day} after the request of {req}; PStTG § 23 sentence 2 allows it from "
                f"day {FIRST_MEASURE_DAY}"
            )
        return replace(c, measure=action, measure_on=on)
    if action == RELEASE:
        if c.measure_on is None:
            raise MarkRefused("no measure is recorded for this seller: there is nothing to release")
        if c.outstanding:
            raise MarkRefused(
                f"the requested data has not come in ({', '.join(c.outstanding)}); PStTG § 23 sentence 3 lifts the "
                "measure once it has (the next run shows the release as due)"
            )
        if on < c.measure_on:
            raise MarkRefused(f"the release must not come before the measure of {c.measure_on}")
        return replace(
            c,
            request_due=None,
            requested_on=None,
            requested_items=(),
            reminder_1_on=None,
            reminder_2_on=None,
            measure=None,
            measure_on=None,
            release_due=None,
            cycles=c.cycles + 1,
        )
    raise MarkRefused(f"{action!r} is no action of the feed ({', '.join(DUE_DILIGENCE_ACTIONS)})")


def action_rank(action: str) -> int:
    """An action's place in the cycle (the feed's order within a seller)."""
    return DUE_DILIGENCE_ACTIONS.index(action)


def item_rank(item: str) -> int:
    return DUE_DILIGENCE_ITEMS.index(item)
