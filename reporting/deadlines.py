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

A leaf module: the standard library only (the DAG files and the Airflow plugin import it).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

#: The obligations the table knows; a row with another one is refused (a typo would hide a date).
OBLIGATIONS = ("filing", "seller_statement")
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
class ProfileDeadlines:
    profile: str
    name: str
    rows: tuple[Deadline, ...]


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
        tables[profile] = ProfileDeadlines(profile, str(table.get("name") or profile), rows)
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


def filing_due(country: str, year: int) -> date:
    """The day by which ``country`` must have the operator's report of ``year``."""
    return deadline_for(country, year).due_date(year)


def statement_due(country: str, year: int) -> date:
    """The day by which each reportable seller of ``country``'s filing of ``year`` must have
    received their statement (the ``seller_statement`` row)."""
    return deadline_for(country, year, "seller_statement").due_date(year)


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
