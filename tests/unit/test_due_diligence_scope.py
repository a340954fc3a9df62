"""The de minimis test of the daily scope, with the rules' own predicates: the largest amount of
each currency that passes the reading's amount test, found once per currency, and the screening
rate of each currency as of the day before the run."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from reporting.due_diligence.scope import limits, minor_limit, screening_rates, under_limit
from reporting.rules import Rate, amount_under_limit, under_de_minimis
from reporting.variants import EU_READING, VARIANTS, LegalVariant

GERMANY = VARIANTS["DE"]


@pytest.mark.parametrize(
    ("currency", "rate", "variant", "limit"),
    [
        ("EUR", "1", EU_READING, 200_000),  # EUR 2,000.00 "did not exceed": in
        ("EUR", "1", GERMANY, 199_999),  # "weniger als 2 000 Euro": EUR 1,999.99 the most
        ("USD", "1.25", EU_READING, 250_000),  # USD 2,500.00 is EUR 2,000.00
        ("USD", "1.25", GERMANY, 249_999),
        ("JPY", "161.73", EU_READING, 323_460),  # no minor unit
        ("JPY", "161.73", GERMANY, 323_459),
        ("KWD", "0.3197", EU_READING, 639_400),  # three decimals: KWD 639.400
        ("SEK", "11.459", EU_READING, 2_291_800),
        ("PLN", "4.2735", EU_READING, 854_700),
    ],
)
def test_the_limit_is_the_largest_amount_the_rules_accept(
    currency: str, rate: str, variant: LegalVariant, limit: int
) -> None:
    exponent = {"JPY": 0, "KWD": 3}.get(currency, 2)
    found = minor_limit(currency, Fraction(rate), variant)
    assert found == limit
    units = Fraction(10**exponent)
    assert amount_under_limit(Fraction(found) / units / Fraction(rate), variant)
    assert not amount_under_limit(Fraction(found + 1) / units / Fraction(rate), variant)


def test_a_code_that_is_no_currency_has_no_limit() -> None:
    assert minor_limit("XXX", Fraction(1), EU_READING) is None
    assert limits({"XXX": Rate("XXX", date(2026, 1, 1), Fraction(2))}, EU_READING) == [("EUR", 200_000)]


def test_several_currencies_are_decided_by_the_rules_test() -> None:
    rates = {"USD": Rate("USD", date(2026, 1, 30), Fraction("1.25"))}
    assert under_limit([("EUR", 100_000), ("USD", 125_000)], 3, rates, EU_READING)  # EUR 2,000.00
    assert not under_limit([("EUR", 100_000), ("USD", 125_000)], 3, rates, GERMANY)
    assert not under_limit([("EUR", 100_000), ("USD", 125_001)], 3, rates, EU_READING)
    assert not under_limit([("EUR", 100), ("USD", 100)], 30, rates, EU_READING)  # the 30th sale
    assert not under_limit([("EUR", 100), ("PLN", 100)], 2, rates, EU_READING)  # no rate: kept in scope
    assert under_limit([("EUR", 100)], 29, rates, EU_READING) == under_de_minimis(29, Fraction(1), EU_READING)


def test_the_screening_rate_is_the_latest_by_the_as_of_day_or_the_years_average() -> None:
    rows = [
        ("USD", "2026-01-02", "1.20"),
        ("USD", "2026-02-27", "1.25"),
        ("USD", "2026-03-02", "1.30"),  # after the as-of day: not yet
        ("usd ", "2025-12-31", "1.10"),  # the year before: the latest only if nothing later
        ("PLN", "not a day", "4.3"),  # a row that does not read is left out
        ("PLN", "2026-02-01", "0"),
        ("SEK", "2025-12-30", "11.5"),
    ]
    latest = screening_rates(rows, date(2026, 2, 28), EU_READING)
    assert {c: (r.rate_date, r.units_per_eur) for c, r in latest.items()} == {
        "USD": (date(2026, 2, 27), Fraction("1.25")),
        "SEK": (date(2025, 12, 30), Fraction("11.5")),
    }
    average = screening_rates(rows, date(2026, 2, 28), LegalVariant("IE", threshold_rate="annual_average"))
    assert {c: r.units_per_eur for c, r in average.items()} == {"USD": (Fraction("1.20") + Fraction("1.25")) / 2}
