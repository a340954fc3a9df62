"""``dac7 bench --render-sellers N [N ...]``: the render stage's peak memory at scales of reportable
sellers that generating would take hours to reach (a million reportable sellers are about 78
million transactions of the demo's mix).

A run of the generated marketplace is staged up to its rules stage once, under the filing's
routing (every reportable seller to the filing state: one authority, one message). For each scale
its routed sellers are repeated under new ids (``<seller_id>-x<copy>``, their listings likewise)
in a copy of that staging directory, just the staged files the render reads (the routed sellers'
identities, TINs, accounts, permanent establishments, listings, decisions and reported figures),
and the render of that copy runs in a process of its own, into an empty ledger (a first filing):
its peak RSS is the process's own, the interpreter and the imports included.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from reporting.vocabulary import NEXUS

#: the staged files of one seller's data that the render reads, by stage
SELLER_FILES = (
    "rules/routing",
    "rules/decisions",
    "rules/reported",
    "extract/sellers",
    "extract/seller_tins",
    "extract/seller_financial_accounts",
    "extract/seller_permanent_establishments",
    "extract/property_listings",
)


@dataclass
class RenderScale:
    reportable: int
    seconds: float
    peak_rss_gb: float
    per_second: float
    messages: int


def base_run(work: Path, url: str, year: int) -> Path:
    """The marketplace's run staged up to its rules stage (the filing's routing), in ``work``."""
    from dac7_demo.bench import CONFIG
    from reporting import pipeline
    from reporting.checks.data import keep_checks_worker

    config = work / "bench-render.toml"
    config.write_text(CONFIG.format(routing=NEXUS, data_docs="false", aggregate="local"), encoding="utf-8")
    staging = work / "render-base"
    shutil.rmtree(staging, ignore_errors=True)
    run_dir = pipeline.prepare(
        config_path=config,
        year=year,
        out_dir=work / "render-base-out",
        as_of=date(year + 1, 1, 31),
        staging_root=staging,
        source_url=url,
        timestamp=datetime(year + 1, 1, 15, 6),
        ledger_url=f"sqlite:///{staging / 'ledger.sqlite3'}",
    )
    with keep_checks_worker():
        pipeline.extract(run_dir, url)
        pipeline.aggregate(run_dir)
        pipeline.apply_rules(run_dir)
    return Path(run_dir)


def scaled_run(base: Path, dest: Path, copies: int) -> Path:
    """A copy of the staged run ``base`` in ``dest`` whose routed sellers are repeated ``copies``
    times under new ids, with an empty ledger and output of its own; returns its run directory."""
    import duckdb

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    run = dest / base.name
    shutil.copytree(base, run)
    settings = json.loads((run / "settings.json").read_text(encoding="utf-8"))
    settings |= {
        "run_dir": str(run),
        "out_dir": str(dest / "out"),
        "ledger_url": f"sqlite:///{dest / 'ledger.sqlite3'}",
    }
    (run / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    width = len(str(copies - 1))

    def renamed(column: str, empty: str = "") -> str:
        # the copy's number after the id: ids stay in the same order within each copy
        keep = f"{column} is null" + (f" or {column} = {empty}" if empty else "")
        return f"case when {keep} then {column} else {column} || '-x' || lpad(k::varchar, {width}, '0') end"

    con = duckdb.connect(config={"threads": 2, "memory_limit": "2GB", "temp_directory": str(dest / ".spill")})
    con.execute("set enable_progress_bar = false")
    try:
        con.execute("create table copies as select unnest(range(?)) as k", [copies])
        routing = f"read_parquet('{base}/rules/routing.parquet')"
        con.execute(f"create table routed as select distinct seller_id from {routing}")
        for name in SELLER_FILES:
            source = f"read_parquet('{base}/{name}.parquet')"
            columns = [r[0] for r in con.execute(f"describe select * from {source}").fetchall()]
            select = []
            for c in columns:
                if c == "seller_id" or (c == "listing_id" and name != "rules/reported"):
                    select.append(f"{renamed(c)} as {c}")
                elif c == "listing_id":  # '' where the figures belong to no listing
                    select.append(f"{renamed(c, chr(39) * 2)} as {c}")
                else:
                    select.append(c)
            con.execute(
                f"copy (select {', '.join(select)} from {source} as t, copies as c "
                "where t.seller_id in (select seller_id from routed)) "
                f"to '{run}/{name}.parquet' (format parquet, compression zstd)"
            )
        keys = f"read_parquet('{base}/aggregate/listing_keys.parquet')"
        con.execute(
            f"copy (select {renamed('listing_id')} as listing_id, {renamed('listing_key')} as listing_key, units "
            f"from {keys}, copies) to '{run}/aggregate/listing_keys.parquet' (format parquet, compression zstd)"
        )
    finally:
        con.close()
    shutil.rmtree(dest / ".spill", ignore_errors=True)
    return run


def render_child(run_dir: str) -> dict[str, Any]:
    """The render of every planned authority, timed, with this process's peak RSS (in the child)."""
    from reporting import pipeline

    started = time.perf_counter()
    rendered = pipeline.render(run_dir)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,  # KiB on Linux
        "sellers": sum(m["sellers"] for m in rendered["messages"]),
        "messages": len(rendered["messages"]),
    }


def bench_render(*, sellers: int, scales: list[int], work: Path, seed: int = 7, year: int = 2025) -> dict[str, Any]:
    """The render's peak RSS at each scale of reportable sellers (at least that many: whole copies
    of the generated marketplace's routed sellers), each measured in a process of its own."""
    import duckdb

    from dac7_demo.bench import machine, marketplace

    url, _ = marketplace(work, sellers, seed, year)
    base = base_run(work, url, year)
    with duckdb.connect() as con:
        ((routed,),) = con.execute(f"select count(*) from read_parquet('{base}/rules/routing.parquet')").fetchall()
    if not routed:
        raise ValueError(f"the marketplace of {sellers} sellers has no reportable seller to repeat")
    results = []
    for n in scales:
        run = scaled_run(base, work / f"render-{n}", math.ceil(n / routed))
        done = subprocess.run(
            [sys.executable, "-m", "dac7_demo.bench_render", str(run)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"the render of {n:,} sellers failed:\n{done.stderr[-4000:]}")
        child = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(
            RenderScale(
                reportable=child["sellers"],
                seconds=round(child["seconds"], 2),
                peak_rss_gb=round(child["peak_rss_gb"], 3),
                per_second=round(child["sellers"] / child["seconds"], 1) if child["seconds"] else 0.0,
                messages=child["messages"],
            )
        )
        shutil.rmtree(work / f"render-{n}", ignore_errors=True)  # personal data of the copies
    peaks = [r.peak_rss_gb for r in results]
    return {
        "machine": machine(),
        "marketplace": {"sellers_generated": sellers, "seed": seed, "year": year, "routed": routed},
        "scales": [asdict(r) for r in results],
        "peak_ratio": round(max(peaks) / min(peaks), 3) if peaks else None,
    }


def render_table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"DAC7 bench of the render, {m['date']}: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Python {m['python']}",
        f"the routed sellers of a generated marketplace ({result['marketplace']['routed']:,} of "
        f"{result['marketplace']['sellers_generated']:,} sellers) repeated under new ids; "
        "a first filing, one authority",
        "",
        f"  {'reportable':>12}{'seconds':>10}{'sellers/s':>11}{'files':>7}{'peak RSS':>11}",
    ]
    for r in result["scales"]:
        lines.append(
            f"  {r['reportable']:>12,}{r['seconds']:>10.2f}{r['per_second']:>11,.0f}{r['messages']:>7}"
            f"{r['peak_rss_gb']:>8.2f} GB"
        )
    if result["peak_ratio"] is not None:
        lines.append(f"  the largest peak is {result['peak_ratio']:.2f} times the smallest (the target: at most 1.10)")
    return "\n".join(lines)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(render_child(sys.argv[1])))
