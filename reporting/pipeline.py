"""The pipeline's stages, as the CLI and the Airflow tasks call them.

Each stage takes the run's staging directory (created by :func:`prepare`), reads its inputs from
there and returns a small JSON-able summary (its type is in :mod:`reporting.results`), so that an
Airflow task passes paths, never data.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, overload

from reporting.authorities import ignored_authorities
from reporting.checks.data import keep_checks_worker
from reporting.config import Config, load_config
from reporting.errors import ConfigError, database_errors
from reporting.jurisdictions import is_filing_jurisdiction, rule_set_for
from reporting.ledger import MessageInfo, open_ledger
from reporting.ledger.model import LIVE_MESSAGE_STATUSES
from reporting.ledger.url import resolve_ledger_url
from reporting.logcontext import stage_context
from reporting.private import owner_only
from reporting.results import (
    AggregateResult,
    AuthorityPublished,
    AuthorityRendered,
    AuthorityValidation,
    ExtractResult,
    Manifest,
    PendingMessage,
    Rendered,
    RulesResult,
    StatementsResult,
    Validation,
)
from reporting.settings import (
    SETTINGS_FILE,
    RunSettings,
    load_settings,
    new_run_id,
    operator_out_dir,
    operator_run_id,
    read_json,
    remember_secret_url,
    write_json,
)
from reporting.source import has_secret, safe_url
from reporting.stages import aggregate as _aggregate
from reporting.stages import audit as _audit
from reporting.stages import extract as _extract
from reporting.stages import extract_spark as _extract_spark
from reporting.stages import plan as _plan
from reporting.stages import publish as _publish
from reporting.stages import render as _render
from reporting.stages import rules as _rules
from reporting.stages import statements as _statements
from reporting.stages import validate as _validate
from reporting.vocabulary import (
    AUDIT,
    DEFAULT_OPERATOR,
    ENVIRONMENTS,
    JURISDICTION,
    MODES,
    NEXUS,
    OPERATOR_ID_PATTERN,
    OPERATORS_DIR,
    PROD,
    QUARANTINED,
    REPORTED,
)

if TYPE_CHECKING:  # the transmission (HTTP, JWT, X.509) is imported by the functions that send
    from reporting.transmit.dip import DipCredentials
    from reporting.transmit.filing import FilingProtocols, MessageSent

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_STAGING = Path(".dac7") / "staging"
#: An authority's code, as it names the files of its render (``render/authorities/<XX>.json``).
_AUTHORITY = re.compile("[A-Z]{2}")
#: In the staging directory of a group's run (the first operator's): the operators of the run, in
#: order; each further one is staged in ``operators/<ID>/`` below it (:func:`operator_runs`).
OPERATOR_RUNS = "operators.json"
_OPERATOR_ID = re.compile(OPERATOR_ID_PATTERN)


def prepare(
    *,
    config_path: str | Path,
    year: int,
    out_dir: str | Path,
    as_of: date | None = None,
    environment: str | None = None,
    staging_root: str | Path | None = None,
    run_id: str | None = None,
    timestamp: datetime | None = None,
    source_url: str | None = None,
    xsd_dir: str | Path | None = None,
    ledger_url: str | None = None,
    mode: str = "auto",
    sellers: Sequence[str] | None = None,
    authorities: Sequence[str] | None = None,
    operators: Sequence[str] | None = None,
) -> str:
    """Fix a run's settings and create its staging directory; returns that directory.

    ``as_of`` and ``timestamp`` are inputs: the CLI passes today and now, a DAG run passes its
    Params or logical date. Nothing below reads the clock.

    A configuration with further operators (``[operators.ID]``) files for each of them, or for
    ``operators`` alone (their ids; ``default`` is ``[operator]``): one run per operator, each
    with its own settings, run id (:func:`reporting.settings.operator_run_id`), output directory
    (:func:`reporting.settings.operator_out_dir`) and ledger space. The directory returned is the
    first operator's; the others are staged below it (:func:`operator_runs`). Without further
    operators, the run is the single operator's, as it always was.
    """
    with owner_only(), stage_context(stage="prepare", period=year):
        started = time.perf_counter()
        config = load_config(config_path)
        if environment:
            if environment not in ENVIRONMENTS:
                raise ConfigError(f"environment {environment!r}: expected one of {', '.join(ENVIRONMENTS)}")
            config = replace(config, reporting=replace(config.reporting, environment=environment))
        if not 2023 <= year <= 2100:
            raise ConfigError(f"reporting year {year}: DAC7 applies from 2023")
        _check_period(config, year)
        run_id = run_id or new_run_id()
        ts = timestamp or datetime.now(UTC)
        if ts.tzinfo is not None:
            ts = ts.astimezone(UTC).replace(tzinfo=None)
        as_of = as_of or date.today()
        if date(year, 12, 31) > ts.date():
            if config.reporting.environment == PROD:
                raise ConfigError(
                    f"the reporting period {year}-12-31 has not ended (EU rule 10060): a production filing "
                    "for it cannot be made yet; use environment 'test' for a preview"
                )
            log.warning("reporting period %s-12-31 has not ended: a test preview", year)
        if as_of < date(year, 12, 31):
            log.warning("as-of date %s is before the end of the reporting year %s", as_of, year)
        source = source_url or config.source
        if config.spark is not None and source_url:
            raise ConfigError(
                f"{config.path}: [source.spark] names the source's tables and a source URL was given too "
                "(--source or DAC7_SOURCE_URL); a run reads one source: leave out one of them"
            )
        if not source_url and config.source and has_secret(config.source):
            raise ConfigError(
                f"{config.path}: [source] url holds a password; secrets never go in the configuration "
                "file. Pass the URL with --source or DAC7_SOURCE_URL (an Airflow Connection in production)"
            )
        try:
            uuid.UUID(run_id)
        except ValueError:
            raise ConfigError(f"run id {run_id!r} is not a UUID") from None
        if mode not in MODES:
            raise ConfigError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        if (mode == "deletion") != (sellers is not None and len(sellers) > 0):
            raise ConfigError(
                "mode deletion needs the sellers to delete (--sellers ID,...)"
                if mode == "deletion"
                else f"--sellers names the sellers of a deletion; mode {mode} takes none"
            )
        bad = [a for a in authorities or () if not is_filing_jurisdiction(a)]
        if bad:
            raise ConfigError(
                f"authorities {', '.join(bad)}: neither EU member state codes nor jurisdictions of the OECD Model "
                "Rules this version knows"
            )
        selected = run_operators(config, operators, mode=mode, authorities=authorities)
        views = {op: config.for_operator(op) for op in selected}
        for op, view in views.items():
            ignored_authorities(view)  # [authorities.XX] of a state other than the filing state: a warning
            problems = routing_problems(view, mode=mode, authorities=_own_authorities(view, authorities))
            if problems:
                raise ConfigError(" ".join(([f"Operator {op}:"] if config.operators else []) + problems))
            if config.reporting.routing == JURISDICTION:
                filing_state = view.operator.country
                log.info(
                    "routing jurisdiction: a preview of what each member state receives from %s (EU generic "
                    "edition, %s's reading of the rules); nothing of it is filed, and the filing ledger is not used",
                    filing_state,
                    filing_state,
                )
        # the ledger: --ledger, else DAC7_LEDGER_URL, else [ledger] url, else a file in the working directory
        ledger = resolve_ledger_url(ledger_url, config_url=config.ledger, working_dir=Path.cwd())
        assert ledger is not None  # a working directory is given: never None
        ledger_secret = has_secret(ledger)
        lead = Path(staging_root or DEFAULT_STAGING).resolve() / f"{year}-{run_id}"
        for i, (op, view) in enumerate(views.items()):
            own_id = operator_run_id(run_id, op)
            if ledger_secret:
                remember_secret_url(own_id, "ledger", ledger)
            run_dir = lead if i == 0 else lead / OPERATORS_DIR / op
            run_dir.mkdir(parents=True, exist_ok=True)
            for folder in (lead, run_dir.parent, run_dir) if i else (lead,):
                os.chmod(folder, 0o700)  # staging holds personal data: the owner only
            own = _own_authorities(view, authorities)
            assuming = view.operator.assuming_operator  # an operator of the group, or outside it
            settings = RunSettings(
                config=view,
                year=year,
                as_of=as_of,
                run_id=own_id,
                timestamp=ts,
                out_dir=str(operator_out_dir(Path(out_dir).resolve(), op)),
                run_dir=str(run_dir),
                source_url=source if source and not has_secret(source) else None,
                xsd_dir=str(xsd_dir) if xsd_dir else None,
                # a URL with a secret is never written down: the stages of this process keep it in
                # memory (an explicit --ledger always wins), others read DAC7_LEDGER_URL
                ledger_url=None if ledger_secret else ledger,
                ledger_shown=safe_url(ledger) if ledger_secret else None,
                mode=mode,
                sellers=tuple(sellers) if sellers else None,
                authorities=tuple(sorted(set(own))) if own else None,
                operator_ids=config.operator_ids if config.operators else (),
                assumed_by=config.group_operator_of(assuming) if assuming is not None else None,
                assumes=tuple(
                    sorted(
                        found
                        for other in view.operator.assumed_operators
                        if (found := config.group_operator_of(other)) is not None
                    )
                ),
            )
            settings.save()
        if config.operators:
            write_json(lead / OPERATOR_RUNS, {"operators": list(views)})
        log.info("prepare done in %.2f s", time.perf_counter() - started)
    return str(lead)


def run_operators(
    config: Config,
    operators: Sequence[str] | None,
    *,
    mode: str = "auto",
    authorities: Sequence[str] | None = None,
) -> list[str]:
    """The operators a run files for, in the order of the configuration: ``operators`` (their ids),
    else every operator of the configuration. In a filing (routing ``nexus``) of a group narrowed
    to ``authorities``, those whose filing state is among them: an operator files in its own state
    only. A filing in a mode other than ``auto`` (what an authority asked one operator for) is
    for one operator: it must be named. Refused with a sentence that names the ids."""
    known = config.operator_ids
    if operators:
        wanted = set(operators)
        unknown = sorted(wanted - set(known))
        if unknown:
            shown = ", ".join(repr(u) if _OPERATOR_ID.fullmatch(u) else "(not an operator id)" for u in unknown)
            raise ConfigError(
                f"operator(s) {shown}: not configured; the operators of {config.path or 'the configuration'} are "
                f"{', '.join(known)} ('{DEFAULT_OPERATOR}' is [operator], the others [operators.ID])"
            )
        selected = [op for op in known if op in wanted]
    else:
        selected = list(known)
    if authorities and config.operators and config.reporting.routing == NEXUS:
        states = set(authorities)
        filing = [op for op in selected if config.for_operator(op).operator.country in states]
        if not filing:
            found = ", ".join(f"{op} in {config.for_operator(op).operator.country}" for op in selected)
            raise ConfigError(
                f"Refused for authorities {', '.join(sorted(states))}: no operator of the run files there "
                f"({found}); each operator files in its own member state only"
            )
        selected = filing
    if mode != "auto" and len(selected) > 1:
        raise ConfigError(
            f"mode {mode} files what an authority asked of one operator: name it (--operator ID, or the Param "
            f"operator); the run would file for {', '.join(selected)}"
        )
    return selected


def run_problems(
    config: Config,
    *,
    environment: str | None = None,
    mode: str = "auto",
    authorities: Sequence[str] | None = None,
    operators: Sequence[str] | None = None,
) -> list[str]:
    """What :func:`prepare` refuses of a run's operators and routing, one sentence per problem
    (:func:`run_operators`, then :func:`routing_problems` of each operator's run): the DAC7 view's
    trigger page shows them before a run exists."""
    try:
        selected = run_operators(config, operators, mode=mode, authorities=authorities)
    except ConfigError as exc:
        return [str(exc)]
    problems: list[str] = []
    for op in selected:
        view = config.for_operator(op)
        found = routing_problems(
            view, environment=environment, mode=mode, authorities=_own_authorities(view, authorities)
        )
        problems += [f"Operator {op}: {p}" if config.operators else p for p in found]
    return list(dict.fromkeys(problems))


def _own_authorities(config: Config, authorities: Sequence[str] | None) -> list[str] | None:
    """The authorities of one operator's run in a group: its filing state, if named (in a
    filing); every one named in a preview, and in a single operator's run."""
    if not authorities or not config.operators or config.reporting.routing != NEXUS:
        return list(authorities) if authorities else None
    return [a for a in authorities if a == config.operator.country]


def operator_runs(run_dir: str | Path) -> list[tuple[str, str]]:
    """The operators of the run staged in ``run_dir`` (the directory :func:`prepare` returned), each
    with its staging directory: the first operator's is ``run_dir``, each other's is below it
    (``operators/<ID>/``). A single operator's run: itself alone."""
    run = Path(run_dir)
    path = run / OPERATOR_RUNS
    if not path.is_file():
        return [(load_settings(run).operator_id, str(run))]
    ids = [str(i) for i in read_json(path)["operators"]]
    bad = [i for i in ids if not _OPERATOR_ID.fullmatch(i)]
    if bad or not ids:
        raise ConfigError(f"{path}: not a list of operator ids; the run's staging directory is damaged")
    return [(op, str(run if i == 0 else run / OPERATORS_DIR / op)) for i, op in enumerate(ids)]


def routing_problems(
    config: Config,
    *,
    environment: str | None = None,
    mode: str = "auto",
    authorities: Sequence[str] | None = None,
) -> list[str]:
    """What the configuration's routing refuses in a run, one sentence per problem: a preview
    (routing ``jurisdiction``) in production or in a mode other than ``auto``, and a filing
    (routing ``nexus``) to a member state other than the one the operator files in.

    :func:`prepare` raises these sentences; the DAC7 view's trigger page shows them before a run
    exists. ``environment`` is the run's (None: the configuration's)."""
    filing_state = config.operator.country
    environment = environment or config.reporting.environment
    problems = []
    if config.reporting.routing == JURISDICTION:
        if environment == PROD:
            problems.append(
                "The configuration's routing 'jurisdiction' with environment 'prod' is refused. It is a preview of "
                f"what each member state receives from {filing_state} through the exchange between authorities, "
                f"not a filing: the operator files in {filing_state} alone, under {filing_state}'s law for every "
                f"seller, and {filing_state} forwards each seller to its states of residence and property (Art. "
                "8ac(2) of Directive 2011/16/EU). File with routing 'nexus', or run the preview with environment "
                "'test'."
            )
        if mode != "auto":
            problems.append(
                f"Refused for mode {mode}: a preview (routing 'jurisdiction') shows what each member state would "
                f"receive from {filing_state} now, in full; corrections, deletions and nil reports are filings, "
                "made with routing 'nexus'. Choose mode 'auto'."
            )
    else:
        others = sorted(set(authorities or ()) - {filing_state})
        if others:
            problems.append(
                f"Refused for authorities {', '.join(others)}: this operator files in {filing_state} only, under "
                f"{filing_state}'s law for every seller; a filing in {', '.join(others)} is another operator's, with "
                "an [operators.ID] table of its own (routing 'jurisdiction' previews what each state receives). Name "
                f"{filing_state} or leave the authorities empty."
            )
    return problems


@contextmanager
def _stage(name: str, run_dir: str | Path, authority: str | None = None) -> Iterator[RunSettings]:
    """A stage's settings, and its log context: every ``reporting`` log line inside names the
    period, the stage and the authority (:mod:`reporting.logcontext`); the last one says how
    long the stage took."""
    settings = load_settings(run_dir)
    operator = settings.operator_id if settings.operator_ids else None  # a group's: named in every line
    with owner_only(), stage_context(stage=name, period=settings.year, authority=authority, operator=operator):
        started = time.perf_counter()
        # DuckDB's or an ADBC driver's words may quote the rows' values (a TIN in "Could not
        # convert string ..."): the stage fails with their type and words without them
        with database_errors(name):
            yield settings
        log.info("%s done in %.2f s", name, time.perf_counter() - started)


def extract(run_dir: str | Path, source_url: str | None = None) -> ExtractResult:
    """Extract the period from the source, then check the staged data (write, audit)."""
    with _stage("extract", run_dir) as settings:
        if settings.config.spark is not None:  # [source.spark]: the tables are read by Apache Spark
            return _extract_spark.extract(settings, source_url)
        return _extract.extract(settings, source_url)


def aggregate(run_dir: str | Path) -> AggregateResult:
    with _stage("aggregate", run_dir) as settings:
        return _aggregate.aggregate(settings)


def apply_rules(run_dir: str | Path) -> RulesResult:
    """Decide every seller (the rules stage), then audit the decisions (the audit stage, logged and
    timed by its own name): one step of the CLI, one task of the DAGs. Great Expectations, which
    the audit's data checks need, is imported by a worker while the rules decide."""
    with ExitStack() as worker_open:
        with _stage("rules", run_dir) as settings:
            # started in the stage: the worker keeps its umask (its Data Docs are the owner's only)
            worker = worker_open.enter_context(_audit.checks_worker())
            decided = _rules.apply_rules(settings)
        with _stage(AUDIT, run_dir) as settings:
            return _audit.audit(settings, decided, worker)


def plan(run_dir: str | Path) -> list[str]:
    """The authorities the run files to; each then renders, validates and publishes on its own."""
    with _stage("plan", run_dir) as settings:
        return _plan.plan(settings)


@overload
def render(run_dir: str | Path, authority: None = None) -> Rendered: ...
@overload
def render(run_dir: str | Path, authority: str) -> AuthorityRendered: ...


def render(run_dir: str | Path, authority: str | None = None) -> Rendered | AuthorityRendered:
    """Render the messages due to one authority (after :func:`plan`), or plan and render all."""
    with _stage("render", run_dir, authority) as settings:
        if authority is not None:  # a task of its own per authority: its validation is a task too
            return _render.render(settings, authority)
        # every authority: each one's files are validated beside the render of the next
        overlap = _validate.Overlapped(settings)
        try:
            result = _render.render(settings, rendered=overlap.rendered)
            overlap.finish()
        finally:
            overlap.close()
        return result


@overload
def validate(run_dir: str | Path, authority: None = None, part: None = None) -> Validation: ...
@overload
def validate(run_dir: str | Path, authority: str, part: int | None = None) -> AuthorityValidation: ...


def validate(
    run_dir: str | Path, authority: str | None = None, part: int | None = None
) -> Validation | AuthorityValidation:
    """Validate the rendered files: all, one authority's, or one of its files (``part``, 0-based;
    then :func:`combine_validation` writes the authority's report)."""
    with _stage("validate", run_dir, authority) as settings:
        return _validate.validate(settings, authority, part)


def combine_validation(run_dir: str | Path, authority: str) -> AuthorityValidation:
    """The authority's validation report from its files validated one by one."""
    with _stage("validate", run_dir, authority) as settings:
        return _validate.combine_parts(settings, authority)


@overload
def publish(
    run_dir: str | Path,
    authority: None = None,
    *,
    triggered_by: str | None = None,
    approved_by: str | None = None,
    require_approval: bool = False,
) -> Manifest: ...
@overload
def publish(
    run_dir: str | Path,
    authority: str,
    *,
    triggered_by: str | None = None,
    approved_by: str | None = None,
    require_approval: bool = False,
) -> AuthorityPublished: ...


def publish(
    run_dir: str | Path,
    authority: str | None = None,
    *,
    triggered_by: str | None = None,
    approved_by: str | None = None,
    require_approval: bool = False,
) -> AuthorityPublished | Manifest:
    """Publish one authority's files (every planned authority must have validated), or all of
    them and then :func:`finalize` (returns the manifest). Who triggered the run and who approved
    the filing are recorded in the ledger with each message. ``require_approval``: a production
    filing needs the approval :func:`record_approval` recorded in the ledger."""
    with _stage("publish", run_dir, authority) as settings:
        return _publish.publish(
            settings,
            authority,
            triggered_by=triggered_by,
            approved_by=approved_by,
            require_approval=require_approval,
        )


class TransmitResult(TypedDict):
    """What :func:`transmit` did for one filing: ids, tickets and folders, never content."""

    authority: str
    environment: str
    channel: str  # dip | outbox
    messages: list[MessageSent]
    awaiting: list[str]  # MessageRefIds whose DIP protocol is not applied yet
    skipped: str | None  # why nothing was sent (a preview, nothing published)


def transmit(
    run_dir: str | Path,
    authority: str,
    *,
    actor: str,
    credentials: Callable[[], DipCredentials] | None = None,
) -> TransmitResult:
    """Send what this run published to ``authority`` its way (``reporting.transmit``): DE through
    the BZSt DIP (``credentials()`` is asked for then), every other authority to the outbox. A
    production message only with the four-eyes approval the ledger holds; a test message to the DIP
    test host. A preview (routing ``jurisdiction``) is never transmitted: ``skipped`` says why."""
    from reporting.transmit.filing import transmit_filing
    from reporting.transmit.send import channel_of

    settings = load_settings(run_dir)
    base: TransmitResult = {
        "authority": authority,
        "environment": settings.environment,
        "channel": channel_of(authority),
        "messages": [],
        "awaiting": [],
        "skipped": None,
    }
    if settings.preview:
        return {
            **base,
            "skipped": "a preview (routing 'jurisdiction') is never transmitted: its files are test data",
        }
    path = _publish.published_path(settings.run_path, authority)
    if not path.is_file():
        raise ConfigError(f"this run has not published {authority}: nothing to transmit (publish it first)")
    published = [{"message_ref_id": f["message_ref_id"], "file": f["file"]} for f in read_json(path)["files"]]
    if not published:
        return {**base, "skipped": f"this run published no message to {authority}"}
    with stage_context(stage="transmit", period=settings.year, authority=authority, operator=settings.operator_id):
        sent = transmit_filing(
            _plan.ledger_url(settings),
            published,  # type: ignore[arg-type]
            authority=authority,
            out_dir=settings.out_dir,
            actor=actor,
            settings=settings.config.transmission,
            credentials=credentials,
        )
    return {**base, "channel": sent["channel"], "messages": sent["messages"], "awaiting": sent["awaiting"]}


def protocol_wait(run_dir: str | Path) -> dict[str, Any]:
    """Where and how the protocol of this run's DIP transfers is waited for: the DIP host of the
    run's environment, ``[transmission] poll_seconds`` and ``poll_hours``."""
    from reporting.transmit.dip import host_for

    settings = load_settings(run_dir)
    t = settings.config.transmission
    return {
        "url": host_for(settings.environment, test_url=t.dip_test_url, prod_url=t.dip_prod_url),
        "environment": settings.environment,
        "poll_seconds": t.poll_seconds,
        "poll_hours": t.poll_hours,
    }


def fetch_protocols(
    run_dir: str | Path, message_ref_ids: Sequence[str], *, actor: str, credentials: DipCredentials
) -> FilingProtocols:
    """Fetch, apply to the ledger (as ``dac7 status-import`` does) and confirm the DIP protocols
    of these messages of the run that are there; ``waiting`` lists the others."""
    from reporting.transmit.filing import fetch_filing_protocols

    settings = load_settings(run_dir)
    with stage_context(stage="protocol", period=settings.year, operator=settings.operator_id):
        return fetch_filing_protocols(
            _plan.ledger_url(settings),
            message_ref_ids,
            environment=settings.environment,
            out_dir=settings.out_dir,
            actor=actor,
            settings=settings.config.transmission,
            credentials=credentials,
        )


def record_approval(run_dir: str | Path, *, approved_by: str, triggered_by: str | None) -> list[str]:
    """Record a second person's approval of the run's production filing in the ledger (the
    DAG's approval step does, when a person approves in the UI)."""
    ids: list[str] = []
    for _op, one in operator_runs(run_dir):  # a group's run: one approval covers every operator's filing
        with _stage("approve", one) as settings:
            ids += _publish.record_approval(settings, approved_by=approved_by, triggered_by=triggered_by)
    return ids


def report(run_dir: str | Path) -> Manifest:
    """The reports of a run that renders nothing (the quarterly watch), after the rules stage."""
    with _stage("report", run_dir) as settings:
        return _publish.report(settings)


def finalize(run_dir: str | Path) -> Manifest:
    """The reports and the manifest, once every authority is published."""
    with _stage("finalize", run_dir) as settings:
        return _publish.finalize(settings)


def write_statements(run_dir: str | Path) -> StatementsResult:
    """The seller statements of the run's published filing, in ``<out>/statements/`` (after
    :func:`publish`); written again, the same files (idempotent). A preview writes none."""
    with _stage("statements", run_dir) as settings:
        return _statements.write(settings)


@dataclass(frozen=True, slots=True)
class RunResult:
    run_dir: str
    manifest: Manifest
    statements: StatementsResult | None = None
    operator_id: str = DEFAULT_OPERATOR
    #: a group's run: every operator's result, in order (this one, the first, among them)
    operators: tuple[RunResult, ...] = ()

    @property
    def nothing_to_file(self) -> bool:
        return not any(r.manifest["files"] for r in self.operators or (self,))


def run(*, source_url: str | None = None, **prepare_args: Any) -> RunResult:
    """Every stage in order, in this process (what ``dac7 run`` does). A group's run takes each
    stage for every operator before the next stage, as the annual DAG does: one operator's bad
    data, or a file that does not validate, stops the run before anything is published."""
    lead = prepare(source_url=source_url, **prepare_args)
    runs = operator_runs(lead)
    with keep_checks_worker():  # Great Expectations imported once, by one worker, for the stages
        for stage in (lambda d: extract(d, source_url), aggregate, apply_rules, render, validate):
            for _op, run_dir in runs:
                stage(run_dir)
    results = []
    for op, run_dir in runs:
        manifest = publish(run_dir)
        results.append(RunResult(run_dir=run_dir, manifest=manifest, operator_id=op))
    results = [replace(r, statements=write_statements(r.run_dir)) for r in results]
    first = results[0]
    return replace(first, run_dir=lead, operators=tuple(results) if len(runs) > 1 or _is_group(lead) else ())


def _is_group(run_dir: str | Path) -> bool:
    return (Path(run_dir) / OPERATOR_RUNS).is_file()


# --- A group's run: each stage for every operator (what the DAG's tasks call) -------------------


def is_group(run_dir: str | Path) -> bool:
    """Whether the run staged in ``run_dir`` is a group's (its configuration has ``[operators.ID]``):
    its results, labels and events then name the operator."""
    return _is_group(run_dir)


def operator_dir(run_dir: str | Path, operator_id: str) -> str:
    """The staging directory of one operator's run within the run staged in ``run_dir``."""
    runs = operator_runs(run_dir)
    for op, one in runs:
        if op == operator_id:
            return one
    raise ConfigError(
        f"operator {operator_id!r} is not one of this run's ({', '.join(op for op, _ in runs)}): a rerun for an "
        "operator is a new run, triggered with the Param operator (dac7 run --operator)"
    )


def each_operator(run_dir: str | Path, stage: Callable[[str], T]) -> T | dict[str, T]:
    """``stage`` of the run staged in ``run_dir``: its result for a single operator's run; for a
    group's, ``stage`` of every operator's run in order, and the results by operator. A failure
    says which operator's it is (in the log, and as a note on the error)."""
    if not _is_group(run_dir):
        return stage(str(run_dir))
    results: dict[str, T] = {}
    for op, one in operator_runs(run_dir):
        try:
            results[op] = stage(one)
        except Exception as exc:
            exc.add_note(f"operator {op}")
            log.error(
                "operator %s: %s failed (%s); the operators after it did not run", op, _name(stage), type(exc).__name__
            )
            raise
    return results


def _name(stage: Callable[..., Any]) -> str:
    return getattr(stage, "__name__", "the stage").strip("<>") or "the stage"


def plan_filings(run_dir: str | Path) -> list[dict[str, str]]:
    """:func:`plan` of every operator of the run: the filings it makes, each an operator and an
    authority, in order (what the DAG's render and publish are mapped over)."""
    return [{"operator": op, "authority": a} for op, one in operator_runs(run_dir) for a in plan(one)]


def filing_label(run_dir: str | Path, operator_id: str, authority: str) -> str:
    """How a filing is named where people see it (an Airflow task's label): its authority (``LT``),
    and in a group's run the operator first (``de_gmbh DE``), so that a failed filing names its entity."""
    return f"{operator_id} {authority}" if _is_group(run_dir) else authority


def _check_period(config: Config, year: int) -> None:
    """Refuse a period before the law of an operator's filing jurisdiction applies (the United
    Kingdom's from 2024: :attr:`reporting.jurisdictions.RuleSet.first_period`), naming the key
    that chose the jurisdiction."""
    tables = [("operator", config.operator)] + [(f"operators.{k}", g.operator) for k, g in config.operators.items()]
    for table, op in tables:
        key = f"{table}.nexus_country" if op.nexus_country else f"{table}.address.country"
        problem = rule_set_for(op.country).period_problem(year, key)
        if problem:
            raise ConfigError(problem)


def summary_table(manifest: Manifest) -> str:
    """The run summary for people: sellers read, decisions, files and sellers per authority."""
    s = manifest["summary"]
    lines = [
        f"DAC7 {manifest['reporting_year']} ({manifest['environment']}, routing {manifest['routing']}, "
        f"as of {manifest['as_of']})",
    ]
    if manifest.get("operator_id"):  # one operator of a group
        lines.append(f"  operator {manifest['operator_id']}: {manifest.get('operator_name', '')}")
    reading = manifest.get("reading")
    if reading:
        what = (
            f"a preview of what each member state receives from {manifest['filing_state']}"
            if manifest.get("preview")
            else f"filed in {manifest['filing_state']}"
        )
        lines.append(f"  {what}; every seller decided under the {reading['label']}")
    partners = manifest.get("partner_jurisdictions")
    if partners:
        lines.append(f"  reportable jurisdictions: {partners['source']}")
        if partners["assumed"]:
            lines.append(f"  assumed: {partners['assumed']}")
    if manifest.get("assumed_reporting"):
        lines.append(
            "  another platform operator assumes this operator's reporting ([assuming_operator]): the reportable "
            "sellers are reported in its filing; this operator files its declaration, without sellers"
        )
    lines += [
        f"  {'sellers read':<40}{s['sellers_read']:>10}",
        f"  {'transactions read':<40}{s['transactions_read']:>10}",
        f"  {'reportable':<40}{s['reportable']:>10}",
    ]
    for code, n in s["decisions"].items():
        if code != REPORTED:
            lines.append(f"  {code:<40}{n:>10}")
    if manifest["files"]:
        lines.append("")
        lines.append(f"  {'authority':<10}{'kind':<8}{'sellers':>10}{'bytes':>12}  file")
        for f in manifest["files"]:
            kind = f.get("message_type_indic", "")
            records = ", ".join(f"{n} {t}" for t, n in sorted(f.get("records", {}).items()))
            lines.append(
                f"  {f['authority']:<10}{kind:<8}{f['sellers']:>10}{f['bytes']:>12}  {f['file']}"
                + (f"  ({records})" if records and set(f.get("records", {})) != {"new"} else "")
            )
        lines.append(
            f"  {'total':<18}{sum(f['sellers'] for f in manifest['files']):>10}"
            f"{sum(f['bytes'] for f in manifest['files']):>12}  {len(manifest['files'])} file(s)"
        )
    elif manifest.get("watch"):
        lines.append("  a watch: no XML rendered, the reports and the watch list only")
    elif s["reportable"]:
        lines.append("  nothing to file: the ledger holds this period as filed, and nothing changed")
    else:
        lines.append("  nothing to file: no reportable seller in this period")
    others = manifest.get("other_live_filings") or []
    if others:
        lines.append(
            f"  the ledger holds live filings of this period to {', '.join(others)} (not the filing state "
            f"{manifest.get('filing_state')}): left as they are; withdraw them with that authority if wrong"
        )
    for d in manifest.get("discarded", []):
        lines.append(
            f"  discarded {d['message_ref_id']} ({d['authority']}) of run {d['run_id']}: rendered, never published"
        )
    quarantined = {code: n for code, n in s["decisions"].items() if code.startswith(QUARANTINED)}
    if quarantined:
        lines.append("")
        lines.append(f"  {sum(quarantined.values())} seller(s) quarantined (not reported until corrected):")
        lines += [f"    {code.removeprefix(QUARANTINED):<38}{n:>10}" for code, n in sorted(quarantined.items())]
        lines.append("  the rows to correct: reports/quarantine.csv; actions: reports/due_diligence.html")
    checks = manifest.get("data_checks")
    if checks:
        lines.append("")
        failed = [f for c in checks["stages"].values() for f in c["failed"]]
        errors = sum(f["severity"] == "error" for f in failed)
        lines.append(
            f"  data checks: {checks['expectations']} expectation(s), {errors} failed, "
            f"{len(failed) - errors} with warnings, {checks['seconds']:.1f} s"
        )
        order = ("extract", "identity", "aggregates")  # the order they run in (JSON sorts keys)
        for stage, c in sorted(checks["stages"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9):
            listed = ", ".join(f"{f['rule']} ({f['unexpected']} row(s), {f['severity']})" for f in c["failed"])
            docs = f"  Data Docs: {c['data_docs']}" if c.get("data_docs") else ""
            errors = any(f["severity"] == "error" for f in c["failed"])
            outcome = ("failed: " if errors else "passed, with warnings: ") + listed if listed else "passed"
            lines.append(f"    {stage:<12}{outcome}{docs}")
    diligence = manifest.get("due_diligence")
    if diligence:
        lines.append(
            f"  due diligence: {diligence['sellers']} seller(s) need action "
            f"({diligence['findings']} finding(s)): reports/due_diligence.html"
        )
    return "\n".join(lines)


def load_manifest(out_dir: str | Path) -> Manifest:
    result: Manifest = read_json(Path(out_dir) / "manifest.json")
    return result


# --- Questions about a staged run (what the Airflow tasks ask instead of reading staging) ------


def planned_authorities(run_dir: str | Path) -> list[str]:
    """The authorities the run's plan names (after :func:`plan`), in order."""
    return _plan.planned_authorities(load_settings(run_dir))


def is_published(run_dir: str | Path, authority: str) -> bool:
    """Whether this run has published its files to ``authority`` already (a render after that
    would plan the period as if nothing were filed)."""
    return _publish.published_path(Path(run_dir), authority).is_file()


def is_validated(run_dir: str | Path, authority: str) -> bool:
    """Whether every file of ``authority`` passed validation (after :func:`combine_validation`)."""
    path = _validate.validation_path(Path(run_dir), authority)
    return path.is_file() and bool(read_json(path)["valid"])


def output_dir(run_dir: str | Path) -> str:
    """Where the run publishes its files and reports."""
    return load_settings(run_dir).out_dir


def filing_events(run_dir: str | Path, published: dict[str, Any]) -> list[dict[str, Any]]:
    """What each file of one authority's :func:`publish` announces to those who transmit it:
    its MessageRefId, file, output directory, sha256, year and environment. None for a preview
    (routing ``jurisdiction``): a preview is never a filing."""
    settings = load_settings(run_dir)
    if settings.preview:
        return []
    return [
        {
            "message_ref_id": f["message_ref_id"],
            "file": f["file"],
            "out_dir": settings.out_dir,
            "sha256": f["sha256"],
            "year": settings.year,
            "environment": settings.environment,
            **_operator_extra(settings),
        }
        for f in published["files"]
    ]


def _operator_extra(settings: RunSettings) -> dict[str, str]:
    """In a group's run: which operator an event is of (a single operator's events are as they were)."""
    return {"operator_id": settings.operator_id} if settings.operator_ids else {}


def statement_events(run_dir: str | Path, written: StatementsResult) -> list[dict[str, Any]]:
    """What :func:`write_statements` announces to the platform's delivery of the statements:
    where the feed is (``run_feed``: this run's own, which no later run replaces, and the
    ``sha256`` of its bytes), how many statements of which kind, the year and environment (counts and
    paths only: the statements themselves hold personal data). None for a preview, or when no
    statement was written."""
    settings = load_settings(run_dir)
    if settings.preview or not written["written"] or not written["statements"]:
        return []
    return [
        {
            "feed": written["feed"],
            "run_feed": written["run_feed"],
            "sha256": written["sha256"],
            "out_dir": settings.out_dir,
            "statements": written["statements"],
            "kinds": dict(sorted(written["kinds"].items())),
            "filing_state": settings.filing_state,
            "run_id": settings.run_id,
            "year": settings.year,
            "environment": settings.environment,
            **_operator_extra(settings),
        }
    ]


def needs_ledger_url(run_dir: str | Path) -> bool:
    """Whether the stages of the run staged in ``run_dir`` need its ledger's URL from the caller:
    a URL with a password is never written into the run's settings (only its masked form), so a
    process other than the one that prepared the run hands it over with :func:`use_ledger_url`.
    A preview never opens the filing ledger. A group's run: any operator's."""
    return any(_needs_ledger_url(load_settings(d)) for _op, d in operator_runs(run_dir))


def _needs_ledger_url(settings: RunSettings) -> bool:
    return not settings.preview and settings.ledger_url is None and settings.ledger_shown is not None


def use_ledger_url(run_dir: str | Path, ledger_url: str | None) -> None:
    """Hand the stages of the run staged in ``run_dir`` in this process its ledger's URL, kept in
    memory only (never in settings, logs or the environment). It must be the ledger the run was
    prepared with; nothing to do when the run's settings name the ledger themselves, or when no
    URL is given (the stage then says what is missing). A group's run: every operator's run."""
    if not ledger_url:
        return
    for _op, one in operator_runs(run_dir):
        settings = load_settings(one)
        if not _needs_ledger_url(settings):
            continue
        if safe_url(ledger_url) != settings.ledger_shown:
            raise ConfigError(
                f"the run was prepared with the ledger {settings.ledger_shown}, but this task's ledger is "
                f"{safe_url(ledger_url)}: a filing is recorded in the ledger of its run only"
            )
        remember_secret_url(settings.run_id, "ledger", ledger_url)


def keep_run_settings(run_dir: str | Path) -> Path:
    """Copy the run's settings next to its manifest as ``run_settings.json``: what produced the
    published files stays with them. Returns that file."""
    target = Path(output_dir(run_dir)) / "run_settings.json"
    write_json(target, read_json(Path(run_dir) / SETTINGS_FILE))
    return target


def recorded_settings(run_dir: str | Path) -> dict[str, Any]:
    """The run's settings as ``prepare`` recorded them (JSON: no URL with a password in it)."""
    result: dict[str, Any] = read_json(Path(run_dir) / SETTINGS_FILE)
    return result


def rules_summary(run_dir: str | Path) -> RulesResult:
    """What the rules stage decided (after :func:`apply_rules`): the decisions, the reportable
    sellers per authority, the timings. Counts and codes only."""
    result: RulesResult = read_json(Path(run_dir) / "rules" / "rules.json")
    return result


def incomplete_per_authority(run_dir: str | Path) -> dict[str, int]:
    """Per authority, how many sellers crossed the thresholds but have incomplete data (held
    back from the filing until corrected)."""
    path = Path(run_dir) / "rules" / "reportable_incomplete.parquet"
    counts: dict[str, int] = {}
    if path.is_file():
        import pyarrow.parquet as pq

        for authorities in pq.read_table(path, columns=["authorities"]).column("authorities").to_pylist():
            for a in authorities or []:
                counts[a] = counts.get(a, 0) + 1
    return counts


def rendered(run_dir: str | Path, authority: str) -> Rendered:
    """What :func:`render` wrote for ``authority``: its messages and the discarded ones."""
    return _render.rendered(load_settings(run_dir), authority)


def pending_messages(run_dir: str | Path) -> list[PendingMessage]:
    """The messages the run has rendered so far, per planned authority in order, as :func:`rendered`
    lists them, each with ``published``: whether the run has published that authority already.
    Empty before :func:`plan`. Reads the staging alone (not the run's settings). A group's run:
    every operator's, each with its ``operator_id``, a further operator's ``file`` below
    ``operators/<ID>/`` (as :func:`rendered_file` takes it)."""
    run = Path(run_dir)
    out: list[PendingMessage] = []
    for op, one in _staged_operators(run):
        planned = _plan.read_plan(one)
        prefix = "" if one == run else f"{OPERATORS_DIR}/{op}/"
        for authority in planned["authorities"] if planned else []:
            if not _AUTHORITY.fullmatch(authority):  # a code names a file below render/: nothing else
                continue
            found = _render.read_rendered(one, authority)
            published = is_published(one, authority)
            for m in found["messages"] if found else []:
                pending: PendingMessage = {**m, "authority": authority, "published": published}
                if op is not None:
                    pending["file"] = prefix + m["file"]
                    pending["operator_id"] = op
                out.append(pending)
    return out


def _staged_operators(run: Path) -> list[tuple[str | None, Path]]:
    """The operators' staging directories of a run, from the staging alone: ``(None, run)`` for a
    single operator's run."""
    path = run / OPERATOR_RUNS
    if not path.is_file():
        return [(None, run)]
    ids = [str(i) for i in read_json(path)["operators"] if _OPERATOR_ID.fullmatch(str(i))]
    return [(op, run if i == 0 else run / OPERATORS_DIR / op) for i, op in enumerate(ids)]


def last_filings(run_dir: str | Path, authorities: Sequence[str]) -> dict[str, MessageInfo | None]:
    """Per authority, the last message of the run's year and environment that the run's ledger
    holds as filed (published or accepted), None where there is none. Empty for a preview: it is
    never filed and has no filing ledger to compare with."""
    settings = load_settings(run_dir)
    if settings.preview:
        return {}
    out: dict[str, MessageInfo | None] = {}
    with open_ledger(_plan.ledger_url(settings)) as ledger:
        for authority in authorities:
            live = [
                m
                for m in ledger.messages(
                    year=settings.year,
                    authority=authority,
                    environment=settings.environment,
                    operator_id=settings.operator_id,
                )
                if m.status in LIVE_MESSAGE_STATUSES
            ]
            out[authority] = max(live, key=lambda m: m.published or m.created, default=None)
    return out


@dataclass(frozen=True, slots=True)
class DueDiligenceOfFiling:
    """Of the reportable sellers one filing carries (the rules' routing to its authority), how
    many the due-diligence state still finds incomplete (an item missing or invalid), and the day
    that state stands at (the operator's latest daily run; None: due diligence never ran)."""

    reportable: int
    incomplete: int
    as_of: date | None


def due_diligence_of_filings(run_dir: str | Path, authorities: Sequence[str]) -> dict[str, DueDiligenceOfFiling]:
    """Per authority of ``authorities``, :class:`DueDiligenceOfFiling` for the run's operator, from
    the run's ``rules/routing.parquet`` and the due-diligence state in the run's ledger (the
    approval request's count). Empty for a preview: it has no filing ledger."""
    from reporting.ledger.due_diligence import incomplete_sellers, last_run_date

    settings = load_settings(run_dir)
    if settings.preview:
        return {}
    routed: dict[str, list[str]] = {a: [] for a in authorities}
    path = Path(run_dir) / "rules" / "routing.parquet"
    if path.is_file():
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["authority", "seller_id"])
        for authority, seller_id in zip(
            table.column("authority").to_pylist(), table.column("seller_id").to_pylist(), strict=True
        ):
            if authority in routed:
                routed[authority].append(seller_id)
    with open_ledger(_plan.ledger_url(settings)) as ledger:
        as_of = last_run_date(ledger.engine, settings.operator_id)
        return {
            a: DueDiligenceOfFiling(
                reportable=len(set(ids)),
                incomplete=len(incomplete_sellers(ledger.engine, ids, settings.operator_id)) if as_of else 0,
                as_of=as_of,
            )
            for a, ids in routed.items()
        }


def rendered_file(run_dir: str | Path, file: str) -> Path:
    """The path of a rendered message (``file`` as :func:`rendered` names it, or as
    :func:`pending_messages` names a further operator's: ``operators/<ID>/<XX>/<name>``), before
    it is published."""
    parts = file.split("/", 2)
    if len(parts) == 3 and parts[0] == OPERATORS_DIR and _OPERATOR_ID.fullmatch(parts[1]):
        return Path(run_dir) / OPERATORS_DIR / parts[1] / "render" / parts[2]
    return Path(run_dir) / "render" / file


def other_live_filings(run_dir: str | Path) -> list[str]:
    """The authorities other than the filing state that the ledger holds live filings of this
    period to, as :func:`plan` found them."""
    return _plan.planned_other_live_filings(load_settings(run_dir))
