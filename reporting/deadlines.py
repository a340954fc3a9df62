"""The deadlines of each authority profile, read from one data file with a source per row.

``reporting/authorities/deadlines.toml`` holds one table per profile (the national profiles of
the registry, and ``EU`` for the EU generic edition that every other member state uses): rows of
an obligation (``filing``, ``seller_statement``), a day (``MM-DD``) in the year after the
reporting year, the text it comes from, how certain that is, and a note. Later work adds rows and
obligations; the keys are a contract and are only ever added to.

    due = filing_due("DE", 2025)            # date(2026, 1, 31)
    days_left(due, date(2026, 2, 1))        # -1: one day overdue; the due day itself is 0
    local_day("DE", datetime(2026, 1, 31, 23, tzinfo=UTC))  # date(2026, 2, 1): midnight in Berlin

A due day ends at midnight in the member state (its ``[time_zones]`` row, a zoneinfo name), not
in UTC: :func:`local_day` gives the state's day of a moment, for "due today", "overdue" and
"filed in time".

Beside its rows, each profile has a ``shift`` (whether a due day on a Saturday, Sunday or public
holiday moves to the next working day: only where a text says so), a ``correction`` window (the
days allowed to correct after a rejection, where the authority states one) and a
``registration`` renewal (none known). :func:`calendar` lists a profile's items for a year, each
with its day, rule, time zone, source and certainty:

    filing_due("DE", 2025)      # date(2026, 2, 2): 31 January 2026 is a Saturday (AO § 108(3))
    statement_due("DE", 2025)   # date(2026, 1, 31): not moved (no text found that moves it)
    correction_due(date(2026, 3, 2), 14)   # date(2026, 3, 16): day 0 is the rejection's day

A leaf module: the standard library only (the DAG files and the Airflow plugin import it).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

#: The obligations the table knows; a row with another one is refused (a typo would hide a date).
OBLIGATIONS = ("filing", "seller_statement")
#: The calendar's items beyond the rows: a correction after a rejection, a registration renewal.
CORRECTION, REGISTRATION = "correction", "registration_renewal"
#: What a due day on a weekend or a public holiday does.
SHIFT_RULES = ("none", "next_working_day")
CERTAINTIES = ("high", "medium", "low")
#: The table of the EU generic edition: the member states without a national profile.
EU = "EU"
_FILE = ("authorities", "deadlines.toml")
#: The table of the member states' time zones in the file (not a profile).
TIME_ZONES = "time_zones"


class DeadlineTableError(ValueError):
    """The deadline table is malformed: the message names the profile, the row and the key."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """One row of a profile's deadline table."""

    profile: str
    obligation: str
    due: str  # MM-DD
    years_after: int
    source: str
    certainty: str
    note: str | None = None
    from_year: int | None = None
    to_year: int | None = None

    def due_date(self, year: int) -> date:
        """The due day for the reporting year ``year``."""
        month, day = (int(p) for p in self.due.split("-"))
        return date(year + self.years_after, month, day)

    def applies_to(self, year: int) -> bool:
        return (self.from_year is None or year >= self.from_year) and (self.to_year is None or year <= self.to_year)

    @property
    def span(self) -> float:
        """How many reporting years the row covers (a one-off is narrower than the rule)."""
        if self.from_year is None or self.to_year is None:
            return float("inf")
        return float(self.to_year - self.from_year)


@dataclass(frozen=True, slots=True)
class Shift:
    """Whether a due day that falls on a Saturday, a Sunday or one of ``holidays`` (``MM-DD``, the
    fixed-date public holidays at the authority's seat) moves to the next working day, and for
    which obligations."""

    rule: str = "none"
    obligations: tuple[str, ...] = ()
    holidays: tuple[str, ...] = ()
    source: str = "not stated in the deadline table"
    certainty: str = "low"
    note: str | None = None

    def moves(self, obligation: str) -> bool:
        return self.rule == "next_working_day" and obligation in self.obligations

    def apply(self, day: date) -> date:
        """The first working day from ``day`` on (``day`` itself when it is one)."""
        while day.weekday() >= 5 or f"{day:%m-%d}" in self.holidays:
            day += timedelta(days=1)
        return day


@dataclass(frozen=True, slots=True)
class Rule:
    """A profile's correction window (``days``: the days allowed after a rejection) or
    registration renewal (``days``: years between renewals); ``None`` where no text states one."""

    days: int | None
    source: str
    certainty: str
    note: str | None = None


#: A profile whose table says nothing of a correction window or a renewal.
UNSTATED = Rule(None, "not stated in the deadline table", "low")


@dataclass(frozen=True, slots=True)
class ProfileDeadlines:
    profile: str
    name: str
    rows: tuple[Deadline, ...]
    shift: Shift = Shift()
    correction: Rule = UNSTATED
    registration: Rule = UNSTATED


@functools.cache
def deadline_table() -> dict[str, ProfileDeadlines]:
    """Every profile's deadline table, checked: each row has an obligation, a day, a source."""
    return parse_table(_data())


@functools.cache
def _data() -> dict[str, Any]:
    return tomllib.loads(resources.files("reporting").joinpath(*_FILE).read_text(encoding="utf-8"))


@functools.cache
def time_zones() -> dict[str, str]:
    """Each member state's time zone (a zoneinfo name), from the table's ``[time_zones]``;
    every name is checked to be one zoneinfo knows."""
    zones = {str(k): str(v) for k, v in _data().get(TIME_ZONES, {}).items()}
    for country, name in zones.items():
        try:
            ZoneInfo(name)
        except (ValueError, LookupError):  # ZoneInfoNotFoundError is a KeyError
            raise DeadlineTableError(f"[{TIME_ZONES}] {country}: {name!r} is not a time zone zoneinfo knows") from None
    return zones


def time_zone(country: str) -> ZoneInfo:
    """The time zone a deadline of ``country`` is counted in; UTC for a country without one."""
    name = time_zones().get(country)
    return ZoneInfo(name) if name else ZoneInfo("UTC")


def local_day(country: str, at: datetime) -> date:
    """The day in ``country`` at the moment ``at`` (a naive ``at`` is UTC, as the ledger keeps it)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(time_zone(country)).date()


def parse_table(data: Mapping[str, Any]) -> dict[str, ProfileDeadlines]:
    tables: dict[str, ProfileDeadlines] = {}
    for profile, table in data.items():
        if profile == TIME_ZONES:  # the member states' time zones: see time_zones()
            continue
        if not isinstance(table, Mapping):
            raise DeadlineTableError(f"[{profile}]: expected a table with a name and deadline rows")
        rows = tuple(_row(profile, i, row) for i, row in enumerate(table.get("deadline", []), start=1))
        if not any(r.obligation == "filing" and r.from_year is None and r.to_year is None for r in rows):
            raise DeadlineTableError(f"[{profile}]: no general filing deadline (a row without from_year/to_year)")
        tables[profile] = ProfileDeadlines(
            profile,
            str(table.get("name") or profile),
            rows,
            shift=_shift(profile, table.get("shift")),
            correction=_rule(profile, "correction", "within_days", table.get("correction")),
            registration=_rule(profile, "registration", "renewal_years", table.get("registration")),
        )
    if EU not in tables:
        raise DeadlineTableError(f"no [{EU}] table: the member states without a national profile have no deadline")
    return tables


def _row(profile: str, number: int, row: Mapping[str, Any]) -> Deadline:
    where = f"[[{profile}.deadline]] row {number}"
    unknown = set(row) - set(Deadline.__slots__) - {"profile"}
    if unknown:
        raise DeadlineTableError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("obligation", "due", "years_after", "source", "certainty"):
        if row.get(key) in (None, ""):
            raise DeadlineTableError(f"{where}: {key} is missing")
    if row["obligation"] not in OBLIGATIONS:
        raise DeadlineTableError(f"{where}: obligation {row['obligation']!r}; expected one of {', '.join(OBLIGATIONS)}")
    if row["certainty"] not in CERTAINTIES:
        raise DeadlineTableError(f"{where}: certainty {row['certainty']!r}; expected one of {', '.join(CERTAINTIES)}")
    deadline = Deadline(
        profile=profile,
        obligation=row["obligation"],
        due=str(row["due"]),
        years_after=int(row["years_after"]),
        source=str(row["source"]),
        certainty=row["certainty"],
        note=row.get("note"),
        from_year=row.get("from_year"),
        to_year=row.get("to_year"),
    )
    try:
        deadline.due_date(2024)  # a leap year: 02-29 is a day
    except ValueError:
        raise DeadlineTableError(f"{where}: due {row['due']!r} is not a day written MM-DD") from None
    return deadline


def _cited(where: str, table: Mapping[str, Any], keys: set[str]) -> None:
    unknown = set(table) - keys - {"source", "certainty", "note"}
    if unknown:
        raise DeadlineTableError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("source", "certainty"):
        if table.get(key) in (None, ""):
            raise DeadlineTableError(f"{where}: {key} is missing")
    if table["certainty"] not in CERTAINTIES:
        raise DeadlineTableError(f"{where}: certainty {table['certainty']!r}; expected one of {', '.join(CERTAINTIES)}")


def _shift(profile: str, table: Mapping[str, Any] | None) -> Shift:
    if table is None:
        return Shift()
    where = f"[{profile}.shift]"
    _cited(where, table, {"rule", "obligations", "holidays"})
    rule = table.get("rule", "none")
    if rule not in SHIFT_RULES:
        raise DeadlineTableError(f"{where}: rule {rule!r}; expected one of {', '.join(SHIFT_RULES)}")
    obligations = tuple(table.get("obligations", ()))
    if rule == "next_working_day" and not obligations:
        raise DeadlineTableError(f"{where}: rule next_working_day names no obligation it moves")
    for o in obligations:
        if o not in OBLIGATIONS:
            raise DeadlineTableError(f"{where}: obligation {o!r}; expected one of {', '.join(OBLIGATIONS)}")
    holidays = tuple(str(h) for h in table.get("holidays", ()))
    for h in holidays:
        try:
            date(2024, *(int(p) for p in h.split("-")))
        except (TypeError, ValueError):
            raise DeadlineTableError(f"{where}: holiday {h!r} is not a day written MM-DD") from None
    return Shift(rule, obligations, holidays, str(table["source"]), table["certainty"], table.get("note"))


def _rule(profile: str, name: str, key: str, table: Mapping[str, Any] | None) -> Rule:
    if table is None:
        return UNSTATED
    where = f"[{profile}.{name}]"
    _cited(where, table, {key})
    days = table.get(key)
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise DeadlineTableError(f"{where}: {key} {days!r} is not a whole number of at least 1")
    return Rule(days, str(table["source"]), table["certainty"], table.get("note"))


def profile_of(country: str) -> str:
    """The table that holds ``country``'s deadlines: its national profile's, else the EU one."""
    return country if country in deadline_table() else EU


def deadline_for(country: str, year: int, obligation: str = "filing") -> Deadline:
    """The row that sets ``country``'s ``obligation`` for the reporting year ``year`` (the
    narrowest one that covers the year)."""
    table = deadline_table()[profile_of(country)]
    rows = [r for r in table.rows if r.obligation == obligation and r.applies_to(year)]
    if not rows:
        raise DeadlineTableError(f"[{table.profile}] has no {obligation} deadline for {year}")
    return min(rows, key=lambda r: r.span)


def due_day(country: str, year: int, obligation: str = "filing") -> date:
    """The day ``obligation`` of ``year`` is due in ``country``: the row's day, moved to the next
    working day where the profile's ``shift`` says a text moves it (else the day stands)."""
    day = deadline_for(country, year, obligation).due_date(year)
    shift = deadline_table()[profile_of(country)].shift
    return shift.apply(day) if shift.moves(obligation) else day


def filing_due(country: str, year: int) -> date:
    """The day by which ``country`` must have the operator's report of ``year``."""
    return due_day(country, year, "filing")


def statement_due(country: str, year: int) -> date:
    """The day by which each reportable seller of ``country``'s filing of ``year`` must have
    received their statement (the ``seller_statement`` row)."""
    return due_day(country, year, "seller_statement")


def correction_days(country: str, configured: int | None = None) -> int | None:
    """The days allowed to correct after a rejection in ``country``: the authority's (the
    profile's ``[correction] within_days``), else ``configured`` (``DAC7_CORRECTION_DAYS``), else
    None: no time is stated, the rejection is open until corrected."""
    return deadline_table()[profile_of(country)].correction.days or configured


def correction_due(rejected_on: date, days: int | None) -> date | None:
    """The last day to file a correction: the rejection's day (in the authority's time zone) is
    day 0, the due day is day ``days`` and is not overdue; None without a window."""
    return None if days is None else rejected_on + timedelta(days=days)


@dataclass(frozen=True, slots=True)
class CalendarItem:
    """One item of a profile's calendar for a reporting year: what is due, when (``due``: None for
    an item without a calendar day, e.g. a correction counted from each rejection), by which rule,
    in which time zone, and on what source."""

    country: str
    profile: str
    year: int
    obligation: str  # filing | seller_statement | correction | registration_renewal
    due: date | None
    rule: str
    time_zone: str
    source: str
    certainty: str
    note: str | None = None
    #: the day before a shift moved it (None when it stands)
    unmoved: date | None = None


def calendar(country: str, year: int, configured_correction_days: int | None = None) -> list[CalendarItem]:
    """``country``'s calendar for the reporting year ``year``: the filing, the seller statements,
    the correction after a rejection, the registration renewal; each with its source."""
    table = deadline_table()[profile_of(country)]
    zone = time_zones().get(country, "UTC")
    items = []
    for obligation in OBLIGATIONS:
        row = deadline_for(country, year, obligation)
        day = row.due_date(year)
        due = due_day(country, year, obligation)
        moved = table.shift.moves(obligation)
        rule = f"{day:%d %B} of the year after the period"
        rule += ", moved to the next working day from a Saturday, Sunday or public holiday" if moved else ""
        source, certainty, note = row.source, row.certainty, row.note
        if moved:
            source += f"; the move: {table.shift.source}"
            # the less certain of the two
            certainty = max(row.certainty, table.shift.certainty, key=CERTAINTIES.index)
            note = "; ".join(n for n in (note, table.shift.note) if n) or None
        items.append(
            CalendarItem(
                country,
                table.profile,
                year,
                obligation,
                due,
                rule,
                zone,
                source,
                certainty,
                note,
                unmoved=day if due != day else None,
            )
        )
    c = table.correction
    days = correction_days(country, configured_correction_days)
    if c.days:
        rule = f"{c.days} days after the day a rejection is imported"
    elif days:
        rule = f"{days} days after the day a rejection is imported (DAC7_CORRECTION_DAYS: the authority states no time)"
    else:
        rule = "no number of days stated: open from the day a rejection is imported until a correction is filed"
    items.append(
        CalendarItem(country, table.profile, year, CORRECTION, None, rule, zone, c.source, c.certainty, c.note)
    )
    r = table.registration
    rule = f"every {r.days} years" if r.days else "no renewal"
    items.append(
        CalendarItem(country, table.profile, year, REGISTRATION, None, rule, zone, r.source, r.certainty, r.note)
    )
    return items


def days_left(due: date, today: date) -> int:
    """Days until ``due``: 0 on the due day itself (not overdue), negative once it has passed."""
    return (due - today).days


def describe_days(due: date, today: date) -> str:
    """``12 days left``, ``due today``, ``1 day overdue``."""
    left = days_left(due, today)
    if left == 0:
        return "due today"
    n = abs(left)
    return f"{n} day{'s' if n != 1 else ''} {'left' if left > 0 else 'overdue'}"
