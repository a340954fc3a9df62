"""Render: one DPI message per receiving authority, streamed to staging.

Sellers are read from the staged decisions in seller_id order, in batches, and written one by
one: memory does not grow with the number of sellers.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import shutil
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, overload

from reporting.authorities import select_profile
from reporting.authorities.base import AuthorityProfile, Doc, DocIds
from reporting.errors import DataError
from reporting.files import file_sha256
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
    PlannedMessage,
    PlannedRecord,
    content_hash,
    open_ledger,
    opo_key,
    plan_filing_sorted,
)
from reporting.ledger.contents import ContentStore
from reporting.ledger.model import DPI403, RecordsView, period_label
from reporting.ledger.plan import body_order
from reporting.mapping import operator_record, other_operator_records, seller_records, share_seller_rows
from reporting.records import (
    MessageHeader,
    OperatorRecord,
    OtherOperatorRecord,
    SellerRecord,
    operator_content,
    other_operator_content,
    other_operator_from_content,
    seller_content,
    seller_from_content,
)
from reporting.results import AuthorityRendered, Rendered, RenderedMessage
from reporting.settings import RunSettings, read_json, write_json
from reporting.stages.plan import discard_pending, plan, planned_authorities, stage_ledger
from reporting.staging import connect
from reporting.variants import reading_for
from reporting.vocabulary import ASSUMED

log = logging.getLogger(__name__)

#: The folder of :func:`reporting.mapping.share_seller_rows`'s rows, in the render stage's folder while it renders
#: (one of :data:`reporting.shared_staging.LOCAL_ONLY_DIRS`: never uploaded to shared staging).
SHARED_SELLERS_FILE = ".routed_seller_rows"
#: The :class:`reporting.ledger.contents.ContentStore` of an authority's sellers
#: (``<name>-<authority>.tmp``), in the render stage's folder while it renders that authority: a
#: temp file (``.name.tmp``), which :func:`reporting.shared_staging.local_only` keeps on the worker.
CONTENTS_FILE = ".seller_contents"


def contents_file(settings: RunSettings, authority: str) -> Path:
    """The :data:`CONTENTS_FILE` of ``authority`` in the run's render folder."""
    return settings.stage_dir("render") / f"{CONTENTS_FILE}-{authority}.tmp"


def _remove_contents_files(settings: RunSettings) -> None:
    """The content stores a killed render left behind (personal data): every authority's."""
    for path in settings.stage_dir("render").glob(f"{CONTENTS_FILE}-*"):
        path.unlink(missing_ok=True)


@overload
def render(
    settings: RunSettings, authority: None = None, *, rendered: Callable[[str], None] | None = None
) -> Rendered: ...
@overload
def render(settings: RunSettings, authority: str) -> AuthorityRendered: ...


def render(
    settings: RunSettings, authority: str | None = None, *, rendered: Callable[[str], None] | None = None
) -> Rendered | AuthorityRendered:
    """Write ``<run>/render/<authority>/<file>.xml``: for one authority (or every planned one),
    the messages that the filing ledger says are due (a first filing, additions, corrections,
    deletions, a nil report), each recorded in the ledger as rendered, not yet published.

    Per authority the result is ``render/authorities/<XX>.json``; rendering all of them also
    writes ``render/render.json`` with every message in order. Rendering every authority,
    ``rendered`` is called with each one once its files are written and recorded, where more than
    one authority renders (the validation beside the render,
    :class:`reporting.stages.validate.Overlapped`)."""
    if authority is None:
        _remove_contents_files(settings)  # one authority's is replaced when that authority renders
        authorities = plan(settings)
        results: list[AuthorityRendered] = []
        if authorities:
            # one connection, and every seller read once, for all the authorities (a preview
            # has 27): 40 ms to connect and 70 ms to read per authority otherwise
            con = connect(settings.run_path, "extract", "aggregate", "rules")
            rows = settings.stage_dir("render") / SHARED_SELLERS_FILE
            try:
                shared = len(authorities) > 1
                if shared:
                    share_seller_rows(con, rows)
                for a in authorities:
                    results.append(_render_authority(settings, a, con, shared=shared))
                    if rendered is not None and shared:  # one authority alone: nothing to overlap with
                        rendered(a)
            finally:
                con.close()
                shutil.rmtree(rows, ignore_errors=True)  # personal data: kept no longer than the render
        summary: Rendered = {
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


def overlapped_path(run_path: Path, authority: str) -> Path:
    """Where the validation beside the render (:class:`reporting.stages.validate.Overlapped`)
    writes its report of ``authority``'s files; a render of the authority removes it."""
    return run_path / "validate" / "overlapped" / f"{authority}.json"


def _render_authority(settings: RunSettings, authority: str, con: Any, *, shared: bool = False) -> AuthorityRendered:
    """:func:`render` of one authority, over an open connection to the staged data (``shared``:
    the rows of :func:`reporting.mapping.share_seller_rows` are on it)."""
    findings: list[Finding] = []
    operator = operator_record(settings)
    with (
        stage_ledger(settings, authority) as url,
        # a preview's ledger is a working copy, renamed into place when the render succeeds
        open_ledger(url, scratch=settings.preview) as ledger,
        ledger.lock(
            settings.environment, authority, settings.year, holder=settings.run_id, operator_id=settings.operator_id
        ),
    ):
        discarded = discard_pending(settings, ledger, authority)
        messages = _render_one(settings, con, authority, operator, findings, ledger, shared=shared)
    if findings:
        raise DataError(findings)
    summary: AuthorityRendered = {"authority": authority, "messages": messages, "discarded": discarded}
    # an earlier validation of this authority's files says nothing of the files rendered now
    shutil.rmtree(settings.run_path / "validate" / "parts" / authority, ignore_errors=True)
    (settings.run_path / "validate" / "authorities" / f"{authority}.json").unlink(missing_ok=True)
    overlapped_path(settings.run_path, authority).unlink(missing_ok=True)
    write_json(settings.stage_dir("render/authorities") / f"{authority}.json", summary)
    log.info("render year=%s authority=%s: %d message(s)", settings.year, authority, len(messages))
    return summary


def read_rendered(run_path: Path, authority: str) -> AuthorityRendered | None:
    """What the render of the run staged in ``run_path`` wrote for ``authority``
    (``render/authorities/<XX>.json``); None before that render."""
    path = run_path / "render" / "authorities" / f"{authority}.json"
    if not path.is_file():
        return None
    result: AuthorityRendered = read_json(path)
    return result


def rendered(settings: RunSettings, authority: str | None = None) -> Rendered:
    """What the render wrote: for one authority, or for every planned one in order."""
    authorities = [authority] if authority else planned_authorities(settings)
    parts: list[AuthorityRendered] = [
        read_json(settings.run_path / "render" / "authorities" / f"{a}.json") for a in authorities
    ]
    return {
        "messages": [m for p in parts for m in p["messages"]],
        "discarded": [d for p in parts for d in p["discarded"]],
    }


def _render_one(
    settings: RunSettings,
    con: Any,
    authority: str,
    operator: OperatorRecord,
    findings: list[Finding],
    ledger: Ledger,
    *,
    shared: bool = False,
) -> list[RenderedMessage]:
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
    # the sellers' contents wait in a file of their own until the file is written and recorded:
    # the plan holds their keys and hashes only
    with ContentStore(contents_file(settings, authority), period_label(authority, year, env)) as store:
        po = operator_content(operator)
        others = _other_operators(settings, profile, authority)
        # what would be reported now, in body order: the PlatformOperator, the other operators (a
        # few, in memory), then the sellers as the store gives them back by key
        head = [(PO_KEY, content_hash(po), po)]
        for other in sorted(others, key=lambda o: o.key):
            content = other_operator_content(other)
            head.append((opo_key(other.key), content_hash(content), content))
        # another operator assumes this one's reporting: its declaration carries no seller
        assumed = settings.config.operator.assuming_operator is not None
        not_reported = 0
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
            if assumed:  # an operator of the group assuming it: the extract stopped the run already
                not_reported += 1
                continue
            store.put((SELLER, record.seller_id), seller_content(record))
        if not_reported:
            log.warning(
                "%s %s: %d reportable seller(s) of the source are not reported: another platform operator "
                "([assuming_operator]) assumes this operator's reporting and reports them in its own filing",
                authority,
                year,
                not_reported,
            )
        live = ledger.live_records(env, authority, year, operator_id=settings.operator_id)
        mode = settings.mode
        sellers: Collection[str] | None = settings.sellers
        if mode == "deletion" and sellers is not None:
            sellers = [s for s in sellers if (SELLER, s) in live]
            if not sellers:
                return []  # none of the named sellers was filed to this authority
        plan = plan_filing_sorted(
            itertools.chain(head, store.items(SELLER)),
            [live[k] for k in body_order(live)],
            # the assumed operator's declaration is due also where nil reports are not; a preview
            # sends a state its resident assumed operators in a DPI403 when it receives no seller
            profile_expects_nil=profile.expects_nil
            or (not settings.preview and assumed)
            or (settings.preview and bool(others)),
            empty_message_type=profile.assumed_message_type if assumed else DPI403,
            new_id=lambda purpose: profile.doc_ref_id(ids, purpose),
            environment=env,
            mode=mode,
            sellers=sellers if mode == "deletion" else None,
            authority=authority,
            year=year,
            indic=lambda doc_type, e: profile.doc_type_indic(PROFILE_KINDS[doc_type], e),
            # a first filing's records wait in the store's file too: the plan holds a view of them
            sink=store.planned_records,
        )
        breaches = ledger.problems(
            plan, environment=env, authority=authority, year=year, operator_id=settings.operator_id
        )
        if breaches:
            raise LedgerError(
                f"the plan for {authority} {year} ({env}) breaks the rules the authority applies on receipt: "
                + "; ".join(f"[{code}] {text}" for code, text in breaches)
            )
        target_dir = settings.stage_dir(f"render/{authority}")
        rendered: list[RenderedMessage] = []
        bound: dict[str, str] = {}  # DocRefIds as planned -> as written (bind_doc_ref_id)
        for planned in plan:
            for part in _parts(profile, planned, operator, ids, store):
                number = len(rendered) + 1
                part = _bind_ids(profile, part, profile.message_ref_id(ids, number), bound)
                rendered.append(
                    _write_message(settings, profile, ids, authority, operator, part, number, target_dir, ledger, store)
                )
        for m in rendered:
            m["parts"] = len(rendered)
        return rendered


def _other_operators(
    settings: RunSettings, profile: AuthorityProfile, authority: str
) -> tuple[OtherOperatorRecord, ...]:
    """The other operators of this operator's messages to ``authority``.

    A filing names them all (``[[assumed_operators]]``, or the ``[assuming_operator]``), where
    the profile's edition can: NAV's DPI_HU has no AssumedPlatformOperator, and the run says that
    it leaves them out. A preview (routing ``jurisdiction``) shows what the filing state sends each
    member state in the exchange between authorities: there an assumed operator goes to the state
    it is resident in (EU rule 40050: one of its ResCountryCodes is the receiving country) and the
    AssumingPlatformOperator to none (20020), as an operator whose reporting is assumed sends no
    seller. A state that receives no seller gets its resident assumed operators in a DPI403
    (:func:`reporting.stages.plan.assumed_residences`)."""
    others = other_operator_records(settings.config.operator)
    if settings.preview:
        return tuple(o for o in others if o.role == ASSUMED and o.res_country == authority)
    if not profile.names_assumed_operators:
        dropped = [o for o in others if o.role == ASSUMED]
        if dropped:
            log.warning(
                "%s %s: the %s edition has no AssumedPlatformOperator: the %d operator(s) of "
                "[[assumed_operators]] are not named in the filing (their sellers are reported all the same); "
                "each names this operator as its AssumingPlatformOperator in its own filing",
                authority,
                settings.year,
                profile.edition,
                len(dropped),
            )
        others = tuple(o for o in others if o.role != ASSUMED)
    return others


def _parts(
    profile: AuthorityProfile, planned: PlannedMessage, operator: OperatorRecord, ids: DocIds, store: ContentStore
) -> list[PlannedMessage]:
    """A planned message as the files the profile takes: itself, or parts of at most
    ``max_sellers_per_file`` sellers and ``max_file_bytes`` bytes, the PlatformOperator resent
    (OECD0) in every part after the first. The other operators go in the first part: each record
    is sent once (a DocRefId is never reused, EU rule 80000)."""
    if not (profile.max_sellers_per_file or profile.max_file_bytes) or not planned.sellers:
        return [planned]
    po = planned.platform_operator
    if po.doc_type == DELETION:
        raise LedgerError("a withdrawal of the whole filing cannot be split into parts")
    env = planned.environment
    # the header of a part as long as the real ones: its MessageRefId and identifiers are the run's
    header = MessageHeader(
        "XX",
        "XX",
        profile.message_ref_id(ids, 1),
        planned.message_type_indic,
        date(2000, 12, 31),
        datetime(2000, 1, 1),
        env,
        ids.identifiers,
    )
    others = [r for r in planned.records if r.kind == OTHER_PLATFORM_OPERATORS]
    records = (
        (seller_from_content(c), _doc(r)) for r, c in zip(planned.sellers, store.contents(planned.sellers), strict=True)
    )
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
            _others(others),
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
    return [
        replace(
            planned,
            records=(
                *((po, *others) if i == 0 else (resend,)),
                *(by_id[rec.seller_id] for rec, _ in batch),
            ),
        )
        for i, batch in enumerate(batches)
        if batch
    ]


def _bind_ids(
    profile: AuthorityProfile, planned: PlannedMessage, message_ref_id: str, bound: dict[str, str]
) -> PlannedMessage:
    """The message's new records with the DocRefIds the profile gives them in this message (GB:
    ``<MessageRefId>_<unique>``; every other profile keeps them as planned); a resend, and a
    CorrDocRefId, name a record by the DocRefId it was written with (``bound``, across the run's
    messages)."""
    if isinstance(planned.records, RecordsView):
        # read back from a file: kept as it is where the profile keeps every id (one pass to
        # know), else made a tuple of the bound records like any other message
        changed = False
        for r in planned.records:
            if r.doc_type == RESEND:
                changed = r.doc_ref_id in bound
            else:
                changed = profile.bind_doc_ref_id(r.doc_ref_id, message_ref_id) != r.doc_ref_id
            if changed or (r.corr_doc_ref_id is not None and r.corr_doc_ref_id in bound):
                changed = True
                break
        if not changed:
            return planned
    records = []
    for r in planned.records:
        if r.doc_type == RESEND:
            ref = bound.get(r.doc_ref_id, r.doc_ref_id)
        else:
            ref = profile.bind_doc_ref_id(r.doc_ref_id, message_ref_id)
            if ref != r.doc_ref_id:  # an id kept as planned needs no entry: it is looked up as itself
                bound[r.doc_ref_id] = ref
        corr = bound.get(r.corr_doc_ref_id, r.corr_doc_ref_id) if r.corr_doc_ref_id else None
        records.append(
            r if (ref, corr) == (r.doc_ref_id, r.corr_doc_ref_id) else replace(r, doc_ref_id=ref, corr_doc_ref_id=corr)
        )
    return replace(planned, records=tuple(records))


def _others(records: Iterable[PlannedRecord]) -> list[tuple[OtherOperatorRecord, Doc]]:
    """The OtherPlatformOperators of a message, as the writer takes them."""
    return [(other_operator_from_content(r.content), _doc(r)) for r in records if r.kind == OTHER_PLATFORM_OPERATORS]


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
    store: ContentStore,
) -> RenderedMessage:
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
    sellers = (
        (seller_from_content(c), _doc(r)) for r, c in zip(planned.sellers, store.contents(planned.sellers), strict=True)
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            count = profile.write(fh, h, operator, _doc(planned.platform_operator), sellers, _others(planned.records))
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
        operator_id=settings.operator_id,
        content_texts=store.texts,
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


def _size(
    profile: Any,
    header: MessageHeader,
    operator: OperatorRecord,
    doc: Doc,
    records: list[tuple[SellerRecord, Doc]],
    others: Sequence[tuple[OtherOperatorRecord, Doc]] = (),
) -> int:
    buf = io.BytesIO()
    profile.write(buf, header, operator, doc, records, others)
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
    others: list[tuple[OtherOperatorRecord, Doc]] | None = None,
) -> Iterator[list[tuple[SellerRecord, Doc]]]:
    """Batches of sellers that each fit a file: at most ``max_sellers``, and at most
    ``max_bytes`` once written (each seller's exact size is measured by writing it once; a part's
    sellers are held in memory until the part is written, so its size bounds the memory). The
    other operators, written in the first part, count in every part's size (a few hundred bytes)."""
    others = others or []
    empty = _size(profile, header, operator, operator_doc, [], others) if max_bytes else 0
    batch: list[tuple[SellerRecord, Doc]] = []
    size = empty
    for rec in records:
        # the seller's own bytes: measured against the same empty message, other operators included
        n = _size(profile, header, operator, operator_doc, [rec], others) - empty if max_bytes else 0
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
