"""The audit stage: what the rules decided, checked before anything renders it.

Every routed seller's record must be renderable for each of its authorities
(:func:`reporting.mapping.record_problems`, the render's own checks), and the aggregates and
decisions must pass their data checks (:func:`reporting.checks.data.audit`, the reconciliation
among them). A seller that fails is quarantined here: its decision becomes ``quarantined:<rule>``
and its figures and routes leave the rules stage's files, which are rewritten in place (same
order, atomically). Then the stage writes what the rules stage's folder keeps besides
(``reportable_incomplete.parquet``, ``quarantine_rules.parquet``, ``rules.json``) and applies the
quarantine policy.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reporting.checks import data as datachecks
from reporting.checks.data import ChecksWorker
from reporting.findings import Finding
from reporting.mapping import record_problems
from reporting.quarantine import enforce_quarantine_policy, quarantine_findings, write_quarantine
from reporting.results import RulesResult
from reporting.settings import RunSettings, write_json
from reporting.stages.rules import Decided
from reporting.vocabulary import QUARANTINED, REPORTED

log = logging.getLogger(__name__)


@contextmanager
def checks_worker() -> Iterator[ChecksWorker | None]:
    """A worker that imports Great Expectations while the rules decide (see
    :class:`reporting.checks.data.ChecksWorker`), for :func:`audit`; closed on leaving."""
    worker = ChecksWorker.start()
    try:
        yield worker
    finally:
        if worker is not None:
            worker.close()


def audit(settings: RunSettings, decided: Decided, worker: ChecksWorker | None = None) -> RulesResult:
    """Audit the rules stage's decisions (see the module), quarantine the sellers that fail, and
    write the stage's summary (``<run>/rules/rules.json``), which it returns."""
    out = settings.stage_dir("rules")
    decisions_counter, per_authority = decided.decisions, decided.per_authority
    findings, incomplete_reportable = decided.findings, decided.incomplete_reportable
    started = time.perf_counter()
    late = record_problems(settings)
    record_seconds = time.perf_counter() - started
    incomplete_reportable.update(_quarantine_decided(out, late, decisions_counter, per_authority))
    report = datachecks.audit(settings, "aggregates", worker)
    late += report.errors
    incomplete_reportable.update(_quarantine_decided(out, report.errors, decisions_counter, per_authority))
    findings += late
    # sellers that crossed the thresholds (decided reportable) but whose data is incomplete
    _rewrite(
        out / "reportable_incomplete.parquet",
        pa.Table.from_pylist(
            [{"seller_id": k, "authorities": v} for k, v in sorted(incomplete_reportable.items())],
            schema=pa.schema([("seller_id", pa.string()), ("authorities", pa.list_(pa.string()))]),
        ),
    )
    write_quarantine(out / "quarantine_rules.parquet", findings)
    enforce_quarantine_policy(settings, findings + quarantine_findings(settings))
    summary: RulesResult = {
        "sellers": sum(decisions_counter.values()),
        "decisions": dict(sorted(decisions_counter.items())),
        "reportable": decisions_counter[REPORTED],
        "sellers_per_authority": dict(sorted(per_authority.items())),
        "record_checks_seconds": round(record_seconds, 3),
        "reading": decided.reading.as_dict(),
        "partner_jurisdictions": None
        if decided.reportable is None
        else {
            "source": decided.reportable.source,
            "assumed": decided.reportable.assumed,
            "jurisdictions": sorted(decided.reportable.jurisdictions),
        },
    }
    write_json(out / "rules.json", summary)
    log.info("rules year=%s: %s", settings.year, summary)
    return summary


def _quarantine_decided(
    out: Path, findings: list[Finding], decisions: Counter[str], per_authority: Counter[str]
) -> dict[str, list[str]]:
    """Quarantine sellers after their decision (a record that cannot be rendered, a failed data
    check of the aggregates): their decision becomes ``quarantined:<rule>`` with its explanation,
    and their reported figures and routes are removed. The staged files are rewritten in place
    (same order, atomically); the counters follow."""
    rules_of: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        if f.seller_id is not None:
            rules_of[f.seller_id].add(f.rule)
    if not rules_of:
        return {}
    sellers = pa.array(sorted(rules_of), pa.string())
    path = out / "decisions.parquet"
    table = pq.read_table(path)
    hit = pc.is_in(table["seller_id"], value_set=sellers)
    old = table.filter(hit).select(["seller_id", "decision", "authorities"]).to_pylist()
    new_decision: dict[str, str] = {}
    new_explanation: dict[str, str] = {}
    reportable: dict[str, list[str]] = {}
    for row in old:
        sid = row["seller_id"]
        if row["decision"].startswith(QUARANTINED):
            continue
        rule = min(rules_of[sid])
        new_decision[sid] = f"{QUARANTINED}{rule}"
        if row["authorities"]:
            reportable[sid] = list(row["authorities"])
        would = ", ".join(row["authorities"] or [])
        new_explanation[sid] = (
            f"quarantined ({rule}): {row['decision']}" + (f" to {would}" if would else "") + " once its data is "
            "corrected; it cannot be reported correctly as it is. reports/quarantine.csv lists every reason"
        )
        decisions[row["decision"]] -= 1
        decisions[new_decision[sid]] += 1
        for a in row["authorities"] or []:
            per_authority[a] -= 1
    if not new_decision:
        return {}
    for counter in (decisions, per_authority):
        for k in [k for k, v in counter.items() if v <= 0]:
            del counter[k]
    ids = table["seller_id"].to_pylist()
    decision = [new_decision.get(sid, d) for sid, d in zip(ids, table["decision"].to_pylist(), strict=True)]
    text = [new_explanation.get(sid, e) for sid, e in zip(ids, table["explanation"].to_pylist(), strict=True)]
    routes = [[] if sid in new_decision else a for sid, a in zip(ids, table["authorities"].to_pylist(), strict=True)]
    table = table.set_column(table.schema.get_field_index("decision"), "decision", pa.array(decision, pa.string()))
    table = table.set_column(table.schema.get_field_index("explanation"), "explanation", pa.array(text, pa.string()))
    table = table.set_column(
        table.schema.get_field_index("authorities"), "authorities", pa.array(routes, pa.list_(pa.string()))
    )
    _rewrite(path, table)
    gone = pa.array(sorted(new_decision), pa.string())
    for name in ("reported.parquet", "routing.parquet"):
        t = pq.read_table(out / name)
        _rewrite(out / name, t.filter(pc.invert(pc.is_in(t["seller_id"], value_set=gone))))
    log.info("rules: %d seller(s) quarantined after their decision", len(new_decision))
    return reportable


def _rewrite(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
