"""DAC7 annual filing: one run per reporting year, each task one stage of ``reporting.pipeline``.

Schedule: 06:00 UTC on 15 January, for the previous calendar year. The timetable is an explicit
``CronTriggerTimetable``: its logical date is the moment the run is due (2026-01-15T06:00Z files
2025). The legacy ``CronDataIntervalTimetable`` would stamp that same run with the *start* of its
interval (2025-01-15) and shift the year by one, and which of the two a bare cron string gets
depends on ``[scheduler] create_cron_data_intervals``; so the choice is made here, not in config.

The reporting year, the as-of date and the run's ids come from the run (logical date, run id,
Params), never from the clock, so a rerun of a DAG run recomputes the same period into the same
staging directory (the message Timestamp is the prepare task's start time). Paths come from
``DAC7_*`` environment variables, read when a task runs.

Only extract retries (twice, exponential back-off from one minute), for a source that is briefly
unreachable; a ``DataError`` (bad rows) fails at once, since waiting does not change the rows.

Nothing heavy is imported here: each task imports ``reporting.pipeline`` in its body, so that
parsing this file costs no pandas, lxml, duckdb or Great Expectations import.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, chain, dag, get_current_context, task

log = logging.getLogger("dac7_annual")

REPO = Path(__file__).resolve().parents[1]
RUN_NAMESPACE = uuid.UUID("5f2b8a4e-1c7d-5e0a-9b3f-6d0c2e8a7b41")  # fixed: run ids stay stable


def settings_from_env() -> dict[str, str | None]:
    """Where the config, source, output and staging are: environment first, repo defaults next."""
    env = os.environ
    return {
        "config_path": env.get("DAC7_CONFIG") or str(REPO / "dac7.toml"),
        "source_url": env.get("DAC7_SOURCE_URL") or None,  # None: the config's [source] url
        "out_dir": env.get("DAC7_OUT_DIR") or str(REPO / "out"),
        "staging_root": env.get("DAC7_STAGING_DIR") or str(REPO / ".dac7" / "staging"),
    }


def reporting_period(
    logical_date: datetime | None, run_after: datetime | None, params: Mapping[str, Any]
) -> tuple[int, date]:
    """The (reporting year, as-of date) of a DAG run.

    Year: the ``reporting_year`` Param, else the year before the logical date's year (a run
    due in January 2026 files 2025). As-of: the ``as_of`` Param, else the day before the logical
    date (UTC), else (a manual run without a logical date) the day before the date the run was
    created for (``run_after``, stored with the run): always a day that has ended, so that a
    rerun counts the same refunds.
    """
    year = params.get("reporting_year")
    if year is None:
        if logical_date is None:
            raise ValueError(
                "this run has no logical date, so its reporting year cannot be derived: "
                "trigger it again with the reporting_year Param set (e.g. 2025)"
            )
        year = logical_date.astimezone(UTC).year - 1
    as_of = params.get("as_of")
    if as_of:
        as_of_date = date.fromisoformat(as_of)
    else:
        anchor = logical_date or run_after
        if anchor is None:
            raise ValueError("this run has neither a logical date nor a run_after: set the as_of Param")
        # The day before: a day that has ended, so a rerun counts the same refunds.
        as_of_date = anchor.astimezone(UTC).date() - timedelta(days=1)
    return int(year), as_of_date


def run_uuid(dag_id: str, run_id: str) -> str:
    """The pipeline's run id: the same Airflow run always gets the same UUID."""
    return str(uuid.uuid5(RUN_NAMESPACE, f"{dag_id}/{run_id}"))


@dag(
    dag_id="dac7_annual",
    description="DAC7 platform-operator report for the previous calendar year",
    schedule=CronTriggerTimetable("0 6 15 1 *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},
    tags=["dac7", "reporting"],
    doc_md=__doc__,
    params={
        "reporting_year": Param(
            None,
            type=["null", "integer"],
            minimum=2023,
            maximum=2100,
            title="Reporting year",
            description="Calendar year to report. Empty: the year before the run's logical date "
            "(a run on 2026-01-15 reports 2025). Required for a run without a logical date.",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            title="As-of date",
            description="Refunds dated after this day (in the configured time zone) are not "
            "counted. Empty: the day before the run's logical date (UTC), a day that has ended.",
        ),
        "environment": Param(
            None,
            type=["null", "string"],
            enum=[None, "test", "prod"],
            values_display={None: "from the configuration", "test": "test", "prod": "prod"},
            title="Environment",
            description="'test' marks every record as test data (OECD10-13). Empty: the "
            "[reporting] environment of the configuration file.",
        ),
    },
)
def dac7_annual() -> None:
    @task
    def prepare() -> str:
        from reporting import pipeline

        ctx = get_current_context()
        dag_run = ctx["dag_run"]
        year, as_of = reporting_period(ctx.get("logical_date"), dag_run.run_after, ctx["params"])
        env = settings_from_env()
        log.info("reporting year %s, as of %s", year, as_of)
        return pipeline.prepare(
            config_path=env["config_path"],
            year=year,
            out_dir=str(Path(env["out_dir"]) / str(year)),
            as_of=as_of,
            environment=ctx["params"].get("environment"),
            staging_root=env["staging_root"],
            run_id=run_uuid(dag_run.dag_id, dag_run.run_id),
            timestamp=ctx["ti"].start_date,
            source_url=env["source_url"],
        )

    @task(
        retries=2,
        retry_delay=timedelta(minutes=1),
        retry_exponential_backoff=True,
        max_retry_delay=timedelta(minutes=10),
    )
    def extract(run_dir: str) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from reporting import pipeline
        from reporting.errors import PermanentError

        try:
            return pipeline.extract(run_dir, settings_from_env()["source_url"])
        except PermanentError as exc:  # bad rows or a broken contract: waiting will not fix them
            raise AirflowFailException(str(exc)) from exc

    @task
    def aggregate(run_dir: str) -> dict[str, Any]:
        from reporting import pipeline

        return pipeline.aggregate(run_dir)

    @task
    def apply_rules(run_dir: str) -> dict[str, Any]:
        from reporting import pipeline

        return pipeline.apply_rules(run_dir)

    @task
    def render(run_dir: str) -> dict[str, Any]:
        from reporting import pipeline

        return pipeline.render(run_dir)

    @task
    def validate(run_dir: str) -> dict[str, Any]:
        from reporting import pipeline

        return pipeline.validate(run_dir)

    @task
    def publish(run_dir: str) -> dict[str, Any]:
        from reporting import pipeline
        from reporting.run import load_settings

        manifest = pipeline.publish(run_dir)
        log.info("DAC7 run summary\n%s", pipeline.summary_table(manifest))
        if not manifest["files"]:
            log.info("nothing to file for %s: no reportable seller", manifest["reporting_year"])
        return {
            "reporting_year": manifest["reporting_year"],
            "files": len(manifest["files"]),
            "sellers": sum(f["sellers"] for f in manifest["files"]),
            "manifest": str(Path(load_settings(run_dir).out_dir) / "manifest.json"),
        }

    run_dir = prepare()
    chain(
        extract(run_dir), aggregate(run_dir), apply_rules(run_dir), render(run_dir), validate(run_dir), publish(run_dir)
    )


dac7_annual()
