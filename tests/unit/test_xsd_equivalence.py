"""Our DPI v1.0 (EU DG TAXUD edition) schema must behave exactly like the official one.

Three kinds of evidence:
* every reference sample gets the same verdict from both schemas;
* a set of documents derived from one valid message (most of them broken on purpose)
  gets the same, expected, verdict from both;
* a structural walk of both schema sets: the same named types, the same code lists,
  facets, content models (element names, order, cardinalities, types) and attributes.

The official files are vendored in tests/reference/xsd; the samples are those of
tests/reference/samples and the Italian ones of ../shared/reference beside the checkout.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from lxml import etree
from resources import marks, require_file, require_module, sample_name, vendored
from resources import sample_files as reference_samples
from xsd_support import Mutations, canonical, child_elements, enumerations, named, xs

REPO_ROOT = Path(__file__).resolve().parents[2]
OUR_XSD_DIR = REPO_ROOT / "xsd" / "eu" / "v1.0"
OFFICIAL_XSD_DIR = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0")
SAMPLES_DIR = vendored("samples")
SCHEMA_FILES = ("DPIXML_v1.0.xsd", "isodpitypes_v1.0.xsd", "oecddpitypes_v1.0.xsd")

require_module(*(OFFICIAL_XSD_DIR / name for name in SCHEMA_FILES))

XS = "http://www.w3.org/2001/XMLSchema"
DPI_NS = "urn:oecd:ties:dpi:v1"
STF_NS = "urn:oecd:ties:dpistf:v1"
NS = {"dpi": DPI_NS, "stf": STF_NS}
ROOT_TAG = f"{{{DPI_NS}}}DPI_OECD"


@cache
def our_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(OUR_XSD_DIR / "DPIXML_v1.0.xsd")))


@cache
def official_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(OFFICIAL_XSD_DIR / "DPIXML_v1.0.xsd")))


def verdicts(doc: etree._ElementTree) -> tuple[bool, bool, str]:
    """(ours valid, official valid, first errors of each) for one document."""
    ours, official = our_schema(), official_schema()
    ok_ours, ok_official = ours.validate(doc), official.validate(doc)
    errors = (
        f"ours: {[str(e) for e in list(ours.error_log)[:3]]}\n"
        f"official: {[str(e) for e in list(official.error_log)[:3]]}"
    )
    return ok_ours, ok_official, errors


# --------------------------------------------------------------------------- samples

# Samples known to be DPI v1.0 messages of the OECD/EU edition (after unwrapping).
KNOWN_VALID_SAMPLES = {
    "it-ade-sogei__dac7-be-test/DPIXML_v1.09_2.xml",
    "it-ade-sogei__dac7-be-test/Valid-Send-InitialMsg-AssumedPO-010.xml",
    "it-ade-sogei__dac7-be-test/initialMessage_Prova.xml",
    "it-ade-sogei__dac7-be-test/TDAC7_TEST0112_INI-MSG1-5.xml",
    "it-ade-sogei__dac7-be-test/corretto.xml",
    "uk-hmrc-test-resources/SubmissionSample.xml",
    "uk-hmrc-test-resources/SubmissionSampleAssumed.xml",
    "uk-hmrc-test-resources/DPISubmissionRequest_Sample_v1.0.xml",
}


def sample_files() -> list[Path]:
    return reference_samples()


def message_of(path: Path) -> etree._ElementTree:
    """The DPI_OECD message of a sample; envelopes (IT telematic, HMRC request) are unwrapped."""
    root = etree.parse(str(path)).getroot()
    if root.tag != ROOT_TAG:
        inner = next(root.iter(ROOT_TAG), None)
        if inner is not None:
            root = inner
    # Re-parse the subtree so it becomes a document of its own (namespaces are carried over).
    return etree.ElementTree(etree.fromstring(etree.tostring(root)))


SAMPLES = sample_files()


def test_samples_found() -> None:
    assert len(SAMPLES) >= 10, f"expected the reference samples under {SAMPLES_DIR}"


@pytest.mark.parametrize("path", [pytest.param(p, marks=marks(p), id=sample_name(p)) for p in SAMPLES])
def test_sample_same_verdict(path: Path) -> None:
    require_file(path)
    rel = sample_name(path)
    ok_ours, ok_official, errors = verdicts(message_of(path))
    assert ok_ours == ok_official, f"{rel}: schemas disagree\n{errors}"
    if rel.startswith("fr-"):
        # French edition: other namespaces (urn:oecd:ties:dpi without :v1).
        assert not ok_ours, f"{rel}: a French-namespace message must not validate"
    elif rel in KNOWN_VALID_SAMPLES:
        assert ok_ours, f"{rel}: expected valid\n{errors}"


# --------------------------------------------------------------------------- valid base document


def _quarters(prefix: str, values: tuple[str, str, str, str], curr: str | None = "EUR") -> str:
    attr = f' currCode="{curr}"' if curr else ""
    return "".join(f"<dpi:{prefix}Q{i}{attr}>{v}</dpi:{prefix}Q{i}>" for i, v in enumerate(values, start=1))


def _activity_blocks(
    cons: tuple[str, str, str, str] = ("100", "0", "2500", "-40"),
) -> str:
    return (
        f"<dpi:Consideration>{_quarters('Cons', cons)}</dpi:Consideration>"
        f"<dpi:NumberOfActivities>{_quarters('Numb', ('1', '0', '3', '1'), None)}</dpi:NumberOfActivities>"
        f"<dpi:Fees>{_quarters('Fees', ('10', '0', '250', '0'))}</dpi:Fees>"
        f"<dpi:Taxes>{_quarters('Tax', ('0', '0', '0', '0'))}</dpi:Taxes>"
    )


def _doc_spec(ref: str) -> str:
    return (
        f"<dpi:DocSpec><stf:DocTypeIndic>OECD1</stf:DocTypeIndic><stf:DocRefId>DE2024{ref}</stf:DocRefId></dpi:DocSpec>"
    )


BASE_DOCUMENT = f"""<?xml version="1.0" encoding="UTF-8"?>
<dpi:DPI_OECD xmlns:dpi="{DPI_NS}" xmlns:stf="{STF_NS}" version="1.0">
 <dpi:MessageSpec>
  <dpi:SendingEntityIN>DE123456789</dpi:SendingEntityIN>
  <dpi:TransmittingCountry>DE</dpi:TransmittingCountry>
  <dpi:ReceivingCountry>DE</dpi:ReceivingCountry>
  <dpi:MessageType>DPI</dpi:MessageType>
  <dpi:Warning>test message</dpi:Warning>
  <dpi:Contact>dac7@example.com</dpi:Contact>
  <dpi:MessageRefId>DE2024DE-0001</dpi:MessageRefId>
  <dpi:MessageTypeIndic>DPI401</dpi:MessageTypeIndic>
  <dpi:ReportingPeriod>2024-12-31</dpi:ReportingPeriod>
  <dpi:Timestamp>2025-01-15T10:00:00.000</dpi:Timestamp>
 </dpi:MessageSpec>
 <dpi:DPIBody>
  <dpi:PlatformOperator>
   <dpi:ResCountryCode>DE</dpi:ResCountryCode>
   <dpi:TIN issuedBy="DE">12345678901</dpi:TIN>
   <dpi:IN issuedBy="DE" INType="BRN">HRB 12345</dpi:IN>
   <dpi:VAT>DE123456789</dpi:VAT>
   <dpi:Name>Example Platform GmbH</dpi:Name>
   <dpi:PlatformBusinessName>Example Market</dpi:PlatformBusinessName>
   <dpi:Address legalAddressType="OECD304">
    <dpi:CountryCode>DE</dpi:CountryCode>
    <dpi:AddressFix><dpi:Street>Hauptstrasse</dpi:Street><dpi:BuildingIdentifier>1</dpi:BuildingIdentifier><dpi:PostCode>10115</dpi:PostCode><dpi:City>Berlin</dpi:City></dpi:AddressFix>
   </dpi:Address>
   <dpi:Nexus>RPONEX1</dpi:Nexus>
   <dpi:AssumedReporting>false</dpi:AssumedReporting>
   {_doc_spec("PO-1")}
  </dpi:PlatformOperator>
  <dpi:OtherPlatformOperators>
   <dpi:AssumedPlatformOperator>
    <dpi:ResCountryCode>AT</dpi:ResCountryCode>
    <dpi:TIN issuedBy="AT">ATU12345678</dpi:TIN>
    <dpi:Name>Other Platform AG</dpi:Name>
    <dpi:Address><dpi:CountryCode>AT</dpi:CountryCode><dpi:AddressFree>Ring 1, 1010 Wien</dpi:AddressFree></dpi:Address>
    {_doc_spec("APO-1")}
   </dpi:AssumedPlatformOperator>
  </dpi:OtherPlatformOperators>
  <dpi:ReportableSeller>
   <dpi:Identity>
    <dpi:IndividualSeller>
     <dpi:Standard>
      <dpi:IndSellerID>
       <dpi:ResCountryCode>DE</dpi:ResCountryCode>
       <dpi:TIN issuedBy="DE" unknown="false">86095742719</dpi:TIN>
       <dpi:VAT>DE987654321</dpi:VAT>
       <dpi:Name nameType="OECD202">
        <dpi:PrecedingTitle>His Excellency</dpi:PrecedingTitle>
        <dpi:Title>Dr</dpi:Title>
        <dpi:FirstName xnlNameType="Given">Anna</dpi:FirstName>
        <dpi:MiddleName>Maria</dpi:MiddleName>
        <dpi:NamePrefix>von</dpi:NamePrefix>
        <dpi:LastName xnlNameType="Family">Beispiel</dpi:LastName>
        <dpi:GenerationIdentifier>II</dpi:GenerationIdentifier>
        <dpi:Suffix>PhD</dpi:Suffix>
        <dpi:GeneralSuffix>Retired</dpi:GeneralSuffix>
       </dpi:Name>
       <dpi:Address legalAddressType="OECD302">
        <dpi:CountryCode>DE</dpi:CountryCode>
        <dpi:AddressFix>
         <dpi:Street>Gartenweg</dpi:Street><dpi:BuildingIdentifier>5</dpi:BuildingIdentifier>
         <dpi:SuiteIdentifier>A</dpi:SuiteIdentifier><dpi:FloorIdentifier>2</dpi:FloorIdentifier>
         <dpi:DistrictName>Mitte</dpi:DistrictName><dpi:POB>PF 12</dpi:POB><dpi:PostCode>80331</dpi:PostCode>
         <dpi:City>Muenchen</dpi:City><dpi:CountrySubentity>Bayern</dpi:CountrySubentity>
        </dpi:AddressFix>
        <dpi:AddressFree>Gartenweg 5, 80331 Muenchen</dpi:AddressFree>
       </dpi:Address>
       <dpi:BirthInfo>
        <dpi:BirthDate>1980-05-17</dpi:BirthDate>
        <dpi:BirthPlace>
         <dpi:City>Hamburg</dpi:City><dpi:CitySubentity>Altona</dpi:CitySubentity>
         <dpi:CountryInfo><dpi:CountryCode>DE</dpi:CountryCode></dpi:CountryInfo>
        </dpi:BirthPlace>
       </dpi:BirthInfo>
      </dpi:IndSellerID>
      <dpi:FinancialIdentifier>
       <dpi:Identifier AccountNumberType="IBAN">DE89370400440532013000</dpi:Identifier>
       <dpi:AccountHolderName>Anna Beispiel</dpi:AccountHolderName>
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
       <dpi:ResCountryCode>DE</dpi:ResCountryCode>
       <dpi:TIN issuedBy="DE">99999999999</dpi:TIN>
       <dpi:IN issuedBy="DE" INType="BRN">HRB 999</dpi:IN>
       <dpi:VAT>DE111111111</dpi:VAT>
       <dpi:Name>Seller Company GmbH</dpi:Name>
       <dpi:Address legalAddressType="OECD304"><dpi:CountryCode>DE</dpi:CountryCode>
        <dpi:AddressFree>Am Markt 2, 50667 Koeln</dpi:AddressFree></dpi:Address>
      </dpi:EntSellerID>
      <dpi:FinancialIdentifier><dpi:Identifier>DE02120300000000202051</dpi:Identifier></dpi:FinancialIdentifier>
      <dpi:PermanentEstablishments><dpi:PermanentEstablishment>FR</dpi:PermanentEstablishment></dpi:PermanentEstablishments>
     </dpi:Standard>
    </dpi:EntitySeller>
   </dpi:Identity>
   <dpi:RelevantActivities>
    <dpi:ImmovableProperty>
     <dpi:PropertyListing>
      <dpi:Address><dpi:CountryCode>DE</dpi:CountryCode><dpi:AddressFix><dpi:City>Koeln</dpi:City></dpi:AddressFix></dpi:Address>
      <dpi:LandRegistrationNumber>GB-4711</dpi:LandRegistrationNumber>
      {_activity_blocks()}
      <dpi:PropertyType>DPI910</dpi:PropertyType>
      <dpi:OtherPropertyType>Tree house</dpi:OtherPropertyType>
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
</dpi:DPI_OECD>
"""


def base_document() -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(BASE_DOCUMENT.encode("utf-8")))


def test_base_document_is_valid_against_both() -> None:
    ok_ours, ok_official, errors = verdicts(base_document())
    assert ok_official, f"base document must be valid against the official schema\n{errors}"
    assert ok_ours, f"base document must be valid against our schema\n{errors}"


# --------------------------------------------------------------------------- mutations

Mutator = Callable[[etree._ElementTree], None]

_m = Mutations(NS)
remove = _m.remove
set_text = _m.set_text
set_attr = _m.set_attr
swap_with_next = _m.swap_with_next
duplicate = _m.duplicate
insert_after = _m.insert_after
rename = _m.rename
chain = _m.chain
_one = _m.one


IND = "//dpi:IndSellerID"
ENT = "//dpi:EntSellerID"
PO = "//dpi:PlatformOperator"
LISTING = "//dpi:PropertyListing"
ASSUMED = "//dpi:AssumedPlatformOperator"
ASSUMING = (
    "<dpi:AssumingPlatformOperator><dpi:TIN issuedBy='LU'>LU1</dpi:TIN><dpi:Name>X</dpi:Name>"
    "<dpi:Address><dpi:CountryCode>LU</dpi:CountryCode><dpi:AddressFree>x</dpi:AddressFree></dpi:Address>"
    "<dpi:DocSpec><stf:DocTypeIndic>OECD1</stf:DocTypeIndic><stf:DocRefId>DE2024X</stf:DocRefId></dpi:DocSpec>"
    "</dpi:AssumingPlatformOperator>"
)

VALID, INVALID = True, False

VARIANTS = [
    # --- missing required elements
    pytest.param(remove("//dpi:MessageRefId"), INVALID, id="missing-MessageRefId"),
    pytest.param(remove("//dpi:MessageSpec"), INVALID, id="missing-MessageSpec"),
    pytest.param(remove("//dpi:Timestamp"), INVALID, id="missing-Timestamp"),
    pytest.param(remove(f"{IND}/dpi:TIN"), INVALID, id="missing-individual-TIN"),
    pytest.param(remove(f"{PO}/dpi:TIN"), INVALID, id="missing-operator-TIN"),
    pytest.param(remove("(//dpi:ConsQ4)[1]"), INVALID, id="missing-ConsQ4"),
    pytest.param(remove(f"{LISTING}/dpi:Taxes"), INVALID, id="missing-listing-Taxes"),
    pytest.param(remove(f"{IND}/dpi:BirthInfo"), INVALID, id="missing-BirthInfo"),
    pytest.param(remove(f"{IND}/dpi:Name/dpi:FirstName"), INVALID, id="missing-FirstName"),
    pytest.param(remove(f"{IND}//dpi:AddressFix/dpi:City"), INVALID, id="missing-AddressFix-City"),
    pytest.param(remove(f"{PO}/dpi:DocSpec"), INVALID, id="missing-operator-DocSpec"),
    pytest.param(remove("(//stf:DocRefId)[1]"), INVALID, id="missing-DocRefId"),
    pytest.param(
        remove(f"{IND}/dpi:ResCountryCode"),
        INVALID,
        id="missing-individual-ResCountryCode",
    ),
    pytest.param(set_attr("(//dpi:ConsQ1)[1]", "currCode", None), INVALID, id="missing-currCode"),
    pytest.param(set_attr(f"{PO}/dpi:IN", "INType", None), INVALID, id="missing-INType"),
    # --- optional elements that may go
    pytest.param(remove(f"{ENT}/dpi:ResCountryCode"), VALID, id="entity-without-ResCountryCode"),
    pytest.param(
        remove("//dpi:OtherPlatformOperators"),
        VALID,
        id="without-OtherPlatformOperators",
    ),
    pytest.param(remove(f"{LISTING}/dpi:RentedDays"), VALID, id="listing-without-RentedDays"),
    pytest.param(remove("//dpi:DPIBody"), VALID, id="without-DPIBody"),
    pytest.param(
        chain(remove("(//dpi:ReportableSeller)[2]"), remove("(//dpi:ReportableSeller)[1]")),
        VALID,
        id="body-without-sellers",
    ),
    # --- element order
    pytest.param(
        swap_with_next("//dpi:MessageRefId"),
        INVALID,
        id="order-MessageRefId-after-Indic",
    ),
    pytest.param(
        swap_with_next("//dpi:MessageType"),
        INVALID,
        id="order-MessageType-after-Warning",
    ),
    pytest.param(swap_with_next("(//dpi:ConsQ1)[1]"), INVALID, id="order-ConsQ1-ConsQ2"),
    pytest.param(swap_with_next(f"{IND}/dpi:TIN"), INVALID, id="order-TIN-before-ResCountryCode"),
    pytest.param(
        swap_with_next("//dpi:SaleOfGoods"),
        INVALID,
        id="order-SaleOfGoods-TransportationRental",
    ),
    pytest.param(swap_with_next(f"{PO}/dpi:Nexus"), INVALID, id="order-Nexus-AssumedReporting"),
    pytest.param(
        swap_with_next("(//stf:DocTypeIndic)[1]"),
        INVALID,
        id="order-DocTypeIndic-DocRefId",
    ),
    # --- code lists
    pytest.param(set_text("//dpi:TransmittingCountry", "ZZ"), INVALID, id="country-ZZ"),
    pytest.param(set_text("//dpi:ReceivingCountry", "de"), INVALID, id="country-lowercase"),
    pytest.param(set_text("//dpi:ReceivingCountry", "XK"), VALID, id="country-XK-Kosovo"),
    pytest.param(set_text(f"{IND}/dpi:ResCountryCode", "X5"), VALID, id="country-X5-stateless"),
    pytest.param(
        set_text(f"{ENT}/dpi:Address/dpi:CountryCode", "ZZ"),
        INVALID,
        id="address-country-ZZ",
    ),
    pytest.param(set_attr("(//dpi:ConsQ1)[1]", "currCode", "EUX"), INVALID, id="currCode-EUX"),
    pytest.param(set_attr("(//dpi:FeesQ2)[1]", "currCode", "USD"), VALID, id="currCode-USD"),
    pytest.param(set_text("(//stf:DocTypeIndic)[1]", "OECD9"), INVALID, id="DocTypeIndic-OECD9"),
    pytest.param(
        set_text("(//stf:DocTypeIndic)[1]", "OECD11"),
        VALID,
        id="DocTypeIndic-OECD11-test",
    ),
    pytest.param(
        set_text("//dpi:MessageTypeIndic", "DPI404"),
        INVALID,
        id="MessageTypeIndic-DPI404",
    ),
    pytest.param(
        set_text("//dpi:MessageTypeIndic", "DPI403"),
        VALID,
        id="MessageTypeIndic-DPI403",
    ),
    pytest.param(
        set_text("//dpi:MessageType", "DAC7"),
        INVALID,
        id="MessageType-DAC7-not-in-EU-edition",
    ),
    pytest.param(
        set_text(f"{LISTING}/dpi:PropertyType", "DPI911"),
        INVALID,
        id="PropertyType-DPI911",
    ),
    pytest.param(set_text(f"{PO}/dpi:Nexus", "RPONEX6"), INVALID, id="Nexus-RPONEX6"),
    pytest.param(set_attr(f"{PO}/dpi:IN", "INType", "VAT"), INVALID, id="INType-VAT"),
    pytest.param(
        set_attr(f"{PO}/dpi:Address", "legalAddressType", "OECD306"),
        INVALID,
        id="legalAddressType-OECD306",
    ),
    pytest.param(
        set_attr(f"{PO}/dpi:Address", "legalAddressType", "  OECD304 "),
        VALID,
        id="legalAddressType-token-whitespace",
    ),
    pytest.param(
        set_attr(f"{IND}/dpi:Name", "nameType", "OECD209"),
        INVALID,
        id="nameType-OECD209",
    ),
    pytest.param(
        set_text(f"{ENT}/../dpi:PermanentEstablishments/dpi:PermanentEstablishment", "US"),
        INVALID,
        id="PermanentEstablishment-US-not-EU",
    ),
    pytest.param(
        set_text(f"{ENT}/../dpi:PermanentEstablishments/dpi:PermanentEstablishment", "GB"),
        INVALID,
        id="PermanentEstablishment-GB-not-EU",
    ),
    pytest.param(
        set_text(f"{ENT}/../dpi:PermanentEstablishments/dpi:PermanentEstablishment", "HR"),
        VALID,
        id="PermanentEstablishment-HR",
    ),
    # --- lengths
    pytest.param(set_text("//dpi:MessageRefId", "M" * 171), INVALID, id="MessageRefId-171"),
    pytest.param(set_text("//dpi:MessageRefId", "M" * 170), VALID, id="MessageRefId-170"),
    pytest.param(set_text("//dpi:MessageRefId", ""), INVALID, id="MessageRefId-empty"),
    pytest.param(set_text("(//stf:DocRefId)[1]", "D" * 201), INVALID, id="DocRefId-201"),
    pytest.param(set_text("(//stf:DocRefId)[1]", "D" * 200), VALID, id="DocRefId-200"),
    pytest.param(set_text(f"{PO}/dpi:Name", "N" * 201), INVALID, id="operator-Name-201"),
    pytest.param(set_text(f"{IND}/dpi:Name/dpi:LastName", "L" * 201), INVALID, id="LastName-201"),
    pytest.param(
        set_text(f"{ENT}/dpi:Address/dpi:AddressFree", "A" * 4001),
        INVALID,
        id="AddressFree-4001",
    ),
    pytest.param(
        set_text(f"{ENT}/dpi:Address/dpi:AddressFree", "A" * 4000),
        VALID,
        id="AddressFree-4000",
    ),
    pytest.param(set_text(f"{IND}/dpi:TIN", ""), VALID, id="TIN-empty-allowed"),
    pytest.param(set_text(f"{IND}/dpi:TIN", "T" * 201), INVALID, id="TIN-201"),
    pytest.param(set_text(f"{IND}/dpi:VAT", ""), INVALID, id="VAT-empty"),
    pytest.param(
        set_attr("/dpi:DPI_OECD", "version", "1.0.0.0.0.0"),
        INVALID,
        id="version-11-chars",
    ),
    pytest.param(
        insert_after(
            "(//stf:DocRefId)[1]",
            f"<stf:CorrMessageRefId>{'C' * 171}</stf:CorrMessageRefId>",
        ),
        INVALID,
        id="CorrMessageRefId-171",
    ),
    pytest.param(
        set_text("//dpi:FinancialIdentifier/dpi:OtherInfo", "O" * 401),
        INVALID,
        id="FinancialIdentifier-OtherInfo-401",
    ),
    # --- numbers, dates, booleans
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "0"), INVALID, id="RentedDays-0"),
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "10000"), INVALID, id="RentedDays-10000"),
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "9999"), VALID, id="RentedDays-9999"),
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "1"), VALID, id="RentedDays-1"),
    pytest.param(set_text("(//dpi:ConsQ1)[1]", "1.5"), INVALID, id="MonAmnt-decimal"),
    pytest.param(
        set_text("(//dpi:ConsQ1)[1]", "1,000"),
        INVALID,
        id="MonAmnt-thousands-separator",
    ),
    pytest.param(set_text("(//dpi:ConsQ1)[1]", "-5"), VALID, id="MonAmnt-negative-integer"),
    pytest.param(set_text("(//dpi:NumbQ1)[1]", "two"), INVALID, id="NumbQ1-not-integer"),
    pytest.param(
        set_text(f"{IND}//dpi:BirthDate", "1980-13-01"),
        INVALID,
        id="BirthDate-month-13",
    ),
    pytest.param(set_text("//dpi:Timestamp", "2025-01-15"), INVALID, id="Timestamp-without-time"),
    pytest.param(
        set_text("//dpi:ReportingPeriod", "2024"),
        INVALID,
        id="ReportingPeriod-year-only",
    ),
    pytest.param(
        set_text(f"{PO}/dpi:AssumedReporting", "yes"),
        INVALID,
        id="AssumedReporting-yes",
    ),
    # --- choices and repetitions
    pytest.param(duplicate("//dpi:DPIBody"), VALID, id="two-DPIBody"),
    pytest.param(duplicate("//dpi:MessageSpec"), INVALID, id="two-MessageSpec"),
    pytest.param(duplicate(ASSUMED), VALID, id="two-AssumedPlatformOperators"),
    pytest.param(insert_after(ASSUMED, ASSUMING), INVALID, id="assumed-and-assuming"),
    pytest.param(
        chain(
            insert_after(ASSUMED, ASSUMING),
            remove(ASSUMED),
            duplicate("//dpi:AssumingPlatformOperator"),
        ),
        INVALID,
        id="two-AssumingPlatformOperators",
    ),
    pytest.param(
        chain(insert_after(ASSUMED, ASSUMING), remove(ASSUMED)),
        VALID,
        id="one-AssumingPlatformOperator",
    ),
    pytest.param(duplicate(f"{IND}/dpi:BirthInfo"), INVALID, id="two-BirthInfo"),
    pytest.param(duplicate(f"{PO}/dpi:VAT"), INVALID, id="two-VAT"),
    pytest.param(duplicate(f"{IND}/dpi:Name"), VALID, id="two-person-Names"),
    pytest.param(duplicate(f"{ASSUMED}/dpi:Name"), INVALID, id="assumed-operator-two-Names"),
    pytest.param(
        insert_after(f"{IND}/dpi:Address", "<dpi:Nationality>DE</dpi:Nationality>"),
        VALID,
        id="Nationality-schema-allowed",
    ),
    pytest.param(
        insert_after(
            f"{ENT}/dpi:Address/dpi:AddressFree",
            "<dpi:AddressFree>again</dpi:AddressFree>",
        ),
        INVALID,
        id="AddressFree-twice",
    ),
    pytest.param(remove(f"{IND}/dpi:Address/dpi:AddressFix"), VALID, id="AddressFree-only"),
    pytest.param(
        insert_after(f"{ENT}/dpi:Name", "<dpi:Nickname>x</dpi:Nickname>"),
        INVALID,
        id="unknown-element",
    ),
    pytest.param(
        rename("//dpi:IndividualSeller", "PrivateSeller"),
        INVALID,
        id="unknown-seller-kind",
    ),
    pytest.param(
        insert_after(
            "//dpi:IndividualSeller/dpi:Standard",
            "<dpi:GVS><dpi:NameGVS>g</dpi:NameGVS><dpi:JurisdictionGVS>DE</dpi:JurisdictionGVS>"
            "<dpi:ReferenceGVS>r</dpi:ReferenceGVS></dpi:GVS>",
        ),
        INVALID,
        id="Standard-and-GVS",
    ),
    pytest.param(
        chain(
            insert_after(
                "//dpi:IndividualSeller/dpi:Standard",
                "<dpi:GVS><dpi:NameGVS>g</dpi:NameGVS><dpi:JurisdictionGVS>ZZ</dpi:JurisdictionGVS>"
                "<dpi:ReferenceGVS>r</dpi:ReferenceGVS></dpi:GVS>",
            ),
            remove("//dpi:IndividualSeller/dpi:Standard"),
        ),
        INVALID,
        id="GVS-jurisdiction-ZZ",
    ),
    pytest.param(
        chain(
            insert_after(
                "//dpi:IndividualSeller/dpi:Standard",
                "<dpi:GVS><dpi:NameGVS>g</dpi:NameGVS><dpi:JurisdictionGVS>DE</dpi:JurisdictionGVS>"
                "<dpi:ReferenceGVS>r</dpi:ReferenceGVS></dpi:GVS>",
            ),
            remove("//dpi:IndividualSeller/dpi:Standard"),
        ),
        VALID,
        id="GVS-schema-allowed",
    ),
    pytest.param(remove(LISTING), INVALID, id="ImmovableProperty-without-listing"),
]


@pytest.mark.parametrize(("mutate", "expected"), VARIANTS)
def test_variant_same_and_expected_verdict(mutate: Mutator, expected: bool) -> None:
    doc = base_document()
    mutate(doc)
    ok_ours, ok_official, errors = verdicts(doc)
    assert ok_ours == ok_official, f"schemas disagree (ours={ok_ours}, official={ok_official})\n{errors}"
    assert ok_official == expected, f"expected valid={expected}\n{errors}"


# --------------------------------------------------------------------------- structure


def _load_set(directory: Path) -> dict[str, etree._Element]:
    return {name: etree.parse(str(directory / name)).getroot() for name in SCHEMA_FILES}


@cache
def our_set() -> dict[str, etree._Element]:
    return _load_set(OUR_XSD_DIR)


@cache
def official_set() -> dict[str, etree._Element]:
    return _load_set(OFFICIAL_XSD_DIR)


def test_same_files_namespaces_and_imports() -> None:
    for name in SCHEMA_FILES:
        ours, official = our_set()[name], official_set()[name]
        assert ours.get("targetNamespace") == official.get("targetNamespace"), name
        for attr in ("elementFormDefault", "attributeFormDefault"):
            assert ours.get(attr) == official.get(attr), (name, attr)
        imports = [
            {(i.get("namespace"), i.get("schemaLocation")) for i in root.findall(xs("import"))}
            for root in (ours, official)
        ]
        assert imports[0] == imports[1], name
        assert not ours.findall(xs("include")), name


def test_same_named_components() -> None:
    for kind in (
        "simpleType",
        "complexType",
        "element",
        "attribute",
        "group",
        "attributeGroup",
    ):
        assert set(named(our_set(), kind)) == set(named(official_set(), kind)), kind


def test_same_global_element() -> None:
    ours = named(our_set(), "element")
    official = named(official_set(), "element")
    for name in official:
        assert canonical(ours[name]) == canonical(official[name]), name


OFFICIAL_ENUMS = sorted(enumerations(official_set()))
OFFICIAL_COMPLEX = sorted(named(official_set(), "complexType"))
OFFICIAL_SIMPLE = sorted(named(official_set(), "simpleType"))


def test_enumeration_types_found() -> None:
    assert set(enumerations(our_set())) == set(OFFICIAL_ENUMS)
    assert len(OFFICIAL_ENUMS) >= 12


@pytest.mark.parametrize("name", OFFICIAL_ENUMS)
def test_enumeration_values_equal(name: str) -> None:
    ours, official = enumerations(our_set()), enumerations(official_set())
    assert name in ours, f"{name} missing from our schema"
    missing, extra = official[name] - ours[name], ours[name] - official[name]
    assert not missing and not extra, f"{name}: missing {sorted(missing)}, extra {sorted(extra)}"


@pytest.mark.parametrize("name", OFFICIAL_SIMPLE)
def test_simple_type_equal(name: str) -> None:
    ours = named(our_set(), "simpleType")
    assert name in ours, f"{name} missing from our schema"
    assert canonical(ours[name]) == canonical(named(official_set(), "simpleType")[name])


@pytest.mark.parametrize("name", OFFICIAL_COMPLEX)
def test_complex_type_structure_equal(name: str) -> None:
    ours = named(our_set(), "complexType")
    official = named(official_set(), "complexType")[name]
    assert name in ours, f"{name} missing from our schema"
    # Readable first check: element names, order and cardinalities.
    assert child_elements(ours[name]) == child_elements(official)
    # Full check: compositors, types, facets, attributes, derivations.
    assert canonical(ours[name]) == canonical(official)


def test_our_files_carry_project_header_only() -> None:
    header = "DAC7 DPI schema v1.0, EU DG TAXUD edition, written for this project from the published specification"
    for name in SCHEMA_FILES:
        text = (OUR_XSD_DIR / name).read_text(encoding="utf-8")
        assert header in text, name
        for banned in ("XMLSpy", "altova", "/home/", "C:\\"):
            assert banned not in text, (name, banned)
