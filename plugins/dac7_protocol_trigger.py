"""The wait for a BZSt DIP protocol, as an Airflow trigger: it runs in the triggerer, so a filing
waiting hours or days for its protocol holds no worker slot.

``ProtocolTrigger`` asks the DIP's protocol list (``GET /dip/md/protocolnumbers``) every
``poll_seconds`` until every transfer it waits for is listed, then fires one event; the task that
deferred to it (``dac7_support.protocol.ProtocolWait``) resumes on a worker and fetches, applies
and confirms the protocols there. The trigger reads nothing else and writes nothing.

Why here, in the plugins folder: the triggerer imports a trigger by its class path, and Airflow
puts the plugins folder on ``sys.path`` in every process (``airflow.settings.initialize``), the
triggerer's too; the DAG folder is not on the triggerer's path in Airflow 3 (DAGs come from
bundles, read by the DAG processor and the workers). ``reporting`` is an installed package, but it
never imports Airflow. This module's top level imports only ``airflow.triggers.base``: the plugin
loader imports it in every process.

What is stored: the trigger's arguments are serialised into Airflow's metadata database
(``serialize``), so they hold the Connection's id, never the credentials; the trigger reads the
Connection when it runs (``Connection.async_get``: the secrets backend, or ``AIRFLOW_CONN_*``),
or, without a Connection id, ``DAC7_DIP_*`` of the triggerer's environment. The event carries
tickets, counts and the server's short words about a refused request, never a token or a key.

Errors: a transient one (5xx, 429, a timeout, a broken connection) is logged and the polling goes
on; a permanent one (a 4xx other than a 401 renewed once, refused credentials) ends the wait with
an ``error`` event, which fails the task with the message; no answer by ``deadline`` (seconds
since the epoch) ends it with a ``timeout`` event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

#: the class path the triggerer imports
CLASSPATH = "dac7_protocol_trigger.ProtocolTrigger"


class ProtocolTrigger(BaseTrigger):
    """Fires ``{"status": "ready", "tickets": [...]}`` once every ticket is in the DIP's protocol
    list, ``{"status": "error", "message": ...}`` on a permanent error, ``{"status": "timeout",
    "ready": [...], "missing": [...]}`` at the deadline; each with the ``deadline``, for the task that resumes."""

    def __init__(
        self,
        *,
        url: str,
        tickets: list[str],
        deadline: float,
        poll_seconds: float = 300,
        conn_id: str | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.tickets = list(tickets)
        self.deadline = float(deadline)
        self.poll_seconds = float(poll_seconds)
        self.conn_id = conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "url": self.url,
                "tickets": self.tickets,
                "deadline": self.deadline,
                "poll_seconds": self.poll_seconds,
                "conn_id": self.conn_id,
            },
        )

    async def credentials(self) -> Any:
        from reporting.transmit.dip import DipCredentials

        if not self.conn_id:
            return DipCredentials.from_env()
        from airflow.sdk import Connection

        from reporting.transmit.errors import CredentialsError

        try:
            conn = await Connection.async_get(self.conn_id)
        except Exception as exc:  # not found, or the secrets backend failing: never its text
            raise CredentialsError(
                f"the DIP Connection {self.conn_id!r} could not be read ({type(exc).__name__})"
            ) from None
        return DipCredentials.from_connection(self.conn_id, conn.login, conn.password, conn.extra_dejson)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from reporting.transmit.dip import DipClient
        from reporting.transmit.errors import TransientTransmissionError, TransmissionError

        wanted = set(self.tickets)
        try:
            creds = await self.credentials()
            client = await asyncio.to_thread(DipClient, self.url, creds)
        except TransmissionError as exc:
            yield TriggerEvent({"status": "error", "message": str(exc), "deadline": self.deadline})
            return
        ready: set[str] = set()
        try:
            while True:
                try:
                    listed = await asyncio.to_thread(client.protocol_numbers)
                except TransientTransmissionError as exc:
                    self.log.warning("DIP protocol list: %s; asking again in %.0f s", exc, self.poll_seconds)
                except TransmissionError as exc:
                    yield TriggerEvent({"status": "error", "message": str(exc), "deadline": self.deadline})
                    return
                else:
                    ready = wanted & set(listed)
                    self.log.info("DIP protocols ready: %d of %d", len(ready), len(wanted))
                    if ready == wanted:
                        yield TriggerEvent({"status": "ready", "tickets": sorted(ready), "deadline": self.deadline})
                        return
                if time.time() + self.poll_seconds > self.deadline:
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "ready": sorted(ready),
                            "missing": sorted(wanted - ready),
                            "deadline": self.deadline,
                        }
                    )
                    return
                await asyncio.sleep(self.poll_seconds)
        finally:
            client.close()
