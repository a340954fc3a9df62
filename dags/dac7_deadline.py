"""DAC7 deadline watch: warns about each item of the filing calendar that is due and not done.

Runs at 07:00 UTC every day (rejections come back all year; a filing overdue stays overdue).
From the day set by ``DAC7_DEADLINE_WARN`` (``MM-DD``, default ``01-25``) it checks the filing
ledger of the annual runs (``DAC7_LEDGER_URL``, else the
Airflow Connection named by ``DAC7_LEDGER_CONN_ID``, else the configuration's ``[ledger] url``)
for the production messages of the year before the run's date: the member state the operator
files in (or the UK, for a filing with HMRC under SI 2023/817) needs one published or accepted.
A missing one is logged as a WARNING and sent through the notification hook (``DAC7_NOTIFY``,
see ``dac7_support.notify``) every day until the deadline. The ``reporting_year`` Param checks
another year on a manual run.

A second task warns the same way about seller statements of that year still pending or failed in
the ledger's delivery record (due by 31 January too: PStTG § 22(2)), and about a production
filing whose sellers have no statement recorded.

A third task, ``check_calendar``, warns per operator's filing about the rest of the calendar
(``reporting.open_items``): each rejected record or message not corrected since (every year's,
or the ``reporting_year``'s), with its correction window where the authority states one or
``DAC7_CORRECTION_DAYS`` sets one; and, after the due day, a filing published but not accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task
from dac7_support import deadline
from dac7_support.common import run_date, settings_from_env, year_param
from dac7_support.connections import ledger_url
from dac7_support.notify import on_failure


@dag(
    dag_id="dac7_deadline",
    description="DAC7: warn about each calendar item due and not done (filing, statements, corrections)",
    schedule=CronTriggerTimetable("0 7 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": [on_failure]},
    tags=["dac7", "deadline"],
    doc_md=__doc__,
    params={
        "reporting_year": year_param(
            "Year whose filing to check.",
            empty="the year before the run's date (the filing due this January)",
        ),
    },
)
def dac7_deadline() -> None:
    @task
    def check_deadline() -> dict[str, Any]:
        ctx = get_current_context()
        today = run_date(ctx.get("logical_date"), ctx["dag_run"].run_after)
        year = ctx["params"].get("reporting_year") or today.year - 1
        return deadline.check_deadline(int(year), today, settings_from_env()["config_path"], ledger_url())

    @task
    def check_statements() -> dict[str, Any]:
        ctx = get_current_context()
        today = run_date(ctx.get("logical_date"), ctx["dag_run"].run_after)
        year = ctx["params"].get("reporting_year") or today.year - 1
        return deadline.check_statements(int(year), today, settings_from_env()["config_path"], ledger_url())

    @task
    def check_calendar() -> dict[str, Any]:
        ctx = get_current_context()
        today = run_date(ctx.get("logical_date"), ctx["dag_run"].run_after)
        year = ctx["params"].get("reporting_year")
        return deadline.check_calendar(
            int(year) if year else None, today, settings_from_env()["config_path"], ledger_url()
        )

    check_deadline()
    check_statements()
    check_calendar()


dac7_deadline()
