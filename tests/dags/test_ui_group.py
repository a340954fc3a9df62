"""A group of operators in the Airflow UI: the board and the trigger page, in a real Airflow, seen
by a real Chromium.

The configuration is the demo operator's (the default, LT) with two further operators
(``builders.GROUP_TOML``): ``lt2`` files in LT too, ``de_gmbh`` in DE. The filing ledger of this
test holds, for the last reporting year that has ended: the default operator's production message
to LT (three sellers, published and uploaded on 20 January), de_gmbh's to DE (one seller,
published and transmitted on 22 January), and nothing of lt2 in production; in the test
environment, the default operator's message to LT (three sellers) and lt2's (one seller), sent.

An ``airflow api-server`` (a separate process with an explicit environment, as in
``test_ui_board.py``, whose users it shares; after ``airflow dags reserialize``, so that a run of
``dac7_annual`` can be created without a scheduler) shows the pages:

- the board: a row per operator, authority and year, with the Operator column; lt2's filing of
  the year, which is missing, on a row of its own, flagged, beside the default operator's filed
  one in LT;
- the trigger page: the operator field lists every operator with where it files; a correction
  without an operator is refused with the sentence; lt2 chosen, the check counts lt2's filed
  sellers alone, and the run is created with ``operator`` ``lt2`` in its conf (read back through
  Airflow's REST API); an unknown operator is refused with HTTP 400.

With ``DAC7_SCREENSHOTS_DIR=docs/img`` the images ``board-group.png`` (``docs/desk-board.md``)
and ``trigger-group.png`` (``docs/desk-trigger.md``) are renewed.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from airflow_stack import AIRFLOW, Api, free_port, spawn, stop, wait_until_healthy
from browser import Chromium
from builders import GROUP_TOML, write_config
from ledger_filing import Filer, current, send
from test_trigger_form import post_form
from test_ui_board import row_text, shot
from test_ui_view import ROLES, USER, airflow_env, log_in, wait_for

from reporting.ledger import Ledger, open_ledger

#: the last reporting year that has ended: the board expects each operator's filing of it
YEAR = date.today().year - 1
DAG_ID = "dac7_annual"


@dataclass(frozen=True)
class GroupStack:
    base: str
    passwords: dict[str, str]
    log: Path


def publish(ledger: Ledger, sellers: list[str], at: datetime | None = None, **filer: str) -> None:
    """A message of ``sellers`` for YEAR, recorded, published and sent its authority's way (filed;
    ``filer``: environment, authority, operator_id)."""
    f = Filer(ledger, year=YEAR, **filer)
    for ref in f.record(f.plan(current(sellers=dict.fromkeys(sellers, 1)))):
        ledger.mark_published(ref, at=at)
        send(ledger, ref, at)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GroupStack]:
    tmp = tmp_path_factory.mktemp("ui-group")
    home, ledger = tmp / "airflow-home", f"sqlite:///{tmp / 'ledger.sqlite3'}"
    home.mkdir()
    passwords = {user: secrets.token_urlsafe(12) for user in ROLES}
    (home / "passwords.json").write_text(json.dumps(passwords), encoding="utf-8")
    config = write_config(tmp / "dac7.toml", extra=GROUP_TOML + f'\n[ledger]\nurl = "{ledger}"\n')
    with open_ledger(ledger) as led:
        publish(led, ["S1", "S2", "S3"], datetime(YEAR + 1, 1, 20, 10), environment="prod", authority="LT")
        publish(led, ["S4"], datetime(YEAR + 1, 1, 22, 10), environment="prod", authority="DE", operator_id="de_gmbh")
        publish(led, ["S1", "S2", "S3"], environment="test", authority="LT")
        publish(led, ["S5"], environment="test", authority="LT", operator_id="lt2")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = airflow_env(home, port) | {"DAC7_CONFIG": str(config), "DAC7_OUT_DIR": str(tmp / "out")}
    log = tmp / "api-server.log"
    # the DAG in the metadata database (``dags reserialize``): the trigger page creates a run of it
    script = '"$0" db migrate && "$0" dags reserialize && exec "$0" api-server --host 127.0.0.1 --port "$1"'
    server = spawn(["sh", "-c", script, str(AIRFLOW), str(port)], env, log)
    try:
        wait_until_healthy(server, base, log, timeout=300)
        yield GroupStack(base, passwords, log)
    finally:
        stop(server)


@pytest.mark.slow
def test_the_board_of_a_group_shows_each_operators_filing_on_its_own_row(stack: GroupStack, tmp_path: Path) -> None:
    with Chromium.launch(tmp_path / "chromium", width=1500, height=1000) as browser:
        log_in(browser, stack.base, stack.passwords[USER], "/dac7/board")
        wait_for(browser, "document.querySelector('#board-prod')", "the board")
        headers = browser.evaluate("[...document.querySelectorAll('#board-prod th')].map(th => th.innerText)")
        assert headers[:3] == ["Operator", "Authority", "Year"], headers
        # the default operator filed in LT; lt2, in LT too, did not: its own row says so
        default = row_text(browser, "board-prod", "default", "LT Lithuania", str(YEAR))
        assert f"filed {YEAR + 1}-01-20, in time" in default, default
        assert "filed: awaiting the authority's status" in default and "Demo Marketplace UAB" in default
        lt2 = row_text(browser, "board-prod", "lt2", "LT Lithuania", str(YEAR))
        missing = "overdue: nothing filed" if date.today() > date(YEAR + 1, 1, 31) else "not filed yet"
        assert missing in lt2 and "Second Market UAB" in lt2, lt2
        assert browser.call(
            "(words) => [...document.querySelectorAll('#board-prod tr')]"
            ".find(tr => words.every(w => tr.innerText.includes(w)))"
            ".querySelector('.status').className",
            ["lt2", str(YEAR)],
        ) == ("status status-rejected" if missing.startswith("overdue") else "status status-todo")
        de = row_text(browser, "board-prod", "de_gmbh", "DE Germany", str(YEAR))
        assert f"filed {YEAR + 1}-01-22, in time" in de, de
        # every operator's filing of the year in progress expected, each on its own row
        for operator, authority in (("default", "LT"), ("lt2", "LT"), ("de_gmbh", "DE")):
            assert "not filed yet" in row_text(browser, "board-prod", operator, authority, str(YEAR + 1))
        # the test environment: each operator's message apart
        assert "1" in row_text(browser, "board-test", "lt2", "LT Lithuania", str(YEAR))
        rows = browser.evaluate("[...document.querySelectorAll('#board-test tr')].slice(1).map(tr => tr.innerText)")
        assert len(rows) == 2 and rows[0].startswith("default") and rows[1].startswith("lt2"), rows
        shot(browser, "board-group.png", tmp_path)


@pytest.mark.slow
def test_the_trigger_page_of_a_group_creates_a_run_for_the_operator_chosen(stack: GroupStack, tmp_path: Path) -> None:
    base = stack.base
    api = Api.log_in(base, USER, stack.passwords[USER])
    before = api.get(f"/dags/{DAG_ID}/dagRuns")["total_entries"]
    with Chromium.launch(tmp_path / "chromium", width=1400, height=1000) as browser:
        log_in(browser, base, stack.passwords[USER], "/dac7/trigger")
        wait_for(browser, "document.querySelector('#trigger-form')", "the DAC7 trigger page")
        options = browser.evaluate(
            "[...document.querySelectorAll('select[name=operator] option')].map(o => [o.value, o.innerText])"
        )
        assert options == [
            ["", "every operator of the group"],
            ["default", "default (files in LT)"],
            ["lt2", "lt2 (files in LT)"],
            ["de_gmbh", "de_gmbh (files in DE)"],
        ]
        fill = """(year, mode, operator) => {
            const f = document.querySelector('#trigger-form');
            f.reporting_year.value = year; f.as_of.value = `${year}-12-31`; f.mode.value = mode;
            f.operator.value = operator;
            f.querySelector('input[name=environment][value=test]').checked = true;
        }"""
        # a correction is what an authority asked of one operator: refused without one
        browser.call(fill, str(YEAR), "correction", "")
        browser.evaluate("document.querySelector('#trigger-form').submit()")
        wait_for(browser, "document.querySelector('#problems')", "the refusal")
        problems = browser.evaluate("document.querySelector('#problems').innerText")
        assert "mode correction files what an authority asked of one operator: name it" in problems, problems
        said = browser.evaluate("document.body.innerText")
        assert "a group of operators: default files in LT, lt2 files in LT, de_gmbh files in DE." in said, said
        shot(browser, "trigger-group.png", tmp_path)

        # lt2 alone: the check counts lt2's filed sellers, not the default operator's
        browser.call(fill, str(YEAR), "auto", "lt2")
        browser.evaluate("document.querySelector('#trigger-form').submit()")
        wait_for(browser, "document.querySelector('#confirm-form')", "the check page")
        choices = browser.evaluate("document.querySelector('#choices').innerText")
        assert "Operator\tlt2" in choices, choices
        said = browser.evaluate("document.querySelector('#what-it-files').innerText")
        assert f"The ledger holds 1 seller(s) as filed for {YEAR} in the test space (LT: 1)." in said, said
        browser.evaluate("document.querySelector('#confirm-form').submit()")
        wait_for(browser, "document.querySelector('#run-id')", "the created run")
        run_id = browser.evaluate("document.querySelector('#run-id').innerText")

    run = api.get(f"/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}")
    assert run["triggering_user_name"] == USER
    assert run["conf"] == {
        "reporting_year": YEAR,
        "as_of": f"{YEAR}-12-31",
        "environment": "test",
        "mode": "auto",
        "sellers": None,
        "authorities": None,
        "operator": "lt2",
    }
    # an operator the configuration does not hold: HTTP 400, the sentence, and no run
    fields = {"reporting_year": YEAR, "as_of": f"{YEAR}-12-31", "environment": "test", "mode": "auto"}
    status, page = post_form(base, "/dac7/trigger", fields | {"operator": "fr_sas", "step": "trigger"}, api.token)
    assert status == 400 and "Choose an operator of the configuration: default, lt2, de_gmbh." in page
    assert api.get(f"/dags/{DAG_ID}/dagRuns")["total_entries"] == before + 1
    assert "Traceback" not in stack.log.read_text(encoding="utf-8", errors="replace")
