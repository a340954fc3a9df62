"""The French DGFiP profile: the FR edition end to end, its ids and file name, the DGFiP rules,
gzip + OpenPGP packaging, and the golden FR files."""

from __future__ import annotations

import gzip
import io
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

import pytest
from builders import Marketplace, write_config
from golden.test_golden import RUN_ID as GOLDEN_RUN_ID
from golden.test_golden import TIMESTAMP as GOLDEN_TIMESTAMP
from golden.test_golden import canonical, marketplace
from lxml import etree
from resources import require, require_file, require_tool, vendored

from reporting import authorities
from reporting.authorities.base import DocIds
from reporting.authorities.fr import (
    FR,
    FR_DPI_NS,
    FR_RULES,
    FR_STF_NS,
    NotFrDpiMessageError,
    check_fr_rules,
    package_for_transmission,
)
from reporting.checks.schema import schema_for
from reporting.errors import ConfigError, DataError, ReportingError
from reporting.pipeline import run
from reporting.records import (
    ActivityFigures,
    MessageHeader,
    OperatorRecord,
    PostalAddress,
    SellerRecord,
    Tin,
)

REPO = Path(__file__).resolve().parents[2]
REFERENCE_XSD = vendored("xsd", "fr-dgfip-v1.6__adapted-by-backmarket")
SAMPLES = vendored("samples", "fr-dgfip-examples__adapted-by-backmarket")
GOLDEN = REPO / "tests" / "golden" / "fr"
NS = {"dpi": FR_DPI_NS, "stf": FR_STF_NS}
RUN_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
SIREN = "123456789"
FR_TABLE = f'\n[authorities.FR]\nsiren = "{SIREN}"\n'
FILE_NAME = re.compile(r"DPIDAC7_(\d{4})_(\d{9})_(\d{3})_(\d{14})\.xml")


def market() -> Marketplace:
    m = Marketplace()
    m.seller("FR1", country="FR", tin="1234567890123", first_name="Jeanne", last_name="Martin", birth_country="FR")
    m.sales("FR1", 40, 100_00)
    m.seller("FR2", country="FR", tin=None, first_name="Louis", last_name="Bernard", birth_city="Lyon")
    m.sales("FR2", 12, 250_00, activity="personal_services", fee_minor=25_00)
    m.seller("FRE", seller_type="entity", country="FR", tin="52484162312345", legal_name="SCI Mouffetard")
    m.listing(
        "L1", "FRE", country="FR", address_street="10 rue Mouffetard", address_city="Paris", property_type="DPI905"
    )
    m.tx("FRE", "2025-07-01 12:00:00", 850_00, activity="immovable_property", listing_id="L1", rented_days=3)
    m.seller("DE1", country="DE", tin="86095742719")
    m.sales("DE1", 40, 100_00)
    return m


def config(tmp_path: Path, extra: str = FR_TABLE, *, filing_state: str | None = "FR", **kw: str) -> Path:
    """The demo operator filing in France (``nexus_country``; ``filing_state=None``: in LT, its
    address), with ``extra`` appended (its identifiers)."""
    return write_config(tmp_path / "dac7.toml", filing_state=filing_state, extra=extra, **kw)


def go(tmp_path: Path, cfg: Path, m: Marketplace | None = None) -> dict:
    url = (m or market()).write(f"sqlite:///{tmp_path}/source.db")
    return run(
        config_path=cfg,
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        run_id=RUN_ID,
        timestamp=datetime(2026, 1, 15, 6, 0),
        # a ledger per directory: the pinned run id would give a second run the same ids (80000)
        ledger_url=f"sqlite:///{tmp_path}/dac7-ledger.sqlite3",
    ).manifest


def fr_file(tmp_path: Path, manifest: dict) -> tuple[dict, Path]:
    [fr] = [f for f in manifest["files"] if f["authority"] == "FR"]
    return fr, tmp_path / "out" / fr["file"]


# ---------------------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("environment", ["test", "prod"])
def test_fr_profile_end_to_end(tmp_path: Path, environment: str) -> None:
    manifest = go(tmp_path, config(tmp_path, environment=environment))
    fr, path = fr_file(tmp_path, manifest)
    assert fr["profile"] == "FR" and fr["sellers"] == 4  # every seller of the filing, DE1 too
    assert {f["authority"]: f["profile"] for f in manifest["files"]} == {"FR": "FR"}
    doc = etree.parse(str(path))
    root = doc.getroot()
    assert root.tag == f"{{{FR_DPI_NS}}}DPI_OECD" and root.get("version") == "1.0"
    assert set(root.nsmap.values()) == {FR_DPI_NS, FR_STF_NS}  # no ":v1"
    assert len(root.findall("dpi:DPIBody", NS)) == 1
    spec = root.find("dpi:MessageSpec", NS)
    assert [etree.QName(e).localname for e in spec] == [
        "TransmittingCountry",
        "ReceivingCountry",
        "MessageType",
        "MessageRefId",
        "MessageTypeIndic",
        "ReportingPeriod",
        "Timestamp",
    ]
    assert spec.findtext("dpi:TransmittingCountry", namespaces=NS) == "FR"
    assert spec.findtext("dpi:ReceivingCountry", namespaces=NS) == "FR"
    for absent in ("SendingEntityIN", "Warning", "Contact", "GVS", "Nationality", "TaxQ1"):
        assert not list(root.iter(f"{{{FR_DPI_NS}}}{absent}")), absent
    assert len(list(root.iter(f"{{{FR_DPI_NS}}}TaxesQ1"))) == 4  # one Taxes block per seller here

    # MessageRefId, Timestamp and file name agree.
    ref = spec.findtext("dpi:MessageRefId", namespaces=NS)
    assert ref == fr["message_ref_id"] and len(ref) <= 88
    assert re.fullmatch(r"OP_(202[3-9]|20[3-9]\d)_(\d{9})_.+", ref)
    assert ref.startswith(f"OP_2025_{SIREN}_")
    timestamp = spec.findtext("dpi:Timestamp", namespaces=NS)
    assert timestamp == "2026-01-15T07:00:00.000"  # 06:00 UTC is 07:00 in Paris in January
    name = FILE_NAME.fullmatch(path.name)
    assert name is not None, path.name
    year, siren, number, stamp = name.groups()
    assert (year, siren, number) == ("2025", SIREN, "001")
    assert stamp == re.sub(r"\D", "", timestamp)[:14]

    # Test and production markers.
    doc_types = {e.text for e in root.iter(f"{{{FR_STF_NS}}}DocTypeIndic")}
    assert doc_types == ({"OECD11"} if environment == "test" else {"OECD1"})
    for e in root.iter(f"{{{FR_STF_NS}}}DocRefId"):
        assert re.fullmatch(rf"OP_2025_{SIREN}_[0-9A-F]{{32}}", e.text)

    # The operator in its French form: the SIREN as TIN, one business name, Nexus, AssumedReporting.
    po = root.find("dpi:DPIBody/dpi:PlatformOperator", NS)
    assert [etree.QName(e).localname for e in po] == [
        "ResCountryCode",
        "TIN",
        "VAT",
        "Name",
        "PlatformBusinessName",
        "Address",
        "Nexus",
        "AssumedReporting",
        "DocSpec",
    ]
    tin = po.find("dpi:TIN", NS)
    assert (tin.text, tin.get("issuedBy")) == (SIREN, "FR")
    assert po.findtext("dpi:PlatformBusinessName", namespaces=NS) == "Demo Market"

    # Sellers: one EU residence, NOTIN for the seller without TIN, PropertyType, one address form.
    residences = [
        [e.text for e in party.findall("dpi:ResCountryCode", NS)] for party in root.iterfind(".//dpi:IndSellerID", NS)
    ]
    assert sorted(residences) == [["DE"], ["FR"], ["FR"]]
    [unknown] = [t for t in root.iterfind(".//dpi:IndSellerID/dpi:TIN", NS) if t.get("unknown") == "true"]
    assert unknown.text == "NOTIN" and unknown.get("issuedBy") is None
    assert root.findtext(".//dpi:PropertyListing/dpi:PropertyType", namespaces=NS) == "DPI905"
    for address in root.iter(f"{{{FR_DPI_NS}}}Address"):
        assert len(address.findall("dpi:AddressFix", NS)) + len(address.findall("dpi:AddressFree", NS)) == 1

    schema = schema_for(FR.schema_resource)
    assert schema.validate(doc), schema.error_log
    assert check_fr_rules(path) == []


def test_fr_output_validates_against_the_reference_schema(tmp_path: Path) -> None:
    require_file(REFERENCE_XSD / "DPIXML_v1.1-fr1.xsd")
    schema = etree.XMLSchema(etree.parse(str(REFERENCE_XSD / "DPIXML_v1.1-fr1.xsd")))
    for environment in ("test", "prod"):
        run_dir = tmp_path / environment
        run_dir.mkdir()
        _, path = fr_file(run_dir, go(run_dir, config(run_dir, environment=environment)))
        doc = etree.parse(str(path))
        assert schema.validate(doc), schema.error_log
    # and the reference schema does see the message: break it and it says so
    doc.find(".//dpi:MessageSpec/dpi:MessageRefId", NS).text = "FR2025FR1"
    assert not schema.validate(doc)


def test_fr_profile_has_no_eu_rules_and_its_own_table() -> None:
    assert FR.rule_set.name == "DGFiP" and FR.rule_set.codes == frozenset()
    assert set(FR_RULES) == {"FR-2", "FR-12", "FR-33", "FR-34-1", "FR-34-2"}


# ---------------------------------------------------------------------------------------- identifiers


def test_a_nexus_in_france_without_siren_is_a_configuration_error(tmp_path: Path) -> None:
    cfg = config(tmp_path, "", routing="nexus")
    with pytest.raises(ConfigError, match=r"\[authorities\.FR\] siren"):
        go(tmp_path, cfg)


def test_an_fr_table_without_siren_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[authorities\.FR\] siren"):
        go(tmp_path, config(tmp_path, '\n[authorities.FR]\nnote = "x"\n'))


@pytest.mark.parametrize("siren", ["12345678", "1234567890", "12345678A", "123 456 789"])
def test_a_malformed_siren_is_a_configuration_error(tmp_path: Path, siren: str) -> None:
    with pytest.raises(ConfigError, match=r"\[authorities\.FR\] siren must be"):
        go(tmp_path, config(tmp_path, f'\n[authorities.FR]\nsiren = "{siren}"\n'))
    assert FR.required_identifiers == ("siren",)
    assert FR.identifier_problem({"siren": SIREN}) is None


def test_a_preview_of_what_france_receives_is_in_the_eu_edition(tmp_path: Path) -> None:
    # an operator filing in LT: France receives its residents from LT through the exchange
    manifest = go(tmp_path, config(tmp_path, FR_TABLE, filing_state=None, routing="jurisdiction"))
    fr, path = fr_file(tmp_path, manifest)
    assert fr["profile"] == "EU" and fr["sellers"] == 3
    root = etree.parse(str(path)).getroot()
    assert root.tag == "{urn:oecd:ties:dpi:v1}DPI_OECD"
    assert root.findtext(".//{urn:oecd:ties:dpi:v1}TransmittingCountry") == "LT"


# ---------------------------------------------------------------------------------------- ids, names, time


@dataclass(frozen=True)
class EnvIds(DocIds):
    """DocIds as the renderer will pass them once it carries the environment (see fr.py)."""

    environment: str = "test"


def ids(environment: str | None = None) -> DocIds:
    base = replace(FR.doc_ids(RUN_ID, "LT", "FR", 2025), identifiers={"siren": SIREN})
    if environment is None:
        return base
    return EnvIds(
        base.run_id, base.transmitting_country, base.receiving_country, base.year, base.identifiers, environment
    )


def header(ref: str, environment: str = "test", when: datetime = datetime(2026, 1, 15, 7, 0)) -> MessageHeader:
    return MessageHeader(
        transmitting_country="FR",
        receiving_country="FR",
        message_ref_id=ref,
        message_type_indic="DPI401",
        reporting_period=date(2025, 12, 31),
        timestamp=when,
        environment=environment,
        identifiers={"siren": SIREN},
    )


def test_message_ref_ids_parts_and_test_marker() -> None:
    prod = FR.message_ref_id(ids("prod"), 1)
    assert re.fullmatch(rf"OP_2025_{SIREN}_d001_[0-9A-F]{{32}}", prod)
    test = FR.message_ref_id(ids("test"), 2)
    assert re.fullmatch(rf"OP_2025_{SIREN}_t2_d002_[0-9A-F]{{32}}", test)
    assert FR.message_ref_id(ids(), 1) == prod  # ids without an environment: no marker
    assert max(len(FR.message_ref_id(ids("test"), p)) for p in (1, 99, 999)) <= 88
    assert FR.file_name(header(test)) == f"DPIDAC7_2025_{SIREN}_002_20260115070000.xml"
    with pytest.raises(ReportingError, match="001 to 999"):
        FR.message_ref_id(ids(), 1000)
    with pytest.raises(ConfigError, match=r"\[authorities\.FR\] siren"):
        FR.message_ref_id(FR.doc_ids(RUN_ID, "LT", "FR", 2025), 1)
    with pytest.raises(ReportingError, match="does not hold the SIREN"):
        FR.file_name(replace(header(prod), identifiers={"siren": "987654321"}))
    assert FR.doc_type_indic("new", "test") == "OECD11" and FR.doc_type_indic("new", "prod") == "OECD1"
    assert FR.doc_type_indic("resent", "test") == "OECD10" and FR.doc_type_indic("deleted", "prod") == "OECD3"


def test_timestamp_is_paris_local_time_to_the_millisecond() -> None:
    assert FR.message_timestamp(datetime(2026, 1, 15, 6, 0, 0, 123_456)) == datetime(2026, 1, 15, 7, 0, 0, 123_000)
    assert FR.message_timestamp(datetime(2026, 7, 1, 6, 0)) == datetime(2026, 7, 1, 8, 0)  # CEST
    out = io.BytesIO()
    when = FR.message_timestamp(datetime(2026, 7, 1, 21, 59, 59, 999_999))
    FR.write(out, header(FR.message_ref_id(ids(), 1), when=when), operator(), ("OECD11", "OP_2025_x"), [])
    assert b"<dpi:Timestamp>2026-07-01T23:59:59.999</dpi:Timestamp>" in out.getvalue()


# ---------------------------------------------------------------------------------------- the writer


def operator(**kw: object) -> OperatorRecord:
    values: dict = {
        "name": "Plateforme SAS",
        "tin": "LT304567891",
        "tin_issued_by": "LT",
        "nexus": "RPONEX1",
        "res_country": "FR",
        "address": PostalAddress("FR", "Paris", "15 rue de l'Eglise", post_code="75000"),
    }
    values.update(kw)
    return OperatorRecord(**values)


def figures(activity: str = "sale_of_goods", cons: tuple[int, int, int, int] = (100, 0, 0, 0), **kw: object):
    return ActivityFigures(activity, "EUR", cons, (1, 0, 0, 0), (10, 0, 0, 0), (0, 0, 0, 0), **kw)


def seller(seller_id: str = "S1", **kw: object) -> SellerRecord:
    values: dict = {
        "seller_id": seller_id,
        "seller_type": "individual",
        "res_countries": ("FR",),
        "tins": (Tin("1234567890123", "FR"),),
        "address": PostalAddress("FR", "Lyon", "1 place Bellecour"),
        "activities": (figures(),),
        "first_name": "Jeanne",
        "last_name": "Martin",
        "birth_date": date(1980, 5, 17),
        "birth_city": "Lyon",
        "birth_country": "FR",
    }
    values.update(kw)
    return SellerRecord(**values)


def entity(seller_id: str = "E1", **kw: object) -> SellerRecord:
    values: dict = {
        "seller_type": "entity",
        "tins": (Tin("52484162312345", "FR"),),
        "legal_name": "SCI Mouffetard",
        "brn": "524841623",
        "first_name": None,
        "last_name": None,
        "birth_date": None,
    }
    values.update(kw)
    return seller(seller_id, **values)


def render(*sellers: SellerRecord, op: OperatorRecord | None = None, environment: str = "test") -> bytes:
    doc_type = FR.doc_type_indic("new", environment)
    docs = [(s, (doc_type, FR.doc_ref_id(ids(), f"seller/{s.seller_id}"))) for s in sellers]
    out = io.BytesIO()
    h = header(FR.message_ref_id(ids(), 1), environment)
    FR.write(out, h, op or operator(), (doc_type, FR.doc_ref_id(ids(), "platform-operator")), docs)
    return out.getvalue()


def valid(xml: bytes) -> etree._ElementTree:
    doc = etree.parse(io.BytesIO(xml))
    schema = schema_for(FR.schema_resource)
    assert schema.validate(doc), schema.error_log
    return doc


def test_writer_french_forms() -> None:
    listing = figures(
        "immovable_property",
        listing_id="L1",
        address=PostalAddress("FR", "Paris", "10 rue Mouffetard", free_text="second line"),
        property_type="DPI910",
        other_property_type="Péniche",
        rented_days=12,
    )
    xml = render(
        # an individual resident outside the EU first, then in Spain: the EU state is the one filed
        seller("S1", res_countries=("US", "ES", "FR")),
        entity("E1", res_countries=("FR",), activities=(listing,), tins=()),
        seller("S2", tins=(), address=PostalAddress("FR", None, free_text="12 allée des Lilas\n69000 Lyon")),
        op=operator(platform_business_name=None, vat="FR32123456789"),
    )
    root = valid(xml).getroot()
    po = root.find(".//dpi:PlatformOperator", NS)
    assert po.findtext("dpi:PlatformBusinessName", namespaces=NS) == "Plateforme SAS"  # the name, when none
    assert po.findtext("dpi:TIN", namespaces=NS) == SIREN
    parties = root.findall(".//dpi:ReportableSeller/dpi:Identity/*/dpi:Standard/*", NS)
    assert [p.findtext("dpi:ResCountryCode", namespaces=NS) for p in parties] == ["ES", "FR", "FR"]
    entity_tin = parties[1].find("dpi:TIN", NS)
    assert (entity_tin.text, entity_tin.get("unknown")) == ("NOTIN", "true")
    listing_address = root.find(".//dpi:PropertyListing/dpi:Address", NS)
    assert listing_address.find("dpi:AddressFree", NS) is None  # AddressFix only, never both
    assert root.findtext(".//dpi:PropertyListing/dpi:OtherPropertyType", namespaces=NS) == "Péniche"
    assert parties[2].findtext("dpi:Address/dpi:AddressFree", namespaces=NS) == "12 allée des Lilas 69000 Lyon"
    assert check_fr_rules(xml) == []


def test_what_france_cannot_receive_is_a_finding_before_writing() -> None:
    no_type = figures("immovable_property", listing_id="L9", address=PostalAddress("FR", "Paris"))
    outside = seller("S9", res_countries=("US",))
    negative = seller("S8", activities=(figures(cons=(100, -5, 0, 0)),))
    zero = seller("S7", activities=(figures(cons=(0, 0, 0, 0)),))
    assert [p[:3] for p in FR.seller_problems(entity("E9", activities=(no_type,)))] == [
        ("fr.property_type_missing", "property_listings", "L9")
    ]
    assert [p[0] for p in FR.seller_problems(outside)] == ["fr.residence_not_eu"]
    assert [p[0] for p in FR.seller_problems(negative)] == ["fr.amount_negative"]
    assert [p[0] for p in FR.seller_problems(zero)] == ["fr.consideration_zero"]
    assert FR.seller_problems(seller()) == []
    # The writer refuses them too (a caller that skipped seller_problems), naming the row.
    with pytest.raises(DataError, match=r"\[fr\.property_type_missing\] property_listings L9"):
        render(entity("E9", activities=(no_type,)))


def test_a_listing_without_property_type_quarantines_the_seller(tmp_path: Path) -> None:
    """What the DGFiP cannot receive quarantines the seller before the render, with the row
    named; the rest of the filing goes on (a production run would refuse it)."""
    m = market()
    m.listing("L2", "FRE", country="FR", address_city="Lyon", property_type=None)
    m.tx("FRE", "2025-08-01 12:00:00", 500_00, activity="immovable_property", listing_id="L2", rented_days=2)
    manifest = go(tmp_path, config(tmp_path), m)
    assert manifest["summary"]["decisions"]["quarantined:fr.property_type_missing"] == 1
    quarantine = (tmp_path / "out" / "reports" / "quarantine.csv").read_text()
    assert "FRE,fr.property_type_missing,property_listings,L2," in quarantine
    assert manifest["files"], "the other sellers are filed"
    with pytest.raises(DataError, match=r"fr\.property_type_missing.*L2") as exc:
        run(
            config_path=config(tmp_path, environment="prod"),
            source_url=f"sqlite:///{tmp_path}/source.db",
            year=2025,
            as_of=date(2026, 1, 31),
            out_dir=tmp_path / "prod",
            staging_root=tmp_path / "st",
        )
    assert any(f.rule == "fr.property_type_missing" and f.key == "L2" for f in exc.value.findings)


# ---------------------------------------------------------------------------------------- DGFiP rules


def base_message() -> etree._ElementTree:
    """A valid French message: an individual (S1) and an entity (E1), each with a proper TIN."""
    return valid(render(seller("S1"), entity("E1")))


def _xml(doc: etree._ElementTree) -> bytes:
    return etree.tostring(doc)


def _party(doc: etree._ElementTree, n: int) -> etree._Element:
    return doc.findall(".//dpi:ReportableSeller/dpi:Identity/*/dpi:Standard/*", NS)[n]


def _add_notin(party: etree._Element) -> None:
    notin = etree.Element(f"{{{FR_DPI_NS}}}TIN", unknown="true")
    notin.text = "NOTIN"
    party.find("dpi:TIN", NS).addnext(notin)


def _negative(doc: etree._ElementTree) -> None:
    doc.find(".//dpi:ReportableSeller//dpi:ConsQ2", NS).text = "-5"


def _zero(doc: etree._ElementTree) -> None:
    for e in doc.find(".//dpi:ReportableSeller", NS).iter(f"{{{FR_DPI_NS}}}ConsQ1"):
        e.text = "0"


def _no_birthplace(doc: etree._ElementTree) -> None:
    person = _party(doc, 0)
    tin = person.find("dpi:TIN", NS)
    tin.attrib.clear()
    tin.text = "NOTIN"
    tin.set("unknown", "true")
    birth_place = person.find("dpi:BirthInfo/dpi:BirthPlace", NS)
    birth_place.getparent().remove(birth_place)


def _no_activity(doc: etree._ElementTree) -> None:
    activities = doc.find(".//dpi:ReportableSeller/dpi:RelevantActivities", NS)
    for child in list(activities):
        activities.remove(child)


BROKEN = {
    "FR-2 negative": ("FR-2", _negative, "dpi:ConsQ2"),
    "FR-2 zero": ("FR-2", _zero, "dpi:RelevantActivities"),
    "FR-12": ("FR-12", _no_birthplace, "dpi:BirthInfo"),
    "FR-33": ("FR-33", _no_activity, "dpi:RelevantActivities"),
    "FR-34-1": ("FR-34-1", lambda doc: _add_notin(_party(doc, 1)), "dpi:TIN"),
    "FR-34-2": ("FR-34-2", lambda doc: _add_notin(_party(doc, 0)), "dpi:TIN"),
}


def test_the_minimal_message_passes_every_dgfip_rule() -> None:
    assert check_fr_rules(_xml(base_message())) == []


@pytest.mark.parametrize("case", BROKEN)
def test_each_dgfip_rule_on_a_minimal_broken_message(case: str) -> None:
    code, breaker, last_step = BROKEN[case]
    doc = base_message()
    breaker(doc)
    findings = check_fr_rules(_xml(doc))
    assert {f.code for f in findings} == {code}, [f.describe() for f in findings]
    for f in findings:
        assert f.severity == "error" and f.rule_id == f"DGFiP {code[3:]}" and f.message
        [target] = doc.xpath(f.xpath, namespaces=NS)  # the XPath names the offending element
        assert f.xpath.split("/")[-1].startswith(last_step)
        seller_elem = next(a for a in target.iterancestors() if etree.QName(a).localname == "ReportableSeller")
        assert f.doc_ref_id == seller_elem.findtext("dpi:DocSpec/stf:DocRefId", namespaces=NS)


def test_dgfip_rules_refuse_another_edition() -> None:
    eu = b'<dpi:DPI_OECD xmlns:dpi="urn:oecd:ties:dpi:v1" version="1.0"><dpi:MessageSpec/></dpi:DPI_OECD>'
    with pytest.raises(NotFrDpiMessageError, match="without :v1"):
        check_fr_rules(eu)


def test_the_french_samples_pass_the_dgfip_rules() -> None:
    samples = sorted(SAMPLES.glob("*/declaration.xml"))
    require(bool(samples), f"the French samples under {SAMPLES}")
    assert len(samples) == 6
    for path in samples:
        assert check_fr_rules(path) == [], path


# ---------------------------------------------------------------------------------------- gzip + OpenPGP


@pytest.fixture
def gnupg_home() -> Iterator[Path]:
    """A short-lived GNUPGHOME holding a fresh test key pair (short path: gpg-agent's socket)."""
    require_tool("gpg", "GnuPG: the OpenPGP packaging cannot be tested without it")
    home = Path(tempfile.mkdtemp(prefix="g"))
    try:
        yield home
    finally:
        if shutil.which("gpgconf"):
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def _gpg(home: Path, *args: str, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
        capture_output=True,
        check=True,
        **kw,
    )


def test_gzip_and_openpgp_round_trip(tmp_path: Path, gnupg_home: Path) -> None:
    _gpg(
        gnupg_home, "--quick-generate-key", "DGFiP test key <dgfip-test@example.invalid>", "default", "default", "never"
    )
    fingerprint = next(
        line.split(":")[9]
        for line in _gpg(gnupg_home, "--with-colons", "--fingerprint", "--list-keys").stdout.decode().splitlines()
        if line.startswith("fpr:")
    )
    key = tmp_path / "dgfip_test.asc"
    key.write_bytes(_gpg(gnupg_home, "--armor", "--export", fingerprint).stdout)
    xml = tmp_path / "DPIDAC7_2025_123456789_001_20260115070000.xml"
    xml.write_bytes(render(seller("S1"), entity("E1")))

    out = package_for_transmission(xml, key, tmp_path / f"{xml.name}.gz.gpg", expected_fingerprint=fingerprint)
    data = out.read_bytes()
    assert not data.startswith(b"-----BEGIN") and data[0] & 0x80  # binary OpenPGP packets, not armored
    assert xml.read_bytes() not in data
    packets = _gpg(gnupg_home, "--list-packets", str(out)).stdout.decode()
    assert ":pubkey enc packet:" in packets
    decrypted = _gpg(gnupg_home, "--decrypt", str(out)).stdout
    assert decrypted[:2] == b"\x1f\x8b"  # gzip inside
    assert gzip.decompress(decrypted) == xml.read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))

    with pytest.raises(ConfigError, match="expected 3AE282C6"):
        package_for_transmission(
            xml, key, tmp_path / "other.gpg", expected_fingerprint="3AE282C69675932A19D3245BD155B53F9EFF7A61"
        )
    assert not (tmp_path / "other.gpg").exists()
    with pytest.raises(ConfigError, match="no such public key file"):
        package_for_transmission(xml, tmp_path / "missing.asc", tmp_path / "x.gpg")


def test_the_outbox_encrypts_to_the_dgfip_key_of_the_environment_only_owner_readable(
    tmp_path: Path, gnupg_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat

    import sqlalchemy as sa
    from ledger_filing import Filer, current

    import reporting.ledger.schema as t
    from reporting.authorities import fr
    from reporting.files import file_sha256
    from reporting.ledger import open_ledger
    from reporting.transmit.outbox import prepare_package

    _gpg(gnupg_home, "--quick-generate-key", "Not the DGFiP <x@example.invalid>", "default", "default", "never")
    fingerprint = next(
        line.split(":")[9]
        for line in _gpg(gnupg_home, "--with-colons", "--fingerprint", "--list-keys").stdout.decode().splitlines()
        if line.startswith("fpr:")
    )
    key = tmp_path / "key.asc"
    key.write_bytes(_gpg(gnupg_home, "--armor", "--export", fingerprint).stdout)
    out = tmp_path / "out"
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        filer = Filer(ledger, environment="test", authority="FR", year=2025)
        [ref] = filer.record(filer.plan(current(sellers={"S1": 1})))
        published = out / "FR" / f"{ref}.xml"
        published.parent.mkdir(parents=True)
        published.write_bytes(render(seller("S1")))
        with ledger.engine.begin() as conn:
            conn.execute(
                sa.update(t.messages).where(t.messages.c.message_ref_id == ref).values(sha256=file_sha256(published))
            )
        ledger.mark_published(ref)
        # a key that is not the DGFiP's TEST key: refused, nothing to upload is written
        with pytest.raises(ConfigError, match=f"expected {fr.DGFIP_KEY_FINGERPRINTS['test']}"):
            prepare_package(ledger, ref, published, out, actor="ana", fr_public_key=str(key))
        assert not list((out / "outbox").rglob("*.gpg"))
        # the same key standing in for the DGFiP's TEST key (the real one is not bundled)
        monkeypatch.setitem(fr.DGFIP_KEY_FINGERPRINTS, "test", fingerprint)
        previous = os.umask(0o022)  # a permissive umask: the file is 0600 all the same
        try:
            package = prepare_package(ledger, ref, published, out, actor="ana", fr_public_key=str(key))
        finally:
            os.umask(previous)
    # every check passes but the naming: the test ledger's MessageRefId is not in the FR format
    assert {c["check"]: c["ok"] for c in package.checks} == {
        "unchanged": True,
        "naming": False,
        "encryption": True,
        "size": True,
    }
    [name] = package.files
    assert name == f"{ref}.xml.gz.gpg"
    upload = package.folder / name
    assert stat.S_IMODE(upload.stat().st_mode) == 0o600
    assert gzip.decompress(_gpg(gnupg_home, "--decrypt", str(upload)).stdout) == published.read_bytes()
    [enc] = [c for c in package.checks if c["check"] == "encryption"]
    assert fingerprint.upper() in enc["text"]


def test_packaging_without_gpg_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    xml = tmp_path / "m.xml"
    xml.write_bytes(b"<x/>")
    with pytest.raises(ReportingError, match=r"gpg .*not installed"):
        package_for_transmission(xml, tmp_path / "key.asc", tmp_path / "m.xml.gz.gpg")


# ---------------------------------------------------------------------------------------- golden files


@pytest.mark.parametrize("environment", ["test", "prod"])
def test_fr_initial_message_golden(tmp_path: Path, environment: str, request: pytest.FixtureRequest) -> None:
    """The golden marketplace filed to France as the operator's nexus state (all sellers in one file)."""
    url = marketplace().write(f"sqlite:///{tmp_path}/source.db")
    cfg = write_config(tmp_path / "dac7.toml", environment=environment, filing_state="FR", extra=FR_TABLE)
    manifest = run(
        config_path=cfg,
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        run_id=GOLDEN_RUN_ID,
        timestamp=GOLDEN_TIMESTAMP,
    ).manifest
    [f] = manifest["files"]
    assert f["profile"] == "FR"
    produced = tmp_path / "out" / f["file"]
    golden = GOLDEN / f"initial-{environment}.xml"
    if request.config.getoption("--regenerate-golden"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(produced.read_bytes())
    assert golden.is_file(), f"{golden} is missing: run pytest {Path(__file__).name} --regenerate-golden"
    assert canonical(produced) == canonical(golden)
    schema = schema_for(FR.schema_resource)
    assert schema.validate(etree.parse(str(golden))), schema.error_log
    assert check_fr_rules(golden) == []
    assert authorities.NATIONAL["FR"] is FR


def test_test_environment_message_ref_id_carries_the_test_marker() -> None:
    golden_test = (GOLDEN / "initial-test.xml").read_text(encoding="utf-8")
    golden_prod = (GOLDEN / "initial-prod.xml").read_text(encoding="utf-8")
    assert re.search(r"<dpi:MessageRefId>OP_2025_123456789_t1_d001_[0-9A-F]{32}</dpi:MessageRefId>", golden_test)
    assert re.search(r"<dpi:MessageRefId>OP_2025_123456789_d001_[0-9A-F]{32}</dpi:MessageRefId>", golden_prod)


def test_a_french_filing_and_sellers_resident_elsewhere(tmp_path: Path) -> None:
    """A seller with several EU residences appears with the state of its primary address; one
    resident outside the EU, renting out property in France, is set aside with the reason (the
    DGFiP's rule 8 on what to write is not implemented), listed for action with FR as where it
    would be reported; an LT filing of the same seller (EU edition) reports it."""
    m = market()
    m.seller("MULTI", country="DE", tin="86095742719", first_name="Anna", last_name="Schmidt")
    m.tin("MULTI", "1234567890123", "FR")  # resident in DE (address) and FR (TIN)
    m.sales("MULTI", 40, 100_00)
    m.seller("US1", country="US", tin="123-45-6789", first_name="John", last_name="Doe", birth_country="US")
    m.listing("LUS", "US1", country="FR", address_street="2 quai de Conti", address_city="Paris")
    m.tx("US1", "2025-08-01 12:00:00", 900_00, activity="immovable_property", listing_id="LUS", rented_days=4)
    manifest = go(tmp_path, config(tmp_path), m=m)
    assert manifest["summary"]["decisions"]["quarantined:fr.residence_not_eu"] == 1
    fr, path = fr_file(tmp_path, manifest)
    assert fr["sellers"] == 5  # FR1, FR2, FRE, DE1, MULTI
    root = etree.parse(str(path)).getroot()
    multi = next(
        p
        for p in root.iterfind(".//dpi:IndSellerID", NS)
        if p.findtext("dpi:Name/dpi:LastName", namespaces=NS) == "Schmidt"
    )
    assert [e.text for e in multi.findall("dpi:ResCountryCode", NS)] == ["DE"]
    assert sorted(t.get("issuedBy") for t in multi.findall("dpi:TIN", NS)) == ["DE", "FR"]  # both TINs stay
    quarantine = (tmp_path / "out" / "reports" / "quarantine.csv").read_text()
    assert "US1,fr.residence_not_eu" in quarantine and "rule 8" in quarantine
    diligence = (tmp_path / "out" / "reports" / "due_diligence.csv").read_text()
    [row] = [line for line in diligence.splitlines() if line.startswith("US1,")]
    assert row.startswith("US1,individual,FR,data,") and "threshold crossed without complete data" in row
    # the same seller in a filing in LT (EU edition, any ResCountryCode): reported for its French property
    lt = tmp_path / "lt"
    lt.mkdir()
    manifest = go(lt, config(lt, "", filing_state=None), m=m)
    assert "quarantined:fr.residence_not_eu" not in manifest["summary"]["decisions"]
    [lt_file] = manifest["files"]
    doc = etree.parse(str(lt / "out" / lt_file["file"]))
    eu = {"dpi": "urn:oecd:ties:dpi:v1"}
    assert "US" in [e.text for e in doc.iterfind(".//dpi:IndSellerID/dpi:ResCountryCode", eu)]


REF_FR = "OP_2025_123456789_d001_" + "A" * 32


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("DPIDAC7_2025_123456789_001_20260115070000.xml", True),
        ("DPIDAC7_2025_123456789_001_20261231235959.xml", True),
        ("DPIDAC7_2025_123456789_002_20260115070000.xml", False),  # another part
        ("DPIDAC7_2025_987654321_001_20260115070000.xml", False),  # another SIREN
        ("DPIDAC7_2024_123456789_001_20260115070000.xml", False),  # another year
        ("DPIDAC7_2025_123456789_001_20261315070000.xml", False),  # month 13
        ("DPIDAC7_2025_123456789_001_2026011507000.xml", False),  # 13 digits
        ("DPIDAC7_2025_123456789_001_20260115070000.xml.gz", False),
        (f"{REF_FR}.xml", False),  # the EU naming
    ],
)
def test_the_dgfip_naming_rule(name: str, ok: bool) -> None:
    assert FR.follows_naming(name, REF_FR, 2025) is ok
    assert FR.follows_naming(name, REF_FR, 2024) is False  # the MessageRefId's year is not the period's


def test_the_eu_naming_rule() -> None:
    eu = authorities.profile_for("LT")
    assert eu.follows_naming("LT2025LTabc.xml", "LT2025LTabc", 2025)
    assert not eu.follows_naming("LT2025LTabd.xml", "LT2025LTabc", 2025)
    assert not eu.follows_naming("LT2025LTabc.XML", "LT2025LTabc", 2025)


def test_the_outbox_naming_check_applies_the_profiles_rule(tmp_path: Path) -> None:
    """A name the ledger recorded but the DGFiP's rule refuses fails the naming check; the
    DGFiP's name passes it."""
    import sqlalchemy as sa
    from ledger_filing import Filer, current

    import reporting.ledger.schema as t
    from reporting.files import file_sha256
    from reporting.ledger import open_ledger
    from reporting.transmit.outbox import prepare_package

    out = tmp_path / "out"
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        filer = Filer(ledger, environment="test", authority="FR", year=2025)
        [bad, good] = [filer.record(filer.plan(current(sellers={s: 1})))[0] for s in ("S1", "S2")]
        good_name = "DPIDAC7_2025_123456789_001_20260115070000.xml"
        with ledger.engine.begin() as conn:
            conn.execute(
                sa.update(t.messages)
                .where(t.messages.c.message_ref_id == good)
                .values(message_ref_id=REF_FR, file_name=f"FR/{good_name}")
            )
        results = {}
        for ref, name in ((bad, f"{bad}.xml"), (REF_FR, good_name)):
            published = out / "FR" / name
            published.parent.mkdir(parents=True, exist_ok=True)
            published.write_bytes(b"<dpi/>")
            with ledger.engine.begin() as conn:
                conn.execute(
                    sa.update(t.messages)
                    .where(t.messages.c.message_ref_id == ref)
                    .values(sha256=file_sha256(published))
                )
            ledger.mark_published(ref)
            package = prepare_package(ledger, ref, published, out, actor="ana")
            [naming] = [c for c in package.checks if c["check"] == "naming"]
            results[ref] = naming
    assert results[REF_FR]["ok"] is True
    assert results[bad]["ok"] is False and "does not follow its naming rule" in results[bad]["text"]
