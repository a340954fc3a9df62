"""The processes that write the statements of a filing: this one, and page writers beside it.

Reading a seller record back from the published XML, building its statement, rendering, hashing
and creating its page and encoding its line of the feed: every statement is work of its own, so
the statements are shared out between processes in chunks of :data:`CHUNK` consecutive records.
This process reads the filing, asks the lookups (the ledger's seller of each DocRefId, the
staged ``sellers.language``, what the ledger recorded) for a batch of records at a time and
decides which process writes each chunk; it writes its own chunks itself.

Nothing of the records is sent to a page writer: each (``python -m reporting.statements.writer``,
a fresh interpreter that inherits none of this process's connections or threads) reads the same
published files itself, in the same order (lxml's parse is the cheap part of a statement), turns
into records only the elements of the chunks it is given, and gets from this process, per chunk,
only what the lookups said of its records (a few dozen bytes each). It writes their pages and
their lines of the feed to a part file of its own (0600, from the first byte) and reports each
chunk done with its length in bytes. The feed is then put together from this process's lines and
the parts, chunk after chunk in the order of the filed records: the same bytes whichever process
wrote a chunk (:class:`reporting.statements.build.StatementWriter` writes every statement; the
tests compare a filing written in one process and in several).

Each chunk goes to the process with the least work waiting (records given, not yet written; a
page writer rather than this one when even): a page writer that starts late or shares its core
with other work is given less, and this process, which also reads ahead and asks the lookups,
writes less itself. Reading runs one batch ahead of this process's own writing, so that a page
writer always has its next chunks while this process writes its own.

Memory stays flat: two batches of records at most are held (this process's own records of the
batch being written and of the next one), each page writer holds one element at a time.

A filing with a problem (a record the ledger does not know, a record that is not as the schema
says, amounts in two currencies) is refused with the problem of the earliest record, as when
one process writes everything: on any such problem the page writers are stopped and the filing
is read again in this process, without writing, up to that batch (:func:`_first_problem`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import subprocess
import sys
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from reporting.errors import ReportingError
from reporting.findings import Finding, Severity
from reporting.private import FILE_MODE
from reporting.statements.build import (
    Element,
    Lookup,
    MixedCurrencyError,
    Run,
    StatementWriter,
    check_currency,
    elements,
    missing_error,
    statement_id,
)
from reporting.statements.filed import FiledSeller, MessageHead, seller_key, seller_record
from reporting.statements.locale import is_language_tag, resolve

#: statements a process is given at once
CHUNK = 256
#: page writers started by default: one fewer than the cores this process may use, at most this many
MAX_AUTO_WORKERS = 3
#: page writers are started by default only for published files of at least this size (about
#: 1,300 sellers): starting a process costs about a tenth of a second
AUTO_WORKERS_FROM_BYTES = 4 << 20
#: the pipe to a page writer holds this much (Linux): the chunks decided ahead wait there
PIPE_BYTES = 1 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

SellerLookup = Callable[[Sequence[str]], dict[str, str]]  # DocRefIds -> seller_id
LanguageLookup = Callable[[Sequence[str]], dict[str, str | None]]  # seller_ids -> sellers.language
#: statement_ids -> (sha256 of the recorded page, the recorded feed object as JSON or None once
#: erased), for those the ledger's delivery record holds already
RecordedLookup = Callable[[Sequence[str]], dict[str, tuple[str, str | None]]]


class PageWriterError(ReportingError):
    """A process writing the pages of the statements stopped (its own error is in its log)."""


@dataclass
class Tally:
    """What was written: the counts, the findings, the statements whose recorded line was kept."""

    statements: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    kept: int = 0


@dataclass(frozen=True, slots=True)
class Lookups:
    seller_of: SellerLookup
    language_of: LanguageLookup
    recorded: RecordedLookup


@dataclass(frozen=True, slots=True)
class _Job:
    """What a page writer is told first: the run, the files in order, where its part goes."""

    run: Run
    messages: tuple[tuple[str, str], ...]
    part: str


def auto_workers(messages: Sequence[tuple[str, str]]) -> int:
    """The page writers to start when the caller leaves it to this module: none for a small
    filing, else one fewer than the cores this process may use (at most :data:`MAX_AUTO_WORKERS`)."""
    size = sum(os.path.getsize(path) for path, _authority in messages)
    if size < AUTO_WORKERS_FROM_BYTES:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(cores - 1, MAX_AUTO_WORKERS))


def write_all(
    run: Run,
    messages: Sequence[tuple[str, str]],
    lookups: Lookups,
    feed: IO[bytes],
    folder: Path,
    *,
    workers: int,
    batch: int,
) -> Tally:
    """Write the statement of every seller record of ``messages`` (path, authority), its line of
    the feed into ``feed`` in the order of the records, with ``workers`` page writers beside this
    process (0: this process alone). ``folder`` holds the part files while they are written."""
    writer = _Coordinator(run, messages, lookups, feed, folder, workers, batch)
    try:
        return writer.write()
    finally:
        writer.close()


class _WorkerFailed(Exception):
    def __init__(self, number: int, message: str) -> None:
        super().__init__(message)
        self.number = number


class _Worker:
    """A page writer as this process sees it: the records it was given and has written."""

    def __init__(self, number: int, job: _Job) -> None:
        self.number = number
        self.part = Path(job.part)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reporting.statements.writer"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin = self.proc.stdin
        self.out_fd = self.proc.stdout.fileno()
        setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
        if setsize is not None:
            with contextlib.suppress(OSError):  # above the system's limit: the default pipe
                fcntl.fcntl(self.stdin.fileno(), setsize, PIPE_BYTES)
        os.set_blocking(self.out_fd, False)
        self.assigned = 0  # records of its chunks
        self.done = 0  # of those, written
        self.closed = False
        self._pending = b""
        self.send(job)
        self.flush()

    def send(self, message: object) -> None:
        try:
            pickle.dump(message, self.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        except BrokenPipeError:
            raise self._failed() from None

    def flush(self) -> None:
        try:
            self.stdin.flush()
        except BrokenPipeError:
            raise self._failed() from None

    def poll(self, on_chunk: Callable[[int, int, int], None], *, wait: bool = False) -> None:
        """Read what the writer reported (each chunk written: ``on_chunk(index, bytes, kept)``);
        with ``wait``, until it has closed its end (it has written everything it was given)."""
        while not self.closed:
            if wait:
                os.set_blocking(self.out_fd, True)
            try:
                data = os.read(self.out_fd, 1 << 16)
            except BlockingIOError:
                return
            if not data:
                self.closed = True
                if self._pending:
                    raise self._failed()
                break
            lines = (self._pending + data).split(b"\n")
            self._pending = lines.pop()
            for line in lines:
                if line.startswith(b"D "):
                    index, count, size, kept = (int(x) for x in line[2:].split())
                    self.done += count
                    on_chunk(index, size, kept)
                else:
                    raise self._failed(line)
        code = self.proc.wait()
        if code != 0:
            raise self._failed()

    def _failed(self, line: bytes = b"") -> _WorkerFailed:
        message = ""
        if line.startswith(b"E "):
            with contextlib.suppress(ValueError):
                message = str(json.loads(line[2:]))
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        code = self.proc.returncode
        return _WorkerFailed(self.number, message or f"exit status {code}")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.part.unlink(missing_ok=True)


#: a record read: the authority, its message's head, its DocRefId, its kind and, where this
#: process writes its statement, the record itself
_Item = tuple[str, MessageHead, str, str, FiledSeller | None]


@dataclass(slots=True)
class _Own:
    """A chunk this process writes: its records and what the lookups said of each."""

    index: int
    records: list[tuple[str, MessageHead, FiledSeller, Lookup]]


class _Coordinator:
    def __init__(
        self,
        run: Run,
        messages: Sequence[tuple[str, str]],
        lookups: Lookups,
        feed: IO[bytes],
        folder: Path,
        workers: int,
        batch: int,
    ) -> None:
        self.run = run
        self.messages = tuple(messages)
        self.lookups = lookups
        self.feed = feed
        self.batch = batch
        self.chunk = CHUNK
        self.tally = Tally()
        self.elements: Iterator[Element] = elements(self.messages)
        self.writer = StatementWriter(run, feed)
        self.parts: list[Path] = [folder / f".part-{os.getpid()}-{n}.tmp" for n in range(workers + 1)]
        self.workers: list[_Worker] = []
        self.own_part: IO[bytes] | None = None
        self.owners = bytearray()  # per chunk: 0 this process, n the n-th page writer
        self.sizes = array("Q")  # per chunk: the bytes of its lines
        self.first_shared: int | None = None  # the first chunk not this process's
        self.assigned = 0  # records of this process's chunks
        self.done = 0  # of those, written
        self.batches = 0  # batches read

    # ------------------------------------------------------------------------------ the run

    def write(self) -> Tally:
        try:
            for n, part in enumerate(self.parts[1:], 1):
                part.unlink(missing_ok=True)
                self.workers.append(_Worker(n, _Job(self.run, self.messages, str(part))))
            pending: list[_Own] = []
            while True:
                ahead = self._read_batch()  # the next batch is given out before this one is written
                self._write_own(pending)
                if ahead is None:
                    break
                pending = ahead
            for w in self.workers:
                with contextlib.suppress(OSError):
                    w.stdin.close()
            for w in self.workers:
                w.poll(self._chunk_done, wait=True)
            self._merge()
        except _WorkerFailed as failed:
            self._stop()
            self._first_problem()
            raise PageWriterError(
                f"the process writing statement pages {failed.number} of {len(self.workers)} stopped "
                f"({failed}); no feed was written, the stage can be run again"
            ) from None
        except (ValueError, LookupError):
            # reading runs a batch ahead, and a page writer may have an earlier record: the
            # problem to report is the one met first when one process reads and writes in order
            self._stop()
            self._first_problem()
            raise
        return self.tally

    def close(self) -> None:
        self._stop()
        if self.own_part is not None:
            self.own_part.close()
        for part in self.parts:
            part.unlink(missing_ok=True)

    def _stop(self) -> None:
        for w in self.workers:
            w.stop()

    # ---------------------------------------------------------------------------- reading

    def _decide(self) -> int:
        """Who writes the next chunk: the process with the least work waiting (a page writer
        when even: this process reads and asks the lookups besides)."""
        best, queue = 0, self.assigned - self.done
        for w in self.workers:
            w.poll(self._chunk_done)
            if w.assigned - w.done <= queue:
                best, queue = w.number, w.assigned - w.done
        if best and self.first_shared is None:
            self.first_shared = len(self.owners)
        return best

    def _read_batch(self) -> list[_Own] | None:
        """Read the next batch of records, ask the lookups, count, and give out its chunks:
        the page writers' are sent, this process's returned (None when the files are read)."""
        self.batches += 1
        items: list[_Item] = []
        starts: list[tuple[int, int, int]] = []  # per chunk: its index, who writes it, its first item
        owner = 0
        for authority, head, elem in self.elements:
            if len(items) % self.chunk == 0:
                owner = self._decide()
                starts.append((len(self.owners), owner, len(items)))
                self.owners.append(owner)
                self.sizes.append(0)
            if owner == 0:
                record = seller_record(elem)
                items.append((authority, head, record.doc_ref_id, record.kind, record))
                self.assigned += 1
            else:
                doc_ref_id, _corr, kind = seller_key(elem)
                items.append((authority, head, doc_ref_id, kind, None))
                self.workers[owner - 1].assigned += 1
            if len(items) == self.batch:
                break
        if not items:
            return None
        lookups = self._lookups(items)
        own: list[_Own] = []
        ends = [start for _index, _owner, start in starts[1:]] + [len(items)]
        for (index, owner, start), end in zip(starts, ends, strict=True):
            if owner == 0:
                own.append(_Own(index, [(i[0], i[1], i[4], lookups[n]) for n, i in enumerate(items[start:end], start)]))  # type: ignore[misc]
            for w in self.workers:
                given = [(items[n][2], lookups[n]) for n in range(start, end)] if w.number == owner else None
                w.send((index, end - start, given))
        for w in self.workers:
            w.flush()
        return own

    def _lookups(self, items: Sequence[_Item]) -> list[Lookup]:
        """What the ledger and the staged sellers say of each record of a batch; the counts and
        the findings of the batch (an invalid ``sellers.language``)."""
        env = self.run.environment
        sellers = self.lookups.seller_of([i[2] for i in items])
        missing = [i[2] for i in items if i[2] not in sellers]
        if missing:
            raise missing_error(missing)
        languages = self.lookups.language_of(sorted({sellers[i[2]] for i in items}))
        ids = [statement_id(env, i[0], i[2]) for i in items]
        known = self.lookups.recorded(ids)
        tally = self.tally
        out: list[Lookup] = []
        for (_authority, _head, doc_ref_id, kind, _record), sid in zip(items, ids, strict=True):
            seller_id = sellers[doc_ref_id]
            tag = languages.get(seller_id)
            if tag is not None and not is_language_tag(tag):
                tally.findings.append(
                    Finding(
                        rule="sellers.language_tag",
                        table="sellers",
                        key=seller_id,
                        seller_id=seller_id,
                        message="language is not an IETF BCP 47 tag (e.g. de, fr-BE): the statement is in English",
                        severity=Severity.WARNING,
                    )
                )
            language = resolve(tag).tag
            tally.statements += 1
            tally.kinds[kind] = tally.kinds.get(kind, 0) + 1
            tally.languages[language] = tally.languages.get(language, 0) + 1
            out.append((seller_id, tag, known.get(sid)))
        return out

    # ---------------------------------------------------------------------------- writing

    def _write_own(self, chunks: Sequence[_Own]) -> None:
        writer = self.writer
        for chunk in chunks:
            if self.first_shared is not None and chunk.index > self.first_shared and writer.out is self.feed:
                writer.out = self.own_part = open(os.open(self.parts[0], _CREATE, FILE_MODE), "wb")  # noqa: SIM115
            size = kept = 0
            for authority, head, record, lookup in chunk.records:
                k, n = writer.write(authority, head, record, lookup)
                size += n
                kept += k
            self.sizes[chunk.index] = size
            self.tally.kept += kept
            self.done += len(chunk.records)

    def _chunk_done(self, index: int, size: int, kept: int) -> None:
        self.sizes[index] = size
        self.tally.kept += kept

    def _merge(self) -> None:
        """The chunks after the first a page writer wrote, appended to the feed in their order
        from the part that holds each (this process's own lines before it are in the feed)."""
        if self.first_shared is None:
            return
        if self.own_part is not None:
            self.own_part.flush()
        self.feed.flush()
        sources: dict[int, int] = {}
        try:
            for index in range(self.first_shared, len(self.owners)):
                owner = self.owners[index]
                if owner not in sources:
                    sources[owner] = os.open(self.parts[owner], os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                _copy(sources[owner], self.feed.fileno(), self.sizes[index])
            for owner, fd in sources.items():
                if os.read(fd, 1):
                    raise PageWriterError(f"a part of the feed ({owner}) holds more than its chunks")
        finally:
            for fd in sources.values():
                os.close(fd)

    # --------------------------------------------------------------------------- problems

    def _first_problem(self) -> None:
        """Read the batches begun so far again, in this process and without writing, as one
        process writing everything meets them (each batch read, then its lookups, then its
        records one by one): raise the first problem found (none: the caller raises its own)."""
        seller_of = self.lookups.seller_of
        batch: list[tuple[str, FiledSeller]] = []
        read = 0
        for authority, _head, elem in elements(self.messages):
            batch.append((authority, seller_record(elem)))
            if len(batch) == self.batch:
                _check(batch, seller_of)
                batch = []
                read += 1
                if read >= self.batches:
                    return
        if batch:
            _check(batch, seller_of)


def _check(batch: Sequence[tuple[str, FiledSeller]], seller_of: SellerLookup) -> None:
    sellers = seller_of([r.doc_ref_id for _a, r in batch])
    missing = [r.doc_ref_id for _a, r in batch if r.doc_ref_id not in sellers]
    if missing:
        raise missing_error(missing)
    for _a, r in batch:
        check_currency(r, sellers[r.doc_ref_id])


def _copy(src: int, dst: int, count: int) -> None:
    """``count`` bytes from ``src`` to ``dst``, each at its own position (in the kernel where it can)."""
    while count > 0:
        try:
            n = os.copy_file_range(src, dst, count)
        except (AttributeError, OSError):  # not on this system or between these file systems
            data = os.read(src, min(count, 1 << 20))
            view = memoryview(data)
            while view:
                view = view[os.write(dst, view) :]
            n = len(data)
        if n == 0:
            raise PageWriterError("a part of the feed ends before its chunks")
        count -= n


# -------------------------------------------------------------------------- a page writer


def main() -> int:
    """A page writer: the job, then a chunk after another from stdin (pickled by this module's
    :class:`_Worker`): its own written, the others' records read past. Each chunk written is
    reported on stdout (``D index records bytes kept``); a problem of the filing as one line
    (``E "message"``) before stopping, anything else with its traceback on stderr."""
    report = os.dup(1)  # what this process reports; anything else printed goes to stderr
    os.dup2(2, 1)
    source = sys.stdin.buffer
    job: _Job = pickle.load(source)
    with open(os.open(job.part, _CREATE, FILE_MODE), "wb") as out:
        writer = StatementWriter(job.run, out)
        records = elements(job.messages)
        try:
            while True:
                try:
                    index, count, given = pickle.load(source)  # one chunk's message after another
                except EOFError:
                    break
                if given is None:
                    for _ in range(count):
                        next(records)
                    continue
                size = kept = 0
                for doc_ref_id, lookup in given:
                    authority, head, elem = next(records)
                    record = seller_record(elem)
                    if record.doc_ref_id != doc_ref_id:
                        raise PageWriterError(
                            "a published file changed while its statements were written (another record where "
                            f"DocRefId {doc_ref_id} was read)"
                        )
                    k, n = writer.write(authority, head, record, lookup)
                    size += n
                    kept += k
                out.flush()
                os.write(report, f"D {index} {count} {size} {int(kept)}\n".encode())
        except (ValueError, LookupError, MixedCurrencyError, PageWriterError) as problem:
            os.write(report, b"E " + json.dumps(str(problem)).encode() + b"\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
