"""The de minimis test of the daily scope, with the rules' own predicates.

The run decides set-based which sellers are excluded (``sql/due_diligence_scope.sql``). Its one
arithmetic step, whether a goods seller's consideration passes the amount test, is not written
again in SQL: for each currency, :func:`minor_limit` finds the largest amount in the currency's
minor units that :func:`reporting.rules.amount_under_limit` accepts at the screening rate (so the
German "weniger als" and the EU "did not exceed" stay the reading's), and the SQL compares each
single-currency seller's sum with it; a seller paid in several currencies is decided by
:func:`reporting.rules.under_de_minimis` over :func:`reporting.rules.eur_value` (:func:`under_limit`).

The screening rate of a currency is its latest rate on or before the as-of day, or, under a
reading that tests the threshold at the annual average (:attr:`LegalVariant.threshold_rate`),
the average of the year's rates up to that day. The annual filing decides on the year's final
figures with the configured basis (``[reporting] fx_basis``); the daily scope is a screening of
the year so far. A currency without a rate cannot be tested: its sellers are kept in scope.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from fractions import Fraction

from reporting.countries import minor_unit_exponent
from reporting.money import to_fraction
from reporting.rules import DE_MINIMIS_MAX_EUR, Block, Rate, amount_under_limit, eur_value, under_de_minimis
from reporting.variants import LegalVariant
from reporting.vocabulary import GOODS


def screening_rates(rows: Iterable[tuple[str, str, str]], as_of: date, variant: LegalVariant) -> dict[str, Rate]:
    """Per currency, the rate the daily scope tests the EUR 2,000 with (see the module). ``rows``:
    (currency, rate_date, units_per_eur) as text, as the source holds them; a row that does not
    read (a bad date, a rate that is not a positive number) is left out."""
    latest: dict[str, tuple[date, Fraction]] = {}
    year: dict[str, list[Fraction]] = defaultdict(list)
    for currency, day_text, units_text in rows:
        currency = currency.strip().upper()
        try:
            day = date.fromisoformat(day_text.strip()[:10])
            units = to_fraction(units_text.strip())
        except (ValueError, ArithmeticError):
            continue
        if not currency or units <= 0 or day > as_of:
            continue
        if currency not in latest or latest[currency][0] < day:
            latest[currency] = (day, units)
        if day.year == as_of.year:
            year[currency].append(units)
    if variant.threshold_rate == "annual_average":
        return {
            c: Rate(c, as_of, sum(v, Fraction(0)) / len(v), basis=f"average of {len(v)} rates") for c, v in year.items()
        }
    return {c: Rate(c, d, u) for c, (d, u) in latest.items()}


def minor_limit(currency: str, rate: Fraction, variant: LegalVariant) -> int | None:
    """The largest amount in ``currency``'s minor units whose value in EUR at ``rate`` (units per
    EUR) passes the reading's amount test (``-1`` if none does); None for a code that is not a
    payment currency."""
    try:
        divisor = 10 ** minor_unit_exponent(currency)
    except ValueError:
        return None

    def passes(minor: int) -> bool:
        return amount_under_limit(Fraction(minor, divisor) / rate, variant)

    m = int(DE_MINIMIS_MAX_EUR * rate * divisor)  # the exact limit, floored: within one of the answer
    while m >= 0 and not passes(m):
        m -= 1
    while passes(m + 1):
        m += 1
    return m


def limits(rates: dict[str, Rate], variant: LegalVariant) -> list[tuple[str, int]]:
    """(currency, limit in minor units) for the euro and each currency with a screening rate."""
    out = {"EUR": minor_limit("EUR", Fraction(1), variant)}
    for currency, rate in rates.items():
        if currency != "EUR":
            out[currency] = minor_limit(currency, rate.units_per_eur, variant)
    return sorted((c, m) for c, m in out.items() if m is not None)


def under_limit(goods: Iterable[tuple[str, int]], sales: int, rates: dict[str, Rate], variant: LegalVariant) -> bool:
    """Whether a seller with ``sales`` sales of goods, paid ``goods`` ((currency, minor units) per
    currency), is under the de minimis limits (:func:`reporting.rules.under_de_minimis`); False
    where a currency has no rate (the seller stays in scope)."""
    blocks = [Block(GOODS, "", currency, 1, amount, 0, 0, 0) for currency, amount in goods]
    try:
        eur = eur_value(blocks, rates)
    except (KeyError, ValueError):
        return False
    return under_de_minimis(sales, eur, variant)
