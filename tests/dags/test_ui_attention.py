"""The due-diligence desk of the DAC7 view (``plugins/dac7_attention.py``): the sellers that need
attention, the counts per stage, the CSV export; a seller's due-diligence history on its seller
page; and the approval page's count of reportable sellers still incomplete.

A marketplace built by hand goes through the daily due-diligence run on fixed days, with the
platform's reports in between and a verification through the local VIES server
(``tests/verification_servers.py``); every seller is an individual paid for one service in January
2026 (no threshold: in scope), the request on 2 March 2026 (day 0), ``[due_diligence]`` defaults
(reminders 14 days apart, the measure ``withhold_payouts`` from day 61):

- ``A1`` (LT, no TIN): request day 0, reminders days 14 and 28, payouts withheld day 61, its TIN
  in the source on day 62, released that day: complete, released;
- ``B2`` (LT, no TIN): request day 0, reminders days 14 and 28: reminded twice, the measure due
  since day 61;
- ``C3`` (PL, no TIN): request day 0: requested, the first reminder due since day 14;
- ``F6`` (LT, no TIN): as A1 to the measure on day 61, its TIN never comes: blocked, no next action;
- ``D4`` (DE, no TIN issued, VAT number DE811907980, which VIES finds registered): complete and
  verified, the pre-report notice never reported sent: due since day 0;
- ``E5`` (LT, TIN 39001010000): complete, notice sent: nothing to do;
- ``G7`` (LT, no TIN): one sale of goods of EUR 10: excluded (de minimis), lacks its TIN, no action;
- four sellers whose ids a spreadsheet would read as formulas (``=HYPERLINK(...)``, ``@SUM(1)``,
  ``-2+3``, ``+1``), no TIN: notice and request due since day 0.

The last run is day 63 (4 May 2026). By hand: in scope 10 (all but G7), incomplete 7 (B2, C3, F6,
the four), requested 1 (C3), reminded twice 1 (B2), blocked 1 (F6: A1's measure was lifted),
released 1 (A1). The page and the export run in this process behind Airflow's own login
(:func:`airflow_stack.dac7_view_app`: ``compliance`` op, ``auditor`` viewer); the page, its filter
form and the seller's history also in a real api-server with headless Chromium (slow). (With
``DAC7_SCREENSHOTS_DIR=docs/img`` the images of ``docs/desk-attention.md`` are renewed.)
"""

from __future__ import annotations

import csv
import io
import json
import logging
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from airflow_stack import api_server, dac7_view_app, free_port, request, stop, wait_until_healthy
from browser import Chromium
from builders import Marketplace, due_diligence_day, with_due_diligence_columns, write_config
from dags.test_dac7_due_diligence import GROUP
from dags.test_ui_view import AUDITOR, PLUGINS, USER, airflow_env, log_in, session_of, wait_for
from lxml import html
from verification_servers import ViesSoapServer, consultation_number, running

from reporting.config import load_config
from reporting.due_diligence import mark_actions, verify_due_items
from reporting.ledger import open_ledger
from reporting.source import make_engine

REQUEST_DAY = date(2026, 3, 2)
LAST_DAY = REQUEST_DAY + timedelta(days=63)
USERS = {USER: "op", AUDITOR: "viewer"}
HOSTILE = ('=HYPERLINK("http://x","y")', "@SUM(1)", "-2+3", "+1")
VAT = "DE811907980"
KEY = b"a-test-key-of-at-least-16-bytes"

pytestmark = [pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")]


def day(n: int) -> date:
    return REQUEST_DAY + timedelta(days=n)


@dataclass
class Desk:
    tmp: Path
    source: str
    ledger: str
    config: Path
    out: Path
    feed: list[dict[str, Any]]  # the last run's feed (day 63)

    def run(self, on: date) -> list[dict[str, Any]]:
        return due_diligence_day(self.config, self.source, self.ledger, on, self.out, self.tmp / "staging")

    def mark(self, on: date, *lines: tuple[str, str]) -> None:
        path = self.tmp / f"sent-{on}.jsonl"
        path.write_text(
            "".join(json.dumps({"seller_id": s, "action": a, "at": f"{on}T09:00:00Z"}) + "\n" for s, a in lines),
            encoding="utf-8",
        )
        with open_ledger(self.ledger) as led:
            mark_actions(led, path, now=datetime.combine(on, time(12), UTC), zone=load_config(self.config).reporting.tz)


def marketplace() -> Marketplace:
    m = Marketplace()
    for seller_id in ("A1", "B2", "F6"):
        m.seller(seller_id, tin=None)
    m.seller("C3", country="PL", tin=None)
    m.seller("D4", country="DE", tin=None, vat_id=VAT, tin_not_issued=True)
    m.seller("E5")
    m.seller("G7", tin=None)
    for seller_id in HOSTILE:
        m.seller(seller_id, tin=None)
    for seller_id in ("A1", "B2", "C3", "D4", "E5", "F6", *HOSTILE):
        m.tx(seller_id, "2026-01-15 10:00:00", 50_000, activity="personal_services")
    m.tx("G7", "2026-01-15 10:00:00", 1_000)  # one sale of goods of EUR 10: de minimis
    return with_due_diligence_columns(m)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Desk:
    tmp = tmp_path_factory.mktemp("attention")
    server = ViesSoapServer()
    with running(server):
        extra = f'\n[verification.vies]\nenabled = true\nurl = "{server.url}"\nmax_attempts = 1\n'
        d = Desk(
            tmp,
            marketplace().write(f"sqlite:///{tmp / 'marketplace.db'}"),
            f"sqlite:///{tmp / 'ledger.sqlite3'}",
            write_config(tmp / "dac7.toml", extra=extra),
            tmp / "out",
            [],
        )
        d.run(day(0))
        d.mark(day(0), *((s, "pre_report_notice") for s in ("A1", "B2", "C3", "E5", "F6")))
        d.mark(day(0), *((s, "request") for s in ("A1", "B2", "C3", "F6")))
        with open_ledger(d.ledger) as led:  # D4's VAT number (VIES) and E5's TIN (python-stdnum)
            verified = verify_due_items(
                load_config(d.config),
                source_url=d.source,
                ledger=led,
                today=day(0),
                key=KEY,
                clock=lambda: datetime.combine(day(0), time(10), UTC),
            )
        assert (verified.verified, verified.invalid) == (2, 0)
    for n, action in ((14, "reminder_1"), (28, "reminder_2")):
        d.run(day(n))
        d.mark(day(n), ("A1", action), ("B2", action), ("F6", action))
    d.run(day(61))
    d.mark(day(61), ("A1", "withhold_payouts"), ("F6", "withhold_payouts"))
    engine = make_engine(d.source)
    with engine.begin() as conn:  # A1's TIN comes in
        conn.execute(sa.text("insert into seller_tins (seller_id, tin, issued_by) values ('A1', '39001010000', 'LT')"))
    engine.dispose()
    assert [x["action"] for x in d.run(day(62)) if x["seller_id"] == "A1"] == ["release"]
    d.mark(day(62), ("A1", "release"))
    d.feed = d.run(LAST_DAY)
    return d


@dataclass
class Client:
    client: Any
    tokens: dict[str, str]

    def get(self, user: str, path: str) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[user]}"})


@pytest.fixture(scope="module")
def view(airflow_db: None, desk: Desk) -> Iterator[Client]:
    env = {"DAC7_LEDGER_URL": desk.ledger, "DAC7_OUT_DIR": str(desk.out), "DAC7_CONFIG": str(desk.config)}
    with dac7_view_app(desk.tmp, USERS, env) as (client, tokens):
        yield Client(client, tokens)


@pytest.fixture(autouse=True)
def view_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the view reads, for each test of the view (the suite's fixtures may set others)."""
    if "view" in request.fixturenames:
        d: Desk = request.getfixturevalue("desk")
        monkeypatch.setenv("DAC7_LEDGER_URL", d.ledger)
        monkeypatch.setenv("DAC7_OUT_DIR", str(d.out))
        monkeypatch.setenv("DAC7_CONFIG", str(d.config))


def rows(page: Any, table_id: str) -> list[list[str]]:
    return [
        [c.text_content().strip() for c in tr.xpath("th|td")]
        for tr in page.xpath(f"//table[@id='{table_id}']//tr")
        if tr.xpath("td")
    ]


def listed(view: Client, query: str = "", user: str = AUDITOR) -> tuple[Any, list[str]]:
    response = view.get(user, f"/attention{query}")
    assert response.status_code == 200, response.text
    page = html.fromstring(response.text)
    return page, [r[0] for r in rows(page, "attention")]


def export(view: Client, query: str = "") -> list[dict[str, str]]:
    response = view.get(USER, f"/attention.csv{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


# ------------------------------------------------------------------------------------ the list


def test_the_counts_per_stage_and_the_sellers_that_need_attention(view: Client) -> None:
    page, sellers = listed(view)
    assert rows(page, "attention-stages") == [["10", "7", "1", "1", "1", "1"]]
    assert [h.text_content() for h in page.xpath("//table[@id='attention-stages']//th")] == [
        "In scope",
        "Incomplete",
        "Requested",
        "Reminded twice",
        "Blocked",
        "Released",
    ]
    assert sorted(sellers) == sorted(["B2", "C3", "D4", "F6", "G7", *HOSTILE])
    assert "default 2026-05-04" in page.get_element_by_id("attention-as-of").text_content()
    by_seller = {r[0]: r for r in rows(page, "attention")}
    # seller, country, lacks, request, reminders, measure, due, next
    b2 = by_seller["B2"]
    assert b2[1:3] == ["LT", "tin"] and b2[3].startswith("2026-03-02 (day 63)")
    assert b2[4] == "2026-03-162026-03-30"  # the two reminders, one a line
    assert b2[6] == "withhold payouts since 2026-05-02, latest 2026-08-29"
    assert b2[7] == "withhold payouts 2026-05-02"
    assert by_seller["C3"][6] == "first reminder since 2026-03-16, latest 2026-08-27"
    assert by_seller["D4"][2:4] == ["nothing", ""] and by_seller["D4"][7] == "pre-report notice 2026-03-02"
    assert by_seller["G7"][2] == "tin" and by_seller["G7"][6:] == ["nothing due", "none"]
    assert by_seller["F6"][5] == "withhold_payouts 2026-05-02" and by_seller["F6"][6:] == ["nothing due", "none"]
    assert by_seller["+1"][6] == (
        "pre-report notice since 2026-03-02, latest 2026-12-31request since 2026-03-02, latest 2026-12-31"
    )
    # each seller links to its seller page's due-diligence section
    [link] = page.xpath("//table[@id='attention']//a[normalize-space()='-2+3']/@href")
    assert link == "2026/sellers/-2%2B3#due-diligence"
    # one operator: no operator filter, no operator column
    assert not page.xpath("//select[@name='operator']")


@pytest.mark.parametrize(
    ("query", "expected", "counts"),
    [
        ("?country=PL", ["C3"], ["1", "1", "1", "0", "0", "0"]),
        ("?country=pl", ["C3"], ["1", "1", "1", "0", "0", "0"]),
        ("?action=request", sorted(HOSTILE), None),
        ("?action=pre_report_notice", sorted(["D4", *HOSTILE]), None),
        ("?action=withhold_payouts", ["B2"], None),
        ("?action=reminder_1", ["C3"], None),
        ("?action=none", ["F6", "G7"], None),
        ("?country=LT&action=withhold_payouts", ["B2"], ["8", "6", "0", "1", "1", "1"]),
        ("?country=DE&action=request", [], ["1", "0", "0", "0", "0", "0"]),
        ("?operator=no_such_operator", [], ["0", "0", "0", "0", "0", "0"]),
        ("?operator=no_such_operator&action=reminder_1", [], ["0", "0", "0", "0", "0", "0"]),
        ("?operator=no_such_operator&action=none", [], ["0", "0", "0", "0", "0", "0"]),
    ],
)
def test_the_list_and_its_counts_are_filtered_by_country_and_action(
    view: Client, query: str, expected: list[str], counts: list[str] | None
) -> None:
    page, sellers = listed(view, query)
    assert sorted(sellers) == expected
    # the export is the same list (a formula-like id behind its apostrophe)
    exported = [r["seller_id"] for r in export(view, query)]
    assert sorted(x[1:] if x[1:] in HOSTILE else x for x in exported) == expected
    assert page.get_element_by_id("attention-count").text_content().startswith(f"{len(expected)} seller(s)")
    if counts is not None:
        assert rows(page, "attention-stages") == [counts]
    if not expected:
        assert page.get_element_by_id("attention-none").text_content() == "No seller matches these filters."
    # the form keeps what was chosen
    chosen = dict(urllib.parse.parse_qsl(query.lstrip("?")))
    for name in ("country", "action"):
        [selected] = page.xpath(
            f"//form[@id='attention-filters']//select[@name='{name}']//option[@selected]/@value"
        ) or [""]
        wanted = chosen.get(name, "").upper() if name == "country" else chosen.get(name, "")
        assert selected == wanted


def test_the_export_is_the_filtered_list_and_formula_safe(view: Client, desk: Desk) -> None:
    every = export(view)
    assert len(every) == 9
    ids = {r["seller_id"] for r in every}
    # a cell that starts with = + - @ is kept behind an apostrophe: a spreadsheet shows the text
    assert {"'" + h for h in HOSTILE} <= ids and not ids & set(HOSTILE)
    raw = view.get(USER, "/attention.csv").text
    assert not any(line.startswith(("=", "+", "-", "@")) for line in raw.splitlines())
    assert '"\'=HYPERLINK(""http://x"",""y"")"' in raw
    # and escaped on the page, never markup
    page = view.get(AUDITOR, "/attention").text
    assert "=HYPERLINK(&quot;http://x&quot;,&quot;y&quot;)" in page and 'HYPERLINK("' not in page
    b2 = next(r for r in every if r["seller_id"] == "B2")
    expected = {
        "operator_id": "default",
        "seller_id": "B2",
        "country": "LT",
        "seller_type": "individual",
        "scope": "in_scope",
        "items_missing": "tin",
        "items_invalid": "",
        "items_unverified": "name;primary_address;birth_place;birth_date",
        "notice_on": "2026-03-02",
        "requested_on": "2026-03-02",
        "day": "63",
        "requested_items": "tin",
        "reminder_1_on": "2026-03-16",
        "reminder_2_on": "2026-03-30",
        "measure": "",
        "measure_on": "",
        "release_due": "",
        "due_actions": "withhold_payouts 2026-05-02",
        "next_action": "withhold_payouts",
        "next_date": "2026-05-02",
        "as_of": "2026-05-04",
    }
    assert list(b2) == list(expected)  # the columns, in their order
    assert b2 == expected
    assert [r["seller_id"] for r in export(view, "?country=PL")] == ["C3"]
    assert sorted(r["seller_id"] for r in export(view, "?action=request")) == sorted("'" + h for h in HOSTILE)


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``plugins/dac7_attention.py``, imported as Airflow's plugin loader imports it."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    import dac7_attention

    return dac7_attention


def test_the_exports_columns_are_its_public_layout(plugin: Any) -> None:
    """The CSV export's header, in its order: a public layout (columns are only ever added)."""
    assert plugin.CSV_COLUMNS == (
        "operator_id",
        "seller_id",
        "country",
        "seller_type",
        "scope",
        "items_missing",
        "items_invalid",
        "items_unverified",
        "notice_on",
        "requested_on",
        "day",
        "requested_items",
        "reminder_1_on",
        "reminder_2_on",
        "measure",
        "measure_on",
        "release_due",
        "due_actions",
        "next_action",
        "next_date",
        "as_of",
    )


def test_a_ledger_row_with_hostile_texts_is_exported_formula_safe(desk: Desk, tmp_path: Path, plugin: Any) -> None:
    """The items are a closed vocabulary (the ledger's check constraints; an unknown name in
    ``requested_items`` is dropped when read); every other text of a state row, were a ledger
    tampered with, is kept behind an apostrophe: scope, seller type, country, requested items."""
    import shutil

    a = plugin
    copy = tmp_path / "ledger.sqlite3"
    shutil.copy(desk.ledger.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    with open_ledger(url, create=False) as led:
        with led.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "update ledger_due_diligence_desk set scope = '@SUM(1)', seller_type = '-1+1', country = '=1', "
                    "requested_items = '=1+1,tin' where seller_id = 'C3'"
                )
            )
        as_of = {"default": LAST_DAY}
        query = a.AttentionQuery(country="=1")
        text = "".join(a.attention_csv(a.attention(led, as_of, query), as_of))
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["seller_id"], row["scope"], row["seller_type"], row["country"]) == ("C3", "'@SUM(1)", "'-1+1", "'=1")
    assert row["requested_items"] == "tin"


def test_the_feed_of_the_days_run_and_the_view_agree(view: Client, desk: Desk, plugin: Any) -> None:
    """The lines of ``due_diligence/actions.jsonl`` of the day's run are those the view computes,
    every field; their sellers, actions and dates those it shows due, in the export and on the
    page, with the latest date on the page."""
    assert view_feed(plugin, desk.ledger) == desk.feed
    latest = {(x["seller_id"], x["action"]): x["latest_date"] for x in desk.feed}
    feed = {(x["seller_id"], x["action"], x["due_date"]) for x in desk.feed}
    assert len(feed) == 11  # B2's measure, C3's reminder, D4's notice, a notice and a request of each of the four
    shown = set()
    for r in export(view):
        seller = r["seller_id"][1:] if r["seller_id"][:2] in {"'" + c for c in "=+-@"} else r["seller_id"]
        for part in filter(None, r["due_actions"].split("; ")):
            action, due = part.split(" ")
            shown.add((seller, action, due))
    assert shown == feed
    # on the page: each action due, with its first day, for the same sellers
    page, _ = listed(view)
    words = {"pre_report_notice": "pre-report notice", "request": "request", "reminder_1": "first reminder"}
    words["withhold_payouts"] = "withhold payouts"
    on_page = {r[0]: r[6] for r in rows(page, "attention")}
    for seller, action, due in feed:
        assert f"{words[action]} since {due}, latest {latest[seller, action]}" in on_page[seller], (seller, action)
    # the filter by action finds every seller the feed has that action for
    for action in {a for _, a, _ in feed}:
        _, sellers = listed(view, f"?action={action}")
        assert {s for s, a, _ in feed if a == action} <= set(sellers), action


def view_feed(plugin: Any, ledger: str) -> list[dict[str, Any]]:
    """The actions due that the desk shows (``attention``: the desk's table, each operator's as of
    its latest run), each as the line of ``actions.jsonl`` it stands for."""
    from reporting.due_diligence import last_run_dates

    with open_ledger(ledger, create=False) as led:
        as_of = last_run_dates(led)
        return [
            d.feed_object(a.operator_id)
            for a in plugin.attention(led, as_of, plugin.AttentionQuery())
            for d in a.due(as_of[a.operator_id])
        ]


def test_the_desk_computes_every_field_of_the_feed_of_each_day_with_the_settings_of_the_run(
    tmp_path: Path, plugin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run configured with ``measure = "close_account"``, the view's process without a
    configuration (its defaults would say ``withhold_payouts``): after each day's run, the actions
    the desk computes are the feed's lines, field for field (dates, items, legal basis, day,
    measure). X1 and Y2 (no TIN): notice and request day 0, first reminder day 14, second day 28,
    the account closed day 61; X1's TIN comes in and its release is due day 62."""
    monkeypatch.delenv("DAC7_CONFIG", raising=False)
    m = Marketplace()
    for seller_id in ("X1", "Y2"):
        m.seller(seller_id, tin=None)
        m.tx(seller_id, "2026-01-15 10:00:00", 50_000, activity="personal_services")
    d = Desk(
        tmp_path,
        with_due_diligence_columns(m).write(f"sqlite:///{tmp_path / 'marketplace.db'}"),
        f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        write_config(tmp_path / "dac7.toml", extra='\n[due_diligence]\nmeasure = "close_account"\n'),
        tmp_path / "out",
        [],
    )
    seen = set()
    for n, sent in (
        (0, ("pre_report_notice", "request")),
        (14, ("reminder_1",)),
        (28, ("reminder_2",)),
        (61, ("close_account",)),
        (62, ()),
    ):
        if n == 62:
            engine = make_engine(d.source)
            with engine.begin() as conn:
                conn.execute(
                    sa.text("insert into seller_tins (seller_id, tin, issued_by) values ('X1', '39001010000', 'LT')")
                )
            engine.dispose()
        feed = d.run(day(n))
        assert feed and view_feed(plugin, d.ledger) == feed, n
        seen |= {x["action"] for x in feed}
        d.mark(day(n), *((s, a) for a in sent for s in ("X1", "Y2")))
    assert seen == {"pre_report_notice", "request", "reminder_1", "reminder_2", "close_account", "release"}
    assert [(x["seller_id"], x["action"], x["measure"]) for x in feed] == [("X1", "release", "close_account")]


def test_a_viewer_sees_the_list_but_may_not_export_it(view: Client, caplog: pytest.LogCaptureFixture) -> None:
    page, sellers = listed(view, user=AUDITOR)
    assert sellers and not page.xpath("//a[@id='attention-export']")
    assert "no download permission" in page.get_element_by_id("attention-count").text_content()
    refused = view.get(AUDITOR, "/attention.csv")
    assert refused.status_code == 403 and "DAC7 downloads" in refused.text
    compliance, _ = listed(view, "?country=PL", user=USER)
    [href] = compliance.xpath("//a[@id='attention-export']/@href")
    assert href == "attention.csv?country=PL"
    caplog.set_level(logging.INFO, logger="dac7.view")
    assert len(export(view, "?country=PL")) == 1
    assert f"DAC7 export by {USER}: due-diligence attention list (country=PL)\n" in caplog.text + "\n"
    assert f"DAC7 export by {USER}: due-diligence attention list (country=PL) sent, 1 seller(s)" in caplog.text
    assert f"DAC7 download refused: user {AUDITOR} may not export the due-diligence attention list" in caplog.text
    # no login: nothing
    assert view.client.get("/attention").status_code == 401


def test_a_page_beyond_the_last_shows_the_last_page(view: Client, plugin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four sellers a page: the nine make pages of 4, 4 and 1, in the order of seller id ('+1',
    '-2+3', '=HYPERLINK...', '@SUM(1)', B2, C3, D4, F6, G7); ``?page=9`` is page 3, G7 alone, never
    "no seller matches" beside "9 seller(s)"."""
    monkeypatch.setattr(plugin, "PAGE_SIZE", 4)
    for query in ("?page=3", "?page=9", "?page=999999"):
        page, sellers = listed(view, query)
        assert sellers == ["G7"], query
        assert not page.xpath("//*[@id='attention-none']")
        pages = page.get_element_by_id("attention-pages").text_content()
        assert pages.startswith("Sellers 9-9 of 9, page 3 of 3."), query
        assert page.xpath("//p[@id='attention-pages']/a/@rel") == ["prev"]
    _, second = listed(view, "?page=2")
    assert second == ["B2", "C3", "D4", "F6"]
    _, one = listed(view, "?country=PL&page=2")  # one seller: one page, its own
    assert one == ["C3"]


def test_a_country_that_is_not_two_letters_is_refused_not_ignored(view: Client, plugin: Any) -> None:
    for query in ("?country=GRC", "?country=G", "?country=%3D1", "?country=G1&action=request"):
        for user, path in ((AUDITOR, "/attention"), (USER, "/attention.csv")):
            refused = view.get(user, path + query)
            assert refused.status_code == 400, (path, query)
            assert "is not a two-letter country code (ISO 3166-1 alpha-2" in refused.text, (path, query)
    # blank is no filter; a lower-case code is read as upper
    assert len(listed(view, "?country=")[1]) == 9
    assert listed(view, "?country=%20pl%20")[1] == ["C3"]
    # the form offers the two-letter codes the ledger holds and names the others beneath it
    found = plugin.AttentionView(as_of={"default": LAST_DAY}, countries=["GRC", "LT", "PL", "<b>"])
    page = html.fromstring(plugin.attention_page(found, plugin.AttentionQuery(), may_download=False))
    assert page.xpath("//select[@name='country']/option/@value") == ["", "LT", "PL"]
    other = page.get_element_by_id("attention-other-countries").text_content()
    assert other.startswith("Not a two-letter country code, so not a filter: <b>, GRC (")


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?action=no-such-action", "The filter action='no-such-action' is not an action of the due-diligence feed"),
        ("?action=REQUEST", "The filter action='REQUEST' is not an action of the due-diligence feed"),
        ("?country=PL&action=reminder_3", "The filter action='reminder_3' is not an action"),
        ("?operator=pl-spzoo", "The filter operator='pl-spzoo' is not an operator id"),
        ("?operator=%3D1&action=request", "The filter operator='=1' is not an operator id"),
    ],
)
def test_an_unknown_action_or_a_malformed_operator_is_refused_not_ignored(view: Client, query: str, says: str) -> None:
    """An action the feed does not have and an operator that is not an operator id answer 400 with
    a message naming the filter and what it takes, on the page and the export alike (as a bad
    country does), never the whole list."""
    for user, path in ((AUDITOR, "/attention"), (USER, "/attention.csv")):
        refused = view.get(user, path + query)
        assert refused.status_code == 400, (path, query)
        assert says in html.fromstring(refused.text).text_content(), (path, query)
    # blank is no filter; an operator id of no run is an empty list, not an error
    assert len(listed(view, "?action=&operator=")[1]) == 9
    assert listed(view, "?operator=no_such_operator")[1] == []


def test_an_export_is_logged_before_its_first_byte_and_an_aborted_one_too(
    desk: Desk, plugin: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    monkeypatch.setattr(plugin, "PAGE_SIZE", 4)
    caplog.set_level(logging.INFO, logger="dac7.view")
    src = SimpleNamespace(ledger_url=desk.ledger, problems=[])

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "dac7.view"]

    chunks = plugin.export_attention(src, plugin.AttentionQuery(action="request"), "compliance")
    # nothing sent yet: the line is there
    assert lines() == ["DAC7 export by compliance: due-diligence attention list (action=request)"]
    assert next(chunks).startswith("operator_id,seller_id,")
    chunks.close()  # the client went away
    assert lines()[-1] == (
        "DAC7 export by compliance: due-diligence attention list (action=request) not finished, 4 seller(s)"
    )
    caplog.clear()
    text = "".join(plugin.export_attention(src, plugin.AttentionQuery(), "compliance"))
    assert len(list(csv.DictReader(io.StringIO(text)))) == 9
    assert lines() == [
        "DAC7 export by compliance: due-diligence attention list (no filter)",
        "DAC7 export by compliance: due-diligence attention list (no filter) sent, 9 seller(s)",
    ]


def test_a_request_dated_after_the_run_has_no_day_of_the_cycle(desk: Desk, tmp_path: Path, plugin: Any) -> None:
    """C3's request marked on 5 May 2026, the day after the last run (4 May): the export's ``day``
    is blank (never ``-1``, which a spreadsheet reads as a formula), the page says "after the
    run"; on the run's day itself it is day 0."""
    import shutil

    a = plugin
    copy = tmp_path / "ledger.sqlite3"
    shutil.copy(desk.ledger.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    as_of = {"default": LAST_DAY}
    query = a.AttentionQuery(country="PL")
    with open_ledger(url, create=False) as led:
        for requested_on, want_day, words in (
            (LAST_DAY + timedelta(days=1), "", "(after the run)"),
            (LAST_DAY, "0", "(day 0)"),
        ):
            with led.engine.begin() as conn:
                conn.execute(
                    sa.text("update ledger_due_diligence_desk set requested_on = :d where seller_id = 'C3'"),
                    {"d": requested_on},
                )
            text = "".join(a.attention_csv(a.attention(led, as_of, query), as_of))
            [row] = list(csv.DictReader(io.StringIO(text)))
            assert (row["requested_on"], row["day"]) == (requested_on.isoformat(), want_day)
            found = a.AttentionView(rows=list(a.attention(led, as_of, query)), total=1, as_of=as_of)
            page = html.fromstring(a.attention_page(found, query, may_download=True))
            assert rows(page, "attention")[0][3].startswith(f"{requested_on.isoformat()} {words}")


def test_an_operator_whose_latest_run_came_before_the_desk_is_named_on_the_page(
    desk: Desk, tmp_path: Path, plugin: Any
) -> None:
    """A ledger whose latest run wrote no desk (a run before revision 0009_due_diligence_desk):
    the page says that operator's sellers are listed from its next run, never a silent empty list."""
    import shutil
    from types import SimpleNamespace

    copy = tmp_path / "ledger.sqlite3"
    shutil.copy(desk.ledger.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    with open_ledger(url, create=False) as led, led.engine.begin() as conn:
        conn.execute(sa.text("update ledger_due_diligence_runs set desk = null"))
        conn.execute(sa.text("delete from ledger_due_diligence_desk"))
    found = plugin.read_attention(SimpleNamespace(ledger_url=url, problems=[]), plugin.AttentionQuery())
    assert found.total == 0
    assert found.problems == [
        "The latest daily run of operator default (2026-05-04) came before the ledger kept the desk's list: its "
        "sellers are listed from its next daily run."
    ]


def test_a_group_offers_its_operators(desk: Desk, plugin: Any) -> None:
    """The page of a group: the operator filter and column (the page built from its parts)."""
    a = plugin

    with open_ledger(desk.ledger, create=False) as led:
        found = a.AttentionView(as_of={"default": LAST_DAY, "pl_spzoo": LAST_DAY})
        found.rows = list(a.attention(led, {"default": LAST_DAY}, a.AttentionQuery(country="PL")))
        found.total = len(found.rows)
    page = html.fromstring(a.attention_page(found, a.AttentionQuery(operator="pl_spzoo"), may_download=True))
    assert page.xpath("//select[@name='operator']/option/@value") == ["", "default", "pl_spzoo"]
    assert page.xpath("//select[@name='operator']/option[@selected]/@value") == ["pl_spzoo"]
    assert rows(page, "attention")[0][:2] == ["default", "C3"]
    assert page.xpath("//a[@id='attention-export']/@href") == ["attention.csv?operator=pl_spzoo"]


def test_the_operator_filter_of_a_group_shows_each_operators_sellers_only(
    view: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group of two operators, each with its daily run of 2 March 2026: ``default`` paid K1
    (LT) and K2 (PL), ``pl_spzoo`` paid P1 (PL) and, for its own account, K2 too; none has a TIN,
    so each needs its notice and its request. The list shows the three sellers of ``default``
    and the two of ``pl_spzoo`` (K2 with each); ``?operator=`` keeps one operator's, and its
    counts and export follow; with the country too, one seller."""
    m = Marketplace()
    for seller_id, country in (("K1", "LT"), ("K2", "PL"), ("P1", "PL")):
        m.seller(seller_id, country=country, tin=None)
    m.tx("K1", "2026-01-15 10:00:00", 50_000, activity="personal_services")
    m.tx("K2", "2026-01-15 10:00:00", 50_000, activity="personal_services")
    m.tx("K2", "2026-01-16 10:00:00", 50_000, activity="personal_services", operator_id="pl_spzoo")
    m.tx("P1", "2026-01-15 10:00:00", 50_000, activity="personal_services", operator_id="pl_spzoo")
    source = with_due_diligence_columns(m).write(f"sqlite:///{tmp_path / 'group.db'}")
    config = write_config(tmp_path / "dac7.toml", extra=GROUP)
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    for operator_id in ("default", "pl_spzoo"):
        due_diligence_day(config, source, ledger, REQUEST_DAY, tmp_path / "out", tmp_path / "staging", operator_id)
    monkeypatch.setenv("DAC7_LEDGER_URL", ledger)
    monkeypatch.setenv("DAC7_CONFIG", str(config))

    def shown(query: str = "") -> list[tuple[str, str]]:
        page = html.fromstring(view.get(AUDITOR, f"/attention{query}").text)
        return [(r[0], r[1]) for r in rows(page, "attention")]

    assert shown() == [("default", "K1"), ("default", "K2"), ("pl_spzoo", "K2"), ("pl_spzoo", "P1")]
    assert shown("?operator=default") == [("default", "K1"), ("default", "K2")]
    assert shown("?operator=pl_spzoo") == [("pl_spzoo", "K2"), ("pl_spzoo", "P1")]
    assert shown("?operator=pl_spzoo&country=PL&action=request") == [("pl_spzoo", "K2"), ("pl_spzoo", "P1")]
    assert shown("?operator=default&country=PL") == [("default", "K2")]
    page, _ = listed(view, "?operator=pl_spzoo")
    # in scope 2, incomplete 2, none requested yet
    assert rows(page, "attention-stages") == [["2", "2", "0", "0", "0", "0"]]
    assert page.xpath("//select[@name='operator']/option[@selected]/@value") == ["pl_spzoo"]
    exported = export(view, "?operator=pl_spzoo")
    assert [(r["operator_id"], r["seller_id"], r["due_actions"]) for r in exported] == [
        ("pl_spzoo", "K2", "pre_report_notice 2026-03-02; request 2026-03-02"),
        ("pl_spzoo", "P1", "pre_report_notice 2026-03-02; request 2026-03-02"),
    ]


# ------------------------------------------------------------------------------ the seller page


def test_the_sellers_history_is_shown_with_the_download_permission(view: Client) -> None:
    response = view.get(USER, "/2026/sellers/D4")
    assert response.status_code == 200, response.text  # no run of 2026: the history alone
    page = html.fromstring(response.text)
    assert dict((k, v) for k, v, _ in rows(page, "dd-items-default"))["vat"] == "verified"
    assert ["vat", "verified", "2026-03-02"] in rows(page, "dd-items-default")
    history = rows(page, "dd-history-default")
    [check] = [r for r in history if r[1] == "verification"]
    assert check[2] == "vat: unverified -> verified"
    assert check[3].startswith("DE: vies (VIES SOAP checkVatApprox http://127.0.0.1:")
    assert check[3].endswith(f"consultation number {consultation_number(VAT[2:])}")
    [call] = [r for r in rows(page, "dd-verifications") if r[1] == "vies"]
    assert call[2:8] == ["vat DE", "***980", "1", "verified", call[6], consultation_number(VAT[2:])]
    facts = dict(rows(page, "dd-facts-default"))
    assert facts["Next action"] == "pre-report notice from 2026-03-02"
    assert facts["State as of"] == "the daily run of 2026-05-04"
    # A1's whole cycle, in order, from the platform's reports
    a1 = [r[1] for r in rows(html.fromstring(view.get(USER, "/2026/sellers/A1").text), "dd-history-default")]
    sent = [w for w in a1 if w.endswith("sent") or w in ("payouts withheld", "released")]
    assert sent == [
        "pre-report notice sent",
        "request sent",
        "first reminder sent",
        "second reminder sent",
        "payouts withheld",
        "released",
    ]
    assert "requested data received" in a1


def test_without_the_download_permission_the_history_is_said_to_exist_not_shown(view: Client) -> None:
    response = view.get(AUDITOR, "/2026/sellers/D4")
    assert response.status_code == 200
    page = html.fromstring(response.text)
    assert "Seeing it needs the 'DAC7 downloads' permission" in page.get_element_by_id("due-diligence-hidden").text
    for hidden in ("dd-items-default", "dd-history-default", "dd-verifications"):
        assert not page.xpath(f"//*[@id='{hidden}']")
    assert consultation_number(VAT[2:]) not in response.text and "***980" not in response.text
    # a seller the ledger does not know: no history
    none = view.get(USER, "/2026/sellers/Z9")
    assert none.status_code == 404 and "holds no due-diligence state" in none.text


# --------------------------------------------------------------------------- the approval page


def test_the_approval_page_counts_the_reportable_sellers_still_incomplete(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filing of 2025 to LT with two reportable sellers: S1 without a TIN (reported with its TIN
    unknown), S2 complete; S3, without a TIN too, sold goods once for EUR 10 (excluded: not
    reportable) and is not counted. Before any due-diligence run the request says the count is
    not known; after the run of 31 December 2025, ``LT 1 of 2``, in the request and on the
    pending page."""
    from dac7_pending import pending_page
    from dac7_support.approval import approval_request, write_approval_request

    from reporting.pipeline import run

    m = Marketplace()
    m.seller("S1", tin=None)
    m.seller("S2")
    m.seller("S3", tin=None)
    for seller_id in ("S1", "S2"):
        m.tx(seller_id, "2025-05-01 10:00:00", 50_000, activity="personal_services")
    m.tx("S3", "2025-05-01 10:00:00", 1_000)  # one sale of goods of EUR 10: de minimis
    source = with_due_diligence_columns(m).write(f"sqlite:///{tmp_path / 'marketplace.db'}")
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    config = write_config(tmp_path / "dac7.toml")
    result = run(
        config_path=config,
        source_url=source,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out" / "2025",
        staging_root=tmp_path / "staging",
        run_id="7c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        timestamp=datetime(2026, 2, 1, 6, 0),
        ledger_url=ledger,
    )
    before = approval_request(result.run_dir)["body"]
    assert "**Due diligence:** no daily due-diligence run is recorded in the ledger" in before
    due_diligence_day(config, source, ledger, date(2025, 12, 31), tmp_path / "out", tmp_path / "staging-dd")
    with open_ledger(ledger) as led:  # S3 is incomplete in the ledger, only not reportable
        from reporting.due_diligence import seller_state

        s3 = seller_state(led, "S3")
    assert s3 is not None and s3.items["tin"] == "missing"
    request = approval_request(result.run_dir)
    assert (
        "**Due diligence:** reportable sellers of this filing still incomplete (an item missing or invalid, as of "
        "the daily run of 2025-12-31): LT 1 of 2."
    ) in request["body"]
    assert request["due_diligence"] == {"LT": {"reportable": 2, "incomplete": 1, "as_of": "2025-12-31"}}
    monkeypatch.setenv("DAC7_STAGING_DIR", str(tmp_path / "staging"))
    written = write_approval_request(result.run_dir)
    assert "due_diligence" not in written  # the pending page reads the file; XCom stays small
    page = html.fromstring(pending_page(Path(result.run_dir), may_download=False))
    assert rows(page, "due-diligence-incomplete") == [["LT", "2", "1", "2025-12-31"]]


# ------------------------------------------------------------------------------------ in Chromium


@pytest.fixture(scope="module")
def server(desk: Desk, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    """An api-server (a process of its own) that shows the desk's ledger."""
    import secrets

    tmp = tmp_path_factory.mktemp("attention-server")
    home = tmp / "airflow-home"
    home.mkdir()
    passwords = {user: secrets.token_urlsafe(12) for user in ("compliance", "auditor", "outsider")}
    (home / "passwords.json").write_text(json.dumps(passwords), encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = airflow_env(home, port) | {
        "DAC7_LEDGER_URL": desk.ledger,
        "DAC7_OUT_DIR": str(desk.out),
        "DAC7_CONFIG": str(desk.config),
    }
    log = tmp / "api-server.log"
    process = api_server(env, port, log)
    try:
        wait_until_healthy(process, base, log)
        yield base, passwords, log
    finally:
        stop(process)


@contextmanager
def logged_in_browser(server: tuple[str, dict[str, str], Path], user: str, path: str, tmp: Path) -> Iterator[Any]:
    """A headless Chromium logged in as ``user`` through Airflow's login page, at the list."""
    base, passwords, _ = server
    with Chromium.launch(tmp / "chromium", width=1400, height=1000) as browser:
        log_in(browser, base, passwords[user], path, user=user)
        wait_for(browser, "document.querySelector('#attention')", "the list")
        yield browser


@pytest.mark.slow
def test_compliance_staff_filter_the_list_in_the_browser_and_open_a_sellers_history(
    server: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    from dags.test_ui_seller import save

    base, _, log = server
    with logged_in_browser(server, USER, "/dac7/attention", tmp_path) as browser:
        counts = browser.evaluate("[...document.querySelectorAll('#attention-stages td')].map(td => td.textContent)")
        assert counts == ["10", "7", "1", "1", "1", "1"]
        save(browser, "attention.png")
        # the form, as a person uses it: choose a country and an action, press Filter
        browser.evaluate("document.querySelector('select[name=country]').value = 'LT'")
        browser.evaluate("document.querySelector('select[name=action]').value = 'withhold_payouts'")
        browser.evaluate("document.querySelector('#attention-filters button').click()")
        wait_for(browser, "location.search.includes('action=withhold_payouts')", "the filtered list")
        wait_for(browser, "document.querySelector('#attention')", "the filtered table")
        assert browser.evaluate("location.search") == "?country=LT&action=withhold_payouts"
        shown = browser.evaluate(
            "[...document.querySelectorAll('#attention tr td:first-child')].map(c => c.textContent)"
        )
        assert shown == ["B2"]
        save(browser, "attention-filtered.png")
        # the export link keeps the filters: with the browser's session, the CSV has B2 alone (the
        # page's own policy lets no script fetch anything: connect-src 'none')
        href = browser.evaluate("document.querySelector('#attention-export').href")
        status, body = request(href, session_of(browser, base))
        assert status == 200 and [r["seller_id"] for r in csv.DictReader(io.StringIO(body.decode()))] == ["B2"]
        # the seller's page, its due-diligence history
        browser.evaluate("document.querySelector('#attention a.seller').click()")
        wait_for(browser, "document.querySelector('#dd-history-default')", "the seller's history")
        assert browser.evaluate("location.pathname") == "/dac7/2026/sellers/B2"
        browser.evaluate("document.querySelector('#due-diligence').scrollIntoView()")
        save(browser, "seller-due-diligence.png")
        history = browser.evaluate("document.querySelector('#dd-history-default').innerText")
        assert "second reminder sent" in history
        # a verification with its evidence: D4's VAT number, registered, VIES's consultation number
        browser.navigate(f"{base}/dac7/2026/sellers/D4")
        wait_for(browser, "document.querySelector('#dd-verifications')", "D4's verifications")
        browser.evaluate("document.querySelector('#dd-history-default').scrollIntoView()")
        assert consultation_number(VAT[2:]) in browser.evaluate("document.body.innerText")
        save(browser, "seller-verifications.png")
    text = log.read_text(encoding="utf-8", errors="replace")
    assert f"DAC7 due-diligence history shown to {USER}: B2" in text


@pytest.mark.slow
def test_a_viewer_in_the_browser_sees_the_list_without_export_and_no_history(
    server: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    base = server[0]
    with logged_in_browser(server, AUDITOR, "/dac7/attention?country=PL", tmp_path) as browser:
        assert browser.evaluate("document.querySelector('#attention-export')") is None
        browser.evaluate("document.querySelector('#attention a.seller').click()")
        wait_for(browser, "document.querySelector('#due-diligence-hidden')", "the seller page")
        assert browser.evaluate("document.querySelector('#dd-history-default')") is None
        assert request(f"{base}/dac7/attention.csv", session_of(browser, base))[0] == 403
