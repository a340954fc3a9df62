"""Our DPI v1.0 schema of the Hungarian NAV edition (xsd/hu/v1.0, root ``dpi:DPI_HU``) must behave like NAV's.

Reference: NAV's DPI_HU schema set (schema version "1.09"), and the copy inside NAV's validator tool
(validator-zip/, main file DPIXML_20231019.xsd).  The validator copy is the OLDER wording of the same
schema: structurally identical (checked below), it differs only in a vendor header comment, CRLF line
ends and annotation wording/typos.  So there is no second, newer version to write; every verdict below
is taken from our schema, the reference and the validator copy, and all three must agree.

Evidence, as for the EU edition (test_xsd_equivalence.py):
* a valid DPI_HU message (an individual and an entity seller, all four activities, a property listing,
  an assuming operator, a permanent establishment) and many variants of it, most broken on purpose,
  get the same, expected, verdict from every schema;
* every reference sample gets the same verdict, as stored and with its message re-rooted as DPI_HU
  (none of the samples is a Hungarian message, so all are invalid against DPI_HU);
* a structural walk: the same named types, code lists, facets and content models.

Structural differences from the EU edition (xsd/eu/v1.0; everything else, including every ISO and
OECD code list, is identical; checked by ``test_differences_from_eu_edition``)::

    root element            DPI_HU instead of DPI_OECD; DPIBody exactly 1 (EU: 0..n); @version optional,
                            1-10 characters as in the EU edition
    MessageSpec_Type        SendingEntityIN 1 (EU: 0..1); NO TransmittingCountry, ReceivingCountry, Warning;
                            MessageType carries fixed="DPI"; order: SendingEntityIN, MessageType, Contact?,
                            MessageRefId, MessageTypeIndic, ReportingPeriod, Timestamp
    PersonParty_Type        Name 1 and Address 1 (EU: 1..n each); NO Nationality
    OrganisationParty_Type  Name 1 and Address 1 (EU: 1..n each) - platform operator and entity seller
    PermanentEstablishments_Type
                            Address 1..n of Address_Type (EU: PermanentEstablishment 1..n, MSCountryCode_Type);
                            the country code is then any CountryCode_Type value, not only a Member State
    OtherPlatformOperators_Type
                            sequence of AssumingPlatformOperator 1..n (EU: choice of one
                            AssumingPlatformOperator or 1..n AssumedPlatformOperator); no AssumedPlatformOperator
    OtherRPO_Type           TIN 1 (EU: 1..n)
    DocSpec_Type (stf)      NO CorrMessageRefId: DocTypeIndic, DocRefId, CorrDocRefId?
    OECDNameType_EnumType   OECD202..OECD208 (EU also OECD201)
    not declared            AccountHolder_Type, CorrectableAdditionalInfo_Type, NameReportableSeller_Type
                            (EU declares them but does not use them either)
    declared, unused        MSCountryCode_Type (iso), StringMin1Max4000WithLang_Type (stf)
    schema version          DPIXML "1.09" (EU "1.0"); same three namespaces and file names

Id formats (annotations of the NAV schema; NONE is a schema pattern - all are business rules that the
XSD does not check, see the ``*-not-NAV-format`` variants)::

    SendingEntityIN   the sender's Hungarian tax number (adoszam); without one, the Individual Identification
                      Number (IIN) NAV assigned under Aktv. 21/A. (5); after a succession the successor's
                      own tax number.  Schema: string 1-200.  Whether the tax number is written with
                      hyphens (12345678-1-42) is not stated in the schema.
    MessageRefId      <first 8 digits of the sender's Hungarian tax number><reporting year YYYY><id unique
                      per message>, e.g. 123456782024MSG0001; without a Hungarian tax number
                      <NAV IIN><YYYY><unique id>.  Schema: string 1-170.  (EU exchange: TT YYYY RR ...)
    DocRefId          <reporting year YYYY><id unique per record>, e.g. 2024-PO-0001.  Schema: string 1-200.
                      Unlike the EU format it does NOT start with a country code.
    CorrDocRefId      the DocRefId of the record being corrected or deleted (string 1-200)
    IN                a NAV-assigned IIN goes into IN with INType="IIN"; an entity seller's business
                      registration number with INType="BRN"
    Timestamp         CET only, seconds with at most 3 fraction digits (schema: any xsd:dateTime)
    ReportingPeriod   31 December of the reporting year, not after the year of submission (schema: xsd:date)

The NAV reference files stay outside the repository (their terms do not allow redistribution, see
tests/reference/README.md): they lie beside the checkout in ../shared/reference. Without them the module is
skipped, or fails in CI (marker outside_reference).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from lxml import etree
from resources import outside, outside_reference, require_file, require_module, sample_name, vendored
from resources import sample_files as reference_samples
from xsd_support import Mutations, canonical, child_elements
from xsd_support import enumerations as _enumerations
from xsd_support import named as _named

pytestmark = outside_reference

REPO_ROOT = Path(__file__).resolve().parents[2]
OUR_XSD_DIR = REPO_ROOT / "xsd" / "hu" / "v1.0"
EU_XSD_DIR = REPO_ROOT / "xsd" / "eu" / "v1.0"
REFERENCE_XSD_DIR = outside("xsd", "hu-nav")
VALIDATOR_XSD_DIR = REFERENCE_XSD_DIR / "validator-zip"
SAMPLES_DIR = vendored("samples")
MAIN_FILE = "DPIXML_v1.0.xsd"
VALIDATOR_MAIN_FILE = "DPIXML_20231019.xsd"
SCHEMA_FILES = (MAIN_FILE, "isodpitypes_v1.0.xsd", "oecddpitypes_v1.0.xsd")

require_module(*(REFERENCE_XSD_DIR / name for name in SCHEMA_FILES))

XS = "http://www.w3.org/2001/XMLSchema"
DPI_NS = "urn:oecd:ties:dpi:v1"
STF_NS = "urn:oecd:ties:dpistf:v1"
ISO_NS = "urn:oecd:ties:isodpitypes:v1"
NS = {"dpi": DPI_NS, "stf": STF_NS}
ROOT_TAG = f"{{{DPI_NS}}}DPI_HU"
KINDS = ("simpleType", "complexType", "element", "attribute", "group", "attributeGroup")


def _x(local: str) -> str:
    return f"{{{XS}}}{local}"


# --------------------------------------------------------------------------- schemas


def _has_validator_copy() -> bool:
    return (VALIDATOR_XSD_DIR / VALIDATOR_MAIN_FILE).is_file()


@cache
def schemas() -> dict[str, etree.XMLSchema]:
    out = {
        "ours": etree.XMLSchema(etree.parse(str(OUR_XSD_DIR / MAIN_FILE))),
        "reference": etree.XMLSchema(etree.parse(str(REFERENCE_XSD_DIR / MAIN_FILE))),
    }
    if _has_validator_copy():
        out["validator"] = etree.XMLSchema(etree.parse(str(VALIDATOR_XSD_DIR / VALIDATOR_MAIN_FILE)))
    return out


def verdicts(doc: etree._ElementTree) -> tuple[dict[str, bool], str]:
    """Validity of one document per schema, plus the first errors of each."""
    results, errors = {}, []
    for name, schema in schemas().items():
        results[name] = schema.validate(doc)
        errors.append(f"{name}: {[str(e) for e in list(schema.error_log)[:3]]}")
    return results, "\n".join(errors)


# --------------------------------------------------------------------------- valid base document


def _quarters(prefix: str, values: tuple[str, str, str, str], curr: str | None = "HUF") -> str:
    attr = f' currCode="{curr}"' if curr else ""
    return "".join(f"<dpi:{prefix}Q{i}{attr}>{v}</dpi:{prefix}Q{i}>" for i, v in enumerate(values, start=1))


def _activity_blocks() -> str:
    return (
        f"<dpi:Consideration>{_quarters('Cons', ('100000', '0', '250000', '-4000'))}</dpi:Consideration>"
        f"<dpi:NumberOfActivities>{_quarters('Numb', ('1', '0', '3', '1'), None)}</dpi:NumberOfActivities>"
        f"<dpi:Fees>{_quarters('Fees', ('1000', '0', '25000', '0'))}</dpi:Fees>"
        f"<dpi:Taxes>{_quarters('Tax', ('0', '0', '0', '0'))}</dpi:Taxes>"
    )


def _doc_spec(ref: str) -> str:
    return (
        f"<dpi:DocSpec><stf:DocTypeIndic>OECD1</stf:DocTypeIndic><stf:DocRefId>2024-{ref}</stf:DocRefId></dpi:DocSpec>"
    )


BASE_DOCUMENT = f"""<?xml version="1.0" encoding="UTF-8"?>
<dpi:DPI_HU xmlns:dpi="{DPI_NS}" xmlns:stf="{STF_NS}" version="1.09">
 <dpi:MessageSpec>
  <dpi:SendingEntityIN>12345678-2-42</dpi:SendingEntityIN>
  <dpi:MessageType>DPI</dpi:MessageType>
  <dpi:Contact>Minta Anna, dac7@example.hu, +36 1 234 5678</dpi:Contact>
  <dpi:MessageRefId>123456782024MSG0001</dpi:MessageRefId>
  <dpi:MessageTypeIndic>DPI401</dpi:MessageTypeIndic>
  <dpi:ReportingPeriod>2024-12-31</dpi:ReportingPeriod>
  <dpi:Timestamp>2025-01-15T10:00:00.000</dpi:Timestamp>
 </dpi:MessageSpec>
 <dpi:DPIBody>
  <dpi:PlatformOperator>
   <dpi:ResCountryCode>HU</dpi:ResCountryCode>
   <dpi:TIN issuedBy="HU">12345678-2-42</dpi:TIN>
   <dpi:IN issuedBy="HU" INType="BRN">01-09-123456</dpi:IN>
   <dpi:VAT>HU12345678</dpi:VAT>
   <dpi:Name>Minta Platform Kft.</dpi:Name>
   <dpi:PlatformBusinessName>Minta Piac</dpi:PlatformBusinessName>
   <dpi:Address legalAddressType="OECD304">
    <dpi:CountryCode>HU</dpi:CountryCode>
    <dpi:AddressFix><dpi:Street>Fo utca</dpi:Street><dpi:BuildingIdentifier>1</dpi:BuildingIdentifier>
     <dpi:PostCode>1011</dpi:PostCode><dpi:City>Budapest</dpi:City></dpi:AddressFix>
   </dpi:Address>
   <dpi:Nexus>RPONEX1</dpi:Nexus>
   <dpi:AssumedReporting>false</dpi:AssumedReporting>
   {_doc_spec("PO-1")}
  </dpi:PlatformOperator>
  <dpi:OtherPlatformOperators>
   <dpi:AssumingPlatformOperator>
    <dpi:ResCountryCode>AT</dpi:ResCountryCode>
    <dpi:TIN issuedBy="AT">ATU12345678</dpi:TIN>
    <dpi:Name>Other Platform AG</dpi:Name>
    <dpi:Address><dpi:CountryCode>AT</dpi:CountryCode><dpi:AddressFree>Ring 1, 1010 Wien</dpi:AddressFree></dpi:Address>
    {_doc_spec("APO-1")}
   </dpi:AssumingPlatformOperator>
  </dpi:OtherPlatformOperators>
  <dpi:ReportableSeller>
   <dpi:Identity>
    <dpi:IndividualSeller>
     <dpi:Standard>
      <dpi:IndSellerID>
       <dpi:ResCountryCode>HU</dpi:ResCountryCode>
       <dpi:TIN issuedBy="HU" unknown="false">8123456789</dpi:TIN>
       <dpi:VAT>HU87654321</dpi:VAT>
       <dpi:Name nameType="OECD202">
        <dpi:PrecedingTitle>Ozvegy</dpi:PrecedingTitle>
        <dpi:Title>Dr</dpi:Title>
        <dpi:FirstName xnlNameType="Given">Anna</dpi:FirstName>
        <dpi:MiddleName>Maria</dpi:MiddleName>
        <dpi:NamePrefix>de</dpi:NamePrefix>
        <dpi:LastName xnlNameType="Family">Minta</dpi:LastName>
        <dpi:GenerationIdentifier>ifj.</dpi:GenerationIdentifier>
        <dpi:Suffix>PhD</dpi:Suffix>
        <dpi:GeneralSuffix>nyug.</dpi:GeneralSuffix>
       </dpi:Name>
       <dpi:Address legalAddressType="OECD302">
        <dpi:CountryCode>HU</dpi:CountryCode>
        <dpi:AddressFix>
         <dpi:Street>Kert utca</dpi:Street><dpi:BuildingIdentifier>5</dpi:BuildingIdentifier>
         <dpi:SuiteIdentifier>A</dpi:SuiteIdentifier><dpi:FloorIdentifier>2</dpi:FloorIdentifier>
         <dpi:DistrictName>Belvaros</dpi:DistrictName><dpi:POB>Pf. 12</dpi:POB><dpi:PostCode>6720</dpi:PostCode>
         <dpi:City>Szeged</dpi:City><dpi:CountrySubentity>Csongrad-Csanad</dpi:CountrySubentity>
        </dpi:AddressFix>
        <dpi:AddressFree>Kert utca 5, 6720 Szeged</dpi:AddressFree>
       </dpi:Address>
       <dpi:BirthInfo>
        <dpi:BirthDate>1980-05-17</dpi:BirthDate>
        <dpi:BirthPlace>
         <dpi:City>Debrecen</dpi:City><dpi:CitySubentity>Belvaros</dpi:CitySubentity>
         <dpi:CountryInfo><dpi:CountryCode>HU</dpi:CountryCode></dpi:CountryInfo>
        </dpi:BirthPlace>
       </dpi:BirthInfo>
      </dpi:IndSellerID>
      <dpi:FinancialIdentifier>
       <dpi:Identifier AccountNumberType="IBAN">HU42117730161111101800000000</dpi:Identifier>
       <dpi:AccountHolderName>Minta Anna</dpi:AccountHolderName>
       <dpi:OtherInfo>main account</dpi:OtherInfo>
      </dpi:FinancialIdentifier>
     </dpi:Standard>
    </dpi:IndividualSeller>
   </dpi:Identity>
   <dpi:RelevantActivities>
    <dpi:PersonalServices>{_activity_blocks()}</dpi:PersonalServices>
   </dpi:RelevantActivities>
   {_doc_spec("RS-1")}
  </dpi:ReportableSeller>
  <dpi:ReportableSeller>
   <dpi:Identity>
    <dpi:EntitySeller>
     <dpi:Standard>
      <dpi:EntSellerID>
       <dpi:ResCountryCode>HU</dpi:ResCountryCode>
       <dpi:TIN issuedBy="HU">87654321-2-13</dpi:TIN>
       <dpi:IN issuedBy="HU" INType="BRN">13-09-654321</dpi:IN>
       <dpi:VAT>HU11111111</dpi:VAT>
       <dpi:Name>Elado Kft.</dpi:Name>
       <dpi:Address legalAddressType="OECD304"><dpi:CountryCode>HU</dpi:CountryCode>
        <dpi:AddressFree>Piac ter 2, 2000 Szentendre</dpi:AddressFree></dpi:Address>
      </dpi:EntSellerID>
      <dpi:FinancialIdentifier><dpi:Identifier>HU93116000060000000012345676</dpi:Identifier></dpi:FinancialIdentifier>
      <dpi:PermanentEstablishments>
       <dpi:Address legalAddressType="OECD303">
        <dpi:CountryCode>SK</dpi:CountryCode>
        <dpi:AddressFix><dpi:Street>Hlavna</dpi:Street><dpi:BuildingIdentifier>7</dpi:BuildingIdentifier>
         <dpi:City>Kosice</dpi:City></dpi:AddressFix>
       </dpi:Address>
      </dpi:PermanentEstablishments>
     </dpi:Standard>
    </dpi:EntitySeller>
   </dpi:Identity>
   <dpi:RelevantActivities>
    <dpi:ImmovableProperty>
     <dpi:PropertyListing>
      <dpi:Address><dpi:CountryCode>HU</dpi:CountryCode>
       <dpi:AddressFix><dpi:City>Siofok</dpi:City></dpi:AddressFix></dpi:Address>
      <dpi:LandRegistrationNumber>Siofok 4711/2</dpi:LandRegistrationNumber>
      {_activity_blocks()}
      <dpi:PropertyType>DPI910</dpi:PropertyType>
      <dpi:OtherPropertyType>Houseboat berth</dpi:OtherPropertyType>
      <dpi:RentedDays>42</dpi:RentedDays>
     </dpi:PropertyListing>
    </dpi:ImmovableProperty>
    <dpi:PersonalServices>{_activity_blocks()}</dpi:PersonalServices>
    <dpi:SaleOfGoods>{_activity_blocks()}</dpi:SaleOfGoods>
    <dpi:TransportationRental>{_activity_blocks()}</dpi:TransportationRental>
   </dpi:RelevantActivities>
   {_doc_spec("RS-2")}
  </dpi:ReportableSeller>
 </dpi:DPIBody>
</dpi:DPI_HU>
"""


def base_document() -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(BASE_DOCUMENT.encode("utf-8")))


def test_validator_copy_present() -> None:
    assert _has_validator_copy(), f"expected the NAV validator copy under {VALIDATOR_XSD_DIR}"


def test_base_document_is_valid_against_all() -> None:
    results, errors = verdicts(base_document())
    assert results["reference"], f"base document must be valid against the reference schema\n{errors}"
    assert all(results.values()), f"base document must be valid everywhere: {results}\n{errors}"


def test_base_document_covers_the_brief() -> None:
    doc = base_document()
    for xpath in (
        "//dpi:IndividualSeller",
        "//dpi:EntitySeller",
        "//dpi:PropertyListing",
        "//dpi:PersonalServices",
        "//dpi:SaleOfGoods",
        "//dpi:TransportationRental",
        "//dpi:AssumingPlatformOperator",
        "//dpi:PermanentEstablishments/dpi:Address",
    ):
        assert doc.xpath(xpath, namespaces=NS), xpath


# --------------------------------------------------------------------------- mutations

Mutator = Callable[[etree._ElementTree], None]

_m = Mutations(NS)
remove = _m.remove
set_text = _m.set_text
set_attr = _m.set_attr
swap_with_next = _m.swap_with_next
duplicate = _m.duplicate
insert_after = _m.insert_after
insert_before = _m.insert_before
rename = _m.rename
chain = _m.chain
_one = _m.one


def replace_children(xpath: str, fragment: str) -> Mutator:
    def run(tree: etree._ElementTree) -> None:
        el = _one(tree, xpath)
        wrapper = etree.fromstring(f'<w xmlns:dpi="{DPI_NS}" xmlns:stf="{STF_NS}">{fragment}</w>')
        for child in list(el):
            el.remove(child)
        el.text = wrapper.text
        for child in wrapper:
            el.append(child)

    return run


ROOT = "/dpi:DPI_HU"
SPEC = "//dpi:MessageSpec"
IND = "//dpi:IndSellerID"
ENT = "//dpi:EntSellerID"
PO = "//dpi:PlatformOperator"
LISTING = "//dpi:PropertyListing"
ASSUMING = "//dpi:AssumingPlatformOperator"
PES = "//dpi:PermanentEstablishments"
PE_ADDRESS = f"{PES}/dpi:Address"
DOCREFID = "(//stf:DocRefId)[1]"
GVS = (
    "<dpi:GVS><dpi:NameGVS>g</dpi:NameGVS><dpi:JurisdictionGVS>HU</dpi:JurisdictionGVS>"
    "<dpi:ReferenceGVS>r</dpi:ReferenceGVS></dpi:GVS>"
)

VALID, INVALID = True, False

VARIANTS = [
    # --- MessageSpec of this edition
    pytest.param(remove("//dpi:SendingEntityIN"), INVALID, id="no-SendingEntityIN"),
    pytest.param(set_text("//dpi:SendingEntityIN", ""), INVALID, id="SendingEntityIN-empty"),
    pytest.param(set_text("//dpi:SendingEntityIN", "S" * 200), VALID, id="SendingEntityIN-200"),
    pytest.param(set_text("//dpi:SendingEntityIN", "S" * 201), INVALID, id="SendingEntityIN-201"),
    pytest.param(set_text("//dpi:SendingEntityIN", "DE123456789"), VALID, id="SendingEntityIN-not-NAV-format"),
    pytest.param(remove("//dpi:MessageType"), INVALID, id="no-MessageType"),
    pytest.param(set_text("//dpi:MessageType", "DAC7"), INVALID, id="MessageType-DAC7"),
    pytest.param(set_text("//dpi:MessageType", "dpi"), INVALID, id="MessageType-lowercase"),
    pytest.param(remove("//dpi:Contact"), VALID, id="no-Contact"),
    pytest.param(set_text("//dpi:Contact", "C" * 4001), INVALID, id="Contact-4001"),
    pytest.param(
        insert_after("//dpi:SendingEntityIN", "<dpi:TransmittingCountry>HU</dpi:TransmittingCountry>"),
        INVALID,
        id="EU-TransmittingCountry",
    ),
    pytest.param(
        insert_after("//dpi:MessageType", "<dpi:ReceivingCountry>HU</dpi:ReceivingCountry>"),
        INVALID,
        id="EU-ReceivingCountry",
    ),
    pytest.param(insert_after("//dpi:MessageType", "<dpi:Warning>w</dpi:Warning>"), INVALID, id="EU-Warning"),
    pytest.param(swap_with_next("//dpi:SendingEntityIN"), INVALID, id="order-MessageType-first"),
    pytest.param(swap_with_next("//dpi:MessageRefId"), INVALID, id="order-MessageRefId-after-Indic"),
    pytest.param(swap_with_next("//dpi:ReportingPeriod"), INVALID, id="order-Timestamp-before-Period"),
    pytest.param(duplicate(SPEC), INVALID, id="two-MessageSpec"),
    pytest.param(remove("//dpi:Timestamp"), INVALID, id="no-Timestamp"),
    # --- ids: lengths are checked, the NAV formats are not
    pytest.param(remove("//dpi:MessageRefId"), INVALID, id="no-MessageRefId"),
    pytest.param(set_text("//dpi:MessageRefId", ""), INVALID, id="MessageRefId-empty"),
    pytest.param(set_text("//dpi:MessageRefId", "1" * 170), VALID, id="MessageRefId-170"),
    pytest.param(set_text("//dpi:MessageRefId", "1" * 171), INVALID, id="MessageRefId-171"),
    pytest.param(set_text("//dpi:MessageRefId", "DE2024DE-0001"), VALID, id="MessageRefId-not-NAV-format"),
    pytest.param(set_text("//dpi:MessageRefId", "1234 2024 ?/#"), VALID, id="MessageRefId-any-characters"),
    pytest.param(set_text(DOCREFID, ""), INVALID, id="DocRefId-empty"),
    pytest.param(set_text(DOCREFID, "D" * 200), VALID, id="DocRefId-200"),
    pytest.param(set_text(DOCREFID, "D" * 201), INVALID, id="DocRefId-201"),
    pytest.param(set_text(DOCREFID, "HU2024-PO-1"), VALID, id="DocRefId-not-NAV-format"),
    pytest.param(remove(DOCREFID), INVALID, id="no-DocRefId"),
    pytest.param(
        insert_after(DOCREFID, "<stf:CorrDocRefId>2023-PO-1</stf:CorrDocRefId>"),
        VALID,
        id="CorrDocRefId",
    ),
    pytest.param(
        insert_after(DOCREFID, "<stf:CorrDocRefId>" + "C" * 201 + "</stf:CorrDocRefId>"),
        INVALID,
        id="CorrDocRefId-201",
    ),
    pytest.param(
        insert_after(DOCREFID, "<stf:CorrMessageRefId>123456782023X</stf:CorrMessageRefId>"),
        INVALID,
        id="EU-CorrMessageRefId",
    ),
    pytest.param(swap_with_next("(//stf:DocTypeIndic)[1]"), INVALID, id="order-DocRefId-first"),
    # --- root and body
    pytest.param(remove("//dpi:DPIBody"), INVALID, id="no-DPIBody"),
    pytest.param(duplicate("//dpi:DPIBody"), INVALID, id="two-DPIBody"),
    pytest.param(swap_with_next(SPEC), INVALID, id="body-before-MessageSpec"),
    pytest.param(rename(ROOT, "DPI_OECD"), INVALID, id="root-DPI_OECD"),
    pytest.param(rename(ROOT, "DPI_HU", "urn:oecd:ties:dpi"), INVALID, id="root-namespace-without-v1"),
    pytest.param(set_attr(ROOT, "version", None), VALID, id="no-version"),
    pytest.param(set_attr(ROOT, "version", "1.0.0.0.0.0"), INVALID, id="version-11-chars"),
    pytest.param(
        chain(remove("(//dpi:ReportableSeller)[2]"), remove("(//dpi:ReportableSeller)[1]")),
        VALID,
        id="body-without-sellers",
    ),
    pytest.param(remove(f"{PO}/dpi:DocSpec"), INVALID, id="no-operator-DocSpec"),
    # --- single Name and Address
    pytest.param(duplicate(f"{PO}/dpi:Name"), INVALID, id="operator-two-Names"),
    pytest.param(duplicate(f"{PO}/dpi:Address"), INVALID, id="operator-two-Addresses"),
    pytest.param(duplicate(f"{IND}/dpi:Name"), INVALID, id="individual-two-Names"),
    pytest.param(duplicate(f"{IND}/dpi:Address"), INVALID, id="individual-two-Addresses"),
    pytest.param(duplicate(f"{ENT}/dpi:Name"), INVALID, id="entity-two-Names"),
    pytest.param(duplicate(f"{ENT}/dpi:Address"), INVALID, id="entity-two-Addresses"),
    pytest.param(duplicate(f"{ASSUMING}/dpi:Name"), INVALID, id="assuming-two-Names"),
    pytest.param(remove(f"{IND}/dpi:Name"), INVALID, id="individual-no-Name"),
    pytest.param(remove(f"{ENT}/dpi:Address"), INVALID, id="entity-no-Address"),
    pytest.param(swap_with_next(f"{IND}/dpi:Name"), INVALID, id="order-Address-before-Name"),
    pytest.param(
        insert_after(f"{IND}/dpi:Address", "<dpi:Nationality>HU</dpi:Nationality>"),
        INVALID,
        id="EU-Nationality",
    ),
    pytest.param(duplicate(f"{IND}/dpi:TIN"), VALID, id="individual-two-TINs"),
    pytest.param(duplicate(f"{PO}/dpi:TIN"), VALID, id="operator-two-TINs"),
    pytest.param(remove(f"{IND}/dpi:ResCountryCode"), INVALID, id="individual-no-ResCountryCode"),
    pytest.param(remove(f"{ENT}/dpi:ResCountryCode"), VALID, id="entity-no-ResCountryCode"),
    pytest.param(remove(f"{IND}/dpi:BirthInfo"), INVALID, id="no-BirthInfo"),
    pytest.param(remove(f"{IND}//dpi:BirthPlace"), VALID, id="no-BirthPlace"),
    pytest.param(remove(f"{IND}/dpi:Name/dpi:FirstName"), INVALID, id="no-FirstName"),
    # --- permanent establishments are addresses
    pytest.param(
        replace_children(PES, "<dpi:PermanentEstablishment>SK</dpi:PermanentEstablishment>"),
        INVALID,
        id="PermanentEstablishment-as-country-code",
    ),
    pytest.param(
        insert_after(PE_ADDRESS, "<dpi:PermanentEstablishment>SK</dpi:PermanentEstablishment>"),
        INVALID,
        id="PermanentEstablishment-code-after-address",
    ),
    pytest.param(duplicate(PE_ADDRESS), VALID, id="two-PermanentEstablishment-addresses"),
    pytest.param(remove(PE_ADDRESS), INVALID, id="PermanentEstablishments-empty"),
    pytest.param(remove(PES), VALID, id="no-PermanentEstablishments"),
    pytest.param(remove(f"{PE_ADDRESS}/dpi:CountryCode"), INVALID, id="PE-address-no-CountryCode"),
    pytest.param(set_text(f"{PE_ADDRESS}/dpi:CountryCode", "ZZ"), INVALID, id="PE-address-country-ZZ"),
    pytest.param(set_text(f"{PE_ADDRESS}/dpi:CountryCode", "US"), VALID, id="PE-address-country-US-not-EU"),
    pytest.param(remove(f"{PE_ADDRESS}//dpi:City"), INVALID, id="PE-address-no-City"),
    # --- other platform operators: assuming only, one TIN
    pytest.param(rename(ASSUMING, "AssumedPlatformOperator"), INVALID, id="EU-AssumedPlatformOperator"),
    pytest.param(
        insert_after(ASSUMING, "<dpi:AssumedPlatformOperator/>"),
        INVALID,
        id="assuming-and-assumed",
    ),
    pytest.param(duplicate(ASSUMING), VALID, id="two-AssumingPlatformOperators"),
    pytest.param(remove(ASSUMING), INVALID, id="OtherPlatformOperators-empty"),
    pytest.param(remove("//dpi:OtherPlatformOperators"), VALID, id="no-OtherPlatformOperators"),
    pytest.param(duplicate(f"{ASSUMING}/dpi:TIN"), INVALID, id="assuming-two-TINs"),
    pytest.param(remove(f"{ASSUMING}/dpi:TIN"), INVALID, id="assuming-no-TIN"),
    pytest.param(remove(f"{ASSUMING}/dpi:ResCountryCode"), VALID, id="assuming-no-ResCountryCode"),
    pytest.param(duplicate(f"{ASSUMING}/dpi:ResCountryCode"), VALID, id="assuming-two-ResCountryCodes"),
    pytest.param(remove(f"{ASSUMING}/dpi:DocSpec"), INVALID, id="assuming-no-DocSpec"),
    # --- code lists
    pytest.param(set_text("//dpi:MessageTypeIndic", "DPI404"), INVALID, id="MessageTypeIndic-DPI404"),
    pytest.param(set_text("//dpi:MessageTypeIndic", "DPI403"), VALID, id="MessageTypeIndic-DPI403"),
    pytest.param(set_text("(//stf:DocTypeIndic)[1]", "OECD9"), INVALID, id="DocTypeIndic-OECD9"),
    pytest.param(set_text("(//stf:DocTypeIndic)[1]", "OECD11"), VALID, id="DocTypeIndic-OECD11-test"),
    pytest.param(set_text("(//stf:DocTypeIndic)[1]", "OECD0"), VALID, id="DocTypeIndic-OECD0"),
    pytest.param(set_attr(f"{IND}/dpi:Name", "nameType", "OECD201"), INVALID, id="nameType-OECD201-not-in-HU"),
    pytest.param(set_attr(f"{IND}/dpi:Name", "nameType", "OECD208"), VALID, id="nameType-OECD208"),
    pytest.param(set_text(f"{LISTING}/dpi:PropertyType", "DPI911"), INVALID, id="PropertyType-DPI911"),
    pytest.param(set_text(f"{PO}/dpi:Nexus", "RPONEX6"), INVALID, id="Nexus-RPONEX6"),
    pytest.param(set_attr(f"{PO}/dpi:IN", "INType", "IIN"), VALID, id="INType-IIN"),
    pytest.param(set_attr(f"{PO}/dpi:IN", "INType", "VAT"), INVALID, id="INType-VAT"),
    pytest.param(set_attr(f"{PO}/dpi:IN", "INType", None), INVALID, id="no-INType"),
    pytest.param(
        set_attr(f"{PO}/dpi:Address", "legalAddressType", "OECD306"),
        INVALID,
        id="legalAddressType-OECD306",
    ),
    pytest.param(
        set_attr(f"{PO}/dpi:Address", "legalAddressType", " OECD304  "),
        VALID,
        id="legalAddressType-token-whitespace",
    ),
    pytest.param(set_attr("(//dpi:ConsQ1)[1]", "currCode", "HUX"), INVALID, id="currCode-HUX"),
    pytest.param(set_attr("(//dpi:ConsQ1)[1]", "currCode", "EUR"), VALID, id="currCode-EUR"),
    pytest.param(set_attr("(//dpi:ConsQ1)[1]", "currCode", None), INVALID, id="no-currCode"),
    pytest.param(set_text(f"{IND}/dpi:ResCountryCode", "ZZ"), INVALID, id="country-ZZ"),
    pytest.param(set_text(f"{IND}/dpi:ResCountryCode", "hu"), INVALID, id="country-lowercase"),
    pytest.param(set_text(f"{IND}/dpi:ResCountryCode", "XK"), VALID, id="country-XK"),
    pytest.param(set_attr(f"{IND}/dpi:TIN", "issuedBy", "ZZ"), INVALID, id="TIN-issuedBy-ZZ"),
    # --- lengths and values
    pytest.param(set_text(f"{PO}/dpi:Name", "N" * 201), INVALID, id="operator-Name-201"),
    pytest.param(set_text(f"{IND}/dpi:Name/dpi:LastName", "L" * 201), INVALID, id="LastName-201"),
    pytest.param(set_text(f"{ENT}/dpi:Address/dpi:AddressFree", "A" * 4000), VALID, id="AddressFree-4000"),
    pytest.param(set_text(f"{ENT}/dpi:Address/dpi:AddressFree", "A" * 4001), INVALID, id="AddressFree-4001"),
    pytest.param(set_text(f"{IND}/dpi:TIN", ""), VALID, id="TIN-empty-allowed"),
    pytest.param(set_text(f"{IND}/dpi:TIN", "T" * 201), INVALID, id="TIN-201"),
    pytest.param(set_text(f"{IND}/dpi:VAT", ""), INVALID, id="VAT-empty"),
    pytest.param(set_text("//dpi:FinancialIdentifier/dpi:OtherInfo", "O" * 401), INVALID, id="OtherInfo-401"),
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "0"), INVALID, id="RentedDays-0"),
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "9999"), VALID, id="RentedDays-9999"),
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "10000"), INVALID, id="RentedDays-10000"),
    pytest.param(set_text("(//dpi:ConsQ1)[1]", "1.5"), INVALID, id="MonAmnt-decimal"),
    pytest.param(set_text("(//dpi:ConsQ1)[1]", "-5"), VALID, id="MonAmnt-negative"),
    pytest.param(set_text("(//dpi:NumbQ1)[1]", "two"), INVALID, id="NumbQ1-not-integer"),
    pytest.param(set_text(f"{IND}//dpi:BirthDate", "1980-13-01"), INVALID, id="BirthDate-month-13"),
    pytest.param(set_text(f"{IND}//dpi:BirthDate", "1850-01-01"), VALID, id="BirthDate-before-1900-schema-ok"),
    pytest.param(set_text("//dpi:Timestamp", "2025-01-15"), INVALID, id="Timestamp-date-only"),
    pytest.param(set_text("//dpi:Timestamp", "2025-01-15T10:00:00Z"), VALID, id="Timestamp-UTC-schema-ok"),
    pytest.param(set_text("//dpi:ReportingPeriod", "2024"), INVALID, id="ReportingPeriod-year-only"),
    pytest.param(set_text("//dpi:ReportingPeriod", "2024-06-30"), VALID, id="ReportingPeriod-not-31-Dec-schema-ok"),
    pytest.param(set_text(f"{PO}/dpi:AssumedReporting", "yes"), INVALID, id="AssumedReporting-yes"),
    # --- order and choices in the seller
    pytest.param(swap_with_next("(//dpi:ConsQ1)[1]"), INVALID, id="order-ConsQ2-first"),
    pytest.param(swap_with_next("//dpi:SaleOfGoods"), INVALID, id="order-TransportationRental-first"),
    pytest.param(swap_with_next(f"{PO}/dpi:Nexus"), INVALID, id="order-AssumedReporting-before-Nexus"),
    pytest.param(remove(LISTING), INVALID, id="ImmovableProperty-without-listing"),
    pytest.param(insert_after("//dpi:IndividualSeller/dpi:Standard", GVS), INVALID, id="Standard-and-GVS"),
    pytest.param(
        chain(insert_after("//dpi:IndividualSeller/dpi:Standard", GVS), remove("//dpi:IndividualSeller/dpi:Standard")),
        VALID,
        id="GVS-schema-allowed",
    ),
    pytest.param(rename("//dpi:IndividualSeller", "PrivateSeller"), INVALID, id="unknown-seller-kind"),
    pytest.param(insert_after(f"{ENT}/dpi:Name", "<dpi:Nickname>x</dpi:Nickname>"), INVALID, id="unknown-element"),
    pytest.param(remove(f"{IND}/dpi:Address/dpi:AddressFix"), VALID, id="AddressFree-only"),
    pytest.param(
        insert_before(f"{IND}/dpi:Address/dpi:AddressFix", "<dpi:AddressFree>first</dpi:AddressFree>"),
        INVALID,
        id="AddressFree-before-AddressFix",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), VARIANTS)
def test_variant_same_and_expected_verdict(mutate: Mutator, expected: bool) -> None:
    doc = base_document()
    mutate(doc)
    results, errors = verdicts(doc)
    assert len(set(results.values())) == 1, f"schemas disagree: {results}\n{errors}"
    assert results["reference"] == expected, f"expected valid={expected}\n{errors}"


def test_enough_invalid_variants() -> None:
    assert sum(1 for p in VARIANTS if p.values[1] is INVALID) >= 25


# --------------------------------------------------------------------------- samples


def sample_files() -> list[Path]:
    return reference_samples()


SAMPLES = sample_files()


def _reparse(el: etree._Element) -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(etree.tostring(el)))


def message_of(path: Path) -> etree._Element:
    """The DPI message of a sample (DPI_HU or DPI_OECD of any namespace); envelopes are unwrapped."""
    root = etree.parse(str(path)).getroot()
    for el in root.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname in ("DPI_HU", "DPI_OECD"):
            return el
    return root


def is_hungarian(path: Path) -> bool:
    return message_of(path).tag == ROOT_TAG


def as_dpi_hu(path: Path) -> etree._ElementTree:
    """The sample's message with its root renamed to DPI_HU (children keep their namespace)."""
    tree = _reparse(message_of(path))
    root = tree.getroot()
    root.tag = ROOT_TAG
    return _reparse(root)


def test_samples_found() -> None:
    assert len(SAMPLES) >= 10, f"expected the reference samples under {SAMPLES_DIR}"


@pytest.mark.parametrize("path", SAMPLES, ids=[sample_name(p) for p in SAMPLES])
def test_sample_same_verdict(path: Path) -> None:
    require_file(path)
    rel = sample_name(path)
    expected = is_hungarian(path)
    for label, doc in (("as stored", etree.parse(str(path))), ("re-rooted as DPI_HU", as_dpi_hu(path))):
        results, errors = verdicts(doc)
        assert len(set(results.values())) == 1, f"{rel} ({label}): schemas disagree {results}\n{errors}"
        if label == "as stored":
            assert results["reference"] == expected, f"{rel} ({label}): expected valid={expected}\n{errors}"
        elif not expected:
            # An OECD/EU message keeps TransmittingCountry etc.; the French one has other namespaces.
            assert not results["reference"], f"{rel} ({label}): an EU/OECD message must not pass as DPI_HU"


# --------------------------------------------------------------------------- structure


def _load_set(directory: Path, main_file: str = MAIN_FILE) -> dict[str, etree._Element]:
    names = {MAIN_FILE: main_file}
    return {name: etree.parse(str(directory / names.get(name, name))).getroot() for name in SCHEMA_FILES}


@cache
def our_set() -> dict[str, etree._Element]:
    return _load_set(OUR_XSD_DIR)


@cache
def reference_set() -> dict[str, etree._Element]:
    return _load_set(REFERENCE_XSD_DIR)


@cache
def validator_set() -> dict[str, etree._Element]:
    return _load_set(VALIDATOR_XSD_DIR, VALIDATOR_MAIN_FILE)


@cache
def eu_set() -> dict[str, etree._Element]:
    return _load_set(EU_XSD_DIR)


def test_same_files_namespaces_and_imports() -> None:
    for name in SCHEMA_FILES:
        ours, ref = our_set()[name], reference_set()[name]
        for attr in ("targetNamespace", "elementFormDefault", "attributeFormDefault", "version"):
            assert ours.get(attr) == ref.get(attr), (name, attr)
        imports = [
            {(i.get("namespace"), i.get("schemaLocation")) for i in root.findall(_x("import"))} for root in (ours, ref)
        ]
        assert imports[0] == imports[1], name
        assert not ours.findall(_x("include")), name


def test_same_named_components() -> None:
    for kind in KINDS:
        assert set(_named(our_set(), kind)) == set(_named(reference_set(), kind)), kind


def test_same_global_element() -> None:
    ours, ref = _named(our_set(), "element"), _named(reference_set(), "element")
    assert list(ref) == [ROOT_TAG]
    assert canonical(ours[ROOT_TAG]) == canonical(ref[ROOT_TAG])


REFERENCE_ENUMS = sorted(_enumerations(reference_set()))
REFERENCE_SIMPLE = sorted(_named(reference_set(), "simpleType"))
REFERENCE_COMPLEX = sorted(_named(reference_set(), "complexType"))


def test_enumeration_types_found() -> None:
    assert set(_enumerations(our_set())) == set(REFERENCE_ENUMS)
    assert len(REFERENCE_ENUMS) >= 12


@pytest.mark.parametrize("name", REFERENCE_ENUMS)
def test_enumeration_values_equal(name: str) -> None:
    ours, ref = _enumerations(our_set()), _enumerations(reference_set())
    assert name in ours, f"{name} missing from our schema"
    missing, extra = ref[name] - ours[name], ours[name] - ref[name]
    assert not missing and not extra, f"{name}: missing {sorted(missing)}, extra {sorted(extra)}"


@pytest.mark.parametrize("name", REFERENCE_SIMPLE)
def test_simple_type_equal(name: str) -> None:
    ours = _named(our_set(), "simpleType")
    assert name in ours, f"{name} missing from our schema"
    assert canonical(ours[name]) == canonical(_named(reference_set(), "simpleType")[name])


@pytest.mark.parametrize("name", REFERENCE_COMPLEX)
def test_complex_type_structure_equal(name: str) -> None:
    ours = _named(our_set(), "complexType")
    ref = _named(reference_set(), "complexType")[name]
    assert name in ours, f"{name} missing from our schema"
    # Readable first check: element names, order and cardinalities.
    assert child_elements(ours[name]) == child_elements(ref)
    # Full check: compositors, types, facets, attributes (fixed="DPI" included), derivations.
    assert canonical(ours[name]) == canonical(ref)


def test_no_patterns_anywhere() -> None:
    """The NAV id formats are business rules: neither schema has a single xsd:pattern."""
    for schema_set in (our_set(), reference_set()):
        for root in schema_set.values():
            assert not list(root.iter(_x("pattern")))


def test_validator_copy_is_the_same_schema() -> None:
    """NAV's validator tool carries the same schema (older annotation wording only): nothing else to write."""
    require_file(*(VALIDATOR_XSD_DIR / name for name in (VALIDATOR_MAIN_FILE, *SCHEMA_FILES[1:])))
    ref, val = reference_set(), validator_set()
    for name in SCHEMA_FILES:
        for attr in ("targetNamespace", "elementFormDefault", "attributeFormDefault", "version"):
            assert ref[name].get(attr) == val[name].get(attr), (name, attr)
    for kind in KINDS:
        a, b = _named(ref, kind), _named(val, kind)
        assert set(a) == set(b), kind
        for key in a:
            assert canonical(a[key]) == canonical(b[key]), key


# --------------------------------------------------------------------------- the EU edition

# Every named component that differs between the EU edition and this one (see the module docstring).
EU_DIFFERENCES = {
    "element": {f"{{{DPI_NS}}}DPI_OECD": "EU only", ROOT_TAG: "HU only"},
    "complexType": {
        f"{{{DPI_NS}}}AccountHolder_Type": "EU only",
        f"{{{DPI_NS}}}CorrectableAdditionalInfo_Type": "EU only",
        f"{{{DPI_NS}}}NameReportableSeller_Type": "EU only",
        f"{{{DPI_NS}}}MessageSpec_Type": "differs",
        f"{{{DPI_NS}}}PersonParty_Type": "differs",
        f"{{{DPI_NS}}}OrganisationParty_Type": "differs",
        f"{{{DPI_NS}}}PermanentEstablishments_Type": "differs",
        f"{{{DPI_NS}}}OtherPlatformOperators_Type": "differs",
        f"{{{DPI_NS}}}OtherRPO_Type": "differs",
        f"{{{STF_NS}}}DocSpec_Type": "differs",
    },
    "simpleType": {f"{{{STF_NS}}}OECDNameType_EnumType": "differs"},
}


def _differences(eu: dict[str, etree._Element], hu: dict[str, etree._Element]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        a, b = _named(eu, kind), _named(hu, kind)
        found = {k: "EU only" for k in set(a) - set(b)} | {k: "HU only" for k in set(b) - set(a)}
        found |= {k: "differs" for k in set(a) & set(b) if canonical(a[k]) != canonical(b[k])}
        if found:
            out[kind] = found
    return out


def test_differences_from_eu_edition() -> None:
    assert _differences(eu_set(), our_set()) == EU_DIFFERENCES


def test_differences_hold_for_the_official_files_too() -> None:
    official_eu = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0")
    require_file(*(official_eu / name for name in SCHEMA_FILES))
    assert _differences(_load_set(official_eu), reference_set()) == EU_DIFFERENCES


def _particles(schema_set: dict[str, etree._Element], kind: str, name: str) -> list[tuple[str, str, str]]:
    return child_elements(_named(schema_set, kind)[name])


@pytest.mark.parametrize(
    ("type_name", "eu_particles", "hu_particles"),
    [
        (
            "MessageSpec_Type",
            "SendingEntityIN 0 1, TransmittingCountry 1 1, ReceivingCountry 1 1, MessageType 1 1, Warning 0 1, "
            "Contact 0 1, MessageRefId 1 1, MessageTypeIndic 1 1, ReportingPeriod 1 1, Timestamp 1 1",
            "SendingEntityIN 1 1, MessageType 1 1, Contact 0 1, MessageRefId 1 1, MessageTypeIndic 1 1, "
            "ReportingPeriod 1 1, Timestamp 1 1",
        ),
        (
            "PersonParty_Type",
            "ResCountryCode 1 unbounded, TIN 1 unbounded, VAT 0 1, Name 1 unbounded, Address 1 unbounded, "
            "Nationality 0 unbounded, BirthInfo 1 1, BirthDate 1 1, BirthPlace 0 1",
            "ResCountryCode 1 unbounded, TIN 1 unbounded, VAT 0 1, Name 1 1, Address 1 1, "
            "BirthInfo 1 1, BirthDate 1 1, BirthPlace 0 1",
        ),
        (
            "OrganisationParty_Type",
            "ResCountryCode 0 unbounded, TIN 1 unbounded, IN 0 unbounded, VAT 0 1, Name 1 unbounded, "
            "PlatformBusinessName 0 unbounded, Address 1 unbounded, Nexus 0 1, AssumedReporting 0 1",
            "ResCountryCode 0 unbounded, TIN 1 unbounded, IN 0 unbounded, VAT 0 1, Name 1 1, "
            "PlatformBusinessName 0 unbounded, Address 1 1, Nexus 0 1, AssumedReporting 0 1",
        ),
        ("PermanentEstablishments_Type", "PermanentEstablishment 1 unbounded", "Address 1 unbounded"),
        (
            "OtherPlatformOperators_Type",
            "AssumingPlatformOperator 1 1, AssumedPlatformOperator 1 unbounded",
            "AssumingPlatformOperator 1 unbounded",
        ),
        (
            "OtherRPO_Type",
            "ResCountryCode 0 unbounded, TIN 1 unbounded, Name 1 1, Address 1 1",
            "ResCountryCode 0 unbounded, TIN 1 1, Name 1 1, Address 1 1",
        ),
    ],
)
def test_documented_particle_differences(type_name: str, eu_particles: str, hu_particles: str) -> None:
    key = f"{{{DPI_NS}}}{type_name}"

    def parse(text: str) -> list[tuple[str, ...]]:
        return [tuple(p.split()) for p in text.split(", ")]

    assert _particles(eu_set(), "complexType", key) == parse(eu_particles)
    assert _particles(our_set(), "complexType", key) == parse(hu_particles)


def test_documented_small_differences() -> None:
    # DocSpec without CorrMessageRefId.
    doc_spec = f"{{{STF_NS}}}DocSpec_Type"
    assert [p[0] for p in _particles(eu_set(), "complexType", doc_spec)] == [
        "DocTypeIndic",
        "DocRefId",
        "CorrMessageRefId",
        "CorrDocRefId",
    ]
    assert [p[0] for p in _particles(our_set(), "complexType", doc_spec)] == [
        "DocTypeIndic",
        "DocRefId",
        "CorrDocRefId",
    ]
    # No OECD201 name type.
    name_type = f"{{{STF_NS}}}OECDNameType_EnumType"
    assert _enumerations(eu_set())[name_type] - _enumerations(our_set())[name_type] == {"OECD201"}
    # The root: exactly one DPIBody here, 0..n in the EU edition.
    eu_root = _named(eu_set(), "element")[f"{{{DPI_NS}}}DPI_OECD"]
    hu_root = _named(our_set(), "element")[ROOT_TAG]
    assert child_elements(eu_root) == [("MessageSpec", "1", "1"), ("DPIBody", "0", "unbounded")]
    assert child_elements(hu_root) == [("MessageSpec", "1", "1"), ("DPIBody", "1", "1")]
    # MessageType is fixed to "DPI" here.
    spec = _named(our_set(), "complexType")[f"{{{DPI_NS}}}MessageSpec_Type"]
    assert spec.find(f".//{_x('element')}[@name='MessageType']").get("fixed") == "DPI"
    # Every code list other than the name type is the same in both editions.
    eu_enums, hu_enums = _enumerations(eu_set()), _enumerations(our_set())
    assert set(eu_enums) == set(hu_enums)
    assert {k for k in eu_enums if eu_enums[k] != hu_enums[k]} == {name_type}


# --------------------------------------------------------------------------- our files


def test_our_files_carry_project_header_only() -> None:
    header = (
        "DAC7 DPI schema v1.0, Hungarian NAV edition (root DPI_HU), "
        "written for this project from the published specification"
    )
    reference_docs = set()
    for schema_set in (reference_set(), *((validator_set(),) if _has_validator_copy() else ())):
        for root in schema_set.values():
            for doc in root.iter(_x("documentation")):
                text = " ".join((doc.text or "").split())
                if len(text) >= 30:  # shorter ones are code-list labels ("Hotel room", "Other") or country names
                    reference_docs.add(text)
    assert reference_docs, "no reference documentation found"
    for name in SCHEMA_FILES:
        text = (OUR_XSD_DIR / name).read_text(encoding="utf-8")
        assert header in text, name
        assert text.isascii(), f"{name}: our annotations are short English text"
        assert 'xml:lang="hu"' not in text, name
        for banned in ("XMLSpy", "altova", "/home/", "C:\\", "shared/reference"):
            assert banned.lower() not in text.lower(), (name, banned)
        flat = " ".join(text.split())
        copied = [doc for doc in reference_docs if doc in flat]
        assert not copied, f"{name}: reference documentation copied verbatim: {copied}"
