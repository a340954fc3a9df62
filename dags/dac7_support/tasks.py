"""The stage tasks of the DAC7 DAGs, made in one place: each a thin call of one function of
``reporting.pipeline``, with the same task id, retries, pool and XCom value in every DAG.

A DAG calls these inside its ``@dag`` function, as it would its own ``@task`` functions::

    run_dir = tasks.prepare(annual_run)
    chain(tasks.extract(run_dir), tasks.aggregate(run_dir), tasks.apply_rules(run_dir), ...)

Only the staging directory, authority codes and counts pass through XCom, never data. Each task
works in its run's staging directory through :func:`in_run` (a worker's copy of it on shared
staging, ``dac7_support.staging``), where the run's stages also get the ledger's URL: resolved
once by the task (``dac7_support.connections.ledger_url``) and handed to the pipeline as an
argument, never through ``os.environ``.

A group's run (``[operators.ID]`` in the configuration) files for every operator: the stages of
the whole run (extract, aggregate, rules, gate, finalize, statements) take each operator's run in
turn (``reporting.pipeline.each_operator``: an error names the operator), and ``plan`` lists the
filings, each an operator and an authority, over which render, validate and publish are mapped,
each labelled with both (``de_gmbh DE``): the entity whose filing failed is read off the grid.

Nothing heavy is imported here: the task bodies import ``reporting.pipeline`` when they run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from airflow.sdk import AssetAlias, TriggerRule, get_current_context, task

from dac7_support.approval import FilingApproval
from dac7_support.common import (
    RETRY,
    group_outcome,
    log_effective_settings,
    message_timestamp,
    run_uuid,
    settings_from_env,
    source_pool,
)
from dac7_support.connections import ledger_url
from dac7_support.staging import share_prepared, staged

log = logging.getLogger("dac7")

#: Every published file is an asset event of ``dac7://filings/<authority>`` (which authorities a
#: run files to is known only when it runs: hence an alias, resolved per event).
FILINGS = AssetAlias("dac7-filings")
#: A filing's seller statements, once written and recorded as pending in the ledger, are an asset
#: event of ``dac7://statements/<filing state>`` (never for a preview), for the platform's own
#: delivery DAG to schedule on (``dac7 statements mark-sent`` records what it delivered).
STATEMENTS = AssetAlias("dac7-statements")
#: mapped task instances are labelled with their filing: the member state (``LT``), and in a
#: group's run the operator before it (``de_gmbh DE``: :func:`reporting.pipeline.filing_label`)
FILING_LABEL = "{{ filing }}"
FILE_LABEL = "{{ filing }} #{{ file_number }}"  # ... and with the file, where validated one by one

#: What a DAG's ``prepare`` decides from its run (the context) and the ``DAC7_*`` settings
#: (:func:`dac7_support.common.settings_from_env`): the period, the output directory and the
#: Params of :func:`reporting.pipeline.prepare`; it raises ``ConfigError`` for a run it refuses.
RunChoice = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]


@contextmanager
def in_run(run_dir: str) -> Iterator[str]:
    """The staging directory one task works in (``dac7_support.staging.staged``), with the run's
    ledger handed to its stages: a ledger URL with a password is never written into the run's
    settings, so a task other than ``prepare`` resolves it again (``DAC7_LEDGER_URL``, else the
    Connection of ``DAC7_LEDGER_CONN_ID``) and passes it to the pipeline, which keeps it in memory."""
    from reporting import pipeline

    with staged(run_dir) as here:
        if pipeline.needs_ledger_url(here):
            pipeline.use_ledger_url(here, ledger_url())
        yield here


def _label(**labels: Any) -> None:
    """Name the mapped task instance (``map_index_template`` renders from the context)."""
    ctx = get_current_context()
    for key, value in labels.items():
        ctx[key] = value  # type: ignore[literal-required]


# --- prepare and the stages every DAG runs -------------------------------------------------------


def prepare(choose: RunChoice) -> Any:
    """``prepare``: fix the run's settings (what ``choose`` decides from the run) and create its
    staging directory; its XCom value is that directory. The ledger's URL is resolved here and
    passed to ``reporting.pipeline.prepare`` (None: the configuration's ``[ledger] url``)."""

    @task
    def prepare() -> str:
        from reporting import pipeline

        ctx = get_current_context()
        dag_run = ctx["dag_run"]
        env = settings_from_env()
        chosen = choose(ctx, env)  # a bad run is refused before the ledger is looked up
        run_dir = pipeline.prepare(
            config_path=env["config_path"],
            staging_root=env["staging_root"],
            run_id=run_uuid(dag_run.dag_id, dag_run.run_id),
            timestamp=message_timestamp(dag_run, ctx["ti"]),
            source_url=env["source_url"],
            ledger_url=ledger_url(),
            **chosen,
        )
        log_effective_settings(run_dir, ctx["params"])
        share_prepared(run_dir)
        return run_dir

    return prepare()


@task(task_id="extract", **RETRY)
def _extract(run_dir: str) -> dict[str, Any]:
    from reporting import pipeline

    source_url = settings_from_env()["source_url"]
    with in_run(run_dir) as here:
        return pipeline.each_operator(here, lambda one: pipeline.extract(one, source_url))


def extract(run_dir: Any) -> Any:
    """``extract``: the period from the source, in the pool of ``DAC7_SOURCE_POOL`` (read when the
    DAG is parsed), retried when the source is unreachable."""
    return _extract.override(pool=source_pool())(run_dir)


@task
def aggregate(run_dir: str) -> dict[str, Any]:
    from reporting import pipeline

    with in_run(run_dir) as here:
        return pipeline.each_operator(here, pipeline.aggregate)


@task
def apply_rules(run_dir: str) -> dict[str, Any]:
    from reporting import pipeline

    with in_run(run_dir) as here:
        return pipeline.each_operator(here, pipeline.apply_rules)


# --- the filing: plan, render, validate, approve, publish, finalize ------------------------------


@task(**RETRY)
def plan(run_dir: str) -> list[dict[str, str]]:
    """The filings of the run, each ``{"operator", "authority", "label"}`` (every operator's, in a
    group's run): the label names the mapped task instances of the filing before they do anything,
    so that one failing at once (its staging out of reach, say) still names its filing."""
    from reporting import pipeline

    with in_run(run_dir) as here:
        filings = [
            {**f, "label": pipeline.filing_label(here, f["operator"], f["authority"])}
            for f in pipeline.plan_filings(here)
        ]
    log.info("filing to %s", ", ".join(f["label"] for f in filings) or "no authority: nothing to file")
    return filings


def _name(operator: str, authority: str, label: str) -> None:
    """Label the mapped task instance with its filing (``label`` from ``plan``), first thing."""
    _label(filing=label or authority, authority=authority, operator=operator)


def _filing(here: str, operator: str, authority: str) -> str:
    """Label the mapped task instance with its filing, as the run names it; the operator's staging
    directory."""
    from reporting import pipeline

    _name(operator, authority, pipeline.filing_label(here, operator, authority))
    return pipeline.operator_dir(here, operator)


@task(**RETRY, map_index_template=FILING_LABEL)
def render(run_dir: str, operator: str, authority: str, label: str = "") -> dict[str, Any]:
    from reporting import pipeline
    from reporting.errors import ConfigError

    _name(operator, authority, label)
    with in_run(run_dir) as here:
        own = _filing(here, operator, authority)
        if pipeline.is_published(own, authority):
            raise ConfigError(
                f"this run has published {pipeline.filing_label(here, operator, authority)} already; rendering it "
                "again would plan the period as if nothing were filed: trigger a new run to file any difference"
            )
        result = pipeline.render(own, authority)
    return {
        "operator": operator,
        "authority": authority,
        "label": label,
        "messages": len(result["messages"]),
        "discarded": len(result["discarded"]),
    }


@task
def files(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per rendered file of every filing (initial, corrections, deletions, the parts of
    a message a profile splits): what ``validate`` is mapped over."""
    return [
        {"operator": r["operator"], "authority": r["authority"], "label": r.get("label", ""), "part": i}
        for r in rendered
        for i in range(r["messages"])
    ]


@task(**RETRY, map_index_template=FILE_LABEL)
def validate(run_dir: str, operator: str, authority: str, part: int, label: str = "") -> dict[str, Any]:
    from reporting import pipeline

    _name(operator, authority, label)
    _label(file_number=part + 1)
    with in_run(run_dir) as here:
        result = pipeline.validate(_filing(here, operator, authority), authority, part)
    return {"operator": operator, "authority": authority, "part": part, "valid": result["valid"]}


# An empty plan skips the mapped tasks; the gate and finalize still run (a manifest that says
# "nothing to file"), but never after a failure.
@task(trigger_rule=TriggerRule.NONE_FAILED)
def gate(run_dir: str) -> dict[str, Any]:
    """Every planned authority validated (each file): the approval request (the figures to approve)."""
    from dac7_support.approval import request_body, write_approval_request
    from reporting import pipeline
    from reporting.errors import XmlValidationError

    with in_run(run_dir) as here:
        missing = []
        for operator, own in pipeline.operator_runs(here):
            planned = pipeline.planned_authorities(own)
            for authority in planned:  # the files' reports, combined per authority
                pipeline.combine_validation(own, authority)
            missing += [pipeline.filing_label(here, operator, a) for a in planned if not pipeline.is_validated(own, a)]
        if missing:
            raise XmlValidationError(f"not validated: {', '.join(missing)}; nothing is published")
        # who triggered the run: named in the request, and not asked to approve it
        triggered_by = getattr(get_current_context()["dag_run"], "triggering_user_name", None) or None
        request = write_approval_request(here, triggered_by=triggered_by)
    log.info("approval request\n%s", request_body(request))
    return request


def approve() -> FilingApproval:
    """``approve``: a second person's approval of a production filing (``dac7_support.approval``)."""
    return FilingApproval(
        task_id="approve",
        request_task_id="gate",
        subject="Publish the DAC7 {{ ti.xcom_pull(task_ids='gate')['year'] }} production filing?",
    )


# Runs when approved, and when the approval was skipped (a test run); never after a reject.
@task(
    **RETRY,
    map_index_template=FILING_LABEL,
    outlets=[FILINGS],
    trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
)
def publish(run_dir: str, operator: str, authority: str, label: str = "") -> dict[str, Any]:
    from airflow.sdk import Asset

    from reporting import pipeline

    _name(operator, authority, label)
    ctx = get_current_context()
    # the audit trail: who triggered the run and who approved the filing, kept in the ledger
    approval = ctx["ti"].xcom_pull(task_ids="approve") or {}
    approver = approval.get("responded_by_user") if isinstance(approval, dict) else None
    if isinstance(approver, dict):
        approver = approver.get("name") or approver.get("id")
    with in_run(run_dir) as here:
        own = _filing(here, operator, authority)
        result = pipeline.publish(
            own,
            authority,
            triggered_by=getattr(ctx["dag_run"], "triggering_user_name", None) or None,
            approved_by=str(approver) if approver else None,
            # a production filing: only with the approval the approve task recorded in the ledger
            require_approval=True,
        )
        events = pipeline.filing_events(own, result)  # none for a preview: never a filing
    for extra in events:
        ctx["outlet_events"][FILINGS].add(Asset(f"dac7://filings/{authority}"), extra=extra)
    return {"operator": operator, "authority": authority, "files": len(result["files"])}


def _actor(ctx: Any) -> str:
    """Who transmits, as the ledger records it: the person who triggered the run, else the schedule."""
    dag_run = ctx["dag_run"]
    return getattr(dag_run, "triggering_user_name", None) or f"{dag_run.dag_id} (schedule)"


@task(**RETRY, map_index_template=FILING_LABEL)
def transmit(run_dir: str, operator: str, authority: str, label: str = "") -> dict[str, Any]:
    """``transmit``: what this run published to the filing's authority, sent its way
    (``reporting.pipeline.transmit``): DE through the BZSt DIP with the credentials of the
    Connection of ``DAC7_DIP_CONN_ID`` (read only then, handed over as values), every other
    authority to the outbox. A production filing only with the approval the ledger holds; a
    preview never (skipped, with the reason). Retried on transient errors only (a DIP 5xx, a
    timeout: each try a new transfer); a 4xx that means "fix your file" fails at once. XCom:
    MessageRefIds and DIP tickets."""
    from airflow.sdk.exceptions import AirflowSkipException

    from dac7_support.connections import dip_credentials
    from reporting import pipeline

    _name(operator, authority, label)
    ctx = get_current_context()
    with in_run(run_dir) as here:
        own = _filing(here, operator, authority)
        result = pipeline.transmit(own, authority, actor=_actor(ctx), credentials=dip_credentials)
    if result["skipped"]:
        log.info("%s: not transmitted: %s", label or authority, result["skipped"])
        raise AirflowSkipException(result["skipped"])
    for m in result["messages"]:
        if m["before"]:
            log.info("%s: %s was %s already; not sent again", label or authority, m["message_ref_id"], m["state"])
        elif m["ticket"]:
            log.info(
                "%s: %s transmitted to the BZSt DIP (%s), transfer %s",
                label or authority,
                m["message_ref_id"],
                result["environment"],
                m["ticket"],
            )
        else:
            ready = "ready to upload" if m["ready"] else "NOT ready: see its checklist"
            log.info("%s: %s outbox package %s (%s)", label or authority, m["message_ref_id"], m["package"], ready)
    return {
        "run_dir": run_dir,
        "operator": operator,
        "authority": authority,
        "label": label,
        "channel": result["channel"],
        "environment": result["environment"],
        "awaiting": result["awaiting"],
        "tickets": {m["message_ref_id"]: m["ticket"] for m in result["messages"] if m["ticket"]},
    }


def protocol(transmitted: Any) -> Any:
    """``protocol``: per filing, the wait for its DIP protocol, deferred to the triggerer
    (``dac7_support.protocol.ProtocolWait``); skipped for a portal upload, whose answer comes with
    ``dac7 status-import``."""
    from dac7_support.protocol import ProtocolWait

    return ProtocolWait.partial(task_id="protocol", map_index_template=FILING_LABEL, **RETRY).expand(
        transmitted=transmitted
    )


@task(trigger_rule=TriggerRule.NONE_FAILED)
def finalize(run_dir: str) -> dict[str, Any]:
    from dac7_support.common import run_outcome
    from dac7_support.metrics import emit_run_metrics
    from reporting import pipeline

    outcomes: dict[str, dict[str, Any]] = {}
    with in_run(run_dir) as here:
        for operator, own in pipeline.operator_runs(here):
            try:
                manifest = pipeline.finalize(own)
            except Exception as exc:
                exc.add_note(f"operator {operator}")
                raise
            emit_run_metrics(manifest)  # the run's figures through Airflow's Stats ([metrics])
            kept = pipeline.keep_run_settings(own)
            log.info("DAC7 run summary\n%s", pipeline.summary_table(manifest))
            if not manifest["files"]:
                log.info("nothing to file for %s", manifest["reporting_year"])
            outcomes[operator] = {
                "reporting_year": manifest["reporting_year"],
                "files": len(manifest["files"]),
                "sellers": sum(f["sellers"] for f in manifest["files"]),
                "manifest": str(kept.parent / "manifest.json"),
                **run_outcome(manifest),  # what the run's note says (plugins/dac7_links.py)
            }
        group = pipeline.is_group(here)
    return group_outcome(outcomes) if group else next(iter(outcomes.values()))


@task(**RETRY, outlets=[STATEMENTS], trigger_rule=TriggerRule.NONE_FAILED)
def statements(run_dir: str) -> dict[str, Any]:
    """``statements``: each reported seller's statement of the filing (PStTG § 22; Annex V,
    Section III(A)), from the published XML, recorded as pending in the ledger; written again
    on a retry, the same files."""
    from airflow.sdk import Asset

    from reporting import pipeline

    ctx = get_current_context()
    results: dict[str, dict[str, Any]] = {}
    with in_run(run_dir) as here:
        for operator, own in pipeline.operator_runs(here):
            written = pipeline.write_statements(own)
            for extra in pipeline.statement_events(own, written):
                ctx["outlet_events"][STATEMENTS].add(Asset(f"dac7://statements/{extra['filing_state']}"), extra=extra)
            results[operator] = {
                "written": written["written"],
                "statements": written["statements"],
                "recorded": written["recorded"],
                "kinds": written["kinds"],
            }
        group = pipeline.is_group(here)
    return results if group else next(iter(results.values()))


# --- the watch: reports without XML, and the watch list -----------------------------------------


@task
def report(run_dir: str) -> dict[str, Any]:
    from reporting import pipeline

    results: dict[str, dict[str, Any]] = {}
    with in_run(run_dir) as here:
        for operator, own in pipeline.operator_runs(here):
            manifest = pipeline.report(own)
            pipeline.keep_run_settings(own)
            log.info("DAC7 quarterly watch\n%s", pipeline.summary_table(manifest))
            results[operator] = {
                "reportable": manifest["summary"]["reportable"],
                "sellers": manifest["summary"]["sellers_read"],
                "reporting_year": manifest["reporting_year"],  # the run note's link (plugins/dac7_links.py)
            }
        group = pipeline.is_group(here)
    if not group:
        return next(iter(results.values()))
    first = next(iter(results.values()))
    return {
        "reportable": sum(r["reportable"] for r in results.values()),
        "sellers": sum(r["sellers"] for r in results.values()),
        "reporting_year": first["reporting_year"],
        "operators": results,
    }


@task
def watch_list(run_dir: str) -> dict[str, Any]:
    from dac7_support.watch import write_watch_list
    from reporting import pipeline

    results: dict[str, dict[str, Any]] = {}
    with in_run(run_dir) as here:
        outs = [(operator, pipeline.output_dir(own)) for operator, own in pipeline.operator_runs(here)]
        group = pipeline.is_group(here)
    for operator, out_dir in outs:  # each operator's own thresholds, in its own folder
        result = write_watch_list(out_dir, f"{out_dir}/watch_list.csv")
        log.info(
            "watch list%s: %s seller(s) at or near the de minimis limits with due diligence open "
            "(%s crossed, %s within 20%%): %s",
            f" of operator {operator}" if group else "",
            result["sellers"],
            result["crossed"],
            result["near"],
            result["file"],
        )
        results[operator] = result
    return results if group else next(iter(results.values()))
