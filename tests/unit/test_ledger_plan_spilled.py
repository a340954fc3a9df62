"""A first filing's records written to a file of planned records (plan_filing_sorted with a
``sink``: ContentStore.planned_records) are the plan made in memory: the same messages and records
read back in order, the same DocRefIds asked for in the same order, the same refusal of an id made
twice, and the same problems found by ledger_problems, over random states (nothing live, or
records new, changed, gone and rejected, other operators) and random knowledge of the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.ledger import PO_KEY, KnownRecord, LedgerError, LiveRecord, PlannedMessage, plan_filing_sorted
from reporting.ledger.contents import READ_BATCH, WRITE_BATCH, ContentStore, PlannedRecords
from reporting.ledger.model import SELLER, RecordKey, RecordsView
from reporting.ledger.plan import ledger_problems
from tests.unit.test_ledger_plan_sorted import Ids, states, streams

KW: dict[str, Any] = {"environment": "test", "authority": "DE", "year": 2025}


def plain(plan: list[PlannedMessage]) -> list[tuple[str, tuple[Any, ...]]]:
    return [(m.message_type_indic, tuple(m.records)) for m in plan]


def outcome(ids: Ids, store: ContentStore | None, state: Any, spill_at: int = 0, **kw: Any) -> Any:
    try:
        plan = plan_filing_sorted(
            *streams(*state),
            new_id=ids,
            sink=(lambda: store.planned_records(spill_at)) if store else None,
            **KW,
            **kw,
        )
    except LedgerError as exc:
        return type(exc), str(exc), ids.purposes
    return plan, ids.purposes


known_records = st.dictionaries(
    st.sampled_from([f"DE2025-{n:04d}" for n in range(1, 14)] + ["L-00", "L-05", "X-1"]),
    st.builds(
        KnownRecord,
        doc_ref_id=st.just(""),
        kind=st.sampled_from(["platform_operator", "seller"]),
        seller_key=st.none() | st.sampled_from(["S1", "S2"]),
        doc_type=st.sampled_from(["new", "correction"]),
        status=st.just("sent"),
        message_ref_id=st.just("M-1"),
        message_status=st.sampled_from(["rendered", "published", "accepted", "rejected"]),
        environment=st.sampled_from(["test", "prod"]),
        authority=st.sampled_from(["DE", "FR"]),
        year=st.sampled_from([2024, 2025]),
    ),
    max_size=4,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    state=states(),
    nothing_live=st.booleans(),
    expects_nil=st.booleans(),
    empty=st.sampled_from(["DPI401", "DPI403"]),
    # the n-th id asked for is a live one, or one made before in the plan (made twice)
    clash=st.none() | st.tuples(st.integers(1, 12), st.sampled_from(["L-00", "L-05", "DE2025-0001", "DE2025-0003"])),
    known=known_records,
    # records held in memory before they go to the file: none, a few, all of them
    spill_at=st.sampled_from([0, 3, 50_000]),
)
def test_a_plan_written_to_a_file_is_the_plan_in_memory(
    tmp_path: Path,
    state: tuple[dict[RecordKey, tuple[str, Any]], dict[RecordKey, LiveRecord]],
    nothing_live: bool,
    expects_nil: bool,
    empty: str,
    clash: tuple[int, str] | None,
    known: dict[str, KnownRecord],
    spill_at: int,
) -> None:
    current, live = state
    if nothing_live:
        live = {}
    kw = {"profile_expects_nil": expects_nil, "empty_message_type": empty}
    with ContentStore(tmp_path / "store.tmp") as store:
        expected = outcome(Ids(clash), None, (current, live), **kw)
        got = outcome(Ids(clash), store, (current, live), spill_at, **kw)
        if isinstance(expected[0], type):  # refused alike: the same error, after the same ids
            assert got[:2] == expected[:2]
            # before the refusal, the file's batch may have asked for more ids: the same ones first
            assert got[2][: len(expected[2])] == expected[2]
            if spill_at == 50_000:  # held in memory: refused at once
                assert got[2] == expected[2]
            return
        plan, purposes = got
        assert purposes == expected[1]
        assert plain(plan) == plain(expected[0])
        views = [m for m in plan if isinstance(m.records, RecordsView)]
        # the file is used exactly where nothing is live, a message is due and it has more
        # records than are held in memory
        assert bool(views) == (not live and bool(plan) and len(plan[0].records) > spill_at)
        for m, e in zip(plan, expected[0], strict=True):
            assert tuple(m.sellers) == tuple(e.sellers)
            assert len(m.sellers) == len(e.sellers)
            assert m.platform_operator == e.platform_operator
            assert m.describe() == e.describe()
        known = {k: KnownRecord(k, *[getattr(v, f) for f in KnownRecord.__slots__[1:]]) for k, v in known.items()}
        assert ledger_problems(plan, live, known=known) == ledger_problems(expected[0], live, known=known)


def test_a_hand_computed_first_filing_read_back_in_batches(tmp_path: Path) -> None:
    """The PlatformOperator and 2,500 sellers: more than a write and a read batch, and than the
    1,000 held in memory before they go to the file. The view gives them back in order, by index,
    by kind, the content of the PlatformOperator as it is, the sellers' as stored."""
    assert WRITE_BATCH < 2_500 and READ_BATCH < 2_500
    sellers = [f"S{n:05d}" for n in range(2_500)]
    with ContentStore(tmp_path / "store.tmp") as store:
        for s in sellers:
            store.put((SELLER, s), {"id": s})
        po = {"name": "operator"}
        ids = Ids()
        [message] = plan_filing_sorted(
            [(PO_KEY, "h-po", po), *store.items(SELLER)],
            [],
            profile_expects_nil=False,
            new_id=ids,
            sink=lambda: store.planned_records(1_000),
            **KW,
        )
        records = message.records
        assert isinstance(records, PlannedRecords)
        assert message.message_type_indic == "DPI401"
        assert len(records) == 2_501 and len(message.sellers) == 2_500
        assert [r.doc_ref_id for r in records] == [f"DE2025-{n:04d}" for n in range(1, 2_502)]
        assert ids.purposes == ["new:platform_operator", *(f"new:seller:{s}" for s in sellers)]
        assert records[0].content == po and records[0].seller_key is None
        assert records[-1].seller_key == "S02499" and records[2_500].doc_ref_id == "DE2025-2501"
        assert message.sellers[0].seller_key == "S00000" and message.sellers[-1].seller_key == "S02499"
        assert [r.seller_key for r in message.sellers] == sellers
        assert list(store.contents(message.sellers[:2])) == [{"id": "S00000"}, {"id": "S00001"}]
        assert records[1:3] == tuple(records)[1:3]
        with pytest.raises(IndexError):
            records[2_501]
        assert ledger_problems([message], {}) == []


def test_an_id_made_twice_in_a_later_batch_is_refused_with_the_plans_error(tmp_path: Path) -> None:
    """The 2,100th id asked for is the first again: refused as the plan in memory refuses it, at
    once while the records are held in memory, once the batch is written where they go to the
    file (ids asked for up to the end of the batch)."""
    items = [(PO_KEY, "h", {}), *(((SELLER, f"S{n:05d}"), "h", {}) for n in range(5_000))]
    with ContentStore(tmp_path / "store.tmp") as store:
        for spill_at, asked in ((None, 2_100), (50_000, 2_100), (1_000, 4_000), (0, 4_000)):
            ids = Ids((2_100, "DE2025-0001"))
            sink = None if spill_at is None else (lambda n=spill_at: store.planned_records(n))
            with pytest.raises(LedgerError) as err:
                plan_filing_sorted(items, [], profile_expects_nil=False, new_id=ids, sink=sink, **KW)
            assert str(err.value) == (
                "new_id('new:seller:S02098') returned DE2025-0001, a DocRefId already used (EU rule 80000); "
                "DocRefIds are never reused"
            )
            assert ids.purposes[2_099] == "new:seller:S02098"
            assert len(ids.purposes) == asked


def test_a_first_filing_below_the_bound_stays_in_memory(tmp_path: Path) -> None:
    items = [(PO_KEY, "h", {}), ((SELLER, "S1"), "h", {})]
    with ContentStore(tmp_path / "store.tmp") as store:
        kw: dict[str, Any] = {"profile_expects_nil": False, **KW}
        [held] = plan_filing_sorted(items, [], new_id=Ids(), sink=store.planned_records, **kw)
        [spilled] = plan_filing_sorted(items, [], new_id=Ids(), sink=lambda: store.planned_records(1), **kw)
        assert isinstance(held.records, tuple) and isinstance(spilled.records, PlannedRecords)
        assert held == PlannedMessage(held.message_type_indic, tuple(spilled.records), "test", "DE", 2025)
        assert spilled.records == held.records and len(spilled.records) == 2
