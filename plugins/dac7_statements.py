"""Seller statements in the DAC7 view: how many are pending, sent or failed per year and
authority, prominent as their deadline approaches, and each statement's page for those with the
download permission.

Each reportable seller receives the information reported about them by 31 January of the
following year (PStTG § 22(2); Directive 2011/16/EU, Annex V, Section III(A)); the due day is the
``seller_statement`` row of the deadline table (``reporting.deadlines``). The counts come from the
ledger's delivery record (``reporting.ledger.statements``): a statement that a later one replaces
is counted as superseded, never as unsent.

Routes (added to the view's app by ``dac7_plugin.create_app``):

- ``/{year}/statements``: the statements of a year (``?status=pending|sent|failed|superseded``),
  their ids, kinds, seller ids and delivery status; a link to each page with the download
  permission;
- ``/{year}/statements/{statement_id}``: the statement's HTML page (personal data: the download
  permission only), served from ``<DAC7_OUT_DIR>/<year>/`` at the path the ledger records, only
  inside ``statements/``, and only while its bytes have the recorded sha256. Without the download
  permission, the masked page instead (a support copy, :mod:`reporting.statements.masked`),
  rendered from the content the ledger recorded.

Its top level imports the standard library only (Airflow imports every plugin file in every
process); the view's functions and ``reporting`` are imported where they are used. No ``from
__future__ import annotations``: FastAPI reads the annotations of the routes defined in
:func:`add_routes`.
"""

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger("dac7.view")

#: How many days before the due day the view calls attention to unsent statements.
ATTENTION_DAYS = 31
#: The most statements one page lists (the command ``dac7 statements list`` lists them all).
PAGE_LIMIT = 500
STATUSES = ("pending", "sent", "failed", "superseded")


def today_utc() -> date:
    return datetime.now(UTC).date()


def statement_section(year: int, counts: Sequence[Any], authority: str | None, today: date) -> list[str]:
    """The year page's section: a row per authority and environment with the counts, and a
    warning above it while production statements are unsent in the last ``ATTENTION_DAYS`` days
    before the due day, or after it."""
    import dac7_view as view

    from reporting.deadlines import days_left, describe_days, statement_due

    out = [
        '<h2 id="statements">Seller statements</h2>',
        '<p class="muted">What each reportable seller receives by 31 January (PStTG § 22(2); Directive '
        "2011/16/EU, Annex V, Section III(A)), as the ledger's delivery record has it: pending until the "
        "platform's delivery report (<code>dac7 statements mark-sent</code>) says sent or failed. A statement "
        'replaced by a later one is counted as superseded. <a href="statements">List the statements</a></p>',
    ]
    shown = [c for c in counts if authority in (None, c.authority)]
    if not shown:
        return [*out, "<p>No seller statement is recorded for this year.</p>"]
    rows = []
    # a group: each operator's statements apart (a seller of two operators receives one from each)
    group = any(getattr(c, "operator_id", "default") != "default" for c in shown)
    for c in shown:
        filing = f"{c.operator_id} {c.authority}" if group else c.authority
        due = statement_due(c.authority, c.year)
        left = days_left(due, today)
        urgent = c.environment == "prod" and c.unsent > 0 and left <= ATTENTION_DAYS
        if urgent:
            out.insert(
                2,
                f'<p class="problem" id="statements-warning-{escape(filing.replace(" ", "-"))}"><strong>'
                f"{view._num(c.unsent)} production statement(s) of {c.year} filed with {escape(filing)} not "
                "delivered</strong> "
                f"({view._num(c.pending)} pending, {view._num(c.failed)} failed): due {due.isoformat()}, "
                f"{escape(describe_days(due, today))}.</p>",
            )
        rows.append(
            (
                escape(filing),
                view._environment(c.environment),
                view._num(c.pending),
                view._num(c.sent),
                view._num(c.failed),
                view._num(c.superseded),
                f"{due.isoformat()} ({escape(describe_days(due, today))})",
            )
        )
    out.append(
        view._table(
            (
                "Operator and authority" if group else "Authority",
                "Environment",
                "Pending",
                "Sent",
                "Failed",
                "Superseded",
                "Due",
            ),
            rows,
            table_id="statements-counts",
            numeric=(2, 3, 4, 5),
        )
    )
    return out


def statements_page(year: int, items: Sequence[Any], status: str | None, *, may_download: bool, more: bool) -> str:
    """The statements of a year, without personal data but the seller id; a page link for each
    with the download permission."""
    import dac7_view as view

    links = " ".join(
        view._link(f"?status={s}", s) if s != status else f"<strong>{escape(s)}</strong>" for s in STATUSES
    )
    body = [
        f'<nav><a href="./">DAC7 {year}</a> <a href="../">All years</a></nav>',
        f"<h1>Seller statements {year}</h1>",
        f'<p>Show: <a href="statements">all</a> {links}</p>',
    ]
    if not may_download:
        body.append(f"<p>{view.NO_DOWNLOAD}: the statements hold the sellers' identity in full.</p>")
    rows = []
    for s in items:
        state = "superseded" if s.superseded_by else s.status
        page = (
            f'<a class="download" href="statements/{escape(quote(s.statement_id, safe=""))}">page</a>'
            if may_download and s.html_path
            else ('<span class="muted">erased</span>' if s.erased else view.NO_DOWNLOAD if not may_download else "")
        )
        rows.append(
            (
                view._id(s.statement_id),
                escape(s.kind) + (f" of {view._id(s.replaces)}" if s.replaces else ""),
                escape(s.authority),
                view._environment(s.environment),
                view._id(s.seller_id or ""),
                f'<span class="statement-status">{escape(state)}</span>',
                escape(f"{s.status_changed:%Y-%m-%d %H:%M}"),
                view._id(s.superseded_by or ""),
                page,
            )
        )
    if not rows:
        body.append("<p>No statement.</p>")
    else:
        body.append(
            view._table(
                (
                    "Statement",
                    "Kind",
                    "Authority",
                    "Environment",
                    "Seller id",
                    "Status",
                    "Since (UTC)",
                    "Replaced by",
                    "Page",
                ),
                rows,
                table_id="statements",
            )
        )
    if more:
        body.append(
            f'<p class="muted">The first {PAGE_LIMIT} only: <code>dac7 statements list --year {year}</code> '
            "lists them all.</p>"
        )
    return view._page(f"DAC7 statements {year}", body)


def statement_file(src: Any, year: int, statement_id: str) -> Path | None:
    """The page of ``statement_id`` if it is a statement of ``year`` in the ledger, its file is
    inside ``<out>/<year>/statements/`` and its bytes have the recorded sha256; else None."""
    import dac7_view as view

    from reporting.ledger.statements import statement_page

    if src.ledger_url is None or src.out_root is None:
        return None
    try:
        info = view._read_ledger(src.ledger_url, lambda ledger: ledger.statement(statement_id))
    except view.LedgerUnavailable:
        return None
    if info is None or info.year != year:
        return None
    found: Path | None = statement_page(src.out_root, info)
    return found


def operator_name(src: Any, year: int, message_ref_id: str) -> str:
    """The platform operator's name as the filed message gives it (its head), found through the
    year's ``manifest.json``; a neutral wording where the file is not at hand."""
    import json

    from reporting.statements.filed import MessageHead, read_message

    year_dir = src.year_dir(year)
    try:
        manifest = json.loads((year_dir / "manifest.json").read_text(encoding="utf-8")) if year_dir else {}
        for f in manifest.get("files", []):
            if f.get("message_ref_id") == message_ref_id:
                for item in read_message(year_dir / f["file"]):
                    if isinstance(item, MessageHead):
                        return item.operator_name or "The platform operator"
                    break
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return "The platform operator"


def masked_statement(src: Any, year: int, statement_id: str) -> str | None:
    """The masked page of ``statement_id`` if it is a statement of ``year`` the ledger holds with
    its content (None once the content is erased, PStTG § 24(3))."""
    import json

    import dac7_view as view

    from reporting.statements.masked import masked_page

    if src.ledger_url is None:
        return None

    def read(ledger: Any) -> Any:
        info = ledger.statement(statement_id)
        if info is None or info.year != year:
            return None
        recorded = ledger.recorded_statements([statement_id]).get(statement_id)
        return recorded[1] if recorded else None

    try:
        content = view._read_ledger(src.ledger_url, read)
    except view.LedgerUnavailable:
        return None
    if content is None:
        return None
    try:
        statement = json.loads(content)
        operator = operator_name(src, year, statement["filed_with"]["message_ref_id"])
        page: str = masked_page(statement, operator)
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("DAC7 statement %s/%s: its recorded content cannot be shown masked", year, statement_id[:200])
        return None
    return page


def read_statements(src: Any, year: int, status: str | None) -> tuple[list[Any], bool]:
    """Up to ``PAGE_LIMIT`` statements of ``year`` and whether there are more."""
    import dac7_view as view

    if src.ledger_url is None:
        return [], False

    def read(ledger: Any) -> tuple[list[Any], bool]:
        items: list[Any] = []
        for info in ledger.statements(year=year, status=status):
            if len(items) == PAGE_LIMIT:
                return items, True
            items.append(info)
        return items, False

    result: tuple[list[Any], bool] = view._read_ledger(src.ledger_url, read)
    return result


def add_routes(app: Any, view_user: Any, may_download: Callable[[Any], bool], refused_detail: str) -> None:
    """The statement routes on the view's app (``dac7_plugin.create_app``)."""
    from typing import Annotated

    import dac7_view as view
    from fastapi import HTTPException, Query, status
    from fastapi import Path as PathParam
    from fastapi.responses import FileResponse, HTMLResponse

    Year = Annotated[int, PathParam(ge=2023, le=2100, description="the reporting year")]

    @app.get("/{year}/statements", response_class=HTMLResponse)
    def statements(
        year: Year,
        user: view_user,  # type: ignore[valid-type]
        status_filter: str | None = Query(None, alias="status", max_length=20),
    ) -> HTMLResponse:
        chosen = status_filter if status_filter in STATUSES else None
        try:
            items, more = read_statements(view.sources(), year, chosen)
        except view.LedgerUnavailable as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        return HTMLResponse(statements_page(year, items, chosen, may_download=may_download(user), more=more))

    @app.get("/{year}/statements/{statement_id}", response_model=None)
    def statement(
        year: Year,
        statement_id: str,
        user: view_user,  # type: ignore[valid-type]
    ) -> FileResponse | HTMLResponse:
        if not may_download(user):
            masked = masked_statement(view.sources(), year, statement_id)
            if masked is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "No such statement in the ledger for this year.")
            log.info("DAC7 statement shown masked to %s: %s/%s", user.get_name(), year, statement_id[:200])
            return HTMLResponse(masked)
        target = statement_file(view.sources(), year, statement_id)
        if target is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such statement page in the output of this year.")
        from reporting.files import file_sha256

        log.info(
            "DAC7 statement opened by %s: %s/%s sha256 %s", user.get_name(), year, statement_id, file_sha256(target)
        )
        return FileResponse(target, media_type="text/html", filename=target.name, content_disposition_type="inline")
