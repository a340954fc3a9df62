"""The quarter of a ``dac7_quarterly`` run, and the test ledger it files its preview into."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from dac7_support.common import run_date

LEDGER_FILE = "dac7-ledger.sqlite3"


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
    """``<out>/<year>/watch/Q<n>/``: the quarter's preview files, reports, watch list and ledger."""
    return Path(out_root) / str(year) / "watch" / f"Q{quarter}"


def _same_database(a: str, b: str) -> bool:
    from sqlalchemy.engine import make_url

    ua, ub = make_url(a), make_url(b)
    if ua.get_backend_name() == ub.get_backend_name() == "sqlite":
        return bool(ua.database and ub.database) and Path(ua.database).resolve() == Path(ub.database).resolve()
    keep = ("host", "port", "database")
    return ua.get_backend_name() == ub.get_backend_name() and all(getattr(ua, k) == getattr(ub, k) for k in keep)


def quarterly_ledger_url(out_dir: str | Path, config_path: str | Path) -> str:
    """The ledger of the quarterly previews: ``DAC7_QUARTERLY_LEDGER_URL``, else a SQLite file in
    the quarter's directory. Refused when it is the production ledger (``DAC7_LEDGER_URL``, the
    configuration's ``[ledger] url`` or the default file in the working directory)."""
    from reporting.config import load_config
    from reporting.errors import ConfigError
    from reporting.ledger import default_ledger_url

    url = os.environ.get("DAC7_QUARTERLY_LEDGER_URL") or f"sqlite:///{Path(out_dir).resolve() / LEDGER_FILE}"
    production = [os.environ.get("DAC7_LEDGER_URL"), load_config(config_path).ledger, default_ledger_url(Path.cwd())]
    if any(p and _same_database(url, p) for p in production):
        raise ConfigError(
            "the quarterly preview would file into the production ledger: set DAC7_QUARTERLY_LEDGER_URL to "
            "a ledger of its own (or leave it unset: a file in the quarter's watch directory)"
        )
    return url


@contextmanager
def preview_ledger(url: str) -> Iterator[None]:
    """Within the block, the stages reach only ``url``: a ledger URL with a password is not kept in
    the run's settings, and the stages would then take ``DAC7_LEDGER_URL`` (the production ledger)."""
    before = os.environ.get("DAC7_LEDGER_URL")
    os.environ["DAC7_LEDGER_URL"] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DAC7_LEDGER_URL", None)
        else:
            os.environ["DAC7_LEDGER_URL"] = before
