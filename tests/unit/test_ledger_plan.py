"""The filing planner (reporting.ledger.plan): what a rerun sends, by hand for every case of the
rerun semantics, the explicit modes and their refusals, the EU rules a plan is checked against,
and a Hypothesis property over histories of runs."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.ledger import (
    PO_KEY,
    KnownRecord,
    LedgerError,
    LedgerModeError,
    LiveRecord,
    PlannedMessage,
    PlannedRecord,
    apply_message,
    content_hash,
    ledger_problems,
    plan_filing,
)
from reporting.ledger.model import PROFILE_KINDS, SELLER, RecordKey, opo_key

Current = dict[RecordKey, tuple[str, Any]]


def current(
    po: int = 1, sellers: Mapping[str, int] | None = None, opo: int | Mapping[str, int] | None = None
) -> Current:
    """What a run would report: the operator's version, each seller's version, each other
    operator's version (``opo``: one, keyed ``FR-1``, or a mapping key -> version); content stands
    for the canonical JSON of the record."""
    out: Current = {PO_KEY: _item({"operator": "Demo Market", "v": po})}
    others = {"FR-1": opo} if isinstance(opo, int) else dict(opo or {})
    for key, v in others.items():
        out[opo_key(key)] = _item({"assumed": key, "v": v})
    for seller, v in (sellers or {}).items():
        out[(SELLER, seller)] = _item({"seller": seller, "v": v})
    return out


def _item(content: dict[str, Any]) -> tuple[str, Any]:
    return content_hash(content), content


class Ids:
    """DocRefIds as a profile would make them: DE2025-<n>; remembers every purpose asked for."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.purposes: list[str] = []

    def __call__(self, purpose: str) -> str:
        self.purposes.append(purpose)
        return f"DE2025-{next(self.counter):04d}"


IDS = Ids()  # one counter for the module: ids of separate plans never collide by accident


def plan(cur: Current, live: Mapping[RecordKey, LiveRecord], ids: Ids | None = None, **kw: Any) -> list[PlannedMessage]:
    kw.setdefault("profile_expects_nil", False)
    kw.setdefault("environment", "test")
    return plan_filing(cur, live, new_id=ids or IDS, authority="DE", year=2025, **kw)


def filed(*messages: Iterable[PlannedMessage], start: Mapping[RecordKey, LiveRecord] | None = None) -> dict:
    live = dict(start or {})
    for i, m in enumerate(itertools.chain(*messages)):
        live = apply_message(live, m, message_ref_id=f"DE2025DE{i:04d}")
    return live


def shape(messages: list[PlannedMessage]) -> list[tuple[str, list[tuple[str, str | None, str]]]]:
    """Each message as (type, [(kind, seller, DocTypeIndic)]): what a reviewer compares."""
    return [(m.message_type_indic, [(r.kind, r.seller_key, r.doc_type_indic) for r in m.records]) for m in messages]


PO, OPO = "platform_operator", "other_platform_operators"


# ------------------------------------------------------------------------------------- first filing


def test_a_first_filing_is_one_dpi401_with_everything_new() -> None:
    ids = Ids()
    [msg] = plan(current(sellers={"S2": 1, "S1": 1}, opo=1), {}, ids)
    assert shape([msg]) == [
        (
            "DPI401",
            [(PO, None, "OECD11"), (OPO, "FR-1", "OECD11"), ("seller", "S1", "OECD11"), ("seller", "S2", "OECD11")],
        )
    ]
    assert all(r.corr_doc_ref_id is None for r in msg.records)
    assert len({r.doc_ref_id for r in msg.records}) == 4
    assert ids.purposes == [
        "new:platform_operator",
        "new:other_platform_operators:FR-1",
        "new:seller:S1",
        "new:seller:S2",
    ]
    assert (msg.environment, msg.authority, msg.year) == ("test", "DE", 2025)


def test_production_uses_oecd0_to_3_and_a_profile_may_bring_its_own_codes() -> None:
    [msg] = plan(current(sellers={"S1": 1}), {}, environment="prod")
    assert [r.doc_type_indic for r in msg.records] == ["OECD1", "OECD1"]

    # DE marks test files in the DIP envelope, not in DocTypeIndic: its profile's mapping.
    de = {"new": "OECD1", "resent": "OECD0", "corrected": "OECD2", "deleted": "OECD3"}
    [msg] = plan(current(sellers={"S1": 1}), {}, indic=lambda t, env: de[PROFILE_KINDS[t]])
    assert [r.doc_type_indic for r in msg.records] == ["OECD1", "OECD1"]


def test_no_seller_and_nothing_filed_is_a_nil_report_only_where_the_profile_expects_one() -> None:
    assert plan(current(), {}, profile_expects_nil=False) == []
    [msg] = plan(current(opo=1), {}, profile_expects_nil=True)
    assert shape([msg]) == [("DPI403", [(PO, None, "OECD11"), (OPO, "FR-1", "OECD11")])]


# ------------------------------------------------------------------------------------------ reruns


def test_nothing_changed_means_no_message() -> None:
    cur = current(sellers={"S1": 1, "S2": 1})
    live = filed(plan(cur, {}))
    assert plan(cur, live) == []


def test_nothing_changed_after_a_nil_report_means_no_message() -> None:
    live = filed(plan(current(), {}, profile_expects_nil=True))
    assert plan(current(), live, profile_expects_nil=True) == []


def test_new_sellers_go_in_an_additional_dpi401_with_the_operator_resent() -> None:
    live = filed(plan(current(sellers={"S1": 1}), {}))
    [msg] = plan(current(sellers={"S1": 1, "S2": 1, "S3": 1}), live)
    assert shape([msg]) == [("DPI401", [(PO, None, "OECD10"), ("seller", "S2", "OECD11"), ("seller", "S3", "OECD11")])]
    assert msg.platform_operator.doc_ref_id == live[PO_KEY].doc_ref_id
    assert msg.platform_operator.corr_doc_ref_id is None


def test_a_changed_operator_is_corrected_first_and_the_dpi401_resends_its_new_id() -> None:
    live = filed(plan(current(sellers={"S1": 1}), {}))
    dpi402, dpi401 = plan(current(po=2, sellers={"S1": 1, "S2": 1}), live)
    assert shape([dpi402, dpi401]) == [
        ("DPI402", [(PO, None, "OECD12")]),
        ("DPI401", [(PO, None, "OECD10"), ("seller", "S2", "OECD11")]),
    ]
    corrected = dpi402.platform_operator
    assert corrected.corr_doc_ref_id == live[PO_KEY].doc_ref_id
    assert corrected.doc_ref_id != live[PO_KEY].doc_ref_id
    assert dpi401.platform_operator.doc_ref_id == corrected.doc_ref_id  # the NEW id is resent


def test_changed_sellers_are_corrected_against_their_latest_version() -> None:
    first = plan(current(sellers={"S1": 1, "S2": 1}), {})
    live = filed(first)
    second = plan(current(sellers={"S1": 2, "S2": 1}), live)
    assert shape(second) == [("DPI402", [(PO, None, "OECD10"), ("seller", "S1", "OECD12")])]
    assert second[0].sellers[0].corr_doc_ref_id == live[(SELLER, "S1")].doc_ref_id
    live = filed(second, start=live)
    [third] = plan(current(sellers={"S1": 3, "S2": 1}), live)
    # The third version corrects the second, never the first (80003).
    assert third.sellers[0].corr_doc_ref_id == second[0].sellers[0].doc_ref_id


def test_a_changed_operator_goes_along_as_a_correction() -> None:
    live = filed(plan(current(sellers={"S1": 1}), {}))
    assert shape(plan(current(po=2, sellers={"S1": 2}), live)) == [
        ("DPI402", [(PO, None, "OECD12"), ("seller", "S1", "OECD12")])
    ]


def test_sellers_no_longer_reportable_are_deleted_with_what_was_filed() -> None:
    live = filed(plan(current(sellers={"S1": 1, "S2": 1}), {}))
    [msg] = plan(current(sellers={"S1": 1}), live)
    assert shape([msg]) == [("DPI402", [(PO, None, "OECD10"), ("seller", "S2", "OECD13")])]
    deletion = msg.sellers[0]
    assert deletion.corr_doc_ref_id == live[(SELLER, "S2")].doc_ref_id
    assert (deletion.content, deletion.content_hash) == (
        live[(SELLER, "S2")].content,
        live[(SELLER, "S2")].content_hash,
    )


def test_all_sellers_gone_is_a_dpi402_of_deletions_never_an_only_resend_message() -> None:
    live = filed(plan(current(sellers={"S1": 1, "S2": 1}), {}))
    assert shape(plan(current(), live)) == [
        ("DPI402", [(PO, None, "OECD10"), ("seller", "S1", "OECD13"), ("seller", "S2", "OECD13")])
    ]


def test_changes_and_new_sellers_never_share_a_message() -> None:
    live = filed(plan(current(sellers={"S1": 1, "S2": 1}), {}))
    messages = plan(current(sellers={"S1": 2, "S3": 1}), live)
    assert shape(messages) == [
        ("DPI402", [(PO, None, "OECD10"), ("seller", "S1", "OECD12"), ("seller", "S2", "OECD13")]),
        ("DPI401", [(PO, None, "OECD10"), ("seller", "S3", "OECD11")]),
    ]
    assert ledger_problems(messages, live) == []


def test_a_rejected_record_comes_back_as_a_correction_pointing_at_it() -> None:
    live = filed(plan(current(sellers={"S1": 1, "S2": 1}), {}))
    live[(SELLER, "S2")] = replace(live[(SELLER, "S2")], rejected=True)
    [msg] = plan(current(sellers={"S1": 1, "S2": 1}), live)  # unchanged, but rejected
    assert shape([msg]) == [("DPI402", [(PO, None, "OECD10"), ("seller", "S2", "OECD12")])]
    assert msg.sellers[0].corr_doc_ref_id == live[(SELLER, "S2")].doc_ref_id


def test_a_rejected_operator_is_corrected() -> None:
    live = filed(plan(current(sellers={"S1": 1}), {}))
    live[PO_KEY] = replace(live[PO_KEY], rejected=True)
    assert shape(plan(current(sellers={"S1": 1}), live)) == [("DPI402", [(PO, None, "OECD12")])]


def test_a_nil_period_gaining_an_assumed_operator_files_it_in_a_dpi403() -> None:
    live = filed(plan(current(), {}, profile_expects_nil=True))
    [msg] = plan(current(opo=1), live, profile_expects_nil=True)
    assert shape([msg]) == [("DPI403", [(PO, None, "OECD10"), (OPO, "FR-1", "OECD11")])]


def test_a_new_assumed_operator_without_a_new_seller_cannot_be_filed_automatically() -> None:
    live = filed(plan(current(sellers={"S1": 1}), {}))
    with pytest.raises(
        LedgerModeError, match=r"other operator\(s\) are new \(OtherPlatformOperators FR-1\) but no seller is.*20040"
    ):
        plan(current(sellers={"S1": 1}, opo=1), live)


# ------------------------------------------------------------------ assumed and assuming operators


def test_adding_an_assumed_operator_after_a_first_filing_files_it_with_its_sellers() -> None:
    """Issue 18: a DPI401 with its record (OECD1), its sellers (OECD1) and the PlatformOperator
    resent (OECD0) under its live DocRefId; the ledger then holds both operators' records."""
    first = plan(current(sellers={"S1": 1}), {})
    live = filed(first)
    added = plan(current(sellers={"S1": 1, "A1": 1, "A2": 1}, opo={"FR-9": 1}), live)
    assert shape(added) == [
        (
            "DPI401",
            [(PO, None, "OECD10"), (OPO, "FR-9", "OECD11"), ("seller", "A1", "OECD11"), ("seller", "A2", "OECD11")],
        )
    ]
    assert added[0].platform_operator.doc_ref_id == live[PO_KEY].doc_ref_id
    assert ledger_problems(added, live) == []
    after = filed(added, start=live)
    assert set(after) == {PO_KEY, opo_key("FR-9"), (SELLER, "S1"), (SELLER, "A1"), (SELLER, "A2")}
    assert after[opo_key("FR-9")].doc_ref_id == added[0].other_platform_operators[0].doc_ref_id
    assert after[(SELLER, "S1")] == live[(SELLER, "S1")]  # untouched


def test_removing_an_assumed_operator_deletes_its_record_and_its_sellers() -> None:
    """Issue 18: a DPI402 with OECD3 for its record and for its sellers (they left the source with
    it), each naming the live version in CorrDocRefId; the PlatformOperator resent."""
    live = filed(plan(current(sellers={"S1": 1, "A1": 1}, opo={"FR-9": 1, "IT-2": 1}), {}))
    removed = plan(current(sellers={"S1": 1}, opo={"IT-2": 1}), live)
    assert shape(removed) == [("DPI402", [(PO, None, "OECD10"), (OPO, "FR-9", "OECD13"), ("seller", "A1", "OECD13")])]
    [m] = removed
    assert [r.corr_doc_ref_id for r in m.records[1:]] == [
        live[opo_key("FR-9")].doc_ref_id,
        live[(SELLER, "A1")].doc_ref_id,
    ]
    assert m.other_platform_operators[0].content == live[opo_key("FR-9")].content  # what was filed
    assert ledger_problems(removed, live) == []
    after = filed(removed, start=live)
    assert set(after) == {PO_KEY, opo_key("IT-2"), (SELLER, "S1")}
    assert plan(current(sellers={"S1": 1}, opo={"IT-2": 1}), after) == []


def test_a_changed_assumed_operator_is_corrected() -> None:
    live = filed(plan(current(sellers={"S1": 1}, opo={"FR-9": 1}), {}))
    [m] = plan(current(sellers={"S1": 1}, opo={"FR-9": 2}), live)
    assert shape([m]) == [("DPI402", [(PO, None, "OECD10"), (OPO, "FR-9", "OECD12")])]
    assert m.other_platform_operators[0].corr_doc_ref_id == live[opo_key("FR-9")].doc_ref_id


@pytest.mark.parametrize("empty", ["DPI403", "DPI401"])
def test_the_assumed_operators_declaration_takes_the_profiles_message_type(empty: str) -> None:
    """An operator whose reporting is assumed files its PlatformOperator and the assuming
    operator, no seller: a DPI403 (FR example 6, NAV), or a DPI401 where the profile says so
    (HMRC's service); the same when it comes after a filing of its own sellers."""
    [m] = plan(current(opo={"DE-1": 1}), {}, profile_expects_nil=True, empty_message_type=empty)
    assert shape([m]) == [(empty, [(PO, None, "OECD11"), (OPO, "DE-1", "OECD11")])]
    live = filed(plan(current(sellers={"S1": 1}), {}))
    messages = plan(current(po=2, opo={"DE-1": 1}), live, profile_expects_nil=True, empty_message_type=empty)
    assert shape(messages) == [
        ("DPI402", [(PO, None, "OECD12"), ("seller", "S1", "OECD13")]),
        (empty, [(PO, None, "OECD10"), (OPO, "DE-1", "OECD11")]),
    ]
    assert messages[1].platform_operator.doc_ref_id == messages[0].platform_operator.doc_ref_id
    with pytest.raises(ValueError, match="empty_message_type 'DPI402'"):
        plan(current(), {}, empty_message_type="DPI402")


def test_a_record_key_says_which_records_have_one() -> None:
    with pytest.raises(ValueError, match="the PlatformOperator record has no key"):
        plan({**current(), ("other_platform_operators", None): _item({"v": 1})}, {})
    with pytest.raises(ValueError, match="the PlatformOperator record has no key"):
        plan({**current(), ("seller", None): _item({"v": 1})}, {})


def test_a_doc_ref_id_made_twice_is_refused() -> None:
    live = filed(plan(current(sellers={"S1": 1}), {}))
    with pytest.raises(LedgerError, match=r"already used \(EU rule 80000\)"):
        plan_filing(
            current(sellers={"S1": 1, "S2": 1}),
            live,
            new_id=lambda purpose: live[PO_KEY].doc_ref_id,
            profile_expects_nil=False,
            environment="test",
        )


def test_live_records_without_an_operator_are_refused() -> None:
    live = filed(plan(current(sellers={"S1": 1}), {}))
    del live[PO_KEY]
    with pytest.raises(LedgerError, match="no live PlatformOperator"):
        plan(current(sellers={"S1": 1}), live)


# ------------------------------------------------------------------------------------ explicit modes


@pytest.mark.parametrize(
    ("mode", "kw", "filed_first", "cur", "reason"),
    [
        (
            "correction",
            {},
            False,
            current(sellers={"S1": 1}),
            re.escape("mode correction: nothing was filed for DE 2025 (test) yet; use new"),
        ),
        (
            "correction",
            {},
            True,
            current(sellers={"S1": 1}),
            re.escape("mode correction: nothing changed in DE 2025 (test)"),
        ),
        ("correction", {}, True, current(sellers={"S1": 1, "S9": 1}), r"were never filed \(seller S9\).*use auto"),
        ("new", {}, True, current(sellers={"S1": 1}), r"mode new: DE 2025 \(test\) already has a live filing"),
        ("new", {}, False, current(), "mode new: no reportable seller for DE 2025 \\(test\\); use nil"),
        ("nil", {}, True, current(), "mode nil: .* already has a live filing"),
        ("nil", {}, False, current(sellers={"S1": 1}), "mode nil: 1 reportable seller\\(s\\).*use new"),
        ("deletion", {"sellers": ["S1"]}, False, current(), "mode deletion: nothing was filed .* nothing to delete"),
        ("deletion", {"sellers": ["S7"]}, True, current(), r"mode deletion: 1 seller\(s\) have no live record.*S7"),
        ("deletion", {"sellers": []}, True, current(), "mode deletion: name the sellers to delete"),
    ],
)
def test_each_mode_refuses_with_its_reason(
    mode: str, kw: dict[str, Any], filed_first: bool, cur: Current, reason: str
) -> None:
    live = filed(plan(current(sellers={"S1": 1}), {})) if filed_first else {}
    with pytest.raises(LedgerModeError, match=reason):
        plan(cur, live, mode=mode, **kw)


def test_mode_new_and_nil_file_the_first_message() -> None:
    assert shape(plan(current(sellers={"S1": 1}), {}, mode="new")) == [
        ("DPI401", [(PO, None, "OECD11"), ("seller", "S1", "OECD11")])
    ]
    # nil whatever the profile expects: the user asked for it
    assert shape(plan(current(), {}, mode="nil", profile_expects_nil=False)) == [("DPI403", [(PO, None, "OECD11")])]


def test_mode_correction_files_the_dpi402_part() -> None:
    live = filed(plan(current(sellers={"S1": 1, "S2": 1}), {}))
    assert shape(plan(current(sellers={"S1": 2}), live, mode="correction")) == [
        ("DPI402", [(PO, None, "OECD10"), ("seller", "S1", "OECD12"), ("seller", "S2", "OECD13")])
    ]


def test_mode_deletion_deletes_the_named_sellers_or_withdraws_the_whole_filing() -> None:
    live = filed(plan(current(sellers={"S1": 1, "S2": 1}, opo=1), {}))
    assert shape(plan(current(), live, mode="deletion", sellers=["S2", "S2"])) == [
        ("DPI402", [(PO, None, "OECD10"), ("seller", "S2", "OECD13")])
    ]
    withdrawn = plan(current(), live, mode="deletion", withdraw=True)
    assert shape(withdrawn) == [
        (
            "DPI402",
            [(PO, None, "OECD13"), (OPO, "FR-1", "OECD13"), ("seller", "S1", "OECD13"), ("seller", "S2", "OECD13")],
        )
    ]
    assert ledger_problems(withdrawn, live) == []
    assert filed(withdrawn, start=live) == {}


# ------------------------------------------------------------------------------ ledger_problems


def rec(kind: str, doc_type: str, doc_ref_id: str, corr: str | None = None, seller: str | None = None) -> PlannedRecord:
    code = {"new": "OECD11", "resend": "OECD10", "correction": "OECD12", "deletion": "OECD13"}[doc_type]
    return PlannedRecord(kind, seller, doc_type, code, doc_ref_id, corr, "h", {})


def msg(type_: str, *records: PlannedRecord) -> PlannedMessage:
    return PlannedMessage(type_, records, "test", "DE", 2025)


@pytest.fixture
def live() -> dict[RecordKey, LiveRecord]:
    """PlatformOperator P1 and seller S1 (A1) are live; the ledger also knows A0, the version of
    S1 that A1 corrected."""
    return {
        PO_KEY: LiveRecord(PO, None, "P1", "OECD11", "h", {}, "M1"),
        (SELLER, "S1"): LiveRecord(SELLER, "S1", "A1", "OECD12", "h", {}, "M2"),
    }


KNOWN = {
    "A0": KnownRecord("A0", SELLER, "S1", "new", "superseded", "M1", "accepted", "test", "DE", 2025),
    "X9": KnownRecord("X9", SELLER, "S5", "new", "accepted", "M0", "accepted", "prod", "FR", 2024),
}


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        ([msg("DPI401", rec(PO, "resend", "P1"), rec(SELLER, "new", "A1", seller="S2"))], "80000"),
        ([msg("DPI401", rec(PO, "resend", "P1"), rec(SELLER, "new", "X9", seller="S2"))], "80000"),
        ([msg("DPI402", rec(PO, "resend", "P1"), rec(SELLER, "correction", "B1", "ZZ", "S1"))], "80002"),
        ([msg("DPI402", rec(PO, "resend", "P1"), rec(SELLER, "correction", "B1", "X9", "S1"))], "80002"),
        ([msg("DPI402", rec(PO, "resend", "P1"), rec(SELLER, "correction", "B1", "A0", "S1"))], "80003"),
        ([msg("DPI401", rec(PO, "resend", "P1", "P0"), rec(SELLER, "new", "B1", seller="S2"))], "80004"),
        ([msg("DPI402", rec(PO, "resend", "P1"), rec(SELLER, "resend", "A1", seller="S1"))], "80008"),
        ([msg("DPI402", rec(PO, "deletion", "P2", "P1"))], "80009"),
        ([msg("DPI402", rec(PO, "resend", "P1"), rec(SELLER, "new", "B1", seller="S2"))], "80010"),
        (
            [
                msg(
                    "DPI401",
                    rec(PO, "resend", "P1"),
                    rec(SELLER, "new", "B1", seller="S2"),
                    rec(SELLER, "correction", "B2", "A1", "S1"),
                )
            ],
            "80010",
        ),
        (
            [
                msg(
                    "DPI402",
                    rec(PO, "resend", "P1"),
                    rec(SELLER, "correction", "B1", "A1", "S1"),
                    rec(SELLER, "deletion", "B2", "A1", "S1"),
                )
            ],
            "80011",
        ),
        ([msg("DPI401", rec(PO, "resend", "P7"), rec(SELLER, "new", "B1", seller="S2"))], "80013"),
        (
            [
                msg("DPI402", rec(PO, "correction", "P2", "P1")),
                msg("DPI401", rec(PO, "resend", "P1"), rec(SELLER, "new", "B1", seller="S2")),
            ],
            "80014",
        ),
        ([msg("DPI402", rec(PO, "resend", "P1"))], "90030"),
        ([msg("DPI402", rec(PO, "resend", "P1"), rec(SELLER, "correction", "B1", None, "S1"))], "90040"),
    ],
)
def test_ledger_problems_name_the_eu_rule(
    messages: list[PlannedMessage], code: str, live: dict[RecordKey, LiveRecord]
) -> None:
    problems = ledger_problems(messages, live, known=KNOWN)
    assert code in {c for c, _ in problems}, problems
    assert all(isinstance(text, str) and text for _, text in problems)


def test_a_plan_is_checked_message_by_message_against_the_state_the_earlier_leave(
    live: dict[RecordKey, LiveRecord],
) -> None:
    ok = [
        msg("DPI402", rec(PO, "correction", "P2", "P1")),
        msg("DPI401", rec(PO, "resend", "P2"), rec(SELLER, "new", "B1", seller="S2")),
    ]
    assert ledger_problems(ok, live, known=KNOWN) == []


# -------------------------------------------------------------------------------------- property

versions = st.integers(min_value=1, max_value=3)
runs = st.fixed_dictionaries(
    {
        "po": versions,
        "opo": st.dictionaries(st.sampled_from(["FR-1", "IT-2"]), versions),
        "sellers": st.dictionaries(st.sampled_from(["S1", "S2", "S3", "S4"]), versions),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    history=st.lists(runs, min_size=1, max_size=6),
    with_opo=st.booleans(),
    expects_nil=st.booleans(),
    environment=st.sampled_from(["test", "prod"]),
    data=st.data(),
)
def test_a_published_plan_leaves_nothing_to_file_and_no_id_is_ever_reused(
    history: list[dict[str, Any]], with_opo: bool, expects_nil: bool, environment: str, data: st.DataObject
) -> None:
    ids = Ids()
    live: dict[RecordKey, LiveRecord] = {}
    used: set[str] = set()
    for run in history:
        cur = current(run["po"], run["sellers"], run["opo"] if with_opo else None)
        try:
            messages = plan(cur, live, ids, profile_expects_nil=expects_nil, environment=environment)
        except LedgerModeError:
            # the one refusal of auto: a new other operator without a new seller, in a period with sellers
            assert any(k[0] == OPO and k not in live for k in cur)
            assert not any(k[0] == SELLER and k not in live for k in cur)
            assert live and any(k[0] == SELLER for k in cur)
            continue
        assert ledger_problems(messages, live) == []
        for m in messages:
            _well_formed(m)
            for r in m.records:
                if r.doc_type == "resend":
                    assert r.doc_ref_id == live[PO_KEY].doc_ref_id  # the live operator, nothing else
                else:
                    assert r.doc_ref_id not in used
                    used.add(r.doc_ref_id)
            live = apply_message(live, m)
        assert plan(cur, live, ids, profile_expects_nil=expects_nil, environment=environment) == []
        assert {k for k in live if k[0] == SELLER} == {k for k in cur if k[0] == SELLER}
        assert {k for k in live if k[0] == OPO} == ({k for k in cur if k[0] == OPO} if live else set())
        # The authority rejects some records of what is live: the next run corrects them.
        rejected = data.draw(st.sets(st.sampled_from(sorted(live, key=str)))) if live else set()
        live = {k: replace(v, rejected=k in rejected) for k, v in live.items()}


def _well_formed(m: PlannedMessage) -> None:
    types = {r.doc_type for r in m.records}
    assert m.records[0].kind == PO and sum(r.kind == PO for r in m.records) == 1
    assert not ({"new"} & types and {"correction", "deletion"} & types)  # 80010
    assert types != {"resend"}  # 90030
    if m.message_type_indic == "DPI401":
        assert m.sellers and "deletion" not in types  # 20040, 80010
    if m.message_type_indic == "DPI403":
        assert not m.sellers and not {"correction", "deletion"} & types  # 20050, 80010
    corrected = [r.corr_doc_ref_id for r in m.records if r.corr_doc_ref_id]
    assert len(corrected) == len(set(corrected))  # 80011


def test_the_helpers_describe_a_message() -> None:
    [m] = plan(current(sellers={"S1": 1, "S2": 1}), {})
    assert m.describe() == "DPI401: PlatformOperator new; other records: 2 new"
    assert m.other_platform_operators == ()
