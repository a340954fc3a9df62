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
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reporting.countries import EU_MEMBER_STATES
from reporting.findings import Finding, Severity
from reporting.private import FILE_MODE, private_dirs
from reporting.statements.filed import FiledSeller, MessageHead, read_message
from reporting.statements.locale import Language, is_language_tag, resolve
from reporting.statements.pages import SHARD_CHARS, page_line
from reporting.statements.pages import STATEMENTS_DIR as STATEMENTS_DIR  # the folder, named here too

FEED = "statements.jsonl"
#: Statement ids are UUIDs (version 5) in this namespace, of "<environment>/<authority>/<DocRefId>"
NAMESPACE = uuid.UUID("5b0d6f0e-6c1a-5d7e-9a57-0dac7517a7e0")
#: sellers looked up at once (the ledger's DocRefIds, the staged languages)
BATCH = 2_000
#: processes writing the pages beside the one reading the filing, at most
WORKERS = 2
#: a filing of fewer bytes of XML is written in one process (starting another costs more than
#: it saves below some 2,000 sellers; a seller record is about 3 kB)
SMALL = 6_000_000


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


SellerLookup = Callable[[Sequence[str]], dict[str, str]]  # DocRefIds -> seller_id
LanguageLookup = Callable[[Sequence[str]], dict[str, str | None]]  # seller_ids -> sellers.language


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


def write_statements(
    out_dir: Path,
    messages: Iterable[Published],
    *,
    environment: str,
    year: int,
    seller_of: SellerLookup,
    language_of: LanguageLookup,
    workers: int | None = None,
) -> Written:
    """Write a statement for every seller record of ``messages`` into ``out_dir/statements``;
    the feed last. Returns the counts and the findings (an invalid ``sellers.language``).

    ``workers``: processes that render and write the pages beside this one, which reads the
    filing (see :mod:`reporting.statements.writer`); 0 writes them in this process. By default
    one per core beyond the first, at most :data:`WORKERS`, and none for a filing of fewer than
    :data:`SMALL` bytes. The feed and the pages are the same bytes either way."""
    folder = private_dirs(Path(out_dir) / STATEMENTS_DIR)
    feed = folder / FEED
    tmp_feed = folder / f".{FEED}.{os.getpid()}.tmp"
    tmp_feed.unlink(missing_ok=True)
    result = Written()
    fd = os.open(tmp_feed, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            messages = list(messages)
            items = _items(folder, messages, environment, year, seller_of, language_of, result)
            if workers is None:
                small = sum(m.path.stat().st_size for m in messages) < SMALL
                workers = 0 if small else min(WORKERS, max(0, (os.cpu_count() or 1) - 1))
            if workers > 0:
                from reporting.statements.writer import write_pages

                write_pages(str(out_dir), folder, items, out, workers)
            else:
                base = str(out_dir)
                for statement, language, operator in items:
                    out.write(page_line(base, statement, language, operator))
    except BaseException:
        tmp_feed.unlink(missing_ok=True)  # no half feed: the pages written are named by no feed
        raise
    tmp_feed.replace(feed)
    return result


Item = tuple[dict[str, Any], Language, str]  # a statement without its page, its language, the operator's name


def _items(
    folder: Path,
    messages: Iterable[Published],
    environment: str,
    year: int,
    seller_of: SellerLookup,
    language_of: LanguageLookup,
    result: Written,
) -> Iterator[Item]:
    """Each statement of the filing, in the order of the filed records, with its language; the
    counts and the findings into ``result``, each statement's shard folder made (once)."""
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
        for msg, head, record in batch:
            seller_id = sellers[record.doc_ref_id]
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
            shard = statement["statement_id"][:SHARD_CHARS]
            if shard not in shards:
                private_dirs(folder / shard)
                shards.add(shard)
            result.statements += 1
            result.kinds[record.kind] = result.kinds.get(record.kind, 0) + 1
            result.languages[language.tag] = result.languages.get(language.tag, 0) + 1
            yield statement, language, head.operator_name


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


def read_feed(out_dir: Path) -> Iterator[dict[str, Any]]:
    """The statements of ``out_dir/statements/statements.jsonl``, one at a time."""
    with open(Path(out_dir) / STATEMENTS_DIR / FEED, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
