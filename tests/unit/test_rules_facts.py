"""The rules stage's reading of the sellers' facts: the sellers' rows, each with its count of
blocks, matched with one sorted stream of blocks (:func:`reporting.stages.rules._facts`)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from reporting.errors import ReportingError
from reporting.rules import Block, SellerFacts
from reporting.stages import rules as rules_stage


def _sellers(*rows: tuple[str, int]) -> pa.RecordBatchReader:
    ids = [sid for sid, _ in rows]
    table = pa.table(
        {
            "seller_id": ids,
            "seller_type": ["individual"] * len(ids),
            "residence_country": ["DE"] * len(ids),
            "gvs_jurisdiction": pa.array([None] * len(ids), pa.string()),
            "is_governmental": [None] * len(ids),
            "is_listed": [True] * len(ids),
            "tin_issuers": [["DE", "FR"]] * len(ids),
            "pe_countries": pa.array([[]] * len(ids), pa.list_(pa.string())),
            "blocks": [n for _, n in rows],
        }
    )
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=1))


def _block(quarter: int) -> Block:
    return Block("SALE_OF_GOODS", "", "EUR", quarter, 100 * quarter, 0, 0, 1)


def test_each_seller_takes_its_count_of_blocks_in_order() -> None:
    blocks = [("s1", _block(1)), ("s1", _block(2)), ("s2", _block(3))]
    facts = list(rules_stage._facts(_sellers(("s1", 2), ("s2", 1)), iter(blocks)))
    assert facts == [
        SellerFacts("s1", "individual", "DE", False, True, ("DE", "FR"), (), (_block(1), _block(2))),
        SellerFacts("s2", "individual", "DE", False, True, ("DE", "FR"), (), (_block(3),)),
    ]


def test_a_repeated_seller_gets_the_same_blocks_again() -> None:
    """As the list aggregate joined to each of the seller's rows gave them (the extract's checks
    refuse a repeated seller id; the stage stays the same function of its input)."""
    blocks = [("s1", _block(1)), ("s2", _block(4))]
    facts = list(rules_stage._facts(_sellers(("s1", 1), ("s1", 1), ("s2", 1)), iter(blocks)))
    assert [(f.seller_id, f.blocks) for f in facts] == [
        ("s1", (_block(1),)),
        ("s1", (_block(1),)),
        ("s2", (_block(4),)),
    ]


@pytest.mark.parametrize(
    "blocks",
    [
        [("s1", _block(1))],  # too few
        [("s0", _block(1)), ("s1", _block(2))],  # another seller's first
        [("s1", _block(1)), ("s2", _block(2))],  # another seller's last
    ],
)
def test_blocks_that_are_not_the_sellers_own_stop_the_stage(blocks: list[tuple[str, Block]]) -> None:
    with pytest.raises(ReportingError, match=r"activity_totals: the blocks read for seller s1 are not its own"):
        list(rules_stage._facts(_sellers(("s1", 2)), iter(blocks)))
