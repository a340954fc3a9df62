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
_QUARTER_SUFFIXES = frozenset(QUARTERS)
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
    currency: str | None  # the one currCode of the record's amounts (None for none or several)
    #: every currCode of the record's amounts: a statement states one (see feed.write_statements)
    currencies: tuple[str, ...] = ()


def _local(elem: etree._Element) -> str:
    """The element's name without its namespace ("" for a comment or processing instruction);
    a string slice, several times faster than ``etree.QName``."""
    tag = elem.tag
    return tag[tag.rfind("}") + 1 :] if isinstance(tag, str) else ""


Index = dict[str, list[etree._Element]]


def _index(elem: etree._Element | None) -> Index:
    """The children of ``elem`` by local name, in document order: each child's name is read once
    (a seller has some 150 elements; looking each name up again per question is the slow way)."""
    out: Index = {}
    if elem is None:
        return out
    for c in elem:
        tag = c.tag
        if isinstance(tag, str):
            name = tag[tag.rfind("}") + 1 :]
            if name in out:
                out[name].append(c)
            else:
                out[name] = [c]
    return out


def _first(ix: Index, name: str) -> etree._Element | None:
    found = ix.get(name)
    return found[0] if found else None


def _text(ix: Index, name: str) -> str | None:
    found = ix.get(name)
    return found[0].text if found else None


def address(elem: etree._Element) -> dict[str, str]:
    """A DPI address as the feed writes it: ``country``, the fixed parts present, ``free`` text."""
    ix = _index(elem)
    out: dict[str, str] = {}
    country = _text(ix, "CountryCode")
    if country:
        out["country"] = country
    kind = elem.get("legalAddressType")
    if kind:
        out["address_type"] = kind
    fix = _first(ix, "AddressFix")
    if fix is not None:
        for c in fix:
            part = ADDRESS_PARTS.get(_local(c))
            if part is not None and c.text is not None:
                out[part] = c.text
    free = _text(ix, "AddressFree")
    if free is not None:
        out["free"] = free
    return out


def _person_name(elem: etree._Element) -> dict[str, str]:
    out = {}
    if elem.get("nameType"):
        out["name_type"] = elem.get("nameType") or ""
    for c in elem:
        part = NAME_PARTS.get(_local(c))
        if part is not None and c.text is not None:
            out[part] = c.text
    return out


def _identity(identity: etree._Element) -> dict[str, Any]:
    top = _index(identity)
    ind = _first(top, "IndividualSeller")
    seller = ind if ind is not None else _first(top, "EntitySeller")
    if seller is None:
        raise ValueError("a ReportableSeller without IndividualSeller or EntitySeller")
    standard = _first(_index(seller), "Standard")
    std = _index(standard)
    ident = _first(std, "IndSellerID" if ind is not None else "EntSellerID")
    if standard is None or ident is None:
        raise ValueError("a ReportableSeller without its Standard identification")
    ix = _index(ident)
    out: dict[str, Any] = {"seller_type": "individual" if ind is not None else "entity"}
    out["residence_countries"] = [c.text for c in ix.get("ResCountryCode", ()) if c.text]
    tins = []
    for t in ix.get("TIN", ()):
        tin: dict[str, Any] = {"tin": t.text, "issued_by": t.get("issuedBy")}
        if t.get("unknown") in ("true", "1"):
            tin["unknown"] = True
        tins.append(tin)
    out["tins"] = tins
    if ind is None:
        out["business_registration_numbers"] = [
            {"number": n.text or "", "type": n.get("INType"), "issued_by": n.get("issuedBy")} for n in ix.get("IN", ())
        ]
    out["vat"] = _text(ix, "VAT")
    if ind is not None:
        out["names"] = [_person_name(n) for n in ix.get("Name", ())]
    else:
        out["names"] = [
            {"name": n.text or "", "name_type": n.get("nameType")} if n.get("nameType") else {"name": n.text or ""}
            for n in ix.get("Name", ())
        ]
    out["addresses"] = [address(a) for a in ix.get("Address", ())]
    if ind is not None:
        birth = _index(_first(ix, "BirthInfo"))
        out["birth_date"] = _text(birth, "BirthDate")
        place = _first(birth, "BirthPlace")
        if place is None:
            out["birth_place"] = None
        else:
            pix = _index(place)
            info = _index(_first(pix, "CountryInfo"))
            out["birth_place"] = {
                "city": _text(pix, "City"),
                "country": _text(info, "CountryCode"),  # ISO 3166, or None
                "former_country_name": _text(info, "FormerCountryName"),  # a state that is no more
            }
    else:
        pes = _index(_first(ix, "PermanentEstablishments"))
        out["permanent_establishments"] = [c.text for c in pes.get("PermanentEstablishment", ()) if c.text]
    out["financial_accounts"] = [_account(f) for f in std.get("FinancialIdentifier", ())]
    return out


def _account(elem: etree._Element) -> dict[str, str | None]:
    ix = _index(elem)
    identifier = _first(ix, "Identifier")
    return {
        "identifier": None if identifier is None else identifier.text,
        "type": None if identifier is None else identifier.get("AccountNumberType"),
        "holder": _text(ix, "AccountHolderName"),
    }


def _quarters(ix: Index, currencies: set[str]) -> dict[str, dict[str, int]]:
    """The four figures per quarter: each ``ConsQn``, ``NumbQn``, ``FeesQn``, ``TaxQn`` (``TaxesQn``
    in DGFiP's edition) goes to quarter n, by its name, not its position; a figure missing from
    the XML is an error."""
    out: dict[str, dict[str, int]] = {q: {} for q in QUARTERS}
    for name, prefix, key in FIGURES:
        figures = _first(ix, name)
        if figures is None:
            raise ValueError(f"an activity without {name}")
        for value in figures:
            # ConsQ1 ... (DGFiP's edition names the taxes TaxesQ1 ...): the name's last two
            # characters are the tag's, namespace or not (a comment's tag is no string)
            tag = value.tag
            quarter = tag[-2:] if isinstance(tag, str) else ""
            if quarter not in _QUARTER_SUFFIXES or value.text is None:
                continue
            out[quarter][key] = int(value.text)
            cur = value.get("currCode")
            if cur:
                currencies.add(cur)
        for q in QUARTERS:
            if key not in out[q]:
                raise ValueError(f"{name} without {prefix}{q[1]}")
    return out


def _activities(relevant: etree._Element | None, currencies: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if relevant is None:
        return out
    for act in relevant:
        activity = ACTIVITIES.get(_local(act))
        if activity is None:
            continue
        if activity != "immovable_property":
            out.append({"activity": activity, "quarters": _quarters(_index(act), currencies)})
            continue
        for listing in _index(act).get("PropertyListing", ()):
            ix = _index(listing)
            addr = _first(ix, "Address")
            rented = _text(ix, "RentedDays")
            out.append(
                {
                    "activity": activity,
                    "property_address": address(addr) if addr is not None else None,
                    "property_type": _text(ix, "PropertyType"),
                    "other_property_type": _text(ix, "OtherPropertyType"),
                    "land_registration_number": _text(ix, "LandRegistrationNumber"),
                    "rented_days": int(rented) if rented is not None else None,
                    "quarters": _quarters(ix, currencies),
                }
            )
    return out


def seller_record(elem: etree._Element) -> FiledSeller:
    """One ``ReportableSeller`` element as a :class:`FiledSeller`."""
    ix = _index(elem)
    spec = _index(_first(ix, "DocSpec"))
    doc_ref_id = _text(spec, "DocRefId")
    indic = _text(spec, "DocTypeIndic") or ""
    if not doc_ref_id or indic[-1:] not in KINDS:
        raise ValueError("a ReportableSeller without its DocSpec")
    currencies: set[str] = set()
    identity = _first(ix, "Identity")
    if identity is None:
        raise ValueError(f"ReportableSeller {doc_ref_id} without Identity")
    return FiledSeller(
        doc_ref_id=doc_ref_id,
        corr_doc_ref_id=_text(spec, "CorrDocRefId"),
        kind=KINDS[indic[-1]],
        identity=_identity(identity),
        activities=_activities(_first(ix, "RelevantActivities"), currencies),
        currency=min(currencies) if len(currencies) == 1 else None,
        currencies=tuple(sorted(currencies)),
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
            operator_name = _text(_index(elem), "Name") or ""
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
