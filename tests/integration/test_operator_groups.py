"""A group of operators through the whole pipeline (``dac7 run``), each operator a platform of
its own: its own sellers and thresholds, its own filing state's law, messages, MessageRefIds,
output folder and ledger space; a rerun for one operator touches nothing of the others.

The group: ``[operator]`` (LT, the default), ``[operators.lt2]`` (LT too: the same authority, the
hardest case for keeping two ledgers apart) and ``[operators.de_gmbh]`` (DE, BZSt's profile).
The sellers, with figures computed by hand (EUR; goods only):

- BOTH sells through the default operator and lt2. Default: 28 sales of 69.00 and one of 67.99,
  29 sales and 1,999.99: under both limbs of the de minimis exclusion (fewer than 30 sales, not
  more than EUR 2,000; Annex V I.B(4)(d), PStTG § 4(5) Nr. 4: "on the same platform"): excluded.
  lt2: 30 sales of 10.00, 300.00: 30 sales is not fewer than 30: reportable. Summed over the two
  platforms (59 sales, 2,299.99) the seller would be reportable by both; each platform counts
  its own, so only lt2 reports BOTH.
- EDGE sells through the default operator and de_gmbh, in each 28 sales of 69.00 and one of
  68.00: 29 sales and exactly 2,000.00. The EU reading (LT): "did not exceed EUR 2,000":
  excluded. The German reading (PStTG § 4(5) Nr. 4: "weniger als 2 000 Euro"): 2,000.00 is not
  less than 2,000: reportable. Each operator applies its own filing state's law.
- ONLY_DEF (31 sales of 10.00 with the default operator, no operator_id), ONLY_LT2 (31 with lt2).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from builders import Marketplace, write_config, write_loose
from lxml import etree

from reporting.cli import main
from reporting.errors import DataError
from reporting.pipeline import RunResult, run

RUN_ID = "0e7a1f4c-2b5d-4c8e-9f3a-6d1b7c2e5a90"
RERUN_ID = "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"
TIMESTAMP = datetime(2026, 1, 15, 12, 0)
AS_OF = date(2026, 1, 15)
NS = {"dpi": "urn:oecd:ties:dpi:v1"}

GROUP = """
[operators.lt2]
name = "Second Market UAB"
tin = "305555555"
tin_issued_by = "LT"
vat = "LT100055555555"
nexus = "RPONEX1"

[operators.lt2.address]
street = "Laisves al."
building = "2"
post_code = "44240"
city = "Kaunas"
country = "LT"

[operators.de_gmbh]
name = "Demo Marktplatz GmbH"
tin = "12345678901"
tin_issued_by = "DE"
vat = "DE123456789"
nexus = "RPONEX1"

[operators.de_gmbh.address]
street = "Unter den Linden"
building = "1"
post_code = "10117"
city = "Berlin"
country = "DE"

[operators.de_gmbh.authorities.DE]
bzst_id = "BZST0012345678"
"""


def market(*, group: bool = True) -> Marketplace:
    """The group's marketplace; ``group=False``: the default operator's transactions alone."""
    m = Marketplace()
    for seller in ("BOTH", "EDGE", "ONLY_DEF", "ONLY_LT2"):
        m.seller(seller)
    m.sales("BOTH", 28, 69_00, operator_id="default")
    m.tx("BOTH", "2025-03-03 10:00:00", 67_99)  # no operator_id: the default operator's
    m.sales("EDGE", 28, 69_00, start="2025-04-01 10:00:00")
    m.tx("EDGE", "2025-04-02 10:00:00", 68_00, operator_id=" default ")  # spaces around: trimmed
    m.sales("ONLY_DEF", 31, 10_00, start="2025-06-01 10:00:00")
    if group:
        m.sales("BOTH", 30, 10_00, start="2025-07-01 10:00:00", operator_id="lt2")
        m.sales("EDGE", 28, 69_00, start="2025-08-01 10:00:00", operator_id="de_gmbh")
        m.tx("EDGE", "2025-08-02 10:00:00", 68_00, operator_id="de_gmbh")
        m.sales("ONLY_LT2", 31, 10_00, start="2025-09-01 10:00:00", operator_id="lt2")
    return m


@dataclass
class Group:
    tmp: Path
    config: Path
    source: str
    ledger: str
    result: RunResult

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def of(self, operator_id: str) -> RunResult:
        return next(r for r in self.result.operators if r.operator_id == operator_id)


def _run(tmp: Path, config: Path, source: str, ledger: str, **kw: Any) -> RunResult:
    args = {
        "config_path": config,
        "source_url": source,
        "year": 2025,
        "as_of": AS_OF,
        "out_dir": tmp / "out",
        "staging_root": tmp / "staging",
        "run_id": RUN_ID,
        "timestamp": TIMESTAMP,
        "ledger_url": ledger,
    }
    return run(**{**args, **kw})


@pytest.fixture(scope="module")
def grp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    tmp = tmp_path_factory.mktemp("group")
    source = market().write(f"sqlite:///{tmp}/source.db")
    config = write_config(tmp / "dac7.toml", extra=GROUP)
    ledger = f"sqlite:///{tmp}/ledger.sqlite3"
    yield Group(tmp, config, source, ledger, _run(tmp, config, source, ledger))


def decisions(result: RunResult) -> dict[str, str]:
    table = pq.read_table(Path(result.run_dir) / "rules" / "decisions.parquet", columns=["seller_id", "decision"])
    return dict(zip(table["seller_id"].to_pylist(), table["decision"].to_pylist(), strict=True))


def considerations(path: Path) -> list[int]:
    """Each seller of a message: its Consideration summed over the quarters (whole units)."""
    return sorted(
        sum(int(c.text or 0) for c in seller.iterfind(".//dpi:Consideration/*", NS))
        for seller in etree.parse(path).iterfind(".//dpi:ReportableSeller", NS)
    )


def seller_ids(ledger: str, operator_id: str) -> set[str]:
    with sqlite3.connect(ledger.removeprefix("sqlite:///")) as con:
        rows = con.execute(
            "select r.seller_key from ledger_records r join ledger_messages m on m.id = r.message_id "
            "where r.kind = 'seller' and m.operator_id = ?",
            (operator_id,),
        ).fetchall()
    return {r[0] for r in rows}


# ------------------------------------------------------------------------------- the group run


def test_each_operator_decides_its_own_sellers_by_its_own_thresholds_and_law(grp: Group) -> None:
    default, lt2, de = decisions(grp.of("default")), decisions(grp.of("lt2")), decisions(grp.of("de_gmbh"))
    # each operator sees its own platform's sellers only
    assert default.keys() == {"BOTH", "EDGE", "ONLY_DEF"}
    assert lt2.keys() == {"BOTH", "ONLY_LT2"}
    assert de.keys() == {"EDGE"}
    # BOTH: 29 sales, EUR 1,999.99 with the default operator; 30 sales (EUR 300.00) with lt2
    assert default["BOTH"] == "excluded:de_minimis" and lt2["BOTH"] == "reported"
    # EDGE: 29 sales, exactly EUR 2,000.00 with each: the EU reading excludes, the German does not
    assert default["EDGE"] == "excluded:de_minimis" and de["EDGE"] == "reported"
    assert default["ONLY_DEF"] == lt2["ONLY_LT2"] == "reported"
    # each run read its own transactions, and every transaction of the source was read once
    read = {op: grp.of(op).manifest["summary"]["transactions_read"] for op in ("default", "lt2", "de_gmbh")}
    assert read == {"default": 29 + 29 + 31, "lt2": 30 + 31, "de_gmbh": 29}
    assert grp.of("lt2").manifest["reading"]["filing_state"] == "LT"
    assert grp.of("de_gmbh").manifest["reading"]["filing_state"] == "DE"


def test_a_seller_of_two_operators_is_reported_by_the_one_it_crossed_the_threshold_with(grp: Group) -> None:
    assert seller_ids(grp.ledger, "lt2") == {"BOTH", "ONLY_LT2"}
    assert seller_ids(grp.ledger, "default") == {"ONLY_DEF"}
    assert seller_ids(grp.ledger, "de_gmbh") == {"EDGE"}
    ((lt2_file,),) = [[f["file"] for f in grp.of("lt2").manifest["files"]]]
    figures = considerations(grp.out / "operators" / "lt2" / lt2_file)
    assert figures == [300, 310]  # BOTH: its 30 sales of 10.00 with lt2 alone; ONLY_LT2: 31 of 10.00
    ((default_file,),) = [[f["file"] for f in grp.of("default").manifest["files"]]]
    assert considerations(grp.out / default_file) == [310]  # ONLY_DEF alone: BOTH is excluded here


def test_each_operator_writes_its_own_messages_with_its_own_ids(grp: Group) -> None:
    files = {op: grp.of(op).manifest["files"] for op in ("default", "lt2", "de_gmbh")}
    assert [f["authority"] for f in files["default"]] == ["LT"]
    assert [f["authority"] for f in files["lt2"]] == ["LT"]
    assert [f["authority"] for f in files["de_gmbh"]] == ["DE"]
    # the default operator's layout is a single operator's; the others' below operators/<ID>/
    assert (grp.out / files["default"][0]["file"]).is_file()
    assert (grp.out / "operators" / "lt2" / files["lt2"][0]["file"]).is_file()
    assert (grp.out / "operators" / "de_gmbh" / files["de_gmbh"][0]["file"]).is_file()
    assert (grp.out / "manifest.json").is_file() and (grp.out / "operators" / "lt2" / "manifest.json").is_file()
    # each PlatformOperator is its own entity
    lt2_xml = etree.parse(grp.out / "operators" / "lt2" / files["lt2"][0]["file"])
    assert lt2_xml.findtext(".//dpi:PlatformOperator/dpi:Name", namespaces=NS) == "Second Market UAB"
    assert lt2_xml.findtext(".//dpi:PlatformOperator/dpi:TIN", namespaces=NS) == "305555555"
    default_xml = etree.parse(grp.out / files["default"][0]["file"])
    assert default_xml.findtext(".//dpi:PlatformOperator/dpi:Name", namespaces=NS) == "Demo Marketplace UAB"
    # separate MessageRefIds and DocRefIds: no id of one operator is another's
    with sqlite3.connect(grp.ledger.removeprefix("sqlite:///")) as con:
        messages = con.execute("select operator_id, message_ref_id, operator from ledger_messages").fetchall()
        docs = con.execute(
            "select m.operator_id, r.doc_ref_id from ledger_records r join ledger_messages m on m.id = r.message_id"
        ).fetchall()
    assert {(op, who) for op, _, who in messages} == {
        ("default", "LT:304567891"),
        ("lt2", "LT:305555555"),
        ("de_gmbh", "DE:12345678901"),
    }
    refs = {op: {ref for o, ref, _ in messages if o == op} for op in ("default", "lt2", "de_gmbh")}
    assert refs == {op: {f["message_ref_id"] for f in files[op]} for op in files}
    assert len({ref for _, ref, _ in messages}) == len(messages) == 3
    by_operator = {op: {d for o, d in docs if o == op} for op in ("default", "lt2", "de_gmbh")}
    assert not by_operator["default"] & by_operator["lt2"] and not by_operator["lt2"] & by_operator["de_gmbh"]
    # each operator's manifest says whose it is
    assert (grp.of("lt2").manifest["operator_id"], grp.of("lt2").manifest["operator_name"]) == (
        "lt2",
        "Second Market UAB",
    )


def test_each_operators_ledger_space_holds_its_own_live_state(grp: Group) -> None:
    from reporting.ledger import open_ledger

    with open_ledger(grp.ledger, create=False) as ledger:
        live = {op: ledger.live_records("test", "LT", 2025, operator_id=op) for op in ("default", "lt2")}
        assert {k for k in live["default"] if k[0] == "seller"} == {("seller", "ONLY_DEF")}
        assert {k for k in live["lt2"] if k[0] == "seller"} == {("seller", "BOTH"), ("seller", "ONLY_LT2")}
        # each has its own PlatformOperator record of the period
        assert (
            live["default"][("platform_operator", None)].doc_ref_id
            != live["lt2"][("platform_operator", None)].doc_ref_id
        )
        assert ledger.live_records("test", "DE", 2025, operator_id="default") == {}
        assert {m.operator_id for m in ledger.messages(year=2025, operator_id="lt2")} == {"lt2"}
        # two operators file the same period at once: each under its own lock
        with (
            ledger.lock("test", "LT", 2025, holder="run-a"),
            ledger.lock("test", "LT", 2025, holder="run-b", operator_id="lt2"),
        ):
            assert ledger.lock_holder("test", "LT", 2025, "lt2").holder == "run-b"  # type: ignore[union-attr]


def test_each_operator_gives_its_own_sellers_their_statements(grp: Group) -> None:
    for op, folder, sellers in (
        ("default", grp.out, {"ONLY_DEF"}),
        ("lt2", grp.out / "operators" / "lt2", {"BOTH", "ONLY_LT2"}),
        ("de_gmbh", grp.out / "operators" / "de_gmbh", {"EDGE"}),
    ):
        written = grp.of(op).statements
        assert written is not None and written["statements"] == len(sellers), op
        feed = (folder / "statements" / "statements.jsonl").read_text(encoding="utf-8")
        assert all(f'"seller_id": "{s}"' in feed or f'"seller_id":"{s}"' in feed for s in sellers), op


def test_the_default_operators_output_is_a_single_operators(grp: Group, tmp_path: Path) -> None:
    """The default operator of a group publishes what it publishes without the group: the same
    XML files, byte for byte, at the same paths."""
    source = market(group=False).write(f"sqlite:///{tmp_path}/source.db")
    config = write_config(tmp_path / "dac7.toml")
    single = _run(tmp_path, config, source, f"sqlite:///{tmp_path}/ledger.sqlite3")
    assert not single.operators
    assert [f["file"] for f in single.manifest["files"]] == [f["file"] for f in grp.of("default").manifest["files"]]
    for f in single.manifest["files"]:
        assert (tmp_path / "out" / f["file"]).read_bytes() == (grp.out / f["file"]).read_bytes()
    assert not (tmp_path / "out" / "operators").exists()


# ------------------------------------------------------------------------ a rerun, bad input


def tree_hashes(root: Path, *, skip: Path | None = None) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and (skip is None or not p.is_relative_to(skip))
    }


def ledger_rows(ledger: str, *, without: str) -> list[tuple[Any, ...]]:
    """Every message, record and statement of the ledger that is not operator ``without``'s."""
    with sqlite3.connect(ledger.removeprefix("sqlite:///")) as con:
        messages = con.execute(
            "select * from ledger_messages where operator_id <> ? order by id", (without,)
        ).fetchall()
        records = con.execute(
            "select r.* from ledger_records r join ledger_messages m on m.id = r.message_id "
            "where m.operator_id <> ? order by r.id",
            (without,),
        ).fetchall()
        statements = con.execute(
            "select s.* from ledger_statements s join ledger_messages m on m.message_ref_id = s.message_ref_id "
            "where m.operator_id <> ? order by s.id",
            (without,),
        ).fetchall()
    return [*messages, *records, *statements]


def test_a_rerun_for_one_operator_touches_nothing_of_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source_db = tmp_path / "source.db"
    source = market().write(f"sqlite:///{source_db}")
    config = write_config(tmp_path / "dac7.toml", extra=GROUP)
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    _run(tmp_path, config, source, ledger)
    out = tmp_path / "out"
    before = tree_hashes(out, skip=out / "operators" / "lt2")
    rows = ledger_rows(ledger, without="lt2")
    # later sales of both ONLY_LT2 (lt2's) and ONLY_DEF (the default operator's)
    with sqlite3.connect(source_db) as con:
        for tid, seller, op in (("LATE-LT2", "ONLY_LT2", "lt2"), ("LATE-DEF", "ONLY_DEF", None)):
            con.execute(
                "insert into transactions (transaction_id, seller_id, activity, paid_at, currency, amount_minor, "
                "fee_minor, tax_minor, operator_id) values (?, ?, 'sale_of_goods', '2025-12-01 10:00:00', 'EUR', "
                "5000, 0, 0, ?)",
                (tid, seller, op),
            )
    argv = ["run", "--config", str(config), "--source", source, "--year", "2025", "--as-of", "2026-01-15"]
    argv += ["--out", str(out), "--staging", str(tmp_path / "staging"), "--ledger", ledger, "--run-id", RERUN_ID]
    argv += ["--timestamp", "2026-01-20T12:00:00Z", "--operator", "lt2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "operator lt2:" in printed and "operator default:" not in printed
    # nothing of the default operator's or de_gmbh's changed: files, ledger rows, statements
    assert tree_hashes(out, skip=out / "operators" / "lt2") == before
    assert ledger_rows(ledger, without="lt2") == rows
    # lt2 filed the difference: a correction of ONLY_LT2
    with sqlite3.connect(ledger.removeprefix("sqlite:///")) as con:
        lt2 = con.execute(
            "select message_type_indic, run_id from ledger_messages where operator_id = 'lt2' order by id"
        ).fetchall()
    assert [m[0] for m in lt2] == ["DPI401", "DPI402"]
    assert lt2[1][1] != RERUN_ID  # a further operator's run id is derived from the run's


def test_a_transaction_of_no_configured_operator_stops_the_run_with_its_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = market()
    m.tx("ONLY_LT2", "2025-10-10 10:00:00", 10_00, operator_id="fr_sas", transaction_id="T-FR-1")
    m.tx("ONLY_LT2", "2025-10-11 10:00:00", 10_00, operator_id="fr_sas", transaction_id="T-FR-2")
    m.tx("BOTH", "2025-10-12 10:00:00", 10_00, operator_id="LT2", transaction_id="T-CAPS")
    # a tab is not trimmed (SQL's trim() takes spaces only): not lt2's, and not shown as 'lt2'
    m.tx("BOTH", "2025-10-13 10:00:00", 10_00, operator_id="\tlt2", transaction_id="T-TAB")
    m.tx("BOTH", "2025-10-14 10:00:00", 10_00, operator_id="jane.doe", transaction_id="T-USER")
    source = m.write(f"sqlite:///{tmp_path}/source.db")
    config = write_config(tmp_path / "dac7.toml", extra=GROUP)
    argv = ["run", "--config", str(config), "--source", source, "--year", "2025", "--as-of", "2026-01-15"]
    argv += ["--out", str(tmp_path / "out"), "--staging", str(tmp_path / "staging")]
    argv += ["--ledger", f"sqlite:///{tmp_path}/ledger.sqlite3"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "[transaction.unknown_operator] transactions T-CAPS: operator_id 'LT2' names no operator" in err
    # any other value is not shown: the column may have held a back-office user's login before
    assert "[transaction.unknown_operator] transactions T-FR-1: its operator_id names no operator" in err
    assert "fr_sas" not in err and "jane.doe" not in err
    assert "[transaction.unknown_operator] transactions T-USER: its operator_id names no operator" in err
    assert "[transaction.unknown_operator] transactions T-TAB: its operator_id names no operator" in err
    assert "in 2 transaction(s) of the period" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()  # nothing published, for no operator


def test_a_source_without_the_column_is_the_default_operators_alone(tmp_path: Path) -> None:
    m = market(group=False)
    for row in m.rows["transactions"]:
        row.pop("operator_id")
    url = f"sqlite:///{tmp_path}/source.db"
    m.write(url)
    with sqlite3.connect(tmp_path / "source.db") as con:
        con.execute("alter table transactions drop column operator_id")
    config = write_config(tmp_path / "dac7.toml", extra=GROUP)
    result = _run(tmp_path, config, url, f"sqlite:///{tmp_path}/ledger.sqlite3")
    read = {r.operator_id: r.manifest["summary"]["transactions_read"] for r in result.operators}
    assert read == {"default": 89, "lt2": 0, "de_gmbh": 0}


# ------------------------------------------- one operator of the group assumes another's reporting

#: [operator] assumes the reporting of de_gmbh: both sides declared, each in its own table
ASSUMED_WITHIN = """
[operators.de_gmbh.assuming_operator]
name = "Demo Marketplace UAB"
tin = "304567891"
tin_issued_by = "LT"

[operators.de_gmbh.assuming_operator.address]
street = "Gedimino pr."
building = "1"
post_code = "01103"
city = "Vilnius"
country = "LT"

[[assumed_operators]]
name = "Demo Marktplatz GmbH"
tin = "12345678901"
tin_issued_by = "DE"

[assumed_operators.address]
street = "Unter den Linden"
building = "1"
post_code = "10117"
city = "Berlin"
country = "DE"

[[operators.lt2.assumed_operators]]
name = "MotoLoc.fr"
tin = "555852446"
tin_issued_by = "FR"

[operators.lt2.assumed_operators.address]
city = "Neuilly sur Seine"
country = "FR"
"""


def _other_operators(path: Path) -> list[tuple[str, str | None, str | None]]:
    """Each OtherPlatformOperators entry of a message: its element, Name and TIN."""
    return [
        (etree.QName(o).localname, o.findtext("dpi:Name", namespaces=NS), o.findtext("dpi:TIN", namespaces=NS))
        for o in etree.parse(path).iterfind(".//dpi:OtherPlatformOperators/*", NS)
    ]


def test_an_operator_of_the_group_files_for_another_one_of_it(tmp_path: Path) -> None:
    """[operator] assumes de_gmbh's reporting, and lt2 an operator outside the group: de_gmbh's
    transactions are attributed to [operator], which reports its seller and names it as
    AssumedPlatformOperator; de_gmbh files its declaration in DE (AssumedReporting, the
    AssumingPlatformOperator, no seller); lt2 names the operator it assumes. Each file passed its
    schema and the preflight (the run's validate stage) before anything was published."""
    m = market()
    for row in m.rows["transactions"]:
        if row["operator_id"] == "de_gmbh":  # the assuming operator reports them, from its own
            row["operator_id"] = "default"
    config = write_config(tmp_path / "dac7.toml", extra=GROUP + ASSUMED_WITHIN)
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    result = _run(tmp_path, config, m.write(f"sqlite:///{tmp_path}/source.db"), ledger)
    by = {r.operator_id: r for r in result.operators}
    out = tmp_path / "out"
    # EDGE: 58 sales of the default operator's platform now (29 + 29, EUR 4,000.00): reportable
    assert decisions(by["default"])["EDGE"] == "reported" and decisions(by["de_gmbh"]) == {}
    ((default_file,),) = [[f["file"] for f in by["default"].manifest["files"]]]
    assert _other_operators(out / default_file) == [("AssumedPlatformOperator", "Demo Marktplatz GmbH", "12345678901")]
    assert considerations(out / default_file) == [310, 4000]  # ONLY_DEF; EDGE: 28 x 69.00 + 68.00, twice
    (de_file,) = by["de_gmbh"].manifest["files"]
    assert (de_file["authority"], de_file["sellers"]) == ("DE", 0)
    de_xml = etree.parse(out / "operators" / "de_gmbh" / de_file["file"])
    assert de_xml.findtext(".//dpi:MessageTypeIndic", namespaces=NS) == "DPI403"
    assert de_xml.findtext(".//dpi:PlatformOperator/dpi:AssumedReporting", namespaces=NS) == "true"
    assert _other_operators(out / "operators" / "de_gmbh" / de_file["file"]) == [
        ("AssumingPlatformOperator", "Demo Marketplace UAB", "304567891")
    ]
    assert by["de_gmbh"].manifest["assumed_reporting"] is True and by["default"].manifest["assumed_reporting"] is False
    ((lt2_file,),) = [[f["file"] for f in by["lt2"].manifest["files"]]]
    assert _other_operators(out / "operators" / "lt2" / lt2_file) == [
        ("AssumedPlatformOperator", "MotoLoc.fr", "555852446")
    ]
    # each operator's ledger holds its own other operators' records
    from reporting.ledger import open_ledger

    with open_ledger(ledger, create=False) as led:
        kinds = {
            op: sorted(k[1] for k in led.live_records("test", a, 2025, operator_id=op) if k[0] != "seller" and k[1])
            for op, a in (("default", "LT"), ("lt2", "LT"), ("de_gmbh", "DE"))
        }
    assert [k.split(":")[0] for k in kinds["default"]] == ["assumed"]
    assert [k.split(":")[0] for k in kinds["lt2"]] == ["assumed"] and kinds["lt2"] != kinds["default"]
    assert [k.split(":")[0] for k in kinds["de_gmbh"]] == ["assuming"]


def test_sellers_left_with_an_operator_whose_reporting_the_group_assumes_stop_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """de_gmbh's transactions still attributed to de_gmbh, whose reporting [operator] assumes:
    [operator]'s run does not read them and de_gmbh files no seller, so EDGE would be reported by no
    one. The run stops before anything is published, naming the seller, the table and the rule."""
    config = write_config(tmp_path / "dac7.toml", extra=GROUP + ASSUMED_WITHIN)
    source = market().write(f"sqlite:///{tmp_path}/source.db")
    argv = ["run", "--config", str(config), "--source", source, "--year", "2025", "--as-of", "2026-01-15"]
    argv += ["--out", str(tmp_path / "out"), "--staging", str(tmp_path / "staging")]
    argv += ["--ledger", f"sqlite:///{tmp_path}/ledger.sqlite3"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "[operator.assumed_within_group] sellers EDGE: a seller of 29 transaction(s) of the period" in err
    assert "whose reporting another operator of the group assumes (de_gmbh)" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()  # nothing published, for no operator


def test_a_seller_split_between_an_assumed_operator_and_its_assuming_one_stops_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """20 sales left with de_gmbh, whose reporting [operator] assumes, and 20 with [operator]:
    below the threshold on each side, 40 sales on the assuming operator's platform. Neither run
    may decide the seller on its part: the run stops although the seller is reportable nowhere."""
    m = market(group=False)
    m.seller("SPLIT")
    m.sales("SPLIT", 20, 10_00, start="2025-05-01 10:00:00")
    m.sales("SPLIT", 20, 10_00, start="2025-06-01 10:00:00", operator_id="de_gmbh")
    config = write_config(tmp_path / "dac7.toml", extra=GROUP + ASSUMED_WITHIN)
    source = m.write(f"sqlite:///{tmp_path}/source.db")
    argv = ["run", "--config", str(config), "--source", source, "--year", "2025", "--as-of", "2026-01-15"]
    argv += ["--out", str(tmp_path / "out"), "--staging", str(tmp_path / "staging")]
    argv += ["--ledger", f"sqlite:///{tmp_path}/ledger.sqlite3"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    found = [line.strip().split(":")[0] for line in err.splitlines() if "[operator.assumed_within_group]" in line]
    assert found == ["[operator.assumed_within_group] sellers SPLIT"]
    assert not (tmp_path / "out" / "manifest.json").exists()
    # a run of either operator alone stops as well: the assuming one would decide SPLIT on 20 sales
    for alone in ("default", "de_gmbh"):
        assert main([*argv, "--operator", alone]) == 1, alone
        err = capsys.readouterr().err
        assert "[operator.assumed_within_group] sellers SPLIT: a seller of 20 transaction(s)" in err, alone
        assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_transaction_id_held_by_two_operators_stops_every_operators_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refunds name their transaction by its key alone: a key that the default operator and lt2
    both hold would have its refund deducted by both. Each operator's own uniqueness check passes
    (one row each), so the check across the group's operators stops the run, for every operator;
    a key held twice by one operator stays its uniqueness check's, and a key that differs only in
    spaces is the same key."""
    m = market()
    m.tx("BOTH", "2025-10-01 10:00:00", 500_00, transaction_id="DUP")  # the default operator's
    m.tx("ONLY_LT2", "2025-10-02 10:00:00", 500_00, operator_id="lt2", transaction_id="DUP")
    m.tx("ONLY_DEF", "2025-10-03 10:00:00", 10_00, transaction_id=" SPACED")
    m.tx("ONLY_LT2", "2025-10-03 10:00:00", 10_00, operator_id="de_gmbh", transaction_id="SPACED ")
    m.refund("DUP", "2025-11-01 10:00:00", 500_00)
    m.tx("ONLY_LT2", "2024-12-31 10:00:00", 10_00, operator_id="lt2", transaction_id="LAST_YEAR")
    m.tx("ONLY_DEF", "2025-10-04 10:00:00", 10_00, transaction_id="LAST_YEAR")  # another period: not shared
    source = write_loose(m, f"sqlite:///{tmp_path}/source.db")
    config = write_config(tmp_path / "dac7.toml", extra=GROUP)
    argv = ["run", "--config", str(config), "--source", source, "--year", "2025", "--as-of", "2026-01-15"]
    argv += ["--out", str(tmp_path / "out"), "--staging", str(tmp_path / "staging")]
    argv += ["--ledger", f"sqlite:///{tmp_path}/ledger.sqlite3"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    found = sorted(
        line.strip().split(":")[0] for line in err.splitlines() if "[transaction.key_across_operators]" in line
    )
    assert found == [
        "[transaction.key_across_operators] transactions DUP",
        "[transaction.key_across_operators] transactions SPACED",
    ]
    assert "held by transactions of 2 operators of the group" in err and "Traceback" not in err
    assert "LAST_YEAR" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()  # nothing published, for no operator


def test_the_key_check_across_operators_runs_in_each_operators_run(tmp_path: Path) -> None:
    """A rerun of one operator alone (``--operator``) stops on a key it shares with another."""
    m = market()
    m.tx("BOTH", "2025-10-01 10:00:00", 500_00, transaction_id="DUP")
    m.tx("ONLY_LT2", "2025-10-02 10:00:00", 500_00, operator_id="lt2", transaction_id="DUP")
    source = write_loose(m, f"sqlite:///{tmp_path}/source.db")
    config = write_config(tmp_path / "dac7.toml", extra=GROUP)
    for operator in ("default", "lt2", "de_gmbh"):
        with pytest.raises(DataError) as raised:
            run(
                config_path=config,
                source_url=source,
                year=2025,
                as_of=AS_OF,
                out_dir=tmp_path / f"out-{operator}",
                staging_root=tmp_path / f"staging-{operator}",
                run_id=RUN_ID,
                timestamp=TIMESTAMP,
                ledger_url=f"sqlite:///{tmp_path}/ledger-{operator}.sqlite3",
                operators=(operator,),
            )
        rules = {(f.rule, f.key) for f in raised.value.findings}
        assert ("transaction.key_across_operators", "DUP") in rules, operator
