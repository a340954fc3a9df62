"""The law of the state the operator files in, through the whole pipeline: one reading decides
every seller of a run, whether it files (routing ``nexus``) or previews what each member state
receives (``jurisdiction``); where that reading shows (manifest, decisions, ``dac7 explain``, the
quarterly watch list); the financial account identifier; and a seller set aside after its
decision keeps the authorities it would be reported to."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import Marketplace, write_config
from lxml import etree

from reporting import pipeline
from reporting.cli import main

NS = {"dpi": "urn:oecd:ties:dpi:v1", "stf": "urn:oecd:ties:dpistf:v1"}
RUN_ID = "7e6d5c4b-3a29-4187-9f6e-5d4c3b2a1908"
BZST = '\n[authorities.DE]\nbzst_id = "BZST0012345678"\n'


def config(tmp_path: Path, filing_state: str = "LT", **kw: str) -> Path:
    """The demo operator (registered in LT) filing in ``filing_state``."""
    if filing_state == "LT":
        return write_config(tmp_path / "dac7.toml", **kw)
    extra = BZST if filing_state == "DE" else ""
    return write_config(tmp_path / "dac7.toml", filing_state=filing_state, nexus="RPONEX4", extra=extra, **kw)


def run_args(tmp_path: Path, m: Marketplace, cfg: Path) -> dict[str, Any]:
    """The arguments of a run of 2025 over ``m`` (written to a SQLite file), with pinned ids."""
    return {
        "config_path": cfg,
        "source_url": m.write(f"sqlite:///{tmp_path}/source.db"),
        "year": 2025,
        "as_of": date(2026, 1, 31),
        "out_dir": tmp_path / "out",
        "staging_root": tmp_path / "st",
        "run_id": RUN_ID,
        "timestamp": datetime(2026, 1, 15, 6, 0),
    }


def go(tmp_path: Path, m: Marketplace, cfg: Path) -> dict[str, Any]:
    return pipeline.run(**run_args(tmp_path, m, cfg)).manifest


def sellers_in(tmp_path: Path, manifest: dict[str, Any]) -> dict[str, dict[str, etree._Element]]:
    """Per authority, its ReportableSellers by last name (individuals) or legal name (entities)."""
    out: dict[str, dict[str, etree._Element]] = {}
    for f in manifest["files"]:
        root = etree.parse(str(tmp_path / "out" / f["file"])).getroot()
        found = out.setdefault(f["authority"], {})
        for s in root.iter("{urn:oecd:ties:dpi:v1}ReportableSeller"):
            name = s.findtext(".//dpi:LastName", namespaces=NS) or s.findtext(
                ".//dpi:EntSellerID/dpi:Name", namespaces=NS
            )
            found[name] = s
    return out


def decisions(tmp_path: Path) -> dict[str, dict[str, str]]:
    with (tmp_path / "out" / "reports" / "decisions.csv").open(encoding="utf-8") as fh:
        return {r["seller_id"]: r for r in csv.DictReader(fh)}


def activities(seller: etree._Element) -> list[str]:
    return [etree.QName(e).localname for e in seller.find("dpi:RelevantActivities", NS)]


# --- the examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("routing", ["nexus", "jurisdiction"])
def test_a_lithuanian_operator_excludes_a_german_resident_at_exactly_eur_2000(tmp_path: Path, routing: str) -> None:
    m = Marketplace()
    m.seller("DE-EDGE", country="DE", tin="86095742719", last_name="Grenze")
    m.sales("DE-EDGE", 5, 400_00)  # 5 x 400.00 = exactly EUR 2,000.00: "did not exceed"
    m.seller("DE-OVER", country="DE", tin="57549285017", last_name="Darueber")
    m.sales("DE-OVER", 4, 500_00)
    m.tx("DE-OVER", "2025-06-01 10:00:00", 1)  # EUR 2,000.01
    manifest = go(tmp_path, m, config(tmp_path, routing=routing))
    assert manifest["filing_state"] == "LT" and manifest["preview"] is (routing == "jurisdiction")
    assert manifest["reading"]["reading"] == "EU" and manifest["reading"]["checked"] is False
    assert manifest["summary"]["decisions"] == {"excluded:de_minimis": 1, "reported": 1}
    files = sellers_in(tmp_path, manifest)
    # the filing goes to LT, the preview to DE (what LT forwards): neither holds the seller at EUR 2,000.00
    authority = "LT" if routing == "nexus" else "DE"
    assert set(files) == {authority} and set(files[authority]) == {"Darueber"}
    d = decisions(tmp_path)
    assert d["DE-EDGE"]["decision"] == "excluded:de_minimis" and d["DE-EDGE"]["reading"] == "EU"
    assert 'at most EUR 2,000.00 ("did not exceed")' in d["DE-EDGE"]["explanation"]
    assert "assumed for LT: its transposition has not been checked" in d["DE-EDGE"]["reading_label"]
    assert d["DE-OVER"]["exchange_states"] == "DE" and d["DE-OVER"]["exchange_reasons"] == "resident: primary address"


def test_a_german_operator_reports_polish_residents_under_the_german_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = Marketplace()
    m.seller("PL-EDGE", country="PL", tin="85010112345", last_name="Kowalska")
    m.sales("PL-EDGE", 4, 500_00)  # 4 sales, exactly EUR 2,000.00: not "weniger als 2 000 Euro"
    m.seller("PL-MIX", country="PL", tin="90020254321", last_name="Wisniewski")
    m.sales("PL-MIX", 10, 15_00)  # 10 small sales of goods: EUR 150.00
    m.sales("PL-MIX", 2, 40_00, activity="personal_services", start="2025-08-01 10:00:00")
    m.seller("LT-EDGE", country="LT", last_name="Petraite")
    m.sales("LT-EDGE", 4, 500_00)  # a Lithuanian resident at the same amount: the German reading too
    manifest = go(tmp_path, m, config(tmp_path, "DE"))
    assert manifest["reading"]["reading"] == "DE" and manifest["reading"]["label"].startswith("DE reading (PStTG")
    [f] = manifest["files"]
    assert (f["authority"], f["profile"], f["sellers"]) == ("DE", "DE", 3)
    sellers = sellers_in(tmp_path, manifest)["DE"]
    assert activities(sellers["Kowalska"]) == ["SaleOfGoods"]
    assert activities(sellers["Wisniewski"]) == ["PersonalServices"]  # the goods part is exempt
    assert [e.text for e in sellers["Kowalska"].iterfind(".//dpi:ResCountryCode", NS)] == ["PL"]
    d = decisions(tmp_path)
    assert d["PL-MIX"]["goods_part_excluded"] == "true" and d["PL-MIX"]["reading"] == "DE"
    assert "exempt for that activity only" in d["PL-MIX"]["explanation"]
    assert "EUR 2,000.00 or more" in d["PL-EDGE"]["explanation"]
    assert (
        "reported to DE (the filing state (nexus)), which forwards it to PL (resident: primary address)"
        in (d["PL-EDGE"]["explanation"])
    )
    # the goods rows of the mixed seller are accounted for as exempt, not as non-EU
    with (tmp_path / "out" / "reports" / "figures.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["seller_id"] == "PL-MIX"]
    assert {(r["activity"], r["row_decision"]) for r in rows} == {
        ("sale_of_goods", "excluded:de_minimis"),
        ("personal_services", "reported"),
    }
    capsys.readouterr()
    assert main(["explain", "--seller", "PL-MIX", "--year", "2025", "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "Reading of the rules: DE reading (PStTG § 4(5) Nr. 4 and last sentence)" in text
    assert "Forwarded by the filing state to: PL (resident: primary address)" in text


# --- the financial account identifier --------------------------------------------------------------


def _accounts_market() -> Marketplace:
    m = Marketplace()
    m.seller("DE-ONLY", country="DE", tin="86095742719", last_name="Nurdeutsch")
    m.account("DE-ONLY", "DE89370400440532013000")
    m.sales("DE-ONLY", 40, 100_00)
    m.seller("DE-FR", country="DE", tin="57549285017", last_name="Zweiland")
    m.tin("DE-FR", "1234567890123", "FR")
    m.account("DE-FR", "DE02120300000000202051")
    m.sales("DE-FR", 40, 100_00)
    m.seller("PL-1", country="PL", tin="85010112345", last_name="Nowak")
    m.account("PL-1", "PL61109010140000071219812874")
    m.sales("PL-1", 40, 100_00)
    return m


def ibans(seller: etree._Element) -> list[str]:
    return [e.text for e in seller.iterfind(".//dpi:FinancialIdentifier/dpi:Identifier", NS)]


def test_the_financial_account_identifier_where_the_state_of_residence_uses_it(tmp_path: Path) -> None:
    """Germany said it will not use the identifier (PStTG § 9(6) Nr. 1). In a filing in LT (the
    EU wording) a German resident's IBAN is left out, one also resident in FR keeps it; a Polish
    resident keeps it. In the preview DE receives none, FR and PL receive theirs."""
    filing = tmp_path / "filing"
    filing.mkdir()
    lt = sellers_in(filing, go(filing, _accounts_market(), config(filing)))["LT"]
    assert (ibans(lt["Nurdeutsch"]), ibans(lt["Zweiland"]), ibans(lt["Nowak"])) == (
        [],
        ["DE02120300000000202051"],
        ["PL61109010140000071219812874"],
    )
    preview = tmp_path / "preview"
    preview.mkdir()
    states = sellers_in(preview, go(preview, _accounts_market(), config(preview, routing="jurisdiction")))
    assert sorted(states) == ["DE", "FR", "PL"]
    assert [ibans(s) for s in states["DE"].values()] == [[], []]
    assert ibans(states["FR"]["Zweiland"]) == ["DE02120300000000202051"]
    assert ibans(states["PL"]["Nowak"]) == ["PL61109010140000071219812874"]
    # under the German reading, a state of residence on the list is enough: DE-FR loses it too
    german = tmp_path / "german"
    german.mkdir()
    de = sellers_in(german, go(german, _accounts_market(), config(german, "DE")))["DE"]
    assert (ibans(de["Nurdeutsch"]), ibans(de["Zweiland"]), ibans(de["Nowak"])) == (
        [],
        [],
        ["PL61109010140000071219812874"],
    )


# --- the quarterly watch list ---------------------------------------------------------------------


def _watch_rows(decisions_csv: Path, due_diligence_csv: Path) -> list[dict[str, str]]:
    import sys

    dags = str(Path(__file__).resolve().parents[2] / "dags")
    if dags not in sys.path:
        sys.path.insert(0, dags)
    from dac7_support.watch import watch_rows

    return watch_rows(decisions_csv, due_diligence_csv)


def test_the_watch_list_reads_the_limits_as_the_filing_state_does(tmp_path: Path) -> None:
    """A seller at exactly EUR 2,000.00 without a TIN, in a German filing: reported, and on the
    watch list as "crossed", never "within 20%"."""
    m = Marketplace()
    m.seller("EDGE", country="PL", tin=None, last_name="Bezpin", birth_city="Lodz", birth_country="PL")
    m.sales("EDGE", 10, 200_00)
    manifest = go(tmp_path, m, config(tmp_path, "DE"))
    assert manifest["summary"]["decisions"] == {"reported": 1}
    reports = tmp_path / "out" / "reports"
    [row] = _watch_rows(reports / "decisions.csv", reports / "due_diligence.csv")
    assert (row["seller_id"], row["threshold"], row["goods_eur"]) == ("EDGE", "crossed", "2000.0000")
    assert "TIN unknown" in row["due_diligence"]


@pytest.mark.parametrize(
    ("reading", "goods_eur", "exact", "threshold"),
    [
        ("EU", "2000.0000", "2000", "within 20%"),  # "did not exceed": not crossed yet
        ("DE", "2000.0000", "2000", "crossed"),  # "weniger als 2 000 Euro": crossed
        ("DE", "1999.9999", "19999999/10000", "within 20%"),
        ("EU", "2000.0001", "20000001/10000", "crossed"),
        ("EU", "1599.9999", "15999999/10000", None),  # under 80% of the limit: not watched
        ("EU", "1600.0000", "1600", "within 20%"),
        # shown rounded, compared exactly: 802,460.01 HUF at 401.23 per EUR is EUR 2,000.0000249...
        ("EU", "2000.0000", "80246001/40123", "crossed"),
        ("DE", "2000.0000", "3999999/2000", "within 20%"),  # EUR 1,999.9995
    ],
)
def test_the_watch_list_thresholds_by_reading(
    tmp_path: Path, reading: str, goods_eur: str, exact: str, threshold: str | None
) -> None:
    decisions_csv = tmp_path / "decisions.csv"
    decisions_csv.write_text(
        "seller_id,decision,goods_activities,goods_eur,goods_eur_exact,reading\n"
        f"S1,any,3,{goods_eur},{exact},{reading}\n",
        encoding="utf-8",
    )
    due = tmp_path / "due_diligence.csv"
    due.write_text("seller_id,kind\nS1,TIN unknown\n", encoding="utf-8")
    rows = _watch_rows(decisions_csv, due)
    assert [r["threshold"] for r in rows] == ([threshold] if threshold else [])


# --- a seller quarantined after its decision --------------------------------------------------------


def test_a_seller_set_aside_by_the_aggregate_checks_keeps_where_it_would_be_reported(tmp_path: Path) -> None:
    """A fault between the stages: an aggregate row of a reportable seller is broken after the
    aggregate stage wrote it (a negative number of transactions). The checks of the aggregates
    quarantine the seller after its decision; the due-diligence report still says it crossed the
    thresholds and where it would be reported."""
    m = Marketplace()
    m.seller("OK", country="LT")
    m.sales("OK", 40, 100_00)
    m.seller("BROKEN", country="PL", tin="85010112345")
    m.sales("BROKEN", 40, 100_00)
    args = run_args(tmp_path, m, config(tmp_path, routing="jurisdiction"))
    run_dir = pipeline.prepare(**args)
    pipeline.extract(run_dir, args["source_url"])
    pipeline.aggregate(run_dir)
    path = Path(run_dir) / "aggregate" / "activity_totals.parquet"
    table = pq.read_table(path)
    broken = [
        -1 if sid == "BROKEN" else n
        for sid, n in zip(table["seller_id"].to_pylist(), table["transactions"].to_pylist(), strict=True)
    ]
    index = table.schema.get_field_index("transactions")
    pq.write_table(table.set_column(index, "transactions", pa.array(broken, pa.int64())), path)
    summary = pipeline.apply_rules(run_dir)
    # two checks see it: the row's count out of range, and the seller's transactions no longer
    # adding up to the source's own count (the decision names the first rule of the two)
    assert summary["decisions"] == {
        "quarantined:gx.expect_column_pair_values_to_be_equal.classified_transactions": 1,
        "reported": 1,
    }
    rules = {f["rule"] for f in pq.read_table(Path(run_dir) / "rules" / "quarantine_rules.parquet").to_pylist()}
    assert "gx.expect_column_values_to_be_between.transactions" in rules
    incomplete = pq.read_table(Path(run_dir) / "rules" / "reportable_incomplete.parquet").to_pylist()
    assert incomplete == [{"seller_id": "BROKEN", "authorities": ["PL"]}]
    for stage in (pipeline.render, pipeline.validate, pipeline.publish):
        stage(run_dir)
    with (tmp_path / "out" / "reports" / "due_diligence.csv").open(encoding="utf-8") as fh:
        [row] = [r for r in csv.DictReader(fh) if r["seller_id"] == "BROKEN"]
    assert row["authorities"] == "PL" and row["kind"] == "threshold crossed without complete data"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert [(f["authority"], f["sellers"]) for f in manifest["files"]] == [("LT", 1)]


def test_filings_made_before_to_another_state_are_left_alone_and_named(tmp_path: Path) -> None:
    """The operator filed in DE, then files in LT (its filing state changed) with the same ledger:
    the LT filing has every seller; the DE filing is neither corrected nor deleted (no law of the
    new filing state governs it), and the plan, the manifest and the summary say it is there."""
    from reporting.ledger import open_ledger

    m = Marketplace()
    m.seller("LT-1", country="LT")
    m.sales("LT-1", 40, 100_00)
    m.seller("DE-1", country="DE", tin="86095742719")
    m.sales("DE-1", 40, 100_00)
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    first, second = tmp_path / "de", tmp_path / "lt"
    first.mkdir()
    second.mkdir()
    pipeline.run(**run_args(first, m, config(first, "DE")), ledger_url=ledger)
    manifest = pipeline.run(**run_args(second, m, config(second)) | {"run_id": None}, ledger_url=ledger).manifest
    assert [(f["authority"], f["sellers"]) for f in manifest["files"]] == [("LT", 2)]
    assert manifest["other_live_filings"] == ["DE"]
    assert "live filings of this period to DE (not the filing state LT): left as they are" in (
        pipeline.summary_table(manifest)
    )
    with open_ledger(ledger) as led:
        assert sorted((m.authority, m.message_type_indic, m.status) for m in led.messages(year=2025)) == [
            ("DE", "DPI401", "published"),
            ("LT", "DPI401", "published"),
        ]
