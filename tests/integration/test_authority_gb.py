"""Filing in the United Kingdom through the whole pipeline: the OECD Model Rules decide, the HMRC
profile writes, HMRC's schema and upload checks pass, and HMRC's business rule result comes back.

Each file is checked against the schema HMRC's upload validates with (the OECD DPI v1.0 of
hmrc/digital-platform-reporting, vendored in tests/reference/xsd/oecd-dpi-v1.0__hmrc-copy) and
with HMRC's upload checks (reporting.authorities.gb.upload_checks). The same source is filed by a
Lithuanian operator under DAC7 beside it, so that each Model Rules difference shows against a
DAC7 seller in the same situation: a TIN-issuing state, a permanent establishment, two listings
of different owners at one address, a partner-jurisdiction resident.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import Marketplace, hmrc_bre, write_config
from lxml import etree
from resources import require_file, vendored

from reporting.authorities import register
from reporting.authorities.gb import GB, MESSAGE_REF_ID, GbProfile, upload_checks
from reporting.authorities.registry import NATIONAL
from reporting.cli import main
from reporting.jurisdictions import UNITED_KINGDOM
from reporting.ledger import open_ledger
from reporting.ledger.rejections import rejections
from reporting.pipeline import run, summary_table
from reporting.quarantine import read_findings
from reporting.stages.rules import GVS_NOTES, gvs_not_used
from reporting.vocabulary import NOT_REPORTABLE_JURISDICTION

OFFICIAL = vendored("xsd", "oecd-dpi-v1.0__hmrc-copy", "DPIXML_v1.0.xsd")
EU_OFFICIAL = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0", "DPIXML_v1.0.xsd")
BRE_XSD = vendored("xsd", "uk-hmrc", "AEOI Business Rule Result schema v0.3.xsd")
ASSUMED_SAMPLE = vendored("samples", "uk-hmrc-test-resources", "SubmissionSampleAssumed.xml")
NS = {"dpi": "urn:oecd:ties:dpi:v1", "stf": "urn:oecd:ties:dpistf:v1"}
POID = "XMDPI0001234567"
GB_TABLE = f'\n[authorities.GB]\nplatform_operator_id = "{POID}"\n'
RUN_ID = "6f1c2a4e-8d1b-4c7e-9a51-0c2f3d4e5a6b"
STAMP = datetime(2026, 1, 20, 9, 0, 0)


@pytest.fixture(scope="module")
def official() -> etree.XMLSchema:
    require_file(OFFICIAL, EU_OFFICIAL, BRE_XSD, ASSUMED_SAMPLE)
    return etree.XMLSchema(etree.parse(str(OFFICIAL)))


def market(*, refund: bool = False, more: bool = False) -> Marketplace:
    """The same situations for both filings (amounts in GBP and EUR; one GBP rate)."""
    m = Marketplace()
    m.rate("GBP", "2025-12-31", "0.85")
    # a UK resident: reportable in the UK only
    m.seller("UK-1", country="GB", tin="AB123456C", first_name="Amy", last_name="Smith")
    goods = m.sales("UK-1", 30, 40_00, currency="GBP")
    if more:
        m.tx("UK-1", "2025-11-03 10:00:00", 25_00, currency="GBP")
    # resident in the US with a TIN issued by Lithuania: a DAC7 residence, not a Model Rules one
    m.seller("US-LT-TIN", country="US", tin="38001010000", tin_issued_by="LT", first_name="Bo", last_name="Lee")
    m.sales("US-LT-TIN", 2, 300_00, activity="personal_services")
    # an entity of the US with a permanent establishment in Ireland
    m.seller("US-PE-IE", seller_type="entity", country="US", tin="98-7654321", legal_name="Rentals Inc")
    m.pe("US-PE-IE", "IE")
    m.sales("US-PE-IE", 2, 500_00, activity="transportation_rental")
    # a resident of Canada, a UK partner jurisdiction
    m.seller("CA-1", country="CA", tin="123456782", first_name="Claire", last_name="Roy")
    m.sales("CA-1", 3, 200_00, activity="personal_services", currency="GBP")
    # an Irish resident renting out two flats at one address, of two owners
    m.seller("IE-2FLATS", country="IE", tin="1234567T", first_name="Aoife", last_name="Byrne")
    for flat, owner in (("F1", "OWNER-A"), ("F2", "OWNER-B")):
        m.listing(flat, "IE-2FLATS", "IE", address_street="Main St", address_building="7", owner_id=owner)
        m.tx("IE-2FLATS", "2025-07-01 10:00:00", 600_00, activity="immovable_property", listing_id=flat, rented_days=4)
    if refund:  # after the first filing: every sale refunded, the UK seller under the de minimis
        for t in goods:
            m.refund(t, "2026-01-25 10:00:00", 40_00)
    return m


def gb_run(tmp_path: Path, m: Marketplace, *, step: str, ledger: str, extra: str = "", **kw: Any) -> dict[str, Any]:
    folder = tmp_path / step
    folder.mkdir()
    result = run(
        config_path=write_config(folder / "dac7.toml", filing_state="GB", nexus="RPONEX4", extra=GB_TABLE + extra),
        source_url=m.write(f"sqlite:///{folder}/source.db"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=folder / "out",
        staging_root=folder / "staging",
        run_id=kw.pop("run_id", RUN_ID),
        timestamp=kw.pop("timestamp", STAMP),
        ledger_url=ledger,
        **kw,
    )
    return result.manifest | {"out": str(folder / "out")}


def files(manifest: dict[str, Any], authority: str = "GB") -> list[Path]:
    return [Path(manifest["out"]) / f["file"] for f in manifest["files"] if f["authority"] == authority]


def hmrc_checks(path: Path) -> list[str]:
    """The names of HMRC's upload checks the file fails, the schema included (none: it uploads)."""
    return [c.name for c in upload_checks(path, platform_operator_id=POID, schema=OFFICIAL) if not c.ok]


def sellers(root: etree._Element) -> dict[str, etree._Element]:
    """The ReportableSellers of a message by last name (individuals) or name (entities)."""
    out = {}
    for s in root.iterfind(".//dpi:ReportableSeller", NS):
        name = s.findtext(".//dpi:LastName", namespaces=NS) or s.findtext(".//dpi:EntSellerID/dpi:Name", namespaces=NS)
        out[name] = s
    return out


def doc_specs(root: etree._Element) -> list[tuple[str, str, str | None]]:
    return [
        (
            d.findtext("stf:DocTypeIndic", namespaces=NS),
            d.findtext("stf:DocRefId", namespaces=NS),
            d.findtext("stf:CorrDocRefId", namespaces=NS),
        )
        for d in root.iter("{urn:oecd:ties:dpi:v1}DocSpec")
    ]


def test_a_uk_filing_is_valid_for_hmrc_with_its_ids_and_passes_its_upload_checks(
    tmp_path: Path, official: etree.XMLSchema
) -> None:
    manifest = gb_run(tmp_path, market(), step="gb", ledger=f"sqlite:///{tmp_path}/ledger.db")
    [path] = files(manifest)
    root = etree.parse(str(path)).getroot()
    assert official.validate(root), official.error_log
    assert hmrc_checks(path) == []
    spec = {e.tag.split("}")[1]: e.text for e in root.find("dpi:MessageSpec", NS)}
    mri = spec["MessageRefId"]
    assert (spec["SendingEntityIN"], spec["TransmittingCountry"], spec["ReceivingCountry"]) == (POID, "GB", "GB")
    assert (spec["MessageType"], spec["MessageTypeIndic"], spec["ReportingPeriod"]) == ("DPI", "DPI401", "2025-12-31")
    assert spec["Timestamp"] == "2026-01-20T09:00:00"  # UTC, as HMRC's service writes it
    assert MESSAGE_REF_ID.fullmatch(mri) and mri.startswith(f"GB2025GB-{POID}-")
    assert path.name == f"{mri}.xml" and len(mri) <= 100
    # every DocRefId is <MessageRefId>_<32 hex>, each once
    refs = [ref for _, ref, _ in doc_specs(root)]
    assert all(re.fullmatch(rf"{mri}_[0-9a-f]{{32}}", ref) for ref in refs) and len(set(refs)) == len(refs)
    # nothing "[EU Specific]": no Nexus, no PermanentEstablishments; no comment; UTF-8
    assert root.find(".//dpi:Nexus", NS) is None and root.find(".//dpi:PermanentEstablishments", NS) is None
    assert b"<!--" not in path.read_bytes() and path.read_bytes().startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    # the partner list the filing used is in the manifest and the run summary: HMRC's own for 2025
    partners = manifest["partner_jurisdictions"]
    assert partners["source"].startswith("HMRC IEIM906000") and partners["assumed"] == ""
    assert partners["jurisdictions"] == sorted(UNITED_KINGDOM.reportable(2025).jurisdictions)
    assert (
        "CA" in partners["jurisdictions"]
        and "GB" in partners["jurisdictions"]
        and "FR" not in partners["jurisdictions"]
    )
    table = summary_table(manifest)
    assert "  reportable jurisdictions: HMRC IEIM906000" in table and "  assumed:" not in table
    # a period without a published list (2026) says in the summary that its list is assumed
    later = UNITED_KINGDOM.reportable(2026)
    assumed = {"source": later.source, "assumed": later.assumed, "jurisdictions": sorted(later.jurisdictions)}
    assert "  assumed: no list of GB's partner jurisdictions for the 2026 reportable period was found" in (
        summary_table(manifest | {"partner_jurisdictions": assumed})
    )
    # the same run again gives the same ids (they are the run's, never the clock's)
    again = gb_run(tmp_path, market(), step="again", ledger=f"sqlite:///{tmp_path}/again.db")
    assert [p.read_bytes() for p in files(again)] == [path.read_bytes()]


def test_each_model_rules_difference_against_a_dac7_seller_in_the_same_situation(
    tmp_path: Path, official: etree.XMLSchema
) -> None:
    uk = gb_run(tmp_path, market(), step="gb", ledger=f"sqlite:///{tmp_path}/gb.db")
    folder = tmp_path / "lt"
    folder.mkdir()
    # the Canadian seller verified by a government verification service: DAC7 does not use it
    lt_market = market()
    for row in lt_market.rows["sellers"]:
        row["gvs_jurisdiction"] = "CA" if row["seller_id"] == "CA-1" else None
    eu = run(
        config_path=write_config(folder / "dac7.toml"),
        source_url=lt_market.write(f"sqlite:///{folder}/source.db"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=folder / "out",
        staging_root=folder / "staging",
        run_id=RUN_ID,
        timestamp=STAMP,
        ledger_url=f"sqlite:///{tmp_path}/lt.db",
    ).manifest
    [gb_file] = files(uk)
    [lt_file] = [folder / "out" / f["file"] for f in eu["files"] if f["authority"] == "LT"]
    # an info finding names the seller whose gvs_jurisdiction DAC7 ignores (its rule, never the value)
    [notes] = (folder / "staging").rglob(f"checks/{GVS_NOTES}")
    note = gvs_not_used("CA-1")
    assert [(f.rule, f.seller_id, f.key, f.message) for f in read_findings(notes)] == [
        ("dac7.gvs_not_used", "CA-1", "CA-1", note.message)
    ]
    assert "30030" in note.message and "CA" not in note.message and str(note.severity) == "info"
    assert eu["partner_jurisdictions"] is None  # DAC7: the member states, no partner list
    [uk_notes] = (tmp_path / "gb").rglob(f"checks/{GVS_NOTES}")
    assert read_findings(uk_notes) == []
    gb, lt = sellers(etree.parse(str(gb_file)).getroot()), sellers(etree.parse(str(lt_file)).getroot())
    assert official.validate(etree.parse(str(gb_file)))
    # the UK: its own resident, the partner's (Canada) and the Irish resident; not the US residents
    assert set(gb) == {"Smith", "Roy", "Byrne"}
    # DAC7: the TIN issued by Lithuania and the permanent establishment in Ireland make EU residents;
    # the UK and Canadian residents are not reportable in the EU
    assert set(lt) == {"Lee", "Rentals Inc", "Byrne"}
    lee = lt["Lee"].find(".//dpi:IndSellerID", NS)
    assert [c.text for c in lee.iterfind("dpi:ResCountryCode", NS)] == ["US", "LT"]
    rentals = lt["Rentals Inc"]
    assert [c.text for c in rentals.iterfind(".//dpi:PermanentEstablishment", NS)] == ["IE"]
    # two flats of two owners at one address: one Property Listing under the Model Rules (no owner
    # condition, IEIM904230), two under DAC7 (the same owner, PStTG § 6(7))
    gb_listings = gb["Byrne"].findall(".//dpi:PropertyListing", NS)
    lt_listings = lt["Byrne"].findall(".//dpi:PropertyListing", NS)
    assert len(gb_listings) == 1 and len(lt_listings) == 2
    assert gb_listings[0].findtext("dpi:Consideration/dpi:ConsQ3", namespaces=NS) == "1200"
    assert gb_listings[0].findtext("dpi:RentedDays", namespaces=NS) == "8"
    assert [x.findtext("dpi:Consideration/dpi:ConsQ3", namespaces=NS) for x in lt_listings] == ["600", "600"]
    # the UK's decisions say why
    decided = {row["seller_id"]: row for row in _decisions(Path(uk["out"]).parent / "staging")}
    assert decided["US-LT-TIN"]["decision"] == decided["US-PE-IE"]["decision"] == NOT_REPORTABLE_JURISDICTION
    assert decided["US-LT-TIN"]["residence_countries"] == ["US"] and decided["CA-1"]["reading"] == "GB"
    assert "resident outside the UK's reportable jurisdictions" in decided["US-PE-IE"]["explanation"]


def _decisions(staging: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    [path] = staging.rglob("rules/decisions.parquet")
    return pq.read_table(path).to_pylist()


def test_corrections_and_deletions_are_dpi402_with_corr_doc_ref_ids_in_the_new_message(
    tmp_path: Path, official: etree.XMLSchema
) -> None:
    ledger = f"sqlite:///{tmp_path}/ledger.db"
    first = gb_run(tmp_path, market(), step="first", ledger=ledger)
    [first_file] = files(first)
    filed = {name or "PO": ref for ref, name in _records(first_file)}
    # HMRC accepted the first file (its result names no record: matched by the MessageRefId given)
    assert main(["ledger", "mark-uploaded", first_file.stem, "--by", "ops", "--ledger", ledger]) == 0
    (tmp_path / "accepted.xml").write_bytes(hmrc_bre("Accepted"))
    rc = main(
        ["status-import", str(tmp_path / "accepted.xml"), "--message-ref-id", first_file.stem, "--ledger", ledger]
    )
    assert rc == 0
    # every sale of the UK seller refunded after the filing (it leaves the report: OECD3), the
    # Canadian one paid once more (OECD2); the PlatformOperator resent under its DocRefId (OECD0)
    m = market(refund=True)
    m.tx("CA-1", "2025-11-03 10:00:00", 50_00, activity="personal_services", currency="GBP")
    second = gb_run(tmp_path, m, step="second", ledger=ledger, run_id=str(uuid.UUID(int=2)))
    [path] = files(second)
    root = etree.parse(str(path)).getroot()
    assert official.validate(root) and hmrc_checks(path) == []
    mri = root.findtext("dpi:MessageSpec/dpi:MessageRefId", namespaces=NS)
    assert root.findtext("dpi:MessageSpec/dpi:MessageTypeIndic", namespaces=NS) == "DPI402"
    specs = doc_specs(root)
    assert specs[0] == ("OECD10", filed["PO"], None)  # the resent PlatformOperator keeps its DocRefId
    corrected = {corr: (indic, ref) for indic, ref, corr in specs[1:]}
    assert corrected[filed["Smith"]][0] == "OECD13" and corrected[filed["Roy"]][0] == "OECD12"
    # the new records' DocRefIds begin with this message's MessageRefId
    assert all(ref.startswith(f"{mri}_") for _, ref in corrected.values())
    # and the Canadian seller's figures are the new ones: GBP 600 + 50 in Q4
    assert sellers(root)["Roy"].findtext(".//dpi:ConsQ4", namespaces=NS) == "50"
    # HMRC rejects the second file naming its resent PlatformOperator, whose DocRefId begins with
    # the first file's MessageRefId: the rejection is the second file's; the first stays accepted
    assert main(["ledger", "mark-uploaded", mri, "--by", "ops", "--ledger", ledger]) == 0
    (tmp_path / "rejected.xml").write_bytes(bre([filed["PO"]]))
    assert main(["status-import", str(tmp_path / "rejected.xml"), "--ledger", ledger]) == 0
    with open_ledger(ledger) as led:
        assert (led.message(first_file.stem).status, led.message(mri).status) == ("accepted", "rejected")


ASSUMING = """
[assuming_operator]
name = "Group Market Ltd"
tin = "1234567890"
tin_issued_by = "GB"

[assuming_operator.address]
street = "Strand"
building = "1"
post_code = "WC2N 5DN"
city = "London"
country = "GB"
"""


def no_sellers() -> Marketplace:
    """The source of an operator whose reporting another assumes: no seller of its own to report."""
    m = Marketplace()
    m.seller("NONE", country="GB")
    m.sales("NONE", 1, 1_00, currency="GBP")
    m.rows["transactions"].clear()
    return m


def test_an_operator_whose_reporting_is_assumed_files_hmrcs_dpi401(tmp_path: Path, official: etree.XMLSchema) -> None:
    manifest = gb_run(tmp_path, no_sellers(), step="assumed", ledger=f"sqlite:///{tmp_path}/l.db", extra=ASSUMING)
    [path] = files(manifest)
    root = etree.parse(str(path)).getroot()
    assert official.validate(root) and hmrc_checks(path) == []
    # AssumedReportingService: DPI401, AssumedReporting true, the AssumingPlatformOperator, no seller
    assert root.findtext("dpi:MessageSpec/dpi:MessageTypeIndic", namespaces=NS) == "DPI401"
    assert root.findtext(".//dpi:PlatformOperator/dpi:AssumedReporting", namespaces=NS) == "true"
    other = root.find(".//dpi:OtherPlatformOperators/dpi:AssumingPlatformOperator", NS)
    assert other is not None and other.findtext("dpi:Name", namespaces=NS) == "Group Market Ltd"
    assert root.find(".//dpi:ReportableSeller", NS) is None
    assert [d[0] for d in doc_specs(root)] == ["OECD11", "OECD11"]  # the test markers of OECD1
    # the elements HMRC's assumed sample has, in its order
    sample = etree.parse(str(ASSUMED_SAMPLE)).getroot()

    def layout(r: etree._Element) -> list[str]:
        po = r.find(".//dpi:PlatformOperator", NS)
        return [etree.QName(c).localname for c in po if etree.QName(c).localname not in ("IN", "Nexus")]

    assert layout(root) == layout(sample)


def test_a_corrected_assuming_operator_is_oecd2_beside_the_resent_platform_operator(
    tmp_path: Path, official: etree.XMLSchema
) -> None:
    ledger = f"sqlite:///{tmp_path}/l.db"
    first = gb_run(tmp_path, no_sellers(), step="first", ledger=ledger, extra=ASSUMING)
    [first_file] = files(first)
    po_ref, assuming_ref = (ref for _, ref, _ in doc_specs(etree.parse(str(first_file)).getroot()))
    assert main(["ledger", "mark-uploaded", first_file.stem, "--by", "ops", "--ledger", ledger]) == 0
    (tmp_path / "accepted.xml").write_bytes(hmrc_bre("Accepted"))
    rc = main(
        ["status-import", str(tmp_path / "accepted.xml"), "--message-ref-id", first_file.stem, "--ledger", ledger]
    )
    assert rc == 0
    # the assuming operator moved: its record is corrected, the PlatformOperator is unchanged
    moved = ASSUMING.replace('street = "Strand"', 'street = "Fleet Street"')
    second = gb_run(tmp_path, no_sellers(), step="second", ledger=ledger, extra=moved, run_id=str(uuid.UUID(int=2)))
    [path] = files(second)
    root = etree.parse(str(path)).getroot()
    assert official.validate(root) and hmrc_checks(path) == []
    mri = root.findtext("dpi:MessageSpec/dpi:MessageRefId", namespaces=NS)
    assert root.findtext("dpi:MessageSpec/dpi:MessageTypeIndic", namespaces=NS) == "DPI402"
    assert root.findtext(".//dpi:PlatformOperator/dpi:AssumedReporting", namespaces=NS) == "true"
    (po_indic, po_again, po_corr), (indic, ref, corr) = doc_specs(root)
    # the PlatformOperator resent under its DocRefId (OECD0: test marker OECD10), not corrected
    assert (po_indic, po_again, po_corr) == ("OECD10", po_ref, None)
    # the AssumingPlatformOperator corrected (OECD2: OECD12), a new DocRefId of this message
    assert (indic, corr) == ("OECD12", assuming_ref) and ref.startswith(f"{mri}_") and ref != assuming_ref
    other = root.find(".//dpi:OtherPlatformOperators/dpi:AssumingPlatformOperator", NS)
    assert other is not None and "Fleet Street" in etree.tostring(other, encoding="unicode")
    assert root.find(".//dpi:ReportableSeller", NS) is None


def test_a_message_over_hmrcs_size_is_split_and_each_part_names_its_own_records(
    tmp_path: Path, official: etree.XMLSchema
) -> None:
    class SmallGb(GbProfile):
        max_file_bytes = 9_000  # a few sellers a file, to split without writing 100 MB

    m = market()
    for i in range(8):
        m.seller(f"UK-{i:02d}", country="GB", tin=f"AB{i:06d}C", last_name=f"Seller{i:02d}")
        m.sales(f"UK-{i:02d}", 2, 100_00, activity="personal_services", currency="GBP")
    saved = NATIONAL["GB"]
    register("GB", SmallGb())
    try:
        manifest = gb_run(tmp_path, m, step="split", ledger=f"sqlite:///{tmp_path}/l.db")
    finally:
        register("GB", saved)
    parts = files(manifest)
    assert len(parts) >= 3
    first_po = None
    for number, path in enumerate(parts, start=1):
        root = etree.parse(str(path)).getroot()
        assert official.validate(root) and path.stat().st_size <= 9_000
        mri = root.findtext("dpi:MessageSpec/dpi:MessageRefId", namespaces=NS)
        assert mri == GB.message_ref_id(_ids(), number)
        po, *rest = doc_specs(root)
        first_po = first_po or po[1]
        # the PlatformOperator: new in the first part, resent under that DocRefId in the others
        assert po == (("OECD11" if number == 1 else "OECD10"), first_po, None)
        assert rest and all(ref.startswith(f"{mri}_") for _, ref, _ in rest)
        assert [c for c in upload_checks(path, platform_operator_id=POID) if not c.ok] == []


def _ids() -> Any:
    from reporting.authorities.base import DocIds

    return DocIds(RUN_ID, "GB", "GB", 2025, {"platform_operator_id": POID})


def bre(rejected: list[str]) -> bytes:
    """HMRC's business rule result rejecting the records ``rejected`` (checked against its schema)."""
    data = hmrc_bre("Rejected", record_errors=[("DPI-RS-015", rejected)])
    assert etree.XMLSchema(etree.parse(str(BRE_XSD))).validate(etree.fromstring(data))
    return data


def test_a_rejected_record_is_imported_and_filed_again_by_the_next_run(
    tmp_path: Path, official: etree.XMLSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = f"sqlite:///{tmp_path}/ledger.db"
    config = write_config(tmp_path / "dac7.toml", filing_state="GB", nexus="RPONEX4", extra=GB_TABLE)

    def cli_run(step: str, m: Marketplace) -> Path:
        folder = tmp_path / step
        folder.mkdir()
        args = ["run", "--config", str(config), "--source", m.write(f"sqlite:///{folder}/source.db"), "--year", "2025"]
        args += [
            "--as-of",
            "2026-01-31",
            "--out",
            str(folder / "out"),
            "--staging",
            str(folder / "st"),
            "--ledger",
            ledger,
        ]
        assert main(args) == 0
        return folder / "out"

    m = market()
    m.rows["seller_tins"] = [t if t["seller_id"] != "CA-1" else {**t, "tin": "12345"} for t in m.rows["seller_tins"]]
    out = cli_run("first", m)
    [path] = sorted((out / "GB").glob("*.xml"))
    mri = path.stem
    rejected = next(ref for ref, s in _records(path) if s == "Roy")
    # the outbox: HMRC's naming and checks, and the steps in the service
    assert main(["transmit", "--out", str(out), "--by", "ops", "--ledger", ledger]) == 0
    checklist = json.loads((out / "outbox" / "GB" / mri / "checklist.json").read_text())
    assert checklist["ready"] and checklist["portal"]["authority"] == "HMRC"
    checked = {c["check"]: c["ok"] for c in checklist["checks"]}
    hmrc = ["FileNameTooLong", "InvalidFileNameExtension", "EntityTooSmall", "EntityTooLarge", "NotXml"]
    hmrc += ["SchemaValidationError", "PlatformOperatorIdMissing", "ReportingPeriodInvalid", "XmlComments"]
    assert checked == dict.fromkeys(["unchanged", "naming", "size", *hmrc], True)
    steps = "\n".join(checklist["steps"])
    assert f"platform operator ID is {POID}" in steps and "ManualAssumedReportExists" in steps
    # a test run: HMRC has no test upload for operators, so the package is for review only
    assert checklist["steps"][0].startswith("HMRC offers platform operators no test upload: this test run's package")
    assert "test environment" not in steps and "mark-uploaded" not in steps
    assert (out / "outbox" / "GB" / mri / path.name).read_bytes() == path.read_bytes()
    assert main(["ledger", "mark-uploaded", mri, "--by", "ops", "--ledger", ledger]) == 0
    # HMRC rejects the Canadian seller's record: the whole file is rejected; the operator downloads
    # the business rules error report, named after the uploaded file (FileErrorsController)
    result = tmp_path / f"{mri}_xml-errors.tsv"
    result.write_bytes(f"Code\tDetail\tDocRef\r\nDPI-RS-015\tTIN invalid\t{rejected}\r\n".encode())
    capsys.readouterr()
    assert main(["status-import", str(result), "--ledger", ledger]) == 0
    said = capsys.readouterr().out
    assert f"{mri}: rejected (gb-hmrc-errors-tsv), message rejected" in said and "1 record error(s)" in said
    assert "matched by the file name of the error report" in said
    with open_ledger(ledger) as led:
        assert led.message(mri).status == "rejected"
        open_before = [r for r in rejections(led.engine) if r.corrected_at is None]
    assert [(r.message_ref_id, r.open_records) for r in open_before] == [(mri, 4)]
    # the TIN is corrected in the source; the next run files every record of the rejected file again
    out2 = cli_run("second", market())
    [again] = sorted((out2 / "GB").glob("*.xml"))
    root = etree.parse(str(again)).getroot()
    assert official.validate(root) and hmrc_checks(again) == []
    assert again.stem != mri and root.findtext(".//dpi:MessageTypeIndic", namespaces=NS) == "DPI401"
    roy = sellers(root)["Roy"]
    assert roy.findtext(".//dpi:TIN", namespaces=NS) == "123456782"
    assert rejected not in {ref for ref, _ in _records(again)}
    assert main(["transmit", "--out", str(out2), "--by", "ops", "--ledger", ledger]) == 0
    assert main(["ledger", "mark-uploaded", again.stem, "--by", "ops", "--ledger", ledger]) == 0
    with open_ledger(ledger) as led:
        [done] = [r for r in rejections(led.engine) if r.message_ref_id == mri]
    assert done.open_records == 0 and done.corrected_at is not None
    # importing the same result again changes nothing
    assert main(["status-import", str(result), "--ledger", ledger]) == 0
    assert "already imported" in capsys.readouterr().out


def _records(path: Path) -> list[tuple[str, str | None]]:
    """(DocRefId, the seller's last name or None for the PlatformOperator) of a file."""
    root = etree.parse(str(path)).getroot()
    out = [(root.findtext(".//dpi:PlatformOperator/dpi:DocSpec/stf:DocRefId", namespaces=NS), None)]
    for name, s in sellers(root).items():
        out.append((s.findtext("dpi:DocSpec/stf:DocRefId", namespaces=NS), name))
    return out
