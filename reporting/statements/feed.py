"""The statements of a filing: the feed ``statements/statements.jsonl`` and a page per seller.

Each seller record of the published messages becomes one statement (PStTG § 22(2): each
reportable seller receives the information reported about them by 31 January; Annex V,
Section III(A) of Directive 2011/16/EU). A correction (DocTypeIndic OECD2) and a deletion
(OECD3) of a record give a new statement that replaces the statement of the record they correct
(``replaces``: its ``statement_id``, derived from the same DocRefId, so no lookup is needed).

Files are written owner-only, 0600 from their first byte (the caller runs under
:func:`reporting.private.owner_only`). The feed goes to a temporary name and is renamed into
place last, so that a feed names only complete pages: a new page is created under its own name
(:func:`reporting.statements.pages.write_page`), a page that exists already is replaced through
a temporary name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from reporting.countries import EU_MEMBER_STATES
from reporting.files import file_sha256
from reporting.findings import Finding, Severity
from reporting.private import FILE_MODE, private_dirs
from reporting.statements.filed import FiledSeller, MessageHead, read_message
from reporting.statements.locale import Language, is_language_tag, resolve
from reporting.statements.pages import SHARD_CHARS, page_line
from reporting.statements.pages import STATEMENTS_DIR as STATEMENTS_DIR  # the folder, named here too
from reporting.vocabulary import STATEMENTS_FEED, STATEMENTS_RUNS_DIR

FEED = STATEMENTS_FEED
#: each run's own feed, ``statements/runs/<run_id>.jsonl``: the same bytes as the ``statements.jsonl``
#: it wrote, kept when a later run's feed takes that name
RUNS_DIR = STATEMENTS_RUNS_DIR
_RUN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:+@-]{0,249}$")
#: Statement ids are UUIDs (version 5) in this namespace, of "<environment>/<authority>/<DocRefId>"
NAMESPACE = uuid.UUID("5b0d6f0e-6c1a-5d7e-9a57-0dac7517a7e0")
#: sellers looked up at once (the ledger's DocRefIds, the staged languages)
BATCH = 2_000


class MixedCurrencyError(ValueError):
    """A seller record whose amounts carry more than one ``currCode``.

    The XML allows it: each amount element is a ``MonAmnt_Type`` with its own ``currCode`` (the
    DPI schema), and the OECD Model Rules report consideration in the fiat currency it was paid
    in, but no guidance says how a seller paid in several currencies is reported (an open
    question of the project's reading of the rules). This project's filings hold one currency per
    seller; a record with several is refused rather than shown under one currency, naming the
    seller id and DocRefId (never a TIN)."""


def statement_id(environment: str, authority: str, doc_ref_id: str) -> str:
    """The statement of a filed record: the same record always gives the same id,
    ``str(uuid.uuid5(NAMESPACE, "<environment>/<authority>/<DocRefId>"))`` (RFC 4122, 4.3),
    computed here without building a ``UUID`` object (a third of the time; the tests compare)."""
    name = f"{environment}/{authority}/{doc_ref_id}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE_BYTES = NAMESPACE.bytes


def receiving_states(identity: dict[str, Any], activities: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The member states the filing state forwards the record to (Directive 2011/16/EU Art.
    8ac(2); EU rule 40070 / BR_PAR007): each EU state of residence (``residence``), and each EU
    state where a reported property is located (``property``). As :func:`reporting.rules.decide`
    routes the exchange, read here from the record itself; a state that is both is listed twice."""
    out = [
        {"country": c, "reason": "residence"}
        for c in dict.fromkeys(identity["residence_countries"])
        if c in EU_MEMBER_STATES
    ]
    seen = set()
    for a in activities:
        country = (a.get("property_address") or {}).get("country")
        if a["activity"] == "immovable_property" and country in EU_MEMBER_STATES and country not in seen:
            seen.add(country)
            out.append({"country": country, "reason": "property"})
    return out


@dataclass(frozen=True, slots=True)
class Published:
    """A published message of the filing: its file and the authority it was filed with."""

    path: Path
    authority: str


@dataclass
class Written:
    statements: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    #: statements the ledger recorded before whose page and feed object were kept as recorded,
    #: although this build made other bytes (a catalog edit, another Babel): PStTG § 24(1) Nr. 4
    #: keeps the content of the notice as it was given
    kept: int = 0
    #: the run's own feed (relative to the output) and the sha256 of its bytes (those of the feed)
    run_feed: str | None = None
    sha256: str | None = None


SellerLookup = Callable[[Sequence[str]], dict[str, str]]  # DocRefIds -> seller_id
LanguageLookup = Callable[[Sequence[str]], dict[str, str | None]]  # seller_ids -> sellers.language
#: statement_ids -> (sha256 of the recorded page, the recorded feed object as JSON or None once
#: erased), for those the ledger's delivery record holds already
RecordedLookup = Callable[[Sequence[str]], dict[str, tuple[str, str | None]]]


def _none_recorded(ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    return {}


def _records(messages: Iterable[Published]) -> Iterator[tuple[Published, MessageHead, FiledSeller]]:
    for msg in messages:
        head: MessageHead | None = None
        for item in read_message(msg.path):
            if isinstance(item, MessageHead):
                head = item
            elif head is not None:
                yield msg, head, item


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_feed(run_id: str) -> str:
    """The run's own feed, relative to the output directory; a run id that cannot be a file name
    is a :class:`ValueError` naming the rule."""
    if not _RUN_ID.match(run_id):
        raise ValueError(
            "run_id: a run's feed is named after its run id, which must be letters, digits and _.:+@- "
            "(at most 250, not starting with a dot or a dash)"
        )
    return f"{STATEMENTS_DIR}/{RUNS_DIR}/{run_id}.jsonl"


def write_statements(
    out_dir: Path,
    messages: Iterable[Published],
    *,
    environment: str,
    year: int,
    seller_of: SellerLookup,
    language_of: LanguageLookup,
    recorded: RecordedLookup = _none_recorded,
    run_id: str | None = None,
    issued: date | None = None,
    contact: str | None = None,
    workers: int = 0,
) -> Written:
    """Write a statement for every seller record of ``messages`` into ``out_dir/statements``;
    the feed last. Returns the counts and the findings (an invalid ``sellers.language``).

    A statement the ledger recorded already (``recorded``) is a notice given: its page is never
    written over and its feed line is the recorded object. Where this build made other bytes
    (a catalog edit, another Babel), the recorded ones stay and :attr:`Written.kept` counts them.

    With ``run_id``, the feed is also the run's own ``statements/runs/<run_id>.jsonl`` (the same
    file, hard-linked): ``statements.jsonl`` is the latest run's, a later run never takes a
    delivery's feed away.

    ``issued``: the date the statements are written (the feed's ``issued``, the page's date of
    the notice, PStTG § 24(1) Nr. 4; a recorded statement keeps its own); ``contact``: the
    ``[statements] contact`` the page names.

    ``workers``: processes that render and write the pages beside this one, which reads the
    filing (see :mod:`reporting.statements.writer`); 0, the default, writes them in this
    process (on a loaded machine of two cores the extra processes made the stage slower). The
    feed and the pages are the same bytes either way."""
    own = run_feed(run_id) if run_id is not None else None
    folder = private_dirs(Path(out_dir) / STATEMENTS_DIR)
    feed = folder / FEED
    tmp_feed = folder / f".{FEED}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    result = Written()
    fd = os.open(tmp_feed, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            items = _items(
                folder,
                messages,
                (environment, year, issued.isoformat() if issued else None, contact),
                seller_of,
                language_of,
                recorded,
                result,
            )
            base = str(out_dir)
            if workers > 0:
                from reporting.statements.writer import write_pages

                result.kept += write_pages(base, folder, items, out, workers)
            else:
                for item in items:
                    kept, line = page_line(base, *item)
                    result.kept += kept
                    out.write(line)
        result.sha256 = file_sha256(tmp_feed)
        if own is not None:
            runs = private_dirs(folder / RUNS_DIR)
            tmp_own = runs / f".{Path(own).name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
            os.link(tmp_feed, tmp_own)  # the same bytes; the rename of the latest never touches them
            os.replace(tmp_own, Path(out_dir) / own)
            result.run_feed = own
    except BaseException:
        tmp_feed.unlink(missing_ok=True)  # no half feed: the pages written are named by no feed
        raise
    tmp_feed.replace(feed)
    return result


def run_feeds(out_dir: Path) -> list[Path]:
    """Every feed of ``out_dir/statements``: each run's own (oldest first, by modification
    time), then ``statements.jsonl`` when no run feed holds it (written before run feeds were)."""
    folder = Path(out_dir) / STATEMENTS_DIR
    runs = folder / RUNS_DIR
    own = sorted(runs.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime_ns, p.name)) if runs.is_dir() else []
    latest = folder / FEED
    if latest.is_file() and not any(os.path.samefile(latest, p) for p in own):
        own.append(latest)
    return own


#: a statement without its page, its language, the operator's name, the contact, and what the
#: ledger recorded of it (its ``sha256`` and content) or None
Item = tuple[dict[str, Any], Language, str, str | None, tuple[str, str | None] | None]


def _items(
    folder: Path,
    messages: Iterable[Published],
    run: tuple[str, int, str | None, str | None],
    seller_of: SellerLookup,
    language_of: LanguageLookup,
    recorded: RecordedLookup,
    result: Written,
) -> Iterator[Item]:
    """Each statement of the filing, in the order of the filed records, with what its page
    needs; the counts and the findings into ``result``, each statement's shard folder made
    (once)."""
    environment, year, issued, contact = run
    shards: set[str] = set()
    for batch in _batches(_records(messages), BATCH):
        sellers = seller_of([r.doc_ref_id for _m, _h, r in batch])
        missing = [r.doc_ref_id for _m, _h, r in batch if r.doc_ref_id not in sellers]
        if missing:
            raise LookupError(
                f"{len(missing)} seller record(s) of the published files are not in the ledger "
                f"(DocRefId {', '.join(missing[:3])}): statements are written from the filing only"
            )
        languages = language_of(sorted({sellers[r.doc_ref_id] for _m, _h, r in batch}))
        known = recorded([statement_id(environment, m.authority, r.doc_ref_id) for m, _h, r in batch])
        for msg, head, record in batch:
            seller_id = sellers[record.doc_ref_id]
            if len(record.currencies) > 1:
                raise MixedCurrencyError(
                    f"seller {seller_id} (DocRefId {record.doc_ref_id}): the filed record holds amounts in "
                    f"{len(record.currencies)} currencies ({', '.join(record.currencies)}); a statement "
                    "states its figures in one currency (the feed's currency): no statement was written"
                )
            tag = languages.get(seller_id)
            if tag is not None and not is_language_tag(tag):
                result.findings.append(
                    Finding(
                        rule="sellers.language_tag",
                        table="sellers",
                        key=seller_id,
                        seller_id=seller_id,
                        message="language is not an IETF BCP 47 tag (e.g. de, fr-BE): the statement is in English",
                        severity=Severity.WARNING,
                    )
                )
            language = resolve(tag)
            statement = _statement(record, head, msg.authority, seller_id, language, environment, year)
            sid = statement["statement_id"]
            statement["issued"] = _recorded_issued(known.get(sid)) or issued
            shard = sid[:SHARD_CHARS]
            if shard not in shards:
                private_dirs(folder / shard)
                shards.add(shard)
            result.statements += 1
            result.kinds[record.kind] = result.kinds.get(record.kind, 0) + 1
            result.languages[language.tag] = result.languages.get(language.tag, 0) + 1
            yield statement, language, head.operator_name, contact, known.get(sid)


def _statement(
    record: FiledSeller,
    head: MessageHead,
    authority: str,
    seller_id: str,
    language: Language,
    environment: str,
    year: int,
) -> dict[str, Any]:
    return {
        "statement_id": statement_id(environment, authority, record.doc_ref_id),
        "kind": record.kind,
        "replaces": statement_id(environment, authority, record.corr_doc_ref_id) if record.corr_doc_ref_id else None,
        "seller_id": seller_id,
        "year": year,
        "environment": environment,
        "language": language.tag,
        "identity": record.identity,
        "filed_with": {"country": authority, "message_ref_id": head.message_ref_id, "doc_ref_id": record.doc_ref_id},
        "receiving_states": receiving_states(record.identity, record.activities),
        "currency": record.currency,
        "activities": record.activities,
    }


def _recorded_issued(known: tuple[str, str | None] | None) -> str | None:
    """The ``issued`` date of a statement the ledger recorded (None for none, or for one recorded
    without it): the notice's date is the one it was given on."""
    if known is None or known[1] is None:
        return None
    issued = json.loads(known[1]).get("issued")
    return issued if isinstance(issued, str) else None


def read_feed(out_dir: Path, feed: Path | None = None) -> Iterator[dict[str, Any]]:
    """The statements of ``out_dir/statements/statements.jsonl`` (or of ``feed``), one at a time."""
    with open(feed or Path(out_dir) / STATEMENTS_DIR / FEED, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def current_statements(out_dir: Path, sellers: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The statements ``sellers`` hold now, across every run's feed: each statement that no
    statement of any feed replaces (a correction or deletion replaces the statement of the record
    it corrects), once. Two passes over the feeds; memory grows with the sellers asked for only,
    and the ids replaced by any statement."""
    feeds = run_feeds(out_dir)
    replaced: set[str] = set()
    for path in feeds:
        for s in read_feed(out_dir, path):
            if s.get("replaces"):
                replaced.add(s["replaces"])
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for path in feeds:
        for s in read_feed(out_dir, path):
            if s["seller_id"] in sellers and s["statement_id"] not in replaced:
                found.setdefault(s["seller_id"], {})[s["statement_id"]] = s
    return {seller: list(by_id.values()) for seller, by_id in found.items()}
