"""Transmission of published messages: the BZSt DIP interface for DE, the outbox for the others.

    transmit_message(ledger, ref, path, out_dir=..., actor=..., settings=..., dip=...)
    fetch_protocols(ledger, client, environment=..., keep_dir=..., actor=...)

Rules: a message is sent once (published, never sent before: the ledger refuses the rest); a
production message only with the four-eyes approval the ledger holds; a test message goes to the
DIP test host, a production one to production. A DIP transfer that fails is aborted and its
ticket never used again: a retry (``attempts``, transient errors only) starts a new one. The
protocol, once there, is applied to the ledger as ``dac7 status-import`` applies a status
document, kept beside the output (0600), and its receipt confirmed.

Permanent (``reporting.errors.PermanentError``: the DAGs fail them at once, no retry): a message
that is not published (``MessageStateError``), a DIP message handed over without a DIP client
(``PermanentTransmissionError``: a programming or configuration error), a missing approval, a
published file that is missing or changed, and a refusal by the DIP (a 4xx).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reporting.authorities import profile_for
from reporting.config import Transmission
from reporting.files import file_sha256
from reporting.ledger import Ledger, MessageStateError, StatusOutcome
from reporting.ledger.model import ABORTED, CONFIRMED, DIP, PUBLISHED, STARTED, TRANSMITTED
from reporting.ledger.status import import_status_bytes
from reporting.ledger.transmissions import open_transfers
from reporting.private import private_dirs
from reporting.transmit.dip import DipClient, DipCredentials, check_destination, host_for, send_transfer
from reporting.transmit.errors import PermanentTransmissionError, TransientTransmissionError, TransmissionError
from reporting.transmit.outbox import OutboxPackage, prepare_package
from reporting.transmit.signature import sign_enveloping
from reporting.vocabulary import PROD

log = logging.getLogger(__name__)

PROTOCOLS_DIR = "protocols"


def channel_of(authority: str) -> str:
    """``dip`` for an authority whose interface we drive (its profile says so), else ``outbox``."""
    return "dip" if getattr(profile_for(authority), "transmission", "portal") == "dip" else "outbox"


@dataclass(frozen=True, slots=True)
class Transmitted:
    message_ref_id: str
    authority: str
    channel: str  # dip | outbox
    ticket: str | None = None  # the DIP transfer
    package: OutboxPackage | None = None
    attempts: int = 1


def dip_client(environment: str, settings: Transmission, credentials: DipCredentials, **kw: object) -> DipClient:
    url = host_for(environment, test_url=settings.dip_test_url, prod_url=settings.dip_prod_url)
    return DipClient(url, credentials, **kw)  # type: ignore[arg-type]


def transmit_message(
    ledger: Ledger,
    message_ref_id: str,
    published: Path,
    *,
    out_dir: str | Path,
    actor: str,
    settings: Transmission,
    dip: Callable[[str], DipClient] | None = None,
    attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Transmitted:
    """Send one published message its authority's way. ``dip(environment)`` makes the DIP client
    (with the credentials); needed for DE only."""
    info = ledger.message(message_ref_id)
    if info.status != PUBLISHED:  # the caller's mistake: a retry finds the same state
        raise MessageStateError(
            f"message {message_ref_id} is {info.status}: only a published message is transmitted "
            "(an answered one never again)"
        )
    if info.environment == PROD:
        ledger.check_approved(info)  # four eyes: raises without a second person's recorded approval
    if channel_of(info.authority) != "dip":
        package = prepare_package(
            ledger, message_ref_id, published, out_dir, actor=actor, fr_public_key=settings.fr_public_key
        )
        return Transmitted(message_ref_id, info.authority, "outbox", package=package)
    if dip is None:  # a programming or configuration error: no retry makes a client appear
        raise PermanentTransmissionError(
            f"message {message_ref_id} goes to the BZSt DIP interface: no DIP client was given"
        )
    if not published.is_file() or file_sha256(published) != info.sha256:
        raise PermanentTransmissionError(
            f"message {message_ref_id}: {published} is missing or not the file the ledger recorded; nothing was sent"
        )
    signed = None
    tries = max(1, attempts if attempts is not None else settings.attempts)
    with dip(info.environment) as client:
        document = published.read_bytes()
        check_destination(
            document,
            info.environment,
            client.base_url,
            test_url=settings.dip_test_url,
            prod_url=settings.dip_prod_url,
        )
        signed = sign_enveloping(document, client.credentials.private_key_pem, client.credentials.certificate_pem)

        def record(event: str, ticket: str, detail: str | None) -> None:
            ledger.record_transmission(
                message_ref_id, event=event, channel=DIP, actor=actor, ticket=ticket, detail=detail
            )

        went = _settle_open_transfers(ledger, message_ref_id, client, record)
        if went is not None:
            record(TRANSMITTED, went, "an earlier transfer was found finished (the abort answered 410)")
            log.info("message %s: transfer %s had gone through already; nothing sent again", message_ref_id, went)
            return Transmitted(message_ref_id, info.authority, "dip", ticket=went, attempts=0)
        for attempt in range(1, tries + 1):
            try:
                ticket = send_transfer(client, signed, on_event=record)
            except TransientTransmissionError as exc:
                if attempt == tries:
                    exc.add_note(f"{attempt} transfer(s) tried, each aborted; the next try starts a new transfer")
                    raise
                log.warning("DIP transfer of %s failed (%s); a new transfer in %ss", message_ref_id, exc, 2**attempt)
                sleep(2**attempt)
                continue
            record(TRANSMITTED, ticket, None)
            log.info("message %s transmitted to the BZSt DIP, transfer %s", message_ref_id, ticket)
            return Transmitted(message_ref_id, info.authority, "dip", ticket=ticket, attempts=attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _settle_open_transfers(
    ledger: Ledger,
    message_ref_id: str,
    client: DipClient,
    record: Callable[[str, str, str | None], None],
) -> str | None:
    """Before a new transfer: each transfer of this message the ledger saw start but never end is
    aborted. An abort answered 410 means it was finished: the delivery went through, its ticket
    is returned and nothing is sent again. An abort that fails otherwise stops the transmission
    for a person to look at (the DIP may hold the delivery)."""
    for ticket in open_transfers(ledger.transmissions(message_ref_id)):
        try:
            finished = client.abort(ticket)
        except TransientTransmissionError:
            raise
        except TransmissionError as exc:
            raise PermanentTransmissionError(
                f"message {message_ref_id}: DIP transfer {ticket} was started earlier and its end is not recorded; "
                f"aborting it failed ({exc}). Nothing was sent. Ask the BZSt whether transfer {ticket} arrived: "
                f"if it did, record it (its protocol will come); if not, record it aborted, then transmit again"
            ) from None
        if finished:
            return ticket
        record(ABORTED, ticket, "aborted before a new transfer: its end had not been recorded")
    return None


@dataclass(frozen=True, slots=True)
class ProtocolFetch:
    applied: tuple[StatusOutcome, ...]
    waiting: tuple[str, ...]  # MessageRefIds whose protocol is not there yet


def fetch_protocols(
    ledger: Ledger,
    client: DipClient,
    *,
    environment: str,
    keep_dir: str | Path,
    actor: str,
    message_ref_ids: tuple[str, ...] | None = None,
) -> ProtocolFetch:
    """Ask the DIP for the protocols of the environment's finished transfers; apply each one
    there to the ledger (as a status import), keep it in ``keep_dir/protocols``, confirm it."""
    waiting = [
        s
        for s in ledger.awaiting_protocol(environment)
        if message_ref_ids is None or s.message_ref_id in message_ref_ids
    ]
    if not waiting:
        return ProtocolFetch((), ())
    ready = set(client.protocol_numbers())
    applied: list[StatusOutcome] = []
    still: list[str] = []
    for state in waiting:
        ticket = state.ticket
        assert ticket is not None
        data = client.protocol(ticket) if ticket in ready else None
        if data is None:
            still.append(state.message_ref_id)
            continue
        folder = private_dirs(Path(keep_dir) / PROTOCOLS_DIR / state.authority)
        path = folder / f"{ticket}.xml"
        _write_private(path, data)
        outcome = import_status_bytes(ledger, data, name=str(path), expected_message_ref_id=state.message_ref_id)
        if outcome.message_ref_id != state.message_ref_id:
            raise TransmissionError(
                f"the protocol of transfer {ticket} answers message {outcome.message_ref_id}, not "
                f"{state.message_ref_id}; it was applied to {outcome.message_ref_id} and not confirmed"
            )
        client.confirm(ticket)
        ledger.record_transmission(state.message_ref_id, event=CONFIRMED, channel=DIP, actor=actor, ticket=ticket)
        applied.append(outcome)
    return ProtocolFetch(tuple(applied), tuple(still))


def _write_private(path: Path, data: bytes) -> None:
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


__all__ = ["ABORTED", "STARTED", "ProtocolFetch", "Transmitted", "channel_of", "fetch_protocols", "transmit_message"]
