"""The OECD Model Rules as the UK transposed them (reporting.jurisdictions.UNITED_KINGDOM), each
difference from DAC7 decided by hand for a seller in the same situation under both rule sets:
the same facts, a DAC7 filing (in LT) and a UK filing (in GB).

Sources (the module reporting.jurisdictions cites each): residence IEIM902520, the property
listing IEIM904230, the reportable jurisdictions IEIM901820 / IEIM906000 and SI 2023/817 reg. 2(1),
the scope and the excluded sellers IEIM901630, the financial identifier IEIM901820.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fractions import Fraction

import pytest

from reporting import vocabulary
from reporting.explanation import explanation
from reporting.jurisdictions import (
    CORE_SCOPE,
    DAC7,
    EXTENDED_SCOPE,
    MODEL_RULES,
    UNITED_KINGDOM,
    RuleSet,
    partner_jurisdictions,
    rule_set_for,
)
from reporting.rules import Block, Rate, RuleContext, SellerFacts, decide, residence
from reporting.variants import reading_for, reports_financial_identifier
from reporting.vocabulary import GOODS, PROPERTY, SERVICES, TRANSPORT

RATES = {"GBP": Rate("GBP", date(2025, 12, 31), Fraction("0.8500"))}


def dac7() -> RuleContext:
    """A filing in Lithuania under DAC7 (the EU wording)."""
    return RuleContext(2025, "nexus", "original", "LT", RATES, variant=reading_for("LT"))


def uk(year: int = 2025, configured: list[str] | None = None, rule_set: RuleSet = UNITED_KINGDOM) -> RuleContext:
    """A filing in the United Kingdom under its Model Rules, with the partners of ``year``."""
    return RuleContext(
        year,
        "nexus",
        "original",
        "GB",
        RATES,
        variant=reading_for("GB"),
        rule_set=rule_set,
        reportable=rule_set.reportable(year, configured),
    )


def block(activity: str = SERVICES, amount_minor: int = 500_00, count: int = 3, **kw: object) -> Block:
    listing = str(kw.pop("listing_id", "L1" if activity == PROPERTY else ""))
    return Block(activity, listing, str(kw.pop("currency", "GBP")), 2, amount_minor, 0, 0, count, **kw)  # type: ignore[arg-type]


def facts(*blocks: Block, **kw: object) -> SellerFacts:
    base: dict[str, object] = {"seller_id": "S1", "seller_type": "individual", "residence_country": "GB"}
    base.update(kw)
    return SellerFacts(blocks=tuple(blocks) or (block(),), **base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the rule sets as data


def test_the_rule_sets_say_where_they_differ_each_with_its_source() -> None:
    assert rule_set_for("LT") is DAC7 and rule_set_for("DE") is DAC7
    assert rule_set_for("GB") is UNITED_KINGDOM and MODEL_RULES == {"GB": UNITED_KINGDOM}
    assert (DAC7.residence_from_tin, DAC7.residence_from_pe, DAC7.residence_from_gvs) == (True, True, False)
    assert (UNITED_KINGDOM.residence_from_tin, UNITED_KINGDOM.residence_from_pe) == (False, False)
    assert UNITED_KINGDOM.residence_from_gvs and not UNITED_KINGDOM.listing_same_owner and DAC7.listing_same_owner
    assert DAC7.scope == UNITED_KINGDOM.scope == EXTENDED_SCOPE == {GOODS, SERVICES, TRANSPORT, PROPERTY}
    assert {SERVICES, PROPERTY} == CORE_SCOPE
    sources = UNITED_KINGDOM.sources
    for rule, paragraph in (
        ("residence", "ieim902520"),
        ("gvs", "ieim902520"),
        ("listing", "ieim904230"),
        ("reportable", "ieim906000"),
        ("scope", "ieim901540"),
        ("excluded", "ieim901630"),
        ("currency", "ieim901710"),
        ("refunds", "ieim901740"),
        ("financial_identifier", "ieim901820"),
    ):
        assert (
            f"https://www.gov.uk/hmrc-internal-manuals/international-exchange-of-information/{paragraph}"
            in (sources[rule])
        ), rule
    assert "reg. 4(1) and 4(4)" in sources["deadline"]
    assert (
        "SI 2023/817 reg. 2(1) and 2(2)" in sources["scope"] and "Optional Module for sale of goods" in sources["scope"]
    )


def test_the_uk_lists_its_partners_per_reportable_period_with_their_scope() -> None:
    # IEIM901820 (2024): Bulgaria, Canada, Ireland, Latvia, New Zealand (core only), the UK
    r2024 = UNITED_KINGDOM.reportable(2024)
    assert set(r2024.jurisdictions) == {"BG", "CA", "IE", "LV", "NZ", "GB"}
    assert r2024.jurisdictions["NZ"] == CORE_SCOPE and r2024.jurisdictions["IE"] == EXTENDED_SCOPE
    assert "IEIM901820" in r2024.source and not r2024.assumed
    # IEIM906000 (2025): sixteen partners, and the UK itself
    r2025 = UNITED_KINGDOM.reportable(2025)
    assert set(r2025.jurisdictions) == {
        "GB", "BG", "CA", "CO", "HR", "CZ", "IS", "IE", "LV", "LT", "NL", "NZ", "PL", "SK", "SI", "ES", "SE",
    }  # fmt: skip
    assert "FR" not in r2025 and "DE" not in r2025 and "US" not in r2025
    assert r2025.covers("NZ", SERVICES) and not r2025.covers("NZ", GOODS) and not r2025.covers("NZ", TRANSPORT)
    assert "IEIM906000" in r2025.source


def test_a_period_without_a_published_list_takes_the_latest_and_says_so() -> None:
    r2026 = UNITED_KINGDOM.reportable(2026)
    assert r2026.jurisdictions == UNITED_KINGDOM.reportable(2025).jurisdictions
    assert "no list of GB's partner jurisdictions for the 2026 reportable period was found" in r2026.assumed
    assert "[authorities.GB] partner_jurisdictions" in r2026.assumed
    # a period before the first list takes the earliest
    assert UNITED_KINGDOM.reportable(2023).jurisdictions == UNITED_KINGDOM.reportable(2024).jurisdictions


def test_configured_partners_replace_the_published_list() -> None:
    configured = UNITED_KINGDOM.reportable(2026, ["FR", "NZ", "GB"])
    assert set(configured.jurisdictions) == {"GB", "FR", "NZ"}
    # a configured partner keeps the scope of the latest list (2025 for 2026: New Zealand the
    # core scope only, IEIM901820); one no list names (France) takes the UK's whole scope
    assert configured.jurisdictions["NZ"] == CORE_SCOPE and configured.jurisdictions["FR"] == EXTENDED_SCOPE
    assert configured.jurisdictions["GB"] == EXTENDED_SCOPE
    assert not configured.assumed and "partner_jurisdictions" in configured.source
    # none configured: the UK alone
    assert set(UNITED_KINGDOM.reportable(2025, []).jurisdictions) == {"GB"}
    assert partner_jurisdictions({"GB": {"partner_jurisdictions": "FR,NZ"}}, "GB") == ["FR", "NZ"]
    assert partner_jurisdictions({"GB": {"platform_operator_id": "X1"}}, "GB") is None
    assert partner_jurisdictions({}, "GB") is None


def test_dac7_reports_the_residents_of_every_member_state() -> None:
    eu = DAC7.reportable(2025)
    assert len(eu.jurisdictions) == 27 and "GB" not in eu
    assert all(scope == EXTENDED_SCOPE for scope in eu.jurisdictions.values())


# --------------------------------------------------------------------------- residence


def test_a_tin_issued_by_another_state_is_a_residence_under_dac7_only() -> None:
    # resident in the UK by its address, with a TIN issued by Lithuania
    seller = facts(residence_country="GB", tin_issuers=("LT",))
    assert residence(seller, DAC7) == (("GB", "primary address"), ("LT", "TIN issued by LT"))
    assert residence(seller, UNITED_KINGDOM) == (("GB", "primary address"),)
    # DAC7 (a filing in LT): reportable as an LT resident, forwarded to LT
    d = decide(seller, dac7())
    assert d.decision == vocabulary.REPORTED and d.exchange == (("LT", "resident: TIN issued by LT"),)
    # the UK: reportable as a UK resident; Lithuania receives nothing from it
    u = decide(seller, uk())
    assert u.decision == vocabulary.REPORTED
    assert u.exchange == (("GB", "resident: primary address"),) and u.authorities == ("GB",)


def test_a_tin_state_makes_a_seller_reportable_under_dac7_and_not_under_the_model_rules() -> None:
    # resident in the US, with a TIN issued by France: France is a DAC7 residence; not a UK partner either
    seller = facts(residence_country="US", tin_issuers=("FR",))
    assert decide(seller, dac7()).decision == vocabulary.REPORTED
    u = decide(seller, uk())
    assert u.decision == vocabulary.NOT_REPORTABLE_JURISDICTION
    assert u.residence == (("US", "primary address"),)
    assert "resident outside the UK's reportable jurisdictions (US (primary address))" in explanation(u)


def test_a_permanent_establishment_is_a_residence_of_an_entity_under_dac7_only() -> None:
    entity = facts(seller_type="entity", residence_country="US", tin_issuers=(), pe_countries=("IE",))
    assert residence(entity, DAC7) == (("US", "primary address"), ("IE", "permanent establishment in IE"))
    assert residence(entity, UNITED_KINGDOM) == (("US", "primary address"),)
    d = decide(entity, dac7())
    assert d.decision == vocabulary.REPORTED and d.exchange == (("IE", "resident: permanent establishment in IE"),)
    # Ireland is a UK partner, but a permanent establishment is no residence under the Model Rules
    assert decide(entity, uk()).decision == vocabulary.NOT_REPORTABLE_JURISDICTION
    # an individual's permanent establishment counts under neither (DAC7: entities only)
    individual = facts(residence_country="US", pe_countries=("IE",))
    assert residence(individual, DAC7) == residence(individual, UNITED_KINGDOM) == (("US", "primary address"),)


def test_a_government_verification_service_sets_the_residence_under_the_model_rules_only() -> None:
    # primary address in the US; the operator relied on Ireland's verification service (IEIM902520)
    seller = facts(residence_country="US", gvs_jurisdiction="IE", tin_issuers=("US",))
    assert residence(seller, UNITED_KINGDOM) == (("IE", "government verification service"),)
    u = decide(seller, uk())
    assert u.decision == vocabulary.REPORTED and u.exchange == (("IE", "resident: government verification service"),)
    # DAC7 takes no GVS data (EU rule 30030): the primary address decides, and the US is no member state
    assert residence(seller, DAC7) == (("US", "primary address"),)
    assert decide(seller, dac7()).decision == vocabulary.NOT_REPORTABLE_NON_EU


# --------------------------------------------------------------------------- reportable jurisdictions


@pytest.mark.parametrize(
    ("country", "uk_decision", "dac7_decision"),
    [
        ("GB", vocabulary.REPORTED, vocabulary.NOT_REPORTABLE_NON_EU),  # the UK itself
        ("CA", vocabulary.REPORTED, vocabulary.NOT_REPORTABLE_NON_EU),  # a partner outside the EU
        ("IE", vocabulary.REPORTED, vocabulary.REPORTED),  # a partner and a member state
        ("FR", vocabulary.NOT_REPORTABLE_JURISDICTION, vocabulary.REPORTED),  # a member state, not a 2025 partner
        ("US", vocabulary.NOT_REPORTABLE_JURISDICTION, vocabulary.NOT_REPORTABLE_NON_EU),  # neither
    ],
)
def test_a_resident_of_each_kind_of_jurisdiction(country: str, uk_decision: str, dac7_decision: str) -> None:
    seller = facts(residence_country=country, tin_issuers=(country,))
    assert decide(seller, uk()).decision == uk_decision
    assert decide(seller, dac7()).decision == dac7_decision


def test_a_partner_that_takes_the_core_scope_only_receives_no_goods() -> None:
    # a New Zealand resident: its services are reported, its sales of goods and car rentals are not
    seller = facts(
        block(SERVICES, 500_00, 3), block(GOODS, 3000_00, 40), block(TRANSPORT, 800_00, 2), residence_country="NZ"
    )
    u = decide(seller, uk())
    assert u.decision == vocabulary.REPORTED
    assert [r.activity for r in u.reports] == [SERVICES]
    assert u.not_reported_non_eu == (GOODS, TRANSPORT)
    assert "not reported, being outside the scope the UK's reportable jurisdictions receive" in explanation(u)
    # only goods: nothing the jurisdiction takes
    goods_only = decide(facts(block(GOODS, 3000_00, 40), residence_country="NZ"), uk())
    assert goods_only.decision == vocabulary.NOT_REPORTABLE_JURISDICTION
    # a configured list keeps New Zealand's core-only scope: still no goods
    configured = decide(facts(block(GOODS, 3000_00, 40), residence_country="NZ"), uk(configured=["NZ"]))
    assert configured.decision == vocabulary.NOT_REPORTABLE_JURISDICTION


def test_property_located_in_a_reportable_jurisdiction_is_reported_whoever_owns_it() -> None:
    # a US resident renting out a flat in Canada (a UK partner) and one in France (not one)
    seller = facts(
        block(PROPERTY, 900_00, 3, listing_id="L-CA", listing_country="CA"),
        block(PROPERTY, 700_00, 2, listing_id="L-FR", listing_country="FR"),
        residence_country="US",
    )
    u = decide(seller, uk())
    assert u.decision == vocabulary.REPORTED
    assert [r.listing_id for r in u.reports] == ["L-CA"]
    assert u.exchange == (("CA", "property in CA"),)
    assert u.not_reported_non_eu == ("immovable_property (listing L-FR)",)
    d = decide(seller, dac7())
    assert [r.listing_id for r in d.reports] == ["L-FR"] and d.exchange == (("FR", "property in FR"),)


def test_a_core_only_partner_still_receives_its_property() -> None:
    seller = facts(block(PROPERTY, 900_00, 3, listing_country="NZ"), residence_country="US")
    assert decide(seller, uk()).exchange == (("NZ", "property in NZ"),)


def test_a_jurisdiction_that_applies_the_core_scope_reports_no_goods_of_its_own_residents() -> None:
    # the rule set's own scope: a Model Rules jurisdiction without the extended scope
    core_only = replace(UNITED_KINGDOM, code="XX", scope=CORE_SCOPE, area="XX's reportable jurisdictions")
    seller = facts(block(GOODS, 3000_00, 40), block(SERVICES, 100_00, 1), residence_country="XX")
    d = decide(seller, uk(configured=[], rule_set=core_only))
    assert [r.activity for r in d.reports] == [SERVICES] and d.not_reported_non_eu == (GOODS,)


# --------------------------------------------------------------------------- what both share


@pytest.mark.parametrize(
    ("count", "amount_minor", "expected"),
    [
        (29, 2000_00, vocabulary.EXCLUDED_DE_MINIMIS),  # IEIM901630: both tests met, EUR 2,000 not exceeded
        (29, 2000_01, vocabulary.REPORTED),
        (30, 100_00, vocabulary.REPORTED),
    ],
)
def test_the_goods_de_minimis_is_the_same_in_both(count: int, amount_minor: int, expected: str) -> None:
    seller = facts(block(GOODS, amount_minor, count, currency="EUR"), residence_country="IE", tin_issuers=("IE",))
    assert decide(seller, uk()).decision == decide(seller, dac7()).decision == expected


def test_a_seller_that_also_sells_services_is_not_de_minimis_under_either() -> None:
    # IEIM901630 "solely" sold goods; the EU wording is read the same (reporting.variants)
    seller = facts(block(GOODS, 10_00, 1, currency="EUR"), block(SERVICES, 10_00, 1, currency="EUR"))
    assert decide(seller, uk()).decision == vocabulary.REPORTED


def test_the_excluded_sellers_are_the_same_in_both() -> None:
    for flag, code in (
        ("is_governmental", vocabulary.EXCLUDED_GOVERNMENTAL),
        ("is_listed", vocabulary.EXCLUDED_LISTED),
    ):
        seller = facts(residence_country="IE", tin_issuers=("IE",), **{flag: True})
        assert decide(seller, uk()).decision == decide(seller, dac7()).decision == code
    # an entity's listing with more than 2,000 rentals (IEIM901630)
    hotel = facts(block(PROPERTY, 9_000_00, 2001, listing_country="IE"), seller_type="entity", residence_country="IE")
    assert decide(hotel, uk()).decision == decide(hotel, dac7()).decision == vocabulary.EXCLUDED_LISTING


def test_consideration_is_reported_in_the_currency_paid() -> None:
    # IEIM901710: GBP paid, GBP reported, no conversion
    d = decide(facts(block(SERVICES, 1234_56, 2, currency="GBP")), uk())
    assert (d.currency, d.converted, d.reports[0].consideration) == ("GBP", False, (0, 1235, 0, 0))


def test_the_uk_reading_reports_the_financial_identifier_of_every_seller() -> None:
    # IEIM901820: every jurisdiction on HMRC's list requires it; Germany's DAC7 notice does not apply
    gb = reading_for("GB")
    assert gb.state == "GB" and gb.fai_rule == "model_rules" and not gb.de_minimis_strict
    assert reports_financial_identifier(["DE"], reading=gb)
    assert not reports_financial_identifier(["DE"], reading=reading_for("LT"))
    assert gb.as_dict()["financial_identifier_not_used_by"] == []


def test_the_seller_copy_names_the_uk_and_its_partners_and_is_due_on_31_january() -> None:
    from reporting.deadlines import deadline_for
    from reporting.statements.build import receiving_states, reportable_of

    identity = {"residence_countries": ["CA"]}
    flat = [{"activity": PROPERTY, "property_address": {"country": "NZ"}}]
    # a Canadian resident with a flat in New Zealand, filed in the UK: both receive the record
    assert receiving_states(identity, flat, reportable_of("GB", 2025)) == [
        {"country": "CA", "reason": "residence"},
        {"country": "NZ", "reason": "property"},
    ]
    # the same record filed under DAC7 goes to no member state
    assert receiving_states(identity, flat, reportable_of("LT", 2025)) == []
    # SI 2023/817 reg. 4(1) and 4(4): the report and the seller's copy by 31 January
    for obligation in ("filing", "seller_statement"):
        row = deadline_for("GB", 2025, obligation)
        assert row.due_date(2025) == date(2026, 1, 31) and "2023/817" in row.source and row.certainty == "high"


def test_each_rule_set_names_its_first_period_with_its_source() -> None:
    assert (UNITED_KINGDOM.first_period, DAC7.first_period) == (2024, 2023)
    assert "SI 2023/817 reg. 1" in UNITED_KINGDOM.sources["first_period"]
    assert "Article 2(1)" in DAC7.sources["first_period"]
    assert UNITED_KINGDOM.period_problem(2024, "operator.nexus_country") is None
    assert UNITED_KINGDOM.period_problem(2023, "operator.nexus_country") is not None
    assert DAC7.period_problem(2023, "operator.address.country") is None
    assert DAC7.period_problem(2022, "operator.address.country") is not None
