"""The ledger's content of a seller's record, built field by field (``records.seller_content``):
the same data as the generic walk of the record it replaced, hence the same canonical JSON, hash
and ledger row."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import date
from typing import Any

import pytest

from reporting.ledger.model import canonical_json, content_hash
from reporting.records import (
    ActivityFigures,
    FinancialAccount,
    PostalAddress,
    SellerRecord,
    Tin,
    _plain,
    seller_content,
    seller_from_content,
)


def walked(s: SellerRecord) -> dict[str, Any]:
    """The content as it was made before: the generic walk, the birth date as ISO text."""
    content: dict[str, Any] = _plain(s)
    content["birth_date"] = s.birth_date.isoformat() if s.birth_date else None
    return content


HOME = PostalAddress("DE", "Berlin", "Unter den Linden", "1", "10117")
FLAT = PostalAddress("FR", "Paris", None, None, None, free_text="12 rue de Rivoli")

INDIVIDUAL = SellerRecord(
    seller_id="S-1",
    seller_type="individual",
    res_countries=("DE", "AT"),
    tins=(Tin("12345678901", "DE"), Tin("AT-9", "AT")),
    address=HOME,
    activities=(
        ActivityFigures(
            "property",
            "EUR",
            (1, 0, 250, 3),
            (1, 0, 2, 1),
            (0, 0, 10, 0),
            (0, 0, 0, 0),
            "L-7",
            FLAT,
            "LR-1, LR-2",
            "DPI910",
            "a houseboat",
            181,
        ),
        ActivityFigures("goods", "EUR", (100, 200, 0, 0), (2, 3, 0, 0), (5, 6, 0, 0), (1, 1, 0, 0)),
    ),
    first_name="Zoë",
    last_name="O'Brien & Söhne <x>",
    birth_date=date(1900, 1, 1),
    birth_city="Wien",
    birth_country="AT",
    vat="DE123456789",
    accounts=(FinancialAccount("DE89370400440532013000", "Zoë O'Brien", True), FinancialAccount("acc-2")),
)
ENTITY = SellerRecord(
    seller_id="S-2",
    seller_type="entity",
    res_countries=("NL",),
    tins=(),
    address=PostalAddress("NL", None),
    activities=(),
    legal_name="Dutch B.V.",
    brn="KVK-1",
    permanent_establishments=("BE", "LU"),
    pe_addresses=(PostalAddress("BE", "Brussel", "Wetstraat", "16", "1000"), PostalAddress("LU", None)),
)


@pytest.mark.parametrize("record", [INDIVIDUAL, ENTITY], ids=["individual, every field", "entity, empty lists"])
def test_the_content_is_the_walks_with_the_same_text_and_hash(record: SellerRecord) -> None:
    content = seller_content(record)
    assert content == walked(record)
    assert canonical_json(content) == canonical_json(walked(record))
    assert content_hash(content) == content_hash(walked(record))
    assert seller_from_content(content) == record


def test_the_content_names_every_field_of_every_record_type() -> None:
    """A field added to a record type must be added to its content too (else its hash would
    silently leave it out)."""

    def names(value: Any) -> set[str]:
        out: set[str] = set()
        if is_dataclass(value):
            for f in fields(value):
                out.add(f"{type(value).__name__}.{f.name}")
                out |= names(getattr(value, f.name))
        elif isinstance(value, tuple):
            for v in value:
                out |= names(v)
        return out

    def keys(content: Any, of: Any) -> set[str]:
        out: set[str] = set()
        if is_dataclass(of):
            assert set(content) == {f.name for f in fields(of)}
            for f in fields(of):
                out.add(f"{type(of).__name__}.{f.name}")
                out |= keys(content[f.name], getattr(of, f.name))
        elif isinstance(of, tuple):
            for c, v in zip(content, of, strict=True):
                out |= keys(c, v)
        return out

    assert keys(seller_content(INDIVIDUAL), INDIVIDUAL) == names(INDIVIDUAL)
    assert keys(seller_content(ENTITY), ENTITY) == names(ENTITY)
