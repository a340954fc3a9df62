"""What is due and what is done: each item of a filing's calendar (``reporting.deadlines``) held
against the filing ledger, for the deadline DAG's warnings and the DAC7 view's calendar.

For one operator's filing with one authority and one reporting year (production):

* **filing**: done once the authority accepted a message of it (also with some records
  rejected: those are corrections); open while nothing is accepted, overdue when nothing is
  filed after the due day. Filed means sent: transmitted to the DIP or marked uploaded from the
  outbox (every authority takes one of the two); a message published and not sent is not filed
  (``Ledger.filed_times``: the ledger's one rule, which the DAC7 board applies too). Filed but
  not accepted after the due day stays open, and is warned about: the answer is missing (import
  the status document, or ask the authority).
* **seller statements**: done when every statement recorded is sent (superseded ones aside) and
  a filing with sellers has statements; else open, overdue after the due day.
* **correction**: each rejection (a record, or a message as a whole) is done once a correction
  is filed; with a window (the authority's, else ``DAC7_CORRECTION_DAYS``), one filed after the
  window's last day is done late, and one not filed by then is overdue. Without a window an
  uncorrected rejection is open.
* **registration renewal**: none of the profiles knows one; the item says so.

Days are the authority's own (its time zone): a rejection imported at 23:30 UTC on 1 March is
rejected on 2 March in Berlin. ``today`` is passed in, never read from the clock.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from reporting.deadlines import (
    CORRECTION,
    REGISTRATION,
    CalendarItem,
    calendar,
    correction_days,
    correction_due,
    describe_days,
    local_day,
)
from reporting.ledger import Ledger, MessageInfo, Rejection
from reporting.vocabulary import PROD

#: The states of an item.
DONE, OPEN, OVERDUE, NOTHING = "done", "open", "overdue", "nothing due"
#: ``DAC7_CORRECTION_DAYS``: a correction window, in days, where the authority states none.
CORRECTION_DAYS_ENV = "DAC7_CORRECTION_DAYS"


def configured_correction_days(env: dict[str, str] | os._Environ[str] | None = None) -> int | None:
    """``DAC7_CORRECTION_DAYS`` as a number of days (None when unset); anything but a whole
    number of at least 1 is refused with the variable named."""
    text = (os.environ if env is None else env).get(CORRECTION_DAYS_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{CORRECTION_DAYS_ENV} {text!r}: expected a whole number of days of at least 1, e.g. 14")
    return int(text)


@dataclass(frozen=True, slots=True)
class CorrectionState:
    """A rejection as the calendar sees it: the authority's days."""

    rejection: Rejection
    rejected_on: date | None
    due: date | None  # None: no window
    corrected_on: date | None
    state: str  # done | open | overdue
    late: bool = False  # corrected after the window's last day


def correction_state(rejection: Rejection, today: date, days: int | None) -> CorrectionState:
    """Where one rejection stands on ``today`` (the authority's day) with a window of ``days``."""
    authority = rejection.authority
    rejected_on = local_day(authority, rejection.rejected_at) if rejection.rejected_at else None
    due = correction_due(rejected_on, days) if rejected_on else None
    if rejection.corrected:
        corrected_on = local_day(authority, rejection.corrected_at) if rejection.corrected_at else None
        late = bool(due and corrected_on and corrected_on > due)
        return CorrectionState(rejection, rejected_on, due, corrected_on, DONE, late)
    return CorrectionState(rejection, rejected_on, due, None, OVERDUE if due and today > due else OPEN)


@dataclass(frozen=True, slots=True)
class ItemState:
    """One calendar item of a filing, and where it stands."""

    item: CalendarItem
    operator_id: str | None  # None: every operator of the authority's filings, added up
    state: str
    detail: str


def filing_states(
    ledger: Ledger,
    authority: str,
    year: int,
    today: date,
    *,
    operator_id: str | None = None,
    correction_window: int | None = None,
) -> list[ItemState]:
    """The calendar of one filing (``authority``, ``year``; one operator's, or every operator's
    with ``operator_id`` None), each item with its state on ``today`` (the authority's day)."""
    messages = [
        m
        for m in ledger.messages(year=year, authority=authority, environment=PROD, operator_id=operator_id)
        if m.status != "discarded"
    ]
    rejections = [
        r
        for r in ledger.rejections(environment=PROD, year=year)
        if r.authority == authority and (operator_id is None or r.operator_id == operator_id)
    ]
    counts = [
        c
        for c in ledger.statement_counts(year=year, environment=PROD)
        if c.authority == authority and (operator_id is None or c.operator_id == operator_id)
    ]
    sellers = ledger.filed_sellers(PROD, year, operator_id=operator_id).get(authority, 0)
    sent_at = ledger.filed_times(year, authority, PROD, operator_id=operator_id)  # filed means sent
    out = []
    for item in calendar(authority, year, correction_window):
        if item.obligation == "filing":
            state, detail = _filing(item, messages, sent_at, today)
        elif item.obligation == "seller_statement":
            pending = sum(c.unsent for c in counts)
            sent = sum(c.sent for c in counts)
            state, detail = _statements(item, sent, pending, bool(counts), sellers, today)
        elif item.obligation == CORRECTION:
            days = correction_days(authority, correction_window)
            state, detail = _corrections([correction_state(r, today, days) for r in rejections], today)
        else:  # REGISTRATION
            assert item.obligation == REGISTRATION
            state, detail = NOTHING, "no renewal of the registration is known for this authority"
        out.append(ItemState(item, operator_id, state, detail))
    return out


def _filing(item: CalendarItem, messages: list[MessageInfo], sent: dict[str, datetime], today: date) -> tuple[str, str]:
    assert item.due is not None
    accepted = [m for m in messages if m.status == "accepted"]
    filed = [m for m in messages if m.message_ref_id in sent and m.status in ("published", "accepted")]
    unsent = [m for m in messages if m.status == "published" and m.message_ref_id not in sent]
    if accepted:
        return DONE, f"accepted ({len(accepted)} message{'s' if len(accepted) != 1 else ''})"
    if filed:
        first = min(local_day(item.country, sent[m.message_ref_id]) for m in filed)
        when = "in time" if first <= item.due else f"{(first - item.due).days} day(s) late"
        return OPEN, f"filed {first.isoformat()} ({when}); no accepted status imported yet"
    rejected = sum(1 for m in messages if m.status == "rejected")
    words = describe_days(item.due, today)
    if rejected:
        words = f"rejected as a whole ({rejected}): file again; {words}"
    if unsent:
        words = f"{len(unsent)} published, not transmitted or uploaded yet; {words}"
    return (OVERDUE if today > item.due else OPEN), f"nothing accepted or filed; {words}"


def _statements(
    item: CalendarItem, sent: int, unsent: int, recorded: bool, sellers: int, today: date
) -> tuple[str, str]:
    assert item.due is not None
    late = today > item.due
    if unsent:
        return (OVERDUE if late else OPEN), f"{sent} sent, {unsent} not sent (pending or failed)"
    if sellers and not recorded:
        return (OVERDUE if late else OPEN), f"{sellers} seller(s) filed, no statement recorded"
    if recorded:
        return DONE, f"{sent} sent"
    return NOTHING, "no seller filed, no statement recorded"


def _corrections(states: Iterable[CorrectionState], today: date) -> tuple[str, str]:
    states = list(states)
    if not states:
        return NOTHING, "no rejection"
    open_ = [s for s in states if s.state != DONE]
    late = sum(1 for s in states if s.late)
    parts = [f"{len(states)} rejection(s), {len(states) - len(open_)} corrected" + (f" ({late} late)" if late else "")]
    if not open_:
        return DONE, parts[0]
    overdue = [s for s in open_ if s.state == OVERDUE]
    dues = sorted(s.due for s in open_ if s.due is not None)
    if dues:
        parts.append(f"the first correction due {dues[0].isoformat()} ({describe_days(dues[0], today)})")
    else:
        parts.append("no time stated: correct without delay")
    return (OVERDUE if overdue else OPEN), "; ".join(parts)
