"""Exact money: integer minor units and Fractions until the one rounding to whole units.

Nothing here touches ``float``. Every figure that becomes a whole-unit ``MonAmnt`` passes through
:func:`round_half_up` exactly once (or :func:`round_half_up_ratio`, the same rounding of an exact
ratio of integers, where the rules sum minor units without building Fractions).
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from reporting.countries import minor_unit_exponent


def to_fraction(value: object) -> Fraction:
    """An exact rational from an int, Decimal or decimal text (never from a float)."""
    if isinstance(value, (bool, float)):
        raise TypeError("money and rates are never read through a float")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, Decimal):
        return Fraction(value)
    if isinstance(value, str):
        try:
            return Fraction(Decimal(value.strip()))
        except (InvalidOperation, ValueError):
            raise ValueError(f"{value!r} is not a decimal number") from None
    raise TypeError(f"cannot read {type(value).__name__} as an exact number")


@functools.cache
def minor_divisor(currency: str) -> int:
    """Minor units per whole unit of a currency (EUR: 100), looked up once per currency; raises
    ValueError for a code that is not a payment currency."""
    divisor: int = 10 ** minor_unit_exponent(currency)  # int ** int is typed Any (a negative power is a float)
    return divisor


def minor_to_units(minor: int, currency: str) -> Fraction:
    """Minor units to an exact amount in whole currency units (1234 EUR cents -> 12.34)."""
    return Fraction(minor, minor_divisor(currency))


def to_eur(minor: int, currency: str, units_per_eur: Fraction) -> Fraction:
    """Exact EUR value of an amount in minor units, at a rate in units of the currency per EUR."""
    amount = minor_to_units(minor, currency)
    if currency == "EUR":
        return amount
    if units_per_eur <= 0:
        raise ValueError(f"rate for {currency} must be positive")
    return amount / units_per_eur


def round_half_up(value: Fraction) -> int:
    """Round to a whole unit, halves away from zero (2.5 -> 3, -2.5 -> -3). The one rounding."""
    return round_half_up_ratio(value.numerator, value.denominator)


def round_half_up_ratio(numerator: int, denominator: int) -> int:
    """:func:`round_half_up` of the exact ratio ``numerator / denominator`` (denominator > 0, the
    ratio need not be in lowest terms), without building a Fraction: the rules round hundreds of
    thousands of sums of minor units, and a Fraction normalises (a gcd) on every operation."""
    if denominator <= 0:
        raise ValueError("the denominator of an exact amount must be positive")
    whole, rest = divmod(-numerator if numerator < 0 else numerator, denominator)
    if 2 * rest >= denominator:
        whole += 1
    return -whole if numerator < 0 else whole
