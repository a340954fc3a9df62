"""Time every stage of `dac7 run` on a generated marketplace.

    .venv/bin/python benchmarks/pipeline.py --sellers 170000     # about 5 million transactions

Generates the demo marketplace into SQLite (kept between runs under --work), runs each stage of
the pipeline in this process, and prints the seconds per stage, the rows and the peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import date, datetime
from pathlib import Path

from dac7_demo import generate_demo
from reporting import pipeline

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sellers", type=int, default=30_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", default="/tmp/dac7-bench")
    args = ap.parse_args()
    work = Path(args.work)
    db = work / f"marketplace-{args.sellers}-{args.seed}.db"
    url = f"sqlite:///{db}"
    if not db.exists():
        t = time.perf_counter()
        counts = generate_demo(url, sellers=args.sellers, seed=args.seed, year=2025)
        print(f"generated {counts['transactions']:,} transactions in {time.perf_counter() - t:.1f} s")
    run_dir = pipeline.prepare(
        config_path=REPO / "dac7.toml",
        year=2025,
        out_dir=work / "out",
        as_of=date(2026, 1, 31),
        staging_root=work / "staging",
        source_url=url,
        timestamp=datetime(2026, 1, 15, 6),
    )
    timings = []
    total = time.perf_counter()
    for name, stage in (
        ("extract", lambda: pipeline.extract(run_dir, url)),
        ("aggregate", lambda: pipeline.aggregate(run_dir)),
        ("rules", lambda: pipeline.apply_rules(run_dir)),
        ("render", lambda: pipeline.render(run_dir)),
        ("validate", lambda: pipeline.validate(run_dir)),
        ("publish", lambda: pipeline.publish(run_dir)),
        ("statements", lambda: pipeline.write_statements(run_dir)),  # none for a preview
    ):
        t = time.perf_counter()
        result = stage()
        # the process's peak memory so far: where it grows is the stage that needs it
        timings.append((name, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6))
        if name == "publish":
            manifest = result
        if name == "statements" and result["statements"]:
            print(f"statements: {result['statements'] / timings[-1][1]:,.0f} statements/s")
    elapsed = time.perf_counter() - total
    s = manifest["summary"]
    print(
        f"{s['transactions_read']:,} transactions, {s['sellers_read']:,} sellers, {s['reportable']:,} reportable, "
        f"{len(manifest['files'])} files, {sum(f['bytes'] for f in manifest['files']) / 1e6:.0f} MB of XML"
    )
    for name, seconds, peak in timings:
        print(f"  {name:<10}{seconds:>8.1f} s   peak so far {peak:.2f} GB")
    # the checks inside those stages: the Great Expectations suites, the relational checks of
    # the extract and the record checks of the rules stage
    checks = manifest["data_checks"]
    run_path = Path(run_dir)
    relational = json.loads((run_path / "extract" / "extract.json").read_text())["relational_checks_seconds"]
    records = json.loads((run_path / "rules" / "rules.json").read_text())["record_checks_seconds"]
    for stage, c in checks["stages"].items():
        print(f"    checks {stage:<12}{c['seconds']:>8.1f} s (Great Expectations)")
    print(f"    checks {'relational':<12}{relational:>8.1f} s (DuckDB)")
    print(f"    checks {'records':<12}{records:>8.1f} s (rendering rules)")
    spent = checks["seconds"] + relational + records
    print(f"    checks in all {spent:.1f} s: {100 * spent / elapsed:.1f}% of the run")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"  {'total':<10}{elapsed:>8.1f} s, peak memory {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
