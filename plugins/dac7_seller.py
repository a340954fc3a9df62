"""The DAC7 view's seller page: one seller of a year, why they were or were not reported, their
figures per quarter, the authorities they were routed to and the filings that carried them
(``dac7_plugin.py`` serves it, behind Airflow's login, at ``<prefix>/<year>/sellers``).

Reading: the run published into ``<DAC7_OUT_DIR>/<year>/`` (its ``reports/decisions.parquet``
and ``reports/figures.parquet``, which hold no personal data), the run's staging extract for the
identity (``manifest.json``'s ``staging``: names, TINs, VAT, accounts, address, birth date), and
the filing ledger's records whose key is the seller id. Every read is filtered to one seller
(DuckDB over Parquet, SQL over the ledger: ``reporting.explain``), so a run of a million sellers
costs what a run of ten does; the search by the beginning of an id lists at most
:data:`SEARCH_LIMIT` sellers.

Showing: the helpers and style of ``dac7_view`` (every value escaped, no script, relative links).
The identity is masked (initials, the last three characters of an identifier, the countries)
unless the user has the download permission.

Airflow's plugin loader imports this module in every Airflow process: its top level imports the
standard library, ``dac7_view`` and ``reporting.vocabulary`` (the standard library only, both);
the rest of ``reporting`` is imported inside the functions that read, in the api-server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import dac7_view as view
from dac7_view import Sources, _id, _num, _page, _problems, _table

from reporting.vocabulary import PROD, TEST  # a leaf of the standard library

if TYPE_CHECKING:
    from reporting.explain import Identity, SellerFiling, SellerMatch, SellerReading

#: At most this many sellers are listed for the beginning of an id.
SEARCH_LIMIT = 50
QUARTERS = ("Q1", "Q2", "Q3", "Q4")
#: The record types of the ledger (``doc_type``), in the words of the DPI schema's DocTypeIndic.
DOC_TYPES = {"new": "new data", "correction": "correction", "deletion": "deletion", "resend": "resent"}
RECORD_STATUSES = {
    "sent": "in a published file; no status message from the authority for it yet",
    "accepted": "accepted by the authority",
    "rejected": "rejected by the authority: see its error codes",
    "superseded": "replaced by a later correction",
    "deleted": "deleted by a later deletion",
}
MASKED_NOTE = (
    "Masked: your Airflow login may see decisions and figures, but not personal data; that needs the "
    "'DAC7 downloads' permission (with Airflow's simple auth manager, the role op or admin)."
)
NO_STAGING = (
    "The run's staging data is no longer available (deleted by the housekeeping DAG after its retention "
    "period, or on a worker this api-server cannot read): the identity cannot be shown. The decision and "
    "the figures come from the published reports and stay."
)


# ============================================================================ reading


#: the environments the page may be asked for (``?environment=``), as the manifest names them
ENVIRONMENTS = (PROD, TEST)  # the production run first


@dataclass(frozen=True, slots=True)
class ShownRun:
    """The run whose seller reports the page reads: the latest production run of the year when
    there is one (as the year's page prefers it), else the latest test run; or the one asked for."""

    run_id: str
    environment: str  # "prod" or "test" (a preview is a test run)
    #: where its manifest and seller reports are, relative to the year's output: ``runs/<run>``,
    #: or ``None`` for the year's ``manifest.json`` and ``reports/``
    folder: str | None
    asked: bool = False  # the environment was asked for (``?environment=``)
    others: tuple[str, ...] = ()  # the other environments that have a run of the year


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    problem: str | None = None  # the query is not a seller id, or there is no run to search
    invalid: bool = False  # the query cannot be a seller id
    matches: tuple[SellerMatch, ...] = ()
    more: bool = False  # more sellers start with the query than are listed
    exact: bool = False  # a seller has exactly this id
    run: ShownRun | None = None


@dataclass(frozen=True, slots=True)
class Diligence:
    """A seller's due diligence as the ledger holds it: its state with each operator that has one,
    each state's history, the verification calls about the seller, the day each operator's state
    stands at, and the cycle's settings of each operator's latest run (for the next action)."""

    states: list[Any]  # reporting.due_diligence.SellerState
    history: dict[str, list[Any]]  # operator -> reporting.due_diligence.HistoryEvent, oldest first
    calls: list[Any]  # reporting.ledger.verifications.CallRecord, oldest first
    as_of: dict[str, date]
    settings: dict[str, Any]  # operator -> reporting.diligence_cycle.CycleSettings of its latest run


@dataclass(frozen=True, slots=True)
class SellerView:
    year: int
    seller_id: str
    reading: SellerReading | None  # None: not in the run (or no run)
    filings: list[SellerFiling]
    problems: list[str] = field(default_factory=list)
    has_run: bool = True
    run: ShownRun | None = None
    #: whether the ledger holds a due-diligence state of the seller (with any operator)
    diligence_exists: bool = False
    #: its content, read only for a user with the download permission
    diligence: Diligence | None = None


def shown_run(year_dir: Path, environment: str | None = None) -> tuple[ShownRun | None, str | None]:
    """The run the seller page and the search read (see :class:`ShownRun`), and a sentence when
    its seller reports cannot be read: a run kept before its seller reports were kept with it."""
    runs, _ = view.runs_of(year_dir)
    y = view.YearView(0, None, None, {}, runs=runs)
    asked = environment in ENVIRONMENTS
    run = y.latest(environment) if asked else (y.latest(PROD) or y.latest(TEST))
    if run is None:
        return None, None
    others = tuple(e for e in ENVIRONMENTS if e != run.environment and y.latest(e) is not None)
    latest = view._read_manifest(year_dir / "manifest.json") or {}
    kept = bool(run.folder) and (year_dir / run.folder / "reports" / "decisions.parquet").is_file()
    if kept:
        return ShownRun(run.run_id, run.environment, run.folder, asked, others), None
    shown = ShownRun(run.run_id, run.environment, None, asked, others)
    if str(latest.get("run_id", "")) == run.run_id:  # the year's latest run: its reports are the year's
        return shown, None
    return shown, (
        f"The seller reports of the {view.ENVIRONMENTS.get(run.environment, run.environment)} run {run.run_id} "
        "were not kept with it "
        "(it was published before they were): its sellers cannot be shown."
    )


def search(src: Sources, year: int, query: str, environment: str | None = None) -> SearchResult:
    """The sellers of the year's shown run (:func:`shown_run`) whose id is ``query`` or starts with it."""
    from reporting.errors import ReportingError
    from reporting.explain import find_sellers, seller_id_problem

    problem = seller_id_problem(query)
    if problem:
        return SearchResult(query, problem, invalid=True)
    year_dir = src.year_dir(year)
    if year_dir is None:
        return SearchResult(query, "No output directory is configured: the sellers of a run cannot be searched.")
    run, problem = shown_run(year_dir, environment)
    if run is None:
        return SearchResult(query, f"No run of {year} has published into the output directory yet.")
    if problem:
        return SearchResult(query, problem, run=run)
    try:
        matches, more = find_sellers(year_dir, query, year, SEARCH_LIMIT, run.folder)
    except (ReportingError, OSError):
        return SearchResult(query, f"No run of {year} has published into the output directory yet.")
    except Exception as exc:  # a damaged or partly written report file: say which, not a traceback
        return SearchResult(query, f"The run's decisions report cannot be read ({type(exc).__name__}).")
    exact = any(m.seller_id == query for m in matches)
    return SearchResult(query, matches=tuple(matches), more=more, exact=exact, run=run)


def seller_view(
    src: Sources, year: int, seller_id: str, environment: str | None = None, *, diligence: bool = False
) -> SellerView:
    """The seller in the year's shown run (:func:`shown_run`) and in the ledger; ``problems``
    says what could not be read. The due-diligence state: whether there is one, and with
    ``diligence`` (the download permission) its content (:class:`Diligence`)."""
    from reporting.errors import ReportingError
    from reporting.explain import read_seller, seller_filings

    problems: list[str] = []
    reading, has_run, run = None, True, None
    year_dir = src.year_dir(year)
    if year_dir is None:
        has_run = False
    else:
        run, problem = shown_run(year_dir, environment)
        try:
            if run is None:
                raise FileNotFoundError(year_dir / "manifest.json")
            if problem:
                has_run = False
                problems.append(problem)
            else:
                reading = read_seller(year_dir, seller_id, year, run.folder)
        except (ReportingError, OSError):
            has_run = False
            problems.append(f"No run of {year} has published into the output directory yet.")
        except Exception as exc:  # a damaged report file
            problems.append(f"The run's reports cannot be read ({type(exc).__name__}).")
    filings: list[SellerFiling] = []
    exists, found = False, None
    if src.ledger_url:
        try:
            filings = view._read_ledger(src.ledger_url, lambda ledger: seller_filings(ledger, seller_id, year))
            exists, found = view._read_ledger(
                src.ledger_url, lambda ledger: read_diligence(ledger, seller_id, diligence)
            )
        except view.LedgerUnavailable as exc:
            problems.append(str(exc))
    return SellerView(year, seller_id, reading, filings, [*src.problems, *problems], has_run, run, exists, found)


def read_diligence(ledger: Any, seller_id: str, content: bool) -> tuple[bool, Diligence | None]:
    """Whether the ledger holds a due-diligence state of the seller, and with ``content`` the
    state, its history and the verification calls (:class:`Diligence`)."""
    from dac7_attention import run_settings

    from reporting.due_diligence import last_run_dates, seller_history, seller_states
    from reporting.ledger.verifications import calls

    states = seller_states(ledger, seller_id)
    if not states or not content:
        return bool(states), None
    history = {s.operator_id: seller_history(ledger, seller_id, s.operator_id) for s in states}
    as_of = last_run_dates(ledger)
    settings, _ = run_settings(ledger, {*as_of, *(s.operator_id for s in states)})
    return True, Diligence(states, history, calls(ledger.engine, seller_id=seller_id), as_of, settings)


# ============================================================================ showing


def search_page(
    year: int, result: SearchResult | None, problems: Sequence[str] = (), run: ShownRun | None = None
) -> str:
    """The search form; with a query, the sellers whose id starts with it."""
    value = escape(result.query) if result else ""
    run = run or (result.run if result else None)
    hidden = f'<input type="hidden" name="environment" value="{escape(run.environment)}"> ' if run and run.asked else ""
    query = f"&q={quote(result.query, safe='')}" if result else ""
    body = [
        _nav(year, "./", ".."),
        f"<h1>Sellers of {year}</h1>",
        *_run_note(run, year, "sellers?", query.lstrip("&")),
        '<p class="muted">Find a seller of the shown run by their seller id (the <code>seller_id</code> of the '
        "marketplace's database): the exact id opens the seller; the beginning of an id lists the sellers whose "
        f"id starts with it (at most {SEARCH_LIMIT}).</p>",
        *_problems(problems),
        '<form id="seller-search" method="get" action="sellers" role="search">'
        '<label for="q">Seller id</label> '
        f'<input id="q" name="q" value="{value}" maxlength="200" required autofocus> '
        f"{hidden}"
        '<button type="submit">Find</button></form>',
    ]
    if result is not None:
        body += _search_result(result)
    return _page(f"Sellers of {year}", body)


def _search_result(result: SearchResult) -> list[str]:
    if result.problem:
        return [f'<p class="problem" id="search-problem">{escape(result.problem)}</p>']
    if not result.matches:
        return [
            f'<p id="search-none">No seller of this run has an id that is or starts with {_id(result.query)}. '
            "A seller with no transaction paid or credited in the year is not in the run.</p>"
        ]
    suffix = f"?environment={result.run.environment}" if result.run and result.run.asked else ""
    rows = [
        (
            f'<a href="{_seller_href(m.seller_id, "sellers/", suffix)}">{_id(m.seller_id)}</a>',
            escape(m.seller_type),
            escape(m.decision),
            escape(m.authorities.replace(";", ", ")) or '<span class="muted">none</span>',
        )
        for m in result.matches
    ]
    more = (
        f'<p class="muted" id="search-more">More than {SEARCH_LIMIT} sellers have an id that starts with '
        f"{_id(result.query)}: the first {SEARCH_LIMIT} are listed; type more of the id.</p>"
        if result.more
        else ""
    )
    return [
        f"<p>{_num(len(result.matches))}{'+' if result.more else ''} seller(s) found.</p>",
        _table(("Seller id", "Type", "Decision", "Reported to"), rows, table_id="search-results"),
        more,
    ]


def seller_page(sv: SellerView, *, may_see_personal_data: bool) -> str:
    """The seller's page; the identity masked without ``may_see_personal_data``."""
    body = [
        _nav(sv.year, "../", "../.."),
        f'<h1>Seller <span class="id">{escape(sv.seller_id)}</span>, DAC7 {sv.year}</h1>',
        *_run_note(sv.run, sv.year, quote(sv.seller_id, safe="") + "?", ""),
        *_problems(sv.problems),
    ]
    r = sv.reading
    if r is None:
        if sv.has_run:
            body.append(
                f'<p id="not-found">Seller {_id(sv.seller_id)} is not in the shown run of {sv.year}: no transaction '
                f"paid or credited in {sv.year}, or not a seller id of the marketplace's database. "
                f'<a href="../sellers">Search by the beginning of the id</a>.</p>'
            )
    else:
        body += [
            '<p class="contents">On this page: <a href="#decision">Decision</a> <a href="#identity">Identity</a> '
            '<a href="#reported">Figures as reported</a> <a href="#figures">Figures before rounding</a> '
            '<a href="#filings">Filings</a> <a href="#due-diligence">Due diligence</a></p>',
            *_decision_section(r),
            *_identity_section(r.identity, may_see_personal_data),
            *_reported_section(r),
            *_figures_section(r),
        ]
    body += _filings_section(sv)
    body += _diligence_section(sv, may_see_personal_data)
    return _page(f"Seller {sv.seller_id}, DAC7 {sv.year}", body)


def invalid_page(year: int, problem: str) -> str:
    return _page(
        f"Not a seller id, DAC7 {year}",
        [
            _nav(year, "../", "../.."),
            "<h1>Not a seller id</h1>",
            f'<p class="problem" id="bad-id">{escape(problem)}</p>',
        ],
    )


# -------------------------------------------------------------------------------------- sections


def _decision_section(r: SellerReading) -> list[str]:
    from reporting.explain import exchange_text

    d = r.decision
    facts = [
        ("Decision", f'<b id="decision-code">{escape(str(d["decision"]))}</b>'),
        ("Why", f'<span id="explanation">{escape(str(d["explanation"] or ""))}</span>'),
        ("Seller type", escape(str(d["seller_type"] or ""))),
        (
            "Reading of the rules",
            escape(str(d.get("reading_label") or "EU wording"))
            + ' <span class="muted">(the law of the state filed in)</span>',
        ),
        ("Residence", escape(f"{_list(d['residence_countries'])} ({d['residence_reasons'] or '-'})")),
        ("Reported to", f'<span id="authorities">{escape(_list(d["authorities"]) or "none")}</span>'),
        ("Forwarded by the filing state to", escape(exchange_text(d))),
        (
            "Transactions",
            escape(
                f"{d['transactions']} in the period, {d['refunded_transactions']} refunded by the as-of date, "
                f"{d['fully_refunded_transactions']} of them in full (not counted); {d['refunds_after_as_of']} "
                "refund(s) dated after the as-of date, not applied"
            ),
        ),
    ]
    if d["reported_currency"]:
        facts.append(
            ("Reported in", escape(str(d["reported_currency"]) + (" (converted to EUR)" if d["converted"] else "")))
        )
    if d["goods_activities"] or d["goods_eur"]:
        facts.append(
            (
                "Sales of goods",
                escape(f"{d['goods_activities']} counted, EUR {d['goods_eur'] or '0'} for the de minimis test"),
            )
        )
    if d["rates"] and d["rates"] != "[]":
        facts.append(("Exchange rates", escape(str(d["rates"]))))
    facts.append(
        (
            "Run",
            escape(f"{r.environment} run {r.run_id}, as of {r.as_of}"),
        )
    )
    return [
        '<h2 id="decision">Decision</h2>',
        '<p class="muted">What <code>dac7 explain</code> says for this seller, from the shown run of the year (the '
        "latest production run when there is one).</p>",
        _table(("", ""), facts, table_id="seller-facts", header=False),
    ]


def _identity_section(identity: Identity | None, show: bool) -> list[str]:
    out = ['<h2 id="identity">Identity</h2>']
    if identity is None:
        return [*out, f'<p class="muted" id="no-staging">{escape(NO_STAGING)}</p>']
    shown = identity if show else identity.mask()
    facts = [
        ("Name", escape(shown.name or "-")),
        ("Birth date", escape(shown.birth_date or "-")),
        ("TIN", escape(", ".join(f"{tin or '-'} ({country})" for tin, country in shown.tins) or "none")),
        ("VAT number", escape(shown.vat or "none")),
        ("Financial accounts", escape(", ".join(shown.accounts) or "none")),
        ("Address", escape(shown.address or "-")),
    ]
    note = (
        f'<p class="muted" id="identity-masked">{escape(MASKED_NOTE)}</p>'
        if not show
        else '<p class="muted" id="identity-shown">Personal data from the run\'s staging extract, shown because your '
        "login has the DAC7 downloads permission: do not copy it elsewhere.</p>"
    )
    return [*out, note, _table(("", ""), facts, table_id="identity-facts", header=False)]


def _reported_section(r: SellerReading) -> list[str]:
    reported = r.reported
    out = [
        '<h2 id="reported">Figures as reported</h2>',
        '<p class="muted">Per activity (and property listing) and quarter, as the XML reports them: whole units, '
        "rounded half up once per figure.</p>",
    ]
    if not reported:
        return [*out, '<p id="reported-none">Nothing of this seller is reported in this run.</p>']
    labels = (
        ("Consideration", "consideration"),
        ("Number of activities", "activities"),
        ("Fees", "fees"),
        ("Taxes", "taxes"),
    )
    rows = []
    for g in reported:
        for label, name in labels:
            values: tuple[int, int, int, int] = getattr(g, name)
            rows.append(
                (
                    escape(g.activity),
                    escape(g.listing_id or ""),
                    escape(g.currency if name != "activities" else ""),
                    escape(label),
                    *(_num(v) for v in values),
                    _num(sum(values)),
                )
            )
    return [
        *out,
        _table(
            ("Activity", "Listing", "Currency", "Figure", *QUARTERS, "Year"),
            rows,
            table_id="reported-figures",
            numeric=(4, 5, 6, 7, 8),
        ),
    ]


def _figures_section(r: SellerReading) -> list[str]:
    from reporting.explain import units

    rows = [
        (
            escape(str(f["activity"])),
            escape(str(f["listing_id"] or "")),
            f"Q{int(f['quarter'])}",
            escape(str(f["currency"])),
            _num(f["transactions"]),
            _num(f["refunded_transactions"]),
            _num(f["counted_activities"]),
            escape(units(int(f["consideration_minor"]), str(f["currency"]))),
            escape(units(int(f["fee_minor"]), str(f["currency"]))),
            escape(units(int(f["tax_minor"]), str(f["currency"]))),
            escape(str(f["row_decision"])),
        )
        for f in r.figures
    ]
    return [
        '<h2 id="figures">Figures before rounding</h2>',
        '<p class="muted">Per activity, listing, quarter and currency of payment: amounts in the original currency, '
        "after the refunds up to the as-of date; the last column says whether the row is reported and, if not, "
        "why.</p>",
        _table(
            (
                "Activity",
                "Listing",
                "Quarter",
                "Currency",
                "Transactions",
                "Refunded",
                "Counted",
                "Consideration",
                "Fees",
                "Taxes",
                "Row",
            ),
            rows,
            table_id="figures",
            numeric=(4, 5, 6, 7, 8, 9),
        )
        if rows
        else "<p>No figure.</p>",
    ]


def _code_meaning(code: str, authority: str) -> str:
    """An error code with its published meaning ("code N: no published meaning" without one)."""
    from reporting.error_codes import meaning

    return meaning(code, authority).text()


def _filings_section(sv: SellerView) -> list[str]:
    out = [
        '<h2 id="filings">Filings that carried this seller</h2>',
        f'<p class="muted">Every record of the filing ledger for this seller in {sv.year}, oldest first, in every '
        "environment; each message's row on the year's page has its file.</p>",
    ]
    if not sv.filings:
        return [*out, '<p id="filings-none">No filing of this year carried this seller.</p>']
    rows = [
        (
            f"{_id(f.message_ref_id)}<br>{view._message_type(f.message_type_indic)}",
            f'{escape(f.authority)}<br><span class="muted">{escape(f.environment)}</span>',
            f'{escape(f.doc_type_indic)} <span class="muted">({escape(DOC_TYPES.get(f.doc_type, f.doc_type))})</span>'
            f"<br>{_doc_ref(f)}",
            f'<span class="status status-{escape(f.record_status)}" '
            f'title="{escape(RECORD_STATUSES.get(f.record_status, ""))}">{escape(f.record_status)}</span>'
            + "".join(f"<br>{escape(_code_meaning(c, f.authority))}" for c in f.error_codes),
            f'<span class="status status-{escape(f.message_status)}" '
            f'title="{escape(view.STATUSES.get(f.message_status, ""))}">{escape(f.message_status)}</span>',
            f'<span class="when">{escape(view._utc(f.published))}</span>'
            if f.published
            else '<span class="muted">not published</span>',
            f'<a href="{escape(_year_href(f.authority))}">year page</a>',
        )
        for f in sv.filings
    ]
    return [
        *out,
        _table(
            (
                "Message",
                "Authority",
                "Record (DocTypeIndic, DocRefId)",
                "Record status",
                "Message status",
                "Published (UTC)",
                "File",
            ),
            rows,
            table_id="seller-filings",
        ),
    ]


DILIGENCE_HIDDEN = (
    "This seller has a due-diligence history in the ledger (its data items, requests, reminders, measures and "
    "verifications). Seeing it needs the 'DAC7 downloads' permission (with Airflow's simple auth manager, the role "
    "op or admin)."
)
EVENT_WORDS = {
    "scope": "scope",
    "items": "item states",
    "verification": "verification",
    "data_received": "requested data received",
    "cycle_closed": "cycle closed",
    "pre_report_notice": "pre-report notice sent",
    "request": "request sent",
    "reminder_1": "first reminder sent",
    "reminder_2": "second reminder sent",
    "withhold_payouts": "payouts withheld",
    "close_account": "account closed",
    "release": "released",
}


def _diligence_section(sv: SellerView, show: bool) -> list[str]:
    """The seller's due diligence: with the download permission its state with each operator
    (scope, each item's state, the cycle and the next action), its history and the verification
    calls with their evidence; without it, only that there is one."""
    out = [
        '<h2 id="due-diligence">Due diligence</h2>',
        '<p class="muted">What the daily due-diligence run keeps of this seller, in every period: each data item\'s '
        "state, the requests, reminders and measures the platform reported sent, and each verification with its "
        "evidence (PStTG §§ 17, 18, 23 and 24).</p>",
    ]
    if not sv.diligence_exists:
        return [*out, '<p id="due-diligence-none">The ledger holds no due-diligence state of this seller.</p>']
    if not show or sv.diligence is None:
        return [*out, f'<p class="muted" id="due-diligence-hidden">{escape(DILIGENCE_HIDDEN)}</p>']
    d = sv.diligence
    for state in d.states:
        out += _diligence_state(state, d)
    out += _verification_calls(d.calls)
    return out


def _diligence_state(state: Any, d: Diligence) -> list[str]:
    from reporting.diligence_cycle import next_action

    op, c = state.operator_id, state.cycle
    as_of = d.as_of.get(op)
    nxt = next_action(c, d.settings[op], as_of) if as_of else None
    words = {
        "pre_report_notice": "pre-report notice",
        "reminder_1": "first reminder",
        "reminder_2": "second reminder",
    }
    facts = [
        ("Scope", escape(f"{state.scope} (period {state.period})")),
        (
            "Next action",
            escape(f"{words.get(nxt[0], nxt[0]).replace('_', ' ')} from {nxt[1]}") if nxt else "none",
        ),
        ("State as of", escape(f"the daily run of {as_of}") if as_of else "no daily run recorded"),
        (
            "Pre-report notice",
            escape(f"sent {c.notice_on}" if c.notice_on else (f"due since {c.notice_due}" if c.notice_due else "-")),
        ),
        (
            "Request",
            escape(
                f"sent {c.requested_on} for {', '.join(c.requested_items) or '-'}"
                if c.requested_on
                else (f"due since {c.request_due}" if c.request_due else "-")
            ),
        ),
        (
            "Reminders",
            escape(
                ", ".join(f"{n} {day}" for n, day in (("first", c.reminder_1_on), ("second", c.reminder_2_on)) if day)
                or "-"
            ),
        ),
        ("Measure", escape(f"{c.measure} since {c.measure_on}" if c.measure_on else "-")),
        ("Release", escape(f"due since {c.release_due}" if c.release_due else "-")),
        ("Cycles closed", _num(c.cycles)),
        ("First seen, last change", escape(f"{state.first_seen}, {state.updated}")),
    ]
    items = [
        (
            escape(item),
            f'<span class="dd-{escape(s)}">{escape(s.replace("_", " "))}</span>',
            escape(str(state.checked.get(item) or "")),
        )
        for item, s in state.items.items()
    ]
    history = [
        (
            f'<span class="when">{escape(view._utc(e.at))}</span>',
            escape(EVENT_WORDS.get(e.kind, e.kind)),
            escape(event_text(e.kind, e.detail)),
            escape(e.source),
            f'<span class="when">{escape(view._utc(e.recorded))}</span>',
        )
        for e in d.history.get(op, [])
    ]
    return [
        f'<h3 id="due-diligence-{escape(op)}">With operator {_id(op)}</h3>',
        _table(("", ""), facts, table_id=f"dd-facts-{op}", header=False),
        _table(("Item", "State", "Verified or found invalid on"), items, table_id=f"dd-items-{op}"),
        _table(("When (UTC)", "What", "Detail", "Source", "Recorded (UTC)"), history, table_id=f"dd-history-{op}")
        if history
        else "<p>No event recorded.</p>",
    ]


def event_text(kind: str, detail: dict[str, Any]) -> str:
    """An event's detail in words: items with their states before and after, the scope, the days
    and items of a request, the platform's reference (the history holds no value of an item)."""
    import json

    def was(value: Any) -> str:
        return str(value) if value else "none"

    if kind == "items":
        parts = [f"{i}: {was(b)} -> {a}" for i, (b, a) in (detail.get("changed") or {}).items()]
        if detail.get("expired"):
            parts.append("verification ran out: " + ", ".join(detail["expired"]))
        if "scope" in detail:
            parts.append(f"scope: {was(detail.get('was'))} -> {detail['scope']} (period {detail.get('period')})")
        return "; ".join(parts)
    if kind == "scope":
        return f"{was(detail.get('was'))} -> {detail.get('scope')} (period {detail.get('period')})"
    if kind == "verification":
        return f"{detail.get('item')}: {was(detail.get('was'))} -> {detail.get('state')}"
    if kind in ("data_received", "cycle_closed"):
        return f"request of {detail.get('requested_on')}: {', '.join(detail.get('items') or [])}"
    if kind in EVENT_WORDS:
        parts = [f"on {detail['on']}"] if detail.get("on") else []
        if detail.get("items"):
            parts.append("items " + ", ".join(detail["items"]))
        if detail.get("requested_on"):
            parts.append(f"request of {detail['requested_on']}")
        if detail.get("measure"):
            parts.append(f"lifts {detail['measure']}")
        if detail.get("reference"):
            parts.append(f"reference {detail['reference']}")
        return "; ".join(parts)
    return json.dumps(detail, sort_keys=True)


def _verification_calls(calls: list[Any]) -> list[str]:
    out = [
        '<h3 id="verifications">Verification calls</h3>',
        '<p class="muted">Each check of the seller\'s TINs and VAT numbers by a verification adapter (python-stdnum, '
        "VIES, TIN on the Web), as recorded when it was answered: the identifier masked to its last characters, "
        "the service's answer, and VIES's consultation number as evidence.</p>",
    ]
    if not calls:
        return [*out, '<p id="verifications-none">No verification call is recorded for this seller.</p>']
    rows = [
        (
            f'<span class="when">{escape(view._utc(c.at))}</span>',
            escape(c.adapter),
            escape(f"{c.kind} {c.country}"),
            _id(c.identifier_masked),
            _num(c.attempt),
            escape(c.outcome),
            escape(c.detail or ""),
            _id(c.evidence or ""),
            escape(c.source),
        )
        for c in calls
    ]
    return [
        *out,
        _table(
            (
                "When (UTC)",
                "Adapter",
                "Kind, country",
                "Identifier (masked)",
                "Attempt",
                "Outcome",
                "Answer",
                "Consultation number",
                "Service",
            ),
            rows,
            table_id="dd-verifications",
            numeric=(4,),
        ),
    ]


# -------------------------------------------------------------------------------------- helpers


def _nav(year: int, year_href: str, index_href: str) -> str:
    return (
        f'<nav><a href="{escape(index_href)}/">All years</a> <a href="{escape(year_href)}">DAC7 {year}</a> '
        f'<a href="{escape(year_href)}sellers">Find a seller</a></nav>'
    )


def _seller_href(seller_id: str, base: str, suffix: str = "") -> str:
    """The link to a seller's page: the id quoted whole (a ``/`` in it too), so that the page's
    own relative links resolve from ``<year>/sellers/`` whatever the id holds."""
    return escape(base + quote(seller_id, safe="") + suffix)


def _run_note(run: ShownRun | None, year: int, base: str, query: str) -> list[str]:
    """Which run the page shows, and links to the latest run of the other environment: ``base``
    is the page's own link (ending in ``?``), ``query`` its other parameters."""
    if run is None:
        return []
    which = f"the latest {view.ENVIRONMENTS.get(run.environment, run.environment)} run of {year}"
    links = []
    for env in run.others:
        params = "&".join(p for p in (query, "" if env == PROD else f"environment={env}") if p)
        href = base + params if params else base.rstrip("?") or "./"
        links.append(f'<a id="run-{env}" href="{escape(href)}">the latest {view.ENVIRONMENTS.get(env, env)} run</a>')
    other = f" See {' or '.join(links)}." if links else ""
    return [
        f'<p id="shown-run" data-environment="{escape(run.environment)}">Shown: {escape(which)}, '
        f"run {_id(run.run_id)}.{other}</p>"
    ]


def _year_href(authority: str) -> str:
    return f"../?authority={quote(authority)}#authority-{quote(authority)}"


def _doc_ref(f: SellerFiling) -> str:
    """The record's DocRefId, and the one it corrects or deletes."""
    if not f.corr_doc_ref_id:
        return _id(f.doc_ref_id)
    return f'{_id(f.doc_ref_id)}<br><span class="muted">corrects</span> {_id(f.corr_doc_ref_id)}'


def _list(value: object) -> str:
    return ", ".join(c for c in str(value or "").split(";") if c)


def canonical_href(raw_path: bytes, seller_id: str, environment: str | None = None) -> str | None:
    """The relative link that the seller page at ``raw_path`` (the address as sent, before any
    decoding) should be reached by, when the address holds a ``/`` of the seller id unquoted
    (``sellers/A/1`` for the id ``A/1``): the page's relative links resolve from its address, so
    the id must be one segment (``sellers/A%2F1``). ``None`` when the address is that already."""
    from urllib.parse import unquote

    path = raw_path.decode("latin-1")
    segments = path.split("/")
    for start in range(len(segments) - 1, -1, -1):  # the shortest tail that decodes to the id
        tail = "/".join(segments[start:])
        if unquote(tail) == seller_id:
            break
    else:
        return None
    if "/" not in tail:
        return None
    suffix = f"?environment={environment}" if environment in ENVIRONMENTS else ""
    return "../" * tail.count("/") + quote(seller_id, safe="") + suffix
