"""Every filing's way to its authority in the DAC7 view, with who acted and when, and the outbox.

A filing (one message in the ledger) goes ``rendered`` (the run, or who triggered it) ->
``approved`` (production: the second person) -> ``published`` -> ``uploaded`` (the person who
uploaded it in the portal) or ``transmitted`` (the BZSt DIP) -> ``accepted``,
``partially_rejected`` or ``rejected`` (the authority's answer, by its status format). The states
come from ``Ledger.filing_states`` (``reporting.ledger.transmissions``).

A filing waiting for a portal upload shows its outbox checklist (``checklist.json`` of its package
in ``<DAC7_OUT_DIR>/<year>/outbox/<XX>/<MessageRefId>/``, for a further operator of a group
``<DAC7_OUT_DIR>/<year>/operators/<ID>/outbox/<XX>/<MessageRefId>/``: the checks the authority applies at
upload, with their result) and, for those who may import status documents, a *Mark uploaded*
button: it records the logged-in Airflow user as the person who uploaded it
(``Ledger.mark_uploaded``), as ``dac7 ledger mark-uploaded`` does. The form carries the board's
token (an HMAC of the user's Airflow token, ``dac7_board.form_token``) and must come from a page
of this server (``Origin``/``Referer``), like the board's status import.

Routes (added to the view's app by ``dac7_plugin.create_app``):

- ``/{year}/filings``: the filings of a year (``?environment=&authority=``);
- ``/{year}/filings.csv``: the same as CSV, formula-safe (``reporting.reports.csvcells``);
- ``POST /{year}/filings``: mark a published message uploaded.

Every text is escaped; the page shows ids, states, names of those who acted and times, never
a seller's data. Its top level imports the standard library only (Airflow imports every plugin
file in every process). No ``from __future__ import annotations``: FastAPI reads the annotations
of the routes defined in :func:`add_routes`.
"""

import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

log = logging.getLogger("dac7.view")

STATE_WORDS = {
    "rendered": "rendered",
    "approved": "approved",
    "published": "published",
    "uploaded": "uploaded",
    "transmitted": "transmitted",
    "accepted": "accepted",
    "partially_rejected": "partially rejected",
    "rejected": "rejected",
    "discarded": "discarded",
}
_MID = re.compile(r"[A-Za-z0-9._-]{1,200}")
_FORM_CAP = 8 * 1024
MARK_REFUSED = (
    "Your Airflow login may see the filings, but not record an upload: that needs the status-import "
    "permission (with Airflow's simple auth manager, the role op or admin). Nothing was recorded."
)


def read_states(src: Any, year: int, environment: str | None, authority: str | None) -> list[Any]:
    """The filings of a year (``reporting.ledger.transmissions.FilingState``), oldest first."""
    import dac7_view as view

    from reporting.ledger import open_ledger

    if not src.ledger_url:
        raise view.LedgerUnavailable("No ledger is configured for the DAC7 view.")
    try:
        with open_ledger(src.ledger_url, create=False) as ledger:
            return ledger.filing_states(year, authority, environment)
    except Exception as exc:  # a ledger not there yet, or unreachable: no URL or secret in the words
        raise view.LedgerUnavailable(f"The ledger cannot be read ({type(exc).__name__}).") from None


def checklist(src: Any, state: Any) -> dict[str, Any] | None:
    """The outbox checklist of a filing waiting for its upload, if its package is there."""
    if state.channel != "outbox" or state.state != "published" or src.out_root is None:
        return None
    from reporting.settings import operator_out_dir

    if not _MID.fullmatch(state.message_ref_id) or not re.fullmatch(r"[A-Z]{2}", state.authority):
        return None
    if not _MID.fullmatch(state.operator_id) or state.operator_id.strip(".") == "":
        return None
    # a further operator of a group publishes under <out>/<year>/operators/<ID>/
    out = operator_out_dir(Path(src.out_root) / str(state.reporting_year), state.operator_id)
    path = out / "outbox" / state.authority / state.message_ref_id
    try:
        data: dict[str, Any] = json.loads((path / "checklist.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _when(at: Any) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else ""


def _steps(state: Any) -> str:
    return "<br>".join(
        f"<b>{escape(STATE_WORDS.get(s.state, s.state))}</b> by {escape(s.by or 'unknown')} {escape(_when(s.at))}"
        for s in state.steps
    )


def filings_page(
    year: int,
    states: Sequence[Any],
    checklists: Mapping[str, dict[str, Any]],
    *,
    chosen: Mapping[str, str | None],
    token: str | None,
    may_mark: bool,
    result: tuple[str, str] | None = None,
) -> str:
    """The page: a table of every filing's state and steps, then each outbox checklist."""
    import dac7_view as view

    body = [
        f'<p><a href="../">DAC7 filings</a> › <a href="./">{year}</a> › filings</p>',
        f"<h1>DAC7 {year}: every filing's way to its authority</h1>",
        '<p class="muted">Each message in the ledger: rendered, approved (production), published, then '
        "uploaded in the authority's portal or transmitted to the BZSt DIP, then the authority's answer "
        "(accepted, partially rejected or rejected), each with who acted and when (UTC). "
        f'<a href="filings.csv{_query(chosen)}">CSV</a></p>',
    ]
    if result is not None:
        kind, text = result
        cls = "result" if kind == "ok" else "problem"
        body.append(f'<div class="{cls}" id="mark-result" role="status">{escape(text)}</div>')
    rows = []
    for s in states:
        rows.append(
            [
                escape(s.authority),
                escape(view.ENVIRONMENTS.get(s.environment, s.environment)),
                f"<code>{escape(s.message_ref_id)}</code>",
                f'<span class="state-{escape(s.state)}">{escape(STATE_WORDS.get(s.state, s.state))}</span>',
                _steps(s),
                escape(s.channel or ""),
                escape(s.ticket or ""),
                str(s.rejected_records),
            ]
        )
    if rows:
        body.append(
            view._table(
                [
                    "Authority",
                    "Environment",
                    "MessageRefId",
                    "State",
                    "Who acted, when",
                    "Way",
                    "DIP transfer",
                    "Rejected records",
                ],
                rows,
                table_id="filing-states",
                numeric=(7,),
            )
        )
    else:
        body.append('<p id="filing-states-empty">No filing of this year in the ledger.</p>')
    for s in states:
        items = checklists.get(s.message_ref_id)
        if items is not None:
            body += _outbox(s, items, token=token, may_mark=may_mark)
    return view._page(f"DAC7 {year} filings", body)


def _outbox(state: Any, data: Mapping[str, Any], *, token: str | None, may_mark: bool) -> list[str]:
    mid = state.message_ref_id
    checks = "".join(
        f"<li>{'✔' if c.get('ok') else '✘'} <b>{escape(str(c.get('check', '')))}</b>: "
        f"{escape(str(c.get('text', '')))}</li>"
        for c in data.get("checks", [])
        if isinstance(c, dict)
    )
    files = ", ".join(escape(str(f.get("name", ""))) for f in data.get("files", []) if isinstance(f, dict))
    portal = data.get("portal")
    portal = portal if isinstance(portal, dict) else {}
    where = escape(str(portal.get("where", "")))
    if portal.get("authority"):
        where += f" ({escape(str(portal['authority']))})"
    steps = "".join(f"<li>{escape(str(s))}</li>" for s in data.get("steps", []) if isinstance(s, str))
    out = [
        f'<section class="outbox" id="outbox-{escape(mid)}"><h2>Waiting for its upload: {escape(state.authority)} '
        f"<code>{escape(mid)}</code></h2>",
        f"<p>Where: {where or 'not named'}. File(s): {files}.</p>",
        f"<h3>Checks at upload</h3><ul>{checks}</ul>",
    ]
    if steps:
        out.append(f"<h3>Steps</h3><ol>{steps}</ol>")
    if may_mark and token:
        out.append(
            '<form method="post" action="filings">'
            f'<input type="hidden" name="token" value="{escape(token)}">'
            f'<input type="hidden" name="message_ref_id" value="{escape(mid)}">'
            '<button type="submit">Mark uploaded (records you as the person who uploaded it)</button></form>'
        )
    else:
        out.append(
            '<p class="muted">Marking it uploaded needs the status-import permission, or '
            f"<code>dac7 ledger mark-uploaded {escape(mid)} --by NAME</code>.</p>"
        )
    out.append("</section>")
    return out


def _query(chosen: Mapping[str, str | None]) -> str:
    parts = [f"{k}={quote(v)}" for k, v in chosen.items() if v]
    return "?" + "&".join(parts) if parts else ""


def filings_csv(states: Iterable[Any]) -> str:
    """One row per step of every filing, formula-safe (no cell is read as a formula)."""
    from reporting.reports.csvcells import cell

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["authority", "environment", "reporting_year", "message_ref_id", "state", "step", "by", "at"])
    for s in states:
        for step in s.steps:
            writer.writerow(
                [
                    cell(v)
                    for v in (
                        s.authority,
                        s.environment,
                        s.reporting_year,
                        s.message_ref_id,
                        s.state,
                        step.state,
                        step.by or "",
                        step.at.isoformat(sep=" ") if step.at else "",
                    )
                ]
            )
    return buf.getvalue()


def mark_uploaded(src: Any, message_ref_id: str, user: str) -> tuple[str, str, int]:
    """Record ``user`` as the person who uploaded the message: (kind, words, HTTP status)."""
    from reporting.errors import ReportingError
    from reporting.ledger import open_ledger

    if not _MID.fullmatch(message_ref_id or ""):
        return "refused", "That is not a MessageRefId: nothing was recorded.", 400
    if not src.ledger_url:
        return "refused", "No ledger is configured for the DAC7 view: nothing was recorded.", 503
    try:
        with open_ledger(src.ledger_url, create=False) as ledger:
            state = ledger.mark_uploaded(message_ref_id, by=user)
    except ReportingError as exc:
        return "refused", f"Nothing was recorded: {exc}", 409
    step = state.steps[-1]
    log.info("DAC7 filing %s marked uploaded by %s", message_ref_id, user)
    return (
        "ok",
        f"{message_ref_id}: uploaded by {step.by} at {_when(step.at)}; its answer comes with the status import.",
        200,
    )


def add_routes(app: Any, view_user: Any, may_mark: Any, hosts: Any, secret: Any) -> None:
    """The filing routes on the view's app (``dac7_plugin.create_app``). ``may_mark(user)``: whether
    the user may record an upload (the status-import permission); ``hosts()``: the ``host[:port]``
    this server answers as; ``secret()``: the api-server's signing key, for the form token."""
    from typing import Annotated

    import dac7_board as board
    import dac7_view as view
    from fastapi import HTTPException, Query, Request, status
    from fastapi import Path as PathParam
    from fastapi.responses import HTMLResponse, Response

    Year = Annotated[int, PathParam(ge=2023, le=2100, description="the reporting year")]
    Filter = Annotated[str | None, Query(max_length=40)]

    def chosen_of(environment: str | None, authority: str | None) -> dict[str, str | None]:
        return {
            "environment": environment if environment in view.ENVIRONMENTS else None,
            "authority": authority.upper() if authority and re.fullmatch(r"[A-Za-z]{2}", authority) else None,
        }

    def page(request: Request, user: Any, year: int, chosen: Mapping[str, str | None], **kw: Any) -> str:
        src = view.sources()
        try:
            states = read_states(src, year, chosen["environment"], chosen["authority"])
        except view.LedgerUnavailable as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        lists = {s.message_ref_id: c for s in states if (c := checklist(src, s)) is not None}
        allowed = may_mark(user)
        session = board.session_token(request.headers, request.cookies) or ""
        token = board.form_token(secret(), session) if allowed and session else None
        return filings_page(year, states, lists, chosen=chosen, token=token, may_mark=allowed, **kw)

    @app.get("/{year}/filings", response_class=HTMLResponse)
    def filings(
        request: Request,
        year: Year,
        user: view_user,  # type: ignore[valid-type]
        environment: Filter = None,
        authority: Filter = None,
    ) -> HTMLResponse:
        return HTMLResponse(page(request, user, year, chosen_of(environment, authority)))

    @app.get("/{year}/filings.csv")
    def filings_as_csv(
        year: Year,
        user: view_user,  # type: ignore[valid-type]
        environment: Filter = None,
        authority: Filter = None,
    ) -> Response:
        chosen = chosen_of(environment, authority)
        try:
            states = read_states(view.sources(), year, chosen["environment"], chosen["authority"])
        except view.LedgerUnavailable as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        return Response(
            filings_csv(states),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="dac7-{year}-filings.csv"'},
        )

    @app.post("/{year}/filings", response_class=HTMLResponse)
    async def uploaded(request: Request, year: Year, user: view_user) -> HTMLResponse:  # type: ignore[valid-type]
        from starlette.concurrency import run_in_threadpool

        name = user.get_name()  # type: ignore[attr-defined]
        chosen = chosen_of(None, None)
        if not may_mark(user):
            log.warning("DAC7 mark uploaded refused: user %s has no status-import permission", name)
            result, code = ("refused", MARK_REFUSED), 403
        elif not board.same_origin(request.headers, [request.headers.get("host", ""), *hosts()]):
            log.warning("DAC7 mark uploaded refused: the request of user %s came from another page", name)
            result, code = (
                ("refused", "The form did not come from the DAC7 view of this Airflow: nothing was recorded."),
                403,
            )
        else:
            body = await request.body()
            fields = parse_qs(body[:_FORM_CAP].decode("utf-8", "replace")) if len(body) <= _FORM_CAP else {}
            sent = (fields.get("token") or [None])[0]
            mid = (fields.get("message_ref_id") or [""])[0]
            if not board.token_ok(secret(), board.session_token(request.headers, request.cookies), sent):
                log.warning("DAC7 mark uploaded refused: user %s sent no valid form token", name)
                result, code = (
                    (
                        "refused",
                        "The form has expired or was not made for your login: nothing was recorded. "
                        "Open the page again.",
                    ),
                    403,
                )
            else:
                kind, words, code = await run_in_threadpool(mark_uploaded, view.sources(), mid, name)
                result = (kind, words)
        html = await run_in_threadpool(page, request, user, year, chosen, result=result)
        return HTMLResponse(html, status_code=code)
