"""A filing with HMRC on the DAC7 view's board and year page (``plugins/dac7_board.py``,
``plugins/dac7_view.py``), beside a DAC7 filing in the same situation.

The group of tests/integration/test_group_two_filings.py (the EU operator filing in LT, the UK
operator ``uk_ltd`` with HMRC), its 2025 filings in a hand-made ledger, by hand:

- both published and sent (uploaded) on 31 January 2026 at 23:30 UTC. The due day is 31 January
  for both (LT: Directive 2011/16/EU Art. 8ac(2); GB: SI 2023/817 reg. 4(1)), and it ends at
  midnight where the authority sits: 23:30 UTC is 01:30 on 1 February in Vilnius (EET, UTC+2), a
  day late, and 23:30 on 31 January in London (GMT, UTC+0), in time;
- HMRC's business rule result (its BRE schema) accepts the GB message: the GB row reads
  accepted; the LT message has no status yet: awaiting.

And the UK operator's 2024 filing (the first UK reportable period), sent on 20 January 2025:
HMRC's result names one seller record, and HMRC rejects the file as a whole on any error
(``reporting.ledger.status``): the row reads rejected with HMRC's code, 366 days overdue.

The board is read on 1 February 2026: the year in progress (2026) has a row per operator too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import TWO_FILINGS_TOML, hmrc_bre, write_config
from ledger_filing import Filer, current, send
from lxml import html as lhtml
from unit.test_board import board  # noqa: F401 - a fixture

from reporting.ledger import open_ledger
from reporting.ledger.status import import_status_bytes

TODAY = date(2026, 2, 1)
SENT = datetime(2026, 1, 31, 23, 30)
HMRC = "GB United Kingdom, HM Revenue & Customs (HMRC): OECD Model Rules"


@pytest.fixture
def ledger_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with open_ledger(url) as led:
        for op, authority, year, at in (
            ("default", "LT", 2025, SENT),
            ("uk_ltd", "GB", 2025, SENT),
            ("uk_ltd", "GB", 2024, datetime(2025, 1, 20, 10)),
        ):
            f = Filer(led, environment="prod", authority=authority, year=year, operator_id=op)
            [ref] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
            led.mark_published(ref, at=at)
            send(led, ref, at)
            if authority == "GB":
                s2 = next(r.doc_ref_id for r in led.records(ref) if r.seller_key == "S2")
                bre = (
                    hmrc_bre("Accepted") if year == 2025 else hmrc_bre("Rejected", record_errors=[("DPI-RS-015", [s2])])
                )
                import_status_bytes(led, bre, name="bre.xml", expected_message_ref_id=ref, matched_by="test")
    yield url


def cells(page: Any, table: str) -> list[list[str]]:
    return [[c.text_content().strip() for c in tr.xpath("td")] for tr in page.xpath(f"//table[@id='{table}']/tr[td]")]


def test_the_board_shows_the_hmrc_filing_with_its_authority_deadline_and_status(
    board: Any,  # noqa: F811
    ledger_url: str,
    tmp_path: Path,
) -> None:
    env = {"DAC7_CONFIG": str(write_config(tmp_path / "dac7.toml", extra=TWO_FILINGS_TOML))}
    view = board.board_view(board.Sources(ledger_url, None), TODAY, env)
    assert view.problems == ()
    keyed = {(r.operator, r.authority, r.year): r for r in view.rows if r.environment == "prod"}
    assert set(keyed) == {
        ("default", "LT", 2025),
        ("default", "LT", 2026),
        ("uk_ltd", "GB", 2024),
        ("uk_ltd", "GB", 2025),
        ("uk_ltd", "GB", 2026),  # the year in progress: a row for the UK filing too
    }
    gb, lt, gb24 = keyed["uk_ltd", "GB", 2025], keyed["default", "LT", 2025], keyed["uk_ltd", "GB", 2024]
    assert (gb.filed, gb.accepted, gb.rejected, gb.awaiting, gb.error_codes) == (1, 1, 0, 0, ())
    assert (lt.filed, lt.accepted, lt.rejected, lt.awaiting, lt.error_codes) == (1, 0, 0, 1, ())
    assert gb.first_filed == lt.first_filed == SENT
    assert (gb24.filed, gb24.rejected, gb24.live, gb24.error_codes) == (1, 1, False, ("DPI-RS-015",))

    page = lhtml.fromstring(board.board_page(view, token="t", may_import=True))
    rows = {(r[0].split()[0], r[1], r[2]): r for r in cells(page, "board-prod")}  # operator id, name
    # Operator, Authority, Year, Due, Deadline, State, ...
    gb_row = rows["uk_ltd", HMRC, "2025"]
    assert gb_row[3:5] == ["2026-01-31 (note)", "filed 2026-01-31, in time"]
    assert gb_row[-1] == "none recorded (due 2026-01-31)"
    lt_row = rows["default", "LT Lithuania", "2025"]
    assert lt_row[3:5] == ["2026-01-31 (note)", "filed 2026-02-01, 1 day late"]
    gb24_row = rows["uk_ltd", HMRC, "2024"]
    assert gb24_row[3:6] == ["2025-01-31 (note)", "366 days overdue", "rejected: file again"]
    assert gb24_row[-2] == "DPI-RS-015"
    assert rows["uk_ltd", HMRC, "2026"][3] == "2027-01-31 (note)"
    # the calendar's rows and the sources name HMRC's rules
    calendar = [r for r in cells(page, "filing-calendar") if r[0] == HMRC]
    assert {r[2] for r in calendar} >= {"filing", "seller statement"}
    assert all("Europe/London" in r[6] for r in calendar)
    sources = page.xpath("//table[@id='deadlines']")[0].text_content()
    assert "SI 2023/817), reg. 4(1)" in sources and "SI 2023/817, reg. 4(4)" in sources
    assert "United Kingdom, HM Revenue & Customs (HMRC): OECD Model Rules" in sources


def test_the_year_page_heads_the_hmrc_filings_with_the_authority(board: Any, ledger_url: str) -> None:  # noqa: F811
    import dac7_view

    view = dac7_view.year_view(dac7_view.Sources(ledger_url, None), 2025)
    assert sorted(view.filings) == ["GB", "LT"]
    [gb] = view.filings["GB"]
    assert (gb.status, gb.operator_id) == ("accepted", "uk_ltd")
    [gb24] = dac7_view.year_view(dac7_view.Sources(ledger_url, None), 2024).filings["GB"]
    assert (gb24.status, gb24.error_codes) == ("rejected", ("DPI-RS-015",))
    page = lhtml.fromstring(dac7_view.year_page(view, None))
    heads = {
        h.get("id"): " ".join(h.text_content().split()) for h in page.xpath("//h4[starts-with(@id, 'authority-')]")
    }
    assert heads == {"authority-uk_ltd-GB": f"{HMRC}", "authority-default-LT": "LT"}
