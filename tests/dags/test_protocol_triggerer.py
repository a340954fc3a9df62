"""The wait for a DIP protocol in a real Airflow: ``protocol[DE]`` defers to ``ProtocolTrigger``,
a real ``airflow triggerer`` process polls the local DIP server, the trigger fires, and the task
resumes on a worker and applies the protocol; no worker slot is held while it waits.

The stack (``tests/airflow_stack.py``, :func:`local_airflow`): an api-server, a scheduler with the
LocalExecutor (its two worker processes are the only places a task runs), a dag-processor and a
triggerer, each an ``airflow`` process with an explicit environment, on a SQLite metadata database
of this test. The DIP credentials are an Airflow Connection that lives only in a file read by
Airflow's ``LocalFilesystemBackend``, configured as the secrets backend (``[secrets] backend``):
no ``AIRFLOW_CONN_*`` variable, no Connection in the metadata database. The triggerer's trigger
and the workers' tasks read it from there.

A test filing of the demo marketplace for DE (``nexus_country = "DE"``), triggered through the
REST API: transmitted to the DIP server's test URL; the server holds its protocol back (the
authority has not answered), so ``protocol[DE]`` stays deferred. While it waits, with every other
task done: the task instance is ``deferred`` and its trigger (``dac7_protocol_trigger
.ProtocolTrigger``, whose arguments the metadata database stores: the DIP URL, the ticket and the
Connection's id, never a credential; Airflow 3.3.2 stores them in clear text although a Fernet key
is set, which is why they may hold nothing secret) is taken by the triggerer's job; the default
pool counts it as deferred, not running; every LocalExecutor worker process is idle and no task
process exists; and the DIP server is asked for its protocol list again and again. Then the
server answers (one seller record rejected): the trigger fires, the task resumes and the partial
rejection is in the ledger, the protocol confirmed. The trigger's own log lines (``DIP protocols
ready: 0 of 1`` ... ``1 of 1``) are in the task's trigger log.

The DAG's 15 tasks run as real processes: 100-140 s on the 2-core machine while other work kept
it busy (load 4 to 6); the run itself is about 55 s of it, the wait for the protocol 15 s, starting
and stopping the four components 30 s.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow_stack import Api, CeleryAirflow, free_port, local_airflow, local_settings
from dip_server import DipServer, make_credentials
from test_transmit_dag import dip_config

DAG_ID = "dac7_annual"
YEAR = 2025
CONN_ID = "dac7_bzst_dip"
ADMIN = "admin"
RUN_AFTER = datetime(2026, 1, 15, 6, tzinfo=UTC)
CONF = {"reporting_year": YEAR, "as_of": f"{YEAR}-12-31", "environment": "test", "mode": "auto"}
#: the credentials' environment variables (used where no Connection is named): none is set here
DIP_ENV = ("DAC7_DIP_CLIENT_ID", "DAC7_DIP_PRIVATE_KEY", "DAC7_DIP_CERTIFICATE")
#: the states a task instance ends in
ENDED = {"success", "skipped", "failed", "upstream_failed", "removed"}

pytestmark = [pytest.mark.slow]


@dataclass
class Stack:
    airflow: CeleryAirflow
    dip: DipServer
    ledger_url: str
    out: Path
    fernet_key: str  # Airflow's [core] fernet_key (meant to encrypt a trigger's stored arguments)
    client_id: str


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    from cryptography.fernet import Fernet

    from dac7_demo import generate_demo

    cid, key, cert = make_credentials()
    fernet_key = Fernet.generate_key().decode()
    source = f"sqlite:///{tmp_path / 'marketplace.db'}"
    generate_demo(source, sellers=200, seed=7, year=YEAR, replace=True)
    # the Connection, in the secrets backend's file only (owner-only: it holds the private key)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    connections = secrets_dir / "connections.json"
    fd = os.open(connections, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({CONN_ID: {"conn_type": "generic", "login": cid, "password": key, "extra": {"certificate": cert}}}, f)
    with DipServer(cid, cert) as dip:
        # a production filing would go to port 9, where nothing listens: this test files to test
        config = dip_config(tmp_path / "de.toml", test_url=dip.url, prod_url="http://127.0.0.1:9")
        with config.open("a", encoding="utf-8") as f:
            f.write("\n[quality]\ndata_docs = false\n")  # no Data Docs HTML: not what this test is about
        ledger_url = f"sqlite:///{tmp_path / 'dac7-ledger.sqlite3'}"
        port = free_port()
        env = local_settings(
            home=tmp_path / "airflow-home", port=port, users={ADMIN: "admin"}, jwt_secret=secrets.token_urlsafe(32)
        ) | {
            "AIRFLOW__CORE__FERNET_KEY": fernet_key,
            "AIRFLOW__SECRETS__BACKEND": "airflow.secrets.local_filesystem.LocalFilesystemBackend",
            "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"connections_file_path": str(connections)}),
            "DAC7_DIP_CONN_ID": CONN_ID,
            "DAC7_CONFIG": str(config),
            "DAC7_SOURCE_URL": source,
            "DAC7_OUT_DIR": str(tmp_path / "out"),
            "DAC7_STAGING_DIR": str(tmp_path / "staging"),
            "DAC7_LEDGER_URL": ledger_url,
        }
        # no credential in any process's environment: only the secrets backend's file holds them
        assert not [n for n in env if n.startswith("AIRFLOW_CONN_") or n in DIP_ENV]
        with local_airflow(root=tmp_path, env=env, passwords={ADMIN: secrets.token_urlsafe(12)}) as airflow:
            yield Stack(airflow, dip, ledger_url, tmp_path / "out", fernet_key, cid)


def task_instances(api: Api, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's task instances by ``task_id`` (``task_id[i]`` for a mapped one)."""
    body = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    return {
        (ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti
        for ti in body["task_instances"]
    }


def wait_for(what: str, check: Any, airflow: CeleryAirflow, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        airflow.check_alive()
        found = check()
        if found:
            return found
        time.sleep(0.5)
    airflow.fail(f"{what}: not within {timeout:g} s")


def worker_titles(airflow: CeleryAirflow) -> list[str]:
    """The process titles of the scheduler's descendants that run tasks: the LocalExecutor's
    worker processes (``airflow worker -- LocalExecutor: <idle>`` while free, the task's name
    while busy) and a task's own process (``airflow worker -- <task instance id>``)."""
    import psutil

    titles = []
    for child in psutil.Process(airflow.process("scheduler").popen.pid).children(recursive=True):
        try:
            title = " ".join(child.cmdline()).strip()
        except psutil.Error:  # gone, or a zombie not reaped yet: holds no slot
            continue
        if title.startswith("airflow worker"):
            titles.append(title)
    return titles


def stored_trigger(stack: Stack) -> str:
    """The arguments of the one trigger row of the metadata database, as a reader of the database
    can learn them: in clear text (Airflow 3.3.2 stores a task's deferral so, although a Fernet
    key is set), else decrypted with the Fernet key."""
    import sqlite3
    from contextlib import closing

    from cryptography.fernet import Fernet

    with closing(sqlite3.connect(f"file:{stack.airflow.home / 'airflow.db'}?mode=ro", uri=True)) as db:
        [(stored,)] = db.execute("SELECT kwargs FROM trigger").fetchall()
    if stored.startswith("{"):
        return str(stored)
    return Fernet(stack.fernet_key.encode()).decrypt(stored.encode()).decode()


def log_text(home: Path, run_id: str, pattern: str) -> str:
    """The task logs of ``protocol[0]`` of the run whose file names match ``pattern``, joined."""
    folder = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / "task_id=protocol" / "map_index=0"
    files = sorted(folder.glob(pattern))
    assert files, f"no {pattern} under {folder}: {sorted(p.name for p in folder.glob('*'))}"
    return "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)


def events_of(text: str) -> list[str]:
    """The ``event`` of each JSON log line."""
    out = []
    for line in text.splitlines():
        try:
            out.append(str(json.loads(line).get("event", "")))
        except ValueError:
            continue
    return out


def test_the_protocol_wait_is_deferred_to_a_real_triggerer_and_resumes(stack: Stack) -> None:
    from reporting.ledger import open_ledger

    airflow, dip = stack.airflow, stack.dip
    dip.hold = True  # the authority has not answered yet
    dip.reject_first = 1  # ... and when it does, it rejects the first seller record
    airflow.wait_until_ready(DAG_ID)
    api = airflow.api(ADMIN)
    # the Connection is not in the metadata database: the secrets backend's file is its only home
    assert api("GET", f"/connections/{CONN_ID}")[0] == 404
    run_id = f"triggerer-{secrets.token_hex(4)}"
    at = RUN_AFTER.isoformat().replace("+00:00", "Z")
    body = {"dag_run_id": run_id, "logical_date": at, "run_after": at, "conf": CONF}
    status, answer = api("POST", f"/dags/{DAG_ID}/dagRuns", body)
    assert status == 200, answer

    def deferred_alone() -> dict[str, dict[str, Any]] | None:
        tis = task_instances(api, run_id)
        failed = {n: ti["state"] for n, ti in tis.items() if ti["state"] in {"failed", "upstream_failed"}}
        assert not failed, f"{failed}\n{airflow.logs(40)}"
        others = [ti["state"] for name, ti in tis.items() if name != "protocol[0]"]
        if tis.get("protocol[0]", {}).get("state") == "deferred" and all(s in ENDED for s in others):
            return tis
        return None

    # 1. every task done but protocol[DE], which waits in the triggerer
    tis = wait_for("protocol[DE] deferred, every other task done", deferred_alone, airflow)
    assert tis["transmit[0]"]["state"] == "success" and tis["transmit[0]"]["rendered_map_index"] == "DE"
    [transfer] = dip.transfers.values()
    assert (transfer.environment, transfer.state, transfer.confirmed) == ("TEST", "finished", False)
    ti = wait_for(
        "the triggerer to take the trigger",
        lambda: (t := api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/protocol/0"))["triggerer_job"] and t,
        airflow,
        60,
    )
    assert ti["state"] == "deferred"
    assert ti["trigger"]["classpath"] == "dac7_protocol_trigger.ProtocolTrigger"
    # what the trigger row stores: the DIP URL, the ticket and the Connection's id, never a credential
    stored = stored_trigger(stack)
    assert CONN_ID in stored and dip.url in stored and transfer.ticket in stored, stored
    assert "PRIVATE KEY" not in stored and "CERTIFICATE" not in stored and stack.client_id not in stored, stored
    job = ti["triggerer_job"]
    assert (job["job_type"], job["state"], job["id"]) == ("TriggererJob", "running", ti["trigger"]["triggerer_id"])
    # no worker slot held: the pool counts the task as deferred, not running; every LocalExecutor
    # worker process is idle and no task process exists
    pool = api.get("/pools/default_pool")
    assert (pool["running_slots"], pool["queued_slots"], pool["deferred_slots"]) == (0, 0, 1), pool
    assert pool["include_deferred"] is False
    # (a worker goes idle a moment after the task it ran reported its state: waited for)
    idle = "airflow worker -- LocalExecutor: <idle>"
    wait_for("every worker process idle", lambda: all(t == idle for t in worker_titles(airflow)), airflow, 30)
    # the triggerer asks the DIP server for its protocol list again and again (the task fetched
    # nothing: no protocol asked for, none confirmed)
    wait_for("a second poll of the protocol list", lambda: dip.ops().count("list") >= 2, airflow, 60)
    assert task_instances(api, run_id)["protocol[0]"]["state"] == "deferred"
    assert all(t == idle for t in worker_titles(airflow)), worker_titles(airflow)
    polls_while_waiting = dip.ops().count("list")
    assert "protocol" not in dip.ops() and "confirm" not in dip.ops()

    # 2. the authority answers: the trigger fires, the task resumes on a worker and applies it
    dip.hold = False
    run = wait_for(
        "the run's end",
        lambda: (r := api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}"))["state"] in ("success", "failed") and r,
        airflow,
    )
    assert run["state"] == "success", airflow.logs(60)
    tis = task_instances(api, run_id)
    assert {n: t["state"] for n, t in tis.items() if t["state"] != "success"} == {"approve": "skipped"}
    assert tis["protocol[0]"]["rendered_map_index"] == "DE"
    assert tis["protocol[0]"]["try_number"] == 1  # deferred and resumed within its first try
    assert transfer.confirmed and dip.errors == []  # the assertion and the signature were good
    assert dip.ops()[-1] == "confirm"

    with open_ledger(stack.ledger_url, create=False) as ledger:
        [state] = ledger.filing_states(YEAR, "DE")
        events = [e.event for e in ledger.transmissions(state.message_ref_id)]
    assert state.message_ref_id == transfer.message_ref_id and state.ticket == transfer.ticket
    assert [s.state for s in state.steps] == ["rendered", "published", "transmitted", "partially_rejected"]
    assert state.rejected_records == 1 and events == ["started", "transmitted", "confirmed"]
    kept = stack.out / str(YEAR) / "protocols" / "DE" / f"{transfer.ticket}.xml"
    assert kept.stat().st_mode & 0o777 == 0o600

    # 3. the logs: the triggerer ran the trigger, which polled and fired; the task deferred, then
    # resumed and applied the protocol
    trigger = events_of(log_text(airflow.home, run_id, "attempt=1.log.trigger.*.log"))
    waiting = [e for e in trigger if e == "DIP protocols ready: 0 of 1"]
    assert len(waiting) >= polls_while_waiting >= 2, trigger
    assert "DIP protocols ready: 1 of 1" in trigger and "Trigger fired event" in trigger, trigger
    task = events_of(log_text(airflow.home, run_id, "attempt=1.log"))
    assert any(e.startswith("Pausing task as DEFERRED") for e in task), task
    assert any(
        e.startswith(f"DE: protocol of {state.message_ref_id} applied: partially_rejected, 1 record(s) rejected")
        for e in task
    ), task
    # no key, certificate or token in any log: the tasks', the trigger's, the components'
    for log in [*(airflow.home / "logs").rglob("*.log"), *(p.log for p in airflow.processes)]:
        text = log.read_text(encoding="utf-8", errors="replace")
        assert "BEGIN PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text, log
        assert not any(token in text for token in dip.tokens), log
