"""Render: one DPI message per receiving authority, streamed to staging.

Sellers are read from the staged decisions in seller_id order, in batches, and written one by
one: memory does not grow with the number of sellers.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from reporting.authorities import select_profile
from reporting.authorities.base import AuthorityProfile, Doc, DocIds
from reporting.errors import ConfigError, DataError
from reporting.findings import Finding
from reporting.ledger import (
    DELETION,
    OTHER_PLATFORM_OPERATORS,
    PLATFORM_OPERATOR,
    PO_KEY,
    PROFILE_KINDS,
    RESEND,
    SELLER,
    Ledger,
    LedgerError,
    LedgerModeError,
    PlannedMessage,
    PlannedRecord,
    RecordKey,
    content_hash,
    open_ledger,
    plan_filing,
)
from reporting.ledger.url import ledger_from_env
from reporting.mapping import operator_record, seller_records, share_seller_rows
from reporting.records import (
    MessageHeader,
    OperatorRecord,
    SellerRecord,
    operator_content,
    seller_content,
    seller_from_content,
)
from reporting.settings import RunSettings, read_json, secret_url, write_json
from reporting.source import safe_url
from reporting.staging import connect
from reporting.variants import reading_for

log = logging.getLogger(__name__)

#: The rows of :func:`reporting.mapping.share_seller_rows`, in the render stage's folder while it renders.
SHARED_SELLERS_FILE = ".routed_seller_rows.parquet"


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
                "a production filing" if settings.environment == "prod" else "test data",
                ", ".join(others),
                settings.filing_state,
            )
    write_json(settings.stage_dir("render") / "plan.json", {"authorities": authorities, "other_live_filings": others})
    return authorities


def other_live_filings(settings: RunSettings, ledger: Ledger) -> list[str]:
    """Authorities other than the filing state that hold live messages of the run's period and
    environment in the filing ledger (filed under an earlier routing, or before the filing state
    changed): a filing never touches them, and the run says so."""
    return sorted(
        {
            m.authority
            for m in ledger.messages(year=settings.year, environment=settings.environment)
            if m.status in LIVE_MESSAGE_STATUSES and m.authority != settings.filing_state
        }
    )


def planned_other_live_filings(settings: RunSettings) -> list[str]:
    others: list[str] = read_json(settings.run_path / "render" / "plan.json").get("other_live_filings", [])
    return others


def planned_authorities(settings: RunSettings) -> list[str]:
    authorities: list[str] = read_json(settings.run_path / "render" / "plan.json")["authorities"]
    return authorities


def render(settings: RunSettings, authority: str | None = None) -> dict[str, Any]:
    """Write ``<run>/render/<authority>/<file>.xml``: for one authority (or every planned one),
    the messages that the filing ledger says are due (a first filing, additions, corrections,
    deletions, a nil report), each recorded in the ledger as rendered, not yet published.

    Per authority the result is ``render/authorities/<XX>.json``; rendering all of them also
    writes ``render/render.json`` with every message in order."""
    if authority is None:
        authorities = plan(settings)
        results: list[dict[str, Any]] = []
        if authorities:
            # one connection, and every seller read once, for all the authorities (a preview
            # has 27): 40 ms to connect and 70 ms to read per authority otherwise
            con = connect(settings.run_path, "extract", "aggregate", "rules")
            rows = settings.stage_dir("render") / SHARED_SELLERS_FILE
            try:
                shared = len(authorities) > 1
                if shared:
                    share_seller_rows(con, rows)
                results = [_render_authority(settings, a, con, shared=shared) for a in authorities]
            finally:
                con.close()
                rows.unlink(missing_ok=True)  # personal data: kept no longer than the render
        summary = {
            "messages": [m for r in results for m in r["messages"]],
            "discarded": [d for r in results for d in r["discarded"]],
        }
        write_json(settings.stage_dir("render") / "render.json", summary)
        log.info("render year=%s: %d message(s)", settings.year, len(summary["messages"]))
        return summary
    con = connect(settings.run_path, "extract", "aggregate", "rules")
    try:
        return _render_authority(settings, authority, con)
    finally:
        con.close()


def _render_authority(settings: RunSettings, authority: str, con: Any, *, shared: bool = False) -> dict[str, Any]:
    """:func:`render` of one authority, over an open connection to the staged data (``shared``:
    the rows of :func:`reporting.mapping.share_seller_rows` are on it)."""
    findings: list[Finding] = []
    operator = operator_record(settings)
    with (
        stage_ledger(settings, authority) as url,
        open_ledger(url) as ledger,
        ledger.lock(settings.environment, authority, settings.year, holder=settings.run_id),
    ):
        discarded = _discard_pending(settings, ledger, authority)
        messages = _render_one(settings, con, authority, operator, findings, ledger, shared=shared)
    if findings:
        raise DataError(findings)
    summary = {"authority": authority, "messages": messages, "discarded": discarded}
    # an earlier validation of this authority's files says nothing of the files rendered now
    shutil.rmtree(settings.run_path / "validate" / "parts" / authority, ignore_errors=True)
    (settings.run_path / "validate" / "authorities" / f"{authority}.json").unlink(missing_ok=True)
    write_json(settings.stage_dir("render/authorities") / f"{authority}.json", summary)
    log.info("render year=%s authority=%s: %d message(s)", settings.year, authority, len(messages))
    return summary


def rendered(settings: RunSettings, authority: str | None = None) -> dict[str, Any]:
    """What the render wrote: for one authority, or for every planned one in order."""
    authorities = [authority] if authority else planned_authorities(settings)
    parts = [read_json(settings.run_path / "render" / "authorities" / f"{a}.json") for a in authorities]
    return {
        "messages": [m for p in parts for m in p["messages"]],
        "discarded": [d for p in parts for d in p["discarded"]],
    }


#: messages whose records count as filed
LIVE_MESSAGE_STATUSES = ("published", "accepted")


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
        os.replace(work, final)
    else:
        work.unlink(missing_ok=True)


def filing_authorities(settings: RunSettings, ledger: Ledger | None, routed: list[str]) -> list[str]:
    """The authorities this run files to.

    A filing (routing ``nexus``) goes to the filing state alone: when it has sellers now, a filing
    of the period in the ledger (a correction or deletion may be due), or a profile that expects a
    nil report for a period without sellers. A preview goes to every state that receives a seller
    (``routed``). Either is narrowed to ``settings.authorities``."""
    env, year = settings.environment, settings.year
    filing_state = settings.filing_state
    if settings.preview:
        found = sorted(routed)
        if settings.authorities is not None:
            found = [a for a in found if a in settings.authorities]
        return found
    if ledger is None:
        raise ConfigError("a filing is planned against the filing ledger: open it first")
    filed = {
        m.authority
        for m in ledger.messages(year=year, environment=env, authority=filing_state)
        if m.status in LIVE_MESSAGE_STATUSES
    }
    nil = {filing_state} if select_profile(filing_state, settings.config, warn=False).expects_nil else set()
    found = sorted((set(routed) | filed | nil) & {filing_state})
    if settings.authorities is not None:
        others = sorted(set(settings.authorities) - {filing_state})
        if others:
            raise ConfigError(
                f"--authorities {', '.join(others)}: this operator files in {filing_state} only; the law and the "
                f"format of {filing_state} decide its filing for every seller. A filing in {', '.join(others)} "
                "is another operator's, with a configuration of its own (routing 'jurisdiction' previews what "
                "each state receives)"
            )
        if filing_state in settings.authorities and filing_state not in found:
            found = [filing_state]  # named explicitly: a nil report or a mode that needs it
        found = [a for a in found if a in settings.authorities]
    return found


def _check_deletion(settings: RunSettings, ledger: Ledger, authorities: list[str]) -> None:
    """A deletion names sellers that were filed: each must be live with at least one authority of
    the run (an authority that never received a seller skips it; a seller no authority holds is
    a mistake, refused before anything is rendered)."""
    held = {
        key
        for a in authorities
        for (kind, key) in ledger.live_records(settings.environment, a, settings.year)
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


def _discard_pending(settings: RunSettings, ledger: Ledger, authority: str) -> list[dict[str, Any]]:
    """Messages of this period rendered but never published (a run that stopped between render
    and publish) are discarded before planning again, and the run says so; a message of this
    very run (a retried render) is replaced by the same message."""
    out = []
    for m in ledger.pending(settings.environment, authority, settings.year):
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


def _render_one(
    settings: RunSettings,
    con: Any,
    authority: str,
    operator: OperatorRecord,
    findings: list[Finding],
    ledger: Ledger,
    *,
    shared: bool = False,
) -> list[dict[str, Any]]:
    """The messages due to one authority: the difference between what is reportable now and
    what the ledger holds as filed, planned by :func:`reporting.ledger.plan_filing` (or a kind
    forced by ``settings.mode``). Each planned message is one file, or several parts where the
    profile limits the size or the sellers of a file (each part a message of its own, the
    PlatformOperator resent in the parts after the first). ``shared``: see :func:`reporting.mapping.seller_records`."""
    profile = select_profile(authority, settings.config)
    env, year = settings.environment, settings.year
    ids = replace(
        profile.doc_ids(settings.run_id, settings.config.operator.country, authority, year),
        identifiers=settings.identifiers(authority),
        environment=env,
    )
    current: dict[RecordKey, tuple[str, Any]] = {}
    po = operator_content(operator)
    current[PO_KEY] = (content_hash(po), po)
    records = seller_records(
        con,
        authority,
        profile,
        settings.timestamp.year,
        preview=settings.preview,
        reading=reading_for(settings.filing_state),
        shared=shared,
    )
    for record, problems in records:
        if problems:  # the rules stage quarantines such sellers: this is a safety net
            findings.extend(problems)
            continue
        content = seller_content(record)
        current[(SELLER, record.seller_id)] = (content_hash(content), content)
    live = ledger.live_records(env, authority, year)
    mode, sellers = settings.mode, settings.sellers
    if mode == "deletion" and sellers is not None:
        sellers = [s for s in sellers if (SELLER, s) in live]
        if not sellers:
            return []  # none of the named sellers was filed to this authority
    plan = plan_filing(
        current,
        live,
        profile_expects_nil=profile.expects_nil,
        new_id=lambda purpose: profile.doc_ref_id(ids, purpose),
        environment=env,
        mode=mode,
        sellers=sellers if mode == "deletion" else None,
        authority=authority,
        year=year,
        indic=lambda doc_type, e: profile.doc_type_indic(PROFILE_KINDS[doc_type], e),
    )
    problems = ledger.problems(plan, environment=env, authority=authority, year=year)
    if problems:
        raise LedgerError(
            f"the plan for {authority} {year} ({env}) breaks the rules the authority applies on receipt: "
            + "; ".join(f"[{code}] {text}" for code, text in problems)
        )
    target_dir = settings.stage_dir(f"render/{authority}")
    rendered: list[dict[str, Any]] = []
    for planned in plan:
        for part in _parts(profile, planned, operator, env):
            rendered.append(
                _write_message(settings, profile, ids, authority, operator, part, len(rendered) + 1, target_dir, ledger)
            )
    for m in rendered:
        m["parts"] = len(rendered)
    return rendered


def _parts(
    profile: AuthorityProfile, planned: PlannedMessage, operator: OperatorRecord, env: str
) -> list[PlannedMessage]:
    """A planned message as the files the profile takes: itself, or parts of at most
    ``max_sellers_per_file`` sellers and ``max_file_bytes`` bytes, the PlatformOperator resent
    (OECD0) in every part after the first."""
    if not (profile.max_sellers_per_file or profile.max_file_bytes) or not planned.sellers:
        return [planned]
    po = planned.platform_operator
    if po.doc_type == DELETION:
        raise LedgerError("a withdrawal of the whole filing cannot be split into parts")
    header = MessageHeader("XX", "XX", "X" * 40, planned.message_type_indic, date(2000, 12, 31), datetime(2000, 1, 1))
    records = ((seller_from_content(r.content), _doc(r)) for r in planned.sellers)
    by_id = {r.seller_key: r for r in planned.sellers}
    findings: list[Finding] = []
    batches = list(
        _split(
            profile,
            header,
            operator,
            _doc(po),
            records,
            profile.max_sellers_per_file,
            profile.max_file_bytes,
            findings,
        )
    )
    if findings:
        raise DataError(findings)
    resend = PlannedRecord(
        kind=PLATFORM_OPERATOR,
        seller_key=None,
        doc_type=RESEND,
        doc_type_indic=profile.doc_type_indic(PROFILE_KINDS[RESEND], env),
        doc_ref_id=po.doc_ref_id,
        corr_doc_ref_id=None,
        content_hash=po.content_hash,
        content=po.content,
    )
    others = [r for r in planned.records if r.kind == OTHER_PLATFORM_OPERATORS]
    return [
        replace(planned, records=(po if i == 0 else resend, *others, *(by_id[rec.seller_id] for rec, _ in batch)))
        for i, batch in enumerate(batches)
        if batch
    ]


def _doc(r: PlannedRecord) -> Doc:
    return (
        (r.doc_type_indic, r.doc_ref_id, r.corr_doc_ref_id) if r.corr_doc_ref_id else (r.doc_type_indic, r.doc_ref_id)
    )


def _write_message(
    settings: RunSettings,
    profile: AuthorityProfile,
    ids: DocIds,
    authority: str,
    operator: OperatorRecord,
    planned: PlannedMessage,
    number: int,
    target_dir: Path,
    ledger: Ledger,
) -> dict[str, Any]:
    """One file of one planned message, written atomically and recorded in the ledger as
    rendered (its ids are used from now on, whether it is published or discarded)."""
    env = settings.environment
    h = MessageHeader(
        transmitting_country=ids.transmitting_country,
        receiving_country=authority,
        message_ref_id=profile.message_ref_id(ids, number),
        message_type_indic=planned.message_type_indic,
        reporting_period=date(settings.year, 12, 31),
        timestamp=profile.message_timestamp(settings.timestamp),
        environment=env,
        identifiers=settings.identifiers(authority),
        transfer_id=ids.unique("transfer", authority, str(number)),
    )
    name = profile.file_name(h)
    tmp = target_dir / f".{name}.tmp"
    sellers = ((seller_from_content(r.content), _doc(r)) for r in planned.sellers)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            count = profile.write(fh, h, operator, _doc(planned.platform_operator), sellers)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written file (it would hold personal data)
        raise
    path = target_dir / name
    tmp.replace(path)
    sha256 = file_sha256(path)
    ledger.record_message(
        planned,
        message_ref_id=h.message_ref_id,
        authority=authority,
        operator=f"{settings.config.operator.tin_issued_by}:{settings.config.operator.tin}",
        year=settings.year,
        environment=env,
        file_name=f"{authority}/{name}",
        sha256=sha256,
        run_id=settings.run_id,
        transfer_id=h.transfer_id,
        created=settings.timestamp,
    )
    kinds: dict[str, int] = {}
    for r in planned.sellers:
        kinds[r.doc_type] = kinds.get(r.doc_type, 0) + 1
    return {
        "authority": authority,
        "profile": profile.code,
        "edition": profile.edition,
        "schema": profile.schema_resource,
        "message_ref_id": h.message_ref_id,
        "message_type_indic": h.message_type_indic,
        "file": f"{authority}/{name}",
        "sellers": count,
        "records": kinds,
        "platform_operator": planned.platform_operator.doc_type,
        "part": number,
        "sha256": sha256,
    }


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _size(
    profile: Any,
    header: MessageHeader,
    operator: OperatorRecord,
    doc: Doc,
    records: list[tuple[SellerRecord, Doc]],
) -> int:
    buf = io.BytesIO()
    profile.write(buf, header, operator, doc, records)
    return len(buf.getvalue())


def _split(
    profile: Any,
    header: MessageHeader,
    operator: OperatorRecord,
    operator_doc: Doc,
    records: Iterable[tuple[SellerRecord, Doc]],
    max_sellers: int | None,
    max_bytes: int | None,
    findings: list[Finding],
) -> Iterator[list[tuple[SellerRecord, Doc]]]:
    """Batches of sellers that each fit a file: at most ``max_sellers``, and at most
    ``max_bytes`` once written (each seller's exact size is measured by writing it once; a part's
    sellers are held in memory until the part is written, so its size bounds the memory)."""
    empty = _size(profile, header, operator, operator_doc, []) if max_bytes else 0
    batch: list[tuple[SellerRecord, Doc]] = []
    size = empty
    for rec in records:
        n = _size(profile, header, operator, operator_doc, [rec]) - empty if max_bytes else 0
        if max_bytes and empty + n > max_bytes:
            findings.append(
                Finding(
                    rule="file.seller_exceeds_file_limit",
                    table="sellers",
                    key=rec[0].seller_id,
                    seller_id=rec[0].seller_id,
                    message=f"this seller alone needs {empty + n} bytes; the authority's files hold {max_bytes}",
                )
            )
            continue
        if batch and ((max_sellers and len(batch) >= max_sellers) or (max_bytes and size + n > max_bytes)):
            yield batch
            batch, size = [], empty
        batch.append(rec)
        size += n
    yield batch
