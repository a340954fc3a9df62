"""The seller reports' CSV from the Parquet file just written (``reports.sellers.same_rows``):
the same bytes as from the query, and the query itself where a column would read back otherwise."""

from __future__ import annotations

from pathlib import Path

import duckdb

from reporting.reports import csvcells
from reporting.reports.sellers import same_rows
from reporting.staging import sql_literal

QUERY = """
select * from (values
    ('S2', '=1+1', 12::bigint, 3.5::decimal(18, 2), ['DE', 'FR'], date '2025-02-28', true),
    ('S1', null, -7::bigint, null, [], null, false),
    ('S3', '-x', null, 0.01::decimal(18, 2), null, date '2025-12-31', null)
) as t(seller_id, note, n, amount, states, day, flag)
order by seller_id
"""


def _csv(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> bytes:
    con.execute(f"copy ({csvcells.select(con, sql)}) to {sql_literal(path)} (format csv, header)")
    return path.read_bytes()


def test_the_csv_read_back_from_the_parquet_is_the_querys(tmp_path: Path) -> None:
    con = duckdb.connect()
    parquet = tmp_path / "r.parquet"
    con.execute(f"copy ({QUERY}) to {sql_literal(parquet)} (format parquet, compression zstd)")
    rows = same_rows(con, QUERY, parquet)
    assert "read_parquet" in rows
    assert _csv(con, rows, tmp_path / "a.csv") == _csv(con, QUERY, tmp_path / "b.csv")
    assert b"S1" in (tmp_path / "a.csv").read_bytes().splitlines()[1]  # in the query's order
    assert b"'=1+1" in (tmp_path / "a.csv").read_bytes()


def test_a_column_that_reads_back_with_another_type_keeps_the_query(tmp_path: Path) -> None:
    con = duckdb.connect()
    query = "select 1::hugeint as n, interval 3 day as d"
    parquet = tmp_path / "r.parquet"
    con.execute(f"copy ({query}) to {sql_literal(parquet)} (format parquet)")
    assert same_rows(con, query, parquet) == query
