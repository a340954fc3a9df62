"""The compliance desk's table (``ledger_due_diligence_desk``, ``reporting.ledger.desk``): what a
daily run writes of it (only the sellers it changed; every row when its settings changed), what a
report of actions writes, and the SQL that the DAC7 view's page, counts, filters and export read.

Hand-built state rows of a ledger on a temporary SQLite file, each written as a run writes them
(``write_run``), through ADBC's bulk ingest and through the DB-API alike. The dates by hand, with
the default settings (first reminder 14 days after the request, the second 14 days after the
first, the measure ``withhold_payouts`` from day 61): a request of 2 March 2026 makes the first
reminder due from 16 March (its last day: day 178, 27 August); sent on 16 March, the second is due
from 30 March (last day: day 179, 28 August); sent on 30 March, the measure is due from day 61,
2 May (last day: day 180, 29 August).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
import sqlalchemy as sa
from resources import require

import reporting.ledger.due_diligence as dd
import reporting.ledger.schema as t
from reporting.diligence_cycle import CycleSettings
from reporting.due_diligence import (
    DeskFilter,
    desk_list,
    desk_stages_of,
    desk_total,
    desk_whole,
    needs_attention,
    record_verifications,
    stage_counts,
)
from reporting.ledger import Ledger, open_ledger
from reporting.ledger.desk import DESK_CYCLE_COLUMNS, desk_values
from reporting.vocabulary import DUE_DILIGENCE_ACTIONS, DUE_DILIGENCE_CYCLE_COLUMNS, DUE_DILIGENCE_ITEMS

REQUEST = date(2026, 3, 2)
SETTINGS = CycleSettings()
#: A cycle requested on 2 March 2026 for the TIN; reminded on 16 and 30 March; the payouts
#: withheld on 2 May (day 61).
REQUESTED = {"requested_on": REQUEST, "requested_items": "tin"}
REMINDED = {**REQUESTED, "reminder_1_on": date(2026, 3, 16), "reminder_2_on": date(2026, 3, 30)}
BLOCKED = {**REMINDED, "measure": "withhold_payouts", "measure_on": date(2026, 5, 2)}


def _arrow(kind: Any) -> pa.DataType:
    if isinstance(kind, sa.Date):
        return pa.date32()
    if isinstance(kind, sa.DateTime):
        return pa.timestamp("us")
    if isinstance(kind, sa.Integer):
        return pa.int64()
    return pa.string()


STATE_SCHEMA = pa.schema([(c.name, _arrow(c.type)) for c in t.due_diligence.c])
EVENT_SCHEMA = pa.schema([(c.name, _arrow(c.type)) for c in t.due_diligence_events.c if c.name != "id"])


def state(seller_id: str, operator_id: str = "default", *, lacks: tuple[str, ...] = ("tin",), **cycle: Any) -> dict:
    """A state row: an individual of LT in scope for 2026, every item verified but ``lacks``
    (missing), the cycle as given."""
    row: dict[str, Any] = {c.name: None for c in t.due_diligence.c}
    row.update(
        operator_id=operator_id,
        seller_id=seller_id,
        seller_type="individual",
        country="LT",
        scope="in_scope",
        period=2026,
        fingerprint="f" * 16,
        needs=",".join(i for i in DUE_DILIGENCE_ITEMS if i in lacks),
        cycles=0,
        first_seen=REQUEST,
        updated=REQUEST,
        changed=datetime(2026, 3, 2, 4),
        notice_due=REQUEST,
        notice_on=REQUEST,
    )
    for item in DUE_DILIGENCE_ITEMS:
        row[f"{item}_state"] = "missing" if item in lacks else "verified"
    row.update(cycle)
    return row


@pytest.fixture(params=["adbc", "dbapi", pytest.param("postgresql", marks=pytest.mark.pg)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    """The ledger on SQLite, written through ADBC and through the DB-API, and on a fresh
    PostgreSQL database (127.0.0.1:5432, tests/conftest.py's ``pg_url``: skipped when the server
    is absent, failing in CI), written through ADBC."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    if request.param == "dbapi":
        monkeypatch.setattr(dd, "_adbc_connection", lambda engine: None)
    elif request.param == "adbc":
        require(importlib.util.find_spec("adbc_driver_sqlite") is not None, "adbc_driver_sqlite (a dependency)")
    else:
        require(importlib.util.find_spec("adbc_driver_postgresql") is not None, "adbc_driver_postgresql (a dependency)")
        url = str(request.getfixturevalue("pg_url"))
    with open_ledger(url) as led:
        yield led


def run(
    led: Ledger, on: date, rows: list[dict], operator_id: str = "default", settings: CycleSettings = SETTINGS
) -> None:
    """A run of ``on`` that changed ``rows`` (no events), as ``run_due_diligence`` writes it."""
    table = pa.Table.from_pylist(rows, schema=STATE_SCHEMA)
    events = pa.Table.from_pylist([], schema=EVENT_SCHEMA)
    dd.write_run(
        led.engine,
        pa.RecordBatchReader.from_batches(STATE_SCHEMA, table.to_batches()),
        pa.RecordBatchReader.from_batches(EVENT_SCHEMA, events.to_batches()),
        {
            "operator_id": operator_id,
            "run_date": on,
            "run_id": f"run-{on}",
            "finished": datetime(on.year, on.month, on.day, 4),
            "sellers": len(rows),
            "in_scope": len(rows),
            "changed": len(rows),
            "events": 0,
            "actions": "{}",
            "feed_sha256": None,
            "settings": dd.settings_json(settings),
        },
        settings,
    )


def desk(led: Ledger) -> dict[tuple[str, str], dict[str, Any]]:
    k = t.due_diligence_desk
    with led.engine.connect() as conn:
        return {(r["operator_id"], r["seller_id"]): dict(r) for r in conn.execute(sa.select(k)).mappings()}


def test_a_run_writes_the_desk_rows_of_the_sellers_that_need_attention(ledger: Ledger) -> None:
    """S1: the request of 2 March open, TIN missing: requested, its first reminder from 16 March
    (last day 27 August). S2: complete, the notice sent: no attention, no row. S3: a request
    due since 2 March, its last day 31 December 2026 (not pre-existing)."""
    run(
        ledger,
        REQUEST,
        [
            state("S1", requested_on=REQUEST, requested_items="tin"),
            state("S2", lacks=()),
            state("S3", request_due=REQUEST),
        ],
    )
    rows = desk(ledger)
    assert sorted(rows) == [("default", "S1"), ("default", "S3")]
    s1 = rows["default", "S1"]
    assert (s1["stage"], s1["items_missing"], s1["items_invalid"], s1["requested_items"]) == (
        "requested",
        "tin",
        "",
        "tin",
    )
    assert (s1["step"], s1["step_from"], s1["step_latest"]) == ("reminder_1", date(2026, 3, 16), date(2026, 8, 27))
    assert s1["request_from"] is None and s1["notice_from"] is None and s1["release_from"] is None
    s3 = rows["default", "S3"]
    assert (s3["stage"], s3["request_from"], s3["request_latest"], s3["step"]) == (
        "other",
        REQUEST,
        date(2026, 12, 31),
        None,
    )
    # names, TINs: none; ids, codes and dates only
    assert set(s1) == {c.name for c in t.due_diligence_desk.c}
    with ledger.engine.connect() as conn:
        [listed] = conn.execute(sa.select(t.due_diligence_runs.c.desk)).scalars()
    assert listed == 2


def test_a_run_writes_only_the_sellers_it_changed_and_a_seller_whose_data_arrived_leaves_the_list(
    ledger: Ledger,
) -> None:
    """Day 0: S1 and S2 requested, each lacking its TIN, for the operator ``default``; S1 also for
    ``pl_spzoo``. Day 14: S1's TIN came in, the cycle closed (the run writes S1 only): S1 leaves
    ``default``'s list; S2's row, which the run did not write, is the row as it was (a mark put
    in it by hand stays); ``pl_spzoo``'s S1 is untouched."""
    open_s = {"requested_on": REQUEST, "requested_items": "tin"}
    run(ledger, REQUEST, [state("S1", **open_s), state("S2", **open_s)])
    run(ledger, REQUEST, [state("S1", "pl_spzoo", **open_s)], operator_id="pl_spzoo")
    k = t.due_diligence_desk
    with ledger.engine.begin() as conn:  # a mark on S2's row: a run that rewrote it would lose it
        conn.execute(sa.update(k).where(k.c.seller_id == "S2").values(seller_type="entity"))
    before = desk(ledger)
    run(ledger, date(2026, 3, 16), [state("S1", lacks=(), cycles=1)])
    after = desk(ledger)
    assert sorted(after) == [("default", "S2"), ("pl_spzoo", "S1")]
    assert after["default", "S2"]["seller_type"] == "entity"
    assert after["pl_spzoo", "S1"] == before["pl_spzoo", "S1"]
    # other settings: every row of the operator computed again (the mark is gone), the other
    # operator's untouched
    later = replace(SETTINGS, reminder_1_days=20)
    run(ledger, date(2026, 3, 17), [], settings=later)
    again = desk(ledger)
    assert again["default", "S2"]["seller_type"] == "individual"
    assert again["default", "S2"]["step_from"] == date(2026, 3, 22)
    assert again["pl_spzoo", "S1"] == before["pl_spzoo", "S1"]


def test_the_stages_are_counted_per_operator_and_country(ledger: Ledger) -> None:
    """Requested (S1), reminded twice (S2), blocked (S3, under a measure), and S4 with a request
    due (neither): per stage, of one operator, of one country."""
    run(
        ledger,
        date(2026, 5, 4),
        [
            state("S1", requested_on=REQUEST, requested_items="tin"),
            state("S2", **REMINDED),
            state("S3", country="PL", **BLOCKED),
            state("S4", request_due=REQUEST),
            state("S5", lacks=()),
        ],
    )
    counts = desk_stages_of(ledger, operator_ids=["default"])
    assert (counts.in_scope, counts.incomplete, counts.requested, counts.reminded_twice, counts.blocked) == (
        5,
        4,
        1,
        1,
        1,
    )
    pl = desk_stages_of(ledger, operator_ids=["default"], country="PL")
    assert (pl.in_scope, pl.incomplete, pl.requested, pl.reminded_twice, pl.blocked) == (1, 1, 0, 0, 1)
    assert desk_stages_of(ledger, operator_ids=["other"]) == desk_stages_of(ledger, operator_ids=[])


def test_the_action_filter_is_the_actions_due_on_the_day_of_the_run_or_the_next(ledger: Ledger) -> None:
    """S1's first reminder is due from 16 March: on 15 March it is S1's next action (not due), on
    16 March due. S2's notice is due and its cycle open (first reminder from 16 March): on 15
    March its next action is the notice, the reminder is not found; on 16 March both are due.
    S3 is under a measure with its TIN still missing: no next action."""
    run(
        ledger,
        REQUEST,
        [
            state("S1", requested_on=REQUEST, requested_items="tin"),
            state("S2", requested_on=REQUEST, requested_items="tin", notice_on=None),
            state("S3", **BLOCKED),
        ],
    )

    def found(day: date, action: str) -> list[str]:
        f = DeskFilter({"default": day}, action=action)
        sellers = [r.seller_id for r in desk_list(ledger, f, offset=0, limit=10)]
        assert desk_total(ledger, f) == len(sellers)
        return sellers

    assert found(date(2026, 3, 15), "reminder_1") == ["S1"]
    assert found(date(2026, 3, 16), "reminder_1") == ["S1", "S2"]
    assert found(date(2026, 3, 15), "pre_report_notice") == ["S2"]
    assert found(date(2026, 3, 15), "none") == ["S3"]
    [s2] = desk_list(ledger, DeskFilter({"default": date(2026, 3, 15)}, action="pre_report_notice"), offset=0, limit=1)
    assert s2.next() == ("pre_report_notice", REQUEST)
    assert [d.action for d in s2.due(date(2026, 3, 16))] == ["pre_report_notice", "reminder_1"]
    # each operator's rows as of its own latest run: pl_spzoo's S2 (notice due, reminder from 16
    # March) on 16 March has its reminder due; default's S2 on 15 March not
    run(
        ledger,
        date(2026, 3, 16),
        [state("S2", "pl_spzoo", requested_on=REQUEST, requested_items="tin", notice_on=None)],
        operator_id="pl_spzoo",
    )
    two = DeskFilter({"default": date(2026, 3, 15), "pl_spzoo": date(2026, 3, 16)}, action="reminder_1")
    assert [(r.operator_id, r.seller_id) for r in desk_whole(ledger, two)] == [("default", "S1"), ("pl_spzoo", "S2")]
    assert desk_total(ledger, two) == 2
    # an operator without a run, with or without an action: no row (no SQL error)
    for action in (None, "reminder_1", "none", "pre_report_notice"):
        nobody = DeskFilter({"default": date(2026, 3, 16)}, operator_id="no_such_operator", action=action)
        assert desk_total(ledger, nobody) == 0 and list(desk_whole(ledger, nobody)) == [], action
        assert desk_list(ledger, nobody, offset=0, limit=10) == [], action
    # the same as the state computed in Python (reporting.due_diligence.needs_attention)
    for day in (date(2026, 3, 15), date(2026, 3, 16), date(2026, 5, 4)):
        want = [
            (a.seller_id, a.next_action, a.next_date, a.due)
            for a in needs_attention(ledger, SETTINGS, day, operator_id="default")
        ]
        got = [
            (r.seller_id, *(r.next() or (None, None)), r.due(day))
            for r in desk_whole(ledger, DeskFilter({"default": day}))
        ]
        assert got == want, day


@pytest.mark.parametrize("sellers", [3, 4, 5])
def test_pages_of_the_list_in_the_order_of_operator_and_seller(ledger: Ledger, sellers: int) -> None:
    """Four a page: 3 sellers are one page; 4 exactly one page (no empty second); 5 two pages, the
    second with the fifth alone. The other operator's and the other country's are left out."""
    run(ledger, REQUEST, [state(f"S{n}", request_due=REQUEST) for n in range(sellers)] + [state("X", country="PL")])
    run(ledger, REQUEST, [state("S0", "pl_spzoo", request_due=REQUEST)], operator_id="pl_spzoo")
    f = DeskFilter({"default": REQUEST, "pl_spzoo": REQUEST}, operator_id="default", country="LT")
    assert desk_total(ledger, f) == sellers
    first = [r.seller_id for r in desk_list(ledger, f, offset=0, limit=4)]
    second = [r.seller_id for r in desk_list(ledger, f, offset=4, limit=4)]
    assert first == [f"S{n}" for n in range(min(sellers, 4))]
    assert second == [f"S{n}" for n in range(4, sellers)]
    both = DeskFilter({"default": REQUEST, "pl_spzoo": REQUEST}, country="LT")
    assert [(r.operator_id, r.seller_id) for r in desk_whole(ledger, both)][-2:] == [
        ("default", f"S{sellers - 1}"),
        ("pl_spzoo", "S0"),
    ]


def test_a_report_of_actions_writes_the_desk_rows_of_its_sellers(ledger: Ledger, tmp_path: Path) -> None:
    """The platform reports S1's first reminder sent on 16 March: S1's next step is the second
    reminder from 30 March; S2, not in the report, keeps its row."""
    from zoneinfo import ZoneInfo

    from reporting.due_diligence import mark_actions

    open_s = {"requested_on": REQUEST, "requested_items": "tin"}
    run(ledger, REQUEST, [state("S1", **open_s), state("S2", **open_s)])
    report = tmp_path / "sent.jsonl"
    report.write_text('{"seller_id": "S1", "action": "reminder_1", "at": "2026-03-16T09:00:00Z"}\n', encoding="utf-8")
    mark_actions(ledger, report, now=datetime(2026, 3, 16, 12, tzinfo=UTC), zone=ZoneInfo("Europe/Vilnius"))
    rows = desk(ledger)
    assert (
        rows["default", "S1"]["reminder_1_on"],
        rows["default", "S1"]["step"],
        rows["default", "S1"]["step_from"],
    ) == (
        date(2026, 3, 16),
        "reminder_2",
        date(2026, 3, 30),
    )
    assert rows["default", "S2"]["step"] == "reminder_1"


def test_the_desks_cycle_columns_are_the_ledgers() -> None:
    """One source: the desk's and the export's cycle columns come from the ledger's."""
    assert dd.CYCLE_COLUMNS is DUE_DILIGENCE_CYCLE_COLUMNS
    assert (
        tuple(c for c in DUE_DILIGENCE_CYCLE_COLUMNS if c not in ("notice_due", "request_due", "cycles"))
        == DESK_CYCLE_COLUMNS
    )
    assert desk_values(state("S9", lacks=()), SETTINGS) is None


def test_a_run_before_the_desk_leaves_it_to_the_next_run_which_fills_it_all(ledger: Ledger) -> None:
    """A latest run that wrote no desk (``desk`` NULL: a run before revision 0009) is named; the
    next run, though it changed no seller, computes every desk row of the operator."""
    from reporting.due_diligence import desk_not_filled

    run(ledger, REQUEST, [state("S1", request_due=REQUEST), state("S2", lacks=())])
    r, k = t.due_diligence_runs, t.due_diligence_desk
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(r).values(desk=None))
        conn.execute(sa.delete(k))
    assert desk_not_filled(ledger) == ["default"]
    run(ledger, date(2026, 3, 3), [])
    assert sorted(desk(ledger)) == [("default", "S1")]
    assert desk_not_filled(ledger) == []


#: Settings other than the defaults: the first reminder 7 days after the request, the second 20
#: days after the first, the measure ``close_account`` from day 90, a reporting operator since
#: 1 July 2025 (the request's latest day of a seller registered before it).
OTHER_SETTINGS = CycleSettings(
    measure="close_account", reminder_1_days=7, reminder_2_days=20, measure_day=90, reporting_since=date(2025, 7, 1)
)
#: The items of the grid: one missing, invalid, unverified, none lacking, one invalid and one missing.
GRID_ITEMS: tuple[dict[str, str], ...] = (
    {"tin": "missing"},
    {"tin": "invalid"},
    {"tin": "unverified"},
    {},
    {"tin": "invalid", "name": "missing"},
)
#: The cycles of the grid: none, a request due, requested, reminded once, twice, under each
#: measure, and a release due after a measure.
GRID_CYCLES: tuple[dict[str, Any], ...] = (
    {},
    {"request_due": REQUEST},
    REQUESTED,
    {**REQUESTED, "reminder_1_on": date(2026, 3, 16)},
    REMINDED,
    BLOCKED,
    {**REMINDED, "measure": "close_account", "measure_on": date(2026, 5, 2)},
    {**BLOCKED, "release_due": date(2026, 5, 20)},
)


def grid_state(
    n: int, items: dict[str, str], scope: str, notice_sent: bool, registered: date | None, cycle: dict
) -> dict:
    """A state row of the grid: its items' states (the others verified), ``needs`` the items
    missing or invalid, in scope or out (de minimis), the notice sent or due since 2 March, a
    registration before the reporting began or none, in LT or PL."""
    row = state(f"G{n:03d}", lacks=(), **cycle)
    for item, value in items.items():
        row[f"{item}_state"] = value
    row.update(
        needs=",".join(i for i in DUE_DILIGENCE_ITEMS if items.get(i) in ("missing", "invalid")),
        scope=scope,
        notice_on=REQUEST if notice_sent else None,
        registered_at=registered,
        country=("LT", "PL")[n % 2],
    )
    return row


@pytest.mark.parametrize("settings", [SETTINGS, OTHER_SETTINGS], ids=["default", "other"])
def test_the_desk_is_the_python_list_over_a_grid_of_states_on_three_days(
    ledger: Ledger, settings: CycleSettings
) -> None:
    """Every combination of the grid (items lacking, invalid, unverified or none; in scope or out;
    the notice sent or due; a registration before the reporting began or none; no cycle, a
    request due, requested, reminded once or twice, under either measure, a release due), written
    by a run with the default settings and with others: on 2 March (notices and requests due), 23
    March (the first reminder due under both) and 1 June (the measure due under both: day 61 and
    day 90), the desk's list (its next action and the actions due), every action's filter and the
    stage counts (all, per country) are those of the state computed in Python
    (``needs_attention``, ``stage_counts``)."""
    combos = [
        (items, scope, notice, registered, cycle)
        for items in GRID_ITEMS
        for scope in ("in_scope", "excluded:de_minimis")
        for notice in (True, False)
        for registered in (None, date(2025, 3, 1))
        for cycle in GRID_CYCLES
    ]
    rows = [grid_state(n, *combo) for n, combo in enumerate(combos)]
    run(ledger, REQUEST, rows, settings=settings)
    listed = desk(ledger)
    assert 0 < len(listed) < len(rows)  # some need no attention
    found_any: set[str] = set()
    for day in (REQUEST, date(2026, 3, 23), date(2026, 6, 1)):
        want = [
            (a.seller_id, a.next_action, a.next_date, a.due)
            for a in needs_attention(ledger, settings, day, operator_id="default")
        ]
        got = [
            (r.seller_id, *(r.next() or (None, None)), r.due(day))
            for r in desk_whole(ledger, DeskFilter({"default": day}))
        ]
        assert got == want, day
        assert desk_total(ledger, DeskFilter({"default": day})) == len(listed)
        for action in (*DUE_DILIGENCE_ACTIONS, "none"):
            f = DeskFilter({"default": day}, action=action)
            wanted = [a.seller_id for a in needs_attention(ledger, settings, day, operator_id="default", action=action)]
            assert [r.seller_id for r in desk_whole(ledger, f)] == wanted, (day, action)
            assert desk_total(ledger, f) == len(wanted), (day, action)
            if wanted:
                found_any.add(action)
    # the grid reaches every action (the measure of the settings only, and release)
    assert found_any == {*DUE_DILIGENCE_ACTIONS, "none"} - ({"withhold_payouts", "close_account"} - {settings.measure})
    for country in (None, "LT", "PL", "DE"):
        assert desk_stages_of(ledger, operator_ids=["default"], country=country) == stage_counts(
            ledger, operator_id="default", country=country
        ), country


def test_a_verification_rewrites_the_desk_rows_of_its_sellers(ledger: Ledger) -> None:
    """S1 lacks its name, its TIN unverified: verified invalid, its TIN is lacking too (invalid)
    and it is requested with the name. S2's TIN, invalid, is its only lack, its request due:
    verified, it needs no attention and leaves the desk. S3, not verified, keeps its row."""
    s1 = state("S1", lacks=("name",), request_due=REQUEST)
    s1["tin_state"] = "unverified"
    s2 = state("S2", lacks=(), request_due=REQUEST)
    s2.update(tin_state="invalid", needs="tin")
    run(ledger, REQUEST, [s1, s2, state("S3", request_due=REQUEST)])
    before = desk(ledger)
    assert before["default", "S1"]["items_unverified"] == "tin" and before["default", "S1"]["items_invalid"] == ""
    assert before["default", "S2"]["items_invalid"] == "tin" and before["default", "S2"]["next_action"] == "request"
    at = datetime(2026, 3, 3, 9, tzinfo=UTC)
    recorded = record_verifications(
        ledger,
        [
            dd.Verification("S1", "tin", "invalid", "vies:consultation 1", at),
            dd.Verification("S2", "tin", "verified", "vies:consultation 2", at),
        ],
        now=at,
        zone=ZoneInfo("UTC"),
    )
    assert recorded == 2
    after = desk(ledger)
    assert sorted(after) == [("default", "S1"), ("default", "S3")]
    assert (after["default", "S1"]["items_missing"], after["default", "S1"]["items_invalid"]) == ("name", "tin")
    assert after["default", "S1"]["items_unverified"] == ""
    [s1_row] = desk_list(ledger, DeskFilter({"default": REQUEST}, action="request"), offset=0, limit=1)
    assert s1_row.seller_id == "S1" and s1_row.due(REQUEST)[0].items_missing == ("name", "tin")
    assert after["default", "S3"] == before["default", "S3"]
