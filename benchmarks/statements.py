"""Time the statements of a filing: the feed and a page per seller, from a published XML file.

    .venv/bin/python benchmarks/statements.py FILED.xml [--out DIR] [--workers 0,1] [--repeat 3]
                                              [--keep] [--profile]

Reads the seller records of the file as the ``statements`` stage does and writes
``DIR/statements/`` (a fresh folder for each run: every page created), with the ledger's and
the languages' lookups replaced by functions of the DocRefId (each seller gets the DocRefId as
its id, and the languages of the project in turn), so that the figure is the writer's own work.

``--workers`` lists the page writers to time beside the reading process (0: one process; 1:
two, the figure for a machine of two cores); each is run ``--repeat`` times, in turn, and the
best and the median are printed with the CPU time (user and system: creating the files is
kernel time) of the process and of its page writers, the peak memory, and the share of the
cores other processes used during the run (Linux). The machine (cores, CPU model) and the file
system of the output are printed first: the load of other work and the file system decide much
of the figure. The outputs are removed at the end unless
``--keep``; on ext4 without a journal, files created within a minute or so of deleting many
others take far longer to create (the kernel skips over the inodes freed recently), so a run
straight after another run's clean-up measures that too.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from reporting.private import owner_only
from reporting.statements.feed import Published, write_statements

#: the languages given to the sellers in turn (None: no sellers.language, the English statement)
TAGS = (None, "de", "fr-BE", "lt", "pl", "en-GB", "fr")


def sellers(doc_ref_ids: Sequence[str]) -> dict[str, str]:
    return {d: d for d in doc_ref_ids}


def languages(seller_ids: Sequence[str]) -> dict[str, str | None]:
    return {s: TAGS[sum(s.encode()) % len(TAGS)] for s in seller_ids}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def file_system(path: Path) -> str:
    """The type of the file system that holds ``path`` (Linux: /proc/mounts), else "unknown"."""
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return "unknown"
    real = str(path.resolve())
    best = ("", "unknown")
    for m in mounts:
        if len(m) > 2 and (real == m[1] or real.startswith(m[1].rstrip("/") + "/")) and len(m[1]) >= len(best[0]):
            best = (m[1], m[2])
    return f"{best[1]} (mounted on {best[0]})"


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = f", {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.1f} GiB"
    python = platform.python_version()
    return f"{cpu_model()}, {cores} cores this process may use ({os.cpu_count()} in all){memory}, Python {python}"


def busy_seconds() -> float | None:
    """The CPU time all processes of the machine used so far (Linux: /proc/stat), or None."""
    try:
        with open("/proc/stat", encoding="utf-8") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if fields[:1] != ["cpu"]:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def one_run(xml: Path, authority: str, out: Path, workers: int, profile: cProfile.Profile | None) -> dict[str, float]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = busy_seconds()
    wall = time.perf_counter()
    with owner_only():
        if profile:
            profile.enable()
        written = write_statements(
            out,
            [Published(xml, authority)],
            environment="test",
            year=2025,
            seller_of=sellers,
            language_of=languages,
            workers=workers,
        )
        if profile:
            profile.disable()
    wall = time.perf_counter() - wall
    busy2 = busy_seconds()
    me2, children2 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    own = sum(b - a for a, b in zip(_cpu(me) + _cpu(children), _cpu(me2) + _cpu(children2), strict=True))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    others = max(0.0, (busy2 - busy - own) / (cores * wall)) if busy is not None and busy2 is not None else float("nan")
    return {
        "statements": written.statements,
        "wall": wall,
        "load": load,
        "user": me2.ru_utime - me.ru_utime,
        "sys": me2.ru_stime - me.ru_stime,
        "writers_user": children2.ru_utime - children.ru_utime,
        "writers_sys": children2.ru_stime - children.ru_stime,
        "peak": max(me2.ru_maxrss, children2.ru_maxrss) / 1e6,
        "others": others,
    }


def _cpu(usage: resource.struct_rusage) -> tuple[float, float]:
    return usage.ru_utime, usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("xml", help="a published DPI message (the demo filing)")
    ap.add_argument("--authority", default="LT")
    ap.add_argument("--out", help="the folder the runs write into (default: a temporary one)")
    ap.add_argument("--workers", default="0,1", help="page writers beside the reading process, a list (default 0,1)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    ap.add_argument("--keep", action="store_true", help="keep the outputs (default: removed at the end)")
    ap.add_argument("--profile", action="store_true", help="print where the time goes (cProfile, one run)")
    args = ap.parse_args()
    base = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="dac7-statements-"))
    base.mkdir(parents=True, exist_ok=True)
    counts = [int(w) for w in args.workers.split(",")]
    print(f"machine: {machine()}")
    print(f"output: {base} on {file_system(base)}")
    profile = cProfile.Profile() if args.profile else None
    runs: dict[int, list[dict[str, float]]] = {w: [] for w in counts}
    made: list[Path] = []
    try:
        for n in range(1 if profile else args.repeat):
            for w in counts:
                out = Path(tempfile.mkdtemp(prefix=f"run{n}-w{w}-", dir=base))
                made.append(out)
                r = one_run(Path(args.xml), args.authority, out, w, profile)
                runs[w].append(r)
                print(
                    f"  {w + 1} process(es): {r['statements']:,.0f} statements in {r['wall']:.2f} s, "
                    f"{r['statements'] / r['wall']:,.0f}/s; CPU user {r['user']:.2f} s + sys {r['sys']:.2f} s, "
                    f"page writers user {r['writers_user']:.2f} s + sys {r['writers_sys']:.2f} s; "
                    f"peak RSS {r['peak']:.2f} GB; load average before {r['load']:.2f}, "
                    f"other processes used {r['others']:.0%} of the cores meanwhile",
                    flush=True,
                )
        for w, rs in runs.items():
            rates = sorted(r["statements"] / r["wall"] for r in rs)
            print(
                f"{w + 1} process(es) (workers={w}): best {rates[-1]:,.0f} statements/s, "
                f"median {statistics.median(rates):,.0f}/s of {len(rates)} run(s)"
            )
        if profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    finally:
        if not args.keep:
            for out in made:
                shutil.rmtree(out, ignore_errors=True)
            if not args.out:
                shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
