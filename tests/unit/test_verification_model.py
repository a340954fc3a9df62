"""The parts of the verification adapters that need no server: the cache's month arithmetic (hand
computed and against pandas' DateOffset), the retention boundary, the rate limiter on a fake
clock, the keyed hash, the input file, the reading of answers (VIES SOAP and REST, TIN on the
Web) and the [verification] configuration."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reporting.config import MAX_CACHE_MONTHS, VIES_REST_URL, VIES_SOAP_URL, parse_config
from reporting.errors import ConfigError
from reporting.ledger.verifications import retention_cutoff
from reporting.verification import (
    Item,
    RateLimiter,
    VerificationError,
    VerificationResult,
    add_months,
    conclusion,
    hash_key,
    identifier_hash,
    oldest_reusable,
    results_by_item,
)
from reporting.verification.items import read_items
from reporting.verification.model import MAX_SELLER_ID, MAX_VALUE, cache_key
from reporting.verification.tin_web import read_tin_answer
from reporting.verification.vies import (
    SOAP_ENV,
    VIES_TYPES,
    fault_code,
    read_rest_answer,
    read_soap_answer,
    requester_of,
    split_vat,
)

KEY = b"0123456789abcdef0123"

# ------------------------------------------------------------------------------ the cache's months


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2027, 3, 15), 36, date(2030, 3, 15)),
        (date(2027, 3, 15), -36, date(2024, 3, 15)),
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # a leap year
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2027, 12, 31), 2, date(2028, 2, 29)),
        (date(2027, 1, 1), -1, date(2026, 12, 1)),
        (date(2027, 5, 31), 0, date(2027, 5, 31)),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    ("today", "months", "oldest"),
    [
        (date(2030, 2, 8), 36, date(2027, 2, 8)),  # checked on 8 Feb 2027: reused through 8 Feb 2030
        (date(2030, 2, 9), 36, date(2027, 2, 9)),
        (date(2027, 3, 31), 1, date(2027, 3, 1)),  # 28 Feb + 1 month = 28 Mar < 31 Mar
        (date(2027, 3, 28), 1, date(2027, 2, 28)),
        (date(2030, 2, 28), 36, date(2027, 2, 28)),
        (date(2028, 2, 29), 12, date(2027, 3, 1)),  # 28 Feb 2027 + 12 months = 28 Feb 2028
    ],
)
def test_oldest_reusable_answer(today: date, months: int, oldest: date) -> None:
    assert oldest_reusable(today, months) == oldest
    assert add_months(oldest, months) >= today > add_months(oldest - timedelta(days=1), months)


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
    st.integers(min_value=-MAX_CACHE_MONTHS, max_value=MAX_CACHE_MONTHS),
)
def test_add_months_is_pandas_date_offset(day: date, months: int) -> None:
    expected = (pd.Timestamp(day) + pd.DateOffset(months=months)).date()
    assert add_months(day, months) == expected


@given(
    st.dates(min_value=date(2003, 1, 1), max_value=date(2090, 12, 31)),
    st.integers(min_value=1, max_value=MAX_CACHE_MONTHS),
    st.integers(min_value=0, max_value=1200),
)
def test_an_answer_is_reused_exactly_while_it_is_not_more_than_n_months_old(
    today: date, months: int, back: int
) -> None:
    checked = today - timedelta(days=back)
    not_older = (pd.Timestamp(checked) + pd.DateOffset(months=months)).date() >= today
    assert (checked >= oldest_reusable(today, months)) == not_older


# -------------------------------------------------------------------------------------- retention


def test_retention_ends_ten_years_after_the_end_of_the_year_made() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # made in 2015 (Berlin): kept to the end of 2025, due from 1 January 2026 00:00 Berlin
    at_new_year = datetime(2026, 1, 1, 0, 0, tzinfo=berlin)
    assert retention_cutoff(at_new_year, berlin) == datetime(2015, 12, 31, 23, 0)  # 1 Jan 2016 Berlin, in UTC
    just_before = at_new_year - timedelta(seconds=1)
    assert retention_cutoff(just_before, berlin) == datetime(2014, 12, 31, 23, 0)
    utc = ZoneInfo("UTC")
    assert retention_cutoff(datetime(2026, 7, 1, tzinfo=UTC), utc) == datetime(2016, 1, 1)
    assert retention_cutoff(datetime(2026, 7, 1), utc) == datetime(2016, 1, 1)  # naive: UTC
    # 31 December 2025, 23:30 UTC is 1 January 2026 in Berlin: the zone decides the year
    late = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    assert (retention_cutoff(late, utc), retention_cutoff(late, berlin)) == (
        datetime(2015, 1, 1),
        datetime(2015, 12, 31, 23, 0),
    )


def test_the_retention_has_no_default_zone() -> None:
    with pytest.raises(TypeError):
        retention_cutoff(datetime(2026, 7, 1, tzinfo=UTC))  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"needs the operator's time zone \(config.reporting.tz"):
        retention_cutoff(datetime(2026, 7, 1, tzinfo=UTC), None)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ rate limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_rate_limiter_spaces_calls_and_never_bursts() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    assert [limiter.wait() for _ in range(4)] == [0, 0.25, 0.25, 0.25]
    clock.now += 10  # idle for a while: the next call starts at once, and the one after waits again
    assert [limiter.wait(), limiter.wait()] == [0, 0.25]
    clock.now += 0.1
    assert limiter.wait() == pytest.approx(0.15)
    with pytest.raises(ValueError):
        RateLimiter(0)


# ----------------------------------------------------------------------------- items and the hash


def test_the_hash_is_keyed_and_ignores_spelling() -> None:
    a = identifier_hash(KEY, Item("S1", "vat", "DE", "DE 136.695-976"))
    assert a == identifier_hash(KEY, Item("S2", "vat", "de", "de136695976"))
    assert len(a) == 64 and int(a, 16) >= 0
    assert a != identifier_hash(b"another key of 16 bytes", Item("S1", "vat", "DE", "DE136695976"))
    assert a != identifier_hash(KEY, Item("S1", "tin", "DE", "DE136695976"))


def hmac_of(text: str) -> str:
    """The hash of ``text`` under KEY, computed here from the rule (HMAC-SHA256, hexadecimal)."""
    return hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()


def test_the_hash_of_a_vat_number_is_the_number_vies_is_asked_about_greece_as_el() -> None:
    greek = [
        Item("S1", "vat", "GR", "GR094259216"),
        Item("S2", "vat", "EL", "EL094259216"),
        Item("S3", "vat", "gr", "gr 094.259-216"),
        Item("S4", "vat", "GR", "EL094259216"),  # the number in VIES's spelling, the country in ISO's
        Item("S5", "vat", "EL", "GR094259216"),
        Item("S6", "vat", "GR", "094259216"),  # without a prefix
        Item("S7", "vat", "EL", "094259216", entity=True),
    ]
    assert {identifier_hash(KEY, i) for i in greek} == {hmac_of("vat:EL:EL094259216")}
    assert {cache_key(KEY, i) for i in greek} == {hmac_of("vat:EL:EL094259216")}
    # a number with its own prefix is hashed as it always was; without one, it takes its country's
    assert identifier_hash(KEY, Item("S1", "vat", "DE", "DE136695976")) == hmac_of("vat:DE:DE136695976")
    assert identifier_hash(KEY, Item("S1", "vat", "DE", "136695976")) == hmac_of("vat:DE:DE136695976")
    assert identifier_hash(KEY, Item("S1", "vat", "XI", "XI123456789")) == hmac_of("vat:XI:XI123456789")
    # other numbers, other keys: another Greek number, the same digits in Cyprus, a Greek TIN
    assert identifier_hash(KEY, Item("S1", "vat", "EL", "EL094259217")) != hmac_of("vat:EL:EL094259216")
    assert identifier_hash(KEY, Item("S1", "vat", "CY", "094259216")) == hmac_of("vat:CY:CY094259216")
    # TINs keep the issuing state as the source gives it (GR in ISO 3166, as in the XML's issuedBy)
    assert identifier_hash(KEY, Item("S1", "tin", "GR", "094259216")) == hmac_of("tin:GR:094259216")
    assert cache_key(KEY, Item("S1", "tin", "GR", "094 259 216")) == hmac_of("tin:GR:094259216:individual")


def test_the_cache_key_of_a_tin_holds_the_seller_type() -> None:
    vat_item = Item("S1", "vat", "DE", "DE 136.695-976")
    assert (
        cache_key(KEY, vat_item)
        == identifier_hash(KEY, vat_item)
        == cache_key(KEY, Item("S2", "vat", "de", "DE136695976", entity=True))
    )
    individual, entity = Item("S1", "tin", "DE", "93815/08152"), Item("S1", "tin", "DE", "9381508152", entity=True)
    assert identifier_hash(KEY, individual) == identifier_hash(KEY, entity)  # one identifier
    keys = {cache_key(KEY, individual), cache_key(KEY, entity), identifier_hash(KEY, individual)}
    assert len(keys) == 3 and all(len(k) == 64 for k in keys)
    assert cache_key(KEY, individual) == cache_key(KEY, Item("S9", "tin", "de", "93815 08152"))


@pytest.mark.parametrize(
    ("text", "said"),
    [(None, "is not set"), ("", "is not set"), ("s3cr3t-k3y", "is too short"), ("x" * 15, "is too short")],
)
def test_a_missing_or_short_key_is_refused_without_showing_it(text: str | None, said: str) -> None:
    with pytest.raises(ConfigError) as exc:
        hash_key(text)
    message = str(exc.value)
    assert message.startswith(f"DAC7_VERIFICATION_KEY {said}: ") and "at least 16 bytes" in message
    if text:
        assert text not in message  # the secret, even a short one, is never repeated
    assert hash_key("x" * 16) == b"x" * 16  # the shortest key taken


def test_an_item_and_a_result_never_show_the_value() -> None:
    item = Item("S1", "tin", "DE", "36574261809")
    result = VerificationResult(item, "stdnum", "verified", "format", "python-stdnum", datetime.now(UTC), "ok", "h")
    for text in (repr(item), str(item), repr(result), repr([result])):
        assert "36574261809" not in text and "***809" in text
    with pytest.raises(VerificationError, match="expected tin or vat"):
        Item("S1", "iban", "DE", "x")


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("36574261809", "***809"),
        ("DE 136.695-976", "***976"),
        ("9" * MAX_VALUE, "***999"),
        ("123456", "***456"),
        ("12345", "***"),
        ("12", "***"),
        ("", ""),
    ],
)
def test_the_masked_form_has_a_fixed_length(value: str, masked: str) -> None:
    assert Item("S1", "tin", "DE", value).masked == masked  # never the length of the value


@pytest.mark.parametrize(
    ("seller", "country", "value", "message"),
    [
        ("S" * (MAX_SELLER_ID + 1), "DE", "36574261809", r"^seller 'S{40}\.\.\.': seller_id must be a text of 1 to "),
        ("", "DE", "36574261809", "^seller '': seller_id must be a text of 1 to 200 characters"),
        ("S1", "DEU", "36574261809", "^seller S1: the country of a tin must be a two-letter code"),
        ("S1", "D1", "36574261809", "^seller S1: the country of a tin must be a two-letter code"),
        ("S1", "DE", "3" * (MAX_VALUE + 1), "^seller S1: the tin is longer than 64 characters"),
    ],
)
def test_an_item_the_record_could_not_hold_is_refused_without_its_value(
    seller: str, country: str, value: str, message: str
) -> None:
    assert Item("S" * MAX_SELLER_ID, "tin", "DE", "3" * MAX_VALUE).masked == "***333"  # the longest taken
    with pytest.raises(VerificationError, match=message) as exc:
        Item(seller, "tin", country, value)
    assert "36574261809" not in str(exc.value) and "3" * 10 not in str(exc.value)


def test_items_from_csv_json_lines_and_json(tmp_path: Path) -> None:
    rows = [
        {"seller_id": "S1", "kind": "vat", "country": "de", "value": "DE136695976"},
        {"seller_id": "S2", "kind": "tin", "country": "BE", "value": "00012511119", "seller_type": "entity"},
    ]
    csv_file = tmp_path / "items.csv"
    csv_file.write_text(
        "seller_id,kind,country,value,seller_type\nS1,vat,de,DE136695976,\nS2,tin,BE,00012511119,entity\n",
        encoding="utf-8",
    )
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    listed = tmp_path / "items.json"
    listed.write_text(json.dumps(rows), encoding="utf-8")
    expected = [Item("S1", "vat", "DE", "DE136695976"), Item("S2", "tin", "BE", "00012511119", entity=True)]
    for path in (csv_file, jsonl, listed):
        assert read_items(path) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("seller_id,kind,value\nS1,vat,DE999999999\n", "the CSV header lacks country"),
        ("seller_id,kind,country,value\nS1,iban,DE,DE999999999\n", "line 2: kind must be tin or vat"),
        ("seller_id,kind,country,value\nS1,vat,DEU,DE999999999\n", "line 2: country must be a two-letter code"),
        ("seller_id,kind,country,value\nS1,vat,DE,\n", "line 2: value is missing or empty"),
        ('{"seller_id": "S1", "kind": "tin", "country": "DE", "value": 999999999}\n', "line 1: value is missing"),
        ('{"seller_id": "S1", "kind": "tin", "country": "DE", "value": "DE999999999"\n', "line 1: not a JSON object"),
        ("seller_id,kind,country,value,seller_type\nS1,tin,DE,DE999999999,robot\n", "line 2: seller_type must be"),
        ("seller_id,kind,country,value\nS1,tin,DE," + "9" * 65 + "\n", "line 2: value is longer than 64"),
        ("seller_id,kind,country,value\n" + "S" * 201 + ",tin,DE,DE999999999\n", "line 2: seller_id is longer than"),
    ],
)
def test_a_bad_line_names_the_file_the_line_and_the_key_never_the_value(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "items.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(VerificationError, match=message) as exc:
        read_items(path)
    assert str(exc.value).startswith("items.csv: ") and "999999999" not in str(exc.value)


def test_conclusion_takes_the_strongest_conclusive_answer() -> None:
    item = Item("S1", "vat", "DE", "DE136695976")
    at = datetime(2027, 2, 8, tzinfo=UTC)

    def result(adapter: str, state: str, level: str, minutes: int = 0) -> VerificationResult:
        return VerificationResult(item, adapter, state, level, "", at + timedelta(minutes=minutes), "", "h")

    stdnum_ok = result("stdnum", "verified", "format")
    vies_no = result("vies", "invalid", "registration")
    vies_down = result("vies", "unverified", "registration")
    assert conclusion([stdnum_ok, vies_no]) is vies_no
    assert conclusion([stdnum_ok, vies_down]) is stdnum_ok
    assert conclusion([vies_down]) is vies_down
    later = result("vies", "verified", "registration", minutes=5)
    assert conclusion([vies_no, later, stdnum_ok]) is later


def test_results_by_item_gives_each_item_its_outcome_and_says_what_was_not_checked() -> None:
    at = datetime(2027, 2, 8, tzinfo=UTC)
    vat_item, tin_item, us_tin = (
        Item("S1", "vat", "DE", "DE136695977"),
        Item("S1", "tin", "DE", "36574261809"),
        Item("S2", "tin", "us", "123456789"),
    )
    twice = Item("S3", "vat", "FR", "FR40303265045")

    def result(item: Item, adapter: str, state: str, level: str, detail: str) -> VerificationResult:
        return VerificationResult(item, adapter, state, level, "", at, detail, "h")

    results = [
        result(vat_item, "stdnum", "invalid", "format", "bad check digit"),
        result(vat_item, "vies", "verified", "registration", "VIES: valid"),
        result(tin_item, "stdnum", "verified", "format", "format and check digits valid (de.idnr)"),
        result(twice, "vies", "unverified", "registration", "not asked: SERVICE_UNAVAILABLE"),
        result(Item("S3", "vat", "FR", "FR40303265045"), "vies", "unverified", "registration", "again"),
    ]
    items = [us_tin, vat_item, tin_item, twice, Item("S3", "vat", "FR", "FR40303265045")]
    outcomes = results_by_item(items, results)
    assert [(o.item, o.state, o.checked, o.detail) for o in outcomes] == [
        (us_tin, "unverified", False, "not checked: no adapter of this batch checks a tin of US"),
        (vat_item, "verified", True, "vies: VIES: valid"),  # registration outranks the format
        (tin_item, "verified", True, "stdnum: format and check digits valid (de.idnr)"),
        (twice, "unverified", True, "vies: not asked: SERVICE_UNAVAILABLE"),
        (twice, "unverified", True, "vies: not asked: SERVICE_UNAVAILABLE"),  # an equal item: the same answers
    ]
    assert outcomes[0].decided_by is None and outcomes[0].results == ()
    assert outcomes[1].decided_by is results[1] and outcomes[1].results == (results[0], results[1])
    assert [len(o.results) for o in outcomes] == [0, 2, 1, 1, 1]  # one per adapter
    assert "123456789" not in repr(outcomes) and "***789" in repr(outcomes[0])
    assert results_by_item([], results) == [] and results_by_item([us_tin], [])[0].state == "unverified"


# ---------------------------------------------------------------------------- reading the answers


def soap(body: str) -> bytes:
    return f'<e:Envelope xmlns:e="{SOAP_ENV}" xmlns:v="{VIES_TYPES}"><e:Body>{body}</e:Body></e:Envelope>'.encode()


def test_a_vies_soap_answer() -> None:
    answer = read_soap_answer(
        200,
        soap(
            "<v:checkVatApproxResponse><v:countryCode>DE</v:countryCode><v:vatNumber>1</v:vatNumber>"
            "<v:requestDate>2027-02-08+01:00</v:requestDate><v:valid>true</v:valid>"
            "<v:requestIdentifier>WAPIAAAAY1</v:requestIdentifier></v:checkVatApproxResponse>"
        ),
        "checkVatApproxResponse",
    )
    assert (answer.state, answer.evidence, answer.request_date) == ("verified", "WAPIAAAAY1", date(2027, 2, 8))
    invalid = read_soap_answer(
        200, soap("<v:checkVatResponse><v:valid>false</v:valid></v:checkVatResponse>"), "checkVatResponse"
    )
    assert (invalid.state, invalid.evidence, invalid.request_date) == ("invalid", None, None)
    odd = read_soap_answer(
        200, soap("<v:checkVatResponse><v:valid>yes</v:valid></v:checkVatResponse>"), "checkVatResponse"
    )
    assert odd.state == "unverified" and odd.retry


@pytest.mark.parametrize(
    ("faultstring", "state", "retry", "scope"),
    [
        ("INVALID_INPUT", "invalid", False, "item"),
        ("MS_UNAVAILABLE", "unverified", True, "country"),
        ("SERVER_BUSY", "unverified", True, "service"),
        ("SOMETHING_NEW", "unverified", True, "item"),
    ],
)
def test_a_vies_soap_fault(faultstring: str, state: str, retry: bool, scope: str) -> None:
    body = soap(f"<e:Fault><faultcode>e:Server</faultcode><faultstring>{faultstring}</faultstring></e:Fault>")
    answer = read_soap_answer(500, body, "checkVatResponse")
    assert (answer.state, answer.retry, answer.scope) == (state, retry, scope)
    assert faultstring in answer.detail


def test_a_fault_string_that_is_no_fault_code_is_not_repeated() -> None:
    body = soap("<e:Fault><faultcode>e:Server</faultcode><faultstring>DE136695976 unknown</faultstring></e:Fault>")
    answer = read_soap_answer(500, body, "checkVatResponse")
    assert "136695976" not in answer.detail and "(not a fault code)" in answer.detail
    assert fault_code("MS_UNAVAILABLE") == "MS_UNAVAILABLE" and fault_code("DE136695976") == "(not a fault code)"


@pytest.mark.parametrize(
    ("status", "body", "state", "detail"),
    [
        (
            200,
            {"valid": True, "requestDate": "2027-02-08T10:00:00.000Z", "requestIdentifier": "W1"},
            "verified",
            "VIES",
        ),
        (200, {"valid": False, "requestIdentifier": ""}, "invalid", "VIES: not valid"),
        (400, {"actionSucceed": False, "errorWrappers": [{"error": "INVALID_INPUT"}]}, "invalid", "INVALID_INPUT"),
        (500, {"actionSucceed": False, "errorWrappers": [{"error": "TIMEOUT"}]}, "unverified", "TIMEOUT"),
        (200, {"actionSucceed": False, "errorWrappers": [{"error": "MS_UNAVAILABLE"}]}, "unverified", "MS_UNAV"),
        (200, {"valid": False, "userError": "MS_UNAVAILABLE"}, "unverified", "MS_UNAVAILABLE"),
        (200, {"valid": "yes"}, "unverified", "an answer that is not a CheckVatResponse"),
        (200, [1, 2], "unverified", "an answer that is not a JSON object"),
        (502, {"message": "bad gateway"}, "unverified", "HTTP 502 without a CommonResponse"),
    ],
)
def test_a_vies_rest_answer(status: int, body: Any, state: str, detail: str) -> None:
    answer = read_rest_answer(status, json.dumps(body).encode())
    assert answer.state == state and detail in answer.detail
    if state == "verified":
        assert (answer.evidence, answer.request_date) == ("W1", date(2027, 2, 8))
    if state == "invalid" and status == 200:
        assert answer.evidence is None  # an empty requestIdentifier is no evidence


@pytest.mark.parametrize("status", [200, 502])
def test_a_vies_rest_answer_nested_deeper_than_the_stack_is_not_an_answer(status: int) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000  # valid JSON that json.loads cannot read (RecursionError)
    answer = read_rest_answer(status, deep)
    assert (answer.state, answer.retry, answer.scope) == ("unverified", True, "service")
    assert answer.detail == (
        "an answer that is not JSON (HTTP 200)" if status == 200 else "HTTP 502 without a JSON answer"
    )


def test_a_tin_on_the_web_answer() -> None:
    def body(inner: str) -> bytes:
        t = "urn:ec.europa.eu:taxud:tin:services:checkTin:types"
        return (
            f'<e:Envelope xmlns:e="{SOAP_ENV}" xmlns:t="{t}"><e:Body><t:checkTinResponse>'
            f"<t:countryCode>BE</t:countryCode><t:tinNumber>1</t:tinNumber><t:requestDate>2027-02-08</t:requestDate>"
            f"{inner}</t:checkTinResponse></e:Body></e:Envelope>"
        ).encode()

    ok = read_tin_answer(
        200, body("<t:validStructure>true</t:validStructure><t:validSyntax>true</t:validSyntax>"), entity=False
    )
    assert (ok.state, ok.request_date) == ("verified", date(2027, 2, 8))
    bad = read_tin_answer(200, body("<t:validStructure>false</t:validStructure>"), entity=False)
    assert bad.state == "invalid"
    assert read_tin_answer(200, body("<t:validStructure>false</t:validStructure>"), entity=True).state == "unverified"
    odd = read_tin_answer(200, body("<t:validStructure>maybe</t:validStructure>"), entity=False)
    assert odd.state == "unverified" and odd.retry


def test_vat_numbers_are_sent_without_their_prefix_greece_as_el() -> None:
    assert split_vat(Item("S", "vat", "DE", "DE 136 695 976")) == ("DE", "136695976")
    assert split_vat(Item("S", "vat", "EL", "EL094259216")) == ("EL", "094259216")
    assert split_vat(Item("S", "vat", "GR", "GR094259216")) == ("EL", "094259216")
    assert split_vat(Item("S", "vat", "XI", "XI123456789")) == ("XI", "123456789")
    assert split_vat(Item("S", "vat", "FR", "12345678901")) == ("FR", "12345678901")
    assert requester_of(None) is None and requester_of("EL 094259216") == ("EL", "094259216")
    with pytest.raises(ConfigError, match=r"\[operator\] vat"):
        requester_of("123")


# ---------------------------------------------------------------------------------- configuration

OPERATOR = {
    "name": "Demo Platform GmbH",
    "tin": "12345678901",
    "tin_issued_by": "DE",
    "nexus": "RPONEX1",
    "address": {"city": "Berlin", "country": "DE"},
}


def verification(tables: dict[str, Any]) -> Any:
    return parse_config({"operator": OPERATOR, "verification": tables}, origin="dac7.toml").verification


def test_the_defaults_switch_on_stdnum_only() -> None:
    v = parse_config({"operator": OPERATOR}).verification
    assert [a.name for a in v.enabled] == ["stdnum"]
    assert (v.vies.url, v.vies.interface, v.vies.cache_months, v.vies.max_attempts) == (VIES_SOAP_URL, "soap", 36, 4)
    rest = verification({"vies": {"enabled": True, "interface": "rest", "rate_per_second": 0.5}}).vies
    assert (rest.url, rest.rate_per_second, rest.enabled) == (VIES_REST_URL, 0.5, True)
    local = verification({"tin_on_the_web": {"url": "http://127.0.0.1:8080/tin/"}}).tin_on_the_web
    assert local.url == "http://127.0.0.1:8080/tin"
    assert (
        v.vies.invalid_cache_days == 1
        and verification({"vies": {"invalid_cache_days": 0}}).vies.invalid_cache_days == 0
    )
    # the daily run's cap: 5,000 items unless set, from 1 (one item a day) up
    assert v.max_per_day == 5000
    assert verification({"max_per_day": 1}).max_per_day == 1
    assert verification({"max_per_day": 100_000}).max_per_day == 100_000


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"viess": {}}, r"unknown key\(s\) in \[verification\]: viess \(did you mean vies\?\)"),
        ({"stdnum": {"url": "https://x"}}, r"unknown key\(s\) in \[verification.stdnum\]: url"),
        ({"vies": {"enabled": "yes"}}, "verification.vies.enabled must be true or false"),
        ({"vies": {"interface": "grpc"}}, r"verification.vies.interface = 'grpc'; expected one of soap, rest"),
        ({"vies": {"url": "http://ec.europa.eu/x"}}, "must be an https URL"),
        ({"vies": {"url": "ftp://127.0.0.1/x"}}, "must be an https URL"),
        ({"vies": {"url": "https://user:pw@example.com/x"}}, "must not hold a user, a password"),
        ({"vies": {"url": "https://example.com/x?key=1"}}, "must not hold a user, a password, a query"),
        ({"vies": {"cache_months": 37}}, "cache_months must be a whole number from 0 to 36"),
        ({"vies": {"cache_months": 1.5}}, "cache_months must be a whole number"),
        ({"vies": {"rate_per_second": 0}}, "rate_per_second must be a number greater than 0"),
        ({"vies": {"timeout_seconds": "30"}}, "timeout_seconds must be a number"),
        ({"vies": {"max_attempts": 0}}, "max_attempts must be a whole number from 1 to 10"),
        ({"tin_on_the_web": {"interface": "rest"}}, r"unknown key\(s\) in \[verification.tin_on_the_web\]"),
        ({"vies": {"invalid_cache_days": 32}}, "invalid_cache_days must be a whole number from 0 to 31"),
        ({"vies": {"invalid_cache_days": -1}}, "invalid_cache_days must be a whole number from 0 to 31"),
        ({"stdnum": {"invalid_cache_days": 1}}, r"unknown key\(s\) in \[verification.stdnum\]: invalid_cache_days"),
        ({"max_per_day": 0}, "verification.max_per_day must be a whole number from 1 to 100000"),
        ({"max_per_day": 100_001}, "verification.max_per_day must be a whole number from 1 to 100000"),
        ({"max_per_day": 2.5}, "verification.max_per_day must be a whole number"),
        ({"max_per_daay": 2}, r"unknown key\(s\) in \[verification\]: max_per_daay \(did you mean max_per_day\?\)"),
    ],
)
def test_a_bad_verification_table_is_refused_naming_the_key(tables: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as exc:
        verification(tables)
    assert str(exc.value).startswith("dac7.toml: ") and "pw" not in str(exc.value)
