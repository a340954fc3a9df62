"""The columnar read takes the driver's next batches in a thread while the caller converts and
writes (:func:`reporting.stages.extract.read_ahead`): the same Parquet bytes as one thread, and
every failure as before: a batch the columnar path does not take at any point hands the table to
the DB-API (the file untouched), an error on either side is raised in the caller, and the thread
has always ended, the cursor closed, when the read returns or raises."""

from __future__ import annotations

import contextvars
import signal
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from reporting.stages import extract

# a hand-over lost (the end marker, the stop) hangs the caller: fail in seconds, not the suite's 900
pytestmark = pytest.mark.timeout(20, method="thread")  # a signal would be held until the thread ends

SPEC = extract.TABLES["transactions"]
COLUMNS = ", ".join(name for name, _, _ in SPEC)
SQL = f"select {COLUMNS} from transactions order by transaction_id"


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


@pytest.fixture
def no_thread_left() -> Iterator[None]:
    """Every test here ends with the threads it started with (the reading thread has ended)."""
    before = _threads()
    yield
    assert _threads() == before


def _row(i: int, amount: Any = None) -> tuple[Any, ...]:
    return (
        f"T{i:03d}",
        f"S{i % 4}",
        "goods",
        None,
        f"2025-0{1 + i % 9}-0{1 + i % 7} 10:00:00",
        "eur",
        100 * i if amount is None else amount,
        i % 5,
        None,
        None,
    )


def _source(path: Path, rows: list[tuple[Any, ...]]) -> Path:
    con = sqlite3.connect(path)
    try:
        declared = ", ".join(f"{n} {'INTEGER' if c is extract._int else ''}" for n, _, c in SPEC)
        con.execute(f"create table transactions ({declared})")
        con.executemany(f"insert into transactions values ({', '.join('?' * len(SPEC))})", rows)
        con.commit()
    finally:
        con.close()
    return path


class _Cursors:
    """The ADBC connection, its cursors counted when opened and closed."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.opened, self.closed = conn, 0, 0

    def cursor(self) -> Any:
        self.opened += 1
        cursors, cur = self, self.conn.cursor()

        class Counted:
            def __getattr__(self, name: str) -> Any:
                return getattr(cur, name)

            def close(self) -> None:
                cursors.closed += 1
                cur.close()

        return Counted()

    def close(self) -> None:
        self.conn.close()


@contextmanager
def _columnar(path: Path) -> Iterator[tuple[extract.Columnar, _Cursors]]:
    columnar = extract.columnar_connection(sa.engine.make_url(f"sqlite:///{path}"))
    assert columnar is not None
    cursors = _Cursors(columnar.conn)
    try:
        yield extract.Columnar(cursors, "sqlite"), cursors
    finally:
        columnar.close()


@contextmanager
def _one_thread(items: Iterable[Any], *, name: str, depth: int = 2) -> Iterator[Iterator[Any]]:
    """The loop before the reading thread: every batch read by the caller."""
    yield iter(items)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("adbc_driver_sqlite", reason="the fast extra (ADBC) is not installed")
    monkeypatch.setattr(extract, "BATCH_ROWS", 3)  # 25 rows: nine batches


@pytest.mark.usefixtures("small_batches", "no_thread_left")
def test_the_same_parquet_bytes_as_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _source(tmp_path / "s.db", [_row(i) for i in range(25)])
    names: list[str] = []
    original = extract.columnar_batch

    def converted(batch: pa.RecordBatch, *args: Any) -> pa.RecordBatch:
        names.append(threading.current_thread().name)
        return original(batch, *args)

    monkeypatch.setattr(extract, "columnar_batch", converted)
    with _columnar(source) as (columnar, cursors):
        assert extract._columnar_to_parquet(columnar, "transactions", SQL, {}, tmp_path / "two.parquet") == 25
        monkeypatch.setattr(extract, "read_ahead", _one_thread)
        assert extract._columnar_to_parquet(columnar, "transactions", SQL, {}, tmp_path / "one.parquet") == 25
    assert (tmp_path / "two.parquet").read_bytes() == (tmp_path / "one.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "two.parquet").metadata.num_row_groups == 9  # one per batch, in order
    assert pq.read_table(tmp_path / "two.parquet").column("transaction_id").to_pylist() == [
        f"T{i:03d}" for i in range(25)
    ]
    assert names == [threading.current_thread().name] * 18  # converted and written by the caller
    assert (cursors.opened, cursors.closed) == (4, 4)  # two reads, each its columns asked first


@pytest.mark.usefixtures("small_batches", "no_thread_left")
def test_a_batch_not_taken_late_leaves_the_file_untouched_and_the_db_api_reads(tmp_path: Path) -> None:
    # a REAL where the contract wants text, in the seventh batch of three rows
    rows = [_row(i) for i in range(25)]
    rows[19] = (*rows[19][:3], 4.5, *rows[19][4:])
    source = _source(tmp_path / "s.db", rows)
    path = tmp_path / "t.parquet"
    path.write_bytes(b"before")
    with _columnar(source) as (columnar, cursors):
        with pytest.raises(extract.NotColumnar, match="a REAL or BLOB value in a text or time column"):
            extract._columnar_to_parquet(columnar, "transactions", SQL, {}, path)
        assert path.read_bytes() == b"before"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db", "t.parquet"]  # no tmp file left
        assert cursors.opened == cursors.closed == 2
        engine = sa.create_engine(f"sqlite:///{source}")
        findings: list[Any] = []
        try:
            with engine.connect() as conn:
                n = extract._stream_to_parquet(conn, "transactions", SQL, {}, path, findings, columnar)
        finally:
            engine.dispose()
    assert n == 25
    assert pq.read_table(path).column("listing_id").to_pylist()[19] == "4.5"  # read by the DB-API's rule


@pytest.mark.usefixtures("small_batches", "no_thread_left")
def test_the_driver_failing_in_the_thread_is_not_columnar_in_the_caller(tmp_path: Path) -> None:
    # an amount of text after integers: SQLite's driver fails on the fourth batch, in the thread
    source = _source(tmp_path / "s.db", [_row(i, amount="ten" if i == 10 else None) for i in range(25)])
    with _columnar(source) as (columnar, cursors), pytest.raises(extract.NotColumnar, match="OSError while reading"):
        extract._columnar_to_parquet(columnar, "transactions", SQL, {}, tmp_path / "t.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]
    assert cursors.opened == cursors.closed == 2


@pytest.mark.usefixtures("small_batches", "no_thread_left")
def test_the_writer_failing_with_the_queue_full_ends_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _source(tmp_path / "s.db", [_row(i) for i in range(25)])
    original, seen = extract.columnar_batch, []

    def converted(batch: pa.RecordBatch, *args: Any) -> pa.RecordBatch:
        seen.append(batch.num_rows)
        if len(seen) == 2:
            time.sleep(0.2)  # the thread fills the queue meanwhile and waits to hand over more
            raise RuntimeError("disk full")
        return original(batch, *args)

    monkeypatch.setattr(extract, "columnar_batch", converted)
    failed = pytest.raises(extract.NotColumnar, match="RuntimeError while reading")
    with _columnar(source) as (columnar, cursors), failed:
        extract._columnar_to_parquet(columnar, "transactions", SQL, {}, tmp_path / "t.parquet")
    assert seen == [3, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]
    assert cursors.opened == cursors.closed == 2


@pytest.mark.usefixtures("small_batches", "no_thread_left")
def test_an_interrupt_while_writing_stays_an_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _source(tmp_path / "s.db", [_row(i) for i in range(25)])

    def interrupted(*args: Any) -> pa.RecordBatch:
        raise KeyboardInterrupt

    monkeypatch.setattr(extract, "columnar_batch", interrupted)
    with _columnar(source) as (columnar, cursors), pytest.raises(KeyboardInterrupt):
        extract._columnar_to_parquet(columnar, "transactions", SQL, {}, tmp_path / "t.parquet")
    assert cursors.opened == cursors.closed == 2


@pytest.mark.usefixtures("no_thread_left")
def test_items_come_in_their_order_from_a_thread_in_the_callers_context() -> None:
    stage: contextvars.ContextVar[str] = contextvars.ContextVar("stage")
    stage.set("extract")
    seen: list[tuple[str, str]] = []

    def items() -> Iterator[int]:
        for i in range(7):
            seen.append((threading.current_thread().name, stage.get()))
            yield i

    with extract.read_ahead(items(), name="dac7-extract-test", depth=1) as taken:
        assert list(taken) == [0, 1, 2, 3, 4, 5, 6]
    assert seen == [("dac7-extract-test", "extract")] * 7


@pytest.mark.usefixtures("no_thread_left")
def test_items_failing_raise_in_the_caller_in_their_turn() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("third")

    taken: list[int] = []
    with pytest.raises(ValueError, match="third"), extract.read_ahead(items(), name="t") as batches:
        taken.extend(batches)
    assert taken == [1, 2]


@pytest.mark.usefixtures("no_thread_left")
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_the_caller_leaving_early_stops_a_thread_with_more_to_give(error: type[BaseException]) -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        while True:
            produced.append(len(produced) + 1)
            yield len(produced)

    with pytest.raises(error), extract.read_ahead(endless(), name="t", depth=2) as batches:
        assert next(batches) == 1
        deadline = time.monotonic() + 5
        while len(produced) < 4 and time.monotonic() < deadline:  # two ready, the fourth held
            time.sleep(0.01)
        time.sleep(0.05)
        raise error
    assert produced == [1, 2, 3, 4]  # the queue full: stopped as it waited to hand over the fourth


@pytest.mark.usefixtures("no_thread_left")
def test_a_second_interrupt_while_the_thread_ends_waits_for_it() -> None:
    # the caller leaves while the thread is in the driver; Ctrl-C again as it waits: the cursor
    # is closed next, so the interrupt is raised only once the thread has ended
    leaving, read = threading.Event(), []
    main = threading.get_ident()

    def slow_driver() -> Iterator[int]:
        yield 1
        leaving.wait(5)
        time.sleep(0.1)  # the caller is in the join by now
        signal.pthread_kill(main, signal.SIGINT)
        time.sleep(0.2)
        read.append(2)
        yield 2

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), extract.read_ahead(slow_driver(), name="t") as batches:
            assert next(batches) == 1
            leaving.set()
            raise RuntimeError("disk full")
    finally:
        signal.signal(signal.SIGINT, before)
    assert read == [2]
