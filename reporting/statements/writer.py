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
import gc
import json
import os
import pickle
import subprocess
import sys
import time
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
    rows: str | None  # its part of the ledger's rows, when they are written


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
    rows: IO[bytes] | None = None,
) -> Tally:
    """Write the statement of every seller record of ``messages`` (path, authority), its line of
    the feed into ``feed`` in the order of the records (and its row for the ledger into
    ``rows``), with ``workers`` page writers beside this process (0: this process alone).
    ``folder`` holds the part files while they are written."""
    writer = _Coordinator(run, messages, lookups, (feed, rows), folder, workers, batch)
    with _collector_held():
        try:
            return writer.write()
        finally:
            writer.close()


#: the cycle collector's thresholds while statements are written (Python's default: 700, 10, 10)
_THRESHOLD = (100_000, 50, 100)


@contextlib.contextmanager
def _collector_held() -> Iterator[None]:
    """Python's cycle collector, for the duration, leaves the objects made before alone and runs
    less often: the records read ahead are thousands of containers without a reference cycle,
    and collecting the young ones every 700 allocations, and every object of the process now and
    then, took a tenth of the reading and writing. Its settings are restored after."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


class _WorkerFailed(Exception):
    def __init__(self, number: int, message: str) -> None:
        super().__init__(message)
        self.number = number


class _Worker:
    """A page writer as this process sees it: the records it was given and has written."""

    def __init__(self, number: int, job: _Job) -> None:
        self.number = number
        self.parts = [Path(p) for p in (job.part, job.rows) if p is not None]
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
        self.cpu = 0  # the CPU time (ns) it reported for them, reading past the others' records included
        self.closed = False
        self.finished = False  # its parts are complete
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

    def poll(self, on_chunk: Callable[[int, int, int, int], None], *, wait: bool = False) -> None:
        """Read what the writer reported (each chunk written: ``on_chunk(index, bytes of its
        lines, bytes of its rows, kept)``); with ``wait``, until it reports its parts complete
        (it has written everything it was given and closed them)."""
        while not self.closed:
            if wait:
                os.set_blocking(self.out_fd, True)
            try:
                data = os.read(self.out_fd, 1 << 16)
            except BlockingIOError:
                return
            if not data:
                self.closed = True
                break
            lines = (self._pending + data).split(b"\n")
            self._pending = lines.pop()
            for line in lines:
                if line.startswith(b"D "):
                    index, count, size, rows, kept, cpu = (int(x) for x in line[2:].split())
                    self.done += count
                    self.cpu += cpu
                    on_chunk(index, size, rows, kept)
                elif line == b"F":
                    self.finished = True
                else:
                    raise self._failed(line)
            if self.finished:
                return
        if not self.finished:
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
        for part in self.parts:
            part.unlink(missing_ok=True)


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
        outputs: tuple[IO[bytes], IO[bytes] | None],
        folder: Path,
        workers: int,
        batch: int,
    ) -> None:
        self.run = run
        self.messages = tuple(messages)
        self.lookups = lookups
        self.feed, self.rows = outputs
        self.batch = batch
        self.chunk = CHUNK
        self.tally = Tally()
        self.elements: Iterator[Element] = elements(self.messages)
        self.writer = StatementWriter(run, self.feed, self.rows)
        pid = os.getpid()
        self.parts: list[Path] = [folder / f".part-{pid}-{n}.tmp" for n in range(workers + 1)]
        self.row_parts: list[Path] = [folder / f".rows-{pid}-{n}.tmp" for n in range(workers + 1)]
        self.workers: list[_Worker] = []
        self.own_parts: tuple[IO[bytes], IO[bytes] | None] | None = None
        self.owners = bytearray()  # per chunk: 0 this process, n the n-th page writer
        self.sizes = array("Q")  # per chunk: the bytes of its lines
        self.row_sizes = array("Q")  # per chunk: the bytes of its rows
        self.first_shared: int | None = None  # the first chunk not this process's
        self.assigned = 0  # records of this process's chunks
        self.done = 0  # of those, written
        self.cpu = 0  # the CPU time (ns) writing them took (they were read before)
        self.batches = 0  # batches read

    # ------------------------------------------------------------------------------ the run

    def write(self) -> Tally:
        try:
            for n in range(1, len(self.parts)):
                rows = str(self.row_parts[n]) if self.rows is not None else None
                self.workers.append(_Worker(n, _Job(self.run, self.messages, str(self.parts[n]), rows)))
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
        for own in self.own_parts or ():
            if own is not None:
                own.close()
        for part in (*self.parts, *self.row_parts):
            part.unlink(missing_ok=True)

    def _stop(self) -> None:
        for w in self.workers:
            w.stop()

    # ---------------------------------------------------------------------------- reading

    def _decide(self) -> int:
        """Who writes the next chunk: the process with the least work waiting (a page writer
        when even: this process reads and asks the lookups besides). Work waiting is records
        given and not yet written, each weighed by the CPU time a record took that process so
        far, once every process has written some: a record waiting here was read already, one
        waiting for a page writer is still to be read (and the others' records between with it),
        so that equal numbers would leave a page writer working on after this process is done."""
        for w in self.workers:
            w.poll(self._chunk_done)
        weighed = self.done > 0 and all(w.done for w in self.workers)
        best = 0
        work = (self.assigned - self.done) * (self.cpu / self.done if weighed else 1)
        for w in self.workers:
            waiting = (w.assigned - w.done) * (w.cpu / w.done if weighed else 1)
            if waiting <= work:
                best, work = w.number, waiting
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
                self.row_sizes.append(0)
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
                chunk = _Own(index, [])
                for n in range(start, end):
                    authority, head, _doc_ref_id, _kind, filed = items[n]
                    assert filed is not None  # read as a record: this process writes its chunk
                    chunk.records.append((authority, head, filed, lookups[n]))
                own.append(chunk)
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
            if self.first_shared is not None and chunk.index > self.first_shared and self.own_parts is None:
                # after the first chunk a page writer has, this process's chunks wait in parts too
                feed = open(os.open(self.parts[0], _CREATE, FILE_MODE), "wb")  # noqa: SIM115 - closed in close()
                rows = open(os.open(self.row_parts[0], _CREATE, FILE_MODE), "wb") if self.rows else None  # noqa: SIM115
                self.own_parts = (feed, rows)
                writer.out, writer.rows = feed, rows
            size = row_size = kept = 0
            started = time.process_time_ns()
            for authority, head, record, lookup in chunk.records:
                k, n, r = writer.write(authority, head, record, lookup)
                size += n
                row_size += r
                kept += k
            self.cpu += time.process_time_ns() - started
            self.sizes[chunk.index] = size
            self.row_sizes[chunk.index] = row_size
            self.tally.kept += kept
            self.done += len(chunk.records)

    def _chunk_done(self, index: int, size: int, rows: int, kept: int) -> None:
        self.sizes[index] = size
        self.row_sizes[index] = rows
        self.tally.kept += kept

    def _merge(self) -> None:
        """The chunks after the first a page writer wrote, appended to the feed (and the rows) in
        their order from the part that holds each (this process's own before it are in place)."""
        if self.first_shared is None:
            return
        for own in self.own_parts or ():
            if own is not None:
                own.flush()
        _append(self.feed, self.parts, self.owners, self.sizes, self.first_shared)
        if self.rows is not None:
            _append(self.rows, self.row_parts, self.owners, self.row_sizes, self.first_shared)

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


def _append(out: IO[bytes], parts: Sequence[Path], owners: bytearray, sizes: array[int], first: int) -> None:
    """Chunk after chunk from ``first`` on, its bytes from the part of the process that wrote it."""
    out.flush()
    sources: dict[int, int] = {}
    try:
        for index in range(first, len(owners)):
            owner = owners[index]
            if owner not in sources:
                sources[owner] = os.open(parts[owner], os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            _copy(sources[owner], out.fileno(), sizes[index])
        for owner, fd in sources.items():
            if os.read(fd, 1):
                raise PageWriterError(f"a part of the output ({owner}) holds more than its chunks")
    finally:
        for fd in sources.values():
            os.close(fd)


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
            raise PageWriterError("a part of the output ends before its chunks")
        count -= n


# -------------------------------------------------------------------------- a page writer


def main() -> int:
    """A page writer: the job, then a chunk after another from stdin (pickled by this module's
    :class:`_Worker`): its own written, the others' records read past. Each chunk written is
    reported on stdout (``D index records bytes row-bytes kept cpu-ns``, the CPU time since the
    last report: the chunk and the records read past before it), the end with ``F`` once its
    parts are complete and closed; a problem of the filing as one line (``E "message"``) before
    stopping, anything else with its traceback on stderr."""
    report = os.dup(1)  # what this process reports; anything else printed goes to stderr
    os.dup2(2, 1)
    gc.freeze()  # see _collector_held
    gc.set_threshold(*_THRESHOLD)
    source = sys.stdin.buffer
    job: _Job = pickle.load(source)
    with contextlib.ExitStack() as files:
        out = files.enter_context(open(os.open(job.part, _CREATE, FILE_MODE), "wb"))
        rows = files.enter_context(open(os.open(job.rows, _CREATE, FILE_MODE), "wb")) if job.rows else None
        writer = StatementWriter(job.run, out, rows)
        records = elements(job.messages)
        cpu = time.process_time_ns()
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
                size = row_size = kept = 0
                for doc_ref_id, lookup in given:
                    authority, head, elem = next(records)
                    record = seller_record(elem)
                    if record.doc_ref_id != doc_ref_id:
                        raise PageWriterError(
                            "a published file changed while its statements were written (another record where "
                            f"DocRefId {doc_ref_id} was read)"
                        )
                    k, n, r = writer.write(authority, head, record, lookup)
                    size += n
                    row_size += r
                    kept += k
                out.flush()
                if rows is not None:
                    rows.flush()
                took, cpu = -cpu, time.process_time_ns()
                os.write(report, f"D {index} {count} {size} {row_size} {int(kept)} {took + cpu}\n".encode())
        except (ValueError, LookupError, MixedCurrencyError, PageWriterError) as problem:
            os.write(report, b"E " + json.dumps(str(problem)).encode() + b"\n")
            return 1
    os.write(report, b"F\n")  # the parts are complete and closed
    return 0


if __name__ == "__main__":
    code = main()
    # everything it wrote is closed: no need to wait for the interpreter to free each object
    sys.stderr.flush()
    os._exit(code)
