"""DuckDB over the run's staged Parquet files: the columnar engine of the pipeline."""

from __future__ import annotations

from pathlib import Path

import duckdb

from reporting.countries import EU_MEMBER_STATES, ISO_COUNTRIES, ISO_CURRENCIES

EXTRACT_TABLES = (
    "sellers",
    "seller_tins",
    "seller_financial_accounts",
    "seller_permanent_establishments",
    "property_listings",
    "transactions",
    "refunds",
    "fx_rates",
)


def sql_literal(path: Path) -> str:
    """A path as a quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def connect(run_dir: Path, *stages: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per staged Parquet file of the given stages.

    Views are named after the file (``transactions``, ``activity_totals`` ...). Code lists are
    tables too: ``iso_currencies``, ``iso_countries``, ``eu_states``.
    """
    con = duckdb.connect(":memory:", config={"threads": 2})
    for stage in stages:
        for path in sorted((run_dir / stage).glob("*.parquet")):
            # DDL cannot take parameters; the name and path are our own staging files.
            con.execute(f"create view {path.stem} as select * from read_parquet({sql_literal(path)})")
    for name, codes in (
        ("iso_currencies", ISO_CURRENCIES),
        ("iso_countries", ISO_COUNTRIES),
        ("eu_states", EU_MEMBER_STATES),
    ):
        con.execute(f"create table {name} (code varchar primary key)")
        con.executemany(f"insert into {name} values (?)", [[c] for c in sorted(codes)])
    return con
