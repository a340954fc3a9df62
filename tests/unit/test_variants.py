"""National readings of the rules (reporting.variants), by hand-computed cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fractions import Fraction

from test_rules import RATES, ctx, goods, seller

from reporting import rules
from reporting.rules import Block, Rate, decide, decide_everywhere
from reporting.variants import VARIANTS

DE = replace(ctx(), variant=VARIANTS["DE"])


def service(amount_minor: int = 500_00) -> Block:
    return Block("personal_services", "", "EUR", 2, amount_minor, 0, 0, 1)


def test_germany_reads_the_amount_test_strictly() -> None:
    # 29 sales, exactly EUR 2,000.00: "did not exceed" (EU) is met; "weniger als 2 000" (DE) is not.
    s = seller(goods(29, 2000_00), residence_country="DE", tin_issuers=("DE",))
    assert decide(s, ctx()).decision == rules.EXCLUDED_DE_MINIMIS
    assert decide(s, DE).decision == rules.REPORTED
    assert decide(seller(goods(29, 1999_99), residence_country="DE", tin_issuers=("DE",)), DE).decision == (
        rules.EXCLUDED_DE_MINIMIS
    )


def test_germany_excludes_only_the_goods_part_of_a_mixed_seller() -> None:
    # 5 sales of goods, EUR 100.00, and a service: the EU reading reports both; the German one the service only.
    s = seller(goods(5, 100_00), service(), residence_country="DE", tin_issuers=("DE",))
    eu, de = decide(s, ctx()), decide(s, DE)
    assert [r.activity for r in eu.reports] == ["personal_services", "sale_of_goods"]
    assert [r.activity for r in de.reports] == ["personal_services"] and de.goods_part_excluded


def test_ireland_converts_at_the_annual_average_for_the_threshold() -> None:
    # 10 sales, 10,000.00 PLN: at the year-end 4.25, EUR 2,352.94 (reported); at an average of 5, EUR 2,000 (excluded).
    average = {"PLN": Rate("PLN", date(2025, 12, 31), Fraction(5), basis="annual average of 2 rates")}
    ie = replace(ctx(), variant=VARIANTS["IE"], threshold_rates=average)
    s = seller(goods(10, 10_000_00, "PLN"), residence_country="IE", tin_issuers=("IE",))
    assert decide(s, ctx()).decision == rules.REPORTED
    d = decide(s, ie)
    assert d.decision == rules.EXCLUDED_DE_MINIMIS and d.goods_eur == 2000
    assert "annual average" in rules.explanation(d)


def test_each_state_receives_the_seller_as_its_own_law_reads_it() -> None:
    # Resident in PL (primary address) with a TIN issued by DE, 29 sales worth exactly EUR 2,000.00:
    # the EU reading excludes it (PL receives nothing), the German reading reports it to DE.
    s = seller(goods(29, 2000_00), residence_country="PL", tin_issuers=("DE", "PL"))
    final, eu, national = decide_everywhere(s, ctx(), {"DE": DE})
    assert eu.decision == rules.EXCLUDED_DE_MINIMIS
    assert final.decision == rules.REPORTED and final.authorities == ("DE",)
    assert final.variant == "DE"
    # Mixed seller resident in DE and FR: FR receives goods and service, DE the service only.
    m = seller(goods(5, 100_00), service(), residence_country="DE", tin_issuers=("DE", "FR"))
    final, eu, national = decide_everywhere(m, ctx(), {"DE": DE})
    assert final.authorities == ("DE", "FR")
    assert [r.activity for r in national["DE"].reports] == ["personal_services"]
    assert [r.activity for r in eu.reports] == ["personal_services", "sale_of_goods"]


def test_rates_fixture_is_untouched() -> None:
    assert RATES["PLN"].units_per_eur == Fraction("4.25")
