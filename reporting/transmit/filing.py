"""One filing's transmission, as a DAG run's ``transmit`` and protocol wait do it.

    transmit_filing(ledger_url, published, out_dir=..., actor=..., settings=..., credentials=...)
    fetch_filing_protocols(ledger_url, message_ref_ids, environment=..., out_dir=..., ...)

``published`` is what the run's publish of one authority put in the ledger (MessageRefId and file,
relative to the output directory). Each message is sent its authority's way
(:func:`reporting.transmit.send.transmit_message`) unless the ledger holds it as sent or answered
already: a task retried after a failure sends what is left, never a message twice. The result
holds ids, tickets, counts and folders only (what a DAG passes on), never a document's content.

The credentials are asked for (``credentials()``) only when a message goes to the DIP, so that a
filing to a portal authority needs none.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict

from reporting.config import Transmission
from reporting.ledger import open_ledger
from reporting.transmit.dip import DipClient, DipCredentials
from reporting.transmit.send import channel_of, dip_client, fetch_protocols, transmit_message

log = logging.getLogger(__name__)

#: a filing state once it is sent (or answered): never sent again
_SENT_OR_ANSWERED = ("uploaded", "transmitted", "accepted", "partially_rejected", "rejected")


class PublishedRef(TypedDict):
    message_ref_id: str
    file: str  # relative to the output directory: <authority>/<name>


class MessageSent(TypedDict):
    message_ref_id: str
    state: str  # the filing state after this call: transmitted, published (an outbox package) ...
    ticket: str | None  # the DIP data transfer number
    package: str | None  # the outbox folder
    ready: bool | None  # the outbox package passed every upload check
    before: bool  # sent (or answered) before this call: nothing was done


class FilingSent(TypedDict):
    channel: str  # dip | outbox
    messages: list[MessageSent]
    awaiting: list[str]  # MessageRefIds whose DIP protocol is not applied yet


class ProtocolApplied(TypedDict):
    message_ref_id: str
    outcome: str  # accepted | partially_rejected | rejected
    rejected_records: int


class FilingProtocols(TypedDict):
    applied: list[ProtocolApplied]
    waiting: list[str]


def transmit_filing(
    ledger_url: str,
    published: Sequence[PublishedRef],
    *,
    authority: str,
    out_dir: str | Path,
    actor: str,
    settings: Transmission,
    credentials: Callable[[], DipCredentials] | None = None,
) -> FilingSent:
    """Send each published message of one filing (one authority) its way; see the module."""
    channel = channel_of(authority)
    sent: list[MessageSent] = []
    creds: DipCredentials | None = None
    with open_ledger(ledger_url, create=False) as ledger:
        for ref in published:
            mid = ref["message_ref_id"]
            [state] = ledger.filing_states(message_ref_id=mid)
            if state.state in _SENT_OR_ANSWERED:
                log.info("message %s is %s already: not sent again", mid, state.state)
                sent.append(_sent(mid, state.state, state.ticket, None, None, before=True))
                continue
            if channel == "dip" and creds is None:
                if credentials is None:
                    from reporting.transmit.errors import CredentialsError

                    raise CredentialsError(f"message {mid} goes to the BZSt DIP: no DIP credentials were given")
                creds = credentials()
            done = transmit_message(
                ledger,
                mid,
                Path(out_dir) / ref["file"],
                out_dir=out_dir,
                actor=actor,
                settings=settings,
                dip=functools.partial(_client, settings=settings, credentials=creds) if creds is not None else None,
            )
            if done.package is not None:
                sent.append(_sent(mid, "published", None, str(done.package.folder), done.package.ready, before=False))
            else:
                sent.append(_sent(mid, "transmitted", done.ticket, None, None, before=False))
        awaiting = (
            [
                s.message_ref_id
                for s in ledger.awaiting_protocol()
                if s.message_ref_id in {m["message_ref_id"] for m in sent}
            ]
            if channel == "dip"
            else []
        )
    return {"channel": channel, "messages": sent, "awaiting": awaiting}


def fetch_filing_protocols(
    ledger_url: str,
    message_ref_ids: Sequence[str],
    *,
    environment: str,
    out_dir: str | Path,
    actor: str,
    settings: Transmission,
    credentials: DipCredentials,
) -> FilingProtocols:
    """Fetch, apply and confirm the DIP protocols of these messages that are there; the rest wait."""
    with open_ledger(ledger_url, create=False) as ledger, dip_client(environment, settings, credentials) as client:
        result = fetch_protocols(
            ledger,
            client,
            environment=environment,
            keep_dir=out_dir,
            actor=actor,
            message_ref_ids=tuple(message_ref_ids),
        )
    applied: list[ProtocolApplied] = [
        {
            "message_ref_id": o.message_ref_id,
            "outcome": o.outcome,
            "rejected_records": len(o.rejected_doc_ref_ids),
        }
        for o in result.applied
    ]
    return {"applied": applied, "waiting": list(result.waiting)}


def _client(environment: str, *, settings: Transmission, credentials: DipCredentials) -> DipClient:
    return dip_client(environment, settings, credentials)


def _sent(
    mid: str, state: str, ticket: str | None, package: str | None, ready: bool | None, *, before: bool
) -> MessageSent:
    return {
        "message_ref_id": mid,
        "state": state,
        "ticket": ticket,
        "package": package,
        "ready": ready,
        "before": before,
    }


__all__ = [
    "FilingProtocols",
    "FilingSent",
    "MessageSent",
    "ProtocolApplied",
    "PublishedRef",
    "fetch_filing_protocols",
    "transmit_filing",
]
