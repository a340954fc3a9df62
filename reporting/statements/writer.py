"""The processes that write the statements of a filing: this one, and page writers beside it.

This process reads the published files (lxml's streamed parse) and turns each seller record into
a :class:`~reporting.statements.filed.FiledSeller`, asks the lookups (the ledger's seller of each
DocRefId, the staged ``sellers.language``, what the ledger recorded) for a batch of records at a
time, checks the batch and counts it. Building each statement, rendering, hashing and creating
its page and encoding its line of the feed is then work of its own for every statement, so it is
shared out in chunks of :data:`CHUNK` consecutive records between this process and ``workers``
page writers (fresh interpreters, started as :mod:`reporting.workers` starts its workers: they
inherit none of this process's connections or threads).

A page writer is sent its chunks' records as read (pickled: a few microseconds a record each
way, far less than reading the XML again) with what the lookups said of each. It writes their
pages and their lines of the feed (and, where asked, the ledger's rows) to part files of its own
(0600, from the first byte) and reports each chunk done with its length in bytes. The feed is
put together from this process's lines and the parts, chunk after chunk in the order of the
filed records: the same bytes whichever process wrote a chunk
(:class:`reporting.statements.build.StatementWriter` writes every statement; the tests compare a
filing written in one process and in several).

Each chunk goes to the process that will be done first: the records given to it and not yet
written, each at the CPU time a record has taken that process so far, and for this process the
reading of the next batch besides (a page writer when even). A page writer that starts late or
shares its core with other work is given less, and this process, which reads, writes less
itself. Reading runs one batch ahead of this process's own writing, so that a page writer has
its next chunks while this process writes its own.

Memory stays flat: this process holds the records of two batches at most (the one read ahead and
its own chunks of the one before), a page writer one chunk; a chunk waits in its pipe until its
writer takes it.

The filing's problems (a record that is not as the schema says, one the ledger does not know,
amounts in two currencies) are all met here, in the order one process writing everything meets
them: each batch read, then its lookups, then its records one by one. A page writer that stops
(it could not write a page) stops the writing with :class:`PageWriterError`; no feed is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
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
from reporting.statements.build import Lookup, Run, StatementWriter, check_currency, missing_error, statement_id
from reporting.statements.filed import FiledSeller, MessageHead, read_message
from reporting.statements.locale import is_language_tag, resolve
from reporting.workers import cpu_count

#: statements a process is given at once
CHUNK = 256
#: page writers started by default: one fewer than the cores this process may use, at most this many
MAX_AUTO_WORKERS = 3
#: page writers are started by default only for published files of at least this size (about
#: 1,300 sellers): starting a process costs about a tenth of a second
AUTO_WORKERS_FROM_BYTES = 4 << 20
#: the pipe to a page writer holds this much (Linux): the chunks given out ahead wait there
PIPE_BYTES = 1 << 20
#: a page writer: a fresh interpreter (as ``reporting.workers`` starts its workers: nothing of this
#: process is forked), given this process's ``sys.path`` first
_BOOT = (
    "import pickle, sys\n"
    "sys.path[:] = pickle.load(sys.stdin.buffer)\n"
    "from reporting.statements.writer import page_writer\n"
    "page_writer()\n"
)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

SellerLookup = Callable[[Sequence[str]], dict[str, str]]  # DocRefIds -> seller_id
LanguageLookup = Callable[[Sequence[str]], dict[str, str | None]]  # seller_ids -> sellers.language
#: statement_ids -> (sha256 of the recorded page, the recorded feed object as JSON or None once
#: erased), for those the ledger's delivery record holds already
RecordedLookup = Callable[[Sequence[str]], dict[str, tuple[str, str | None]]]

#: a statement to write: the authority the record was filed with, its message's head, the record,
#: and what the lookups said of it
Item = tuple[str, MessageHead, FiledSeller, Lookup]


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
    """What a page writer is told first: the run, and where its parts go."""

    run: Run
    part: str
    rows: str | None  # its part of the ledger's rows, when they are written


def auto_workers(messages: Sequence[tuple[str, str]]) -> int:
    """The page writers to start when the caller leaves it to this module: none for a small
    filing, else one fewer than the cores this process may use (at most :data:`MAX_AUTO_WORKERS`)."""
    size = sum(os.path.getsize(path) for path, _authority in messages)
    if size < AUTO_WORKERS_FROM_BYTES:
        return 0
    return max(0, min(cpu_count() - 1, MAX_AUTO_WORKERS))


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


@contextlib.contextmanager
def _collector_held() -> Iterator[None]:
    """Python's cycle collector, for the duration, leaves the objects made before alone and runs
    less often: the records of a batch are thousands of containers, held until written, with no
    reference cycle; collecting the young ones every 700 allocations, and every object of the
    process now and then, took a tenth of the time. The collector's settings are restored after."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _records(messages: Sequence[tuple[str, str]]) -> Iterator[tuple[str, MessageHead, FiledSeller]]:
    for path, authority in messages:
        head: MessageHead | None = None
        for item in read_message(path):
            if isinstance(item, MessageHead):
                head = item
            elif head is not None:
                yield authority, head, item


class _WorkerFailed(Exception):
    def __init__(self, number: int, message: str) -> None:
        super().__init__(message)
        self.number = number


class _Worker:
    """A page writer as this process sees it: the records it was given and has written."""

    def __init__(self, number: int, job: _Job) -> None:
        self.number = number
        self.parts = [Path(p) for p in (job.part, job.rows) if p is not None]
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
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
        self.cpu = 0  # the CPU time (ns) it reported for them
        self.closed = False
        self.finished = False  # its parts are complete
        self._pending = b""
        self.send(sys.path)  # it imports the modules this process imported
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
                    raise self._failed()
            if self.finished:
                return
        if not self.finished:
            raise self._failed()

    def _failed(self) -> _WorkerFailed:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        return _WorkerFailed(self.number, f"exit status {self.proc.returncode}")

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
        self.lookups = lookups
        self.feed, self.rows = outputs
        self.batch = batch
        self.chunk = CHUNK
        self.tally = Tally()
        self.records = _records(messages)
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
        self.cpu = 0  # the CPU time (ns) writing them took
        self.read = 0  # records read
        self.read_cpu = 0  # the CPU time (ns) reading, looking up and checking them took

    def write(self) -> Tally:
        try:
            for n in range(1, len(self.parts)):
                rows = str(self.row_parts[n]) if self.rows is not None else None
                self.workers.append(_Worker(n, _Job(self.run, str(self.parts[n]), rows)))
            pending: list[tuple[int, list[Item]]] = []
            while True:
                started = time.process_time_ns()
                items = self._read_batch()
                ahead = self._give_out(items) if items else []  # before this process writes its own
                self.read_cpu += time.process_time_ns() - started  # reading it and sending it out
                self.read += len(items)
                self._write_own(pending)
                if not items:
                    break
                pending = ahead
            for w in self.workers:
                with contextlib.suppress(OSError):
                    w.stdin.close()
            for w in self.workers:
                w.poll(self._chunk_done, wait=True)
            self._merge()
        except _WorkerFailed as failed:
            raise PageWriterError(
                f"the process writing statement pages {failed.number} of {len(self.workers)} stopped "
                f"({failed}); no feed was written, the stage can be run again"
            ) from None
        return self.tally

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        for own in self.own_parts or ():
            if own is not None:
                own.close()
        for part in (*self.parts, *self.row_parts):
            part.unlink(missing_ok=True)

    # ---------------------------------------------------------------------------- reading

    def _read_batch(self) -> list[Item]:
        """The next batch of records (none when the files are read), looked up, checked and
        counted, in the order one process writing everything meets their problems: the batch
        read, then its lookups, then each record (its currencies)."""
        read: list[tuple[str, MessageHead, FiledSeller]] = []
        for item in self.records:
            read.append(item)
            if len(read) == self.batch:
                break
        if not read:
            return []
        env = self.run.environment
        sellers = self.lookups.seller_of([r.doc_ref_id for _a, _h, r in read])
        missing = [r.doc_ref_id for _a, _h, r in read if r.doc_ref_id not in sellers]
        if missing:
            raise missing_error(missing)
        languages = self.lookups.language_of(sorted({sellers[r.doc_ref_id] for _a, _h, r in read}))
        ids = [statement_id(env, a, r.doc_ref_id) for a, _h, r in read]
        known = self.lookups.recorded(ids)
        tally = self.tally
        items: list[Item] = []
        for (authority, head, record), sid in zip(read, ids, strict=True):
            seller_id = sellers[record.doc_ref_id]
            check_currency(record, seller_id)
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
            tally.kinds[record.kind] = tally.kinds.get(record.kind, 0) + 1
            tally.languages[language] = tally.languages.get(language, 0) + 1
            items.append((authority, head, record, (seller_id, tag, known.get(sid))))
        return items

    def _give_out(self, items: list[Item]) -> list[tuple[int, list[Item]]]:
        """The batch in chunks, each to the process with the least work waiting: the page
        writers' sent, this process's returned."""
        own: list[tuple[int, list[Item]]] = []
        more = len(items) == self.batch  # a full batch: more to read, most likely
        for start in range(0, len(items), self.chunk):
            chunk = items[start : start + self.chunk]
            index = len(self.owners)
            owner = self._decide(more)
            self.owners.append(owner)
            self.sizes.append(0)
            self.row_sizes.append(0)
            if owner == 0:
                own.append((index, chunk))
                self.assigned += len(chunk)
            else:
                w = self.workers[owner - 1]
                w.send((index, chunk))
                w.assigned += len(chunk)
        for w in self.workers:
            w.flush()
        return own

    def _decide(self, more: bool) -> int:
        """Who writes the next chunk: the process with the least work waiting, in CPU time (a
        page writer when even). Work waiting is the records given and not yet written, each at
        the CPU time a record took that process so far (a page writer unpickles it besides),
        and for this process, while there is more to read, the next batch's reading, which
        comes before its own records of this batch."""
        for w in self.workers:
            w.poll(self._chunk_done)
        reading = self.read_cpu / self.read if self.read else 0.0
        writing = self.cpu / self.done if self.done else reading  # before any is written: a guess
        best = 0
        work = (self.assigned - self.done) * writing + (self.batch * reading if more else 0.0)
        for w in self.workers:
            waiting = (w.assigned - w.done) * (w.cpu / w.done if w.done else writing)
            if waiting <= work:
                best, work = w.number, waiting
        if best and self.first_shared is None:
            self.first_shared = len(self.owners)
        return best

    # ---------------------------------------------------------------------------- writing

    def _write_own(self, chunks: Sequence[tuple[int, list[Item]]]) -> None:
        writer = self.writer
        for index, chunk in chunks:
            if self.first_shared is not None and index > self.first_shared and self.own_parts is None:
                # after the first chunk a page writer has, this process's chunks wait in parts too
                feed = open(os.open(self.parts[0], _CREATE, FILE_MODE), "wb")  # noqa: SIM115 - closed in close()
                rows = open(os.open(self.row_parts[0], _CREATE, FILE_MODE), "wb") if self.rows else None  # noqa: SIM115
                self.own_parts = (feed, rows)
                writer.out, writer.rows = feed, rows
            size = row_size = kept = 0
            started = time.process_time_ns()
            for authority, head, record, lookup in chunk:
                k, n, r = writer.write(authority, head, record, lookup)
                size += n
                row_size += r
                kept += k
            self.cpu += time.process_time_ns() - started
            self.sizes[index] = size
            self.row_sizes[index] = row_size
            self.tally.kept += kept
            self.done += len(chunk)
            for w in self.workers:
                w.poll(self._chunk_done)

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
    """A page writer: the job, then one chunk after another from stdin (pickled by this module's
    :class:`_Worker`), each written and reported on stdout (``D index records bytes row-bytes
    kept cpu-ns``), and ``F`` once its parts are complete and closed; an error stops it with its
    traceback on stderr."""
    report = os.dup(1)  # what this process reports; anything else printed goes to stderr
    os.dup2(2, 1)
    # The objects made at start (the modules, Babel's data) are left alone by the collector, and
    # it runs less often: a chunk's records are unpickled at once, thousands of containers that
    # live until the chunk is written and hold no reference cycle.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    source = sys.stdin.buffer
    job: _Job = pickle.load(source)
    with contextlib.ExitStack() as files:
        out = files.enter_context(open(os.open(job.part, _CREATE, FILE_MODE), "wb"))
        rows = files.enter_context(open(os.open(job.rows, _CREATE, FILE_MODE), "wb")) if job.rows else None
        writer = StatementWriter(job.run, out, rows)
        while True:
            started = time.process_time_ns()
            try:
                index, chunk = pickle.load(source)  # one chunk after another
            except EOFError:
                break
            size = row_size = kept = 0
            for authority, head, record, lookup in chunk:
                k, n, r = writer.write(authority, head, record, lookup)
                size += n
                row_size += r
                kept += k
            out.flush()
            if rows is not None:
                rows.flush()
            cpu = time.process_time_ns() - started
            os.write(report, f"D {index} {len(chunk)} {size} {row_size} {int(kept)} {cpu}\n".encode())
    os.write(report, b"F\n")  # the parts are complete and closed
    return 0


def page_writer() -> None:
    """The page writer's process: :func:`main`, then its end, without waiting for the interpreter
    to free each object (everything it wrote is closed)."""
    code = main()
    sys.stderr.flush()
    os._exit(code)
