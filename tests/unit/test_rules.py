"""Hand-computed cases of the DAC7 rules (reporting.rules.decide), one rule per test."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from reporting import vocabulary
from reporting.explanation import explanation
from reporting.rules import Block, Rate, RuleContext, SellerFacts, decide

RATES = {
    "PLN": Rate("PLN", date(2025, 12, 31), Fraction("4.2500")),
    "SEK": Rate("SEK", date(2025, 12, 31), Fraction("11.0000")),
}


def ctx(**kw: object) -> RuleContext:
    base: dict[str, object] = {
        "year": 2025,
        "routing": "jurisdiction",
        "reporting_currency": "original",
        "operator_country": "LT",
        "rates": RATES,
    }
    base.update(kw)
    return RuleContext(**base)  # type: ignore[arg-type]


def goods(count: int, amount_minor: int, currency: str = "EUR", quarter: int = 2) -> Block:
    return Block("sale_of_goods", "", currency, quarter, amount_minor, 0, 0, count)


def seller(*blocks: Block, **kw: object) -> SellerFacts:
    base: dict[str, object] = {
        "seller_id": "S1",
        "seller_type": "individual",
        "residence_country": "LT",
        "tin_issuers": ("LT",),
    }
    base.update(kw)
    return SellerFacts(blocks=tuple(blocks), **base)  # type: ignore[arg-type]


# --- de minimis: fewer than 30 sales AND at most EUR 2,000.00 -----------------------------


@pytest.mark.parametrize(
    ("count", "amount_minor", "expected"),
    [
        (29, 100_00, vocabulary.EXCLUDED_DE_MINIMIS),  # 29 sales, EUR 100: both tests met
        (30, 100_00, vocabulary.REPORTED),  # 30 sales: the count test fails
        (31, 100_00, vocabulary.REPORTED),
        (29, 2000_00, vocabulary.EXCLUDED_DE_MINIMIS),  # exactly EUR 2,000.00 "did not exceed"
        (29, 2000_01, vocabulary.REPORTED),  # EUR 2,000.01 exceeds
        (1, 2000_01, vocabulary.REPORTED),
        (30, 2000_00, vocabulary.REPORTED),
    ],
)
def test_de_minimis_boundaries(count: int, amount_minor: int, expected: str) -> None:
    assert decide(seller(goods(count, amount_minor)), ctx()).decision == expected


def test_de_minimis_converts_at_the_year_end_rate() -> None:
    # 8,500.00 PLN / 4.25 = EUR 2,000.00 exactly -> excluded; 8,500.01 PLN -> EUR 2,000.0024 -> reported
    assert decide(seller(goods(10, 8500_00, "PLN")), ctx()).decision == vocabulary.EXCLUDED_DE_MINIMIS
    d = decide(seller(goods(10, 8500_01, "PLN")), ctx())
    assert d.decision == vocabulary.REPORTED
    assert d.goods_eur == Fraction(850001, 100) / Fraction("4.25")


def test_de_minimis_sums_currencies_in_eur() -> None:
    # EUR 1,000.00 + 4,250.00 PLN (= EUR 1,000.00) = EUR 2,000.00 -> excluded; one more cent -> reported
    assert decide(seller(goods(5, 1000_00), goods(5, 4250_00, "PLN")), ctx()).decision == vocabulary.EXCLUDED_DE_MINIMIS
    assert decide(seller(goods(5, 1000_01), goods(5, 4250_00, "PLN")), ctx()).decision == vocabulary.REPORTED


def test_de_minimis_does_not_cover_a_seller_with_another_activity() -> None:
    service = Block("personal_services", "", "EUR", 1, 10_00, 0, 0, 1)
    d = decide(seller(goods(1, 5_00), service), ctx())
    assert d.decision == vocabulary.REPORTED
    assert [r.activity for r in d.reports] == ["personal_services", "sale_of_goods"]


def test_fully_refunded_other_activity_does_not_block_de_minimis() -> None:
    # The service was fully refunded: consideration 0 and count 0 -> the block is omitted.
    refunded_service = Block("personal_services", "", "EUR", 1, 0, 0, 0, 0)
    assert decide(seller(goods(3, 50_00), refunded_service), ctx()).decision == vocabulary.EXCLUDED_DE_MINIMIS


# --- excluded sellers ---------------------------------------------------------------------


def test_governmental_and_listed_entities_are_excluded() -> None:
    big = goods(500, 1_000_000_00)
    assert (
        decide(seller(big, seller_type="entity", is_governmental=True), ctx()).decision
        == vocabulary.EXCLUDED_GOVERNMENTAL
    )
    assert decide(seller(big, seller_type="entity", is_listed=True), ctx()).decision == vocabulary.EXCLUDED_LISTED


def test_entity_listing_with_more_than_2000_rentals_is_excluded_alone() -> None:
    busy = Block("immovable_property", "L1", "EUR", 1, 500_000_00, 0, 0, 2001, 2001, "LT")
    edge = Block("immovable_property", "L2", "EUR", 1, 400_000_00, 0, 0, 2000, 2000, "LT")
    d = decide(seller(busy, edge, seller_type="entity"), ctx())
    assert d.decision == vocabulary.REPORTED
    assert d.excluded_listings == ("L1",)
    assert [r.listing_id for r in d.reports] == ["L2"]  # exactly 2,000 is not "more than"
    only_busy = decide(seller(busy, seller_type="entity"), ctx())
    assert only_busy.decision == vocabulary.EXCLUDED_LISTING
    individual = decide(seller(busy), ctx())  # the exclusion is for entities only
    assert individual.decision == vocabulary.REPORTED


def test_no_activity_after_refunds() -> None:
    assert decide(seller(goods(0, 0)), ctx()).decision == vocabulary.NOT_REPORTABLE_NO_ACTIVITY


# --- residence and routing ----------------------------------------------------------------


def test_non_eu_seller_without_eu_property_is_not_reportable() -> None:
    assert (
        decide(seller(goods(100, 10_000_00), residence_country="US", tin_issuers=("US",)), ctx()).decision
        == vocabulary.NOT_REPORTABLE_NON_EU
    )


def test_non_eu_seller_is_reported_for_eu_property_only() -> None:
    flat = Block("immovable_property", "L1", "EUR", 3, 900_00, 90_00, 0, 3, 9, "ES")
    d = decide(seller(goods(100, 10_000_00), flat, residence_country="US", tin_issuers=()), ctx())
    assert d.decision == vocabulary.REPORTED
    assert d.authorities == ("ES",)
    assert [r.activity for r in d.reports] == ["immovable_property"]


def test_jurisdiction_routing_residence_tin_pe_and_property() -> None:
    flat = Block("immovable_property", "L1", "EUR", 3, 900_00, 0, 0, 3, 9, "FR")
    d = decide(
        seller(
            goods(100, 10_000_00),
            flat,
            seller_type="entity",
            residence_country="DE",
            tin_issuers=("DE", "PL", "US"),
            pe_countries=("AT", "CH"),
        ),
        ctx(),
    )
    assert dict(d.residence) == {
        "DE": "primary address",
        "PL": "TIN issued by PL",
        "AT": "permanent establishment in AT",
    }
    assert d.authorities == ("AT", "DE", "FR", "PL")
    assert d.routes == (
        ("AT", "resident: permanent establishment in AT"),
        ("DE", "resident: primary address"),
        ("FR", "property in FR"),
        ("PL", "resident: TIN issued by PL"),
    )
    assert "FR (property in FR)" in explanation(d)


def test_nexus_routing_sends_everything_to_the_operator_state() -> None:
    d = decide(seller(goods(100, 10_000_00), residence_country="DE", tin_issuers=("DE",)), ctx(routing="nexus"))
    assert d.authorities == ("LT",)


# --- currency and rounding ----------------------------------------------------------------


def test_original_currency_when_paid_in_one_currency() -> None:
    d = decide(seller(goods(40, 12_345_50, "PLN")), ctx())
    assert d.currency == "PLN" and not d.converted
    # 12,345.50 PLN rounds half up to 12,346
    assert d.reports[0].consideration == (0, 12346, 0, 0)


def test_several_currencies_convert_to_eur_once_per_figure() -> None:
    # Q2: EUR 100.00 + 42.50 PLN (= EUR 10.00) = EUR 110.00; Q3: 11.00 SEK = EUR 1.00, + EUR 0.49 -> 1.49 -> 1
    d = decide(
        seller(goods(20, 100_00), goods(20, 42_50, "PLN"), goods(1, 11_00, "SEK", quarter=3), goods(1, 49, quarter=3)),
        ctx(),
    )
    assert d.currency == "EUR" and d.converted
    assert {r.currency for r in d.rates} == {"PLN", "SEK"}
    assert d.reports[0].consideration == (0, 110, 1, 0)
    assert d.reports[0].activities == (0, 40, 2, 0)


def test_reporting_currency_eur_converts_everything() -> None:
    d = decide(seller(goods(40, 4250_00, "PLN")), ctx(reporting_currency="EUR"))
    assert d.currency == "EUR" and d.reports[0].consideration == (0, 1000, 0, 0)


@pytest.mark.parametrize(("minor", "whole"), [(249, 2), (250, 3), (251, 3), (0, 0), (49, 0), (50, 1)])
def test_half_up_rounding_of_a_reported_figure(minor: int, whole: int) -> None:
    d = decide(seller(goods(40, minor)), ctx())
    assert d.reports[0].consideration[1] == whole


def test_rented_days_out_of_schema_range_is_an_error_for_the_seller() -> None:
    flat = Block("immovable_property", "L1", "EUR", 3, 900_00, 0, 0, 3, 10_000, "LT")
    d = decide(seller(flat), ctx())
    assert [f.rule for f in d.findings] == ["listing.rented_days_out_of_range"]
    assert d.findings[0].key == "L1"


def test_a_seller_whose_only_eu_link_is_a_tin_is_resident_there() -> None:
    # Primary address in the US; a TIN issued by DE makes the seller resident in DE too (DAC7 only).
    d = decide(seller(goods(40, 5_000_00), residence_country="US", tin_issuers=("DE", "US")), ctx())
    assert d.decision == vocabulary.REPORTED
    assert d.residence == (("US", "primary address"), ("DE", "TIN issued by DE"))
    assert d.authorities == ("DE",)


def test_an_individual_permanent_establishment_adds_no_residence() -> None:
    d = decide(seller(goods(40, 5_000_00), residence_country="LT", pe_countries=("PL",)), ctx())
    assert d.authorities == ("LT",)


def test_the_explanation_names_what_a_non_eu_seller_does_not_report() -> None:
    flat = Block("immovable_property", "L1", "EUR", 3, 900_00, 90_00, 0, 3, 9, "ES")
    d = decide(seller(goods(100, 10_000_00), flat, residence_country="US", tin_issuers=()), ctx())
    assert d.not_reported_non_eu == ("sale_of_goods",)
    assert "only property located in the EU is reported, not sale_of_goods" in explanation(d)
