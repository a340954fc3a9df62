"""A run's figures reach a StatsD server through Airflow's own Stats (``dac7_support.metrics``).

A real UDP socket on 127.0.0.1 plays the StatsD server; ``[metrics]`` points at it through
``AIRFLOW__METRICS__*`` (read when Stats is set up); a demo marketplace with some bad sellers goes
through the pipeline for a real manifest (the demo configuration: the filing, one message to LT).
The packets received are the manifest's figures, by name, hand-checked for a few; nothing names a
seller.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
PREFIX = "airflow"  # Airflow's default statsd_prefix
RUN_ID = "7a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"


@dataclass(frozen=True)
class DemoRun:
    manifest: dict[str, Any]
    seller_ids: set[str]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    from dac7_demo import generate_demo
    from reporting.pipeline import run

    base = tmp_path_factory.mktemp("metrics")
    source = base / "marketplace.db"
    made = generate_demo(f"sqlite:///{source}", sellers=300, seed=11, year=2025, bad_share=0.03)
    assert made.bad_sellers, "the demo must quarantine some sellers"
    result = run(
        config_path=REPO / "dac7.toml",
        source_url=f"sqlite:///{source}",
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=base / "out",
        staging_root=base / "staging",
        run_id=RUN_ID,
        environment="test",
        ledger_url=f"sqlite:///{base / 'ledger.sqlite3'}",
    )
    with closing(sqlite3.connect(source)) as con:
        ids = {str(r[0]) for r in con.execute("select seller_id from sellers")}
    return DemoRun(result.manifest, ids)


@pytest.fixture
def statsd_server() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(1.0)
        yield sock


def statsd_env(sock: socket.socket) -> dict[str, str]:
    return {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(sock.getsockname()[1]),
        "AIRFLOW__METRICS__STATSD_PREFIX": PREFIX,
    }


@pytest.fixture
def airflow_statsd(statsd_server: socket.socket, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """Airflow's Stats set up from ``[metrics]`` as a task process does, pointing at the server;
    afterwards set up again from the configuration without it (statsd off: nothing is sent)."""
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    for key, value in statsd_env(statsd_server).items():
        monkeypatch.setenv(key, value)
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    yield statsd_server
    # close the StatsD client's socket (Airflow drops a client without closing it)
    from airflow.sdk._shared.observability.metrics.stats import _get_backend

    client = getattr(_get_backend(), "statsd", None)
    if client is not None:
        client.close()
    monkeypatch.undo()
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)


def receive(sock: socket.socket) -> list[tuple[str, int, str]]:
    """Every ``dac7.`` metric received until the socket is quiet: (name, value, type). Airflow's
    own metrics (e.g. its ``serde.load_serializers`` timer) arrive too; they are left out."""
    got = []
    while True:
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return got
        for line in data.decode("ascii").splitlines():
            name, _, rest = line.partition(":")
            value, _, kind = rest.partition("|")
            if name.startswith(f"{PREFIX}.dac7."):
                got.append((name, int(value), kind))


def test_run_metrics_reach_statsd_with_the_manifest_figures(demo_run: DemoRun, airflow_statsd: socket.socket) -> None:
    from dac7_support.metrics import emit_run_metrics

    m = demo_run.manifest
    sent = emit_run_metrics(m)
    packets = receive(airflow_statsd)
    gauges = {name: value for name, value, kind in packets if kind == "g"}
    assert [(name, value) for name, value, kind in packets if kind == "c"] == [(f"{PREFIX}.dac7.runs.finalized", 1)]
    assert gauges == {f"{PREFIX}.{name}": value for name, value in sent.items()}

    # hand-checked against the manifest
    s, decisions = m["summary"], m["summary"]["decisions"]
    assert gauges["airflow.dac7.sellers.read"] == s["sellers_read"] == 300
    assert gauges["airflow.dac7.sellers.reportable"] == s["reportable"] == decisions["reported"]
    assert gauges["airflow.dac7.sellers.excluded.de_minimis"] == decisions["excluded:de_minimis"] > 0
    assert gauges["airflow.dac7.sellers.not_reportable.no_activity"] == decisions.get("not_reportable:no_activity", 0)
    quarantined = {
        code.removeprefix("quarantined:"): n for code, n in decisions.items() if code.startswith("quarantined:")
    }
    assert quarantined, "the demo's bad sellers are quarantined"
    for rule, n in quarantined.items():
        assert gauges[f"airflow.dac7.sellers.quarantined.{re.sub(r'[^A-Za-z0-9_-]', '_', rule)}"] == n
    assert gauges["airflow.dac7.sellers.quarantined.total"] == sum(quarantined.values())
    lt = [f for f in m["files"] if f["authority"] == "LT"]
    assert lt and lt == m["files"], "the demo operator files in LT alone"
    assert gauges["airflow.dac7.files.LT"] == len(lt)
    assert gauges["airflow.dac7.bytes.LT"] == sum(f["bytes"] for f in lt)
    assert gauges["airflow.dac7.sellers.authority.LT"] == s["sellers_per_authority"]["LT"] == s["reportable"]
    assert gauges["airflow.dac7.files.total"] == len(m["files"])
    assert gauges["airflow.dac7.bytes.total"] == sum(f["bytes"] for f in m["files"])
    # every other member state is sent too, with 0 (a gauge never keeps an earlier run's figure)
    assert gauges["airflow.dac7.files.DE"] == gauges["airflow.dac7.sellers.authority.DE"] == 0
    for stage, checks in m["data_checks"]["stages"].items():
        assert gauges[f"airflow.dac7.checks.failed.{stage}"] == len(checks["failed"])
    assert gauges["airflow.dac7.checks.expectations"] == m["data_checks"]["expectations"]
    assert gauges["airflow.dac7.due_diligence.sellers"] == m["due_diligence"]["sellers"]

    # StatsD-safe names of codes only: no seller id anywhere
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", name) for name, _, _ in packets)
    segments = {part for name, _, _ in packets for part in name.split(".")}
    assert not segments & demo_run.seller_ids


def test_nothing_is_sent_when_metrics_are_off(demo_run: DemoRun, statsd_server: socket.socket) -> None:
    """With ``statsd_on`` false (the default), Stats is a no-op: the figures are computed, not sent."""
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils
    from dac7_support.metrics import emit_run_metrics

    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    assert emit_run_metrics(demo_run.manifest)
    assert receive(statsd_server) == []


def test_a_fresh_process_sends_with_the_metrics_settings_of_its_environment(
    demo_run: DemoRun, statsd_server: socket.socket, tmp_path: Path
) -> None:
    """As a task process does: Airflow sets Stats up from ``AIRFLOW__METRICS__*`` by itself."""
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(demo_run.manifest), encoding="utf-8")
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(DAGS)!r})
        from dac7_support.metrics import emit_run_metrics
        emit_run_metrics(json.load(open({str(manifest)!r})))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **statsd_env(statsd_server)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    gauges = {name: value for name, value, kind in receive(statsd_server) if kind == "g"}
    assert gauges[f"{PREFIX}.dac7.sellers.read"] == 300
    assert gauges[f"{PREFIX}.dac7.sellers.reportable"] == demo_run.manifest["summary"]["reportable"]
