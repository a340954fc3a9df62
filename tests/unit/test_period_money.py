"""Quarter and year bounds in the configured time zone; exact money."""

from __future__ import annotations

from datetime import date, datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reporting.money import minor_to_units, round_half_up, to_eur, to_fraction
from reporting.period import Period

VILNIUS = Period(2025, "Europe/Vilnius", date(2026, 1, 31))


def test_quarter_starts_are_local_midnights_as_utc_instants() -> None:
    # Europe/Vilnius: EET (UTC+2) in winter, EEST (UTC+3) from the last Sunday of March (30 March 2025)
    # to the last Sunday of October (26 October 2025). The aggregate compares paid_at with these.
    assert VILNIUS.quarter_starts_utc == (
        datetime(2024, 12, 31, 22, 0),
        datetime(2025, 3, 31, 21, 0),
        datetime(2025, 6, 30, 21, 0),
        datetime(2025, 9, 30, 21, 0),
    )
    assert Period(2025, "UTC", date(2026, 1, 31)).quarter_starts_utc[1] == datetime(2025, 4, 1)


def test_year_bounds_in_local_time() -> None:
    # 2025-12-31 22:30 UTC is 2026-01-01 00:30 in Vilnius (UTC+2): outside 2025 (the end is exclusive).
    assert VILNIUS.start_utc == datetime(2024, 12, 31, 22, 0)
    assert VILNIUS.end_utc == datetime(2025, 12, 31, 22, 0)


def test_payments_are_read_up_to_the_year_end_or_the_as_of_day_when_that_comes_first() -> None:
    assert VILNIUS.paid_until_utc == VILNIUS.end_utc == datetime(2025, 12, 31, 22, 0)  # as of 2026-01-31
    q3 = Period(2025, "Europe/Vilnius", date(2025, 9, 30))
    assert q3.paid_until_utc == q3.as_of_end_utc == datetime(2025, 9, 30, 21, 0)  # 00:00 on 1 October (EEST)


def test_refund_cut_off_is_the_end_of_the_local_as_of_day() -> None:
    # refunds before this instant are applied: 23:59:59.999999 local on the as-of day is, 00:00 is not
    assert VILNIUS.as_of_end_utc == datetime(2026, 1, 31, 22, 0)
    summer = Period(2025, "Europe/Vilnius", date(2025, 7, 31))
    assert summer.as_of_end_utc == datetime(2025, 7, 31, 21, 0)


def test_exact_conversion_and_rounding() -> None:
    assert minor_to_units(1234, "EUR") == Fraction(1234, 100)
    assert minor_to_units(1234, "HUF") == Fraction(1234, 100)
    assert minor_to_units(1234, "JPY") == 1234
    assert to_eur(425_00, "PLN", to_fraction("4.25")) == 100
    assert round_half_up(Fraction(5, 2)) == 3 and round_half_up(Fraction(-5, 2)) == -3
    with pytest.raises(TypeError):
        to_fraction(4.25)


@given(st.integers(min_value=0, max_value=10**15))
def test_rounding_happens_once_and_is_within_half(minor: int) -> None:
    exact = minor_to_units(minor, "EUR")
    assert abs(round_half_up(exact) - exact) <= Fraction(1, 2)


@given(st.integers(min_value=0, max_value=10**12), st.decimals(min_value="0.0001", max_value="100000", places=4))
def test_conversion_is_exact(minor: int, rate: object) -> None:
    r = to_fraction(rate)
    assert to_eur(minor, "PLN", r) * r == Fraction(minor, 100)
