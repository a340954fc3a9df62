"""Local servers that speak the published protocols of VIES (SOAP and REST) and of TIN on the Web,
for the verification adapters' tests (no network is reachable from the tests).

Each server is a threaded ``http.server`` on 127.0.0.1 at a free port, run in the test process.
What it answers about an identifier follows a script: ``server.script["100"] = ["fault:MS_UNAVAILABLE",
"valid"]`` answers the first request about the number 100 with that fault and every later one as
valid (the last entry repeats). Without a script the VIES servers answer as the Commission's VIES
test service does for its test numbers (100 valid, 200 invalid, 201 INVALID_INPUT,
202 INVALID_REQUESTER_INFO, 300 SERVICE_UNAVAILABLE, 301 MS_UNAVAILABLE, 302 TIMEOUT, 400 VAT_BLOCKED,
401 IP_BLOCKED, 500 GLOBAL_MAX_CONCURRENT_REQ, 501 GLOBAL_MAX_CONCURRENT_REQ_TIME,
600 MS_MAX_CONCURRENT_REQ, 601 MS_MAX_CONCURRENT_REQ_TIME; that list as the VIES technical
information page gives it, quoted in yolk/valvat's spec/valvat/lookup_spec.rb), and every other
number as valid.

Behaviours: ``valid``, ``invalid``, ``fault:CODE`` (a SOAP fault with HTTP 500, or a REST
``CommonResponse`` with HTTP 400 for input errors and 500 otherwise), ``fault200:CODE`` (REST: the
CommonResponse in an HTTP 200), ``slow`` (answers valid after ``slow_seconds``: the client has given
up), ``http500`` (an HTML error page), ``malformed`` (an answer cut off), ``empty`` (HTTP 200
without a body), ``http404``, ``badgzip`` (HTTP 502 with ``Content-Encoding: gzip`` and a plain
body, as a proxy's error page may come). TIN on the Web also: ``nosyntax`` (validStructure true, no
validSyntax), ``badsyntax``, ``badstructure``.

Written from the published descriptions: the VIES SOAP server validates every request, and every
answer it gives, against the schema of the vendored ``checkVatService.wsdl``; the REST server takes
its field names from the vendored ``swagger_publicVAT.yaml`` and records any request field the
description does not have; the TIN on the Web server validates against ``TIN_SCHEMA`` below, the
types of ``checkTinService.wsdl`` as the JAX-WS classes generated from it give them (the WSDL
itself was not found; see docs/guide/verification.md). Requests that break the description are
kept in ``server.errors`` (a test asserts there are none).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import yaml
from lxml import etree
from resources import vendored

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
VIES_TYPES = "urn:ec.europa.eu:taxud:vies:services:checkVat:types"
TIN_TYPES = "urn:ec.europa.eu:taxud:tin:services:checkTin:types"
VIES_DIR = vendored("services", "eu-taxud-vies")

#: The VIES test service's numbers and what it answers for each.
TEST_NUMBERS = {
    "100": "valid",
    "200": "invalid",
    "201": "fault:INVALID_INPUT",
    "202": "fault:INVALID_REQUESTER_INFO",
    "300": "fault:SERVICE_UNAVAILABLE",
    "301": "fault:MS_UNAVAILABLE",
    "302": "fault:TIMEOUT",
    "400": "fault:VAT_BLOCKED",
    "401": "fault:IP_BLOCKED",
    "500": "fault:GLOBAL_MAX_CONCURRENT_REQ",
    "501": "fault:GLOBAL_MAX_CONCURRENT_REQ_TIME",
    "600": "fault:MS_MAX_CONCURRENT_REQ",
    "601": "fault:MS_MAX_CONCURRENT_REQ_TIME",
}

#: checkTin and checkTinResponse as the wsimport classes of checkTinService.wsdl declare them
#: (github.com/sneha1359/Java, Wsdl/src/main/java/org/example/echo/service/skeleton/CheckTin.java
#: and CheckTinResponse.java, commit 538438a062bb3bbbe76bb9554a0c8924584d4ab1; elementFormDefault
#: qualified, package-info.java).
TIN_SCHEMA = f"""<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="{TIN_TYPES}"
    elementFormDefault="qualified">
  <xsd:element name="checkTin"><xsd:complexType><xsd:sequence>
    <xsd:element name="countryCode" type="xsd:string"/>
    <xsd:element name="tinNumber" type="xsd:string"/>
  </xsd:sequence></xsd:complexType></xsd:element>
  <xsd:element name="checkTinResponse"><xsd:complexType><xsd:sequence>
    <xsd:element name="countryCode" type="xsd:string"/>
    <xsd:element name="tinNumber" type="xsd:string"/>
    <xsd:element name="requestDate" type="xsd:date"/>
    <xsd:element name="validStructure" type="xsd:boolean"/>
    <xsd:element name="validSyntax" type="xsd:boolean" minOccurs="0"/>
  </xsd:sequence></xsd:complexType></xsd:element>
</xsd:schema>"""


def consultation_number(number: str) -> str:
    """The made-up requestIdentifier the servers give for a number: 16 characters, as VIES's are
    (yolk/valvat's spec expects 16), and without the number in it."""
    return "WAPI" + hashlib.sha256(number.encode()).hexdigest()[:12].upper()


def vies_schema() -> etree.XMLSchema:
    """The ``xsd:schema`` of the vendored checkVatService.wsdl, standing alone (its QName
    attribute values use the prefix ``tns1`` of wsdl:definitions, kept in scope)."""
    wsdl = etree.parse(str(VIES_DIR / "checkVatService.wsdl"))
    xs = wsdl.find(".//{http://www.w3.org/2001/XMLSchema}schema")
    assert xs is not None
    root = etree.Element(xs.tag, attrib=dict(xs.attrib), nsmap=xs.nsmap)
    root.extend(list(etree.fromstring(etree.tostring(xs))))
    return etree.XMLSchema(root)


def vies_rest_description() -> dict[str, Any]:
    description: dict[str, Any] = yaml.safe_load((VIES_DIR / "swagger_publicVAT.yaml").read_text(encoding="utf-8"))
    return description


class ScriptedServer(ThreadingHTTPServer):
    """The server part that every protocol shares: the script, the requests seen, the errors."""

    daemon_threads = True
    default: ClassVar[dict[str, str]] = {}

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.script: dict[str, list[str]] = {}
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.slow_seconds = 1.0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def behaviour(self, key: str) -> str:
        with self.lock:
            steps = self.script.get(key)
            if steps:
                return steps.pop(0) if len(steps) > 1 else steps[0]
            return self.default.get(key, "valid")

    def asked(self, key: str) -> int:
        """How many requests named this number."""
        return sum(1 for r in self.requests if r.get("key") == key)


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
        return None

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass

    def special(self, behaviour: str) -> bool:
        """The behaviours that are the same in every protocol; True when one was sent."""
        if behaviour == "slow":
            time.sleep(self.server.slow_seconds)
            return False  # then the normal answer, which the client no longer reads
        if behaviour == "http500":
            self.send(500, b"<html><body><h1>500 Internal Server Error</h1></body></html>", "text/html")
        elif behaviour == "http404":
            self.send(404, b"<html><body>Not Found</body></html>", "text/html")
        elif behaviour == "empty":
            self.send(200, b"", "text/xml")
        elif behaviour == "badgzip":  # a proxy's error page that says it is gzip and is not
            self.send(502, b"<html>proxy error</html>", "text/html", {"Content-Encoding": "gzip"})
        else:
            return False
        return True


def _soap(body: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"env": SOAP_ENV})
    etree.SubElement(env, f"{{{SOAP_ENV}}}Header")
    etree.SubElement(env, f"{{{SOAP_ENV}}}Body").append(body)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _fault(code: str) -> bytes:
    fault = etree.Element(f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = "env:Server"
    etree.SubElement(fault, "faultstring").text = code
    return _soap(fault)


def _read_soap(handler: _Handler, schema: etree.XMLSchema) -> etree._Element | None:
    data = handler.body()
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
        (operation,) = root.find(f"{{{SOAP_ENV}}}Body")  # type: ignore[misc]
    except (etree.XMLSyntaxError, TypeError, ValueError):
        handler.server.errors.append("a request that is not a SOAP envelope with one operation")
        return None
    if not schema.validate(etree.fromstring(etree.tostring(operation))):
        handler.server.errors.append(f"request not valid against the schema: {schema.error_log.last_error}")
        return None
    if handler.headers.get("SOAPAction") is None:
        handler.server.errors.append('no SOAPAction header (the WSDL\'s binding gives soapAction="")')
    return operation


class ViesSoapServer(ScriptedServer):
    default = TEST_NUMBERS

    def __init__(self) -> None:
        self.schema = vies_schema()
        super().__init__(_ViesSoapHandler)


class _ViesSoapHandler(_Handler):
    server: ViesSoapServer

    def do_POST(self) -> None:
        op = _read_soap(self, self.server.schema)
        if op is None:
            self.send(500, _fault("INVALID_INPUT"), "text/xml; charset=utf-8")
            return
        name = etree.QName(op).localname
        field = {etree.QName(c).localname: (c.text or "") for c in op}
        number = field.get("vatNumber", "")
        self.server.requests.append({"operation": name, "key": number, "fields": field, "at": time.monotonic()})
        behaviour = self.server.behaviour(number)
        if self.special(behaviour):
            return
        if behaviour.startswith("fault:"):
            self.send(500, _fault(behaviour.removeprefix("fault:")), "text/xml; charset=utf-8")
            return
        answer = etree.Element(f"{{{VIES_TYPES}}}{name}Response", nsmap={"ns2": VIES_TYPES})

        def add(tag: str, text: str) -> None:
            etree.SubElement(answer, f"{{{VIES_TYPES}}}{tag}").text = text

        add("countryCode", field["countryCode"])
        add("vatNumber", number)
        add("requestDate", "2027-02-08+01:00")
        add("valid", "true" if behaviour in ("valid", "slow") else "false")
        if name == "checkVatApprox":
            add("traderName", "---")
            add("traderAddress", "---")
            add("requestIdentifier", consultation_number(number) if field.get("requesterVatNumber") else "")
        else:
            add("name", "---")
            add("address", "---")
        if not self.server.schema.validate(answer):  # the server's own answer, against the WSDL
            self.server.errors.append(f"answer not valid against the schema: {self.server.schema.error_log.last_error}")
        body = _soap(answer)
        if behaviour == "malformed":
            body = body[: len(body) // 2]
        self.send(200, body, "text/xml; charset=utf-8")


class ViesRestServer(ScriptedServer):
    default = TEST_NUMBERS

    def __init__(self) -> None:
        description = vies_rest_description()
        self.request_fields = set(description["definitions"]["CheckVatRequest"]["properties"])
        self.response_fields = set(description["definitions"]["CheckVatResponse"]["properties"])
        self.availability: dict[str, str] = {}
        self.vow_available = True
        self.status_behaviour = "ok"
        super().__init__(_ViesRestHandler)


class _ViesRestHandler(_Handler):
    server: ViesRestServer

    def json(self, status: int, data: Any) -> None:
        self.send(status, json.dumps(data).encode(), "application/json")

    def do_GET(self) -> None:
        if self.path != "/check-status":
            self.json(404, {"actionSucceed": False, "errorWrappers": [{"error": "NOT_FOUND"}]})
            return
        self.server.requests.append({"operation": "checkStatus", "key": None, "at": time.monotonic()})
        if self.server.status_behaviour != "ok":
            self.special(self.server.status_behaviour)
            return
        countries = [{"countryCode": c, "availability": self.server.availability.get(c, "Available")} for c in _MS]
        self.json(200, {"vow": {"available": self.server.vow_available}, "countries": countries})

    def do_POST(self) -> None:
        if self.path != "/check-vat-number":
            self.json(404, {"actionSucceed": False, "errorWrappers": [{"error": "NOT_FOUND"}]})
            return
        try:
            request = json.loads(self.body())
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self.server.errors.append("a request body that is not a JSON object")
            self.json(400, {"actionSucceed": False, "errorWrappers": [{"error": "INVALID_INPUT"}]})
            return
        unknown = set(request) - self.server.request_fields
        if unknown or not all(isinstance(v, str) for v in request.values()):
            self.server.errors.append(f"request fields not in CheckVatRequest, or not strings: {sorted(unknown)}")
        number = str(request.get("vatNumber", ""))
        self.server.requests.append(
            {"operation": "checkVatNumber", "key": number, "fields": request, "at": time.monotonic()}
        )
        behaviour = self.server.behaviour(number)
        if self.special(behaviour):
            return
        if behaviour.startswith(("fault:", "fault200:")):
            code = behaviour.split(":", 1)[1]
            status = 200 if behaviour.startswith("fault200:") else 400 if code.startswith("INVALID") else 500
            self.json(status, {"actionSucceed": False, "errorWrappers": [{"error": code, "message": code}]})
            return
        answer = {
            "countryCode": request.get("countryCode"),
            "vatNumber": number,
            "requestDate": "2027-02-08T10:00:00.000Z",
            "valid": behaviour in ("valid", "slow"),
            "requestIdentifier": consultation_number(number) if request.get("requesterNumber") else "",
            "name": "---",
            "address": "---",
        }
        assert set(answer) <= self.server.response_fields
        body = json.dumps(answer).encode()
        if behaviour == "malformed":
            body = body[: len(body) // 2]
        self.send(200, body, "application/json")


class TinServer(ScriptedServer):
    def __init__(self) -> None:
        self.schema = etree.XMLSchema(etree.fromstring(TIN_SCHEMA))
        super().__init__(_TinHandler)


class _TinHandler(_Handler):
    server: TinServer

    def do_POST(self) -> None:
        op = _read_soap(self, self.server.schema)
        if op is None:
            self.send(500, _fault("INVALID_INPUT"), "text/xml; charset=utf-8")
            return
        field = {etree.QName(c).localname: (c.text or "") for c in op}
        tin = field.get("tinNumber", "")
        self.server.requests.append({"operation": "checkTin", "key": tin, "fields": field, "at": time.monotonic()})
        behaviour = self.server.behaviour(tin)
        if self.special(behaviour):
            return
        if behaviour.startswith("fault:"):
            self.send(500, _fault(behaviour.removeprefix("fault:")), "text/xml; charset=utf-8")
            return
        answer = etree.Element(f"{{{TIN_TYPES}}}checkTinResponse", nsmap={"ns2": TIN_TYPES})
        structure, syntax = {
            "valid": ("true", "true"),
            "slow": ("true", "true"),
            "malformed": ("true", "true"),
            "nosyntax": ("true", None),
            "badsyntax": ("true", "false"),
            "badstructure": ("false", "false"),
        }[behaviour]
        for tag, text in (
            ("countryCode", field["countryCode"]),
            ("tinNumber", tin),
            ("requestDate", "2027-02-08+01:00"),
            ("validStructure", structure),
            ("validSyntax", syntax),
        ):
            if text is not None:
                etree.SubElement(answer, f"{{{TIN_TYPES}}}{tag}").text = text
        if not self.server.schema.validate(answer):
            self.server.errors.append(f"answer not valid against the schema: {self.server.schema.error_log.last_error}")
        body = _soap(answer)
        if behaviour == "malformed":
            body = body[: len(body) // 2]
        self.send(200, body, "text/xml; charset=utf-8")


_MS = sorted({"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU", "IE", "IT",
              "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI"})  # fmt: skip


@contextmanager
def running(server: ScriptedServer) -> Iterator[ScriptedServer]:
    """Serve in a thread of this process until the block ends."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
