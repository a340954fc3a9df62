"""Time the due-diligence desk of the DAC7 view (``/attention``) at scale: the page (first, filtered,
last) and the CSV export over a ledger of N sellers that need attention.

    .venv/bin/python benchmarks/desk_attention.py --sellers 200000
    .venv/bin/python benchmarks/desk_attention.py --sellers 200000 --ledger postgresql://localhost/dac7_bench

The ledger is filled as daily runs fill it (``write_run``, through ADBC where the ``fast`` extra
reaches the ledger): N state rows of one operator, every one needing attention: a quarter with a
request due, a quarter requested (the first reminder due), a quarter reminded twice (the measure
due), an eighth blocked (TIN still missing), an eighth with only the pre-report notice due; eight
residence countries. The first run writes every desk row (timed: ``desk filled``); a second run
that changed 1% of the sellers writes theirs (``desk incremental``). Then, in this process, each
page is read and rendered as the route does it (``read_attention`` then ``attention_page``), a
few times, the best and the median printed: the first page, a page filtered by country and
action, the last page; and the whole export (``export_attention``, consumed). ``--old`` also
times what the page read before the desk's table (every seller's actions computed in Python by
``reporting.due_diligence.needs_attention``), once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

REQUEST = date(2026, 3, 2)
AS_OF = date(2026, 5, 4)  # day 63
COUNTRIES = ("LT", "DE", "FR", "PL", "IT", "ES", "NL", "US")


def state_rows(n: int, changed: bool = False) -> Any:
    """The N state rows (or the 1% that a next day changes: their TIN came in) as an Arrow table."""
    import pyarrow as pa
    import sqlalchemy as sa

    import reporting.ledger.schema as t
    from reporting.vocabulary import DUE_DILIGENCE_ITEMS

    def kind(c: Any) -> pa.DataType:
        if isinstance(c.type, sa.Date):
            return pa.date32()
        if isinstance(c.type, sa.DateTime):
            return pa.timestamp("us")
        return pa.int64() if isinstance(c.type, sa.Integer) else pa.string()

    schema = pa.schema([(c.name, kind(c)) for c in t.due_diligence.c])
    blank = {c.name: None for c in t.due_diligence.c}
    rows = []
    for i in range(0, n, 100 if changed else 1):
        row = dict(blank)
        stage = i % 8
        lacks = () if changed else ("tin",)
        row.update(
            operator_id="default",
            seller_id=f"S{i:08d}",
            seller_type="individual",
            country=COUNTRIES[(i // 8) % 8],
            scope="in_scope",
            period=2026,
            fingerprint=f"{i:016x}",
            needs=",".join(lacks),
            cycles=0,
            first_seen=REQUEST,
            updated=REQUEST,
            changed=datetime(2026, 3, 2, 4),
            notice_due=REQUEST,
            notice_on=None if stage == 7 else REQUEST,
        )
        for item in DUE_DILIGENCE_ITEMS:
            row[f"{item}_state"] = "missing" if item in lacks else "verified"
        if stage in (0, 1):
            row.update(request_due=REQUEST)
        elif stage in (2, 3, 4, 5, 6):
            row.update(requested_on=REQUEST, requested_items="tin")
            if stage >= 4:
                row.update(reminder_1_on=REQUEST + timedelta(14), reminder_2_on=REQUEST + timedelta(28))
            if stage == 6:
                row.update(measure="withhold_payouts", measure_on=REQUEST + timedelta(61))
        if changed and stage == 6:
            row.update(release_due=AS_OF)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def write(ledger: Any, table: Any, on: date) -> float:
    import pyarrow as pa
    import sqlalchemy as sa

    import reporting.ledger.schema as t
    from reporting.diligence_cycle import CycleSettings
    from reporting.ledger.due_diligence import settings_json, write_run

    events = pa.schema(
        [
            (c.name, pa.timestamp("us") if isinstance(c.type, sa.DateTime) else pa.string())
            for c in t.due_diligence_events.c
            if c.name != "id"
        ]
    )
    started = time.perf_counter()
    write_run(
        ledger.engine,
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=50_000)),
        pa.RecordBatchReader.from_batches(events, []),
        {
            "operator_id": "default",
            "run_date": on,
            "run_id": f"bench-{on}",
            "finished": datetime(on.year, on.month, on.day, 4),
            "sellers": table.num_rows,
            "in_scope": table.num_rows,
            "changed": table.num_rows,
            "events": 0,
            "actions": "{}",
            "feed_sha256": None,
            "settings": settings_json(CycleSettings()),
        },
        CycleSettings(),
    )
    return time.perf_counter() - started


def timed(work: Any, times: int) -> tuple[float, float, Any]:
    seconds, out = [], None
    for _ in range(times):
        started = time.perf_counter()
        out = work()
        seconds.append(time.perf_counter() - started)
    return min(seconds), statistics.median(seconds), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sellers", type=int, default=200_000)
    ap.add_argument("--work", default=str(REPO / ".dac7" / "bench"))
    ap.add_argument("--ledger", help="the ledger's URL (default: a new SQLite file in the work folder)")
    ap.add_argument("--times", type=int, default=5, help="reads of each page (the best and the median)")
    ap.add_argument("--old", action="store_true", help="also time the list computed in Python, once")
    args = ap.parse_args()
    os.environ.pop("DAC7_CONFIG", None)
    import dac7_attention as a

    from reporting.ledger import open_ledger

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.ledger:
        path = work / f"desk-{args.sellers}.sqlite3"
        path.unlink(missing_ok=True)
        args.ledger = f"sqlite:///{path}"
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {args.ledger.split(':')[0]}")
    figures: dict[str, Any] = {"sellers": args.sellers}
    with open_ledger(args.ledger) as ledger:
        figures["desk filled"] = round(write(ledger, state_rows(args.sellers), AS_OF - timedelta(1)), 2)
        figures["desk incremental"] = round(write(ledger, state_rows(args.sellers, changed=True), AS_OF), 2)
        if args.old:
            from reporting.diligence_cycle import CycleSettings
            from reporting.due_diligence import needs_attention

            started = time.perf_counter()
            n = sum(1 for _ in needs_attention(ledger, CycleSettings(), AS_OF))
            figures["old list computed in Python"] = {"sellers": n, "seconds": round(time.perf_counter() - started, 2)}
    src = SimpleNamespace(ledger_url=args.ledger, problems=[])
    for name, query in (
        ("first page", a.AttentionQuery()),
        (
            "filtered page (country=PL, action=withhold_payouts)",
            a.AttentionQuery(country="PL", action="withhold_payouts"),
        ),
        ("filtered page (action=reminder_1)", a.AttentionQuery(action="reminder_1")),
        ("last page", a.AttentionQuery(page=999_999)),
    ):

        def page(q: Any = query) -> Any:
            found = a.read_attention(src, q)
            a.attention_page(found, q, may_download=True)
            return found

        best, median, found = timed(page, args.times)
        figures[name] = {"best_s": round(best, 3), "median_s": round(median, 3), "total": found.total}
        print(f"{name}: {json.dumps(figures[name])}")

    def export() -> int:
        return sum(len(chunk) for chunk in a.export_attention(src, a.AttentionQuery(), "bench"))

    best, median, size = timed(export, 2)
    figures["export (whole list)"] = {"best_s": round(best, 2), "median_s": round(median, 2), "bytes": size}
    print(json.dumps(figures, indent=2))
    (work / f"desk-bench-{args.sellers}.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
