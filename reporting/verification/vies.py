"""The ``vies`` adapter: the European Commission's VAT Information Exchange System (VIES), which
asks the member state's VAT register whether a VAT number is valid, through either of its two
published interfaces (``[verification.vies] interface``):

* ``soap``: the service of ``https://ec.europa.eu/taxation_customs/vies/checkVatService.wsdl``
  (document/literal SOAP 1.1, ``soapAction=""``, namespace
  ``urn:ec.europa.eu:taxud:vies:services:checkVat:types``). ``checkVatApprox`` with the operator's
  own VAT number as requester (``requesterCountryCode``, ``requesterVatNumber``) returns a
  ``requestIdentifier``, the consultation number kept as evidence; without the operator's VAT
  number, ``checkVat`` (no consultation number). A problem is a SOAP fault whose faultstring is
  one of the codes the WSDL's documentation lists (INVALID_INPUT, GLOBAL_MAX_CONCURRENT_REQ,
  MS_MAX_CONCURRENT_REQ, SERVICE_UNAVAILABLE, MS_UNAVAILABLE, TIMEOUT) or that the VIES test
  service documents (INVALID_REQUESTER_INFO, VAT_BLOCKED, IP_BLOCKED, the ``_TIME`` variants).
* ``rest``: ``POST <url>/check-vat-number`` and ``GET <url>/check-status`` of the Commission's
  OpenAPI (Swagger 2.0) description ``swagger_publicVAT.yaml``: a ``CheckVatRequest`` with
  ``requesterMemberStateCode`` and ``requesterNumber`` for the ``requestIdentifier``; a problem
  is a ``CommonResponse`` (``actionSucceed`` false, ``errorWrappers[].error``) with HTTP 400 or
  500, and is read the same way in an HTTP 200 answer.

The hand-built envelopes (lxml, no SOAP library): two document/literal operations of a few fields
need no WSDL engine, and zeep would fetch the WSDL from the network at start-up (or need it
vendored) and bring its own HTTP stack beside httpx.

The answer's trader name and address (personal data for a sole trader) are read by no one: only
``valid``, ``requestDate`` and ``requestIdentifier`` are kept. Where each fact comes from:
docs/guide/verification.md.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import httpx
from lxml import etree

from reporting.config import AdapterSettings
from reporting.countries import EU_MEMBER_STATES
from reporting.errors import ConfigError
from reporting.ledger.model import INVALID, UNVERIFIED, VERIFIED
from reporting.safexml import XmlFileError, parse_bytes
from reporting.verification.base import HttpAdapter, http_failure, malformed
from reporting.verification.model import REGISTRATION, VAT, Answer, Item, split_vat, vies_country

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
VIES_TYPES = "urn:ec.europa.eu:taxud:vies:services:checkVat:types"
#: The country codes VIES answers for: the member states, Greece as EL (not ISO's GR), and
#: Northern Ireland as XI.
VIES_COUNTRIES = frozenset((EU_MEMBER_STATES - {"GR"}) | {"EL", "XI"})

_CODE = re.compile(r"[A-Z][A-Z_]{2,39}")

#: Each fault code: (state, may pass (retry), how far it reaches, what it means). The meanings
#: follow the WSDL's documentation and the VIES test service's list.
FAULTS: dict[str, tuple[str, bool, str, str]] = {
    "INVALID_INPUT": (INVALID, False, "item", "the country code is invalid or the VAT number empty or malformed"),
    "INVALID_REQUESTER_INFO": (
        UNVERIFIED, False, "service",
        "the requester (the operator's own VAT number, [operator] vat) was refused",
    ),
    "SERVICE_UNAVAILABLE": (UNVERIFIED, True, "service", "the VIES service is unavailable"),
    "SERVER_BUSY": (UNVERIFIED, True, "service", "the VIES service is busy"),
    "GLOBAL_MAX_CONCURRENT_REQ": (UNVERIFIED, True, "service", "too many concurrent requests to VIES"),
    "GLOBAL_MAX_CONCURRENT_REQ_TIME": (UNVERIFIED, True, "service", "too many concurrent requests to VIES"),
    "MS_UNAVAILABLE": (UNVERIFIED, True, "country", "the member state's service is unavailable"),
    "TIMEOUT": (UNVERIFIED, True, "country", "the member state's service did not answer in time"),
    "MS_MAX_CONCURRENT_REQ": (UNVERIFIED, True, "country", "too many concurrent requests to the member state"),
    "MS_MAX_CONCURRENT_REQ_TIME": (UNVERIFIED, True, "country", "too many concurrent requests to the member state"),
    "VAT_BLOCKED": (UNVERIFIED, False, "item", "VIES does not answer for this VAT number"),
    "IP_BLOCKED": (UNVERIFIED, False, "service", "VIES refuses requests from this address"),
}  # fmt: skip


def requester_of(vat: str | None) -> tuple[str, str] | None:
    """The operator's own VAT number (``[operator] vat``) as VIES's requester: its country code
    and its number; None without one (then no consultation number is given)."""
    if not vat:
        return None
    compact = "".join(vat.split()).upper()
    if len(compact) < 4 or not compact[:2].isalpha():
        raise ConfigError(
            "[operator] vat is not a VAT number with its country prefix (e.g. DE123456789): VIES needs it as the "
            "requester to give a consultation number"
        )
    return vies_country(compact[:2]), compact[2:]


def fault_answer(code: str, *, via: str) -> Answer:
    """The answer for a VIES fault code; an unknown code may pass (retry) and reaches the item."""
    state, retry, scope, meaning = FAULTS.get(code, (UNVERIFIED, True, "item", "a fault code not in VIES's list"))
    return Answer(state, f"VIES {via} fault {fault_code(code)}: {meaning}", retry=retry, scope=scope)


def fault_code(code: str) -> str:
    """A fault code as it may be shown and recorded: capital letters and underscores (VIES's and
    TIN on the Web's codes); anything else (which could quote what was sent) is not repeated."""
    return code if _CODE.fullmatch(code) else "(not a fault code)"


def verdict(valid: bool, request_date: date | None, evidence: str | None) -> Answer:
    if valid:
        return Answer(VERIFIED, "VIES: valid (registered in the member state's VAT register)", evidence, request_date)
    return Answer(INVALID, "VIES: not valid (not registered, or no longer)", evidence, request_date)


def answer_date(text: str | None) -> date | None:
    """``2026-03-02``, ``2026-03-02+01:00`` (xsd:date) or ``2026-03-02T10:00:00.000Z`` (date-time)."""
    try:
        return date.fromisoformat((text or "").strip()[:10])
    except ValueError:
        return None


class _Vies(HttpAdapter):
    name = "vies"
    level = REGISTRATION

    def __init__(
        self, settings: AdapterSettings, requester_vat: str | None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        super().__init__(settings, transport=transport)
        self.requester = requester_of(requester_vat)

    def accepts(self, item: Item) -> bool:
        return item.kind == VAT and vies_country(item.country) in VIES_COUNTRIES


class ViesSoap(_Vies):
    @property
    def operation(self) -> str:
        return "checkVatApprox" if self.requester else "checkVat"

    @property
    def source(self) -> str:
        return f"VIES SOAP {self.operation} {self.url}"

    def envelope(self, item: Item) -> bytes:
        """The request: ``checkVatApprox`` (countryCode, vatNumber, requesterCountryCode,
        requesterVatNumber, in the WSDL's order) or ``checkVat`` (countryCode, vatNumber)."""
        country, number = split_vat(item)
        env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV, "urn": VIES_TYPES})
        etree.SubElement(env, f"{{{SOAP_ENV}}}Header")
        body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
        op = etree.SubElement(body, f"{{{VIES_TYPES}}}{self.operation}")
        fields = [("countryCode", country), ("vatNumber", number)]
        if self.requester:
            fields += [("requesterCountryCode", self.requester[0]), ("requesterVatNumber", self.requester[1])]
        for name, value in fields:
            etree.SubElement(op, f"{{{VIES_TYPES}}}{name}").text = value
        return etree.tostring(env, xml_declaration=True, encoding="UTF-8")

    def _call(self, item: Item) -> Answer:
        status, _, body = self._send(
            "POST",
            self.url,
            content=self.envelope(item),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        )
        return read_soap_answer(status, body, f"{self.operation}Response")


def read_soap_answer(status: int, body: bytes, response: str) -> Answer:
    """A VIES SOAP answer: a fault (its faultstring), or the response element with ``valid``."""
    if not body.strip():
        return http_failure(status, "a SOAP answer") if status != 200 else malformed("a SOAP envelope", status)
    try:
        root = parse_bytes(body, "the VIES answer")
    except XmlFileError:
        return http_failure(status, "a SOAP answer") if status != 200 else malformed("a SOAP envelope", status)
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    if fault is not None:
        return fault_answer((fault.findtext("faultstring") or "").strip(), via="SOAP")
    answer = root.find(f"{{{SOAP_ENV}}}Body/{{{VIES_TYPES}}}{response}")
    if answer is None or status != 200:
        return http_failure(status, f"a {response}") if status != 200 else malformed(f"a {response}", status)
    valid = (answer.findtext(f"{{{VIES_TYPES}}}valid") or "").strip()
    if valid not in ("true", "false", "1", "0"):
        return malformed(f"a {response} with valid true or false", status)
    evidence = (answer.findtext(f"{{{VIES_TYPES}}}requestIdentifier") or "").strip() or None
    return verdict(valid in ("true", "1"), answer_date(answer.findtext(f"{{{VIES_TYPES}}}requestDate")), evidence)


class ViesRest(_Vies):
    @property
    def source(self) -> str:
        return f"VIES REST check-vat-number {self.url}"

    def request(self, item: Item) -> dict[str, str]:
        """A ``CheckVatRequest``: countryCode, vatNumber, and the requester's
        requesterMemberStateCode and requesterNumber (for the requestIdentifier)."""
        country, number = split_vat(item)
        body = {"countryCode": country, "vatNumber": number}
        if self.requester:
            body |= {"requesterMemberStateCode": self.requester[0], "requesterNumber": self.requester[1]}
        return body

    def _call(self, item: Item) -> Answer:
        status, _, body = self._send(
            "POST",
            f"{self.url}/check-vat-number",
            content=json.dumps(self.request(item)).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        return read_rest_answer(status, body)

    def check_status(self) -> dict[str, str] | None:
        """``GET /check-status``: each country's ``availability`` (Available, Unavailable,
        Monitoring Disabled), and ``VIES`` for the service itself (``vow.available``); None when
        check-status gives no readable answer. It is a request to VIES like any other: it waits for
        the rate limit first."""
        self.pace()
        try:
            status, _, body = self._send("GET", f"{self.url}/check-status", headers={"Accept": "application/json"})
            data = json.loads(body) if status == 200 else None
        except (httpx.HTTPError, ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("countries"), list):
            return None
        out: dict[str, str] = {}
        vow = data.get("vow")
        if isinstance(vow, dict) and isinstance(vow.get("available"), bool):
            out["VIES"] = "Available" if vow["available"] else "Unavailable"
        for entry in data["countries"]:
            if isinstance(entry, dict) and str(entry.get("countryCode", "")) in VIES_COUNTRIES:
                out[str(entry["countryCode"])] = str(entry.get("availability", ""))[:40]
        return out

    def unavailable(self) -> dict[str, str]:
        """The member states check-status calls ``Unavailable`` (``Monitoring Disabled`` is no
        reason to skip one), or the whole service when VIES says so itself. Empty when
        check-status gives no answer: then every item is asked."""
        status = self.check_status() or {}
        if status.get("VIES") == "Unavailable":
            return {"service": "not asked: VIES check-status says the VIES service is unavailable"}
        return {
            country: "not asked: VIES check-status says the member state's service is Unavailable"
            for country, availability in status.items()
            if country != "VIES" and availability == "Unavailable"
        }


def read_rest_answer(status: int, body: bytes) -> Answer:
    """A VIES REST answer: a ``CommonResponse`` with its first error code, or a
    ``CheckVatResponse`` with ``valid``."""
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack
        return http_failure(status, "a JSON answer") if status != 200 else malformed("JSON", status)
    if not isinstance(data, dict):
        return http_failure(status, "a JSON object") if status != 200 else malformed("a JSON object", status)
    wrappers = data.get("errorWrappers")
    if data.get("actionSucceed") is False or (isinstance(wrappers, list) and wrappers):
        first = wrappers[0] if isinstance(wrappers, list) and wrappers and isinstance(wrappers[0], dict) else {}
        return fault_answer(str(first.get("error") or ""), via="REST")
    # Seen in answers, not in the description: userError holds the fault code beside valid false.
    user_error = data.get("userError")
    if isinstance(user_error, str) and user_error in FAULTS:
        return fault_answer(user_error, via="REST")
    if status != 200:
        return http_failure(status, "a CommonResponse")
    valid = data.get("valid")
    if not isinstance(valid, bool):
        return malformed("a CheckVatResponse with valid true or false", status)
    evidence = data.get("requestIdentifier")
    evidence = evidence.strip() if isinstance(evidence, str) and evidence.strip() else None
    request_date = data.get("requestDate")
    return verdict(valid, answer_date(request_date if isinstance(request_date, str) else None), evidence)
