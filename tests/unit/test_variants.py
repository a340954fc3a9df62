"""National readings of the rules (reporting.variants), by hand-computed cases: the filing
state's reading decides every seller, wherever the seller lives."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fractions import Fraction

import pytest
from test_rules import RATES, ctx, goods, seller

from reporting import vocabulary
from reporting.explanation import explanation
from reporting.rules import Block, Rate, decide
from reporting.variants import (
    EU_READING,
    FAI_NOT_USED,
    VARIANTS,
    reading_for,
    reports_financial_identifier,
    variant_of,
)

DE = replace(ctx(operator_country="DE"), variant=reading_for("DE"))
LT = replace(ctx(operator_country="LT"), variant=reading_for("LT"))


def service(amount_minor: int = 500_00, count: int = 1) -> Block:
    return Block("personal_services", "", "EUR", 2, amount_minor, 0, 0, count)


# --- which reading ------------------------------------------------------------------------


def test_the_filing_state_brings_its_reading() -> None:
    de = reading_for("DE")
    assert de.state == "DE" and de.de_minimis_strict and de.goods_part_exclusion and de.checked
    assert de.code == "DE" and de.label.startswith("DE reading (PStTG § 4(5)")


def test_a_state_without_a_reading_of_its_own_gets_the_eu_wording_said_to_be_assumed() -> None:
    lt = reading_for("LT")
    assert lt.state == "" and lt.code == "EU" and not lt.checked and not lt.de_minimis_strict
    assert "assumed for LT" in lt.label and "has not been checked" in lt.label
    fr = reading_for("FR")  # checked: the CGI uses the EU wording
    assert fr.code == "EU" and fr.checked and "CGI art. 1649 ter C" in fr.label
    assert variant_of("EU") == EU_READING and variant_of("") == EU_READING and variant_of("DE") == VARIANTS["DE"]


# --- the German reading ----------------------------------------------------------------------


def test_germany_reads_the_amount_test_strictly() -> None:
    # 29 sales, exactly EUR 2,000.00: "did not exceed" (EU) is met; "weniger als 2 000" (DE) is not.
    s = seller(goods(29, 2000_00), residence_country="DE", tin_issuers=("DE",))
    assert decide(s, LT).decision == vocabulary.EXCLUDED_DE_MINIMIS
    d = decide(s, DE)
    assert d.decision == vocabulary.REPORTED and d.variant == "DE"
    assert "EUR 2,000.00 or more: not de minimis" in explanation(d)
    assert decide(seller(goods(29, 1999_99), residence_country="DE", tin_issuers=("DE",)), DE).decision == (
        vocabulary.EXCLUDED_DE_MINIMIS
    )


def test_germany_exempts_only_the_goods_part_of_a_mixed_seller() -> None:
    # 5 sales of goods, EUR 100.00, and a service: the EU wording reports both; the German one the service.
    s = seller(goods(5, 100_00), service(), residence_country="DE", tin_issuers=("DE",))
    eu, de = decide(s, LT), decide(s, DE)
    assert [r.activity for r in eu.reports] == ["personal_services", "sale_of_goods"]
    assert "read as that of a seller whose only activity is the sale of goods" in explanation(eu)
    assert [r.activity for r in de.reports] == ["personal_services"] and de.goods_part_excluded
    text = explanation(de)
    assert "5 sale(s) of goods worth EUR 100.0000: fewer than 30 sales and less than EUR 2,000.00" in text
    assert "PStTG § 4(5) Nr. 4 and last sentence: exempt for that activity only" in text


def test_ireland_converts_at_the_annual_average_for_the_threshold() -> None:
    # 10 sales, 10,000.00 PLN: at the year-end 4.25, EUR 2,352.94 (reported); at an average of 5, EUR 2,000 (excluded).
    average = {"PLN": Rate("PLN", date(2025, 12, 31), Fraction(5), basis="annual average of 2 rates")}
    ie = replace(ctx(operator_country="IE"), variant=reading_for("IE"), threshold_rates=average)
    s = seller(goods(10, 10_000_00, "PLN"), residence_country="IE", tin_issuers=("IE",))
    assert decide(s, LT).decision == vocabulary.REPORTED
    d = decide(s, ie)
    assert d.decision == vocabulary.EXCLUDED_DE_MINIMIS and d.goods_eur == 2000
    assert "annual average" in explanation(d)


# --- the examples of the law of the filing state -------------------------------------------------


@pytest.mark.parametrize("routing", ["nexus", "jurisdiction"])
def test_a_lithuanian_filing_excludes_a_german_resident_at_exactly_eur_2000(routing: str) -> None:
    # 5 sales totalling exactly EUR 2,000.00: "did not exceed" under the EU wording that LT's filing applies;
    # Germany's stricter reading does not travel with the seller.
    s = seller(goods(5, 2000_00), residence_country="DE", tin_issuers=("DE",))
    d = decide(s, replace(LT, routing=routing))
    assert d.decision == vocabulary.EXCLUDED_DE_MINIMIS and d.authorities == () and d.variant == ""
    assert 'at most EUR 2,000.00 ("did not exceed")' in explanation(d)


def test_a_german_filing_reports_a_polish_resident_at_exactly_eur_2000() -> None:
    s = seller(goods(4, 2000_00), residence_country="PL", tin_issuers=("PL",))
    d = decide(s, replace(DE, routing="nexus"))
    assert d.decision == vocabulary.REPORTED and d.authorities == ("DE",)
    assert d.exchange == (("PL", "resident: primary address"),)
    assert "reported to DE (the filing state (nexus)), which forwards it to PL (resident: primary address)" in (
        explanation(d)
    )


def test_a_german_filing_reports_a_polish_mixed_seller_for_its_services_only() -> None:
    # 10 small sales of goods (EUR 150.00) and 2 services: the goods part is exempt under PStTG § 4(5).
    s = seller(goods(10, 150_00), service(80_00, count=2), residence_country="PL", tin_issuers=("PL",))
    d = decide(s, replace(DE, routing="nexus"))
    assert d.decision == vocabulary.REPORTED and d.goods_part_excluded
    assert [(r.activity, r.activities) for r in d.reports] == [("personal_services", (0, 2, 0, 0))]
    # the same seller in a Lithuanian filing: both activities (the EU exclusion is of goods-only sellers)
    eu = decide(s, replace(LT, routing="nexus"))
    assert [r.activity for r in eu.reports] == ["personal_services", "sale_of_goods"]


def test_a_goods_part_exemption_that_leaves_nothing_is_de_minimis() -> None:
    # an entity whose listing had more than 2,000 rentals (exempt) and 3 sales of goods worth EUR 90.00
    s = seller(
        goods(3, 90_00),
        Block("immovable_property", "L1", "EUR", 1, 500_000_00, 0, 0, 2001, listing_country="DE"),
        seller_type="entity",
        residence_country="DE",
        tin_issuers=("DE",),
    )
    d = decide(s, DE)
    assert d.decision == vocabulary.EXCLUDED_DE_MINIMIS and d.goods_part_excluded and d.excluded_listings == ("L1",)
    assert "de minimis for the sale of goods" in explanation(d) and "no other activity is left" in explanation(d)
    # the EU wording: not a goods-only seller, its goods are reported
    assert [r.activity for r in decide(s, LT).reports] == ["sale_of_goods"]


def test_the_goods_of_a_seller_resident_outside_the_eu_are_not_tested_nor_said_exempt() -> None:
    # resident in the US: 5 sales of goods (never reportable) and a flat in FR (reported)
    s = seller(
        goods(5, 100_00),
        Block("immovable_property", "L1", "EUR", 3, 900_00, 0, 0, 2, listing_country="FR"),
        residence_country="US",
        tin_issuers=("US",),
    )
    for ctx_ in (DE, LT):
        d = decide(s, ctx_)
        assert d.decision == vocabulary.REPORTED and not d.goods_part_excluded and d.goods_eur is None
        assert [r.activity for r in d.reports] == ["immovable_property"]
        text = explanation(d)
        assert "not sale_of_goods" in text and "exempt" not in text and "de minimis" not in text


def test_rates_fixture_is_untouched() -> None:
    assert RATES["PLN"].units_per_eur == Fraction("4.25")


# --- the financial account identifier --------------------------------------------------------


def test_germany_is_known_not_to_use_the_financial_account_identifier() -> None:
    assert "DE" in FAI_NOT_USED and "PStTG § 9(6) Nr. 1" in FAI_NOT_USED["DE"].source


@pytest.mark.parametrize(
    ("residence", "property_states", "receiving", "eu", "de"),
    [
        (("PL",), (), None, True, True),  # a state that did not say so
        (("DE",), (), None, False, False),  # resident in DE only: DE said it will not use it
        (("DE", "FR"), (), None, True, False),  # EU: FR still receives it; DE: a residence state is on the list
        (("PL",), ("DE",), None, True, False),  # DE reading: the state of a reported property counts too
        (("US",), ("FR",), None, True, True),  # no EU residence: no notice applies (literal reading)
        (("US",), ("DE",), None, True, False),
        (("DE", "FR"), (), "FR", True, False),  # preview to FR
        (("DE", "FR"), (), "DE", False, False),  # preview to DE: DE does not receive it
        (("PL",), (), "DE", False, False),  # a preview to DE of a property there (EU reading) leaves it out too
    ],
)
def test_the_financial_account_identifier_follows_the_notices_as_the_filing_state_reads_them(
    residence: tuple[str, ...], property_states: tuple[str, ...], receiving: str | None, eu: bool, de: bool
) -> None:
    assert reports_financial_identifier(residence, receiving, property_states=property_states) is eu
    assert (
        reports_financial_identifier(residence, receiving, property_states=property_states, reading=reading_for("DE"))
        is de
    )
