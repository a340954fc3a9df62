"""The EU DG TAXUD business-rule preflight (reporting.checks.business), rule by rule.

Every rule gets a message that breaks it (exactly that code, on the right record, at an XPath
that locates the offending element) and the same message corrected (no findings at all). All
messages are derived from one valid EU-edition message, BASE. The reference samples document
what the rules find in real files (tests/reference/samples; the Italian ones from
../shared/reference beside the checkout).
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from resources import marks, require_file, sample, sample_files, sample_name

from reporting.authorities import EU_GENERIC
from reporting.checks.business import (
    EU_DOMESTIC,
    EU_EXCHANGE,
    EXCHANGE_ONLY,
    NAMESPACES,
    RULES,
    NotEuDpiMessageError,
    RuleFinding,
    RuleSet,
    check_message,
    derive_rule_set,
    register_rule,
)
from reporting.checks.schema import schema_for
from reporting.records import ActivityFigures, MessageHeader, OperatorRecord, PostalAddress, SellerRecord, Tin
from reporting.safexml import XmlFileError

TODAY = date(2026, 6, 1)
NS = NAMESPACES
DPI = "{urn:oecd:ties:dpi:v1}"
STF = "{urn:oecd:ties:dpistf:v1}"

FIGURES = """
            <dpi:Consideration>
              <dpi:ConsQ1 currCode="EUR">100</dpi:ConsQ1><dpi:ConsQ2 currCode="EUR">0</dpi:ConsQ2>
              <dpi:ConsQ3 currCode="EUR">250</dpi:ConsQ3><dpi:ConsQ4 currCode="EUR">0</dpi:ConsQ4>
            </dpi:Consideration>
            <dpi:NumberOfActivities>
              <dpi:NumbQ1>1</dpi:NumbQ1><dpi:NumbQ2>0</dpi:NumbQ2><dpi:NumbQ3>2</dpi:NumbQ3><dpi:NumbQ4>0</dpi:NumbQ4>
            </dpi:NumberOfActivities>
            <dpi:Fees>
              <dpi:FeesQ1 currCode="EUR">10</dpi:FeesQ1><dpi:FeesQ2 currCode="EUR">0</dpi:FeesQ2>
              <dpi:FeesQ3 currCode="EUR">25</dpi:FeesQ3><dpi:FeesQ4 currCode="EUR">0</dpi:FeesQ4>
            </dpi:Fees>
            <dpi:Taxes>
              <dpi:TaxQ1 currCode="EUR">0</dpi:TaxQ1><dpi:TaxQ2 currCode="EUR">0</dpi:TaxQ2>
              <dpi:TaxQ3 currCode="EUR">0</dpi:TaxQ3><dpi:TaxQ4 currCode="EUR">0</dpi:TaxQ4>
            </dpi:Taxes>"""

# A valid EU message (LT -> LT): an operator with its registered office, one individual seller
# renting out a flat in LT, one entity seller of goods. All identity values are made up.
BASE = f"""<?xml version="1.0" encoding="UTF-8"?>
<dpi:DPI_OECD xmlns:dpi="urn:oecd:ties:dpi:v1" xmlns:stf="urn:oecd:ties:dpistf:v1" version="1.0">
  <dpi:MessageSpec>
    <dpi:TransmittingCountry>LT</dpi:TransmittingCountry>
    <dpi:ReceivingCountry>LT</dpi:ReceivingCountry>
    <dpi:MessageType>DPI</dpi:MessageType>
    <dpi:MessageRefId>LT2025LT0001</dpi:MessageRefId>
    <dpi:MessageTypeIndic>DPI401</dpi:MessageTypeIndic>
    <dpi:ReportingPeriod>2025-12-31</dpi:ReportingPeriod>
    <dpi:Timestamp>2026-01-15T08:00:00</dpi:Timestamp>
  </dpi:MessageSpec>
  <dpi:DPIBody>
    <dpi:PlatformOperator>
      <dpi:ResCountryCode>LT</dpi:ResCountryCode>
      <dpi:TIN issuedBy="LT">304567891</dpi:TIN>
      <dpi:Name>Demo Marketplace UAB</dpi:Name>
      <dpi:Address legalAddressType="OECD304">
        <dpi:CountryCode>LT</dpi:CountryCode>
        <dpi:AddressFix>
          <dpi:Street>Gedimino pr.</dpi:Street><dpi:BuildingIdentifier>1</dpi:BuildingIdentifier>
          <dpi:PostCode>01103</dpi:PostCode><dpi:City>Vilnius</dpi:City>
        </dpi:AddressFix>
      </dpi:Address>
      <dpi:Nexus>RPONEX1</dpi:Nexus>
      <dpi:AssumedReporting>false</dpi:AssumedReporting>
      <dpi:DocSpec><stf:DocTypeIndic>OECD1</stf:DocTypeIndic><stf:DocRefId>LT2025-OP</stf:DocRefId></dpi:DocSpec>
    </dpi:PlatformOperator>
    <dpi:ReportableSeller>
      <dpi:Identity>
        <dpi:IndividualSeller>
          <dpi:Standard>
            <dpi:IndSellerID>
              <dpi:ResCountryCode>LT</dpi:ResCountryCode>
              <dpi:TIN issuedBy="LT">39001010007</dpi:TIN>
              <dpi:Name><dpi:FirstName>Ona</dpi:FirstName><dpi:LastName>Testaite</dpi:LastName></dpi:Name>
              <dpi:Address>
                <dpi:CountryCode>LT</dpi:CountryCode>
                <dpi:AddressFix><dpi:Street>Laisves al.</dpi:Street><dpi:City>Kaunas</dpi:City></dpi:AddressFix>
              </dpi:Address>
              <dpi:BirthInfo>
                <dpi:BirthDate>1980-05-17</dpi:BirthDate>
                <dpi:BirthPlace>
                  <dpi:City>Siauliai</dpi:City><dpi:CountryInfo><dpi:CountryCode>LT</dpi:CountryCode></dpi:CountryInfo>
                </dpi:BirthPlace>
              </dpi:BirthInfo>
            </dpi:IndSellerID>
          </dpi:Standard>
        </dpi:IndividualSeller>
      </dpi:Identity>
      <dpi:RelevantActivities>
        <dpi:ImmovableProperty>
          <dpi:PropertyListing>
            <dpi:Address>
              <dpi:CountryCode>LT</dpi:CountryCode>
              <dpi:AddressFix><dpi:Street>Pilies g.</dpi:Street><dpi:City>Vilnius</dpi:City></dpi:AddressFix>
            </dpi:Address>{FIGURES}
            <dpi:PropertyType>DPI905</dpi:PropertyType>
            <dpi:RentedDays>12</dpi:RentedDays>
          </dpi:PropertyListing>
        </dpi:ImmovableProperty>
      </dpi:RelevantActivities>
      <dpi:DocSpec><stf:DocTypeIndic>OECD1</stf:DocTypeIndic><stf:DocRefId>LT2025-S1</stf:DocRefId></dpi:DocSpec>
    </dpi:ReportableSeller>
    <dpi:ReportableSeller>
      <dpi:Identity>
        <dpi:EntitySeller>
          <dpi:Standard>
            <dpi:EntSellerID>
              <dpi:ResCountryCode>LT</dpi:ResCountryCode>
              <dpi:TIN issuedBy="LT">110053842</dpi:TIN>
              <dpi:IN issuedBy="LT" INType="BRN">110053842</dpi:IN>
              <dpi:Name>Pavyzdys UAB</dpi:Name>
              <dpi:Address>
                <dpi:CountryCode>LT</dpi:CountryCode>
                <dpi:AddressFix><dpi:Street>Savanoriu pr.</dpi:Street><dpi:City>Kaunas</dpi:City></dpi:AddressFix>
              </dpi:Address>
            </dpi:EntSellerID>
          </dpi:Standard>
        </dpi:EntitySeller>
      </dpi:Identity>
      <dpi:RelevantActivities>
        <dpi:SaleOfGoods>{FIGURES}
        </dpi:SaleOfGoods>
      </dpi:RelevantActivities>
      <dpi:DocSpec><stf:DocTypeIndic>OECD1</stf:DocTypeIndic><stf:DocRefId>LT2025-S2</stf:DocRefId></dpi:DocSpec>
    </dpi:ReportableSeller>
  </dpi:DPIBody>
</dpi:DPI_OECD>
""".encode()

#: Personal data of BASE that no finding may quote.
PERSONAL = ("304567891", "39001010007", "110053842", "Ona", "Testaite", "1980", "Siauliai", "Laisves", "Pavyzdys")

Tree = etree._ElementTree
PO = "/dpi:DPI_OECD/dpi:DPIBody/dpi:PlatformOperator"
S1 = "/dpi:DPI_OECD/dpi:DPIBody/dpi:ReportableSeller[1]"
S2 = "/dpi:DPI_OECD/dpi:DPIBody/dpi:ReportableSeller[2]"
IND = f"{S1}/dpi:Identity/dpi:IndividualSeller/dpi:Standard/dpi:IndSellerID"
ENT = f"{S2}/dpi:Identity/dpi:EntitySeller/dpi:Standard/dpi:EntSellerID"
LISTING = f"{S1}/dpi:RelevantActivities/dpi:ImmovableProperty/dpi:PropertyListing"
SPEC = "/dpi:DPI_OECD/dpi:MessageSpec"
BODY = "/dpi:DPI_OECD/dpi:DPIBody"
OTHERS = f"{BODY}/dpi:OtherPlatformOperators"


# ---------------------------------------------------------------------------------------- editing helpers


def base() -> Tree:
    return etree.ElementTree(etree.fromstring(BASE))


def one(tree: Tree, xpath: str) -> etree._Element:
    found = tree.xpath(xpath, namespaces=NS)
    assert len(found) == 1, (xpath, found)
    return found[0]


def el(tag: str, text: str | None = None, children: tuple[etree._Element, ...] = (), **attrib: str) -> etree._Element:
    """``dpi:Tag`` (or ``stf:Tag``) with text, attributes and children."""
    prefix, name = tag.split(":")
    elem = etree.Element(f"{DPI if prefix == 'dpi' else STF}{name}", attrib)
    elem.text = text
    elem.extend(children)
    return elem


def set_text(xpath: str, text: str | None) -> Callable[[Tree], None]:
    def edit(tree: Tree) -> None:
        one(tree, xpath).text = text

    return edit


def set_attr(xpath: str, name: str, value: str | None) -> Callable[[Tree], None]:
    def edit(tree: Tree) -> None:
        elem = one(tree, xpath)
        if value is None:
            del elem.attrib[name]
        else:
            elem.set(name, value)

    return edit


def remove(xpath: str) -> Callable[[Tree], None]:
    def edit(tree: Tree) -> None:
        elem = one(tree, xpath)
        elem.getparent().remove(elem)

    return edit


def insert_after(xpath: str, make: Callable[[], etree._Element]) -> Callable[[Tree], None]:
    def edit(tree: Tree) -> None:
        one(tree, xpath).addnext(make())

    return edit


def insert_before(xpath: str, make: Callable[[], etree._Element]) -> Callable[[Tree], None]:
    def edit(tree: Tree) -> None:
        one(tree, xpath).addprevious(make())

    return edit


def steps(*edits: Callable[[Tree], None]) -> Callable[[Tree], None]:
    def edit(tree: Tree) -> None:
        for e in edits:
            e(tree)

    return edit


def replace_with(xpath: str, make: Callable[[], etree._Element]) -> Callable[[Tree], None]:
    def edit(tree: Tree) -> None:
        old = one(tree, xpath)
        old.getparent().replace(old, make())

    return edit


def doc_spec(indic: str, ref: str, corr: str | None = None) -> etree._Element:
    children = [el("stf:DocTypeIndic", indic), el("stf:DocRefId", ref)]
    if corr:
        children.append(el("stf:CorrDocRefId", corr))
    return el("dpi:DocSpec", children=tuple(children))


def set_doc(record: str, indic: str, ref: str, corr: str | None = None) -> Callable[[Tree], None]:
    return replace_with(f"{record}/dpi:DocSpec", lambda: doc_spec(indic, ref, corr))


def other_operator(kind: str, ref: str, res_countries: tuple[str, ...] = ("LT",)) -> Callable[[], etree._Element]:
    """An OtherPlatformOperators block with one Assuming/AssumedPlatformOperator."""

    def make() -> etree._Element:
        address = el("dpi:Address", children=(el("dpi:CountryCode", "LT"), el("dpi:AddressFree", "Vilnius")))
        party = el(
            f"dpi:{kind}",
            children=(
                *(el("dpi:ResCountryCode", c) for c in res_countries),
                el("dpi:TIN", "302222222", issuedBy="LT"),
                el("dpi:Name", "Other Platform UAB"),
                address,
                doc_spec("OECD1", ref),
            ),
        )
        return el("dpi:OtherPlatformOperators", children=(party,))

    return make


ADD_ASSUMED = insert_after(PO, other_operator("AssumedPlatformOperator", "LT2025-AP"))
NIL_REPORT = steps(set_text(f"{SPEC}/dpi:MessageTypeIndic", "DPI403"), ADD_ASSUMED, remove(S2), remove(S1))
# A correction of BASE: every record again, OECD2, with a new DocRefId pointing at the old one.
#: the ledger as the preflight sees it: the latest versions live, earlier ones outdated
LEDGER = {
    "LT2025-OP": "live",
    "LT2025-S1": "live",
    "LT2025-S2": "live",
    "LT2025-OP-old": "outdated",
    "LT2025-S1-old": "outdated",
}

CORRECTION = steps(
    set_text(f"{SPEC}/dpi:MessageTypeIndic", "DPI402"),
    set_text(f"{SPEC}/dpi:MessageRefId", "LT2025LT0002"),
    set_doc(PO, "OECD2", "LT2025-OP-v2", "LT2025-OP"),
    set_doc(S1, "OECD2", "LT2025-S1-v2", "LT2025-S1"),
    set_doc(S2, "OECD2", "LT2025-S2-v2", "LT2025-S2"),
)


def restore_sellers(tree: Tree) -> None:
    body = one(tree, BODY)
    for seller in base().xpath("//dpi:ReportableSeller", namespaces=NS):
        body.append(seller)


def restore_base(tree: Tree) -> None:
    tree._setroot(etree.fromstring(BASE))


def figures(tag: str) -> etree._Element:
    """A PersonalServices / SaleOfGoods / TransportationRental block with the FIGURES."""
    return etree.fromstring(f'<dpi:{tag} xmlns:dpi="urn:oecd:ties:dpi:v1">{FIGURES}</dpi:{tag}>')


GVS = """<dpi:GVS xmlns:dpi="urn:oecd:ties:dpi:v1"><dpi:NameGVS>Registry</dpi:NameGVS>
<dpi:JurisdictionGVS><dpi:ResCountryCode>LT</dpi:ResCountryCode></dpi:JurisdictionGVS>
<dpi:ReferenceGVS>R-1</dpi:ReferenceGVS></dpi:GVS>"""


# ---------------------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """``breaks`` turns BASE into a message that breaks rule ``code`` once, at ``at`` (an XPath in
    the broken message) in the record ``doc_ref_id``; ``fix`` corrects that message."""

    id: str
    code: str
    breaks: Callable[[Tree], None]
    fix: Callable[[Tree], None]
    at: str
    doc_ref_id: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)  # also for the fixed message
    rule_id: str | None = None


CASES = [
    Case(
        "10010 SendingEntityIN in an exchange",
        "10010",
        insert_before(f"{SPEC}/dpi:TransmittingCountry", lambda: el("dpi:SendingEntityIN", "LT-REG-1")),
        remove(f"{SPEC}/dpi:SendingEntityIN"),
        f"{SPEC}/dpi:SendingEntityIN",
        None,
    ),
    Case(
        "10060 ReportingPeriod in the future",
        "10060",
        # the whole message moved to 2026, which has not ended on TODAY
        steps(
            set_text(f"{SPEC}/dpi:ReportingPeriod", "2026-12-31"),
            set_text(f"{SPEC}/dpi:MessageRefId", "LT2026LT0001"),
            set_text(f"{PO}/dpi:DocSpec/stf:DocRefId", "LT2026-OP"),
            set_text(f"{S1}/dpi:DocSpec/stf:DocRefId", "LT2026-S1"),
            set_text(f"{S2}/dpi:DocSpec/stf:DocRefId", "LT2026-S2"),
        ),
        restore_base,
        f"{SPEC}/dpi:ReportingPeriod",
        None,
    ),
    Case(
        "20010 AssumedReporting true in DPI401",
        "20010",
        set_text(f"{PO}/dpi:AssumedReporting", "true"),
        set_text(f"{PO}/dpi:AssumedReporting", "false"),
        f"{PO}/dpi:AssumedReporting",
        "LT2025-OP",
    ),
    Case(
        "20020 AssumingPlatformOperator exchanged",
        "20020",
        insert_after(PO, other_operator("AssumingPlatformOperator", "LT2025-AO")),
        remove(OTHERS),
        f"{OTHERS}/dpi:AssumingPlatformOperator",
        "LT2025-AO",
    ),
    Case(
        "20030 nil report without AssumedPlatformOperator",
        "20030",
        steps(set_text(f"{SPEC}/dpi:MessageTypeIndic", "DPI403"), remove(S2), remove(S1)),
        ADD_ASSUMED,
        BODY,
        None,
        rule_id="BR_OPO_004a",
    ),
    Case(
        "20040 DPI401 without sellers",
        "20040",
        steps(remove(S2), remove(S1)),
        restore_sellers,
        BODY,
        None,
        rule_id="BR_OPO_005a",
    ),
    Case(
        "20050 nil report with a seller",
        "20050",
        steps(set_text(f"{SPEC}/dpi:MessageTypeIndic", "DPI403"), ADD_ASSUMED, remove(S2)),
        remove(S1),
        S1,
        "LT2025-S1",
    ),
    Case(
        "30030 GVS",
        "30030",
        replace_with(f"{S1}/dpi:Identity/dpi:IndividualSeller/dpi:Standard", lambda: etree.fromstring(GVS)),
        replace_with(
            f"{S1}/dpi:Identity/dpi:IndividualSeller/dpi:GVS",
            lambda: one(base(), f"{S1}/dpi:Identity/dpi:IndividualSeller/dpi:Standard"),
        ),
        f"{S1}/dpi:Identity/dpi:IndividualSeller/dpi:GVS",
        "LT2025-S1",
    ),
    Case(
        "30040 no relevant activity",
        "30040",
        remove(f"{S2}/dpi:RelevantActivities/dpi:SaleOfGoods"),
        lambda tree: one(tree, f"{S2}/dpi:RelevantActivities").append(figures("PersonalServices")),
        f"{S2}/dpi:RelevantActivities",
        "LT2025-S2",
    ),
    Case(
        "30050 DPI910 without OtherPropertyType",
        "30050",
        set_text(f"{LISTING}/dpi:PropertyType", "DPI910"),
        insert_after(f"{LISTING}/dpi:PropertyType", lambda: el("dpi:OtherPropertyType", "Houseboat")),
        f"{LISTING}/dpi:PropertyType",
        "LT2025-S1",
    ),
    Case(
        "30060 OtherPropertyType without DPI910",
        "30060",
        insert_after(f"{LISTING}/dpi:PropertyType", lambda: el("dpi:OtherPropertyType", "Houseboat")),
        set_text(f"{LISTING}/dpi:PropertyType", "DPI910"),
        f"{LISTING}/dpi:OtherPropertyType",
        "LT2025-S1",
    ),
    Case(
        "40010 Nationality",
        "40010",
        insert_before(f"{IND}/dpi:BirthInfo", lambda: el("dpi:Nationality", "LT")),
        remove(f"{IND}/dpi:Nationality"),
        f"{IND}/dpi:Nationality",
        "LT2025-S1",
    ),
    Case(
        "40020 foreign operator without IIN",
        "40020",
        steps(
            set_text(f"{PO}/dpi:ResCountryCode", "US"),
            set_attr(f"{PO}/dpi:TIN", "issuedBy", "US"),
            set_text(f"{PO}/dpi:Address/dpi:CountryCode", "US"),
            set_text(f"{PO}/dpi:Nexus", "RPONEX5"),
        ),
        insert_after(f"{PO}/dpi:TIN", lambda: el("dpi:IN", "LT-IIN-0042", issuedBy="LT", INType="IIN")),
        PO,
        "LT2025-OP",
    ),
    Case(
        "40040 AssumedPlatformOperator without ResCountryCode",
        "40040",
        insert_after(PO, other_operator("AssumedPlatformOperator", "LT2025-AP", res_countries=())),
        insert_before(f"{OTHERS}/dpi:AssumedPlatformOperator/dpi:TIN", lambda: el("dpi:ResCountryCode", "LT")),
        f"{OTHERS}/dpi:AssumedPlatformOperator",
        "LT2025-AP",
    ),
    Case(
        "40050 AssumedPlatformOperator resident elsewhere",
        "40050",
        insert_after(PO, other_operator("AssumedPlatformOperator", "LT2025-AP", res_countries=("LV",))),
        set_text(f"{OTHERS}/dpi:AssumedPlatformOperator/dpi:ResCountryCode", "LT"),
        f"{OTHERS}/dpi:AssumedPlatformOperator",
        "LT2025-AP",
    ),
    Case(
        "40060 entity seller without ResCountryCode",
        "40060",
        remove(f"{ENT}/dpi:ResCountryCode"),
        insert_before(f"{ENT}/dpi:TIN", lambda: el("dpi:ResCountryCode", "LT")),
        ENT,
        "LT2025-S2",
    ),
    Case(
        "40070a entity seller resident elsewhere",
        "40070",
        set_text(f"{ENT}/dpi:ResCountryCode", "LV"),
        insert_before(f"{ENT}/dpi:ResCountryCode", lambda: el("dpi:ResCountryCode", "LT")),
        ENT,
        "LT2025-S2",
        rule_id="BR_PAR007a",
    ),
    Case(
        "40070b individual seller resident elsewhere, property elsewhere",
        "40070",
        steps(set_text(f"{IND}/dpi:ResCountryCode", "LV"), set_text(f"{LISTING}/dpi:Address/dpi:CountryCode", "LV")),
        # a property in the receiving country is enough (BR_PAR007b)
        set_text(f"{LISTING}/dpi:Address/dpi:CountryCode", "LT"),
        IND,
        "LT2025-S1",
        rule_id="BR_PAR007b",
    ),
    Case(
        "40080 TIN without issuedBy",
        "40080",
        set_attr(f"{IND}/dpi:TIN", "issuedBy", None),
        set_attr(f"{IND}/dpi:TIN", "issuedBy", "LT"),
        f"{IND}/dpi:TIN",
        "LT2025-S1",
    ),
    Case(
        "40090 unknown TIN next to a TIN",
        "40090",
        insert_after(f"{IND}/dpi:TIN", lambda: el("dpi:TIN", None, unknown="true")),
        remove(f"{IND}/dpi:TIN[2]"),
        f"{IND}/dpi:TIN[2]",
        "LT2025-S1",
    ),
    Case(
        "40100 EU operator with unknown TIN",
        "40100",
        steps(set_text(f"{PO}/dpi:TIN", None), set_attr(f"{PO}/dpi:TIN", "unknown", "true")),
        steps(set_text(f"{PO}/dpi:TIN", "304567891"), set_attr(f"{PO}/dpi:TIN", "unknown", None)),
        f"{PO}/dpi:TIN",
        "LT2025-OP",
    ),
    Case(
        "40110 empty TIN not flagged unknown",
        "40110",
        set_text(f"{ENT}/dpi:TIN", None),
        set_attr(f"{ENT}/dpi:TIN", "unknown", "true"),
        f"{ENT}/dpi:TIN",
        "LT2025-S2",
    ),
    Case(
        "40130 born before 1900",
        "40130",
        set_text(f"{IND}/dpi:BirthInfo/dpi:BirthDate", "1899-12-31"),
        set_text(f"{IND}/dpi:BirthInfo/dpi:BirthDate", "1900-01-01"),
        f"{IND}/dpi:BirthInfo/dpi:BirthDate",
        "LT2025-S1",
    ),
    Case(
        "40130 born after the current year",
        "40130",
        set_text(f"{IND}/dpi:BirthInfo/dpi:BirthDate", f"{TODAY.year + 1}-01-01"),
        set_text(f"{IND}/dpi:BirthInfo/dpi:BirthDate", f"{TODAY.year}-12-31"),
        f"{IND}/dpi:BirthInfo/dpi:BirthDate",
        "LT2025-S1",
    ),
    Case(
        "40140 unknown TIN without birthplace",
        "40140",
        steps(
            set_text(f"{IND}/dpi:TIN", None),
            set_attr(f"{IND}/dpi:TIN", "issuedBy", None),
            set_attr(f"{IND}/dpi:TIN", "unknown", "true"),
            remove(f"{IND}/dpi:BirthInfo/dpi:BirthPlace"),
        ),
        insert_after(f"{IND}/dpi:BirthInfo/dpi:BirthDate", lambda: one(base(), f"{IND}/dpi:BirthInfo/dpi:BirthPlace")),
        f"{IND}/dpi:BirthInfo",
        "LT2025-S1",
    ),
    Case(
        "50008 MessageRefId of another receiving country",
        "50008",
        set_text(f"{SPEC}/dpi:MessageRefId", "LT2025LV0001"),
        set_text(f"{SPEC}/dpi:MessageRefId", "LT2025LT0001"),
        f"{SPEC}/dpi:MessageRefId",
        None,
    ),
    Case(
        "50009 MessageRefId used before",
        "50009",
        lambda tree: None,
        set_text(f"{SPEC}/dpi:MessageRefId", "LT2025LT0002"),
        f"{SPEC}/dpi:MessageRefId",
        None,
        kwargs={"known_message_ref_ids": {"LT2025LT0001"}},
    ),
    Case(
        "50012 ReceivingCountry is not the receiver",
        "50012",
        steps(set_text(f"{SPEC}/dpi:ReceivingCountry", "LV"), set_text(f"{SPEC}/dpi:MessageRefId", "LT2025LV0001")),
        steps(set_text(f"{SPEC}/dpi:ReceivingCountry", "LT"), set_text(f"{SPEC}/dpi:MessageRefId", "LT2025LT0001")),
        f"{SPEC}/dpi:ReceivingCountry",
        None,
        kwargs={"receiving_country": "LT"},
    ),
    Case(
        "60010 no registered office",
        "60010",
        set_attr(f"{PO}/dpi:Address", "legalAddressType", "OECD305"),
        set_attr(f"{PO}/dpi:Address", "legalAddressType", "OECD304"),
        f"{PO}/dpi:Address",
        "LT2025-OP",
    ),
    Case(
        "80000 DocRefId twice in the message",
        "80000",
        set_text(f"{S2}/dpi:DocSpec/stf:DocRefId", "LT2025-S1"),
        set_text(f"{S2}/dpi:DocSpec/stf:DocRefId", "LT2025-S2"),
        f"{S2}/dpi:DocSpec/stf:DocRefId",
        "LT2025-S1",
    ),
    Case(
        "80000 DocRefId sent before",
        "80000",
        lambda tree: None,
        set_text(f"{S1}/dpi:DocSpec/stf:DocRefId", "LT2025-S1-b"),
        f"{S1}/dpi:DocSpec/stf:DocRefId",
        "LT2025-S1",
        kwargs={"known_doc_ref_ids": {"LT2025-S1"}},
    ),
    Case(
        "80001 DocRefId of another country",
        "80001",
        set_text(f"{S1}/dpi:DocSpec/stf:DocRefId", "LV2025-S1"),
        set_text(f"{S1}/dpi:DocSpec/stf:DocRefId", "LT2025-S1"),
        f"{S1}/dpi:DocSpec/stf:DocRefId",
        "LV2025-S1",
    ),
    Case(
        "80001 DocRefId of another year",
        "80001",
        set_text(f"{S1}/dpi:DocSpec/stf:DocRefId", "LT2024-S1"),
        set_text(f"{S1}/dpi:DocSpec/stf:DocRefId", "LT2025-S1"),
        f"{S1}/dpi:DocSpec/stf:DocRefId",
        "LT2024-S1",
    ),
    Case(
        "80004 CorrDocRefId on a new record",
        "80004",
        set_doc(S1, "OECD1", "LT2025-S1", "LT2025-S0"),
        set_doc(S1, "OECD1", "LT2025-S1"),
        f"{S1}/dpi:DocSpec/stf:CorrDocRefId",
        "LT2025-S1",
    ),
    Case(
        "80006 CorrMessageRefId",
        "80006",
        insert_after(f"{S1}/dpi:DocSpec/stf:DocRefId", lambda: el("stf:CorrMessageRefId", "LT2024LT0001")),
        remove(f"{S1}/dpi:DocSpec/stf:CorrMessageRefId"),
        f"{S1}/dpi:DocSpec/stf:CorrMessageRefId",
        "LT2025-S1",
    ),
    Case(
        "80009 operator deleted, a seller only corrected",
        "80009",
        steps(
            CORRECTION,
            set_doc(PO, "OECD3", "LT2025-OP-v2", "LT2025-OP"),
            set_doc(S1, "OECD3", "LT2025-S1-v2", "LT2025-S1"),
        ),
        set_doc(S2, "OECD3", "LT2025-S2-v2", "LT2025-S2"),
        f"{S2}/dpi:DocSpec",
        "LT2025-S2-v2",
    ),
    Case(
        "80010 DPI401 deleting a record",
        "80010",
        set_doc(S2, "OECD3", "LT2025-S2-v2", "LT2025-S2"),
        set_doc(S2, "OECD1", "LT2025-S2"),
        f"{S2}/dpi:DocSpec/stf:DocTypeIndic",
        "LT2025-S2-v2",
    ),
    Case(
        "80010 new and corrected records mixed",
        "80010",
        set_doc(S2, "OECD2", "LT2025-S2-v2", "LT2025-S2"),
        set_doc(S2, "OECD1", "LT2025-S2"),
        f"{S2}/dpi:DocSpec/stf:DocTypeIndic",
        "LT2025-S2-v2",
    ),
    Case(
        "80010 DPI402 carrying a new record",
        "80010",
        steps(CORRECTION, set_doc(S2, "OECD1", "LT2025-S3")),
        set_doc(S2, "OECD2", "LT2025-S2-v2", "LT2025-S2"),
        f"{S2}/dpi:DocSpec/stf:DocTypeIndic",
        "LT2025-S3",
    ),
    Case(
        "80010 DPI403 correcting the operator (test codes)",
        "80010",
        steps(NIL_REPORT, set_doc(PO, "OECD12", "LT2025-OP-v2", "LT2025-OP")),
        set_doc(PO, "OECD11", "LT2025-OP"),
        f"{PO}/dpi:DocSpec/stf:DocTypeIndic",
        "LT2025-OP-v2",
    ),
    Case(
        "80011 one record corrected twice",
        "80011",
        steps(CORRECTION, set_doc(S2, "OECD2", "LT2025-S2-v2", "LT2025-S1")),
        set_doc(S2, "OECD2", "LT2025-S2-v2", "LT2025-S2"),
        f"{S2}/dpi:DocSpec/stf:CorrDocRefId",
        "LT2025-S2-v2",
    ),
    Case(
        "90010 no DPIBody",
        "90010",
        steps(set_text(f"{SPEC}/dpi:MessageTypeIndic", "DPI403"), remove(BODY)),
        restore_base,
        "/dpi:DPI_OECD",
        None,
    ),
    Case(
        "90030 only resent records",
        "90030",
        steps(
            set_doc(PO, "OECD0", "LT2025-OP"),
            set_doc(S1, "OECD0", "LT2025-S1"),
            set_doc(S2, "OECD0", "LT2025-S2"),
        ),
        # new sellers with the operator resent: an additional report
        steps(set_doc(S1, "OECD1", "LT2025-S1"), set_doc(S2, "OECD1", "LT2025-S2")),
        "/dpi:DPI_OECD",
        None,
    ),
    # the ledger rules: the ledger's DocRefIds as "live" or "outdated"
    Case(
        "80002 correction of an unknown record",
        "80002",
        steps(CORRECTION, set_doc(S1, "OECD2", "LT2025-S1-v2", "LT2025-S9")),
        set_doc(S1, "OECD2", "LT2025-S1-v2", "LT2025-S1"),
        f"{S1}/dpi:DocSpec/stf:CorrDocRefId",
        "LT2025-S1-v2",
        kwargs={"ledger": LEDGER},
    ),
    Case(
        "80003 correction of an outdated version",
        "80003",
        steps(CORRECTION, set_doc(S1, "OECD2", "LT2025-S1-v3", "LT2025-S1-old")),
        set_doc(S1, "OECD2", "LT2025-S1-v3", "LT2025-S1"),
        f"{S1}/dpi:DocSpec/stf:CorrDocRefId",
        "LT2025-S1-v3",
        kwargs={"ledger": LEDGER},
    ),
    Case(
        "80013 resend of an unknown operator record",
        "80013",
        set_doc(PO, "OECD0", "LT2025-OP9"),
        set_doc(PO, "OECD0", "LT2025-OP"),
        f"{PO}/dpi:DocSpec/stf:DocRefId",
        "LT2025-OP9",
        kwargs={"ledger": LEDGER},
    ),
    Case(
        "80014 resend of an outdated operator record",
        "80014",
        set_doc(PO, "OECD0", "LT2025-OP-old"),
        set_doc(PO, "OECD0", "LT2025-OP"),
        f"{PO}/dpi:DocSpec/stf:DocRefId",
        "LT2025-OP-old",
        kwargs={"ledger": LEDGER},
    ),
    Case(
        "90040 correction without CorrDocRefId",
        "90040",
        steps(CORRECTION, set_doc(S1, "OECD2", "LT2025-S1-v2")),
        set_doc(S1, "OECD2", "LT2025-S1-v2", "LT2025-S1"),
        f"{S1}/dpi:DocSpec",
        "LT2025-S1-v2",
    ),
]


def check(tree: Tree, **kwargs: Any) -> list[RuleFinding]:
    """Findings of the tree, also proved equal when the same bytes are streamed from a file."""
    kwargs.setdefault("today", TODAY)
    findings = check_message(tree, **kwargs)
    assert check_message(etree.tostring(tree), **kwargs) == findings
    return findings


def test_the_base_message_is_schema_valid_and_has_no_findings() -> None:
    schema = schema_for(EU_GENERIC.schema_resource)
    assert schema.validate(base()), schema.error_log
    assert check(base()) == []


def test_the_correction_and_the_nil_report_built_from_the_base_are_clean() -> None:
    for edit in (CORRECTION, NIL_REPORT):
        tree = base()
        edit(tree)
        assert check(tree) == []


def test_every_eu_rule_has_a_case() -> None:
    assert {case.code for case in CASES} == set(EU_EXCHANGE.codes)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_breaks_and_is_fixed(case: Case) -> None:
    tree = base()
    case.breaks(tree)
    findings = check(tree, **case.kwargs)
    assert [f.code for f in findings] == [case.code], [f.describe() for f in findings]
    (finding,) = findings
    assert finding.doc_ref_id == case.doc_ref_id
    assert finding.severity == "error"
    assert finding.rule_id == (case.rule_id or RULES[case.code].rule_id)
    assert tree.xpath(finding.xpath, namespaces=NS) == [one(tree, case.at)], finding.xpath
    assert finding.xpath.startswith("/dpi:DPI_OECD")
    assert not any(value in finding.message for value in PERSONAL), finding.message

    case.fix(tree)
    assert check(tree, **case.kwargs) == []


# ---------------------------------------------------------------------------------------- edges of single rules


def test_a_reporting_period_ending_today_is_not_in_the_future() -> None:
    assert check(base(), today=date(2025, 12, 31)) == []
    assert [f.code for f in check(base(), today=date(2025, 12, 30))] == ["10060"]


def test_birth_years_1900_and_the_current_year_are_allowed() -> None:
    for birth, codes in (("1900-01-01", []), (f"{TODAY.year}-12-31", []), (f"{TODAY.year + 1}-01-01", ["40130"])):
        tree = base()
        set_text(f"{IND}/dpi:BirthInfo/dpi:BirthDate", birth)(tree)
        assert [f.code for f in check(tree)] == codes


def test_a_nil_report_of_sellers_is_flagged_once_per_seller() -> None:
    tree = base()
    steps(set_text(f"{SPEC}/dpi:MessageTypeIndic", "DPI403"), ADD_ASSUMED)(tree)
    assert [(f.code, f.doc_ref_id) for f in check(tree)] == [("20050", "LT2025-S1"), ("20050", "LT2025-S2")]


def test_80010_as_the_eu_module_codes_it() -> None:
    """OECD2 inside a DPI401 is not rejected (only OECD3 is); OECD0 is ignored when looking for a mix."""
    tree = base()
    steps(
        set_doc(PO, "OECD0", "LT2025-OP"),
        set_doc(S1, "OECD2", "LT2025-S1-v2", "LT2025-S1"),
        set_doc(S2, "OECD2", "LT2025-S2-v2", "LT2025-S2"),
    )(tree)
    assert check(tree) == []
    set_text(f"{SPEC}/dpi:MessageTypeIndic", "DPI402")(tree)
    assert check(tree) == []


def test_80009_accepts_an_operator_deleted_with_all_its_sellers() -> None:
    tree = base()
    steps(
        CORRECTION,
        set_doc(PO, "OECD3", "LT2025-OP-v2", "LT2025-OP"),
        set_doc(S1, "OECD3", "LT2025-S1-v2", "LT2025-S1"),
        set_doc(S2, "OECD3", "LT2025-S2-v2", "LT2025-S2"),
    )(tree)
    assert check(tree) == []


def test_exchange_only_rules_do_not_bind_a_domestic_filing() -> None:
    tree = base()
    steps(
        insert_before(f"{SPEC}/dpi:TransmittingCountry", lambda: el("dpi:SendingEntityIN", "LT-REG-1")),
        insert_after(PO, other_operator("AssumingPlatformOperator", "LT2025-AO")),
        set_text(f"{ENT}/dpi:ResCountryCode", "LV"),
    )(tree)
    assert {f.code for f in check(tree)} == {"10010", "20020", "40070"}
    assert check(tree, rules=EU_DOMESTIC) == []
    assert {"10010", "20020", "20030", "40050", "40070"} == EXCHANGE_ONLY
    assert EU_DOMESTIC.codes == EU_EXCHANGE.codes - EXCHANGE_ONLY


# ---------------------------------------------------------------------------------------- rule sets and the registry


def test_rule_sets_are_derived_by_excluding_and_adding_codes() -> None:
    lenient = derive_rule_set(EU_EXCHANGE, "no 50008", exclude={"50008"})
    assert lenient.codes == EU_EXCHANGE.codes - {"50008"}
    assert EU_DOMESTIC.derive("again", add={"10010"}).codes == EU_DOMESTIC.codes | {"10010"}
    with pytest.raises(ValueError, match="no code 12345"):
        EU_EXCHANGE.derive("typo", exclude={"12345"})
    tree = base()
    set_text(f"{SPEC}/dpi:MessageRefId", "X")(tree)
    assert [f.code for f in check(tree)] == ["50008"]
    assert check(tree, rules=lenient) == []


def test_a_rule_set_naming_an_unregistered_code_is_refused() -> None:
    with pytest.raises(ValueError, match="without a registered rule: FR-33"):
        check_message(base(), rules=RuleSet("FR", frozenset({"FR-33"})), today=TODAY)


def test_a_national_profile_registers_its_own_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """A national rule is a function in the same table; an EU check can be re-issued under a national code."""
    from reporting.checks import business as preflight

    monkeypatch.setattr(preflight, "RULES", dict(preflight.RULES))

    def no_contact(ctx: preflight.Context, _: None) -> list[preflight.Hit]:
        elem = ctx.spec_elem("Contact")
        return [ctx.hit(elem, "DGFiP files carry no Contact: remove it.")] if elem is not None else []

    register_rule(preflight.Rule("FR-X", "FR_MSG_X", preflight.Scope.MESSAGE, no_contact, "No Contact element."))
    register_rule(replace(preflight.RULES["10060"], code="E1060", rule_id="IT_E1060"))
    with pytest.raises(ValueError, match="already registered"):
        register_rule(replace(preflight.RULES["10060"], rule_id="again"))
    profile = EU_DOMESTIC.derive("IT-like", exclude={"10060"}, add={"E1060", "FR-X"})

    tree = base()
    insert_after(f"{SPEC}/dpi:MessageType", lambda: el("dpi:Contact", "dpo@example.test"))(tree)
    assert check(tree, rules=profile) == [
        RuleFinding(
            "FR-X", "FR_MSG_X", "error", None, f"{SPEC}[1]/dpi:Contact[1]", "DGFiP files carry no Contact: remove it."
        )
    ]
    assert [(f.code, f.rule_id) for f in check(tree, rules=profile, today=date(2025, 12, 1))] == [
        ("FR-X", "FR_MSG_X"),
        ("E1060", "IT_E1060"),
    ]


# ---------------------------------------------------------------------------------------- sources, envelopes, editions


def test_a_message_in_an_envelope_is_found_and_located() -> None:
    tree = base()
    set_attr(f"{IND}/dpi:TIN", "issuedBy", None)(tree)
    wrapped = etree.fromstring(
        b'<tm:Messaggio xmlns:tm="www.agenziaentrate.gov.it:specificheTecniche:telent:v1" '
        b'xmlns:dpitel="urn:www.agenziaentrate.gov.it:specificheTecniche:dpitel">'
        b"<tm:Intestazione><tm:CodiceFiscaleFornitore>X</tm:CodiceFiscaleFornitore></tm:Intestazione>"
        b'<tm:Contenuto CodiceFornitura="DPI23"><dpitel:Fornitura/></tm:Contenuto></tm:Messaggio>'
    )
    wrapped.find(".//{*}Fornitura").append(tree.getroot())
    envelope = etree.ElementTree(wrapped)
    (finding,) = check(envelope)
    assert finding.code == "40080"
    assert finding.xpath.startswith("/tm:Messaggio/tm:Contenuto[1]/dpitel:Fornitura[1]/dpi:DPI_OECD[1]/")
    namespaces = {**NS, **{k: v for k, v in wrapped.nsmap.items() if k}}
    assert envelope.xpath(finding.xpath, namespaces=namespaces) == [one(envelope, f"/*/*/*{IND}/dpi:TIN")]


def test_a_file_path_is_streamed(tmp_path: Path) -> None:
    tree = base()
    set_text(f"{S2}/dpi:DocSpec/stf:DocRefId", "LT2025-S1")(tree)
    path = tmp_path / "message.xml"
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    assert check_message(path, today=TODAY) == check_message(str(path), today=TODAY) == check(tree)


def test_a_doctype_is_refused_and_its_entities_never_read(tmp_path: Path) -> None:
    """An entity in MessageRefId would otherwise be quoted by 50008: the DOCTYPE is refused before
    the file behind it could be read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-CONTENT", encoding="utf-8")
    doc = BASE.replace(
        b'<?xml version="1.0" encoding="UTF-8"?>',
        b'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE x [<!ENTITY e SYSTEM "' + secret.as_uri().encode() + b'">]>',
    ).replace(b"LT2025LT0001", b"&e;")
    with pytest.raises(XmlFileError, match="carries a DOCTYPE") as raised:
        check_message(doc, today=TODAY)
    assert "SECRET" not in str(raised.value)


@pytest.mark.parametrize(
    ("document", "found"),
    [
        (BASE.replace(b"urn:oecd:ties:dpi:v1", b"urn:oecd:ties:dpi"), "DPI_OECD in the namespace urn:oecd:ties:dpi"),
        (BASE.replace(b"DPI_OECD", b"DPI_HU"), "DPI_HU in the namespace urn:oecd:ties:dpi:v1"),
        (b"<other/>", "it has no DPI_OECD element"),
    ],
)
def test_another_edition_is_refused(document: bytes, found: str) -> None:
    with pytest.raises(ValueError, match="is not an EU-edition DPI message") as raised:
        check_message(document, today=TODAY)
    assert isinstance(raised.value, NotEuDpiMessageError)
    assert found in str(raised.value)


# ---------------------------------------------------------------------------------------- size


ADDRESS = PostalAddress(country="LT", city="Kaunas", street="Laisves al.", building="10", post_code="44240")


def rendered(path: Path, n: int) -> Path:
    header = MessageHeader("LT", "LT", "LT2025LT0001", "DPI401", date(2025, 12, 31), datetime(2026, 1, 15, 7, 0))
    operator = OperatorRecord("Demo Marketplace UAB", "304567891", "LT", ADDRESS, "RPONEX1", "LT")
    goods = ActivityFigures("sale_of_goods", "EUR", (1, 2, 3, 4), (1, 1, 1, 1), (0, 0, 0, 0), (0, 0, 0, 0))
    sellers = (
        (
            SellerRecord(
                f"S{i}", "individual", ("LT",), (Tin(f"3900101{i:04d}", "LT"),), ADDRESS, (goods,), "Ona", "Testaite",
                birth_date=date(1980, 5, 17), birth_city="Kaunas", birth_country="LT",
            ),
            ("OECD11", f"LT2025-{i:032d}"),
        )
        for i in range(n)
    )  # fmt: skip
    with path.open("wb") as out:
        EU_GENERIC.write(out, header, operator, ("OECD11", "LT2025-OP"), sellers)
    return path


def test_a_rendered_message_without_sellers_breaks_20040() -> None:
    buf = io.BytesIO()
    header = MessageHeader("LT", "LT", "LT2025LT0001", "DPI401", date(2025, 12, 31), datetime(2026, 1, 15, 7, 0))
    operator = OperatorRecord("Demo Marketplace UAB", "304567891", "LT", ADDRESS, "RPONEX1", "LT")
    EU_GENERIC.write(buf, header, operator, ("OECD11", "LT2025-OP"), [])
    assert [f.code for f in check_message(buf.getvalue(), today=TODAY)] == ["20040"]


def test_memory_does_not_grow_with_the_sellers_beyond_their_ids(tmp_path: Path) -> None:
    def peak(n: int) -> tuple[int, int]:
        path = rendered(tmp_path / f"m{n}.xml", n)
        tracemalloc.start()
        assert check_message(path, today=TODAY) == []
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top, path.stat().st_size

    small_peak, small_size = peak(200)
    large_peak, large_size = peak(4_000)
    assert large_size > 15 * small_size
    # what stays is one DocRefId per record (80000): some 200 bytes each, not the seller
    assert large_peak < small_peak + 4_000 * 250 + 256 * 1024, (small_peak, large_peak)


# ---------------------------------------------------------------------------------------- the reference samples

IT = "it-ade-sogei__dac7-be-test"
UK = "uk-hmrc-test-resources"
FR = "fr-dgfip-examples__adapted-by-backmarket"

# EU_EXCHANGE codes per sample, and why each is expected.
SAMPLE_CODES: dict[str, set[str]] = {
    # IT -> LU exchange message, EU test-pack style: clean.
    f"{IT}/Valid-Send-InitialMsg-AssumedPO-010.xml": set(),
    # IT -> LU exchange message with two entity and two individual sellers: clean.
    f"{IT}/initialMessage_Prova.xml": set(),
    # A domestic IT -> IT filing, so checked as an exchange it breaks the exchange-only rules:
    # 10010 it carries SendingEntityIN; 20030 it is a nil report (DPI403) without an
    # AssumedPlatformOperator; 40070 its sellers are resident in HU (and two of them), not in the
    # receiving IT. And one real error: 20050 a nil report (DPI403) with three ReportableSellers.
    f"{IT}/DPIXML_v1.09_2.xml": {"10010", "20030", "20050", "40070"},
    # Domestic IT correction (DPI402) in the telematic envelope: 40070 the seller is resident in
    # HU (exchange-only); 90040 its record is OECD2 without a CorrDocRefId (a real error).
    f"{IT}/TDAC7_TEST0112_INI-MSG1-5.xml": {"40070", "90040"},
    # XMLSpy-generated envelope sample, every value "a" or a random code: SendingEntityIN (10010);
    # MessageRefId "a" (50008); every DocRefId "a" (80000 duplicates, 80001 format); every DocSpec
    # has a CorrMessageRefId (80006) and the OECD1/OECD10 ones a CorrDocRefId (80004); two TINs
    # flagged unknown per party (40090); a DPI403 with AssumingPlatformOperators (20020), without
    # AssumedPlatformOperator (20030), with sellers (20050) and an OECD12 record (80010); property
    # types other than DPI910 with an OtherPropertyType (30060); sellers not resident in the
    # receiving NO (40070); the first operator has no OECD304 address (60010); the second is
    # outside the EU without an IIN (40020).
    f"{IT}/corretto.xml": {
        "10010", "20020", "20030", "20050", "30060", "40020", "40070", "40090", "50008", "60010",
        "80000", "80001", "80004", "80006", "80010",
    },
    # HMRC XMLSpy samples (UK, OECD Model Rules, not DAC7): SendingEntityIN (10010); MessageRefId
    # and DocRefIds "a" (50008, 80000, 80001); CorrMessageRefId (80006) and CorrDocRefId on OECD1
    # records (80004); an OECD11 operator record in a DPI402 (80010); an operator resident in PE with
    # its address in DJ, outside the EU, without an IIN (40020) and without an OECD304 address
    # (60010); OtherPropertyType without DPI910 (30060); a seller not resident in the receiving LY
    # (40070).
    f"{UK}/SubmissionSample.xml": {
        "10010", "30060", "40020", "40070", "50008", "60010", "80000", "80001", "80004", "80006", "80010",
    },
    # Same, with two bodies and AssumingPlatformOperators (20020), and two OECD2 records
    # correcting the same DocRefId "a" (80011). The second body's operator has an OECD304 address.
    f"{UK}/SubmissionSampleAssumed.xml": {
        "10010", "20020", "30060", "40020", "40070", "50008", "60010", "80000", "80001", "80004", "80006",
        "80010", "80011",
    },
    # The same message as SubmissionSampleAssumed.xml inside HMRC's cadx:DPISubmissionRequest.
    f"{UK}/DPISubmissionRequest_Sample_v1.0.xml": {
        "10010", "20020", "30060", "40020", "40070", "50008", "60010", "80000", "80001", "80004", "80006",
        "80010", "80011",
    },
}  # fmt: skip

# The domestic IT filings under the EU rules for a domestic filing: only their real errors remain.
DOMESTIC_CODES = {f"{IT}/DPIXML_v1.09_2.xml": {"20050"}, f"{IT}/TDAC7_TEST0112_INI-MSG1-5.xml": {"90040"}}

FR_SAMPLES = [
    "1_initial_immovable_properties",
    "2_initial_sale_of_goods",
    "3_additional",
    "4_corrective",
    "5_initial_assuming",
    "6_initial_assumed",
]


def test_every_sample_is_covered() -> None:
    found = {sample_name(p) for p in sample_files()}
    assert found == set(SAMPLE_CODES) | {f"{FR}/{case}/declaration.xml" for case in FR_SAMPLES}


@pytest.mark.parametrize("name", [pytest.param(name, marks=marks(sample(name))) for name in sorted(SAMPLE_CODES)])
def test_sample_findings(name: str) -> None:
    require_file(sample(name))
    findings = check_message(sample(name), today=TODAY)
    assert {f.code for f in findings} == SAMPLE_CODES[name], [f.describe() for f in findings]
    tree = etree.parse(str(sample(name)))
    namespaces = {**NS, **{k: v for k, v in tree.getroot().nsmap.items() if k}}
    for finding in findings:
        assert len(tree.xpath(finding.xpath, namespaces=namespaces)) == 1, finding.xpath
    if name in DOMESTIC_CODES:
        domestic = check_message(sample(name), rules=EU_DOMESTIC, today=TODAY)
        assert {f.code for f in domestic} == DOMESTIC_CODES[name]


@pytest.mark.parametrize("case", FR_SAMPLES)
def test_french_samples_are_not_eu_edition_messages(case: str) -> None:
    require_file(sample(f"{FR}/{case}/declaration.xml"))
    # DGFiP uses urn:oecd:ties:dpi without :v1 (and TaxesQn ...): the EU rules cannot read it.
    with pytest.raises(ValueError, match="is not an EU-edition DPI message"):
        check_message(sample(f"{FR}/{case}/declaration.xml"), today=TODAY)
