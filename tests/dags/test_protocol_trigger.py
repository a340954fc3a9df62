"""``ProtocolTrigger`` on its own: its ``run()`` driven with asyncio against the local DIP server
(what the triggerer does), and what it stores (``serialize``): no credential, an importable class
path. The full wait inside a DAG run is in test_transmit_dag.py."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dip_server import DipServer, make_credentials

CREDS = make_credentials()


@pytest.fixture
def dip(monkeypatch: pytest.MonkeyPatch) -> Iterator[DipServer]:
    for name, value in zip(("DAC7_DIP_CLIENT_ID", "DAC7_DIP_PRIVATE_KEY", "DAC7_DIP_CERTIFICATE"), CREDS, strict=True):
        monkeypatch.setenv(name, value)
    with DipServer(CREDS[0], CREDS[2]) as server:
        yield server


def finished(server: DipServer, n: int = 1) -> list[str]:
    """``n`` finished transfers on the server, as after a transmit."""
    from dip_server import Transfer

    tickets = [f"T{i:04d}test" for i in range(1, n + 1)]
    for t in tickets:
        server.transfers[t] = Transfer(t, state="finished")
    return tickets


def run(trigger: Any) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def trigger_class() -> Any:
    """The trigger as the triggerer finds it: Airflow puts its plugins folder on ``sys.path`` when
    it starts (``airflow.settings.initialize``)."""
    import airflow  # noqa: F401
    from dac7_protocol_trigger import ProtocolTrigger

    return ProtocolTrigger


def trigger(url: str, tickets: list[str], *, deadline: float | None = None, poll: float = 0.05) -> Any:
    return trigger_class()(
        url=url, tickets=tickets, deadline=deadline or time.time() + 30, poll_seconds=poll, conn_id=None
    )


def test_it_stores_the_connection_id_never_the_credentials() -> None:
    ProtocolTrigger = trigger_class()

    t = ProtocolTrigger(url="https://mds.bzst.bund.de", tickets=["T1"], deadline=1.0, conn_id="dac7_bzst_dip")
    path, kwargs = t.serialize()
    module, name = path.rsplit(".", 1)
    assert getattr(importlib.import_module(module), name) is ProtocolTrigger  # what the triggerer imports
    assert kwargs == {
        "url": "https://mds.bzst.bund.de",
        "tickets": ["T1"],
        "deadline": 1.0,
        "poll_seconds": 300.0,
        "conn_id": "dac7_bzst_dip",
    }
    assert ProtocolTrigger(**kwargs).serialize() == (path, kwargs)


def test_it_fires_once_every_protocol_is_listed(dip: DipServer) -> None:
    tickets = finished(dip, 2)
    dip.protocol_after_polls = 2  # listed at the third poll
    events = run(trigger(dip.url, tickets))
    assert [e["status"] for e in events] == ["ready"]
    assert events[0]["tickets"] == sorted(tickets)
    assert dip.ops().count("list") == 3
    assert "protocol" not in dip.ops() and "confirm" not in dip.ops()  # the task fetches, not the trigger


def test_a_transient_error_keeps_it_polling(dip: DipServer) -> None:
    tickets = finished(dip)
    dip.fail("list", 503, "Wartung")
    events = run(trigger(dip.url, tickets))
    assert [e["status"] for e in events] == ["ready"]
    assert [c[2] for c in dip.calls if c[0] == "list"] == [503, 200]


def test_a_refused_request_ends_the_wait_with_the_servers_words(dip: DipServer) -> None:
    tickets = finished(dip)
    dip.fail("list", 403, "Kein Zugriff auf dieses Verfahren")
    [event] = run(trigger(dip.url, tickets))
    assert event["status"] == "error"
    assert "HTTP 403" in event["message"] and "Kein Zugriff auf dieses Verfahren" in event["message"]
    assert "PRIVATE KEY" not in str(event)


def test_refused_credentials_end_the_wait(dip: DipServer, monkeypatch: pytest.MonkeyPatch) -> None:
    other = make_credentials(CREDS[0])
    monkeypatch.setenv("DAC7_DIP_PRIVATE_KEY", other[1])  # a key the server's certificate does not match
    [event] = run(trigger(dip.url, finished(dip)))
    assert event["status"] == "error" and "refused the client assertion" in event["message"]


def test_it_gives_up_at_the_deadline_with_what_is_missing(dip: DipServer) -> None:
    tickets = finished(dip, 2)
    dip.transfers[tickets[1]].state = "started"  # never finished: never listed
    [event] = run(trigger(dip.url, tickets, deadline=time.time() + 0.3, poll=0.1))
    assert event["status"] == "timeout"
    assert (event["ready"], event["missing"]) == ([tickets[0]], [tickets[1]])
