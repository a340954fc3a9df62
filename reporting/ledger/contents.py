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
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, overload

from reporting.ledger.errors import ContentStoreError, DocRefIdTakenError
from reporting.ledger.model import PlannedRecord, RecordKey, RecordsView, canonical_json

#: contents written to the file per statement, and looked up per query
WRITE_BATCH: Final = 2_000
LOOKUP_BATCH: Final = 500
#: planned records read back per query (:class:`PlannedRecords`)
READ_BATCH: Final = 2_000
#: the records of a message (and the new records of a plan) held in memory before they go to the
#: file (:class:`PlannedRecordsSink`): a bound on the memory they take, and below it no cost
SPILL_AT = 50_000


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
            self._planned_tables = 0
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

    def planned_records(self, spill_at: int | None = None) -> PlannedRecordsSink:
        """A new table of planned records in this file, to write one message's records to in
        order (:meth:`PlannedRecordsSink.add`), then read back as a :class:`PlannedRecords` view
        where there are more than ``spill_at`` (default :data:`SPILL_AT`)."""
        self._planned_tables += 1
        return PlannedRecordsSink(self, f"planned_{self._planned_tables}", SPILL_AT if spill_at is None else spill_at)

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


_COLUMNS = "position, kind, seller_key, doc_type, doc_type_indic, doc_ref_id, corr_doc_ref_id, content_hash, stored"


class PlannedRecordsSink:
    """The planned records of one message, held in memory up to ``spill_at`` of them, beyond
    that written to a table of a :class:`ContentStore`'s file as they are made, in batches: the
    position, key, DocRefIds, DocTypeIndic and content hash of each (a content other than
    :data:`STORED`, the PlatformOperator's and the other operators', a few, stays in memory). A
    DocRefId added twice is refused (:class:`reporting.ledger.errors.DocRefIdTakenError`): at once
    while the records are held, by the table's unique index once they are written (when their
    batch is written, at the latest by :meth:`done`). The new records a plan keeps while it
    merges its streams (:meth:`keep`) are held and written alike, in a table of their own."""

    def __init__(self, store: ContentStore, table: str, spill_at: int = SPILL_AT) -> None:
        self.store = store
        self.table = table
        self.spill_at = spill_at
        self._pending: list[tuple[Any, ...]] = []
        self._inline: dict[int, Any] = {}
        self._count = 0
        self._held: list[PlannedRecord] | None = []  # None once the records go to the file
        self._held_ids: set[str] = set()
        self._items: list[tuple[Any, ...]] = []
        self._items_inline: dict[int, Any] = {}
        self._items_count = 0
        self._items_held: list[tuple[RecordKey, str, Any]] | None = []
        try:
            store._con.execute(
                f"create table {table} (position integer primary key, kind text not null, seller_key text, "
                "doc_type text not null, doc_type_indic text not null, doc_ref_id text not null unique, "
                "corr_doc_ref_id text, content_hash text not null, stored integer not null)"
            )
            store._con.execute(
                f"create table {table}_items (position integer primary key, kind text not null, seller_key text, "
                "content_hash text not null, stored integer not null)"
            )
        except sqlite3.Error as exc:
            raise store._error(f"creating the table {table}", exc) from None

    def keep(self, item: tuple[RecordKey, str, Any]) -> None:
        """Keep a record found new while the plan merges its streams: its key, content hash and
        content (in memory unless :data:`STORED`)."""
        if self._items_held is not None:
            if len(self._items_held) < self.spill_at:
                self._items_held.append(item)
                return
            held, self._items_held = self._items_held, None
            for earlier in held:
                self.keep(earlier)
        (kind, seller_key), h, content = item
        stored = content is STORED
        if not stored:
            self._items_inline[self._items_count] = content
        self._items.append((self._items_count, kind, seller_key, h, int(stored)))
        self._items_count += 1
        if len(self._items) >= WRITE_BATCH:
            self._flush_items()

    def _flush_items(self) -> None:
        if self._items:
            try:
                self.store._con.executemany(f"insert into {self.table}_items values (?, ?, ?, ?, ?)", self._items)
            except sqlite3.Error as exc:
                raise self.store._error(f"writing {len(self._items)} new record(s)", exc) from None
            self._items = []

    def kept(self) -> Iterator[tuple[RecordKey, str, Any]]:
        """The records kept, in the order kept (read back :data:`READ_BATCH` at a time where
        they were written)."""
        if self._items_held is not None:
            yield from self._items_held
            return
        self._flush_items()
        after = -1
        while True:
            try:
                rows = self.store._con.execute(
                    f"select position, kind, seller_key, content_hash, stored from {self.table}_items "
                    f"where position > ? order by position limit {READ_BATCH}",
                    (after,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise self.store._error(f"reading the new records of {self.table}", exc) from None
            if not rows:
                return
            for position, kind, seller_key, h, stored in rows:
                yield (kind, seller_key), h, STORED if stored else self._items_inline[position]
            after = rows[-1][0]

    def add(self, r: PlannedRecord) -> None:
        """Add ``r`` as the next record."""
        if self._held is not None:
            if r.doc_ref_id in self._held_ids:
                raise DocRefIdTakenError(r.doc_type, r.key, r.doc_ref_id)
            if len(self._held) < self.spill_at:
                self._held.append(r)
                self._held_ids.add(r.doc_ref_id)
                return
            held, self._held, self._held_ids = self._held, None, set()
            for earlier in held:
                self.add(earlier)
        stored = r.content is STORED
        if not stored:
            self._inline[self._count] = r.content
        self._pending.append(
            (
                self._count,
                r.kind,
                r.seller_key,
                r.doc_type,
                r.doc_type_indic,
                r.doc_ref_id,
                r.corr_doc_ref_id,
                r.content_hash,
                int(stored),
            )
        )
        self._count += 1
        if len(self._pending) >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        con = self.store._con
        before = con.total_changes
        try:
            con.executemany(f"insert into {self.table} ({_COLUMNS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?)", self._pending)
        except sqlite3.IntegrityError:
            # the rows before the refused one were inserted: their count is its place in the batch
            row = self._pending[con.total_changes - before]
            self._pending = []
            raise DocRefIdTakenError(row[3], (row[1], row[2]), row[5]) from None
        except sqlite3.Error as exc:
            raise self.store._error(f"writing {len(self._pending)} planned record(s)", exc) from None
        self._pending = []

    def done(self) -> Sequence[PlannedRecord]:
        """The records added: a tuple where they are held, else a view read back from the file."""
        if self._held is not None:
            return tuple(self._held)
        self._flush()
        return PlannedRecords(self.store, self.table, self._inline, self._count)


class PlannedRecords(RecordsView):
    """The planned records of one message in a :class:`ContentStore`'s file (see
    :class:`PlannedRecordsSink`), read back in order, :data:`READ_BATCH` at a time, each time
    it is iterated; ``kind``: those of one kind only."""

    def __init__(
        self, store: ContentStore, table: str, inline: dict[int, Any], count: int, kind: str | None = None
    ) -> None:
        self.store = store
        self.table = table
        self._inline = inline
        self._count = count
        self._kind = kind
        if kind is not None:
            self._count = self._query(f"select count(*) from {table} where kind = ?", (kind,))[0][0]

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        try:
            return self.store._con.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self.store._error(f"reading the planned records of {self.table}", exc) from None

    def _record(self, row: tuple[Any, ...]) -> PlannedRecord:
        position, kind, seller_key, doc_type, indic, ref, corr, h, stored = row
        return PlannedRecord(
            kind=kind,
            seller_key=seller_key,
            doc_type=doc_type,
            doc_type_indic=indic,
            doc_ref_id=ref,
            corr_doc_ref_id=corr,
            content_hash=h,
            content=STORED if stored else self._inline[position],
        )

    def _rows(self, after: int, limit: int) -> list[Any]:
        where = "position > ?" + (" and kind = ?" if self._kind is not None else "")
        args: tuple[Any, ...] = (after,) if self._kind is None else (after, self._kind)
        return self._query(f"select {_COLUMNS} from {self.table} where {where} order by position limit {limit}", args)

    def __iter__(self) -> Iterator[PlannedRecord]:
        after, limit = -1, 100  # a first batch that is small: the PlatformOperator is often all that is read
        while rows := self._rows(after, limit):
            for row in rows:
                yield self._record(row)
            after, limit = rows[-1][0], READ_BATCH

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> PlannedRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[PlannedRecord]: ...

    def __getitem__(self, index: int | slice) -> PlannedRecord | Sequence[PlannedRecord]:
        if isinstance(index, slice):
            return tuple(self)[index]
        n = index + self._count if index < 0 else index
        if not 0 <= n < self._count:
            raise IndexError(index)
        where = "" if self._kind is None else " where kind = ?"
        args: tuple[Any, ...] = () if self._kind is None else (self._kind,)
        rows = self._query(f"select {_COLUMNS} from {self.table}{where} order by position limit 1 offset {n}", args)
        return self._record(rows[0])

    def of_kind(self, kind: str) -> PlannedRecords:
        return PlannedRecords(self.store, self.table, self._inline, self._count, kind)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PlannedRecords({self.table}, {self._count} record(s))"
