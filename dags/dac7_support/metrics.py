"""The figures of a finished run as metrics, through Airflow's own Stats object.

``from airflow.sdk.observability import stats`` (Airflow 3.3; the old ``airflow.stats.Stats`` is a
deprecated shim of it) sends to whatever ``[metrics]`` configures: StatsD (``statsd_on``,
``statsd_host``, ``statsd_port``, ``statsd_prefix``, default prefix ``airflow``), DogStatsD
(``statsd_datadog_enabled``) or OpenTelemetry (``otel_on``, ``otel_host``, ``otel_port``,
``otel_prefix``), filtered by ``metrics_allow_list`` / ``metrics_block_list``; with none of them
on, nothing is sent. Airflow sets it up itself from the configuration (in a task process, at the
start of the task), so the settings are those of the task's environment.

Gauges (the state of the latest run of a year; ``<prefix>.`` in front of each name)::

    dac7.sellers.read                  sellers read from the source
    dac7.transactions.read             transactions read
    dac7.sellers.reportable            sellers reported (decision ``reported``)
    dac7.sellers.<kind>.<reason>       sellers per other decision code <kind>:<reason>, e.g.
                                       dac7.sellers.excluded.de_minimis, .not_reportable.non_eu
    dac7.sellers.quarantined.<rule>    sellers quarantined, per (first) rule
    dac7.sellers.quarantined.total     sellers quarantined, all rules
    dac7.sellers.authority.<XX>        reportable sellers routed to a member state
    dac7.files.<XX>, dac7.files.total  XML files published, per member state and in all
    dac7.bytes.<XX>, dac7.bytes.total  their size in bytes
    dac7.checks.expectations           data-check expectations run
    dac7.checks.failed.<stage>         failed expectations (errors and warnings) per check stage
    dac7.due_diligence.sellers         reported sellers that need action

and the counter ``dac7.runs.finalized`` (one per finalized run). Every exclusion code of
``reporting.vocabulary`` and every member state is sent, with 0 when it has none, so that a gauge never
keeps the figure of an earlier run; a quarantine rule is sent only while some seller has it (the
total is always sent). In a group's run (``[operators.ID]``) each operator's run sends its own,
a further operator's as ``dac7.operator.<ID>.<name>`` (``dac7.operator.de_gmbh.files.DE``), with the
tag ``operator``. Tags (``year``, ``environment``) go along for backends that take them
(DogStatsD, InfluxDB-style StatsD, OpenTelemetry); plain StatsD names carry no year: a dashboard
shows the latest run.

Names hold codes only (decision codes, rule names, country codes, stage names), sanitised to the
characters StatsD and Airflow's name check accept; never a seller id or anything of a seller.
Importing this module costs nothing heavy: Airflow's stats load inside.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from reporting.countries import EU_MEMBER_STATES
from reporting.results import Manifest
from reporting.vocabulary import DECISION_CODES, QUARANTINED, REPORTED

log = logging.getLogger("dac7.metrics")

PREFIX = "dac7"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
MAX_SEGMENT = 100  # Airflow refuses a name of 250 characters or more


def segment(value: object) -> str:
    """One dotted part of a metric name: letters, digits, ``_`` and ``-`` (a dot would add a level)."""
    return _UNSAFE.sub("_", str(value))[:MAX_SEGMENT] or "unknown"


def metric_name(*parts: object) -> str:
    return ".".join([PREFIX, *(segment(p) for p in parts)])


def run_gauges(manifest: Manifest) -> dict[str, int]:
    """The gauges of a run, by name, from its manifest (``<out>/<year>/manifest.json``)."""
    s = manifest["summary"]
    decisions: Mapping[str, int] = s["decisions"]
    g: dict[str, int] = {
        metric_name("sellers", "read"): int(s["sellers_read"]),
        metric_name("transactions", "read"): int(s["transactions_read"]),
        metric_name("sellers", "reportable"): int(s["reportable"]),
    }
    for code in sorted({*DECISION_CODES, *decisions}):
        if code == REPORTED:
            continue
        kind, _, reason = code.partition(":")
        g[metric_name("sellers", kind, reason)] = int(decisions.get(code, 0))
    g[metric_name("sellers", "quarantined", "total")] = sum(
        int(n) for code, n in decisions.items() if code.startswith(QUARANTINED)
    )
    routed: Mapping[str, int] = s.get("sellers_per_authority", {})
    files: dict[str, int] = {}
    size: dict[str, int] = {}
    for f in manifest.get("files", []):
        files[f["authority"]] = files.get(f["authority"], 0) + 1
        size[f["authority"]] = size.get(f["authority"], 0) + int(f["bytes"])
    for authority in sorted(set(EU_MEMBER_STATES) | set(routed) | set(files)):
        g[metric_name("sellers", "authority", authority)] = int(routed.get(authority, 0))
        g[metric_name("files", authority)] = files.get(authority, 0)
        g[metric_name("bytes", authority)] = size.get(authority, 0)
    g[metric_name("files", "total")] = sum(files.values())
    g[metric_name("bytes", "total")] = sum(size.values())
    checks = manifest.get("data_checks") or {}
    if checks:
        g[metric_name("checks", "expectations")] = int(checks.get("expectations", 0))
        for stage, summary in sorted(checks.get("stages", {}).items()):
            g[metric_name("checks", "failed", stage)] = len(summary.get("failed", []))
    diligence = manifest.get("due_diligence") or {}
    g[metric_name("due_diligence", "sellers")] = int(diligence.get("sellers", 0))
    return g


def operator_metric(name: str, operator_id: str) -> str:
    """A gauge of a further operator of a group (``[operators.ID]``): ``dac7.operator.<ID>.<rest>``,
    so that plain StatsD, which carries no tag, keeps each operator's figures apart; the default
    operator's gauges keep their names."""
    return ".".join([metric_name("operator", operator_id), name.removeprefix(f"{PREFIX}.")])


def emit_run_metrics(manifest: Manifest) -> dict[str, int]:
    """Send the run's gauges (:func:`run_gauges`) and count one finalized run through Airflow's
    Stats; returns the gauges sent (name: value, without the ``[metrics]`` prefix). A failure is
    logged (its class only) and returns ``{}``: the run has published, a metric cannot undo it."""
    tags = {"year": str(manifest.get("reporting_year", "")), "environment": str(manifest.get("environment", ""))}
    if manifest.get("operator_id"):  # a group's run: each operator's gauges apart
        tags["operator"] = str(manifest["operator_id"])
    try:
        stats = airflow_stats()
        gauges = run_gauges(manifest)
        if manifest.get("operator_id") not in (None, "default"):  # a further operator of a group
            gauges = {operator_metric(name, str(manifest["operator_id"])): v for name, v in gauges.items()}
        for name, value in gauges.items():
            stats.gauge(name, value, tags=tags)
        stats.incr(metric_name("runs", "finalized"), tags=tags)
    except Exception as exc:  # the filing is published: metrics must never fail the run
        log.warning("metrics of the %s run not sent (%s)", tags["year"], type(exc).__name__)
        return {}
    log.info("metrics: %d gauge(s) of the %s run sent through Airflow's Stats", len(gauges), tags["year"])
    return gauges


def airflow_stats() -> Any:
    """Airflow's Stats module. Airflow sets it up from ``[metrics]`` in every process that imports
    the Task SDK (and again at the start of a task process), before any task code runs."""
    from airflow.sdk.observability import stats

    return stats
