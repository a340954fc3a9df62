"""The daily due-diligence run on real databases: a source built by hand (SQLite; PostgreSQL and
MariaDB read the same), the ledger on SQLite and PostgreSQL.

One seller's full cycle on fixed dates (request, two reminders, the measure in its window, the
data arriving, its verification through the adapters' seam, the release), a seller lacking only
its financial account (never asked, never blocked), the feed (owner-only, the same bytes on a
rerun of the day), the platform's reports (every bad line named, nothing half-applied, the same
report twice harmless), the scope (the rules' exclusions), the 36 months a verification holds,
the retention at its boundary, a group's operators, and the compliance view's queries agreeing
with the feed.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config

from reporting.cli import main
from reporting.config import load_config
from reporting.diligence_cycle import CycleSettings
from reporting.due_diligence import (
    DueDiligenceRunError,
    StageCounts,
    Verification,
    attention_countries,
    expire_history,
    incomplete_sellers,
    last_run_dates,
    mark_actions,
    needs_attention,
    read_feed,
    record_verification,
    record_verifications,
    run_due_diligence,
    seller_history,
    seller_state,
    seller_states,
    stage_counts,
)
from reporting.ledger import DueDiligenceReportError, LedgerLockedError, default_ledger_url, open_ledger
from reporting.ledger import schema as t
from reporting.ledger.due_diligence import due_today
from reporting.source import DUE_DILIGENCE_COLUMNS, make_engine

VILNIUS = ZoneInfo("Europe/Vilnius")
REQUEST_DAY = date(2026, 3, 2)


def day(n: int) -> date:
    """The n-th day after the request (its day is day 0)."""
    return REQUEST_DAY + timedelta(days=n)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return default_ledger_url(tmp_path / "ledger")
    return str(request.getfixturevalue("pg_url"))


@dataclass
class Desk:
    """The operator's side: the daily runs and the platform's reports, on fixed dates."""

    tmp: Path
    source: str
    ledger: str
    extra: str = ""
    config_kw: dict[str, Any] = field(default_factory=dict)
    runs: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)

    @property
    def config(self) -> Any:
        return load_config(write_config(self.tmp / "dac7.toml", extra=self.extra, **self.config_kw))

    def run(self, today: date, operator_id: str = "default") -> list[dict[str, Any]]:
        with open_ledger(self.ledger) as led:
            result = run_due_diligence(
                self.config,
                source_url=self.source,
                ledger=led,
                today=today,
                out_dir=self.tmp / "out",
                work_root=self.tmp / "staging",
                now=datetime.combine(today, time(4), UTC),
                run_id=f"run-{today}",
                operator_id=operator_id,
            )
        self.runs.append(result)
        return read_feed(Path(result.feed))

    def due(self, today: date) -> dict[str, list[str]]:
        """seller -> the actions due on ``today``, after a run of that day."""
        out: dict[str, list[str]] = {}
        for line in self.run(today):
            out.setdefault(line["seller_id"], []).append(line["action"])
        return out

    def mark(self, *lines: tuple[str, str, date], name: str = "sent.jsonl") -> Any:
        """The platform reports (seller, action, day) sent at 09:00 UTC of that day."""
        path = self.tmp / name
        path.write_text(
            "".join(
                json.dumps({"seller_id": s, "action": a, "at": f"{d.isoformat()}T09:00:00Z"}) + "\n"
                for s, a, d in lines
            ),
            encoding="utf-8",
        )
        latest = max(d for _, _, d in lines)
        with open_ledger(self.ledger) as led:
            return mark_actions(led, path, now=datetime.combine(latest, time(12), UTC), zone=VILNIUS)

    def state(self, seller_id: str) -> Any:
        with open_ledger(self.ledger) as led:
            return seller_state(led, seller_id)

    def history(self, seller_id: str) -> list[Any]:
        with open_ledger(self.ledger) as led:
            return seller_history(led, seller_id)


def written(m: Marketplace, url: str) -> str:
    """The marketplace written to ``url``, each seller row with the optional columns the
    due-diligence run reads (None where a test does not set them)."""
    for row in m.rows["sellers"]:
        for column in DUE_DILIGENCE_COLUMNS["sellers"]:
            row.setdefault(column, None)
    return m.write(url)


def marketplace() -> Marketplace:
    m = Marketplace()
    m.seller("S1", tin=None)  # an individual without a TIN: it is requested
    m.seller("S2")  # everything but a financial account: nothing is requested
    m.tx("S1", "2026-01-15 10:00:00", 50_000, activity="personal_services")
    m.tx("S2", "2026-01-20 10:00:00", 80_000, activity="personal_services")
    return m


@pytest.fixture
def desk(tmp_path: Path, ledger_url: str) -> Desk:
    source = written(marketplace(), f"sqlite:///{tmp_path / 'marketplace.db'}")
    return Desk(tmp_path, source, ledger_url)


def add_tin(source: str, seller_id: str, tin: str = "39001010000") -> None:
    engine = make_engine(source)
    with engine.begin() as conn:
        conn.execute(
            sa.text("insert into seller_tins (seller_id, tin, issued_by) values (:s, :t, 'LT')"),
            {"s": seller_id, "t": tin},
        )
    engine.dispose()


def test_one_sellers_full_cycle_on_fixed_dates(desk: Desk) -> None:
    """Request, two reminders, a measure between day 60 and day 180, the data arriving, its
    verification, the release; the seller lacking only its financial account is never asked."""
    feed = desk.run(REQUEST_DAY)
    s1 = [x for x in feed if x["seller_id"] == "S1"]
    assert [(x["action"], x["items_missing"], x["due_date"], x["latest_date"]) for x in s1] == [
        ("pre_report_notice", [], "2026-03-02", "2026-12-31"),
        ("request", ["tin"], "2026-03-02", "2026-12-31"),
    ]
    assert s1[1]["legal_basis"] == "PStTG §§ 17, 18(1), 20(1)" and s1[1]["operator_id"] == "default"
    assert [x["action"] for x in feed if x["seller_id"] == "S2"] == ["pre_report_notice"]
    desk.mark(
        ("S1", "pre_report_notice", REQUEST_DAY),
        ("S1", "request", REQUEST_DAY),
        ("S2", "pre_report_notice", REQUEST_DAY),
    )

    assert desk.due(day(13)) == {}
    [reminder] = desk.run(day(14))
    assert (reminder["action"], reminder["request_date"], reminder["day"], reminder["latest_date"]) == (
        "reminder_1",
        "2026-03-02",
        14,
        day(178).isoformat(),
    )
    desk.mark(("S1", "reminder_1", day(14)))
    assert desk.due(day(28)) == {"S1": ["reminder_2"]}
    desk.mark(("S1", "reminder_2", day(28)))
    assert desk.due(day(59)) == {}
    assert desk.due(day(60)) == {}  # [due_diligence] measure_day defaults to 61
    [measure] = desk.run(day(61))
    assert (measure["action"], measure["day"], measure["due_date"], measure["latest_date"]) == (
        "withhold_payouts",
        61,
        "2026-05-02",
        "2026-08-29",
    )
    assert measure["items_missing"] == ["tin"] and measure["legal_basis"] == "PStTG § 23 sentence 2 no. 2"
    desk.mark(("S1", "withhold_payouts", day(61)))
    assert desk.due(day(70)) == {}
    with open_ledger(desk.ledger) as led:
        assert stage_counts(led) == stage_counts(led, operator_id="default")
        counts = stage_counts(led)
    assert (counts.in_scope, counts.incomplete, counts.blocked, counts.released) == (2, 1, 1, 0)

    # the TIN arrives on day 90: the release is due that day, and the data's arrival is recorded
    add_tin(desk.source, "S1")
    [release] = desk.run(day(90))
    assert (release["action"], release["measure"], release["due_date"], release["latest_date"]) == (
        "release",
        "withhold_payouts",
        "2026-05-31",
        "2026-05-31",
    )
    assert desk.state("S1").items["tin"] == "unverified"
    # a verification adapter confirms it the same day, through the seam
    with open_ledger(desk.ledger) as led:
        record_verification(
            led,
            "S1",
            "tin",
            "verified",
            "tin-check:consultation 42",
            datetime(2026, 5, 31, 8, tzinfo=UTC),
            zone=VILNIUS,
        )
    desk.mark(("S1", "release", day(90)))
    assert desk.due(day(91)) == {}
    state = desk.state("S1")
    assert (state.items["tin"], state.checked["tin"], state.cycle.requested_on, state.cycle.cycles) == (
        "verified",
        date(2026, 5, 31),
        None,
        1,
    )
    assert [(e.kind, e.detail.get("on")) for e in desk.history("S1")] == [
        ("items", None),  # the first run: its items and its scope
        ("pre_report_notice", "2026-03-02"),
        ("request", "2026-03-02"),
        ("reminder_1", "2026-03-16"),
        ("reminder_2", "2026-03-30"),
        ("withhold_payouts", "2026-05-02"),
        ("items", None),
        ("data_received", None),
        ("verification", None),
        ("release", "2026-05-31"),
    ]
    history = desk.history("S1")
    # with a TIN, the place of birth is no longer asked of an individual (PStTG § 14(2) Nr. 3)
    assert history[0].detail["scope"] == "in_scope" and history[0].detail["changed"]["tin"] == [None, "missing"]
    assert history[6].detail["changed"] == {
        "tin": ["missing", "unverified"],
        "birth_place": ["unverified", "not_applicable"],
    }
    assert history[8].detail == {"item": "tin", "state": "verified", "was": "unverified"}
    assert history[8].source == "tin-check:consultation 42"
    assert history[9].detail["measure"] == "withhold_payouts"
    with open_ledger(desk.ledger) as led:
        counts = stage_counts(led)
    assert (counts.incomplete, counts.blocked, counts.released) == (0, 0, 1)
    # S2 (no financial account) was never asked or blocked
    assert [e.kind for e in desk.history("S2")] == ["items", "pre_report_notice"]


def test_a_seller_lacking_only_its_financial_account_is_never_blocked(desk: Desk) -> None:
    """The platform acts on everything due, every fortnight for a year: S2 (no account row in the
    source) gets the notice and nothing else."""
    seen: dict[str, set[str]] = {}
    today = REQUEST_DAY
    while today < REQUEST_DAY + timedelta(days=300):
        feed = desk.run(today)
        for x in feed:
            seen.setdefault(x["seller_id"], set()).add(x["action"])
        if feed:
            desk.mark(*((x["seller_id"], x["action"], today) for x in feed), name=f"sent-{today}.jsonl")
        today += timedelta(days=14)
    assert seen["S2"] == {"pre_report_notice"}
    assert desk.state("S2").items == {
        "name": "unverified",
        "primary_address": "unverified",
        "tin": "unverified",
        "birth_place": "not_applicable",
        "birth_date": "unverified",
        "vat": "not_applicable",
        "business_registration": "not_applicable",
        "permanent_establishment": "not_applicable",
        "property_address": "not_applicable",
        "land_registration": "not_applicable",
    }
    assert seen["S1"] == {"pre_report_notice", "request", "reminder_1", "reminder_2", "withhold_payouts"}


def test_the_feed_is_owner_only_the_same_bytes_on_a_rerun_and_never_moved_back(desk: Desk) -> None:
    desk.run(REQUEST_DAY)
    feed = Path(desk.runs[-1].feed)
    assert feed == desk.tmp / "out" / "due_diligence" / "actions.jsonl"
    assert stat.S_IMODE(feed.stat().st_mode) == 0o600
    first = feed.read_bytes()
    assert desk.runs[-1].changed == 2 and desk.runs[-1].events == 2
    desk.run(REQUEST_DAY)  # the same day again: the same feed, nothing written
    assert feed.read_bytes() == first
    assert (desk.runs[-1].changed, desk.runs[-1].events) == (0, 0)
    assert not list(feed.parent.glob(".*tmp*")) and not list((desk.tmp / "staging").iterdir())
    lines = first.decode("utf-8").splitlines()
    assert [json.loads(x)["seller_id"] for x in lines] == sorted(json.loads(x)["seller_id"] for x in lines)
    assert list(json.loads(lines[0])) == [
        "seller_id",
        "operator_id",
        "action",
        "items_missing",
        "items_invalid",
        "due_date",
        "latest_date",
        "legal_basis",
        "date",
        "request_date",
        "day",
        "overdue",
        "reaches_day_180",
        "measure",
    ]
    desk.run(day(5))
    with pytest.raises(DueDiligenceRunError, match="computed for 2026-03-07 already; a run for 2026-03-02"):
        desk.run(REQUEST_DAY)
    with open_ledger(desk.ledger) as led, led.engine.connect() as conn:
        runs = conn.execute(sa.select(t.due_diligence_runs).order_by(t.due_diligence_runs.c.run_date)).all()
    assert [(r.run_date, r.sellers, r.in_scope) for r in runs] == [(REQUEST_DAY, 2, 2), (day(5), 2, 2)]
    assert runs[0].feed_sha256 and json.loads(runs[0].actions) == {"pre_report_notice": 2, "request": 1}


GOOD = {"seller_id": "S1", "action": "pre_report_notice", "at": "2026-03-02T09:00:00Z"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "sent.jsonl line 2: not a JSON object"),
        ('["S1", "request"]', "line 2: not a JSON object"),
        ({"seller_id": "S1", "action": "request", "at": "2026-03-02T09:00:00Z", "note": "x"}, "unknown field"),
        ({"action": "request", "at": "2026-03-02T09:00:00Z"}, "line 2: field seller_id must be"),
        ({"seller_id": "S1", "action": "block", "at": "2026-03-02T09:00:00Z"}, "line 2: field action is 'block'"),
        ({"seller_id": "S1", "action": "request"}, "line 2: field at is missing"),
        ({"seller_id": "S1", "action": "request", "at": "2026-03-02 09:00"}, "line 2: field at .* has no offset"),
        ({"seller_id": "S1", "action": "request", "at": "yesterday"}, "line 2: field at 'yesterday' is not ISO 8601"),
        (
            {"seller_id": "S1", "action": "request", "at": "2026-03-09T09:00:00Z"},
            "line 2: field at .* is in the future",
        ),
        ({"seller_id": "S9", "action": "request", "at": "2026-03-02T09:00:00Z"}, "line 2: seller S9 has no due-dil"),
        (
            {"seller_id": "S1", "action": "request", "at": "2026-03-02T09:00:00Z", "operator_id": "Other"},
            "line 2: field operator_id must be",
        ),
        (
            {"seller_id": "S1", "action": "reminder_1", "at": "2026-03-02T09:00:00Z"},
            "line 2: seller S1, action reminder_1 on 2026-03-02: no request is open",
        ),
        (
            {"seller_id": "S2", "action": "request", "at": "2026-03-02T09:00:00Z"},
            "seller S2, action request on 2026-03-02: nothing is missing or invalid",
        ),
    ],
)
def test_a_bad_report_line_is_named_and_nothing_is_applied(desk: Desk, line: Any, message: str) -> None:
    desk.run(REQUEST_DAY)
    path = desk.tmp / "sent.jsonl"
    text = line if isinstance(line, str) else json.dumps(line)
    path.write_text(json.dumps(GOOD) + "\n" + text + "\n", encoding="utf-8")
    with open_ledger(desk.ledger) as led, pytest.raises(DueDiligenceReportError, match=message):
        mark_actions(led, path, now=datetime(2026, 3, 2, 12, tzinfo=UTC), zone=VILNIUS)
    assert desk.state("S1").cycle.notice_on is None  # the good first line was not applied either
    assert [e.kind for e in desk.history("S1")] == ["items"]


def test_the_same_report_twice_changes_nothing_and_the_cli_says_what_it_did(
    desk: Desk, capsys: pytest.CaptureFixture[str]
) -> None:
    desk.run(REQUEST_DAY)
    path = desk.tmp / "sent.jsonl"
    path.write_text(
        json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "action": "request", "reference": "msg-4711"}) + "\n",
        encoding="utf-8",
    )
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    with open_ledger(desk.ledger) as led:
        first = mark_actions(led, path, now=now, zone=VILNIUS)
        again = mark_actions(led, path, now=now, zone=VILNIUS)
    assert (first.recorded, first.repeated, again.recorded, again.repeated) == (2, 0, 0, 2)
    request = [e for e in desk.history("S1") if e.kind == "request"]
    assert len(request) == 1 and request[0].detail == {"on": "2026-03-02", "items": ["tin"], "reference": "msg-4711"}
    write_config(desk.tmp / "dac7.toml")
    args = [
        "due-diligence",
        "mark",
        "--file",
        str(path),
        "--ledger",
        desk.ledger,
        "--config",
        str(desk.tmp / "dac7.toml"),
    ]
    assert main(args) == 0
    assert "2 line(s); 0 action(s) recorded (none new); 2 already recorded" in capsys.readouterr().out
    path.write_text('{"seller_id": "S1"}\n', encoding="utf-8")
    assert main(args) == 2
    assert "sent.jsonl line 1: field action is None" in capsys.readouterr().err


def test_a_run_or_report_waits_for_the_lock_of_another(desk: Desk) -> None:
    desk.run(REQUEST_DAY)
    path = desk.tmp / "sent.jsonl"
    path.write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    with open_ledger(desk.ledger) as led, led.due_diligence_lock("default", holder="run-elsewhere"):
        with (
            open_ledger(desk.ledger) as other,
            pytest.raises(LedgerLockedError, match="due-diligence state of operator default"),
        ):
            mark_actions(other, path, now=datetime(2026, 3, 2, 12, tzinfo=UTC), zone=VILNIUS)
        with pytest.raises(LedgerLockedError, match="run-elsewhere"):
            desk.run(day(1))


def test_an_invalid_value_is_requested_and_a_verification_holds_36_months(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1", vat_id="LT100000000011")
    m.tx("S1", "2023-01-10 10:00:00", 80_000, activity="personal_services")
    m.tx("S1", "2026-01-10 10:00:00", 80_000, activity="personal_services")
    desk = Desk(tmp_path, written(m, f"sqlite:///{tmp_path / 'm.db'}"), default_ledger_url(tmp_path / "l"))
    desk.run(date(2023, 3, 10))
    with open_ledger(desk.ledger) as led:
        record_verifications(
            led,
            [
                Verification(
                    "S1", "vat", "invalid", "vies:consultation WAPIAAAA", datetime(2023, 3, 10, 10, tzinfo=UTC)
                ),
                Verification("S1", "tin", "verified", "tin-check", datetime(2023, 3, 15, 10, tzinfo=UTC)),
            ],
            now=datetime(2023, 3, 15, 12, tzinfo=UTC),
            zone=VILNIUS,
        )
    [request] = [x for x in desk.run(date(2023, 3, 16)) if x["action"] == "request"]
    assert (request["items_missing"], request["items_invalid"]) == (["vat"], ["vat"])
    assert desk.state("S1").checked["tin"] == date(2023, 3, 15)
    # 36 months later the verification still holds; the day after it is due again
    desk.run(date(2026, 3, 15))
    assert desk.state("S1").items["tin"] == "verified"
    desk.run(date(2026, 3, 16))
    state = desk.state("S1")
    assert (state.items["tin"], state.checked["tin"]) == ("unverified", None)
    [expiry] = [e for e in desk.history("S1") if e.kind == "items" and e.detail["expired"]]
    assert expiry.detail == {"changed": {"tin": ["verified", "unverified"]}, "expired": ["tin"]}
    # the invalid VAT number, changed in the source, is unverified again: its request's cycle closes
    engine = make_engine(desk.source)
    with engine.begin() as conn:
        conn.execute(sa.text("update sellers set vat_id = 'LT100000000022' where seller_id = 'S1'"))
    engine.dispose()
    desk.run(date(2026, 3, 17))
    assert desk.state("S1").items["vat"] == "unverified" and desk.state("S1").needs == ()
    with open_ledger(desk.ledger) as led:
        for bad, message in [
            (Verification("S9", "tin", "verified", "x", datetime(2026, 3, 17, tzinfo=UTC)), "no due-diligence state"),
            (
                Verification("S1", "iban", "verified", "x", datetime(2026, 3, 17, tzinfo=UTC)),
                "not a due-diligence item",
            ),
            (
                Verification("S1", "tin", "checked", "x", datetime(2026, 3, 17, tzinfo=UTC)),
                "expected verified or invalid",
            ),
            (Verification("S1", "birth_place", "verified", "x", datetime(2026, 3, 17, tzinfo=UTC)), "not_applicable"),
            (Verification("S1", "tin", "verified", "", datetime(2026, 3, 17, tzinfo=UTC)), "must name the adapter"),
            (Verification("S1", "tin", "verified", "x", datetime(2026, 3, 18, tzinfo=UTC)), "in the future"),
        ]:
            with pytest.raises(DueDiligenceReportError, match=message):
                record_verifications(led, [bad], now=datetime(2026, 3, 17, 12, tzinfo=UTC), zone=VILNIUS)


def scope_marketplace() -> Marketplace:
    m = Marketplace()
    for sid in ("GOV", "LISTED", "DM29", "DM30", "DM2000", "DMFX", "DMFX2", "BIGENT", "BIGIND", "SERV", "OLD", "BOTH"):
        m.seller(sid, seller_type="entity" if sid in ("GOV", "LISTED", "BIGENT") else "individual")
    m.rows["sellers"][0]["is_governmental"] = True
    m.rows["sellers"][1]["is_listed"] = True
    m.tx("GOV", "2026-02-01 10:00:00", 500_000, activity="personal_services")
    m.tx("LISTED", "2026-02-01 10:00:00", 500_000, activity="personal_services")
    m.sales("DM29", 29, 6896, start="2026-02-01 10:00:00")  # 29 sales, EUR 1,999.84: excluded
    m.sales("DM30", 30, 100, start="2026-02-01 10:00:00")  # the 30th sale: in scope
    m.sales("DM2000", 1, 200_001, start="2026-02-01 10:00:00")  # EUR 2,000.01: in scope
    m.rate("USD", "2026-01-30", "1.25")
    m.sales("DMFX", 2, 50_000, start="2026-02-01 10:00:00")  # EUR 1,000 ...
    m.sales("DMFX", 1, 125_000, start="2026-02-02 10:00:00", currency="USD")  # ... + USD 1,250 = EUR 2,000
    m.sales("DMFX2", 2, 50_000, start="2026-02-01 10:00:00")
    m.sales("DMFX2", 1, 125_001, start="2026-02-02 10:00:00", currency="USD")  # EUR 2,000.0008: in scope
    # an entity's two flats at one address, of two owners, 1,001 rentals each: DAC7 keeps one
    # owner's units together only (PStTG § 6(7)), so neither listing exceeds 2,000 (as the filing)
    m.seller("TWOOWNERS", seller_type="entity")
    for listing, owner in (("T1", "OWNER-A"), ("T2", "OWNER-B")):
        m.listing(listing, "TWOOWNERS", address_street="Main St", address_building="7", owner_id=owner)
        for i in range(1001):
            m.tx(
                "TWOOWNERS",
                f"2026-02-{1 + i % 27:02d} 10:00:00",
                1000,
                activity="immovable_property",
                listing_id=listing,
            )
    m.listing("L1", "BIGENT", owner_id=None)
    m.listing("L2", "BIGIND", owner_id=None)
    for sid, listing in (("BIGENT", "L1"), ("BIGIND", "L2")):
        for i in range(2001):
            m.tx(sid, f"2026-02-{1 + i % 27:02d} 10:00:00", 1000, activity="immovable_property", listing_id=listing)
    m.tx("SERV", "2026-02-01 10:00:00", 100, activity="personal_services")
    m.tx("OLD", "2025-06-01 10:00:00", 100_000, activity="personal_services")  # last year: not active
    t1 = m.tx("BOTH", "2026-02-01 10:00:00", 300_000)
    m.refund(t1, "2026-02-10 10:00:00", 250_000)  # EUR 3,000 paid, 2,500 refunded: EUR 500 net, excluded
    return m


def test_the_scope_is_the_rules_exclusions(tmp_path: Path) -> None:
    desk = Desk(
        tmp_path, written(scope_marketplace(), f"sqlite:///{tmp_path / 'm.db'}"), default_ledger_url(tmp_path / "l")
    )
    desk.run(date(2026, 3, 1))
    scopes = {s: desk.state(s).scope for s in ("GOV", "LISTED", "DM29", "DM30", "DM2000", "DMFX", "DMFX2")}
    scopes |= {s: desk.state(s).scope for s in ("BIGENT", "BIGIND", "SERV", "BOTH", "TWOOWNERS")}
    assert scopes == {
        "GOV": "excluded:governmental",
        "LISTED": "excluded:listed",
        "DM29": "excluded:de_minimis",
        "DM30": "in_scope",
        "DM2000": "in_scope",
        "DMFX": "excluded:de_minimis",  # several currencies: the rules' own test, in Python
        "DMFX2": "in_scope",
        "BIGENT": "excluded_listing:over_2000_rentals",
        "BIGIND": "in_scope",  # the listing exclusion is for entities
        "TWOOWNERS": "in_scope",  # two owners' listings, not one of 2,002 rentals
        "SERV": "in_scope",  # services have no threshold
        "BOTH": "excluded:de_minimis",  # refunds are netted, as the filing nets them
    }
    assert desk.state("OLD") is None  # not active this year: never in the state
    assert desk.state("BIGIND").items["property_address"] == "unverified"
    assert desk.state("BIGIND").items["land_registration"] == "not_applicable"


def test_the_german_reading_excludes_less_than_eur_2000(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("AT2000")
    m.sales("AT2000", 1, 200_000, start="2026-02-01 10:00:00")  # exactly EUR 2,000.00
    source = written(m, f"sqlite:///{tmp_path / 'm.db'}")
    eu = Desk(tmp_path / "eu", source, default_ledger_url(tmp_path / "eu"))
    eu.run(date(2026, 3, 1))
    assert eu.state("AT2000").scope == "excluded:de_minimis"  # "did not exceed"
    de = Desk(
        tmp_path / "de",
        source,
        default_ledger_url(tmp_path / "de"),
        config_kw={"filing_state": "DE", "nexus": "RPONEX5"},
    )
    de.run(date(2026, 3, 1))
    assert de.state("AT2000").scope == "in_scope"  # PStTG § 4(5) Nr. 4: "weniger als 2 000 Euro"


def test_items_follow_the_source_contract(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("ENT", seller_type="entity", business_registration_number=None, tin=None, tin_not_issued=True)
    m.pe("ENT", "DE")
    m.seller("ENT2", seller_type="entity", business_registration_number=None, business_registration_not_issued=True)
    m.seller("IND", tin=None, birth_city=None, address_city=None, registered_at=date(2022, 5, 1))
    m.seller("RENT")
    m.listing("L1", "RENT", address_city=None, land_registration_number="LRN-1")
    for sid in ("ENT", "ENT2", "IND"):
        m.tx(sid, "2026-02-01 10:00:00", 100_000, activity="personal_services")
    m.tx("RENT", "2026-02-01 10:00:00", 100_000, activity="immovable_property", listing_id="L1")
    desk = Desk(tmp_path, written(m, f"sqlite:///{tmp_path / 'm.db'}"), default_ledger_url(tmp_path / "l"))
    feed = desk.run(date(2026, 3, 1))
    requests = {x["seller_id"]: (x["items_missing"], x["latest_date"]) for x in feed if x["action"] == "request"}
    assert requests == {
        "ENT": (["business_registration"], "2026-12-31"),  # no TIN issued (§ 17(4)): not asked
        "IND": (["primary_address", "tin", "birth_place"], "2026-12-31"),
        "RENT": (["property_address"], "2026-12-31"),
    }
    ent = desk.state("ENT").items
    assert (ent["tin"], ent["permanent_establishment"], ent["birth_date"]) == (
        "not_applicable",
        "unverified",
        "not_applicable",
    )
    assert desk.state("ENT2").items["business_registration"] == "not_applicable"
    assert desk.state("RENT").items["land_registration"] == "unverified"
    assert desk.state("IND").cycle.registered_at == date(2022, 5, 1)


def test_a_pre_existing_seller_has_until_the_end_of_the_second_period(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("OLD", tin=None, registered_at=date(2022, 5, 1))
    m.seller("NEW", tin=None, registered_at=date(2023, 1, 2))
    for sid in ("OLD", "NEW"):
        m.tx(sid, "2023-02-01 10:00:00", 100_000, activity="personal_services")
    desk = Desk(tmp_path, written(m, f"sqlite:///{tmp_path / 'm.db'}"), default_ledger_url(tmp_path / "l"))
    feed = desk.run(date(2023, 3, 1))
    assert {x["seller_id"]: x["latest_date"] for x in feed if x["action"] == "request"} == {
        "OLD": "2024-12-31",
        "NEW": "2023-12-31",
    }


def test_the_retention_deletes_the_history_at_its_boundary(desk: Desk) -> None:
    desk.run(REQUEST_DAY)
    desk.mark(("S1", "pre_report_notice", REQUEST_DAY))
    with open_ledger(desk.ledger) as led:
        with led.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(t.due_diligence_events)).scalar() == 3
        # recorded in 2026 (Vilnius): kept to the end of 31 December 2036, local time
        last_day = datetime(2036, 12, 31, 23, 59, 59, tzinfo=VILNIUS)
        first_day = datetime(2037, 1, 1, 0, 0, tzinfo=VILNIUS)
        kept = expire_history(led, now=last_day, zone=VILNIUS)
        assert (kept.events, kept.states) == (0, 0)
        counted = expire_history(led, now=first_day, zone=VILNIUS, dry_run=True)
        assert (counted.events, counted.states) == (3, 2)
        gone = expire_history(led, now=first_day, zone=VILNIUS)
        assert (gone.events, gone.states) == (3, 2)
        with led.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(t.due_diligence_events)).scalar() == 0
            assert conn.execute(sa.select(sa.func.count()).select_from(t.due_diligence)).scalar() == 0


def test_the_view_queries_agree_with_the_feed(desk: Desk) -> None:
    desk.run(REQUEST_DAY)
    desk.mark(("S1", "pre_report_notice", REQUEST_DAY), ("S1", "request", REQUEST_DAY))
    feed = desk.run(day(14))
    settings = CycleSettings()
    with open_ledger(desk.ledger) as led:
        due = sorted((s, a.action, a.due_date.isoformat()) for s, a in due_today(led.engine, settings, day(14)))
        attention = {a.seller_id: (a.next_action, a.next_date) for a in needs_attention(led, settings, day(14))}
        assert [a.seller_id for a in needs_attention(led, settings, day(14), action="reminder_1")] == ["S1"]
        assert [a.seller_id for a in needs_attention(led, settings, day(14), country="PL")] == []
        assert incomplete_sellers(led, ["S1", "S2", "S9"]) == {"S1"}
        # the actions due on the day, as the feed lists them; the filter finds a seller by a due action
        both = {a.seller_id: [d.action for d in a.due] for a in needs_attention(led, settings, day(14))}
        assert [a.seller_id for a in needs_attention(led, settings, day(14), action="none")] == []
        assert last_run_dates(led) == {"default": day(14)}
        assert attention_countries(led) == ["LT"] and attention_countries(led, operator_id="pl") == []
        assert [(s.operator_id, s.needs) for s in seller_states(led, "S1")] == [("default", ("tin",))]
        assert seller_states(led, "S9") == []
        # S1 requested (no reminder yet), both in scope, S1 incomplete; none from another country
        assert stage_counts(led, country="LT") == StageCounts(in_scope=2, incomplete=1, requested=1)
        assert stage_counts(led, country="PL") == StageCounts()
    assert due == sorted((x["seller_id"], x["action"], x["due_date"]) for x in feed)
    assert attention == {"S1": ("reminder_1", day(14)), "S2": ("pre_report_notice", REQUEST_DAY)}
    assert both == {"S1": ["reminder_1"], "S2": ["pre_report_notice"]}


def test_each_operator_of_a_group_has_its_own_state_and_feed(tmp_path: Path) -> None:
    group = """
[operators.pl_spzoo]
name = "Demo Marketplace sp. z o.o."
tin = "5260001246"
tin_issued_by = "PL"
nexus = "RPONEX1"

[operators.pl_spzoo.address]
city = "Warszawa"
country = "PL"
"""
    m = Marketplace()
    m.seller("S1", tin=None)
    m.seller("S2", tin=None)
    m.tx("S1", "2026-02-01 10:00:00", 100_000, activity="personal_services")
    m.tx("S2", "2026-02-01 10:00:00", 100_000, activity="personal_services", operator_id="pl_spzoo")
    desk = Desk(tmp_path, written(m, f"sqlite:///{tmp_path / 'm.db'}"), default_ledger_url(tmp_path / "l"), extra=group)
    default = desk.run(date(2026, 3, 1))
    polish = desk.run(date(2026, 3, 1), "pl_spzoo")
    assert {x["seller_id"] for x in default} == {"S1"}
    assert {(x["seller_id"], x["operator_id"]) for x in polish} == {("S2", "pl_spzoo")}
    assert Path(desk.runs[-1].feed) == tmp_path / "out" / "operators" / "pl_spzoo" / "due_diligence" / "actions.jsonl"
    with open_ledger(desk.ledger) as led:
        assert seller_state(led, "S2") is None and seller_state(led, "S2", "pl_spzoo") is not None


def test_the_cli_runs_every_operator_and_shows_a_seller_without_personal_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = written(marketplace(), f"sqlite:///{tmp_path / 'm.db'}")
    config = write_config(tmp_path / "dac7.toml")
    ledger = default_ledger_url(tmp_path / "l")
    common = ["--config", str(config), "--ledger", ledger]
    run = ["due-diligence", "run", *common, "--source", source, "--date", "2026-03-02"]
    assert main([*run, "--out", str(tmp_path / "o"), "--staging", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "default 2026-03-02: 2 seller(s), 2 in scope; 2 state(s) changed, 2 event(s)" in out
    assert "actions due: 2 pre_report_notice, 1 request" in out
    assert main(["due-diligence", "show", "--seller", "S1", *common]) == 0
    shown = capsys.readouterr().out
    assert "tin                      missing" in shown and "lacks: tin" in shown
    assert "Ona" not in shown and "Petraite" not in shown and "Kaunas" not in shown
    assert main(["due-diligence", "unlock", *common]) == 0
    assert capsys.readouterr().out == "the due-diligence lock of operator default is not held\n"


@pytest.mark.parametrize(
    "kind", [pytest.param("postgresql", marks=pytest.mark.pg), pytest.param("mariadb", marks=pytest.mark.mariadb)]
)
def test_a_source_on_postgresql_or_mariadb_gives_the_same_feed(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("pg_url" if kind == "postgresql" else "mariadb_url"))
    m = scope_marketplace()
    m.seller("IND", tin=None, birth_city=None)
    m.tx("IND", "2026-02-01 10:00:00", 100_000, activity="personal_services")
    lite = Desk(tmp_path / "lite", written(m, f"sqlite:///{tmp_path / 'm.db'}"), default_ledger_url(tmp_path / "lite"))
    other = Desk(tmp_path / "other", written(m, url), default_ledger_url(tmp_path / "other"))
    assert lite.run(date(2026, 3, 1)) == other.run(date(2026, 3, 1))
    assert Path(lite.runs[-1].feed).read_bytes() == Path(other.runs[-1].feed).read_bytes()
    for s in ("DM29", "DMFX", "BIGENT", "IND"):
        assert lite.state(s).items == other.state(s).items and lite.state(s).scope == other.state(s).scope


def test_no_personal_value_reaches_the_ledger_or_the_feed(desk: Desk) -> None:
    desk.run(REQUEST_DAY)
    with open_ledger(desk.ledger) as led, led.engine.connect() as conn:
        text = (
            repr(conn.execute(sa.select(t.due_diligence)).all())
            + repr(conn.execute(sa.select(t.due_diligence_events)).all())
            + repr(conn.execute(sa.select(t.due_diligence_desk)).all())
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(t.due_diligence_desk)).scalar_one() > 0
    feed = Path(desk.runs[-1].feed).read_text(encoding="utf-8")
    for value in ("Ona", "Petraite", "Kaunas", "Laisves", "44240", "1980-05-17", "39001010000"):
        assert value not in text and value not in feed, value


@pytest.fixture(autouse=True)
def _umask() -> Iterator[None]:
    """A permissive umask: the feed's mode must not depend on the caller's."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("ledger_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def test_without_adbc_the_dbapi_gives_the_same_state_history_and_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, ledger_kind: str
) -> None:
    """The ``fast`` extra (ADBC) reads and writes in bulk; without it every read and write goes
    through the DB-API: the same states, history and feed, day after day."""
    import reporting.ledger.due_diligence as storage

    def ledger(name: str) -> str:
        if ledger_kind == "sqlite":
            return default_ledger_url(tmp_path / name)
        return str(request.getfixturevalue("pg_databases")(f"dac7_dd_{name}"))

    def days(desk: Desk) -> list[bytes]:
        feeds = []
        for today in (date(2026, 3, 1), date(2026, 3, 20)):
            desk.run(today)
            feeds.append(Path(desk.runs[-1].feed).read_bytes())
            if today.day == 1:
                desk.mark(("DM30", "pre_report_notice", today), ("IND", "request", today))
        return feeds

    m = scope_marketplace()
    m.seller("IND", tin=None)
    m.tx("IND", "2026-02-01 10:00:00", 100_000, activity="personal_services")
    source = written(m, f"sqlite:///{tmp_path / 'm2.db'}")
    bulk = Desk(tmp_path / "bulk", source, ledger("bulk"))
    fast = days(bulk)
    monkeypatch.setenv("DAC7_COLUMNAR", "0")  # the source through the DB-API too
    monkeypatch.setattr(storage, "_adbc_connection", lambda engine: None)
    plain = Desk(tmp_path / "plain", source, ledger("plain"))
    assert days(plain) == fast
    for seller in ("DM29", "DM30", "IND", "BIGENT", "SERV"):
        a, b = bulk.state(seller), plain.state(seller)
        assert (a.items, a.scope, a.cycle, a.checked) == (b.items, b.scope, b.cycle, b.checked), seller
        assert [(e.at, e.kind, e.detail) for e in bulk.history(seller)] == [
            (e.at, e.kind, e.detail) for e in plain.history(seller)
        ], seller
