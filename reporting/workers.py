"""Jobs run in parallel in worker processes, their results (or exceptions) given back in order.

The workers are fresh interpreters (``python -c``, the equivalent of multiprocessing's "spawn"),
started with :mod:`subprocess` and spoken to over their standard input and output with pickle:

* nothing of the calling process is forked: safe in an Airflow task process or a CLI that runs
  threads (a fork copies their locks in whatever state they are);
* the caller's ``__main__`` is never imported again: multiprocessing's "spawn" and
  "forkserver" run the main script of the caller in every worker, which a script without an
  ``if __name__ == "__main__"`` guard (a benchmark) does not survive;
* a daemonic process (a Celery prefork worker) may start them, where multiprocessing refuses
  children;
* they inherit the caller's umask and environment; anything they print goes to standard error,
  never into the results.

A job is a picklable module-level function and its arguments; the calling process does jobs
too, in a thread of its own (its modules and caches are loaded already). :func:`run_ordered`
gives the results in the order of the jobs; a job that raised raises its exception again in the caller in its
turn, of the same type and with the same message; the jobs after it are not started.
"""

from __future__ import annotations

import contextvars
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from reporting.errors import ReportingError, database_error_text, is_database_error

#: at most this many workers, whatever the number of CPUs
MAX_WORKERS = 8

_BOOT = (
    "import os, pickle, sys\n"
    "sys.path[:] = pickle.load(sys.stdin.buffer)\n"
    "from reporting.workers import _serve\n"
    "_serve()\n"
)


class WorkerError(ReportingError):
    """A worker process ended without giving back the result of its job (killed, out of memory)."""


def cpu_count() -> int:
    """The CPUs this process may run on."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13
    if count is not None:
        return count() or 1
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def workers_for(jobs: int) -> int:
    """How many workers to use for ``jobs`` jobs: one per CPU, at most :data:`MAX_WORKERS`, and
    at most one per job (1: run them in this process)."""
    return max(1, min(jobs, cpu_count(), MAX_WORKERS))


def run_ordered(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    *,
    workers: int,
    weights: Sequence[float] | None = None,
) -> Iterator[Any]:
    """``fn(*args)`` of each job, yielded in the order of ``jobs`` as soon as it and those before it
    are done, computed by this process and ``workers - 1`` worker processes (in this process, one
    job after the other, when ``workers`` is 1 or there is at most one job). ``weights`` (the size
    of each job) has the heaviest jobs started first, so that the workers finish together. A job
    that raised raises in its turn; the jobs after it are not started (those under way finish,
    unused)."""
    if workers <= 1 or len(jobs) <= 1 or not sys.executable:
        for args in jobs:
            yield fn(*args)
        return
    order = sorted(range(len(jobs)), key=lambda i: -(weights[i] if weights else 0))
    outcomes: dict[int, tuple[bool, Any]] = {}
    state = {"stop": len(jobs)}  # no job from this index on is started
    done = threading.Condition()

    def next_job() -> int | None:
        with done:
            while order:
                i = order.pop(0)
                if i < state["stop"]:
                    return i
            return None

    def record(i: int, outcome: tuple[bool, Any]) -> None:
        with done:
            outcomes[i] = outcome
            if outcome is not HERE and not outcome[0]:
                state["stop"] = min(state["stop"], i + 1)
            done.notify_all()

    def drive() -> None:
        """Hand jobs to a worker process of its own (started on the first job). A worker that
        cannot start or dies, or an outcome that could not come back as it was, leaves the job
        to the caller's own process (marked ``HERE``): the result is the one it would give."""
        proc: subprocess.Popen[bytes] | None = None
        try:
            while (i := next_job()) is not None:
                try:
                    if proc is None:
                        proc = _start()
                    outcome = _call(proc, fn, jobs[i])
                except Exception:  # no worker started, it died, or the pipe broke
                    record(i, HERE)
                    return
                record(i, HERE if not outcome[0] and isinstance(outcome[1], WorkerError) else outcome)
        finally:
            if proc is not None:
                _stop(proc)

    def work_here() -> None:
        """Jobs done in this process (which has its modules loaded already), in the caller's
        context (its log context), while this process waits for the others anyway."""
        while (i := next_job()) is not None:
            try:
                outcome: tuple[bool, Any] = (True, context.run(fn, *jobs[i]))
            except BaseException as exc:  # given to the caller, who raises it in its turn
                outcome = (False, exc)
            record(i, outcome)

    context = contextvars.copy_context()
    threads = [threading.Thread(target=work_here, name="dac7-worker-0", daemon=True)]
    threads += [threading.Thread(target=drive, name=f"dac7-worker-{n}", daemon=True) for n in range(1, workers)]
    for t in threads[: len(jobs)]:
        t.start()
    try:
        for i in range(len(jobs)):
            with done:
                while i not in outcomes:
                    done.wait()
                outcome = outcomes.pop(i)
            if outcome is HERE:
                # raises here what the job raises; in a copy of the context, which this process's
                # own thread may have entered meanwhile (a context is entered by one thread at a time)
                yield context.copy().run(fn, *jobs[i])
                continue
            ok, value = outcome
            if not ok:
                raise value
            yield value
    finally:
        with done:
            state["stop"] = -1  # the caller stopped (or a job raised): start nothing more
            order.clear()
        for t in threads[: len(jobs)]:
            t.join()


class Worker:
    """One worker process whose jobs are sent and whose outcomes are read when the caller wants
    them (in the order sent): a stage starts one early, sends it a job that loads what the real
    job needs, and sends the real job when its input is ready."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = _start()
        self._unread = 0

    def send(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` (a picklable module-level function); raises :class:`WorkerError`
        when the worker is gone."""
        if self._proc is None or self._proc.stdin is None:
            raise WorkerError("the worker process was stopped")
        try:
            pickle.dump((fn, args), self._proc.stdin)
            self._proc.stdin.flush()
        except OSError:
            raise WorkerError("a worker process ended before it took its job") from None
        self._unread += 1

    def receive(self) -> Any:
        """The outcome of the oldest job not read yet: its result, or its exception raised here."""
        if self._proc is None or self._proc.stdout is None or not self._unread:
            raise WorkerError("no job of this worker is waiting to be read")
        self._unread -= 1
        try:
            ok, value = pickle.load(self._proc.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            self._proc.kill()
            code = self._proc.wait()
            raise WorkerError(f"a worker process ended (exit code {code}) before it gave its job's result") from None
        if not ok:
            raise value
        return value

    @property
    def pid(self) -> int | None:
        """The worker process's id, while it runs."""
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        """Whether the worker process still runs."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def unread(self) -> int:
        """How many outcomes of jobs sent are still to be read."""
        return self._unread

    def close(self, *, wait: bool = True) -> None:
        """End the worker: at once when it has outcomes no one will read, or when ``wait`` is
        false (its outcomes were all read, so nothing of it is lost: its interpreter's own exit
        takes about 0.7 s once it has imported Great Expectations), else when it is idle."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self._unread or not wait:
            proc.kill()
        _stop(proc)


#: the outcome of a job that the calling process does itself (see ``run_ordered``)
HERE: tuple[bool, Any] = (False, None)


def _start() -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        # the interpreter's own options (-X, -W, -O ...), as multiprocessing passes them (a private
        # helper of subprocess, which typeshed does not list)
        [sys.executable, *subprocess._args_from_interpreter_flags(), "-c", _BOOT],  # type: ignore[attr-defined]
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        close_fds=True,
    )
    assert proc.stdin is not None
    pickle.dump(sys.path, proc.stdin)
    proc.stdin.flush()
    return proc


def _call(proc: subprocess.Popen[bytes], fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    try:
        pickle.dump((fn, args), proc.stdin)
        proc.stdin.flush()
        return pickle.load(proc.stdout)
    except (EOFError, OSError, pickle.UnpicklingError):
        proc.kill()
        code = proc.wait()
        raise WorkerError(f"a worker process ended (exit code {code}) before it gave the result of its job") from None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a worker: it leaves when its input closes (killed if it does not within 10 s)."""
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a job that does not end
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _serve() -> None:
    """A worker's loop: a job from standard input, its outcome to standard output, until the
    input closes. Standard output is the results' pipe alone: what else is printed goes to
    standard error."""
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    jobs = sys.stdin.buffer
    while True:
        try:
            fn, args = pickle.load(jobs)
        except EOFError:
            return
        try:
            outcome: tuple[bool, Any] = (True, fn(*args))
        except Exception as exc:
            outcome = (False, exc)
        try:
            data = pickle.dumps(outcome)
            pickle.loads(data)  # an exception that does not come back as it was raised is said in words
        except Exception:
            raised = outcome[1] if not outcome[0] else None
            if raised is None:
                detail = "a result that cannot be pickled"
            elif is_database_error(raised):  # its words may quote the rows' values
                detail = database_error_text(raised)
            else:
                detail = f"{type(raised).__name__}: {raised}"
            data = pickle.dumps((False, WorkerError(f"a worker could not give back its outcome: {detail}")))
        results.write(data)
        results.flush()
