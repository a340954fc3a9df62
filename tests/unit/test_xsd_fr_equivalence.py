"""Our DPI schema, French DGFiP edition (xsd/fr/v1.6), must behave exactly like the reference one.

The reference is the DGFiP schema of the cahier des charges v1.6 (revenus 2025) as adapted by Back Market
(vendored in tests/reference/xsd/fr-dgfip-v1.6__adapted-by-backmarket, source and licence in
tests/reference/README.md): it turns checks the cahier des charges
states outside the XSD into schema rules (version "1.0", MessageRefId format, amounts >= 0, seller residence
in the EU, Nexus and PropertyType mandatory).  Our files keep its file names (DPIXML_v1.1-fr1.xsd imports
oecddpitypes_v1.0-fr1.xsd and isodpitypes_v1.0-fr1.xsd by relative schemaLocation).

Evidence, as for the EU edition (test_xsd_equivalence.py):
* the six French samples are valid against both schemas; the EU-edition samples of the other folders are
  invalid against both (other namespace), and stay invalid, with the same verdict, when moved into the
  French namespaces;
* documents derived from one small valid French message (most broken on purpose) get the same, expected,
  verdict from both;
* a structural walk of both schema sets: same named types, code lists, facets, content models and attributes.

Differences of the French edition from the EU edition (xsd/eu/v1.0), for the profile author
-------------------------------------------------------------------------------------------
Namespaces and files
  * urn:oecd:ties:dpi, urn:oecd:ties:dpistf, urn:oecd:ties:dpiisotypes - no ":v1", and the ISO namespace is
    "dpiisotypes" (EU: "isodpitypes:v1").  A message of one edition is never valid against the other.
  * DPIXML_v1.1-fr1.xsd, oecddpitypes_v1.0-fr1.xsd, isodpitypes_v1.0-fr1.xsd; the stf file imports nothing.
Root
  * DPI_OECD/@version required and exactly "1.0" (EU: optional, any 1-10 characters).
  * DPIBody exactly once (EU: 0..n).
MessageSpec
  * no SendingEntityIN, Warning, Contact.
  * TransmittingCountry and ReceivingCountry: "FR" only (FR_EnumType).
  * MessageRefId 1-88 characters matching OP_(202[3-9]|20[3-9]\\d)_(\\d{9})_.+ i.e.
    OP_<year from 2023>_<SIREN>_<suffix> (EU: 1-170, free).
PlatformOperator (CorrectablePlatformOperator_Type, flat; EU: extension of OrganisationParty_Type)
  * ResCountryCode exactly 1, any country (EU 0..n).
  * TIN 1..n of TIN_PlatformOperator_Type: 1-200 characters, @issuedBy only "FR", no @unknown.
  * Name exactly 1 (EU 1..n); PlatformBusinessName exactly 1 (EU 0..n).
  * Nexus and AssumedReporting mandatory (EU 0..1 each).
OtherPlatformOperators (CorrectableOtherRPO_Type, flat; EU: OtherRPO_Type + DocSpec)
  * ResCountryCode exactly 1, any country (EU 0..n); Address 1..n (EU exactly 1).
ReportableSeller (CorrectableReportableSeller_Type, flat; EU: extension of ReportableSeller_Type)
  * no GVS (EU GVSType): EntitySeller/IndividualSeller contain Standard only (EntitySeller_Type,
    IndividualSeller_Type; EU: anonymous choice Standard | GVS).
  * EntSellerID (OrganisationParty_Type): ResCountryCode exactly 1 and an EU Member State (EU 0..n, any
    country); no PlatformBusinessName, Nexus, AssumedReporting.
  * IndSellerID (PersonParty_Type): ResCountryCode exactly 1 and an EU Member State (EU 1..n, any country);
    no Nationality.  BirthPlace is an anonymous type (EU: BirthPlace_Type), same content.
  * RelevantActivities_Type named; the three non-property blocks are anonymous (EU: OtherActivities_Type).
  * Taxes: TaxesQ1..TaxesQ4 (EU TaxQ1..TaxQ4).  Type names Consideration_Type, Fees_Type, Taxes_Type
    (EU ConsiderationType, FeesType, TaxesType).
  * PropertyListing anonymous (EU PropertyListingType): PropertyType mandatory (EU 0..1), its type
    PropertyType_Type (EU DPIPropertyType_EnumType, same ten codes); RentedDays IntegerMax4Digits_Type
    1..9999 (same value space as the EU totalDigits 4 / minInclusive 1).
Values and texts
  * MonAmnt_Type (ConsQn, FeesQn, TaxesQn) xs:nonNegativeInteger; NumbQn xs:nonNegativeInteger (EU: xs:integer,
    negatives allowed).
  * TIN_Type text 1-200 characters: an empty TIN is invalid (EU: 0-200, empty allowed with @unknown).
  * Not blank (StringSansSeulsCaractEspaceTabCRLF200, pattern .*(\\S).* on 1-200 characters): organisation
    Name (NameOrganisation_Type, also gets an optional @nameType), LastName, AddressFix/City, AddressFree,
    IN.  The pattern's "." excludes line breaks, so these texts cannot contain a newline at all.
  * Address_Type: AddressFix OR AddressFree, never both (EU: AddressFix may be followed by AddressFree);
    AddressFree 1-200 characters (EU 1-4000).
  * IN: IN_Type (EU OrganisationIN_Type); INType_EnumType derives from StringMin1Max200_Type (same values).
  * DocSpec: no CorrMessageRefId; DocRefId and CorrDocRefId match [\\da-zA-Z+-.:=_]{1,200} (EU: any
    1-200 characters).  "+-." is a range, so "," is accepted while "/" or a space is not.
Code lists
  * CountryCode_Type without X5 and XX (XK kept); OECDNameType_EnumType without OECD201.
  * EUCountryCode_Type (EU: MSCountryCode_Type), same 27 Member States; used for seller ResCountryCode and
    PermanentEstablishment.
  * currCode_Type, DocTypeIndic (OECD0-3, 10-13), legal address types, Nexus, INType, MessageTypeIndic and
    the property types are the same.
  * Not in the French edition: LanguageCode_Type, StringMin0Max200_Type, StringMin1Max4000WithLang_Type,
    CorrectableAdditionalInfo_Type, AccountHolder_Type, NameReportableSeller_Type, Identifier_Type (inline).
    StringMin1Max4000_Type is declared but unused.

The reference files are vendored in tests/reference (see tests/reference/README.md); of the samples, the
Italian ones lie beside the checkout in ../shared/reference.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from lxml import etree
from resources import marks, require_file, require_module, sample_files, sample_name, vendored
from xsd_support import Mutations, canonical, child_elements
from xsd_support import enumerations as _enumerations
from xsd_support import named as _named

REPO_ROOT = Path(__file__).resolve().parents[2]
OUR_XSD_DIR = REPO_ROOT / "xsd" / "fr" / "v1.6"
EU_XSD_DIR = REPO_ROOT / "xsd" / "eu" / "v1.0"
REFERENCE_XSD_DIR = vendored("xsd", "fr-dgfip-v1.6__adapted-by-backmarket")
SAMPLES_DIR = vendored("samples")
FR_SAMPLES_DIR = SAMPLES_DIR / "fr-dgfip-examples__adapted-by-backmarket"
MAIN_FILE = "DPIXML_v1.1-fr1.xsd"
SCHEMA_FILES = (MAIN_FILE, "isodpitypes_v1.0-fr1.xsd", "oecddpitypes_v1.0-fr1.xsd")
EU_SCHEMA_FILES = ("DPIXML_v1.0.xsd", "isodpitypes_v1.0.xsd", "oecddpitypes_v1.0.xsd")

require_module(*(REFERENCE_XSD_DIR / name for name in SCHEMA_FILES))

XS = "http://www.w3.org/2001/XMLSchema"
DPI_NS = "urn:oecd:ties:dpi"
STF_NS = "urn:oecd:ties:dpistf"
ISO_NS = "urn:oecd:ties:dpiisotypes"
EU_DPI_NS = "urn:oecd:ties:dpi:v1"
EU_STF_NS = "urn:oecd:ties:dpistf:v1"
NS = {"dpi": DPI_NS, "stf": STF_NS}
KINDS = ("simpleType", "complexType", "element", "attribute", "group", "attributeGroup")


def _x(local: str) -> str:
    return f"{{{XS}}}{local}"


@cache
def our_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(OUR_XSD_DIR / MAIN_FILE)))


@cache
def reference_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(REFERENCE_XSD_DIR / MAIN_FILE)))


def verdicts(doc: etree._ElementTree) -> tuple[bool, bool, str]:
    """(ours valid, reference valid, first errors of each) for one document."""
    ours, ref = our_schema(), reference_schema()
    ok_ours, ok_ref = ours.validate(doc), ref.validate(doc)
    errors = (
        f"ours: {[str(e) for e in list(ours.error_log)[:3]]}\nreference: {[str(e) for e in list(ref.error_log)[:3]]}"
    )
    return ok_ours, ok_ref, errors


# --------------------------------------------------------------------------- samples


def _rel(path: Path) -> str:
    return sample_name(path)


FR_SAMPLES = sorted(FR_SAMPLES_DIR.glob("*/declaration.xml")) if FR_SAMPLES_DIR.is_dir() else []
OTHER_SAMPLES = [p for p in sample_files() if FR_SAMPLES_DIR not in p.parents]


def message_of(path: Path) -> etree._ElementTree:
    """The DPI_OECD message of a sample (any namespace); envelopes (IT telematic, HMRC request) are unwrapped."""
    root = etree.parse(str(path)).getroot()
    if etree.QName(root).localname != "DPI_OECD":
        inner = next(
            (el for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname == "DPI_OECD"), None
        )
        if inner is not None:
            root = inner
    return etree.ElementTree(etree.fromstring(etree.tostring(root)))


def to_namespaces(tree: etree._ElementTree, mapping: dict[str, str]) -> etree._ElementTree:
    """A copy of the document with its element namespaces renamed (attributes are unqualified)."""
    root = copy.deepcopy(tree.getroot())
    for el in root.iter():
        if isinstance(el.tag, str):
            qname = etree.QName(el)
            if qname.namespace in mapping:
                el.tag = f"{{{mapping[qname.namespace]}}}{qname.localname}"
    etree.cleanup_namespaces(root)
    return etree.ElementTree(etree.fromstring(etree.tostring(root)))


EU_TO_FR = {EU_DPI_NS: DPI_NS, EU_STF_NS: STF_NS}
FR_TO_EU = {DPI_NS: EU_DPI_NS, STF_NS: EU_STF_NS}


def test_samples_found() -> None:
    assert len(FR_SAMPLES) == 6, f"expected the six French samples under {FR_SAMPLES_DIR}"
    assert len(OTHER_SAMPLES) >= 5, f"expected EU-edition samples under {SAMPLES_DIR}"


@pytest.mark.parametrize("path", FR_SAMPLES, ids=[_rel(p) for p in FR_SAMPLES])
def test_french_sample_valid_against_both(path: Path) -> None:
    ok_ours, ok_ref, errors = verdicts(etree.parse(str(path)))
    assert ok_ref, f"{_rel(path)}: expected valid against the reference\n{errors}"
    assert ok_ours, f"{_rel(path)}: expected valid against our schema\n{errors}"


@pytest.mark.parametrize("path", [pytest.param(p, marks=marks(p), id=_rel(p)) for p in OTHER_SAMPLES])
def test_eu_sample_invalid_against_both(path: Path) -> None:
    require_file(path)
    ok_ours, ok_ref, errors = verdicts(message_of(path))
    assert ok_ours == ok_ref, f"{_rel(path)}: schemas disagree\n{errors}"
    assert not ok_ours, f"{_rel(path)}: an EU-namespace message must not validate against the French schema"


@pytest.mark.parametrize("path", [pytest.param(p, marks=marks(p), id=_rel(p)) for p in OTHER_SAMPLES])
def test_eu_sample_in_french_namespaces_same_verdict(path: Path) -> None:
    """Moved into the French namespaces, EU messages still fail (TaxQn, SendingEntityIN, ...) - in both schemas."""
    require_file(path)
    ok_ours, ok_ref, errors = verdicts(to_namespaces(message_of(path), EU_TO_FR))
    assert ok_ours == ok_ref, f"{_rel(path)}: schemas disagree\n{errors}"
    assert not ok_ours, f"{_rel(path)}: unexpectedly valid in the French edition"


# --------------------------------------------------------------------------- valid base document


def _quarters(prefix: str, values: tuple[str, str, str, str], curr: str | None = "EUR") -> str:
    attr = f' currCode="{curr}"' if curr else ""
    return "".join(f"<dpi:{prefix}Q{i}{attr}>{v}</dpi:{prefix}Q{i}>" for i, v in enumerate(values, start=1))


def _activity_blocks() -> str:
    return (
        f"<dpi:Consideration>{_quarters('Cons', ('100', '0', '2500', '40'))}</dpi:Consideration>"
        f"<dpi:NumberOfActivities>{_quarters('Numb', ('1', '0', '3', '1'), None)}</dpi:NumberOfActivities>"
        f"<dpi:Fees>{_quarters('Fees', ('10', '0', '250', '0'))}</dpi:Fees>"
        f"<dpi:Taxes>{_quarters('Taxes', ('0', '0', '0', '0'))}</dpi:Taxes>"
    )


def _doc_spec(ref: str) -> str:
    return (
        "<dpi:DocSpec><stf:DocTypeIndic>OECD1</stf:DocTypeIndic>"
        f"<stf:DocRefId>OP_2025_123456789_{ref}_v1</stf:DocRefId></dpi:DocSpec>"
    )


BASE_DOCUMENT = f"""<?xml version="1.0" encoding="UTF-8"?>
<dpi:DPI_OECD xmlns:dpi="{DPI_NS}" xmlns:stf="{STF_NS}" version="1.0">
 <dpi:MessageSpec>
  <dpi:TransmittingCountry>FR</dpi:TransmittingCountry>
  <dpi:ReceivingCountry>FR</dpi:ReceivingCountry>
  <dpi:MessageType>DPI</dpi:MessageType>
  <dpi:MessageRefId>OP_2025_123456789_d1</dpi:MessageRefId>
  <dpi:MessageTypeIndic>DPI401</dpi:MessageTypeIndic>
  <dpi:ReportingPeriod>2025-12-31</dpi:ReportingPeriod>
  <dpi:Timestamp>2026-01-15T10:00:00.000</dpi:Timestamp>
 </dpi:MessageSpec>
 <dpi:DPIBody>
  <dpi:PlatformOperator>
   <dpi:ResCountryCode>FR</dpi:ResCountryCode>
   <dpi:TIN issuedBy="FR">123456789</dpi:TIN>
   <dpi:IN issuedBy="FR" INType="BRN">123456789</dpi:IN>
   <dpi:Name>Exemple Plateforme SAS</dpi:Name>
   <dpi:PlatformBusinessName>exemple.fr</dpi:PlatformBusinessName>
   <dpi:Address legalAddressType="OECD304">
    <dpi:CountryCode>FR</dpi:CountryCode>
    <dpi:AddressFix>
     <dpi:Street>rue de Rivoli</dpi:Street><dpi:PostCode>75001</dpi:PostCode><dpi:City>Paris</dpi:City>
    </dpi:AddressFix>
   </dpi:Address>
   <dpi:Nexus>RPONEX1</dpi:Nexus>
   <dpi:AssumedReporting>false</dpi:AssumedReporting>
   {_doc_spec("PO")}
  </dpi:PlatformOperator>
  <dpi:OtherPlatformOperators>
   <dpi:AssumedPlatformOperator>
    <dpi:ResCountryCode>DE</dpi:ResCountryCode>
    <dpi:TIN issuedBy="DE">12345678901</dpi:TIN>
    <dpi:Name>Andere Plattform GmbH</dpi:Name>
    <dpi:Address>
     <dpi:CountryCode>DE</dpi:CountryCode><dpi:AddressFree>Hauptstrasse 1, 10115 Berlin</dpi:AddressFree>
    </dpi:Address>
    {_doc_spec("APO")}
   </dpi:AssumedPlatformOperator>
  </dpi:OtherPlatformOperators>
  <dpi:ReportableSeller>
   <dpi:Identity>
    <dpi:IndividualSeller>
     <dpi:Standard>
      <dpi:IndSellerID>
       <dpi:ResCountryCode>FR</dpi:ResCountryCode>
       <dpi:TIN issuedBy="FR">1234567890123</dpi:TIN>
       <dpi:Name nameType="OECD202">
        <dpi:FirstName>Marie</dpi:FirstName>
        <dpi:LastName>Exemple</dpi:LastName>
       </dpi:Name>
       <dpi:Address legalAddressType="OECD302">
        <dpi:CountryCode>FR</dpi:CountryCode>
        <dpi:AddressFix><dpi:City>Lyon</dpi:City></dpi:AddressFix>
       </dpi:Address>
       <dpi:BirthInfo>
        <dpi:BirthDate>1980-05-17</dpi:BirthDate>
        <dpi:BirthPlace><dpi:City>Nantes</dpi:City><dpi:CountryInfo><dpi:CountryCode>FR</dpi:CountryCode></dpi:CountryInfo></dpi:BirthPlace>
       </dpi:BirthInfo>
      </dpi:IndSellerID>
      <dpi:FinancialIdentifier>
       <dpi:Identifier AccountNumberType="IBAN">FR7630001007941234567890185</dpi:Identifier>
       <dpi:OtherInfo>compte principal</dpi:OtherInfo>
      </dpi:FinancialIdentifier>
     </dpi:Standard>
    </dpi:IndividualSeller>
   </dpi:Identity>
   <dpi:RelevantActivities>
    <dpi:PersonalServices>{_activity_blocks()}</dpi:PersonalServices>
   </dpi:RelevantActivities>
   {_doc_spec("RS1")}
  </dpi:ReportableSeller>
  <dpi:ReportableSeller>
   <dpi:Identity>
    <dpi:EntitySeller>
     <dpi:Standard>
      <dpi:EntSellerID>
       <dpi:ResCountryCode>FR</dpi:ResCountryCode>
       <dpi:TIN issuedBy="FR">524841623</dpi:TIN>
       <dpi:VAT>FR32524841623</dpi:VAT>
       <dpi:Name>SCI Exemple</dpi:Name>
       <dpi:Address>
        <dpi:CountryCode>FR</dpi:CountryCode><dpi:AddressFree>10 place du Parlement, 33000 Bordeaux</dpi:AddressFree>
       </dpi:Address>
      </dpi:EntSellerID>
      <dpi:PermanentEstablishments><dpi:PermanentEstablishment>IT</dpi:PermanentEstablishment></dpi:PermanentEstablishments>
     </dpi:Standard>
    </dpi:EntitySeller>
   </dpi:Identity>
   <dpi:RelevantActivities>
    <dpi:ImmovableProperty>
     <dpi:PropertyListing>
      <dpi:Address><dpi:CountryCode>FR</dpi:CountryCode><dpi:AddressFix><dpi:City>Paris</dpi:City></dpi:AddressFix></dpi:Address>
      {_activity_blocks()}
      <dpi:PropertyType>DPI905</dpi:PropertyType>
      <dpi:RentedDays>42</dpi:RentedDays>
     </dpi:PropertyListing>
    </dpi:ImmovableProperty>
   </dpi:RelevantActivities>
   {_doc_spec("RS2")}
  </dpi:ReportableSeller>
 </dpi:DPIBody>
</dpi:DPI_OECD>
"""


def base_document() -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(BASE_DOCUMENT.encode("utf-8")))


def test_base_document_is_valid_against_both() -> None:
    ok_ours, ok_ref, errors = verdicts(base_document())
    assert ok_ref, f"base document must be valid against the reference schema\n{errors}"
    assert ok_ours, f"base document must be valid against our schema\n{errors}"


def test_base_document_invalid_in_eu_edition() -> None:
    """Even with the EU namespaces the French message is no EU message (TaxesQn instead of TaxQn)."""
    eu = etree.XMLSchema(etree.parse(str(EU_XSD_DIR / "DPIXML_v1.0.xsd")))
    assert not eu.validate(base_document())
    assert not eu.validate(to_namespaces(base_document(), FR_TO_EU))
    assert any("TaxesQ1" in str(e) for e in eu.error_log), [str(e) for e in eu.error_log][:3]


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


def rename_all(old: str, new: str) -> Mutator:
    def run(tree: etree._ElementTree) -> None:
        found = tree.xpath(f"//dpi:{old}", namespaces=NS)
        assert found, f"no {old} to rename"
        for el in found:
            el.tag = f"{{{DPI_NS}}}{new}"

    return run


def move_to_namespaces(mapping: dict[str, str]) -> Mutator:
    def run(tree: etree._ElementTree) -> None:
        moved = to_namespaces(tree, mapping).getroot()
        tree._setroot(moved)

    return run


ROOT = "/dpi:DPI_OECD"
SPEC = "//dpi:MessageSpec"
PO = "//dpi:PlatformOperator"
IND = "//dpi:IndSellerID"
ENT = "//dpi:EntSellerID"
LISTING = "//dpi:PropertyListing"
ASSUMED = "//dpi:AssumedPlatformOperator"
PE = "//dpi:PermanentEstablishment"
ASSUMING = (
    "<dpi:AssumingPlatformOperator><dpi:ResCountryCode>LU</dpi:ResCountryCode><dpi:TIN issuedBy='LU'>LU1</dpi:TIN>"
    "<dpi:Name>X</dpi:Name><dpi:Address><dpi:CountryCode>LU</dpi:CountryCode><dpi:AddressFree>x</dpi:AddressFree>"
    "</dpi:Address><dpi:DocSpec><stf:DocTypeIndic>OECD1</stf:DocTypeIndic><stf:DocRefId>OP_2025_123456789_X_v1"
    "</stf:DocRefId></dpi:DocSpec></dpi:AssumingPlatformOperator>"
)
GVS = (
    "<dpi:GVS><dpi:NameGVS>g</dpi:NameGVS><dpi:JurisdictionGVS>FR</dpi:JurisdictionGVS>"
    "<dpi:ReferenceGVS>r</dpi:ReferenceGVS></dpi:GVS>"
)

VALID, INVALID = True, False

VARIANTS = [
    # --- missing required elements and attributes
    pytest.param(remove(SPEC), INVALID, id="missing-MessageSpec"),
    pytest.param(remove("//dpi:DPIBody"), INVALID, id="missing-DPIBody"),
    pytest.param(remove("//dpi:MessageRefId"), INVALID, id="missing-MessageRefId"),
    pytest.param(remove("//dpi:Timestamp"), INVALID, id="missing-Timestamp"),
    pytest.param(remove(f"{PO}/dpi:ResCountryCode"), INVALID, id="missing-operator-ResCountryCode"),
    pytest.param(remove(f"{PO}/dpi:TIN"), INVALID, id="missing-operator-TIN"),
    pytest.param(remove(f"{PO}/dpi:PlatformBusinessName"), INVALID, id="missing-PlatformBusinessName"),
    pytest.param(remove(f"{PO}/dpi:Nexus"), INVALID, id="missing-Nexus"),
    pytest.param(remove(f"{PO}/dpi:AssumedReporting"), INVALID, id="missing-AssumedReporting"),
    pytest.param(remove(f"{PO}/dpi:DocSpec"), INVALID, id="missing-operator-DocSpec"),
    pytest.param(remove(f"{ASSUMED}/dpi:ResCountryCode"), INVALID, id="missing-assumed-ResCountryCode"),
    pytest.param(remove(f"{IND}/dpi:ResCountryCode"), INVALID, id="missing-individual-ResCountryCode"),
    pytest.param(remove(f"{ENT}/dpi:ResCountryCode"), INVALID, id="missing-entity-ResCountryCode"),
    pytest.param(remove(f"{IND}/dpi:TIN"), INVALID, id="missing-individual-TIN"),
    pytest.param(remove(f"{IND}/dpi:BirthInfo"), INVALID, id="missing-BirthInfo"),
    pytest.param(remove(f"{IND}/dpi:Name/dpi:LastName"), INVALID, id="missing-LastName"),
    pytest.param(remove(f"{IND}//dpi:AddressFix/dpi:City"), INVALID, id="missing-AddressFix-City"),
    pytest.param(remove("(//dpi:TaxesQ4)[1]"), INVALID, id="missing-TaxesQ4"),
    pytest.param(remove(f"{LISTING}/dpi:Taxes"), INVALID, id="missing-listing-Taxes"),
    pytest.param(remove(f"{LISTING}/dpi:PropertyType"), INVALID, id="missing-PropertyType"),
    pytest.param(remove("(//stf:DocRefId)[1]"), INVALID, id="missing-DocRefId"),
    pytest.param(set_attr("(//dpi:ConsQ1)[1]", "currCode", None), INVALID, id="missing-currCode"),
    pytest.param(set_attr(f"{PO}/dpi:IN", "INType", None), INVALID, id="missing-INType"),
    pytest.param(set_attr(ROOT, "version", None), INVALID, id="missing-version"),
    # --- optional elements that may go
    pytest.param(remove("//dpi:OtherPlatformOperators"), VALID, id="without-OtherPlatformOperators"),
    pytest.param(remove(f"{PO}/dpi:IN"), VALID, id="operator-without-IN"),
    pytest.param(remove(f"{IND}//dpi:BirthPlace"), VALID, id="without-BirthPlace"),
    pytest.param(remove(f"{LISTING}/dpi:RentedDays"), VALID, id="listing-without-RentedDays"),
    pytest.param(set_attr(f"{PO}/dpi:TIN", "issuedBy", None), VALID, id="operator-TIN-without-issuedBy"),
    pytest.param(
        chain(remove("(//dpi:ReportableSeller)[2]"), remove("(//dpi:ReportableSeller)[1]")),
        VALID,
        id="body-without-sellers",
    ),
    # --- elements of the EU edition that the French one does not have
    pytest.param(rename_all("TaxesQ1", "TaxQ1"), INVALID, id="TaxQ1-instead-of-TaxesQ1"),
    pytest.param(
        chain(*(rename_all(f"TaxesQ{i}", f"TaxQ{i}") for i in range(1, 5))),
        INVALID,
        id="TaxQ1-4-EU-spelling",
    ),
    pytest.param(
        insert_before("//dpi:TransmittingCountry", "<dpi:SendingEntityIN>123456789</dpi:SendingEntityIN>"),
        INVALID,
        id="SendingEntityIN",
    ),
    pytest.param(insert_after("//dpi:MessageType", "<dpi:Warning>test</dpi:Warning>"), INVALID, id="Warning"),
    pytest.param(insert_after("//dpi:MessageType", "<dpi:Contact>x@example.fr</dpi:Contact>"), INVALID, id="Contact"),
    pytest.param(
        insert_after(f"{IND}/dpi:Address", "<dpi:Nationality>FR</dpi:Nationality>"), INVALID, id="Nationality"
    ),
    pytest.param(
        chain(insert_after("//dpi:IndividualSeller/dpi:Standard", GVS), remove("//dpi:IndividualSeller/dpi:Standard")),
        INVALID,
        id="GVS-instead-of-Standard",
    ),
    pytest.param(
        insert_after("(//stf:DocRefId)[1]", "<stf:CorrMessageRefId>OP_2025_123456789_d0</stf:CorrMessageRefId>"),
        INVALID,
        id="CorrMessageRefId",
    ),
    pytest.param(
        insert_after(f"{IND}/dpi:TIN", "<dpi:IN INType='IIN'>1</dpi:IN>"),
        INVALID,
        id="IN-for-individual-seller",
    ),
    pytest.param(
        insert_after(f"{ENT}/dpi:Name", "<dpi:PlatformBusinessName>x</dpi:PlatformBusinessName>"),
        INVALID,
        id="PlatformBusinessName-for-entity-seller",
    ),
    pytest.param(
        insert_after(f"{ENT}/dpi:Address/dpi:AddressFree", "<dpi:AddressFree>again</dpi:AddressFree>"),
        INVALID,
        id="AddressFree-twice",
    ),
    pytest.param(
        insert_after(f"{IND}//dpi:AddressFix", "<dpi:AddressFree>Lyon</dpi:AddressFree>"),
        INVALID,
        id="AddressFix-and-AddressFree",
    ),
    pytest.param(
        insert_after(f"{PO}/dpi:TIN", "<dpi:TIN issuedBy='FR' unknown='false'>1</dpi:TIN>"),
        INVALID,
        id="operator-TIN-unknown-attribute",
    ),
    # --- element order
    pytest.param(swap_with_next("//dpi:MessageRefId"), INVALID, id="order-MessageRefId-after-Indic"),
    pytest.param(swap_with_next("(//dpi:TaxesQ1)[1]"), INVALID, id="order-TaxesQ1-TaxesQ2"),
    pytest.param(swap_with_next(f"{PO}/dpi:Nexus"), INVALID, id="order-Nexus-AssumedReporting"),
    pytest.param(swap_with_next(f"{IND}/dpi:ResCountryCode"), INVALID, id="order-TIN-before-ResCountryCode"),
    pytest.param(swap_with_next(f"{LISTING}/dpi:PropertyType"), INVALID, id="order-RentedDays-before-PropertyType"),
    pytest.param(swap_with_next("(//stf:DocTypeIndic)[1]"), INVALID, id="order-DocTypeIndic-DocRefId"),
    pytest.param(swap_with_next(SPEC), INVALID, id="order-body-before-spec"),
    # --- repetitions and choices
    pytest.param(duplicate("//dpi:DPIBody"), INVALID, id="two-DPIBody"),
    pytest.param(duplicate(f"{PO}/dpi:Name"), INVALID, id="operator-two-Names"),
    pytest.param(duplicate(f"{PO}/dpi:PlatformBusinessName"), INVALID, id="two-PlatformBusinessNames"),
    pytest.param(duplicate(f"{PO}/dpi:ResCountryCode"), INVALID, id="operator-two-ResCountryCodes"),
    pytest.param(duplicate(f"{IND}/dpi:ResCountryCode"), INVALID, id="individual-two-ResCountryCodes"),
    pytest.param(duplicate(f"{ENT}/dpi:Name"), VALID, id="entity-two-Names"),
    pytest.param(duplicate(f"{ASSUMED}/dpi:Address"), VALID, id="assumed-two-Addresses"),
    pytest.param(duplicate(f"{ASSUMED}/dpi:Name"), INVALID, id="assumed-two-Names"),
    pytest.param(duplicate(ASSUMED), VALID, id="two-AssumedPlatformOperators"),
    pytest.param(insert_after(ASSUMED, ASSUMING), INVALID, id="assumed-and-assuming"),
    pytest.param(chain(insert_after(ASSUMED, ASSUMING), remove(ASSUMED)), VALID, id="one-AssumingPlatformOperator"),
    pytest.param(
        chain(insert_after(ASSUMED, ASSUMING), remove(ASSUMED), duplicate("//dpi:AssumingPlatformOperator")),
        INVALID,
        id="two-AssumingPlatformOperators",
    ),
    pytest.param(duplicate(f"{IND}/dpi:BirthInfo"), INVALID, id="two-BirthInfo"),
    pytest.param(remove(LISTING), INVALID, id="ImmovableProperty-without-listing"),
    pytest.param(insert_after(f"{ENT}/dpi:Name", "<dpi:Nickname>x</dpi:Nickname>"), INVALID, id="unknown-element"),
    # --- root attribute and namespaces
    pytest.param(set_attr(ROOT, "version", "1.1"), INVALID, id="version-1.1"),
    pytest.param(set_attr(ROOT, "version", "1.0.0"), INVALID, id="version-1.0.0"),
    pytest.param(set_attr(ROOT, "version", " 1.0"), INVALID, id="version-leading-space"),
    pytest.param(move_to_namespaces(FR_TO_EU), INVALID, id="EU-namespaces"),
    pytest.param(move_to_namespaces({STF_NS: EU_STF_NS}), INVALID, id="stf-EU-namespace"),
    # --- code lists
    pytest.param(set_text("//dpi:TransmittingCountry", "DE"), INVALID, id="TransmittingCountry-DE"),
    pytest.param(set_text("//dpi:ReceivingCountry", "BE"), INVALID, id="ReceivingCountry-BE"),
    pytest.param(set_attr(f"{PO}/dpi:TIN", "issuedBy", "DE"), INVALID, id="operator-TIN-issuedBy-DE"),
    pytest.param(set_text(f"{PO}/dpi:ResCountryCode", "US"), VALID, id="operator-ResCountryCode-US"),
    pytest.param(set_text(f"{ASSUMED}/dpi:ResCountryCode", "CH"), VALID, id="assumed-ResCountryCode-CH"),
    pytest.param(set_text(f"{IND}/dpi:ResCountryCode", "US"), INVALID, id="individual-ResCountryCode-US"),
    pytest.param(set_text(f"{IND}/dpi:ResCountryCode", "GB"), INVALID, id="individual-ResCountryCode-GB"),
    pytest.param(set_text(f"{ENT}/dpi:ResCountryCode", "CH"), INVALID, id="entity-ResCountryCode-CH"),
    pytest.param(set_text(f"{ENT}/dpi:ResCountryCode", "HR"), VALID, id="entity-ResCountryCode-HR"),
    pytest.param(set_text(PE, "US"), INVALID, id="PermanentEstablishment-US"),
    pytest.param(set_text(PE, "HR"), VALID, id="PermanentEstablishment-HR"),
    pytest.param(set_text(f"{ENT}/dpi:Address/dpi:CountryCode", "XK"), VALID, id="country-XK"),
    pytest.param(set_text(f"{ENT}/dpi:Address/dpi:CountryCode", "X5"), INVALID, id="country-X5-not-in-FR"),
    pytest.param(set_text(f"{ENT}/dpi:Address/dpi:CountryCode", "XX"), INVALID, id="country-XX-not-in-FR"),
    pytest.param(set_text(f"{ENT}/dpi:Address/dpi:CountryCode", "fr"), INVALID, id="country-lowercase"),
    pytest.param(set_attr("(//dpi:ConsQ1)[1]", "currCode", "EUX"), INVALID, id="currCode-EUX"),
    pytest.param(set_attr("(//dpi:FeesQ2)[1]", "currCode", "USD"), VALID, id="currCode-USD"),
    pytest.param(set_text("(//stf:DocTypeIndic)[1]", "OECD4"), INVALID, id="DocTypeIndic-OECD4"),
    pytest.param(set_text("(//stf:DocTypeIndic)[1]", "OECD11"), VALID, id="DocTypeIndic-OECD11-test"),
    pytest.param(set_text("//dpi:MessageTypeIndic", "DPI404"), INVALID, id="MessageTypeIndic-DPI404"),
    pytest.param(set_text("//dpi:MessageType", "DAC7"), INVALID, id="MessageType-DAC7"),
    pytest.param(set_text(f"{PO}/dpi:Nexus", "RPONEX6"), INVALID, id="Nexus-RPONEX6"),
    pytest.param(set_text(f"{LISTING}/dpi:PropertyType", "DPI911"), INVALID, id="PropertyType-DPI911"),
    pytest.param(set_attr(f"{PO}/dpi:IN", "INType", "SIREN"), INVALID, id="INType-SIREN"),
    pytest.param(set_attr(f"{IND}/dpi:Name", "nameType", "OECD201"), INVALID, id="nameType-OECD201-not-in-FR"),
    pytest.param(set_attr(f"{PO}/dpi:Name", "nameType", "OECD207"), VALID, id="organisation-nameType"),
    pytest.param(
        set_attr(f"{PO}/dpi:Address", "legalAddressType", " OECD304 "), VALID, id="legalAddressType-token-space"
    ),
    pytest.param(set_attr(f"{PO}/dpi:Address", "legalAddressType", "OECD306"), INVALID, id="legalAddressType-OECD306"),
    # --- MessageRefId and DocRefId formats
    pytest.param(set_text("//dpi:MessageRefId", "OP_2025_123456789_" + "x" * 70), VALID, id="MessageRefId-88"),
    pytest.param(set_text("//dpi:MessageRefId", "OP_2025_123456789_" + "x" * 71), INVALID, id="MessageRefId-89"),
    pytest.param(set_text("//dpi:MessageRefId", "OP_2022_123456789_d1"), INVALID, id="MessageRefId-year-2022"),
    pytest.param(set_text("//dpi:MessageRefId", "OP_2025_12345678_d1"), INVALID, id="MessageRefId-SIREN-8-digits"),
    pytest.param(set_text("//dpi:MessageRefId", "OP_2025_123456789_"), INVALID, id="MessageRefId-no-suffix"),
    pytest.param(set_text("//dpi:MessageRefId", "FR2025-0001"), INVALID, id="MessageRefId-free-format"),
    pytest.param(set_text("(//stf:DocRefId)[1]", "D" * 200), VALID, id="DocRefId-200"),
    pytest.param(set_text("(//stf:DocRefId)[1]", "D" * 201), INVALID, id="DocRefId-201"),
    pytest.param(set_text("(//stf:DocRefId)[1]", "OP_2025/1"), INVALID, id="DocRefId-slash"),
    pytest.param(set_text("(//stf:DocRefId)[1]", "OP 2025"), INVALID, id="DocRefId-space"),
    pytest.param(set_text("(//stf:DocRefId)[1]", "OP,2025"), VALID, id="DocRefId-comma-in-range"),
    pytest.param(
        insert_after("(//stf:DocRefId)[1]", "<stf:CorrDocRefId>OP_2025_123456789_PO_v0</stf:CorrDocRefId>"),
        VALID,
        id="CorrDocRefId",
    ),
    pytest.param(
        insert_after("(//stf:DocRefId)[1]", "<stf:CorrDocRefId>OP 2025</stf:CorrDocRefId>"),
        INVALID,
        id="CorrDocRefId-space",
    ),
    # --- lengths and blank texts
    pytest.param(set_text(f"{PO}/dpi:Name", "N" * 200), VALID, id="operator-Name-200"),
    pytest.param(set_text(f"{PO}/dpi:Name", "N" * 201), INVALID, id="operator-Name-201"),
    pytest.param(set_text(f"{PO}/dpi:Name", "   "), INVALID, id="operator-Name-blank"),
    pytest.param(set_text(f"{PO}/dpi:Name", "Exemple\nSAS"), INVALID, id="operator-Name-with-newline"),
    pytest.param(set_text(f"{IND}/dpi:Name/dpi:LastName", "\t"), INVALID, id="LastName-blank"),
    pytest.param(set_text(f"{IND}/dpi:Name/dpi:FirstName", " "), VALID, id="FirstName-blank-allowed"),
    pytest.param(set_text(f"{IND}//dpi:AddressFix/dpi:City", "  "), INVALID, id="City-blank"),
    pytest.param(set_text(f"{ENT}/dpi:Address/dpi:AddressFree", "A" * 200), VALID, id="AddressFree-200"),
    pytest.param(set_text(f"{ENT}/dpi:Address/dpi:AddressFree", "A" * 201), INVALID, id="AddressFree-201"),
    pytest.param(set_text(f"{PO}/dpi:IN", " "), INVALID, id="IN-blank"),
    pytest.param(set_text(f"{IND}/dpi:TIN", ""), INVALID, id="TIN-empty"),
    pytest.param(set_text(f"{IND}/dpi:TIN", "T" * 201), INVALID, id="TIN-201"),
    pytest.param(set_text(f"{PO}/dpi:TIN", ""), INVALID, id="operator-TIN-empty"),
    pytest.param(set_text(f"{ENT}/dpi:VAT", ""), INVALID, id="VAT-empty"),
    pytest.param(set_text("//dpi:FinancialIdentifier/dpi:OtherInfo", "O" * 400), VALID, id="OtherInfo-400"),
    pytest.param(set_text("//dpi:FinancialIdentifier/dpi:OtherInfo", "O" * 401), INVALID, id="OtherInfo-401"),
    # --- numbers, dates, booleans
    pytest.param(set_text("(//dpi:ConsQ1)[1]", "-5"), INVALID, id="ConsQ1-negative"),
    pytest.param(set_text("(//dpi:FeesQ3)[1]", "-1"), INVALID, id="FeesQ3-negative"),
    pytest.param(set_text("(//dpi:TaxesQ2)[1]", "-1"), INVALID, id="TaxesQ2-negative"),
    pytest.param(set_text("(//dpi:NumbQ4)[1]", "-1"), INVALID, id="NumbQ4-negative"),
    pytest.param(set_text("(//dpi:ConsQ1)[1]", "0"), VALID, id="ConsQ1-zero"),
    pytest.param(set_text("(//dpi:ConsQ1)[1]", "123456789012345678901234567890"), VALID, id="ConsQ1-huge"),
    pytest.param(set_text("(//dpi:ConsQ1)[1]", "1.5"), INVALID, id="ConsQ1-decimal"),
    pytest.param(set_text("(//dpi:ConsQ1)[1]", "1 000"), INVALID, id="ConsQ1-thousands-separator"),
    pytest.param(set_text("(//dpi:NumbQ1)[1]", "deux"), INVALID, id="NumbQ1-not-integer"),
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "0"), INVALID, id="RentedDays-0"),
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "1"), VALID, id="RentedDays-1"),
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "9999"), VALID, id="RentedDays-9999"),
    pytest.param(set_text(f"{LISTING}/dpi:RentedDays", "10000"), INVALID, id="RentedDays-10000"),
    pytest.param(set_text(f"{IND}//dpi:BirthDate", "1980-13-01"), INVALID, id="BirthDate-month-13"),
    pytest.param(set_text("//dpi:Timestamp", "2026-01-15"), INVALID, id="Timestamp-date-only"),
    pytest.param(set_text("//dpi:Timestamp", "2026-01-15T10:00:00"), VALID, id="Timestamp-without-millis"),
    pytest.param(set_text("//dpi:ReportingPeriod", "2025"), INVALID, id="ReportingPeriod-year-only"),
    pytest.param(set_text(f"{PO}/dpi:AssumedReporting", "non"), INVALID, id="AssumedReporting-non"),
    pytest.param(set_text(f"{PO}/dpi:AssumedReporting", "1"), VALID, id="AssumedReporting-1"),
]


@pytest.mark.parametrize(("mutate", "expected"), VARIANTS)
def test_variant_same_and_expected_verdict(mutate: Mutator, expected: bool) -> None:
    doc = base_document()
    mutate(doc)
    ok_ours, ok_ref, errors = verdicts(doc)
    assert ok_ours == ok_ref, f"schemas disagree (ours={ok_ours}, reference={ok_ref})\n{errors}"
    assert ok_ref == expected, f"expected valid={expected}\n{errors}"


def test_enough_invalid_variants() -> None:
    assert sum(1 for p in VARIANTS if p.values[1] is INVALID) >= 25


# --------------------------------------------------------------------------- structure


def _load_set(directory: Path, names: tuple[str, ...] = SCHEMA_FILES) -> dict[str, etree._Element]:
    return {name: etree.parse(str(directory / name)).getroot() for name in names}


@cache
def our_set() -> dict[str, etree._Element]:
    return _load_set(OUR_XSD_DIR)


@cache
def reference_set() -> dict[str, etree._Element]:
    return _load_set(REFERENCE_XSD_DIR)


@cache
def eu_set() -> dict[str, etree._Element]:
    return _load_set(EU_XSD_DIR, EU_SCHEMA_FILES)


def test_same_files_namespaces_and_imports() -> None:
    expected_tns = {MAIN_FILE: DPI_NS, "oecddpitypes_v1.0-fr1.xsd": STF_NS, "isodpitypes_v1.0-fr1.xsd": ISO_NS}
    for name in SCHEMA_FILES:
        ours, ref = our_set()[name], reference_set()[name]
        assert ours.get("targetNamespace") == ref.get("targetNamespace") == expected_tns[name], name
        for attr in ("elementFormDefault", "attributeFormDefault"):
            assert ours.get(attr) == ref.get(attr), (name, attr)
        imports = [
            {(i.get("namespace"), i.get("schemaLocation")) for i in root.findall(_x("import"))} for root in (ours, ref)
        ]
        assert imports[0] == imports[1], name
        assert not ours.findall(_x("include")), name
    assert {i.get("schemaLocation") for i in our_set()[MAIN_FILE].findall(_x("import"))} == set(SCHEMA_FILES[1:])


def test_same_named_components() -> None:
    for kind in KINDS:
        assert set(_named(our_set(), kind)) == set(_named(reference_set(), kind)), kind


def test_same_split_over_files() -> None:
    for name in SCHEMA_FILES:
        for kind in KINDS:
            mine = set(_named({name: our_set()[name]}, kind))
            assert mine == set(_named({name: reference_set()[name]}, kind)), (name, kind)


def test_same_global_element() -> None:
    ours, ref = _named(our_set(), "element"), _named(reference_set(), "element")
    assert list(ref) == [f"{{{DPI_NS}}}DPI_OECD"]
    for name in ref:
        assert canonical(ours[name]) == canonical(ref[name]), name


REFERENCE_ENUMS = sorted(_enumerations(reference_set()))
REFERENCE_SIMPLE = sorted(_named(reference_set(), "simpleType"))
REFERENCE_COMPLEX = sorted(_named(reference_set(), "complexType"))


def test_enumeration_types_found() -> None:
    assert set(_enumerations(our_set())) == set(REFERENCE_ENUMS)
    assert len(REFERENCE_ENUMS) == 12


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
    # Full check: compositors, types, facets, attributes.
    assert canonical(ours[name]) == canonical(ref)


def test_our_files_carry_project_header_only() -> None:
    header = (
        "DAC7 DPI schema, French DGFiP edition (cahier des charges v1.6, revenus 2025), "
        "written for this project from the published specification"
    )
    reference_texts = {
        " ".join(node.text.split())
        for root in reference_set().values()
        for node in root.iter(_x("documentation"), etree.Comment)
        # Commented-out markup in the reference is schema syntax, not prose.
        if node.text and node.text.strip() and not node.text.strip().startswith("<")
    }
    for name in SCHEMA_FILES:
        text = (OUR_XSD_DIR / name).read_text(encoding="utf-8")
        assert header in text, name
        for banned in ("XMLSpy", "altova", "SPDX", "etalab", "Based on a schema", "/home/", "C:\\"):
            assert banned.lower() not in text.lower(), (name, banned)
        root = our_set()[name]
        ours_docs = {" ".join(d.text.split()) for d in root.iter(_x("documentation")) if d.text}
        assert not ours_docs & reference_texts, f"{name}: reference text reused: {ours_docs & reference_texts}"
        # Longer reference sentences must not appear anywhere in our file (short ones are code names).
        flat = " ".join(text.split())
        copied = [t for t in reference_texts if len(t) >= 25 and t in flat]
        assert not copied, f"{name}: reference text copied verbatim: {copied}"


# --------------------------------------------------------------------------- differences from the EU edition


def _local_names(schemas: dict[str, etree._Element], kind: str) -> set[str]:
    return {etree.QName(name).localname for name in _named(schemas, kind)}


EU_ONLY_TYPES = {
    "AccountHolder_Type",
    "BirthPlace_Type",
    "ConsiderationType",
    "CorrectableAdditionalInfo_Type",
    "DPIPropertyType_EnumType",
    "FeesType",
    "GVSType",
    "Identifier_Type",
    "LanguageCode_Type",
    "MSCountryCode_Type",
    "NameReportableSeller_Type",
    "OrganisationIN_Type",
    "OtherActivities_Type",
    "OtherRPO_Type",
    "PropertyListingType",
    "ReportableSeller_Type",
    "StringMin0Max200_Type",
    "StringMin1Max4000WithLang_Type",
    "TaxesType",
}
FR_ONLY_TYPES = {
    "Consideration_Type",
    "EUCountryCode_Type",
    "EntitySeller_Type",
    "FR_EnumType",
    "Fees_Type",
    "IN_Type",
    "IndividualSeller_Type",
    "IntegerMax4Digits_Type",
    "PropertyType_Type",
    "RelevantActivities_Type",
    "StringSansSeulsCaractEspaceTabCRLF200",
    "TIN_PlatformOperator_Type",
    "Taxes_Type",
}


def test_named_types_differ_from_eu_edition_as_documented() -> None:
    eu = _local_names(eu_set(), "simpleType") | _local_names(eu_set(), "complexType")
    fr = _local_names(our_set(), "simpleType") | _local_names(our_set(), "complexType")
    assert eu - fr == EU_ONLY_TYPES
    assert fr - eu == FR_ONLY_TYPES
    undocumented = sorted(n for n in EU_ONLY_TYPES | FR_ONLY_TYPES if not re.search(rf"\b{n}\b", __doc__ or ""))
    assert not undocumented, f"not listed in the module docstring: {undocumented}"


def test_code_lists_differ_from_eu_edition_as_documented() -> None:
    eu = {etree.QName(k).localname: v for k, v in _enumerations(eu_set()).items()}
    fr = {etree.QName(k).localname: v for k, v in _enumerations(our_set()).items()}
    assert eu["CountryCode_Type"] - fr["CountryCode_Type"] == {"X5", "XX"}
    assert fr["CountryCode_Type"] <= eu["CountryCode_Type"]
    assert eu["OECDNameType_EnumType"] - fr["OECDNameType_EnumType"] == {"OECD201"}
    assert fr["OECDNameType_EnumType"] <= eu["OECDNameType_EnumType"]
    assert fr["EUCountryCode_Type"] == eu["MSCountryCode_Type"]
    assert fr["PropertyType_Type"] == eu["DPIPropertyType_EnumType"]
    for same in (
        "currCode_Type",
        "OECDDocTypeIndic_EnumType",
        "OECDLegalAddressType_EnumType",
        "Nexus_EnumType",
        "INType_EnumType",
        "DPIMessageTypeIndic_EnumType",
        "MessageType_EnumType",
    ):
        assert fr[same] == eu[same], same


def test_taxes_element_names_differ_from_eu_edition() -> None:
    eu = _named(eu_set(), "complexType")[f"{{{EU_DPI_NS}}}TaxesType"]
    fr = _named(our_set(), "complexType")[f"{{{DPI_NS}}}Taxes_Type"]
    assert [n for n, *_ in child_elements(eu)] == [f"TaxQ{i}" for i in range(1, 5)]
    assert [n for n, *_ in child_elements(fr)] == [f"TaxesQ{i}" for i in range(1, 5)]
