"""``sellers.language`` through every way of reading the source: SQLite (with and without the
column), PostgreSQL and MariaDB with the aggregation in the source, Apache Spark; each time the
statements come out in the sellers' languages."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config

from reporting.pipeline import run
from reporting.source import make_engine

LANGUAGES = {"S-DE": "de", "S-FRBE": "fr-BE", "S-NONE": None, "S-BAD": "deutsch", "S-POSIX": "de_AT"}


def market() -> Marketplace:
    m = Marketplace()
    for seller, language in LANGUAGES.items():
        m.seller(seller, first_name="Ona", last_name="Kazlauskiene", language=language)
        m.sales(seller, 30, 60_00)
    return m


def run_on(tmp_path: Path, url: str, aggregate: str = "local") -> dict[str, str]:
    config = write_config(tmp_path / "dac7.toml", extra=f'\n[source]\naggregate = "{aggregate}"\n')
    run(
        config_path=config,
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )
    staged = pq.read_table(next((tmp_path / "st").iterdir()) / "extract" / "sellers.parquet").to_pylist()
    assert {r["seller_id"]: r["language"] for r in staged} == LANGUAGES
    lines = (tmp_path / "out" / "statements" / "statements.jsonl").read_text("utf-8").splitlines()
    return {s["seller_id"]: s["language"] for s in map(json.loads, lines)}


EXPECTED = {"S-DE": "de", "S-FRBE": "fr-BE", "S-NONE": "en", "S-BAD": "en", "S-POSIX": "de-AT"}


def test_sqlite(tmp_path: Path, sqlite_url: str) -> None:
    assert run_on(tmp_path, market().write(sqlite_url)) == EXPECTED


def test_a_source_without_the_column_gives_english_statements(tmp_path: Path, sqlite_url: str) -> None:
    market().write(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("alter table sellers drop column language"))
    engine.dispose()
    config = write_config(tmp_path / "dac7.toml")
    run(
        config_path=config,
        source_url=sqlite_url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
    )
    lines = (tmp_path / "out" / "statements" / "statements.jsonl").read_text("utf-8").splitlines()
    assert {s["language"] for s in map(json.loads, lines)} == {"en"}


@pytest.mark.pg
def test_postgresql_aggregated_in_the_source(tmp_path: Path, pg_url: str) -> None:
    assert run_on(tmp_path, market().write(pg_url), aggregate="source") == EXPECTED


@pytest.mark.mariadb
def test_mariadb_aggregated_in_the_source(tmp_path: Path, mariadb_url: str) -> None:
    assert run_on(tmp_path, market().write(mariadb_url), aggregate="source") == EXPECTED
