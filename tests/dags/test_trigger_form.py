"""The trigger form and the run's outcome on the run page.

Fast tests: no DAG file reads the clock while it is parsed (Airflow's own check, the one that
puts a red banner on every DAG page); every Param of every DAG has a label and a help text; the
DAC7 view's trigger page (``plugins/dac7_trigger.py``) refuses each combination that cannot run
with the sentence a person needs, and says what a run files; the run note
(``plugins/dac7_links.py``) says what a run filed, from a hand-made manifest.

A slow test in a real Airflow (``airflow standalone``: api-server, scheduler, dag-processor and
triggerer, with a throwaway home and an explicit environment, SQLite, the demo marketplace) and a
headless Chromium: no DAG warning and no import error; the Airflow DAG page has no warning banner;
Airflow's trigger form shows the help texts; the DAC7 trigger page refuses a deletion without
sellers (HTTP 400, the sentence), then checks and triggers a good test run as the logged-in user;
the scheduler runs it, and the run page shows the note with the files and sellers and a link to
the DAC7 view. A run triggered through the REST API with a bad combination is created (Airflow's
API checks one Param at a time), refused by ``prepare``, and its note says which task failed.
Screenshots go to ``$DAC7_SCREENSHOTS_DIR`` when it is set (``docs/img`` renews ``trigger-*.png``,
but for ``trigger-form.png``: ``scripts/screenshots.py`` makes it, the whole dialog with every Param,
the operator's at its end, taller than this test's window; ``trigger-group.png`` comes from
``test_ui_group.py``).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow_stack import AIRFLOW, Api, base_env, call, free_port, spawn, stop, tail, wait_until_healthy
from browser import Chromium
from test_ui_view import log_in, wait_for

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"
YEAR = 2025
ADMIN, COMPLIANCE = "admin", "compliance"
ROLES = {ADMIN: "admin", COMPLIANCE: "viewer"}


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The plugin modules as the api-server imports them (plugins and DAGs folders on the path)."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.syspath_prepend(str(DAGS))
    import dac7_links
    import dac7_trigger

    return dac7_trigger, dac7_links


# ------------------------------------------------------------------------------ the DAG files


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_no_dag_file_reads_the_clock_while_parsed(dag_file: str) -> None:
    """Airflow 3.3's dag-processor runs this check on every file and shows what it finds as a
    DAG warning (the red banner of every DAG page): a value that changes between parses (the
    clock, a random number, a uuid4) makes every parse a new DAG version."""
    from airflow.utils.dag_version_inflation_checker import check_dag_file_stability

    assert check_dag_file_stability(str(DAGS / dag_file)).format_warnings() is None


def test_every_param_has_a_label_and_a_help_text() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    seen = 0
    for dag in bag.dags.values():
        for name in dag.params:
            param = dag.params.get_param(name)
            assert param.schema.get("title"), (dag.dag_id, name)
            assert param.description and len(param.description) > 30, (dag.dag_id, name)
            seen += 1
    assert seen >= 9  # annual 6, quarterly 2, deadline 1


def test_the_annual_form_explains_what_files_corrections(plugins: Any) -> None:
    from airflow.dag_processing.dagbag import DagBag

    params = DagBag(dag_folder=str(DAGS)).dags["dac7_annual"].params
    mode = params.get_param("mode").schema
    assert mode["values_display"]["correction"] == "correction: files CORRECTIONS of every seller already filed"
    assert mode["values_display"]["deletion"] == "deletion: files DELETIONS of the sellers named below"
    assert "a CORRECTION for every filed seller whose figures changed" in params.get_param("mode").description
    assert params.get_param("as_of").description.startswith(
        "Refunds dated after this day (in the configured time zone) are not counted. Required for a run "
        "triggered by hand"
    )
    assert params.get_param("authorities").schema["values_display"]["LT"] == "LT Lithuania"


@pytest.mark.parametrize(
    ("logical_date", "conf", "expected"),
    [
        # a scheduled run: conf {} and the period of its logical date
        (datetime(2026, 1, 15, 6, tzinfo=UTC), {}, []),
        # a REST client that leaves the keys out: the documented default
        (datetime(2026, 1, 15, 6, tzinfo=UTC), {"environment": "test"}, []),
        # Airflow's trigger form, untouched: every field sent, the period empty, a logical date of now
        (
            datetime(2026, 12, 6, 6, tzinfo=UTC),
            {"reporting_year": None, "as_of": None, "environment": None, "mode": "auto"},
            ["reporting year, its as-of date and its environment:"],
        ),
        (
            datetime(2026, 12, 6, 6, tzinfo=UTC),
            {"reporting_year": 2025, "as_of": "2025-12-31", "environment": None},
            ["environment:"],
        ),
        (datetime(2026, 12, 6, 6, tzinfo=UTC), {"reporting_year": 2025, "as_of": None}, ["as-of date:"]),
        (None, {"reporting_year": 2025}, ["as-of date:"]),
        (None, {"reporting_year": 2025, "as_of": "2025-12-31"}, []),
    ],
)
def test_a_run_triggered_by_hand_names_its_period(
    logical_date: datetime | None, conf: dict[str, Any], expected: list[str]
) -> None:
    from dac7_support.common import period_problems

    params = {"reporting_year": None, "as_of": None} | conf
    problems = period_problems(params, logical_date, conf)
    assert len(problems) == len(expected)
    for problem, words in zip(problems, expected, strict=True):
        assert problem.startswith(f"A run triggered by hand must name its {words}"), problem


def test_a_watch_of_a_quarter_that_has_not_ended_is_refused() -> None:
    from dac7_support.common import quarter_problems

    assert quarter_problems(2026, 1, date(2026, 3, 31), date(2026, 4, 1)) == []
    assert quarter_problems(2026, 4, date(2026, 12, 31), date(2026, 12, 6)) == [
        "Q4 2026 has not ended yet (it ends on 2026-12-31): choose a quarter that has ended, or leave the year "
        "and the quarter empty for the last one that ended."
    ]


# --------------------------------------------------------------------------- the trigger page

TODAY = date(2026, 1, 20)


def demo_config(**reporting: Any) -> Any:
    """The demo configuration (environment test, files in LT, routing nexus), with changes."""
    from dataclasses import replace

    from reporting.config import load_config

    config = load_config(REPO / "dac7.toml")
    return replace(config, reporting=replace(config.reporting, **reporting)) if reporting else config


CONFIG = demo_config()


def form(**fields: Any) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in fields.items()}


def test_an_empty_form_is_refused_with_what_to_choose(plugins: Any) -> None:
    trigger, _ = plugins
    choice = trigger.read_choice(form(), today=TODAY, config=CONFIG)
    assert choice.conf is None
    assert choice.problems == [
        "Choose the reporting year.",
        "Choose the as-of date: 31 December of the reporting year for the year's filing (a later day counts "
        "later refunds and may file corrections).",
        "Choose the environment: 'test' or 'prod' (the configuration file says 'test').",
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"mode": "deletion"},
            ["Mode 'deletion' needs the sellers to delete: list their seller ids under sellers."],
        ),
        (
            {"sellers": "S0000001\n"},
            [
                "Sellers are named only for a deletion, but mode is 'auto': set mode to 'deletion' or leave "
                "sellers empty."
            ],
        ),
        (
            {"environment": "prod", "as_of": "2025-06-30"},
            [
                "The as-of date 2025-06-30 is before the end of 2025: a production filing counts the refunds of "
                "the whole year, so set as_of to 2025-12-31 or later."
            ],
        ),
        (
            {"as_of": "2026-01-20"},
            [
                "The as-of date 2026-01-20 has not ended yet: choose 2026-01-19 or an earlier day, so that a "
                "rerun counts the same refunds."
            ],
        ),
        ({"reporting_year": "2027"}, ["The reporting year must be a year from 2023 to 2026."]),
        ({"as_of": "31/12/2025"}, ["The as-of date '31/12/2025' is not a date: write it as YYYY-MM-DD."]),
        ({"authorities": ["LT", "US"]}, ["Not an EU member state: US."]),
    ],
)
def test_a_combination_that_cannot_run_is_refused(plugins: Any, fields: dict[str, Any], expected: list[str]) -> None:
    trigger, _ = plugins
    good = {"reporting_year": "2025", "as_of": "2025-12-31", "environment": "test", "mode": "auto"}
    choice = trigger.read_choice(form(**(good | fields)), today=TODAY, config=CONFIG)
    assert (choice.conf, choice.problems) == (None, expected)


def test_a_good_choice_is_the_runs_conf(plugins: Any) -> None:
    trigger, _ = plugins
    fields = form(
        reporting_year="2025",
        as_of="2025-12-31",
        environment="prod",
        mode="deletion",
        sellers="S2\r\nS1\n\nS1",
        authorities=["LT"],
    )
    choice = trigger.read_choice(fields, today=TODAY, config=CONFIG)
    assert choice.problems == []
    assert choice.conf == {
        "reporting_year": 2025,
        "as_of": "2025-12-31",
        "environment": "prod",
        "mode": "deletion",
        "sellers": ["S1", "S2"],
        "authorities": ["LT"],
    }


def test_the_check_page_carries_the_choice_to_the_trigger(plugins: Any) -> None:
    """The check page's hidden fields, read back, are the same conf (a seller id per field)."""
    import re
    from html import unescape

    trigger, _ = plugins
    fields = form(reporting_year="2025", as_of="2025-12-31", environment="test", mode="deletion", sellers="S<1>\nS 2")
    choice = trigger.read_choice(fields, today=TODAY, config=CONFIG)
    page = trigger.confirm_page(choice, ["x"], page=lambda title, body: "".join(body))
    hidden: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page):
        hidden.setdefault(name, []).append(unescape(value))
    assert hidden["sellers"] == ["S 2", "S<1>"] and "S<1>" not in page  # escaped in the page
    again = trigger.read_choice(hidden, today=TODAY, config=CONFIG)
    assert again.conf == choice.conf and again.conf["sellers"] == ["S 2", "S<1>"]


def test_the_check_says_when_a_run_files_corrections_or_deletions(plugins: Any) -> None:
    trigger, _ = plugins
    conf = {"reporting_year": 2025, "environment": "test", "sellers": None}
    filed = {"LT": 122, "DE": 0}
    auto = trigger.what_it_files(conf | {"mode": "auto"}, filed)
    assert auto[0] == "The ledger holds 122 seller(s) as filed for 2025 in the test space (LT: 122)."
    assert "CORRECTIONS for those of the 122 filed seller(s) whose figures changed" in auto[1]
    assert trigger.what_it_files(conf | {"mode": "correction"}, filed)[1] == (
        "This run files CORRECTIONS of every seller already filed: 122 seller(s)."
    )
    deletion = trigger.what_it_files(conf | {"mode": "deletion", "sellers": ["S1", "S2"]}, filed)
    assert deletion[1] == "This run files DELETIONS: the filed records of 2 seller(s) named are withdrawn."
    first = trigger.what_it_files(conf | {"mode": "auto"}, {})
    assert first[:2] == [
        "The ledger holds 0 seller(s) as filed for 2025 in the test space (none).",
        "Nothing is filed for this year yet: every reportable seller is filed as new.",
    ]


@pytest.mark.parametrize(
    ("routing", "fields", "words"),
    [
        ("nexus", {"authorities": ["DE", "LT"]}, "Refused for authorities DE: this operator files in LT only"),
        ("jurisdiction", {"mode": "correction"}, "Refused for mode correction: a preview (routing 'jurisdiction')"),
        (
            "jurisdiction",
            {"environment": "prod"},
            "The configuration's routing 'jurisdiction' with environment 'prod' is refused.",
        ),
    ],
    ids=["another member state under nexus", "a correction in a preview", "a preview in production"],
)
def test_the_page_refuses_what_prepare_refuses(
    plugins: Any, tmp_path: Path, routing: str, fields: dict[str, Any], words: str
) -> None:
    """The configuration's routing and filing state: the page and ``prepare`` run the same
    function (``reporting.pipeline.routing_problems``), so they refuse with the same sentence."""
    from reporting.errors import ConfigError
    from reporting.pipeline import prepare

    trigger, _ = plugins
    good = {"reporting_year": "2025", "as_of": "2025-12-31", "environment": "test", "mode": "auto"}
    choice = trigger.read_choice(form(**(good | fields)), today=TODAY, config=demo_config(routing=routing))
    assert choice.conf is None
    (problem,) = choice.problems
    assert problem.startswith(words), problem
    cfg = tmp_path / "dac7.toml"
    text = (REPO / "dac7.toml").read_text(encoding="utf-8")
    cfg.write_text(text.replace('routing = "nexus"', f'routing = "{routing}"'), encoding="utf-8")
    values = good | fields
    with pytest.raises(ConfigError) as refused:
        prepare(
            config_path=cfg,
            year=2025,
            out_dir=tmp_path / "out",
            staging_root=tmp_path / "staging",
            timestamp=datetime(2026, 1, 20, 12, 0),
            as_of=date(2025, 12, 31),
            environment=values["environment"],
            mode=values["mode"],
            authorities=values.get("authorities"),
        )
    assert str(refused.value) == problem
    assert not (tmp_path / "staging").exists()


def test_the_page_lets_through_what_prepare_lets_through(plugins: Any) -> None:
    trigger, _ = plugins
    good = {"reporting_year": "2025", "as_of": "2025-12-31", "environment": "test", "mode": "auto"}
    assert trigger.read_choice(form(**good, authorities=["LT"]), today=TODAY, config=CONFIG).problems == []
    preview = demo_config(routing="jurisdiction")
    assert trigger.read_choice(form(**good, authorities=["DE", "IT"]), today=TODAY, config=preview).problems == []


def filed_ledger(url: str) -> None:
    """A ledger with LT 2025 filed in test (3 sellers, one of them deleted later) and a filing
    of another year and of prod."""
    import uuid

    from reporting.ledger import PO_KEY, content_hash, open_ledger, plan_filing
    from reporting.ledger.model import SELLER

    def current(sellers: list[str]) -> dict[Any, Any]:
        items = {PO_KEY: {"operator": "Demo Market"}} | {(SELLER, s): {"seller": s, "name": "Ona"} for s in sellers}
        return {key: (content_hash(content), content) for key, content in items.items()}

    with open_ledger(url) as ledger:

        def file(environment: str, year: int, names: list[str], **kw: Any) -> None:
            live = ledger.live_records(environment, "LT", year)
            messages = plan_filing(
                current(names),
                live,
                profile_expects_nil=False,
                new_id=lambda purpose: f"LT{year}-{uuid.uuid4().hex}",
                environment=environment,
                authority="LT",
                year=year,
                **kw,
            )
            for m in messages:
                ref = f"LT{year}LT{uuid.uuid4().hex}"
                ledger.record_message(
                    m,
                    message_ref_id=ref,
                    authority="LT",
                    operator="LT304567891",
                    year=year,
                    environment=environment,
                    file_name=f"LT/{ref}.xml",
                    sha256="0" * 64,
                    run_id=str(uuid.uuid4()),
                )
                ledger.mark_published(ref)

        file("test", 2025, ["S1", "S2", "S3"])
        file("test", 2025, ["S1", "S2", "S3"], mode="deletion", sellers=["S3"])
        file("test", 2024, ["S1"])
        file("prod", 2025, ["S1", "S2"])


def test_the_check_counts_the_filed_sellers_without_reading_a_record(plugins: Any, tmp_path: Path) -> None:
    """One counting query per check: the same sellers as ``live_records``, no record content."""
    from reporting.ledger import open_ledger

    trigger, _ = plugins
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    filed_ledger(url)
    with open_ledger(url, create=False) as ledger:
        live = ledger.live_records("test", "LT", 2025)
        assert sorted(key[1] for key in live if key[0] == "seller") == ["S1", "S2"]
        assert ledger.filed_sellers("test", 2025) == {"LT": 2}
        assert ledger.filed_sellers("prod", 2025) == {"LT": 2}
        assert ledger.filed_sellers("test", 2023) == {}

        class NoContent:
            def filed_sellers(self, environment: str, year: int, *, operator_id: str | None = None) -> dict[str, int]:
                return dict(ledger.filed_sellers(environment, year, operator_id=operator_id))

            def live_records(self, *args: Any, **kwargs: Any) -> Any:
                raise AssertionError("the check must not load records with their content")

        assert trigger.count_filed(NoContent(), "test", 2025) == {"LT": 2}
        # a group's operator: its own filings only (every message here is the default operator's)
        assert trigger.count_filed(NoContent(), "test", 2025, "default") == {"LT": 2}
        assert trigger.count_filed(NoContent(), "test", 2025, "lt2") == {}


# ------------------------------------------------------------------ the trigger page's requests


@pytest.fixture
def page_app(plugins: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The trigger page's routes on an app of their own: a logged-in user who may trigger, the
    demo configuration, a ledger with LT 2025 filed; creating a run is not part of these tests."""
    import airflow.api_fastapi.app
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    trigger, _ = plugins

    class User:
        def get_name(self) -> str:
            return "anna"

    class AuthManager:
        def is_authorized_dag(self, **kw: Any) -> bool:
            return True

    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    filed_ledger(url)
    monkeypatch.setattr(airflow.api_fastapi.app, "get_auth_manager", lambda: AuthManager())
    monkeypatch.setenv("DAC7_CONFIG", str(REPO / "dac7.toml"))
    monkeypatch.setenv("DAC7_LEDGER_URL", url)
    monkeypatch.setenv("DAC7_OUT_DIR", str(tmp_path / "out"))
    app = FastAPI()
    trigger.add_routes(app, lambda: User())
    return app, TestClient(app, base_url="http://airflow.example")


GOOD = {"reporting_year": "2025", "as_of": "2025-12-31", "environment": "test", "mode": "auto", "step": "check"}


def form_token_of(client: Any, **headers: str) -> str:
    import re

    page = client.get("/trigger", headers=headers).text
    (token,) = re.findall(r'<input type="hidden" name="csrf_token" value="([0-9a-f]{64})">', page)
    return str(token)


def test_the_trigger_post_runs_in_the_thread_pool(page_app: Any) -> None:
    """Reading the configuration and the ledger and creating the run block: the POST route is a
    plain function, which FastAPI runs in its thread pool, never on the event loop."""
    import inspect

    app, _ = page_app
    (post,) = [r for r in app.routes if getattr(r, "path", "") == "/trigger" and "POST" in r.methods]
    assert not inspect.iscoroutinefunction(post.endpoint)


def test_a_forged_post_is_refused(page_app: Any) -> None:
    """The login cookie and this site's Origin are not enough: the form's token must come too;
    an Authorization header that is not a bearer token does not stand in for the Origin."""
    import dac7_board
    from airflow.api_fastapi.auth.tokens import get_signing_key

    _, client = page_app
    client.cookies.set("_token", "the-login-of-anna")
    ours = {"Origin": "http://airflow.example"}
    status = client.post("/trigger", data=GOOD, headers=ours)
    assert status.status_code == 403 and "The form has expired or was not made for your login" in status.text
    status = client.post("/trigger", data=GOOD | {"csrf_token": "0" * 64}, headers=ours)
    assert status.status_code == 403 and "no run was created" in status.text
    token = form_token_of(client)
    # a token of another login, or the board's upload token of this login, is not this form's
    client.cookies.set("_token", "the-login-of-bob")
    assert client.post("/trigger", data=GOOD | {"csrf_token": token}, headers=ours).status_code == 403
    client.cookies.set("_token", "the-login-of-anna")
    board = dac7_board.form_token(get_signing_key("api", "secret_key"), "the-login-of-anna")
    assert board != token
    assert client.post("/trigger", data=GOOD | {"csrf_token": board}, headers=ours).status_code == 403
    # without this site's Origin: an Authorization header of another scheme is no API client
    status = client.post("/trigger", data=GOOD | {"csrf_token": token}, headers={"Authorization": "Basic eDp5"})
    assert status.status_code == 403 and "A run is triggered from the DAC7 trigger page itself" in status.text
    # the form's own token, from this site: the check page, with the sellers filed for 2025
    status = client.post("/trigger", data=GOOD | {"csrf_token": token}, headers=ours)
    assert status.status_code == 200, status.text
    assert "The ledger holds 2 seller(s) as filed for 2025 in the test space (LT: 2)." in status.text
    assert f'name="csrf_token" value="{token}"' in status.text  # carried to the trigger step


def test_an_api_client_posts_with_its_bearer_token_and_the_forms_token(page_app: Any) -> None:
    _, client = page_app
    bearer = {"Authorization": "Bearer the-token-of-a-client"}
    assert client.post("/trigger", data=GOOD, headers=bearer).status_code == 403
    token = form_token_of(client, **bearer)
    status = client.post("/trigger", data=GOOD | {"csrf_token": token}, headers=bearer)
    assert status.status_code == 200, status.text
    refused = client.post("/trigger", data=GOOD | {"csrf_token": token, "authorities": "DE"}, headers=bearer)
    assert refused.status_code == 400
    assert "Refused for authorities DE: this operator files in LT only" in refused.text


# ------------------------------------------------------------- a group of operators: the operator


@pytest.fixture
def group_toml(tmp_path: Path) -> Path:
    """The demo configuration with two further operators: lt2 (files in LT too) and de_gmbh (DE)."""
    from builders import GROUP_TOML

    path = tmp_path / "group.toml"
    path.write_text((REPO / "dac7.toml").read_text(encoding="utf-8") + GROUP_TOML, encoding="utf-8")
    return path


def group_form(trigger: Any, config: Any, choice: Any = None) -> Any:
    from lxml import html

    page = trigger.form_page(
        choice or trigger.Choice(),
        today=TODAY,
        config_environment="test",
        filing_state="LT",
        may_trigger=True,
        page=lambda title, body: "".join(body),
        operators=trigger.group_operators(config),
    )
    return html.fromstring(page)


def test_the_operator_field_is_offered_only_for_a_group(plugins: Any, group_toml: Path) -> None:
    """A single operator's form has no operator field; a group's lists every operator with the
    member state it files in, after the choice of every operator (the default)."""
    from reporting.config import load_config

    trigger, _ = plugins
    group = load_config(group_toml)
    assert trigger.group_operators(CONFIG) == []
    single = group_form(trigger, CONFIG)
    assert not single.xpath("//select[@name='operator']")
    assert "; the operator files in LT. Every choice" in single.xpath("//p")[1].text_content()
    assert trigger.group_operators(group) == [("default", "LT"), ("lt2", "LT"), ("de_gmbh", "DE")]
    page = group_form(trigger, group)
    assert page.xpath("//p")[1].text_content() == (
        "The configuration file's environment is test; a group of operators: default files in LT, lt2 files in "
        "LT, de_gmbh files in DE. Every choice below is checked before the run is created."
    )
    options = page.xpath("//form[@id='trigger-form']//select[@name='operator']/option")
    assert [(o.get("value"), o.text_content(), o.get("selected")) for o in options] == [
        ("", "every operator of the group", None),
        ("default", "default (files in LT)", None),
        ("lt2", "lt2 (files in LT)", None),
        ("de_gmbh", "de_gmbh (files in DE)", None),
    ]
    # a form sent back with its problems keeps the operator chosen
    choice = trigger.read_choice(form(operator="lt2"), today=TODAY, config=group)
    kept = group_form(trigger, group, choice).xpath("//select[@name='operator']/option[@selected]/@value")
    assert kept == ["lt2"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"operator": "fr_sas"}, "Choose an operator of the configuration: default, lt2, de_gmbh."),
        ({"operator": "LT2"}, "Choose an operator of the configuration: default, lt2, de_gmbh."),
        (
            {"mode": "correction"},
            "mode correction files what an authority asked of one operator: name it (--operator ID, or the Param "
            "operator); the run would file for default, lt2, de_gmbh",
        ),
        (
            {"mode": "deletion", "sellers": "S1"},
            "mode deletion files what an authority asked of one operator: name it (--operator ID, or the Param "
            "operator); the run would file for default, lt2, de_gmbh",
        ),
        (
            {"operator": "lt2", "authorities": ["DE"]},
            "Refused for authorities DE: no operator of the run files there (lt2 in LT); each operator files in "
            "its own member state only",
        ),
    ],
    ids=["an unknown operator", "an operator id in the wrong case", "a correction", "a deletion", "lt2 to DE"],
)
def test_a_groups_run_that_cannot_run_is_refused(
    plugins: Any, group_toml: Path, fields: dict[str, Any], expected: str
) -> None:
    from reporting.config import load_config

    trigger, _ = plugins
    good = {"reporting_year": "2025", "as_of": "2025-12-31", "environment": "test", "mode": "auto"}
    choice = trigger.read_choice(form(**(good | fields)), today=TODAY, config=load_config(group_toml))
    assert (choice.conf, choice.problems) == (None, [expected])


def test_the_chosen_operator_is_the_runs_conf_and_the_check_page_carries_it(plugins: Any, group_toml: Path) -> None:
    """One operator of the group: the conf's ``operator`` (the Param of dac7_annual), a mode other
    than auto allowed with it; every operator (the field left empty): no ``operator`` in the conf."""
    import re
    from html import unescape

    from reporting.config import load_config

    trigger, _ = plugins
    group = load_config(group_toml)
    good = {"reporting_year": "2025", "as_of": "2025-12-31", "environment": "test"}
    every = trigger.read_choice(form(**good, mode="auto", operator=""), today=TODAY, config=group)
    assert every.problems == [] and every.conf is not None and "operator" not in every.conf
    choice = trigger.read_choice(form(**good, mode="correction", operator="lt2"), today=TODAY, config=group)
    assert choice.problems == []
    assert choice.conf == {
        "reporting_year": 2025,
        "as_of": "2025-12-31",
        "environment": "test",
        "mode": "correction",
        "sellers": None,
        "authorities": None,
        "operator": "lt2",
    }
    page = trigger.confirm_page(choice, ["x"], page=lambda title, body: "".join(body))
    assert "<tr><th>Operator</th><td>lt2</td></tr>" in page
    hidden: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page):
        hidden.setdefault(name, []).append(unescape(value))
    assert hidden["operator"] == ["lt2"]
    assert trigger.read_choice(hidden, today=TODAY, config=group).conf == choice.conf
    # every operator: no operator field on the check page, nor a row
    page = trigger.confirm_page(every, ["x"], page=lambda title, body: "".join(body))
    assert 'name="operator"' not in page and "<th>Operator</th>" not in page


def test_a_groups_run_is_triggered_with_the_operator_chosen(
    page_app: Any, group_toml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the page's routes: the form lists the group's operators; the check counts the
    chosen operator's filed sellers alone (every message of the ledger is the default
    operator's); the trigger hands Airflow the conf with ``operator``; an unknown operator is
    answered with HTTP 400 and the sentence. (A real Airflow's run with that conf:
    ``tests/dags/test_ui_group.py``.)"""
    import airflow.api.common.trigger_dag

    monkeypatch.setenv("DAC7_CONFIG", str(group_toml))
    created: list[dict[str, Any]] = []

    class Run:
        run_id = "manual__2026-01-20T10:00:00+00:00"

    def trigger_dag(dag_id: str, **kw: Any) -> Run:
        created.append({"dag_id": dag_id} | kw)
        return Run()

    monkeypatch.setattr(airflow.api.common.trigger_dag, "trigger_dag", trigger_dag)
    _, client = page_app
    client.cookies.set("_token", "the-login-of-anna")
    ours = {"Origin": "http://airflow.example"}
    page = client.get("/trigger").text
    assert '<option value="lt2">lt2 (files in LT)</option>' in page
    assert '<option value="de_gmbh">de_gmbh (files in DE)</option>' in page
    token = form_token_of(client)
    check = client.post("/trigger", data=GOOD | {"csrf_token": token, "operator": "lt2"}, headers=ours)
    assert check.status_code == 200, check.text
    assert "The ledger holds 0 seller(s) as filed for 2025 in the test space (none)." in check.text
    default = client.post("/trigger", data=GOOD | {"csrf_token": token, "operator": "default"}, headers=ours)
    assert "The ledger holds 2 seller(s) as filed for 2025 in the test space (LT: 2)." in default.text
    unknown = client.post("/trigger", data=GOOD | {"csrf_token": token, "operator": "fr_sas"}, headers=ours)
    assert unknown.status_code == 400
    assert "Choose an operator of the configuration: default, lt2, de_gmbh." in unknown.text
    assert created == []
    done = client.post(
        "/trigger", data=GOOD | {"csrf_token": token, "operator": "lt2", "step": "trigger"}, headers=ours
    )
    assert done.status_code == 201, done.text
    [run] = created
    assert run["dag_id"] == "dac7_annual" and run["triggering_user_name"] == "anna"
    assert run["conf"] == {
        "reporting_year": 2025,
        "as_of": "2025-12-31",
        "environment": "test",
        "mode": "auto",
        "sellers": None,
        "authorities": None,
        "operator": "lt2",
    }


# ------------------------------------------------------------------------------- the run note


def test_the_note_says_what_the_run_filed(plugins: Any) -> None:
    from dac7_support.common import run_outcome

    _, links = plugins
    manifest = {
        "reporting_year": 2025,
        "environment": "test",
        "as_of": "2025-12-31",
        "preview": False,
        "files": [
            {"authority": "LT", "sellers": 120, "records": {"new": 100, "correction": 20}},
            {"authority": "LT", "sellers": 2, "records": {"deletion": 2}},
        ],
        "summary": {"sellers_read": 300, "reportable": 120},
        "data_checks": {"stages": {"extract": {"quarantined_sellers": 1}, "identity": {"quarantined_sellers": 2}}},
        "due_diligence": {"sellers": 26},
        "warnings": ["w"],
    }
    outcome = {"reporting_year": 2025, "files": 2, "sellers": 122} | run_outcome(manifest)
    assert outcome["records"] == {"new": 100, "correction": 20, "deletion": 2}
    assert links.annual_note(outcome, "http://airflow.example/tools") == (
        "[DAC7 2025 filing (test, as of 2025-12-31)](/tools/dac7/2025/): **2 files, 122 sellers**, "
        "**20 corrections, 2 deletions**\n"
        "- sent to LT: 20 correction, 2 deletion, 100 new\n"
        "- **20 corrections and 2 deletions of records filed before**\n"
        "- sellers read 300, reportable 120 (a seller may be in several files: one per authority and kind)\n"
        "- 3 sellers quarantined; 26 sellers with due-diligence findings; 1 warning"
    )
    nothing = outcome | {"files": 0, "sellers": 0, "records": {}, "quarantined": 0, "due_diligence": 0, "warnings": 0}
    assert links.annual_note(nothing, None).splitlines()[:2] == [
        "[DAC7 2025 filing (test, as of 2025-12-31)](/dac7/2025/): **0 files, 0 sellers**",
        "- nothing to file: no file was rendered, nothing was sent",
    ]


def test_a_note_written_by_hand_is_kept_below(plugins: Any) -> None:
    _, links = plugins
    ours = links.failed_note("dac7_annual", ["prepare"], None)
    assert ours.startswith("[DAC7 run failed](/dac7/): **failed task(s): prepare**\n")
    assert links.merged_note(ours, None) == ours
    kept = links.merged_note(ours, "checked by Anna")
    assert kept == ours + "\n\n---\n\nchecked by Anna"
    # a rerun replaces the DAC7 lines and keeps the hand-written ones
    again = links.merged_note("[DAC7 2025 filing](/dac7/2025/): **1 file, 3 sellers**", kept)
    assert again == "[DAC7 2025 filing](/dac7/2025/): **1 file, 3 sellers**\n\n---\n\nchecked by Anna"
    assert len(links.merged_note("x" * 2000, None)) == 1000


@pytest.mark.parametrize(
    "by_hand",
    [
        "[DAC7 2025] sent to LT by hand on 3 February -- Anna",
        "[DAC7 review](https://wiki.example/dac7): **checked**, see the ticket",
        "- checked by Anna",
    ],
)
def test_a_note_by_hand_that_starts_like_ours_is_kept(plugins: Any, by_hand: str) -> None:
    _, links = plugins
    ours = links.failed_note("dac7_annual", ["prepare"], None)
    assert links.merged_note(ours, by_hand) == ours + "\n\n---\n\n" + by_hand
    # written below our earlier lines without the separator: the person's lines stay, ours go
    later = links.watch_note({"reporting_year": 2025, "reportable": 3, "sellers": 9}, None)
    if not by_hand.startswith("- "):
        assert links.merged_note(later, ours + "\n" + by_hand) == later + "\n\n---\n\n" + by_hand


def test_a_rerun_replaces_every_line_of_ours(plugins: Any) -> None:
    from dac7_support.common import run_outcome

    _, links = plugins
    manifest = {
        "files": [{"authority": "LT", "records": {"new": 1, "correction": 1, "deletion": 1}}],
        "summary": {"sellers_read": 3, "reportable": 2},
        "data_checks": {"stages": {"extract": {"quarantined_sellers": 1}}},
        "warnings": ["w"],
    }
    outcome = {"reporting_year": 2025, "files": 1, "sellers": 3} | run_outcome(manifest)
    for earlier in (
        links.annual_note(outcome, None),
        links.watch_note({"reporting_year": 2025}, None),
        links.failed_note("dac7_annual", [], None),
    ):
        assert links.merged_note("[DAC7 x](/): **y**", earlier) == "[DAC7 x](/): **y**"
        assert links.merged_note("[DAC7 x](/): **y**", earlier + "\n\n---\n\nok") == "[DAC7 x](/): **y**\n\n---\n\nok"


def test_the_note_is_no_longer_the_persons_once_rewritten(plugins: Any) -> None:
    """Airflow's API records who edited a note (``DagRunNote.user_id``): once the scheduler
    rewrites the text, the note is not that person's any more."""
    from types import SimpleNamespace

    _, links = plugins
    note = SimpleNamespace(content="checked by Anna", user_id="anna")
    run = SimpleNamespace(dag_run_note=note)
    links.write_note(run, "[DAC7 run failed](/dac7/): **failed task(s): prepare**")
    assert note.user_id is None
    assert note.content.endswith("\n\n---\n\nchecked by Anna")


def test_the_listener_does_not_flush_the_schedulers_session(plugins: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its queries run without autoflush, and no error of the listener reaches the scheduler."""
    from types import SimpleNamespace

    import sqlalchemy.orm

    _, links = plugins
    seen: list[bool] = []

    class Session:
        autoflush = True

        @property
        def no_autoflush(self) -> Any:
            from contextlib import contextmanager

            @contextmanager
            def off() -> Iterator[None]:
                self.autoflush = False
                try:
                    yield
                finally:
                    self.autoflush = True

            return off()

    session = Session()

    def outcome(dag_run: Any, task_id: str, s: Any) -> Any:
        seen.append(s.autoflush)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(sqlalchemy.orm, "object_session", lambda run: session)
    monkeypatch.setattr(links, "_outcome", outcome)
    monkeypatch.setattr(links, "_base_url", lambda: None)
    links.on_dag_run_success(SimpleNamespace(dag_id="dac7_annual", run_id="r1"), "success")
    assert seen == [False]


# ----------------------------------------------------------------------- a real Airflow, Chromium


def airflow_env(home: Path, port: int, dac7: dict[str, str]) -> dict[str, str]:
    return (
        base_env()
        | {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in ROLES.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        }
        | dac7
    )


class Standalone:
    def __init__(self, base: str, passwords: dict[str, str], log: Path, out: Path) -> None:
        self.base, self.passwords, self.log, self.out = base, passwords, log, out

    def api(self, user: str = ADMIN) -> Api:
        return Api.log_in(self.base, user, self.passwords[user])

    def wait_for_run(self, run_id: str, timeout: float = 600) -> dict[str, Any]:
        api, deadline = self.api(), time.monotonic() + timeout
        path = f"/dags/dac7_annual/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        while time.monotonic() < deadline:
            run = api.get(path)
            if run["state"] in ("success", "failed"):
                # the note is written with the run's state, in the same transaction
                return run
            time.sleep(2)
        raise AssertionError(f"run {run_id} did not end within {timeout:g} s\n{tail(self.log, 60)}")


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    from dac7_demo import generate_demo

    tmp = tmp_path_factory.mktemp("trigger")
    home = tmp / "airflow-home"
    home.mkdir()
    passwords = {user: secrets.token_urlsafe(12) for user in ROLES}
    (home / "passwords.json").write_text(json.dumps(passwords), encoding="utf-8")
    source = f"sqlite:///{tmp / 'marketplace.db'}"
    generate_demo(source, sellers=200, seed=7, year=YEAR, replace=True)
    dac7 = {
        "DAC7_CONFIG": str(REPO / "dac7.toml"),  # the demo configuration: environment test, files in LT
        "DAC7_SOURCE_URL": source,
        "DAC7_OUT_DIR": str(tmp / "out"),
        "DAC7_STAGING_DIR": str(tmp / "staging"),
        "DAC7_LEDGER_URL": f"sqlite:///{tmp / 'ledger.sqlite3'}",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = airflow_env(home, port, dac7)
    log = tmp / "standalone.log"
    migrate = subprocess.run(
        [str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    server = spawn([str(AIRFLOW), "standalone"], env, log, cwd=tmp)
    try:
        wait_until_healthy(server, base, log, timeout=240)
        stack = Standalone(base, passwords, log, tmp / "out")
        api, deadline = stack.api(), time.monotonic() + 240
        while time.monotonic() < deadline:
            status, body = api("GET", "/dags/dac7_annual")
            if status == 200 and body.get("is_paused") is False:
                break
            time.sleep(1)
        else:
            raise AssertionError(f"dac7_annual was not parsed\n{tail(log, 60)}")
        yield stack
    finally:
        stop(server, timeout=60)


def post_form(
    base: str, path: str, fields: dict[str, Any], token: str, *, cookie_from: str | None = None
) -> tuple[int, str]:
    """POST of a form as an API client (a bearer token), or as a browser on the page ``cookie_from``
    (the login cookie and that page's Origin)."""
    import re

    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie_from:
        headers |= {"Cookie": f"_token={token}", "Origin": cookie_from}
    else:
        headers["Authorization"] = f"Bearer {token}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    if "csrf_token" not in fields:  # the form's token, as the page gives it to this login
        with opener.open(urllib.request.Request(f"{base}{path}", headers=headers), timeout=60) as response:
            found = re.findall(r'name="csrf_token" value="([0-9a-f]+)"', response.read().decode())
        fields = fields | {"csrf_token": found[0]}
    data = urllib.parse.urlencode(fields, doseq=True).encode()
    req = urllib.request.Request(f"{base}{path}", data=data, method="POST", headers=headers)
    try:
        with opener.open(req, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def shot(browser: Chromium, name: str) -> None:
    """A screenshot (a PNG), into ``$DAC7_SCREENSHOTS_DIR`` when set (``docs/img`` renews the images
    of ``docs/desk-trigger.md``): a test run leaves the checkout unchanged otherwise."""
    png = browser.screenshot()
    assert png.startswith(b"\x89PNG"), name
    folder = os.environ.get("DAC7_SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(png)


def text_of(browser: Chromium) -> str:
    return str(browser.evaluate("document.body.innerText"))


@pytest.mark.slow
def test_no_warning_and_the_forms_guard_their_users(standalone: Standalone, tmp_path: Path) -> None:
    base, api = standalone.base, standalone.api()
    # what the DAG page's banner would show: DAG warnings and import errors
    assert api.get("/dagWarnings")["dag_warnings"] == []
    assert api.get("/importErrors")["import_errors"] == []

    with Chromium.launch(tmp_path / "chromium", width=1400, height=1000) as browser:
        log_in(browser, base, standalone.passwords[ADMIN], "/dags/dac7_annual", user=ADMIN)
        wait_for(browser, "document.body.innerText.includes('dac7_annual')", "the DAG page")
        wait_for(browser, "[...document.querySelectorAll('button')].some(b => /Trigger/.test(b.innerText))", "Trigger")
        time.sleep(2)  # the page's queries (warnings among them) have answered
        page = text_of(browser)
        assert "runtime-varying" not in page and "Dag version" not in page, page[:2000]
        shot(browser, "trigger-dag-page.png")

        # Airflow's own form: every field with its help text
        browser.evaluate("[...document.querySelectorAll('button')].find(b => /Trigger/.test(b.innerText)).click()")
        wait_for(browser, "document.body.innerText.includes('Run Parameters')", "the trigger form")
        for button in ("Run Parameters",):
            browser.call(
                "(t) => [...document.querySelectorAll('button')].find(b => b.innerText.includes(t))?.click()", button
            )
        wait_for(browser, "document.body.innerText.includes('Required for a run triggered by hand')", "help text")
        form_text = text_of(browser)
        assert "Refunds dated after this day" in form_text
        assert "Filing mode" in form_text and "Sellers to delete" in form_text
        assert "Empty: every operator." in form_text  # the Param operator, a group's run for one operator
        # submitted untouched: Airflow creates the run (its API checks one Param at a time), and
        # prepare refuses it before anything is read: no as-of date of yesterday by accident
        before = {r["dag_run_id"] for r in api.get("/dags/dac7_annual/dagRuns")["dag_runs"]}
        browser.evaluate(
            "[...document.querySelectorAll('button')].filter(b => b.innerText.trim() === 'Trigger').at(-1).click()"
        )
        deadline = time.monotonic() + 30
        while not (
            created := [r for r in api.get("/dags/dac7_annual/dagRuns")["dag_runs"] if r["dag_run_id"] not in before]
        ):
            assert time.monotonic() < deadline, "the form created no run"
            time.sleep(0.5)
        untouched = created[0]
        assert untouched["conf"]["as_of"] is None and untouched["logical_date"] is not None, untouched

        # the DAC7 trigger page: a deletion without sellers is refused before any run exists
        browser.navigate(f"{base}/dac7/trigger")
        wait_for(browser, "document.querySelector('#trigger-form')", "the DAC7 trigger page")
        assert browser.evaluate("document.querySelector('#config-environment').innerText") == "test"
        fill = """(year, asOf, env, mode) => {
            const f = document.querySelector('#trigger-form');
            f.reporting_year.value = year; f.as_of.value = asOf; f.mode.value = mode;
            f.querySelector(`input[name=environment][value=${env}]`).checked = true;
            f.submit();
        }"""
        browser.call(fill, str(YEAR), f"{YEAR}-12-31", "test", "deletion")
        wait_for(browser, "document.querySelector('#problems')", "the refusal")
        problems = browser.evaluate("document.querySelector('#problems').innerText")
        assert "Mode 'deletion' needs the sellers to delete: list their seller ids under sellers." in problems
        shot(browser, "trigger-refused.png")

        # a good test run: checked, then triggered as the logged-in user
        browser.call(fill, str(YEAR), f"{YEAR}-12-31", "test", "auto")
        wait_for(browser, "document.querySelector('#confirm-form')", "the check page")
        said = browser.evaluate("document.querySelector('#what-it-files').innerText")
        assert f"The ledger holds 0 seller(s) as filed for {YEAR} in the test space (none)." in said
        shot(browser, "trigger-check.png")
        browser.evaluate("document.querySelector('#confirm-form').submit()")
        wait_for(browser, "document.querySelector('#run-id')", "the created run")
        run_id = browser.evaluate("document.querySelector('#run-id').innerText")

    refused = standalone.wait_for_run(untouched["dag_run_id"])
    assert refused["state"] == "failed"
    assert refused["note"].startswith("[DAC7 run failed](/dac7/): **failed task(s): prepare**\n"), refused["note"]
    log = api.get(
        f"/dags/dac7_annual/dagRuns/{urllib.parse.quote(untouched['dag_run_id'], safe='')}"
        "/taskInstances/prepare/logs/1?full_content=true"
    )
    assert "A run triggered by hand must name its reporting year, its as-of date and its environment" in json.dumps(log)

    run = standalone.wait_for_run(run_id)
    assert run["state"] == "success", tail(standalone.log, 80)
    assert run["triggering_user_name"] == ADMIN
    assert run["conf"] == {
        "reporting_year": YEAR,
        "as_of": f"{YEAR}-12-31",
        "environment": "test",
        "mode": "auto",
        "sellers": None,
        "authorities": None,
    }
    manifest = json.loads((standalone.out / str(YEAR) / "manifest.json").read_text(encoding="utf-8"))
    files, sellers = len(manifest["files"]), sum(f["sellers"] for f in manifest["files"])
    assert files == 1 and sellers > 0
    note = run["note"]
    assert note.startswith(
        f"[DAC7 {YEAR} filing (test, as of {YEAR}-12-31)](/dac7/{YEAR}/): **1 file, {sellers} sellers**\n"
    ), note
    assert f"- sent to LT: {sellers} new\n" in note

    with Chromium.launch(tmp_path / "chromium-run", width=1400, height=1000) as browser:
        path = f"/dags/dac7_annual/runs/{urllib.parse.quote(run_id, safe='')}"
        log_in(browser, base, standalone.passwords[ADMIN], path, user=ADMIN)
        link = f"DAC7 {YEAR} filing (test, as of {YEAR}-12-31)"
        wait_for(browser, f"document.body.innerText.includes('{link}')", "the run note in the run's header")
        href = browser.call(
            "(t) => [...document.querySelectorAll('a')].find(a => a.innerText.includes(t))?.getAttribute('href')", link
        )
        assert href == f"/dac7/{YEAR}/"
        assert f"{files} file, {sellers} sellers" in text_of(browser)
        shot(browser, "trigger-run-note.png")


@pytest.mark.slow
def test_a_bad_combination_through_the_apis(standalone: Standalone) -> None:
    base, admin = standalone.base, standalone.api()
    bad = {"reporting_year": YEAR, "as_of": f"{YEAR}-12-31", "environment": "test", "mode": "deletion"}
    # the DAC7 trigger page, as an API client: HTTP 400 with the sentence, and no run
    before = admin.get("/dags/dac7_annual/dagRuns")["total_entries"]
    status, page = post_form(base, "/dac7/trigger", bad | {"step": "trigger"}, admin.token)
    assert status == 400
    assert "Mode &#x27;deletion&#x27; needs the sellers to delete" in page
    assert admin.get("/dags/dac7_annual/dagRuns")["total_entries"] == before
    # the check after the test run of the first test: the sellers it filed, and what auto may correct
    manifest = json.loads((standalone.out / str(YEAR) / "manifest.json").read_text(encoding="utf-8"))
    filed = sum(f["sellers"] for f in manifest["files"])
    status, page = post_form(base, "/dac7/trigger", bad | {"mode": "auto", "step": "check"}, admin.token)
    assert status == 200
    assert f"The ledger holds {filed} seller(s) as filed for {YEAR} in the test space (LT: {filed})." in page
    assert f"CORRECTIONS for those of the {filed} filed seller(s) whose figures changed" in page
    # a viewer may read the page but not trigger
    viewer = standalone.api(COMPLIANCE)
    good = bad | {"mode": "auto", "step": "trigger"}
    status, page = post_form(base, "/dac7/trigger", good, viewer.token)
    assert status == 403 and "may not trigger runs of dac7_annual" in page
    # without a login: 401; a page elsewhere cannot post the form with the login cookie
    status, _ = call(base, "POST", "/dac7/trigger", None)
    assert status == 401
    status, page = post_form(base, "/dac7/trigger", good, admin.token, cookie_from="https://elsewhere.example")
    assert status == 403 and "A run is triggered from the DAC7 trigger page itself" in page
    assert admin.get("/dags/dac7_annual/dagRuns")["total_entries"] == before

    # Airflow's REST API checks one Param at a time: the run is created, and prepare refuses it
    status, run = admin("POST", "/dags/dac7_annual/dagRuns", {"logical_date": None, "conf": bad})
    assert status == 200, run
    ended = standalone.wait_for_run(run["dag_run_id"], timeout=300)
    assert ended["state"] == "failed"
    assert ended["note"].startswith("[DAC7 run failed](/dac7/): **failed task(s): prepare**\n"), ended["note"]
