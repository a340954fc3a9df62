"""DAC7 housekeeping: deletes staging that no rerun needs any more.

A run's staging directory holds personal data (the extracted sellers, the rendered XML before
publication). It is kept while a rerun of that DAG run may need it, and deleted once its newest
file is older than ``DAC7_STAGING_RETENTION_DAYS`` (default 90): every day at 03:00 UTC, in the
local staging root of the worker that runs the task (``DAC7_STAGING_DIR``) and, when one is
configured, on the shared staging (``DAC7_STAGING_URL``). Published files, reports and the ledger
are never touched. On several workers with local copies, give each its own cleanup (a pod's
``emptyDir``, a cron job running ``dac7_support.staging.prune_staging``); this task reaches one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, task
from dac7_support.notify import on_failure


@dag(
    dag_id="dac7_housekeeping",
    description="DAC7: delete staging older than the retention period",
    schedule=CronTriggerTimetable("0 3 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": [on_failure]},
    tags=["dac7", "housekeeping"],
    doc_md=__doc__,
)
def dac7_housekeeping() -> None:
    @task
    def prune_staging() -> dict[str, Any]:
        from dac7_support.staging import prune_staging

        return prune_staging()

    prune_staging()


dac7_housekeeping()
