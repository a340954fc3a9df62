"""Messages to people: a failed task, a filing deadline coming close.

:func:`notify` is the one hook. It logs the message (logger ``dac7.notify``: WARNING or ERROR, so a
log-based alert rule can pick it up) and passes it to every callable named in ``DAC7_NOTIFY``
(comma-separated ``package.module:function`` paths, each called as ``function(subject, text)``):
the place to plug in e-mail, chat or a ticket system. A failing notifier is logged, never raised:
it must not hide the failure it reports.

Messages name the DAG, the task, the period and what to do; never a seller's data. An error's
own text is quoted only for ``reporting`` errors, whose messages are written to carry keys and
rules only; of any other exception only the class is named (the task log has the rest).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("dac7.notify")

#: What to do when a task fails, per task id (the task log has the details).
WHAT_TO_DO = {
    "prepare": "correct the Params or the configuration file as the error says, then trigger the run again.",
    "extract": "if the source database was unreachable, make sure it is up and clear the task; if rows "
    "break a rule, correct the rows the task log names (table, key and rule), then clear the task.",
    "aggregate": "correct what the task log names, then clear the task (it reruns from the staged extract).",
    "apply_rules": "correct the configuration or the rows the task log names (quarantined sellers: "
    "reports/quarantine.csv), then clear the task.",
    "plan": "a ledger-mode or deletion problem needs other Params (see the task log); an unreachable "
    "ledger database needs to be up again; then clear the task.",
    "render": "if another run holds the ledger lock of this period and authority, wait for it (after a crash: "
    "dac7 ledger unlock); a record problem needs the rows corrected; then clear the task.",
    "validate": "the XML breaks the schema or the authority's business rules, so nothing was published: "
    "correct the data or the profile as the task log says, then trigger a new run.",
    "gate": "some authority was not validated, so nothing was published: see the validate tasks.",
    "approve": "the filing was rejected (or approved by the person who triggered the run: four eyes need a "
    "second person), so nothing was published: correct what the approver found, then trigger a new run.",
    "publish": "some authorities may be published already (dac7 ledger list shows which); clear the task "
    "to resume: a retried publish skips what it published and never files anything twice.",
    "finalize": "the files are published; only the reports and the manifest are missing: clear the task.",
    "watch_list": "the quarterly preview could not write its watch list: correct what the task log names "
    "and clear the task.",
    "operators": "the configuration could not be read or the operator Param names no operator: correct it, "
    "then trigger the run again.",
    "due_diligence": "if another run or report holds the due-diligence lock, wait and clear the task (after a crash: "
    "dac7 due-diligence unlock); a run for a day before the last one is refused; otherwise correct what the "
    "task log names (configuration, source, ledger) and clear the task.",
    "expire_due_diligence": "the due-diligence records whose ten years have run could not be deleted: fix "
    "what the task log names (the ledger unreachable) and clear the task; their deletion is mandatory "
    "(PStTG § 24(3)).",
    "check_deadline": "the deadline check itself failed (configuration or ledger unreachable): fix it, then "
    "clear the task; until then, check the filing status with dac7 ledger list.",
    "check_calendar": "the calendar check itself failed (configuration, ledger or DAC7_CORRECTION_DAYS): fix "
    "what the task log names, then clear the task; until then, the DAC7 view's board shows what is open.",
}
DEFAULT_WHAT_TO_DO = "read the task log, correct what it names, then clear the task."


def notify(subject: str, text: str, *, level: int = logging.WARNING) -> None:
    """Log ``subject`` and ``text``, then hand them to every notifier of ``DAC7_NOTIFY``."""
    log.log(level, "%s\n%s", subject, text)
    for path in filter(None, (p.strip() for p in os.environ.get("DAC7_NOTIFY", "").split(","))):
        try:
            module, _, name = path.partition(":")
            getattr(importlib.import_module(module), name)(subject, text)
        except Exception as exc:  # a notifier must never hide what it reports
            log.error("notifier %s failed (%s); the message is in this log", path, type(exc).__name__)


def error_text(exc: BaseException | str | None) -> str:
    """An error as a notification may quote it: a ``reporting`` error's first line (its messages
    carry keys and rules, no personal values), else only the class of the exception."""
    if exc is None:
        return "no error recorded"
    if isinstance(exc, str):
        return "see the task log"
    name = type(exc).__name__
    # a group's run: the operator whose stage failed (reporting.pipeline.each_operator notes it)
    notes = [n for n in getattr(exc, "__notes__", ()) if isinstance(n, str) and n.startswith("operator ")]
    whose = f" ({notes[0][:60]})" if notes else ""
    if type(exc).__module__.startswith("reporting.") and str(exc).strip():
        return f"{name}{whose}: {str(exc).strip().splitlines()[0].rstrip(':.')}"
    return f"{name}{whose} (the task log has the details)"


def run_period(context: Mapping[str, Any]) -> str:
    """The period of the failed run, from its staging settings (written by ``prepare``), else from
    its Params; never from the clock."""
    run_dir = None
    try:
        run_dir = context["ti"].xcom_pull(task_ids="prepare")
    except Exception:  # prepare itself failed, or no XCom reachable: use the Params
        run_dir = None
    # the staging file itself, not reporting.pipeline.recorded_settings: the failure callback must
    # work when reporting (or one of its libraries) is what failed to import
    if isinstance(run_dir, str) and (Path(run_dir) / "settings.json").is_file():
        s = json.loads((Path(run_dir) / "settings.json").read_text(encoding="utf-8"))
        return f"reporting year {s['year']} ({s['config']['reporting']['environment']}, as of {s['as_of']})"
    params = context.get("params") or {}
    year = params.get("reporting_year")
    if year:
        return f"reporting year {year} ({params.get('environment') or 'environment from the configuration'})"
    logical = context.get("logical_date")
    return f"the period of the run dated {logical.date().isoformat()}" if logical else "a period not yet determined"


def failure_message(context: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, text) for a failed task: which task, which period, what went wrong, what to do."""
    ti = context["ti"]
    task = getattr(ti, "task_id", "?")
    kwargs = getattr(context.get("task"), "op_kwargs", None) or {}
    authority, operator = kwargs.get("authority"), kwargs.get("operator")
    # the filing's label, as the grid shows it (the operator first in a group's run)
    label = getattr(ti, "rendered_map_index", None) or (
        f"{operator} {authority}" if operator and operator != "default" else authority
    )
    where = f"{task} [{label}]" if label else task
    dag_id = getattr(ti, "dag_id", "?")
    period = run_period(context)
    subject = f"DAC7 {dag_id}: task {where} failed for {period}"
    text = (
        f"Run {getattr(ti, 'run_id', '?')}, try {getattr(ti, 'try_number', '?')}.\n"
        f"Error: {error_text(context.get('exception'))}.\n"
        f"What to do: {WHAT_TO_DO.get(task, DEFAULT_WHAT_TO_DO)}"
    )
    return subject, text


def on_failure(context: Mapping[str, Any]) -> None:
    """The ``on_failure_callback`` of every DAC7 task (runs in the task's process)."""
    subject, text = failure_message(context)
    notify(subject, text, level=logging.ERROR)
