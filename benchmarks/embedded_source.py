"""SQLite or DuckDB as the embedded source database: load, extract and group-by, measured.

    .venv/bin/python benchmarks/embedded_source.py [--sellers 30000]

Generates the demo marketplace into SQLite (the generator's path), copies the same rows into a
DuckDB file, then times on each: the size of the file, the period's transaction extract as the
pipeline reads it (DB-API cursor, batches of 50,000 rows), and a group-by per seller, activity
and currency pushed into the database. Prints one table.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from dac7_demo import generate_demo
from reporting.source import ddl_statements, sql_text

PERIOD = ("2024-12-31 22:00:00", "2025-12-31 22:00:00")
EXTRACT = (
    "select transaction_id, seller_id, activity, listing_id, paid_at, currency, amount_minor, "
    "fee_minor, tax_minor, rented_days from transactions where paid_at >= ? and paid_at < ?"
)
GROUP = (
    "select seller_id, activity, currency, count(*), sum(amount_minor), sum(fee_minor) "
    "from transactions where paid_at >= ? and paid_at < ? group by seller_id, activity, currency"
)


def timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def drain(cursor) -> int:  # type: ignore[no-untyped-def]
    n = 0
    while rows := cursor.fetchmany(50_000):
        n += len(rows)
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sellers", type=int, default=30_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dac7-bench-"))
    sqlite_path, duck_path = work / "source.db", work / "source.duckdb"

    t_gen, counts = timed(lambda: generate_demo(f"sqlite:///{sqlite_path}", sellers=args.sellers, seed=1, year=2025))
    src = sqlite3.connect(sqlite_path)

    def copy_to_duckdb() -> None:
        con = duckdb.connect(str(duck_path))
        for stmt in ddl_statements(sql_text("source_schema.sql")):
            con.execute(stmt)
        for table in counts:  # type: ignore[union-attr]
            cur = src.execute(f"select * from {table}")  # table names from the contract
            names = [d[0] for d in cur.description]
            while rows := cur.fetchmany(100_000):
                batch = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
                con.register("batch", batch)
                con.execute(f"insert into {table} select * from batch")
                con.unregister("batch")
        con.close()

    t_copy, _ = timed(copy_to_duckdb)
    duck = duckdb.connect(str(duck_path), read_only=True)
    duck_period = tuple(__import__("datetime").datetime.fromisoformat(p) for p in PERIOD)
    rows = {
        "SQLite": (
            sqlite_path.stat().st_size,
            timed(lambda: drain(src.execute(EXTRACT, PERIOD))),
            timed(lambda: len(src.execute(GROUP, PERIOD).fetchall())),
        ),
        "DuckDB": (
            duck_path.stat().st_size,
            timed(lambda: drain(duck.execute(EXTRACT, duck_period))),
            timed(lambda: len(duck.execute(GROUP, duck_period).fetchall())),
        ),
    }
    print(
        f"{counts['transactions']:,} transactions, {args.sellers:,} sellers "  # type: ignore[index]
        f"(generated into SQLite in {t_gen:.1f} s, copied to DuckDB in {t_copy:.1f} s)"
    )
    print(f"{'engine':<8}{'file MB':>9}{'extract s':>11}{'rows':>11}{'group-by s':>12}{'groups':>9}")
    for name, (size, (t_ex, n_ex), (t_gr, n_gr)) in rows.items():
        print(f"{name:<8}{size / 1e6:>9.1f}{t_ex:>11.2f}{n_ex:>11,}{t_gr:>12.2f}{n_gr:>9,}")


if __name__ == "__main__":
    main()
