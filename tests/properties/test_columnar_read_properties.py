"""The columnar read of a SQLite source (ADBC, the ``fast`` extra) writes what the DB-API read
writes, for any mix of SQLite storage classes in any column (Hypothesis).

SQLite keeps each value's own storage class whatever the column's declared type: a seller id
may be an INTEGER in one row and TEXT in the next, an amount a REAL, a time a BLOB. The DB-API
path converts each value by the contract's rules and names every value it cannot read; the
columnar path takes only what it reads exactly the same way and hands the rest of the table to
the DB-API path. The property: whatever the rows, both write equal Parquet content and give the
same findings. Batches of a few rows make the driver's per-batch type inference change
between batches (a column of NULLs first, text later; integers first, text later).
"""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from builders import read_both_ways
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.findings import Finding
from reporting.stages import extract

pytest.importorskip("adbc_driver_sqlite", reason="the fast extra (ADBC) is not installed")

TEXT = st.one_of(
    st.sampled_from(["S1", " S1 ", "s1", "", "  ", "EUR", " eur", "goods", "LT", "x\ty", "ąžuolas", "0012", "ß", "ﬁ"]),
    st.text(max_size=6),
)
TIMES = st.sampled_from(
    [
        20250301,
        "2025-03-01 10:00:00",
        " 2025-03-01 10:00:00 ",
        "2025-03-01 10:00:00.123456",
        "2025-03-01",
        "2025-02-30 10:00:00",
        "2025-03-01T10:00:00",
        "2025-03-01 10:00:00+02:00",
        "yesterday",
        "",
    ]
)
DATES = st.sampled_from(
    ["1980-05-17", " 1980-05-17", "1980-05-17 00:00:00", "19800517", 19800517, "1980-02-30", "", "x"]
)
INTEGERS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-5, 5))
ODD = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32), st.binary(max_size=4), st.just(2**70 * 1.0))
BY_CONVERTER: dict[Any, st.SearchStrategy[Any]] = {
    extract._text: TEXT,
    extract._code: TEXT,
    extract._ts: TIMES,
    extract._date: DATES,
    extract._int: INTEGERS,
    extract._bool: st.one_of(st.integers(-1, 2), st.sampled_from(["1", "0", "true", "no", "T", ""])),
}


def cell(conv: Any) -> st.SearchStrategy[Any]:
    """A value of the column's own kind mostly, else of any other kind or NULL."""
    others = st.one_of(TEXT, INTEGERS, ODD, TIMES)
    return st.one_of(st.none(), BY_CONVERTER[conv], BY_CONVERTER[conv], BY_CONVERTER[conv], others)


def table_rows(table: str) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    row = st.tuples(*(cell(conv) for _, _, conv in extract.TABLES[table]))
    clean = st.tuples(*(BY_CONVERTER[conv] for _, _, conv in extract.TABLES[table]))
    # mostly clean rows (the columnar path's own case), some of any kind
    return st.lists(st.one_of(clean, clean, row), max_size=14)


def _write(path: Path, table: str, rows: list[tuple[Any, ...]], declared: bool) -> None:
    spec = extract.TABLES[table]
    con = sqlite3.connect(path)
    try:
        kinds = {extract._int: "INTEGER", extract._bool: "INTEGER"}
        columns = ", ".join(f"{name} {kinds.get(conv, 'TEXT') if declared else ''}" for name, _, conv in spec)
        con.execute(f"create table {table} ({columns})")
        con.executemany(f"insert into {table} values ({', '.join('?' * len(spec))})", rows)
        con.commit()
    finally:
        con.close()


def _both(path: Path, table: str, tmp: Path) -> tuple[Any, list[Finding], Any, list[Finding]]:
    columns = ", ".join(name for name, _, _ in extract.TABLES[table])
    sql = f"-- {table}: every row\nselect {columns}\nfrom {table}\nwhere :one = 1 and :two = 2 and 1 = :one"
    return read_both_ways(f"sqlite:///{path}", table, sql, {"one": 1, "two": 2}, tmp)


@pytest.mark.parametrize("table", ["transactions", "sellers", "refunds"])
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],  # setattr per example
)
@given(data=st.data(), declared=st.booleans())
def test_the_columnar_read_writes_what_the_row_read_writes(
    table: str, data: st.DataObject, declared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = data.draw(table_rows(table))
    monkeypatch.setattr(extract, "BATCH_ROWS", data.draw(st.sampled_from([2, 3, 50_000])))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _write(tmp / "source.db", table, rows, declared)
        plain, plain_findings, fast, fast_findings = _both(tmp / "source.db", table, tmp)
    assert fast.equals(plain)
    assert fast_findings == plain_findings


def test_clean_rows_are_read_by_the_columnar_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path is taken where the data allows it (else the property above proves little)."""
    rows = [
        (f" T{i} ", f"S{i % 3}", "goods", None, f"2025-0{1 + i % 9}-01 10:00:00", "eur", 100 * i, 5, None, None)
        for i in range(10)
    ]
    _write(tmp_path / "source.db", "transactions", rows, declared=True)
    called: list[str] = []
    monkeypatch.setattr(extract, "to_batch", lambda *a, **k: called.append("rows") or pytest.fail("row path"))
    plain_free = _both_fast_only(tmp_path / "source.db", tmp_path)
    assert plain_free.num_rows == 10
    assert plain_free.column("transaction_id").to_pylist()[0] == "T0"
    assert plain_free.column("currency").to_pylist() == ["EUR"] * 10
    assert plain_free.column("paid_at").to_pylist()[0] == datetime(2025, 1, 1, 10)
    assert called == []


def _both_fast_only(path: Path, tmp: Path) -> Any:
    columns = ", ".join(name for name, _, _ in extract.TABLES["transactions"])
    columnar = extract.columnar_connection(sa.engine.make_url(f"sqlite:///{path}"))
    assert columnar is not None
    try:
        n = extract._columnar_to_parquet(
            columnar, "transactions", f"select {columns} from transactions", {}, tmp / "f.pq"
        )
    finally:
        columnar.close()
    assert n == 10
    return pq.read_table(tmp / "f.pq")


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///x.db?mode=ro", "postgresql://u@localhost/db"]
)
def test_other_sources_are_read_through_the_db_api(url: str) -> None:
    assert extract.columnar_connection(sa.engine.make_url(url)) is None
