"""The quarter of a ``dac7_quarterly`` run, and where its watch publishes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from dac7_support.common import run_date


def quarter_end(year: int, quarter: int) -> date:
    return date(year + (quarter == 4), 3 * quarter % 12 + 1, 1) - timedelta(days=1)


def last_ended_quarter(day: date) -> tuple[int, int]:
    """The latest quarter that ended on or before ``day``."""
    q = (day.month - 1) // 3 + 1
    if quarter_end(day.year, q) == day:
        return day.year, q
    before = date(day.year, 3 * (q - 1) + 1, 1) - timedelta(days=1)
    return before.year, (before.month - 1) // 3 + 1


def quarter_period(
    logical_date: datetime | None, run_after: datetime | None, params: Mapping[str, Any]
) -> tuple[int, int, date]:
    """(year, quarter, as-of date) of a quarterly run: the ``reporting_year`` and ``quarter``
    Params together, else the latest quarter that ended before the run's date (the run of
    2026-04-01 covers 2026 up to 31 March; that of 2026-01-01 the whole of 2025). The as-of date
    is the quarter's last day."""
    year, quarter = params.get("reporting_year"), params.get("quarter")
    if (year is None) != (quarter is None):
        raise ValueError("set both the reporting_year and the quarter Params, or neither (the last quarter that ended)")
    if year is None:
        year, quarter = last_ended_quarter(run_date(logical_date, run_after) - timedelta(days=1))
    return int(year), int(quarter), quarter_end(int(year), int(quarter))


def watch_dir(out_root: str | Path, year: int, quarter: int) -> Path:
    """``<out>/<year>/watch/Q<n>/``: the quarter's reports, manifest and watch list."""
    return Path(out_root) / str(year) / "watch" / f"Q{quarter}"
