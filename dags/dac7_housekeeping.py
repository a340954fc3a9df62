"""DAC7 housekeeping: deletes staging that no rerun needs any more.

A run's staging directory holds personal data (the extracted sellers, the rendered XML before
publication). It is kept while a rerun of that DAG run may need it, and deleted once its newest
file is older than ``DAC7_STAGING_RETENTION_DAYS`` (default 90): every day at 03:00 UTC, in the
local staging root of the worker that runs the task (``DAC7_STAGING_DIR``) and, when one is
configured, on the shared staging (``DAC7_STAGING_URL``). Published files, reports and the ledger
are never touched. On several workers with local copies, give each its own cleanup (a pod's
``emptyDir``, a cron job running ``dac7_support.staging.prune_staging``); this task reaches one.

A second task ends the retention of seller statements: each is kept ten years from the end of the
calendar year it was made, then its page (under ``<DAC7_OUT_DIR>/<year>/statements/``) and its
content in the ledger are deleted, as PStTG § 24(3) requires; the ids, hashes and delivery dates
stay. The ``statements_dry_run`` Param (or ``DAC7_STATEMENT_RETENTION_DRY_RUN=1``) only counts what
would go. A page that is not found where the ledger says fails the task, naming the statements
(their content is kept), unless the ``statements_missing_ok`` Param acknowledges that those pages
are gone. The instant is the run's logical date, never the clock.

A third task ends the retention of the due-diligence history the same way (PStTG § 24(3)): each
event ten years after the end of the year it was recorded, and each state row last changed in such
a year with no request cycle open; the ``statements_dry_run`` Param counts these too. A fourth
does the same for the record of the verification adapters' calls and their cached answers
(``reporting.verification.delete_expired``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task
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
    params={
        "statements_dry_run": Param(
            False,
            type="boolean",
            title="Statements and due diligence: dry run",
            description="Only count the seller statements and due-diligence records whose ten years of retention "
            "have ended.",
        ),
        "statements_missing_ok": Param(
            False,
            type="boolean",
            title="Statements: pages known to be gone",
            description="Erase the ledger content of expired statements whose page was not found (set only "
            "once you have made sure those pages are deleted everywhere).",
        ),
    },
)
def dac7_housekeeping() -> None:
    @task
    def prune_staging() -> dict[str, Any]:
        from dac7_support.staging import prune_staging

        return prune_staging()

    @task
    def expire_statements() -> dict[str, Any]:
        import os

        from dac7_support.retention import expire_statements

        ctx = get_current_context()
        now = ctx.get("logical_date") or ctx["dag_run"].run_after
        dry = bool(ctx["params"].get("statements_dry_run")) or os.environ.get(
            "DAC7_STATEMENT_RETENTION_DRY_RUN", ""
        ).strip().lower() in ("1", "true", "yes")
        missing_ok = bool(ctx["params"].get("statements_missing_ok"))
        return expire_statements(now, dry_run=dry, missing_ok=missing_ok)

    @task
    def expire_due_diligence() -> dict[str, Any]:
        from dac7_support.retention import expire_due_diligence

        ctx = get_current_context()
        now = ctx.get("logical_date") or ctx["dag_run"].run_after
        return expire_due_diligence(now, dry_run=bool(ctx["params"].get("statements_dry_run")))

    @task
    def expire_verifications() -> dict[str, Any]:
        from dac7_support.retention import expire_verifications

        ctx = get_current_context()
        now = ctx.get("logical_date") or ctx["dag_run"].run_after
        return expire_verifications(now, dry_run=bool(ctx["params"].get("statements_dry_run")))

    prune_staging()
    expire_statements()
    expire_due_diligence()
    expire_verifications()


dac7_housekeeping()
