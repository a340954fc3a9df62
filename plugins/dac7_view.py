"""The DAC7 view's content: what it reads from the filing ledger and the published output, and
the HTML pages it shows (``dac7_plugin.py`` serves them, behind Airflow's login).

Reading: the ledger gives every message filed (its MessageTypeIndic, its records, its status from
the authorities' status messages); ``<DAC7_OUT_DIR>/<year>/`` holds the latest run of a year:
``manifest.json``, one XML file per message and the ``reports/``, and under ``runs/<run>/`` each
run's own manifest and reports for people, so that the latest production run and the latest test
run are shown apart and no later run hides an earlier one. They are found as the DAG's
tasks find them, through the same resolver (``reporting.ledger.url``): the ledger at
``$DAC7_LEDGER_URL``, else the Airflow Connection of ``$DAC7_LEDGER_CONN_ID``, else ``[ledger] url``
of the configuration named by ``$DAC7_CONFIG``; the output under ``$DAC7_OUT_DIR``. The view never guesses another
place (the CLI's fallback, a file in the working directory, means nothing for the api-server).

Showing: server-rendered pages, every value escaped with ``html.escape``. They show ids, codes,
counts and seller ids, never a name, TIN, IBAN or birth date; the files they link to (the XML
messages, the reports) hold personal data. Links are relative, so the pages work under any mount
point: the index is ``<prefix>/``, a year ``<prefix>/<year>/``, its files
``<prefix>/<year>/files/<path>`` (only those :func:`published_file` allows).

A group (``[operators.ID]``): each further operator publishes into ``<year>/operators/<ID>/``
with the layout of a year's output, and its messages are in the ledger under its id. The year's
page groups the ledger's filings by operator, then by authority; a further operator's files are
served from its folder (``files/operators/<ID>/<XX>/<name>``).

Airflow's plugin loader imports this module in every Airflow process (it imports every ``.py``
file of the plugins folder): its top level imports the standard library and the words of
``reporting.vocabulary`` (a leaf that imports nothing); the rest of ``reporting`` (which loads lxml
and pyarrow) is imported inside the functions that read, in the api-server.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from reporting.vocabulary import DEFAULT_OPERATOR, OPERATOR_ID_PATTERN, OPERATORS_DIR, PROD, TEST  # a leaf

if TYPE_CHECKING:
    from datetime import date, datetime

    from reporting.ledger import Ledger, MessageInfo
    from reporting.results import Manifest

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
    records: int = 0  # the message's records (PlatformOperator, OtherPlatformOperators, sellers)
    rejected_records: int = 0  # of them, rejected by the authority
    error_meanings: tuple[str, ...] = ()  # "40080: If a TIN is provided ...", one per code
    triggered_by: str | None = None
    approved_by: str | None = None
    run_id: str = ""
    #: the outcome of the latest status document imported for it (``accepted``,
    #: ``partially_rejected``, ``rejected``), as the ledger keeps it; "" for none
    outcome: str = ""
    #: the DocRefIds the authority's status documents named with a record error
    named_rejections: int = 0
    #: the operator of a group whose filing it is (``default``: ``[operator]``)
    operator_id: str = DEFAULT_OPERATOR

    @property
    def unnamed_rejection(self) -> bool:
        """The authority said ``partially rejected`` but named no record: which stand is not known.
        (A record named and corrected since is not rejected any more, but it was named.) The
        board's ``Tally.unnamed_rejection`` is the same test."""
        return (
            self.status == "accepted"
            and self.outcome == PARTIALLY_REJECTED
            and not (self.rejected_records or self.named_rejections)
        )

    @property
    def shown_status(self) -> str:
        """The status as the view shows it: an accepted message with rejected records, or whose
        status document says partially rejected without naming a record, is ``partially
        rejected`` (a warning), not ``accepted``."""
        if self.status == "accepted" and (self.rejected_records or self.unnamed_rejection):
            return PARTIAL
        return self.status

    @property
    def sent(self) -> bool:
        """Whether the file left (or may have left) for the authority: published or answered."""
        return self.status in PUBLISHED_STATUSES


#: the view's word for an accepted message with rejected records
PARTIAL = "partially rejected"
#: a status document's outcome, as the ledger keeps it, that may name no rejected record
PARTIALLY_REJECTED = "partially_rejected"
#: what the view says of a partial rejection that names no record
UNNAMED_REJECTION = (
    "The authority's status document says partially rejected but names no rejected record: its records stay "
    "sent; ask the authority which records it rejected."
)
#: the message statuses whose file was published: ready to send, sent, or answered
PUBLISHED_STATUSES = ("published", "accepted", "rejected")
#: the environments, as the ledger and the manifest name them, and as the page names them
ENVIRONMENTS = {PROD: "production", TEST: "test"}


@dataclass(frozen=True, slots=True)
class YearOverview:
    year: int
    messages: int
    authorities: tuple[str, ...]
    statuses: tuple[tuple[str, int], ...]
    has_run: bool
    environment: str = ""  # "prod" or "test": one row per year and environment; "" for no message


@dataclass(frozen=True, slots=True)
class Run:
    """One published run of a year: its manifest, and the reports of it that the view serves."""

    manifest: Manifest
    #: ``runs/<run>`` where the run's copy is kept; "" for a run known only from the year's
    #: ``manifest.json`` (published before runs were kept): then its reports are those under ``reports/``
    folder: str
    reports: tuple[str, ...]  # paths relative to the year's output

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", ""))

    @property
    def environment(self) -> str:
        """``prod`` for a production filing; ``test`` for a test run and for every preview."""
        return PROD if self.manifest.get("environment") == PROD and not self.manifest.get("preview") else TEST

    @property
    def timestamp(self) -> str:
        return str(self.manifest.get("timestamp_utc", ""))

    def report(self, name: str) -> str | None:
        """The path of the run's report ``name`` (``run_summary.html`` ...), if the view has it."""
        return next((r for r in self.reports if r.endswith(f"reports/{name}")), None)


@dataclass(frozen=True, slots=True)
class YearView:
    year: int
    manifest: Manifest | None
    summary_text: str | None
    filings: dict[str, list[Filing]]  # per authority, each oldest first
    problems: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)  # newest first
    #: the seller statements of the year per environment and authority (``StatementCounts``)
    statements: list[Any] = field(default_factory=list)
    #: a group's further operators: their names, from their latest manifest (``operators/<ID>/``)
    operator_names: dict[str, str] = field(default_factory=dict)

    def latest(self, environment: str) -> Run | None:
        """The latest run of ``environment`` (``prod`` or ``test``): a test run never hides the
        latest production run, nor the reverse."""
        runs = self.runs or ([_legacy_run(self.manifest)] if self.manifest else [])
        return next((r for r in runs if r.environment == environment), None)

    @property
    def authorities(self) -> list[str]:
        runs = self.runs or ([_legacy_run(self.manifest)] if self.manifest else [])
        return sorted(set(self.filings) | {str(f.get("authority")) for r in runs for f in r.manifest.get("files", [])})


def sources(env: Mapping[str, str] | None = None) -> Sources:
    """The ledger URL and output directory from the environment the DAG's tasks also read. The
    URL is resolved as the tasks resolve it (``reporting.ledger.url.resolve_ledger_url``):
    ``DAC7_LEDGER_URL``, else the Connection of ``DAC7_LEDGER_CONN_ID``, else ``[ledger] url`` of
    the configuration named by ``DAC7_CONFIG``; never a file of the api-server's own."""
    from reporting.ledger.url import ledger_from_env, resolve_ledger_url

    env = os.environ if env is None else env
    problems: list[str] = []
    connection = None
    if not ledger_from_env(env) and env.get("DAC7_LEDGER_CONN_ID"):
        try:
            connection = ledger_from_connection(env["DAC7_LEDGER_CONN_ID"])
        except Exception as exc:  # not found, a secrets backend down, an unknown type: no secret in it
            problems.append(
                f"The ledger's Airflow Connection {env['DAC7_LEDGER_CONN_ID']!r} (DAC7_LEDGER_CONN_ID) cannot be "
                f"read: {type(exc).__name__}{': ' + str(exc) if type(exc).__name__ == 'ConfigError' else ''}"
            )
    config_url = None
    if not (ledger_from_env(env) or connection or problems) and env.get("DAC7_CONFIG"):
        from reporting.config import load_config
        from reporting.errors import ReportingError

        try:
            config_url = load_config(env["DAC7_CONFIG"]).ledger
        except (ReportingError, OSError) as exc:
            problems.append(f"The configuration named by DAC7_CONFIG cannot be read: {exc}")
    url = None if problems else resolve_ledger_url(connection, env=env, config_url=config_url, working_dir=None)
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


def overview(
    src: Sources, *, environment: str | None = None, authority: str | None = None, status: str | None = None
) -> tuple[list[YearOverview], list[str]]:
    """Every year with filings in the ledger or a run in the output, newest first, one row per
    year and environment (production first), of the messages that pass the filters: an
    ``environment`` (``prod``, ``test``), an ``authority`` and a ``status`` as the view shows it
    (``partially rejected`` included). A year with a run and no message passing shows once,
    without environment, when no filter is set."""
    problems: list[str] = []
    messages: list[MessageInfo] = []
    unnamed: set[str] = set()
    if src.ledger_url:
        try:
            messages, unnamed = _read_ledger(src.ledger_url, _messages_and_unnamed)
        except LedgerUnavailable as exc:
            problems.append(str(exc))
    runs = set()
    if src.out_root and src.out_root.is_dir():
        runs = {int(p.name) for p in src.out_root.iterdir() if p.name.isdigit() and (p / "manifest.json").is_file()}
    chosen = [
        m
        for m in messages
        if environment in (None, m.environment)
        and authority in (None, m.authority)
        and status in (None, _message_status(m, unnamed))
    ]
    filtered = environment is not None or authority is not None or status is not None
    years = sorted({m.reporting_year for m in chosen} | (set() if filtered else runs), reverse=True)
    result = []
    for year in years:
        of_year = [m for m in chosen if m.reporting_year == year]
        envs = sorted({m.environment for m in of_year}, key=lambda e: (e != PROD, e)) or [""]
        for env in envs:
            of_env = [m for m in of_year if m.environment == env]
            result.append(
                YearOverview(
                    year=year,
                    messages=len(of_env),
                    authorities=tuple(sorted({m.authority for m in of_env})),
                    statuses=tuple(sorted(Counter(_message_status(m, unnamed) for m in of_env).items())),
                    has_run=year in runs,
                    environment=env,
                )
            )
    return result, problems


def overview_choices(src: Sources) -> dict[str, list[str]]:
    """The values the overview's filters offer: the environments, authorities and statuses of
    the ledger's messages (empty lists when the ledger cannot be read)."""
    try:
        messages, unnamed = _read_ledger(src.ledger_url, _messages_and_unnamed) if src.ledger_url else ([], set())
    except LedgerUnavailable:
        messages, unnamed = [], set()
    return {
        "environment": sorted({m.environment for m in messages}, key=lambda e: (e != PROD, e)),
        "authority": sorted({m.authority for m in messages}),
        "status": sorted({_message_status(m, unnamed) for m in messages}),
    }


def _message_status(m: MessageInfo, unnamed: Iterable[str] = ()) -> str:
    """The status as the view shows it; ``unnamed``: the messages whose latest status document
    says partially rejected without naming a record (:func:`status_outcomes`)."""
    if m.status == "accepted" and (m.rejected_records or m.message_ref_id in unnamed):
        return PARTIAL
    return m.status


def status_outcomes(ledger: Ledger) -> dict[str, str]:
    """The outcome of the latest status document imported for each message that has one, by
    MessageRefId, as the ledger keeps it with each import (``accepted``, ``partially_rejected``,
    ``rejected``): a partial rejection that names no record leaves every record as sent."""
    import sqlalchemy as sa

    from reporting.ledger import schema as t

    m, i = t.messages, t.status_imports
    query = sa.select(m.c.message_ref_id, i.c.outcome).join(m, m.c.id == i.c.message_id).order_by(i.c.id)
    with ledger.engine.connect() as conn:
        return {ref: str(outcome or "") for ref, outcome in conn.execute(query)}  # the latest wins


def _messages_and_unnamed(ledger: Ledger) -> tuple[list[MessageInfo], set[str]]:
    messages = ledger.messages()
    outcomes = status_outcomes(ledger)
    unnamed = {
        m.message_ref_id
        for m in messages
        if m.status == "accepted" and not m.rejected_records and outcomes.get(m.message_ref_id) == PARTIALLY_REJECTED
    }
    return messages, unnamed


def year_view(src: Sources, year: int) -> YearView:
    """The runs of ``year`` (each run's manifest, the latest's summary) and every filing of it in
    the ledger."""
    problems: list[str] = []
    manifest, summary = None, None
    runs: list[Run] = []
    year_dir = src.year_dir(year)
    if year_dir is not None:
        try:
            manifest, summary = _latest_run(year_dir)
        except FileNotFoundError:
            problems.append(f"No run of {year} has published into the output directory yet.")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"The manifest of {year} cannot be read ({type(exc).__name__}).")
        runs, unreadable = runs_of(year_dir)
        problems += unreadable
    filings: dict[str, list[Filing]] = {}
    statements: list[Any] = []
    if src.ledger_url:
        try:
            found, statements = _read_ledger(
                src.ledger_url, lambda ledger: (_filings(ledger, year), ledger.statement_counts(year=year))
            )
            for filing in found:
                filings.setdefault(filing.authority, []).append(filing)
        except LedgerUnavailable as exc:
            problems.append(str(exc))
    return YearView(
        year=year,
        manifest=manifest,
        summary_text=summary,
        filings=filings,
        problems=problems,
        runs=runs,
        statements=statements,
        operator_names=_operator_names(year_dir, manifest),
    )


def _operator_names(year_dir: Path | None, manifest: Manifest | None) -> dict[str, str]:
    """The names of a group's operators as their latest manifests give them (``operator_name``)."""
    names = {}
    if manifest is not None and manifest.get("operator_name"):
        names[str(manifest.get("operator_id") or DEFAULT_OPERATOR)] = str(manifest["operator_name"])
    folder = year_dir / OPERATORS_DIR if year_dir is not None else None
    for path in sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []:
        if re.fullmatch(OPERATOR_ID_PATTERN, path.name):
            own = _read_manifest(path / "manifest.json")
            if own is not None and own.get("operator_name"):
                names[path.name] = str(own["operator_name"])
    return names


#: where the runs of a year keep their manifest and reports, in the year's output
RUNS_DIR = "runs"


def runs_of(year_dir: Path) -> tuple[list[Run], list[str]]:
    """Every run kept under ``<year>/runs/`` and the run of ``<year>/manifest.json`` (once: the
    latest run is in both), newest first; and a sentence for each manifest that cannot be read."""
    problems: list[str] = []
    runs: dict[str, Run] = {}
    folder = year_dir / RUNS_DIR
    kept = sorted(p for p in folder.iterdir() if (p / "manifest.json").is_file()) if folder.is_dir() else []
    for path in kept:
        manifest = _read_manifest(path / "manifest.json")
        if manifest is None:
            problems.append(f"The kept manifest of run {path.name} cannot be read.")
            continue
        reports = tuple(
            f"{RUNS_DIR}/{path.name}/reports/{r.name}"
            for r in sorted((path / "reports").iterdir() if (path / "reports").is_dir() else [])
            if r.is_file() and not r.name.startswith(".")
        )
        runs[str(manifest.get("run_id", path.name))] = Run(manifest, f"{RUNS_DIR}/{path.name}", reports)
    latest = _read_manifest(year_dir / "manifest.json")
    if latest is not None and str(latest.get("run_id", "")) not in runs:
        runs[str(latest.get("run_id", ""))] = _legacy_run(latest)
    return sorted(runs.values(), key=lambda r: (r.timestamp, r.run_id), reverse=True), problems


def _legacy_run(manifest: Manifest) -> Run:
    return Run(manifest, "", tuple(str(r) for r in manifest.get("reports", [])))


def _read_manifest(path: Path) -> Manifest | None:
    import json

    try:
        result: Manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def reachable_file(src: Sources, year: int, relative: str) -> Path | None:
    """The file at ``relative`` in ``year``'s output, if the view may serve it: a file of any
    kept run (its XML files and reports), any file under ``reports/`` (the Data Docs), or a
    message the ledger records for that year as published or answered, whatever run came after
    and of either environment. The path checks of :func:`published_file` apply to all."""
    year_dir = src.year_dir(year)
    if year_dir is None or not year_dir.is_dir():
        return None
    latest = _read_manifest(year_dir / "manifest.json")
    if latest is not None:  # the latest run's files and the Data Docs: no other manifest to read
        target = published_file(year_dir, latest, relative)
        if target is not None:
            return target
    runs, _ = runs_of(year_dir)
    listed = {
        "files": [{"file": f.get("file")} for r in runs for f in r.manifest.get("files", [])]
        + [{"file": f.get("file")} for r in runs for f in r.manifest.get("published_files", [])],
        "reports": [p for r in runs for p in r.reports],
    }
    target = published_file(year_dir, listed, relative)
    if target is None and _OPERATOR_FILE.fullmatch(relative):  # a further operator's, in its own folder
        _, operator_id, rest = relative.split("/", 2)
        own = year_dir / OPERATORS_DIR / operator_id
        manifest = _read_manifest(own / "manifest.json")
        if manifest is not None:
            target = published_file(own, manifest, rest)
    if target is None and src.ledger_url and _LEDGER_FILE.fullmatch(relative):
        try:
            files = _read_ledger(src.ledger_url, lambda ledger: _published_in_ledger(ledger, year))
        except LedgerUnavailable:
            return None
        if relative in files:
            target = published_file(year_dir, {"files": [{"file": relative}]}, relative)
    return target


#: a further operator's file, below its folder of the year's output
_OPERATOR_FILE = re.compile(rf"{OPERATORS_DIR}/{OPERATOR_ID_PATTERN}/.+")
#: a message's file as the ledger records it, relative to the year's output (:func:`output_file`)
_LEDGER_FILE = re.compile(rf"({OPERATORS_DIR}/{OPERATOR_ID_PATTERN}/)?[A-Z]{{2}}/[^/]+\.xml")


def output_file(m: MessageInfo) -> str:
    """A message's file relative to the year's output: the ledger records it relative to its
    operator's output, the year's own for the default operator, ``operators/<ID>/`` for another."""
    if m.operator_id == DEFAULT_OPERATOR:
        return m.file_name
    return f"{OPERATORS_DIR}/{m.operator_id}/{m.file_name}"


def _published_in_ledger(ledger: Ledger, year: int) -> set[str]:
    return {output_file(m) for m in ledger.messages(year=year) if m.status in PUBLISHED_STATUSES}


def latest_manifest(year_dir: Path) -> Manifest | None:
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


def _latest_run(year_dir: Path) -> tuple[Manifest, str]:
    from reporting.pipeline import load_manifest, summary_table

    manifest = load_manifest(year_dir)
    return manifest, summary_table(manifest)


def _filings(ledger: Ledger, year: int) -> list[Filing]:
    from reporting.error_codes import meaning

    result = []
    outcomes = status_outcomes(ledger)
    for m in ledger.messages(year=year):
        records = ledger.records(m.message_ref_id)
        errors = ledger.errors(m.message_ref_id) if m.errors else []
        kinds = Counter(f"{RECORD_KINDS.get(r.kind, r.kind)} {r.doc_type} ({r.doc_type_indic})" for r in records)
        codes = tuple(sorted({e.code for e in errors}))
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
                    # sellers only: another operator's record has a key in the same column
                    sorted(
                        {
                            r.seller_key
                            for r in records
                            if r.status == "rejected" and r.kind == "seller" and r.seller_key
                        }
                    )
                ),
                error_codes=codes,
                file=output_file(m),
                records=len(records),
                rejected_records=sum(1 for r in records if r.status == "rejected"),
                error_meanings=tuple(meaning(c, m.authority).text() for c in codes),
                triggered_by=m.triggered_by,
                approved_by=m.approved_by,
                run_id=m.run_id,
                outcome=outcomes.get(m.message_ref_id, ""),
                named_rejections=len({e.doc_ref_id for e in errors if e.scope == "record" and e.doc_ref_id}),
                operator_id=m.operator_id,
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
    "rendered": "rendered, not published yet (a run stopped between render and publish); nothing was sent",
    "published": "published: the file is ready to send; no status message from the authority yet",
    "accepted": "accepted by the authority, every record",
    PARTIAL: "the authority accepted the message but rejected some of its records: correct and file those again",
    "rejected": "rejected by the authority as a whole (see its feedback)",
    "discarded": "discarded: rendered by a run that never published it; never sent",
}
#: the CSS class of each status's badge: green accepted, amber warnings, red rejected
BADGES = {PARTIAL: "partial"}
#: how a record's status reads under its message's status: a record of a message that was
#: never published was not sent; one of a published message is in a file ready to send
RECORD_WORDS = {
    "rendered": {"sent": "not sent"},
    "discarded": {"sent": "not sent"},
    "published": {"sent": "in the published file, not answered yet"},
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem 2rem;color:#1a202c;
line-height:1.4;max-width:100%;overflow-wrap:break-word}
h1{font-size:1.6rem;margin:.2rem 0 .6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #cbd5e0;
padding-bottom:.2rem}h3{font-size:1.05rem;margin:1.4rem 0 .4rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.92em;max-width:100%}
th,td{border:1px solid #cbd5e0;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#edf2f7;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.id{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em;overflow-wrap:anywhere}
td ul{margin:.2rem 0;padding-left:1.1rem}a.download{white-space:nowrap}
.muted{color:#4a5568}.problem{background:#fff5f5;border:1px solid #feb2b2;padding:.5rem .8rem;margin:.5rem 0}
.note{background:#fffaf0;border:1px solid #fbd38d;padding:.5rem .8rem;margin:.5rem 0}
.status{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.85em;background:#e2e8f0}
.feedback{min-width:12rem}
.status-accepted{background:#c6f6d5}.status-rejected{background:#fed7d7;border:1px solid #c53030}
.status-published{background:#bee3f8}.status-partial{background:#feebc8;border:1px solid #c05621}
.status-discarded,.status-rendered{background:#fefcbf}
.env{display:inline-block;padding:0 .4rem;border-radius:.3rem;font-size:.8em;border:1px solid #a0aec0}
.env-prod{background:#2c5282;color:#fff;border-color:#2c5282}
.when{white-space:nowrap}
nav a,.filter a,.contents a{margin-right:.6rem}.filter .current{font-weight:700}
form.filter label{margin-right:.8rem}form.filter select,form.filter input{margin-left:.3rem}
pre{background:#f7fafc;border:1px solid #e2e8f0;padding:.6rem;overflow-x:auto;font-size:.85em}
th a{color:inherit}
"""


def index_page(
    years: Sequence[YearOverview],
    problems: Sequence[str],
    *,
    choices: Mapping[str, Sequence[str]] | None = None,
    chosen: Mapping[str, str | None] | None = None,
) -> str:
    """The years, one row per year and environment (production first); with ``choices``, a
    form that filters by environment, authority and status (sent as GET query parameters)."""
    chosen = chosen or {}
    rows = [
        (
            _link(f"{y.year}/", str(y.year)),
            _environment(y.environment) if y.environment else '<span class="muted">no message</span>',
            _num(y.messages),
            escape(", ".join(y.authorities)) or "none",
            _status_counts(y.statuses) or "none",
            "yes" if y.has_run else "no",
        )
        for y in years
    ]
    filtered = any(chosen.values())
    body = [
        '<nav><a href="board">Deadlines and statuses</a> <a href="runs">Runs in Airflow</a> '
        '<a href="trigger">Start a filing run</a> <a id="nav-attention" href="attention">Due diligence: needs '
        "attention</a></nav>",
        "<h1>DAC7 filings</h1>",
        '<p class="muted">The messages filed with each tax authority, production and test apart, their status '
        "from the authorities' status messages, and the files and reports of each year's runs.</p>",
        *_problems(problems),
        _filter_form(choices, chosen) if choices else "",
        _table(
            (
                "Reporting year",
                "Environment",
                "Messages in the ledger",
                "Authorities",
                "Message status",
                "Run published",
            ),
            rows,
            table_id="years",
            numeric=(2,),
        )
        if rows
        else ("<p>No message matches these filters.</p>" if filtered else "<p>Nothing was filed or published yet.</p>"),
        _status_legend(),
    ]
    return _page("DAC7 filings", body)


def _filter_form(choices: Mapping[str, Sequence[str]], chosen: Mapping[str, str | None]) -> str:
    names = {"environment": "Environment", "authority": "Authority", "status": "Status"}
    fields = []
    for key, label in names.items():
        options = ['<option value="">all</option>'] + [
            f'<option value="{escape(v)}"{" selected" if chosen.get(key) == v else ""}>'
            f"{escape(ENVIRONMENTS.get(v, v) if key == 'environment' else v)}</option>"
            for v in choices.get(key, [])
        ]
        fields.append(f'<label>{label}<select name="{key}">{"".join(options)}</select></label>')
    return (
        f'<form class="filter" id="filters" method="get" action="./">{"".join(fields)}'
        '<button type="submit">Filter</button> <a href="./">clear</a></form>'
    )


def year_page(view: YearView, authority: str | None, *, may_download: bool = True, today: date | None = None) -> str:
    """The year's page. Without ``may_download`` the statuses and counts are all there, and the
    links to filings and seller-level reports are replaced by a word on the permission. ``today``
    (default: the UTC date) decides how close the seller statements' due day is."""
    token = _MAY_DOWNLOAD.set(may_download)
    try:
        return _year_page(view, authority, today)
    finally:
        _MAY_DOWNLOAD.reset(token)


#: whether the page being built may link downloads (set by :func:`year_page` for its call only;
#: a context variable: requests served at once in other threads each see their own)
_MAY_DOWNLOAD: ContextVar[bool] = ContextVar("dac7_may_download", default=True)
NO_DOWNLOAD = '<span class="muted" title="needs the DAC7 download permission">no download permission</span>'


def _year_page(view: YearView, authority: str | None, today: date | None = None) -> str:
    import dac7_statements

    prod, test = view.latest(PROD), view.latest(TEST)
    body = [
        '<nav><a href="../">All years</a> <a href="due-diligence">Due-diligence list</a> '
        '<a href="sellers">Find a seller</a> <a href="filings">Filing states and the outbox</a> '
        '<a href="../board">Deadlines and statuses</a> <a href="../runs">Runs in Airflow</a></nav>',
        f"<h1>DAC7 {view.year}</h1>",
        *_problems(view.problems),
        _authority_filter(view.authorities, authority),
        '<p class="contents">On this page: <a href="#ledger">Filings in the ledger</a> '
        '<a href="#statements">Seller statements</a> '
        '<a href="#run-prod">Latest production run</a> <a href="#run-test">Latest test run</a> '
        '<a href="#runs">Earlier runs</a></p>',
        *_ledger_section(view, authority),
        *dac7_statements.statement_section(view.year, view.statements, authority, today or dac7_statements.today_utc()),
    ]
    for env, run in ((PROD, prod), (TEST, test)):
        latest = run is not None and view.manifest is not None and run.run_id == view.manifest.get("run_id")
        body += _run_section(run, env, authority, view.summary_text if latest else None)
    body += _runs_section(view, {id(r) for r in (prod, test) if r})
    return _page(f"DAC7 {view.year}", body)


def error_page(status: int, title: str, text: str, login_url: str | None = None) -> str:
    body = [f"<h1>{escape(title)}</h1>", f"<p>{escape(text)}</p>"]
    if login_url:
        body.append(f'<p><a href="{escape(login_url)}">Log in to Airflow</a></p>')
    return _page(f"{status} {title}", body)


# -------------------------------------------------------------------------------------- sections


def _run_section(run: Run | None, env: str, authority: str | None, summary: str | None) -> list[str]:
    name = ENVIRONMENTS[env]
    head = f'<h2 id="run-{env}">Latest {name} run</h2>'
    if run is None:
        return [head, f"<p>No {name} run of this year has published into the output directory.</p>"]
    m = run.manifest
    s = m.get("summary", {})
    files = m.get("files", [])
    facts = [
        ("Environment", _environment(run.environment) + (" (a preview: never filed)" if m.get("preview") else "")),
        ("As of", escape(str(m.get("as_of", "")))),
        ("Run id", _id(m.get("run_id", ""))),
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
    explained = figures_explained(m)
    if explained:
        facts.append(
            (
                "Why these figures differ",
                f'<ul id="figures-explained-{env}">' + "".join(f"<li>{escape(t)}</li>" for t in explained) + "</ul>",
            )
        )
    decisions = [(escape(k), _num(n)) for k, n in sorted(s.get("decisions", {}).items())]
    out = [
        head,
        *_report_links(run, env),
        _table(("", ""), facts, table_id=f"run-facts-{env}", header=False),
        "<h3>Decisions per seller</h3>",
        _table(("Decision", "Sellers"), decisions, table_id=f"decisions-{env}", numeric=(1,)),
    ]
    for d in m.get("discarded", []):
        out.append(
            f'<p class="note">Discarded {_id(d.get("message_ref_id"))} ({escape(str(d.get("authority")))}) '
            f"of run {_id(d.get('run_id'))}: rendered, never published, never sent.</p>"
        )
    out += _files_section(run, env, authority)
    out += _due_diligence_section(run, env)
    if summary:
        out.append(
            "<details><summary>The run summary as <code>dac7 summary</code> prints it</summary>"
            f'<pre id="summary-{env}">{escape(summary)}</pre></details>'
        )
    return out


def figures_explained(m: Mapping[str, Any]) -> list[str]:
    """Why "Reportable sellers" and "Sellers in the files" of a run differ, in sentences with
    the manifest's own figures: the files count a seller once per file, so a seller reported to
    several authorities counts once per authority; the files also carry corrections and
    deletions of earlier filings; and a seller already filed unchanged is in no file. Where another
    operator assumes this operator's reporting, no seller is in its files, and the view says so."""
    s = m.get("summary", {})
    files = m.get("files", [])
    reportable = s.get("reportable")
    if not isinstance(reportable, int) or m.get("watch"):
        return []
    in_files = sum(int(f.get("sellers", 0)) for f in files)
    kinds: Counter[str] = Counter()
    for f in files:
        kinds.update({str(k): int(n) for k, n in (f.get("records") or {}).items()})
    pairs = sum(int(n) for n in (s.get("sellers_per_authority") or {}).values())
    out = [
        f"Reportable sellers counts each seller once ({reportable:,}); Sellers in the files counts a seller once "
        f"per file it is in ({in_files:,})."
    ]
    assumed = bool(m.get("assumed_reporting"))
    if assumed and reportable:
        out.append(
            "Another platform operator assumes this operator's reporting ([assuming_operator]): the "
            f"{reportable:,} reportable seller(s) are reported in that operator's filing; this operator's files "
            "declare it (AssumedReporting) and report no seller."
        )
    if pairs > reportable and not assumed:
        out.append(
            f"{pairs - reportable:,} more because some sellers are reported to more than one authority: "
            f"{pairs:,} seller-authority pairs for {reportable:,} sellers."
        )
    new = kinds.get("new", 0)
    changed = {k: n for k, n in sorted(kinds.items()) if k != "new" and n}
    if changed:
        words = {"correction": "correction(s)", "deletion": "deletion(s)", "resend": "resent record(s)"}
        out.append(
            "The files also carry "
            + ", ".join(f"{n:,} {words.get(k, k)}" for k, n in changed.items())
            + " of sellers filed earlier."
        )
    if pairs and new < pairs and not assumed:
        out.append(
            f"{pairs - new:,} seller-authority pair(s) are in no new-information record: the ledger holds them as "
            "filed already (unchanged, or filed again as a correction)."
        )
    return out if in_files != reportable or len(out) > 1 else []


#: The reports of a run for people, linked at the top of its section: (name, id, text).
REPORT_LINKS = (
    ("run_summary.html", "run-summary-report", "Run summary (charts)"),
    ("due_diligence.html", "run-due-diligence-report", "Due-diligence report"),
)


def _report_links(run: Run, env: str) -> list[str]:
    """Links to the run's summary page (figures and charts) and due-diligence report, those the
    view has of this run (an older run has no summary page)."""
    links = []
    for name, i, t in REPORT_LINKS:
        path = run.report(name)
        if path is None:
            continue
        if _MAY_DOWNLOAD.get() or name == "run_summary.html":
            links.append(f'<a id="{i}-{env}" href="{_file_href(path)}">{escape(t)}</a>')
        else:
            links.append(f"{escape(t)} ({NO_DOWNLOAD})")
    return [f'<p class="contents" id="run-reports-{env}">Reports: {" ".join(links)}</p>'] if links else []


def _due_diligence_section(run: Run, env: str) -> list[str]:
    dd = run.manifest.get("due_diligence")
    out = [f'<h3 id="due-diligence-{env}">Due diligence</h3>']
    if not dd:
        return [*out, "<p>This run found nothing that needs action.</p>"]
    report = run.report("due_diligence.html")
    link = (
        f' <a id="due-diligence-report-{env}" href="{_file_href(report)}">Open the due-diligence report</a> '
        "(identifiers are masked)"
        if report and _MAY_DOWNLOAD.get()
        else ""
    )
    kinds = [(escape(k), _num(n)) for k, n in sorted(dd.get("by_kind", {}).items())]
    return [
        *out,
        f"<p>{_num(dd.get('sellers'))} seller(s) need action ({_num(dd.get('findings'))} finding(s)). "
        f'<a href="due-diligence?run={escape(env)}">Sort, filter and export the list</a>.{link}</p>',
        _table(("Finding", "Count"), kinds, table_id=f"due-diligence-kinds-{env}", numeric=(1,)),
    ]


def _files_section(run: Run, env: str, authority: str | None) -> list[str]:
    m = run.manifest
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
        f'<li><a class="download" href="{_file_href(r)}">{escape(r.rsplit("/", 1)[-1])}</a></li>'
        if _MAY_DOWNLOAD.get() or r.endswith("reports/run_summary.html")
        else f"<li>{escape(r.rsplit('/', 1)[-1])} ({NO_DOWNLOAD})</li>"
        for r in run.reports
        if not r.startswith("reports/data-docs/")
    ]
    return [
        f'<h3 id="files-of-{env}">Files of this run</h3>',
        '<p class="muted">The XML messages hold personal data: download them only to send them to the '
        "authority or to check them. Every file of the ledger also downloads from its row above.</p>",
        _table(
            ("Authority", "MessageRefId", "Message type", "Records", "Sellers", "Bytes", "SHA-256", "Download"),
            rows,
            table_id=f"files-{env}",
            numeric=(4, 5),
            css_class="files",
        )
        if rows
        else "<p>No file: nothing to file in this run.</p>",
        "<h3>Reports</h3>",
        f'<ul id="reports-{env}">{"".join(reports)}</ul>' if reports else "<p>No report.</p>",
    ]


def _runs_section(view: YearView, shown: set[int]) -> list[str]:
    rows = []
    for r in view.runs:
        if id(r) in shown:
            continue
        m = r.manifest
        summary = r.report("run_summary.html")
        dd = r.report("due_diligence.html")
        links = [
            f'<a href="{_file_href(summary)}">run summary</a>' if summary else "",
            (f'<a href="{_file_href(dd)}">due diligence</a>' if _MAY_DOWNLOAD.get() else NO_DOWNLOAD) if dd else "",
        ]
        rows.append(
            (
                f'<span class="when">{escape(r.timestamp[:19].replace("T", " "))}</span>',
                _environment(r.environment) + (" preview" if m.get("preview") else ""),
                _id(r.run_id),
                escape(str(m.get("as_of", ""))),
                escape(", ".join(sorted({str(f.get("authority")) for f in m.get("files", [])}))) or "none",
                _num(len(m.get("files", []))),
                " ".join(x for x in links if x) or '<span class="muted">no report kept</span>',
            )
        )
    return [
        '<h2 id="runs">Earlier runs</h2>',
        '<p class="muted">Runs before the latest of each environment, newest first. Their files stay in the '
        "ledger's rows above.</p>",
        _table(
            ("Run timestamp (UTC)", "Environment", "Run id", "As of", "Authorities", "Files", "Reports"),
            rows,
            table_id="earlier-runs",
            numeric=(5,),
        )
        if rows
        else "<p>No earlier run is kept for this year.</p>",
    ]


def _ledger_section(view: YearView, authority: str | None) -> list[str]:
    out = [
        '<h2 id="ledger">Filings in the ledger</h2>',
        '<p class="muted">Every message recorded for this year, per authority, oldest first, production and '
        "test. Every published file downloads from its row, whatever run came after.</p>",
        _status_legend(),
    ]
    authorities = [a for a in sorted(view.filings) if authority in (None, a)]
    if not authorities:
        return [*out, "<p>No message in the ledger for this year.</p>"]
    operators = sorted(
        {f.operator_id for a in authorities for f in view.filings[a]}, key=lambda o: (o != DEFAULT_OPERATOR, o)
    )
    group = operators != [DEFAULT_OPERATOR]
    for operator_id in operators:
        mine = {a: [f for f in view.filings[a] if f.operator_id == operator_id] for a in authorities}
        if group:  # a group: each operator's filings apart, each its own entity's
            name = view.operator_names.get(operator_id, "")
            out.append(
                f'<h3 id="operator-{escape(operator_id)}" class="operator">Operator {escape(operator_id)}'
                + (f": {escape(name)}" if name else "")
                + "</h3>"
            )
        for a, filings in mine.items():
            if filings:
                out += _ledger_table(a, filings, operator_id if group else None)
    return out


def authority_name(code: str) -> str:
    """A filing jurisdiction outside the EU with its authority and law, as its profile of the
    deadline table names it (``United Kingdom, HM Revenue & Customs (HMRC): OECD Model Rules``,
    ``reporting/authorities/deadlines.toml``: one label per authority, the same in the deadline
    warnings); "" for a member state, whose code says it."""
    from reporting.deadlines import deadline_table, profile_of
    from reporting.jurisdictions import rule_set_for

    return deadline_table()[profile_of(code)].name if rule_set_for(code).model_rules else ""


def _ledger_table(a: str, filings: list[Filing], operator_id: str | None) -> list[str]:
    """The filings of one authority (of one operator of a group, ``operator_id``), oldest first."""
    rows = [_filing_row(f) for f in filings]
    key = f"{operator_id}-{a}" if operator_id else a
    heading = "h4" if operator_id else "h3"
    name = authority_name(a)
    return [
        f'<{heading} id="authority-{escape(key)}">{escape(a)}'
        + (f' <span class="muted">{escape(name)}</span>' if name else "")
        + f"</{heading}>",
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
                "Triggered / approved by",
                "File",
            ),
            rows,
            table_id=f"ledger-{key}",
            numeric=(3,),
        ),
    ]


def _status_legend() -> str:
    return (
        "<details><summary>What the statuses mean</summary><ul>"
        + "".join(f"<li>{_badge(k)}: {escape(v)}</li>" for k, v in STATUSES.items())
        + "</ul></details>"
    )


def _filing_row(f: Filing, downloadable: bool | None = None) -> tuple[str, ...]:
    """One message of the ledger. Its file downloads when the ledger says it was published or
    answered (``downloadable`` overrides that)."""
    feedback = []
    if f.rejected_records:
        feedback.append(
            f'<span class="rejected-count">{_num(f.rejected_records)} of {_num(f.records)} record(s) rejected</span>'
        )
    if f.error_meanings or f.error_codes:
        meanings = f.error_meanings or tuple(f"code {c}: meaning not looked up" for c in f.error_codes)
        feedback.append('<ul class="codes">' + "".join(f"<li>{escape(t)}</li>" for t in meanings) + "</ul>")
    if f.rejected_sellers:
        feedback.append("rejected sellers " + escape(", ".join(f.rejected_sellers)))
    if f.unnamed_rejection:
        feedback.append(f'<span class="unnamed-rejection">{escape(UNNAMED_REJECTION)}</span>')
    if not feedback:
        feedback.append("no errors" if f.status in ("accepted", "rejected") else "no status message yet")
    published = (
        f'<span class="when">{escape(f.published)}</span>'
        if f.published
        else f'<span class="muted">not published (rendered <span class="when">{escape(f.created)}</span>)</span>'
    )
    words = RECORD_WORDS.get(f.status, {})
    records = ", ".join(f"{n} {words.get(k, k)}" for k, n in f.record_statuses)
    who = " / ".join(
        escape(x) if x else '<span class="muted">not recorded</span>' for x in (f.triggered_by, f.approved_by)
    )
    can = f.sent if downloadable is None else downloadable
    return (
        _id(f.message_ref_id),
        _environment(f.environment),
        _message_type(f.message_type_indic),
        _num(f.sellers),
        "<br>".join(f"{_num(n)} {escape(k)}" for k, n in f.record_kinds),
        f'{_badge(f.shown_status, _status_words(f))}<br><span class="muted">records: {escape(records)}</span>',
        '<div class="feedback">' + "<br>".join(feedback) + "</div>",
        published,
        who if f.sent else '<span class="muted">not sent</span>',
        _download(f.file, "XML") if can else '<span class="muted">not a published file</span>',
    )


def _badge(status: str, text: str | None = None) -> str:
    css = BADGES.get(status, status)
    title = escape(STATUSES.get(status, ""))
    return f'<span class="status status-{escape(css)}" title="{title}">{escape(text or status)}</span>'


def _status_words(f: Filing) -> str:
    """The badge's words: a partial rejection says how many records were rejected."""
    if f.unnamed_rejection:
        return f"{PARTIAL}: records not named by the authority"
    if f.shown_status == PARTIAL:
        return f"{PARTIAL}: {f.rejected_records:,} of {f.records:,} records"
    return f.shown_status


def _environment(env: str) -> str:
    return f'<span class="env env-{escape(env)}">{escape(ENVIRONMENTS.get(env, env))}</span>'


def _status_counts(items: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{_num(n)} {_badge(k)}" for k, n in items)


def _authority_filter(authorities: Sequence[str], current: str | None) -> str:
    if not authorities:
        return ""
    links = [f'<a href="./"{" class=current" if current is None else ""}>all</a>']
    links += [
        f'<a href="./?authority={quote(a)}"{" class=current" if a == current else ""}>{escape(a)}</a>'
        for a in authorities
    ]
    return f'<p class="filter">Authority: {" ".join(links)}</p>'


# ------------------------------------------------------------------------- the due-diligence list


def _dd_columns() -> tuple[tuple[str, str], ...]:
    """The due-diligence list's columns (those of ``reports/due_diligence.csv``) with their heads:
    those of the report (``reporting.reports.due_diligence.HTML_COLUMNS``), read when a page is built."""
    from reporting.reports.due_diligence import HTML_COLUMNS

    return HTML_COLUMNS


#: the columns the list sorts by
DD_SORTABLE = ("seller_id", "kind", "finding", "identifier", "country", "authorities", "seller_type")
#: the list's filters, as GET query parameters: exact values, and ``q`` a part of the seller id
DD_FILTERS = ("kind", "authority", "country", "identifier", "q")
#: the findings shown per page of the list (``?page=``); the CSV export is the whole filtered list
DD_PAGE_SIZE = 200
#: the filters offered as choices, with the values of every finding of the run
DD_OPTIONS = ("kind", "authority", "country", "identifier")


@dataclass(frozen=True, slots=True)
class DueDiligenceQuery:
    """What the list shows: the run (``prod``/``test``), the filters and the sort."""

    run: str | None = None
    kind: str | None = None
    authority: str | None = None
    country: str | None = None
    identifier: str | None = None
    q: str | None = None
    sort: str = "seller_id"
    desc: bool = False
    page: int = 1  # 1-based, of DD_PAGE_SIZE findings

    def params(self, **change: Any) -> str:
        """The query string of this query with ``change``d values (for links and the export);
        the page only when it is not the first (``page=None``: none, as for the export)."""
        values = {
            "run": self.run,
            **{k: getattr(self, k) for k in DD_FILTERS},
            "sort": self.sort,
            "order": "desc" if self.desc else "asc",
            "page": self.page if self.page > 1 else None,
        }
        values.update(change)
        if values["page"] == 1:  # the first page is the list without a page
            values["page"] = None
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


@dataclass(frozen=True, slots=True)
class Findings:
    """The findings of a run that pass a query, read from its kept CSV one row at a time: only
    those are held (sorted, for the page and the export), with the count of all and the values
    the filters offer."""

    rows: list[dict[str, str]]  # the findings that pass the query's filters, in its sort order
    total: int  # every finding of the run
    options: dict[str, list[str]]  # the values of every finding, per filter of DD_OPTIONS


def due_diligence_findings(src: Sources, year: int, query: DueDiligenceQuery) -> tuple[Run | None, Findings, list[str]]:
    """The findings of the chosen run (``query.run``; the latest production run, else the latest
    test run) that pass the query's filters, sorted (:class:`Findings`); and the problems. The
    CSV is read row by row: a finding that does not pass is counted and dropped."""
    import csv

    none = Findings([], 0, {k: [] for k in DD_OPTIONS})
    year_dir = src.year_dir(year)
    if year_dir is None or not year_dir.is_dir():
        return None, none, [f"No run of {year} has published into the output directory yet.", *src.problems]
    runs, problems = runs_of(year_dir)
    view = YearView(year, None, None, {}, runs=runs)
    run = view.latest(query.run) if query.run in ENVIRONMENTS else (view.latest(PROD) or view.latest(TEST))
    if run is None:
        return (
            None,
            none,
            [*problems, f"No {ENVIRONMENTS.get(query.run or '', '')} run of {year} is kept.".replace("  ", " ")],
        )
    path = run.report("due_diligence.csv")
    if path is None:
        return (
            run,
            none,
            [*problems, "This run's due-diligence list is not kept (a run published before lists were kept)."],
        )
    chosen: list[dict[str, str]] = []
    total = 0
    options: dict[str, set[str]] = {k: set() for k in DD_OPTIONS}
    names = [c for c, _ in _dd_columns()]
    try:
        with (year_dir / path).open(newline="", encoding="utf-8") as fh:
            for raw in csv.DictReader(fh):
                # the CSV keeps a cell that starts like a formula behind a quote: shown as the run wrote it
                r = {c: _uncell(raw.get(c) or "") for c in names}
                total += 1
                _add_options(options, r)
                if _passes(r, query):
                    chosen.append(r)
    except (OSError, ValueError, csv.Error) as exc:
        return run, none, [*problems, f"The run's due-diligence list cannot be read ({type(exc).__name__})."]
    _sort(chosen, query)
    return run, Findings(chosen, total, {k: sorted(v) for k, v in options.items()}), problems


def _add_options(options: dict[str, set[str]], r: Mapping[str, str]) -> None:
    options["kind"].add(r["kind"])
    options["authority"].update(a for a in r["authorities"].split(";") if a)
    if r["country"]:
        options["country"].add(r["country"])
    options["identifier"].add(r["identifier"])


def _passes(r: Mapping[str, str], query: DueDiligenceQuery) -> bool:
    q = (query.q or "").strip().lower()
    return (
        query.kind in (None, "", r["kind"])
        and query.country in (None, "", r["country"])
        and query.identifier in (None, "", r["identifier"])
        and (not query.authority or query.authority in r["authorities"].split(";"))
        and (not q or q in r["seller_id"].lower())
    )


def _sort(rows: list[Any], query: DueDiligenceQuery) -> None:
    key = query.sort if query.sort in DD_SORTABLE else "seller_id"
    rows.sort(key=lambda r: (r["seller_id"], r["identifier"], r["finding"]))
    rows.sort(key=lambda r: r[key].lower(), reverse=query.desc)


def _uncell(value: str) -> str:
    return value[1:] if value[:2] in ("'=", "'+", "'-", "'@") or value[:2] in ("'\t", "'\r") else value


def select_findings(rows: Sequence[Mapping[str, str]], query: DueDiligenceQuery) -> list[Mapping[str, str]]:
    """The rows that pass the query's filters, in its sort order (then by seller and finding)."""
    chosen = [r for r in rows if _passes(r, query)]
    _sort(chosen, query)
    return chosen


def findings_csv(rows: Iterable[Mapping[str, str]], *, masked_values: bool) -> str:
    """The rows as CSV, formula-safe (``reporting.reports.csvcells``: no cell is read as a formula);
    without ``masked_values`` the masked identifiers are left out."""
    import csv
    import io

    from reporting.reports import csvcells

    columns = [c for c, _ in _dd_columns() if masked_values or c != "value_masked"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(csvcells.row(dict(r)) for r in rows)
    return buf.getvalue()


def due_diligence_page(
    year: int,
    run: Run | None,
    rows: Sequence[Mapping[str, str]],
    query: DueDiligenceQuery,
    problems: Sequence[str],
    *,
    may_download: bool = True,
    total: int | None = None,
    options: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The due-diligence list of a run: filters (a GET form), sort links on the headers, the
    rows that pass, :data:`DD_PAGE_SIZE` per page (previous and next links keep the filters and
    the sort), and the export of all of those as CSV. Without ``may_download`` the masked
    identifiers are not shown and the export is not offered. ``rows`` are every finding of the
    run, or, with ``total`` and ``options`` (:class:`Findings`), those that pass the query."""
    shown = select_findings(rows, query)
    if options is None:
        sets: dict[str, set[str]] = {k: set() for k in DD_OPTIONS}
        for r in rows:
            _add_options(sets, r)
        options = {k: sorted(v) for k, v in sets.items()}
    total = len(rows) if total is None else total
    pages = max(1, -(-len(shown) // DD_PAGE_SIZE))
    page = min(max(query.page, 1), pages)
    first = (page - 1) * DD_PAGE_SIZE
    on_page = shown[first : first + DD_PAGE_SIZE]
    labels = {"kind": "Kind", "authority": "Reported to", "country": "Country", "identifier": "Identifier"}
    fields = [f'<input type="hidden" name="run" value="{escape(query.run)}">' if query.run else ""]
    for key, label in labels.items():
        current = getattr(query, key)
        opts = ['<option value="">all</option>'] + [
            f'<option value="{escape(v)}"{" selected" if v == current else ""}>{escape(v)}</option>'
            for v in options[key]
        ]
        fields.append(f'<label>{label}<select name="{key}">{"".join(opts)}</select></label>')
    fields.append(f'<label>Seller id contains<input name="q" value="{escape(query.q or "")}" size="12"></label>')
    fields.append(f'<input type="hidden" name="sort" value="{escape(query.sort)}">')
    fields.append(f'<input type="hidden" name="order" value="{"desc" if query.desc else "asc"}">')
    clear = "due-diligence" + (f"?run={quote(query.run)}" if query.run else "")
    form = (
        f'<form class="filter" id="dd-filters" method="get" action="due-diligence">{"".join(fields)}'
        f'<button type="submit">Filter</button> <a href="{escape(clear)}">clear</a></form>'
    )
    columns = [(c, h) for c, h in _dd_columns() if may_download or c != "value_masked"]
    heads = []
    for c, h in columns:
        if c not in DD_SORTABLE:
            heads.append(escape(h))
            continue
        desc = not query.desc if c == query.sort else False
        arrow = (" ▼" if query.desc else " ▲") if c == query.sort else ""
        href = "due-diligence?" + query.params(sort=c, order="desc" if desc else "asc", page=None)
        heads.append(f'<a class="sort" href="{escape(href)}">{escape(h)}{arrow}</a>')
    body_rows = [tuple(escape(r[c]) for c, _ in columns) for r in on_page]
    envs = " ".join(
        f'<a href="due-diligence?run={e}"{" class=current" if run and run.environment == e else ""}>latest {n} run</a>'
        for e, n in ENVIRONMENTS.items()
    )
    export = (
        f'<a id="dd-export" href="due-diligence.csv?{escape(query.params(page=None))}">'
        f"Export these {len(shown):,} row(s) as CSV</a>"
        if may_download
        else f"CSV export: {NO_DOWNLOAD}"
    )
    body = [
        f'<nav><a href="../">All years</a> <a id="back-to-year" href="./">DAC7 {year}</a></nav>',
        f"<h1>DAC7 {year}: sellers that need action</h1>",
        *_problems(problems),
        f'<p class="filter">Run: {envs}</p>',
    ]
    if run is not None:
        body.append(
            f'<p class="muted">{_environment(run.environment)} run {_id(run.run_id)} of '
            f"{escape(run.timestamp[:19].replace('T', ' '))} UTC, as of {escape(str(run.manifest.get('as_of', '')))}. "
            "Identifiers are masked to their last characters"
            + ("" if may_download else "; without the download permission they are not shown")
            + ".</p>"
        )
    body += [
        form,
        f'<p id="dd-count"><b>{len(shown):,}</b> of {total:,} finding(s), '
        f"{len({r['seller_id'] for r in shown}):,} seller(s). {export}</p>",
        *_pager(query, page, pages, first, len(on_page), len(shown), "dd-pages"),
        _table([h for _, h in columns], body_rows, table_id="dd-findings", header_html=heads)
        if body_rows
        else "<p>No finding matches these filters.</p>",
        *(_pager(query, page, pages, first, len(on_page), len(shown), "dd-pages-bottom") if pages > 1 else []),
    ]
    return _page(f"DAC7 {year}: due diligence", body)


def _pager(
    query: Any,
    page: int,
    pages: int,
    first: int,
    count: int,
    of: int,
    pid: str,
    *,
    base: str = "due-diligence",
    what: str = "Findings",
) -> list[str]:
    """``Findings 201-400 of 950, page 2 of 5`` with links to the previous and the next page of
    the list at ``base`` (the filters and the sort kept: ``query.params(page=N)``); nothing when
    the list fits on one page."""
    if pages <= 1:
        return []
    links = []
    if page > 1:
        links.append(f'<a rel="prev" href="{base}?{escape(query.params(page=page - 1))}">previous page</a>')
    if page < pages:
        links.append(f'<a rel="next" href="{base}?{escape(query.params(page=page + 1))}">next page</a>')
    return [
        f'<p class="pages" id="{pid}">{what} {first + 1:,}-{first + count:,} of {of:,}, page {page} of {pages}. '
        + " ".join(links)
        + "</p>"
    ]


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
    css_class: str | None = None,
    header_html: Sequence[str] | None = None,
) -> str:
    """A table of cells that are already HTML (escaped by the caller); ``numeric`` columns align
    right. Without a header row, the first column names the row. ``header_html`` replaces the
    escaped ``headers`` with cells already HTML (sort links)."""
    right = set(numeric)
    cells = header_html if header_html is not None else [escape(h) for h in headers]
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in cells) + "</tr>" if header else ""
    body = "".join(
        "<tr>"
        + "".join(
            f"<th>{c}</th>" if i == 0 and not header else f"<td{' class=n' if i in right else ''}>{c}</td>"
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    css = f' class="{escape(css_class)}"' if css_class else ""
    return f'<table id="{escape(table_id)}"{css}>{head}{body}</table>'


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
