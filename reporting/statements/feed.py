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

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from reporting.files import file_sha256
from reporting.private import FILE_MODE, private_dirs
from reporting.statements.build import NAMESPACE as NAMESPACE  # the ids' namespace, named here too
from reporting.statements.build import MixedCurrencyError as MixedCurrencyError
from reporting.statements.build import Run, receiving_states, statement_id
from reporting.statements.pages import STATEMENTS_DIR as STATEMENTS_DIR  # the folder, named here too
from reporting.statements.writer import (
    LanguageLookup,
    Lookups,
    RecordedLookup,
    SellerLookup,
    Tally,
    auto_workers,
    write_all,
)
from reporting.vocabulary import STATEMENTS_FEED, STATEMENTS_RUNS_DIR

__all__ = [
    "BATCH",
    "FEED",
    "NAMESPACE",
    "RUNS_DIR",
    "STATEMENTS_DIR",
    "LanguageLookup",
    "MixedCurrencyError",
    "Published",
    "RecordedLookup",
    "SellerLookup",
    "Written",
    "current_statements",
    "read_feed",
    "receiving_states",
    "run_feed",
    "run_feeds",
    "statement_id",
    "write_statements",
]

FEED = STATEMENTS_FEED
#: each run's own feed, ``statements/runs/<run_id>.jsonl``: the same bytes as the ``statements.jsonl``
#: it wrote, kept when a later run's feed takes that name
RUNS_DIR = STATEMENTS_RUNS_DIR
_RUN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:+@-]{0,249}$")
#: sellers looked up at once (the ledger's DocRefIds, the staged languages)
BATCH = 2_000


@dataclass(frozen=True, slots=True)
class Published:
    """A published message of the filing: its file and the authority it was filed with."""

    path: Path
    authority: str


@dataclass
class Written(Tally):
    """The writers' :class:`Tally` (its ``kept``: statements the ledger recorded before whose
    page and feed object were kept as recorded, although this build made other bytes, a catalog
    edit or another Babel: PStTG § 24(1) Nr. 4 keeps the content of the notice as it was given),
    and where the feed and the ledger's rows are."""

    #: the run's own feed (relative to the output) and the sha256 of its bytes (those of the feed)
    run_feed: str | None = None
    sha256: str | None = None
    #: with ``ledger_rows``: a temporary file (0600, in the statements folder) of each statement's
    #: row for the ledger, in the feed's order (``reporting.statements.build.ledger_row``), for
    #: ``Ledger.record_statements(feed, rows=...)``; the caller removes it
    ledger_rows: Path | None = None


def _none_recorded(ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    return {}


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
    workers: int | None = None,
    ledger_rows: bool = False,
    partners: Mapping[str, Sequence[str]] | None = None,
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

    ``workers``: page-writing processes beside this one, which writes statements too (see
    :mod:`reporting.statements.writer`); 0 writes everything in this process; None, the
    default, starts one fewer than the cores this process may use (at most three) for published
    files of 4 MiB or more (about 1,300 sellers), none for smaller ones. The feed and the pages
    are the same bytes either way.

    ``ledger_rows``: also write each statement's row for the ledger (:attr:`Written.ledger_rows`),
    made by the process that wrote the statement: the ledger records the feed from them without
    reading it back.

    ``partners``: for a filing authority whose operator set its reportable jurisdictions
    (``[authorities.XX] partner_jurisdictions``), those codes: each statement names the
    jurisdictions that receive its record from them, as the rules decided with them, not from the
    list the authority published (:func:`reporting.statements.build.reportable_of`)."""
    own = run_feed(run_id) if run_id is not None else None
    folder = private_dirs(Path(out_dir) / STATEMENTS_DIR)
    feed = folder / FEED
    tmp_feed = folder / f".{FEED}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    listed = [(str(m.path), m.authority) for m in messages]
    configured = tuple(sorted((a, tuple(codes)) for a, codes in (partners or {}).items()))
    run = Run(str(out_dir), environment, year, issued.isoformat() if issued else None, contact, configured)
    tmp_rows = folder / f".rows.{os.getpid()}.{uuid.uuid4().hex}.tmp" if ledger_rows else None
    try:
        with contextlib.ExitStack() as files:
            out = files.enter_context(open(os.open(tmp_feed, _CREATE, FILE_MODE), "wb"))
            rows = files.enter_context(open(os.open(tmp_rows, _CREATE, FILE_MODE), "wb")) if tmp_rows else None
            tally = write_all(
                run,
                listed,
                Lookups(seller_of, language_of, recorded),
                out,
                folder,
                workers=auto_workers(listed) if workers is None else workers,
                batch=BATCH,
                rows=rows,
            )
        result = Written(**vars(tally))
        result.sha256 = file_sha256(tmp_feed)
        if own is not None:
            runs = private_dirs(folder / RUNS_DIR)
            tmp_own = runs / f".{Path(own).name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
            os.link(tmp_feed, tmp_own)  # the same bytes; the rename of the latest never touches them
            os.replace(tmp_own, Path(out_dir) / own)
            result.run_feed = own
    except BaseException:
        tmp_feed.unlink(missing_ok=True)  # no half feed: the pages written are named by no feed
        if tmp_rows is not None:
            tmp_rows.unlink(missing_ok=True)
        raise
    tmp_feed.replace(feed)
    result.ledger_rows = tmp_rows
    return result


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


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
