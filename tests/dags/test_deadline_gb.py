"""The deadline DAG's three checks for a group that files with HMRC beside a member state: the
EU operator (``default``, filing in LT under DAC7) and the UK operator (``[operators.uk_ltd]``,
filing in GB under the UK's Model Rules). Each filing is checked against its own profile's rows
of the deadline table: LT's (Directive 2011/16/EU Art. 8ac(2), 31 January) and GB's (SI 2023/817
reg. 4(1) and 4(4), 31 January); the messages name the UK regulations and HMRC's upload for the
UK filing, DAC7's texts for the EU one, and the statements warning cites each filing state's own
``seller_statement`` row (LT: the Directive; DE: PStTG § 22(2); GB: reg. 4(4)).

The ledger, by hand: both filings of 2025 published on 20 January 2026 with two sellers each;
the LT one uploaded the same day, the GB one not sent until 27 January. HMRC's business rule
result then names one GB seller record (which rejects the file as a whole, as HMRC reads
it); HMRC states no time for a correction
(the ``GB.correction`` row), so it stays open "without delay", never overdue by a count of days.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from builders import TWO_FILINGS_TOML, hmrc_bre
from ledger_filing import Filer, current
from test_dac7_annual import REPO, notifications  # noqa: F401 - a fixture

from reporting.ledger import open_ledger

#: the GB rule set's deadline source (the filing and the seller's copy), cited for the filing
SI_4_1 = "SI 2023/817 reg. 4(1) and 4(4)"
#: the GB ``seller_statement`` row's source, cited for the statements (the seller's copy alone)
SI_4_4 = "SI 2023/817, reg. 4(4)"
#: the EU ``seller_statement`` row's source (LT has no national profile)
ANNEX_V = "Directive 2011/16/EU, Annex V, Section III(A), as inserted by Directive (EU) 2021/514"
UK_LAW = "The Platform Operators (Due Diligence and Reporting Requirements) Regulations 2023 (SI 2023/817)"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "dac7.toml"
    path.write_text((REPO / "dac7.toml").read_text(encoding="utf-8") + TWO_FILINGS_TOML, encoding="utf-8")
    return path


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    refs = {}
    with open_ledger(url) as led:
        for op, authority in (("default", "LT"), ("uk_ltd", "GB")):
            f = Filer(led, environment="prod", authority=authority, year=2025, operator_id=op)
            [ref] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
            led.record_approval([ref], approved_by="jonas", triggered_by="ana")
            led.mark_published(ref, at=datetime(2026, 1, 20, 8))
            refs[authority] = ref
        led.mark_uploaded(refs["LT"], by="ana", at=datetime(2026, 1, 20, 9))
    yield url, refs


def test_the_uk_filing_is_expected_by_31_january_under_the_uk_regulations(
    notifications: list[tuple[str, str]],  # noqa: F811
    config: Path,
    ledger: tuple[str, dict[str, str]],
) -> None:
    from dac7_support.deadline import check_deadline, configured_filings

    from reporting.config import load_config

    url, refs = ledger
    assert configured_filings(load_config(config)) == [("default", "LT"), ("uk_ltd", "GB")]
    # 25 January (DAC7_DEADLINE_WARN's default) is the first day of the warning, for both
    assert check_deadline(2025, date(2026, 1, 24), config, url) == {"year": 2025, "due": False, "missing": []}
    assert notifications == []
    assert check_deadline(2025, date(2026, 1, 26), config, url) == {"year": 2025, "due": True, "missing": ["uk_ltd GB"]}
    ((subject, text),) = notifications
    assert subject == "DAC7 2025: no production filing sent yet for uk_ltd GB"
    # the body names the UK filing's own law, not DAC7 (the subject keeps its words)
    assert text.startswith(f"The report for 2025 under {UK_LAW} is due by 2026-01-31 (warning from 2026-01-25). ")
    assert "DAC7 report" not in text
    assert (
        "uk_ltd GB reports to United Kingdom, HM Revenue & Customs (HMRC): OECD Model Rules under The Platform "
        "Operators (Due Diligence and Reporting Requirements) Regulations 2023 (SI 2023/817), by 2026-01-31 "
        f"({SI_4_1}" in text
    )
    assert "upload its outbox package in HMRC's service and mark it uploaded" in text
    notifications.clear()
    with open_ledger(url, create=False) as led:  # uploaded in HMRC's service
        led.mark_uploaded(refs["GB"], by="ana", at=datetime(2026, 1, 27, 9))
    assert check_deadline(2025, date(2026, 1, 28), config, url) == {"year": 2025, "due": True, "missing": []}
    assert notifications == []


def test_the_statements_of_each_filing_are_due_under_its_own_law(
    notifications: list[tuple[str, str]],  # noqa: F811
    config: Path,
    ledger: tuple[str, dict[str, str]],
) -> None:
    from dac7_support.deadline import check_statements

    url, _refs = ledger
    result = check_statements(2025, date(2026, 1, 26), config, url)
    assert result == {"year": 2025, "due": True, "unsent": {}, "without_statements": ["default LT", "uk_ltd GB"]}
    ((subject, text),) = notifications
    assert subject == "DAC7 2025: no statements recorded for default LT, uk_ltd GB"
    # the seller's copy: the Directive for the LT filing (the EU row), reg. 4(4) alone for the GB one
    assert f"by 2026-01-31 ({ANNEX_V}; {SI_4_4}); warning from 2026-01-25." in text
    assert "PStTG" not in text and "reg. 4(1)" not in text


def test_an_lt_only_operator_keeps_dac7s_words(
    notifications: list[tuple[str, str]],  # noqa: F811
    tmp_path: Path,
    ledger: tuple[str, dict[str, str]],
) -> None:
    from dac7_support.deadline import check_deadline, check_statements

    url, _refs = ledger
    lt_only = REPO / "dac7.toml"  # the demo operator, filing in LT alone
    assert check_deadline(2025, date(2026, 1, 26), lt_only, url)["missing"] == []
    check_statements(2025, date(2026, 1, 26), lt_only, url)
    ((_subject, text),) = notifications
    # LT's law: the Directive (no national profile), never Germany's PStTG
    assert f"by 2026-01-31 ({ANNEX_V}); warning from 2026-01-25." in text
    assert "PStTG" not in text and "SI 2023/817" not in text and "HMRC" not in text


def test_each_filing_cites_the_seller_statement_law_of_the_state_it_is_filed_in() -> None:
    """The ``seller_statement`` row of each filing state's profile, cited up to its quotation:
    DE's own (PStTG § 22(2)), LT's the EU row (the Directive), GB's reg. 4(4); one citation per law."""
    from dac7_support.deadline import deadline_message, statement_laws, statements_message

    assert statement_laws(["DE"], 2025) == ["PStTG § 22(2)"]
    assert statement_laws(["LT"], 2025) == [ANNEX_V]
    assert statement_laws(["LT", "DE", "GB", "LV"], 2025) == [ANNEX_V, "PStTG § 22(2)", SI_4_4]
    _subject, de = statements_message(2025, {"DE": (2, 1)}, [], date(2026, 1, 25), date(2026, 1, 31), ["PStTG § 22(2)"])
    assert de.startswith(
        "Each reportable seller must receive the information reported about them by 2026-01-31 (PStTG § 22(2)); "
        "warning from 2026-01-25.\nFiled with DE: 2 pending, 1 failed (production statements of 2025)."
    )
    # the missing-filing body: DAC7 for EU filings, each filing's law where they are mixed
    _subject, eu = deadline_message(2025, ["DE", "LT"], date(2026, 1, 25))
    assert eu.startswith("The DAC7 report for 2025 is due by 2026-01-31 (warning from 2026-01-25). ")
    subject, mixed = deadline_message(2025, ["default LT", "uk_ltd GB"], date(2026, 1, 25))
    assert subject == "DAC7 2025: no production filing sent yet for default LT, uk_ltd GB"
    assert mixed.startswith(
        f"The reports for 2025 (default LT under DAC7; uk_ltd GB under {UK_LAW}) are due by 2026-01-31 (warning"
    )


def test_a_record_hmrc_rejected_is_an_open_item_without_a_correction_window(
    notifications: list[tuple[str, str]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    config: Path,
    ledger: tuple[str, dict[str, str]],
) -> None:
    from dac7_support.deadline import check_calendar

    from reporting.ledger.status import import_status_bytes

    monkeypatch.delenv("DAC7_CORRECTION_DAYS", raising=False)
    url, refs = ledger
    with open_ledger(url, create=False) as led:
        led.mark_uploaded(refs["GB"], by="ana", at=datetime(2026, 1, 27, 9))
        s2 = next(r.doc_ref_id for r in led.records(refs["GB"]) if r.seller_key == "S2")
        bre = hmrc_bre("Rejected", record_errors=[("DPI-RS-015", [s2])])
        outcome = import_status_bytes(led, bre, name="bre.xml", expected_message_ref_id=refs["GB"], matched_by="test")
        assert outcome.message_ref_id == refs["GB"]
    result = check_calendar(None, date(2026, 2, 11), config, url)
    # the LT filing has no status from its authority yet: open after its due day, as before
    assert result == {"year": None, "rejections": {"uk_ltd GB": 1}, "not_accepted": ["default LT"]}
    texts = {subject: text for subject, text in notifications}
    gb = texts["DAC7 uk_ltd GB: 1 open item(s) of the calendar"]
    # HMRC's result rejects the file as a whole on any error (reporting.ledger.status): its three
    # records (the PlatformOperator and two sellers) are to be filed again
    assert f"message {refs['GB']} (2025) rejected as a whole: 3 of its 3 record(s) not filed again" in gb
    assert "the authority states no time: correct without delay" in gb
    lt = texts["DAC7 default LT: 1 open item(s) of the calendar"]
    assert lt.startswith("The filing of 2025 was due 2026-01-31: filed 2026-01-20 (in time)")
