"""Assumed and assuming platform operators (issue 18) end to end: the DGFiP's examples 5 and 6
mapped into our configuration and source and compared record by record with what we file; the
ledger when an assumed operator is added and removed after a first filing; what Hungary, a split
message and a preview do with them; a profile that files the assumed operator's declaration as a
DPI401.

The official schemas and the preflight of every profile's assumed and assuming filings are in
tests/golden/test_golden_assumed.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import Marketplace, write_config
from lxml import etree
from resources import require_file, vendored

from reporting import authorities
from reporting.authorities.eu import EuProfile
from reporting.authorities.fr import FR_DPI_NS, check_fr_rules
from reporting.checks.business import EU_DOMESTIC, EU_EXCHANGE, check_message
from reporting.errors import XmlValidationError
from reporting.ledger import open_ledger
from reporting.ledger.model import OTHER_PLATFORM_OPERATORS, PO_KEY, SELLER
from reporting.pipeline import run, summary_table

SAMPLES = vendored("samples", "fr-dgfip-examples__adapted-by-backmarket")
FR_XSD = vendored("xsd", "fr-dgfip-v1.6__adapted-by-backmarket", "DPIXML_v1.1-fr1.xsd")
EU_XSD = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0", "DPIXML_v1.0.xsd")
AS_OF = date(2026, 1, 31)
TIMESTAMP = datetime(2026, 1, 15, 6, 0)


def go(tmp_path: Path, cfg: Path, m: Marketplace, name: str, run_id: str | None = None, **kw: Any) -> dict[str, Any]:
    """One run into ``tmp_path/name``, with the directory's own ledger."""
    manifest: dict[str, Any] = run(
        config_path=cfg,
        source_url=m.write(f"sqlite:///{tmp_path}/{name}.db"),
        year=2025,
        as_of=AS_OF,
        out_dir=tmp_path / name,
        staging_root=tmp_path / "st",
        run_id=run_id,
        timestamp=TIMESTAMP,
        ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
        **kw,
    ).manifest
    return manifest


# ------------------------------------------------------------------------- the DGFiP's examples

#: What the examples hold and our contract has no place for, each with the reason; everything
#: else of every record must be the same.
UNMAPPED = {
    "PlatformOperator/IN": "the operator's business registration number: no key of [operator]",
    "AddressFix/FloorIdentifier": "the floor of an address: no key of an address in the contract",
    "IndSellerID/Name/Title": "a seller's title: no column of sellers",
    "@nameType": "the name's type (OECD202, OECD207): no column of sellers",
    "@xnlNameType": "the name part's type (OECD208): no column of sellers",
    "IndSellerID/Address@legalAddressType": "an individual's address type (OECD302): not written by the profile",
    "DocSpec/DocRefId": "our DocRefIds, in the FR profile's format",
}


def _skipped(path: str, attribute: str | None = None) -> bool:
    where = f"{path}@{attribute}" if attribute else path
    return any(where.endswith(u) or (u.startswith("@") and attribute == u[1:]) for u in UNMAPPED)


def leaves(elem: etree._Element, base: str = "") -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """Every leaf below ``elem``: (path of local names, text, attributes), in document order,
    without what :data:`UNMAPPED` names."""
    out = []
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        path = f"{base}/{etree.QName(child).localname}" if base else etree.QName(child).localname
        if _skipped(path):
            continue
        attributes = tuple(sorted((k, v) for k, v in child.attrib.items() if not _skipped(path, k)))
        if len(child):
            out += [(path, "", attributes)] if attributes else []
            out += leaves(child, path)
        else:
            out.append((path, (child.text or "").strip(), attributes))
    return out


def records(path: Path) -> dict[str, Any]:
    """The message type and each record of a French message, as leaves."""
    doc = etree.parse(str(path))
    ns = {"dpi": FR_DPI_NS}
    body = doc.find("dpi:DPIBody", ns)
    others = body.find("dpi:OtherPlatformOperators", ns)
    return {
        "MessageTypeIndic": doc.findtext("dpi:MessageSpec/dpi:MessageTypeIndic", namespaces=ns),
        "PlatformOperator": leaves(body.find("dpi:PlatformOperator", ns), "PlatformOperator"),
        "OtherPlatformOperators": [
            (etree.QName(o).localname, leaves(o, etree.QName(o).localname))
            for o in (others if others is not None else [])
        ],
        "ReportableSeller": [leaves(s) for s in body.findall("dpi:ReportableSeller", ns)],
    }


def _other(table: str, name: str, tin: str, issued_by: str, address: dict[str, str]) -> str:
    lines = [f"\n[{table}]", f'name = "{name}"', f'tin = "{tin}"', f'tin_issued_by = "{issued_by}"']
    header = table.strip("[]")
    lines.append(f"[{header}.address]")
    lines += [f'{k} = "{v}"' for k, v in address.items()]
    return "\n".join(lines) + "\n"


def french_operator(
    tmp_path: Path, *, name: str, siren: str, vat: str, business: str, address: dict[str, str], extra: str
) -> Path:
    """A French operator's configuration, as the DGFiP example's PlatformOperator holds it."""
    text = f"""
[operator]
name = "{name}"
tin = "{siren}"
tin_issued_by = "FR"
vat = "{vat}"
platform_business_name = "{business}"
nexus = "RPONEX1"

[operator.address]
{chr(10).join(f'{k} = "{v}"' for k, v in address.items())}

[reporting]
timezone = "Europe/Paris"
environment = "prod"

[quality]
data_docs = false

[authorities.FR]
siren = "{siren}"
{extra}"""
    path = tmp_path / "dac7.toml"
    path.write_text(text, encoding="utf-8")
    return path


def quarter_rentals(m: Marketplace, seller: str, quarters: dict[int, tuple[int, int, int, int]]) -> None:
    """Transport rentals that sum, per quarter, to (consideration, number, fees, taxes) in whole
    euros: the first rental of a quarter carries what does not divide evenly."""
    for q, (cons, n, fees, taxes) in quarters.items():
        for i in range(n):
            share = [v * 100 // n + (v * 100 % n if i == 0 else 0) for v in (cons, fees, taxes)]
            m.tx(
                seller,
                datetime(2025, 3 * q - 1, 10 + i, 12, 0),
                share[0],
                activity="transportation_rental",
                fee_minor=share[1],
                tax_minor=share[2],
            )


def example_5_source() -> Marketplace:
    """The two sellers of example 5, with their identity and their quarterly figures."""
    m = Marketplace()
    m.seller(
        "1-NL",
        country="NL",
        tin="872995473",
        first_name="Wouter",
        last_name="Lavanbach",
        birth_date=date(1954, 5, 4),
        birth_city="Amsterdam",
        birth_country="NL",
        address_street="Van Koetsveldstraat",
        address_building="20",
        address_post_code="3532 ES",
        address_city="Utrecht",
    )
    m.account("1-NL", "NL91ABNA0417164300")
    quarter_rentals(m, "1-NL", {2: (1512, 4, 15, 200), 3: (4577, 10, 457, 350), 4: (2992, 7, 299, 150)})
    m.seller(
        "2-FR",
        country="FR",
        tin="48523611200025",
        first_name="Herve",
        last_name="Formeri",
        birth_date=date(1965, 4, 24),
        birth_city="Nice",
        birth_country="FR",
        address_street="Boulevard Pan Bagnat",
        address_building="12",
        address_post_code="92430",
        address_city="Marnes la Coquette",
    )
    m.account("2-FR", "FR7630001007941234567890185", "SCI de la rue Mouffetard")
    quarter_rentals(m, "2-FR", {3: (1250, 3, 125, 60), 4: (512, 2, 51, 25)})
    return m


def test_example_5_the_assuming_operator_files_the_same_records(tmp_path: Path) -> None:
    """DGFiP example 5 (Locavroum assumes the reporting of MotoLoc.fr): a DPI401 with the
    PlatformOperator, one AssumedPlatformOperator and the two sellers; ours carries the same
    records, field by field, but what :data:`UNMAPPED` names."""
    require_file(SAMPLES / "5_initial_assuming" / "declaration.xml", FR_XSD)
    assumed = _other(
        "[assumed_operators]",
        "MotoLoc.fr",
        "555852446",
        "FR",
        {
            "street": "rue Bernard Ouillon",
            "building": "25",
            "post_code": "92200",
            "city": "Neuilly sur Seine",
            "country": "FR",
        },
    )
    cfg = french_operator(
        tmp_path,
        name="Locavroum",
        siren="555753159",
        vat="FR47555753159",
        business="Autoloc.fr",
        address={
            "street": "rue Bernard Ouillon",
            "building": "25",
            "post_code": "92200",
            "city": "Neuilly sur seine",
            "country": "FR",
        },
        extra=assumed,
    )
    manifest = go(tmp_path, cfg, example_5_source(), "out")
    assert manifest["assumed_reporting"] is False
    assert "assumes this operator's reporting" not in summary_table(manifest)
    [f] = manifest["files"]
    ours = tmp_path / "out" / f["file"]
    expected = records(SAMPLES / "5_initial_assuming" / "declaration.xml")
    got = records(ours)
    assert got == expected
    assert [kind for kind, _ in got["OtherPlatformOperators"]] == ["AssumedPlatformOperator"]
    assert len(got["ReportableSeller"]) == 2
    assert etree.XMLSchema(etree.parse(str(FR_XSD))).validate(etree.parse(str(ours)))
    assert check_fr_rules(ours) == []


def test_example_6_the_assumed_operator_files_the_same_declaration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """DGFiP example 6 (QuickService.de assumes the reporting of Francaise des Services): a DPI403
    with the PlatformOperator, AssumedReporting true, the AssumingPlatformOperator and no seller;
    ours the same. The seller in the source is not reported, and the run says so."""
    require_file(SAMPLES / "6_initial_assumed" / "declaration.xml", FR_XSD)
    assuming = _other(
        "assuming_operator",
        "QuickService.de",
        "HRB 12345",
        "DE",
        {"street": "Haupstrasse", "building": "5", "post_code": "53111", "city": "Bonn", "country": "DE"},
    )
    cfg = french_operator(
        tmp_path,
        name="Francaise des Services",
        siren="632777120",
        vat="FR58632777120",
        business="QuickService.fr",
        address={
            "street": "Quai des Grands Augustins",
            "building": "15",
            "post_code": "75006",
            "city": "Paris",
            "country": "FR",
        },
        extra=assuming,
    )
    m = Marketplace()
    m.seller("FR1", country="FR", tin="1234567890123")
    m.sales("FR1", 3, 900_00, activity="personal_services")
    with caplog.at_level(logging.WARNING, logger="reporting.stages.render"):
        manifest = go(tmp_path, cfg, m, "out")
    assert "1 reportable seller(s) of the source are not reported" in caplog.text
    assert manifest["assumed_reporting"] is True
    assert "another platform operator assumes this operator's reporting" in summary_table(manifest)
    [f] = manifest["files"]
    assert (f["message_type_indic"], f["sellers"]) == ("DPI403", 0)
    ours = tmp_path / "out" / f["file"]
    got = records(ours)
    assert got == records(SAMPLES / "6_initial_assumed" / "declaration.xml")
    assert ("PlatformOperator/AssumedReporting", "true", ()) in got["PlatformOperator"]
    assert [kind for kind, _ in got["OtherPlatformOperators"]] == ["AssumingPlatformOperator"]
    assert etree.XMLSchema(etree.parse(str(FR_XSD))).validate(etree.parse(str(ours)))
    assert check_fr_rules(ours) == []


def test_the_comparison_sees_a_difference() -> None:
    """The record view of the examples is strict: a changed text or attribute is a difference."""
    require_file(SAMPLES / "5_initial_assuming" / "declaration.xml")
    sample = SAMPLES / "5_initial_assuming" / "declaration.xml"
    doc = etree.parse(str(sample))
    other = doc.find(".//{*}AssumedPlatformOperator/{*}TIN")
    other.set("issuedBy", "BE")
    changed = etree.tostring(doc)
    assert records(sample) != _records_of(changed)


def _records_of(xml: bytes) -> dict[str, Any]:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".xml") as fh:
        fh.write(xml)
        fh.flush()
        return records(Path(fh.name))


# ----------------------------------------------------------------------------- the ledger


ASSUMED_LT = _other(
    "[assumed_operators]",
    "Paspirtukai UAB",
    "302222222",
    "LT",
    {"street": "Vilniaus g.", "building": "7", "post_code": "01402", "city": "Vilnius", "country": "LT"},
)


def lt_market(*, assumed_sellers: bool) -> Marketplace:
    """Two sellers of the operator's own platform; with ``assumed_sellers`` the two sellers of
    the assumed operator's platform, which the source holds once the assumption is agreed."""
    m = Marketplace()
    for sid in ("OWN-1", "OWN-2"):
        m.seller(sid, country="LT")
        m.sales(sid, 40, 100_00)
    if assumed_sellers:
        for sid in ("ASM-1", "ASM-2"):
            m.seller(sid, country="LT", tin="48001010000")
            m.sales(sid, 2, 700_00, activity="transportation_rental", start="2025-09-01 10:00:00")
    return m


def _doc_specs(path: Path) -> list[tuple[str, str, str | None]]:
    """(record, DocTypeIndic, CorrDocRefId) of each record of a message, in body order."""
    doc = etree.parse(str(path))
    out = []
    for spec in doc.iter("{*}DocSpec"):
        record = etree.QName(spec.getparent()).localname
        out.append((record, spec.findtext("{*}DocTypeIndic"), spec.findtext("{*}CorrDocRefId")))
    return out


def _preflight(path: Path, today: date) -> list[str]:
    findings = check_message(path, rules=EU_DOMESTIC, today=today, receiving_country="LT")
    return [f.describe() for f in findings]


def test_adding_and_removing_an_assumed_operator_after_a_first_filing(tmp_path: Path) -> None:
    """Issue 18: after a first filing, adding an assumed operator is a DPI401 with its record
    (OECD1), its sellers (OECD1) and the PlatformOperator resent (OECD0); removing it again is a
    DPI402 with OECD3 for its record and for its sellers. Each file passes the EU schema and the
    preflight, and the ledger's live state is the filed one after each run."""
    require_file(EU_XSD)
    schema = etree.XMLSchema(etree.parse(str(EU_XSD)))
    plain = write_config(tmp_path / "plain.toml", environment="prod")
    with_assumed = write_config(tmp_path / "assumed.toml", environment="prod", extra=ASSUMED_LT)
    ledger_url = f"sqlite:///{tmp_path}/ledger.sqlite3"

    def live() -> dict:
        with open_ledger(ledger_url) as led:
            return led.live_records("prod", "LT", 2025)

    [first] = go(tmp_path, plain, lt_market(assumed_sellers=False), "first")["files"]
    assert (first["message_type_indic"], first["sellers"]) == ("DPI401", 2)
    po_ref = live()[PO_KEY].doc_ref_id

    [added] = go(tmp_path, with_assumed, lt_market(assumed_sellers=True), "added")["files"]
    path = tmp_path / "added" / added["file"]
    assert (added["message_type_indic"], added["sellers"]) == ("DPI401", 2)
    assert _doc_specs(path) == [
        ("PlatformOperator", "OECD0", None),
        ("AssumedPlatformOperator", "OECD1", None),
        ("ReportableSeller", "OECD1", None),
        ("ReportableSeller", "OECD1", None),
    ]
    doc = etree.parse(str(path))
    assert doc.findtext(".//{*}PlatformOperator/{*}DocSpec/{*}DocRefId") == po_ref
    assert doc.findtext(".//{*}AssumedPlatformOperator/{*}Name") == "Paspirtukai UAB"
    assert schema.validate(doc), schema.error_log
    assert _preflight(path, AS_OF) == []
    state = live()
    others = [k for k in state if k[0] == OTHER_PLATFORM_OPERATORS]
    assert len(others) == 1 and others[0][1].startswith("assumed:LT-")
    assert {k[1] for k in state if k[0] == SELLER} == {"OWN-1", "OWN-2", "ASM-1", "ASM-2"}
    opo_ref = state[others[0]].doc_ref_id
    asm_refs = sorted(state[(SELLER, s)].doc_ref_id for s in ("ASM-1", "ASM-2"))

    [removed] = go(tmp_path, plain, lt_market(assumed_sellers=False), "removed")["files"]
    path = tmp_path / "removed" / removed["file"]
    assert removed["message_type_indic"] == "DPI402"
    specs = _doc_specs(path)
    assert specs[:2] == [("PlatformOperator", "OECD0", None), ("AssumedPlatformOperator", "OECD3", opo_ref)]
    assert [s[:2] for s in specs[2:]] == [("ReportableSeller", "OECD3")] * 2
    assert sorted(s[2] for s in specs[2:]) == asm_refs
    assert schema.validate(etree.parse(str(path)))
    assert _preflight(path, AS_OF) == []
    state = live()
    assert set(state) == {PO_KEY, (SELLER, "OWN-1"), (SELLER, "OWN-2")}
    assert state[PO_KEY].doc_ref_id == po_ref
    assert go(tmp_path, plain, lt_market(assumed_sellers=False), "again")["files"] == []  # nothing left to file


def test_an_assuming_operator_whose_own_reporting_becomes_assumed(tmp_path: Path) -> None:
    """The operator assumed the reporting of Paspirtukai UAB; now Paspirtukai UAB assumes its
    reporting. The same company in the other role is another record: a DPI402 corrects the
    PlatformOperator (AssumedReporting true) and deletes the AssumedPlatformOperator and every
    seller, then a DPI403 names the AssumingPlatformOperator (new), the operator resent."""
    require_file(EU_XSD)
    schema = etree.XMLSchema(etree.parse(str(EU_XSD)))
    assuming = ASSUMED_LT.replace("[[assumed_operators]]", "[assuming_operator]").replace(
        "[assumed_operators.address]", "[assuming_operator.address]"
    )
    go(
        tmp_path,
        write_config(tmp_path / "a.toml", environment="prod", extra=ASSUMED_LT),
        lt_market(assumed_sellers=True),
        "one",
    )
    files = go(
        tmp_path,
        write_config(tmp_path / "b.toml", environment="prod", extra=assuming),
        lt_market(assumed_sellers=True),
        "two",
    )["files"]
    assert [(f["message_type_indic"], f["sellers"]) for f in files] == [("DPI402", 4), ("DPI403", 0)]
    correction, declaration = (tmp_path / "two" / f["file"] for f in files)
    assert [s[:2] for s in _doc_specs(correction)] == [
        ("PlatformOperator", "OECD2"),
        ("AssumedPlatformOperator", "OECD3"),
    ] + [("ReportableSeller", "OECD3")] * 4
    assert etree.parse(str(correction)).findtext(".//{*}PlatformOperator/{*}AssumedReporting") == "true"
    assert [s[:2] for s in _doc_specs(declaration)] == [
        ("PlatformOperator", "OECD0"),
        ("AssumingPlatformOperator", "OECD1"),
    ]
    for path in (correction, declaration):
        assert schema.validate(etree.parse(str(path)))
        assert _preflight(path, AS_OF) == []
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as led:
        live = led.live_records("prod", "LT", 2025)
    assert {(k[0], (k[1] or "").split(":")[0]) for k in live} == {
        ("platform_operator", ""),
        (OTHER_PLATFORM_OPERATORS, "assuming"),
    }


@pytest.mark.parametrize("side", ["assuming", "assumed"])
def test_a_renamed_other_operator_is_an_oecd2_correction_of_its_record(tmp_path: Path, side: str) -> None:
    """The other operator's name and address change after a first filing (same TIN): a DPI402
    that corrects its record (OECD2, CorrDocRefId the live version) and resends the
    PlatformOperator; no seller is touched. On the assuming side the record is its
    AssumedPlatformOperator, on the assumed side its AssumingPlatformOperator."""
    require_file(EU_XSD)
    schema = etree.XMLSchema(etree.parse(str(EU_XSD)))
    table = ASSUMED_LT
    if side == "assumed":
        table = table.replace("[[assumed_operators]]", "[assuming_operator]").replace(
            "[assumed_operators.address]", "[assuming_operator.address]"
        )
    element = "AssumedPlatformOperator" if side == "assuming" else "AssumingPlatformOperator"
    market = lt_market(assumed_sellers=side == "assuming")
    first = go(tmp_path, write_config(tmp_path / "a.toml", environment="prod", extra=table), market, "one")["files"]
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as led:
        live = led.live_records("prod", "LT", 2025)
    [key] = [k for k in live if k[0] == OTHER_PLATFORM_OPERATORS]
    changed = table.replace("Paspirtukai UAB", "Paspirtukai ir Ko UAB").replace("Vilniaus g.", "Gedimino pr.")
    market = lt_market(assumed_sellers=side == "assuming")
    [f] = go(tmp_path, write_config(tmp_path / "b.toml", environment="prod", extra=changed), market, "two")["files"]
    path = tmp_path / "two" / f["file"]
    assert (f["message_type_indic"], f["sellers"]) == ("DPI402", 0)
    assert _doc_specs(path) == [("PlatformOperator", "OECD0", None), (element, "OECD2", live[key].doc_ref_id)]
    doc = etree.parse(str(path))
    assert doc.findtext(f".//{{*}}{element}/{{*}}Name") == "Paspirtukai ir Ko UAB"
    assert doc.findtext(f".//{{*}}{element}/{{*}}Address//{{*}}Street") == "Gedimino pr."
    assert schema.validate(doc), schema.error_log
    assert _preflight(path, AS_OF) == []
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as led:
        after = led.live_records("prod", "LT", 2025)
    assert set(after) == set(live) and after[key].content["name"] == "Paspirtukai ir Ko UAB"
    assert all(after[k] == live[k] for k in live if k != key)
    assert len(first) == 1


# ----------------------------------------------------------------------------- Hungary


HU_TABLE = '\n[authorities.HU]\ntax_number = "12345678-2-42"\n'


def test_a_hungarian_filing_cannot_name_assumed_operators_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """DPI_HU's OtherPlatformOperators holds AssumingPlatformOperator only: a Hungarian operator
    assuming the reporting of another reports its sellers without the block, and the run warns;
    the ledger holds no record of the assumed operator (nothing to correct or delete later)."""
    m = Marketplace()
    m.seller("HU1", country="HU", tin="8123456789")
    m.sales("HU1", 40, 100_00)
    cfg = write_config(tmp_path / "dac7.toml", filing_state="HU", nexus="RPONEX4", extra=HU_TABLE + ASSUMED_LT)
    with caplog.at_level(logging.WARNING, logger="reporting.stages.render"):
        [f] = go(tmp_path, cfg, m, "out")["files"]
    assert "has no AssumedPlatformOperator: the 1 operator(s) of [[assumed_operators]] are not named" in caplog.text
    doc = etree.parse(str(tmp_path / "out" / f["file"]))
    assert doc.find(".//{*}OtherPlatformOperators") is None and f["sellers"] == 1
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as led:
        assert {k[0] for k in led.live_records("test", "HU", 2025)} == {"platform_operator", SELLER}


# ----------------------------------------------------------------------------- Italy


IT_TABLE = '\n[authorities.IT]\ncodice_fiscale = "12345670017"\n'


def it_market() -> Marketplace:
    m = Marketplace()
    m.seller("IT1", country="IT", tin="RSSMRA85T10A562S")
    m.sales("IT1", 40, 100_00)
    return m


def test_an_italian_filing_refuses_an_assumed_operator_resident_outside_the_union(tmp_path: Path) -> None:
    """The AdE checker's E4050: "At least one Residence Country Code provided for an assumed
    Platform Operator must be a MS code" (Sogei checker v01.09.00, description.properties). An
    assumed operator whose registered office is in Switzerland would be refused on receipt: the
    preflight refuses it first, naming the code; one resident in a member state passes."""
    swiss = _other("[assumed_operators]", "Roller AG", "CHE-123.456.789", "CH", {"city": "Zurich", "country": "CH"})
    cfg = write_config(tmp_path / "ch.toml", filing_state="IT", extra=IT_TABLE + swiss)
    with pytest.raises(XmlValidationError, match="E4050"):
        go(tmp_path, cfg, it_market(), "ch")
    austrian = swiss.replace('"CH"', '"AT"').replace("CHE-123.456.789", "ATU12345678")
    cfg = write_config(tmp_path / "at.toml", filing_state="IT", extra=IT_TABLE + austrian)
    [f] = go(tmp_path, cfg, it_market(), "at")["files"]
    assert (f["message_type_indic"], f["sellers"]) == ("DPI401", 1)


# ----------------------------------------------------------------------------- parts and previews


def test_a_split_message_names_the_assumed_operators_in_its_first_part_only(tmp_path: Path) -> None:
    class SmallFiles(EuProfile):
        code = "LT-small"
        max_sellers_per_file = 1

    authorities.register("LT", SmallFiles())
    try:
        files = go(
            tmp_path, write_config(tmp_path / "dac7.toml", extra=ASSUMED_LT), lt_market(assumed_sellers=True), "out"
        )["files"]
    finally:
        del authorities.NATIONAL["LT"]
    assert len(files) == 4
    named = [
        len(list(etree.parse(str(tmp_path / "out" / f["file"])).iter("{*}AssumedPlatformOperator"))) for f in files
    ]
    assert named == [1, 0, 0, 0]


def test_a_split_message_with_assumed_operators_keeps_to_the_file_size_limit(tmp_path: Path) -> None:
    """Where the profile limits a file's bytes, each part fits once written: the assumed
    operators' records in the first part count in its size, and each seller counts with all its
    bytes (four assumed operators take about as many bytes as a seller here)."""
    limit = 10_000

    class SmallFiles(EuProfile):
        code = "LT-small-bytes"
        max_file_bytes = limit

    more = "".join(
        _other(
            "[assumed_operators]",
            f"Market {i} UAB",
            f"40222222{i}",
            "LT",
            {"street": "Vilniaus g.", "building": "7", "post_code": "01402", "city": "Vilnius", "country": "LT"},
        )
        for i in range(3)
    )
    authorities.register("LT", SmallFiles())
    try:
        files = go(
            tmp_path,
            write_config(tmp_path / "dac7.toml", extra=ASSUMED_LT + more),
            lt_market(assumed_sellers=True),
            "out",
        )["files"]
    finally:
        del authorities.NATIONAL["LT"]
    sizes = [(tmp_path / "out" / f["file"]).stat().st_size for f in files]
    assert max(sizes) <= limit, sizes
    assert sum(f["sellers"] for f in files) == 4 and len(files) > 1
    named = [
        len(list(etree.parse(str(tmp_path / "out" / f["file"])).iter("{*}AssumedPlatformOperator"))) for f in files
    ]
    assert named == [4] + [0] * (len(files) - 1)


def test_a_preview_sends_an_assumed_operator_to_its_state_of_residence_only(tmp_path: Path) -> None:
    """In the exchange between authorities an assumed operator must be resident in the
    receiving state (EU rule 40050): the preview of what LV receives names the LV-resident
    assumed operator only, that of LT the LT-resident one only; the validate stage of the run
    checked both against the exchange rules (EU_EXCHANGE), and they pass."""
    assumed_lv = _other(
        "[assumed_operators]",
        "Skuteri SIA",
        "40003000000",
        "LV",
        {"city": "Riga", "country": "LV"},
    )
    m = Marketplace()
    m.seller("LT1", country="LT")
    m.sales("LT1", 40, 100_00)
    m.seller("LV1", country="LV", tin="01017012345")
    m.sales("LV1", 40, 100_00)
    cfg = write_config(tmp_path / "dac7.toml", routing="jurisdiction", extra=ASSUMED_LT + assumed_lv)
    files = {f["authority"]: f for f in go(tmp_path, cfg, m, "out")["files"]}
    assert set(files) == {"LT", "LV"}
    lv = etree.parse(str(tmp_path / "out" / files["LV"]["file"]))
    assert [e.text for e in lv.iterfind(".//{*}AssumedPlatformOperator/{*}Name")] == ["Skuteri SIA"]
    lt = etree.parse(str(tmp_path / "out" / files["LT"]["file"]))
    assert [e.text for e in lt.iterfind(".//{*}AssumedPlatformOperator/{*}Name")] == ["Paspirtukai UAB"]
    for state in ("LT", "LV"):
        path = tmp_path / "out" / files[state]["file"]
        assert check_message(path, rules=EU_EXCHANGE, today=AS_OF, receiving_country=state) == []


def test_a_preview_informs_an_assumed_operators_state_of_residence_without_sellers(tmp_path: Path) -> None:
    """The exchange's only nil message is a DPI403 that names an AssumedPlatformOperator (EU rules
    20030 and 20050) resident in the receiving state (40050): the preview of a state that receives
    no seller but is an assumed operator's residence is that DPI403; it passes the exchange rules."""
    assumed_lv = _other(
        "[assumed_operators]",
        "Skuteri SIA",
        "40003000000",
        "LV",
        {"city": "Riga", "country": "LV"},
    )
    cfg = write_config(tmp_path / "dac7.toml", routing="jurisdiction", extra=ASSUMED_LT + assumed_lv)
    files = {f["authority"]: f for f in go(tmp_path, cfg, lt_market(assumed_sellers=False), "out")["files"]}
    assert set(files) == {"LT", "LV"}
    assert (files["LV"]["message_type_indic"], files["LV"]["sellers"]) == ("DPI403", 0)
    path = tmp_path / "out" / files["LV"]["file"]
    assert [s[:2] for s in _doc_specs(path)] == [("PlatformOperator", "OECD11"), ("AssumedPlatformOperator", "OECD11")]
    lv = etree.parse(str(path))
    assert [e.text for e in lv.iterfind(".//{*}AssumedPlatformOperator/{*}Name")] == ["Skuteri SIA"]
    assert check_message(path, rules=EU_EXCHANGE, today=AS_OF, receiving_country="LV") == []
    assert (files["LT"]["message_type_indic"], files["LT"]["sellers"]) == ("DPI401", 2)


def test_an_assumed_operator_sends_nothing_in_a_preview(tmp_path: Path) -> None:
    """No AssumingPlatformOperator is exchanged between authorities (EU rule 20020), and an
    operator whose reporting is assumed reports no seller: its preview is empty."""
    assuming = _other(
        "assuming_operator", "Big Market AB", "556000000000", "SE", {"city": "Stockholm", "country": "SE"}
    )
    cfg = write_config(tmp_path / "dac7.toml", routing="jurisdiction", extra=assuming)
    assert go(tmp_path, cfg, lt_market(assumed_sellers=False), "out")["files"] == []


# ----------------------------------------------------------------------------- the profile's message type


@pytest.fixture
def dpi401_declarations() -> Iterator[None]:
    """A profile for LT that files the assumed operator's declaration as a DPI401 without
    sellers, as HMRC's assumed-reporting service does (hmrc/digital-platform-reporting,
    AssumedReportingService.scala: ``MessageTypeIndic = DPI401``); EU rules 20010 and 20040 do
    not bind it."""

    class Hmrc(EuProfile):
        code = "LT-hmrc-style"
        assumed_message_type = "DPI401"
        rule_set = EU_DOMESTIC.derive("no 20010/20040", exclude=("20010", "20040"))

    authorities.register("LT", Hmrc())
    yield
    del authorities.NATIONAL["LT"]


@pytest.mark.usefixtures("dpi401_declarations")
def test_a_profile_may_file_the_declaration_as_a_dpi401(tmp_path: Path) -> None:
    assuming = _other(
        "assuming_operator", "Big Market AB", "556000000000", "SE", {"city": "Stockholm", "country": "SE"}
    )
    cfg = write_config(tmp_path / "dac7.toml", extra=assuming)
    [f] = go(tmp_path, cfg, lt_market(assumed_sellers=False), "out")["files"]
    assert (f["message_type_indic"], f["sellers"]) == ("DPI401", 0)
    assert _doc_specs(tmp_path / "out" / f["file"]) == [
        ("PlatformOperator", "OECD11", None),
        ("AssumingPlatformOperator", "OECD11", None),
    ]
