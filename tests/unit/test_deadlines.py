"""The deadline table: one per authority profile, as data with a source per row."""

from __future__ import annotations

from datetime import date

import pytest

from reporting import deadlines
from reporting.authorities import EU_GENERIC, NATIONAL
from reporting.deadlines import (
    EU,
    DeadlineTableError,
    days_left,
    deadline_for,
    deadline_table,
    describe_days,
    filing_due,
    parse_table,
    statement_due,
)


def test_every_profile_has_a_filing_deadline_with_a_source() -> None:
    table = deadline_table()
    profiles = {p.code for p in NATIONAL.values()} | {EU_GENERIC.code}
    assert set(table) == profiles == {"EU", "DE", "FR", "GB", "HU", "IT"}
    for code, entry in table.items():
        general = [r for r in entry.rows if r.obligation == "filing" and r.from_year is None]
        assert len(general) == 1, code
        assert all(r.source.strip() and r.certainty in ("high", "medium", "low") for r in entry.rows), code
        assert general[0].due_date(2025) == date(2026, 1, 31), code
        statements = [r for r in entry.rows if r.obligation == "seller_statement"]
        assert [r.due_date(2025) for r in statements] == [date(2026, 1, 31)], code


def test_the_directive_and_the_german_law_are_cited() -> None:
    assert "Article 8ac(2)" in deadline_for(EU, 2025).source
    assert "2021/514" in deadline_for(EU, 2025).source
    assert deadline_for("DE", 2025).source.startswith("Plattformen-Steuertransparenzgesetz (PStTG) § 13(1)")
    assert deadline_for("DE", 2025).certainty == "high"
    assert "PStTG § 22(2)" in deadline_for("DE", 2025, "seller_statement").source
    # where no national text was checked, the row says so
    assert "No Hungarian text was checked" in (deadline_for("HU", 2025).note or "")


def test_a_member_state_without_a_national_profile_uses_the_eu_table() -> None:
    assert deadlines.profile_of("LT") == EU and deadlines.profile_of("DE") == "DE"
    assert filing_due("LT", 2025) == date(2026, 1, 31)
    assert deadline_for("LT", 2025) is deadline_for(EU, 2025)


def test_the_seller_statement_is_due_on_31_january_in_every_profile() -> None:
    """PStTG § 22(2) for DE; Annex V, Section III(A) of the Directive for the others and for the
    member states without a national profile (LT: the EU table)."""
    for country in ("DE", "FR", "HU", "IT", "LT", "EU"):
        assert statement_due(country, 2025) == date(2026, 1, 31), country
        assert statement_due(country, 2023) == date(2024, 1, 31), country
    assert "Annex V, Section III(A)" in deadline_for("LT", 2025, "seller_statement").source


def test_a_one_off_row_wins_for_its_year_only() -> None:
    assert deadline_for("DE", 2023).from_year == 2023 and "1 April 2024" in (deadline_for("DE", 2023).note or "")
    assert deadline_for("DE", 2024).from_year is None
    assert filing_due("DE", 2023) == date(2024, 1, 31)


@pytest.mark.parametrize(
    ("today", "left", "text"),
    [
        (date(2026, 1, 1), 30, "30 days left"),
        (date(2026, 1, 30), 1, "1 day left"),
        (date(2026, 1, 31), 0, "due today"),  # the due day itself is not overdue
        (date(2026, 2, 1), -1, "1 day overdue"),  # the day after is
        (date(2026, 3, 3), -31, "31 days overdue"),
    ],
)
def test_the_31_january_boundary(today: date, left: int, text: str) -> None:
    due = filing_due("FR", 2025)
    assert due == date(2026, 1, 31)
    assert days_left(due, today) == left
    assert describe_days(due, today) == text


def row(**over: object) -> dict[str, object]:
    return {"obligation": "filing", "due": "01-31", "years_after": 1, "source": "a text", "certainty": "high"} | over


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([row(source="")], r"\[\[EU.deadline\]\] row 1: source is missing"),
        ([row(due="31-01")], "due '31-01' is not a day written MM-DD"),
        ([row(obligation="filling")], "obligation 'filling'; expected one of filing, seller_statement"),
        ([row(certainty="sure")], "certainty 'sure'"),
        ([row(sources="x")], "unknown key"),
        ([row(obligation="seller_statement")], r"\[EU\]: no general filing deadline"),
    ],
)
def test_a_malformed_table_is_refused_with_the_row_named(rows: list[dict[str, object]], message: str) -> None:
    with pytest.raises(DeadlineTableError, match=message):
        parse_table({"EU": {"name": "EU", "deadline": rows}})


def test_a_table_without_the_eu_rows_is_refused() -> None:
    with pytest.raises(DeadlineTableError, match=r"no \[EU\] table"):
        parse_table({"DE": {"deadline": [row()]}})


def test_every_member_state_has_a_time_zone_and_the_due_day_ends_at_its_midnight() -> None:
    from datetime import UTC, datetime

    from reporting.countries import EU_MEMBER_STATES
    from reporting.deadlines import local_day, time_zones
    from reporting.jurisdictions import MODEL_RULES

    assert set(time_zones()) == set(EU_MEMBER_STATES) | set(MODEL_RULES)
    assert "time_zones" not in deadline_table()  # not a profile
    assert local_day("DE", datetime(2026, 1, 31, 22, 59, 59, tzinfo=UTC)) == date(2026, 1, 31)
    assert local_day("DE", datetime(2026, 1, 31, 23, 0, 0)) == date(2026, 2, 1)  # naive: UTC
    assert local_day("LT", datetime(2026, 1, 31, 22, 0, 0)) == date(2026, 2, 1)  # EET
    assert local_day("IE", datetime(2026, 1, 31, 23, 59, 59)) == date(2026, 1, 31)
    # London in winter is UTC: 31 January ends at midnight UTC (SI 2023/817 reg. 4(1))
    assert local_day("GB", datetime(2026, 1, 31, 23, 59, 59)) == date(2026, 1, 31)
    assert local_day("GB", datetime(2026, 2, 1, 0, 0, 0)) == date(2026, 2, 1)
    assert local_day("XX", datetime(2026, 1, 31, 23, 59, 59)) == date(2026, 1, 31)  # none known: UTC
