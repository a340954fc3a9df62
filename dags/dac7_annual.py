"""DAC7 annual filing: one run per reporting year, each task one stage of ``reporting.pipeline``.

```
prepare > extract > aggregate > apply_rules > plan > render[XX] > files > validate[XX #n]
        > gate > approve > publish[XX] > finalize > statements
                                    publish[XX] > transmit[XX] > protocol[XX]
```

The data is extracted, aggregated and decided once; ``plan`` names the authorities this run files
to, and ``render`` and ``publish`` are mapped over them (one task instance per member state,
labelled with its code). ``validate`` is mapped over the rendered files (``files`` lists them:
initial, corrections, deletions, and each part of a message a profile splits), labelled ``DE #2``.

A group (``[operators.ID]`` in the configuration) files for every operator in one run: each
stage takes every operator's run, and the mapped tasks are labelled with the operator and the
authority (``de_gmbh DE``, ``de_gmbh DE #2``), so that the grid shows which entity's filing
failed. One approval covers the whole group's filing; nothing is published unless every
operator's files validated. The Param ``operator`` files for one operator alone: a rerun that
touches nothing of the others.
Only the staging directory, authority codes and counts pass through XCom, never data. ``gate``
waits for every validation, combines each authority's file reports and builds the approval request;
``approve`` is Airflow's human-in-the-loop approval: a production filing is published only after a
second person approves it in the UI (the approvers of ``DAC7_APPROVERS`` other than the person who
triggered the run are asked); a test run skips it, unless it would file corrections or deletions:
then anyone confirms them first. ``publish`` refuses unless every
planned authority validated, and emits one asset event per published file of a filing (never of
a preview) on ``dac7://filings/<XX>``; ``finalize`` writes the reports, the manifest and ``run_settings.json``;
``statements`` writes each reported seller's statement of a filing (none for a preview), records
it as pending in the ledger and emits an asset event on ``dac7://statements/<XX>`` for the
platform's delivery.

Beside finalize, each published filing goes to its authority: ``transmit`` (mapped and labelled
like publish) sends DE through the BZSt DIP interface (credentials: the Connection of
``DAC7_DIP_CONN_ID``) and prepares an outbox package for every other authority; a test filing
goes to the DIP test host without approval, a production filing only with the four-eyes approval
the ledger holds, a preview never (skipped, with the reason). ``protocol`` then waits for each DIP
transfer's protocol in the triggerer (``dac7_support.protocol``: no worker slot held), applies it
to the ledger and confirms it; a portal upload's answer comes with ``dac7 status-import``.

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

The tasks are made by ``dac7_support.tasks`` (the quarterly watch makes its own from the same
factory); this file chooses the run's period and wires them. Nothing heavy is imported here: the
tasks import ``reporting.pipeline`` in their bodies, so that parsing this file costs no pandas,
lxml, duckdb or Great Expectations import.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import CronTriggerTimetable, chain, dag
from dac7_support import tasks
from dac7_support.common import (
    annual_params,
    conf_problems,
    period_problems,
    reporting_period,
    run_date,
    run_uuid,
)
from dac7_support.notify import on_failure
from dac7_support.tasks import FILINGS

from reporting.vocabulary import JURISDICTION  # a leaf: nothing heavy at parse time

__all__ = ["FILINGS", "reporting_period", "run_uuid"]

log = logging.getLogger("dac7_annual")


def annual_run(ctx: Mapping[str, Any], env: Mapping[str, Any]) -> dict[str, Any]:
    """The period, output directory and Params of an annual run (what ``prepare`` fixes), or a
    ``ConfigError`` with every reason a run triggered by hand is refused."""
    from reporting.config import load_config
    from reporting.errors import ConfigError

    dag_run, params = ctx["dag_run"], ctx["params"]
    missing = period_problems(params, ctx.get("logical_date"), dag_run.conf)
    if missing:
        raise ConfigError("the run's Params were refused: " + " ".join(missing))
    year, as_of = reporting_period(ctx.get("logical_date"), dag_run.run_after, params)
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
    return {
        "year": year,
        # a preview never takes the place of the year's filing: it publishes beside it
        "out_dir": str(
            Path(env["out_dir"]) / str(year) / ("preview" if config.reporting.routing == JURISDICTION else "")
        ),
        "as_of": as_of,
        "environment": params.get("environment"),
        "mode": params.get("mode") or "auto",
        "sellers": params.get("sellers") or None,
        "authorities": params.get("authorities") or None,
        # a group's run for one operator alone (None: every operator of the configuration)
        "operators": [params["operator"]] if params.get("operator") else None,
    }


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
    run_dir = tasks.prepare(annual_run)
    filings = tasks.plan(run_dir)  # each an operator and an authority
    chain(tasks.extract(run_dir), tasks.aggregate(run_dir), tasks.apply_rules(run_dir), filings)
    rendered = tasks.render.partial(run_dir=run_dir).expand_kwargs(filings)
    validated = tasks.validate.partial(run_dir=run_dir).expand_kwargs(tasks.files(rendered))
    published = tasks.publish.partial(run_dir=run_dir).expand_kwargs(filings)
    transmitted = tasks.transmit.partial(run_dir=run_dir).expand_kwargs(filings)
    chain(published, transmitted, tasks.protocol(transmitted))
    chain(
        validated,
        tasks.gate(run_dir),
        tasks.approve(),
        published,
        tasks.finalize(run_dir),
        tasks.statements(run_dir),
    )


dac7_annual()
