"""Transmission: each published message to its authority, and its answer back to the ledger.

* DE: the BZSt DIP mass-data interface, end to end (:mod:`reporting.transmit.dip`; the
  enveloping signature in :mod:`reporting.transmit.signature`);
* every other authority: an upload package in the outbox with a checklist
  (:mod:`reporting.transmit.outbox`), marked uploaded by a person; the answer comes back through
  ``dac7 status-import``.

No Airflow here: the DAG resolves the DIP credentials (an Airflow Connection) and passes them in.
"""

from reporting.transmit.dip import DipClient, DipCredentials
from reporting.transmit.errors import (
    CredentialsError,
    PermanentTransmissionError,
    SignatureError,
    TransientTransmissionError,
    TransmissionError,
)
from reporting.transmit.send import (
    ProtocolFetch,
    Transmitted,
    channel_of,
    dip_client,
    fetch_protocols,
    transmit_message,
)

__all__ = [
    "CredentialsError",
    "DipClient",
    "DipCredentials",
    "PermanentTransmissionError",
    "ProtocolFetch",
    "SignatureError",
    "TransientTransmissionError",
    "TransmissionError",
    "Transmitted",
    "channel_of",
    "dip_client",
    "fetch_protocols",
    "transmit_message",
]
