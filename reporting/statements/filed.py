"""The seller records of a filed DPI message, read back from the published XML file.

A statement is written from the very records that went to the authority, never recomputed
(PStTG § 22(2) with § 14: the seller receives "die ihn jeweils betreffenden Informationen", the
information reported about them). The file is streamed: each ``ReportableSeller`` is turned into
a :class:`FiledSeller` and released, so memory does not grow with the number of sellers.
Elements are matched by their local name, so that every authority's edition of the DPI schema
(the EU generic one, DE, FR, HU, IT) reads the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from reporting.safexml import iterparse, release

#: DPI activity element -> the feed's activity name
ACTIVITIES = {
    "SaleOfGoods": "sale_of_goods",
    "PersonalServices": "personal_services",
    "TransportationRental": "transportation_rental",
    "ImmovableProperty": "immovable_property",
}
#: the four figures of a quarter: XML block, its per-quarter prefix, the feed's name
FIGURES = (
    ("Consideration", "ConsQ", "consideration"),
    ("NumberOfActivities", "NumbQ", "number_of_activities"),
    ("Fees", "FeesQ", "fees"),
    ("Taxes", "TaxQ", "taxes"),
)
QUARTERS = ("Q1", "Q2", "Q3", "Q4")
#: the address parts of the DPI address type, in the order of the schema
ADDRESS_PARTS = {
    "Street": "street",
    "BuildingIdentifier": "building",
    "SuiteIdentifier": "suite",
    "FloorIdentifier": "floor",
    "DistrictName": "district",
    "POB": "pob",
    "PostCode": "post_code",
    "City": "city",
    "CountrySubentity": "country_subentity",
}
NAME_PARTS = {
    "PrecedingTitle": "preceding_title",
    "Title": "title",
    "FirstName": "first_name",
    "MiddleName": "middle_name",
    "NamePrefix": "name_prefix",
    "LastName": "last_name",
    "GenerationIdentifier": "generation_identifier",
    "Suffix": "suffix",
    "GeneralSuffix": "general_suffix",
}
#: DocTypeIndic (production OECD1-3, test OECD11-13) -> the statement's kind
KINDS = {"1": "initial", "2": "correction", "3": "deletion"}


@dataclass(frozen=True, slots=True)
class MessageHead:
    """What a message says about itself and the operator (from MessageSpec and PlatformOperator)."""

    message_ref_id: str
    transmitting_country: str
    receiving_country: str
    reporting_period: str  # YYYY-MM-DD
    message_type_indic: str
    operator_name: str


@dataclass(frozen=True, slots=True)
class FiledSeller:
    """One ReportableSeller record as filed: personal data (never logged)."""

    doc_ref_id: str
    corr_doc_ref_id: str | None
    kind: str  # initial | correction | deletion
    identity: dict[str, Any]
    activities: list[dict[str, Any]]
    currency: str | None


def _local(elem: etree._Element) -> str:
    return etree.QName(elem).localname


def _children(elem: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in elem if isinstance(c.tag, str) and _local(c) == name]


def _child(elem: etree._Element | None, name: str) -> etree._Element | None:
    if elem is None:
        return None
    for c in elem:
        if isinstance(c.tag, str) and _local(c) == name:
            return c
    return None


def _text(elem: etree._Element | None, name: str) -> str | None:
    c = _child(elem, name)
    return None if c is None or c.text is None else c.text


def address(elem: etree._Element) -> dict[str, str]:
    """A DPI address as the feed writes it: ``country``, the fixed parts present, ``free`` text."""
    out: dict[str, str] = {}
    country = _text(elem, "CountryCode")
    if country:
        out["country"] = country
    fix = _child(elem, "AddressFix")
    if fix is not None:
        for c in fix:
            if isinstance(c.tag, str) and _local(c) in ADDRESS_PARTS and c.text is not None:
                out[ADDRESS_PARTS[_local(c)]] = c.text
    free = _text(elem, "AddressFree")
    if free is not None:
        out["free"] = free
    return out


def _person_name(elem: etree._Element) -> dict[str, str]:
    out = {}
    for c in elem:
        if isinstance(c.tag, str) and _local(c) in NAME_PARTS and c.text is not None:
            out[NAME_PARTS[_local(c)]] = c.text
    return out


def _identity(identity: etree._Element) -> dict[str, Any]:
    ind = _child(identity, "IndividualSeller")
    seller = ind if ind is not None else _child(identity, "EntitySeller")
    if seller is None:
        raise ValueError("a ReportableSeller without IndividualSeller or EntitySeller")
    standard = _child(seller, "Standard")
    ident = _child(standard, "IndSellerID" if ind is not None else "EntSellerID")
    if standard is None or ident is None:
        raise ValueError("a ReportableSeller without its Standard identification")
    out: dict[str, Any] = {"seller_type": "individual" if ind is not None else "entity"}
    out["residence_countries"] = [c.text for c in _children(ident, "ResCountryCode") if c.text]
    tins = []
    for t in _children(ident, "TIN"):
        tin: dict[str, Any] = {"tin": t.text, "issued_by": t.get("issuedBy")}
        if t.get("unknown") in ("true", "1"):
            tin["unknown"] = True
        tins.append(tin)
    out["tins"] = tins
    if ind is None:
        out["business_registration_numbers"] = [
            {"number": n.text or "", "type": n.get("INType"), "issued_by": n.get("issuedBy")}
            for n in _children(ident, "IN")
        ]
    out["vat"] = _text(ident, "VAT")
    if ind is not None:
        out["names"] = [_person_name(n) for n in _children(ident, "Name")]
    else:
        out["names"] = [{"name": n.text or ""} for n in _children(ident, "Name")]
    out["addresses"] = [address(a) for a in _children(ident, "Address")]
    if ind is not None:
        birth = _child(ident, "BirthInfo")
        out["birth_date"] = _text(birth, "BirthDate")
        place = _child(birth, "BirthPlace")
        out["birth_place"] = (
            None
            if place is None
            else {
                "city": _text(place, "City"),
                "country": _text(_child(place, "CountryInfo"), "CountryCode")
                or _text(_child(place, "CountryInfo"), "FormerCountryName"),
            }
        )
    else:
        pes = _child(ident, "PermanentEstablishments")
        out["permanent_establishments"] = [
            c.text for c in (_children(pes, "PermanentEstablishment") if pes is not None else []) if c.text
        ]
    out["financial_accounts"] = [_account(f) for f in _children(standard, "FinancialIdentifier")]
    return out


def _account(elem: etree._Element) -> dict[str, str | None]:
    identifier = _child(elem, "Identifier")
    return {
        "identifier": None if identifier is None else identifier.text,
        "type": None if identifier is None else identifier.get("AccountNumberType"),
        "holder": _text(elem, "AccountHolderName"),
    }


def _quarters(block: etree._Element, currencies: set[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {q: {} for q in QUARTERS}
    for name, prefix, key in FIGURES:
        figures = _child(block, name)
        for q in QUARTERS:
            value = _child(figures, prefix + q[1])
            if value is None or value.text is None:
                raise ValueError(f"{name} without {prefix}{q[1]}")
            out[q][key] = int(value.text)
            if value.get("currCode"):
                currencies.add(value.get("currCode") or "")
    return out


def _activities(relevant: etree._Element | None, currencies: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if relevant is None:
        return out
    for act in relevant:
        if not isinstance(act.tag, str) or _local(act) not in ACTIVITIES:
            continue
        activity = ACTIVITIES[_local(act)]
        if activity != "immovable_property":
            out.append({"activity": activity, "quarters": _quarters(act, currencies)})
            continue
        for listing in _children(act, "PropertyListing"):
            addr = _child(listing, "Address")
            rented = _text(listing, "RentedDays")
            out.append(
                {
                    "activity": activity,
                    "property_address": address(addr) if addr is not None else None,
                    "property_type": _text(listing, "PropertyType"),
                    "other_property_type": _text(listing, "OtherPropertyType"),
                    "land_registration_number": _text(listing, "LandRegistrationNumber"),
                    "rented_days": int(rented) if rented is not None else None,
                    "quarters": _quarters(listing, currencies),
                }
            )
    return out


def seller_record(elem: etree._Element) -> FiledSeller:
    """One ``ReportableSeller`` element as a :class:`FiledSeller`."""
    spec = _child(elem, "DocSpec")
    doc_ref_id = _text(spec, "DocRefId")
    indic = _text(spec, "DocTypeIndic") or ""
    if not doc_ref_id or indic[-1:] not in KINDS:
        raise ValueError("a ReportableSeller without its DocSpec")
    currencies: set[str] = set()
    identity = _child(elem, "Identity")
    if identity is None:
        raise ValueError(f"ReportableSeller {doc_ref_id} without Identity")
    return FiledSeller(
        doc_ref_id=doc_ref_id,
        corr_doc_ref_id=_text(spec, "CorrDocRefId"),
        kind=KINDS[indic[-1]],
        identity=_identity(identity),
        activities=_activities(_child(elem, "RelevantActivities"), currencies),
        currency=min(currencies) if len(currencies) == 1 else (",".join(sorted(currencies)) or None),
    )


def read_message(path: str | Path) -> Iterator[MessageHead | FiledSeller]:
    """The message's head first (once MessageSpec and PlatformOperator are read), then each
    seller record in body order; memory stays flat (each element is released once read)."""
    spec: dict[str, str] = {}
    operator_name = ""
    head_sent = False
    tags = ("{*}MessageSpec", "{*}PlatformOperator", "{*}ReportableSeller")
    for _event, elem in iterparse(path, tag=tags):
        name = _local(elem)
        if name == "MessageSpec":
            for c in elem:
                if isinstance(c.tag, str) and c.text is not None:
                    spec[_local(c)] = c.text
        elif name == "PlatformOperator":
            operator_name = _text(elem, "Name") or ""
        else:
            if not head_sent:
                yield _head(spec, operator_name)
                head_sent = True
            yield seller_record(elem)
        release(elem)
    if not head_sent:
        yield _head(spec, operator_name)


def _head(spec: dict[str, str], operator_name: str) -> MessageHead:
    return MessageHead(
        message_ref_id=spec.get("MessageRefId", ""),
        transmitting_country=spec.get("TransmittingCountry", ""),
        receiving_country=spec.get("ReceivingCountry", ""),
        reporting_period=spec.get("ReportingPeriod", ""),
        message_type_indic=spec.get("MessageTypeIndic", ""),
        operator_name=operator_name,
    )
