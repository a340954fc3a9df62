"""DAC7 annual filing: one run per reporting year, each task one stage of ``reporting.pipeline``.

```
prepare > extract > aggregate > apply_rules > plan > render[XX] > files > validate[XX #n]
        > gate > approve > publish[XX] > finalize
```

The data is extracted, aggregated and decided once; ``plan`` names the authorities this run files
to, and ``render`` and ``publish`` are mapped over them (one task instance per member state,
labelled with its code). ``validate`` is mapped over the rendered files (``files`` lists them:
initial, corrections, deletions, and each part of a message a profile splits), labelled ``DE #2``.
Only the staging directory, authority codes and counts pass through XCom, never data. ``gate``
waits for every validation, combines each authority's file reports and builds the approval request;
``approve`` is Airflow's human-in-the-loop approval: a production filing is published only after a
second person approves it in the UI (the approvers of ``DAC7_APPROVERS`` other than the person who
triggered the run are asked); a test run skips it, unless it would file corrections or deletions:
then anyone confirms them first. ``publish`` refuses unless every
planned authority validated, and emits one asset event per published file of a filing (never of
a preview) on ``dac7://filings/<XX>``; ``finalize`` writes the reports, the manifest and ``run_settings.json``.

Schedule: 06:00 UTC on 15 January, for the previous calendar year. The timetable is an explicit
``CronTriggerTimetable``: its logical date is the moment the run is due (2026-01-15T06:00Z files
2025). The legacy ``CronDataIntervalTimetable`` would stamp that same run with the *start* of its
interval (2025-01-15) and shift the year by one, and which of the two a bare cron string gets
depends on ``[scheduler] create_cron_data_intervals``; so the choice is made here, not in config.

The reporting year, the as-of date and the run's ids come from the run (logical date, run id,
Params), never from the clock, so a rerun of a DAG run recomputes the same period into the same
staging directory and renders the same files byte for byte: the message Timestamp is the
moment the DAG run was created for (its ``run_after``: the due time of a scheduled run, the
trigger time of a manual one), not the moment a task happened to start. Paths come from
``DAC7_*`` environment variables, read when a task runs. Params override the configuration file;
``prepare`` refuses a bad combination with a sentence that says why.

Retries: the steps that reach a database (extract: the source; plan, render, validate, publish:
the filing ledger) retry twice with exponential back-off; a ``PermanentError`` (bad rows, a
broken contract, a configuration or ledger-mode error, invalid XML) fails at once. Every stage
is idempotent for its run; a render is never repeated after its authority was published (it
would plan the period again as if nothing were filed). A failed task sends a message (task,
period, what to do) through ``dac7_support.notify``.

Triggering by hand: the DAC7 view's trigger page (``/dac7/trigger`` on Airflow's address) checks
the year, the as-of date, the environment and the combination before the run exists, and says
what the run files (corrections, deletions) with the sellers the ledger holds as filed. Airflow's
own form checks each field alone; ``prepare`` refuses what it cannot check. When a run ends, its
note says what it filed and links to the DAC7 view (``plugins/dac7_links.py``).

Nothing heavy is imported here: tasks import ``reporting.pipeline`` in their bodies, so that
parsing this file costs no pandas, lxml, duckdb or Great Expectations import.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import AssetAlias, CronTriggerTimetable, TriggerRule, chain, dag, get_current_context, task
from dac7_support.approval import FilingApproval, write_approval_request
from dac7_support.common import (
    RETRY,
    annual_params,
    conf_problems,
    keep_run_settings,
    log_effective_settings,
    message_timestamp,
    period_problems,
    reporting_period,
    run_date,
    run_outcome,
    run_uuid,
    settings_from_env,
    source_pool,
)
from dac7_support.notify import on_failure
from dac7_support.staging import share_prepared, staged

__all__ = ["FILINGS", "reporting_period", "run_uuid"]

log = logging.getLogger("dac7_annual")

#: Every published file is an asset event of ``dac7://filings/<authority>`` (which authorities a
#: run files to is known only when it runs: hence an alias, resolved per event).
FILINGS = AssetAlias("dac7-filings")
AUTHORITY_LABEL = "{{ authority }}"  # mapped task instances are labelled with their member state
FILE_LABEL = "{{ authority }} #{{ file_number }}"  # ... and with the file, where validated one by one


def published_already(run_dir: str, authority: str) -> bool:
    return (Path(run_dir) / "publish" / "authorities" / f"{authority}.json").is_file()


def validated_ok(run_dir: str, authority: str) -> bool:
    path = Path(run_dir) / "validate" / "authorities" / f"{authority}.json"
    return path.is_file() and bool(json.loads(path.read_text(encoding="utf-8"))["valid"])


@dag(
    dag_id="dac7_annual",
    description="DAC7 platform-operator report for the previous calendar year",
    schedule=CronTriggerTimetable("0 6 15 1 *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": [on_failure]},
    tags=["dac7", "reporting"],
    doc_md=__doc__,
    params=annual_params(),
)
def dac7_annual() -> None:
    @task
    def prepare() -> str:
        from reporting import pipeline
        from reporting.config import load_config
        from reporting.errors import ConfigError

        ctx = get_current_context()
        dag_run, params = ctx["dag_run"], ctx["params"]
        missing = period_problems(params, ctx.get("logical_date"), dag_run.conf)
        if missing:
            raise ConfigError("the run's Params were refused: " + " ".join(missing))
        year, as_of = reporting_period(ctx.get("logical_date"), dag_run.run_after, params)
        env = settings_from_env()
        config = load_config(env["config_path"])
        environment = params.get("environment") or config.reporting.environment
        problems = conf_problems(
            year=year,
            as_of=as_of,
            environment=environment,
            mode=params.get("mode") or "auto",
            sellers=params.get("sellers"),
            today=run_date(ctx.get("logical_date"), dag_run.run_after),
        )
        if problems:
            raise ConfigError("the run's Params were refused: " + " ".join(problems))
        run_dir = pipeline.prepare(
            config_path=env["config_path"],
            year=year,
            # a preview never takes the place of the year's filing: it publishes beside it
            out_dir=str(
                Path(env["out_dir"]) / str(year) / ("preview" if config.reporting.routing == "jurisdiction" else "")
            ),
            as_of=as_of,
            environment=params.get("environment"),
            staging_root=env["staging_root"],
            run_id=run_uuid(dag_run.dag_id, dag_run.run_id),
            timestamp=message_timestamp(dag_run, ctx["ti"]),
            source_url=env["source_url"],
            mode=params.get("mode") or "auto",
            sellers=params.get("sellers") or None,
            authorities=params.get("authorities") or None,
        )
        log_effective_settings(run_dir, params)
        share_prepared(run_dir)
        return run_dir

    @task(**RETRY, pool=source_pool())
    def extract(run_dir: str) -> dict[str, Any]:
        from reporting import pipeline

        with staged(run_dir) as here:
            return pipeline.extract(here, settings_from_env()["source_url"])

    @task
    def aggregate(run_dir: str) -> dict[str, Any]:
        from reporting import pipeline

        with staged(run_dir) as here:
            return pipeline.aggregate(here)

    @task
    def apply_rules(run_dir: str) -> dict[str, Any]:
        from reporting import pipeline

        with staged(run_dir) as here:
            return pipeline.apply_rules(here)

    @task(**RETRY)
    def plan(run_dir: str) -> list[str]:
        from reporting import pipeline

        with staged(run_dir) as here:
            authorities = pipeline.plan(here)
        log.info("filing to %s", ", ".join(authorities) or "no authority: nothing to file")
        return authorities

    @task(**RETRY, map_index_template=AUTHORITY_LABEL)
    def render(run_dir: str, authority: str) -> dict[str, Any]:
        from reporting import pipeline
        from reporting.errors import ConfigError

        get_current_context()["authority"] = authority  # type: ignore[typeddict-unknown-key]
        with staged(run_dir) as here:
            if published_already(here, authority):
                raise ConfigError(
                    f"this run has published {authority} already; rendering it again would plan the period as "
                    "if nothing were filed: trigger a new run to file any difference"
                )
            result = pipeline.render(here, authority)
        return {"authority": authority, "messages": len(result["messages"]), "discarded": len(result["discarded"])}

    @task
    def files(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One entry per rendered file of every authority (initial, corrections, deletions, the
        parts of a message a profile splits): what ``validate`` is mapped over."""
        return [{"authority": r["authority"], "part": i} for r in rendered for i in range(r["messages"])]

    @task(**RETRY, map_index_template=FILE_LABEL)
    def validate(run_dir: str, authority: str, part: int) -> dict[str, Any]:
        from reporting import pipeline

        ctx = get_current_context()
        ctx["authority"] = authority  # type: ignore[typeddict-unknown-key]
        ctx["file_number"] = part + 1  # type: ignore[typeddict-unknown-key]
        with staged(run_dir) as here:
            result = pipeline.validate(here, authority, part)
        return {"authority": authority, "part": part, "valid": result["valid"]}

    # An empty plan skips the mapped tasks; the gate and finalize still run (a manifest that
    # says "nothing to file"), but never after a failure.
    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def gate(run_dir: str) -> dict[str, Any]:
        """Every planned authority validated (each file): the approval request (the figures to approve)."""
        from reporting import pipeline
        from reporting.errors import XmlValidationError
        from reporting.settings import read_json

        with staged(run_dir) as here:
            planned = read_json(Path(here) / "render" / "plan.json")["authorities"]
            for authority in planned:  # the files' reports, combined per authority
                pipeline.combine_validation(here, authority)
            missing = [a for a in planned if not validated_ok(here, a)]
            if missing:
                raise XmlValidationError(f"not validated: {', '.join(missing)}; nothing is published")
            # who triggered the run: named in the request, and not asked to approve it
            triggered_by = getattr(get_current_context()["dag_run"], "triggering_user_name", None) or None
            request = write_approval_request(here, triggered_by=triggered_by)
        log.info("approval request\n%s", read_json(Path(request["file"]))["body"])
        return request

    approve = FilingApproval(
        task_id="approve",
        request_task_id="gate",
        subject="Publish the DAC7 {{ ti.xcom_pull(task_ids='gate')['year'] }} production filing?",
    )

    # Runs when approved, and when the approval was skipped (a test run); never after a reject.
    @task(
        **RETRY,
        map_index_template=AUTHORITY_LABEL,
        outlets=[FILINGS],
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    )
    def publish(run_dir: str, authority: str) -> dict[str, Any]:
        from airflow.sdk import Asset

        from reporting import pipeline
        from reporting.settings import load_settings

        ctx = get_current_context()
        ctx["authority"] = authority  # type: ignore[typeddict-unknown-key]
        # the audit trail: who triggered the run and who approved the filing, kept in the ledger
        approval = ctx["ti"].xcom_pull(task_ids="approve") or {}
        approver = approval.get("responded_by_user") if isinstance(approval, dict) else None
        if isinstance(approver, dict):
            approver = approver.get("name") or approver.get("id")
        with staged(run_dir) as here:
            settings = load_settings(here)
            result = pipeline.publish(
                here,
                authority,
                triggered_by=getattr(ctx["dag_run"], "triggering_user_name", None) or None,
                approved_by=str(approver) if approver else None,
                # a production filing: only with the approval the approve task recorded in the ledger
                require_approval=True,
            )
        # a preview (routing jurisdiction) is never a filing: it announces nothing to transmit
        for f in [] if settings.preview else result["files"]:
            ctx["outlet_events"][FILINGS].add(
                Asset(f"dac7://filings/{authority}"),
                extra={
                    "message_ref_id": f["message_ref_id"],
                    "file": f["file"],
                    "out_dir": settings.out_dir,
                    "sha256": f["sha256"],
                    "year": settings.year,
                    "environment": settings.environment,
                },
            )
        return {"authority": authority, "files": len(result["files"])}

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def finalize(run_dir: str) -> dict[str, Any]:
        from dac7_support.metrics import emit_run_metrics

        from reporting import pipeline

        with staged(run_dir) as here:
            manifest = pipeline.finalize(here)
            emit_run_metrics(manifest)  # the run's figures through Airflow's Stats ([metrics])
            kept = keep_run_settings(here)
        log.info("DAC7 run summary\n%s", pipeline.summary_table(manifest))
        if not manifest["files"]:
            log.info("nothing to file for %s", manifest["reporting_year"])
        return {
            "reporting_year": manifest["reporting_year"],
            "files": len(manifest["files"]),
            "sellers": sum(f["sellers"] for f in manifest["files"]),
            "manifest": str(kept.parent / "manifest.json"),
            **run_outcome(manifest),  # what the run's note says (plugins/dac7_links.py)
        }

    run_dir = prepare()
    authorities = plan(run_dir)
    chain(extract(run_dir), aggregate(run_dir), apply_rules(run_dir), authorities)
    rendered = render.partial(run_dir=run_dir).expand(authority=authorities)
    validated = validate.partial(run_dir=run_dir).expand_kwargs(files(rendered))
    published = publish.partial(run_dir=run_dir).expand(authority=authorities)
    chain(validated, gate(run_dir), approve, published, finalize(run_dir))


dac7_annual()
