"""The pages of the statements rendered and written by other processes, beside the one that
reads the filing.

Reading the filed XML back and building each statement takes about as long as rendering its
page, hashing it and writing the file, so where a second core is free the work can split in two
(only when asked: the ``workers`` argument of
:func:`reporting.statements.feed.write_statements`; on a loaded machine of two cores the extra
processes made the stage slower, so one process is the default): this process reads, looks the
sellers up and sends the statements in chunks, in turn, to ``workers`` processes (``python -m
reporting.statements.writer``: a fresh interpreter, nothing of this process's open connections
or threads is inherited). Each worker writes the pages of its chunks and their lines of the feed
to a part file of its own (0600, from the first byte); the feed is then put together from the
parts in the order of the filed records, the same bytes as when one process writes everything
(:func:`reporting.statements.pages.page_line` is the one function either way, and the tests
compare the two).

Memory stays flat: a chunk waits in a pipe until its worker takes it, so no more than a few
chunks are in flight whatever the number of sellers.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TextIO

from reporting.errors import ReportingError
from reporting.private import FILE_MODE
from reporting.statements.pages import page_line

#: statements sent to a worker at once
CHUNK = 256
#: the first character of a line of a part: the ledger's record kept, or this build's line
KEPT, MADE = "k", "-"


class PageWriterError(ReportingError):
    """A process writing the pages of the statements stopped (its own error is in its log)."""


def write_pages(out_dir: str, folder: Path, items: Iterator[tuple[object, ...]], feed: TextIO, workers: int) -> int:
    """The page of every item written by ``workers`` processes, its line of the feed into
    ``feed`` in the order of ``items``; returns how many lines are the ledger's record kept
    over this build's (:func:`reporting.statements.pages.page_line`)."""
    parts = [folder / f".part-{os.getpid()}-{n}.tmp" for n in range(workers)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for part in parts:
            part.unlink(missing_ok=True)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "reporting.statements.writer", out_dir, str(part)],
                    stdin=subprocess.PIPE,
                )
            )
        chunks = 0
        last = 0
        chunk: list[tuple[object, ...]] = []
        for item in items:
            chunk.append(item)
            if len(chunk) == CHUNK:
                _send(procs, chunks, chunk)
                chunks += 1
                chunk = []
        if chunk:
            _send(procs, chunks, chunk)
            chunks += 1
            last = len(chunk)
        _finish(procs)
        return _merge(parts, chunks, last, feed)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for part in parts:
            part.unlink(missing_ok=True)


def _send(procs: Sequence[subprocess.Popen[bytes]], n: int, chunk: list[tuple[object, ...]]) -> None:
    proc = procs[n % len(procs)]
    assert proc.stdin is not None
    try:
        pickle.dump(chunk, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
    except BrokenPipeError:
        _finish(procs)  # raises with the worker's exit status
        raise


def _finish(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.stdin is not None and not p.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # a worker that stopped: its status says why
                p.stdin.close()
    for n, p in enumerate(procs):
        code = p.wait()
        if code != 0:
            raise PageWriterError(
                f"the process writing statement pages {n + 1} of {len(procs)} stopped with exit status {code}; "
                "no feed was written, the stage can be run again"
            )


def _merge(parts: Sequence[Path], chunks: int, last: int, feed: TextIO) -> int:
    """The lines of the parts, chunk ``n`` from part ``n % len(parts)``, each chunk of
    :data:`CHUNK` lines but the last (``last``, or :data:`CHUNK` when 0). Each line of a part
    starts with :data:`KEPT` or :data:`MADE`, taken off here; returns the count of :data:`KEPT`."""
    files: list[IO[str]] = []
    kept = 0
    try:
        for part in parts:
            files.append(open(part, encoding="utf-8"))  # noqa: SIM115 - closed below
        for n in range(chunks):
            f = files[n % len(files)]
            size = last if n == chunks - 1 and last else CHUNK
            for _ in range(size):
                line = f.readline()
                if not line.endswith("\n") or line[:1] not in (KEPT, MADE):
                    raise PageWriterError(f"a part of the feed ends early (chunk {n + 1} of {chunks})")
                kept += line[0] == KEPT
                feed.write(line[1:])
        for f in files:
            if f.read(1):
                raise PageWriterError("a part of the feed holds more lines than were sent")
    finally:
        for f in files:
            f.close()
    return kept


def main(argv: Sequence[str]) -> int:
    """A worker: chunks of statements from stdin (pickled by :func:`write_pages`), each page
    written under ``OUT_DIR`` and its line of the feed to ``PART``."""
    out_dir, part = argv
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        source = sys.stdin.buffer
        while True:
            try:
                chunk = pickle.load(source)  # one unpickler per chunk: each was pickled on its own
            except EOFError:
                break
            for item in chunk:
                kept, line = page_line(out_dir, *item)
                out.write((KEPT if kept else MADE) + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
