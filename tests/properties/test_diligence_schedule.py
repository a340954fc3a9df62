"""The daily run's set-based schedule is the cycle's rules, seller for seller.

The run advances every seller's request cycle and lists the actions due in two DuckDB queries
(``sql/due_diligence_cycle.sql``, ``sql/due_diligence_actions.sql``, through
:func:`reporting.due_diligence.run.schedule`). The recomputation here is the rules written one
seller at a time in Python (:func:`reporting.diligence_cycle.advance` and
:func:`~reporting.diligence_cycle.due_actions`): for random cycles (open or not, with reminders,
measures and releases at any distance from the request, sellers in and out of scope, pre-existing
or not) and random settings, both give the same cycle and the same lines of the feed, byte for
byte (the lines made from pieces, as json.dumps writes them).
A second property follows a platform that sends every action on the day it falls due: the
measure then always falls between day 60 and day 180 after the request.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.diligence_cycle import (
    FIRST_MEASURE_DAY,
    LAST_MEASURE_DAY,
    LEGAL_BASIS,
    REMINDER_2_LATEST_DAY,
    CycleSettings,
    SellerCycle,
    advance,
    due_actions,
    mark,
)
from reporting.due_diligence.feed import feed_line, feed_line_reference, feed_lines, feed_object
from reporting.due_diligence.run import macros, schedule
from reporting.vocabulary import DUE_DILIGENCE_ITEMS, MEASURES

EXAMPLES = int(os.environ.get("DAC7_FUZZ_EXAMPLES", "300"))
PROVE = settings(max_examples=EXAMPLES, deadline=None)
#: a DuckDB connection and two queries per example: half the examples of the pure property
PROVE_SQL = settings(max_examples=max(EXAMPLES // 2, 20), deadline=None)

ITEMS = list(DUE_DILIGENCE_ITEMS)


def ordered(items: list[str]) -> tuple[str, ...]:
    return tuple(i for i in ITEMS if i in items)


@st.composite
def cycle_settings(draw: st.DrawFn) -> CycleSettings:
    r1 = draw(st.integers(1, 120))
    r2 = draw(st.integers(1, REMINDER_2_LATEST_DAY - r1))
    return CycleSettings(
        measure=draw(st.sampled_from(MEASURES)),
        reminder_1_days=r1,
        reminder_2_days=r2,
        measure_day=draw(st.integers(FIRST_MEASURE_DAY, LAST_MEASURE_DAY)),
        reporting_since=draw(st.sampled_from([date(2023, 1, 1), date(2024, 7, 1), date(2025, 1, 1)])),
    )


@st.composite
def seller_cycles(draw: st.DrawFn, seller_id: str, today: date) -> SellerCycle:
    def before(days: int = 500) -> date:
        return today - timedelta(days=draw(st.integers(0, days)))

    def maybe(value: date) -> date | None:
        return value if draw(st.booleans()) else None

    needs = ordered(draw(st.lists(st.sampled_from(ITEMS), unique=True, max_size=4)))
    invalid = ordered([i for i in needs if draw(st.booleans())])
    c = SellerCycle(
        seller_id=seller_id,
        in_scope=draw(st.booleans()),
        needs=needs,
        invalid=invalid,
        registered_at=maybe(draw(st.dates(date(2021, 1, 1), today))),
        notice_due=maybe(before()),
        notice_on=maybe(before()),
        request_due=maybe(before()),
        cycles=draw(st.integers(0, 3)),
    )
    if not draw(st.booleans()):
        return c
    d0 = before(400)
    span = (today - d0).days
    items = ordered(draw(st.lists(st.sampled_from(ITEMS), unique=True, min_size=1, max_size=4)))
    c = replace(c, requested_on=d0, requested_items=items)
    if span < 1 or not draw(st.booleans()):
        return c
    rem1 = d0 + timedelta(days=draw(st.integers(1, span)))
    c = replace(c, reminder_1_on=rem1)
    if (today - rem1).days < 1 or not draw(st.booleans()):
        return c
    rem2 = rem1 + timedelta(days=draw(st.integers(1, (today - rem1).days)))
    c = replace(c, reminder_2_on=rem2)
    first = max(d0 + timedelta(days=FIRST_MEASURE_DAY), rem2 + timedelta(days=1))
    if first > today or not draw(st.booleans()):
        return c
    taken = first + timedelta(days=draw(st.integers(0, (today - first).days)))
    c = replace(c, measure=draw(st.sampled_from(MEASURES)), measure_on=taken)
    if draw(st.booleans()):
        c = replace(c, release_due=taken + timedelta(days=draw(st.integers(0, (today - taken).days))))
    return c


@st.composite
def cases(draw: st.DrawFn) -> tuple[date, CycleSettings, list[SellerCycle]]:
    today = draw(st.dates(date(2023, 3, 1), date(2027, 12, 31)))
    n = draw(st.integers(1, 25))
    return today, draw(cycle_settings()), [draw(seller_cycles(f"S{i:02d}", today)) for i in range(n)]


def cycle_in(cycles: list[SellerCycle]) -> pa.Table:
    def dates(name: str) -> pa.Array:
        return pa.array([getattr(c, name) for c in cycles], pa.date32())

    return pa.table(
        {
            "seller_id": pa.array([c.seller_id for c in cycles], pa.string()),
            "in_scope": pa.array([c.in_scope for c in cycles], pa.bool_()),
            "needs": pa.array([list(c.needs) for c in cycles], pa.list_(pa.string())),
            "invalid": pa.array([list(c.invalid) for c in cycles], pa.list_(pa.string())),
            "registered_at": dates("registered_at"),
            "notice_due": dates("notice_due"),
            "notice_on": dates("notice_on"),
            "request_due": dates("request_due"),
            "requested_on": dates("requested_on"),
            "requested_items": pa.array([list(c.requested_items) for c in cycles], pa.list_(pa.string())),
            "reminder_1_on": dates("reminder_1_on"),
            "reminder_2_on": dates("reminder_2_on"),
            "measure": pa.array([c.measure for c in cycles], pa.string()),
            "measure_on": dates("measure_on"),
            "release_due": dates("release_due"),
            "cycles": pa.array([c.cycles for c in cycles], pa.int32()),
        }
    )


def run_sql(today: date, cycle_settings: CycleSettings, cycles: list[SellerCycle]) -> tuple[dict[str, Any], list[str]]:
    con = duckdb.connect()
    try:
        macros(con)
        con.register("cycle_in", cycle_in(cycles))
        schedule(con, today, cycle_settings)
        names = [d[0] for d in con.execute("select * from cycle limit 0").description or ()]
        advanced = {
            r[0]: dict(zip(names, r, strict=True))
            for r in con.execute("select * from cycle order by seller_id").fetchall()
        }
        lines = [line + "\n" for batch in feed_lines(con, "default") for line in batch]
    finally:
        con.close()
    return advanced, lines


@PROVE_SQL
@given(cases())
def test_the_sql_schedule_is_the_rules_seller_for_seller(case: tuple[date, CycleSettings, list[SellerCycle]]) -> None:
    today, cycle_settings, cycles = case
    advanced, lines = run_sql(today, cycle_settings, cycles)
    expected_lines: list[str] = []
    for c in cycles:
        after = advance(c, today)
        row = advanced[c.seller_id]
        assert {
            "notice_due": row["notice_due"],
            "notice_on": row["notice_on"],
            "request_due": row["request_due"],
            "requested_on": row["requested_on"],
            "requested_items": tuple(row["requested_items"]),
            "reminder_1_on": row["reminder_1_on"],
            "reminder_2_on": row["reminder_2_on"],
            "measure": row["measure"],
            "measure_on": row["measure_on"],
            "release_due": row["release_due"],
            "cycles": row["cycles"],
            "outstanding": tuple(row["outstanding"]),
        } == {
            "notice_due": after.notice_due,
            "notice_on": after.notice_on,
            "request_due": after.request_due,
            "requested_on": after.requested_on,
            "requested_items": after.requested_items,
            "reminder_1_on": after.reminder_1_on,
            "reminder_2_on": after.reminder_2_on,
            "measure": after.measure,
            "measure_on": after.measure_on,
            "release_due": after.release_due,
            "cycles": after.cycles,
            "outstanding": after.outstanding,
        }, c
        assert row["closing"] == (c.requested_on is not None and after.requested_on is None)
        expected_lines += [
            feed_line(a.feed_object("default"), "default") for a in due_actions(after, cycle_settings, today)
        ]
    assert lines == expected_lines


@PROVE
@given(
    cycle_settings(),
    st.dates(date(2023, 1, 1), date(2027, 6, 30)),
    st.lists(st.integers(0, 30), min_size=3, max_size=3),
)
def test_a_platform_acting_on_each_due_day_measures_within_day_60_to_180(
    cycle_settings: CycleSettings, start: date, delays: list[int]
) -> None:
    """The platform sends the request on its due day, then each reminder on its due day (or up to
    ``delays`` days late while the law leaves time), and takes the measure on its first due day:
    it falls in the window of PStTG § 23, and each step comes after the one before."""
    c = advance(SellerCycle("S1", True, needs=("tin",), notice_on=start), start)
    c = mark(c, "request", start)
    day = start
    steps: list[tuple[str, date]] = []
    while c.measure_on is None:
        due = [a for a in due_actions(advance(c, day), cycle_settings, day) if a.action != "pre_report_notice"]
        if due:
            action = due[0]
            late = delays[len(steps)] if action.action in ("reminder_1", "reminder_2") else 0
            on = min(day + timedelta(days=late), action.latest_date) if late else day
            c = mark(c, action.action, on)
            steps.append((action.action, on))
            day = on
        day += timedelta(days=1)
        assert day <= start + timedelta(days=LAST_MEASURE_DAY + 1), steps
    assert [a for a, _ in steps] == ["reminder_1", "reminder_2", cycle_settings.measure]
    measure_day = (c.measure_on - start).days if c.measure_on else -1
    assert FIRST_MEASURE_DAY <= measure_day <= LAST_MEASURE_DAY, steps
    assert measure_day >= cycle_settings.measure_day
    assert steps[0][1] < steps[1][1] < steps[2][1]


@PROVE
@given(
    st.text(min_size=1, max_size=40),
    st.sampled_from(["default", "pl_spzoo"]),
    st.sampled_from(list(LEGAL_BASIS)),
    st.lists(st.sampled_from(ITEMS), unique=True),
    st.one_of(st.none(), st.dates(date(2023, 1, 1), date(2030, 12, 31))),
    st.one_of(st.none(), st.integers(0, 400)),
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), st.sampled_from(MEASURES)),
)
def test_a_feed_line_is_the_json_of_its_object(
    seller_id: str,
    operator_id: str,
    action: str,
    items: list[str],
    request_date: date | None,
    day: int | None,
    overdue: bool,
    final: bool,
    measure: str | None,
) -> None:
    """The feed's lines are put together from pieces for speed, in Python and in the run's SQL
    (``sql/due_diligence_feed.sql``): byte for byte what json.dumps writes of the object, whatever
    the seller's id holds (quotes, back-slashes, control characters, any script)."""
    row = {
        "seller_id": seller_id,
        "action": action,
        "items_missing": items,
        "items_invalid": items[:1],
        "due_date": date(2026, 3, 2),
        "latest_date": date(2026, 12, 31),
        "date": date(2026, 3, 3),
        "request_date": request_date,
        "day": day,
        "overdue": overdue,
        "reaches_day_180": final,
        "measure": measure,
    }
    line = feed_line(row, operator_id)
    assert line == feed_line_reference(row, operator_id)
    assert json.loads(line) == feed_object(row, operator_id)
    con = duckdb.connect()
    try:
        macros(con)
        types = {"items_missing": "varchar[]", "items_invalid": "varchar[]", "day": "integer", "overdue": "boolean"}
        types |= {"reaches_day_180": "boolean", "seller_id": "varchar", "action": "varchar", "measure": "varchar"}
        columns = ", ".join(f"?::{types.get(k, 'date')} as {k}" for k in row)
        con.execute(f"create table actions as select {columns}, 1 as action_rank", list(row.values()))
        [[sql_line]] = list(feed_lines(con, operator_id))
    finally:
        con.close()
    assert sql_line + "\n" == line
