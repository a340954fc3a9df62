"""The filing calendar per authority (``reporting.deadlines``: the due days with their weekend
rule, the correction window, the registration renewal, each with a source) and where each item
stands against the ledger (``reporting.ledger.rejections``, ``reporting.open_items``).

Dates are worked out by hand: 31 January 2026 is a Saturday, 31 January 2027 a Sunday, 31
January 2025 a Friday; Berlin is UTC+1 in winter and UTC+2 from 29 March 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_filing import Filer, current, send

from reporting import deadlines
from reporting.deadlines import (
    CORRECTION,
    REGISTRATION,
    DeadlineTableError,
    Shift,
    calendar,
    correction_days,
    correction_due,
    deadline_table,
    filing_due,
    parse_table,
    statement_due,
)
from reporting.ledger import Ledger, open_ledger
from reporting.ledger.model import RecordError, StatusReport
from reporting.open_items import (
    DONE,
    NOTHING,
    OPEN,
    OVERDUE,
    configured_correction_days,
    correction_state,
    filing_states,
)


@pytest.fixture
def ledger(tmp_path: object) -> Ledger:
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as led:
        yield led  # type: ignore[misc]


# ------------------------------------------------------------------------------------- the table


def test_every_profile_states_its_weekend_rule_correction_window_and_registration_with_a_source() -> None:
    for code, table in deadline_table().items():
        for part in (table.shift, table.correction, table.registration):
            assert part.source.strip() and part.source != "not stated in the deadline table", code
            assert part.certainty in ("high", "medium", "low"), code
        # no authority of ours states a number of days for a correction, nor a renewal: none invented
        assert table.correction.days is None and table.registration.days is None, code
    moved = {code for code, t in deadline_table().items() if t.shift.rule == "next_working_day"}
    assert moved == {"DE", "IT"}
    assert "§ 108(3)" in deadline_table()["DE"].shift.source


def test_the_german_correction_and_registration_quote_the_psttg_itself() -> None:
    de = deadline_table()["DE"]
    # § 13(1) sentence 2 and § 12(1), word for word as in the consolidated PStTG; the secondary source kept
    assert "PStTG § 13(1) sentence 2: 'Wird einem meldenden Plattformbetreiber bekannt" in de.correction.source
    assert "ist die Meldung unverzüglich nach dem Zeitpunkt der Kenntniserlangung" in de.correction.source
    assert "nachzuholen, zu korrigieren oder zu vervollständigen'" in de.correction.source
    assert "Haufe" in de.correction.source and de.correction.certainty == "high"
    assert "PStTG § 12(1): 'Meldende Plattformbetreiber müssen sich unverzüglich" in de.registration.source
    assert "einmalig bei einer zuständigen Behörde" in de.registration.source
    assert "Ebner Stolz" in de.registration.source and de.registration.certainty == "high"
    assert "70" in deadline_table()["IT"].shift.source and "art. 7" in deadline_table()["IT"].shift.source


@pytest.mark.parametrize(
    ("country", "year", "filing", "statement"),
    [
        ("DE", 2025, date(2026, 2, 2), date(2026, 1, 31)),  # Saturday -> Monday; the statement stands
        ("DE", 2026, date(2027, 2, 1), date(2027, 1, 31)),  # Sunday -> Monday
        ("DE", 2024, date(2025, 1, 31), date(2025, 1, 31)),  # a Friday: nothing moves
        ("IT", 2025, date(2026, 2, 2), date(2026, 1, 31)),
        ("FR", 2025, date(2026, 1, 31), date(2026, 1, 31)),  # no text moves the French day
        ("HU", 2025, date(2026, 1, 31), date(2026, 1, 31)),
        ("LT", 2025, date(2026, 1, 31), date(2026, 1, 31)),  # the EU table
    ],
)
def test_the_due_days_by_hand(country: str, year: int, filing: date, statement: date) -> None:
    assert filing_due(country, year) == filing
    assert statement_due(country, year) == statement


def test_a_holiday_moves_the_day_further() -> None:
    de = deadline_table()["DE"].shift
    # 25 December 2026 is a Friday: 26th (holiday, Saturday), 27th (Sunday) -> Monday 28th
    assert de.apply(date(2026, 12, 25)) == date(2026, 12, 28)
    assert de.apply(date(2026, 10, 3)) == date(2026, 10, 5)  # a Saturday and a holiday
    assert de.apply(date(2026, 2, 2)) == date(2026, 2, 2)  # a working day stays
    it = deadline_table()["IT"].shift
    assert it.apply(date(2027, 1, 6)) == date(2027, 1, 7)  # Epiphany, a Wednesday


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_the_next_working_day_is_the_first_one_from_the_day_on(day: date) -> None:
    shift = deadline_table()["DE"].shift
    moved = shift.apply(day)

    def working(d: date) -> bool:  # recomputed apart: Monday to Friday, not a listed holiday
        return d.isoweekday() <= 5 and d.strftime("%m-%d") not in shift.holidays

    assert moved >= day and working(moved)
    assert all(not working(day + timedelta(days=n)) for n in range((moved - day).days))
    assert moved - day <= timedelta(days=4)  # at most a holiday weekend of four days


def test_the_calendar_lists_each_item_with_its_rule_zone_and_source() -> None:
    items = {i.obligation: i for i in calendar("DE", 2025)}
    assert list(items) == ["filing", "seller_statement", CORRECTION, REGISTRATION]
    filing = items["filing"]
    assert (filing.due, filing.unmoved, filing.time_zone) == (date(2026, 2, 2), date(2026, 1, 31), "Europe/Berlin")
    assert "PStTG" in filing.source and "§ 108(3)" in filing.source
    assert filing.certainty == "medium"  # the move is less certain than the day (high)
    assert items["seller_statement"].unmoved is None and items["seller_statement"].certainty == "high"
    assert items[CORRECTION].due is None and "no number of days stated" in items[CORRECTION].rule
    assert items[REGISTRATION].rule == "no renewal"
    with_window = {i.obligation: i for i in calendar("FR", 2025, 14)}
    assert with_window[CORRECTION].rule.startswith("14 days after the day a rejection is imported (DAC7_CORRECTION")
    assert correction_days("FR", 14) == 14 and correction_days("FR") is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"shift": {"rule": "sometimes", "source": "s", "certainty": "low"}}, r"\[EU.shift\]: rule 'sometimes'"),
        ({"shift": {"rule": "next_working_day", "source": "s", "certainty": "low"}}, "names no obligation"),
        ({"shift": {"rule": "none", "certainty": "low"}}, r"\[EU.shift\]: source is missing"),
        (
            {"shift": {"rule": "none", "holidays": ["12/25"], "source": "s", "certainty": "low"}},
            "holiday '12/25'",
        ),
        ({"correction": {"within_days": 0, "source": "s", "certainty": "low"}}, "within_days 0 is not a whole"),
        ({"correction": {"days": 3, "source": "s", "certainty": "low"}}, "unknown key"),
        ({"registration": {"renewal_years": 2, "source": "s", "certainty": "sure"}}, "certainty 'sure'"),
    ],
)
def test_a_malformed_rule_is_refused_with_its_table_named(table: dict[str, object], message: str) -> None:
    row = {"obligation": "filing", "due": "01-31", "years_after": 1, "source": "a text", "certainty": "high"}
    with pytest.raises(DeadlineTableError, match=message):
        parse_table({"EU": {"name": "EU", "deadline": [row], **table}})


# ---------------------------------------------------------------------------- correction windows


def test_a_correction_window_ends_on_day_n_not_n_plus_1() -> None:
    assert correction_due(date(2026, 3, 2), 14) == date(2026, 3, 16)
    assert correction_due(date(2026, 3, 2), None) is None


def _rejection(authority: str, rejected_at: datetime, corrected_at: datetime | None = None) -> object:
    from reporting.ledger import Rejection

    return Rejection("prod", authority, 2025, "M1", "D1", 1, 0 if corrected_at else 1, rejected_at, corrected_at)


@pytest.mark.parametrize(
    ("today", "state"),
    [(date(2026, 3, 16), OPEN), (date(2026, 3, 17), OVERDUE)],  # day 14 is not overdue, day 15 is
)
def test_an_uncorrected_rejection_is_open_to_the_windows_last_day(today: date, state: str) -> None:
    r = _rejection("DE", datetime(2026, 3, 2, 10))
    s = correction_state(r, today, 14)  # type: ignore[arg-type]
    assert (s.rejected_on, s.due, s.state) == (date(2026, 3, 2), date(2026, 3, 16), state)
    assert correction_state(r, date(2027, 1, 1), None).state == OPEN  # type: ignore[arg-type]  # no window


def test_the_rejections_day_is_the_authoritys_day_not_utcs() -> None:
    """Imported at 23:30 UTC on 1 March: 2 March in Berlin (CET, UTC+1), still 1 March in Dublin."""
    late_evening = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert correction_state(_rejection("DE", late_evening), date(2026, 3, 1), 14).due == date(2026, 3, 16)  # type: ignore[arg-type]
    assert correction_state(_rejection("IE", late_evening), date(2026, 3, 1), 14).due == date(2026, 3, 15)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("corrected_at", "late"),
    [
        (datetime(2026, 3, 16, 21, 59), False),  # 23:59 in Berlin (CET) on the last day
        (datetime(2026, 3, 16, 23, 0), True),  # midnight in Berlin: day 15
    ],
)
def test_a_correction_filed_after_the_window_is_done_late(corrected_at: datetime, late: bool) -> None:
    s = correction_state(_rejection("DE", datetime(2026, 3, 2, 10), corrected_at), date(2026, 4, 1), 14)  # type: ignore[arg-type]
    assert (s.state, s.late) == (DONE, late)


def test_the_configured_window_is_checked() -> None:
    assert configured_correction_days({}) is None
    assert configured_correction_days({"DAC7_CORRECTION_DAYS": " 30 "}) == 30
    for bad in ("0", "-1", "two weeks", "1.5"):
        with pytest.raises(ValueError, match="DAC7_CORRECTION_DAYS"):
            configured_correction_days({"DAC7_CORRECTION_DAYS": bad})


# ------------------------------------------------------------------------------- from the ledger


def _reject(ledger: Ledger, ref: str, doc_ref_ids: list[str], at: datetime, *, whole: bool = False) -> None:
    report = StatusReport(
        format="eu-dac7-status",
        outcome="rejected" if whole else "partially_rejected",
        message_ref_id=ref,
        record_errors=() if whole else (RecordError(code="40080", doc_ref_ids=tuple(doc_ref_ids)),),
    )
    ledger.record_status(report, file_name="status.xml", sha256=ref[-8:] + "0" * 56, at=at)


def test_a_rejected_record_is_open_until_its_correction_is_filed(ledger: Ledger) -> None:
    f = Filer(ledger, environment="prod", authority="DE", year=2025)
    [ref] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
    ledger.mark_published(ref, at=datetime(2026, 1, 20, 9))
    s2 = next(r.doc_ref_id for r in ledger.records(ref) if r.seller_key == "S2")
    _reject(ledger, ref, [s2], datetime(2026, 3, 1, 23, 30))
    [r] = ledger.rejections(environment="prod")
    assert (r.message_ref_id, r.doc_ref_id, r.open_records, r.corrected_at) == (ref, s2, 1, None)
    assert r.rejected_at == datetime(2026, 3, 1, 23, 30) and not r.whole_message
    assert ledger.rejections(environment="test") == [] and ledger.rejections(environment="prod", year=2024) == []

    [fix] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))  # the next run: a correction of S2
    assert ledger.rejections(environment="prod")[0].open_records == 1  # rendered is not filed
    ledger.mark_published(fix, at=datetime(2026, 3, 16, 9))
    assert ledger.rejections(environment="prod")[0].open_records == 1  # published is not sent
    send(ledger, fix, datetime(2026, 3, 16, 21, 59))
    [r] = ledger.rejections(environment="prod")
    assert (r.open_records, r.corrected_at) == (0, datetime(2026, 3, 16, 21, 59))
    s = correction_state(r, date(2026, 4, 1), 14)
    assert (s.rejected_on, s.due, s.corrected_on, s.state, s.late) == (
        date(2026, 3, 2),
        date(2026, 3, 16),
        date(2026, 3, 16),
        DONE,
        False,
    )


def test_a_correction_the_authority_rejects_as_a_whole_leaves_the_record_open(ledger: Ledger) -> None:
    f = Filer(ledger, environment="prod", authority="DE", year=2025)
    [ref] = f.record(f.plan(current(sellers={"S1": 1})))
    ledger.mark_published(ref, at=datetime(2026, 1, 20))
    s1 = ledger.records(ref)[1].doc_ref_id
    _reject(ledger, ref, [s1], datetime(2026, 2, 1))
    [fix] = f.record(f.plan(current(sellers={"S1": 1})))
    ledger.mark_published(fix, at=datetime(2026, 2, 3))
    _reject(ledger, fix, [], datetime(2026, 2, 5), whole=True)
    found = {(r.message_ref_id, r.whole_message): r for r in ledger.rejections(environment="prod")}
    assert found[ref, False].open_records == 1 and found[ref, False].corrected_at is None
    assert found[fix, True].open_records == found[fix, True].records == 1  # the seller; the resend aside


def test_a_message_rejected_as_a_whole_is_corrected_when_its_records_are_filed_again(ledger: Ledger) -> None:
    f = Filer(ledger, environment="prod", authority="FR", year=2025)
    [ref] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
    ledger.mark_published(ref, at=datetime(2026, 1, 20))
    _reject(ledger, ref, [], datetime(2026, 1, 22, 8), whole=True)
    [r] = ledger.rejections(environment="prod")
    assert (r.whole_message, r.records, r.open_records, r.rejected_at) == (True, 3, 3, datetime(2026, 1, 22, 8))
    [again] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
    ledger.mark_published(again, at=datetime(2026, 1, 23, 9))
    assert ledger.rejections(environment="prod")[0].open_records == 3  # not uploaded yet
    send(ledger, again, datetime(2026, 1, 23, 12))
    [r] = ledger.rejections(environment="prod")
    assert (r.open_records, r.corrected_at) == (0, datetime(2026, 1, 23, 12))


def test_the_filings_calendar_from_the_ledger(ledger: Ledger) -> None:
    f = Filer(ledger, environment="prod", authority="DE", year=2025)
    before = {s.item.obligation: s for s in filing_states(ledger, "DE", 2025, date(2026, 2, 2))}
    assert before["filing"].state == OPEN and "due today" in before["filing"].detail  # 2 February (moved)
    assert before["seller_statement"].state == NOTHING and before[CORRECTION].state == NOTHING
    assert before[REGISTRATION].state == NOTHING
    late = {s.item.obligation: s for s in filing_states(ledger, "DE", 2025, date(2026, 2, 3))}
    assert (late["filing"].state, late["filing"].detail) == (OVERDUE, "nothing accepted or filed; 1 day overdue")

    [ref] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
    ledger.mark_published(ref, at=datetime(2026, 2, 1, 20))
    unsent = {s.item.obligation: s for s in filing_states(ledger, "DE", 2025, date(2026, 2, 3))}
    assert (unsent["filing"].state, unsent["filing"].detail) == (
        OVERDUE,
        "nothing accepted or filed; 1 published, not transmitted or uploaded yet; 1 day overdue",
    )
    send(ledger, ref, datetime(2026, 2, 1, 22, 30))  # 23:30 in Berlin, 1 February
    filed = {s.item.obligation: s for s in filing_states(ledger, "DE", 2025, date(2026, 2, 10))}
    assert filed["filing"].state == OPEN
    assert filed["filing"].detail == "filed 2026-02-01 (in time); no accepted status imported yet"
    assert (filed["seller_statement"].state, filed["seller_statement"].detail) == (
        OVERDUE,
        "2 seller(s) filed, no statement recorded",
    )
    s2 = next(r.doc_ref_id for r in ledger.records(ref) if r.seller_key == "S2")
    _reject(ledger, ref, [s2], datetime(2026, 2, 10, 9))
    answered = {
        s.item.obligation: s for s in filing_states(ledger, "DE", 2025, date(2026, 2, 25), correction_window=14)
    }
    assert (answered["filing"].state, answered["filing"].detail) == (DONE, "accepted (1 message)")
    assert answered[CORRECTION].state == OVERDUE
    assert answered[CORRECTION].detail == (
        "1 rejection(s), 0 corrected; the first correction due 2026-02-24 (1 day overdue)"
    )
    assert deadlines.describe_days(date(2026, 2, 24), date(2026, 2, 25)) == "1 day overdue"
    no_window = {s.item.obligation: s for s in filing_states(ledger, "DE", 2025, date(2026, 2, 25))}
    assert no_window[CORRECTION].state == OPEN and "correct without delay" in no_window[CORRECTION].detail
    assert isinstance(deadline_table()["DE"].shift, Shift)


def test_a_correction_published_but_aborted_at_the_dip_leaves_the_rejection_open(ledger: Ledger) -> None:
    f = Filer(ledger, environment="prod", authority="DE", year=2025)
    [ref] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
    ledger.mark_published(ref, at=datetime(2026, 1, 20, 9))
    send(ledger, ref, datetime(2026, 1, 20, 10))
    s2 = next(r.doc_ref_id for r in ledger.records(ref) if r.seller_key == "S2")
    _reject(ledger, ref, [s2], datetime(2026, 2, 10, 9))
    [fix] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
    ledger.mark_published(fix, at=datetime(2026, 2, 12, 9))
    ledger.record_transmission(fix, event="started", channel="dip", actor="ana", ticket="T2")
    ledger.record_transmission(fix, event="aborted", channel="dip", actor="ana", ticket="T2", detail="HTTP 400")
    [r] = ledger.rejections(environment="prod")
    assert (r.doc_ref_id, r.open_records, r.corrected_at) == (s2, 1, None)
    items = {s.item.obligation: s for s in filing_states(ledger, "DE", 2025, date(2026, 3, 1), correction_window=14)}
    assert items[CORRECTION].state == OVERDUE


def test_a_filing_never_sent_is_not_filed_in_time(ledger: Ledger) -> None:
    f = Filer(ledger, environment="prod", authority="DE", year=2024)
    [ref] = f.record(f.plan(current(sellers={"S1": 1})))
    ledger.record_approval([ref], approved_by="jonas", triggered_by="ana")
    ledger.mark_published(ref, at=datetime(2025, 1, 20, 9))
    [item] = [s for s in filing_states(ledger, "DE", 2024, date(2025, 2, 5)) if s.item.obligation == "filing"]
    assert item.state == OVERDUE
    assert "filed" not in item.detail.split(";")[0].replace("nothing accepted or filed", "")
    assert item.detail.startswith("nothing accepted or filed; 1 published, not transmitted or uploaded yet")
