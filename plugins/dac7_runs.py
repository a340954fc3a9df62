"""The DAC7 runs in Airflow, for compliance staff: which runs failed, which wait for an approval,
which answers the approval step refused, and what each run filed.

``<prefix>/runs`` lists the latest runs of the DAC7 DAGs (``dac7_annual``, ``dac7_quarterly``),
newest first, from Airflow's metadata database (the api-server reads it, as Airflow's own pages
do): the run, its state (failed ones first in the counts, marked in red), who triggered it, when
it was to run (Airflow's run_after) and how long it took, its note (the outcome the scheduler wrote: files, sellers,
corrections, or the failed tasks), whether its approval step is waiting for a person, and the
answers that step refused (``approval/refused.jsonl`` in the run's staging directory: who, when,
why), with links to Airflow's run page and to the run's pending files. ``?state=failed`` (or
``success``, ``running``, ``queued``) and ``?dag=dac7_annual`` narrow the list.

Only the runs of the DAGs the user may read are listed (the auth manager's
``is_authorized_dag``, GET on runs, as Airflow's run list asks). Nothing personal: run ids,
states, user names of Airflow, counts.

Airflow imports every module of the plugins folder in every process: the top level imports the
standard library only. No ``from __future__ import annotations``: FastAPI reads the annotations
of the route defined in :func:`add_routes`.
"""

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

#: The DAGs of this project whose runs the page lists, and what each one is.
DAGS = {
    "dac7_annual": "annual filing",
    "dac7_quarterly": "quarterly watch",
}
STATES = ("failed", "running", "queued", "success")
#: How many runs the page lists at most (newest first).
LIMIT = 100
#: The task of the annual DAG that waits for a person (``dags/dac7_annual.py``).
APPROVAL_TASK = "approve"
log = logging.getLogger("dac7.view")


@dataclass(frozen=True, slots=True)
class RunRow:
    """One DAG run as the page shows it."""

    dag_id: str
    run_id: str
    state: str
    run_type: str
    triggered_by: str  # Airflow's triggering user, "" for a scheduled run
    run_after: datetime | None
    start: datetime | None
    end: datetime | None
    note: str
    approval: str  # the approval task's state, "" when the run has none (yet)


@dataclass(frozen=True, slots=True)
class Refusal:
    at: str
    user: str
    answer: str
    reason: str


def pipeline_run_id(dag_id: str, run_id: str) -> str:
    """The pipeline's run id of an Airflow run (``dac7_support.common.run_uuid``, from the DAGs
    folder as the trigger page imports it)."""
    import dac7_trigger

    return str(dac7_trigger.common().run_uuid(dag_id, run_id))


def staging_dirs(root: Path | None) -> dict[str, Path]:
    """The runs' staging directories under ``root`` (``<year>-<pipeline run id>``), by pipeline run
    id: the folder is listed once per page, not once per run."""
    found: dict[str, Path] = {}
    try:
        entries = sorted(root.iterdir()) if root is not None and root.is_dir() else []
    except OSError:  # not readable by the api-server: no staging links
        return {}
    for p in entries:
        year, _, uid = p.name.partition("-")
        if len(year) == 4 and year.isdigit() and len(uid) == 36:
            found[uid] = p  # the latest year wins (sorted)
    return found


def staging_of(root: Path | None, dag_id: str, run_id: str) -> Path | None:
    """The run's staging directory (``<root>/<year>-<pipeline run id>``), if the api-server sees it."""
    return staging_dirs(root).get(pipeline_run_id(dag_id, run_id))


def refusals(run_dir: Path | None) -> list[Refusal]:
    """The answers the approval step refused (``approval/refused.jsonl``), oldest first."""
    path = run_dir / "approval" / "refused.jsonl" if run_dir else None
    try:
        if path is None or not path.is_file():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeError):  # unreadable for the api-server: the page still shows the rest
        log.warning("the refused answers of %s cannot be read", run_dir.name if run_dir else "?")
        return []
    out = []
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(
                Refusal(
                    at=str(item.get("at", "")),
                    user=str(item.get("user", "")),
                    answer=str(item.get("answer", "")),
                    reason=str(item.get("reason", "")),
                )
            )
    return out


def read_runs(dag_ids: Sequence[str], state: str | None, limit: int = LIMIT) -> list[RunRow]:
    """The latest runs of ``dag_ids`` from Airflow's metadata database, newest first."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    if not dag_ids:
        return []
    with create_session() as session:
        query = select(DagRun).options(selectinload(DagRun.dag_run_note)).where(DagRun.dag_id.in_(list(dag_ids)))
        if state:
            query = query.where(DagRun.state == state)
        runs = list(session.scalars(query.order_by(DagRun.run_after.desc(), DagRun.id.desc()).limit(limit)))
        keys = [(r.dag_id, r.run_id) for r in runs]
        approvals: dict[tuple[str, str], str] = {}
        if keys:
            rows = session.execute(
                select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.state).where(
                    TaskInstance.task_id == APPROVAL_TASK,
                    TaskInstance.dag_id.in_({d for d, _ in keys}),
                    TaskInstance.run_id.in_({r for _, r in keys}),
                )
            )
            approvals = {(d, r): str(s or "") for d, r, s in rows}
        return [
            RunRow(
                dag_id=r.dag_id,
                run_id=r.run_id,
                state=str(r.state or ""),
                run_type=str(r.run_type or ""),
                triggered_by=r.triggering_user_name or "",
                run_after=r.run_after,
                start=r.start_date,
                end=r.end_date,
                note=r.note or "",
                approval=approvals.get((r.dag_id, r.run_id), ""),
            )
            for r in runs
        ]


# ------------------------------------------------------------------------------------ showing


#: the approval task's states while it waits for a person
WAITING = frozenset({"awaiting_input", "deferred"})


def approval_text(row: RunRow) -> str:
    """What the approval step of a run is doing, in words."""
    return {
        "awaiting_input": "waiting for an approval",
        "deferred": "waiting for an approval",
        "success": "approved",
        "skipped": "not needed",
        "failed": "rejected or failed",
        "upstream_failed": "not reached (an earlier task failed)",
        "": "",
    }.get(row.approval, row.approval)


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else ""


def _duration(row: RunRow) -> str:
    if not row.start or not row.end:
        return ""
    seconds = int((row.end - row.start).total_seconds())
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def note_line(note: str) -> str:
    """The note's first line (the DAC7 outcome the scheduler wrote), without its Markdown (links,
    bold)."""
    first = note.strip().splitlines()[0] if note.strip() else ""
    # "[DAC7 view](../dac7/2025/)" -> "DAC7 view": the page links the year itself
    out, i = [], 0
    while i < len(first):
        if first[i] == "[" and "](" in first[i:]:
            close = first.index("](", i)
            end = first.find(")", close)
            if end != -1:
                out.append(first[i + 1 : close])
                i = end + 1
                continue
        out.append(first[i])
        i += 1
    return "".join(out).replace("**", "")


def runs_page(
    rows: Sequence[RunRow],
    refused: Mapping[tuple[str, str], Sequence[Refusal]],
    pending: Mapping[tuple[str, str], str],
    *,
    dags: Sequence[str],
    dag: str | None,
    state: str | None,
    page: Any,
) -> str:
    """The page; ``page`` is ``dac7_view`` (its helpers and style); ``pending`` maps a run to the
    name of its staging directory (the pending page's address)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    table_rows = []
    for r in rows:
        key = (r.dag_id, r.run_id)
        airflow_run = f"../dags/{quote(r.dag_id, safe='')}/runs/{quote(r.run_id, safe='')}"
        refusals_here = refused.get(key, ())
        approval = escape(approval_text(r))
        if key in pending and r.approval in WAITING:
            approval += f' <a href="pending/{quote(pending[key], safe="")}/">pending files</a>'
        if refusals_here:
            approval += "<br>" + "<br>".join(
                f'<span class="refused">refused: {escape(x.answer)} by {escape(x.user)} '
                f'<span class="when">{escape(x.at[:16].replace("T", " "))}</span> ({escape(x.reason)})</span>'
                for x in refusals_here
            )
        table_rows.append(
            (
                f"{escape(DAGS.get(r.dag_id, r.dag_id))}<br>"
                f'<a class="id" href="{escape(airflow_run)}" target="_top">{escape(r.run_id)}</a>',
                f'<span class="status status-run-{escape(r.state)}">{escape(r.state)}</span>',
                escape(r.triggered_by) or '<span class="muted">the schedule</span>',
                f'<span class="when">{escape(_when(r.run_after))}</span>',
                escape(_duration(r)),
                approval,
                escape(note_line(r.note)) or '<span class="muted">no outcome yet</span>',
            )
        )
    summary = ", ".join(f"{n} {escape(s)}" for s, n in sorted(counts.items())) or "none"
    body = [
        '<nav><a href="./">All years</a> <a href="board">Deadlines and statuses</a></nav>',
        "<h1>DAC7 runs in Airflow</h1>",
        '<p class="muted">The latest runs of the DAC7 DAGs, newest first: failed runs, runs waiting for an '
        "approval, the answers the approval step refused, and each run's outcome (its note). A run id opens "
        "the run in Airflow.</p>",
        _filter(dags, dag, state),
        f"<p>Listed: {summary}.</p>",
        page._table(
            ("Run", "State", "Triggered by", "Run after (UTC)", "Took", "Approval", "Outcome"),
            table_rows,
            table_id="runs",
        )
        if table_rows
        else "<p>No run of the DAC7 DAGs matches.</p>",
    ]
    return page._page("DAC7 runs", body).replace("</style>", RUN_CSS + "</style>", 1)


RUN_CSS = (
    ".status-run-failed{background:#fed7d7}.status-run-success{background:#c6f6d5}"
    ".status-run-running,.status-run-queued{background:#bee3f8}.refused{color:#9b2c2c}"
)


def _filter(dags: Sequence[str], dag: str | None, state: str | None) -> str:
    def link(text: str, query: Mapping[str, str | None], current: bool) -> str:
        href = "runs" + ("?" + urlencode({k: v for k, v in query.items() if v}) if any(query.values()) else "")
        return f'<a href="{escape(href)}"{" class=current" if current else ""}>{escape(text)}</a>'

    dag_links = [link("all", {"state": state}, dag is None)] + [
        link(DAGS.get(d, d), {"dag": d, "state": state}, d == dag) for d in dags
    ]
    state_links = [link("all", {"dag": dag}, state is None)] + [
        link(s, {"dag": dag, "state": s}, s == state) for s in STATES
    ]
    return f'<p class="filter">DAG: {" ".join(dag_links)}</p><p class="filter">State: {" ".join(state_links)}</p>'


def without_approval(row: RunRow) -> RunRow:
    """The row without its approval step, for a user who may not read approval requests."""
    return replace(row, approval="")


def readable_dags(may_read: Callable[[str], bool]) -> list[str]:
    return [d for d in DAGS if may_read(d)]


def refusals_of(
    rows: Iterable[RunRow], root: Path | None
) -> tuple[dict[tuple[str, str], list[Refusal]], dict[tuple[str, str], str]]:
    """Per run, the refused answers and the staging directory's name (for the pending page)."""
    refused: dict[tuple[str, str], list[Refusal]] = {}
    pending: dict[tuple[str, str], str] = {}
    dirs = staging_dirs(root)
    for r in rows:
        found = dirs.get(pipeline_run_id(r.dag_id, r.run_id))
        if found is None:
            continue
        pending[(r.dag_id, r.run_id)] = found.name
        items = refusals(found)
        if items:
            refused[(r.dag_id, r.run_id)] = items
    return refused, pending


def add_routes(app: Any, view_user: Any) -> None:
    """The runs page on the view's app (``dac7_plugin.create_app``)."""
    import dac7_pending
    import dac7_view as view
    from fastapi import Query
    from fastapi.responses import HTMLResponse

    @app.get("/runs", response_class=HTMLResponse)
    def runs(
        user: view_user,  # type: ignore[valid-type]
        dag: str | None = Query(None, max_length=40),
        state: str | None = Query(None, max_length=20),
    ) -> HTMLResponse:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
        from airflow.models.dag import DagModel

        manager = get_auth_manager()

        def may(entity: Any, dag_id: str) -> bool:
            details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
            return bool(manager.is_authorized_dag(method="GET", access_entity=entity, details=details, user=user))

        dags = readable_dags(lambda d: may(DagAccessEntity.RUN, d))
        chosen = dag if dag in dags else None
        wanted = state if state in STATES else None
        rows = read_runs([chosen] if chosen else dags, wanted)
        # the approval step and its refused answers: for those who may read the approval requests
        approvals = {d for d in dags if may(DagAccessEntity.HITL_DETAIL, d)}
        rows = [r if r.dag_id in approvals else without_approval(r) for r in rows]
        refused, pending = refusals_of([r for r in rows if r.dag_id in approvals], dac7_pending.staging_root())
        page = runs_page(rows, refused, pending, dags=dags, dag=chosen, state=wanted, page=view)
        return HTMLResponse(page)
