"""A run that sums the transactions in the source (``[source] aggregate = "source"``) decides,
quarantines, reports and files exactly what a run that reads every row does, on PostgreSQL and
MariaDB, with clean data and with every kind of bad row the checks know: the source hands the
extract the rows the checks must see and sums the others.

The source tables here have no constraints (no NOT NULL, no keys), as a view or a warehouse
export may not: NULLs and duplicate keys reach the checks.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config, write_loose

from reporting.errors import ConfigError, DataError, SourceContractError
from reporting.pipeline import run
from reporting.source import make_engine

AS_OF = date(2026, 1, 31)
RUN_ID = "5d1f6a3e-8c1b-4d2e-9f3a-7b6c5d4e3f21"
TIMESTAMP = datetime(2026, 1, 20, 7, 30)


def _run(tmp_path: Path, url: str, where: str, *, fx_basis: str = "year_end") -> dict[str, Any]:
    config = write_config(tmp_path / f"{where}.toml", fx_basis=fx_basis, extra=f'\n[source]\naggregate = "{where}"\n')
    try:
        manifest = run(
            config_path=config,
            source_url=url,
            year=2025,
            as_of=AS_OF,
            out_dir=tmp_path / f"out-{where}",
            staging_root=tmp_path / f"st-{where}",
            run_id=RUN_ID,
            timestamp=TIMESTAMP,
            ledger_url=f"sqlite:///{tmp_path}/ledger-{where}.sqlite3",
        ).manifest
    except DataError as exc:
        return {"findings": sorted((f.rule, f.table, f.key, f.seller_id or "", f.message) for f in exc.findings)}
    run_dir = next((tmp_path / f"st-{where}").iterdir())
    extract = json.loads((run_dir / "extract" / "extract.json").read_text())
    quarantine = pq.read_table(run_dir / "extract" / "quarantine_extract.parquet").to_pylist()
    return {
        "files": [(f["file"], f["sha256"]) for f in manifest["files"]],
        "summary": manifest["summary"],
        "quarantine": sorted(quarantine, key=repr),
        "decisions": sorted(pq.read_table(run_dir / "rules" / "decisions.parquet").to_pylist(), key=repr),
        "totals": pq.read_table(run_dir / "aggregate" / "activity_totals.parquet").to_pylist(),
        "counts": extract["counts"],
        "at_source": extract.get("aggregated_at_source"),
    }


def assert_same_run(tmp_path: Path, url: str, *, fx_basis: str = "year_end") -> dict[str, Any]:
    local = _run(tmp_path, url, "local", fx_basis=fx_basis)
    source = _run(tmp_path, url, "source", fx_basis=fx_basis)
    at_source = source.pop("at_source", None)
    local.pop("at_source", None)
    assert source.keys() == local.keys()
    for key in local:
        assert source[key] == local[key], key
    return {"local": local, "at_source": at_source}


def _market() -> Marketplace:
    m = Marketplace()
    for s in ("OK1", "OK2", "OK3"):
        m.seller(s)
        m.sales(s, 31, 70_00, fee_minor=3_00)
    m.rate("PLN", "2025-12-31", "4.2")
    m.rate("SEK", "2025-03-03", "11.1")  # none before March: a payment-date run lacks a rate until then
    m.seller("FX")
    m.sales("FX", 10, 100_00, currency="PLN")
    m.sales("FX", 5, 100_00, currency="SEK", start="2025-06-01 10:00:00")
    # clean rows written untidily: the extract and the source trim the same
    m.seller(" SP ")
    m.tx(" SP ", "2025-02-02 10:00:00", 500_00, currency=" eur", transaction_id=" TSP1 ")
    m.tx(" SP ", "2025-02-02 10:00:00", 500_00, transaction_id="TSP2")
    m.refund("TSP2", "2025-03-01 00:00:00", 100_00, refund_id=" RSP ")
    # refunds at the cut-off's edges, the late one only in the explanation
    m.seller("EDGE")
    t = m.sales("EDGE", 31, 100_00)
    m.refund(t[0], "2026-01-31 21:59:59", 100_00)  # 23:59:59 in Vilnius on the as-of day: applied
    m.refund(t[1], "2026-01-31 22:00:00", 100_00)  # the first second after it: late
    m.listing("L1", "HOST", address_street="Pilies g.", address_building="3")
    m.listing("L2", "HOST", address_street="pilies g", address_building="3")  # the same address: one listing
    m.seller("HOST")
    m.sales("HOST", 4, 300_00, activity="immovable_property", listing_id="L1", rented_days=2)
    m.sales("HOST", 3, 300_00, activity="immovable_property", listing_id="L2", rented_days=3)
    return m


def _bad(m: Marketplace) -> Marketplace:
    """Every bad row a check quarantines its seller for, each in a seller of its own."""
    cases = {
        "ACT": {"activity": "Sale_of_goods"},
        "NOACT": {"activity": None},
        "CUR": {"currency": "ABC"},
        "NEG": {"fee_minor": -1},
        "NOAMT": {"amount_minor": None},
        "DAYS": {"activity": "immovable_property", "listing_id": "LD", "rented_days": -1},
        "NOLIST": {"activity": "immovable_property"},
        "NOTPROP": {"listing_id": "LD"},
        "OTHERS": {"activity": "immovable_property", "listing_id": "L1"},  # HOST's listing
    }
    m.listing("LD", "DAYS")
    for seller, bad in cases.items():
        m.seller(seller)
        m.sales(seller, 30, 10_00)
        amount = bad.pop("amount_minor", 10_00)
        m.tx(seller, "2025-07-07 07:07:07", amount, **bad)
    m.seller("REFX")
    t = m.sales("REFX", 30, 10_00)
    m.refund(t[0], "2025-08-01 00:00:00", 20_00)  # more than the transaction
    m.seller("REFSUM")
    t = m.sales("REFSUM", 30, 10_00)
    m.refund(t[0], "2025-08-01 00:00:00", 6_00)
    m.refund(t[0], "2025-08-02 00:00:00", 6_00)  # together more
    m.seller("REFEARLY")
    t = m.sales("REFEARLY", 30, 10_00)
    m.refund(t[0], "2025-05-01 09:59:59", 1_00)  # before the payment
    m.seller("REFNEG")
    t = m.sales("REFNEG", 30, 10_00)
    m.refund(t[0], "2025-08-01 00:00:00", -1)
    m.seller("REFNULL")
    t = m.sales("REFNULL", 30, 10_00)
    m.refund(t[0], "2025-08-01 00:00:00", 1_00)
    m.rows["refunds"][-1]["refunded_at"] = None
    # keys the source hands back as literals, with a quote, a colon and a percent sign (which
    # SQLAlchemy and the DB-API read as parameters), a backslash and a letter beyond ASCII
    m.seller("ODD")
    m.sales("ODD", 30, 10_00)
    m.tx("ODD", "2025-08-08 08:08:08", 10_00, transaction_id="T :o'd%(x)s\\ü")
    m.refund("T :o'd%(x)s\\ü", "2025-09-01 00:00:00", 20_00, refund_id="R :o'd%s\\ü")
    # a key that holds the name of another list of keys: written in once, never read again
    m.tx("ODD", "2025-08-09 08:08:08", 10_00, transaction_id="T(dac7_keys_s)")
    m.refund("T(dac7_keys_s)", "2025-09-01 00:00:00", 20_00, refund_id="R(dac7_keys_r)")
    return m


@pytest.fixture(params=["listed", "joined"])
def flag_keys(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The flagged keys found once and written into the later statements as literals, or (as for
    a source that flags more than the literals may hold) found by each statement as joins."""
    if request.param == "joined":
        monkeypatch.setattr("reporting.stages.extract.MAX_LISTED_KEYS", -1)
    if request.param == "listed-dbapi":  # through SQLAlchemy's text(), which reads ':name' as a parameter
        monkeypatch.setenv("DAC7_COLUMNAR", "0")
    return request.param


@pytest.mark.pg
def test_postgresql_clean_and_untidy_rows(tmp_path: Path, pg_url: str) -> None:
    result = assert_same_run(tmp_path, write_loose(_market(), pg_url))
    at_source = result["at_source"]
    assert at_source["transactions"] == result["local"]["counts"]["transactions"]
    assert at_source["read_transactions"] == 0  # nothing the checks need to see: only aggregates travel


@pytest.mark.pg
@pytest.mark.parametrize("fx_basis", ["year_end", "payment_date"])
@pytest.mark.parametrize("flag_keys", ["listed", "listed-dbapi", "joined"], indirect=True)
def test_postgresql_every_bad_row_quarantines_the_same_sellers(
    tmp_path: Path, pg_url: str, fx_basis: str, flag_keys: str
) -> None:
    result = assert_same_run(tmp_path, write_loose(_bad(_market()), pg_url), fx_basis=fx_basis)
    local = result["local"]
    if fx_basis == "payment_date":  # SEK before its first rate: the run stops, the same way
        assert any(f[0] == "fx.missing_rate" for f in local["findings"])
        return
    quarantined = {d["seller_id"] for d in local["decisions"] if d["decision"].startswith("quarantined")}
    assert {"ACT", "NOACT", "CUR", "NEG", "NOAMT", "DAYS", "NOLIST", "NOTPROP", "OTHERS"} <= quarantined
    assert {"REFX", "REFSUM", "REFEARLY", "REFNEG", "REFNULL", "ODD"} <= quarantined
    assert not quarantined & {"OK1", "OK2", "OK3", "FX", "SP", "EDGE", "HOST"}
    at_source = result["at_source"]
    assert 0 < at_source["read_transactions"] < 100  # the flagged rows and their sellers' others, not all


@pytest.mark.mariadb
def test_mariadb_case_blind_collation(tmp_path: Path, mariadb_url: str, flag_keys: str) -> None:
    m = _bad(_market())
    m.seller("CUR2")  # an accent the collation ignores: a currency of its own, quarantined
    m.sales("CUR2", 30, 10_00)
    m.tx("CUR2", "2025-09-09 09:09:09", 10_00, currency="EUŔ")
    m.listing("l9", "HOST")
    m.tx("HOST", "2025-09-09 09:09:09", 10_00, activity="immovable_property", listing_id="L9", rented_days=1)
    result = assert_same_run(tmp_path, write_loose(m, mariadb_url, case_blind=True))
    local = result["local"]
    assert "findings" not in local, "the run must go on, for its quarantine to be compared"
    quarantined = {d["seller_id"] for d in local["decisions"] if d["decision"].startswith("quarantined")}
    assert {"ACT", "CUR", "CUR2", "OTHERS", "HOST", "ODD"} <= quarantined  # HOST: "L9" is not its "l9"
    assert not quarantined & {"OK1", "OK2", "OK3", "FX", "SP", "EDGE"}


def _refunds_of_near_ids() -> Marketplace:
    """Refunds whose transaction_id differs from a transaction's only by its capitals or by a
    space after it: of no transaction, as the source's rows are written."""
    m = _market()
    m.seller("NEAR")
    m.sales("NEAR", 30, 10_00)
    m.tx("NEAR", "2025-06-01 10:00:00", 100_00, transaction_id="TXCASE")
    m.tx("NEAR", "2025-06-01 10:00:00", 100_00, transaction_id="TXSPACE")
    m.refund("txcase", "2025-07-01 00:00:00", 100_00, refund_id="RCASE")
    m.refund("TXSPACE ", "2025-07-01 00:00:00", 100_00, refund_id="RSPACE")
    return m


NEAR_IDS = [
    ("refund.unknown_transaction", "refunds", "RCASE", "", "it refunds a transaction that does not exist (txcase)"),
    ("refund.unknown_transaction", "refunds", "RSPACE", "", "it refunds a transaction that does not exist (TXSPACE )"),
]


@pytest.mark.parametrize(
    "engine",
    [
        pytest.param("postgresql", marks=pytest.mark.pg),
        pytest.param("mariadb-case-blind", marks=pytest.mark.mariadb),
        pytest.param("mariadb-latin1", marks=pytest.mark.mariadb),
    ],
)
def test_a_refund_of_an_id_that_differs_by_case_or_a_trailing_space_is_of_no_transaction(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    """MariaDB's usual collations take 'txcase' for 'TXCASE' and 'TXSPACE ' for 'TXSPACE'; the
    extract that reads every row compares the ids byte for byte all the same, as PostgreSQL does
    and as the sums in the source do: each such refund stops the run as one of no transaction,
    never applied to the transaction it resembles (nor left out unsaid)."""
    url = str(request.getfixturevalue("pg_url" if engine == "postgresql" else "mariadb_url"))
    source = write_loose(
        _refunds_of_near_ids(), url, case_blind=engine == "mariadb-case-blind", latin1=engine == "mariadb-latin1"
    )
    assert _run(tmp_path, source, "local") == {"findings": NEAR_IDS}
    assert _run(tmp_path, source, "source") == {"findings": NEAR_IDS}


@pytest.mark.mariadb
def test_mariadb_latin1_tables(tmp_path: Path, mariadb_url: str, flag_keys: str) -> None:
    """Tables in latin1, MariaDB's default character set before 11.6: keys beyond ASCII are
    compared, listed and summed as UTF-8, as the extract reads them."""
    m = _bad(_market())
    m.seller("ÜMLAUT")
    m.sales("ÜMLAUT", 30, 10_00)
    m.tx("ÜMLAUT", "2025-09-09 09:09:09", 10_00, currency="XXX", transaction_id="Tü1")
    m.refund("Tü1", "2025-10-01 00:00:00", 1_00, refund_id="Rü1")
    result = assert_same_run(tmp_path, write_loose(m, mariadb_url, latin1=True))
    local = result["local"]
    assert "findings" not in local, "the run must go on, for its quarantine to be compared"
    quarantined = {d["seller_id"] for d in local["decisions"] if d["decision"].startswith("quarantined")}
    assert {"ACT", "CUR", "ODD", "ÜMLAUT"} <= quarantined
    assert result["at_source"] is not None and result["at_source"]["read_transactions"] > 0


@pytest.mark.pg
@pytest.mark.parametrize("defect", ["duplicate_transaction", "duplicate_refund", "overflow", "no_seller"])
def test_postgresql_defects_that_stop_the_run_stop_it_the_same_way(
    tmp_path: Path, pg_url: str, defect: str, flag_keys: str
) -> None:
    m = _market()
    m.seller("BAD")
    t = m.sales("BAD", 30, 10_00)
    if defect == "duplicate_transaction":
        m.tx("BAD", "2025-09-09 09:09:09", 5_00, transaction_id=t[3])
    elif defect == "duplicate_refund":
        m.refund(t[0], "2025-10-01 00:00:00", 1_00, refund_id="RDUP")
        m.refund(t[1], "2025-10-01 00:00:00", 1_00, refund_id="RDUP")
    elif defect == "overflow":
        m.tx("BAD", "2025-09-09 09:09:09", 2**62)
        m.tx("BAD", "2025-09-10 09:09:09", 2**62)
    else:
        m.tx(None, "2025-09-09 09:09:09", 10_00)  # type: ignore[arg-type]
    result = assert_same_run(tmp_path, write_loose(m, pg_url))
    assert result["local"]["findings"]


@pytest.mark.pg
def test_white_space_sql_cannot_trim_reads_every_row(
    tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    m = _market()
    m.seller("TAB")
    m.sales("TAB", 30, 10_00)
    m.tx("TAB\t", "2025-09-09 09:09:09", 5_00)  # TAB's, once trimmed as the extract trims
    result = assert_same_run(tmp_path, write_loose(m, pg_url))
    assert result["at_source"] is None
    assert "white space other than spaces" in caplog.text


def test_sqlite_sources_are_summed_at_home(tmp_path: Path) -> None:
    url = _market().write(f"sqlite:///{tmp_path}/source.db")
    with pytest.raises(ConfigError, match="needs a PostgreSQL or MariaDB/MySQL source"):
        _run(tmp_path, url, "source")


@pytest.mark.pg
def test_columns_of_other_types_are_refused_with_their_names(tmp_path: Path, pg_url: str) -> None:
    url = write_loose(_market(), pg_url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE transactions ALTER COLUMN amount_minor TYPE NUMERIC(20, 2)")
    engine.dispose()
    with pytest.raises(SourceContractError, match=r"transactions\.amount_minor is NUMERIC"):
        _run(tmp_path, url, "source")


@pytest.mark.pg
def test_a_postgresql_session_of_the_extract_gives_each_hash_its_work_mem(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's usual 4MB made a grouping of 20 million transactions spill for minutes."""
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("show work_mem").scalar_one() == "256MB"
        assert conn.exec_driver_sql("show timezone").scalar_one() == "UTC"
    engine.dispose()
    monkeypatch.setenv("DAC7_PG_WORK_MEM", "")  # the server's own
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("show work_mem").scalar_one() == "4MB"
    engine.dispose()
    monkeypatch.setenv("DAC7_PG_WORK_MEM", "lots'; drop table x; --")
    with pytest.raises(ConfigError, match="expected a size such as 256MB"):
        make_engine(pg_url)


# --- a group's operators: each operator's run sums its own transactions in the source -----------

LT2 = """
[operators.lt2]
name = "Second Market UAB"
tin = "305555555"
tin_issued_by = "LT"
nexus = "RPONEX1"

[operators.lt2.address]
city = "Kaunas"
country = "LT"
"""


def _group_run(tmp_path: Path, url: str, where: str) -> dict[str, dict[str, Any]]:
    """A group's run (the default operator and lt2), summed ``where``: each operator's results."""
    config = write_config(tmp_path / f"g-{where}.toml", extra=f'\n[source]\naggregate = "{where}"\n' + LT2)
    result = run(
        config_path=config,
        source_url=url,
        year=2025,
        as_of=AS_OF,
        out_dir=tmp_path / f"gout-{where}",
        staging_root=tmp_path / f"gst-{where}",
        run_id=RUN_ID,
        timestamp=TIMESTAMP,
        ledger_url=f"sqlite:///{tmp_path}/gledger-{where}.sqlite3",
    )
    out = {}
    for one in result.operators:
        run_dir = Path(one.run_dir)
        extract = json.loads((run_dir / "extract" / "extract.json").read_text())
        out[one.operator_id] = {
            "files": [(f["file"], f["sha256"]) for f in one.manifest["files"]],
            "summary": one.manifest["summary"],
            "decisions": sorted(pq.read_table(run_dir / "rules" / "decisions.parquet").to_pylist(), key=repr),
            "quarantine": sorted(
                pq.read_table(run_dir / "extract" / "quarantine_extract.parquet").to_pylist(), key=repr
            ),
            "totals": pq.read_table(run_dir / "aggregate" / "activity_totals.parquet").to_pylist(),
            "counts": extract["counts"],
            "at_source": extract.get("aggregated_at_source"),
        }
    return out


def _split(m: Marketplace) -> Marketplace:
    """Every seller's transactions shared between the two operators, in turn, named every way the
    contract reads as theirs: no id, 'default', 'lt2', ' lt2 '."""
    for i, t in enumerate(m.rows["transactions"]):
        t["operator_id"] = (None, "lt2", "default", " lt2 ")[i % 4]
    return m


def assert_same_group_run(tmp_path: Path, url: str) -> dict[str, dict[str, Any]]:
    local, source = _group_run(tmp_path, url, "local"), _group_run(tmp_path, url, "source")
    assert local.keys() == source.keys() == {"default", "lt2"}
    for operator_id in local:
        assert source[operator_id].pop("at_source") is not None, operator_id
        local[operator_id].pop("at_source")
        for key in local[operator_id]:
            assert source[operator_id][key] == local[operator_id][key], (operator_id, key)
    return local


@pytest.mark.pg
def test_postgresql_a_group_run_sums_each_operator_apart_as_at_home(tmp_path: Path, pg_url: str) -> None:
    result = assert_same_group_run(tmp_path, write_loose(_split(_bad(_market())), pg_url))
    # the two operators' transactions are the source's, each once
    both = result["default"]["counts"]["transactions"] + result["lt2"]["counts"]["transactions"]
    assert both == len(_split(_bad(_market())).rows["transactions"])
    assert result["default"]["counts"]["transactions"] > 0 and result["lt2"]["counts"]["transactions"] > 0


@pytest.mark.mariadb
def test_mariadb_a_group_run_sums_each_operator_apart_under_a_case_blind_collation(
    tmp_path: Path, mariadb_url: str
) -> None:
    m = _split(_market())
    m.seller("CASE")
    m.sales("CASE", 30, 10_00, operator_id="lt2")
    result = assert_same_group_run(tmp_path, write_loose(m, mariadb_url, case_blind=True))
    assert {d["seller_id"] for d in result["lt2"]["decisions"]} >= {"CASE"}
    assert "CASE" not in {d["seller_id"] for d in result["default"]["decisions"]}


def _shared_key(m: Marketplace) -> Marketplace:
    """A key that the default operator and lt2 both hold (written untidily on lt2's side), with a
    refund: each operator's own keys are unique."""
    m.seller("DUP_A")
    m.seller("DUP_B")
    m.tx("DUP_A", "2025-10-01 10:00:00", 500_00, transaction_id="DUP")
    m.tx("DUP_B", "2025-10-02 10:00:00", 500_00, transaction_id=" DUP ", operator_id="lt2")
    m.refund("DUP", "2025-11-01 10:00:00", 500_00)
    return m


def _assert_stops_on_shared_key(tmp_path: Path, url: str) -> None:
    for where in ("local", "source"):
        with pytest.raises(DataError) as raised:
            _group_run(tmp_path, url, where)
        shared = [(f.rule, f.table, f.key) for f in raised.value.findings if "operators" in f.rule]
        assert shared == [("transaction.key_across_operators", "transactions", "DUP")], where


@pytest.mark.pg
def test_postgresql_a_key_two_operators_hold_stops_the_run_summed_anywhere(tmp_path: Path, pg_url: str) -> None:
    _assert_stops_on_shared_key(tmp_path, write_loose(_shared_key(_split(_market())), pg_url))


@pytest.mark.mariadb
def test_mariadb_a_key_two_operators_hold_stops_the_run_summed_anywhere(tmp_path: Path, mariadb_url: str) -> None:
    _assert_stops_on_shared_key(tmp_path, write_loose(_shared_key(_split(_market())), mariadb_url, case_blind=True))


@pytest.mark.pg
def test_postgresql_the_key_check_across_operators_reads_keys_of_any_type(pg_url: str) -> None:
    """A source read locally may type its keys as numbers (PostgreSQL trims no BIGINT): the check
    compares them as text. An operator id that names no operator is not counted as an operator of
    the group (it stops the run by its own rule)."""
    from reporting.pushdown import OperatorFilter
    from reporting.stages.extract import keys_across_operators

    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "create table transactions (transaction_id bigint, paid_at timestamp, operator_id varchar(64))"
            )
            rows = [(1, None), (1, "lt2"), (2, "lt2"), (2, " lt2 "), (3, "LT2"), (3, "lt2"), (4, None), (4, "default")]
            for key, operator in rows:
                conn.execute(
                    sa.text("insert into transactions values (:k, '2025-06-01 10:00:00', :o)"),
                    {"k": key, "o": operator},
                )
            scope = OperatorFilter("default", ("default", "lt2"), column=True)
            params = {"period_start": datetime(2025, 1, 1), "period_end": datetime(2026, 1, 1)}
            found = keys_across_operators(conn, params, scope)
    finally:
        engine.dispose()
    assert [(f.rule, f.key) for f in found] == [("transaction.key_across_operators", "1")]
