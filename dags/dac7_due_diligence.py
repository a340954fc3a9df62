"""DAC7 due diligence: every day, the actions due to collect and verify the sellers' data.

```
operators > due_diligence (one per operator of the configuration) > verify (one per operator)
```

Runs at 04:00 UTC every day for the day of its logical date (an explicit ``CronTriggerTimetable``:
the run of 2026-03-02 computes the actions due on 2 March, from the payments and refunds up to the
end of 1 March). For each operator (``[operator]`` and each ``[operators.ID]``) the task ``due_diligence``
brings the due-diligence state in the ledger to the day (scope, the items' states, the request
cycles) and writes the feed for the platform's messaging and account systems:
``<DAC7_OUT_DIR>/due_diligence/actions.jsonl`` (``operators/<ID>/...`` for a further operator):
pre-report notices, requests, first and second reminders, the measure (``[due_diligence]
measure``) and releases, each with the items missing, its due and latest dates and its legal
basis. The platform reports back what it sent with ``dac7 due-diligence mark --file F``. Nothing
is sent to a seller from here.

Then ``verify`` checks, for each operator, the TINs and VAT numbers of the state that are unverified
(new, changed, or their 36 months ran out) with the verification adapters the configuration
switches on (``[verification.NAME]``; by default python-stdnum's check digits alone), at most
``[verification] max_per_day`` of them (the rest the next day), and records what each found: the
next day's run sees the item verified, or invalid and requested. It runs in the pool of
``DAC7_VERIFICATION_POOL`` (create a one-slot pool ``dac7_verification`` first; unnamed: the default
pool), one operator at a time; without ``DAC7_VERIFICATION_KEY`` it is skipped. Its result holds
counts only: no identifier reaches XCom or the log.

A rerun of a day recomputes it and changes nothing the source did not change; a run for a day
before the last one computed is refused (clear the later runs instead). The Param ``operator``
runs one operator of a group alone. The ledger's retention of the history (PStTG § 24(3)) is the
housekeeping DAG's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task
from dac7_support.common import RETRY, run_date, run_uuid, verification_pool
from dac7_support.notify import on_failure

from reporting.vocabulary import OPERATOR_ID_PATTERN  # a leaf: nothing heavy at parse time


@dag(
    dag_id="dac7_due_diligence",
    description="DAC7: the due-diligence actions due today (requests, reminders, measures, releases)",
    schedule=CronTriggerTimetable("0 4 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": [on_failure]},
    tags=["dac7", "due-diligence"],
    doc_md=__doc__,
    params={
        "operator": Param(
            None,
            type=["null", "string"],
            pattern=f"^{OPERATOR_ID_PATTERN}$",
            title="Operator",
            description="One operator of a group alone ('default' is [operator]); empty: every operator.",
        ),
    },
)
def dac7_due_diligence() -> None:
    @task
    def operators() -> list[str]:
        from dac7_support.due_diligence import operators

        return operators(get_current_context()["params"].get("operator"))

    @task(map_index_template="{{ operator_id }}", **RETRY)
    def due_diligence(operator_id: str) -> dict[str, Any]:
        from dac7_support.due_diligence import run_day

        ctx = get_current_context()
        dag_run = ctx["dag_run"]
        day = run_date(ctx.get("logical_date"), dag_run.run_after)
        return run_day(operator_id, day, run_uuid(dag_run.dag_id, dag_run.run_id))

    @task(
        map_index_template="{{ operator_id }}",
        pool=verification_pool(),
        pool_slots=1,
        max_active_tis_per_dagrun=1,
        **RETRY,
    )
    def verify(operator_id: str) -> dict[str, Any]:
        from dac7_support.due_diligence import verify_day

        ctx = get_current_context()
        return verify_day(operator_id, run_date(ctx.get("logical_date"), ctx["dag_run"].run_after))

    chosen = operators()
    due_diligence.expand(operator_id=chosen) >> verify.expand(operator_id=chosen)


dac7_due_diligence()
