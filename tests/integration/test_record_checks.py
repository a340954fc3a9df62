"""The record checks of the audit read each routed seller once for all its authorities
(``mapping.record_problems``); the render reads them per authority (``mapping.seller_records``). The two
must find the same problems: the whole output of a run with the one equals that with a
per-authority recomputation, byte for byte, on a marketplace with bad sellers of every kind."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import write_config

from dac7_demo import generate_demo
from reporting import mapping, pipeline
from reporting.authorities import select_profile
from reporting.findings import Finding
from reporting.rules import Block, SellerFacts
from reporting.settings import load_settings
from reporting.stages import audit
from reporting.stages import rules as rules_stage
from reporting.staging import connect
from reporting.variants import reading_for


def per_authority(settings: Any) -> list[Finding]:
    """The checks as the render makes them: one query and one record per authority."""
    con = connect(settings.run_path, "extract", "aggregate", "rules")
    findings: list[Finding] = []
    try:
        reading = reading_for(settings.filing_state)
        for (authority,) in con.execute("select distinct authority from routing order by 1").fetchall():
            profile = select_profile(authority, settings.config)
            for _, problems in mapping.seller_records(
                con, authority, profile, settings.timestamp.year, preview=settings.preview, reading=reading
            ):
                findings.extend(problems)
    finally:
        con.close()
    return list(dict.fromkeys(findings))


@pytest.mark.parametrize("routing", ["jurisdiction", "nexus"])
def test_the_record_checks_find_what_the_render_would(
    tmp_path: Path, routing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/market.db"
    generate_demo(url, sellers=800, seed=11, year=2025, replace=True, bad_share=0.1)
    outputs = {}
    for name, checks in (("once", mapping.record_problems), ("per authority", per_authority)):
        monkeypatch.setattr(audit, "record_problems", checks)
        d = tmp_path / name.replace(" ", "-")
        d.mkdir()
        manifest = pipeline.run(
            config_path=write_config(d / "dac7.toml", routing=routing),
            source_url=url,
            year=2025,
            as_of=date(2026, 1, 31),
            out_dir=d / "out",
            staging_root=d / "st",
            run_id="11111111-2222-3333-4444-555555555555",
            timestamp=datetime(2026, 1, 31, 8, 0),
            ledger_url=f"sqlite:///{d}/ledger.sqlite3",
        ).manifest
        assert any(k.startswith("quarantined:") for k in manifest["summary"]["decisions"])
        outputs[name] = {
            str(p.relative_to(d / "out")): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((d / "out").rglob("*"))
            if p.is_file() and p.suffix in (".xml", ".csv")
        }
    assert outputs["once"] == outputs["per authority"]
    assert any(name.endswith(".xml") for name in outputs["once"])


def _staged(tmp_path: Path, url: str, run_id: str, config: Path, name: str = "") -> str:
    """A run prepared on ``url`` and staged through the aggregate (its folders suffixed ``name``)."""
    run_dir = pipeline.prepare(
        config_path=config,
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / f"out{name}",
        staging_root=tmp_path / f"st{name}",
        run_id=run_id,
        timestamp=datetime(2026, 1, 31, 8, 0),
        ledger_url=f"sqlite:///{tmp_path}/ledger{name}.sqlite3",
    )
    pipeline.extract(run_dir, url)
    pipeline.aggregate(run_dir)
    return run_dir


def test_the_render_of_all_authorities_reads_the_records_each_would_read_alone(tmp_path: Path) -> None:
    """Rendering every authority of a preview reads the sellers once (``mapping.share_seller_rows``):
    each authority's records and problems are those of its own query, in the same order (on a
    demo marketplace with bad sellers)."""
    url = f"sqlite:///{tmp_path}/market.db"
    generate_demo(url, sellers=800, seed=11, year=2025, replace=True, bad_share=0.1)
    config = write_config(tmp_path / "dac7.toml", routing="jurisdiction")
    run_dir = _staged(tmp_path, url, "11111111-2222-3333-4444-555555555555", config)
    pipeline.apply_rules(run_dir)
    settings = load_settings(run_dir)
    con = connect(settings.run_path, "extract", "aggregate", "rules")
    try:
        authorities = [a for (a,) in con.execute("select distinct authority from routing order by 1").fetchall()]
        assert len(authorities) > 1
        reading = reading_for(settings.filing_state)

        def read(authority: str, shared: bool) -> list[Any]:
            profile = select_profile(authority, settings.config)
            return list(
                mapping.seller_records(
                    con, authority, profile, 2026, preview=settings.preview, reading=reading, shared=shared
                )
            )

        alone = {a: read(a, shared=False) for a in authorities}
        mapping.share_seller_rows(con, tmp_path / "shared.parquet")
        together = {a: read(a, shared=True) for a in authorities}
    finally:
        con.close()
    assert together == alone
    assert sum(len(r) for r in alone.values()) > len(authorities)


def test_sellers_read_in_ranges_are_the_sellers_read_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large marketplace's sellers are decided from readings of ranges of ids: the same facts in
    the same order, and the same decisions, whatever the size of the ranges; and the same facts as
    one reading of every seller with its blocks as a list aggregate (how they were read before the
    blocks became one sorted reading)."""
    url = f"sqlite:///{tmp_path}/market.db"
    generate_demo(url, sellers=400, seed=5, year=2025, replace=True, bad_share=0.1)
    config = write_config(tmp_path / "dac7.toml", routing="jurisdiction")
    run_dir = _staged(tmp_path, url, "21111111-2222-3333-4444-555555555555", config)
    settings = load_settings(run_dir)
    con = connect(settings.run_path, "extract", "aggregate")
    try:
        once = list(rules_stage.iter_facts(con, per_read=10**9))
        assert len(once) > 300
        assert once == _facts_as_lists(con)
        for per_read in (1, 37, 150):
            assert list(rules_stage.iter_facts(con, per_read=per_read)) == once
        assert list(rules_stage.iter_facts(con, batch_rows=7)) == once
    finally:
        con.close()
    pipeline.apply_rules(run_dir)
    decided = (settings.run_path / "rules" / "decisions.parquet").read_bytes()
    monkeypatch.setattr(rules_stage, "FACTS_SELLERS_PER_READ", 50)
    pipeline.apply_rules(run_dir)
    assert (settings.run_path / "rules" / "decisions.parquet").read_bytes() == decided


_FACTS_AS_LISTS_SQL = """
with blocks as (
    select
        a.seller_id,
        list(struct_pack(
            activity := a.activity, listing_id := a.listing_id, currency := a.currency,
            quarter := a.quarter, amount_minor := a.amount_minor, fee_minor := a.fee_minor,
            tax_minor := a.tax_minor, activities := a.activities,
            rented_days := coalesce(a.rented_days, 0), listing_country := p.address_country,
            rate_date := a.rate_date, units_per_eur := a.units_per_eur
        ) order by a.activity, a.listing_id, a.currency, a.quarter, a.rate_date) as blocks
    from activity_totals as a
    left join property_listings as p on p.listing_id = a.listing_id
    group by a.seller_id
),
tins as (
    select seller_id, list(distinct issued_by order by issued_by) as issuers from seller_tins group by seller_id
),
pes as (
    select seller_id, list(distinct country order by country) as countries
    from seller_permanent_establishments group by seller_id
)
select
    s.seller_id, s.seller_type, s.residence_country, s.gvs_jurisdiction, s.is_governmental, s.is_listed,
    coalesce(t.issuers, []) as tin_issuers, coalesce(p.countries, []) as pe_countries, b.blocks
from sellers as s
inner join blocks as b on b.seller_id = s.seller_id
left join tins as t on t.seller_id = s.seller_id
left join pes as p on p.seller_id = s.seller_id
order by s.seller_id
"""


def _facts_as_lists(con: Any) -> list[SellerFacts]:
    """Every seller's facts from one query, its blocks as a list aggregate, a dict per row."""
    return [
        SellerFacts(
            seller_id=r["seller_id"],
            seller_type=r["seller_type"],
            residence_country=r["residence_country"],
            gvs_jurisdiction=r["gvs_jurisdiction"],
            is_governmental=bool(r["is_governmental"]),
            is_listed=bool(r["is_listed"]),
            tin_issuers=tuple(r["tin_issuers"]),
            pe_countries=tuple(r["pe_countries"]),
            blocks=tuple(Block(**b) for b in r["blocks"]),
        )
        for r in con.sql(_FACTS_AS_LISTS_SQL).to_arrow_table().to_pylist()
    ]


def test_the_render_reads_its_sellers_in_ranges_as_it_reads_them_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The render and the audit read the routed sellers in ranges of ids (``mapping.SELLERS_PER_READ``:
    DuckDB cannot spill their lists): each authority's records and problems in the same order, the
    same quarantine and the same files, byte for byte, whatever the size of the ranges."""
    url = f"sqlite:///{tmp_path}/market.db"
    generate_demo(url, sellers=400, seed=5, year=2025, replace=True, bad_share=0.1)
    config = write_config(tmp_path / "dac7.toml", routing="jurisdiction", max_quarantined=1000)
    staged: dict[int, dict[str, bytes]] = {}
    records: dict[int, dict[str, list[Any]]] = {}
    for per_read in (10**9, 23):
        monkeypatch.setattr(mapping, "SELLERS_PER_READ", per_read)
        run_dir = _staged(tmp_path, url, "41111111-2222-3333-4444-555555555555", config, f"-{per_read}")
        pipeline.apply_rules(run_dir)  # its audit reads every routed seller
        settings = load_settings(run_dir)
        con = connect(settings.run_path, "extract", "aggregate", "rules")
        try:
            authorities = [a for (a,) in con.execute("select distinct authority from routing order by 1").fetchall()]
            records[per_read] = {
                a: list(
                    mapping.seller_records(
                        con,
                        a,
                        select_profile(a, settings.config),
                        2026,
                        preview=settings.preview,
                        reading=reading_for(settings.filing_state),
                    )
                )
                for a in authorities
            }
        finally:
            con.close()
        pipeline.render(run_dir)  # every authority: the shared rows
        root = Path(run_dir)
        files = [*root.glob("rules/*.parquet"), *root.glob("render/*/*.xml")]
        staged[per_read] = {str(f.relative_to(root)): f.read_bytes() for f in files}
        assert not list(root.glob("render/.routed_seller_rows*"))  # deleted after the render
    assert records[23] == records[10**9] and sum(map(len, records[23].values())) > 23
    assert staged[23] == staged[10**9]
    assert len([f for f in staged[23] if f.endswith(".xml")]) > 1


def test_the_checks_in_worker_processes_find_and_write_what_they_find_in_the_stage_s_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole run through the rules stage with the data checks in workers (as in a fresh task
    process) and in the stage's process: the same checks summaries, quarantines and decisions,
    on a marketplace with bad sellers."""
    url = f"sqlite:///{tmp_path}/market.db"
    generate_demo(url, sellers=300, seed=13, year=2025, replace=True, bad_share=0.1)
    staged: dict[str, dict[str, bytes]] = {}
    for worker in ("1", "0"):
        monkeypatch.setenv("DAC7_CHECKS_WORKER", worker)
        config = write_config(tmp_path / "dac7.toml", max_quarantined=1000)
        run_dir = _staged(tmp_path, url, "31111111-2222-3333-4444-555555555555", config, f"-{worker}")
        pipeline.apply_rules(run_dir)
        root = Path(run_dir)
        files = [*root.glob("checks/*"), *root.glob("extract/quarantine_*.parquet"), *root.glob("rules/*.parquet")]
        staged[worker] = {str(f.relative_to(root)): re.sub(rb'"seconds": [0-9.]+', b"", f.read_bytes()) for f in files}
    assert staged["1"] == staged["0"]
    assert "checks/extract.json" in staged["1"] and "rules/decisions.parquet" in staged["1"]
