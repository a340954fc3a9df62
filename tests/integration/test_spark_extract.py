"""A run whose tables Apache Spark reads (``[source.spark]``, local mode) publishes byte for byte
the files that a run over the same rows in SQLite publishes, for the same run id and timestamp,
and decides, quarantines and stops on bad rows exactly as it: the tables as Parquet (a file or a
folder per table, naive and zoned times) and as tables of a Spark catalog database, summed at
home (``aggregate = "local"``: every row read as Arrow) and by Spark (``aggregate = "source"``).

One Spark session for the module: a run reuses the session of its process. Without Java (or
pyspark) the tests are skipped, in CI they fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config
from test_pushdown_extract import AS_OF, RUN_ID, TIMESTAMP, _bad, _market
from test_spark_source import _unavailable

from dac7_demo import generate_demo
from reporting.errors import DataError, SourceContractError
from reporting.pipeline import run
from reporting.source import CONTRACT, OPTIONAL_COLUMNS, ddl_statements, make_engine, sql_text
from reporting.spark_source import SparkUnavailableError, spark_session
from reporting.stages import extract
from reporting.stages import extract_spark as spark_extract
from reporting.stages.extract_spark import spark_sql

pytestmark = pytest.mark.spark

#: the contract's types as a warehouse would keep them (sql/source_schema.sql); text otherwise
_TYPES: dict[str, pa.DataType] = {
    "birth_date": pa.date32(),
    "rate_date": pa.date32(),
    "is_governmental": pa.bool_(),
    "is_listed": pa.bool_(),
    "paid_at": pa.timestamp("us"),
    "refunded_at": pa.timestamp("us"),
    "amount_minor": pa.int64(),
    "fee_minor": pa.int64(),
    "tax_minor": pa.int64(),
    "rented_days": pa.int32(),
    "units_per_eur": pa.decimal128(20, 8),
}


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


def write_sqlite(rows: dict[str, list[dict[str, Any]]], url: str) -> str:
    """The rows in SQLite tables of the contract's columns without its constraints (NULLs and
    duplicate keys reach the checks, as from Parquet), rates as text."""
    engine = make_engine(url)
    try:
        ddl = re.sub(r",\s*PRIMARY KEY \([^)]*\)", "", sql_text("source_schema.sql"))
        ddl = ddl.replace("NOT NULL", "").replace("PRIMARY KEY", "").replace("DECIMAL(20, 8)", "TEXT")
        with engine.begin() as conn:
            for stmt in ddl_statements(ddl):
                conn.exec_driver_sql(stmt)
            meta = sa.MetaData()
            meta.reflect(conn)
            for table, table_rows in rows.items():
                if table_rows:
                    conn.execute(meta.tables[table].insert(), table_rows)
    finally:
        engine.dispose()
    return url


def read_sqlite(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the contract's tables, typed by the reflected columns (times, dates, booleans)."""
    engine = make_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {t: [dict(r._mapping) for r in conn.execute(meta.tables[t].select())] for t in CONTRACT}
    finally:
        engine.dispose()


def write_parquet(
    rows: dict[str, list[dict[str, Any]]], folder: Path, *, zoned: tuple[str, ...] = (), text: tuple[str, ...] = ()
) -> Path:
    """One Parquet dataset per table: ``<table>.parquet``, or, for the tables in ``zoned``, a
    folder ``<table>/`` of two files with zoned times (TIMESTAMP in Spark, not TIMESTAMP_NTZ);
    the columns named in ``text`` as text, whatever the contract's type."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in CONTRACT:
        names = [*CONTRACT[table], *OPTIONAL_COLUMNS.get(table, ())]
        fields = []
        for name in names:
            kind = pa.string() if name in text else _TYPES.get(name, pa.string())
            if table in zoned and pa.types.is_timestamp(kind):
                kind = pa.timestamp("us", tz="UTC")
            fields.append(pa.field(name, kind))
        schema = pa.schema(fields)
        values = [
            {
                n: Decimal(r[n])
                if n == "units_per_eur" and r.get(n) is not None
                else str(r[n])
                if n in text and r.get(n) is not None
                else r.get(n)
                for n in names
            }
            for r in rows[table]
        ]
        data = pa.Table.from_pylist(values, schema=schema)
        if table in zoned:
            (folder / table).mkdir()
            half = data.num_rows // 2
            pq.write_table(data.slice(0, half), folder / table / "part-0.parquet")
            pq.write_table(data.slice(half), folder / table / "part-1.parquet")
        else:
            pq.write_table(data, folder / f"{table}.parquet")
    return folder


def save_as_catalog(spark: Any, folder: Path, database: str) -> str:
    """The Parquet tables of ``folder`` as the tables of a database of Spark's catalog."""
    spark.sql(f"create database {database}")
    for table in CONTRACT:
        path = folder / table if (folder / table).is_dir() else folder / f"{table}.parquet"
        spark.read.parquet(str(path)).write.saveAsTable(f"{database}.{table}")
    return database


def run_once(tmp_path: Path, name: str, *, url: str | None = None, spark: str = "", aggregate: str = "local") -> dict:
    """A whole run: what it published and staged, or the findings that stopped it."""
    extra = f'\n[source]\naggregate = "{aggregate}"\n' + (f"\n[source.spark]\n{spark}\n" if spark else "")
    config = write_config(tmp_path / f"{name}.toml", extra=extra)
    out = tmp_path / f"out-{name}"
    try:
        manifest = run(
            config_path=config,
            source_url=url,
            year=2025,
            as_of=AS_OF,
            out_dir=out,
            staging_root=tmp_path / f"st-{name}",
            run_id=RUN_ID,
            timestamp=TIMESTAMP,
            ledger_url=f"sqlite:///{tmp_path}/ledger-{name}.sqlite3",
        ).manifest
    except DataError as exc:
        return {"findings": sorted((f.rule, f.table, f.key, f.seller_id or "", f.message) for f in exc.findings)}
    run_dir = next((tmp_path / f"st-{name}").iterdir())
    extract = json.loads((run_dir / "extract" / "extract.json").read_text())
    published = {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "manifest.json"  # the manifests (also runs/<run>/): timings and paths differ
    }
    return {
        "files": [(f["file"], f["sha256"]) for f in manifest["files"]],
        "published": published,
        "summary": manifest["summary"],
        "quarantine": sorted(pq.read_table(run_dir / "extract" / "quarantine_extract.parquet").to_pylist(), key=repr),
        "decisions": sorted(pq.read_table(run_dir / "rules" / "decisions.parquet").to_pylist(), key=repr),
        "totals": pq.read_table(run_dir / "aggregate" / "activity_totals.parquet").to_pylist(),
        "counts": extract["counts"],
        "control": extract["control_counts"],
        "extract": {
            t: sorted(pq.read_table(run_dir / "extract" / f"{t}.parquet").to_pylist(), key=repr)
            for t in ("sellers", "seller_tins", "property_listings", "fx_rates")
        },
        "source": extract["source"],
        "at_source": extract.get("aggregated_at_source"),
    }


def assert_same(spark_run: dict, sqlite_run: dict) -> None:
    spark_run, sqlite_run = dict(spark_run), dict(sqlite_run)
    for key in ("source", "at_source"):
        spark_run.pop(key, None)
        sqlite_run.pop(key, None)
    assert spark_run.keys() == sqlite_run.keys()
    for key in sqlite_run:
        assert spark_run[key] == sqlite_run[key], key


def test_extract_queries_in_sparks_sql() -> None:
    sql = spark_sql(
        sql_text("extract_refunds.sql"),
        {"period_start": datetime(2024, 12, 31, 22), "period_end": datetime(2025, 12, 31, 22)},
        {"refunds": "refunds", "transactions": "lake.dac7.transactions"},
    )
    assert "FROM refunds AS r" in sql and "FROM lake.dac7.transactions AS t" in sql
    assert "CAST('2024-12-31 22:00:00' AS TIMESTAMP)" in sql and ":period" not in sql
    rates = spark_sql(sql_text("extract_fx_rates.sql"), {"last_rate_date": date(2025, 12, 31)}, {})
    assert "rate_date <= CAST('2025-12-31' AS DATE)" in rates
    with pytest.raises(ValueError, match=r":period_end has no value"):
        spark_sql(sql_text("count_transactions.sql"), {"period_start": datetime(2025, 1, 1)}, {})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The demo marketplace in SQLite, as Parquet (transactions with zoned times, in a folder),
    and the SQLite run over it."""
    folder = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{folder / 'source.db'}"
    generate_demo(url, sellers=120, seed=11, year=2025)
    tables = write_parquet(read_sqlite(url), folder / "tables", zoned=("transactions",))
    return tables, run_once(folder, "sqlite", url=url)


@pytest.mark.parametrize("aggregate", ["local", "source"])
def test_parquet_tables_publish_what_sqlite_publishes(
    spark: Any, demo: tuple[Path, dict], tmp_path: Path, aggregate: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables, expected = demo
    one_by_one: list[str] = []
    by_value = extract.to_batch

    def recorded(rows: Any, spec: Any, index: Any, schema: Any, table: str, findings: Any) -> Any:
        one_by_one.append(table)
        return by_value(rows, spec, index, schema, table, findings)

    monkeypatch.setattr(extract, "to_batch", recorded)
    result = run_once(tmp_path, "spark", spark=f'tables = "{tables}"', aggregate=aggregate)
    assert_same(result, expected)
    assert one_by_one == [], "clean tables are converted column by column, with no Python object per value"
    assert result["published"] and result["source"] == f"Apache Spark: Parquet tables in {tables}"
    if aggregate == "source":
        at_source = result["at_source"]
        assert at_source["transactions"] + at_source["read_transactions"] == expected["counts"]["transactions"]
        assert at_source["transactions"] > at_source["read_transactions"]
    else:
        assert result["at_source"] is None
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert not spark.catalog.tableExists("transactions"), "the run's temporary views are dropped"


def test_tables_of_a_catalog_database_publish_what_sqlite_publishes(
    spark: Any, demo: tuple[Path, dict], tmp_path: Path
) -> None:
    """Summed by Spark: every query of the run, the extract's and the aggregation's, names the
    tables as ``database.table``."""
    tables, expected = demo
    database = save_as_catalog(spark, tables, "dac7_catalog")
    try:
        result = run_once(tmp_path, "catalog", spark=f'database = "{database}"', aggregate="source")
    finally:
        spark.sql(f"drop database {database} cascade")
    assert_same(result, expected)
    assert result["at_source"] is not None, "summed by Spark, not read and summed here"
    assert result["source"] == f"Apache Spark: the Spark database {database}"


def _bad_rows(data: str) -> Marketplace:
    """``quarantined``: every bad row a check quarantines its seller for (an unknown currency, a
    refund larger than its transaction, a missing activity ...); ``no_seller``: a transaction
    whose seller_id is NULL, and ``duplicate_id``: a transaction id twice, which stop the run."""
    m = _market()
    if data == "quarantined":
        return _bad(m)
    m.seller("BAD")
    t = m.sales("BAD", 30, 10_00)
    if data == "duplicate_id":
        m.tx("BAD", "2025-09-09 09:09:09", 5_00, transaction_id=t[3])
    else:
        m.tx(None, "2025-09-10 09:09:09", 10_00)  # type: ignore[arg-type]
    return m


@pytest.mark.parametrize("data", ["quarantined", "no_seller", "duplicate_id"])
def test_bad_rows_give_the_findings_sqlite_gives(spark: Any, tmp_path: Path, data: str) -> None:
    m = _bad_rows(data)
    expected = run_once(tmp_path, "sqlite", url=write_sqlite(m.rows, f"sqlite:///{tmp_path}/source.db"))
    tables = write_parquet(m.rows, tmp_path / "tables")
    for aggregate in ("local", "source"):
        result = run_once(tmp_path, f"spark-{aggregate}", spark=f'tables = "{tables}"', aggregate=aggregate)
        assert_same(result, expected)
        if aggregate == "source" and "findings" not in result:  # a run stopped by its findings sums nothing
            assert result["at_source"] is not None, "summed by Spark, not read and summed here"
    if data == "quarantined":
        quarantined = {d["seller_id"] for d in expected["decisions"] if d["decision"].startswith("quarantined")}
        assert {"CUR", "REFX", "REFSUM", "NOACT", "REFNULL"} <= quarantined
        assert not quarantined & {"OK1", "OK2", "OK3", "FX", "SP", "EDGE", "HOST"}
    else:
        rule = "not_be_null.seller_id" if data == "no_seller" else "be_unique.transaction_id"
        assert [f[0] for f in expected["findings"]] == [f"gx.expect_column_values_to_{rule}"]


def test_values_the_columnar_rules_do_not_take_are_read_one_by_one(spark: Any, tmp_path: Path) -> None:
    """Amounts kept as floats: the table is read value by value, as the DB-API read does, and
    each value that is no integer is a finding naming its row, never the value."""
    rows = [
        ("T1", "S1", "sale_of_goods", datetime(2025, 5, 1, 10), "eur ", 100.0),
        ("T2", "S2", None, None, None, None),
    ]
    frame = spark.createDataFrame(
        rows,
        "transaction_id string, seller_id string, activity string, paid_at timestamp_ntz, currency string, "
        "amount_minor double",
    )
    findings: list[Any] = []
    assert spark_extract._to_parquet(frame, "transactions", tmp_path / "t.parquet", findings) == 2
    written = pq.read_table(tmp_path / "t.parquet")
    assert written.schema == pa.schema([(n, t) for n, t, _ in extract.TABLES["transactions"]])
    assert written.column("currency").to_pylist() == ["EUR", None]
    assert written.column("amount_minor").to_pylist() == [None, None]
    assert [(f.rule, f.key, f.seller_id) for f in findings] == [("source.unreadable_value", "T1", "S1")]
    assert "amount_minor cannot be read as int64" in findings[0].message and "100" not in findings[0].message


def test_a_missing_table_or_a_delta_folder_is_refused(spark: Any, tmp_path: Path) -> None:
    m = _market()
    tables = write_parquet(m.rows, tmp_path / "tables")
    (tables / "refunds.parquet").unlink()
    with pytest.raises(SourceContractError, match=r"Parquet tables in .* missing table refunds \(neither refunds/"):
        run_once(tmp_path, "missing", spark=f'tables = "{tables}"')
    write_parquet({t: m.rows[t] for t in CONTRACT}, tmp_path / "delta", zoned=("refunds",))
    (tmp_path / "delta" / "refunds" / "_delta_log").mkdir()
    with pytest.raises(SourceContractError, match=r"table refunds: .* is a Delta table"):
        run_once(tmp_path, "delta", spark=f'tables = "{tmp_path / "delta"}"')


#: [source.spark] of a run in a process of its own: a master and a setting of the operator's
SPARK_OWN = 'tables = "{tables}"\nmaster = "local[1]"\n\n[source.spark.conf]\n"spark.sql.shuffle.partitions" = 3'


@pytest.mark.slow
def test_a_process_without_spark_starts_and_stops_its_own(spark: Any, demo: tuple[Path, dict], tmp_path: Path) -> None:
    """The run of an Airflow task: no session in the process, so the extract starts one with
    [source.spark]'s master and settings, and stops it (``spark``: Java and pyspark are there)."""
    tables, expected = demo
    script = tmp_path / "run.py"
    script.write_text(
        "import json\n"
        "from pathlib import Path\n"
        "from pyspark.sql import SparkSession\n"
        "from test_spark_extract import run_once\n"
        f"result = run_once(Path({str(tmp_path)!r}), 'own', spark={SPARK_OWN.format(tables=tables)!r})\n"
        "assert SparkSession.getActiveSession() is None, 'the session is stopped'\n"
        "print(json.dumps(result, default=str))\n",
        encoding="utf-8",
    )
    here = [str(Path(__file__).parent), str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in here if p)},
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["published"] == expected["published"]
    assert result["counts"] == expected["counts"]


def test_a_table_is_streamed_through_parquet_files_never_collected(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark writes the rows as Parquet into an owner-only folder of the staging area, read back
    batch by batch (never ``toArrow``, which collects a table into the driver and this process),
    zoned and naive times as UTC; the folder is removed afterwards, also when the query fails."""
    from pyspark.sql import DataFrame

    def collected(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a table's rows are collected at once")

    monkeypatch.setattr(DataFrame, "toArrow", collected)
    monkeypatch.setattr(extract, "BATCH_ROWS", 2)
    seen: list[tuple[int, int]] = []
    columnar = extract.columnar_batch

    def recorded(batch: Any, *args: Any) -> Any:
        seen.append((batch.num_rows, (tmp_path / ".spark-transactions").stat().st_mode & 0o777))
        return columnar(batch, *args)

    monkeypatch.setattr(extract, "columnar_batch", recorded)
    spark.conf.set("spark.sql.session.timeZone", "Europe/Berlin")  # times are written as UTC whatever the zone
    try:
        for kind in ("timestamp", "timestamp_ntz"):
            frame = spark.sql(
                "select concat('T', id) as TRANSACTION_ID, 'S1' as seller_id, 'sale_of_goods' as activity, "
                f"cast(concat('2025-05-0', id, ' 10:00:00') as {kind}) as paid_at, 'EUR' as currency, "
                "cast(id * 100 as bigint) as amount_minor from range(1, 6) order by id"
            ).repartition(2)
            seen.clear()
            assert spark_extract._to_parquet(frame, "transactions", tmp_path / "t.parquet", []) == 5
            written = pq.read_table(tmp_path / "t.parquet")
            assert sorted(written.column("transaction_id").to_pylist()) == ["T1", "T2", "T3", "T4", "T5"]
            hour = 8 if kind == "timestamp" else 10  # a zoned 10:00 in Berlin is 08:00 UTC; a naive time stays
            assert sorted(written.column("paid_at").to_pylist()) == [datetime(2025, 5, d, hour) for d in range(1, 6)]
            assert max(n for n, _ in seen) <= 2 and sum(n for n, _ in seen) == 5
            assert {mode for _, mode in seen} == {0o700}
            assert not (tmp_path / ".spark-transactions").exists()
        failing = spark.sql("select raise_error('no') as transaction_id")
        with pytest.raises(Exception, match="no"):
            spark_extract._to_parquet(failing, "transactions", tmp_path / "f.parquet", [])
        assert not (tmp_path / ".spark-transactions").exists() and not (tmp_path / "f.parquet").exists()
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


@pytest.mark.parametrize("ansi", ["true", "false"])
def test_times_kept_as_text_are_refused_before_any_query(spark: Any, tmp_path: Path, ansi: str) -> None:
    """A time or date of the contract kept as text is refused, whatever ``aggregate`` and ANSI mode
    say: Spark would cast it, stopping on a value it cannot read with that value in its error and
    log (ANSI) or dropping the row without a word (ANSI off). The refusal names the columns and
    their types, never a value."""
    m = _market()
    rows = {t: [dict(r) for r in m.rows[t]] for t in CONTRACT}
    rows["transactions"][0]["paid_at"] = "Anna Secret 1970"
    rows["refunds"] = [{**r, "refunded_at": str(r["refunded_at"])} for r in rows["refunds"]]
    tables = write_parquet(rows, tmp_path / "tables", text=("paid_at", "refunded_at", "rate_date"))
    before = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", ansi)
    try:
        for aggregate in ("local", "source"):
            with pytest.raises(SourceContractError) as refused:
                run_once(tmp_path, f"text-{aggregate}", spark=f'tables = "{tables}"', aggregate=aggregate)
            message = str(refused.value)
            assert "transactions.paid_at is string, not a TIMESTAMP or TIMESTAMP_NTZ" in message
            assert "refunds.refunded_at is string" in message and "fx_rates.rate_date is string, not a DATE" in message
            assert "Anna" not in message and "sellers.birth_date" not in message
    finally:
        spark.conf.set("spark.sql.ansi.enabled", before)


# --- a group's operators: Spark reads and sums each operator's transactions apart --------------


def group_once(tmp_path: Path, name: str, *, url: str | None = None, spark: str = "", aggregate: str = "local") -> dict:
    """A group's run (the default operator and lt2): per operator, what it filed and decided."""
    from test_pushdown_extract import LT2

    extra = f'\n[source]\naggregate = "{aggregate}"\n' + (f"\n[source.spark]\n{spark}\n" if spark else "") + LT2
    config = write_config(tmp_path / f"{name}.toml", extra=extra)
    result = run(
        config_path=config,
        source_url=url,
        year=2025,
        as_of=AS_OF,
        out_dir=tmp_path / f"out-{name}",
        staging_root=tmp_path / f"st-{name}",
        run_id=RUN_ID,
        timestamp=TIMESTAMP,
        ledger_url=f"sqlite:///{tmp_path}/ledger-{name}.sqlite3",
    )
    out = {}
    for one in result.operators:
        run_dir = Path(one.run_dir)
        out[one.operator_id] = {
            "files": [(f["file"], f["sha256"]) for f in one.manifest["files"]],
            "summary": one.manifest["summary"],
            "decisions": sorted(pq.read_table(run_dir / "rules" / "decisions.parquet").to_pylist(), key=repr),
            "totals": pq.read_table(run_dir / "aggregate" / "activity_totals.parquet").to_pylist(),
            "control": json.loads((run_dir / "extract" / "extract.json").read_text())["control_counts"],
        }
    return out


def test_a_group_run_reads_and_sums_each_operator_apart_as_sqlite_does(spark: Any, tmp_path: Path) -> None:
    from test_pushdown_extract import _split

    m = _split(_bad(_market()))
    expected = group_once(tmp_path, "sqlite", url=write_sqlite(m.rows, f"sqlite:///{tmp_path}/source.db"))
    assert expected.keys() == {"default", "lt2"}
    assert all(expected[op]["summary"]["transactions_read"] for op in expected)
    tables = write_parquet(m.rows, tmp_path / "tables", zoned=("transactions",))
    for aggregate in ("local", "source"):
        assert group_once(tmp_path, f"spark-{aggregate}", spark=f'tables = "{tables}"', aggregate=aggregate) == expected


def test_a_key_two_operators_hold_stops_the_group_run_in_spark_too(spark: Any, tmp_path: Path) -> None:
    from test_pushdown_extract import _shared_key, _split

    tables = write_parquet(_shared_key(_split(_market())).rows, tmp_path / "tables", zoned=("transactions",))
    for aggregate in ("local", "source"):
        with pytest.raises(DataError) as raised:
            group_once(tmp_path, f"shared-{aggregate}", spark=f'tables = "{tables}"', aggregate=aggregate)
        shared = [(f.rule, f.key) for f in raised.value.findings if "operators" in f.rule]
        assert shared == [("transaction.key_across_operators", "DUP")], aggregate
