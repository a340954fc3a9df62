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


def _run(tmp_path: Path, url: str) -> dict[str, object]:
    return run(
        config_path=write_config(tmp_path / "dac7.toml"),
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
    ).manifest


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
    manifest = _run(tmp_path, pg_url)
    assert manifest["summary"]["transactions_read"] == 31  # 30 in May + the one of 1 January local


@pytest.mark.parametrize("stamp", ["2025-05-01T10:00:00", "2025-05-01 10:00:00+02:00", "1746093600"])
def test_sqlite_timestamps_of_another_shape_are_refused(tmp_path: Path, stamp: str) -> None:
    url = market().write(f"sqlite:///{tmp_path}/source.db")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("update transactions set paid_at = :s where transaction_id = 'T0000003'"), {"s": stamp})
    engine.dispose()
    with pytest.raises(SourceContractError, match=r"1 row\(s\) of transactions \(e.g. T0000003\)"):
        _run(tmp_path, url)


# ------------------------------------------------------------ a payment time that is no time


def undated_market() -> Marketplace:
    """S1 and S2 have 50 sales each in May, S3 has 29 plus one whose time the source loses."""
    m = Marketplace()
    for seller, n in (("S1", 50), ("S2", 50), ("S3", 30), ("OK", 40)):
        m.seller(seller)
        m.sales(seller, n, 10_00)
    return m


def _ids(url: str) -> dict[str, list[str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select seller_id, transaction_id from transactions order by transaction_id"))
        ids: dict[str, list[str]] = {}
        for seller, tx in rows:
            ids.setdefault(seller, []).append(tx)
    engine.dispose()
    return ids


def _drop_not_null_sqlite(conn: sa.Connection) -> None:
    """A source whose table lacks the contract's NOT NULL (a view, an older schema)."""
    ddl = conn.execute(sa.text("select sql from sqlite_master where name = 'transactions'")).scalar_one()
    conn.execute(sa.text("alter table transactions rename to transactions_old"))
    conn.execute(sa.text(ddl.replace("paid_at        TIMESTAMP   NOT NULL", "paid_at TIMESTAMP")))
    conn.execute(sa.text("insert into transactions select * from transactions_old"))
    conn.execute(sa.text("drop table transactions_old"))


def test_sqlite_payment_times_that_are_no_time_or_null_quarantine_their_seller(tmp_path: Path) -> None:
    """'2025-13-45 99:99:99' has the shape but is no time (text comparison put it in no period, and
    the seller was reported with 49 of its 50 sales); 30 February neither; NULL is no time at all.
    Each is a finding naming the table and the transaction, and its seller is quarantined."""
    url = undated_market().write(f"sqlite:///{tmp_path}/source.db")
    ids = _ids(url)
    bad = {"S1": ids["S1"][7], "S2": ids["S2"][0], "S3": ids["S3"][29]}
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _drop_not_null_sqlite(conn)
        for seller, stamp in (("S1", "2025-13-45 99:99:99"), ("S2", "2025-02-30 10:00:00"), ("S3", None)):
            conn.execute(
                sa.text("update transactions set paid_at = :s where transaction_id = :t"),
                {"s": stamp, "t": bad[seller]},
            )
    engine.dispose()
    manifest = _run(tmp_path, url)
    summary = manifest["summary"]
    assert summary["decisions"] == {
        "quarantined:transaction.bad_paid_at": 2,
        "quarantined:transaction.no_paid_at": 1,
        "reported": 1,
    }
    quarantine = (tmp_path / "out" / "reports" / "quarantine.csv").read_text()
    assert f"S1,transaction.bad_paid_at,transactions,{bad['S1']}," in quarantine
    assert f"S2,transaction.bad_paid_at,transactions,{bad['S2']}," in quarantine
    assert f"S3,transaction.no_paid_at,transactions,{bad['S3']}," in quarantine
    [f] = manifest["files"]
    assert f["sellers"] == 1  # only OK: nobody is reported without one of the sales


@pytest.mark.pg
def test_a_null_payment_time_in_postgresql_quarantines_its_seller(tmp_path: Path, pg_url: str) -> None:
    undated_market().write(pg_url)
    tx = _ids(pg_url)["S3"][0]
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("alter table transactions alter column paid_at drop not null")
        conn.execute(sa.text("update transactions set paid_at = null where transaction_id = :t"), {"t": tx})
    engine.dispose()
    summary = _run(tmp_path, pg_url)["summary"]
    assert summary["decisions"]["quarantined:transaction.no_paid_at"] == 1
    assert (
        f"S3,transaction.no_paid_at,transactions,{tx}," in (tmp_path / "out" / "reports" / "quarantine.csv").read_text()
    )


def test_the_reconciliation_counts_each_sellers_transactions_from_the_source(tmp_path: Path) -> None:
    """A transaction lost between the source and the aggregates (here: removed from the staged
    extract after the source counted it) stops the run, naming the seller."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from reporting import pipeline
    from reporting.errors import DataError

    url = undated_market().write(f"sqlite:///{tmp_path}/source.db")
    run_dir = pipeline.prepare(
        config_path=write_config(tmp_path / "dac7.toml"),
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
    )
    pipeline.extract(run_dir, url)
    staged = Path(run_dir) / "extract" / "transactions.parquet"
    table = pq.read_table(staged)
    lost = _ids(url)["S2"][3]
    pq.write_table(table.filter(pc.not_equal(table["transaction_id"], lost)), staged)
    pipeline.aggregate(run_dir)
    with pytest.raises(DataError) as raised:
        pipeline.apply_rules(run_dir)
    text = str(raised.value)
    assert "seller_reconciliation" in text and "S2" in text
    assert "the extract is incomplete" in text


def test_a_seller_id_with_white_space_is_named_as_unknown_not_as_a_reconciliation_failure(tmp_path: Path) -> None:
    """The source's own per-seller count is read the way the extract reads ids (trimmed); an id the
    sellers table does not hold as written is the finding that says so."""
    from reporting.errors import DataError

    m = Marketplace()
    m.seller("S1")
    m.sales("S1", 30, 10_00)
    m.tx(" S1 ", "2025-06-01 10:00:00", 10_00, transaction_id="TSPACE")
    with pytest.raises(DataError) as raised:
        _run(tmp_path, m.write(f"sqlite:///{tmp_path}/source.db"))
    assert [(f.rule, f.key) for f in raised.value.findings] == [("source.unknown_seller", "TSPACE")]
