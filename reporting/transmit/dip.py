"""The BZSt DIP mass-data interface (``DIP-Massendatenschnittstelle``), as a client.

Facts from the public clients (sources in docs/guide/transmission.md): the BZSt's OpenAPI
definition ``dip_open_api.yaml`` (DIP-MDS 1.3) as kept by XDEV's bzst-dip-java-client
(``openapi/openapi.yml``), that client's ``BearerTokenRequester`` and ``WebClient``, and the
tyclipso dac7_reporter sender (``lib/Net/ApiManager.dart``):

* hosts: production ``https://mds.bzst.bund.de``, test ``https://mds-ktst.bzst.bund.de``;
* token: ``POST /auth/realms/mds/protocol/openid-connect/token`` (form: ``grant_type=
  client_credentials``, ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:
  jwt-bearer``, ``client_assertion``: a JWT signed RS256, ``iss`` = ``sub`` = the client id,
  ``aud`` = ``<host>/auth/realms/mds``, with ``iat``, ``nbf``, ``exp``, ``jti``); the answer's
  ``access_token`` goes as ``Authorization: Bearer ...``;
* ``POST /dip/start/DAC7`` (201, the data transfer number as plain text), ``PUT
  /dip/md/{n}/xml`` (the signed document), ``PATCH /dip/md/{n}/finish``, ``PATCH
  /dip/md/{n}/abort``; ``GET /dip/md/protocolnumbers`` (``<Datentransfernummern>`` of
  ``<Datentransfernummer>``), ``GET /dip/md/{n}/protocol`` (404: not there yet), ``PATCH
  /dip/md/{n}/protocol`` (receipt confirmed: it leaves the list).

Errors: a 401 renews the token once, then the call is repeated; 429, 5xx, a timeout or a broken
connection is :class:`TransientTransmissionError`; any other 4xx is
:class:`PermanentTransmissionError` with the server's words (cut short; the server answers about
the request, which carries no personal data in its path or headers). Nothing here logs a token,
the key or the document.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from lxml import etree

from reporting import safexml
from reporting.transmit.errors import (
    CredentialsError,
    PermanentTransmissionError,
    TransientTransmissionError,
    TransmissionError,
)
from reporting.transmit.signature import load_key

log = logging.getLogger(__name__)

TEST_HOST = "https://mds-ktst.bzst.bund.de"
PROD_HOST = "https://mds.bzst.bund.de"
REALM_PATH = "/auth/realms/mds"
TOKEN_PATH = f"{REALM_PATH}/protocol/openid-connect/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
APPLICATION = "DAC7"
_TICKET = re.compile(r"[A-Za-z0-9._~-]{1,170}")
#: How much of the server's reason goes into an exception, the log and the ledger's detail.
_SERVER_WORDS = 160
#: What of the server's reason may echo personal data of our file, masked before it goes anywhere:
#: quoted values, e-mail-like tokens, and any token with a run of 4 or more digits (an IBAN, a
#: TIN, a birth date, an account or VAT number), as one ``[...]``.
_ECHOED = re.compile(r"""'[^']*'|"[^"]*"|„[^“”]*[“”]|«[^»]*»|[^\s]*@[^\s]*|[^\s]*[0-9](?:[-./ ]?[0-9]){3,}[^\s]*""")


@dataclass(frozen=True, slots=True)
class DipCredentials:
    """The operator's BZSt client id, and the key and certificate registered for it in the BZSt
    portal (PEM texts). From an Airflow Connection or the environment, never from a file of the
    repository; never printed (``repr`` shows the client id only)."""

    client_id: str
    private_key_pem: str = field(repr=False)
    certificate_pem: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DipCredentials:
        """``DAC7_DIP_CLIENT_ID``, ``DAC7_DIP_PRIVATE_KEY`` and ``DAC7_DIP_CERTIFICATE`` (PEM texts)."""
        env = os.environ if env is None else env
        names = ("DAC7_DIP_CLIENT_ID", "DAC7_DIP_PRIVATE_KEY", "DAC7_DIP_CERTIFICATE")
        missing = [n for n in names if not env.get(n, "").strip()]
        if missing:
            raise CredentialsError(
                f"the BZSt DIP credentials are not set: {', '.join(missing)} (in Airflow: the Connection named by "
                "DAC7_DIP_CONN_ID, login = client id, password = private key PEM, extra certificate = certificate PEM)"
            )
        return cls(env[names[0]].strip(), env[names[1]], env[names[2]])

    @classmethod
    def from_connection(
        cls, conn_id: str, login: str | None, password: str | None, extra: Mapping[str, Any] | None
    ) -> DipCredentials:
        """The credentials of an Airflow Connection's fields (the DAG reads the Connection and
        passes them here): login = the BZSt client id, password = the private key (PEM), extra
        ``certificate`` = the certificate (PEM). Refused with the names of the missing fields."""
        client_id, key = (login or "").strip(), password or ""
        cert = str((extra or {}).get("certificate") or "")
        missing = [
            name
            for name, value in (
                ("login (the client id)", client_id),
                ("password (the private key)", key),
                ("extra certificate", cert),
            )
            if not value.strip()
        ]
        if missing:
            raise CredentialsError(f"the DIP Connection {conn_id!r} lacks its {', '.join(missing)}")
        return cls(client_id, key, cert)


def host_for(environment: str, *, test_url: str = TEST_HOST, prod_url: str = PROD_HOST) -> str:
    """The DIP host of a filing's environment: a test filing never reaches production."""
    url = (prod_url if environment == "prod" else test_url).rstrip("/")
    _check_host(environment, url, test_url=test_url, prod_url=prod_url)
    return url


def _host(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower() or None, parts.port or {"https": 443, "http": 80}.get(parts.scheme)


def _check_host(environment: str, url: str, *, test_url: str, prod_url: str) -> None:
    """A test filing never goes to a production host (the BZSt's or the configured one), a
    production filing never to a test host."""
    if environment == "prod":
        wrong = ({_host(test_url)} - {_host(prod_url)}) | {_host(TEST_HOST)}
    else:
        wrong = ({_host(prod_url)} - {_host(test_url)}) | {_host(PROD_HOST)}
    if _host(url) in wrong:
        side = "test" if environment == "prod" else "production"
        raise PermanentTransmissionError(
            f"a {environment} filing would go to the DIP {side} host {_host(url)[0]}; nothing was sent"
        )


#: the DIP header's ``environment`` of each ledger environment
DOCUMENT_ENVIRONMENT = {"prod": "PROD", "test": "TEST"}


def check_destination(document: bytes, environment: str, url: str, *, test_url: str, prod_url: str) -> None:
    """Before anything is sent: the document's ``dip:header/@environment`` is the filing's
    (``environment`` from the ledger), and the host is that environment's. Raises
    :class:`PermanentTransmissionError` otherwise."""
    try:
        root = safexml.parse_bytes(document, "DIP document", utf8_only=False)
    except safexml.XmlFileError as exc:
        raise PermanentTransmissionError(f"the DIP document cannot be read: {exc}") from None
    header = next((e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == "header"), None)
    found = header.get("environment") if header is not None else None
    expected = DOCUMENT_ENVIRONMENT.get(environment, "TEST")
    if found != expected:
        raise PermanentTransmissionError(
            f"the DIP document says environment {found!r} but the ledger records a {environment} filing "
            f"(expected {expected!r}); nothing was sent"
        )
    _check_host(environment, url, test_url=test_url, prod_url=prod_url)


class DipClient:
    """One DIP host with one operator's credentials. ``http``: an ``httpx.Client`` (tests pass
    their own); ``clock``: seconds since the epoch, for the assertion's times."""

    def __init__(
        self,
        base_url: str,
        credentials: DipCredentials,
        *,
        http: httpx.Client | None = None,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self.clock = clock
        self._key = load_key(credentials.private_key_pem)
        self._token: str | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> DipClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- token

    def assertion(self) -> str:
        now = int(self.clock())
        cid = self.credentials.client_id
        claims = {
            "iss": cid,
            "sub": cid,
            "aud": f"{self.base_url}{REALM_PATH}",
            "iat": now,
            "nbf": now - 60,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm="RS256")

    def token(self, *, renew: bool = False) -> str:
        if self._token and not renew:
            return self._token
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        response = self._send("POST", TOKEN_PATH, data=form, what="token")
        if response.status_code in (400, 401, 403):
            raise CredentialsError(
                f"the DIP token endpoint refused the client assertion (HTTP {response.status_code}"
                f"{_words(response)}): check the client id, and that the certificate is the one registered "
                "in the BZSt portal for it"
            )
        self._check(response, "token", (200,))
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise PermanentTransmissionError("the DIP token endpoint answered without an access_token") from None
        self._token = str(token)
        return self._token

    # ----------------------------------------------------------------------------- calls

    def _send(self, method: str, path: str, *, what: str, **kw: Any) -> httpx.Response:
        try:
            return self.http.request(method, f"{self.base_url}{path}", **kw)
        except httpx.TimeoutException:
            raise TransientTransmissionError(f"DIP {what}: no answer in time from {self.base_url}") from None
        except httpx.TransportError as exc:
            raise TransientTransmissionError(
                f"DIP {what}: {self.base_url} could not be reached ({type(exc).__name__})"
            ) from None

    def _call(
        self, method: str, path: str, *, what: str, expect: tuple[int, ...] = (200,), **kw: Any
    ) -> httpx.Response:
        """A call with the bearer token; a 401 renews the token once and repeats the call."""
        extra = kw.pop("extra_headers", {})
        response = self._send(method, path, what=what, headers={**extra, **self._auth()}, **kw)
        if response.status_code == 401:
            log.info("DIP %s: the token expired; renewed once", what)
            self.token(renew=True)
            response = self._send(method, path, what=what, headers={**extra, **self._auth()}, **kw)
        self._check(response, what, expect)
        return response

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def _check(self, response: httpx.Response, what: str, expect: tuple[int, ...]) -> None:
        code = response.status_code
        if code in expect:
            return
        text = f"DIP {what}: HTTP {code}{_words(response)}"
        if code == 429 or code >= 500:
            raise TransientTransmissionError(text)
        raise PermanentTransmissionError(text)

    # ------------------------------------------------------------------------- transfer

    def start(self, application: str = APPLICATION) -> str:
        """A new data transfer number (ticket) for one delivery."""
        response = self._call("POST", f"/dip/start/{application}", what="start", expect=(200, 201))
        ticket = response.text.strip()
        if not _TICKET.fullmatch(ticket):
            raise PermanentTransmissionError("DIP start: the answer is not a data transfer number")
        return ticket

    def upload(self, ticket: str, document: bytes) -> None:
        self._call(
            "PUT",
            f"/dip/md/{_ticket(ticket)}/xml",
            what="upload",
            content=document,
            extra_headers={"Content-Type": "application/octet-stream"},
        )

    def finish(self, ticket: str) -> None:
        self._call("PATCH", f"/dip/md/{_ticket(ticket)}/finish", what="finish")

    def abort(self, ticket: str) -> bool:
        """Abort a transfer; True if the server says it was finished already (HTTP 410)."""
        try:
            self._call("PATCH", f"/dip/md/{_ticket(ticket)}/abort", what="abort")
        except PermanentTransmissionError as exc:
            if "HTTP 410" in str(exc):
                return True
            raise
        return False

    # ------------------------------------------------------------------------- protocol

    def protocol_numbers(self) -> list[str]:
        """The data transfer numbers whose protocol is ready and not confirmed yet."""
        response = self._call("GET", "/dip/md/protocolnumbers", what="protocol list")
        if not response.content.strip():
            return []
        try:
            root = safexml.parse_bytes(response.content, "DIP protocol list", utf8_only=False)
        except safexml.XmlFileError as exc:
            raise PermanentTransmissionError(f"DIP protocol list: {exc}") from None
        return [
            " ".join("".join(e.itertext()).split())
            for e in root.iter()
            if isinstance(e.tag, str) and etree.QName(e).localname == "Datentransfernummer"
        ]

    def protocol(self, ticket: str) -> bytes | None:
        """The protocol of a transfer, or None if it is not there yet (HTTP 404)."""
        response = self._call("GET", f"/dip/md/{_ticket(ticket)}/protocol", what="protocol", expect=(200, 404))
        return None if response.status_code == 404 else response.content

    def confirm(self, ticket: str) -> None:
        """Confirm the receipt of a protocol (it leaves the protocol list)."""
        self._call("PATCH", f"/dip/md/{_ticket(ticket)}/protocol", what="confirm")


def _ticket(ticket: str) -> str:
    if not _TICKET.fullmatch(ticket):
        raise PermanentTransmissionError("not a DIP data transfer number")
    return ticket


def masked_words(text: str) -> str:
    """The server's words, masked (:data:`_ECHOED`) and cut to :data:`_SERVER_WORDS` characters."""
    text = _ECHOED.sub("[...]", " ".join(text.split()))
    return text[:_SERVER_WORDS] + (" ..." if len(text) > _SERVER_WORDS else "")


def _words(response: httpx.Response) -> str:
    """The server's reason, masked, short and on one line: it may echo data of our file."""
    try:
        text = " ".join(response.text.split())
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        text = ""
    text = masked_words(text)
    return f" ({response.reason_phrase}): {text}" if text else f" ({response.reason_phrase})"


def send_transfer(
    client: DipClient,
    signed: bytes,
    *,
    on_event: Callable[[str, str, str | None], None],
) -> str:
    """Start a transfer, upload the signed document, finish: the ticket. On any failure after the
    start the transfer is aborted (``on_event("aborted", ticket, why)``) and the error raised; its
    ticket is never used again. If the abort finds it finished already (HTTP 410), the delivery
    went through: the ticket is returned."""
    ticket = client.start()
    on_event("started", ticket, None)
    try:
        client.upload(ticket, signed)
        client.finish(ticket)
    except TransmissionError as exc:
        try:
            if client.abort(ticket):
                log.warning("DIP transfer %s: the abort found it finished; the delivery went through", ticket)
                return ticket
        except TransmissionError as abort_exc:
            exc.add_note(f"the abort of transfer {ticket} failed too: {abort_exc}")
        on_event("aborted", ticket, str(exc))
        raise
    return ticket
