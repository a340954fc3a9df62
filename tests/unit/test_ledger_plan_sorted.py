"""The plan over streams (reporting.ledger.plan_filing_sorted) is the plan of plan_filing: the same
messages, the same DocRefIds asked for in the same order, the same refusals, over random states of
what is reportable now and what is filed; and it refuses streams out of body order."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.errors import ReportingError
from reporting.ledger import (
    PO_KEY,
    LedgerError,
    LiveRecord,
    PlannedMessage,
    content_hash,
    plan_filing,
    plan_filing_sorted,
)
from reporting.ledger.errors import PlanInputError
from reporting.ledger.model import OTHER_PLATFORM_OPERATORS, SELLER, RecordKey, opo_key
from reporting.ledger.plan import body_order

# seller keys whose order as text differs from their order as numbers, and one beyond ASCII
SELLERS = ["S1", "S10", "S2", "S9", "s1", "Ž-7", "S1-x0"]
OTHERS = ["assumed:DE-2", "assumed:FR-1", "assuming:LT-3"]


class Ids:
    """A counter of DocRefIds that remembers the purposes asked for; ``clash``: the n-th id asked
    for is the one given (a DocRefId in use)."""

    def __init__(self, clash: tuple[int, str] | None = None) -> None:
        self.counter = itertools.count(1)
        self.purposes: list[str] = []
        self.clash = clash

    def __call__(self, purpose: str) -> str:
        self.purposes.append(purpose)
        n = next(self.counter)
        if self.clash and self.clash[0] == n:
            return self.clash[1]
        return f"DE2025-{n:04d}"


def content(key: RecordKey, version: int) -> dict[str, Any]:
    return {"kind": key[0], "key": key[1], "v": version}


versions = st.integers(min_value=1, max_value=3)


@st.composite
def states(draw: st.DrawFn) -> tuple[dict[RecordKey, tuple[str, Any]], dict[RecordKey, LiveRecord]]:
    """What is reportable now (the PlatformOperator nearly always) and what is live: records
    filed unchanged, changed, gone, new, rejected, the PlatformOperator changed or not live."""
    keys = [PO_KEY, *(opo_key(k) for k in OTHERS), *((SELLER, s) for s in SELLERS)]
    current: dict[RecordKey, tuple[str, Any]] = {}
    live: dict[RecordKey, LiveRecord] = {}
    filed_before = draw(st.booleans())
    for i, key in enumerate(keys):
        now = draw(st.none() | versions) if key != PO_KEY else draw(versions)
        if key == PO_KEY and draw(st.integers(0, 30)) == 0:
            now = None  # current without the PlatformOperator: refused alike
        if now is not None:
            c = content(key, now)
            current[key] = (content_hash(c), c)
        # the PlatformOperator filed nearly always, another record one time in two
        filed = draw(st.integers(0, 20)) > 0 if key == PO_KEY else draw(st.booleans())
        if filed_before and filed:
            v = draw(versions)
            c = content(key, v)
            live[key] = LiveRecord(
                kind=key[0],
                seller_key=key[1],
                doc_ref_id=f"L-{i:02d}",
                doc_type_indic="OECD11",
                content_hash=content_hash(c),
                content=c,
                message_ref_id="DE2025DE0001",
                rejected=draw(st.integers(0, 4)) == 0,
            )
    return current, live


def outcome(plan: Callable[..., list[PlannedMessage]], ids: Ids, *args: Any, **kw: Any) -> Any:
    try:
        return plan(*args, new_id=ids, **kw), ids.purposes
    except (ValueError, LedgerError) as exc:  # LedgerModeError is a LedgerError
        return type(exc), str(exc), ids.purposes


def streams(
    current: Mapping[RecordKey, tuple[str, Any]], live: Mapping[RecordKey, LiveRecord]
) -> tuple[list[tuple[RecordKey, str, Any]], list[LiveRecord]]:
    return [(k, *current[k]) for k in body_order(current)], [live[k] for k in body_order(live)]


@settings(max_examples=600, deadline=None)
@given(
    state=states(),
    expects_nil=st.booleans(),
    environment=st.sampled_from(["test", "prod"]),
    empty=st.sampled_from(["DPI401", "DPI403"]),
    clash=st.none() | st.tuples(st.integers(1, 4), st.sampled_from(["L-00", "L-05", "L-10"])),
)
def test_the_plan_over_streams_is_the_plan_of_plan_filing_in_auto(
    state: tuple[dict[RecordKey, tuple[str, Any]], dict[RecordKey, LiveRecord]],
    expects_nil: bool,
    environment: str,
    empty: str,
    clash: tuple[int, str] | None,
) -> None:
    current, live = state
    kw = {
        "profile_expects_nil": expects_nil,
        "environment": environment,
        "authority": "DE",
        "year": 2025,
        "empty_message_type": empty,
    }
    expected = outcome(plan_filing, Ids(clash), current, live, **kw)
    got = outcome(plan_filing_sorted, Ids(clash), *streams(current, live), **kw)
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(
    state=states(),
    mode=st.sampled_from(["new", "nil", "correction", "deletion"]),
    named=st.sets(st.sampled_from(SELLERS)),
    withdraw=st.booleans(),
)
def test_the_modes_chosen_by_hand_plan_alike(
    state: tuple[dict[RecordKey, tuple[str, Any]], dict[RecordKey, LiveRecord]],
    mode: str,
    named: set[str],
    withdraw: bool,
) -> None:
    current, live = state
    kw: dict[str, Any] = {"profile_expects_nil": False, "environment": "test", "mode": mode}
    if mode == "deletion":
        kw |= {"sellers": sorted(named), "withdraw": withdraw and not named}
    assert outcome(plan_filing_sorted, Ids(), *streams(current, live), **kw) == outcome(
        plan_filing, Ids(), current, live, **kw
    )


def test_a_hand_computed_rerun_over_streams() -> None:
    """Filed: the operator (v1), S1 (v1), S2 (v1, rejected), S3 (v1). Now: the operator v2, S1 v1,
    S2 v1, S4 v1 (S3 gone). The DPI402 corrects the operator, S2 (rejected) and deletes S3; the
    DPI401 resends the operator under its corrected id with S4 new."""

    def item(key: RecordKey, v: int) -> tuple[RecordKey, str, Any]:
        return (key, content_hash(content(key, v)), content(key, v))

    def filed(key: RecordKey, ref: str, *, rejected: bool = False) -> LiveRecord:
        c = content(key, 1)
        return LiveRecord(key[0], key[1], ref, "OECD11", content_hash(c), c, "DE2025DE0001", rejected)

    now = [item(PO_KEY, 2), item((SELLER, "S1"), 1), item((SELLER, "S2"), 1), item((SELLER, "S4"), 1)]
    live = [filed(PO_KEY, "L-0"), filed((SELLER, "S1"), "L-1"), filed((SELLER, "S2"), "L-2", rejected=True)]
    live.append(filed((SELLER, "S3"), "L-3"))
    ids = Ids()
    messages = plan_filing_sorted(iter(now), iter(live), profile_expects_nil=False, new_id=ids, environment="test")
    assert [
        (m.message_type_indic, [(r.seller_key, r.doc_type, r.doc_ref_id, r.corr_doc_ref_id) for r in m.records])
        for m in messages
    ] == [
        (
            "DPI402",
            [
                (None, "correction", "DE2025-0001", "L-0"),
                ("S2", "correction", "DE2025-0002", "L-2"),
                ("S3", "deletion", "DE2025-0003", "L-3"),
            ],
        ),
        ("DPI401", [(None, "resend", "DE2025-0001", None), ("S4", "new", "DE2025-0004", None)]),
    ]
    purposes = ["correction:platform_operator", "correction:seller:S2", "deletion:seller:S3", "new:seller:S4"]
    assert ids.purposes == purposes


@pytest.mark.parametrize(
    ("keys", "fault"),
    [
        ([PO_KEY, (SELLER, "S2"), (SELLER, "S1")], "seller S1 comes after a record it should precede, or twice"),
        ([PO_KEY, (SELLER, "S1"), (SELLER, "S1")], "seller S1 comes after a record it should precede, or twice"),
        ([PO_KEY, (SELLER, "S1"), opo_key("assumed:FR-1")], "OtherPlatformOperators assumed:FR-1 comes after"),
        ([PO_KEY, (OTHER_PLATFORM_OPERATORS, None)], "the PlatformOperator record has no key"),
    ],
)
def test_a_stream_out_of_body_order_or_with_a_malformed_key_is_refused(keys: list[RecordKey], fault: str) -> None:
    now: list[tuple[RecordKey, str, Any]] = [(k, "h", {}) for k in keys]
    with pytest.raises(ValueError, match=fault):
        plan_filing_sorted(now, [], profile_expects_nil=False, new_id=Ids(), environment="test")
    live = [LiveRecord(k[0], k[1], f"L-{i}", "OECD11", "h", {}, "M") for i, k in enumerate(keys)]
    with pytest.raises(ValueError, match=fault):
        plan_filing_sorted(now[:1], live, profile_expects_nil=False, new_id=Ids(), environment="test")


@pytest.mark.parametrize("mode", ["auto", "correction"])
def test_the_refusals_name_the_period_the_stream_and_the_key_as_an_error_the_cli_reports(mode: str) -> None:
    kw: dict[str, Any] = {"profile_expects_nil": False, "environment": "test", "authority": "DE", "year": 2025}
    kw["mode"] = mode
    twice: list[tuple[RecordKey, str, Any]] = [(PO_KEY, "h", {}), ((SELLER, "S7"), "h", {}), ((SELLER, "S7"), "h", {})]
    with pytest.raises(PlanInputError) as exc:
        plan_filing_sorted(twice, [], new_id=Ids(), **kw)
    assert isinstance(exc.value, ReportingError) and isinstance(exc.value, ValueError)
    assert str(exc.value) == "DE 2025 (test): current: seller S7 comes after a record it should precede, or twice"
    live = [
        LiveRecord(SELLER, "S2", "L-2", "OECD11", "h", {}, "M"),
        LiveRecord(SELLER, "S1", "L-1", "OECD11", "h", {}, "M"),
    ]
    with pytest.raises(PlanInputError) as exc:
        plan_filing_sorted(twice[:1], live, new_id=Ids(), **kw)
    assert str(exc.value) == "DE 2025 (test): live: seller S1 comes after a record it should precede, or twice"
    with pytest.raises(PlanInputError) as exc:
        plan_filing_sorted([((OTHER_PLATFORM_OPERATORS, None), "h", {})], [], new_id=Ids(), **kw)
    assert str(exc.value).startswith("DE 2025 (test): current: the PlatformOperator record has no key")


def test_a_plan_without_the_platform_operator_names_the_period() -> None:
    with pytest.raises(PlanInputError) as exc:
        plan_filing_sorted(
            [((SELLER, "S1"), "h", {})], [], profile_expects_nil=False, new_id=Ids(), environment="prod",
            authority="FR", year=2026,
        )  # fmt: skip
    assert str(exc.value) == (
        "the records of FR 2026 (prod) as read now (current) must hold the PlatformOperator record "
        "(key ('platform_operator', None))"
    )
