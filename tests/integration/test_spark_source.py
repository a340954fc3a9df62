"""Apache Spark (local mode) gives the same aggregates as the other engines
(tests/integration/test_source_aggregation.py): the demo marketplace and the edge rows, written
to Parquet by pyarrow, read as temporary views and as tables of a Spark catalog database, against
the recomputation in plain Python, for both rate bases.

Times are written both ways: naive (UTC without a zone, which Spark reads as TIMESTAMP_NTZ) and
zoned (TIMESTAMP, compared and turned into dates in the session's time zone). One session for
the module. Without Java (or pyspark) the tests are skipped, in CI they fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_source_aggregation import PERIOD, _rows, _time, assert_same, load, reference

from reporting.errors import SourceContractError
from reporting.spark_source import SparkUnavailableError, read_spark_totals, register_tables, spark_session

pytestmark = pytest.mark.spark

TABLES = ("transactions", "refunds")
_TIMES = {"transactions": "paid_at", "refunds": "refunded_at"}
_INTEGERS = ("amount_minor", "fee_minor", "tax_minor", "rented_days")


def _unavailable(exc: Exception) -> NoReturn:
    """Skip (locally) or fail (in CI) when Spark cannot start, as tests/conftest.py does for a
    database server that cannot be reached."""
    if os.environ.get("CI"):
        pytest.fail(f"{exc}; CI must run the Spark tests", pytrace=False)
    pytest.skip(f"{exc}; install it to run the Spark tests")


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        session = spark_session(warehouse_dir=tmp_path_factory.mktemp("spark-warehouse"))
    except SparkUnavailableError as exc:
        _unavailable(exc)
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The rows of the demo marketplace and the edge rows, as SQLite keeps them."""
    url = f"sqlite:///{tmp_path_factory.mktemp('spark-source') / 'source.db'}"
    load(url)
    return {table: _rows(url, table) for table in TABLES}


def _arrow(rows: list[dict[str, Any]], table: str, *, zoned: bool) -> pa.Table:
    """SQLite's rows as Arrow: times as datetimes (naive UTC, or zoned UTC), the amounts int64."""
    time = pa.timestamp("us", tz="UTC" if zoned else None)
    fields = []
    for name in rows[0]:
        kind = time if name == _TIMES[table] else pa.int64() if name in _INTEGERS else pa.string()
        fields.append(pa.field(name, kind))
    values = [{k: _time(v) if k == _TIMES[table] else v for k, v in r.items()} for r in rows]
    return pa.Table.from_pylist(values, schema=pa.schema(fields))


def _write(
    source: dict[str, list[dict[str, Any]]], tables_dir: Path, *, zoned: bool, drop: tuple[str, ...] = ()
) -> Path:
    """``<table>.parquet`` files for naive times, ``<table>/`` directories of two files for zoned
    ones: both layouts that register_tables reads. ``drop``: ``table.column`` or ``table``."""
    tables_dir.mkdir(parents=True, exist_ok=True)
    for table, rows in source.items():
        if table in drop:
            continue
        data = _arrow(rows, table, zoned=zoned)
        data = data.drop_columns([d.split(".")[1] for d in drop if d.startswith(f"{table}.")])
        if zoned:
            (tables_dir / table).mkdir()
            half = data.num_rows // 2
            pq.write_table(data.slice(0, half), tables_dir / table / "part-0.parquet")
            pq.write_table(data.slice(half), tables_dir / table / "part-1.parquet")
        else:
            pq.write_table(data, tables_dir / f"{table}.parquet")
    return tables_dir


def _check(spark: Any, source: dict[str, list[dict[str, Any]]], names: dict[str, str]) -> None:
    for payment_date in (False, True):
        actual = read_spark_totals(spark, PERIOD, payment_date_rates=payment_date, **names)
        expected = reference(source["transactions"], source["refunds"], payment_date=payment_date)
        assert_same(actual, expected)


@pytest.mark.parametrize("zoned", [False, True], ids=["timestamp_ntz", "timestamp"])
def test_parquet_tables_give_the_reference(
    spark: Any, source: dict[str, list[dict[str, Any]]], tmp_path: Path, zoned: bool
) -> None:
    names = register_tables(spark, tables_dir=_write(source, tmp_path / "tables", zoned=zoned))
    assert names == {"transactions": "transactions", "refunds": "refunds"}
    kinds = {spark.table(t).schema[_TIMES[t]].dataType.typeName() for t in TABLES}
    assert kinds == {"timestamp" if zoned else "timestamp_ntz"}
    # another session zone: the query runs in UTC all the same, and the zone is set back
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        _check(spark, source, names)
        assert spark.conf.get("spark.sql.session.timeZone") == "America/New_York"
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


def test_tables_of_a_catalog_database_give_the_reference(
    spark: Any, source: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    tables_dir = _write(source, tmp_path / "tables", zoned=False)
    spark.sql("create database dac7_source")
    try:
        for table in TABLES:
            spark.read.parquet(str(tables_dir / f"{table}.parquet")).write.saveAsTable(f"dac7_source.{table}")
        names = register_tables(spark, database="dac7_source")
        assert names == {"transactions": "dac7_source.transactions", "refunds": "dac7_source.refunds"}
        _check(spark, source, names)
    finally:
        spark.sql("drop database dac7_source cascade")


def test_a_missing_table_or_column_is_a_contract_error(
    spark: Any, source: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    tables_dir = _write(source, tmp_path / "tables", zoned=False, drop=("transactions.rented_days", "refunds"))
    with pytest.raises(SourceContractError) as caught:
        register_tables(spark, tables_dir=tables_dir)
    message = str(caught.value)
    assert "column transactions.rented_days" in message and "table refunds" in message
    assert "Traceback" not in message and caught.value.__cause__ is None
    spark.sql("create database dac7_empty")
    try:
        with pytest.raises(SourceContractError, match=r"missing table dac7_empty\.transactions, table dac7_empty\."):
            register_tables(spark, database="dac7_empty")
    finally:
        spark.sql("drop database dac7_empty cascade")


def test_without_pyspark_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(SparkUnavailableError, match=r"extra 'spark'"):
        spark_session()
