"""The relational checks that join refunds to their transactions (``Check.refunded``) run where
``transactions`` holds only the refunded ones: they must find what they find over every
transaction, row for row, whatever the keys (a duplicated transaction id, a refund of no
transaction, a refund without a transaction id)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reporting.checks import staged
from reporting.checks.staged import CHECKS, MAX_SELLER_TOTAL
from reporting.period import Period
from reporting.staging import connect, register_local_days

PERIOD = Period(2025, "Europe/Vilnius", date(2026, 1, 31))
BIG = MAX_SELLER_TOTAL // 2 + 1  # two of them overflow a seller's total


def _stage(run_dir: Path) -> None:
    extract = run_dir / "extract"
    extract.mkdir(parents=True)
    ts = pa.timestamp("us")
    transactions = {
        "transaction_id": ["T1", "T2", "T2", "T3", "T4", "T5", "T6", "T7"],
        "seller_id": ["S1", "S1", "S2", "S2", "S3", "S4", "S4", "S5"],
        "amount_minor": [1000, 500, 700, 300, 100, BIG, BIG, 50],
        "fee_minor": [10, None, 5, 0, 0, 0, 0, 0],
        "tax_minor": [0, 0, 0, None, 0, 0, 0, 0],
        "paid_at": [datetime(2025, month, day) for month, day in ((3, 1), (4, 1), (4, 2), (5, 1))]
        + [datetime(2025, month, day) for month, day in ((6, 1), (7, 1), (7, 2), (8, 1))],
    }
    refunds = {
        # R1 fine; R2 exceeds T1's fee; R3+R4 together exceed T3; R5 refunds the duplicated T2;
        # R6 dated before its payment and in the year before; R7 no transaction; R8 no id;
        # R9+R10 overflow seller S4's refunds
        "refund_id": ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10"],
        "transaction_id": ["T1", "T1", "T3", "T3", "T2", "T4", "TX", None, "T5", "T6"],
        "amount_minor": [100, 100, 200, 200, 600, 50, 10, 10, BIG, BIG + 1],
        "fee_minor": [0, 20, 0, 0, 0, 0, 0, 0, 0, 0],
        "tax_minor": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        "refunded_at": [datetime(2025, 3, 2)] * 5 + [datetime(2024, 6, 1)] + [datetime(2025, 9, 1)] * 4,
    }
    schema = {"paid_at": ts, "refunded_at": ts}
    for name, columns in (("transactions", transactions), ("refunds", refunds)):
        pq.write_table(
            pa.table(
                {
                    k: pa.array(v, schema.get(k, pa.int64() if k.endswith("_minor") else pa.string()))
                    for k, v in columns.items()
                }
            ),
            extract / f"{name}.parquet",
        )


def test_the_refunded_checks_find_over_the_refunded_transactions_what_they_find_over_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stage(tmp_path)
    refunded = [c for c in CHECKS if c.refunded]
    monkeypatch.setattr(staged, "CHECKS", tuple(refunded))  # the others read tables not staged here
    assert {c.rule for c in refunded} == {
        "refund.exceeds_transaction",
        "refund.total_exceeds_transaction",
        "refund.before_payment",
        "refund.amount_overflow",
    }
    con = connect(tmp_path, "extract")
    register_local_days(con, PERIOD)
    narrow = staged._refunded_connection(tmp_path, PERIOD)
    try:
        assert narrow.execute("select count(*) from transactions").fetchall() == [(7,)]  # T2 twice, not T7
        everywhere = staged._run(con, None)
        split = staged._run(con, narrow)
    finally:
        narrow.close()
        con.close()
    found = {(f.rule, f.key, f.seller_id, f.message) for f in everywhere}
    for rule, key, seller in [
        ("refund.exceeds_transaction", "R2", "S1"),
        ("refund.total_exceeds_transaction", "T3", "S2"),
        ("refund.before_payment", "R6", "S3"),
        ("refund.amount_overflow", "R10", None),
    ]:
        assert any(f[:3] == (rule, key, seller) for f in found), rule
    # R5 refunds the duplicated T2 and exceeds one of its rows: named with the seller of each
    assert {f.seller_id for f in everywhere if f.key == "R5"} == {"S1", "S2"}
    assert split == everywhere
