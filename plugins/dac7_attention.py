"""The due-diligence desk of the DAC7 view: the sellers that need attention, what they lack, their
next action and its date, the counts per stage, and the list as CSV.

Routes (added to the view's app by ``dac7_plugin.create_app``):

- ``/attention``: the counts per stage (in scope, incomplete, requested, reminded twice, blocked,
  released) and the sellers that need attention (an item missing or invalid, a request cycle open,
  a release due, the pre-report notice not sent), :data:`PAGE_SIZE` per page, filtered by GET
  parameters: ``country`` (the seller's residence country, a two-letter code), ``action`` (an
  action due, or the next one; ``none``: no next action) and, in a group, ``operator`` (an
  operator id); a value that is none of these is refused with 400, never read as no filter;
- ``/attention.csv``: every seller of the list with the same filters, formula-safe
  (``reporting.reports.csvcells``: no cell is read as a formula), for users with the download
  permission (as the due-diligence list of a run); each export is logged with the user.

What it reads: the compliance desk's table of the ledger (``ledger_due_diligence_desk``, written
by each daily run for the sellers that changed, and by the platform's reports and the
verifications for theirs: ``reporting.due_diligence``'s ``desk_total``, ``desk_list``,
``desk_whole``, ``desk_stages_of``, ``desk_countries_of``, ``last_run_dates``) with SQL: the
counts with one ``GROUP BY``, a page with ``ORDER BY ... LIMIT/OFFSET``, the export through a
server-side cursor. Each operator's sellers stand as of that operator's latest daily run (the day
its state stands at, so that the list says what that run's feed ``due_diligence/actions.jsonl``
says), computed with the cycle's settings that run scheduled with (``[due_diligence]``: the
reminders' spacing and the measure, kept in the run's row). The page shows seller ids,
countries, items, states and dates: no personal data. Each seller links to its seller page, whose
due-diligence history is for users with the download permission.

Airflow imports every module of the plugins folder in every process: the top level imports the
standard library and ``reporting.vocabulary`` (a leaf of the standard library). No ``from
__future__ import annotations``: FastAPI reads the annotations of the routes of :func:`add_routes`.
"""

import csv
import io
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from reporting.vocabulary import (  # a leaf
    DUE_DILIGENCE_ACTIONS,
    DUE_DILIGENCE_CYCLE_COLUMNS,
    OPERATOR_ID_PATTERN,
)

log = logging.getLogger("dac7.view")

#: The sellers shown per page (``?page=``); the CSV export is the whole filtered list.
PAGE_SIZE = 200
#: ``?action=none``: the sellers with no next action (an item lacking while out of scope, or a
#: cycle waiting for the platform's report of a step it was sent)
NO_ACTION = "none"
ACTIONS = (*DUE_DILIGENCE_ACTIONS, NO_ACTION)
ACTION_WORDS = {
    "pre_report_notice": "pre-report notice",
    "request": "request",
    "reminder_1": "first reminder",
    "reminder_2": "second reminder",
    "withhold_payouts": "withhold payouts",
    "close_account": "close the account",
    "release": "release",
    NO_ACTION: "no next action",
}
#: The cycle's columns of the export: the ledger's (``DUE_DILIGENCE_CYCLE_COLUMNS``) but the due
#: days the runs fix, which the export gives as ``due_actions``, and the count of cycles closed.
_CYCLE = tuple(c for c in DUE_DILIGENCE_CYCLE_COLUMNS if c not in ("notice_due", "request_due", "cycles"))
#: The columns of the CSV export, one row per seller (``day``, the cycle's day, after the request's).
CSV_COLUMNS = (
    "operator_id",
    "seller_id",
    "country",
    "seller_type",
    "scope",
    "items_missing",
    "items_invalid",
    "items_unverified",
    *_CYCLE[: _CYCLE.index("requested_on") + 1],
    "day",
    *_CYCLE[_CYCLE.index("requested_on") + 1 :],
    "due_actions",
    "next_action",
    "next_date",
    "as_of",
)
_COUNTRY = re.compile(r"[A-Z]{2}")
_OPERATOR = re.compile(OPERATOR_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class AttentionQuery:
    """The filters and the page of the list."""

    operator: str | None = None
    country: str | None = None
    action: str | None = None
    page: int = 1

    def params(self, **change: Any) -> str:
        """The query string with ``change``d values (``page=None``: none, as for the export)."""
        values: dict[str, Any] = {
            "operator": self.operator,
            "country": self.country,
            "action": self.action,
            "page": self.page if self.page > 1 else None,
        }
        values.update(change)
        if values["page"] == 1:
            values["page"] = None
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


class BadFilter(ValueError):
    """A filter value the list cannot take (the routes answer 400 with its message)."""


def is_country(value: str) -> bool:
    """A two-letter country code (ISO 3166-1 alpha-2 in form), the only country the list filters
    by and the form offers."""
    return _COUNTRY.fullmatch(value) is not None


def query_of(operator: str | None, country: str | None, action: str | None, page: str | None) -> AttentionQuery:
    """The list's query from its GET parameters: a country that is not a two-letter code, an
    action that is not one of :data:`ACTIONS`, an operator that is not an operator id are each
    :class:`BadFilter` (never silently the whole list); blank is no filter; a page that is not a
    number is the first."""
    code = country.strip().upper() if country else None
    if code and not is_country(code):
        raise BadFilter(
            f"The filter country={country!r} is not a two-letter country code (ISO 3166-1 alpha-2, e.g. GR): "
            "the list filters by the seller's residence country code only."
        )
    wanted = action.strip() if action else None
    if wanted and wanted not in ACTIONS:
        raise BadFilter(
            f"The filter action={action!r} is not an action of the due-diligence feed: expected one of "
            f"{', '.join(ACTIONS)} ({NO_ACTION}: the sellers with no next action)."
        )
    op = operator.strip() if operator else None
    if op and not _OPERATOR.fullmatch(op):
        raise BadFilter(
            f"The filter operator={operator!r} is not an operator id (letters, digits and _, as "
            "[operators] of the configuration names them)."
        )
    return AttentionQuery(
        operator=op or None,
        country=code or None,
        action=wanted or None,
        page=int(page) if page and page.isdigit() and len(page) < 7 else 1,
    )


@dataclass(slots=True)
class AttentionView:
    """What the page shows: the sellers of the page (or, for the export, all of them), how many
    pass the filters, the day each operator's state stands at, the counts per stage, the values
    the filters offer, and what could not be read."""

    rows: list[Any] = field(default_factory=list)  # reporting.due_diligence.DeskRow
    total: int = 0
    as_of: dict[str, date] = field(default_factory=dict)
    counts: Any = None  # reporting.due_diligence.StageCounts
    countries: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    note: str | None = None  # where the cycle's settings come from


def cycle_settings(env: Mapping[str, str] | None = None) -> tuple[Any, str]:
    """The cycle's settings (``[due_diligence]`` of ``DAC7_CONFIG``, else the defaults), and a
    sentence that says which."""
    from reporting.diligence_cycle import CycleSettings

    env = os.environ if env is None else env
    path = env.get("DAC7_CONFIG")
    if path:
        from reporting.config import load_config
        from reporting.errors import ReportingError

        try:
            return load_config(path).due_diligence, "the configuration's [due_diligence] settings"
        except (ReportingError, OSError):
            return CycleSettings(), "the default settings (the configuration named by DAC7_CONFIG cannot be read)"
    return CycleSettings(), "the default settings (no configuration: DAC7_CONFIG is not set)"


def run_settings(ledger: Any, operators: Iterable[str]) -> tuple[dict[str, Any], str]:
    """Each operator's cycle settings: those its latest daily run scheduled with (kept in the
    run's row, ``reporting.due_diligence.last_run_settings``), so that the desk says what that
    run's feed says; for a run that kept none (before the ledger kept them), those of
    :func:`cycle_settings`. And a sentence that says which."""
    from reporting.due_diligence import last_run_settings

    stored = last_run_settings(ledger)
    fallback, note = cycle_settings()
    out = {op: stored.get(op) or fallback for op in operators}
    kept = [op for op in out if stored.get(op) is not None]
    if kept and len(kept) == len(out):
        return out, "the settings each operator's latest run scheduled with"
    if kept:
        return out, f"the settings the latest run scheduled with ({', '.join(kept)}), else {note}"
    return out, note


def desk_filter(as_of: Mapping[str, date], query: AttentionQuery) -> Any:
    """The query's filters over the desk's table (``reporting.due_diligence.DeskFilter``): the
    operators with a run, each as of its latest run's day."""
    from reporting.due_diligence import DeskFilter

    return DeskFilter(as_of, operator_id=query.operator, country=query.country, action=query.action)


def attention(ledger: Any, as_of: Mapping[str, date], query: AttentionQuery) -> Iterator[Any]:
    """The sellers that need attention as the desk's table holds them
    (``reporting.due_diligence.DeskRow``), each operator's as of its latest daily run, filtered by
    the query (not paged), streamed from a server-side cursor."""
    from reporting.due_diligence import desk_whole

    return desk_whole(ledger, desk_filter(as_of, query))


def read_attention(src: Any, query: AttentionQuery) -> AttentionView:
    """The page's part of the list (the query's page of :data:`PAGE_SIZE`; a page beyond the
    last is the last), how many pass the filters, the counts and the filters' values, each one
    SQL query of the desk's table; a ledger that cannot be read is a problem on the page, never a
    traceback."""
    import dac7_view as view

    found = AttentionView()
    if not src.ledger_url:
        found.problems = list(src.problems) or ["No ledger is configured for the DAC7 view."]
        return found

    def read(ledger: Any) -> None:
        from reporting.due_diligence import (
            desk_countries_of,
            desk_list,
            desk_not_filled,
            desk_stages_of,
            desk_total,
            last_run_dates,
        )

        found.as_of = last_run_dates(ledger)
        for op in desk_not_filled(ledger):
            found.problems.append(
                f"The latest daily run of operator {op} ({found.as_of[op].isoformat()}) came before the ledger kept "
                "the desk's list: its sellers are listed from its next daily run."
            )
        _, found.note = run_settings(ledger, found.as_of)
        # an operator with no run (an unknown id) counts nothing, as its list is empty
        operators = [op for op in found.as_of if query.operator in (None, op)]
        found.counts = desk_stages_of(ledger, operator_ids=operators, country=query.country)
        found.countries = desk_countries_of(ledger, operator_ids=operators)
        f = desk_filter(found.as_of, query)
        found.total = desk_total(ledger, f)
        # the query's page, or the last one when the list is shorter
        page = min(max(query.page, 1), max(1, -(-found.total // PAGE_SIZE)))
        found.rows = desk_list(ledger, f, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE) if found.total else []

    try:
        view._read_ledger(src.ledger_url, read)
    except view.LedgerUnavailable as exc:
        found.problems.append(str(exc))
    return found


def export_attention(src: Any, query: AttentionQuery, user: str) -> Iterator[str]:
    """The whole filtered list as CSV chunks (:func:`attention_csv`), read while it is sent (the
    ledger open for as long); :class:`dac7_view.LedgerUnavailable` before the first chunk when
    the ledger cannot be read. The export is logged with the user and the filters before the
    first chunk (an aborted download leaves its line too), and its end with the count sent."""
    import dac7_view as view

    if not src.ledger_url:
        raise view.LedgerUnavailable(" ".join(src.problems) or "No ledger is configured for the DAC7 view.")
    from reporting.due_diligence import last_run_dates

    as_of = view._read_ledger(src.ledger_url, last_run_dates)
    filters = query.params(page=None) or "no filter"
    log.info("DAC7 export by %s: due-diligence attention list (%s)", user, filters)

    def chunks() -> Iterator[str]:
        from reporting.ledger import open_ledger

        counted, done = _Counted(), False
        try:
            with open_ledger(src.ledger_url, create=False) as ledger:
                yield from attention_csv(counted.each(attention(ledger, as_of, query)), as_of)
            done = True
        finally:
            log.info(
                "DAC7 export by %s: due-diligence attention list (%s) %s, %d seller(s)",
                user,
                filters,
                "sent" if done else "not finished",
                counted.n,
            )

    return chunks()


class _Counted:
    """Counts what passes through :meth:`each`."""

    def __init__(self) -> None:
        self.n = 0

    def each(self, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            self.n += 1
            yield item


# ============================================================================ the values


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _cycle_day(requested_on: date | None, as_of: date) -> str:
    """The cycle's day on the state's day (day 0: the request's); blank without a request, and
    blank for a request the platform reported dated after the run (no day of the run's cycle)."""
    if requested_on is None or requested_on > as_of:
        return ""
    return str((as_of - requested_on).days)


def row_values(a: Any, as_of: date) -> dict[str, str]:
    """A seller of the list (``reporting.due_diligence.DeskRow``) as text, one value per
    :data:`CSV_COLUMNS` (the page shows some), its actions as of the state's day ``as_of``."""
    due = a.due(as_of)
    nxt = a.next()
    return {
        "operator_id": a.operator_id,
        "seller_id": a.seller_id,
        "country": a.country or "",
        "seller_type": a.seller_type or "",
        "scope": a.scope,
        "items_missing": ";".join(a.items_missing),
        "items_invalid": ";".join(a.items_invalid),
        "items_unverified": ";".join(a.items_unverified),
        "notice_on": _day(a.notice_on),
        "requested_on": _day(a.requested_on),
        "day": _cycle_day(a.requested_on, as_of),
        "requested_items": ";".join(a.requested_items),
        "reminder_1_on": _day(a.reminder_1_on),
        "reminder_2_on": _day(a.reminder_2_on),
        "measure": a.measure or "",
        "measure_on": _day(a.measure_on),
        "release_due": _day(a.release_due),
        "due_actions": "; ".join(f"{d.action} {d.due_date.isoformat()}" for d in due),
        "next_action": nxt[0] if nxt else "",
        "next_date": _day(nxt[1]) if nxt else "",
        "as_of": as_of.isoformat(),
    }


def attention_csv(rows: Iterable[Any], as_of: Mapping[str, date]) -> Iterator[str]:
    """The sellers as CSV, a header then a chunk of text per seller, every text cell formula-safe
    (``reporting.reports.csvcells.cell``: a cell that starts with ``=``, ``+``, ``-``, ``@``, a
    tab or a carriage return gets a leading apostrophe)."""
    from reporting.reports.csvcells import cell

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for a in rows:
        values = row_values(a, as_of[a.operator_id])
        writer.writerow([cell(values[c]) for c in CSV_COLUMNS])
        if buf.tell() > 64 * 1024:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


# ============================================================================ the page


def attention_page(found: AttentionView, query: AttentionQuery, *, may_download: bool) -> str:
    """The page: the state's day, the counts per stage, the filter form (GET), the sellers of the
    page with previous and next links, and the export (download permission)."""
    import dac7_view as view

    group = len(found.as_of) > 1 or any(op != "default" for op in found.as_of)
    body = [
        '<nav><a href="./">All years</a> <a href="board">Deadlines and statuses</a> <a href="runs">Runs in '
        "Airflow</a></nav>",
        "<h1>Due diligence: sellers that need attention</h1>",
        '<p class="muted">Sellers that lack an item (missing, or found invalid by a verification), whose request '
        "cycle is open, whose release is due, or whose pre-report notice is not sent yet: what they lack, the "
        "actions due and the next one with its date (PStTG §§ 17, 18, 22 and 23). Seller ids, items and dates only; "
        "a seller's due-diligence history is on its seller page, for users with the download permission.</p>",
        *view._problems(found.problems),
    ]
    if found.as_of:
        days = ", ".join(f"{escape(op)} {escape(d.isoformat())}" for op, d in found.as_of.items())
        body.append(
            f'<p id="attention-as-of">State as of each operator\'s latest daily run (the day its feed '
            f"<code>due_diligence/actions.jsonl</code> was written for): {days}. The cycle's days follow "
            f"{escape(found.note or '')}.</p>"
        )
    elif not found.problems:
        body.append(
            '<p id="attention-no-run">No daily due-diligence run is recorded in the ledger yet (the DAG '
            "<code>dac7_due_diligence</code>, or <code>dac7 due-diligence run</code>).</p>"
        )
    if found.counts is not None:
        body += _counts_section(found.counts, query)
    body.append(_filter_form(found, query, group))
    export = (
        f'<a id="attention-export" href="attention.csv?{escape(query.params(page=None))}">'
        f"Export these {found.total:,} seller(s) as CSV</a>"
        if may_download
        else f"CSV export: {view.NO_DOWNLOAD}"
    )
    body.append(f'<p id="attention-count"><b>{found.total:,}</b> seller(s) need attention. {export}</p>')
    pages = max(1, -(-found.total // PAGE_SIZE))
    page = min(max(query.page, 1), pages)
    first, shown = (page - 1) * PAGE_SIZE, len(found.rows)

    def pager(pid: str) -> list[str]:
        return view._pager(query, page, pages, first, shown, found.total, pid, base="attention", what="Sellers")

    body += pager("attention-pages")
    if found.rows:
        body += [_rows_table(found, group), *pager("attention-pages-bottom")]
    else:
        body.append('<p id="attention-none">No seller matches these filters.</p>')
    return view._page("DAC7 due diligence: needs attention", body)


def _counts_section(counts: Any, query: AttentionQuery) -> list[str]:
    import dac7_view as view

    which = " and ".join(
        w
        for w in (
            f"operator {escape(query.operator)}" if query.operator else "",
            f"country {escape(query.country)}" if query.country else "",
        )
        if w
    )
    cells = [
        ("In scope", counts.in_scope, "active in the period and not excluded"),
        ("Incomplete", counts.incomplete, "in scope, an item missing or invalid"),
        ("Requested", counts.requested, "a request sent, its second reminder not yet"),
        ("Reminded twice", counts.reminded_twice, "two reminders sent, no measure yet"),
        ("Blocked", counts.blocked, "under a measure: payouts withheld or the account closed"),
        ("Released", counts.released, "a measure lifted since (ever)"),
    ]
    return [
        f"<h2>Sellers per stage{' (' + which + ')' if which else ''}</h2>",
        view._table(
            [c[0] for c in cells],
            [[view._num(c[1]) for c in cells]],
            table_id="attention-stages",
            numeric=range(len(cells)),
        ),
        '<p class="muted">' + "; ".join(f"<b>{escape(n)}</b>: {escape(w)}" for n, _, w in cells) + ".</p>",
    ]


def _filter_form(found: AttentionView, query: AttentionQuery, group: bool) -> str:
    def select(name: str, label: str, options: Sequence[tuple[str, str]], current: str | None) -> str:
        opts = ['<option value="">all</option>'] + [
            f'<option value="{escape(v)}"{" selected" if v == current else ""}>{escape(text)}</option>'
            for v, text in options
        ]
        return f'<label>{label}<select name="{name}">{"".join(opts)}</select></label>'

    fields = []
    if group:
        fields.append(select("operator", "Operator", [(op, op) for op in found.as_of], query.operator))
    countries = sorted({*filter(is_country, found.countries), *([query.country] if query.country else [])})
    others = sorted(c for c in found.countries if not is_country(c))
    fields.append(select("country", "Country", [(c, c) for c in countries], query.country))
    fields.append(select("action", "Action due or next", [(a, ACTION_WORDS[a]) for a in ACTIONS], query.action))
    note = (
        f'<p class="muted" id="attention-other-countries">Not a two-letter country code, so not a filter: '
        f"{escape(', '.join(others))} (these sellers are listed under all countries).</p>"
        if others
        else ""
    )
    return (
        f'<form class="filter" id="attention-filters" method="get" action="attention">{"".join(fields)}'
        f'<button type="submit">Filter</button> <a href="attention">clear</a></form>{note}'
    )


def _rows_table(found: AttentionView, group: bool) -> str:
    import dac7_view as view

    heads = [
        *(["Operator"] if group else []),
        "Seller",
        "Country",
        "Lacks",
        "Request",
        "Reminders",
        "Measure",
        "Due on the state's day",
        "Next action",
    ]
    rows = []
    for a in found.rows:
        as_of = found.as_of[a.operator_id]
        v = row_values(a, as_of)
        lacks = ", ".join(v["items_missing"].split(";")) if v["items_missing"] else ""
        if v["items_invalid"]:
            lacks += ("; " if lacks else "") + "invalid: " + ", ".join(v["items_invalid"].split(";"))
        href = f"{a.period}/sellers/{quote(a.seller_id, safe='')}#due-diligence"
        due = "<br>".join(
            f'<span class="due">{escape(ACTION_WORDS.get(d.action, d.action))}</span> since '
            f'<span class="when">{escape(d.due_date.isoformat())}</span>, latest '
            f'<span class="when">{escape(d.latest_date.isoformat())}</span>'
            + (' <span class="status status-rejected">overdue</span>' if d.overdue else "")
            for d in a.due(as_of)
        )
        nxt = (
            f'{escape(ACTION_WORDS.get(v["next_action"], v["next_action"]))} <span class="when">'
            f"{escape(v['next_date'])}</span>"
            if v["next_action"]
            else '<span class="muted">none</span>'
        )
        rows.append(
            [
                *([escape(a.operator_id)] if group else []),
                f'<a class="seller" href="{escape(href)}">{view._id(a.seller_id)}</a>',
                escape(v["country"]),
                escape(lacks) or '<span class="muted">nothing</span>',
                (
                    f'<span class="when">{escape(v["requested_on"])}</span> '
                    + (f"(day {escape(v['day'])})" if v["day"] else "(after the run)")
                    + f'<br><span class="muted">{escape(", ".join(a.requested_items))}</span>'
                )
                if a.requested_on
                else "",
                "<br>".join(
                    f'<span class="when">{escape(x)}</span>' for x in (v["reminder_1_on"], v["reminder_2_on"]) if x
                ),
                f'{escape(v["measure"])} <span class="when">{escape(v["measure_on"])}</span>' if v["measure"] else "",
                due or '<span class="muted">nothing due</span>',
                nxt,
            ]
        )
    return view._table(heads, rows, table_id="attention")


# ============================================================================ the routes


def add_routes(app: Any, view_user: Any, may_download: Any, refused_detail: str) -> None:
    """The due-diligence desk's routes on the view's app (``dac7_plugin.create_app``):
    ``may_download(user)`` decides the export, ``refused_detail`` is what a refusal says."""
    from typing import Annotated

    import dac7_view as view
    from fastapi import HTTPException, Query, status
    from fastapi.responses import HTMLResponse, StreamingResponse

    Filter = Annotated[str | None, Query(max_length=40)]

    @app.get("/attention", response_class=HTMLResponse)
    def needs_attention(
        user: view_user,  # type: ignore[valid-type]
        operator: Filter = None,
        country: Filter = None,
        action: Filter = None,
        page: Filter = None,
    ) -> HTMLResponse:
        try:
            query = query_of(operator, country, action, page)
        except BadFilter as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        found = read_attention(view.sources(), query)
        return HTMLResponse(attention_page(found, query, may_download=may_download(user)))

    @app.get("/attention.csv")
    def needs_attention_csv(
        user: view_user,  # type: ignore[valid-type]
        operator: Filter = None,
        country: Filter = None,
        action: Filter = None,
    ) -> StreamingResponse:
        name = user.get_name()  # type: ignore[attr-defined]
        if not may_download(user):
            log.warning("DAC7 download refused: user %s may not export the due-diligence attention list", name)
            raise HTTPException(status.HTTP_403_FORBIDDEN, refused_detail)
        try:
            query = query_of(operator, country, action, None)
        except BadFilter as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        try:
            chunks = export_attention(view.sources(), query, name)
        except view.LedgerUnavailable as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        return StreamingResponse(
            chunks,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="dac7-due-diligence-attention.csv"'},
        )
