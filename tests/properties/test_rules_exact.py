"""The integer fast paths of the rules give exactly the figures of plain Fraction arithmetic.

:func:`reporting.rules._report` sums each quarter's minor units as integers when the blocks are
in one currency that is not converted (or EUR), and rounds with
:func:`reporting.money.round_half_up_ratio`; otherwise it converts each (currency, rate) sum as a
Fraction. The reference below is the straightforward computation (every block converted as a
Fraction, summed, then rounded), as the rules computed before the fast paths.
"""

from __future__ import annotations

import os
from datetime import date
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.money import minor_to_units, round_half_up, round_half_up_ratio, to_fraction
from reporting.rules import ActivityReport, Block, Rate, _report, exact_sum

EXAMPLES = int(os.environ.get("DAC7_FUZZ_EXAMPLES", "300"))
PROVE = settings(max_examples=EXAMPLES, deadline=None)

RATES = {
    "USD": Rate("USD", date(2025, 12, 31), Fraction("1.0389")),
    "JPY": Rate("JPY", date(2025, 12, 31), Fraction("161.73")),
    "KWD": Rate("KWD", date(2025, 12, 31), Fraction("0.3197")),
    "SEK": Rate("SEK", date(2025, 12, 31), Fraction("11.459")),
}
CURRENCIES = ["EUR", *RATES]


@st.composite
def blocks(draw: st.DrawFn, currencies: list[str]) -> list[Block]:
    out = []
    for _ in range(draw(st.integers(1, 8))):
        currency = draw(st.sampled_from(currencies))
        own_rate = draw(st.one_of(st.none(), st.sampled_from(["0.97", "1.2345", "150.5", "0.3001", "7"])))
        out.append(
            Block(
                activity="sale_of_goods",
                listing_id="",
                currency=currency,
                quarter=draw(st.sampled_from([1, 2, 3, 4, 1, 2, 3, 4, 0, 5])),
                amount_minor=draw(st.integers(-(10**9), 10**9)),
                fee_minor=draw(st.integers(-(10**6), 10**6)),
                tax_minor=draw(st.integers(-(10**6), 10**6)),
                activities=draw(st.integers(-3, 50)),
                rented_days=draw(st.integers(0, 400)),
                rate_date=None if own_rate is None else date(2025, 6, 30),
                units_per_eur=own_rate,
            )
        )
    return out


def _reference_sum(bs: list[Block], attr: str, convert: bool) -> Fraction:
    total = Fraction(0)
    for b in bs:
        units = minor_to_units(getattr(b, attr), b.currency)
        if convert and b.currency != "EUR":
            units /= to_fraction(b.units_per_eur) if b.units_per_eur is not None else RATES[b.currency].units_per_eur
        total += units
    return total


def _reference_report(bs: list[Block], convert: bool) -> ActivityReport:
    cons, fees, taxes, counts = [], [], [], []
    for q in (1, 2, 3, 4):
        qb = [b for b in bs if b.quarter == q]
        cons.append(_reference_sum(qb, "amount_minor", convert))
        fees.append(round_half_up(_reference_sum(qb, "fee_minor", convert)))
        taxes.append(round_half_up(_reference_sum(qb, "tax_minor", convert)))
        counts.append(sum(b.activities for b in qb))
    return ActivityReport(
        activity="sale_of_goods",
        listing_id="",
        currency="EUR" if convert else bs[0].currency,
        consideration=tuple(round_half_up(c) for c in cons),  # type: ignore[arg-type]
        activities=tuple(counts),  # type: ignore[arg-type]
        fees=tuple(fees),  # type: ignore[arg-type]
        taxes=tuple(taxes),  # type: ignore[arg-type]
        rented_days=sum(b.rented_days for b in bs),
        exact_consideration=tuple(cons),  # type: ignore[arg-type]
    )


@PROVE
@given(st.sampled_from(CURRENCIES).flatmap(lambda c: blocks([c])), st.booleans())
def test_one_currency_is_summed_as_integers_exactly(bs: list[Block], convert: bool) -> None:
    got = _report(("sale_of_goods", ""), bs, convert, RATES)
    assert got == _reference_report(bs, convert)
    assert [str(c) for c in got.exact_consideration] == [
        str(c) for c in _reference_report(bs, convert).exact_consideration
    ]


@PROVE
@given(blocks(CURRENCIES))
def test_several_currencies_are_converted_exactly(bs: list[Block]) -> None:
    assert _report(("sale_of_goods", ""), bs, True, RATES) == _reference_report(bs, True)


@PROVE
@given(blocks(CURRENCIES), st.sampled_from(["amount_minor", "fee_minor", "tax_minor"]), st.booleans())
def test_exact_sum(bs: list[Block], attr: str, convert: bool) -> None:
    if not convert and len({b.currency for b in bs}) > 1:
        convert = True  # unconverted sums are of one currency only
    assert exact_sum(bs, attr, RATES, convert) == _reference_sum(bs, attr, convert)


@PROVE
@given(st.integers(-(10**30), 10**30), st.integers(1, 10**12))
def test_round_half_up_ratio_is_round_half_up_of_the_fraction(numerator: int, denominator: int) -> None:
    assert round_half_up_ratio(numerator, denominator) == round_half_up(Fraction(numerator, denominator))
    # not in lowest terms: the same value, the same rounding
    assert round_half_up_ratio(numerator * 6, denominator * 6) == round_half_up(Fraction(numerator, denominator))


def test_halves_round_away_from_zero() -> None:
    assert [round_half_up_ratio(n, 2) for n in (-5, -3, -1, 1, 3, 5)] == [-3, -2, -1, 1, 2, 3]
    assert round_half_up_ratio(-149, 100) == -1 and round_half_up_ratio(150, 100) == 2
