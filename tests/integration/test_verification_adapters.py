"""The verification adapters against local servers that speak VIES's SOAP and REST interfaces and
TIN on the Web's SOAP interface (tests/verification_servers.py), with the cache and the record of
every call in a real ledger database (SQLite; PostgreSQL where marked).

Each adapter: a valid and an invalid answer, every fault class (retried or not, how far it
reaches), retries then success, retries exhausted, a timeout, an HTTP 500, a malformed answer, the
rate limit (measured at the server), answers from the cache (no second request), and the rows
written to ``ledger_verification_calls``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from verification_servers import TEST_NUMBERS, TinServer, ViesRestServer, ViesSoapServer, consultation_number, running

from reporting.config import Config, parse_config
from reporting.ledger import Ledger, default_ledger_url, open_ledger
from reporting.ledger import schema as t
from reporting.ledger.verifications import CachedAnswer, CallRecord, calls, record
from reporting.verification import (
    Item,
    VerificationResult,
    build_adapters,
    conclusion,
    identifier_hash,
    results_by_item,
    verify_batch,
)
from reporting.verification.model import MAX_SELLER_ID, MAX_VALUE, cache_key

KEY = b"a-test-key-of-at-least-16-bytes"
TODAY = date(2027, 2, 8)
FAST = {"timeout_seconds": 0.3, "rate_per_second": 100, "max_attempts": 3, "backoff_seconds": 0.01}
#: How much earlier than the rate limit's spacing a request may arrive at a server on a busy machine:
#: the limiter spaces the planned starts, and a late start followed by one on time, or the first
#: request's connection set-up, narrows the gap seen at the server by a few milliseconds (up to 25
#: were seen with other tests running). Without the limit, the requests come < 10 ms apart.
JITTER = 0.05
OPERATOR_VAT = "DE136695976"


def config(operator_vat: str | None = OPERATOR_VAT, **tables: dict[str, Any]) -> Config:
    operator: dict[str, Any] = {
        "name": "Demo Platform GmbH",
        "tin": "12345678901",
        "tin_issued_by": "DE",
        "nexus": "RPONEX1",
        "address": {"city": "Berlin", "country": "DE"},
    }
    if operator_vat:
        operator["vat"] = operator_vat
    return parse_config({"operator": operator, "verification": tables})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def any_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    url = default_ledger_url(tmp_path) if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    with open_ledger(url) as led:
        yield led


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(default_ledger_url(tmp_path)) as led:
        yield led


@pytest.fixture(scope="module")
def _servers() -> Iterator[dict[str, Any]]:
    servers = {"soap": ViesSoapServer(), "rest": ViesRestServer(), "tin": TinServer()}
    with running(servers["soap"]), running(servers["rest"]), running(servers["tin"]):
        yield servers


def _fresh(server: Any) -> Any:
    """A module's server as new: no script, no requests seen, no errors, the default behaviours."""
    server.script.clear()
    server.requests.clear()
    server.errors.clear()
    server.slow_seconds = 1.0
    if isinstance(server, ViesRestServer):
        server.availability, server.vow_available, server.status_behaviour = {}, True, "ok"
    return server


@pytest.fixture
def soap(_servers: dict[str, Any]) -> Iterator[ViesSoapServer]:
    server = _fresh(_servers["soap"])
    yield server
    assert server.errors == []  # every request followed the WSDL


@pytest.fixture
def rest(_servers: dict[str, Any]) -> Iterator[ViesRestServer]:
    server = _fresh(_servers["rest"])
    yield server
    assert server.errors == []  # every request followed the Swagger description


@pytest.fixture
def tin(_servers: dict[str, Any]) -> Iterator[TinServer]:
    server = _fresh(_servers["tin"])
    yield server
    assert server.errors == []


def vies(server: ViesSoapServer | ViesRestServer, interface: str = "soap", **settings: Any) -> Config:
    return config(vies={"enabled": True, "interface": interface, "url": server.url, **FAST, **settings})


def vat(number: str, seller: str = "S1", country: str = "DE") -> Item:
    return Item(seller, "vat", country, f"{country}{number}")


def run(
    items: list[Item], cfg: Config, ledger: Ledger, *, names: list[str] | None = None, **kw: Any
) -> list[VerificationResult]:
    adapters = build_adapters(cfg, names if names is not None else ["vies"])
    today = kw.pop("today", TODAY)
    kw.setdefault("clock", lambda: at_ten(today))  # the batch runs on its day, whatever the machine's date
    try:
        return verify_batch(items, adapters, ledger, today, key=KEY, **kw)
    finally:
        for a in adapters:
            a.close()


def at_ten(day: date) -> datetime:
    """10:00 UTC on ``day``: the clock of a batch run on that day."""
    return datetime.combine(day, datetime.min.time(), UTC).replace(hour=10)


def recorded(ledger: Ledger) -> list[Any]:
    with ledger.engine.connect() as conn:
        return list(conn.execute(sa.select(t.verification_calls).order_by(t.verification_calls.c.id)))


# ------------------------------------------------------------------------------------- VIES SOAP


def test_vies_soap_valid_with_the_consultation_number_as_evidence(soap: ViesSoapServer, ledger: Ledger) -> None:
    [r] = run([vat("100")], vies(soap), ledger)
    assert (r.state, r.level, r.adapter) == ("verified", "registration", "vies")
    assert r.evidence == consultation_number("100")  # requestIdentifier of checkVatApprox
    assert r.request_date == date(2027, 2, 8)
    assert r.source == f"VIES SOAP checkVatApprox {soap.url}" and not r.cached and r.attempts == 1
    [request] = soap.requests
    assert request["operation"] == "checkVatApprox"
    assert request["fields"] == {
        "countryCode": "DE",
        "vatNumber": "100",
        "requesterCountryCode": "DE",
        "requesterVatNumber": "136695976",
    }
    [row] = recorded(ledger)
    assert (row.adapter, row.kind, row.country, row.attempt, row.outcome) == ("vies", "vat", "DE", 1, "verified")
    assert row.evidence == consultation_number("100") and row.request_date == date(2027, 2, 8)
    assert row.identifier_hash == identifier_hash(KEY, vat("100"))
    assert row.identifier_masked == "***"  # DE100: five characters, too few for its end to show
    assert row.seller_id == "S1" and row.source == r.source and row.duration_ms >= 0


def test_vies_soap_without_the_operators_vat_number_uses_check_vat_and_has_no_evidence(
    soap: ViesSoapServer, ledger: Ledger
) -> None:
    cfg = config(operator_vat=None, vies={"enabled": True, "url": soap.url, **FAST})
    [r] = run([vat("100")], cfg, ledger)
    assert (r.state, r.evidence) == ("verified", None)
    assert soap.requests[0]["operation"] == "checkVat" and r.source.startswith("VIES SOAP checkVat ")


def test_vies_soap_invalid_is_invalid_and_greece_is_asked_as_el(soap: ViesSoapServer, ledger: Ledger) -> None:
    soap.script["094259216"] = ["invalid"]
    [r] = run([Item("S1", "vat", "GR", "GR 094 259 216")], vies(soap), ledger)
    assert (r.state, r.detail) == ("invalid", "VIES: not valid (not registered, or no longer)")
    assert soap.requests[0]["fields"]["countryCode"] == "EL"
    assert soap.requests[0]["fields"]["vatNumber"] == "094259216"  # compact, without its prefix


@pytest.mark.parametrize("interface", ["soap", "rest"])
def test_a_greek_vat_number_as_gr_or_el_is_one_cache_entry(
    interface: str, soap: ViesSoapServer, rest: ViesRestServer, any_ledger: Ledger
) -> None:
    """VIES calls Greece EL, ISO 3166 GR: the number asked once under one spelling is answered
    from the cache under every other, for any seller; the calls and the cache hold one key."""
    server = soap if interface == "soap" else rest
    cfg = vies(server, interface)
    [first] = run([Item("S1", "vat", "GR", "GR094259216")], cfg, any_ledger)
    assert (first.state, first.cached, server.asked("094259216")) == ("verified", False, 1)
    spellings = [
        Item("S2", "vat", "EL", "EL094259216"),
        Item("S3", "vat", "EL", "el 094 259 216"),
        Item("S4", "vat", "GR", "094259216"),  # the source without a prefix, the country ISO's
        Item("S5", "vat", "EL", "094259216"),
    ]
    again = run(spellings, cfg, any_ledger)
    assert [(r.state, r.cached, r.attempts) for r in again] == [("verified", True, 0)] * 4
    assert server.asked("094259216") == 1
    assert [r["fields"]["countryCode"] for r in server.requests if r["key"] == "094259216"] == ["EL"]
    assert {r.identifier_hash for r in [first, *again]} == {first.identifier_hash}
    with any_ledger.engine.connect() as conn:
        assert len(conn.execute(sa.select(t.verification_cache)).all()) == 1
    # the other way round: EL first, then GR from the cache; another Greek number is asked
    [el] = run([Item("S6", "vat", "EL", "EL 998 877 665")], cfg, any_ledger)
    [gr] = run([Item("S7", "vat", "GR", "GR998877665")], cfg, any_ledger)
    assert (el.cached, gr.cached, server.asked("998877665")) == (False, True, 1)


def test_stdnum_checks_a_greek_vat_number_as_vies_is_asked_about_it(any_ledger: Ledger) -> None:
    """python-stdnum reads GR094259216 and EL094259216 alike; without a prefix the number is
    checked with its country's (as VIES is asked), so one cache entry holds one answer for all."""
    spellings = [Item("S1", "vat", "GR", "094259216"), Item("S2", "vat", "EL", "EL094259216")]
    first = run(spellings[:1], config(), any_ledger, names=["stdnum"])
    again = run(spellings, config(), any_ledger, names=["stdnum"])
    assert [(r.state, r.cached) for r in first + again] == [("verified", False), ("verified", True), ("verified", True)]
    [wrong] = run([Item("S3", "vat", "GR", "GR094259217")], config(), any_ledger, names=["stdnum"])
    assert (wrong.state, wrong.cached) == ("invalid", False)  # the check digit


#: every fault of the VIES test service: (state, retried, what a later item of the same country /
#: of another country gets in the same batch)
FAULT_CLASSES = {
    "INVALID_INPUT": ("invalid", False, "asked", "asked"),
    "INVALID_REQUESTER_INFO": ("unverified", False, "not asked", "not asked"),
    "SERVICE_UNAVAILABLE": ("unverified", True, "not asked", "not asked"),
    "MS_UNAVAILABLE": ("unverified", True, "not asked", "asked"),
    "TIMEOUT": ("unverified", True, "not asked", "asked"),
    "VAT_BLOCKED": ("unverified", False, "asked", "asked"),
    "IP_BLOCKED": ("unverified", False, "not asked", "not asked"),
    "GLOBAL_MAX_CONCURRENT_REQ": ("unverified", True, "not asked", "not asked"),
    "GLOBAL_MAX_CONCURRENT_REQ_TIME": ("unverified", True, "not asked", "not asked"),
    "MS_MAX_CONCURRENT_REQ": ("unverified", True, "not asked", "asked"),
    "MS_MAX_CONCURRENT_REQ_TIME": ("unverified", True, "not asked", "asked"),
}


@pytest.mark.parametrize("interface", ["soap", "rest"])
@pytest.mark.parametrize(
    ("number", "code"), [(n, b.removeprefix("fault:")) for n, b in TEST_NUMBERS.items() if ":" in b]
)
def test_every_vies_fault_class(
    interface: str, number: str, code: str, soap: ViesSoapServer, rest: ViesRestServer, ledger: Ledger
) -> None:
    server = soap if interface == "soap" else rest
    state, retried, same_country, other_country = FAULT_CLASSES[code]
    first, again, elsewhere = run(
        [vat(number, "S1"), vat("777", "S2"), vat("888", "S3", country="FR")], vies(server, interface), ledger
    )
    assert first.state == state and code in first.detail
    assert first.attempts == (3 if retried else 1) == server.asked(number)
    assert ("gave up after 3 call(s)" in first.detail) == retried
    for result, expected, key in ((again, same_country, "777"), (elsewhere, other_country, "888")):
        if expected == "asked":
            assert (result.state, server.asked(key)) == ("verified", 1)
        else:
            assert result.state == "unverified" and result.attempts == 0 and server.asked(key) == 0
            assert result.detail.startswith("not asked: ") and code in result.detail
    rows = recorded(ledger)
    assert [r.attempt for r in rows if r.seller_id == "S1"] == list(range(1, first.attempts + 1))
    assert all(r.outcome == state for r in rows if r.seller_id == "S1")
    assert any(r.seller_id == "S2" for r in rows) == (same_country == "asked")  # not asked: no record
    assert any(r.seller_id == "S3" for r in rows) == (other_country == "asked")


def test_vies_soap_retries_then_success(soap: ViesSoapServer, ledger: Ledger) -> None:
    soap.script["123"] = ["fault:MS_UNAVAILABLE", "fault:TIMEOUT", "valid"]
    [r] = run([vat("123")], vies(soap), ledger)
    assert (r.state, r.attempts, r.evidence) == ("verified", 3, consultation_number("123"))
    rows = recorded(ledger)
    assert [(x.attempt, x.outcome) for x in rows] == [(1, "unverified"), (2, "unverified"), (3, "verified")]
    assert "MS_UNAVAILABLE" in rows[0].detail and "TIMEOUT" in rows[1].detail and rows[2].evidence


def test_vies_soap_backoff_doubles_between_retries(soap: ViesSoapServer, ledger: Ledger) -> None:
    soap.script["123"] = ["fault:SERVICE_UNAVAILABLE"]
    waits: list[float] = []
    [r] = run([vat("123")], vies(soap, max_attempts=4, backoff_seconds=1.5), ledger, sleep=waits.append)
    assert waits == [1.5, 3.0, 6.0] and r.attempts == 4


def test_vies_soap_timeout_is_retried_then_the_service_is_not_asked_again(soap: ViesSoapServer, ledger: Ledger) -> None:
    soap.slow_seconds = 1.0
    soap.script["123"] = ["slow"]
    started = time.monotonic()
    first, second = run([vat("123"), vat("100", "S2")], vies(soap, timeout_seconds=0.2), ledger)
    elapsed = time.monotonic() - started
    assert first.state == "unverified" and first.attempts == 3
    assert first.detail == "no answer within 0.2 s (timeout); gave up after 3 call(s)"
    assert second.state == "unverified" and second.attempts == 0 and soap.asked("100") == 0
    assert elapsed < 2.5  # three timeouts of 0.2 s and the backoff, not three answers of 1 s


@pytest.mark.parametrize(
    ("behaviour", "detail", "retried"),
    [
        ("http500", "HTTP 500 without a checkVatApproxResponse", True),  # an HTML page parses as XML
        ("malformed", "an answer that is not a SOAP envelope (HTTP 200)", True),
        ("empty", "an answer that is not a SOAP envelope (HTTP 200)", True),
        ("http404", "HTTP 404 without a checkVatApproxResponse: is the configured url the service's address?", False),
    ],
)
def test_vies_soap_answers_that_are_not_answers(
    behaviour: str, detail: str, retried: bool, soap: ViesSoapServer, ledger: Ledger
) -> None:
    soap.script["123"] = [behaviour]
    [r] = run([vat("123")], vies(soap), ledger)
    assert r.state == "unverified" and r.detail.startswith(detail)
    assert r.attempts == (3 if retried else 1)


def test_vies_soap_an_http_500_then_a_fault_then_success(soap: ViesSoapServer, ledger: Ledger) -> None:
    soap.script["123"] = ["http500", "malformed", "valid"]
    [r] = run([vat("123")], vies(soap), ledger)
    assert (r.state, r.attempts) == ("verified", 3)


def test_the_rate_limit_is_honoured(soap: ViesSoapServer, ledger: Ledger) -> None:
    items = [vat(str(700 + i), f"S{i}") for i in range(6)]
    started = time.monotonic()
    results = run(items, vies(soap, rate_per_second=5), ledger)
    elapsed = time.monotonic() - started
    assert [r.state for r in results] == ["verified"] * 6
    times = sorted(r["at"] for r in soap.requests)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.2 - JITTER and elapsed >= 1.0  # 5 per second: 0.2 s apart, 6 requests in >= 1 s
    assert times[-1] - times[0] >= 1.0 - JITTER


def test_retries_wait_for_the_rate_limit_too(soap: ViesSoapServer, ledger: Ledger) -> None:
    soap.script["123"] = ["fault:MS_UNAVAILABLE", "valid"]
    run([vat("123")], vies(soap, rate_per_second=4, backoff_seconds=0), ledger)
    first, second = (r["at"] for r in soap.requests)
    assert second - first >= 0.25 - JITTER


def test_answers_come_from_the_cache_within_36_months_and_are_asked_again_after(
    soap: ViesSoapServer, any_ledger: Ledger
) -> None:
    at = datetime(2027, 2, 8, 10, 0, tzinfo=UTC)
    [first] = run([vat("100")], vies(soap), any_ledger, clock=lambda: at)
    rows = len(recorded(any_ledger))
    # the same number, another seller, another spelling: one identifier, one cached answer
    [again] = run([Item("S9", "vat", "DE", "de 100")], vies(soap), any_ledger, today=date(2030, 2, 8))
    assert again.cached and again.attempts == 0 and soap.asked("100") == 1
    assert (again.state, again.evidence, again.checked_at, again.source) == (
        "verified",
        consultation_number("100"),
        at,
        first.source,
    )
    assert len(recorded(any_ledger)) == rows  # no call, no record
    # 8 February 2027 + 36 months = 8 February 2030; the day after, the answer is too old
    [late] = run([vat("100")], vies(soap), any_ledger, today=date(2030, 2, 9))
    assert not late.cached and soap.asked("100") == 2


def test_an_invalid_answer_is_cached_an_unverified_one_is_not(soap: ViesSoapServer, any_ledger: Ledger) -> None:
    soap.script["301"] = ["fault:MS_UNAVAILABLE", "fault:MS_UNAVAILABLE", "fault:MS_UNAVAILABLE", "valid"]
    run([vat("200"), vat("301", "S2")], vies(soap), any_ledger)
    second = run([vat("200"), vat("301", "S2")], vies(soap), any_ledger)
    assert [(r.state, r.cached) for r in second] == [("invalid", True), ("verified", False)]
    with any_ledger.engine.connect() as conn:
        cached = conn.execute(sa.select(t.verification_cache.c.state)).scalars().all()
    assert sorted(cached) == ["invalid", "verified"]


@pytest.mark.parametrize("interface", ["soap", "rest"])
def test_a_vies_invalid_is_reused_for_a_day_only_then_vies_is_asked_again(
    interface: str, soap: ViesSoapServer, rest: ViesRestServer, any_ledger: Ledger
) -> None:
    server: Any = soap if interface == "soap" else rest
    cfg = vies(server, interface)
    server.script["811569869"] = ["invalid", "invalid", "valid"]  # the registration becomes active later
    item = vat("811569869")

    def on(day: date) -> tuple[str, bool]:
        [r] = run([item], cfg, any_ledger, today=day, clock=lambda: at_ten(day))
        return r.state, r.cached

    assert on(TODAY) == ("invalid", False)
    assert on(TODAY) == ("invalid", True)  # a rerun the same day
    assert on(TODAY + timedelta(days=1)) == ("invalid", True)  # the next day: invalid_cache_days = 1
    assert on(TODAY + timedelta(days=2)) == ("invalid", False)  # asked again
    assert server.asked("811569869") == 2
    # 34 months later, the number registered meanwhile: asked, not answered from the cache
    assert on(date(2029, 12, 1)) == ("verified", False) and server.asked("811569869") == 3
    assert on(date(2029, 12, 2)) == ("verified", True)  # a verified answer stays 36 months
    # invalid_cache_days = 0: the day of the answer only
    server.script["200"] = ["invalid"]
    once = vies(server, interface, invalid_cache_days=0)
    [r] = run([vat("200")], once, any_ledger, clock=lambda: at_ten(TODAY))
    [r] = run([vat("200")], once, any_ledger, clock=lambda: at_ten(TODAY))
    assert r.cached
    tomorrow = TODAY + timedelta(days=1)
    [r] = run([vat("200")], once, any_ledger, today=tomorrow, clock=lambda: at_ten(tomorrow))
    assert not r.cached and server.asked("200") == 2


def test_an_invalid_format_is_reused_as_long_as_a_valid_one(any_ledger: Ledger) -> None:
    item = Item("S1", "vat", "DE", "DE136695977")  # a wrong check digit: no registration can change that
    [first] = run([item], config(), any_ledger, names=["stdnum"], clock=lambda: at_ten(TODAY))
    [later] = run([item], config(), any_ledger, names=["stdnum"], today=date(2030, 2, 8))
    assert (first.state, later.state, later.cached) == ("invalid", "invalid", True)


def test_refresh_passes_over_the_cache_for_resubmitted_data(soap: ViesSoapServer, any_ledger: Ledger) -> None:
    cfg = vies(soap)
    run([vat("100", "S1"), vat("101", "S2")], cfg, any_ledger)  # both verified, cached
    assert (soap.asked("100"), soap.asked("101")) == (1, 1)
    soap.script["100"] = ["invalid"]
    # S1 resubmitted its data (the same number): asked again; another seller with the same number
    # later in the batch takes the answer just given; S2 is not refreshed: from the cache
    mine, same_number, other = run(
        [vat("100", "S1"), vat("100", "S3"), vat("101", "S2")], cfg, any_ledger, refresh=["S1"]
    )
    assert [(r.state, r.cached) for r in (mine, same_number, other)] == [
        ("invalid", False),
        ("invalid", True),
        ("verified", True),
    ]
    assert (soap.asked("100"), soap.asked("101")) == (2, 1)
    # refreshed by item: only that seller's item with that identifier
    soap.script["101"] = ["invalid"]
    [again] = run([vat("101", "S2")], cfg, any_ledger, refresh=[vat("101", "S9")])  # another seller's item
    assert again.cached and soap.asked("101") == 1
    [again] = run([vat("101", "S2")], cfg, any_ledger, refresh=[Item("S2", "vat", "DE", "de 101")])
    assert (again.state, again.cached, soap.asked("101")) == ("invalid", False, 2)
    # the new answer replaced the old one in the cache
    [cached] = run([vat("101", "S2")], cfg, any_ledger)
    assert (cached.state, cached.cached) == ("invalid", True)
    with pytest.raises(TypeError, match="refresh takes seller ids"):
        run([vat("101", "S2")], cfg, any_ledger, refresh=[101])


def test_cache_months_zero_asks_every_time(soap: ViesSoapServer, ledger: Ledger) -> None:
    run([vat("100")], vies(soap, cache_months=0), ledger)
    [again] = run([vat("100")], vies(soap, cache_months=0), ledger)
    assert not again.cached and soap.asked("100") == 2


def test_one_identifier_twice_in_a_batch_is_asked_once(soap: ViesSoapServer, ledger: Ledger) -> None:
    a, b = run([vat("100", "S1"), vat("100", "S2")], vies(soap), ledger)
    assert (a.cached, b.cached, soap.asked("100")) == (False, True, 1)


def test_the_call_limit_of_a_batch(soap: ViesSoapServer, ledger: Ledger) -> None:
    results = run([vat(str(700 + i), f"S{i}") for i in range(4)], vies(soap), ledger, max_calls=2)
    assert [r.state for r in results] == ["verified", "verified", "unverified", "unverified"]
    assert "limit of 2 call(s)" in results[2].detail and len(soap.requests) == 2


def test_no_identifier_in_the_record_the_logs_or_the_results_text(
    soap: ViesSoapServer, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    soap.script["987654321"] = ["fault:MS_UNAVAILABLE", "valid"]
    caplog.set_level(logging.DEBUG)
    [r] = run([vat("987654321")], vies(soap), ledger)
    assert r.state == "verified"
    texts = [rec.getMessage() for rec in caplog.records] + [repr(r), r.detail, r.source]
    for row in recorded(ledger):
        texts += [str(v) for v in row]
    assert texts and not [x for x in texts if "987654321" in x or "87654321" in x]
    assert "***321" in {row.identifier_masked for row in recorded(ledger)}


def test_the_longest_identifier_and_seller_id_are_recorded_and_the_vies_call_with_them(
    soap: ViesSoapServer, any_ledger: Ledger
) -> None:
    seller = "S" * MAX_SELLER_ID
    number = "9" * (MAX_VALUE - 2)  # with its prefix DE: the longest value an item takes
    soap.script[number] = ["fault:INVALID_INPUT"]  # VIES's answer to a number out of its pattern
    items = [Item(seller, "tin", "DE", "1" * MAX_VALUE), vat(number, seller)]
    results = run(items, vies(soap), any_ledger, names=["stdnum", "vies"])
    states = [(r.adapter, r.state) for r in results]
    assert states == [("stdnum", "invalid"), ("stdnum", "invalid"), ("vies", "invalid")]
    assert soap.asked(number) == 1
    rows = recorded(any_ledger)
    assert [(r.adapter, r.kind, r.identifier_masked, r.seller_id) for r in rows] == [
        ("stdnum", "tin", "***111", seller),
        ("stdnum", "vat", "***999", seller),
        ("vies", "vat", "***999", seller),  # the call made is recorded
    ]
    [again] = run([vat(number, seller)], vies(soap), any_ledger)
    assert again.cached and soap.asked(number) == 1


def test_the_record_cuts_a_text_to_its_column_rather_than_lose_the_call(any_ledger: Ledger) -> None:
    at = datetime(2027, 2, 8, 10, 0)
    call = CallRecord(
        at, "vies", "vat", "DEU", "f" * 64, "*" * 50 + "123", "S" * 250, 1, "verified", "d" * 400, "E" * 150, None,
        "s" * 500,
    )  # fmt: skip
    answer = CachedAnswer("vies", "f" * 64, "vat", "DEU", "verified", "d" * 400, "E" * 150, None, "s" * 500, at)
    record(any_ledger.engine, [call], [answer])
    [row] = recorded(any_ledger)
    assert (row.country, row.identifier_masked, row.seller_id) == ("DE", "*" * 40, "S" * 200)
    assert (len(row.detail), len(row.evidence), len(row.source)) == (300, 100, 400)
    with any_ledger.engine.connect() as conn:
        [cached] = conn.execute(sa.select(t.verification_cache)).all()
    assert (cached.country, len(cached.detail), len(cached.evidence), len(cached.source)) == ("DE", 300, 100, 400)


@pytest.mark.parametrize("adapter", ["vies-soap", "vies-rest", "tin_on_the_web"])
def test_an_answer_that_is_not_its_content_encoding_is_retried_and_reaches_the_service(
    adapter: str, soap: ViesSoapServer, rest: ViesRestServer, tin: TinServer, ledger: Ledger
) -> None:
    if adapter == "tin_on_the_web":
        server: Any = tin
        cfg, names, items, key = tinweb(tin), ["tin_on_the_web"], [tin_item("123"), tin_item("456", seller="S2")], "123"
    else:
        server = soap if adapter == "vies-soap" else rest
        cfg, names, items, key = vies(server, adapter[5:]), ["vies"], [vat("123"), vat("456", "S2")], "123"
    server.script[key] = ["badgzip"]  # HTTP 502, Content-Encoding gzip, a plain body
    first, second = run(items, cfg, ledger, names=names)
    assert (first.state, first.attempts) == ("unverified", 3) and server.asked(key) == 3
    assert first.detail == "an answer that could not be read (DecodingError); gave up after 3 call(s)"
    assert (second.state, second.attempts) == ("unverified", 0) and second.detail.startswith("not asked: ")
    assert [(r.seller_id, r.attempt, r.outcome) for r in recorded(ledger)] == [
        ("S1", 1, "unverified"),
        ("S1", 2, "unverified"),
        ("S1", 3, "unverified"),
    ]


def test_an_adapter_that_raises_is_recorded_and_asked_no_more_in_the_batch(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        name, level, remote = "stdnum", "format", True
        settings = config().verification.stdnum
        source = "a broken adapter"

        def __init__(self) -> None:
            self.asked: list[str] = []

        def accepts(self, item: Item) -> bool:
            return True

        def pace(self) -> None:
            return None

        def unavailable(self) -> dict[str, str]:
            return {}

        def close(self) -> None:
            return None

        def call(self, item: Item) -> Any:
            self.asked.append(item.seller_id)
            raise KeyError(item.value)  # a defect whose message is the identifier

    broken = Broken()
    caplog.set_level(logging.INFO)
    first, second = verify_batch([vat("987654321"), vat("100", "S2")], [broken], ledger, TODAY, key=KEY)
    assert (first.state, first.attempts, first.detail) == ("unverified", 1, "the adapter failed (KeyError)")
    assert (second.state, second.attempts) == ("unverified", 0) and broken.asked == ["S1"]
    assert [(r.seller_id, r.outcome, r.detail) for r in recorded(ledger)] == [
        ("S1", "unverified", "the adapter failed (KeyError)")
    ]
    assert "the adapter failed (KeyError)" in caplog.text and "987654321" not in caplog.text


# ------------------------------------------------------------------------------------- VIES REST


def test_vies_rest_valid_with_the_consultation_number(rest: ViesRestServer, ledger: Ledger) -> None:
    [r] = run([vat("100")], vies(rest, "rest"), ledger)
    assert (r.state, r.evidence, r.request_date) == ("verified", consultation_number("100"), date(2027, 2, 8))
    assert r.source == f"VIES REST check-vat-number {rest.url}"
    request = next(x for x in rest.requests if x["operation"] == "checkVatNumber")
    assert request["fields"] == {
        "countryCode": "DE",
        "vatNumber": "100",
        "requesterMemberStateCode": "DE",
        "requesterNumber": "136695976",
    }


def test_vies_rest_invalid(rest: ViesRestServer, ledger: Ledger) -> None:
    [r] = run([vat("200")], vies(rest, "rest"), ledger)
    assert (r.state, r.evidence) == ("invalid", consultation_number("200"))


def test_vies_rest_a_fault_in_an_http_200_answer_is_a_fault(rest: ViesRestServer, ledger: Ledger) -> None:
    rest.script["123"] = ["fault200:MS_UNAVAILABLE", "valid"]
    [r] = run([vat("123")], vies(rest, "rest"), ledger)
    assert (r.state, r.attempts) == ("verified", 2)
    assert "MS_UNAVAILABLE" in recorded(ledger)[0].detail


@pytest.mark.parametrize(
    ("behaviour", "detail", "attempts"),
    [
        ("http500", "HTTP 500 without a JSON answer", 3),
        ("malformed", "an answer that is not JSON (HTTP 200)", 3),
        ("slow", "no answer within 0.3 s (timeout)", 3),
        ("http404", "HTTP 404 without a JSON answer", 1),
    ],
)
def test_vies_rest_answers_that_are_not_answers(
    behaviour: str, detail: str, attempts: int, rest: ViesRestServer, ledger: Ledger
) -> None:
    rest.slow_seconds = 0.8
    rest.script["123"] = [behaviour]
    [r] = run([vat("123")], vies(rest, "rest"), ledger)
    assert r.state == "unverified" and r.detail.startswith(detail) and r.attempts == attempts


def test_vies_rest_check_status_spares_the_member_states_that_are_down(rest: ViesRestServer, ledger: Ledger) -> None:
    rest.availability = {"FR": "Unavailable", "IT": "Monitoring Disabled"}
    de, fr, it = run([vat("100"), vat("101", "S2", "FR"), vat("102", "S3", "IT")], vies(rest, "rest"), ledger)
    assert (de.state, it.state) == ("verified", "verified")
    assert fr.state == "unverified" and fr.attempts == 0 and rest.asked("101") == 0
    assert fr.detail == "not asked: VIES check-status says the member state's service is Unavailable"
    assert [r.seller_id for r in recorded(ledger)] == ["S1", "S3"]  # not asked: no call, no record


def test_vies_rest_check_status_down_or_broken(rest: ViesRestServer, ledger: Ledger) -> None:
    rest.vow_available = False
    [r] = run([vat("100")], vies(rest, "rest"), ledger)
    assert r.state == "unverified" and rest.asked("100") == 0
    rest.vow_available, rest.status_behaviour = True, "http500"  # no status: every item is asked
    [r] = run([vat("100")], vies(rest, "rest"), ledger)
    assert r.state == "verified"
    rest.status_behaviour = "badgzip"  # a status httpx cannot read: no status either
    [r] = run([vat("101")], vies(rest, "rest"), ledger)
    assert r.state == "verified"


# --------------------------------------------------------------------------------- TIN on the Web


def tinweb(server: TinServer, **settings: Any) -> Config:
    return config(tin_on_the_web={"enabled": True, "url": server.url, **FAST, **settings})


def tin_item(value: str, country: str = "BE", *, entity: bool = False, seller: str = "S1") -> Item:
    return Item(seller, "tin", country, value, entity=entity)


@pytest.mark.parametrize(
    ("behaviour", "entity", "state", "detail"),
    [
        ("valid", False, "verified", "TIN on the Web: structure and syntax valid"),
        ("nosyntax", False, "verified", "TIN on the Web: structure valid (no syntax rule published for it)"),
        ("badsyntax", False, "invalid", "TIN on the Web: syntax (check digits) not valid"),
        ("badstructure", False, "invalid", "TIN on the Web: structure not valid"),
        ("badstructure", True, "unverified", "TIN on the Web: structure not valid for an individual's TIN"),
        ("valid", True, "verified", "TIN on the Web: structure and syntax valid"),
    ],
)
def test_tin_on_the_web_answers(
    behaviour: str, entity: bool, state: str, detail: str, tin: TinServer, ledger: Ledger
) -> None:
    tin.script["00012511119"] = [behaviour]
    [r] = run([tin_item("00012511119", entity=entity)], tinweb(tin), ledger, names=["tin_on_the_web"])
    assert (r.state, r.level, r.request_date) == (state, "official_format", date(2027, 2, 8))
    assert r.detail.startswith(detail) and r.evidence is None
    assert tin.requests[0]["fields"] == {"countryCode": "BE", "tinNumber": "00012511119"}


@pytest.mark.parametrize(
    ("code", "state", "attempts", "same_country_asked", "other_country_asked"),
    [
        ("INVALID_INPUT", "invalid", 1, True, True),
        ("NO_INFORMATION", "unverified", 1, False, True),
        ("SERVICE_UNAVAILABLE", "unverified", 3, False, False),
        ("SERVER_BUSY", "unverified", 3, False, False),
    ],
)
def test_tin_on_the_web_faults(
    code: str,
    state: str,
    attempts: int,
    same_country_asked: bool,
    other_country_asked: bool,
    tin: TinServer,
    ledger: Ledger,
) -> None:
    tin.script["1"] = [f"fault:{code}"]
    first, same, other = run(
        [tin_item("1"), tin_item("2", seller="S2"), tin_item("3", "FR", seller="S3")],
        tinweb(tin),
        ledger,
        names=["tin_on_the_web"],
    )
    assert (first.state, first.attempts) == (state, attempts) and code in first.detail
    for result, key, asked in ((same, "2", same_country_asked), (other, "3", other_country_asked)):
        assert tin.asked(key) == (1 if asked else 0)
        assert (result.state, result.attempts) == (("verified", 1) if asked else ("unverified", 0))


def test_tin_on_the_web_retries_timeouts_and_greece_is_el(tin: TinServer, ledger: Ledger) -> None:
    tin.slow_seconds = 0.8
    tin.script["123456789"] = ["slow", "http500", "valid"]
    [r] = run([tin_item("123 456 789", "GR")], tinweb(tin), ledger, names=["tin_on_the_web"])
    assert (r.state, r.attempts) == ("verified", 3)
    assert {x["fields"]["countryCode"] for x in tin.requests} == {"EL"}
    assert [x.outcome for x in recorded(ledger)] == ["unverified", "unverified", "verified"]


def test_tin_on_the_web_takes_eu_tins_only(tin: TinServer, ledger: Ledger) -> None:
    assert run([tin_item("123", "US"), vat("100")], tinweb(tin), ledger, names=["tin_on_the_web"]) == []
    assert tin.requests == []


# ------------------------------------------------------------------------------- stdnum and batch


def test_stdnum_is_on_by_default_and_its_checks_are_recorded_and_cached(any_ledger: Ledger) -> None:
    cfg = config()
    items = [
        Item("S1", "vat", "DE", "DE136695976"),
        Item("S2", "vat", "DE", "DE136695977"),
        Item("S3", "tin", "DE", "12345678903", entity=False),
        Item("S4", "tin", "JP", "123456789012"),
    ]
    results = run(items, cfg, any_ledger, names=["stdnum"])
    assert [(r.adapter, r.state, r.level) for r in results] == [
        ("stdnum", "verified", "format"),
        ("stdnum", "invalid", "format"),
        ("stdnum", "invalid", "format"),
        ("stdnum", "unverified", "format"),
    ]
    assert results[0].detail == "format and check digits valid (stdnum.eu.vat)"
    assert results[0].source.startswith("python-stdnum ")
    assert len(recorded(any_ledger)) == 4
    again = run(items, cfg, any_ledger, names=["stdnum"])
    assert [r.cached for r in again] == [True, True, True, False]  # the unverified one is checked again
    assert len(recorded(any_ledger)) == 5


def test_every_adapter_in_one_batch_and_the_conclusion(soap: ViesSoapServer, tin: TinServer, ledger: Ledger) -> None:
    soap.script["136695977"] = ["valid"]  # stdnum finds the check digit wrong; VIES says registered
    cfg = config(
        vies={"enabled": True, "url": soap.url, **FAST},
        tin_on_the_web={"enabled": True, "url": tin.url, **FAST},
    )
    items = [Item("S1", "vat", "DE", "DE136695977"), Item("S1", "tin", "BE", "00012511119")]
    adapters = build_adapters(cfg)
    assert [a.name for a in adapters] == ["stdnum", "vies", "tin_on_the_web"]
    try:
        results = verify_batch(items, adapters, ledger, TODAY, key=KEY)
    finally:
        for a in adapters:
            a.close()
    assert [(r.item.kind, r.adapter, r.state) for r in results] == [
        ("vat", "stdnum", "invalid"),
        ("vat", "vies", "verified"),
        ("tin", "stdnum", "verified"),
        ("tin", "tin_on_the_web", "verified"),
    ]
    decided = conclusion(results[:2])
    assert decided is not None and decided.adapter == "vies"  # registration outranks the format
    assert conclusion([]) is None
    us_tin = Item("S2", "tin", "US", "123-45-6789")
    vies_only = run([*items, us_tin], cfg, ledger, names=["vies"])
    outcomes = results_by_item([*items, us_tin], vies_only)
    assert [(o.item.seller_id, o.item.kind, o.state, o.checked) for o in outcomes] == [
        ("S1", "vat", "verified", True),
        ("S1", "tin", "unverified", False),  # VIES checks no TIN: said, not left out
        ("S2", "tin", "unverified", False),
    ]
    assert outcomes[0].decided_by is not None and outcomes[0].decided_by.cached  # from the batch above


def test_a_tins_answer_is_cached_for_its_seller_type(tin: TinServer, any_ledger: Ledger) -> None:
    steuernummer = "93815/08152"  # a German Steuernummer: an entity's TIN, not an individual's IdNr
    as_individual, as_entity = Item("S1", "tin", "DE", steuernummer), Item("S1", "tin", "DE", steuernummer, entity=True)
    [a] = run([as_individual], config(), any_ledger, names=["stdnum"])
    [b] = run([as_entity], config(), any_ledger, names=["stdnum"], today=TODAY + timedelta(days=1))
    assert (a.state, a.cached, b.state, b.cached) == ("invalid", False, "verified", False)
    assert b.detail == "format and check digits valid (de.stnr)"
    assert a.identifier_hash == b.identifier_hash  # one identifier, one history
    # the other order, in one batch: each from its own cached answer
    c, e = run([Item("S2", "tin", "DE", steuernummer, entity=True), Item("S3", "tin", "DE", steuernummer)],
               config(), any_ledger, names=["stdnum"])  # fmt: skip
    assert [(r.state, r.cached) for r in (c, e)] == [("verified", True), ("invalid", True)]
    with any_ledger.engine.connect() as conn:
        keys = conn.execute(sa.select(t.verification_cache.c.identifier_hash)).scalars().all()
    assert sorted(keys) == sorted([cache_key(KEY, as_individual), cache_key(KEY, as_entity)])
    # TIN on the Web: an individual's TIN it rejects is invalid, an entity's is not judged, and is asked
    tin.script["00012511119"] = ["badstructure"]
    [f] = run([tin_item("00012511119")], tinweb(tin), any_ledger, names=["tin_on_the_web"])
    [g] = run([tin_item("00012511119", entity=True)], tinweb(tin), any_ledger, names=["tin_on_the_web"])
    assert (f.state, g.state, g.cached, tin.asked("00012511119")) == ("invalid", "unverified", False, 2)


def test_a_switched_off_adapter_is_not_built(soap: ViesSoapServer) -> None:
    from reporting.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[verification.vies\] enabled = true"):
        build_adapters(config(), ["vies"])
    assert [a.name for a in build_adapters(config())] == ["stdnum"]


def test_rows_of_a_seller_in_the_order_they_happened(soap: ViesSoapServer, ledger: Ledger) -> None:
    soap.script["123"] = ["fault:MS_UNAVAILABLE", "valid"]
    times = iter(datetime(2027, 2, 8, 10, 0, s, tzinfo=UTC) for s in range(10))
    run([vat("123", "S7")], vies(soap), ledger, clock=lambda: next(times))
    history = calls(ledger.engine, seller_id="S7")
    assert [(c.attempt, c.outcome, c.at) for c in history] == [
        (1, "unverified", datetime(2027, 2, 8, 10, 0, 0)),
        (2, "verified", datetime(2027, 2, 8, 10, 0, 1)),
    ]
    assert history[1].at - history[0].at == timedelta(seconds=1)


@pytest.mark.parametrize("adapter", ["vies-soap", "vies-rest", "tin_on_the_web"])
def test_each_adapter_records_its_call_and_answers_again_from_its_own_cache(
    adapter: str, soap: ViesSoapServer, rest: ViesRestServer, tin: TinServer, any_ledger: Ledger
) -> None:
    if adapter == "tin_on_the_web":
        server: Any = tin
        cfg, names, item = tinweb(tin), ["stdnum", "tin_on_the_web"], tin_item("00012511119")
    else:
        server = soap if adapter == "vies-soap" else rest
        cfg = config(vies={"enabled": True, "interface": adapter[5:], "url": server.url, **FAST})
        names, item = ["stdnum", "vies"], vat("136695976")
    first = run([item], cfg, any_ledger, names=names)
    assert [(r.adapter, r.cached) for r in first] == [("stdnum", False), (names[1], False)]
    assert server.asked(item.compact.removeprefix("DE")) == 1
    rows = recorded(any_ledger)
    assert sorted(r.adapter for r in rows) == sorted(names) and {r.seller_id for r in rows} == {"S1"}
    second = run([item], cfg, any_ledger, names=names)
    assert [(r.adapter, r.state, r.cached) for r in second] == [(r.adapter, r.state, True) for r in first]
    assert server.asked(item.compact.removeprefix("DE")) == 1 and len(recorded(any_ledger)) == 2
    with any_ledger.engine.connect() as conn:
        cache = conn.execute(sa.select(t.verification_cache.c.adapter, t.verification_cache.c.identifier_hash)).all()
    assert sorted(cache) == sorted((name, cache_key(KEY, item)) for name in names)  # one answer per adapter


def test_check_status_waits_for_the_rate_limit_like_any_request(rest: ViesRestServer, ledger: Ledger) -> None:
    run([vat("100"), vat("101", "S2")], vies(rest, "rest", rate_per_second=4), ledger)
    assert [r["operation"] for r in rest.requests] == ["checkStatus", "checkVatNumber", "checkVatNumber"]
    times = [r["at"] for r in rest.requests]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.25 - JITTER  # 4 per second
    assert times[-1] - times[0] >= 0.5 - JITTER


def test_check_status_is_asked_only_when_an_item_is_to_be_asked(rest: ViesRestServer, ledger: Ledger) -> None:
    run([vat("100")], vies(rest, "rest"), ledger)
    assert [r["operation"] for r in rest.requests] == ["checkStatus", "checkVatNumber"]
    [again] = run([vat("100")], vies(rest, "rest"), ledger)
    assert again.cached and len(rest.requests) == 2  # all from the cache: no check-status either
