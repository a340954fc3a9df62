"""The DIP protocols: what the test suite's DIP server answers is valid against the v2 protocol
schema (``dipResponse.xsd`` and the v2 ``dip-types.xsd`` of the XDEV client, vendored under
tests/reference/xsd/de-bzst-dip-protocol-v2__xdev-client/), in each of its outcomes; and a v1
protocol (namespace ``.../dip/v1/``, for which no schema was found) is fetched and applied to the
ledger from the command line like a v2 one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from builders import write_config
from dip_server import DipServer, Transfer, make_credentials
from lxml import etree
from resources import vendored
from test_transmission import BZST, _cli, _market, _run

from reporting import pipeline
from reporting.ledger import open_ledger

V2 = vendored("xsd", "de-bzst-dip-protocol-v2__xdev-client")


@pytest.fixture(scope="module")
def creds() -> tuple[str, str, str]:
    return make_credentials()


@pytest.fixture(scope="module")
def v2_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(V2 / "dipResponse.xsd")))


def transfer() -> Transfer:
    t = Transfer("T0001abcd", state="finished", our_ticket="DE2025-ticket-1", message_ref_id="DE2025DE1")
    t.doc_ref_ids = ["DE2025DE1-PO", "DE2025DE1-S1", "DE2025DE1-S2"]
    t.seller_doc_ref_ids = ["DE2025DE1-S1", "DE2025DE1-S2"]
    return t


@pytest.mark.parametrize(
    ("reject", "whole", "status"),
    [(set(), False, "OK"), ({"DE2025DE1-S2"}, False, "PARTIALLY_REJECTED"), (set(), True, "ERROR")],
    ids=["ok", "partially rejected", "error"],
)
def test_the_servers_v2_protocols_are_valid_against_the_published_schema(
    creds: tuple[str, str, str], v2_schema: etree.XMLSchema, reject: set[str], whole: bool, status: str
) -> None:
    server = DipServer(creds[0], creds[2])  # not started: only its documents are used
    try:
        server.reject, server.whole_error = reject, whole
        doc = etree.fromstring(server.protocol_xml(transfer()))
    finally:
        server.httpd.server_close()
    assert v2_schema.validate(doc), v2_schema.error_log
    ns = {"p": "http://itzbund.de/ozg/bzst/post/dip/v2/"}
    assert doc.findtext("p:dipProtocol/p:processStatus", namespaces=ns) == status
    assert doc.findtext("p:dipProtocol/p:consignment/p:transferticketId", namespaces=ns) == "DE2025-ticket-1"


def test_the_schema_refuses_what_a_protocol_may_not_be(v2_schema: etree.XMLSchema) -> None:
    """The vendored schema is read for what it says: an unknown status, or no ticket, is invalid."""
    ns = "http://itzbund.de/ozg/bzst/post/dip/v2/"
    bad = etree.fromstring(
        f'<dipResponse xmlns="{ns}" version="2.0"><responseTransferticketId>R1</responseTransferticketId>'
        "<dipProtocol><processStatus>MAYBE</processStatus></dipProtocol></dipResponse>"
    )
    assert not v2_schema.validate(bad)
    no_ticket = etree.fromstring(
        f'<dipResponse xmlns="{ns}" version="2.0"><dipProtocol><processStatus>OK</processStatus></dipProtocol>'
        "</dipResponse>"
    )
    assert not v2_schema.validate(no_ticket)


def test_a_v1_protocol_is_fetched_and_applied_like_a_v2_one(
    tmp_path: Path,
    creds: tuple[str, str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in zip(("DAC7_DIP_CLIENT_ID", "DAC7_DIP_PRIVATE_KEY", "DAC7_DIP_CERTIFICATE"), creds, strict=True):
        monkeypatch.setenv(name, value)
    with DipServer(creds[0], creds[2], protocol_version="v1") as test_host:
        extra = BZST + f'\n[transmission]\ndip_test_url = "{test_host.url}"\ndip_prod_url = "http://127.0.0.1:9"\n'
        cfg = write_config(tmp_path / "dac7.toml", filing_state="DE", extra=extra)
        run_dir = _run(tmp_path, cfg, _market(), stamp=datetime(2026, 1, 31, 8, 0), name="v1")
        pipeline.publish(run_dir, "DE")  # a test filing: no approval needed
        test_host.reject_first = 1
        out = str(tmp_path / "out")
        assert _cli(tmp_path, cfg, "transmit", "--out", out, "--by", "ana") == 0
        assert "transmitted to the BZSt DIP (test)" in capsys.readouterr().out
        assert _cli(tmp_path, cfg, "protocol-fetch", "--out", out, "--by", "ana", "--environment", "test") == 0
        printed = capsys.readouterr().out
        [transfer_] = test_host.transfers.values()
        kept = (tmp_path / "out" / "protocols" / "DE" / f"{transfer_.ticket}.xml").read_bytes()
    assert b"http://itzbund.de/ozg/bzst/post/dip/v1/" in kept
    assert ": partially rejected, message accepted; 1 record(s) rejected" in printed
    assert transfer_.confirmed
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        [state] = ledger.filing_states(authority="DE")
    assert state.state == "partially_rejected" and state.rejected_records == 1
    assert state.environment == "test" and state.step("approved") is None
