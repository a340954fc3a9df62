"""Time the statements of a filing: the feed and a page per seller, from a published XML file.

    .venv/bin/python benchmarks/statements.py FILED.xml [--out DIR] [--workers N] [--profile]

Reads the seller records of the file as the ``statements`` stage does and writes
``DIR/statements/`` (a fresh folder each time, the first writing: every page created), with the
ledger's and the languages' lookups replaced by functions of the DocRefId (each seller gets the
DocRefId as its id, and the languages of the project in turn), so that the figure is the
stage's own work. Prints the statements per second, the CPU time and the peak memory.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import shutil
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("xml", help="a published DPI message (the demo filing)")
    ap.add_argument("--authority", default="LT")
    ap.add_argument("--out", help="the output folder (default: a temporary one, removed after)")
    ap.add_argument("--workers", type=int, default=None, help="processes writing the pages (default: the stage's)")
    ap.add_argument("--profile", action="store_true", help="print where the time goes (cProfile)")
    args = ap.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="dac7-statements-"))
    shutil.rmtree(out / "statements", ignore_errors=True)
    kwargs: dict[str, int] = {} if args.workers is None else {"workers": args.workers}
    profile = cProfile.Profile() if args.profile else None
    cpu = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    with owner_only():
        if profile:
            profile.enable()
        written = write_statements(
            out,
            [Published(Path(args.xml), args.authority)],
            environment="test",
            year=2025,
            seller_of=sellers,
            language_of=languages,
            **kwargs,
        )
        if profile:
            profile.disable()
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = time.process_time() - cpu
    others = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, after.ru_maxrss) / 1e6
    print(
        f"{written.statements:,} statements in {wall:.2f} s: {written.statements / wall:,.0f} statements/s, "
        f"CPU {own + others:.2f} s ({own:.2f} s reading, {others:.2f} s in the page writers), peak RSS {peak:.2f} GB"
    )
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    if not args.out:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
