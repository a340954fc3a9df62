"""The outcome of a DAC7 run on Airflow's run page: a run note written when the run ends.

A listener (``on_dag_run_success`` / ``on_dag_run_failed``) that the scheduler calls when it
marks a run of ``dac7_annual`` or ``dac7_quarterly`` as ended, inside its own database session
(``DagRun.update_state``). It reads what the run's last task returned (``finalize`` of the annual
filing: counts only, never a name, TIN or amount; ``report`` of the quarterly watch) from that
same session, and sets the run's note: a few lines of Markdown. Airflow's run page shows the first
line in its header (the whole note opens with a click): a link to the DAC7 view of the year
(``<base path>/dac7/<year>/``, the path of ``[api] base_url``, so that it works when Airflow is
served under a path) and the counts. A failed run's note names the tasks that failed.

Why a note and a listener: a note is what the run page shows first, and any user may read it;
the Task SDK gives a task no way to write its run's note (tasks reach the database only through
the Execution API, which has no note endpoint), and an extra link on ``finalize`` is visible only
on that task's page. The scheduler may write the note: it holds the run in its session, and the
note is flushed with the run's new state; the listener's queries do not flush that session
(``no_autoflush``), and no error of the listener reaches the scheduler. A note someone wrote by
hand is kept below the DAC7 lines (any text that is not a line of ours, even one that starts with
``[DAC7``); a rerun of the run replaces the DAC7 lines only, and the note no longer names the
person who last edited it as its author.

Airflow imports every module of the plugins folder in every process: this one imports the standard
library and Airflow's plugin and listener markers only; SQLAlchemy and Airflow's models are
imported in the hooks, which run in the scheduler.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger("dac7.links")

#: The DAGs whose runs get a note, and the task whose return value holds each one's outcome.
OUTCOME_TASK = {"dac7_annual": "finalize", "dac7_quarterly": "report"}
#: The first characters of every note this listener writes: how it finds its own lines again.
HEAD = "[DAC7 "
#: Where the DAC7 lines end, in a note that has more below them (kept when the note is rewritten).
END = "\n\n---\n\n"
NOTE_LIMIT = 1000  # the dag_run_note.content column
#: The first line of every note this listener writes: a link and counts in bold.
OUR_HEAD = re.compile(r"\[DAC7 [^\]\n]*\]\([^)\n]*\): \*\*")
#: The other lines it writes (``annual_note``, ``watch_note``, ``failed_note``), and nothing else.
OUR_LINE = re.compile(
    r"- (sent to |nothing to file: |\*\*\d+ corrections? and |sellers read \d|\d+ (sellers?|warnings?)\b"
    r"|a watch renders and sends nothing$|the task's log says why|nothing of this run was published)"
)


def view_path(base_url: str | None, year: object | None = None) -> str:
    """The DAC7 view (of ``year``) as a path from the server's root: ``[api] base_url``'s path,
    then ``/dac7/`` (the plugin's mount point)."""
    prefix = urlsplit(base_url or "").path.rstrip("/")
    return f"{prefix}/dac7/{year}/" if year is not None else f"{prefix}/dac7/"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def annual_note(outcome: Mapping[str, Any], base_url: str | None) -> str:
    """The note of a successful ``dac7_annual`` run, from ``finalize``'s return value. The run
    page shows the first line in its header (the rest when the note is opened): the link and the
    counts are there."""
    year = outcome.get("reporting_year")
    env = outcome.get("environment")
    as_of = outcome.get("as_of")
    what = "preview" if outcome.get("preview") else "filing"
    title = f"DAC7 {year} {what}"
    if env or as_of:
        title += f" ({', '.join(str(x) for x in (env, as_of and f'as of {as_of}') if x)})"
    files, sellers = int(outcome.get("files") or 0), int(outcome.get("sellers") or 0)
    records = outcome.get("records") or {}
    corrections, deletions = int(records.get("correction", 0)), int(records.get("deletion", 0))
    first = f"[{title}]({view_path(base_url, year)}): **{_plural(files, 'file')}, {_plural(sellers, 'seller')}**"
    if corrections or deletions:
        first += f", **{_plural(corrections, 'correction')}, {_plural(deletions, 'deletion')}**"
    lines = [first]
    if files:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(records.items()) if n)
        authorities = ", ".join(outcome.get("authorities") or [])
        lines.append(f"- sent to {authorities or 'no authority'}: {kinds or 'no seller record'}")
    else:
        lines.append("- nothing to file: no file was rendered, nothing was sent")
    if corrections or deletions:
        changed = f"{_plural(corrections, 'correction')} and {_plural(deletions, 'deletion')}"
        lines.append(f"- **{changed} of records filed before**")
    if "reportable" in outcome:
        lines.append(
            f"- sellers read {outcome.get('sellers_read', 0)}, reportable {outcome['reportable']} "
            "(a seller may be in several files: one per authority and kind)"
        )
    checks = []
    if outcome.get("quarantined"):
        checks.append(f"{_plural(int(outcome['quarantined']), 'seller')} quarantined")
    if outcome.get("due_diligence"):
        checks.append(f"{_plural(int(outcome['due_diligence']), 'seller')} with due-diligence findings")
    if outcome.get("warnings"):
        checks.append(_plural(int(outcome["warnings"]), "warning"))
    if checks:
        lines.append("- " + "; ".join(checks))
    return "\n".join(lines)


def watch_note(outcome: Mapping[str, Any], base_url: str | None) -> str:
    """The note of a successful ``dac7_quarterly`` run, from ``report``'s return value."""
    year = outcome.get("reporting_year")
    return (
        f"[DAC7 watch{f' {year}' if year else ''}]({view_path(base_url, year)}): **{outcome.get('reportable', 0)} "
        f"reportable of {outcome.get('sellers', 0)} sellers read**\n- a watch renders and sends nothing"
    )


def failed_label(ti: Any) -> str:
    """A failed task as the note names it: its id, and a mapped instance's label as the grid shows
    it (``publish [de_gmbh DE]``: in a group's run, the entity whose filing failed)."""
    label = getattr(ti, "rendered_map_index", None)
    if getattr(ti, "map_index", -1) >= 0 and label:
        return f"{ti.task_id} [{label}]"
    return str(ti.task_id)


def failed_note(dag_id: str, failed: Sequence[str], base_url: str | None) -> str:
    tasks = ", ".join(failed) or "none (the run was marked failed)"
    return (
        f"[DAC7 run failed]({view_path(base_url)}): **failed task(s): {tasks}**\n"
        "- the task's log says why and what to do\n"
        "- nothing of this run was published after the failed task"
    )


def hand_written(existing: str | None) -> str:
    """What a person wrote in a note: the note without the lines this listener wrote before (its
    first line and the list below it, recognised by their shape) and the separator after them.
    A note that does not start with our first line and list is kept whole, even if it starts with
    ``[DAC7 ``."""
    lines = (existing or "").split("\n")
    if not OUR_HEAD.match(lines[0]):
        return existing or ""
    i = 1
    while i < len(lines) and OUR_LINE.match(lines[i]):
        i += 1
    if i == 1:  # every note of ours has a list below its first line
        return existing or ""
    rest = "\n".join(lines[i:]).lstrip("\n")
    if rest == "---" or rest.startswith("---\n"):
        rest = rest[3:].lstrip("\n")
    return rest


def merged_note(ours: str, existing: str | None) -> str:
    """Our lines first; a note someone wrote by hand stays below them; our earlier lines go."""
    kept = hand_written(existing)
    text = ours + (END + kept if kept.strip() else "")
    return text[:NOTE_LIMIT]


def _base_url() -> str | None:
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback=None)


def _outcome(dag_run: Any, task_id: str, session: Any) -> Any:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    row = session.scalars(
        select(XComModel).where(
            XComModel.dag_id == dag_run.dag_id,
            XComModel.run_id == dag_run.run_id,
            XComModel.task_id == task_id,
            XComModel.key == "return_value",
            XComModel.map_index == -1,
        )
    ).first()
    return XComModel.deserialize_value(row) if row is not None else None


def write_note(dag_run: Any, text: str) -> None:
    """Set the run's note in the session that holds the run (the scheduler's). The note's author
    (``DagRunNote.user_id``, set by Airflow's API when a person edits the note) is cleared: the
    scheduler wrote the text, a person's lines are kept below it."""
    existing = dag_run.dag_run_note
    if existing is None:
        dag_run.note = (merged_note(text, None), None)
    else:
        existing.content = merged_note(text, existing.content)
        existing.user_id = None


def _note_for(dag_run: Any, *, succeeded: bool) -> None:
    task_id = OUTCOME_TASK.get(dag_run.dag_id)
    if task_id is None:
        return
    try:
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy.orm import object_session

        session = object_session(dag_run)
        if session is None:
            return
        base = _base_url()
        # The scheduler's session: a query here must not flush what the scheduler has pending (a
        # failed flush would leave its session needing a rollback).
        with session.no_autoflush:
            if succeeded:
                outcome = _outcome(dag_run, task_id, session)
                if not isinstance(outcome, Mapping):
                    return
                text = annual_note(outcome, base) if task_id == "finalize" else watch_note(outcome, base)
            else:
                failed = dag_run.get_task_instances(state=[TaskInstanceState.FAILED], session=session)
                text = failed_note(dag_run.dag_id, sorted({failed_label(ti) for ti in failed}), base)
            write_note(dag_run, text)
    except Exception:  # a note must never stop the scheduler
        log.exception("could not write the DAC7 note of run %s", getattr(dag_run, "run_id", "?"))


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _note_for(dag_run, succeeded=True)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _note_for(dag_run, succeeded=False)


class Dac7RunOutcomePlugin(AirflowPlugin):
    name = "dac7_run_outcome"
    listeners: ClassVar[list[Any]] = []


def _this_module() -> Any:
    import sys

    return sys.modules[__name__]


Dac7RunOutcomePlugin.listeners = [_this_module()]
