"""Record contents kept out of memory while a message is planned, written and recorded.

The plan (:func:`reporting.ledger.plan_filing`) needs of each record its key and content hash
only; the content, a few KB of personal data per seller, is needed again only when the file is
written and the records are inserted in the ledger. :class:`ContentStore` keeps each content's
canonical JSON (:func:`reporting.ledger.canonical_json`) in an SQLite file, keyed by record key,
from the moment it is built; the record then carries :data:`STORED` in place of its content, and
the store gives the content back, record by record in the order asked, in batches of
:data:`LOOKUP_BATCH`. The memory the contents take no longer grows with the number of sellers.

The file holds personal data: it is created owner-only (0600) from the first byte, without a
journal, and deleted when the store is closed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from reporting.ledger.errors import ContentStoreError
from reporting.ledger.model import PlannedRecord, RecordKey, canonical_json

#: contents written to the file per statement, and looked up per query
WRITE_BATCH: Final = 2_000
LOOKUP_BATCH: Final = 500


class _Stored:
    """The content of a record that is in a :class:`ContentStore` (one object for all of them)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STORED"


#: The content of a planned or current record whose content is in the store.
STORED: Final = _Stored()


def _key(key: RecordKey) -> str:
    kind, seller_key = key
    return kind if seller_key is None else f"{kind}:{seller_key}"


class ContentStore:
    """Canonical JSON texts of record contents by record key, in an owner-only SQLite file at
    ``path`` (replaced if it exists; deleted by :meth:`close`). ``period`` (``DE 2025 (test)``)
    names the store in its errors: a :class:`reporting.ledger.errors.ContentStoreError` naming
    the file, the operation, the period and the record key, never a content."""

    def __init__(self, path: Path, period: str = "this period") -> None:
        self.path = path
        self.period = period
        self._pending: list[tuple[str, str, str]] = []
        self._db: sqlite3.Connection | None = None
        try:
            path.unlink(missing_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # 0600 before any byte
            self._db = sqlite3.connect(path)
            self._db.execute("pragma journal_mode = off")
            self._db.execute("pragma synchronous = off")
            self._db.execute(
                "create table contents (key text primary key, hash text not null, content text not null) without rowid"
            )
        except BaseException as exc:
            self.close()  # no file is left behind
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise self._error("creating the file", exc) from None
            raise

    def _error(self, operation: str, exc: BaseException) -> ContentStoreError:
        return ContentStoreError(f"the content store {self.path} of {self.period}: {operation} failed: {exc}")

    @property
    def _con(self) -> sqlite3.Connection:
        if self._db is None:
            raise ContentStoreError(f"the content store {self.path} of {self.period} is closed")
        return self._db

    def put(self, key: RecordKey, content: Any) -> str:
        """Keep ``content`` as the content of ``key`` (once per key); its hash
        (:func:`reporting.ledger.content_hash`), computed from the same text."""
        text = canonical_json(content)
        h = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self._pending.append((_key(key), h, text))
        if len(self._pending) >= WRITE_BATCH:
            self._flush()
        return h

    def _flush(self) -> None:
        if not self._pending:
            return
        before = self._con.total_changes
        try:
            self._con.executemany("insert into contents (key, hash, content) values (?, ?, ?)", self._pending)
        except sqlite3.IntegrityError:
            # the rows before the refused one were inserted: their count is its place in the batch
            key = self._pending[self._con.total_changes - before][0]
            raise ContentStoreError(
                f"the content store {self.path} of {self.period}: the record {key} was stored twice "
                "(each record is stored once)"
            ) from None
        except sqlite3.Error as exc:
            raise self._error(f"writing {len(self._pending)} record(s) from {self._pending[0][0]}", exc) from None
        self._pending = []

    def items(self, kind: str) -> Iterator[tuple[RecordKey, str, Any]]:
        """The stored records of ``kind`` as ``(key, content hash, STORED)``, by key (the body order
        of :func:`reporting.ledger.plan.body_order`: SQLite orders text by its UTF-8 bytes, which
        is the order of its code points, Python's), read as they are used."""
        self._flush()
        key = None
        try:
            for key, h in self._con.execute(
                "select key, hash from contents where key >= ? and key < ? order by key", (f"{kind}:", f"{kind};")
            ):
                yield (kind, key[len(kind) + 1 :]), h, STORED
        except sqlite3.Error as exc:
            raise self._error(f"reading the {kind} records" + (f" after {key}" if key else ""), exc) from None

    def _lookup(self, records: Iterable[PlannedRecord]) -> Iterator[tuple[PlannedRecord, str | None]]:
        """Each record with its stored text (None where it carries its content)."""
        self._flush()
        it = iter(records)
        while batch := list(itertools.islice(it, LOOKUP_BATCH)):
            wanted = sorted({_key(r.key) for r in batch if r.content is STORED})
            found: dict[str, str] = {}
            if wanted:
                marks = ",".join("?" * len(wanted))
                try:
                    found = dict(self._con.execute(f"select key, content from contents where key in ({marks})", wanted))
                except sqlite3.Error as exc:
                    raise self._error(f"reading {len(wanted)} record(s) from {wanted[0]}", exc) from None
            for r in batch:
                if r.content is not STORED:
                    yield r, None
                    continue
                text = found.get(_key(r.key))
                if text is None:
                    raise KeyError(f"no stored content for the record {_key(r.key)} of {self.period}")
                yield r, text

    def texts(self, records: Iterable[PlannedRecord]) -> Iterator[str]:
        """The canonical JSON of each record's content, in order: from the store where the record
        carries :data:`STORED`, else of the content it carries."""
        for r, text in self._lookup(records):
            yield canonical_json(r.content) if text is None else text

    def contents(self, records: Iterable[PlannedRecord]) -> Iterator[Any]:
        """The content of each record, in order (see :meth:`texts`)."""
        for r, text in self._lookup(records):
            yield r.content if text is None else json.loads(text)

    def close(self) -> None:
        """Close the file and delete it (it holds personal data)."""
        try:
            if self._db is not None:
                self._db.close()
                self._db = None
        finally:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> ContentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
