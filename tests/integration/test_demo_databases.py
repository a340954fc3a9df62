"""The demo marketplace is the same on PostgreSQL and MariaDB as on SQLite, row for row."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from dac7_demo import generate_demo
from reporting.errors import SourceError
from reporting.source import CONTRACT, OPTIONAL_COLUMNS, make_engine

ARGS = {"sellers": 300, "seed": 7, "year": 2025}
COLUMNS = {t: CONTRACT[t] + OPTIONAL_COLUMNS.get(t, ()) for t in CONTRACT}


def normalise(value: Any) -> Any:
    """One spelling per value whatever the driver returns."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        raise AssertionError(f"a float came back from the database: {value!r}")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def read_all(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(url)
    try:
        out = {}
        with engine.connect() as conn:
            for table, cols in COLUMNS.items():
                result = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM {table}"))
                rows = [tuple(normalise(v) for v in row) for row in result]
                out[table] = sorted(rows, key=repr)
        return out
    finally:
        engine.dispose()


def sqlite_reference(url: str) -> dict[str, list[tuple[Any, ...]]]:
    counts = generate_demo(url, **ARGS)
    content = read_all(url)
    # rates are TEXT in SQLite; the other databases give DECIMAL(20, 8)
    content["fx_rates"] = sorted(
        ((c, d, format(Decimal(r).normalize(), "f")) for c, d, r in content["fx_rates"]), key=repr
    )
    assert {t: len(rows) for t, rows in content.items()} == counts
    return content


def assert_same(actual: dict[str, list[tuple[Any, ...]]], expected: dict[str, list[tuple[Any, ...]]]) -> None:
    for table in COLUMNS:
        assert len(actual[table]) == len(expected[table]), table
        for a, e in zip(actual[table], expected[table], strict=True):
            assert a == e, table  # no row values in the message: they are personal-looking data


@pytest.mark.pg
def test_postgresql_matches_sqlite(pg_url: str, sqlite_url: str) -> None:
    counts = generate_demo(pg_url, **ARGS)
    actual = read_all(pg_url)
    assert {t: len(rows) for t, rows in actual.items()} == counts
    assert_same(actual, sqlite_reference(sqlite_url))


@pytest.mark.mariadb
def test_mariadb_matches_sqlite(mariadb_url: str, sqlite_url: str) -> None:
    counts = generate_demo(mariadb_url, **ARGS)
    actual = read_all(mariadb_url)
    assert {t: len(rows) for t, rows in actual.items()} == counts
    assert_same(actual, sqlite_reference(sqlite_url))


@pytest.mark.pg
def test_postgresql_types_and_replace(pg_url: str) -> None:
    generate_demo(pg_url, sellers=20, seed=1, year=2025)
    with pytest.raises(SourceError, match="replace=True"):
        generate_demo(pg_url, sellers=20, seed=1, year=2025)
    counts = generate_demo(pg_url, sellers=25, seed=2, year=2025, replace=True)
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM sellers")).scalar_one() == counts["sellers"] == 25
            paid_at = conn.execute(sa.text("SELECT MIN(paid_at) FROM transactions")).scalar_one()
            rate = conn.execute(sa.text("SELECT units_per_eur FROM fx_rates LIMIT 1")).scalar_one()
            flag = conn.execute(sa.text("SELECT is_listed FROM sellers LIMIT 1")).scalar_one()
        assert isinstance(paid_at, dt.datetime) and paid_at.tzinfo is None
        assert isinstance(rate, Decimal) and isinstance(flag, bool)
    finally:
        engine.dispose()


@pytest.mark.mariadb
def test_mariadb_timestamps_are_written_in_utc_whatever_the_session_time_zone(
    mariadb_url: str, sqlite_url: str
) -> None:
    # The contract DDL uses DATETIME on MariaDB (TIMESTAMP would be converted from and to the
    # session time zone), and every session is set to UTC anyway: a connection default elsewhere
    # shifts neither what is written nor what is read.
    args = {"sellers": 20, "seed": 1, "year": 2025}
    url = sa.make_url(mariadb_url).update_query_dict({"init_command": "SET time_zone = '+05:00'"})
    generate_demo(url.render_as_string(hide_password=False), **args)
    generate_demo(sqlite_url, **args)
    sql = "SELECT transaction_id, paid_at FROM transactions ORDER BY transaction_id"
    engine = make_engine(mariadb_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET time_zone = '+00:00'")
            utc = [(tid, normalise(at)) for tid, at in conn.execute(sa.text(sql))]
            conn.exec_driver_sql("SET time_zone = '+05:00'")
            shifted = [normalise(at) for _, at in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()
    reference = make_engine(sqlite_url)
    try:
        with reference.connect() as conn:
            expected = [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        reference.dispose()
    assert utc == expected
    assert shifted == [at for _, at in utc]
