"""The wait for a filing's BZSt DIP protocol, without holding a worker slot.

``ProtocolWait`` is mapped over the ``transmit`` results (one per filing, labelled like it). For a
DIP filing it defers to ``ProtocolTrigger`` (``plugins/dac7_protocol_trigger.py``), which polls
the DIP's protocol list in the triggerer every ``[transmission] poll_seconds``; when every
transfer of the filing is listed, the task resumes on a worker (``execute_complete``) and
``reporting.pipeline.fetch_protocols`` fetches each protocol, applies it to the ledger as
``dac7 status-import`` does (rejected records are filed again by the next run) and confirms its
receipt. A protocol missing then (listed, but not served yet) is waited for again, until
``[transmission] poll_hours`` after the wait began; after that the task fails and says how to
fetch it later (``dac7 protocol-fetch``).

A portal upload (the outbox) has no protocol to wait for: skipped, its answer comes with
``dac7 status-import``. A refused request (a 4xx, refused credentials) fails the task at once with
the server's words; transient errors are retried (in the trigger: polling goes on; in the worker:
the task's retries).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

log = logging.getLogger("dac7")

#: the trigger's class path (the plugins folder is on every Airflow process's path)
TRIGGER = "dac7_protocol_trigger.ProtocolTrigger"


class ProtocolWait(BaseOperator):
    """Wait for the DIP protocols of one filing's transfers (``transmitted``: the ``transmit``
    task's XCom), then apply them to the ledger."""

    ui_color = "#e8f0fe"

    def __init__(self, *, transmitted: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transmitted = transmitted  # with the run's staging directory (run_dir)

    # --------------------------------------------------------------------------------- steps

    def execute(self, context: Any) -> dict[str, Any]:
        t = self._label(context)
        if t["channel"] != "dip":
            raise AirflowSkipException(
                f"{t['label'] or t['authority']}: a portal upload has no protocol to wait for; the authority's "
                "answer comes with dac7 status-import once the package is uploaded"
            )
        if not t["awaiting"]:
            log.info("%s: no DIP protocol is awaited (each was applied already)", t["label"] or t["authority"])
            return {"applied": [], "waiting": []}
        wait = self._wait_settings()
        deadline = time.time() + wait["poll_hours"] * 3600
        self._defer(wait, t["awaiting"], deadline)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        from dac7_support.connections import dip_credentials
        from dac7_support.tasks import _actor, in_run
        from reporting import pipeline

        t = self._label(context)
        name = t["label"] or t["authority"]
        deadline = float(event["deadline"])  # the event carries it (a resumed task gets the event alone)
        if event.get("status") == "error":
            raise AirflowFailException(f"{name}: the DIP refused the protocol list: {event.get('message')}")
        with in_run(self.transmitted["run_dir"]) as here:
            own = pipeline.operator_dir(here, t["operator"])
            result = pipeline.fetch_protocols(own, t["awaiting"], actor=_actor(context), credentials=dip_credentials())
        for a in result["applied"]:
            rejected = f", {a['rejected_records']} record(s) rejected" if a["rejected_records"] else ""
            log.info("%s: protocol of %s applied: %s%s", name, a["message_ref_id"], a["outcome"], rejected)
        if not result["waiting"]:
            return {"applied": result["applied"], "waiting": []}
        if event.get("status") == "timeout" or time.time() >= deadline:
            wait = self._wait_settings()
            raise AirflowFailException(
                f"{name}: no DIP protocol within {wait['poll_hours']} hour(s) for {', '.join(result['waiting'])}; "
                "the transfers were made: fetch the protocols later with dac7 protocol-fetch (or clear this task)"
            )
        self._defer(self._wait_settings(), result["waiting"], deadline)

    # ------------------------------------------------------------------------------ internals

    def _label(self, context: Any) -> dict[str, Any]:
        t = self.transmitted
        context["filing"] = t.get("label") or t["authority"]  # map_index_template
        return t

    def _wait_settings(self) -> dict[str, Any]:
        from dac7_support.tasks import in_run
        from reporting import pipeline

        with in_run(self.transmitted["run_dir"]) as here:
            return pipeline.protocol_wait(pipeline.operator_dir(here, self.transmitted["operator"]))

    def _defer(self, wait: dict[str, Any], message_ref_ids: list[str], deadline: float) -> Any:
        from dac7_protocol_trigger import ProtocolTrigger

        from dac7_support.connections import dip_conn_id

        tickets = [self.transmitted["tickets"][m] for m in message_ref_ids]
        log.info(
            "%s: waiting for the DIP protocol of %d transfer(s), asking every %s s (no worker slot held)",
            self.transmitted.get("label") or self.transmitted["authority"],
            len(tickets),
            wait["poll_seconds"],
        )
        self.transmitted = {**self.transmitted, "awaiting": list(message_ref_ids)}
        self.defer(
            trigger=ProtocolTrigger(
                url=wait["url"],
                tickets=tickets,
                deadline=deadline,
                poll_seconds=wait["poll_seconds"],
                conn_id=dip_conn_id(),
            ),
            method_name="execute_complete",
            # the trigger ends itself at the deadline; Airflow's own timeout only as a backstop
            timeout=timedelta(seconds=max(60.0, deadline - time.time() + 3600)),
        )
