"""DAC7 quarterly watch: after each quarter, the year so far as of its last day, and a watch list.

```
prepare > extract > aggregate > apply_rules > report > watch_list
```

Runs at 06:00 UTC on the first day of January, April, July and October for the quarter that
ended (an explicit ``CronTriggerTimetable``: the logical date is the moment the run is due, so the
run of 2026-04-01 covers 2026 up to 31 March and that of 2026-01-01 the whole of 2025). Params
``reporting_year`` and ``quarter`` pick another quarter for a manual run.

Each run is a **test** run of the pipeline as of the quarter's last day, up to the decisions: the
extract reads only the payments made by the end of that day (``Period.paid_until_utc``), the data
checks and the rules run as in the annual filing, under the filing state's reading, and ``report``
writes the decisions, figures, due-diligence and quarantine reports and a manifest, but no XML: the
watch renders, files and publishes nothing, so it needs no ledger (``DAC7_QUARTERLY_LEDGER_URL`` is
no longer read). It publishes into ``<out>/<year>/watch/Q<n>/``, never next to the annual filing.

``watch_list`` writes ``watch_list.csv`` there: the sellers whose sales of goods crossed, or
come within 20% of, the de minimis limits (30 sales, EUR 2,000, as the filing state reads them)
while due diligence still lists something to do for them (seller ids only).

The tasks are those of the annual filing's factory (``dac7_support.tasks``: same ids, retries,
pool and XCom values); this file chooses the quarter and wires them. ``prepare`` records the
ledger's URL in the run's settings as every run does (resolved by the task and passed to the
pipeline, never through the environment); no stage of the watch opens it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, chain, dag
from dac7_support import tasks
from dac7_support.common import quarter_problems, run_date, year_param
from dac7_support.notify import on_failure
from dac7_support.quarterly import quarter_period, watch_dir

from reporting.vocabulary import TEST  # a leaf: nothing heavy at parse time

log = logging.getLogger("dac7_quarterly")


def quarterly_run(ctx: Mapping[str, Any], env: Mapping[str, Any]) -> dict[str, Any]:
    """The quarter, output directory and environment of a watch (what ``prepare`` fixes): always
    a test run, as of the quarter's last day; a ``ConfigError`` for a quarter that has not ended."""
    from reporting.errors import ConfigError

    dag_run = ctx["dag_run"]
    try:
        year, quarter, as_of = quarter_period(ctx.get("logical_date"), dag_run.run_after, ctx["params"])
    except ValueError as exc:  # the year without the quarter, or the other way round
        raise ConfigError(f"the run's Params were refused: {exc}") from None
    problems = quarter_problems(year, quarter, as_of, run_date(ctx.get("logical_date"), dag_run.run_after))
    if problems:
        raise ConfigError("the run's Params were refused: " + " ".join(problems))
    out_dir = watch_dir(env["out_dir"], year, quarter)
    log.info("watch of %s Q%s (as of %s) into %s", year, quarter, as_of, out_dir)
    return {"year": year, "out_dir": str(out_dir), "as_of": as_of, "environment": TEST}


@dag(
    dag_id="dac7_quarterly",
    description="DAC7 watch after each quarter: the year so far as of its end, and the threshold watch list",
    schedule=CronTriggerTimetable("0 6 1 1,4,7,10 *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": [on_failure]},
    tags=["dac7", "watch"],
    doc_md=__doc__,
    params={
        "reporting_year": year_param(
            "Year of the quarter to preview, together with the quarter.",
            empty="the last quarter that ended before the run's date",
        ),
        "quarter": Param(
            None,
            type=["null", "integer"],
            enum=[None, 1, 2, 3, 4],
            values_display={None: "the last quarter that ended", 1: "Q1", 2: "Q2", 3: "Q3", 4: "Q4"},
            title="Quarter",
            description="Quarter to preview (the year up to its last day), together with the reporting year.",
        ),
    },
)
def dac7_quarterly() -> None:
    run_dir = tasks.prepare(quarterly_run)
    chain(
        tasks.extract(run_dir),
        tasks.aggregate(run_dir),
        tasks.apply_rules(run_dir),
        tasks.report(run_dir),
        tasks.watch_list(run_dir),
    )


dac7_quarterly()
