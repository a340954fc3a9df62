"""A first filing's records made one by one (reporting.ledger.plan.FirstFiling) are the plan of
plan_filing_sorted where nothing is live and a seller is reportable: one DPI401, the same records,
the same DocRefIds asked for in the same order, the same refusal of a DocRefId made twice; a key
out of body order, or given twice, is refused before any DocRefId is asked for it."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.ledger import PO_KEY, LedgerError, PlannedMessage, content_hash, plan_filing_sorted
from reporting.ledger.contents import STORED
from reporting.ledger.model import SELLER, RecordKey, opo_key
from reporting.ledger.plan import FirstFiling, OutOfOrder, body_order

# seller keys whose order as text differs from their order as numbers, and one beyond ASCII
SELLERS = ["S1", "S10", "S2", "S9", "s1", "Ž-7", "S1-x0"]
OTHERS = ["assumed:DE-2", "assumed:FR-1", "assuming:LT-3"]


class Ids:
    """DocRefIds by count, the purposes asked for remembered; ``clash``: the n-th id asked for
    is the m-th (a DocRefId made twice)."""

    def __init__(self, clash: tuple[int, int] | None = None) -> None:
        self.counter = itertools.count(1)
        self.purposes: list[str] = []
        self.clash = clash

    def __call__(self, purpose: str) -> str:
        self.purposes.append(purpose)
        n = next(self.counter)
        if self.clash and self.clash[0] == n:
            n = self.clash[1]
        return f"DE2025-{n:04d}"


def first_filing(items: list[tuple[RecordKey, str, Any]], ids: Ids, environment: str) -> Any:
    plan = FirstFiling(new_id=ids, environment=environment, authority="DE", year=2025)
    try:
        return [plan.message(plan.new(*item) for item in items)], ids.purposes
    except LedgerError as exc:
        return type(exc), str(exc), ids.purposes


def planned(items: list[tuple[RecordKey, str, Any]], ids: Ids, environment: str) -> Any:
    try:
        plan = plan_filing_sorted(
            items, [], profile_expects_nil=False, new_id=ids, environment=environment, authority="DE", year=2025
        )
        return plan, ids.purposes
    except LedgerError as exc:
        return type(exc), str(exc), ids.purposes


@settings(max_examples=300, deadline=None)
@given(
    others=st.sets(st.sampled_from(OTHERS)),
    sellers=st.sets(st.sampled_from(SELLERS), min_size=1),
    environment=st.sampled_from(["test", "prod"]),
    stored=st.booleans(),
    clash=st.none() | st.tuples(st.integers(2, 9), st.integers(1, 8)),
)
def test_the_records_made_one_by_one_are_the_plan_of_a_first_filing(
    others: set[str], sellers: set[str], environment: str, stored: bool, clash: tuple[int, int] | None
) -> None:
    keys = body_order([PO_KEY, *(opo_key(o) for o in others), *((SELLER, s) for s in sellers)])
    items = [(k, content_hash({"key": k[1]}), STORED if stored and k[0] == SELLER else {"key": k[1]}) for k in keys]
    got = first_filing(items, Ids(clash), environment)
    assert got == planned(items, Ids(clash), environment)
    if clash is None or clash[0] > len(keys):  # no DocRefId made twice: the plan, whole
        (message,), _ = got
        assert isinstance(message, PlannedMessage)
        assert message.message_type_indic == "DPI401"
        assert [r.key for r in message.records] == keys
        assert {r.doc_type for r in message.records} == {"new"}


def test_a_hand_computed_first_filing() -> None:
    ids = Ids()
    plan = FirstFiling(new_id=ids, environment="test", authority="DE", year=2025)
    po = plan.new(PO_KEY, "h0", {"name": "Demo"})
    other = plan.new(opo_key("assumed:FR-1"), "h1", {"k": 1})
    s10 = plan.new((SELLER, "S10"), "h2", STORED)
    s2 = plan.new((SELLER, "S2"), "h3", STORED)  # "S10" < "S2" as text
    message = plan.message([po, other, s10, s2])
    assert ids.purposes == ["new:platform_operator", "new:other_platform_operators:assumed:FR-1",
                            "new:seller:S10", "new:seller:S2"]  # fmt: skip
    assert [(r.doc_ref_id, r.doc_type_indic, r.corr_doc_ref_id, r.content_hash) for r in message.records] == [
        ("DE2025-0001", "OECD11", None, "h0"),
        ("DE2025-0002", "OECD11", None, "h1"),
        ("DE2025-0003", "OECD11", None, "h2"),
        ("DE2025-0004", "OECD11", None, "h3"),
    ]
    assert (message.message_type_indic, message.authority, message.year, message.environment) == (
        "DPI401", "DE", 2025, "test",
    )  # fmt: skip


@pytest.mark.parametrize(
    "keys",
    [
        [PO_KEY, (SELLER, "S2"), (SELLER, "S10")],  # numbers' order, not text's
        [PO_KEY, (SELLER, "S1"), (SELLER, "S1")],  # twice
        [PO_KEY, (SELLER, "S1"), opo_key("assumed:FR-1")],  # an other operator after a seller
        [(SELLER, "S1")],  # no PlatformOperator first
        [PO_KEY, PO_KEY],
    ],
)
def test_a_key_out_of_order_or_twice_is_refused_before_its_id_is_made(keys: list[RecordKey]) -> None:
    ids = Ids()
    plan = FirstFiling(new_id=ids, environment="test")
    with pytest.raises(OutOfOrder):
        for k in keys:
            plan.new(k, "h", STORED)
    assert len(ids.purposes) == len(keys) - 1


def test_a_docrefid_made_twice_is_refused() -> None:
    plan = FirstFiling(new_id=lambda purpose: "DE2025-same", environment="test")
    plan.new(PO_KEY, "h", {})
    with pytest.raises(LedgerError, match="already used"):
        plan.new((SELLER, "S1"), "h", STORED)
