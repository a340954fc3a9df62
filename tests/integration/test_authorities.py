"""Profile selection and the national profiles that exist today (DE, FR in its own module, HU, IT),
end to end: the filing uses the profile of the state the operator files in, and nothing else."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from pathlib import Path

import pytest
from builders import Marketplace, write_config
from lxml import etree
from resources import outside, outside_reference, require_file, vendored

from reporting import authorities
from reporting.authorities.eu import EuProfile
from reporting.checks.business import EU_DOMESTIC, check_message
from reporting.errors import ConfigError
from reporting.pipeline import run
from reporting.records import MessageHeader

DIP_REFERENCE = vendored("xsd", "de-bzst-dip__xdev-client")
EU_REFERENCE = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0")
DIP = "{http://itzbund.de/ozg/bzst/post/dip/v1/}"
NS = {
    "dpi": "urn:oecd:ties:dpi:v1",
    "stf": "urn:oecd:ties:dpistf:v1",
    "dip": "http://itzbund.de/ozg/bzst/post/dip/v1/",
}
RUN_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"


def market() -> Marketplace:
    m = Marketplace()
    m.seller("DE1", country="DE", tin="86095742719")
    m.sales("DE1", 40, 100_00)
    m.seller("LT1", country="LT")
    m.sales("LT1", 40, 100_00)
    return m


def config(tmp_path: Path, extra: str, **kw: str) -> Path:
    path = write_config(tmp_path / "dac7.toml", **kw)
    path.write_text(path.read_text() + extra, encoding="utf-8")
    return path


def filing_in(tmp_path: Path, state: str, extra: str = "", **kw: str) -> Path:
    """The demo operator (registered in LT) filing in ``state`` (nexus RPONEX4: a permanent
    establishment there), with ``extra`` appended (its identifiers)."""
    return write_config(tmp_path / "dac7.toml", filing_state=state, nexus="RPONEX4", extra=extra, **kw)


DE_IDS = '\n[authorities.DE]\nbzst_id = "BZST0012345678"\n'


def go(tmp_path: Path, cfg: Path, environment: str | None = None, m: Marketplace | None = None) -> dict:
    """Write the marketplace (default: market()) and run the pipeline with pinned ids."""
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
        environment=environment,
    ).manifest


@pytest.mark.parametrize("environment", ["test", "prod"])
def test_de_profile_wraps_the_message_in_the_dip_envelope(tmp_path: Path, environment: str) -> None:
    cfg = filing_in(tmp_path, "DE", DE_IDS)
    manifest = go(tmp_path, cfg, environment)
    [de] = manifest["files"]  # the filing state alone, with every seller: DE1 and LT1
    assert de["authority"] == "DE" and de["profile"] == "DE" and de["sellers"] == 2
    root = etree.parse(str(tmp_path / "out" / de["file"])).getroot()
    assert root.tag == f"{DIP}dip" and root.get("version") == "1.0"
    assert root.find(f"{DIP}header").get("environment") == ("PROD" if environment == "prod" else "TEST")
    assert root.find(f"{DIP}header/{DIP}application").get("code") == "DAC7"
    assert root.findtext(f"{DIP}header/{DIP}consignment/{DIP}customerIdentifier/{DIP}identifier") == "BZST0012345678"
    msg = root.find(f"{DIP}body/{DIP}consignmentItem/{DIP}data/dpi:DPI_OECD", NS)
    assert msg.findtext("dpi:MessageSpec/dpi:SendingEntityIN", namespaces=NS) == "BZST0012345678"
    assert msg.findtext("dpi:MessageSpec/dpi:TransmittingCountry", namespaces=NS) == "DE"
    assert msg.findtext("dpi:MessageSpec/dpi:MessageRefId", namespaces=NS).startswith("DE2025DE")
    assert {e.text for e in msg.iter("{urn:oecd:ties:dpistf:v1}DocTypeIndic")} == {"OECD1"}  # env is in the envelope
    assert check_message(tmp_path / "out" / de["file"], rules=EU_DOMESTIC, today=date(2026, 1, 15)) == []
    assert sorted(e.text for e in msg.iterfind(".//dpi:ReportableSeller//dpi:ResCountryCode", NS)) == ["DE", "LT"]


def test_de_envelope_validates_against_the_reference_schemas(tmp_path: Path) -> None:
    dip = DIP_REFERENCE
    require_file(dip / "dip.xsd", EU_REFERENCE / "DPIXML_v1.0.xsd")
    manifest = go(tmp_path, filing_in(tmp_path, "DE", DE_IDS))
    [de] = manifest["files"]
    # The reference dip.xsd holds copies of the types of dip-types.xsd and loads alone.
    ref = tmp_path / "ref"
    ref.mkdir()
    for f in [dip / "dip.xsd", *EU_REFERENCE.glob("*.xsd")]:
        (ref / f.name).write_bytes(f.read_bytes())
    (ref / "driver.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:import namespace="http://itzbund.de/ozg/bzst/post/dip/v1/" schemaLocation="dip.xsd"/>'
        '<xs:import namespace="urn:oecd:ties:dpi:v1" schemaLocation="DPIXML_v1.0.xsd"/></xs:schema>',
        encoding="utf-8",
    )
    schema = etree.XMLSchema(etree.parse(str(ref / "driver.xsd")))
    doc = etree.parse(str(tmp_path / "out" / de["file"]))
    assert schema.validate(doc), schema.error_log
    # the message inside is checked too: break it and the envelope schema says so
    doc.find(".//dpi:MessageSpec/dpi:MessageTypeIndic", NS).text = "DPI499"
    assert not schema.validate(doc)


@pytest.mark.parametrize("routing", ["nexus", "jurisdiction"])
def test_authorities_of_another_state_change_neither_the_law_nor_the_format(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, routing: str
) -> None:
    """An LT operator with an [authorities.DE] table: its filing is LT's (EU edition), and the
    preview of what DE receives from LT is in the EU edition too; the run says why."""
    # its schema package too: the preview of DE validates against the EU edition, not that directory
    extra = f'{DE_IDS}xsd_dir = "{tmp_path / "no-such-package"}"\n'
    with caplog.at_level(logging.WARNING):
        manifest = go(tmp_path, config(tmp_path, extra, routing=routing))
    profiles = {f["authority"]: f["profile"] for f in manifest["files"]}
    assert profiles == ({"LT": "EU"} if routing == "nexus" else {"DE": "EU", "LT": "EU"})
    assert "[authorities.DE] is ignored: this operator files in LT" in caplog.text
    for f in manifest["files"]:  # nothing of the DE table in the ids either
        assert "BZST" not in (tmp_path / "out" / f["file"]).read_text(encoding="utf-8")


def test_a_preview_uses_the_eu_edition_even_for_the_filing_state(tmp_path: Path) -> None:
    manifest = go(tmp_path, filing_in(tmp_path, "DE", DE_IDS, routing="jurisdiction"))
    assert {f["authority"]: f["profile"] for f in manifest["files"]} == {"DE": "EU", "LT": "EU"}
    lt = etree.parse(str(tmp_path / "out" / next(f["file"] for f in manifest["files"] if f["authority"] == "LT")))
    # what DE forwards to LT: transmitted by DE, received by LT, in the exchange's id formats
    assert lt.findtext(".//dpi:TransmittingCountry", namespaces=NS) == "DE"
    assert lt.findtext(".//dpi:MessageRefId", namespaces=NS).startswith("DE2025LT")


def test_a_nexus_state_without_its_identifier_is_a_configuration_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "dac7.toml", filing_state="DE")
    with pytest.raises(ConfigError, match=r"\[authorities.DE\] bzst_id"):
        go(tmp_path, cfg)


def test_adding_a_member_state_is_one_registration(tmp_path: Path) -> None:
    class NlProfile(EuProfile):
        code = "NL"
        edition = "Belastingdienst (example)"
        required_identifiers = ("rsin",)

        def file_name(self, header: MessageHeader) -> str:
            return f"DAC7_{header.identifiers['rsin']}_{header.message_ref_id}.xml"

    m = market()
    m.seller("NL1", country="NL")
    m.sales("NL1", 40, 100_00)
    authorities.register("NL", NlProfile())
    try:
        url = m.write(f"sqlite:///{tmp_path}/source.db")
        manifest = run(
            config_path=filing_in(tmp_path, "NL", '\n[authorities.NL]\nrsin = "123456789"\n'),
            source_url=url,
            year=2025,
            as_of=date(2026, 1, 31),
            out_dir=tmp_path / "out",
            staging_root=tmp_path / "st",
        ).manifest
    finally:
        del authorities.NATIONAL["NL"]
    [nl] = manifest["files"]
    assert nl["profile"] == "NL" and nl["file"].startswith("NL/DAC7_123456789_NL2025NL") and nl["sellers"] == 3


@pytest.mark.parametrize(("max_sellers", "max_bytes"), [(3, None), (None, 9_000), (2, 20_000)])
def test_a_message_over_the_profile_limits_is_split_into_parts(
    tmp_path: Path, max_sellers: int | None, max_bytes: int | None
) -> None:
    class SmallFiles(EuProfile):
        code = "LT-small"
        max_sellers_per_file = max_sellers
        max_file_bytes = max_bytes

    m = Marketplace()
    for i in range(8):
        m.seller(f"S{i}", country="LT")
        m.sales(f"S{i}", 30 + i, 100_00)
    authorities.register("LT", SmallFiles())
    try:
        url = m.write(f"sqlite:///{tmp_path}/source.db")
        manifest = run(
            config_path=config(tmp_path, ""),
            source_url=url,
            year=2025,
            as_of=date(2026, 1, 31),
            out_dir=tmp_path / "out",
            staging_root=tmp_path / "st",
        ).manifest
    finally:
        del authorities.NATIONAL["LT"]
    files = manifest["files"]
    assert len(files) > 1 and [f["part"] for f in files] == list(range(1, len(files) + 1))
    assert {f["parts"] for f in files} == {len(files)}
    assert sum(f["sellers"] for f in files) == 8
    assert len({f["message_ref_id"] for f in files}) == len(files)
    sellers, doc_ref_ids, po_docs = [], [], []
    for f in files:
        path = tmp_path / "out" / f["file"]
        if max_sellers:
            assert f["sellers"] <= max_sellers
        if max_bytes:
            assert path.stat().st_size <= max_bytes
        doc = etree.parse(str(path))
        po = doc.find(".//dpi:PlatformOperator", NS)  # every part carries the operator:
        po_doc = (po.findtext(".//stf:DocTypeIndic", namespaces=NS), po.findtext(".//stf:DocRefId", namespaces=NS))
        po_docs.append(po_doc)
        doc_ref_ids += [e.text for e in doc.iterfind(".//dpi:ReportableSeller//stf:DocRefId", NS)]
        sellers += [e.text for e in doc.iterfind(".//dpi:ReportableSeller", NS)]
    # new in the first part, resent (OECD10: test data) with the same DocRefId in the others
    assert po_docs[0][0] == "OECD11" and {d for d in po_docs[1:]} == {("OECD10", po_docs[0][1])}
    doc_ref_ids.append(po_docs[0][1])
    assert len(doc_ref_ids) == len(set(doc_ref_ids))  # never reused, also across parts
    assert len(sellers) == 8  # every seller in exactly one part


def test_the_parts_of_a_split_message_are_validated_one_by_one(tmp_path: Path) -> None:
    """What the DAG maps: each file of an authority validated on its own (``part``), then
    combined into the authority's report; the same verdicts as validating them together. A part
    without its report, or a report of a file rendered since, keeps the authority unpublished."""
    from reporting import pipeline
    from reporting.errors import XmlValidationError

    class SmallFiles(EuProfile):
        code = "LT-small"
        max_sellers_per_file = 3

    m = Marketplace()
    for i in range(8):
        m.seller(f"S{i}", country="LT")
        m.sales(f"S{i}", 30 + i, 100_00)
    authorities.register("LT", SmallFiles())
    try:
        url = m.write(f"sqlite:///{tmp_path}/source.db")
        run_dir = pipeline.prepare(
            config_path=config(tmp_path, ""),
            source_url=url,
            year=2025,
            as_of=date(2026, 1, 31),
            out_dir=tmp_path / "out",
            staging_root=tmp_path / "st",
            authorities=["LT"],
        )
        pipeline.extract(run_dir, url)
        pipeline.aggregate(run_dir)
        pipeline.apply_rules(run_dir)
        assert pipeline.plan(run_dir) == ["LT"]
        rendered = pipeline.render(run_dir, "LT")["messages"]
        assert len(rendered) == 3  # 8 sellers, 3 per file
        for part in range(3):
            one = pipeline.validate(run_dir, "LT", part)
            assert [f["file"] for f in one["files"]] == [rendered[part]["file"]] and one["valid"]
        with pytest.raises(ConfigError, match="no file 4"):
            pipeline.validate(run_dir, "LT", 3)
        combined = pipeline.combine_validation(run_dir, "LT")
        together = pipeline.validate(run_dir, "LT")
        assert combined == together and combined["valid"] and len(combined["files"]) == 3

        part_two = Path(run_dir) / "validate" / "parts" / "LT" / "0001.json"
        part_two.unlink()
        combined = pipeline.combine_validation(run_dir, "LT")
        assert not combined["valid"] and combined["failures"] == [f"{rendered[1]['file']}: not validated"]
        with pytest.raises(XmlValidationError, match="not validated"):
            pipeline.publish(run_dir, "LT")
        # a render again drops every earlier verdict on this authority's files
        pipeline.validate(run_dir, "LT", 1)
        pipeline.render(run_dir, "LT")
        assert not (Path(run_dir) / "validate" / "parts" / "LT").exists()
        assert not (Path(run_dir) / "validate" / "authorities" / "LT.json").exists()
        for part in range(3):
            pipeline.validate(run_dir, "LT", part)
        assert pipeline.combine_validation(run_dir, "LT")["valid"]
        published = pipeline.publish(run_dir, "LT")
        assert len(published["files"]) == 3
    finally:
        del authorities.NATIONAL["LT"]


def test_it_profile_wraps_the_message_in_the_telematic_supply(tmp_path: Path) -> None:
    m = market()
    m.seller("IT1", country="IT", tin="RSSMRA80A01H501U")
    m.sales("IT1", 40, 100_00)
    cfg = filing_in(tmp_path, "IT", '\n[authorities.IT]\ncodice_fiscale = "12345670017"\n')
    manifest = go(tmp_path, cfg, m=m)
    [it] = manifest["files"]
    assert it["authority"] == "IT" and it["profile"] == "IT" and it["sellers"] == 3
    root = etree.parse(str(tmp_path / "out" / it["file"])).getroot()
    tm = "{www.agenziaentrate.gov.it:specificheTecniche:telent:v1}"
    assert root.tag == f"{tm}Messaggio"
    assert root.findtext(f"{tm}Intestazione/{tm}CodiceFiscaleFornitore") == "12345670017"
    assert root.find(f"{tm}Contenuto").get("CodiceFornitura") == "DPI23"
    msg = root.find(".//dpi:DPI_OECD", NS)
    assert msg.get("version") == "1.09"
    ref = msg.findtext("dpi:MessageSpec/dpi:MessageRefId", namespaces=NS)
    uuid4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert re.fullmatch(rf"IT2025IT{uuid4}", ref)
    for e in msg.iter("{urn:oecd:ties:dpistf:v1}DocRefId"):
        assert re.fullmatch(rf"IT2025{uuid4}", e.text)
    assert check_message(tmp_path / "out" / it["file"], rules=EU_DOMESTIC, today=date(2026, 1, 15)) == []


def test_it_codice_fiscale_is_checked(tmp_path: Path) -> None:
    m = market()
    m.seller("IT1", country="IT", tin="RSSMRA80A01H501U")
    m.sales("IT1", 40, 100_00)
    url = m.write(f"sqlite:///{tmp_path}/source.db")
    with pytest.raises(ConfigError, match=r"\[authorities.IT\] codice_fiscale must be"):
        run(
            config_path=filing_in(tmp_path, "IT", '\n[authorities.IT]\ncodice_fiscale = "abc"\n'),
            source_url=url,
            year=2025,
            as_of=date(2026, 1, 31),
            out_dir=tmp_path / "out",
            staging_root=tmp_path / "st",
        )


def _hu_market(with_pe_address: bool) -> Marketplace:
    m = market()
    m.seller("HU1", country="HU", tin="8123456789", first_name="Anna", last_name="Kovacs")
    m.sales("HU1", 40, 100_00)
    m.seller("HU2", seller_type="entity", country="HU", tin="12345678-2-42", legal_name="Kft Example")
    m.pe("HU2", "AT")
    if with_pe_address:
        m.rows["seller_permanent_establishments"][-1].update(
            address_street="Ringstrasse", address_building="1", address_post_code="1010", address_city="Wien"
        )
    m.sales("HU2", 40, 100_00)
    return m


def test_hu_profile_writes_dpi_hu(tmp_path: Path) -> None:
    cfg = filing_in(tmp_path, "HU", '\n[authorities.HU]\ntax_number = "12345678-2-42"\n')
    manifest = go(tmp_path, cfg, m=_hu_market(True))
    [hu] = manifest["files"]
    assert hu["profile"] == "HU" and hu["sellers"] == 4  # DE1, LT1, HU1, HU2
    assert re.fullmatch(r"123456782025[0-9A-F]{32}", hu["message_ref_id"])
    root = etree.parse(str(tmp_path / "out" / hu["file"])).getroot()
    assert root.tag == "{urn:oecd:ties:dpi:v1}DPI_HU"
    assert root.findtext("dpi:MessageSpec/dpi:SendingEntityIN", namespaces=NS) == "12345678-2-42"
    assert root.find("dpi:MessageSpec/dpi:TransmittingCountry", NS) is None
    for e in root.iter("{urn:oecd:ties:dpistf:v1}DocRefId"):
        assert re.fullmatch(r"2025-[0-9A-F]{32}", e.text)
    pe = root.find(".//dpi:PermanentEstablishments/dpi:Address", NS)
    assert pe.findtext("dpi:CountryCode", namespaces=NS) == "AT"
    assert pe.findtext("dpi:AddressFix/dpi:City", namespaces=NS) == "Wien"


def test_hu_needs_the_address_of_a_permanent_establishment(tmp_path: Path) -> None:
    """A record the HU profile cannot carry quarantines the seller before the render (the run
    goes on for everyone else); a production run refuses it."""
    url = _hu_market(False).write(f"sqlite:///{tmp_path}/source.db")
    cfg = filing_in(tmp_path, "HU", '\n[authorities.HU]\ntax_number = "12345678"\n')
    from reporting.errors import DataError

    args = {"config_path": cfg, "source_url": url, "year": 2025, "as_of": date(2026, 1, 31)}
    manifest = run(**args, out_dir=tmp_path / "out", staging_root=tmp_path / "st").manifest
    assert manifest["summary"]["decisions"]["quarantined:hu.permanent_establishment_address"] == 1
    quarantine = (tmp_path / "out" / "reports" / "quarantine.csv").read_text()
    assert "HU2,hu.permanent_establishment_address" in quarantine
    diligence = (tmp_path / "out" / "reports" / "due_diligence.csv").read_text()
    assert "HU2" in diligence and "threshold crossed without complete data" in diligence
    with pytest.raises(DataError) as err:
        run(**args, out_dir=tmp_path / "prod", staging_root=tmp_path / "st", environment="prod")
    assert [(f.rule, f.key) for f in err.value.findings] == [("hu.permanent_establishment_address", "HU2")]


def _national_run(tmp_path: Path, state: str) -> dict:
    m = market()
    m.seller("IT1", country="IT", tin="RSSMRA80A01H501U")
    m.sales("IT1", 40, 100_00)
    m.seller("HU1", country="HU", tin="8123456789")
    m.sales("HU1", 40, 100_00)
    work = tmp_path / state
    work.mkdir()
    return go(work, filing_in(work, state, NATIONAL_IDS[state]), m=m) | {"work": work}


NATIONAL_IDS = {
    "DE": DE_IDS,
    "IT": '\n[authorities.IT]\ncodice_fiscale = "12345670017"\n',
    "HU": '\n[authorities.HU]\ntax_number = "12345678-2-42"\n',
}


@outside_reference
def test_every_national_output_validates_against_the_official_schemas_too(tmp_path: Path) -> None:
    official = {
        "IT": outside("xsd", "it-ade-sogei__client-dac7-jar", "xsd", "telematico", "fornituraDPIT_v1.0.0.xsd"),
        "HU": outside("xsd", "hu-nav", "DPIXML_v1.0.xsd"),
    }
    require_file(*official.values())
    for state, xsd in official.items():
        manifest = _national_run(tmp_path, state)
        [f] = manifest["files"]
        assert (f["authority"], f["profile"], f["sellers"]) == (state, state, 4)
        schema = etree.XMLSchema(etree.parse(str(xsd)))
        assert schema.validate(etree.parse(str(manifest["work"] / "out" / f["file"]))), (f["file"], schema.error_log)


def test_a_profile_validates_against_the_authority_package_named_in_the_config(tmp_path: Path) -> None:
    dip = DIP_REFERENCE
    require_file(dip / "dip.xsd", EU_REFERENCE / "DPIXML_v1.0.xsd")
    package = tmp_path / "bzst-2026"
    package.mkdir()
    for f in [dip / "dip.xsd", *EU_REFERENCE.glob("*.xsd")]:
        (package / f.name).write_bytes(f.read_bytes())
    extra = f'\n[authorities.DE]\nbzst_id = "BZST0012345678"\nxsd_dir = "{package}"\n'
    manifest = go(tmp_path, filing_in(tmp_path, "DE", extra))
    assert [f["authority"] for f in manifest["files"]] == ["DE"]
    validation = json_of(tmp_path / "st")
    assert all(r["valid"] for r in validation["files"])
    # A package that rejects the files stops the run: the configured package is what validates.
    (package / "dip.xsd").write_text((package / "dip.xsd").read_text().replace('"TEST"', '"TESTX"'))
    from reporting.errors import XmlValidationError

    with pytest.raises(XmlValidationError):
        run(
            config_path=filing_in(tmp_path, "DE", extra),
            source_url=f"sqlite:///{tmp_path}/source.db",
            year=2025,
            as_of=date(2026, 1, 31),
            out_dir=tmp_path / "out2",
            staging_root=tmp_path / "st2",
            ledger_url=f"sqlite:///{tmp_path}/another-ledger.sqlite3",  # a first filing again
        )


def json_of(staging: Path) -> dict:
    import json

    [run_dir] = list(staging.iterdir())
    return json.loads((run_dir / "validate" / "validate.json").read_text())


def test_it_file_hygiene_checks(tmp_path: Path) -> None:
    from reporting.authorities.it import file_hygiene

    manifest = _national_run(tmp_path, "IT")
    [it] = manifest["files"]
    path = manifest["work"] / "out" / it["file"]
    assert file_hygiene(path) == []
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"<dpi:MessageSpec>", b"<!-- x --><dpi:MessageSpec>"))
    assert [(f.code, f.severity) for f in file_hygiene(bad)] == [("C0000", "error"), ("C0002", "warning")]
