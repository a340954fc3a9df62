"""transmit_message and fetch_protocols against the local DIP server, where the ledger and the
server could disagree: a transfer finished whose ledger write failed is never delivered twice,
and a protocol without a consignment is matched by the transfer it answers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from dip_server import DipServer, make_credentials
from ledger_filing import Filer, current

import reporting.ledger.schema as t
from reporting.config import Transmission
from reporting.files import file_sha256
from reporting.ledger import Ledger, open_ledger
from reporting.ledger.errors import StatusFormatError
from reporting.ledger.status import parse_status
from reporting.transmit import DipClient, DipCredentials, PermanentTransmissionError, fetch_protocols, transmit_message

DIP_NS = "http://itzbund.de/ozg/bzst/post/dip/v1/"


@pytest.fixture(scope="module")
def creds() -> DipCredentials:
    return DipCredentials(*make_credentials())


@pytest.fixture
def ledger(tmp_path: Path):
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as led:
        yield led


def published_message(ledger: Ledger, out: Path) -> tuple[str, Path]:
    """A published DE test message whose file is a DIP document the ledger recorded."""
    filer = Filer(ledger, environment="test", authority="DE", year=2025)
    [ref] = filer.record(filer.plan(current(sellers={"S1": 1})))
    ticket_id = ledger.message(ref).transfer_id
    doc = (
        f'<dip:dip xmlns:dip="{DIP_NS}" version="1.0"><dip:header environment="TEST"><dip:consignment>'
        f"<dip:transferticketId>{ticket_id}</dip:transferticketId></dip:consignment></dip:header></dip:dip>"
    ).encode()
    (out / "DE").mkdir(parents=True, exist_ok=True)
    path = out / "DE" / f"{ref}.xml"
    path.write_bytes(doc)
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(t.messages).where(t.messages.c.message_ref_id == ref).values(sha256=file_sha256(path)))
    ledger.mark_published(ref, at=datetime(2026, 1, 20, 9))
    return ref, path


def test_a_finished_transfer_whose_ledger_write_failed_is_not_delivered_again(
    ledger: Ledger, creds: DipCredentials, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ref, path = published_message(ledger, out)
    real = ledger.record_transmission
    failed: list[str] = []

    def flaky(mid: str, *, event: str, **kw: object) -> None:
        if event == "transmitted" and not failed:
            failed.append(event)
            raise ConnectionError("the ledger went away")
        real(mid, event=event, **kw)  # type: ignore[arg-type]

    ledger.record_transmission = flaky  # type: ignore[method-assign]
    with DipServer(creds.client_id, creds.certificate_pem) as server:
        settings = Transmission(dip_test_url=server.url)
        make = lambda env: DipClient(server.url, creds)  # noqa: E731
        with pytest.raises(ConnectionError):
            transmit_message(ledger, ref, path, out_dir=out, actor="ana", settings=settings, dip=make)
        [first] = server.transfers
        assert server.transfers[first].state == "finished"
        again = transmit_message(ledger, ref, path, out_dir=out, actor="ana", settings=settings, dip=make)
        assert again.ticket == first
        assert list(server.transfers) == [first]  # no second transfer
        assert [op for op, _, _ in server.calls].count("start") == 1
    events = [(e.event, e.ticket) for e in ledger.transmissions(ref)]
    assert events == [("started", first), ("transmitted", first)]
    assert ledger.filing_states(message_ref_id=ref)[0].state == "transmitted"


def test_a_transfer_left_open_is_aborted_before_a_new_one(
    ledger: Ledger, creds: DipCredentials, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ref, path = published_message(ledger, out)
    with DipServer(creds.client_id, creds.certificate_pem) as server:
        settings = Transmission(dip_test_url=server.url)
        make = lambda env: DipClient(server.url, creds)  # noqa: E731
        with make("test") as client:  # a run stopped after the start
            stale = client.start()
        ledger.record_transmission(ref, event="started", channel="dip", actor="ana", ticket=stale)
        sent = transmit_message(ledger, ref, path, out_dir=out, actor="ana", settings=settings, dip=make)
        assert sent.ticket != stale
        assert server.transfers[stale].state == "aborted"
        assert server.transfers[sent.ticket].state == "finished"
    events = [(e.event, e.ticket) for e in ledger.transmissions(ref)]
    assert events == [("started", stale), ("aborted", stale), ("started", sent.ticket), ("transmitted", sent.ticket)]


def test_an_open_transfer_the_dip_does_not_know_stops_for_a_person(
    ledger: Ledger, creds: DipCredentials, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ref, path = published_message(ledger, out)
    ledger.record_transmission(ref, event="started", channel="dip", actor="ana", ticket="UNKNOWN-1")
    with DipServer(creds.client_id, creds.certificate_pem) as server:
        settings = Transmission(dip_test_url=server.url)
        make = lambda env: DipClient(server.url, creds)  # noqa: E731
        with pytest.raises(PermanentTransmissionError, match=r"UNKNOWN-1 was started earlier.*Nothing was sent"):
            transmit_message(ledger, ref, path, out_dir=out, actor="ana", settings=settings, dip=make)
        assert not server.transfers


def test_an_error_protocol_without_consignment_is_applied_to_its_transfer_and_confirmed(
    ledger: Ledger, creds: DipCredentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = "http://itzbund.de/ozg/bzst/post/dip/v2/"

    def no_consignment(self: DipServer, transfer: object) -> bytes:
        # an ERROR found before the document was read (a virus scan): consignment has minOccurs=0
        return (
            f'<dipResponse xmlns="{ns}" version="2.0"><responseTransferticketId>R1</responseTransferticketId>'
            "<dipProtocol><processStatus>ERROR</processStatus><dipResult><code>E0003</code>"
            "<message>Virus gefunden</message></dipResult></dipProtocol></dipResponse>"
        ).encode()

    monkeypatch.setattr(DipServer, "protocol_xml", no_consignment)
    out = tmp_path / "out"
    ref, path = published_message(ledger, out)
    with DipServer(creds.client_id, creds.certificate_pem) as server:
        settings = Transmission(dip_test_url=server.url)
        make = lambda env: DipClient(server.url, creds)  # noqa: E731
        sent = transmit_message(ledger, ref, path, out_dir=out, actor="ana", settings=settings, dip=make)
        with make("test") as client:
            fetched = fetch_protocols(ledger, client, environment="test", keep_dir=out, actor="ana")
        assert [o.message_ref_id for o in fetched.applied] == [ref]
        assert server.transfers[sent.ticket].confirmed
    assert ledger.filing_states(message_ref_id=ref)[0].state == "rejected"
    assert [e.event for e in ledger.transmissions(ref)][-1] == "confirmed"
    with pytest.raises(StatusFormatError, match="cannot be matched to a message"):
        parse_status(no_consignment(server, None))  # read alone, nothing names its message


def test_a_missing_approval_or_a_changed_file_is_permanent_never_retried(
    ledger: Ledger, creds: DipCredentials, tmp_path: Path
) -> None:
    """The DAGs' RETRY fails a ``PermanentError`` at once: these errors wait for a person, not for time."""
    from reporting.errors import PermanentError
    from reporting.ledger import ApprovalMissingError

    out = tmp_path / "out"
    settings = Transmission(dip_test_url="http://127.0.0.1:9")  # never reached
    never = lambda env: pytest.fail("no DIP client is made")  # noqa: E731
    # a production message without an approval
    prod = Filer(ledger, environment="prod", authority="FR", year=2025)
    [unapproved] = prod.file(current(sellers={"S1": 1}))
    with pytest.raises(ApprovalMissingError, match="has no recorded approval") as info:
        transmit_message(ledger, unapproved, out / "x.xml", out_dir=out, actor="ana", settings=settings, dip=never)
    assert isinstance(info.value, PermanentError)
    # the DIP document changed since it was published
    ref, path = published_message(ledger, out)
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(PermanentTransmissionError, match="not the file the ledger recorded") as sent:
        transmit_message(ledger, ref, path, out_dir=out, actor="ana", settings=settings, dip=never)
    assert isinstance(sent.value, PermanentError)
    # an outbox message whose published file is gone
    fr = Filer(ledger, environment="test", authority="FR", year=2025)
    [gone] = fr.file(current(sellers={"S2": 1}))
    with pytest.raises(PermanentTransmissionError, match="is missing") as missing:
        transmit_message(ledger, gone, out / "FR" / "gone.xml", out_dir=out, actor="ana", settings=settings)
    assert isinstance(missing.value, PermanentError)
    assert ledger.transmissions(unapproved) == [] and ledger.transmissions(gone) == []


def test_a_message_not_published_or_a_missing_dip_client_is_permanent_never_retried(
    ledger: Ledger, creds: DipCredentials, tmp_path: Path
) -> None:
    """Configuration or programming errors, not the weather: a retry finds the same state. A message
    never published, one the authority answered already, and a DE message handed over without a DIP
    client each stop at once with a ``PermanentError`` (still a ``LedgerError``, a
    ``TransmissionError``, for callers that catch those), and nothing is recorded or sent."""
    from reporting.errors import PermanentError
    from reporting.ledger import LedgerError, MessageStateError
    from reporting.transmit import TransmissionError

    out = tmp_path / "out"
    settings = Transmission(dip_test_url="http://127.0.0.1:9")  # never reached
    never = lambda env: pytest.fail("no DIP client is made")  # noqa: E731
    rendered_filer = Filer(ledger, environment="test", authority="FR", year=2025)
    [rendered] = rendered_filer.record(rendered_filer.plan(current(sellers={"S1": 1})))
    with pytest.raises(MessageStateError, match=r"is rendered: only a published message is transmitted") as info:
        transmit_message(ledger, rendered, out / "x.xml", out_dir=out, actor="ana", settings=settings, dip=never)
    assert isinstance(info.value, PermanentError) and isinstance(info.value, LedgerError)

    ref, path = published_message(ledger, out)
    with pytest.raises(PermanentTransmissionError, match="no DIP client was given") as no_client:
        transmit_message(ledger, ref, path, out_dir=out, actor="ana", settings=settings, dip=None)
    assert isinstance(no_client.value, PermanentError) and isinstance(no_client.value, TransmissionError)
    assert ledger.transmissions(rendered) == [] and ledger.transmissions(ref) == []

    # sent, then accepted: never transmitted again
    ledger.record_transmission(ref, event="transmitted", channel="dip", actor="ana", ticket="T-1")
    protocol = (
        f'<dipResponse xmlns="{DIP_NS.replace("/v1/", "/v2/")}" version="2.0">'
        "<responseTransferticketId>RT-1</responseTransferticketId><dipProtocol><consignment>"
        f"<transferticketId>{ledger.message(ref).transfer_id}</transferticketId></consignment>"
        "<processStatus>OK</processStatus></dipProtocol></dipResponse>"
    )
    ledger.record_status(parse_status(protocol.encode()), file_name="protocol.xml", sha256="1" * 64)
    assert ledger.message(ref).status == "accepted"
    with pytest.raises(MessageStateError, match="is accepted: only a published message is transmitted") as again:
        transmit_message(ledger, ref, path, out_dir=out, actor="ana", settings=settings, dip=never)
    assert isinstance(again.value, PermanentError)
    assert [e.event for e in ledger.transmissions(ref)] == ["transmitted"]


def test_mark_uploaded_needs_the_approval_in_production_and_no_open_transfer(ledger: Ledger, tmp_path: Path) -> None:
    from reporting.ledger import ApprovalMissingError
    from reporting.ledger.errors import LedgerError

    prod = Filer(ledger, environment="prod", authority="FR", year=2025)
    [ref] = prod.file(current(sellers={"S1": 1}))
    with pytest.raises(ApprovalMissingError, match="has no recorded approval"):
        ledger.mark_uploaded(ref, by="ana")
    assert ledger.transmissions(ref) == []
    approved = Filer(ledger, environment="prod", authority="IT", year=2025)
    [ok] = approved.record(approved.plan(current(sellers={"S1": 1})))
    ledger.record_approval([ok], approved_by="jonas", triggered_by="ana", at=datetime(2026, 1, 20, 9))
    ledger.mark_published(ok, at=datetime(2026, 1, 20, 10))
    assert ledger.mark_uploaded(ok, by="ana", at=datetime(2026, 1, 21, 9)).state == "uploaded"
    # a DIP transfer started and never ended: it may have gone through
    de, _ = published_message(ledger, tmp_path / "out")
    ledger.record_transmission(de, event="started", channel="dip", actor="ana", ticket="T-OPEN")
    with pytest.raises(LedgerError, match=r"DIP transfer open \(T-OPEN\).*nothing was recorded"):
        ledger.mark_uploaded(de, by="ana")
    ledger.record_transmission(de, event="aborted", channel="dip", actor="ana", ticket="T-OPEN")
    assert ledger.mark_uploaded(de, by="ana").state == "uploaded"
