"""DuckDB over the run's staged Parquet files: the columnar engine of the pipeline."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import duckdb

from reporting.countries import EU_MEMBER_STATES, ISO_COUNTRIES, ISO_CURRENCIES, is_currency
from reporting.period import Period, local_midnight_utc


def sql_literal(path: Path) -> str:
    """A path as a quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


#: DuckDB's memory budget (``DAC7_DUCKDB_MEMORY``, default 1 GB): beyond it, joins, groupings
#: and sorts spill to a temporary directory in the run's staging area, so that memory stays
#: bounded whatever the size of the marketplace (5M transactions: 1.1 GB at 1 GB, 2.6 GB unbounded).
DEFAULT_MEMORY_LIMIT = "1GB"


def duckdb_config(run_dir: Path) -> dict[str, str | bool | int | float | list[str]]:
    """The configuration of every DuckDB connection of a run: two threads, a memory budget, and
    spill files under the run's staging directory (private, like the data)."""
    return {
        "threads": 2,
        "memory_limit": os.environ.get("DAC7_DUCKDB_MEMORY") or DEFAULT_MEMORY_LIMIT,
        "temp_directory": str(Path(run_dir) / ".duckdb-spill"),
    }


def connect(run_dir: Path, *stages: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per staged Parquet file of the given stages.

    Views are named after the file (``transactions``, ``activity_totals`` ...). Code lists are
    tables too: ``iso_currencies``, ``iso_countries``, ``eu_states``.
    """
    con = duckdb.connect(":memory:", config=duckdb_config(run_dir))
    for stage in stages:
        for path in sorted((run_dir / stage).glob("*.parquet")):
            # DDL cannot take parameters; the name and path are our own staging files.
            con.execute(f"create view {path.stem} as select * from read_parquet({sql_literal(path)})")
    for name, codes in (
        ("iso_currencies", ISO_CURRENCIES),
        ("payment_currencies", frozenset(c for c in ISO_CURRENCIES if is_currency(c))),
        ("iso_countries", ISO_COUNTRIES),
        ("eu_states", EU_MEMBER_STATES),
    ):
        con.execute(f"create table {name} (code varchar primary key)")
        # one statement with a list parameter: executemany costs a round of its own per row
        # (0.2 s per connection for the ~450 codes, a third of a small run)
        con.execute(f"insert into {name} select unnest(?::varchar[])", [sorted(codes)])
    return con


def register_local_days(con: duckdb.DuckDBPyConnection, period: Period) -> None:
    """Table ``local_days(utc_start, local_date)``: the UTC instant at which each local day of
    the period starts (from the day before the year to its last day). An ASOF join on it gives
    a UTC timestamp's local date without any time-zone support in the database."""
    first = date(period.year, 1, 1) - timedelta(days=1)
    days = [first + timedelta(days=i) for i in range((date(period.year, 12, 31) - first).days + 1)]
    con.execute("create or replace table local_days (utc_start timestamp, local_date date)")
    con.execute(
        "insert into local_days select unnest(?::timestamp[]), unnest(?::date[])",
        [[local_midnight_utc(d, period.tz) for d in days], days],
    )


def seller_ranges(
    con: duckdb.DuckDBPyConnection,
    table: str,
    per_read: int,
    *,
    where: str = "true",
    params: dict[str, object] | None = None,
) -> list[tuple[str | None, str | None]]:
    """Consecutive ranges ``[low, high)`` (None: unbounded) of the seller ids of a staged table
    (those of its rows ``where`` holds, with ``params``), of about ``per_read`` sellers each, in
    the order of ``order by seller_id``: a query whose lists DuckDB builds in memory (it cannot
    spill a list aggregate) reads one range after the other, its memory bounded whatever the
    number of sellers."""
    sellers = f"(select distinct seller_id from {table} where {where})"
    ((count,),) = con.execute(f"select count(*) from {sellers}", params or {}).fetchall()
    parts = -(-int(count) // per_read)
    if parts <= 1:
        return [(None, None)]
    fractions = [i / parts for i in range(1, parts)]
    ((bounds,),) = con.execute(
        f"select quantile_disc(seller_id, $fractions::double[]) from {sellers}",
        {**(params or {}), "fractions": fractions},
    ).fetchall()
    edges = sorted(set(bounds))
    return list(zip([None, *edges], [*edges, None], strict=True))
