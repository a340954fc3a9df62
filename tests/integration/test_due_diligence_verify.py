"""The daily verification of the due-diligence items (``reporting.due_diligence.verify_due_items``):
the unverified TINs and VAT numbers of the state checked by the adapters switched on, the outcomes
recorded in the state and its history, the cap per day and the queue, and no value anywhere but in
the adapters' requests. A source built by hand (SQLite), the ledger on SQLite, and the local VIES
SOAP server of ``tests/verification_servers.py`` (no network).

The identifiers, checked by hand:

- ``39001010000``: a Lithuanian asmens kodas; its check digit is the sum of its first ten digits
  weighted 1, 2, ..., 9, 1 modulo 11: 3 + 18 + 5 + 7 = 33, 33 mod 11 = 0: valid. ``39001010001``
  ends in 1: invalid (python-stdnum's ``lt.asmens``, the stdnum adapter).
- The VAT numbers are German numbers of valid form (``DE`` and nine digits, ISO 7064 MOD 11,10 as
  python-stdnum's ``de.vat`` checks it); what VIES answers for each is the test server's script.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from builders import Marketplace, due_diligence_day, vat_sellers, with_due_diligence_columns, write_config
from verification_servers import ViesSoapServer, consultation_number, running

from reporting.config import load_config
from reporting.due_diligence import seller_history, seller_state, verify_due_items
from reporting.ledger import default_ledger_url, open_ledger
from reporting.ledger import schema as t
from reporting.ledger.verifications import calls
from reporting.source import make_engine

KEY = b"a-test-key-of-at-least-16-bytes"
DAY = date(2026, 3, 2)
VALID, NOT_REGISTERED, FAILING = "DE811907980", "DE129273398", "DE813495425"
FAST = "timeout_seconds = 0.5\nrate_per_second = 100\nmax_attempts = 2\nbackoff_seconds = 0.01\n"


def at_ten(day: date) -> datetime:
    return datetime.combine(day, time(10), UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return default_ledger_url(tmp_path / "ledger")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="module")
def vies_server() -> Iterator[ViesSoapServer]:
    server = ViesSoapServer()
    with running(server):
        yield server


@pytest.fixture
def soap(vies_server: ViesSoapServer) -> Iterator[ViesSoapServer]:
    vies_server.script.clear()
    vies_server.requests.clear()
    vies_server.errors.clear()
    vies_server.script.update({VALID[2:]: ["valid"], NOT_REGISTERED[2:]: ["invalid"], FAILING[2:]: ["http500"]})
    yield vies_server
    assert vies_server.errors == []  # every request followed the WSDL


class Desk:
    """A marketplace, its daily runs and its verifications on fixed days."""

    def __init__(self, tmp: Path, m: Marketplace, extra: str = "", ledger: str | None = None) -> None:
        self.tmp = tmp
        self.source = with_due_diligence_columns(m).write(f"sqlite:///{tmp / 'marketplace.db'}")
        self.ledger = ledger or default_ledger_url(tmp / "ledger")
        self.config_path = write_config(tmp / "dac7.toml", extra=extra)

    def run(self, day: date) -> list[dict[str, Any]]:
        return due_diligence_day(
            self.config_path, self.source, self.ledger, day, self.tmp / "out", self.tmp / "staging"
        )

    def verify(self, day: date) -> dict[str, Any]:
        with open_ledger(self.ledger) as led:
            result = verify_due_items(
                load_config(self.config_path),
                source_url=self.source,
                ledger=led,
                today=day,
                key=KEY,
                clock=lambda: at_ten(day),
                sleep=lambda _: None,
            )
        out = result.as_dict()
        del out["seconds"]
        return out

    def items(self, seller_id: str) -> dict[str, str]:
        with open_ledger(self.ledger) as led:
            state = seller_state(led, seller_id)
        assert state is not None
        return {i: s for i, s in state.items.items() if i in ("tin", "vat")}

    def checks(self, seller_id: str) -> list[tuple[str, str, str]]:
        """The seller's ``verification`` events: (item, state, source)."""
        with open_ledger(self.ledger) as led:
            return [
                (e.detail["item"], e.detail["state"], e.source)
                for e in seller_history(led, seller_id)
                if e.kind == "verification"
            ]


def vies_on(server: ViesSoapServer, *, stdnum: bool = False, max_per_day: int | None = None) -> str:
    cap = f"max_per_day = {max_per_day}\n" if max_per_day else ""
    return (
        f"\n[verification]\n{cap}\n[verification.stdnum]\nenabled = {'true' if stdnum else 'false'}\n"
        f'\n[verification.vies]\nenabled = true\nurl = "{server.url}"\n{FAST}'
    )


def test_by_default_python_stdnum_checks_the_tins_and_the_next_run_requests_an_invalid_one(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1")  # 39001010000: valid
    m.seller("S2", tin="39001010001")  # its check digit should be 0: invalid
    for s in ("S1", "S2"):
        m.tx(s, "2026-01-15 10:00:00", 50_000, activity="personal_services")
    desk = Desk(tmp_path, m)
    desk.run(DAY)
    assert desk.items("S1") == {"tin": "unverified", "vat": "not_applicable"}
    assert desk.verify(DAY) == {
        "operator_id": "default",
        "date": "2026-03-02",
        "adapters": ["stdnum"],
        "due": 2,
        "asked": 2,
        "verified": 1,
        "invalid": 1,
        "unverified": 0,
        "stale": 0,
        "left": 0,
    }
    assert desk.items("S1")["tin"] == "verified" and desk.items("S2")["tin"] == "invalid"
    [(item, state, source)] = desk.checks("S1")
    assert (item, state) == ("tin", "verified")
    assert source.startswith("LT: stdnum (python-stdnum ") and "format and check digits valid (lt.asmens)" in source
    # the next day's run asks S2 for its TIN, as invalid; nothing is verified twice
    feed = desk.run(DAY + timedelta(days=1))
    assert [(x["seller_id"], x["action"], x["items_invalid"]) for x in feed if x["action"] == "request"] == [
        ("S2", "request", ["tin"])
    ]
    assert desk.verify(DAY + timedelta(days=1))["due"] == 0


def test_vies_verifies_one_finds_one_not_registered_and_a_server_error_stays_unverified(
    tmp_path: Path, soap: ViesSoapServer, caplog: pytest.LogCaptureFixture, ledger_url: str
) -> None:
    desk = Desk(tmp_path, vat_sellers(VALID, NOT_REGISTERED, FAILING), vies_on(soap), ledger_url)
    desk.run(DAY)
    caplog.set_level(logging.DEBUG)
    assert desk.verify(DAY) == {
        "operator_id": "default",
        "date": "2026-03-02",
        "adapters": ["vies"],
        "due": 3,
        "asked": 3,
        "verified": 1,
        "invalid": 1,
        "unverified": 1,
        "stale": 0,
        "left": 0,
    }
    assert [desk.items(s)["vat"] for s in ("S1", "S2", "S3")] == ["verified", "invalid", "unverified"]
    # the consultation number (the operator's VAT number is the requester) is the evidence kept
    [(_, _, source)] = desk.checks("S1")
    assert source.startswith("DE: vies (VIES SOAP checkVatApprox http://127.0.0.1:")
    assert source.endswith(f"; consultation number {consultation_number(VALID[2:])}")
    # the server error: retried (max_attempts 2), then recorded as not verified; the state unchanged
    assert soap.asked(FAILING[2:]) == 2
    [(item, state, reason)] = desk.checks("S3")
    assert (item, state) == ("vat", "unverified")
    assert "HTTP 500" in reason and "gave up after 2 call(s)" in reason
    with open_ledger(desk.ledger) as led:
        assert [(c.attempt, c.outcome) for c in calls(led.engine, seller_id="S3")] == [
            (1, "unverified"),
            (2, "unverified"),
        ]
    # no identifier in the log
    for number in (VALID, NOT_REGISTERED, FAILING):
        assert number[2:] not in caplog.text


def test_at_most_max_per_day_calls_to_a_service_and_the_items_left_the_next_day_unrecorded(
    tmp_path: Path, soap: ViesSoapServer, ledger_url: str
) -> None:
    """``max_per_day = 2`` counts VIES's calls: S1 and S2 take one each, S3 is left (no event:
    it was not tried) and is the next day's; a retry is a call too (the cap stops it)."""
    soap.script[FAILING[2:]] = ["valid"]
    desk = Desk(tmp_path, vat_sellers(VALID, NOT_REGISTERED, FAILING), vies_on(soap, max_per_day=2), ledger_url)
    desk.run(DAY)
    first = desk.verify(DAY)
    assert (first["due"], first["asked"], first["verified"], first["invalid"], first["left"]) == (3, 2, 1, 1, 1)
    assert soap.asked(FAILING[2:]) == 0 and desk.checks("S3") == []
    assert [desk.items(s)["vat"] for s in ("S1", "S2", "S3")] == ["verified", "invalid", "unverified"]
    day2 = DAY + timedelta(days=1)
    desk.run(day2)
    second = desk.verify(day2)
    assert (second["due"], second["asked"], second["verified"], second["left"]) == (1, 1, 1, 0)
    assert desk.items("S3")["vat"] == "verified" and soap.asked(FAILING[2:]) == 1


def test_a_retry_counts_as_a_call_of_the_day(tmp_path: Path, soap: ViesSoapServer) -> None:
    """``max_attempts = 2``, ``max_per_day = 1``: the server error is not retried, the day's one
    call is spent; the item is recorded as tried, not verified."""
    desk = Desk(tmp_path, vat_sellers(FAILING), vies_on(soap, max_per_day=1))
    desk.run(DAY)
    result = desk.verify(DAY)
    assert (result["asked"], result["unverified"], result["left"]) == (1, 1, 0)
    assert soap.asked(FAILING[2:]) == 1
    [(_, state, reason)] = desk.checks("S1")
    assert state == "unverified" and "HTTP 500" in reason and "gave up after 1 call(s)" in reason


def test_a_seller_in_an_open_cycle_is_verified_first(tmp_path: Path, soap: ViesSoapServer) -> None:
    desk = Desk(tmp_path, vat_sellers(VALID, NOT_REGISTERED), vies_on(soap, max_per_day=1))
    desk.run(DAY)
    with open_ledger(desk.ledger) as led, led.engine.begin() as conn:  # S2 was asked for another item
        conn.execute(sa.update(t.due_diligence).where(t.due_diligence.c.seller_id == "S2").values(requested_on=DAY))
    result = desk.verify(DAY)
    assert (result["due"], result["asked"], result["invalid"], result["left"]) == (2, 1, 1, 1)
    assert soap.asked(VALID[2:]) == 0 and desk.items("S1")["vat"] == "unverified"


def test_a_value_changed_since_the_run_is_not_recorded(tmp_path: Path, soap: ViesSoapServer) -> None:
    desk = Desk(tmp_path, vat_sellers(VALID, NOT_REGISTERED), vies_on(soap))
    desk.run(DAY)
    engine = make_engine(desk.source)
    with engine.begin() as conn:  # S1 corrects its VAT number after the run, before the verification
        conn.execute(sa.text("update sellers set vat_id = 'DE136695976' where seller_id = 'S1'"))
    engine.dispose()
    result = desk.verify(DAY)
    assert (result["asked"], result["stale"], result["invalid"], result["verified"]) == (2, 1, 1, 0)
    assert desk.items("S1")["vat"] == "unverified" and desk.checks("S1") == []
    assert soap.asked("136695976") == 0  # nothing the state has not seen is sent


def test_a_seller_with_two_tins_is_verified_when_both_are_and_invalid_when_one_is(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1")
    m.tin("S1", "38703181745", "LT")  # valid too
    m.seller("S2")
    m.tin("S2", "39001010001", "LT")  # one valid, one not
    m.seller("S3", tin=None)
    m.tin("S3", "39001010000", " ")  # its issuing state left blank
    for s in ("S1", "S2", "S3"):
        m.tx(s, "2026-01-15 10:00:00", 50_000, activity="personal_services")
    desk = Desk(tmp_path, m)
    desk.run(DAY + timedelta(days=1))
    result = desk.verify(DAY + timedelta(days=1))
    assert (result["verified"], result["invalid"], result["unverified"]) == (1, 1, 1)
    assert (desk.items("S1")["tin"], desk.items("S2")["tin"], desk.items("S3")["tin"]) == (
        "verified",
        "invalid",
        "unverified",
    )
    [(_, _, both)] = desk.checks("S1")
    assert both.count("LT: stdnum") == 2 and " | " in both
    [(_, state, reason)] = desk.checks("S3")
    assert (
        state == "unverified"
        and reason == "not checked: seller S3: a TIN without its issuing state (seller_tins.issued_by)"
    )


def test_an_invalid_vat_number_is_asked_again_when_vies_answer_may_no_longer_be_reused(
    tmp_path: Path, soap: ViesSoapServer
) -> None:
    """``invalid_cache_days = 1`` (the default): found invalid on day 0, it is not asked on day 1,
    and is asked on day 2, when VIES says it is registered now."""
    desk = Desk(tmp_path, vat_sellers(NOT_REGISTERED), vies_on(soap))
    desk.run(DAY)
    assert desk.verify(DAY)["invalid"] == 1
    desk.run(DAY + timedelta(days=1))
    assert desk.verify(DAY + timedelta(days=1))["due"] == 0
    soap.script[NOT_REGISTERED[2:]] = ["valid"]
    desk.run(DAY + timedelta(days=2))
    again = desk.verify(DAY + timedelta(days=2))
    assert (again["due"], again["verified"]) == (1, 1)
    assert desk.items("S1")["vat"] == "verified"
    assert [s for _, s, _ in desk.checks("S1")] == ["invalid", "verified"]


def test_with_vies_on_python_stdnum_alone_verifies_no_vat_number_vies_did_not_answer_for(
    tmp_path: Path, soap: ViesSoapServer
) -> None:
    """stdnum and VIES on; VIES verifies S1's number and answers HTTP 500 for S2's (then is not
    asked for S3's, earlier in this batch): S2's number, of valid form (python-stdnum), stays
    unverified with VIES's reason (PStTG § 18(1) sentence 2: the EU's interface decides);
    S3's, whose check digit is wrong (``DE811907981``: 1 where 0 belongs), is invalid."""
    bad_form = "DE811907981"
    soap.script[bad_form[2:]] = ["http500"]
    desk = Desk(tmp_path, vat_sellers(VALID, FAILING, bad_form), vies_on(soap, stdnum=True))
    desk.run(DAY)
    result = desk.verify(DAY)
    assert result["adapters"] == ["stdnum", "vies"]
    assert (result["asked"], result["verified"], result["invalid"], result["unverified"]) == (3, 1, 1, 1)
    assert [desk.items(s)["vat"] for s in ("S1", "S2", "S3")] == ["verified", "unverified", "invalid"]
    [(_, _, by_vies)] = desk.checks("S1")
    assert by_vies.startswith("DE: vies (VIES SOAP")
    [(_, state, reason)] = desk.checks("S2")
    assert state == "unverified"
    assert reason.startswith("DE: vies: HTTP 500") and "stdnum's format check alone does not verify it" in reason
    [(_, state, by_stdnum)] = desk.checks("S3")
    assert state == "invalid" and by_stdnum.startswith("DE: stdnum (python-stdnum")
    # the next day S2 is due again, and VIES verifies it
    soap.script[FAILING[2:]] = ["valid"]
    day2 = DAY + timedelta(days=1)
    desk.run(day2)
    assert desk.verify(day2)["verified"] == 1 and desk.items("S2")["vat"] == "verified"


def test_max_per_day_caps_the_services_calls_and_python_stdnum_checks_every_item(
    tmp_path: Path, soap: ViesSoapServer
) -> None:
    """Five items due (three Lithuanian TINs, no remote adapter for them; two VAT numbers),
    ``max_per_day = 1``: python-stdnum checks the three TINs (S3's check digit is wrong), VIES
    answers once (S1's), S2's VAT number is left for the next day."""
    m = Marketplace()
    m.seller("S1", vat_id=VALID)
    m.seller("S2", tin="38703181745", vat_id=NOT_REGISTERED)
    m.seller("S3", tin="39001010001")
    for s in ("S1", "S2", "S3"):
        m.tx(s, "2026-01-15 10:00:00", 50_000, activity="personal_services")
    desk = Desk(tmp_path, m, vies_on(soap, stdnum=True, max_per_day=1))
    desk.run(DAY)
    result = desk.verify(DAY)
    assert (result["due"], result["asked"], result["verified"], result["invalid"], result["left"]) == (5, 4, 3, 1, 1)
    assert desk.items("S1") == {"tin": "verified", "vat": "verified"}
    assert desk.items("S2") == {"tin": "verified", "vat": "unverified"}
    assert desk.items("S3")["tin"] == "invalid"
    assert soap.asked(VALID[2:]) == 1 and soap.asked(NOT_REGISTERED[2:]) == 0
    assert [(i, s) for i, s, _ in desk.checks("S2")] == [("tin", "verified")]  # the VAT number: not tried


def test_an_open_cycle_item_a_service_keeps_failing_does_not_take_every_day(
    tmp_path: Path, soap: ViesSoapServer
) -> None:
    """``max_per_day = 1``; S1, in an open cycle, gets HTTP 500 every day. Day 1: all never
    tried, S1 first (open cycle); day 2: S2 (never tried); day 3: S3; day 4: S1 again."""
    other = "DE136695976"
    soap.script[other[2:]] = ["valid"]
    desk = Desk(tmp_path, vat_sellers(FAILING, VALID, other), vies_on(soap, max_per_day=1))
    desk.run(DAY)
    with open_ledger(desk.ledger) as led, led.engine.begin() as conn:
        conn.execute(sa.update(t.due_diligence).where(t.due_diligence.c.seller_id == "S1").values(requested_on=DAY))
    asked = []
    for n in range(4):
        before = {s: soap.asked(s) for s in (FAILING[2:], VALID[2:], other[2:])}
        desk.verify(DAY + timedelta(days=n))
        asked.append([s for s in before if soap.asked(s) > before[s]])
    assert asked == [[FAILING[2:]], [VALID[2:]], [other[2:]], [FAILING[2:]]]
    assert [desk.items(s)["vat"] for s in ("S1", "S2", "S3")] == ["unverified", "verified", "verified"]


def test_an_item_no_adapter_checks_is_recorded_once_until_its_value_changes(
    tmp_path: Path, soap: ViesSoapServer
) -> None:
    """VIES alone checks no TIN: S1's Lithuanian TIN is recorded not checked on day 1, not again
    on days 2 to 4 (same reason, same value), and again when the seller's TIN changes (day 5)."""
    m = Marketplace()
    m.seller("S1")
    m.tx("S1", "2026-01-15 10:00:00", 50_000, activity="personal_services")
    desk = Desk(tmp_path, m, vies_on(soap))
    desk.run(DAY)
    for n in range(4):
        day = DAY + timedelta(days=n)
        desk.run(day)
        assert desk.verify(day)["unverified"] == 1
    [(item, state, reason)] = desk.checks("S1")
    assert (item, state) == ("tin", "unverified")
    assert reason == "LT: not checked: no adapter of this batch checks a tin of LT"
    engine = make_engine(desk.source)
    with engine.begin() as conn:
        conn.execute(sa.text("update seller_tins set tin = '38703181745' where seller_id = 'S1'"))
    engine.dispose()
    day5 = DAY + timedelta(days=4)
    desk.run(day5)
    assert desk.verify(day5)["unverified"] == 1
    assert [(i, s) for i, s, _ in desk.checks("S1")] == [("tin", "unverified")] * 2
