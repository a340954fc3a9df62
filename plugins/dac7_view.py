"""The DAC7 view's content: what it reads from the filing ledger and the published output, and
the HTML pages it shows (``dac7_plugin.py`` serves them, behind Airflow's login).

Reading: the ledger gives every message filed (its MessageTypeIndic, its records, its status from
the authorities' status messages); ``<DAC7_OUT_DIR>/<year>/`` holds the latest run of a year:
``manifest.json``, one XML file per message and the ``reports/``. They are found as the DAG's
tasks find them: the ledger at ``$DAC7_LEDGER_URL``, else at ``[ledger] url`` of the configuration
named by ``$DAC7_CONFIG``; the output under ``$DAC7_OUT_DIR``. The view never guesses another
place (the CLI's fallback, a file in the working directory, means nothing for the api-server).

Showing: server-rendered pages, every value escaped with ``html.escape``. They show ids, codes,
counts and seller ids, never a name, TIN, IBAN or birth date; the files they link to (the XML
messages, the reports) hold personal data. Links are relative, so the pages work under any mount
point: the index is ``<prefix>/``, a year ``<prefix>/<year>/``, its files
``<prefix>/<year>/files/<path>`` (only those :func:`published_file` allows).

Airflow's plugin loader imports this module in every Airflow process (it imports every ``.py``
file of the plugins folder): its top level imports the standard library only; ``reporting``
(which loads lxml and pyarrow) is imported inside the functions that read, in the api-server.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

if TYPE_CHECKING:
    from datetime import datetime

    from reporting.ledger import Ledger, MessageInfo

T = TypeVar("T")

# ============================================================================ reading

#: How the ledger names a record's kind, and how the DPI schema does.
RECORD_KINDS = {
    "platform_operator": "PlatformOperator",
    "other_platform_operators": "OtherPlatformOperators",
    "seller": "ReportableSeller",
}


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the view reads; ``problems`` says what is missing, in words for the page."""

    ledger_url: str | None
    out_root: Path | None
    problems: tuple[str, ...] = ()

    def year_dir(self, year: int) -> Path | None:
        return self.out_root / str(year) if self.out_root else None


@dataclass(frozen=True, slots=True)
class Filing:
    """One message of the ledger, with what its records are and what the authority said."""

    message_ref_id: str
    environment: str
    authority: str
    message_type_indic: str
    sellers: int
    record_kinds: tuple[tuple[str, int], ...]  # ("ReportableSeller new (OECD11)", 15), ...
    record_statuses: tuple[tuple[str, int], ...]  # ("sent", 16), ...
    status: str
    created: str
    published: str
    rejected_sellers: tuple[str, ...]  # seller ids of rejected records
    error_codes: tuple[str, ...]  # the authority's file and record error codes
    file: str  # the file name the ledger recorded, relative to the year's output


@dataclass(frozen=True, slots=True)
class YearOverview:
    year: int
    messages: int
    authorities: tuple[str, ...]
    statuses: tuple[tuple[str, int], ...]
    has_run: bool


@dataclass(frozen=True, slots=True)
class YearView:
    year: int
    manifest: dict[str, Any] | None
    summary_text: str | None
    filings: dict[str, list[Filing]]  # per authority, each oldest first
    problems: list[str] = field(default_factory=list)

    @property
    def authorities(self) -> list[str]:
        files = self.manifest["files"] if self.manifest else []
        return sorted(set(self.filings) | {f["authority"] for f in files})


def sources(env: Mapping[str, str] | None = None) -> Sources:
    """The ledger URL and output directory from the environment the DAG's tasks also read."""
    env = os.environ if env is None else env
    problems: list[str] = []
    url = env.get("DAC7_LEDGER_URL") or None
    if url is None and env.get("DAC7_LEDGER_CONN_ID"):
        try:
            url = ledger_from_connection(env["DAC7_LEDGER_CONN_ID"])
        except Exception as exc:  # not found, a secrets backend down, an unknown type: no secret in it
            problems.append(
                f"The ledger's Airflow Connection {env['DAC7_LEDGER_CONN_ID']!r} (DAC7_LEDGER_CONN_ID) cannot be "
                f"read: {type(exc).__name__}{': ' + str(exc) if type(exc).__name__ == 'ConfigError' else ''}"
            )
    if url is None and not problems and env.get("DAC7_CONFIG"):
        from reporting.config import load_config
        from reporting.errors import ReportingError

        try:
            url = load_config(env["DAC7_CONFIG"]).ledger
        except (ReportingError, OSError) as exc:
            problems.append(f"The configuration named by DAC7_CONFIG cannot be read: {exc}")
    if url is None and not problems:
        problems.append(
            "No ledger is configured: set DAC7_LEDGER_URL or DAC7_LEDGER_CONN_ID (an Airflow Connection), "
            "or [ledger] url in the configuration named by DAC7_CONFIG, in the api-server's environment."
        )
    out = env.get("DAC7_OUT_DIR") or None
    if out is None:
        problems.append("No output directory is configured: set DAC7_OUT_DIR in the api-server's environment.")
    return Sources(ledger_url=url, out_root=Path(out) if out else None, problems=tuple(problems))


def ledger_from_connection(conn_id: str) -> str:
    """The ledger's SQLAlchemy URL from an Airflow Connection, read as the api-server reads
    Connections (environment ``AIRFLOW_CONN_*``, secrets backends, the metadata database)."""
    from airflow.models.connection import Connection

    from reporting.connections import sqlalchemy_url

    return sqlalchemy_url(Connection.get_connection_from_secrets(conn_id))


def overview(src: Sources) -> tuple[list[YearOverview], list[str]]:
    """Every year with filings in the ledger or a run in the output, newest first."""
    problems: list[str] = []
    messages: list[MessageInfo] = []
    if src.ledger_url:
        try:
            messages = _read_ledger(src.ledger_url, lambda ledger: ledger.messages())
        except LedgerUnavailable as exc:
            problems.append(str(exc))
    runs = set()
    if src.out_root and src.out_root.is_dir():
        runs = {int(p.name) for p in src.out_root.iterdir() if p.name.isdigit() and (p / "manifest.json").is_file()}
    years = sorted({m.reporting_year for m in messages} | runs, reverse=True)
    result = []
    for year in years:
        of_year = [m for m in messages if m.reporting_year == year]
        result.append(
            YearOverview(
                year=year,
                messages=len(of_year),
                authorities=tuple(sorted({m.authority for m in of_year})),
                statuses=tuple(sorted(Counter(m.status for m in of_year).items())),
                has_run=year in runs,
            )
        )
    return result, problems


def year_view(src: Sources, year: int) -> YearView:
    """The latest run of ``year`` (its manifest and summary) and every filing of it in the ledger."""
    problems: list[str] = []
    manifest, summary = None, None
    year_dir = src.year_dir(year)
    if year_dir is not None:
        try:
            manifest, summary = _latest_run(year_dir)
        except FileNotFoundError:
            problems.append(f"No run of {year} has published into the output directory yet.")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"The manifest of {year} cannot be read ({type(exc).__name__}).")
    filings: dict[str, list[Filing]] = {}
    if src.ledger_url:
        try:
            for filing in _read_ledger(src.ledger_url, lambda ledger: _filings(ledger, year)):
                filings.setdefault(filing.authority, []).append(filing)
        except LedgerUnavailable as exc:
            problems.append(str(exc))
    return YearView(year=year, manifest=manifest, summary_text=summary, filings=filings, problems=problems)


def latest_manifest(year_dir: Path) -> dict[str, Any] | None:
    """The manifest of the latest run published into ``year_dir``; ``None`` when there is none."""
    from reporting.pipeline import load_manifest

    try:
        result = load_manifest(year_dir)
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def published_file(year_dir: Path, manifest: Mapping[str, Any], relative: str) -> Path | None:
    """The file at ``relative`` in a year's output, if the view may serve it: a file that the
    manifest lists (the XML files and reports), or any file under the ``reports/`` directory (the
    Data Docs pages and their assets). ``None`` for anything else, for a path with an empty,
    ``.`` or ``..`` segment, and for a path that leaves those places through a symbolic link."""
    segments = relative.split("/")
    if any(s in ("", ".", "..") for s in segments) or "\\" in relative or "\x00" in relative:
        return None
    listed = (
        {f.get("file") for f in manifest.get("files", [])}
        | {f.get("file") for f in manifest.get("published_files", [])}  # earlier runs' files, from the ledger
        | set(manifest.get("reports", []))
    )
    if relative in listed:
        root = year_dir
    elif segments[0] == "reports" and len(segments) > 1:
        root = year_dir / "reports"
    else:
        return None
    target = (year_dir / relative).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_file():
        return None
    return target


# ------------------------------------------------------------------------------------ internals


class LedgerUnavailable(Exception):
    """The ledger cannot be read; the message is for the page (never with a password)."""


def _read_ledger(url: str, read: Callable[[Ledger], T]) -> T:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from reporting.errors import ReportingError
    from reporting.ledger import open_ledger
    from reporting.source import safe_url

    try:
        make_url(url)
        shown = safe_url(url)  # the password and any secret query parameter masked
    except Exception:  # a URL SQLAlchemy cannot parse: say so without echoing it
        raise LedgerUnavailable("The ledger URL is not a database URL.") from None
    try:
        with open_ledger(url, create=False) as ledger:
            return read(ledger)
    except (ReportingError, SQLAlchemyError, OSError) as exc:
        raise LedgerUnavailable(f"The ledger at {shown} cannot be read: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _latest_run(year_dir: Path) -> tuple[dict[str, Any], str]:
    from reporting.pipeline import load_manifest, summary_table

    manifest = load_manifest(year_dir)
    return manifest, summary_table(manifest)


def _filings(ledger: Ledger, year: int) -> list[Filing]:
    result = []
    for m in ledger.messages(year=year):
        records = ledger.records(m.message_ref_id)
        errors = ledger.errors(m.message_ref_id) if m.errors else []
        kinds = Counter(f"{RECORD_KINDS.get(r.kind, r.kind)} {r.doc_type} ({r.doc_type_indic})" for r in records)
        result.append(
            Filing(
                message_ref_id=m.message_ref_id,
                environment=m.environment,
                authority=m.authority,
                message_type_indic=m.message_type_indic,
                sellers=m.sellers,
                record_kinds=tuple(kinds.items()),
                record_statuses=tuple(sorted(Counter(r.status for r in records).items())),
                status=m.status,
                created=_utc(m.created),
                published=_utc(m.published),
                rejected_sellers=tuple(
                    sorted({r.seller_key for r in records if r.status == "rejected" and r.seller_key})
                ),
                error_codes=tuple(sorted({e.code for e in errors})),
                file=m.file_name,
            )
        )
    return result


def _utc(at: datetime | None) -> str:
    """The ledger's naive UTC timestamps, to the minute."""
    return f"{at:%Y-%m-%d %H:%M}" if at else ""


# ============================================================================ showing

MESSAGE_TYPES = {
    "DPI401": "new information",
    "DPI402": "corrections and deletions",
    "DPI403": "no data to report (nil)",
}
STATUSES = {
    "rendered": "rendered, not published yet (a run stopped between render and publish)",
    "published": "published: the file is ready to send; no status message from the authority yet",
    "accepted": "accepted by the authority",
    "rejected": "rejected by the authority (in whole or in part: see its feedback)",
    "discarded": "discarded: rendered by a run that never published it; never sent",
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem 2rem;color:#1a202c;
line-height:1.4}
h1{font-size:1.6rem;margin:.2rem 0 .6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #cbd5e0;
padding-bottom:.2rem}h3{font-size:1.05rem;margin:1.4rem 0 .4rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.92em}
th,td{border:1px solid #cbd5e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#edf2f7;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.id{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}
.muted{color:#4a5568}.problem{background:#fff5f5;border:1px solid #feb2b2;padding:.5rem .8rem;margin:.5rem 0}
.status{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.85em;background:#e2e8f0}
.status-accepted{background:#c6f6d5}.status-rejected{background:#fed7d7}.status-published{background:#bee3f8}
.status-discarded,.status-rendered{background:#fefcbf}
.when{white-space:nowrap}
nav a,.filter a,.contents a{margin-right:.6rem}.filter .current{font-weight:700}
pre{background:#f7fafc;border:1px solid #e2e8f0;padding:.6rem;overflow-x:auto;font-size:.85em}
"""


def index_page(years: Sequence[YearOverview], problems: Sequence[str]) -> str:
    rows = [
        (
            _link(f"{y.year}/", str(y.year)),
            _num(y.messages),
            escape(", ".join(y.authorities)) or "none",
            _counts((s, n) for s, n in y.statuses) or "none",
            "yes" if y.has_run else "no",
        )
        for y in years
    ]
    body = [
        "<h1>DAC7 filings</h1>",
        '<p class="muted">The messages filed with each tax authority, their status from the authorities\' '
        "status messages, and the files and reports of each year's latest run.</p>",
        *_problems(problems),
        _table(
            ("Reporting year", "Messages in the ledger", "Authorities", "Message status", "Latest run published"),
            rows,
            table_id="years",
            numeric=(1,),
        )
        if rows
        else "<p>Nothing was filed or published yet.</p>",
    ]
    return _page("DAC7 filings", body)


def year_page(view: YearView, authority: str | None, *, may_download: bool = True) -> str:
    """The year's page. Without ``may_download`` the statuses and counts are all there, and the
    links to filings and seller-level reports are replaced by a word on the permission."""
    token = _MAY_DOWNLOAD.set(may_download)
    try:
        return _year_page(view, authority)
    finally:
        _MAY_DOWNLOAD.reset(token)


#: whether the page being built may link downloads (set by :func:`year_page` for its call only;
#: a context variable: requests served at once in other threads each see their own)
_MAY_DOWNLOAD: ContextVar[bool] = ContextVar("dac7_may_download", default=True)
NO_DOWNLOAD = '<span class="muted" title="needs the DAC7 download permission">no download permission</span>'


def _year_page(view: YearView, authority: str | None) -> str:
    m = view.manifest
    body = [
        '<nav><a href="../">All years</a></nav>',
        f"<h1>DAC7 {view.year}</h1>",
        *_problems(view.problems),
        _authority_filter(view.authorities, authority),
        '<p class="contents">On this page: <a href="#ledger">Filings in the ledger</a> '
        '<a href="#run">Latest run</a> <a href="#files">Files</a> <a href="#due-diligence">Due diligence</a></p>',
        *_ledger_section(view, authority, m),
    ]
    if m is not None:
        body += _run_section(m, view.summary_text or "")
        body += _files_section(m, authority)
        body += _due_diligence_section(m)
    return _page(f"DAC7 {view.year}", body)


def error_page(status: int, title: str, text: str, login_url: str | None = None) -> str:
    body = [f"<h1>{escape(title)}</h1>", f"<p>{escape(text)}</p>"]
    if login_url:
        body.append(f'<p><a href="{escape(login_url)}">Log in to Airflow</a></p>')
    return _page(f"{status} {title}", body)


# -------------------------------------------------------------------------------------- sections


def _run_section(m: dict[str, Any], summary: str) -> list[str]:
    s = m.get("summary", {})
    files = m.get("files", [])
    facts = [
        ("Environment", escape(str(m.get("environment", "")))),
        ("As of", escape(str(m.get("as_of", "")))),
        ("Run id", f'<span class="id">{escape(str(m.get("run_id", "")))}</span>'),
        ("Run timestamp (UTC)", escape(str(m.get("timestamp_utc", ""))[:19].replace("T", " "))),
        ("Routing", escape(str(m.get("routing", "")))),
        (
            "Filed in" if not m.get("preview") else "Preview of what each state receives from",
            escape(str(m.get("filing_state", ""))),
        ),
        ("Reading of the rules", escape(str((m.get("reading") or {}).get("label", "")))),
        ("Sellers read", _num(s.get("sellers_read"))),
        ("Transactions read", _num(s.get("transactions_read"))),
        ("Reportable sellers", _num(s.get("reportable"))),
        ("Files", _num(len(files))),
        ("Sellers in the files", _num(sum(f.get("sellers", 0) for f in files))),
    ]
    decisions = [(escape(k), _num(n)) for k, n in sorted(s.get("decisions", {}).items())]
    out = [
        '<h2 id="run">Latest run</h2>',
        *_report_links(m),
        _table(("", ""), facts, table_id="run-facts", header=False),
        "<h3>Decisions per seller</h3>",
        _table(("Decision", "Sellers"), decisions, table_id="decisions", numeric=(1,)),
    ]
    for d in m.get("discarded", []):
        out.append(
            f'<p class="problem">Discarded {_id(d.get("message_ref_id"))} ({escape(str(d.get("authority")))}) '
            f"of run {_id(d.get('run_id'))}: rendered, never published.</p>"
        )
    out.append(
        "<details><summary>The run summary as <code>dac7 summary</code> prints it</summary>"
        f'<pre id="summary">{escape(summary)}</pre></details>'
    )
    return out


#: The reports of a run for people, linked at the top of its section: (path, id, text).
REPORT_LINKS = (
    ("reports/run_summary.html", "run-summary-report", "Run summary (charts)"),
    ("reports/due_diligence.html", "run-due-diligence-report", "Due-diligence report"),
)


def _report_links(m: dict[str, Any]) -> list[str]:
    """Links to the run's summary page (figures and charts) and due-diligence report, those the
    manifest lists (an older run has no summary page)."""
    listed = set(m.get("reports", []))
    links = [
        f'<a id="{i}" href="{_file_href(p)}">{escape(t)}</a>'
        if _MAY_DOWNLOAD.get() or p == "reports/run_summary.html"
        else f"{escape(t)} ({NO_DOWNLOAD})"
        for p, i, t in REPORT_LINKS
        if p in listed
    ]
    return [f'<p class="contents" id="run-reports">Reports: {" ".join(links)}</p>'] if links else []


def _due_diligence_section(m: dict[str, Any]) -> list[str]:
    dd = m.get("due_diligence")
    out = ['<h2 id="due-diligence">Due diligence</h2>']
    if not dd:
        return [*out, "<p>This run found nothing that needs action.</p>"]
    report = "reports/due_diligence.html"
    link = (
        f' <a id="due-diligence-report" href="{_file_href(report)}">Open the due-diligence report</a> '
        "(it lists the sellers and what to do; identifiers are masked).</p>"
        if report in m.get("reports", []) and _MAY_DOWNLOAD.get()
        else "</p>"
    )
    kinds = [(escape(k), _num(n)) for k, n in sorted(dd.get("by_kind", {}).items())]
    return [
        *out,
        f"<p>{_num(dd.get('sellers'))} seller(s) need action ({_num(dd.get('findings'))} finding(s)).{link}",
        _table(("Finding", "Count"), kinds, table_id="due-diligence-kinds", numeric=(1,)),
    ]


def _files_section(m: dict[str, Any], authority: str | None) -> list[str]:
    files = [f for f in m.get("files", []) if authority in (None, f.get("authority"))]
    rows = [
        (
            escape(str(f.get("authority", ""))),
            _id(f.get("message_ref_id")),
            _message_type(f.get("message_type_indic")),
            _counts(sorted(f.get("records", {}).items())),
            _num(f.get("sellers")),
            _num(f.get("bytes")),
            _sha256(f.get("sha256")),
            _download(f["file"], "XML"),
        )
        for f in files
    ]
    reports = [
        f'<li><a class="download" href="{_file_href(r)}">{escape(r.removeprefix("reports/"))}</a></li>'
        if _MAY_DOWNLOAD.get() or r == "reports/run_summary.html"
        else f"<li>{escape(r.removeprefix('reports/'))} ({NO_DOWNLOAD})</li>"
        for r in m.get("reports", [])
    ]
    return [
        '<h2 id="files">Files of the latest run</h2>',
        '<p class="muted">The XML messages hold personal data: download them only to send them to the '
        "authority or to check them.</p>",
        _table(
            ("Authority", "MessageRefId", "Message type", "Records", "Sellers", "Bytes", "SHA-256", "Download"),
            rows,
            table_id="files",
            numeric=(4, 5),
        )
        if rows
        else "<p>No file: nothing to file in this run.</p>",
        "<h3>Reports</h3>",
        f'<ul id="reports">{"".join(reports)}</ul>' if reports else "<p>No report.</p>",
    ]


def _ledger_section(view: YearView, authority: str | None, m: dict[str, Any] | None) -> list[str]:
    out = [
        '<h2 id="ledger">Filings in the ledger</h2>',
        '<p class="muted">Every message recorded for this year, per authority, oldest first.</p>',
        "<details><summary>What the statuses mean</summary><ul>"
        + "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in STATUSES.items())
        + "</ul></details>",
    ]
    latest = {f.get("file") for f in [*m.get("files", []), *m.get("published_files", [])]} if m else set()
    authorities = [a for a in sorted(view.filings) if authority in (None, a)]
    if not authorities:
        return [*out, "<p>No message in the ledger for this year.</p>"]
    for a in authorities:
        rows = [_filing_row(f, f.file in latest) for f in view.filings[a]]
        out.append(f'<h3 id="authority-{escape(a)}">{escape(a)}</h3>')
        out.append(
            _table(
                (
                    "MessageRefId",
                    "Environment",
                    "Message type",
                    "Sellers",
                    "Records",
                    "Status",
                    "Authority feedback",
                    "Published (UTC)",
                    "File",
                ),
                rows,
                table_id=f"ledger-{a}",
                numeric=(3,),
            )
        )
    return out


def _filing_row(f: Filing, downloadable: bool) -> tuple[str, ...]:
    feedback = []
    if f.error_codes:
        feedback.append("error codes " + escape(", ".join(f.error_codes)))
    if f.rejected_sellers:
        feedback.append("rejected sellers " + escape(", ".join(f.rejected_sellers)))
    if not feedback:
        feedback.append("no errors" if f.status in ("accepted", "rejected") else "no status message yet")
    published = (
        f'<span class="when">{escape(f.published)}</span>'
        if f.published
        else f'<span class="muted">not published (rendered <span class="when">{escape(f.created)}</span>)</span>'
    )
    return (
        _id(f.message_ref_id),
        escape(f.environment),
        _message_type(f.message_type_indic),
        _num(f.sellers),
        "<br>".join(f"{_num(n)} {escape(k)}" for k, n in f.record_kinds),
        f'<span class="status status-{escape(f.status)}" title="{escape(STATUSES.get(f.status, ""))}">'
        f'{escape(f.status)}</span><br><span class="muted">records: {_counts(f.record_statuses)}</span>',
        "; ".join(feedback),
        published,
        _download(f.file, "XML") if downloadable else '<span class="muted">not a published file</span>',
    )


def _authority_filter(authorities: Sequence[str], current: str | None) -> str:
    if not authorities:
        return ""
    links = [f'<a href="./"{" class=current" if current is None else ""}>all</a>']
    links += [
        f'<a href="./?authority={quote(a)}"{" class=current" if a == current else ""}>{escape(a)}</a>'
        for a in authorities
    ]
    return f'<p class="filter">Authority: {" ".join(links)}</p>'


# -------------------------------------------------------------------------------------- helpers


def _page(title: str, body: Iterable[str]) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    table_id: str,
    header: bool = True,
    numeric: Iterable[int] = (),
) -> str:
    """A table of cells that are already HTML (escaped by the caller); ``numeric`` columns align
    right. Without a header row, the first column names the row."""
    right = set(numeric)
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>" if header else ""
    body = "".join(
        "<tr>"
        + "".join(
            f"<th>{c}</th>" if i == 0 and not header else f"<td{' class=n' if i in right else ''}>{c}</td>"
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f'<table id="{escape(table_id)}">{head}{body}</table>'


def _problems(problems: Iterable[str]) -> list[str]:
    return [f'<p class="problem">{escape(p)}</p>' for p in problems]


def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def _file_href(path: str) -> str:
    return escape("files/" + quote(path))


def _download(path: str, text: str) -> str:
    """A download link named ``text``; the file's name shows on hover and is what the browser saves."""
    if not _MAY_DOWNLOAD.get() and not path.startswith(("reports/run_summary.html", "reports/data-docs/")):
        return NO_DOWNLOAD
    name = escape(path.rsplit("/", 1)[-1])
    return f'<a class="download" href="{_file_href(path)}" title="{name}" download>{escape(text)}</a>'


def _id(value: object) -> str:
    return f'<span class="id">{escape(str(value or ""))}</span>'


def _sha256(value: object) -> str:
    digest = escape(str(value or ""))
    return f'<span class="id" title="{digest}">{digest[:12]}…</span>'


def _num(value: object) -> str:
    return escape(f"{value:,}" if isinstance(value, int) else str(value if value is not None else ""))


def _counts(items: Iterable[tuple[str, int]]) -> str:
    return escape(", ".join(f"{n} {k}" for k, n in items))


def _message_type(code: object) -> str:
    text = MESSAGE_TYPES.get(str(code), "")
    return f"{escape(str(code or ''))}" + (f' <span class="muted">({escape(text)})</span>' if text else "")
