"""A SQLite source whose table is mostly the period is read with a scan of the table instead of
its ``paid_at`` index (``extract._sqlite_scan``): the rows come in another order, and the run
publishes the very same files."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config

from reporting.pipeline import run
from reporting.source import make_engine, sql_text
from reporting.stages import extract

RUN_ID = "0b7c2a6e-3f4d-4e1a-9c8b-5d6e7f8a9b0c"


def _market(*, other_years: int = 0) -> Marketplace:
    """Sellers whose sales are inserted out of time order (each seller's year in turn), some
    quarantined, some refunded; ``other_years`` sales of 2023 per seller make the period a
    small part of the table."""
    m = Marketplace()
    for n in range(6):
        seller = f"S{n}"
        m.seller(seller)
        sales = m.sales(seller, 31 + n, 80_00 + n)
        m.refund(sales[n], "2025-11-30 10:00:00", 5_00)
        for i in range(other_years):
            m.tx(seller, f"2023-0{1 + i % 9}-1{n} 10:00:00", 1_00)
    m.tx("S5", "2025-06-01 10:00:00", 1_00, currency="ABC")  # quarantined
    return m


def _published(tmp_path: Path, url: str, name: str) -> dict[str, str]:
    out = tmp_path / f"out-{name}"
    run(
        config_path=write_config(tmp_path / "dac7.toml"),
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=out,
        staging_root=tmp_path / f"st-{name}",
        run_id=RUN_ID,
        timestamp=datetime(2026, 1, 20, 7, 30),
        ledger_url=f"sqlite:///{tmp_path}/ledger-{name}.sqlite3",
    )
    return {
        str(f.relative_to(out)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(out.rglob("*"))
        if f.is_file() and f.name != "manifest.json"  # its wall-clock fields differ
    }


def test_a_scan_and_the_index_publish_the_same_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _market().write(f"sqlite:///{tmp_path}/source.db")
    monkeypatch.setenv("DAC7_SQLITE_SCAN", "1")
    scanned = _published(tmp_path, url, "scan")
    monkeypatch.setenv("DAC7_SQLITE_SCAN", "0")
    indexed = _published(tmp_path, url, "index")
    assert scanned == indexed
    assert any(name.endswith(".xml") for name in scanned)


def _plan(url: str, params: dict[str, object]) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            sql = sql_text("extract_transactions.sql")
            if extract._sqlite_scan(conn, params):
                sql = extract._not_indexed(sql)
            rows = conn.execute(sa.text("explain query plan " + sql), params).fetchall()
            return " ".join(str(r[-1]) for r in rows)
    finally:
        engine.dispose()


@pytest.mark.parametrize(("other_years", "expected"), [(0, "SCAN transactions"), (40, "USING INDEX")])
def test_the_scan_is_chosen_where_the_period_is_most_of_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_years: int, expected: str
) -> None:
    monkeypatch.delenv("DAC7_SQLITE_SCAN", raising=False)
    url = _market(other_years=other_years).write(f"sqlite:///{tmp_path}/source.db")
    bounds = {"period_start": "2024-12-31 22:00:00", "period_end": "2025-12-31 22:00:00"}
    assert expected in _plan(url, bounds)


def test_the_query_must_have_its_from_line() -> None:
    with pytest.raises(ValueError, match=r"extract_transactions\.sql"):
        extract._not_indexed("select 1 from transactions as t")
