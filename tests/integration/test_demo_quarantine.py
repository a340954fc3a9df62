"""A demo marketplace with 1% bad sellers, through the whole pipeline: the run completes, it
quarantines exactly the bad sellers, each for a reason that catches its defect, files every
other reportable seller in schema-valid XML, and its figures reconcile with the source.

The ground truth is what ``generate_demo(..., bad_share=...)`` returns (seller_id -> kind of
``dac7_demo.BAD_KINDS``); the pipeline never sees it. One run serves every test here.
"""

from __future__ import annotations

import csv
import sqlite3
import tomllib
from collections import Counter, defaultdict
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from lxml import etree
from resources import require_file, vendored

from dac7_demo import BAD_KINDS, generate_demo
from reporting.authorities import select_profile
from reporting.cli import main
from reporting.pipeline import run
from reporting.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "dac7.toml"  # the demo configuration
OFFICIAL = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0")
NS = {"dpi": "urn:oecd:ties:dpi:v1", "stf": "urn:oecd:ties:dpistf:v1"}
RUN_ID = "3d9f0c1e-7a2b-4c5d-8e6f-1a2b3c4d5e6f"
TIMESTAMP = datetime(2026, 1, 15, 6, 0, 0)
YEAR, AS_OF = 2025, date(2026, 1, 31)
SELLERS, SEED, BAD_SHARE = 2000, 7, 0.01
QUARANTINED = "quarantined:"


@dataclass(frozen=True)
class DemoRun:
    source: Path
    out: Path
    run_dir: Path
    bad: Mapping[str, str]  # seller_id -> kind: the ground truth
    manifest: dict[str, Any]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    base = tmp_path_factory.mktemp("demo-quarantine")
    source = base / "marketplace.db"
    made = generate_demo(f"sqlite:///{source}", sellers=SELLERS, seed=SEED, year=YEAR, bad_share=BAD_SHARE)
    result = run(
        config_path=CONFIG,
        source_url=f"sqlite:///{source}",
        year=YEAR,
        as_of=AS_OF,
        out_dir=base / "out",
        staging_root=base / "staging",
        run_id=RUN_ID,
        timestamp=TIMESTAMP,
        environment="test",
        ledger_url=f"sqlite:///{base / 'dac7-ledger.sqlite3'}",
    )
    return DemoRun(source, base / "out", Path(result.run_dir), made.bad_sellers, result.manifest)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def quarantine_reasons(r: DemoRun) -> dict[str, set[str]]:
    reasons: dict[str, set[str]] = defaultdict(set)
    for row in read_csv(r.out / "reports" / "quarantine.csv"):
        reasons[row["seller_id"]].add(row["rule"])
    return reasons


def test_the_demo_has_one_percent_bad_sellers_of_every_kind(demo_run: DemoRun) -> None:
    assert len(demo_run.bad) == round(BAD_SHARE * SELLERS)
    assert set(Counter(demo_run.bad.values())) == set(BAD_KINDS)


def test_the_run_completes_and_quarantines_exactly_the_bad_sellers(demo_run: DemoRun) -> None:
    summary = demo_run.manifest["summary"]
    assert demo_run.manifest["files"], "the good sellers are filed"
    assert sum(summary["decisions"].values()) == summary["sellers_read"]
    decisions = read_csv(demo_run.out / "reports" / "decisions.csv")
    quarantined = {d["seller_id"] for d in decisions if d["decision"].startswith(QUARANTINED)}
    assert quarantined == set(demo_run.bad)
    assert set(quarantine_reasons(demo_run)) == set(demo_run.bad)
    assert sum(n for code, n in summary["decisions"].items() if code.startswith(QUARANTINED)) == len(demo_run.bad)


def test_each_bad_seller_is_quarantined_for_its_defect(demo_run: DemoRun) -> None:
    reasons = quarantine_reasons(demo_run)
    decision = {
        d["seller_id"]: d["decision"].removeprefix(QUARANTINED)
        for d in read_csv(demo_run.out / "reports" / "decisions.csv")
        if d["seller_id"] in demo_run.bad
    }
    missed = {
        sid: (kind, sorted(reasons[sid]))
        for sid, kind in demo_run.bad.items()
        if not any(BAD_KINDS[kind].caught_by(rule) for rule in reasons[sid])
    }
    assert not missed, f"quarantined without a reason that catches the defect (kind, reasons): {missed}"
    for sid, rule in decision.items():
        assert rule in reasons[sid], f"{sid}: the decision names {rule}, not one of its reasons"


def test_no_bad_seller_is_in_any_file(demo_run: DemoRun) -> None:
    """The XML carries no seller_id: each ReportableSeller is known by its DocRefId, which the
    authority's profile derives from the run id and the seller_id. The files hold exactly the
    sellers the rules routed to their authority, and none of them is bad; no TIN or account
    number of a bad seller appears in them either."""
    settings = load_settings(demo_run.run_dir)
    routed: dict[str, set[str]] = defaultdict(set)
    for row in pq.read_table(demo_run.run_dir / "rules" / "routing.parquet").to_pylist():
        routed[row["authority"]].add(row["seller_id"])
    assert not set().union(*routed.values()) & set(demo_run.bad)

    filed: dict[str, list[str]] = defaultdict(list)
    texts: set[str] = set()
    per_authority: Counter[str] = Counter()
    for f in demo_run.manifest["files"]:
        root = etree.parse(str(demo_run.out / f["file"])).getroot()
        sellers = root.findall("dpi:DPIBody/dpi:ReportableSeller", NS)
        assert len(sellers) == f["sellers"]
        per_authority[f["authority"]] += f["sellers"]
        filed[f["authority"]] += [s.findtext("dpi:DocSpec/stf:DocRefId", namespaces=NS) for s in sellers]
        texts |= {e.text for e in root.iter(f"{{{NS['dpi']}}}TIN", f"{{{NS['dpi']}}}Identifier") if e.text}
    assert dict(per_authority) == {a: len(s) for a, s in routed.items()}
    for authority, doc_ref_ids in filed.items():
        profile = select_profile(authority, settings.config)
        ids = replace(
            profile.doc_ids(settings.run_id, settings.config.operator.country, authority, settings.year),
            identifiers=settings.config.authorities.get(authority, {}),
            environment=settings.environment,
        )
        assert sorted(doc_ref_ids) == sorted(profile.doc_ref_id(ids, f"new:seller:{sid}") for sid in routed[authority])

    bad = sorted(demo_run.bad)
    marks = ", ".join("?" for _ in bad)
    with closing(sqlite3.connect(demo_run.source)) as con:
        secrets = {r[0] for r in con.execute(f"select tin from seller_tins where seller_id in ({marks})", bad)}
        secrets |= {
            r[0]
            for r in con.execute(f"select identifier from seller_financial_accounts where seller_id in ({marks})", bad)
        }
    assert secrets, "the bad sellers have identifiers to look for"
    assert not secrets & texts, "an identifier of a bad seller is in a file"


def test_every_file_is_valid_against_the_official_schema(demo_run: DemoRun) -> None:
    main_xsd = OFFICIAL / "DPIXML_v1.0.xsd"
    require_file(main_xsd)
    schema = etree.XMLSchema(etree.parse(str(main_xsd)))
    files = [demo_run.out / f["file"] for f in demo_run.manifest["files"]]
    for path in files:
        assert schema.validate(etree.parse(str(path))), f"{path.name}: {schema.error_log}"
    assert main(["validate", *map(str, files), "--xsd-dir", str(OFFICIAL)]) == 0


def test_the_figures_reconcile_with_the_source_per_currency(demo_run: DemoRun) -> None:
    """Over every seller (reported, excluded, not reportable and quarantined), the figures hold
    per currency what the source holds: the period's transactions, less the refunds applied up
    to the as-of date. The bounds are the local reporting year and as-of day, in UTC."""
    tz = ZoneInfo(tomllib.loads(CONFIG.read_text(encoding="utf-8"))["reporting"]["timezone"])

    def utc_text(day: date) -> str:
        return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

    bounds = {
        "start": utc_text(date(YEAR, 1, 1)),
        "end": utc_text(date(YEAR + 1, 1, 1)),
        "as_of_end": utc_text(AS_OF + timedelta(days=1)),
    }
    sql = """
        with applied as (
            select transaction_id, sum(amount_minor) as amount_minor
            from refunds
            where refunded_at < :as_of_end
            group by transaction_id
        )

        select t.currency, sum(t.amount_minor), coalesce(sum(a.amount_minor), 0)
        from transactions as t
        left join applied as a on a.transaction_id = t.transaction_id
        where t.paid_at >= :start and t.paid_at < :end
        group by t.currency
    """
    with closing(sqlite3.connect(demo_run.source)) as con:
        source = {c: (gross, refunded) for c, gross, refunded in con.execute(sql, bounds)}
    figures: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in read_csv(demo_run.out / "reports" / "figures.csv"):
        totals = figures[row["currency"]]
        totals[0] += int(row["gross_amount_minor"])
        totals[1] += int(row["refunded_amount_minor"])
        totals[2] += int(row["consideration_minor"])
    assert "XXQ" in source, "the unknown currency of a bad seller is reconciled too"
    assert {c: (g, r, g - r) for c, (g, r) in source.items()} == {c: tuple(t) for c, t in figures.items()}
