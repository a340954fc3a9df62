"""Plan: which authorities a run files to, and the ledger each stage of the run opens.

The stage (:func:`plan`) reads the routed sellers of the rules stage and the filing ledger, and
writes ``render/plan.json``: the authorities this run files to (a filing: the filing state alone;
a preview: every state that receives a seller) and the live filings of the period to other
authorities, which the run leaves as they are. A deletion of sellers that no authority holds is
refused here, before anything is rendered. Render, validate and publish then run per authority
(:func:`planned_authorities`), each opening the run's ledger through :func:`stage_ledger`.

Which messages each authority receives is planned by the render, under the ledger's lock of the
authority and period (:func:`reporting.stages.render._render_one` calls
:func:`reporting.ledger.plan.plan_filing`): the difference between what is reportable now and
what the ledger holds as filed. Where a correction's or a deletion's CorrDocRefId comes from:
:func:`reporting.ledger.plan._correction` chooses the records that changed or went away, and
:meth:`reporting.ledger.plan._Builder.correction` and :meth:`~reporting.ledger.plan._Builder.deletion`
set CorrDocRefId to the DocRefId of the live record each one replaces (the DocRefId the
authority holds); a record's own DocRefId is made by ``_Builder.fresh`` with the profile's
``doc_ref_id``, never one used before.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reporting.authorities import select_profile
from reporting.countries import is_eu
from reporting.errors import ConfigError
from reporting.ledger import SELLER, Ledger, LedgerModeError, open_ledger
from reporting.ledger.model import LIVE_MESSAGE_STATUSES
from reporting.ledger.url import ledger_from_env
from reporting.results import DiscardedMessage, PlanFile
from reporting.settings import RunSettings, read_json, secret_url, write_json
from reporting.source import safe_url
from reporting.staging import connect
from reporting.vocabulary import PROD

log = logging.getLogger(__name__)


def plan(settings: RunSettings) -> list[str]:
    """The authorities this run files to (``render/plan.json``): each then renders, validates and
    publishes on its own (a mapped task per authority in Airflow). A deletion of sellers that no
    authority holds is refused here, before anything is rendered."""
    con = connect(settings.run_path, "rules")
    try:
        routed = [r[0] for r in con.execute("select distinct authority from routing order by 1").fetchall()]
    finally:
        con.close()
    others: list[str] = []
    if settings.preview:
        authorities = filing_authorities(settings, None, routed)
    else:
        with open_ledger(ledger_url(settings)) as ledger:
            authorities = filing_authorities(settings, ledger, routed)
            if settings.mode == "deletion":
                _check_deletion(settings, ledger, authorities)
            others = other_live_filings(settings, ledger)
        if others:
            log.warning(
                "the filing ledger holds live filings of %s %s (%s) to %s, not the filing state %s: this run "
                "neither corrects nor deletes them. If they were filed under an earlier routing, or before the "
                "filing state changed, withdraw them with that authority (its portal) and import its status "
                "message, or keep them if they are right",
                settings.year,
                settings.environment,
                "a production filing" if settings.environment == PROD else "test data",
                ", ".join(others),
                settings.filing_state,
            )
    planned: PlanFile = {"authorities": authorities, "other_live_filings": others}
    write_json(settings.stage_dir("render") / "plan.json", planned)
    return authorities


def filing_authorities(settings: RunSettings, ledger: Ledger | None, routed: list[str]) -> list[str]:
    """The authorities this run files to.

    A filing (routing ``nexus``) goes to the filing state alone: when it has sellers now, a filing
    of the period in the ledger (a correction or deletion may be due), a profile that expects a
    nil report for a period without sellers, or an operator whose reporting another assumes (its
    declaration). A preview goes to every state that receives a seller (``routed``), and to each
    member state an assumed operator is resident in (:func:`assumed_residences`). Either is narrowed
    to ``settings.authorities``."""
    env, year = settings.environment, settings.year
    filing_state = settings.filing_state
    if settings.preview:
        found = sorted(set(routed) | assumed_residences(settings))
        if settings.authorities is not None:
            found = [a for a in found if a in settings.authorities]
        return found
    if ledger is None:
        raise ConfigError("a filing is planned against the filing ledger: open it first")
    filed = {
        m.authority
        for m in ledger.messages(year=year, environment=env, authority=filing_state, operator_id=settings.operator_id)
        if m.status in LIVE_MESSAGE_STATUSES
    }
    # a nil report where the profile expects one; the declaration of an operator whose reporting
    # another assumes (no seller) wherever it files
    assumed = settings.config.operator.assuming_operator is not None
    nil = {filing_state} if assumed or select_profile(filing_state, settings.config).expects_nil else set()
    found = sorted((set(routed) | filed | nil) & {filing_state})
    if settings.authorities is not None:
        others = sorted(set(settings.authorities) - {filing_state})
        if others:
            raise ConfigError(
                f"--authorities {', '.join(others)}: this operator files in {filing_state} only; the law and the "
                f"format of {filing_state} decide its filing for every seller. A filing in {', '.join(others)} "
                "is another operator's, with an [operators.ID] table of its own (routing 'jurisdiction' previews what "
                "each state receives)"
            )
        if filing_state in settings.authorities and filing_state not in found:
            found = [filing_state]  # named explicitly: a nil report or a mode that needs it
        found = [a for a in found if a in settings.authorities]
    return found


def assumed_residences(settings: RunSettings) -> set[str]:
    """The member states an assumed operator (``[[assumed_operators]]``) is resident in: in the
    exchange each receives its resident assumed operators (EU rule 40050), in a DPI403 where it
    receives no seller. That DPI403 is the only nil message the exchange admits: it names an
    AssumedPlatformOperator (20030) and no seller (20050). Whether the filing state sends it is
    read from these rules alone (no text of Article 8ac on it was found): unsure."""
    return {o.address.country for o in settings.config.operator.assumed_operators if is_eu(o.address.country)}


def _check_deletion(settings: RunSettings, ledger: Ledger, authorities: list[str]) -> None:
    """A deletion names sellers that were filed: each must be live with at least one authority of
    the run (an authority that never received a seller skips it; a seller no authority holds is
    a mistake, refused before anything is rendered)."""
    held = {
        key
        for a in authorities
        for (kind, key) in ledger.live_records(settings.environment, a, settings.year, operator_id=settings.operator_id)
        if kind == SELLER
    }
    unknown = sorted(set(settings.sellers or ()) - held)
    period = f"{', '.join(authorities) or 'any authority'} {settings.year} ({settings.environment})"
    if not held:
        raise LedgerModeError(f"mode deletion: nothing was filed for {period} yet; there is nothing to delete")
    if unknown:
        raise LedgerModeError(
            f"mode deletion: {len(unknown)} seller(s) have no live record in {period}: "
            f"{', '.join(unknown[:20])}; nothing was deleted"
        )


def other_live_filings(settings: RunSettings, ledger: Ledger) -> list[str]:
    """Authorities other than the filing state that hold live messages of the run's period and
    environment in the filing ledger (filed under an earlier routing, or before the filing state
    changed): a filing never touches them, and the run says so."""
    return sorted(
        {
            m.authority
            for m in ledger.messages(
                year=settings.year, environment=settings.environment, operator_id=settings.operator_id
            )
            if m.status in LIVE_MESSAGE_STATUSES and m.authority != settings.filing_state
        }
    )


def read_plan(run_path: Path) -> PlanFile | None:
    """The plan of the run staged in ``run_path`` (``render/plan.json``); None before :func:`plan`."""
    path = run_path / "render" / "plan.json"
    if not path.is_file():
        return None
    planned: PlanFile = read_json(path)
    return planned


def _read_plan(settings: RunSettings) -> PlanFile:
    planned: PlanFile = read_json(settings.run_path / "render" / "plan.json")
    return planned


def planned_authorities(settings: RunSettings) -> list[str]:
    return _read_plan(settings)["authorities"]


def planned_other_live_filings(settings: RunSettings) -> list[str]:
    return _read_plan(settings).get("other_live_filings", [])


def ledger_url(settings: RunSettings, authority: str | None = None) -> str:
    """The ledger of the run: from its settings, else (a URL with a password is never stored)
    from ``DAC7_LEDGER_URL``. A preview (routing ``jurisdiction``) never touches the filing ledger:
    each of its authorities files into a SQLite ledger of its own in the run's staging
    (``preview/<XX>/ledger.sqlite3``, one file per authority so that the mapped tasks of a run on
    workers without a shared disk never write the same file), which goes with the staging."""
    if settings.preview:
        if authority is None:
            raise ConfigError("a preview has a ledger per authority: name the authority")
        folder = settings.stage_dir(f"preview/{authority}")
        return f"sqlite:///{folder / PREVIEW_LEDGER}"
    url = settings.ledger_url or secret_url(settings.run_id, "ledger")
    if url:
        return url
    url = ledger_from_env()
    if settings.ledger_shown:  # the run's ledger carries a secret: only that ledger will do
        if not url:
            raise ConfigError(
                f"the run was prepared with the ledger {settings.ledger_shown}, whose password is kept in the "
                "memory of the process that prepared it; this process has none: set DAC7_LEDGER_URL to it"
            )
        if safe_url(url) != settings.ledger_shown:
            raise ConfigError(
                f"the run was prepared with the ledger {settings.ledger_shown}, but DAC7_LEDGER_URL is "
                f"{safe_url(url)}: a filing is recorded in the ledger of its run only"
            )
    if not url:
        raise ConfigError("no ledger URL: pass --ledger, set DAC7_LEDGER_URL or [ledger] url")
    return url


PREVIEW_LEDGER = "ledger.sqlite3"


@functools.lru_cache(maxsize=1)
def _empty_ledger() -> Path:
    """An empty SQLite ledger at the newest schema, made once per process (migrating costs about
    40 ms, once per authority of a preview otherwise); removed when the process ends."""
    import atexit
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="dac7-empty-ledger-"))
    path = folder / PREVIEW_LEDGER
    open_ledger(f"sqlite:///{path}").close()
    atexit.register(shutil.rmtree, folder, True)
    return path


@contextmanager
def stage_ledger(settings: RunSettings, authority: str | None = None, *, write: bool = True) -> Iterator[str]:
    """The URL a stage opens the run's ledger with. A filing: the filing ledger itself. A preview:
    a working copy of the authority's preview ledger, under a temporary name that never leaves
    the worker, renamed over ``preview/<XX>/ledger.sqlite3`` when a stage that writes succeeds
    (and dropped when it fails, or when the stage only reads): like every other file in staging,
    the ledger is replaced whole, never changed in place, so a copy of the run on shared staging
    never holds a half-written one."""
    if not settings.preview:
        yield ledger_url(settings)
        return
    final = Path(ledger_url(settings, authority).removeprefix("sqlite:///"))
    work = final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    shutil.copyfile(final if final.exists() else _empty_ledger(), work)
    os.chmod(work, 0o600)
    try:
        yield f"sqlite:///{work}"
    except BaseException:
        work.unlink(missing_ok=True)
        raise
    if write and work.exists():
        try:
            _sync(work)  # a stage may have written it unsynced (open_ledger(..., scratch=True))
            os.replace(work, final)
        except BaseException:  # the copy holds personal data: never left behind
            work.unlink(missing_ok=True)
            raise
    else:
        work.unlink(missing_ok=True)


def _sync(path: Path) -> None:
    """Flush a file's data to disk (before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard_pending(settings: RunSettings, ledger: Ledger, authority: str) -> list[DiscardedMessage]:
    """Messages of this period rendered but never published (a run that stopped between render
    and publish) are discarded before planning again, and the run says so; a message of this
    very run (a retried render) is replaced by the same message."""
    out: list[DiscardedMessage] = []
    for m in ledger.pending(settings.environment, authority, settings.year, operator_id=settings.operator_id):
        if m.run_id == settings.run_id:
            ledger.forget_rendered(m.message_ref_id, run_id=settings.run_id)
        else:
            ledger.discard(m.message_ref_id)
            log.warning(
                "discarded message %s (%s, %s %s) of run %s: rendered %s, never published; the "
                "difference is planned again",
                m.message_ref_id,
                m.message_type_indic,
                authority,
                settings.year,
                m.run_id,
                m.created.isoformat(timespec="seconds"),
            )
            out.append({"authority": authority, "message_ref_id": m.message_ref_id, "run_id": m.run_id})
    return out
