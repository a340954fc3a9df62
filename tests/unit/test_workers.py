"""Jobs in worker processes (:mod:`reporting.workers`): results and exceptions in the order of
the jobs, whichever process did them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reporting import workers
from reporting.errors import ConfigError, DataError
from reporting.findings import Finding
from reporting.workers import run_ordered, workers_for


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _square_or_raise(n: int) -> int:
    if n < 0:
        raise ConfigError(f"no square of {n}: negative")
    return n * n


def _exit_in_a_worker(caller: int) -> None:
    if os.getpid() != caller:
        os._exit(3)
    time.sleep(0.5)  # meanwhile the worker takes the other job


def _pid_of_marked(marks: str, light: bool) -> int:
    """A light job leaves a mark; the heavy one lasts until both light ones are done (a minute at
    most): however slowly the worker starts on a busy machine, it is the one that does them."""
    if light:
        (Path(marks) / f"{os.getpid()}-{time.monotonic_ns()}").touch()
    else:
        deadline = time.monotonic() + 60
        while len(list(Path(marks).iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    return os.getpid()


def test_jobs_are_done_by_this_process_and_a_worker_process_the_results_in_order(tmp_path: Path) -> None:
    # the heaviest first: this process takes the heavy job, the worker the others meanwhile
    jobs = [(str(tmp_path), True), (str(tmp_path), False), (str(tmp_path), True)]
    pids = list(run_ordered(_pid_of_marked, jobs, workers=2, weights=[0, 1, 0]))
    assert pids[1] == os.getpid()
    assert pids[0] == pids[2] != os.getpid()


def test_the_first_job_that_raised_raises_its_own_exception_in_its_turn() -> None:
    results = run_ordered(_square_or_raise, [(1,), (2,), (-3,), (4,), (-5,)], workers=2)
    assert next(results) == 1 and next(results) == 4
    with pytest.raises(ConfigError, match=r"^no square of -3: negative$"):
        next(results)
    assert [n * n for n in range(9)] == list(run_ordered(_square_or_raise, [(n,) for n in range(9)], workers=3))


def test_the_job_of_a_worker_that_dies_is_done_by_this_process() -> None:
    """A worker killed (out of memory, a signal) costs time, never the result."""
    assert list(run_ordered(_exit_in_a_worker, [(os.getpid(),), (os.getpid(),)], workers=2)) == [None, None]


def _exit_in_a_worker_or_sleep(caller: int, seconds: float) -> int:
    if os.getpid() != caller:
        os._exit(3)
    time.sleep(seconds)
    return os.getpid()


def test_the_job_of_a_dead_worker_is_done_here_while_this_process_does_its_own() -> None:
    """The worker dies on its job while this process's thread is still in its own (the heavier,
    started first): the dead worker's job is done at once beside it, in the caller's context."""
    caller = os.getpid()
    jobs = [(caller, 0.0), (caller, 3.0)]
    assert list(run_ordered(_exit_in_a_worker_or_sleep, jobs, workers=2, weights=[0, 1])) == [caller, caller]


def _data_error(n: int) -> int:
    if n == 1:
        raise DataError([Finding(rule="x.rule", table="sellers", key=f"S{n}", message="bad")])
    return n


def test_an_exception_that_cannot_travel_is_raised_by_this_process_as_it_is() -> None:
    """A DataError does not survive pickling (its findings would become the letters of its
    message): the job is done again here, and raises the DataError itself."""
    with pytest.raises(DataError) as caught:
        list(run_ordered(_data_error, [(0,), (1,), (2,)], workers=2, weights=[0, 1, 0]))
    assert [f.key for f in caught.value.findings] == ["S1"]


def test_a_worker_that_cannot_start_leaves_the_jobs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise OSError("no process")

    monkeypatch.setattr(workers, "_start", refuse)
    assert list(run_ordered(_square_or_raise, [(n,) for n in range(5)], workers=2)) == [0, 1, 4, 9, 16]


def test_one_job_or_one_worker_runs_here() -> None:
    assert list(run_ordered(_pid_after, [(0,)], workers=4)) == [os.getpid()]
    assert list(run_ordered(_pid_after, [(0,), (0,)], workers=1)) == [os.getpid()] * 2
    assert workers_for(1) == 1 and 1 <= workers_for(100) <= 8
