"""The extract through ADBC (the ``fast`` extra) writes what the DB-API extract writes, on the
demo marketplace in SQLite and in PostgreSQL (also with zoned payment times), and is the path
taken there: every table read as Arrow batches, none handed back to the DB-API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from builders import read_both_ways, write_config

from dac7_demo import generate_demo
from reporting import pipeline
from reporting.source import make_engine, sql_text
from reporting.stages import extract

pytest.importorskip("adbc_driver_sqlite", reason="the fast extra (ADBC) is not installed")
pytest.importorskip("adbc_driver_postgresql", reason="the fast extra (ADBC) is not installed")


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """Which tables the columnar path wrote, and which it handed back."""
    seen: dict[str, list[str]] = {"columnar": [], "handed back": []}
    original = extract._columnar_to_parquet

    def wrapped(source: extract.Columnar, table: str, *args: object) -> int:
        try:
            n = original(source, table, *args)  # type: ignore[arg-type]
        except extract.NotColumnar:
            seen["handed back"].append(table)
            raise
        seen["columnar"].append(table)
        return n

    monkeypatch.setattr(extract, "_columnar_to_parquet", wrapped)
    yield seen


def _extract(tmp_path: Path, url: str, name: str) -> Path:
    run_dir = pipeline.prepare(
        config_path=write_config(tmp_path / "dac7.toml"),
        year=2025,
        out_dir=tmp_path / f"out-{name}",
        as_of=date(2026, 1, 31),
        staging_root=tmp_path / f"staging-{name}",
        source_url=url,
        run_id="6f0e9d8c-7b6a-4594-8372-615f4e3d2c1b",
        timestamp=datetime(2026, 1, 15, 6),
    )
    pipeline.extract(run_dir, url)
    return Path(run_dir) / "extract"


def _content(folder: Path, table: str) -> pa.Table:
    """A table's rows in one order (PostgreSQL returns them in any)."""
    t = pq.read_table(folder / f"{table}.parquet")
    return t.sort_by([(name, "ascending") for name in t.column_names])


def _assert_same_extract(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _extract(tmp_path, url, "fast")
    monkeypatch.setenv(extract.COLUMNAR_ENV, "0")
    plain = _extract(tmp_path, url, "plain")
    written = sorted(p.name for p in plain.glob("*.parquet"))
    assert written == sorted(p.name for p in fast.glob("*.parquet"))
    for name in written:
        table = name.removesuffix(".parquet")
        a, b = _content(plain, table), _content(fast, table)
        assert a.schema == b.schema, table
        assert a.num_rows == b.num_rows and a.equals(b), table  # no values in the message


COLUMNAR_TABLES = [t for t in extract.TABLES if t != "fx_rates"]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_columnar_extract_is_the_db_api_extract(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    counted: dict[str, list[str]],
    request: pytest.FixtureRequest,
    engine: str,
) -> None:
    url = f"sqlite:///{tmp_path / 'source.db'}" if engine == "sqlite" else request.getfixturevalue("pg_url")
    generate_demo(url, sellers=300, seed=3, year=2025)
    _assert_same_extract(tmp_path, url, monkeypatch)
    assert sorted(counted["columnar"]) == sorted(COLUMNAR_TABLES)
    assert counted["handed back"] == []


def test_postgresql_zoned_times_and_small_integers_are_read_alike(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, counted: dict[str, list[str]]
) -> None:
    """timestamptz payment and refund times (read in the UTC session, written as UTC wall
    time) and a SMALLINT column give the DB-API's values."""
    generate_demo(pg_url, sellers=200, seed=5, year=2025)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'Europe/Vilnius'")
        conn.exec_driver_sql(
            "ALTER TABLE transactions ALTER COLUMN paid_at TYPE timestamptz USING paid_at AT TIME ZONE 'UTC'"
        )
        conn.exec_driver_sql(
            "ALTER TABLE refunds ALTER COLUMN refunded_at TYPE timestamptz USING refunded_at AT TIME ZONE 'UTC'"
        )
        conn.exec_driver_sql("ALTER TABLE transactions ALTER COLUMN rented_days TYPE smallint")
    engine.dispose()
    _assert_same_extract(tmp_path, pg_url, monkeypatch)
    assert "transactions" in counted["columnar"] and counted["handed back"] == []


@pytest.mark.parametrize(
    ("table", "ddl"),
    [
        ("refunds", "ALTER TABLE refunds ALTER COLUMN amount_minor TYPE money USING amount_minor::numeric::money"),
        ("sellers", "ALTER TABLE sellers ALTER COLUMN residence_country TYPE name"),
    ],
)
def test_a_postgresql_type_of_its_own_is_handed_back(
    tmp_path: Path, pg_url: str, counted: dict[str, list[str]], table: str, ddl: str
) -> None:
    """money arrives from ADBC as an integer of cents but from psycopg as text ('$1.50'): only the
    types whose values both read alike are the columnar path's."""
    generate_demo(pg_url, sellers=60, seed=4, year=2025)
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(ddl)
    sql = sql_text(f"extract_{table}.sql").replace("{optional_columns}", "")
    params = {"period_start": datetime(2024, 12, 31, 22), "period_end": datetime(2025, 12, 31, 22)}
    engine.dispose()
    plain_table, plain, fast_table, fast = read_both_ways(pg_url, table, sql, params, tmp_path)
    assert counted["handed back"] == [table]
    key = extract.TABLES[table][0][0]
    assert plain_table.sort_by(key).equals(fast_table.sort_by(key))
    assert sorted(fast, key=repr) == sorted(plain, key=repr)


def test_an_infinite_refund_time_stops_the_extract_as_through_the_db_api(
    tmp_path: Path, pg_url: str, counted: dict[str, list[str]]
) -> None:
    """'infinity' is no time Python can hold: the DB-API read refuses it, and the columnar read
    hands the table back instead of writing a time far in the past."""
    generate_demo(pg_url, sellers=60, seed=4, year=2025)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE refunds SET refunded_at = 'infinity' WHERE refund_id = (SELECT min(refund_id) FROM refunds)"
        )
    engine.dispose()
    with pytest.raises(Exception, match=r"(?i)timestamp|infinity|year"):
        _extract(tmp_path, pg_url, "fast")
    assert counted["handed back"] == ["refunds"]


def test_a_column_of_another_type_is_handed_back_and_read_alike(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, counted: dict[str, list[str]]
) -> None:
    """An amount kept as NUMERIC (Decimal through the DB-API) is not the columnar path's: the
    table is read through the DB-API, with the same result."""
    generate_demo(pg_url, sellers=100, seed=9, year=2025)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE refunds ALTER COLUMN amount_minor TYPE numeric(20, 0)")
    engine.dispose()
    _assert_same_extract(tmp_path, pg_url, monkeypatch)
    assert counted["handed back"] == ["refunds"]
