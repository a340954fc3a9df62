"""A local BZSt DIP server for the tests: it speaks the DIP mass-data interface as the published
clients use it (token endpoint, start/upload/finish/abort, protocol list, protocol, receipt) and
checks what it receives: the JWT client assertion (RS256, iss = sub = client id, aud = the realm's
URL) against the registered certificate, and the enveloping XML signature of every upload with a
verifier of its own (not the project's). Faults are queued per operation; protocols are v1 or v2.

Test keys and certificates are generated when the tests run (:func:`make_credentials`)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import threading
import urllib.parse
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
DSM = "urn:oecd:ties:dsm:v1"
DPI = "urn:oecd:ties:dpi:v1"
DIP_V1 = "http://itzbund.de/ozg/bzst/post/dip/v1/"


def make_credentials(client_id: str = "dac7-test-client", bits: int = 2048) -> tuple[str, str, str]:
    """(client id, private key PEM, self-signed certificate PEM), made now, never stored."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_id)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return client_id, pem_key, cert.public_bytes(serialization.Encoding.PEM).decode()


def check_signature(signed: bytes, cert_pem: str) -> etree._Element:
    """The server's own check of an enveloping signature (sha256-rsa-MGF1, inclusive C14N, one
    reference to ds:Object Id="object"); returns the signed document's root or raises ValueError."""
    root = etree.fromstring(signed, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    ns = {"ds": DS}
    if root.tag != f"{{{DS}}}Signature":
        raise ValueError("not an enveloping ds:Signature")
    si = root.find("ds:SignedInfo", ns)
    obj = root.find("ds:Object", ns)
    if si is None or obj is None or obj.get("Id") != "object":
        raise ValueError("no SignedInfo or Object")
    if si.find("ds:SignatureMethod", ns).get("Algorithm") != "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1":
        raise ValueError("not sha256-rsa-MGF1")
    if si.find("ds:CanonicalizationMethod", ns).get("Algorithm") != "http://www.w3.org/TR/2001/REC-xml-c14n-20010315":
        raise ValueError("not inclusive C14N")
    ref = si.find("ds:Reference", ns)
    if ref.get("URI") != "#object":
        raise ValueError("the reference is not #object")
    digest = hashlib.sha256(etree.tostring(obj, method="c14n")).digest()
    if base64.b64decode(ref.findtext("ds:DigestValue", namespaces=ns)) != digest:
        raise ValueError("digest mismatch")
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    inline = x509.load_der_x509_certificate(
        base64.b64decode(root.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=ns))
    )
    if inline != cert:
        raise ValueError("KeyInfo holds another certificate")
    cert.public_key().verify(  # type: ignore[union-attr,call-arg]
        base64.b64decode(root.findtext("ds:SignatureValue", namespaces=ns)),
        etree.tostring(si, method="c14n"),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    return obj[0]


@dataclass
class Transfer:
    ticket: str
    state: str = "started"  # started | uploaded | finished | aborted
    document: etree._Element | None = None
    our_ticket: str | None = None  # consignment/transferticketId of the envelope
    environment: str | None = None
    message_ref_id: str | None = None
    doc_ref_ids: list[str] = field(default_factory=list)
    seller_doc_ref_ids: list[str] = field(default_factory=list)  # of the ReportableSeller records
    confirmed: bool = False


class DipServer:
    """Run with ``with DipServer(client_id, cert_pem) as server:``; ``server.url``."""

    def __init__(self, client_id: str, cert_pem: str, *, protocol_version: str = "v2") -> None:
        self.client_id, self.cert_pem = client_id, cert_pem
        self.protocol_version = protocol_version
        self.transfers: dict[str, Transfer] = {}
        self.tokens: set[str] = set()
        self.faults: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.calls: list[tuple[str, str, int]] = []
        self.reject: set[str] = set()  # DocRefIds a protocol rejects
        self.reject_first = 0  # ... and the first N seller records of each transfer
        self.whole_error = False
        self.protocol_after_polls = 0
        #: while True, no protocol is listed or served: the authority has not answered yet (a test
        #: holds it to look at the waiting side, then sets it False)
        self.hold = False
        self.errors: list[str] = []  # what the server refused (bad assertion, bad signature)
        self._seq = itertools.count(1)
        self._polls = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> DipServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, op: str, status: int, body: str = "") -> None:
        self.faults[op].append((status, body))

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def ops(self) -> list[str]:
        return [c[0] for c in self.calls]

    # ------------------------------------------------------------------ protocol documents

    def protocol_xml(self, t: Transfer) -> bytes:
        ns = DIP_V1 if self.protocol_version == "v1" else DIP_V1.replace("/v1/", "/v2/")
        first = set(t.seller_doc_ref_ids[: self.reject_first])
        rejected = [d for d in t.doc_ref_ids if d in self.reject or d in first]
        status = "ERROR" if self.whole_error else ("PARTIALLY_REJECTED" if rejected else "OK")
        root = etree.Element(f"{{{ns}}}dipResponse", nsmap={None: ns}, version="2.0" if ns.endswith("v2/") else "1.0")
        etree.SubElement(root, f"{{{ns}}}responseTransferticketId").text = f"R{t.ticket}"
        proto = etree.SubElement(root, f"{{{ns}}}dipProtocol")
        cons = etree.SubElement(proto, f"{{{ns}}}consignment")
        ci = etree.SubElement(cons, f"{{{ns}}}customerIdentifier")
        etree.SubElement(ci, f"{{{ns}}}identityProvider").text = "BZST-CERT"
        etree.SubElement(ci, f"{{{ns}}}identifier").text = "BZ123456789"
        etree.SubElement(cons, f"{{{ns}}}creationTime").text = "2026-02-01T10:00:00"
        etree.SubElement(cons, f"{{{ns}}}transferticketId").text = t.our_ticket
        etree.SubElement(proto, f"{{{ns}}}processStatus").text = status
        if self.whole_error:
            res = etree.SubElement(proto, f"{{{ns}}}dipResult")
            etree.SubElement(res, f"{{{ns}}}code").text = "E0001"
            etree.SubElement(res, f"{{{ns}}}message").text = "Die Lieferung wurde abgelehnt."
        if rejected:
            payload = etree.SubElement(proto, f"{{{ns}}}payloadResult", consignmentItemPosition="1")
            dsm = etree.SubElement(payload, f"{{{DSM}}}DAC7StatusMessage", nsmap={"dsm": DSM}, version="1.0")
            spec = etree.SubElement(dsm, f"{{{DSM}}}MessageSpec")
            etree.SubElement(spec, f"{{{DSM}}}MessageRefId").text = f"DE-STATUS-{t.ticket}"
            body = etree.SubElement(dsm, f"{{{DSM}}}DSMBody")
            orig = etree.SubElement(body, f"{{{DSM}}}OriginalMessage")
            etree.SubElement(orig, f"{{{DSM}}}OriginalMessageRefID").text = t.message_ref_id
            vr = etree.SubElement(body, f"{{{DSM}}}ValidationResult")
            etree.SubElement(vr, f"{{{DSM}}}Status").text = "Accepted"
            errs = etree.SubElement(body, f"{{{DSM}}}ValidationErrors")
            for d in rejected:
                rec = etree.SubElement(errs, f"{{{DSM}}}RecordError")
                etree.SubElement(rec, f"{{{DSM}}}Code").text = "98001"
                etree.SubElement(rec, f"{{{DSM}}}Details").text = "record rejected by the test server"
                etree.SubElement(rec, f"{{{DSM}}}DocRefIDInError").text = d
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    # ----------------------------------------------------------------------------- handler

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, op: str, status: int, body: bytes | str = b"", ctype: str = "text/plain") -> None:
                server.calls.append((op, self.path, status))
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _op(self) -> tuple[str, str | None]:
                parts = self.path.strip("/").split("/")
                if self.path.startswith("/auth/"):
                    return "token", None
                if parts[:2] == ["dip", "start"]:
                    return "start", None
                if parts == ["dip", "md", "protocolnumbers"]:
                    return "list", None
                if len(parts) == 4 and parts[:2] == ["dip", "md"]:
                    kind = parts[3]
                    if kind == "protocol":
                        return ("confirm" if self.command == "PATCH" else "protocol"), parts[2]
                    return {"xml": "upload"}.get(kind, kind), parts[2]
                return "unknown", None

            def _handle(self) -> None:
                op, ticket = self._op()
                body = self._body()
                if server.faults[op]:
                    status, text = server.faults[op].pop(0)
                    return self._reply(op, status, text)
                if op == "token":
                    return self._token(body)
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[7:] not in server.tokens:
                    return self._reply(op, 401, "Ungültiger Authorization Header")
                if op == "start":
                    t = f"T{next(server._seq):04d}{uuid.uuid4().hex[:8]}"
                    server.transfers[t] = Transfer(t)
                    return self._reply(op, 201, t)
                if op == "list":
                    server._polls += 1
                    ready = [
                        x.ticket
                        for x in server.transfers.values()
                        if x.state == "finished"
                        and not x.confirmed
                        and server._polls > server.protocol_after_polls
                        and not server.hold
                    ]
                    xml = (
                        "<Datentransfernummern>"
                        + "".join(f"<Datentransfernummer>{r}</Datentransfernummer>" for r in ready)
                        + "</Datentransfernummern>"
                    )
                    return self._reply(op, 200, xml, "application/octet-stream")
                t = server.transfers.get(ticket or "")
                if t is None:
                    return self._reply(op, 400, "Ungültige Datentransfernummer")
                if op == "upload":
                    if t.state != "started":
                        return self._reply(op, 410, "Datentransfer wurde bereits beendet")
                    try:
                        doc = check_signature(body, server.cert_pem)
                    except Exception as exc:
                        server.errors.append(f"signature: {exc}")
                        return self._reply(op, 400, f"Signatur ungültig: {exc}")
                    t.document, t.state = doc, "uploaded"
                    t.our_ticket = doc.findtext(
                        f"{{{DIP_V1}}}header/{{{DIP_V1}}}consignment/{{{DIP_V1}}}transferticketId"
                    )
                    header = doc.find(f"{{{DIP_V1}}}header")
                    t.environment = header.get("environment") if header is not None else None
                    t.message_ref_id = doc.findtext(f".//{{{DPI}}}MessageSpec/{{{DPI}}}MessageRefId")
                    t.doc_ref_ids = [e.text for e in doc.iter("{urn:oecd:ties:dpistf:v1}DocRefId")]
                    t.seller_doc_ref_ids = [
                        e.text
                        for s in doc.iter(f"{{{DPI}}}ReportableSeller")
                        for e in s.iter("{urn:oecd:ties:dpistf:v1}DocRefId")
                    ]
                    return self._reply(op, 200)
                if op in ("finish", "abort"):
                    if t.state in ("finished", "aborted"):
                        return self._reply(op, 410, "Datentransfer wurde bereits beendet")
                    t.state = "finished" if op == "finish" else "aborted"
                    return self._reply(op, 200)
                if op == "protocol":
                    if t.state != "finished" or server._polls <= server.protocol_after_polls or server.hold:
                        return self._reply(op, 404, "Protokoll liegt nicht vor")
                    return self._reply(op, 200, server.protocol_xml(t), "application/octet-stream")
                if op == "confirm":
                    t.confirmed = True
                    return self._reply(op, 200)
                return self._reply(op, 404, "unknown")

            def _token(self, body: bytes) -> None:
                form = dict(urllib.parse.parse_qsl(body.decode()))
                try:
                    if form.get("grant_type") != "client_credentials":
                        raise ValueError("grant_type")
                    if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                        raise ValueError("client_assertion_type")
                    cert = x509.load_pem_x509_certificate(server.cert_pem.encode())
                    claims = jwt.decode(
                        form["client_assertion"],
                        cert.public_key(),  # type: ignore[arg-type]
                        algorithms=["RS256"],
                        audience=f"{server.url}/auth/realms/mds",
                        issuer=server.client_id,
                        options={"require": ["exp", "iat", "nbf", "jti", "sub"]},
                    )
                    if claims["sub"] != server.client_id:
                        raise ValueError("sub")
                except Exception as exc:
                    server.errors.append(f"assertion: {exc}")
                    return self._reply("token", 401, json.dumps({"error": "invalid_client"}), "application/json")
                token = uuid.uuid4().hex
                server.tokens.add(token)
                return self._reply(
                    "token",
                    200,
                    json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 300}),
                    "application/json",
                )

            do_GET = do_POST = do_PUT = do_PATCH = _handle

        return Handler
