"""The BZSt DIP client against the test suite's local DIP server: the signed JWT assertion, the
enveloping signature the server checks with its own verifier, a token renewed once on 401, a
failed transfer aborted and never reused, 4xx permanent and 5xx transient."""

from __future__ import annotations

import pytest
from dip_server import DipServer, check_signature, make_credentials

from reporting.transmit import (
    CredentialsError,
    DipClient,
    DipCredentials,
    PermanentTransmissionError,
    SignatureError,
    TransientTransmissionError,
)
from reporting.transmit.dip import send_transfer
from reporting.transmit.signature import sign_enveloping, verify_enveloping

DOC = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<dip:dip xmlns:dip="http://itzbund.de/ozg/bzst/post/dip/v1/" '
    b'version="1.0"><dip:header environment="TEST"><dip:consignment><dip:transferticketId>OUR-1'
    b"</dip:transferticketId></dip:consignment></dip:header></dip:dip>"
)


@pytest.fixture(scope="module")
def creds() -> DipCredentials:
    cid, key, cert = make_credentials()
    return DipCredentials(cid, key, cert)


@pytest.fixture
def server(creds: DipCredentials):
    with DipServer(creds.client_id, creds.certificate_pem) as s:
        yield s


def _client(server: DipServer, creds: DipCredentials) -> DipClient:
    return DipClient(server.url, creds)


def test_the_signature_has_the_published_structure_and_verifies_twice(creds: DipCredentials) -> None:
    signed = sign_enveloping(DOC, creds.private_key_pem, creds.certificate_pem)
    root = verify_enveloping(signed, certificate_pem=creds.certificate_pem)
    assert root.tag == "{http://itzbund.de/ozg/bzst/post/dip/v1/}dip"
    assert check_signature(signed, creds.certificate_pem).tag == root.tag  # the server's own verifier
    text = signed.decode()
    for part in (
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>',
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>',
        '<ds:SignatureMethod Algorithm="http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"/>',
        '<ds:Reference URI="#object"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>',
        "<ds:KeyInfo><ds:X509Data><ds:X509SubjectName>CN=dac7-test-client</ds:X509SubjectName><ds:X509Certificate>",
        '<ds:Object Id="object"><dip:dip',
    ):
        assert part in text
    with pytest.raises(SignatureError, match="digest of ds:Object does not match"):
        verify_enveloping(signed.replace(b"OUR-1", b"OUR-2"))
    other = make_credentials("someone-else")
    with pytest.raises(SignatureError, match="not the private key's"):
        sign_enveloping(DOC, creds.private_key_pem, other[2])
    with pytest.raises(SignatureError, match="another certificate"):
        verify_enveloping(signed, certificate_pem=other[2])


def test_a_whole_transfer_and_its_protocol(server: DipServer, creds: DipCredentials) -> None:
    with _client(server, creds) as client:
        signed = sign_enveloping(DOC, creds.private_key_pem, creds.certificate_pem)
        events: list[tuple[str, str]] = []
        ticket = send_transfer(client, signed, on_event=lambda e, t, d: events.append((e, t)))
        assert events == [("started", ticket)]
        assert server.transfers[ticket].state == "finished"
        assert server.transfers[ticket].our_ticket == "OUR-1"
        assert client.protocol_numbers() == [ticket]
        assert b"<processStatus>OK</processStatus>" in (client.protocol(ticket) or b"")
        client.confirm(ticket)
        assert client.protocol_numbers() == []
    assert server.ops() == ["token", "start", "upload", "finish", "list", "protocol", "confirm", "list"]
    assert server.errors == []


def test_an_expired_token_is_renewed_once(server: DipServer, creds: DipCredentials) -> None:
    with _client(server, creds) as client:
        client.start()
        server.expire_tokens()
        client.start()
        assert server.ops() == ["token", "start", "start", "token", "start"]
        # a 401 again right after the renewal is not renewed a second time
        server.fail("start", 401, "Ungültiger Authorization Header")
        server.fail("start", 401, "Ungültiger Authorization Header")
        with pytest.raises(PermanentTransmissionError, match="HTTP 401"):
            client.start()
        assert server.ops()[-3:] == ["start", "token", "start"]


def test_a_refused_assertion_is_a_credentials_error(server: DipServer, creds: DipCredentials) -> None:
    intruder = make_credentials(creds.client_id)  # the same id, a key the BZSt never registered
    with DipClient(server.url, DipCredentials(*intruder)) as client, pytest.raises(CredentialsError, match="refused"):
        client.start()
    assert server.errors and server.errors[0].startswith("assertion:")


def test_a_failed_transfer_is_aborted_and_its_ticket_never_reused(server: DipServer, creds: DipCredentials) -> None:
    signed = sign_enveloping(DOC, creds.private_key_pem, creds.certificate_pem)
    events: list[tuple[str, str, str | None]] = []
    with _client(server, creds) as client:
        server.fail("upload", 503, "Service Unavailable")
        with pytest.raises(TransientTransmissionError, match="HTTP 503"):
            send_transfer(client, signed, on_event=lambda e, t, d: events.append((e, t, d)))
        first = events[0][1]
        assert [e[0] for e in events] == ["started", "aborted"]
        assert server.transfers[first].state == "aborted"
        second = send_transfer(client, signed, on_event=lambda e, t, d: events.append((e, t, d)))
    assert second != first
    assert server.transfers[second].state == "finished"
    assert [op for op, path, _ in server.calls if first in path] == ["upload", "abort"]


def test_4xx_is_permanent_with_the_servers_words_5xx_and_timeouts_transient(
    server: DipServer, creds: DipCredentials
) -> None:
    with _client(server, creds) as client:
        server.fail("start", 404, "Zielfachverfahren nicht gefunden")
        with pytest.raises(PermanentTransmissionError, match=r"HTTP 404.*Zielfachverfahren nicht gefunden"):
            client.start()
        for status in (500, 502, 429):
            server.fail("start", status, "")
            with pytest.raises(TransientTransmissionError, match=f"HTTP {status}"):
                client.start()
    with DipClient("http://127.0.0.1:9", creds) as dead, pytest.raises(TransientTransmissionError, match="reached"):
        dead.start()


def test_a_bad_signature_is_refused_by_the_server(server: DipServer, creds: DipCredentials) -> None:
    signed = sign_enveloping(DOC, creds.private_key_pem, creds.certificate_pem).replace(b"OUR-1", b"OUR-9")
    with _client(server, creds) as client, pytest.raises(PermanentTransmissionError, match=r"HTTP 400.*Signatur"):
        send_transfer(client, signed, on_event=lambda *a: None)
    assert server.errors == ["signature: digest mismatch"]


def test_the_credentials_come_from_the_environment_and_are_never_shown(creds: DipCredentials) -> None:
    env = {
        "DAC7_DIP_CLIENT_ID": creds.client_id,
        "DAC7_DIP_PRIVATE_KEY": creds.private_key_pem,
        "DAC7_DIP_CERTIFICATE": creds.certificate_pem,
    }
    loaded = DipCredentials.from_env(env)
    assert loaded == creds
    assert "PRIVATE" not in repr(loaded) and "CERTIFICATE" not in repr(loaded)
    with pytest.raises(CredentialsError, match="DAC7_DIP_PRIVATE_KEY"):
        DipCredentials.from_env({"DAC7_DIP_CLIENT_ID": "x", "DAC7_DIP_CERTIFICATE": "y"})


def test_credentials_from_a_connection_name_what_is_missing_never_its_values(creds: DipCredentials) -> None:
    from reporting.transmit import CredentialsError

    got = DipCredentials.from_connection(
        "dac7_bzst_dip", f" {creds.client_id} ", creds.private_key_pem, {"certificate": creds.certificate_pem}
    )
    assert got == creds
    assert creds.private_key_pem not in repr(got)
    with pytest.raises(CredentialsError) as err:
        DipCredentials.from_connection("dac7_bzst_dip", creds.client_id, creds.private_key_pem, {})
    assert str(err.value) == "the DIP Connection 'dac7_bzst_dip' lacks its extra certificate"
    with pytest.raises(CredentialsError) as err:
        DipCredentials.from_connection("dac7_bzst_dip", "", None, {"certificate": creds.certificate_pem})
    assert "login (the client id), password (the private key)" in str(err.value)
    assert creds.certificate_pem not in str(err.value)


def test_a_document_goes_only_to_the_host_of_its_environment() -> None:
    from reporting.transmit.dip import PROD_HOST, TEST_HOST, check_destination, host_for

    local_test, local_prod = "http://127.0.0.1:8001", "http://127.0.0.1:8002"
    hosts = {"test_url": local_test, "prod_url": local_prod}
    check_destination(DOC, "test", local_test, **hosts)  # TEST document, test filing, test host
    with pytest.raises(PermanentTransmissionError, match=r"environment 'TEST'.*prod filing"):
        check_destination(DOC, "prod", local_prod, **hosts)
    prod_doc = DOC.replace(b'environment="TEST"', b'environment="PROD"')
    with pytest.raises(PermanentTransmissionError, match=r"environment 'PROD'.*test filing"):
        check_destination(prod_doc, "test", local_test, **hosts)
    with pytest.raises(PermanentTransmissionError, match="production host"):
        check_destination(DOC, "test", local_prod, **hosts)
    with pytest.raises(PermanentTransmissionError, match=r"production host mds\.bzst\.bund\.de"):
        check_destination(DOC, "test", PROD_HOST, test_url=TEST_HOST, prod_url=PROD_HOST)
    with pytest.raises(PermanentTransmissionError, match="test host"):
        check_destination(prod_doc, "prod", local_test, **hosts)
    check_destination(prod_doc, "prod", local_prod, **hosts)
    with pytest.raises(PermanentTransmissionError, match="production host"):
        host_for("test", test_url=PROD_HOST, prod_url=PROD_HOST)


ECHO = (
    "Element Name: value 'Ona Example' invalid; IBAN DE89 3704 0044 0532 0130 00 / DE89370400440532013000, "
    'BirthDate 1980-04-12, TIN 86095742719, contact ona.example@mail.example, Nachname "Müller-Lüdenscheidt" '
    + "x"
    * 400
)
ECHOED = (
    "Ona Example",
    "3704",
    "0044 0532",
    "DE89370400440532013000",
    "1980-04-12",
    "86095742719",
    "ona.example@mail.example",
    "Müller-Lüdenscheidt",
)


def test_the_servers_words_are_masked_and_short_in_the_error_the_log_and_the_ledger(
    server: DipServer, creds: DipCredentials, caplog: pytest.LogCaptureFixture
) -> None:
    signed = sign_enveloping(DOC, creds.private_key_pem, creds.certificate_pem)
    events: list[tuple[str, str, str | None]] = []
    with _client(server, creds) as client, caplog.at_level("DEBUG"):
        server.fail("upload", 400, ECHO)
        with pytest.raises(
            PermanentTransmissionError, match=r"HTTP 400.*Element Name: value \[\.\.\.\] invalid"
        ) as exc:
            send_transfer(client, signed, on_event=lambda e, t, d: events.append((e, t, d)))
    said = [str(exc.value), *(d or "" for _, _, d in events), caplog.text]
    for text in said:
        for value in ECHOED:
            assert value not in text
    assert "IBAN [...]" in str(exc.value) and "contact [...]" in str(exc.value)
    assert len(str(exc.value)) < 300  # cut: 160 characters of the server's words, then " ..."
    assert str(exc.value).endswith(" ...")
    # the ids we rely on stay readable: the HTTP status, a short code without a digit run
    from reporting.transmit.dip import masked_words

    assert masked_words("HTTP 400 code E17: 'x' in line 12") == "HTTP 400 code E17: [...] in line 12"
