"""Timestamps stored with a zone, or in a shape that does not sort like time, never shift the
period: zoned columns are read in a UTC session; SQLite text of another shape is refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config

from reporting.errors import SourceContractError
from reporting.pipeline import run


def market() -> Marketplace:
    m = Marketplace()
    m.seller("S1")
    m.sales("S1", 30, 10_00)  # reportable: 30 sales in May
    m.tx("S1", "2025-12-31 23:00:00", 77_00)  # 01:00 on 1 January 2026 in Vilnius: not 2025
    m.tx("S1", "2024-12-31 23:00:00", 5_00)  # 01:00 on 1 January 2025 in Vilnius: Q1 2025
    return m


@pytest.mark.pg
def test_timestamptz_under_a_non_utc_session_keeps_the_period(tmp_path: Path, pg_url: str) -> None:
    market().write(pg_url)
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for table, column in (("transactions", "paid_at"), ("refunds", "refunded_at")):
            conn.exec_driver_sql(
                f"alter table {table} alter column {column} type timestamptz using {column} at time zone 'UTC'"
            )
        conn.exec_driver_sql(f"alter database {engine.url.database} set timezone = 'America/New_York'")
    engine.dispose()
    manifest = run(
        config_path=write_config(tmp_path / "dac7.toml"),
        source_url=pg_url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
    ).manifest
    assert manifest["summary"]["transactions_read"] == 31  # 30 in May + the one of 1 January local


@pytest.mark.parametrize("stamp", ["2025-05-01T10:00:00", "2025-05-01 10:00:00+02:00", "1746093600"])
def test_sqlite_timestamps_of_another_shape_are_refused(tmp_path: Path, stamp: str) -> None:
    url = market().write(f"sqlite:///{tmp_path}/source.db")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("update transactions set paid_at = :s where transaction_id = 'T0000003'"), {"s": stamp})
    engine.dispose()
    with pytest.raises(SourceContractError, match=r"1 row\(s\) of transactions \(e.g. T0000003\)"):
        run(
            config_path=write_config(tmp_path / "dac7.toml"),
            source_url=url,
            year=2025,
            as_of=date(2026, 1, 31),
            out_dir=tmp_path / "out",
            staging_root=tmp_path / "st",
        )
