"""The business records that a renderer turns into XML, independent of any schema edition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class PostalAddress:
    country: str
    city: str | None
    street: str | None = None
    building: str | None = None
    post_code: str | None = None
    free_text: str | None = None  # only where the source has nothing but a free text


@dataclass(frozen=True, slots=True)
class Tin:
    value: str
    issued_by: str


@dataclass(frozen=True, slots=True)
class FinancialAccount:
    identifier: str
    holder_name: str | None = None
    is_iban: bool = False


@dataclass(frozen=True, slots=True)
class ActivityFigures:
    """Whole-unit quarterly figures of one activity type, or of one Property Listing."""

    activity: str
    currency: str
    consideration: tuple[int, int, int, int]
    activities: tuple[int, int, int, int]
    fees: tuple[int, int, int, int]
    taxes: tuple[int, int, int, int]
    listing_id: str = ""
    address: PostalAddress | None = None
    land_registration_number: str | None = None
    property_type: str | None = None
    other_property_type: str | None = None
    rented_days: int = 0


@dataclass(frozen=True, slots=True)
class SellerRecord:
    seller_id: str
    seller_type: str  # individual | entity
    res_countries: tuple[str, ...]
    tins: tuple[Tin, ...]
    address: PostalAddress
    activities: tuple[ActivityFigures, ...]
    first_name: str | None = None
    last_name: str | None = None
    legal_name: str | None = None
    birth_date: date | None = None
    birth_city: str | None = None
    birth_country: str | None = None
    vat: str | None = None
    brn: str | None = None
    accounts: tuple[FinancialAccount, ...] = ()
    permanent_establishments: tuple[str, ...] = ()  # EU member states
    pe_addresses: tuple[PostalAddress, ...] = ()  # their addresses, where the source has them


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    name: str
    tin: str
    tin_issued_by: str
    address: PostalAddress
    nexus: str
    res_country: str
    vat: str | None = None
    platform_business_name: str | None = None
    assumed_reporting: bool = False


@dataclass(frozen=True, slots=True)
class OtherOperatorRecord:
    """An ``AssumedPlatformOperator`` or the ``AssumingPlatformOperator`` of a message
    (``OtherPlatformOperators``): a correctable record of its own, with a DocSpec.

    ``role`` is :data:`~reporting.vocabulary.ASSUMED` or :data:`~reporting.vocabulary.ASSUMING`;
    ``key`` is its key in the filing ledger: the role and :attr:`reporting.config.OtherOperator.key`
    (``assumed:FR-aeb7f408080c6eaa``)."""

    role: str
    key: str
    name: str
    tin: str
    tin_issued_by: str
    res_country: str
    address: PostalAddress


@dataclass(frozen=True, slots=True)
class MessageHeader:
    transmitting_country: str
    receiving_country: str
    message_ref_id: str
    message_type_indic: str  # DPI401 | DPI402 | DPI403
    reporting_period: date
    timestamp: datetime  # wall-clock time as the authority wants it (EU: CET), naive
    environment: str = "test"  # test | prod
    identifiers: Mapping[str, str] = field(default_factory=dict)  # [authorities.XX] of the config
    transfer_id: str = ""  # a unique id of this delivery, for envelopes that carry one


# --------------------------------------------------------------------------- ledger content
# What the filing ledger keeps of a record: JSON data (dates as ISO text), from which the record
# is rebuilt to render a later deletion of exactly what was sent.


def _address(d: Mapping[str, Any] | None) -> PostalAddress | None:
    return None if d is None else PostalAddress(**d)


#: Values that :func:`_plain` keeps as they are, recognised without a call (most fields of a record).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """What :func:`dataclasses.asdict` makes of a record (dataclasses to dicts in field order,
    tuples kept), without its deep copies: the values are immutable, and this runs once per
    seller and authority. A scalar field is taken as it is, without a call of its own (a seller
    has some 70 fields in all, a few of them records or tuples)."""
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return {name: v if type(v := getattr(value, name)) in _SCALARS else _plain(v) for name in fields}
    if isinstance(value, tuple):
        return tuple([v if type(v) in _SCALARS else _plain(v) for v in value])
    return value


def operator_content(op: OperatorRecord) -> dict[str, Any]:
    content: dict[str, Any] = _plain(op)
    return content


def other_operator_content(o: OtherOperatorRecord) -> dict[str, Any]:
    content: dict[str, Any] = _plain(o)
    return content


def other_operator_from_content(d: Mapping[str, Any]) -> OtherOperatorRecord:
    """The record of :func:`other_operator_content`."""
    return OtherOperatorRecord(**{**d, "address": PostalAddress(**d["address"])})


def _address_content(a: PostalAddress) -> dict[str, Any]:
    return {
        "country": a.country,
        "city": a.city,
        "street": a.street,
        "building": a.building,
        "post_code": a.post_code,
        "free_text": a.free_text,
    }


def seller_content(s: SellerRecord) -> dict[str, Any]:
    """The ledger's content of a seller's record: what :func:`_plain` makes of it (the birth date
    as ISO text), field by field without its generic walk (once per seller and authority of a
    render; ``tests/unit/test_records_content.py`` proves it equal to the walk, every field set)."""
    return {
        "seller_id": s.seller_id,
        "seller_type": s.seller_type,
        "res_countries": s.res_countries,
        "tins": tuple([{"value": t.value, "issued_by": t.issued_by} for t in s.tins]),
        "address": _address_content(s.address),
        "activities": tuple(
            [
                {
                    "activity": a.activity,
                    "currency": a.currency,
                    "consideration": a.consideration,
                    "activities": a.activities,
                    "fees": a.fees,
                    "taxes": a.taxes,
                    "listing_id": a.listing_id,
                    "address": None if a.address is None else _address_content(a.address),
                    "land_registration_number": a.land_registration_number,
                    "property_type": a.property_type,
                    "other_property_type": a.other_property_type,
                    "rented_days": a.rented_days,
                }
                for a in s.activities
            ]
        ),
        "first_name": s.first_name,
        "last_name": s.last_name,
        "legal_name": s.legal_name,
        "birth_date": s.birth_date.isoformat() if s.birth_date else None,
        "birth_city": s.birth_city,
        "birth_country": s.birth_country,
        "vat": s.vat,
        "brn": s.brn,
        "accounts": tuple(
            [{"identifier": a.identifier, "holder_name": a.holder_name, "is_iban": a.is_iban} for a in s.accounts]
        ),
        "permanent_establishments": s.permanent_establishments,
        "pe_addresses": tuple([_address_content(a) for a in s.pe_addresses]),
    }


def seller_from_content(d: Mapping[str, Any]) -> SellerRecord:
    """The record of :func:`seller_content` (``seller_from_content(seller_content(s)) == s``)."""
    return SellerRecord(
        seller_id=d["seller_id"],
        seller_type=d["seller_type"],
        res_countries=tuple(d["res_countries"]),
        tins=tuple(Tin(**t) for t in d["tins"]),
        address=PostalAddress(**d["address"]),
        activities=tuple(
            ActivityFigures(
                **{
                    **a,
                    "consideration": tuple(a["consideration"]),
                    "activities": tuple(a["activities"]),
                    "fees": tuple(a["fees"]),
                    "taxes": tuple(a["taxes"]),
                    "address": _address(a["address"]),
                }
            )
            for a in d["activities"]
        ),
        first_name=d["first_name"],
        last_name=d["last_name"],
        legal_name=d["legal_name"],
        birth_date=date.fromisoformat(d["birth_date"]) if d["birth_date"] else None,
        birth_city=d["birth_city"],
        birth_country=d["birth_country"],
        vat=d["vat"],
        brn=d["brn"],
        accounts=tuple(FinancialAccount(**a) for a in d["accounts"]),
        permanent_establishments=tuple(d["permanent_establishments"]),
        pe_addresses=tuple(PostalAddress(**a) for a in d["pe_addresses"]),
    )
