"""The ``tin_on_the_web`` adapter: the European Commission's TIN on the Web (TINonWeb) check,
which says whether a TIN has the structure and, where the member state published its algorithm,
the syntax (check digits) of that member state's TINs. It does not say whether the TIN exists or
whose it is.

Its interface is the SOAP service of ``https://ec.europa.eu/taxation_customs/tin/checkTinService.wsdl``
(document/literal, namespace ``urn:ec.europa.eu:taxud:tin:services:checkTin:types``, port address
``https://ec.europa.eu/taxation_customs/tin/services/checkTinService``): ``checkTin`` with
``countryCode`` and ``tinNumber``; ``checkTinResponse`` with ``countryCode``, ``tinNumber``,
``requestDate`` (xsd:date), ``validStructure`` (xsd:boolean) and ``validSyntax`` (xsd:boolean,
optional: absent where the member state published no syntax rule). The WSDL itself was not
found in a stored copy; these element names, types and occurrences come from client classes
generated from it (JAX-WS wsimport), and the fault codes (INVALID_INPUT, NO_INFORMATION,
SERVICE_UNAVAILABLE, SERVER_BUSY) from a published client library. Sources:
docs/guide/verification.md.

TIN on the Web describes the TINs of natural persons: a member state may give entities TINs of
another format. A TIN of an entity that it rejects is therefore left unverified, not invalid.
"""

from __future__ import annotations

from lxml import etree

from reporting.countries import EU_MEMBER_STATES
from reporting.ledger.model import INVALID, UNVERIFIED, VERIFIED
from reporting.safexml import XmlFileError, parse_bytes
from reporting.verification.base import HttpAdapter, http_failure, malformed
from reporting.verification.model import OFFICIAL_FORMAT, TIN, Answer, Item, vies_country
from reporting.verification.vies import SOAP_ENV, answer_date, fault_code

TIN_TYPES = "urn:ec.europa.eu:taxud:tin:services:checkTin:types"
#: the member states, Greece as EL (as in VIES)
TIN_COUNTRIES = frozenset((EU_MEMBER_STATES - {"GR"}) | {"EL"})

#: Each fault code: (state, may pass (retry), how far it reaches, what it means).
FAULTS: dict[str, tuple[str, bool, str, str]] = {
    "INVALID_INPUT": (INVALID, False, "item", "the country code is not a member state's or the TIN is empty"),
    "NO_INFORMATION": (UNVERIFIED, False, "country", "the member state gave the Commission no rules for its TINs"),
    "SERVICE_UNAVAILABLE": (UNVERIFIED, True, "service", "the TIN on the Web service is unavailable"),
    "SERVER_BUSY": (UNVERIFIED, True, "service", "the TIN on the Web service is busy"),
}


class TinOnTheWeb(HttpAdapter):
    name = "tin_on_the_web"
    level = OFFICIAL_FORMAT

    @property
    def source(self) -> str:
        return f"TIN on the Web checkTin {self.url}"

    def accepts(self, item: Item) -> bool:
        return item.kind == TIN and vies_country(item.country) in TIN_COUNTRIES

    def envelope(self, item: Item) -> bytes:
        env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV, "urn": TIN_TYPES})
        etree.SubElement(env, f"{{{SOAP_ENV}}}Header")
        body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
        op = etree.SubElement(body, f"{{{TIN_TYPES}}}checkTin")
        etree.SubElement(op, f"{{{TIN_TYPES}}}countryCode").text = vies_country(item.country)
        etree.SubElement(op, f"{{{TIN_TYPES}}}tinNumber").text = item.compact
        return etree.tostring(env, xml_declaration=True, encoding="UTF-8")

    def _call(self, item: Item) -> Answer:
        status, _, body = self._send(
            "POST",
            self.url,
            content=self.envelope(item),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        )
        return read_tin_answer(status, body, entity=item.entity)


def read_tin_answer(status: int, body: bytes, *, entity: bool) -> Answer:
    """A checkTin answer: a fault, or ``validStructure`` and ``validSyntax``."""
    try:
        root = parse_bytes(body, "the TIN on the Web answer") if body.strip() else None
    except XmlFileError:
        root = None
    if root is None:
        return http_failure(status, "a SOAP answer") if status != 200 else malformed("a SOAP envelope", status)
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    if fault is not None:
        code = (fault.findtext("faultstring") or "").strip()
        state, retry, scope, meaning = FAULTS.get(code, (UNVERIFIED, True, "item", "a fault code not in the list"))
        return Answer(state, f"TIN on the Web fault {fault_code(code)}: {meaning}", retry=retry, scope=scope)
    answer = root.find(f"{{{SOAP_ENV}}}Body/{{{TIN_TYPES}}}checkTinResponse")
    if answer is None or status != 200:
        return http_failure(status, "a checkTinResponse") if status != 200 else malformed("a checkTinResponse", status)
    structure = _boolean(answer.findtext(f"{{{TIN_TYPES}}}validStructure"))
    syntax_text = answer.findtext(f"{{{TIN_TYPES}}}validSyntax")
    syntax = None if syntax_text is None else _boolean(syntax_text)
    if structure is None or (syntax_text is not None and syntax is None):
        return malformed("a checkTinResponse with validStructure (and validSyntax) true or false", status)
    request_date = answer_date(answer.findtext(f"{{{TIN_TYPES}}}requestDate"))
    if structure and syntax is not False:
        said = "structure and syntax valid" if syntax else "structure valid (no syntax rule published for it)"
        return Answer(VERIFIED, f"TIN on the Web: {said}", request_date=request_date)
    what = "structure" if not structure else "syntax (check digits)"
    if entity:
        return Answer(
            UNVERIFIED,
            f"TIN on the Web: {what} not valid for an individual's TIN; an entity's TIN may have another format, "
            "so it is not judged",
            request_date=request_date,
        )
    return Answer(INVALID, f"TIN on the Web: {what} not valid", request_date=request_date)


def _boolean(text: str | None) -> bool | None:
    value = (text or "").strip()
    return True if value in ("true", "1") else False if value in ("false", "0") else None
