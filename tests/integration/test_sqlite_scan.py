"""A SQLite source whose table is mostly the period is read with a scan of the table instead of
its ``paid_at`` index (``extract._sqlite_scan``): the rows come in another order, and the run
publishes the very same files."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import stat
import tempfile
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config
from resources import require

from reporting import pipeline
from reporting.findings import Finding
from reporting.pipeline import run
from reporting.pushdown import OperatorFilter
from reporting.settings import load_settings
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


# The identity tables, the control counts and the per-seller counts read the period's sellers from
# a table found once (extract._sqlite_active_sellers), by the aggregation that counts each seller's
# transactions, not each from the transactions.

SCOPES = {
    "one operator": OperatorFilter(),
    "lt2 of a group": OperatorFilter(operator_id="lt2", operator_ids=("default", "lt2"), column=True),
    "default of a group": OperatorFilter(operator_id="default", operator_ids=("default", "lt2"), column=True),
}
IDENTITY_READS = [f"extract_{t}.sql" for t in sorted(extract.IDENTITY_TABLES)] + ["count_sellers.sql"]


def _identity_market() -> Marketplace:
    """Sellers active in the period or not, of one operator or the other, with every identity
    table filled; ids that differ only by case or a space, and a transaction of no known seller."""
    m = Marketplace()
    for seller in ("S1", "S2", "s1", "S1 ", "S3", "S4", "S5"):
        m.seller(seller)
        m.tin(seller, "LT-2", "LT")
        m.pe(seller, "DE")
        m.account(seller, f"LT60101000000000{len(seller)}", "Ona")
        m.listing(f"L-{seller}", seller)
    m.tx("S1", "2025-01-01 00:30:00", 1_00)  # in the period: 1 January, Vilnius time
    m.tx("S2", "2024-12-31 21:59:59", 1_00)  # the last second before it (UTC 22:00 is midnight)
    m.tx("s1", "2025-12-31 21:59:59", 1_00, operator_id="lt2")  # the period's last second, lt2's
    m.tx("S1 ", "2025-12-31 22:00:00", 1_00)  # the first second after it
    m.tx("S3", "2025-06-01 10:00:00", 1_00, operator_id="default")
    m.tx("S3", "2025-06-02 10:00:00", 1_00, operator_id="lt2")  # both operators' seller
    m.tx("S4", "2025-06-01 10:00:00", 1_00, operator_id="lt2")
    m.tx("S9", "2025-06-01 10:00:00", 1_00)  # in no table of the sellers
    return m  # S5: none either (the test adds one without a real payment time)


def _rows(conn: sa.Connection, sql: str, params: dict[str, object]) -> list[tuple[object, ...]]:
    return sorted(conn.execute(sa.text(sql), params).fetchall(), key=repr)


@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_the_identity_tables_read_the_same_rows_from_the_active_sellers_found_once(
    tmp_path: Path, scope_name: str
) -> None:
    scope = SCOPES[scope_name]
    url = _identity_market().write(f"sqlite:///{tmp_path}/source.db")
    params = {"period_start": "2024-12-31 22:00:00", "period_end": "2025-12-31 22:00:00"}
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            # S5's only transaction has no real payment time (30 February, in the period as text): counted
            # in the period, as the extract reads it, and as undated (its seller is quarantined)
            conn.execute(
                sa.text(
                    "insert into transactions (transaction_id, seller_id, activity, paid_at, currency, amount_minor) "
                    "values ('T-UNDATED', 'S5', 'sale_of_goods', '2025-02-30 10:00:00', 'EUR', 100)"
                )
            )
            conn.commit()
            before = {}
            for name in IDENTITY_READS:
                sql = extract.scoped_sql(name, scope, "sqlite").replace("{optional_columns}", "")
                before[name] = (sql, _rows(conn, sql, params))
            by_seller = _rows(conn, extract._by_seller_sql(conn, scope), params)
            assert extract._sqlite_active_sellers(conn, None, params, scope, tmp_path) is None
            for name, (sql, rows) in before.items():
                rewritten = extract._from_active(sql, scope)
                assert "from transactions" not in rewritten and extract.SQLITE_ACTIVE in rewritten
                assert _rows(conn, rewritten, {}) == rows, name
            table = f"{extract.SQLITE_WORK}.{extract.SQLITE_ACTIVE}"
            counts = _rows(conn, f"select seller_id, transactions, undated from {table}", {})
            assert counts == by_seller  # the reconciliation's counts: the same rows as their own query
            active = {r[0] for r in conn.execute(sa.text(f"select seller_id from {table} where transactions > 0"))}
            unknown = extract.scoped_sql("extract_unknown_sellers.sql", scope, "sqlite")
            assert extract._unknown_sellers_possible(conn) == bool(_rows(conn, unknown, params))
            count = extract.scoped_sql("count_transactions.sql", scope, "sqlite")
            counted = conn.execute(sa.text(extract._active_control_sql())).scalar_one()
            assert counted == conn.execute(sa.text(count), params).scalar_one()
    finally:
        engine.dispose()
    # by hand: S1 paid on 1 January (00:30 in Vilnius), s1 on the period's last second (lt2's),
    # S3 for both operators, S4 for lt2, S9 of no seller; S2 and "S1 " a second outside, S5 never
    expected = {
        "one operator": {"S1", "s1", "S3", "S4", "S5", "S9"},
        "lt2 of a group": {"s1", "S3", "S4"},
        "default of a group": {"S1", "S3", "S5", "S9"},
    }[scope_name]
    assert active == expected
    assert [row for row in counts if row[0] == "S5"] == ([] if scope_name == "lt2 of a group" else [("S5", 1, 1)])
    assert counted == {"one operator": 7, "lt2 of a group": 3, "default of a group": 4}[scope_name]
    assert ("S9" in active) == (scope_name != "lt2 of a group")  # the seller no table knows: not lt2's


def test_a_read_without_the_selection_of_the_periods_sellers_is_refused() -> None:
    with pytest.raises(ValueError, match="no selection of the period's sellers"):
        extract._from_active("select seller_id from transactions where paid_at >= :period_start", OperatorFilter())


PERIOD = {"period_start": "2024-12-31 22:00:00", "period_end": "2025-12-31 22:00:00"}


def _adbc_rows(columnar: extract.Columnar, sql: str) -> list[tuple[object, ...]]:
    cur = columnar.conn.cursor()
    try:
        cur.execute(sql)
        return sorted((tuple(row) for row in cur.fetchall()), key=repr)
    finally:
        cur.close()


def test_the_columnar_connection_reads_the_same_active_sellers_from_the_attached_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a dependency (the fast extra): skipped where it is not installed, a failure in CI
    require(importlib.util.find_spec("adbc_driver_sqlite") is not None, "adbc_driver_sqlite (the fast extra)")
    monkeypatch.delenv(extract.COLUMNAR_ENV, raising=False)
    scope = OperatorFilter()
    url = _identity_market().write(f"sqlite:///{tmp_path}/source.db")
    work = tmp_path / "work"
    work.mkdir()
    previous = os.umask(0o022)  # a umask that would leave the file readable by others
    engine = make_engine(url)
    columnar = extract.columnar_connection(sa.make_url(url))
    try:
        assert columnar is not None and columnar.dialect == "sqlite"
        with engine.connect() as conn:
            attached = extract._sqlite_active_sellers(conn, columnar, PERIOD, scope, work)
            assert attached is columnar  # attached, not closed: the extract reads through it
            assert stat.S_IMODE((work / "active_sellers.sqlite3").stat().st_mode) == 0o600
            table = f"{extract.SQLITE_WORK}.{extract.SQLITE_ACTIVE}"
            sql = f"select seller_id, transactions, undated from {table}"
            dbapi = _rows(conn, sql, {})
            # by hand (one operator): S1, s1, S3 (one for each operator) and S4 and S9 in the period
            assert dbapi == sorted([("S1", 1, 0), ("S3", 2, 0), ("S4", 1, 0), ("S9", 1, 0), ("s1", 1, 0)], key=repr)
            assert _adbc_rows(columnar, sql) == dbapi
            for name in IDENTITY_READS:  # the reads that join the table, through either connection
                read = extract._from_active(
                    extract.scoped_sql(name, scope, "sqlite").replace("{optional_columns}", ""), scope
                )
                assert _adbc_rows(columnar, read) == _rows(conn, read, {}), name
    finally:
        os.umask(previous)
        if columnar is not None:
            columnar.close()
        engine.dispose()


class _Refusing:
    """A columnar connection whose ``attach`` fails."""

    closed = False

    def cursor(self) -> _Refusing:
        return self

    def execute(self, sql: str, params: object = ()) -> None:
        raise OSError("unable to open database file")

    def close(self) -> None:
        self.closed = True


def test_a_columnar_connection_that_cannot_attach_is_closed_and_the_db_api_reads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = _identity_market().write(f"sqlite:///{tmp_path}/source.db")
    refusing = _Refusing()
    engine = make_engine(url)
    try:
        with engine.connect() as conn, caplog.at_level(logging.WARNING, logger=extract.log.name):
            found = extract._sqlite_active_sellers(
                conn, extract.Columnar(refusing, "sqlite"), PERIOD, OperatorFilter(), tmp_path
            )
            assert found is None and refusing.closed
            table = f"{extract.SQLITE_WORK}.{extract.SQLITE_ACTIVE}"
            assert conn.execute(sa.text(f"select count(*) from {table}")).scalar_one() == 5  # the DB-API's own
    finally:
        engine.dispose()
    [record] = [r for r in caplog.records if "cannot attach" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.getMessage().endswith("(OSError); every table is read through the DB-API")


@pytest.mark.parametrize("fails", [False, True], ids=["success", "a later read raises"])
def test_the_private_folder_of_the_extract_is_removed_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    url = _market().write(f"sqlite:///{tmp_path}/source.db")
    run_dir = pipeline.prepare(
        config_path=write_config(tmp_path / "dac7.toml"),
        year=2025,
        out_dir=tmp_path / "out",
        as_of=date(2026, 1, 31),
        staging_root=tmp_path / "st",
        source_url=url,
        run_id=RUN_ID,
        timestamp=datetime(2026, 1, 20, 7, 30),
    )
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    seen: list[Path] = []
    attach = extract._sqlite_active_sellers

    def spied(conn: sa.Connection, columnar: extract.Columnar | None, *args: object) -> extract.Columnar | None:
        found = attach(conn, columnar, *args)  # type: ignore[arg-type]
        seen.extend(folder.glob("dac7-extract-*/active_sellers.sqlite3"))
        return found

    monkeypatch.setattr(extract, "_sqlite_active_sellers", spied)
    read = extract._stream_to_parquet

    def reading(conn: sa.Connection, table: str, *args: object) -> int:
        if fails and table == "refunds":  # after the identity tables, which read the attached file
            raise sa.exc.OperationalError("select", {}, Exception("disk I/O error"))
        return read(conn, table, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(extract, "_stream_to_parquet", reading)
    # the checks after the read are not this test's (nor their seconds)
    monkeypatch.setattr(extract, "check_extract", lambda settings, worker, **kw: kw["counts"])
    settings = load_settings(run_dir)
    if fails:
        with pytest.raises(sa.exc.OperationalError, match="disk I/O error"):
            extract._extract(settings, url, None)
    else:
        counts = extract._extract(settings, url, None)
        assert counts["sellers"] == 6  # type: ignore[index]
    assert len(seen) == 1  # the file was there while the extract read
    assert not seen[0].exists() and not list(folder.glob("dac7-extract-*"))


# The same pass counts, per seller, the transactions of the period (or undated) whose operator
# names no operator of the configuration: extract_unknown_operators.sql runs only where it found one.

UNKNOWN_OPERATOR_QUERY = "select transaction_id, seller_id, operator_id"


def _unknown_market() -> Marketplace:
    """The identity market with transactions of operators the group (default, lt2) does not know."""
    m = _identity_market()
    m.tx("S4", "2025-07-02 10:00:00", 1_00, operator_id="fr_sas", transaction_id="T-FR-2")
    m.tx("S4", "2025-07-01 10:00:00", 1_00, operator_id="fr_sas", transaction_id="T-FR-1")
    m.tx("S2", "2023-07-01 10:00:00", 1_00, operator_id="fr_sas", transaction_id="T-FR-OLD")  # not of the period
    m.tx("S6", "2025-08-01 10:00:00", 1_00, operator_id="LT2", transaction_id="T-CAPS")  # S6: no other transaction
    return m


def _statements(engine: sa.Engine) -> list[str]:
    executed: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: executed.append(args[2]))
    return executed


# by hand: S1, S9 (no operator id) and S3 one transaction of the period each for the default
# operator, S7 one of a blank id (the default operator's), and S9 one without a real payment
# time; s1, S3 and S4 one each for lt2; S4 two of fr_sas and S6 two of 'LT2' (the case counts;
# one of them without a real payment time), unknown to the group; S2's fr_sas one of 2023 and
# "S1 "'s a second after the period counted by no one. One operator: a source without the
# column, every transaction its own.
ACTIVE_COUNTS = {
    "one operator": [
        ("S1", 1, 0, 0),
        ("S3", 2, 0, 0),
        ("S4", 3, 0, 0),
        ("S6", 2, 1, 0),
        ("S7", 1, 0, 0),
        ("S9", 1, 1, 0),
        ("s1", 1, 0, 0),
    ],
    "lt2 of a group": [("S3", 1, 0, 0), ("S4", 1, 0, 2), ("S6", 0, 0, 2), ("s1", 1, 0, 0)],
    "default of a group": [
        ("S1", 1, 0, 0),
        ("S3", 1, 0, 0),
        ("S4", 0, 0, 2),
        ("S6", 0, 0, 2),
        ("S7", 1, 0, 0),
        ("S9", 1, 1, 0),
    ],
}


def _add_transactions(url: str, rows: Sequence[dict[str, object]], *, with_operator: bool) -> None:
    """Rows the marketplace's writer would refuse (a payment time of a bad shape, no seller), then
    the ``operator_id`` column dropped for a source without it."""
    insert = (
        "insert into transactions (transaction_id, seller_id, activity, paid_at, currency, amount_minor, "
        "operator_id) values (:t, :s, 'sale_of_goods', :paid_at, 'EUR', 100, :operator_id)"
    )
    with sa.create_engine(url).begin() as conn:
        for row in rows:
            conn.execute(sa.text(insert), row)
        if not with_operator:
            conn.execute(sa.text("alter table transactions drop column operator_id"))


def _both_passes(
    url: str, tmp_path: Path, scope: OperatorFilter
) -> tuple[list[Finding], list[tuple[object, ...]], list[Finding], list[str]]:
    """The unknown operators and the per-seller counts found apart (``plain.parquet``) and by the
    one pass (``active.parquet``): the findings apart, the pass's table, its findings, and the
    statements run between the pass and its findings."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            plain = extract.unknown_operators(conn, PERIOD, scope)
            extract._seller_counts(conn, PERIOD, tmp_path / "plain.parquet", scope)
            extract._sqlite_active_sellers(conn, None, PERIOD, scope, tmp_path)
            table = f"{extract.SQLITE_WORK}.{extract.SQLITE_ACTIVE}"
            counts = _rows(conn, f"select seller_id, transactions, undated, unknown_operator from {table}", {})
            extract._seller_counts(conn, PERIOD, tmp_path / "active.parquet", scope, active=True)
            executed = _statements(engine)
            found = extract.unknown_operators(conn, PERIOD, scope, active=True)
    finally:
        engine.dispose()
    return plain, counts, found, executed


@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_the_active_pass_counts_each_sellers_transactions_of_an_unknown_operator(
    tmp_path: Path, scope_name: str
) -> None:
    scope = SCOPES[scope_name]
    m = _unknown_market()
    m.tx("S7", "2025-09-01 10:00:00", 1_00, operator_id="  ", transaction_id="T-BLANK")
    url = m.write(f"sqlite:///{tmp_path}/source.db")
    rows = (
        {"t": "T-UNDATED", "s": "S9", "paid_at": "2025-13-45 99:99:99", "operator_id": None},  # after it, as text
        {"t": "T-CAPS-2", "s": "S6", "paid_at": "2025-02-30 10:00:00", "operator_id": "LT2"},  # in it, as text
    )
    _add_transactions(url, rows, with_operator=scope_name != "one operator")
    plain, counts, found, executed = _both_passes(url, tmp_path, scope)
    assert counts == sorted(ACTIVE_COUNTS[scope_name], key=repr)
    # the reconciliation's counts leave out the sellers of an unknown operator's transactions alone
    written = [tuple(r.values()) for r in pq.read_table(tmp_path / "active.parquet").to_pylist()]
    assert written == [row[:3] for row in ACTIVE_COUNTS[scope_name] if row[1] or row[2]]
    assert (tmp_path / "active.parquet").read_bytes() == (tmp_path / "plain.parquet").read_bytes()
    assert found == plain
    if scope_name == "one operator":
        assert found == [] and not executed
        return
    # counted some: the rows are read as ever, for the same findings ('LT2' sorts before 'fr_sas')
    assert any(UNKNOWN_OPERATOR_QUERY in s for s in executed)
    assert [(f.key, f.message.split(" names")[0]) for f in found] == [
        ("T-CAPS", "operator_id 'LT2'"),
        ("T-FR-1", "its operator_id"),
    ]
    assert ["in 2 transaction(s)" in f.message for f in found] == [True, True]


@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_where_the_active_pass_counted_no_unknown_operator_their_scan_is_spared(
    tmp_path: Path, scope_name: str
) -> None:
    scope = SCOPES[scope_name]
    url = _identity_market().write(f"sqlite:///{tmp_path}/source.db")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            extract._sqlite_active_sellers(conn, None, PERIOD, scope, tmp_path)
            table = f"{extract.SQLITE_WORK}.{extract.SQLITE_ACTIVE}"
            unknown = conn.execute(sa.text(f"select sum(unknown_operator) from {table}")).scalar_one()
            executed = _statements(engine)
            assert extract.unknown_operators(conn, PERIOD, scope, active=True) == []
            assert extract.unknown_operators(conn, PERIOD, scope) == []  # as the query itself finds
    finally:
        engine.dispose()
    assert unknown == 0  # operator ids NULL, 'default' and 'lt2' only, of no period too
    # the pass found none: only the call without it reads the rows (a source without the column: none)
    assert sum(UNKNOWN_OPERATOR_QUERY in s for s in executed) == (0 if scope_name == "one operator" else 1)


@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_the_active_pass_reads_the_table_as_the_count_alone_did(tmp_path: Path, scope_name: str) -> None:
    """The unknown operators' count adds no read: the same plan as the per-seller count's (a scan
    of the table, or of the covering paid_at index for a source without operator_id)."""
    scope = SCOPES[scope_name]
    url = _market(other_years=40).write(f"sqlite:///{tmp_path}/source.db")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            plans = [
                [str(r[-1]) for r in conn.execute(sa.text("explain query plan " + sql), PERIOD)]
                for sql in (extract._by_seller_sql(conn, scope), extract._active_pass_sql(conn, scope))
            ]
    finally:
        engine.dispose()
    assert plans[1] == plans[0]
    covering = "SCAN transactions USING COVERING INDEX ix_transactions_paid_at"
    assert plans[1][0] == (covering if scope_name == "one operator" else "SCAN transactions")


def _without_not_null(url: str) -> None:
    """The source's transactions table with seller_id and paid_at nullable (the contract's columns,
    the index kept): a source that holds a transaction of no seller id or no payment time."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            sql = conn.execute(sa.text("select sql from sqlite_master where name = 'transactions'")).scalar_one()
            relaxed = sql.replace("seller_id      VARCHAR(64) NOT NULL", "seller_id VARCHAR(64)").replace(
                "paid_at        TIMESTAMP   NOT NULL", "paid_at TIMESTAMP"
            )
            assert relaxed.count("NOT NULL") == sql.count("NOT NULL") - 2
            conn.execute(sa.text("alter table transactions rename to transactions_old"))
            conn.execute(sa.text(relaxed))
            conn.execute(sa.text("insert into transactions select * from transactions_old"))
            conn.execute(sa.text("drop table transactions_old"))
            conn.execute(sa.text("create index ix_transactions_paid_at on transactions (paid_at, seller_id)"))
    finally:
        engine.dispose()


# by hand, beside _identity_market's rows: T-NULL-MINE (no seller id, no operator id: the default
# operator's) in the period, T-NULL-FR (no seller id, no payment time) the one transaction of
# 'fr_sas', T-SPACED lt2's (' lt2 ' trimmed) for S5, T-SPACED-DEFAULT the default operator's,
# T-S2-UNDATED the default operator's without a payment time (S2's only row counted: 0 and 1).
NULL_SELLER_COUNTS = {
    "one operator": [
        ("S1", 1, 0, 0),
        ("S2", 0, 1, 0),
        ("S3", 2, 0, 0),
        ("S4", 1, 0, 0),
        ("S5", 2, 0, 0),
        ("S9", 1, 0, 0),
        ("s1", 1, 0, 0),
        (None, 1, 1, 0),
    ],
    "lt2 of a group": [("S3", 1, 0, 0), ("S4", 1, 0, 0), ("S5", 1, 0, 0), ("s1", 1, 0, 0), (None, 0, 0, 1)],
    "default of a group": [
        ("S1", 1, 0, 0),
        ("S2", 0, 1, 0),
        ("S3", 1, 0, 0),
        ("S5", 1, 0, 0),
        ("S9", 1, 0, 0),
        (None, 1, 0, 1),
    ],
}


@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_one_unknown_operators_transaction_of_no_seller_is_counted_and_found(tmp_path: Path, scope_name: str) -> None:
    """A single transaction of an unknown operator (1, not more, is enough to read the rows), of no
    seller id and no payment time; a NULL seller id of the run's operator counted as before."""
    scope = SCOPES[scope_name]
    m = _identity_market()
    m.tx("S5", "2025-05-02 10:00:00", 1_00, operator_id=" lt2 ", transaction_id="T-SPACED")
    m.tx("S5", "2025-05-03 10:00:00", 1_00, operator_id=" default", transaction_id="T-SPACED-DEFAULT")
    url = m.write(f"sqlite:///{tmp_path}/source.db")
    _without_not_null(url)
    rows = (
        {"t": "T-NULL-MINE", "s": None, "paid_at": "2025-05-01 10:00:00", "operator_id": None},
        {"t": "T-NULL-FR", "s": None, "paid_at": None, "operator_id": "fr_sas"},
        {"t": "T-S2-UNDATED", "s": "S2", "paid_at": None, "operator_id": None},
    )
    _add_transactions(url, rows, with_operator=scope_name != "one operator")
    plain, counts, found, _executed = _both_passes(url, tmp_path, scope)
    assert counts == sorted(NULL_SELLER_COUNTS[scope_name], key=repr)
    written = [tuple(r.values()) for r in pq.read_table(tmp_path / "active.parquet").to_pylist()]
    assert written == [row[:3] for row in NULL_SELLER_COUNTS[scope_name] if row[1] or row[2]]
    assert (tmp_path / "active.parquet").read_bytes() == (tmp_path / "plain.parquet").read_bytes()
    assert found == plain
    if scope_name == "one operator":
        assert found == []
    else:
        assert [(f.key, f.message.split(" names")[0]) for f in found] == [("T-NULL-FR", "its operator_id")]
        assert "in 1 transaction(s)" in found[0].message
