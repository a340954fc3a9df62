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
    currency: str | None  # the one currCode of the record's amounts (None for none or several)
    #: every currCode of the record's amounts: a statement states one (see feed.write_statements)
    currencies: tuple[str, ...] = ()


#: an element's tag -> its name without the namespace, for the tags met (a few dozen in a file
#: of any edition; bounded, so that a file of made-up tags cannot make it grow without end)
_LOCAL: dict[object, str] = {}
_LOCAL_MAX = 4096


def _local(elem: etree._Element) -> str:
    """The element's name without its namespace ("" for a comment or processing instruction);
    the readers below ask :data:`_LOCAL` first (``_LOCAL.get(c.tag) or _local(c)``: one lookup
    for a tag met before)."""
    tag = elem.tag
    if not isinstance(tag, str):
        return ""
    name = _LOCAL.get(tag)
    if name is None:
        name = tag[tag.rfind("}") + 1 :]
        if len(_LOCAL) < _LOCAL_MAX:
            _LOCAL[tag] = name
    return name


# The readers below look at each element once, in document order, and keep what they need: the
# first element of a name where the record holds one (its text, None for an empty element, the
# next ones of that name left aside), every element of a name where it holds a list. A seller
# has some sixty elements; reading each once, without an index per element, is what makes a
# statement cheap to build (the tests compare with the records by hand, each edition's samples).


def address(elem: etree._Element) -> dict[str, str]:
    """A DPI address as the feed writes it: ``country``, the fixed parts present, ``free`` text."""
    country: str | None = None
    fix: etree._Element | None = None
    free: str | None = None
    seen_country = seen_free = False
    for c in elem:
        name = _LOCAL.get(c.tag) or _local(c)
        if name == "CountryCode":
            if not seen_country:
                country, seen_country = c.text, True
        elif name == "AddressFix":
            if fix is None:
                fix = c
        elif name == "AddressFree" and not seen_free:
            free, seen_free = c.text, True
    out: dict[str, str] = {}
    if country:
        out["country"] = country
    kind = elem.get("legalAddressType")
    if kind:
        out["address_type"] = kind
    if fix is not None:
        for c in fix:
            part = ADDRESS_PARTS.get(_LOCAL.get(c.tag) or _local(c))
            if part is not None:
                text = c.text
                if text is not None:
                    out[part] = text
    if free is not None:
        out["free"] = free
    return out


def _person_name(elem: etree._Element) -> dict[str, str]:
    out = {}
    if elem.get("nameType"):
        out["name_type"] = elem.get("nameType") or ""
    for c in elem:
        part = NAME_PARTS.get(_LOCAL.get(c.tag) or _local(c))
        if part is not None:
            text = c.text
            if text is not None:
                out[part] = text
    return out


def _child(elem: etree._Element | None, wanted: str) -> etree._Element | None:
    """The first child of ``elem`` called ``wanted`` (None for none, or for no ``elem``)."""
    if elem is not None:
        for c in elem:
            if (_LOCAL.get(c.tag) or _local(c)) == wanted:
                return c
    return None


def _identity(identity: etree._Element) -> dict[str, Any]:
    ind = ent = None
    for c in identity:
        name = _LOCAL.get(c.tag) or _local(c)
        if name == "IndividualSeller":
            if ind is None:
                ind = c
        elif name == "EntitySeller" and ent is None:
            ent = c
    seller = ind if ind is not None else ent
    if seller is None:
        raise ValueError("a ReportableSeller without IndividualSeller or EntitySeller")
    standard = _child(seller, "Standard")
    wanted = "IndSellerID" if ind is not None else "EntSellerID"
    ident = None
    accounts = []
    if standard is not None:
        for c in standard:
            name = _LOCAL.get(c.tag) or _local(c)
            if name == wanted:
                if ident is None:
                    ident = c
            elif name == "FinancialIdentifier":
                accounts.append(c)
    if standard is None or ident is None:
        raise ValueError("a ReportableSeller without its Standard identification")
    countries: list[str] = []
    tins: list[dict[str, Any]] = []
    numbers: list[etree._Element] = []
    names: list[etree._Element] = []
    addresses: list[dict[str, str]] = []
    vat: str | None = None
    seen_vat = False
    birth_info = establishments = None
    for c in ident:
        name = _LOCAL.get(c.tag) or _local(c)
        if name == "ResCountryCode":
            text = c.text
            if text:
                countries.append(text)
        elif name == "TIN":
            tin: dict[str, Any] = {"tin": c.text, "issued_by": c.get("issuedBy")}
            if c.get("unknown") in ("true", "1"):
                tin["unknown"] = True
            tins.append(tin)
        elif name == "Name":
            names.append(c)
        elif name == "Address":
            addresses.append(address(c))
        elif name == "VAT":
            if not seen_vat:
                vat, seen_vat = c.text, True
        elif name == "IN":
            numbers.append(c)
        elif name == "BirthInfo":
            if birth_info is None:
                birth_info = c
        elif name == "PermanentEstablishments" and establishments is None:
            establishments = c
    out: dict[str, Any] = {"seller_type": "individual" if ind is not None else "entity"}
    out["residence_countries"] = countries
    out["tins"] = tins
    if ind is None:
        out["business_registration_numbers"] = [
            {"number": n.text or "", "type": n.get("INType"), "issued_by": n.get("issuedBy")} for n in numbers
        ]
    out["vat"] = vat
    if ind is not None:
        out["names"] = [_person_name(n) for n in names]
    else:
        out["names"] = [
            {"name": n.text or "", "name_type": n.get("nameType")} if n.get("nameType") else {"name": n.text or ""}
            for n in names
        ]
    out["addresses"] = addresses
    if ind is not None:
        _birth(birth_info, out)
    else:
        out["permanent_establishments"] = (
            []
            if establishments is None
            else [
                c.text
                for c in establishments
                if c.text and (_LOCAL.get(c.tag) or _local(c)) == "PermanentEstablishment"
            ]
        )
    out["financial_accounts"] = [_account(f) for f in accounts]
    return out


def _birth(info: etree._Element | None, out: dict[str, Any]) -> None:
    """``birth_date`` and ``birth_place`` of an individual, from its ``BirthInfo`` (or none)."""
    birth_date: str | None = None
    place = None
    seen_date = False
    if info is not None:
        for c in info:
            name = _LOCAL.get(c.tag) or _local(c)
            if name == "BirthDate":
                if not seen_date:
                    birth_date, seen_date = c.text, True
            elif name == "BirthPlace" and place is None:
                place = c
    out["birth_date"] = birth_date
    if place is None:
        out["birth_place"] = None
        return
    city: str | None = None
    seen_city = False
    country_info = None
    for c in place:
        name = _LOCAL.get(c.tag) or _local(c)
        if name == "City":
            if not seen_city:
                city, seen_city = c.text, True
        elif name == "CountryInfo" and country_info is None:
            country_info = c
    country = former = None
    if country_info is not None:
        seen_code = seen_former = False
        for c in country_info:
            name = _LOCAL.get(c.tag) or _local(c)
            if name == "CountryCode":
                if not seen_code:
                    country, seen_code = c.text, True
            elif name == "FormerCountryName" and not seen_former:
                former, seen_former = c.text, True
    out["birth_place"] = {
        "city": city,
        "country": country,  # ISO 3166, or None
        "former_country_name": former,  # a state that is no more
    }


def _account(elem: etree._Element) -> dict[str, str | None]:
    identifier = None
    holder: str | None = None
    seen_holder = False
    for c in elem:
        name = _LOCAL.get(c.tag) or _local(c)
        if name == "Identifier":
            if identifier is None:
                identifier = c
        elif name == "AccountHolderName" and not seen_holder:
            holder, seen_holder = c.text, True
    return {
        "identifier": None if identifier is None else identifier.text,
        "type": None if identifier is None else identifier.get("AccountNumberType"),
        "holder": holder,
    }


def _figures(elem: etree._Element) -> dict[str, etree._Element]:
    """The first element of each of the four figures' blocks among the children of ``elem``."""
    out: dict[str, etree._Element] = {}
    for c in elem:
        name = _LOCAL.get(c.tag) or _local(c)
        if name in _FIGURE_BLOCKS and name not in out:
            out[name] = c
    return out


_FIGURE_BLOCKS = frozenset(name for name, _prefix, _key in FIGURES)


def _quarters(blocks: dict[str, etree._Element], currencies: set[str]) -> dict[str, dict[str, int]]:
    """The four figures per quarter: each ``ConsQn``, ``NumbQn``, ``FeesQn``, ``TaxQn`` (``TaxesQn``
    in DGFiP's edition) goes to quarter n, by its name, not its position; a figure missing from
    the XML is an error."""
    out: dict[str, dict[str, int]] = {q: {} for q in QUARTERS}
    for name, prefix, key in FIGURES:
        figures = blocks.get(name)
        if figures is None:
            raise ValueError(f"an activity without {name}")
        for value in figures:
            # ConsQ1 ... (DGFiP's edition names the taxes TaxesQ1 ...): the name's last two
            # characters are the tag's, namespace or not (a comment's tag is no string)
            tag = value.tag
            quarter = out.get(tag[-2:]) if isinstance(tag, str) else None
            if quarter is None:
                continue
            text = value.text
            if text is None:
                continue
            quarter[key] = int(text)
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
        activity = ACTIVITIES.get(_LOCAL.get(act.tag) or _local(act))
        if activity is None:
            continue
        if activity != "immovable_property":
            out.append({"activity": activity, "quarters": _quarters(_figures(act), currencies)})
            continue
        for listing in act:
            if (_LOCAL.get(listing.tag) or _local(listing)) == "PropertyListing":
                out.append(_listing(listing, currencies))
    return out


def _listing(listing: etree._Element, currencies: set[str]) -> dict[str, Any]:
    addr = None
    property_type = other_type = land_number = rented = None
    seen: set[str] = set()
    blocks: dict[str, etree._Element] = {}
    for c in listing:
        name = _LOCAL.get(c.tag) or _local(c)
        if name in _FIGURE_BLOCKS:
            if name not in blocks:
                blocks[name] = c
        elif name in _LISTING_TEXTS and name not in seen:
            seen.add(name)
            if name == "PropertyType":
                property_type = c.text
            elif name == "OtherPropertyType":
                other_type = c.text
            elif name == "LandRegistrationNumber":
                land_number = c.text
            else:
                rented = c.text
        elif name == "Address" and addr is None:
            addr = c
    return {
        "activity": "immovable_property",
        "property_address": address(addr) if addr is not None else None,
        "property_type": property_type,
        "other_property_type": other_type,
        "land_registration_number": land_number,
        "rented_days": int(rented) if rented is not None else None,
        "quarters": _quarters(blocks, currencies),
    }


_LISTING_TEXTS = frozenset(("PropertyType", "OtherPropertyType", "LandRegistrationNumber", "RentedDays"))


def seller_record(elem: etree._Element) -> FiledSeller:
    """One ``ReportableSeller`` element as a :class:`FiledSeller`."""
    spec = identity = relevant = None
    for c in elem:
        name = _LOCAL.get(c.tag) or _local(c)
        if name == "DocSpec":
            if spec is None:
                spec = c
        elif name == "Identity":
            if identity is None:
                identity = c
        elif name == "RelevantActivities" and relevant is None:
            relevant = c
    doc_ref_id, corr, kind = _doc_spec(spec)
    currencies: set[str] = set()
    if identity is None:
        raise ValueError(f"ReportableSeller {doc_ref_id} without Identity")
    return FiledSeller(
        doc_ref_id=doc_ref_id,
        corr_doc_ref_id=corr,
        kind=kind,
        identity=_identity(identity),
        activities=_activities(relevant, currencies),
        currency=min(currencies) if len(currencies) == 1 else None,
        currencies=tuple(sorted(currencies)),
    )


def _doc_spec(spec: etree._Element | None) -> tuple[str, str | None, str]:
    """The ``DocRefId``, ``CorrDocRefId`` and kind of a ``DocSpec`` (the first element of each
    name, its text); a record without a DocRefId or a known DocTypeIndic is an error."""
    doc_ref_id = corr = None
    indic = ""
    seen_id = seen_indic = seen_corr = False
    if spec is not None:
        for c in spec:
            name = _LOCAL.get(c.tag) or _local(c)
            if name == "DocRefId":
                if not seen_id:
                    doc_ref_id, seen_id = c.text, True
            elif name == "DocTypeIndic":
                if not seen_indic:
                    indic, seen_indic = c.text or "", True
            elif name == "CorrDocRefId" and not seen_corr:
                corr, seen_corr = c.text, True
    if not doc_ref_id or indic[-1:] not in KINDS:
        raise ValueError("a ReportableSeller without its DocSpec")
    return doc_ref_id, corr, KINDS[indic[-1]]


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
            name_elem = _child(elem, "Name")
            operator_name = (name_elem.text if name_elem is not None else None) or ""
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
