"""``dac7 bench``: time every stage of a run on a generated marketplace, and, on request, the
published ``dac7`` package (Back Market's France-only generator) on the same sellers.

    dac7 bench --sellers 30000                       # about 900,000 transactions
    dac7 bench --sellers 30000 --against-dac7        # the side-by-side figure (needs PyPI)

The marketplace is the demo generator's (:mod:`dac7_demo.generator`), written once into
``<work>/marketplace-<sellers>-<seed>-<year>.db`` (SQLite) and reused. The run itself happens in a
child process (``python -m dac7_demo.bench --child ...``), exactly as ``dac7 run`` would: the
interpreter's start, the imports and every fixed cost count. The child times each stage and the
data checks inside them; the parent takes the child's wall time and peak RSS. The table is
printed and written as JSON (``<work>/bench-<sellers>-<routing>.json``, or ``--json``).

With ``--against-dac7``, the sellers the run published (their XML, parsed back into the flat JSON
input of ``dac7 build``) are fed to ``dac7`` 2025.0.0 installed into a scratch virtual environment
(``<work>/dac7-2025.0.0/``, created with pip on first use; never a dependency of this project), and
its ``build`` and ``validate`` are timed: the ratio of the two per-seller times is the side-by-side
figure. ``dac7`` takes French sellers with one EU residence and known TIN formats only: sellers
without an EU residence are left out, TINs are sent as unknown (``NOTIN``) and a missing birth place
or address part is given a placeholder; the counts say how many sellers each side wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from reporting.vocabulary import GOODS, JURISDICTION, NEXUS, SERVICES, TEST, TRANSPORT

DAC7_PACKAGE = "dac7==2025.0.0"
STAGES = ("prepare", "extract", "aggregate", "rules", "render", "validate", "publish")
#: the child's mode for the quarterly watch of quarter n: ``watch-q<n>``
WATCH = "watch-q"
_T = TypeVar("_T")

#: The demo operator (the README's dac7.toml), with the routing and environment of the bench.
CONFIG = """
[operator]
name = "Demo Marketplace UAB"
tin = "304567891"
tin_issued_by = "LT"
vat = "LT100012345678"
platform_business_name = "Demo Market"
nexus = "RPONEX1"

[operator.address]
street = "Gedimino pr."
building = "1"
post_code = "01103"
city = "Vilnius"
country = "LT"

[reporting]
timezone = "Europe/Vilnius"
reporting_currency = "original"
routing = "{routing}"
environment = "test"

[quality]
data_docs = {data_docs}

[source]
aggregate = "{aggregate}"
"""

#: the environment variable that hands the child the source's URL (never on its command line,
#: where any user of the machine would read a password)
SOURCE_ENV = "DAC7_BENCH_SOURCE"


@dataclass
class StageTime:
    stage: str
    seconds: float
    peak_rss_gb: float  # the process's peak so far (it never goes down)
    per_second: float | None = None  # rows or sellers per second (see ``unit``)
    unit: str = ""
    #: CPU seconds of the stage (this process, and the workers it started and ended): on a machine
    #: shared with other work, the wall seconds grow with the others' load, these much less
    cpu_seconds: float | None = None


def _cpu() -> float:
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # the data checks' worker lives on from stage to stage (keep_checks_worker): counted while it
    # runs, as its parent's children count it only once it has ended
    checks = sys.modules.get("reporting.checks.data")
    running = checks.checks_worker_cpu() if checks is not None else 0.0
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime + running


class _Stages:
    """The stages of a run in this process, each timed (wall and CPU) with the peak RSS after it."""

    def __init__(self) -> None:
        self.timings: list[StageTime] = []
        self.started, self.cpu = time.perf_counter(), _cpu()

    def timed(self, name: str, stage: Callable[[], _T]) -> _T:
        wall, cpu = time.perf_counter(), _cpu()
        result = stage()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux
        self.timings.append(StageTime(name, time.perf_counter() - wall, peak, cpu_seconds=round(_cpu() - cpu, 2)))
        return result

    def rates(self, per: dict[str, tuple[int, str]]) -> list[dict[str, Any]]:
        """The timings with their rates (``per``: stage -> (rows or sellers, unit)), as JSON."""
        for t in self.timings:
            if t.stage in per and t.seconds > 0 and per[t.stage][0] > 0:
                n, unit = per[t.stage]
                t.per_second, t.unit = round(n / t.seconds, 1), unit
        return [asdict(t) for t in self.timings]


@dataclass
class BenchResult:
    machine: dict[str, Any]
    scale: dict[str, Any]
    stages: list[StageTime] = field(default_factory=list)
    wall_seconds: float = 0.0  # the child process, from its start to its end: imports included
    peak_rss_gb: float = 0.0  # the peak of the child process and of the workers it started
    checks_seconds: float = 0.0
    checks_share: float = 0.0
    checks: dict[str, float] = field(default_factory=dict)
    dac7_package: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = 0.0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "date": date.today().isoformat(),
    }


def marketplace(work: Path, sellers: int, seed: int, year: int) -> tuple[str, dict[str, int]]:
    """The generated marketplace's SQLite URL (written on first use) and its row counts."""
    from dac7_demo.generator import generate_demo

    work.mkdir(parents=True, exist_ok=True)
    db = work / f"marketplace-{sellers}-{seed}-{year}.db"
    counts_file = db.with_suffix(".counts.json")
    url = f"sqlite:///{db}"
    if not (db.exists() and counts_file.exists()):
        db.unlink(missing_ok=True)
        started = time.perf_counter()
        result = generate_demo(url, sellers=sellers, seed=seed, year=year)
        counts = {k: int(v) for k, v in result.items() if isinstance(v, int)}
        counts_file.write_text(json.dumps(counts), encoding="utf-8")
        print(f"generated {counts.get('transactions', 0):,} transactions in {time.perf_counter() - started:.1f} s")
    return url, json.loads(counts_file.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the run (child)


def copy_marketplace(db: Path, url: str, counts: dict[str, int]) -> None:
    """Copy the generated SQLite marketplace into an empty PostgreSQL database (``COPY``, then
    ``ANALYZE``), or keep what a database holding the same marketplace already holds."""
    import sqlite3

    import sqlalchemy as sa

    from reporting.errors import ConfigError
    from reporting.source import CONTRACT, OPTIONAL_COLUMNS, create_schema, make_engine, safe_url

    engine = make_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            raise ConfigError(f"bench --source {safe_url(url)}: a PostgreSQL database (the marketplace is copied in)")
        tables = set(sa.inspect(engine).get_table_names())
        if "transactions" in tables:
            with engine.connect() as conn:
                held = conn.exec_driver_sql("select count(*) from transactions").scalar_one()
            if held == counts.get("transactions"):
                return
            raise ConfigError(f"bench --source {safe_url(url)} holds another marketplace; give an empty database")
        started = time.perf_counter()
        create_schema(engine)
        raw = engine.raw_connection()
        try:
            pg = raw.driver_connection
            assert pg is not None  # an open connection has its driver's
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as lite:
                for table, cols in CONTRACT.items():
                    names = cols + OPTIONAL_COLUMNS.get(table, ())
                    # SQLite writes each row as a line of CSV (every value quoted, NULL as an
                    # unquoted \N, a REAL with all 17 digits): no Python object per value, ten
                    # times faster than rows
                    value = "(case typeof({c}) when 'real' then printf('%!.17g', {c}) else {c} end)"
                    line = " || ',' || ".join(
                        f"""coalesce('"' || replace({value.format(c=c)}, '"', '""') || '"', '\\N')""" for c in names
                    )
                    rows = lite.execute(f"select {line} from {table}")
                    copy_sql = f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
                    with pg.cursor() as cur, cur.copy(copy_sql) as copy:
                        while chunk := rows.fetchmany(20_000):
                            copy.write("\n".join(r[0] for r in chunk) + "\n")
            pg.commit()
            pg.autocommit = True
            with pg.cursor() as cur:
                cur.execute("ANALYZE")
        finally:
            raw.close()
        print(f"copied the marketplace into {safe_url(url)} in {time.perf_counter() - started:.1f} s")
    finally:
        engine.dispose()


def run_child(
    work: Path, url: str, routing: str, year: int, data_docs: bool, out: Path, aggregate: str = "local"
) -> dict[str, Any]:
    """Every stage in this process, timed; returns what the parent prints (run in the child)."""
    from reporting import pipeline
    from reporting.checks.data import keep_checks_worker

    stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
    ledger = f"sqlite:///{work / 'ledgers' / f'ledger-{stamp}.sqlite3'}"  # every run a first filing
    when = {"as_of": date(year + 1, 1, 31), "timestamp": datetime(year + 1, 1, 15, 6)}
    stages, run_dir = _prepare(
        work,
        url,
        f"bench-{routing}-{aggregate}.toml",
        (routing, data_docs, aggregate),
        year,
        out,
        ledger_url=ledger,
        **when,
    )
    timed = stages.timed
    with keep_checks_worker():  # as `dac7 run`: Great Expectations imported once for the stages
        timed("extract", lambda: pipeline.extract(run_dir, url))
        timed("aggregate", lambda: pipeline.aggregate(run_dir))
        timed("rules", lambda: pipeline.apply_rules(run_dir))
        timed("render", lambda: pipeline.render(run_dir))
        timed("validate", lambda: pipeline.validate(run_dir))
    manifest = timed("publish", lambda: pipeline.publish(run_dir))
    statements = timed("statements", lambda: pipeline.write_statements(run_dir))  # none for a preview
    s = manifest["summary"]
    per = {
        "render": (s["reportable"], "reportable sellers/s"),
        "validate": (s["reportable"], "reportable sellers/s"),
        "publish": (s["reportable"], "reportable sellers/s"),
        "statements": (statements["statements"], "statements/s"),
    }
    files = {"files": len(manifest["files"]), "xml_bytes": sum(f["bytes"] for f in manifest["files"])}
    return _figures(stages, per, manifest, Path(run_dir), out, files)


def _prepare(
    work: Path, url: str, name: str, config: tuple[str, bool, str], year: int, out: Path, **settings: Any
) -> tuple[_Stages, str]:
    """The stages' timer and the run of ``year`` prepared (timed) on the source ``url``, staged under
    ``work``, published to ``out``, configured by :data:`CONFIG` (``config``: its routing, Data Docs
    and aggregation) written to ``work / name``."""
    from reporting import pipeline

    routing, data_docs, aggregate = config
    path = work / name
    docs = "true" if data_docs else "false"
    path.write_text(CONFIG.format(routing=routing, data_docs=docs, aggregate=aggregate), encoding="utf-8")
    stages = _Stages()
    run_dir: str = stages.timed(
        "prepare",
        lambda: pipeline.prepare(
            config_path=path, year=year, out_dir=out, staging_root=work / "staging", source_url=url, **settings
        ),
    )
    return stages, run_dir


def _figures(
    stages: _Stages, per: dict[str, tuple[int, str]], manifest: Any, run_path: Path, out: Path, summary: dict[str, Any]
) -> dict[str, Any]:
    """What a child hands the parent: the stages with their rates (``per``, besides those of the
    extract, aggregate and rules), the data checks' seconds and the run's counts (and ``summary``)."""
    s = manifest["summary"]
    per = {
        "extract": (s["transactions_read"], "transactions/s"),
        "aggregate": (s["transactions_read"], "transactions/s"),
        "rules": (s["sellers_read"], "sellers/s"),
        **per,
    }
    checks = {f"gx {stage}": c["seconds"] for stage, c in manifest["data_checks"]["stages"].items()}
    checks["relational"] = json.loads((run_path / "extract" / "extract.json").read_text())["relational_checks_seconds"]
    checks["records"] = json.loads((run_path / "rules" / "rules.json").read_text())["record_checks_seconds"]
    return {
        "stages": stages.rates(per),
        "checks": {k: round(v, 3) for k, v in checks.items()},
        "summary": {
            "transactions": s["transactions_read"],
            "sellers": s["sellers_read"],
            "reportable": s["reportable"],
            **summary,
        },
        "out": str(out),
    }


def quarter_end(year: int, quarter: int) -> date:
    """The last day of a quarter (the as-of date of its watch)."""
    return date(year + (quarter == 4), 3 * quarter % 12 + 1, 1) - timedelta(days=1)


def run_watch_child(
    work: Path, url: str, year: int, quarter: int, data_docs: bool, out: Path, aggregate: str = "local"
) -> dict[str, Any]:
    """The quarterly watch's stages in this process, timed, as the ``dac7_quarterly`` DAG runs them:
    a test run as of the quarter's last day (the filing's routing), extract, aggregate, rules, the
    reports without XML, and the watch list (where the DAGs' ``dac7_support`` is importable: a
    checkout of the repository); returns what the parent prints (run in the child)."""
    from reporting import pipeline
    from reporting.checks.data import keep_checks_worker

    as_of = quarter_end(year, quarter)
    when = {
        "as_of": as_of,
        "timestamp": datetime.combine(as_of + timedelta(days=1), datetime.min.time()).replace(hour=6),
    }
    stages, run_dir = _prepare(
        work, url, f"bench-watch-{aggregate}.toml", (NEXUS, data_docs, aggregate), year, out, environment=TEST, **when
    )
    timed = stages.timed
    with keep_checks_worker():  # Great Expectations imported once for the stages
        timed("extract", lambda: pipeline.extract(run_dir, url))
        timed("aggregate", lambda: pipeline.aggregate(run_dir))
        timed("rules", lambda: pipeline.apply_rules(run_dir))
    manifest = timed("report", lambda: pipeline.report(run_dir))
    watch: dict[str, Any] | None = None
    dags = Path(__file__).resolve().parents[1] / "dags"
    if (dags / "dac7_support" / "watch.py").is_file():
        sys.path.insert(0, str(dags))
        from dac7_support.watch import write_watch_list  # type: ignore[import-not-found]  # the DAGs' folder

        watch = timed("watch_list", lambda: write_watch_list(out, out / "watch_list.csv"))
    sellers = manifest["summary"]["sellers_read"]
    per = {"report": (sellers, "sellers/s"), "watch_list": (sellers, "sellers/s")}
    summary = {
        "files": 0,
        "xml_bytes": 0,
        "quarter": quarter,
        "as_of": as_of.isoformat(),
        "watch_list": watch["sellers"] if watch else None,
    }
    return _figures(stages, per, manifest, Path(run_dir), out, summary)


# --------------------------------------------------------------------------- the dac7 package


def dac7_environment(work: Path) -> Path:
    """The ``dac7`` executable of a scratch virtual environment holding the published package."""
    venv = work / "dac7-2025.0.0"
    exe = venv / "bin" / "dac7"
    if not exe.exists():
        print(f"installing {DAC7_PACKAGE} into {venv} (pip, from the package registry) ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                DAC7_PACKAGE,
            ],
            check=True,
        )
    return exe


def flat_sellers(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The reportable sellers of the published XML (any EU-edition profile) in ``dac7``'s flat
    JSON input: (individuals, entities). Sellers without an EU residence are left out."""
    from lxml import etree

    from reporting.countries import EU_MEMBER_STATES

    ns = "{urn:oecd:ties:dpi:v1}"

    def text(e: Any, path: str, default: str | None = None) -> str | None:
        x = e.find(path) if e is not None else None
        return x.text if x is not None and x.text else default

    def address(a: Any) -> dict[str, Any]:
        return {
            "country_code": text(a, f"{ns}CountryCode"),
            "street": text(a, f".//{ns}Street", "-"),
            "post_code": text(a, f".//{ns}PostCode", "-"),
            "city": text(a, f".//{ns}City", "-"),
        }

    def figures(a: Any) -> dict[str, Any]:
        cons = a.find(f"{ns}Consideration")
        d: dict[str, Any] = {"currency_code": cons[0].get("currCode")}
        for tag, key in (
            ("Consideration", "consideration_amount"),
            ("NumberOfActivities", "activities_number"),
            ("Fees", "fees_amount"),
            ("Taxes", "taxes_amount"),
        ):
            for i, x in enumerate(a.find(f"{ns}{tag}"), 1):
                d[f"{key}_q{i}"] = int(x.text)
        return d

    individuals, entities = [], []
    for path in sorted(out.glob("*/*.xml")):
        for number, (_, seller) in enumerate(etree.iterparse(str(path), tag=f"{ns}ReportableSeller")):
            eu = [c.text for c in seller.iter(f"{ns}ResCountryCode") if c.text in EU_MEMBER_STATES]
            if eu:
                activities = seller.find(f"{ns}RelevantActivities")
                assert activities is not None  # required in a ReportableSeller (the schema)
                flat: dict[str, Any] = {
                    "seller_id": f"{path.stem}-{number}",
                    "residence_country_code": eu[0],
                    "tax_identification_numbers": [],
                    "immovable_properties": [],
                }
                for tag, key in (
                    ("PersonalServices", SERVICES),
                    ("SaleOfGoods", GOODS),
                    ("TransportationRental", TRANSPORT),
                ):
                    a = activities.find(f"{ns}{tag}")
                    if a is not None:
                        flat[key] = figures(a)
                for listing in activities.iter(f"{ns}PropertyListing"):
                    flat["immovable_properties"].append(
                        figures(listing)
                        | {
                            "address": address(listing.find(f"{ns}Address")),
                            "land_registration_number": text(listing, f"{ns}LandRegistrationNumber", "-"),
                            "property_type": text(listing, f"{ns}PropertyType", "DPI910"),
                            "rented_days": int(text(listing, f"{ns}RentedDays", "0") or 0),
                        }
                    )
                person = seller.find(f".//{ns}IndSellerID")
                if person is not None:
                    place = person.find(f".//{ns}BirthPlace")
                    flat |= {
                        "name_type": "OECD202",
                        "first_name": text(person, f".//{ns}FirstName"),
                        "last_name": text(person, f".//{ns}LastName"),
                        "addresses": [address(person.find(f"{ns}Address"))],
                        "birth_date": text(person, f".//{ns}BirthDate"),
                        "birth_city": text(place, f"{ns}City", "-"),
                        "birth_country_code": text(place, f".//{ns}CountryCode", eu[0]),
                    }
                    individuals.append(flat)
                else:
                    entity = seller.find(f".//{ns}EntSellerID")
                    assert entity is not None  # a seller is an individual or an entity (the schema)
                    flat |= {
                        "legal_names": [text(entity, f"{ns}Name")],
                        "addresses": [address(entity.find(f"{ns}Address"))],
                    }
                    entities.append(flat)
            seller.clear()
    return individuals, entities


def time_dac7_package(work: Path, out: Path) -> dict[str, Any]:
    """``dac7 build`` and ``dac7 validate`` of the published package on the run's sellers."""
    exe = dac7_environment(work)
    individuals, entities = flat_sellers(out)
    folder = work / "dac7-input"
    folder.mkdir(exist_ok=True)
    operator = {
        "residence_country_code": "FR",
        "tax_identification_numbers": [{"issued_by": "FR", "value": "123456789"}],
        "vat_number": "FR32123456789",
        "legal_names": ["Demo Marketplace"],
        "business_names": ["Demo Market"],
        "addresses": [
            {"legal_type": "OECD304", "country_code": "FR", "street": "1 rue", "post_code": "75001", "city": "Paris"}
        ],
        "nexus": "RPONEX1",
    }
    for name, data in (("operator", operator), ("individuals", individuals), ("entities", entities)):
        (folder / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    for old in folder.glob("*.xml"):
        old.unlink()
    declaration = folder / "declaration.xml"
    started = time.perf_counter()
    subprocess.run(
        [str(exe), "build", "-E", "TEST", "-y", "2025", "-t", "2026-01-15T07:00:00.000",
         "-p", str(folder / "operator.json"), "-i", str(folder / "individuals.json"),
         "-e", str(folder / "entities.json"), str(declaration)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    build = time.perf_counter() - started
    named = (
        folder
        / subprocess.run(
            [str(exe), "name", str(declaration)], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    declaration.replace(named)
    started = time.perf_counter()
    subprocess.run([str(exe), "validate", str(named)], check=True, capture_output=True)
    validate = time.perf_counter() - started
    sellers = len(individuals) + len(entities)
    return {
        "package": DAC7_PACKAGE,
        "sellers": sellers,
        "build_seconds": round(build, 2),
        "validate_seconds": round(validate, 2),
        "seconds": round(build + validate, 2),
        "ms_per_seller": round(1000 * (build + validate) / sellers, 3) if sellers else None,
        "xml_bytes": named.stat().st_size,
    }


# --------------------------------------------------------------------------- the parent


def bench(
    *,
    sellers: int,
    seed: int = 7,
    year: int = 2025,
    work: Path,
    routing: str = JURISDICTION,
    data_docs: bool = True,
    against_dac7: bool = False,
    source: str | None = None,
    aggregate: str = "local",
    watch: int | None = None,
) -> BenchResult:
    """Generate (or reuse) the marketplace, run the pipeline in a child process, and time it.
    With ``source`` (a PostgreSQL URL), the marketplace is copied there and read from there;
    ``aggregate`` is the run's ``[source] aggregate``. With ``watch`` (a quarter, 1 to 4), the
    child runs the quarterly watch of that quarter instead (:func:`run_watch_child`), under the
    filing's routing."""
    if watch is not None and (watch not in (1, 2, 3, 4) or against_dac7):
        raise ValueError("watch: a quarter 1 to 4, without against_dac7")
    url, counts = marketplace(work, sellers, seed, year)
    if source:
        copy_marketplace(Path(url.removeprefix("sqlite:///")), source, counts)
        url = source
    if watch is not None:
        routing = NEXUS
    mode = f"{WATCH}{watch}" if watch is not None else routing
    out = work / f"out-{mode}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    command = [
        sys.executable,
        "-m",
        "dac7_demo.bench",
        "--child",
        str(work),
        mode,
        str(year),
        str(int(data_docs)),
        str(out),
        aggregate,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, SOURCE_ENV: url})
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise RuntimeError(f"the benchmark run failed:\n{done.stderr[-4000:]}")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    checks_seconds = sum(child["checks"].values())
    result = BenchResult(
        machine=machine(),
        scale={"sellers_generated": sellers, "seed": seed, "year": year, "routing": routing, "data_docs": data_docs}
        | ({"watch_quarter": watch} if watch is not None else {})
        | {"source": _source_name(url), "aggregate": aggregate}
        | {"rows": counts}
        | child["summary"],
        stages=[StageTime(**s) for s in child["stages"]],
        wall_seconds=round(wall, 2),
        peak_rss_gb=round(peak_kib / 1e6, 3),
        checks_seconds=round(checks_seconds, 2),
        checks_share=round(checks_seconds / wall, 4) if wall else 0.0,
        checks=child["checks"],
    )
    if against_dac7:
        theirs = time_dac7_package(work, Path(child["out"]))
        ours_ms = 1000 * wall / child["summary"]["reportable"] if child["summary"]["reportable"] else None
        theirs |= {
            "ours_ms_per_seller": round(ours_ms, 3) if ours_ms else None,
            "ratio": round(ours_ms / theirs["ms_per_seller"], 3) if ours_ms and theirs["ms_per_seller"] else None,
        }
        result.dac7_package = theirs
    return result


def table(r: BenchResult) -> str:
    s = r.scale
    if s.get("watch_quarter"):
        what = (
            f"the quarterly watch of Q{s['watch_quarter']} (as of {s['as_of']}, no XML; "
            f"{s['watch_list'] if s['watch_list'] is not None else 'no'} seller(s) on the watch list)"
        )
    else:
        what = f"{s['files']} file(s), {s['xml_bytes'] / 1e6:.0f} MB of XML (routing {s['routing']})"
    lines = [
        f"DAC7 bench, {r.machine['date']}: {r.machine['cpu']}, {r.machine['cores']} cores, "
        f"{r.machine['memory_gib']} GiB, Python {r.machine['python']}",
        f"{s['transactions']:,} transactions, {s['sellers']:,} sellers, {s['reportable']:,} reportable, {what}, "
        f"source {s.get('source', 'sqlite')}, summed {'by the source' if s.get('aggregate') == 'source' else 'here'}",
        "",
        f"  {'stage':<10}{'seconds':>9}{'CPU s':>9}{'per second':>14}  {'unit':<22}{'peak RSS':>9}",
    ]
    for t in r.stages:
        rate = f"{t.per_second:,.0f}" if t.per_second else ""
        cpu = f"{t.cpu_seconds:.2f}" if t.cpu_seconds is not None else ""
        lines.append(f"  {t.stage:<10}{t.seconds:>9.2f}{cpu:>9}{rate:>14}  {t.unit:<22}{t.peak_rss_gb:>7.2f} GB")
    lines += [
        f"  {'total':<10}{r.wall_seconds:>9.2f}  (the whole process: start, imports, every stage)   "
        f"peak RSS {r.peak_rss_gb:.2f} GB (of any process of the run, its workers too)",
        f"  data checks {r.checks_seconds:.2f} s, {100 * r.checks_share:.1f}% of the run: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in r.checks.items()),
    ]
    d = r.dac7_package
    if d:
        lines += [
            "",
            f"  {d['package']}: {d['sellers']:,} sellers, build {d['build_seconds']:.1f} s + validate "
            f"{d['validate_seconds']:.1f} s = {d['ms_per_seller']:.2f} ms per seller; this pipeline "
            f"{d['ours_ms_per_seller']:.2f} ms per reportable seller from the raw rows: {d['ratio']:.2f} of its time",
        ]
    return "\n".join(lines)


def _source_name(url: str) -> str:
    from reporting.source import safe_url

    return "sqlite" if url.startswith("sqlite") else safe_url(url)


def _child(argv: list[str]) -> None:
    work, mode, year, data_docs, out, aggregate = argv
    import logging

    logging.basicConfig(level=logging.WARNING)
    url = os.environ[SOURCE_ENV]
    if mode.startswith(WATCH):
        quarter = int(mode.removeprefix(WATCH))
        result = run_watch_child(Path(work), url, int(year), quarter, data_docs == "1", Path(out), aggregate)
    else:
        result = run_child(Path(work), url, mode, int(year), data_docs == "1", Path(out), aggregate)
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dac7 bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args, _ = ap.parse_known_args(argv)
    if args.child:
        _child(args.child)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
