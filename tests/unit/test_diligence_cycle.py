"""The due-diligence cycle's rules (reporting.diligence_cycle), on fixed dates computed by hand:
one seller's cycle from the request to the release, the measure's window (day 59, 60, 180, 181
after the request), the 36 months a verification holds, the 31 December deadlines, the refused
reports, and the ``[due_diligence]`` settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from reporting.config import parse_config
from reporting.diligence_cycle import (
    FIRST_MEASURE_DAY,
    LAST_MEASURE_DAY,
    CycleSettings,
    MarkRefused,
    SellerCycle,
    add_months,
    advance,
    due_actions,
    due_diligence_deadline,
    is_pre_existing,
    mark,
    next_action,
    relied_until,
)
from reporting.errors import ConfigError

SETTINGS = CycleSettings()  # withhold_payouts; reminders 14 and 14 days apart; measure from day 61
REQUEST_DAY = date(2026, 3, 2)  # day 0


def day(n: int) -> date:
    return REQUEST_DAY + timedelta(days=n)


def requested(*needs: str) -> SellerCycle:
    """A seller in scope lacking ``needs``, told and asked on the request's day."""
    c = advance(SellerCycle("S1", True, needs=needs), REQUEST_DAY)
    return mark(mark(c, "pre_report_notice", REQUEST_DAY), "request", REQUEST_DAY)


def actions(c: SellerCycle, today: date, settings: CycleSettings = SETTINGS) -> list[tuple[str, date, date]]:
    return [(a.action, a.due_date, a.latest_date) for a in due_actions(advance(c, today), settings, today)]


def test_the_days_after_the_request_are_counted_from_day_0() -> None:
    # March has 31 days: day 29 is 31 March, day 59 is 30 April
    assert (day(59), day(60), day(61)) == (date(2026, 4, 30), date(2026, 5, 1), date(2026, 5, 2))
    assert (day(180), day(181)) == (date(2026, 8, 29), date(2026, 8, 30))


def test_one_sellers_cycle_on_fixed_dates() -> None:
    """Request, two reminders, the measure in its window, the data arriving, the release."""
    c = SellerCycle("S1", in_scope=True, needs=("tin",))
    # the run of 2 March finds the TIN missing: the notice and the request are due today
    c = advance(c, REQUEST_DAY)
    assert [(a.action, a.items_missing) for a in due_actions(c, SETTINGS, REQUEST_DAY)] == [
        ("pre_report_notice", ()),
        ("request", ("tin",)),
    ]
    [notice, request] = due_actions(c, SETTINGS, REQUEST_DAY)
    assert notice.latest_date == date(2026, 12, 31)
    assert (request.due_date, request.latest_date, request.overdue) == (REQUEST_DAY, date(2026, 12, 31), False)
    # the platform sends both that day
    c = mark(mark(c, "pre_report_notice", REQUEST_DAY), "request", REQUEST_DAY)
    assert (c.requested_on, c.requested_items) == (REQUEST_DAY, ("tin",))
    # nothing is due until the first reminder, 14 days later
    for n in (1, 13):
        assert actions(c, day(n)) == []
    assert actions(c, day(14)) == [("reminder_1", day(14), day(178))]
    assert actions(c, day(20)) == [("reminder_1", day(14), day(178))]  # the same due date while it waits
    c = mark(c, "reminder_1", day(20))  # sent late, on day 20
    assert actions(c, day(33)) == []
    assert actions(c, day(34)) == [("reminder_2", day(34), day(179))]  # 14 days after the first reminder
    c = mark(c, "reminder_2", day(35))
    # the measure: from day 61 (the configured day), by day 180
    assert actions(c, day(60)) == []
    [measure] = due_actions(advance(c, day(61)), SETTINGS, day(61))
    assert (measure.action, measure.due_date, measure.latest_date) == ("withhold_payouts", day(61), day(180))
    assert (measure.day, measure.request_date, measure.items_missing, measure.reaches_day_180) == (
        61,
        REQUEST_DAY,
        ("tin",),
        False,
    )
    c = mark(c, "withhold_payouts", day(62))
    assert actions(c, day(70)) == []  # under the measure, waiting for the data
    # the TIN arrives on day 90 (the run sees it present: unverified)
    c = replace(c, needs=())
    c = advance(c, day(90))
    assert c.release_due == day(90) and c.requested_on == REQUEST_DAY
    [release] = due_actions(c, SETTINGS, day(90))
    assert (release.action, release.due_date, release.latest_date, release.measure) == (
        "release",
        day(90),
        day(90),
        "withhold_payouts",
    )
    assert due_actions(advance(c, day(91)), SETTINGS, day(91))[0].overdue  # "as soon as": a day late
    c = mark(c, "release", day(90))
    assert (c.requested_on, c.measure_on, c.measure, c.cycles) == (None, None, None, 1)
    assert actions(c, day(91)) == []


def test_data_arriving_before_the_measure_closes_the_cycle_without_a_release() -> None:
    c = requested("tin", "birth_date")
    c = mark(c, "reminder_1", day(14))
    c = advance(replace(c, needs=("birth_date",)), day(20))  # the TIN came: the birth date is still missing
    assert c.outstanding == ("birth_date",) and c.requested_on == REQUEST_DAY
    c = advance(replace(c, needs=()), day(25))
    assert (c.requested_on, c.cycles, c.release_due) == (None, 1, None)
    assert actions(c, day(25)) == []


def test_an_item_found_invalid_later_is_asked_for_by_a_new_request() -> None:
    c = requested("tin")
    c = replace(c, needs=("tin", "vat"), invalid=("vat",))  # the VAT number found invalid on day 30
    assert actions(c, day(30)) == [("reminder_1", day(14), day(178))]  # the open cycle is the TIN's
    c = replace(c, needs=("vat",))  # the TIN came on day 40: the cycle closes, a new one is due
    c = advance(c, day(40))
    assert (c.requested_on, c.cycles, c.request_due) == (None, 1, day(40))
    [request] = due_actions(c, SETTINGS, day(40))
    assert (request.action, request.items_missing, request.items_invalid) == ("request", ("vat",), ("vat",))


@pytest.mark.parametrize(
    ("measure_on", "refused"),
    [
        (FIRST_MEASURE_DAY - 1, True),
        (FIRST_MEASURE_DAY, False),
        (LAST_MEASURE_DAY, False),
        (LAST_MEASURE_DAY + 1, False),
    ],
)
def test_a_measure_is_refused_before_day_60_and_taken_from_day_60_on(measure_on: int, refused: bool) -> None:
    c = requested("tin")
    c = mark(mark(c, "reminder_1", day(10)), "reminder_2", day(20))
    if refused:
        with pytest.raises(MarkRefused, match=r"day 59 after the request of 2026-03-02; .* from day 60"):
            mark(c, "close_account", day(measure_on))
    else:
        assert mark(c, "close_account", day(measure_on)).measure_on == day(measure_on)


@pytest.mark.parametrize(
    ("today", "due", "overdue", "reaches_180"),
    [(59, False, False, False), (60, True, False, False), (180, True, False, True), (181, True, True, True)],
)
def test_the_measure_window_at_its_boundaries(today: int, due: bool, overdue: bool, reaches_180: bool) -> None:
    settings = replace(SETTINGS, measure_day=FIRST_MEASURE_DAY)  # an operator that reads day 60 as allowed
    c = requested("tin")
    c = mark(mark(c, "reminder_1", day(10)), "reminder_2", day(20))
    found = due_actions(advance(c, day(today)), settings, day(today))
    assert bool(found) == due
    if due:
        [m] = found
        assert (m.due_date, m.latest_date, m.overdue, m.reaches_day_180) == (day(60), day(180), overdue, reaches_180)


def test_the_measure_waits_for_the_second_reminder_whatever_the_day() -> None:
    c = requested("tin")
    c = mark(mark(c, "reminder_1", day(100)), "reminder_2", day(175))
    assert actions(c, day(175)) == []
    assert actions(c, day(176)) == [("withhold_payouts", day(176), day(180))]  # the day after the reminder
    c = mark(
        requested("tin"),
        "reminder_1",
        day(14),
    )
    assert [a for a, _, _ in actions(c, day(200))] == ["reminder_2"]  # no measure without two reminders
    with pytest.raises(MarkRefused, match="after the second reminder"):
        mark(c, "withhold_payouts", day(200))


def test_reports_out_of_order_are_refused_with_the_reason() -> None:
    c = advance(SellerCycle("S1", True, needs=("tin",)), REQUEST_DAY)
    with pytest.raises(MarkRefused, match="no request is open"):
        mark(c, "reminder_1", REQUEST_DAY)
    with pytest.raises(MarkRefused, match="nothing is missing or invalid"):
        mark(advance(SellerCycle("S2", True), REQUEST_DAY), "request", REQUEST_DAY)
    c = mark(c, "request", REQUEST_DAY)
    with pytest.raises(MarkRefused, match="request of 2026-03-02 is still open"):
        mark(c, "request", day(3))
    with pytest.raises(MarkRefused, match="must come after the request"):
        mark(c, "reminder_1", REQUEST_DAY)
    with pytest.raises(MarkRefused, match="follows the first"):
        mark(c, "reminder_2", day(20))
    c = mark(c, "reminder_1", day(14))
    with pytest.raises(MarkRefused, match="recorded as sent on 2026-03-16 already"):
        mark(c, "reminder_1", day(15))
    with pytest.raises(MarkRefused, match="nothing to release"):
        mark(c, "release", day(30))
    c = mark(mark(c, "reminder_2", day(28)), "withhold_payouts", day(61))
    with pytest.raises(MarkRefused, match=r"has not come in \(tin\)"):
        mark(c, "release", day(70))


def test_a_seller_with_nothing_missing_gets_the_notice_only_and_an_out_of_scope_one_nothing() -> None:
    assert actions(SellerCycle("S1", True), REQUEST_DAY) == [("pre_report_notice", REQUEST_DAY, date(2026, 12, 31))]
    assert actions(SellerCycle("S1", False, needs=("tin",)), REQUEST_DAY) == []
    c = requested("tin")
    # an open cycle goes on when the seller leaves the scope (the year changed, no sale yet)
    assert [a for a, _, _ in actions(replace(c, in_scope=False), day(14))] == ["reminder_1"]


def test_next_action_shows_the_coming_step_with_its_date() -> None:
    c = requested("tin")
    assert next_action(advance(c, day(3)), SETTINGS, day(3)) == ("reminder_1", day(14))
    assert next_action(advance(SellerCycle("S2", True, notice_on=REQUEST_DAY), day(3)), SETTINGS, day(3)) is None


@pytest.mark.parametrize(
    ("registered_at", "period", "deadline"),
    [
        (None, 2023, date(2023, 12, 31)),
        (date(2023, 1, 1), 2023, date(2024, 12, 31)),  # registered on the day the rules began: the second period
        (date(2022, 6, 1), 2023, date(2024, 12, 31)),
        (date(2023, 1, 2), 2023, date(2023, 12, 31)),  # registered the day after: a new seller
        (date(2022, 6, 1), 2024, date(2024, 12, 31)),
        (date(2022, 6, 1), 2025, date(2025, 12, 31)),
    ],
)
def test_the_due_diligence_deadline_is_31_december(registered_at: date | None, period: int, deadline: date) -> None:
    assert due_diligence_deadline(period, registered_at) == deadline


def test_an_operator_reporting_later_has_its_own_pre_existing_sellers() -> None:
    since = date(2025, 6, 1)
    assert is_pre_existing(date(2025, 6, 1), since) and not is_pre_existing(date(2025, 6, 2), since)
    assert due_diligence_deadline(2025, date(2024, 1, 1), since) == date(2026, 12, 31)
    c = advance(SellerCycle("S1", True, needs=("tin",), registered_at=date(2024, 1, 1)), date(2025, 7, 1))
    [_, request] = due_actions(c, replace(SETTINGS, reporting_since=since), date(2025, 7, 1))
    assert request.latest_date == date(2026, 12, 31)
    # the request left waiting into the next year is overdue
    late = due_actions(advance(SellerCycle("S1", True, needs=("tin",)), date(2025, 12, 31)), SETTINGS, date(2026, 1, 2))
    assert [(a.action, a.latest_date, a.overdue) for a in late if a.action == "request"] == [
        ("request", date(2025, 12, 31), True)
    ]


@pytest.mark.parametrize(
    ("checked", "last_day"),
    [
        (date(2023, 3, 15), date(2026, 3, 15)),
        (date(2023, 3, 31), date(2026, 3, 31)),
        (date(2021, 2, 28), date(2024, 2, 28)),
        (date(2020, 2, 29), date(2023, 2, 28)),  # a leap day: the month's last day three years on
        (date(2023, 5, 31), date(2026, 5, 31)),
    ],
)
def test_a_verification_is_relied_on_for_36_months(checked: date, last_day: date) -> None:
    assert relied_until(checked) == last_day
    assert add_months(date(2023, 3, 31), 11) == date(2024, 2, 29)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"measure": "block"}, "measure = 'block'; expected one of withhold_payouts, close_account"),
        ({"measure_day": 59}, "measure_day must be a day from 60 to 180"),
        ({"measure_day": 181}, "measure_day must be a day from 60 to 180"),
        ({"reminder_1_days": 0}, "reminder_1_days must be a whole number of days >= 1"),
        ({"reminder_1_days": 100, "reminder_2_days": 80}, "reminder_1_days \\+ reminder_2_days must be at most 179"),
        ({"reminder_2_days": "7"}, "reminder_2_days must be a whole number of days"),
        ({"reporting_since": "2022-12-31"}, "reporting_since must be 2023-01-01 or later"),
        ({"reporting_since": "soon"}, "reporting_since must be a date"),
        ({"mesure": "close_account"}, "unknown key.*mesure \\(did you mean measure\\?\\)"),
    ],
)
def test_bad_due_diligence_settings_name_the_key(table: dict[str, object], message: str) -> None:
    raw = {
        "operator": {
            "name": "Demo",
            "tin": "1",
            "tin_issued_by": "LT",
            "nexus": "RPONEX1",
            "address": {"city": "Vilnius", "country": "LT"},
        },
        "due_diligence": table,
    }
    with pytest.raises(ConfigError, match=f"due_diligence\\.?.*{message}" if "unknown" not in message else message):
        parse_config(raw, origin="dac7.toml")


def test_due_diligence_settings_are_read_with_their_defaults() -> None:
    raw = {
        "operator": {
            "name": "Demo",
            "tin": "1",
            "tin_issued_by": "LT",
            "nexus": "RPONEX1",
            "address": {"city": "Vilnius", "country": "LT"},
        }
    }
    assert parse_config(raw).due_diligence == CycleSettings()
    raw["due_diligence"] = {"measure": "close_account", "measure_day": 60, "reporting_since": date(2025, 6, 1)}
    assert parse_config(raw).due_diligence == CycleSettings(
        measure="close_account", measure_day=60, reporting_since=date(2025, 6, 1)
    )
