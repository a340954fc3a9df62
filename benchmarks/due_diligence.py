"""Time the daily due-diligence run at scale: a first run on an empty state, then the next day's
run after a day's changes (the incremental case), each in a process of its own.

    .venv/bin/python benchmarks/due_diligence.py --sellers 2000000        # about 6 million transactions
    .venv/bin/python benchmarks/due_diligence.py --sellers 200000 --ledger postgresql://...

The marketplace is generated set-based by DuckDB (far faster than the demo generator, which
writes a year of some 30 transactions per seller one by one) and loaded into SQLite through
ADBC, into ``<work>/dd-<sellers>.db``, reused when it exists: sellers of every kind (10%
entities, some governmental or listed), gaps in their data (a TIN missing for about one in
twelve, a last name or a birth date for one in fifty, a registration number for some entities),
permanent establishments, property listings for one seller in twenty, and one to five
transactions per seller between January and June 2026 (goods, services, rentals; EUR and PLN),
with some refunds. About 3 transactions per seller.

Day 1 (2026-07-01) runs on an empty ledger: every seller's state is written. The platform then
reports the notices and requests of day 1 as sent, and the source changes for a day: 1% of the
sellers get a new transaction, 0.2% a TIN they lacked, 0.1% a new address. Day 2 (2026-07-02)
runs on that: it reads everything and writes what changed. Each run happens in a child process
(its interpreter, its imports and every fixed cost count); the parent prints the wall time, the
peak memory of the child (RSS), the sellers, the states written and the actions due, and writes
``<work>/dd-bench-<sellers>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAY_1, DAY_2 = date(2026, 7, 1), date(2026, 7, 2)

SELLERS_SQL = """
select
    'S' || lpad(i::varchar, 8, '0') as seller_id,
    case when i % 10 = 0 then 'entity' else 'individual' end as seller_type,
    case when i % 10 <> 0 then 'First' || (i % 997) end as first_name,
    case when i % 10 <> 0 and i % 53 <> 0 then 'Last' || (i % 991) end as last_name,
    case when i % 10 = 0 then 'Company ' || i end as legal_name,
    case when i % 10 <> 0 and i % 47 <> 0 then strftime(date '1950-01-01' + (i % 20000)::integer, '%Y-%m-%d') end
        as birth_date,
    case when i % 10 <> 0 then 'Town' || (i % 500) end as birth_city,
    case when i % 10 <> 0 then 'LT' end as birth_country,
    ['LT', 'DE', 'FR', 'PL', 'IT', 'ES', 'NL', 'US'][1 + i % 8] as residence_country,
    'Street ' || (i % 1000) as address_street,
    (i % 200)::varchar as address_building,
    lpad((i % 99999)::varchar, 5, '0') as address_post_code,
    case when i % 331 <> 0 then 'City' || (i % 300) end as address_city,
    ['LT', 'DE', 'FR', 'PL', 'IT', 'ES', 'NL', 'US'][1 + i % 8] as address_country,
    case when i % 4 = 0 then 'LT' || lpad(i::varchar, 9, '0') end as vat_id,
    case when i % 10 = 0 and i % 70 <> 0 then 'BRN' || i end as business_registration_number,
    cast(i % 5000 = 0 as integer) as is_governmental,
    cast(i % 7000 = 0 as integer) as is_listed,
    case when i % 3 = 0 then strftime(date '2021-06-01' + (i % 1200)::integer, '%Y-%m-%d') end as registered_at
from range(1, $n + 1) as r(i)
"""
TINS_SQL = """
select 'S' || lpad(i::varchar, 8, '0') as seller_id, lpad((i * 7919 % 99999999999)::varchar, 11, '0') as tin,
    ['LT', 'DE', 'FR', 'PL', 'IT', 'ES', 'NL', 'US'][1 + i % 8] as issued_by
from range(1, $n + 1) as r(i) where i % 12 <> 0
"""
PES_SQL = """
select 'S' || lpad(i::varchar, 8, '0') as seller_id, 'DE' as country
from range(1, $n + 1) as r(i) where i % 30 = 0
"""
LISTINGS_SQL = """
select 'L' || lpad(i::varchar, 8, '0') as listing_id, 'S' || lpad(i::varchar, 8, '0') as seller_id,
    'Way ' || (i % 700) as address_street, (i % 90)::varchar as address_building, '01103' as address_post_code,
    case when i % 13 <> 0 then 'Vilnius' end as address_city, 'LT' as address_country,
    case when i % 3 = 0 then 'LRN-' || i end as land_registration_number, 'DPI905' as property_type
from range(1, $n + 1) as r(i) where i % 20 = 0
"""
TRANSACTIONS_SQL = """
with s as (select i, 1 + (hash(i) % 5)::integer as k from range(1, $n + 1) as r(i))
select
    'T' || lpad(i::varchar, 8, '0') || '-' || j as transaction_id,
    'S' || lpad(i::varchar, 8, '0') as seller_id,
    case when i % 20 = 0 then 'immovable_property' when i % 3 = 0 then 'sale_of_goods' else 'personal_services' end
        as activity,
    case when i % 20 = 0 then 'L' || lpad(i::varchar, 8, '0') end as listing_id,
    strftime(timestamp '2026-01-01 08:00:00' + to_seconds((hash(i * 31 + j) % 15552000)::bigint), '%Y-%m-%d %H:%M:%S')
        as paid_at,
    case when i % 17 = 0 then 'PLN' else 'EUR' end as currency,
    (500 + hash(i * 7 + j) % 120000)::bigint as amount_minor,
    0::bigint as fee_minor,
    0::bigint as tax_minor,
    case when i % 20 = 0 then 2 end as rented_days
from s, range(1, 6) as t(j)
where j <= s.k
"""
REFUNDS_SQL = """
select 'R' || transaction_id as refund_id, transaction_id,
    strftime(strptime(paid_at, '%Y-%m-%d %H:%M:%S') + interval 3 day, '%Y-%m-%d %H:%M:%S') as refunded_at,
    amount_minor // 2 as amount_minor, 0::bigint as fee_minor, 0::bigint as tax_minor
from transactions where hash(transaction_id) % 100 = 0
"""


def generate(db: Path, sellers: int) -> dict[str, int]:
    """The marketplace into a new SQLite file (the contract's DDL, then ADBC's bulk ingest)."""
    import adbc_driver_sqlite.dbapi
    import duckdb

    from reporting.source import create_schema, make_engine

    engine = make_engine(f"sqlite:///{db}")
    create_schema(engine)
    engine.dispose()
    con = duckdb.connect()
    counts = {}
    with adbc_driver_sqlite.dbapi.connect(str(db)) as lite:
        for table, sql in (
            ("sellers", SELLERS_SQL),
            ("seller_tins", TINS_SQL),
            ("seller_permanent_establishments", PES_SQL),
            ("property_listings", LISTINGS_SQL),
            ("transactions", TRANSACTIONS_SQL),
        ):
            con.execute(f"create table {table} as {sql}", {"n": sellers})
            reader = con.sql(f"select * from {table}").to_arrow_reader(100_000)
            with lite.cursor() as cur:
                cur.adbc_ingest(table, reader, mode="append")
            counts[table] = con.execute(f"select count(*) from {table}").fetchone()[0]  # type: ignore[index]
        con.execute(f"create table refunds as {REFUNDS_SQL}")
        with lite.cursor() as cur:
            cur.adbc_ingest("refunds", con.sql("select * from refunds").to_arrow_reader(100_000), mode="append")
            cur.execute("insert into fx_rates values ('PLN', '2026-06-30', '4.2735')")
        lite.commit()
        counts["refunds"] = con.execute("select count(*) from refunds").fetchone()[0]  # type: ignore[index]
    return counts


def change_a_day(db: Path, sellers: int) -> dict[str, int]:
    """A day's changes in the source: new transactions for 1% of the sellers, a TIN for 0.2% of
    those that lacked one, a new address for 0.1%."""
    import sqlite3

    with sqlite3.connect(db) as con:
        new = con.execute(
            "insert into transactions select 'N' || transaction_id, seller_id, activity, listing_id, "
            "'2026-07-01 10:00:00', currency, amount_minor, fee_minor, tax_minor, rented_days, operator_id "
            "from transactions where substr(transaction_id, length(transaction_id)) = '1' "
            "and cast(substr(seller_id, 2) as integer) % 100 = 7"
        ).rowcount
        tins = con.execute(
            "insert into seller_tins select seller_id, '12345678901', 'LT' from sellers "
            "where cast(substr(seller_id, 2) as integer) % 12 = 0 and cast(substr(seller_id, 2) as integer) % 5 = 0"
        ).rowcount
        moved = con.execute(
            "update sellers set address_street = 'New Street 1' where cast(substr(seller_id, 2) as integer) % 1000 = 3"
        ).rowcount
    return {"new_transactions": new, "tins_added": tins, "addresses_changed": moved}


def child(args: argparse.Namespace) -> None:
    """One run of the day, in this process; prints its result as JSON."""
    from reporting.config import load_config
    from reporting.due_diligence import run_due_diligence
    from reporting.ledger import open_ledger

    config = load_config(REPO / "dac7.toml")
    with open_ledger(args.ledger) as ledger:
        started = time.perf_counter()
        result = run_due_diligence(
            config,
            source_url=f"sqlite:///{args.db}",
            ledger=ledger,
            today=date.fromisoformat(args.day),
            out_dir=Path(args.work) / "out",
            work_root=Path(args.work) / "staging",
            now=datetime.now(UTC),
            run_id=f"bench-{args.day}",
        )
        seconds = time.perf_counter() - started
    print(json.dumps({**result.as_dict(), "seconds": seconds}))


def mark_day(ledger: str, work: Path, day: date) -> dict[str, int]:
    """The platform reports every notice and request of the day's feed as sent."""
    from zoneinfo import ZoneInfo

    from reporting.due_diligence import mark_actions
    from reporting.ledger import open_ledger

    feed = work / "out" / "due_diligence" / "actions.jsonl"
    report = work / "sent.jsonl"
    with feed.open(encoding="utf-8") as src, report.open("w", encoding="utf-8") as out:
        for line in src:
            obj = json.loads(line)
            if obj["action"] in ("pre_report_notice", "request"):
                out.write(
                    json.dumps({"seller_id": obj["seller_id"], "action": obj["action"], "at": f"{day}T12:00:00Z"})
                )
                out.write("\n")
    started = time.perf_counter()
    with open_ledger(ledger) as led:
        outcome = mark_actions(
            led, report, now=datetime(day.year, day.month, day.day, 18, tzinfo=UTC), zone=ZoneInfo("Europe/Vilnius")
        )
    return {"recorded": outcome.recorded, "seconds": round(time.perf_counter() - started, 1)}


def timed_child(args: argparse.Namespace, day: date) -> dict[str, object]:
    """The run of ``day`` in a child process: its wall time and its own peak RSS (``wait4``)."""
    started = time.perf_counter()
    command = [sys.executable, __file__, "--child", "--day", day.isoformat(), "--db", str(args.db)]
    proc = subprocess.Popen(
        [*command, "--ledger", args.ledger, "--work", str(args.work)], stdout=subprocess.PIPE, cwd=REPO
    )
    assert proc.stdout is not None
    output = proc.stdout.read().decode()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"the run of {day} failed (exit {proc.returncode})")
    wall = time.perf_counter() - started
    result = json.loads(output.strip().splitlines()[-1])
    return {**result, "wall_seconds": round(wall, 1), "peak_rss_gb": round(usage.ru_maxrss / 1e6, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sellers", type=int, default=200_000)
    ap.add_argument("--work", default=str(REPO / ".dac7" / "bench"))
    ap.add_argument("--ledger", help="the ledger's URL (default: a new SQLite file in the work folder)")
    ap.add_argument(
        "--again",
        type=date.fromisoformat,
        help="only run this later day on the state and source an earlier bench left (e.g. 2026-07-03): "
        "with DAC7_DUCKDB_MEMORY set, how the memory follows DuckDB's budget",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--day", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    work = Path(args.work) / f"dd-{args.sellers}"
    work.mkdir(parents=True, exist_ok=True)
    args.work = work
    args.db = Path(args.work).parent / f"dd-{args.sellers}.db"
    if args.again:
        args.ledger = args.ledger or f"sqlite:///{work / 'ledger.sqlite3'}"
        budget = os.environ.get("DAC7_DUCKDB_MEMORY", "1GB (default)")
        print(f"{args.again} (DuckDB memory {budget}): {json.dumps(timed_child(args, args.again))}")
        return
    if not args.db.exists():
        started = time.perf_counter()
        counts = generate(args.db, args.sellers)
        print(f"generated {counts} in {time.perf_counter() - started:.0f} s")
    pristine = args.db.with_suffix(".day1.db")  # day 2 changes the source: day 1's is kept beside it
    if not pristine.exists():
        shutil.copyfile(args.db, pristine)
    shutil.copyfile(pristine, args.db)
    ledger_file = work / "ledger.sqlite3"
    ledger_file.unlink(missing_ok=True)
    args.ledger = args.ledger or f"sqlite:///{ledger_file}"
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}")
    first = timed_child(args, DAY_1)
    print(f"day 1 (empty state): {json.dumps(first)}")
    marked = mark_day(args.ledger, work, DAY_1)
    changes = change_a_day(args.db, args.sellers)
    print(f"the platform reported {marked}; the source changed: {changes}")
    second = timed_child(args, DAY_2)
    print(f"day 2 (incremental): {json.dumps(second)}")
    (Path(args.work).parent / f"dd-bench-{args.sellers}.json").write_text(
        json.dumps(
            {"sellers": args.sellers, "day_1": first, "marked": marked, "changes": changes, "day_2": second}, indent=2
        ),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
