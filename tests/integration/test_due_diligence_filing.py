"""Due diligence beside the annual filing: a seller whose TIN is requested is reported meanwhile,
its TIN as unknown (``unknown="true"``), and counted among the reportable sellers still
incomplete; and the daily scope excludes exactly the sellers the filing's rules exclude, on the
demo marketplace."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from builders import Marketplace, due_diligence_day, write_config
from lxml import etree

from dac7_demo import generate_demo
from reporting import pipeline
from reporting.config import load_config
from reporting.due_diligence import incomplete_sellers, mark_actions, seller_state
from reporting.ledger import default_ledger_url, open_ledger
from reporting.money import to_fraction
from reporting.rules import Rate, decide
from reporting.settings import load_settings
from reporting.source import DUE_DILIGENCE_COLUMNS
from reporting.stages.rules import RATES_SQL, filing_context, iter_facts
from reporting.staging import connect, sql_literal
from reporting.vocabulary import (
    EXCLUDED_DE_MINIMIS,
    EXCLUDED_GOVERNMENTAL,
    EXCLUDED_LISTED,
    EXCLUDED_LISTING,
    NOT_REPORTABLE_NO_ACTIVITY,
)

REPO = Path(__file__).resolve().parents[2]
NS = {"dpi": "urn:oecd:ties:dpi:v1"}


def dd_run(config_path: Path, source: str, ledger: str, today: date, tmp: Path) -> list[dict[str, object]]:
    return due_diligence_day(config_path, source, ledger, today, tmp / "dd", tmp / "dd-staging")


def test_a_seller_under_a_request_is_reported_with_its_tin_unknown_meanwhile(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1", tin=None)  # its TIN is requested; its place of birth is known
    m.seller("S2")
    for row in m.rows["sellers"]:
        row.update(dict.fromkeys(DUE_DILIGENCE_COLUMNS["sellers"]))
    m.tx("S1", "2025-02-10 10:00:00", 120_000, activity="personal_services")
    m.tx("S2", "2025-02-10 10:00:00", 90_000, activity="personal_services")
    source = m.write(f"sqlite:///{tmp_path / 'marketplace.db'}")
    config = write_config(tmp_path / "dac7.toml")
    ledger = default_ledger_url(tmp_path)  # the filing and the due diligence share the ledger

    feed = dd_run(config, source, ledger, date(2025, 3, 3), tmp_path)
    assert [(x["seller_id"], x["action"], x["items_missing"]) for x in feed if x["action"] == "request"] == [
        ("S1", "request", ["tin"])
    ]
    report = tmp_path / "sent.jsonl"
    report.write_text('{"seller_id": "S1", "action": "request", "at": "2025-03-03T09:00:00Z"}\n', encoding="utf-8")
    with open_ledger(ledger) as led:
        mark_actions(led, report, now=datetime(2025, 3, 3, 12, tzinfo=UTC), zone=load_config(config).reporting.tz)
    assert [
        x["action"] for x in dd_run(config, source, ledger, date(2025, 3, 17), tmp_path) if x["seller_id"] == "S1"
    ] == [
        "pre_report_notice",
        "reminder_1",
    ]

    result = pipeline.run(
        config_path=config,
        source_url=source,
        year=2025,
        as_of=date(2026, 1, 15),
        out_dir=tmp_path / "filing",
        staging_root=tmp_path / "staging",
        run_id="5d0c1d2e-8a6b-4f3e-9c1d-2b3a4c5d6e7f",
        timestamp=datetime(2026, 1, 15, 6, tzinfo=UTC),
        ledger_url=ledger,
    )
    [published] = result.manifest["files"]
    doc = etree.parse(str(tmp_path / "filing" / published["file"]))
    reported: dict[str, tuple[str | None, str | None]] = {}
    for seller in doc.iterfind(".//dpi:ReportableSeller", NS):
        tin = seller.find(".//dpi:IndSellerID/dpi:TIN", NS)
        doc_ref = seller.findtext(".//{urn:oecd:ties:dpistf:v1}DocRefId")
        assert tin is not None and doc_ref
        reported[doc_ref] = (tin.get("unknown"), tin.text)
    with open_ledger(ledger) as led:
        by_seller = led.statement_sellers(reported)
        tin_of = {by_seller[d]: value for d, value in reported.items()}
        assert tin_of["S1"][0] == "true"  # reported meanwhile, its TIN unknown
        assert tin_of["S2"] == (None, "39001010000")
        # the approval page's count: of the reportable sellers, those still incomplete
        assert incomplete_sellers(led, tin_of) == {"S1"}
        state = seller_state(led, "S1")
        assert state is not None and state.items["tin"] == "missing" and state.cycle.requested_on == date(2025, 3, 3)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{folder / 'marketplace.db'}"
    generate_demo(url, sellers=400, seed=11, year=2025, replace=True)
    return folder, url


def test_the_daily_scope_excludes_the_sellers_the_filings_rules_exclude(demo: tuple[Path, str], tmp_path: Path) -> None:
    """The pipeline stages the year as of 30 December; the due-diligence run of 31 December reads
    the same payments and refunds. Every seller the rules decide (reporting.rules.decide over the
    staged facts, at the rates of 30 December) is excluded from due diligence with the same code,
    or in scope. A seller resident outside the EU is decided as if resident in the filing state:
    its residence is what due diligence determines, and the exclusions do not depend on it."""
    _folder, url = demo
    config = REPO / "dac7.toml"
    run_dir = pipeline.prepare(
        config_path=config,
        year=2025,
        as_of=date(2025, 12, 30),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "staging",
        source_url=url,
        timestamp=datetime(2025, 12, 31, 6, tzinfo=UTC),
        ledger_url=default_ledger_url(tmp_path / "filing"),
    )
    pipeline.extract(run_dir, url)
    pipeline.aggregate(run_dir)
    pipeline.apply_rules(run_dir)
    settings = load_settings(run_dir)
    decided = sql_literal(settings.run_path / "rules" / "decisions.parquet")
    decisions = dict(duckdb.sql(f"select seller_id, decision from read_parquet({decided})").fetchall())
    con = connect(settings.run_path, "extract", "aggregate")
    try:
        ctx = filing_context(settings, con)
        rates = {c: Rate(c, d, to_fraction(u)) for c, d, u in con.execute(RATES_SQL, [date(2025, 12, 30)]).fetchall()}
        ctx = replace(ctx, rates=rates)
        expected = {
            f.seller_id: decide(replace(f, residence_country=ctx.operator_country), ctx).decision
            for f in iter_facts(con)
            if not decisions[f.seller_id].startswith("quarantined:")
        }
    finally:
        con.close()
    ledger = default_ledger_url(tmp_path / "dd")
    dd_run(config, url, ledger, date(2025, 12, 31), tmp_path)
    excluded = (EXCLUDED_GOVERNMENTAL, EXCLUDED_LISTED, EXCLUDED_DE_MINIMIS, EXCLUDED_LISTING)
    with open_ledger(ledger) as led:
        states = {s: seller_state(led, s) for s in expected}
    scopes = {s: state.scope if state else None for s, state in states.items()}

    def scope(decision: str) -> str | None:
        if decision == NOT_REPORTABLE_NO_ACTIVITY:
            return None  # refunded in full: not active, never in the state
        return decision if decision in excluded else "in_scope"

    assert scopes == {s: scope(d) for s, d in expected.items()}
    counts = Counter(scopes.values())
    assert len(scopes) > 300 and counts[EXCLUDED_DE_MINIMIS] > 10 and counts["in_scope"] > 100, counts
    assert any(d == "not_reportable:non_eu" for d in decisions.values())  # such sellers were compared too
