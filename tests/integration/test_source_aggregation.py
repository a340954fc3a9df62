"""The aggregation written once (reporting.pushdown) gives the same aggregates on every engine:
PostgreSQL, MariaDB (with a case-blind collation), SQLite and DuckDB, each against a
recomputation in plain Python from the source's rows, for both rate bases.

The data is the demo marketplace plus rows at the edges: payments at the first and last second
of the year and of a quarter (local midnight, as UTC instants), at the instants the zone's
offset changes (the local date of a payment in another currency), refunds at the first and last
second of the as-of cut-off, ids that differ only by case or by spaces around them, a refund of
a transaction that exists only in other capitals, and a transaction of the next year.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa

from dac7_demo import generate_demo
from reporting.period import Period, local_midnight_utc
from reporting.pushdown import (
    SOURCE_TOTALS_SCHEMA,
    read_source_totals,
    source_totals_sql,
    totals_from_arrow,
    totals_table,
    utc_offsets,
)
from reporting.source import make_engine

YEAR = 2025
ZONE = "Europe/Vilnius"  # UTC+2, +3 in summer: 2025-03-30 01:00 and 2025-10-26 01:00 UTC
PERIOD = Period(YEAR, ZONE, date(YEAR + 1, 1, 31))
AS_OF_END = PERIOD.as_of_end_utc
SECOND = timedelta(seconds=1)
Q3 = local_midnight_utc(date(YEAR, 7, 1), PERIOD.tz)


def _edge_transactions() -> list[dict[str, Any]]:
    """(id, seller, activity, listing, paid_at, currency, amount, fee, tax, days)"""
    spring, autumn = (at for at, _ in utc_offsets(PERIOD)[1:])
    rows = [
        ("edge-y0", "edge-1", "sale_of_goods", None, PERIOD.start_utc, "EUR", 1000, 10, 1, None),
        ("edge-y1", "edge-1", "sale_of_goods", None, PERIOD.end_utc - SECOND, "EUR", 2000, 20, 2, None),
        ("edge-ny", "edge-1", "sale_of_goods", None, PERIOD.end_utc, "EUR", 4000, 0, 0, None),  # next year
        ("edge-py", "edge-1", "sale_of_goods", None, PERIOD.start_utc - SECOND, "EUR", 8000, 0, 0, None),
        ("edge-q2", "edge-1", "sale_of_goods", None, Q3 - SECOND, "PLN", 300, 0, 0, None),
        ("edge-q3", "edge-1", "sale_of_goods", None, Q3, "PLN", 500, 0, 0, None),
        ("edge-s0", "edge-2", "personal_services", None, spring - SECOND, "PLN", 700, 7, 0, None),
        ("edge-s1", "edge-2", "personal_services", None, spring, "PLN", 900, 9, 0, None),
        ("edge-a0", "edge-2", "personal_services", None, autumn - SECOND, "SEK", 1100, 0, 0, None),
        ("edge-a1", "edge-2", "personal_services", None, autumn, "SEK", 1300, 0, 0, None),
        ("edge-d0", "edge-2", "personal_services", None, datetime(YEAR, 12, 31, 21, 59, 59), "SEK", 1500, 0, 0, None),
        ("edge-r1", "edge-3", "sale_of_goods", None, datetime(YEAR, 5, 5, 12), "EUR", 5000, 100, 50, None),
        ("edge-r2", "edge-3", "sale_of_goods", None, datetime(YEAR, 5, 5, 12), "EUR", 5000, 100, 50, None),
        ("edge-r3", "edge-3", "sale_of_goods", None, datetime(YEAR, 5, 5, 12), "EUR", 5000, 100, 50, None),
        ("edge-r4", "edge-3", "sale_of_goods", None, datetime(YEAR, 5, 5, 12), "eur ", 6000, 0, 0, None),
        ("edge-c1", "case-a", "sale_of_goods", None, datetime(YEAR, 2, 2), "EUR", 111, 0, 0, None),
        ("edge-c2", "CASE-A", "sale_of_goods", None, datetime(YEAR, 2, 2), "EUR", 222, 0, 0, None),
        ("edge-c3", " case-a ", "sale_of_goods", None, datetime(YEAR, 2, 2), "EUR", 444, 0, 0, None),
        ("edge-ref", "case-b", "sale_of_goods", None, datetime(YEAR, 2, 3), "EUR", 999, 0, 0, None),
    ]
    keys = ("transaction_id", "seller_id", "activity", "listing_id", "paid_at", "currency")
    keys += ("amount_minor", "fee_minor", "tax_minor", "rented_days")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _edge_refunds() -> list[dict[str, Any]]:
    rows = [
        ("edge-f1", "edge-r1", AS_OF_END - SECOND, 5000, 100, 50),  # in time, full
        ("edge-f2", "edge-r2", AS_OF_END, 5000, 100, 50),  # the first second after the cut-off
        ("edge-f3", "edge-r3", AS_OF_END - SECOND, 2000, 0, 0),  # in time, partial
        ("edge-f4", "edge-r3", AS_OF_END + timedelta(days=3), 1000, 0, 0),  # late
        ("edge-f5", "EDGE-REF", datetime(YEAR, 3, 1), 999, 0, 0),  # another transaction's capitals
        ("edge-f6", " edge-r4", datetime(YEAR, 6, 1), 6000, 0, 0),  # not r4's: the source compares as written
        ("edge-f7", "edge-ny", datetime(YEAR + 1, 1, 5), 4000, 0, 0),  # of the next year's
    ]
    keys = ("refund_id", "transaction_id", "refunded_at", "amount_minor", "fee_minor", "tax_minor")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def load(url: str, *, case_blind: bool = False) -> None:
    generate_demo(url, sellers=120, seed=11, year=YEAR)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if case_blind:  # the usual MariaDB collation: 'a' = 'A' = 'a '
                for table in ("transactions", "refunds"):
                    conn.exec_driver_sql(
                        f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
                    )
            tx = sa.table("transactions", *(sa.column(c) for c in _edge_transactions()[0]))
            rf = sa.table("refunds", *(sa.column(c) for c in _edge_refunds()[0]))
            if conn.dialect.name == "sqlite":  # SQLite keeps UTC text
                fix = [{k: _sqlite_time(v) for k, v in r.items()} for r in _edge_transactions()]
                conn.execute(tx.insert(), fix)
                conn.execute(rf.insert(), [{k: _sqlite_time(v) for k, v in r.items()} for r in _edge_refunds()])
            else:
                conn.execute(tx.insert(), _edge_transactions())
                conn.execute(rf.insert(), _edge_refunds())
    finally:
        engine.dispose()


def _sqlite_time(value: Any) -> Any:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else value


def _rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(f"select * from {table}"))]
    finally:
        engine.dispose()


def _clean(value: Any, *, code: bool = False) -> Any:
    if not isinstance(value, str):
        return value
    value = value.strip() or None
    return value.upper() if code and value else value


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def reference(
    transactions: Iterable[dict[str, Any]], refunds: Iterable[dict[str, Any]], *, payment_date: bool
) -> pa.Table:
    """The aggregates recomputed in plain Python, one transaction at a time, with zoneinfo for
    local dates: independent of the SQL and of every engine. A refund counts when its
    transaction_id is, as written, that of a transaction of the period (the source's comparison,
    as the extract reads refunds), and applies to the transaction whose trimmed id is its own."""
    transactions = [t for t in transactions if PERIOD.start_utc <= _time(t["paid_at"]) < PERIOD.paid_until_utc]
    written = {t["transaction_id"] for t in transactions}
    applied: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    late: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in refunds:
        if r["transaction_id"] not in written:
            continue
        key = _clean(r["transaction_id"])
        if _time(r["refunded_at"]) < AS_OF_END:
            a = applied[key]
            a[0] += r["amount_minor"]
            a[1] += r["fee_minor"] or 0
            a[2] += r["tax_minor"] or 0
            a[3] += 1
        else:
            late[key][0] += 1
            late[key][1] += r["amount_minor"]
    quarters = PERIOD.quarter_starts_utc
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for t in transactions:
        paid = _time(t["paid_at"])
        tid, currency = _clean(t["transaction_id"]), _clean(t["currency"], code=True)
        quarter = sum(paid >= q for q in quarters)
        local = paid.replace(tzinfo=UTC).astimezone(PERIOD.tz).date() if payment_date and currency != "EUR" else None
        key = (_clean(t["seller_id"]), _clean(t["activity"]), _clean(t["listing_id"]), currency, quarter, local)
        g = groups.setdefault(key, [0, 0, 0, 0, None, 0, 0, 0, 0, 0, 0, 0, 0])
        refund = applied.get(tid)
        fee, tax = t["fee_minor"] or 0, t["tax_minor"] or 0
        full = refund is not None and refund[0] >= t["amount_minor"]
        g[0] += t["amount_minor"] - (refund[0] if refund else 0)
        g[1] += fee - (refund[1] if refund else 0)
        g[2] += tax - (refund[2] if refund else 0)
        g[3] += 0 if full else 1
        g[4] = None if full and g[4] is None else (g[4] or 0) + (0 if full else (t["rented_days"] or 0))
        g[5] += 1
        g[6] += refund is not None
        g[7] += full
        g[8] += t["amount_minor"]
        g[9] += refund[0] if refund else 0
        g[10] += late[tid][0] if tid in late else 0
        g[11] += late[tid][1] if tid in late else 0
        g[12] += (refund[3] if refund else 0) + (late[tid][0] if tid in late else 0)
    return totals_table([(*k, *v) for k, v in groups.items()])


def assert_same(actual: pa.Table, expected: pa.Table) -> None:
    assert actual.schema == SOURCE_TOTALS_SCHEMA
    assert actual.num_rows == expected.num_rows
    for name in SOURCE_TOTALS_SCHEMA.names:
        assert actual[name].to_pylist() == expected[name].to_pylist(), name


def check_engine(url: str) -> None:
    transactions, refunds = _rows(url, "transactions"), _rows(url, "refunds")
    engine = make_engine(url)
    try:
        for payment_date in (False, True):
            with engine.connect() as conn:
                actual = read_source_totals(conn, PERIOD, payment_date_rates=payment_date)
            expected = reference(transactions, refunds, payment_date=payment_date)
            assert_same(actual, expected)
    finally:
        engine.dispose()


def test_the_reference_sees_the_edges(sqlite_url: str) -> None:
    """The edge rows give what a reading of the rules gives by hand."""
    load(sqlite_url)
    table = reference(_rows(sqlite_url, "transactions"), _rows(sqlite_url, "refunds"), payment_date=True)
    rows = {(r["seller_id"], r["quarter"], r["currency"], r["local_date"]): r for r in table.to_pylist()}
    edge1 = {k[1:]: v["amount_minor"] for k, v in rows.items() if k[0] == "edge-1"}
    # the first and last second of the year are in it; the seconds around it are not
    assert edge1[(1, "EUR", None)] == 1000 and edge1[(4, "EUR", None)] == 2000
    # the last second of Q2 and the first of Q3 (local midnight), each on its local date
    assert edge1[(2, "PLN", date(YEAR, 6, 30))] == 300 and edge1[(3, "PLN", date(YEAR, 7, 1))] == 500
    edge2 = {k[3]: v["amount_minor"] for k, v in rows.items() if k[0] == "edge-2"}
    # 03:59:59 local (UTC+2) and 04:00:00 local (UTC+3) on 30 March; 03:59:59 (+3) and 03:00 (+2)
    assert edge2[date(YEAR, 3, 30)] == 700 + 900 and edge2[date(YEAR, 10, 26)] == 1100 + 1300
    assert edge2[date(YEAR, 12, 31)] == 1500  # 23:59:59 local on the last day
    edge3 = next(v for k, v in rows.items() if k[0] == "edge-3")
    # r1 refunded in full at the last second, r2's refund at the cut-off is late, r3 partly
    # refunded (and once late); r4 ("eur ") is not refunded: " edge-r4" is another id in the source
    assert edge3["amount_minor"] == 0 + 5000 + 3000 + 6000
    assert (edge3["activities"], edge3["fully_refunded_transactions"], edge3["refunded_transactions"]) == (3, 1, 2)
    assert (edge3["refunds_after_as_of"], edge3["refunded_after_as_of_minor"], edge3["refunds"]) == (2, 6000, 4)
    assert {k[0] for k in rows if k[0] and k[0].lower() == "case-a"} == {"case-a", "CASE-A"}
    assert rows[("case-a", 1, "EUR", None)]["amount_minor"] == 111 + 444
    assert rows[("case-b", 1, "EUR", None)]["refunded_transactions"] == 0  # EDGE-REF is not edge-ref


def test_sqlite(sqlite_url: str) -> None:
    load(sqlite_url)
    check_engine(sqlite_url)


@pytest.mark.pg
def test_postgresql(pg_url: str) -> None:
    load(pg_url)
    check_engine(pg_url)


@pytest.mark.mariadb
def test_mariadb_compares_ids_exactly_under_a_case_blind_collation(mariadb_url: str) -> None:
    load(mariadb_url, case_blind=True)
    check_engine(mariadb_url)


def test_duckdb(sqlite_url: str, tmp_path: Any) -> None:
    """DuckDB reads the same SQL as the other engines over tables of the source's rows."""
    load(sqlite_url)
    con = duckdb.connect()
    try:
        for table in ("transactions", "refunds"):
            rows = _rows(sqlite_url, table)
            frame = pa.Table.from_pylist(
                [{k: _time(v) if k in ("paid_at", "refunded_at") else v for k, v in r.items()} for r in rows]
            )
            con.register(f"{table}_rows", frame)
            con.execute(f"create table {table} as select * from {table}_rows")
        for payment_date in (False, True):
            sql = source_totals_sql(PERIOD, payment_date_rates=payment_date, dialect="duckdb")
            actual = totals_table(con.execute(sql).fetchall())
            expected = reference(
                _rows(sqlite_url, "transactions"), _rows(sqlite_url, "refunds"), payment_date=payment_date
            )
            assert_same(actual, expected)
    finally:
        con.close()


def test_the_printed_sql_runs_by_hand(sqlite_url: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """`dac7 source-sql` prints the query a data engineer can run as it is."""
    import sqlite3
    from pathlib import Path

    from reporting.cli import main

    load(sqlite_url)
    config = tmp_path / "dac7.toml"
    repo = Path(__file__).resolve().parents[2]
    config.write_text((repo / "dac7.toml").read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["source-sql", "--dialect", "sqlite", "--year", str(YEAR), "--config", str(config)]) == 0
    sql = capsys.readouterr().out
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as con:
        actual = totals_table(con.execute(sql.rstrip().rstrip(";")).fetchall())
    expected = reference(_rows(sqlite_url, "transactions"), _rows(sqlite_url, "refunds"), payment_date=False)
    assert_same(actual, expected)


def test_an_arrow_result_gives_what_its_rows_give(sqlite_url: str) -> None:
    """Spark's ``toArrow`` and ADBC's types (an ``int`` quarter, large strings) become the schema's."""
    load(sqlite_url)
    expected = reference(_rows(sqlite_url, "transactions"), _rows(sqlite_url, "refunds"), payment_date=True)
    narrower = pa.table(
        {
            f.name: expected[f.name].cast(
                pa.int32() if f.name == "quarter" else pa.large_string() if f.type == pa.string() else f.type
            )
            for f in SOURCE_TOTALS_SCHEMA
        }
    )
    shuffled = narrower.take(list(reversed(range(narrower.num_rows))))
    assert_same(totals_from_arrow(shuffled), expected)
    assert_same(totals_table([tuple(r.values()) for r in shuffled.to_pylist()]), expected)


# --- a group's operators: each operator's transactions, summed where the data is -----------------

#: How the rows of a group's source name their operator (transactions.operator_id), in turn: none
#: (the default operator's), the default's id, a further operator's, the same with spaces around
#: it, and ids that name no operator of the configuration (other capitals, another id, a tab).
OPERATOR_VALUES = (None, "default", "lt2", " lt2 ", "", "LT2", "fr_sas", "lt2\t")
GROUP = ("default", "lt2")


def owner(value: Any) -> str | None:
    """The operator of a transaction by the contract's reading, in plain Python: trimmed of spaces
    (SQL's TRIM: a tab stays), compared exactly; None for no operator of the group."""
    text = value.strip(" ") if isinstance(value, str) else None
    if not text:
        return "default"
    return text if text in GROUP else None


def assign_operators(url: str) -> None:
    """Give every transaction of the loaded source an operator id, in turn, from OPERATOR_VALUES."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            ids = sorted(r[0] for r in conn.execute(sa.text("select transaction_id from transactions")))
            conn.execute(
                sa.text("update transactions set operator_id = :v where transaction_id = :t"),
                [{"t": t, "v": OPERATOR_VALUES[i % len(OPERATOR_VALUES)]} for i, t in enumerate(ids)],
            )
    finally:
        engine.dispose()


def check_operators(url: str) -> None:
    """Each operator's aggregates, summed by the engine, are those of its own transactions (and
    their refunds) recomputed in Python; the rows of no operator are what the unknown-operator
    query counts, and nothing is in two operators' sums."""
    from reporting.pushdown import ENGINE_DIALECTS, OperatorFilter

    transactions, refunds = _rows(url, "transactions"), _rows(url, "refunds")
    engine = make_engine(url)
    try:
        summed = 0
        for operator_id in GROUP:
            scope = OperatorFilter(operator_id, GROUP, column=True)
            mine = [t for t in transactions if owner(t["operator_id"]) == operator_id]
            assert mine, operator_id
            with engine.connect() as conn:
                actual = read_source_totals(conn, PERIOD, payment_date_rates=False, operator=scope)
            assert_same(actual, reference(mine, refunds, payment_date=False))
            summed += sum(actual["transactions"].to_pylist())
        with engine.connect() as conn:
            dialect = ENGINE_DIALECTS[conn.dialect.name]
            unknown = OperatorFilter("default", GROUP, column=True).unknown(
                OperatorFilter.value("operator_id", conn.dialect.name)
            )
            start, end = PERIOD.start_utc, PERIOD.paid_until_utc
            if dialect == "sqlite":
                start, end = _sqlite_time(start), _sqlite_time(end)  # type: ignore[assignment]
            n = conn.execute(
                sa.text(f"select count(*) from transactions where paid_at >= :s and paid_at < :e and {unknown}"),
                {"s": start, "e": end},
            ).scalar_one()
        in_period = [t for t in transactions if PERIOD.start_utc <= _time(t["paid_at"]) < PERIOD.paid_until_utc]
        assert n == sum(1 for t in in_period if owner(t["operator_id"]) is None) > 0
        assert summed + n == len(in_period)  # every transaction of the period once: an operator's, or none's
    finally:
        engine.dispose()


def test_sqlite_sums_each_operator_of_a_group_apart(sqlite_url: str) -> None:
    load(sqlite_url)
    assign_operators(sqlite_url)
    check_operators(sqlite_url)


@pytest.mark.pg
def test_postgresql_sums_each_operator_of_a_group_apart(pg_url: str) -> None:
    load(pg_url)
    assign_operators(pg_url)
    check_operators(pg_url)


@pytest.mark.mariadb
def test_mariadb_sums_each_operator_of_a_group_apart_under_a_case_blind_collation(mariadb_url: str) -> None:
    """'LT2' and 'lt2' are one text to a case-blind collation, never one operator."""
    load(mariadb_url, case_blind=True)
    assign_operators(mariadb_url)
    check_operators(mariadb_url)


def test_duckdb_sums_each_operator_of_a_group_apart(sqlite_url: str) -> None:
    """DuckDB reads the group's SQL as the other engines do: each operator's aggregates are those
    of its own transactions, and the rows of no operator are in no operator's."""
    from reporting.pushdown import OperatorFilter

    load(sqlite_url)
    assign_operators(sqlite_url)
    transactions, refunds = _rows(sqlite_url, "transactions"), _rows(sqlite_url, "refunds")
    con = duckdb.connect()
    try:
        for table, rows in (("transactions", transactions), ("refunds", refunds)):
            frame = pa.Table.from_pylist(
                [{k: _time(v) if k in ("paid_at", "refunded_at") else v for k, v in r.items()} for r in rows]
            )
            con.register(f"{table}_rows", frame)
            con.execute(f"create table {table} as select * from {table}_rows")
        summed = 0
        for operator_id in GROUP:
            scope = OperatorFilter(operator_id, GROUP, column=True)
            mine = [t for t in transactions if owner(t["operator_id"]) == operator_id]
            for payment_date in (False, True):
                sql = source_totals_sql(PERIOD, payment_date_rates=payment_date, dialect="duckdb", operator=scope)
                actual = totals_table(con.execute(sql).fetchall())
                assert_same(actual, reference(mine, refunds, payment_date=payment_date))
            summed += sum(actual["transactions"].to_pylist())
        unknown = OperatorFilter("default", GROUP, column=True).unknown(OperatorFilter.value("operator_id", "duckdb"))
        (n,) = con.execute(
            f"select count(*) from transactions where paid_at >= ? and paid_at < ? and {unknown}",
            [PERIOD.start_utc, PERIOD.paid_until_utc],
        ).fetchone()  # type: ignore[misc]
        in_period = [t for t in transactions if PERIOD.start_utc <= _time(t["paid_at"]) < PERIOD.paid_until_utc]
        assert n == sum(1 for t in in_period if owner(t["operator_id"]) is None) > 0
        assert summed + n == len(in_period)
    finally:
        con.close()


def test_the_printed_sql_of_one_operator_runs_by_hand(
    sqlite_url: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dac7 source-sql --operator lt2` prints the sum of lt2's transactions, as lt2's run makes it;
    an operator the configuration does not hold is refused with the operators it does."""
    import sqlite3
    from pathlib import Path

    from reporting.cli import main

    load(sqlite_url)
    assign_operators(sqlite_url)
    config = tmp_path / "dac7.toml"
    repo = Path(__file__).resolve().parents[2]
    group = '\n[operators.lt2]\nname = "Second Market UAB"\ntin = "305555555"\ntin_issued_by = "LT"\n'
    group += 'nexus = "RPONEX1"\n\n[operators.lt2.address]\ncity = "Kaunas"\ncountry = "LT"\n'
    config.write_text((repo / "dac7.toml").read_text(encoding="utf-8") + group, encoding="utf-8")
    transactions, refunds = _rows(sqlite_url, "transactions"), _rows(sqlite_url, "refunds")
    for operator_id in GROUP:
        argv = ["source-sql", "--dialect", "sqlite", "--year", str(YEAR), "--config", str(config)]
        assert main([*argv, "--operator", operator_id]) == 0
        sql = capsys.readouterr().out
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as con:
            actual = totals_table(con.execute(sql.rstrip().rstrip(";")).fetchall())
        mine = [t for t in transactions if owner(t["operator_id"]) == operator_id]
        assert_same(actual, reference(mine, refunds, payment_date=False))
    assert main([*argv, "--operator", "fr_sas"]) == 2
    err = capsys.readouterr().err
    assert "operator 'fr_sas' is not configured; the operators are: default, lt2" in err and "Traceback" not in err
    # without --operator: the whole group's sum, said on stderr (stdout stays the query)
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "sums the transactions of every operator of the group together" in printed.err
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as con:
        actual = totals_table(con.execute(printed.out.rstrip().rstrip(";")).fetchall())
    assert_same(actual, reference(transactions, refunds, payment_date=False))
