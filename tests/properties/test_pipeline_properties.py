"""Properties of the whole pipeline on random marketplaces (Hypothesis), on real SQLite files."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import Counter
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
from builders import Marketplace, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.pipeline import run

RUN_ID = "3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"
START = datetime(2024, 12, 30)

sale = st.tuples(
    st.integers(min_value=0, max_value=380 * 24),  # hours after START: around both year ends
    st.integers(min_value=0, max_value=300_00),  # amount_minor
    st.sampled_from(["EUR", "EUR", "PLN"]),
    st.sampled_from(["sale_of_goods", "sale_of_goods", "personal_services"]),
    st.one_of(st.none(), st.integers(min_value=0, max_value=100)),  # refund percent
)
market = st.lists(
    st.tuples(st.sampled_from(["LT", "PL", "DE", "US"]), st.lists(sale, min_size=1, max_size=45)),
    min_size=1,
    max_size=6,
)


def build(sellers: list[tuple[str, list[Any]]], order_seed: int | None = None) -> Marketplace:
    m = Marketplace()
    m.rate("PLN", "2025-12-31", "4.2655")
    for i, (country, sales) in enumerate(sellers):
        sid = f"S{i:03d}"
        m.seller(sid, country=country)
        for j, (hours, amount, currency, activity, refund) in enumerate(sales):
            paid = START + timedelta(hours=hours)
            tid = m.tx(
                sid,
                paid,
                amount,
                currency=currency,
                activity=activity,
                fee_minor=amount // 10,
                transaction_id=f"T{i:03d}{j:03d}",
            )
            if refund is not None:
                m.refund(
                    tid, (paid + timedelta(days=3)).isoformat(" "), amount * refund // 100, refund_id=f"R{i:03d}{j:03d}"
                )
    if order_seed is not None:  # the same rows, inserted in another order
        rnd = random.Random(order_seed)
        for rows in m.rows.values():
            rnd.shuffle(rows)
    return m


def run_market(m: Marketplace, work: Path, name: str) -> tuple[dict[str, Any], Path]:
    url = m.write(f"sqlite:///{work}/{name}.db")
    result = run(
        config_path=write_config(work / "dac7.toml"),
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=work / f"out-{name}",
        staging_root=work / f"st-{name}",
        run_id=RUN_ID,
        timestamp=datetime(2026, 1, 15, 6, 0),
        ledger_url=f"sqlite:///{work}/ledger-{name}.sqlite3",  # each run a first filing
    )
    return result.manifest, Path(result.run_dir)


def sql(run_dir: Path, query: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        return con.execute(query.replace("{run}", str(run_dir))).fetchall()
    finally:
        con.close()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(market, st.integers(min_value=0, max_value=2**32))
def test_totals_reconcile_rounding_happens_once_and_order_does_not_matter(
    sellers: list[tuple[str, list[Any]]], order_seed: int
) -> None:
    work = Path(tempfile.mkdtemp(prefix="dac7-prop-"))
    try:
        manifest, run_dir = run_market(build(sellers), work, "a")

        # Exact totals before rounding, each seller counted once: what the decisions cover equals
        # what was extracted (net of the refunds up to the as-of date), per currency, to the minor unit.
        expected: Counter[str] = Counter()
        for tx_currency, amount, refunded in sql(
            run_dir,
            """
            select t.currency, t.amount_minor, coalesce(sum(r.amount_minor), 0)
            from '{run}/extract/transactions.parquet' t
            left join '{run}/extract/refunds.parquet' r
              on r.transaction_id = t.transaction_id and r.refunded_at < '2026-01-31 22:00:00'
            group by t.transaction_id, t.currency, t.amount_minor""",
        ):
            expected[tx_currency] += amount - refunded
        covered = Counter(
            {
                c: int(v)
                for c, v in sql(
                    run_dir,
                    """
            select a.currency, sum(a.amount_minor) from '{run}/aggregate/activity_totals.parquet' a
            join '{run}/rules/decisions.parquet' d using (seller_id) group by all""",
                )
            }
        )
        assert +covered == +expected
        ids = [r[0] for r in sql(run_dir, "select seller_id from '{run}/rules/decisions.parquet'")]
        assert len(ids) == len(set(ids)) == manifest["summary"]["sellers_read"]
        assert sum(manifest["summary"]["decisions"].values()) == len(ids)

        # Rounding happens once: each reported figure is within 0.5 of its exact value.
        for row in sql(
            run_dir,
            "select cons_q1, cons_q2, cons_q3, cons_q4, exact_cons_q1, exact_cons_q2, "
            "exact_cons_q3, exact_cons_q4 from '{run}/rules/reported.parquet'",
        ):
            for whole, exact in zip(row[:4], row[4:], strict=True):
                assert abs(whole - Fraction(exact)) <= Fraction(1, 2)

        # Shuffling the input row order changes nothing: identical bytes.
        other, _ = run_market(build(sellers, order_seed), work, "b")
        assert [(f["file"], f["sha256"]) for f in other["files"]] == [
            (f["file"], f["sha256"]) for f in manifest["files"]
        ]
        assert other["summary"] == manifest["summary"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
