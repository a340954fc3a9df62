"""What shared staging costs a distributed run: push and pull of a whole run's staging directory.

    .venv/bin/python benchmarks/pipeline.py --sellers 170000          # a 5M-transaction run first
    .venv/bin/python benchmarks/shared_staging.py                     # then its staging, shared
    .venv/bin/python benchmarks/shared_staging.py --url s3://bucket/prefix   # against real S3

Takes the newest run under ``--work``/staging (what benchmarks/pipeline.py left), pushes it to the
shared root as the stages would (one push per stage, in the order they write), pulls it on a
fresh "worker", pulls again (nothing changed: the per-task cost of a worker that is up to date),
and prints files, bytes and seconds of each step. The default shared root is a local directory
(``file://``): the figure is the copy cost of the code, not a network's.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from reporting.shared_staging import SharedStaging

STAGE_DIRS = ("extract", "aggregate", "checks", "rules", "render", "validate", "publish")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/dac7-bench")
    ap.add_argument("--url", help="shared staging URL (default: a temporary local directory)")
    args = ap.parse_args()
    runs = sorted((Path(args.work) / "staging").glob("20*-*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SystemExit(f"no staged run under {args.work}/staging: run benchmarks/pipeline.py first")
    source = runs[-1]
    scratch = Path(tempfile.mkdtemp(prefix="dac7-shared-bench-"))
    try:
        shared = SharedStaging.from_url(args.url or (scratch / "shared").as_uri())
        name = source.name
        worker1, worker2 = scratch / "worker1", scratch / "worker2"
        # worker 1 produces the run stage by stage: copy in one stage's files, push
        (worker1 / name).mkdir(parents=True)
        rows = []
        shutil.copy2(source / "settings.json", worker1 / name / "settings.json")
        rows.append(("prepare", shared.push(name, worker1)))
        for stage in STAGE_DIRS:
            if (source / stage).is_dir():
                shutil.copytree(source / stage, worker1 / name / stage)
                rows.append((f"push {stage}", shared.push(name, worker1)))
        t = time.perf_counter()
        rows.append(("pull all, fresh worker", shared.pull(name, worker2)))
        rows.append(("pull again, up to date", shared.pull(name, worker2)))
        total = time.perf_counter() - t
        print(f"run {name}: shared root {shared.url_for_log()}")
        print(f"  {'step':<28}{'files':>8}{'MB':>10}{'seconds':>10}{'MB/s':>10}")
        for step, r in rows:
            rate = r.bytes / 1e6 / r.seconds if r.seconds > 0 else 0.0
            print(f"  {step:<28}{r.files:>8}{r.bytes / 1e6:>10.1f}{r.seconds:>10.2f}{rate:>10.0f}")
        print(f"  a fresh worker's first task waits {total:.2f} s for the whole run; later tasks only for what changed")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
