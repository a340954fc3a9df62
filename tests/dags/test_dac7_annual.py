"""The annual DAG (and the deadline watch that goes with it): every DAG file parses fast and clean,
the stages are wired in order with the per-authority fan-out, the Params form refuses bad values
and combinations, a production filing waits for a second person's approval, the period comes from
the run (never the clock), and, through ``dag.test()``, a demo marketplace is filed and previewed.

The demo operator files in LT: with the demo configuration (``dac7.toml``, routing ``nexus``) a run
is the filing, one message to LT with every reportable seller. The fan-out over several member
states is a preview's (:func:`preview_config`: routing ``jurisdiction``, test environment only),
which renders what each state receives from LT into ledgers of its own in the run's staging."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
# Trap: under `filterwarnings = error`, dag.test() fails when the in-process execution API
# loads fastapi.testclient and Starlette warns about httpx.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")

DAG_FILE = DAGS / "dac7_annual.py"
DAG_IDS = {"dac7_annual", "dac7_quarterly", "dac7_deadline", "dac7_housekeeping", "dac7_due_diligence"}
STAGES = [
    "prepare",
    "extract",
    "aggregate",
    "apply_rules",
    "plan",
    "render",
    "files",
    "validate",
    "gate",
    "approve",
    "publish",
    "transmit",
    "protocol",
    "finalize",
    "statements",
]
#: beside finalize: each filing sent its authority's way, then the wait for its protocol
TRANSMISSION = ("transmit", "protocol")
PER_AUTHORITY = ("render", "publish", "transmit", "protocol")
#: mapped: per authority, and validate per rendered file (one per authority in the demo)
MAPPED = ("render", "validate", "publish", "transmit", "protocol")
RETRIED = ("extract", "plan", "render", "validate", "publish", "transmit", "protocol", "statements")
HEAVY = ("pandas", "lxml", "duckdb", "great_expectations", "pyarrow", "sqlalchemy_utils", "alembic")
#: the reporting modules a DAG file may import at parse time: code lists, the vocabulary (activities,
#: routings, environments, modes), exceptions, and the Connection-to-URL mapping (standard library
#: only; SQLAlchemy is imported when it is called)
LIGHT_REPORTING = {
    "reporting",
    "reporting.countries",
    "reporting.errors",
    "reporting.connections",
    "reporting.vocabulary",
}


def load_dag_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dac7_annual_under_test", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def dag(dagbag: Any) -> Any:
    return dagbag.dags["dac7_annual"]


def fresh_dag(dag_id: str = "dac7_annual") -> Any:
    """A newly parsed DAG for each dag.test() run.

    Trap: dag.test() runs the tasks in this process and merges the run's conf into the
    operators' own params in place, so a second dag.test() of the same DAG object without
    run_conf still sees the first run's Params (measured on Airflow 3.3.2).
    """
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags[dag_id]


# --- (a) integrity, (b) parse time and no heavy imports: every DAG file -----------------------

PARSE_PROBE = """
import json, sys, time
dags = sys.argv[1]
sys.path.append(dags)  # what Airflow's BundleDagBag does for the DAG processor and the workers
import airflow, airflow.sdk
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=dags)
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
    "errors": {str(k): str(v)[:500] for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "modules": sorted(sys.modules),
}))
"""


def test_dag_folder_parses_in_under_2s_without_heavy_imports() -> None:
    """Parse ``dags/`` once in a fresh interpreter (a subprocess) and time it.

    The clock starts after ``import airflow``, ``import airflow.sdk`` and the import of ``DagBag``
    (Airflow's own start-up, 1.0-1.6 s on the 2-core machine, paid by every Airflow process
    whatever its DAGs) and stops when the ``DagBag`` holds every DAG: the figure is what the DAG
    files add, with nothing cached by an earlier parse in this process. The same interpreter then
    shows which modules parsing loaded: no pandas, lxml, DuckDB, Great Expectations or Arrow, and
    no ``reporting`` module but the code lists and the exception classes."""
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(DAGS)],
        env=dict(os.environ),  # AIRFLOW_HOME & co. as conftest.py set them
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert set(result["dag_ids"]) == DAG_IDS
    assert result["seconds"] < 2.0, f"parsing dags/ took {result['seconds']:.2f} s"
    modules = set(result["modules"])
    assert [m for m in HEAVY if m in modules] == []
    assert {m for m in modules if m == "reporting" or m.startswith("reporting.")} <= LIGHT_REPORTING


def test_every_dag_file_parses_in_process(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == DAG_IDS
    for dag in dagbag.dags.values():
        assert dag.doc_md and dag.tags and "dac7" in dag.tags, dag.dag_id
        assert dag.catchup is False and dag.max_active_runs == 1, dag.dag_id


def test_tasks_are_the_stages_in_order(dag: Any) -> None:
    assert [t.task_id for t in dag.topological_sort()] == STAGES
    main_line = [s for s in STAGES if s not in TRANSMISSION]
    for before, after in pairwise(main_line):
        assert before in dag.get_task(after).upstream_task_ids, (before, after)
    # beside finalize: publish > transmit > protocol, and nothing waits for the protocol
    for before, after in pairwise(("publish", *TRANSMISSION)):
        assert dag.get_task(after).upstream_task_ids == (
            {before, "plan", "prepare"} if after == "transmit" else {before}
        )
    assert dag.get_task("protocol").downstream_task_ids == set()
    # every stage gets the run directory from prepare through XCom
    for stage in STAGES[1:]:
        # the approval reads the gate's request; files, the renders; protocol, the transmit's result
        if stage not in ("approve", "files", "protocol"):
            assert "prepare" in dag.get_task(stage).upstream_task_ids, stage


def test_render_publish_are_mapped_per_authority_and_validate_per_file(dag: Any) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    for stage in PER_AUTHORITY:
        task = dag.get_task(stage)
        assert isinstance(task, MappedOperator), stage
        # mapped over the filings plan lists (protocol: over what transmit did for each of them)
        assert ("transmit" if stage == "protocol" else "plan") in task.upstream_task_ids, stage
        # the filing's label: its authority (LT), and in a group's run its operator first (lt2 LT)
        assert task.map_index_template == "{{ filing }}", stage
    validate = dag.get_task("validate")
    assert isinstance(validate, MappedOperator) and validate.upstream_task_ids >= {"files", "prepare"}
    assert validate.map_index_template == "{{ filing }} #{{ file_number }}"
    assert "render" in dag.get_task("files").upstream_task_ids
    for stage in set(STAGES) - set(MAPPED):
        assert not isinstance(dag.get_task(stage), MappedOperator), stage


def test_files_lists_every_rendered_file_of_every_authority() -> None:
    """A profile that splits a message into parts (or a run with corrections and deletions)
    renders several files for one authority: each is validated by a task of its own."""
    files = load_dag_module().dac7_annual().get_task("files").python_callable
    rendered = [
        {"operator": "default", "authority": "DE", "label": "DE", "messages": 3, "discarded": 0},
        {"operator": "default", "authority": "FR", "label": "FR", "messages": 1, "discarded": 1},
        {"operator": "default", "authority": "IT", "label": "IT", "messages": 0, "discarded": 0},
        {"operator": "lt2", "authority": "LT", "label": "lt2 LT", "messages": 1, "discarded": 0},
    ]
    assert files(rendered) == [
        {"operator": "default", "authority": "DE", "label": "DE", "part": 0},
        {"operator": "default", "authority": "DE", "label": "DE", "part": 1},
        {"operator": "default", "authority": "DE", "label": "DE", "part": 2},
        {"operator": "default", "authority": "FR", "label": "FR", "part": 0},
        {"operator": "lt2", "authority": "LT", "label": "lt2 LT", "part": 0},
    ]


def test_a_production_filing_waits_for_approval_between_gate_and_publish(dag: Any) -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk import TriggerRule

    approve = dag.get_task("approve")
    assert isinstance(approve, ApprovalOperator)
    assert approve.upstream_task_ids == {"gate"}
    assert approve.downstream_task_ids == {"publish"}
    assert approve.fail_on_reject is True  # a rejected filing fails the run: nothing published
    assert approve.retries == 0
    # publish also runs when the approval was skipped (a test run), never after a reject
    assert dag.get_task("publish").trigger_rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    # an empty plan skips the mapped tasks; gate and finalize still run, never after a failure
    assert dag.get_task("gate").trigger_rule == TriggerRule.NONE_FAILED
    assert dag.get_task("finalize").trigger_rule == TriggerRule.NONE_FAILED
    assert dag.get_task("statements").trigger_rule == TriggerRule.NONE_FAILED


def test_each_published_file_is_an_asset_event(dag: Any) -> None:
    from airflow.sdk import AssetAlias

    assert dag.get_task("publish").outlets == [AssetAlias("dac7-filings")]
    assert dag.get_task("statements").outlets == [AssetAlias("dac7-statements")]
    for stage in set(STAGES) - {"publish", "statements"}:
        assert not dag.get_task(stage).outlets, stage


def test_schedule_is_yearly_in_january_without_catchup(dag: Any) -> None:
    from airflow.sdk import CronTriggerTimetable

    assert dag.catchup is False
    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert dag.timetable.expression == "0 6 15 1 *"
    assert str(dag.timetable.timezone) == "UTC"
    assert dag.max_active_runs == 1


def test_schedule_logical_date_is_the_filing_day() -> None:
    """CronTriggerTimetable: the January run's logical date is that January (files year - 1)."""
    import pendulum
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable

    tt = CronTriggerTimetable("0 6 15 1 *", timezone="UTC")
    info = tt.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=pendulum.datetime(2025, 6, 1), latest=None, catchup=True),
    )
    assert info is not None
    assert info.logical_date == pendulum.datetime(2026, 1, 15, 6)
    assert info.run_after == info.logical_date


def test_database_steps_retry_with_exponential_backoff_but_not_on_permanent_errors(dag: Any) -> None:
    from airflow.sdk import RetryAction

    from reporting.errors import ConfigError, DataError, QueryError, SourceContractError, SourceError
    from reporting.ledger import LedgerLockedError, LedgerModeError

    for stage in RETRIED:
        task = dag.get_task(stage)
        assert task.retries == 2, stage
        assert task.retry_exponential_backoff == 2.0, stage  # a multiplier since Airflow 3.3
        assert task.retry_delay == timedelta(minutes=1) and task.max_retry_delay == timedelta(minutes=10), stage
        policy = task.retry_policy
        for permanent in (DataError([]), ConfigError("x"), SourceContractError("x"), LedgerModeError("x")):
            assert policy.evaluate(permanent, 1, 3).action == RetryAction.FAIL, (stage, permanent)
        # a DuckDB error (a full disk, memory: reporting.errors.database_errors) is retried as it was before
        # it became a QueryError
        query = QueryError("aggregate: a query failed: duckdb.IOException: IO Error: No space left on device")
        for transient in (SourceError("x"), LedgerLockedError("x"), OSError("x"), query):
            assert policy.evaluate(transient, 1, 3).action == RetryAction.DEFAULT, (stage, transient)
    for stage in set(STAGES) - set(RETRIED):
        assert dag.get_task(stage).retries == 0, stage


def test_transmit_fails_at_once_when_the_message_or_the_client_is_wrong(dag: Any) -> None:
    """``transmit`` and ``protocol``: a message that is not published, or a DIP message handed over
    without a DIP client, is the run's or the code's mistake (permanent: failed at once); a DIP
    server that does not answer is the weather (retried)."""
    from airflow.sdk import RetryAction

    from reporting.ledger import LedgerError, MessageStateError
    from reporting.transmit import PermanentTransmissionError, TransientTransmissionError

    for stage in ("transmit", "protocol"):
        policy = dag.get_task(stage).retry_policy
        for permanent in (
            MessageStateError("message X is rendered: only a published message is transmitted"),
            PermanentTransmissionError("message X goes to the BZSt DIP interface: no DIP client was given"),
        ):
            assert policy.evaluate(permanent, 1, 3).action == RetryAction.FAIL, (stage, permanent)
        for transient in (TransientTransmissionError("DIP upload: HTTP 503"), LedgerError("the ledger went away")):
            assert policy.evaluate(transient, 1, 3).action == RetryAction.DEFAULT, (stage, transient)


def test_the_source_is_read_in_its_own_pool(dag: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert dag.get_task("extract").pool == "default_pool"  # none named: Airflow's default
    assert {dag.get_task(s).pool for s in STAGES} == {"default_pool"}
    monkeypatch.setenv("DAC7_SOURCE_POOL", "dac7_source")
    pooled = fresh_dag()
    assert pooled.get_task("extract").pool == "dac7_source"
    assert {pooled.get_task(s).pool for s in set(STAGES) - {"extract"}} == {"default_pool"}


def test_every_task_reports_its_failure(dagbag: Any) -> None:
    from dac7_support.notify import on_failure

    for dag in dagbag.dags.values():
        for task in dag.tasks:
            assert on_failure in task.on_failure_callback, (dag.dag_id, task.task_id)


# --- Params: the form of a UI-triggered rerun ---------------------------------------------------

PARAMS = {"reporting_year", "as_of", "authorities", "environment", "mode", "sellers", "operator"}


def test_params_are_a_labelled_form(dag: Any) -> None:
    from reporting.countries import EU_MEMBER_STATES
    from reporting.vocabulary import MODES

    params = dag.params
    assert set(params.keys()) == PARAMS
    for name in params:
        param = params.get_param(name)
        assert param.schema.get("title") and param.description, name
        assert params[name] == ("auto" if name == "mode" else None), name
    year = params.get_param("reporting_year").schema
    assert (year["type"], year["minimum"], year["maximum"]) == (["null", "integer"], 2023, 2100)
    assert params.get_param("as_of").schema["format"] == "date"
    authorities = params.get_param("authorities").schema
    assert authorities["type"] == ["null", "array"]
    assert authorities["items"]["enum"] == sorted(EU_MEMBER_STATES)
    assert authorities["examples"] == sorted(EU_MEMBER_STATES)  # the UI's multi-select pick list
    assert authorities["values_display"]["DE"] == "DE Germany"  # shown with their names
    assert set(authorities["values_display"]) == EU_MEMBER_STATES
    assert params.get_param("environment").schema["enum"] == [None, "test", "prod"]
    assert tuple(params.get_param("mode").schema["enum"]) == tuple(MODES)
    assert params.get_param("sellers").schema["items"]["type"] == "string"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("reporting_year", 2022),
        ("reporting_year", "2025"),
        ("reporting_year", 2101),
        ("as_of", "15/01/2026"),
        ("environment", "staging"),
        ("authorities", ["XX"]),
        ("authorities", ["de"]),
        ("authorities", ["DE", "DE"]),
        ("authorities", "DE"),
        ("mode", "delete"),
        ("mode", None),
        ("sellers", "S0000001"),
        ("sellers", [""]),
        ("operator", "De_GmbH"),
        ("operator", "lt2,de"),
        ("operator", ["lt2"]),
        ("operator", "a" * 33),
    ],
)
def test_params_reject_bad_values(dag: Any, name: str, value: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        dag.params.get_param(name).resolve(value)


def test_params_accept_good_values(dag: Any) -> None:
    good = {
        "reporting_year": 2025,
        "as_of": "2026-01-14",
        "authorities": ["DE", "FR"],
        "environment": "prod",
        "mode": "deletion",
        "sellers": ["S0000001", "S0000002"],
        "operator": "lt2",
    }
    for name, value in good.items():
        assert dag.params.get_param(name).resolve(value) == value


@pytest.mark.parametrize(
    ("combination", "expected"),
    [
        ({"sellers": ["S1"]}, "Sellers are named only for a deletion, but mode is 'auto'"),
        ({"mode": "deletion"}, "Mode 'deletion' needs the sellers to delete"),
        (
            {"environment": "prod", "year": 2026, "as_of": date(2026, 1, 14)},
            "A production filing for 2026 cannot be made before the year",
        ),
        ({"environment": "prod", "as_of": date(2025, 6, 30)}, "The as-of date 2025-06-30 is before the end of 2025"),
        ({"year": 2027}, "The reporting year 2027 has not begun yet: choose 2026 or an earlier year."),
        ({"as_of": date(2026, 1, 15)}, "The as-of date 2026-01-15 has not ended yet: choose 2026-01-14"),
        ({"as_of": date(2024, 12, 31)}, "The as-of date 2024-12-31 is before the reporting year 2025 begins"),
    ],
)
def test_bad_combinations_are_refused_with_a_sentence(combination: dict[str, Any], expected: str) -> None:
    from dac7_support.common import conf_problems

    args: dict[str, Any] = {
        "year": 2025,
        "as_of": date(2026, 1, 14),
        "environment": "test",
        "mode": "auto",
        "sellers": None,
        "today": date(2026, 1, 15),
    } | combination
    problems = conf_problems(**args)
    # a year not yet ended is also one whose as-of date is before its end or its start: two sentences
    assert len(problems) == (2 if args["year"] > 2025 else 1), problems
    assert problems[0].startswith(expected), problems
    assert all(p.endswith(".") for p in problems)


def test_good_combinations_pass() -> None:
    from dac7_support.common import conf_problems

    base = {"year": 2025, "as_of": date(2025, 12, 31), "today": date(2026, 1, 15)}
    assert conf_problems(**base, environment="prod", mode="auto", sellers=None) == []
    assert conf_problems(**base, environment="prod", mode="deletion", sellers=["S1"]) == []
    # a test preview of the running year, as of mid-year
    preview = {"year": 2026, "as_of": date(2026, 6, 30), "today": date(2026, 7, 1)}
    assert conf_problems(**preview, environment="test", mode="auto", sellers=None) == []


# --- the period comes from the run ---------------------------------------------------------------

NO_PARAMS: dict[str, Any] = {"reporting_year": None, "as_of": None, "environment": None}


@pytest.mark.parametrize(
    ("logical_date", "expected"),
    [
        # as of the day before the logical date: a day that has ended
        (datetime(2026, 1, 15, 6, tzinfo=UTC), (2025, date(2026, 1, 14))),
        (datetime(2024, 1, 15, 6, tzinfo=UTC), (2023, date(2024, 1, 14))),
        # a logical date late on 31 Dec in UTC is still that year
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), (2025, date(2026, 12, 30))),
    ],
)
def test_year_is_the_year_before_the_logical_date(logical_date: datetime, expected: tuple[int, date]) -> None:
    module = load_dag_module()
    assert module.reporting_period(logical_date, None, NO_PARAMS) == expected


def test_params_override_the_logical_date() -> None:
    module = load_dag_module()
    params = {"reporting_year": 2024, "as_of": "2025-03-01", "environment": None}
    assert module.reporting_period(datetime(2026, 1, 15, tzinfo=UTC), None, params) == (2024, date(2025, 3, 1))


def test_manual_run_without_logical_date_needs_the_year_param() -> None:
    module = load_dag_module()
    run_after = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="reporting_year"):
        module.reporting_period(None, run_after, NO_PARAMS)
    params = {**NO_PARAMS, "reporting_year": 2025}
    assert module.reporting_period(None, run_after, params) == (2025, date(2026, 11, 27))


def test_run_id_is_stable_per_airflow_run() -> None:
    module = load_dag_module()
    a = module.run_uuid("dac7_annual", "scheduled__2026-01-15T06:00:00+00:00")
    assert a == module.run_uuid("dac7_annual", "scheduled__2026-01-15T06:00:00+00:00")
    assert a != module.run_uuid("dac7_annual", "manual__2026-01-15T06:00:00+00:00")


# --- the failure message and the notification hook ------------------------------------------------


@dataclass
class FakeTI:
    task_id: str
    dag_id: str = "dac7_annual"
    run_id: str = "scheduled__2026-01-15T06:00:00+00:00"
    try_number: int = 3
    run_dir: str | None = None

    def xcom_pull(self, task_ids: str) -> str | None:
        return self.run_dir if task_ids == "prepare" else None


@pytest.fixture
def notifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Messages handed to the DAC7_NOTIFY hook (a notifier module of this test)."""
    received: list[tuple[str, str]] = []
    module = types.ModuleType("dac7_test_notifier")
    module.send = lambda subject, text: received.append((subject, text))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dac7_test_notifier", module)
    monkeypatch.setenv("DAC7_NOTIFY", "dac7_test_notifier:send")
    yield received


def test_failure_message_names_task_period_and_what_to_do(
    notifications: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    from dac7_support.notify import on_failure

    from reporting.errors import DataError
    from reporting.findings import Finding

    error = DataError([Finding(rule="currency.unknown", table="transactions", key="T1", seller_id="S1", message="x")])
    context = {
        "ti": FakeTI("extract"),
        "params": {"reporting_year": 2025, "environment": "prod"},
        "logical_date": datetime(2026, 1, 15, 6, tzinfo=UTC),
        "exception": error,
    }
    with caplog.at_level(logging.ERROR, logger="dac7.notify"):
        on_failure(context)
    ((subject, text),) = notifications
    assert subject == "DAC7 dac7_annual: task extract failed for reporting year 2025 (prod)"
    assert "Error: DataError: 1 data error(s); nothing was published." in text
    assert "What to do: if the source database was unreachable" in text
    assert subject in caplog.text


def test_failure_message_quotes_no_foreign_error_text(notifications: list[tuple[str, str]]) -> None:
    """Only reporting errors are quoted (their messages carry keys and rules); a driver's error
    could carry a value from a row."""
    from dac7_support.notify import on_failure

    context = {"ti": FakeTI("render"), "params": {}, "exception": ValueError("Müller, DE123456789")}
    context["task"] = types.SimpleNamespace(op_kwargs={"authority": "DE"})
    on_failure(context)
    ((subject, text),) = notifications
    assert subject.startswith("DAC7 dac7_annual: task render [DE] failed for ")
    assert "Müller" not in text and "DE123456789" not in text
    assert "ValueError (the task log has the details)" in text


def test_a_failing_notifier_does_not_hide_the_message(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from dac7_support.notify import notify

    monkeypatch.setenv("DAC7_NOTIFY", "no_such_module_for_dac7:send")
    with caplog.at_level(logging.WARNING, logger="dac7.notify"):
        notify("subject line", "text")
    assert "subject line" in caplog.text
    assert "notifier no_such_module_for_dac7:send failed (ModuleNotFoundError)" in caplog.text


# --- four eyes ------------------------------------------------------------------------------------


def approval_context(request: dict[str, Any]) -> dict[str, Any]:
    return {"ti": types.SimpleNamespace(xcom_pull=lambda task_ids: request)}


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        ({"environment": "test", "authorities": ["DE"], "messages": 1}, "a test filing needs no approval"),
        ({"environment": "prod", "authorities": [], "messages": 0}, "nothing to file, so nothing to approve"),
        # the ledger holds the period as filed for DE and nothing changed
        ({"environment": "prod", "authorities": ["DE"], "messages": 0}, "nothing to file, so nothing to approve"),
    ],
)
def test_approval_is_skipped_for_a_test_run_and_for_nothing_to_file(
    dag: Any, request_: dict[str, Any], reason: str
) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match=reason):
        dag.get_task("approve").execute(approval_context(request_))


def test_a_production_filing_asks_for_approval_with_the_request_body(
    dag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(ApprovalOperator, "execute", lambda self, context: asked.append((self.subject, self.body)))
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"body": "| DE | 16 |"}), encoding="utf-8")
    approve = dag.get_task("approve")
    approve.execute(
        approval_context({"environment": "prod", "authorities": ["DE"], "messages": 1, "file": str(request)})
    )
    assert asked == [(approve.subject, "| DE | 16 |")]


def test_four_eyes_refuse_an_approval_by_the_person_who_triggered_the_run() -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from dac7_support.approval import check_second_person

    with pytest.raises(AirflowFailException, match="four eyes need a second person"):
        check_second_person("alice", {"id": "alice", "name": "Alice"})
    check_second_person("alice", {"id": "bob", "name": "Bob"})
    check_second_person(None, {"id": "bob", "name": "Bob"})  # a scheduled run


# --- the deadline watch ----------------------------------------------------------------------------


def test_deadline_warning_day_is_configurable_and_before_31_january(monkeypatch: pytest.MonkeyPatch) -> None:
    from dac7_support.deadline import warn_date

    monkeypatch.delenv("DAC7_DEADLINE_WARN", raising=False)
    assert warn_date(2026) == date(2026, 1, 25)
    monkeypatch.setenv("DAC7_DEADLINE_WARN", "01-20")
    assert warn_date(2026) == date(2026, 1, 20)
    for bad in ("01-31", "02-01", "25.01", "1-32"):
        monkeypatch.setenv("DAC7_DEADLINE_WARN", bad)
        with pytest.raises(ValueError, match="DAC7_DEADLINE_WARN"):
            warn_date(2026)


def test_deadline_dag_checks_daily(dagbag: Any) -> None:
    """Every day, all year: rejections come back after January, and an overdue item stays due."""
    dag = dagbag.dags["dac7_deadline"]
    assert dag.timetable.expression == "0 7 * * *"
    assert [t.task_id for t in dag.tasks] == ["check_deadline", "check_statements", "check_calendar"]


def test_deadline_warns_for_a_missing_production_filing(
    notifications: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dac7_support.deadline import check_deadline

    monkeypatch.delenv("DAC7_DEADLINE_WARN", raising=False)
    config = REPO / "dac7.toml"  # the operator files in LT
    assert check_deadline(2025, date(2026, 1, 24), config) == {"year": 2025, "due": False, "missing": []}
    assert notifications == []
    result = check_deadline(2025, date(2026, 1, 25), config, ledger_url=f"sqlite:///{tmp_path / 'none.sqlite3'}")
    assert result == {"year": 2025, "due": True, "missing": ["LT"]}
    ((subject, text),) = notifications
    assert subject == "DAC7 2025: no production filing sent yet for LT"
    assert "due by 2026-01-31 (warning from 2026-01-25)" in text and "What to do:" in text
    assert "There is no ledger file at none.sqlite3 yet" in text


def test_deadline_expects_the_filing_state_alone(
    notifications: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An ``[authorities.XX]`` table of another state is ignored: the operator files in LT only,
    so no filing is expected (or missed) in DE."""
    from dac7_support.deadline import check_deadline, configured_authorities

    from reporting.config import load_config

    monkeypatch.delenv("DAC7_DEADLINE_WARN", raising=False)
    config = tmp_path / "dac7.toml"
    demo = (REPO / "dac7.toml").read_text(encoding="utf-8")
    config.write_text(demo + '\n[authorities.DE]\nbzst_id = "BZST0012345678"\n', encoding="utf-8")
    assert configured_authorities(load_config(config)) == ["LT"]
    result = check_deadline(2025, date(2026, 1, 26), config, ledger_url=f"sqlite:///{tmp_path / 'none.sqlite3'}")
    assert result == {"year": 2025, "due": True, "missing": ["LT"]}
    ((subject, _),) = notifications
    assert subject == "DAC7 2025: no production filing sent yet for LT"


def test_the_deadline_task_checks_the_ledger_of_the_ledger_connection(
    dagbag: Any, notifications: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With the ledger named only by an Airflow Connection (``DAC7_LEDGER_CONN_ID``, no
    ``DAC7_LEDGER_URL``), the deadline task checks that ledger: the one the annual runs file into."""
    from airflow.sdk import Connection

    ledger = tmp_path / "connection-ledger.sqlite3"
    looked_up: list[str] = []

    def get(cls: Any, conn_id: str) -> Any:
        looked_up.append(conn_id)
        fields = {"host": str(ledger), "login": None, "password": None, "port": None, "schema": None}
        return types.SimpleNamespace(conn_id=conn_id, conn_type="sqlite", extra_dejson={}, **fields)

    monkeypatch.setattr(Connection, "get", classmethod(get))
    monkeypatch.delenv("DAC7_LEDGER_URL", raising=False)
    monkeypatch.delenv("DAC7_DEADLINE_WARN", raising=False)
    monkeypatch.setenv("DAC7_LEDGER_CONN_ID", "dac7_ledger")
    monkeypatch.setenv("DAC7_CONFIG", str(REPO / "dac7.toml"))
    check = dagbag.dags["dac7_deadline"].get_task("check_deadline").python_callable
    context = {
        "logical_date": datetime(2026, 1, 26, 7, tzinfo=UTC),
        "dag_run": types.SimpleNamespace(run_after=None),
        "params": {"reporting_year": None},
    }
    monkeypatch.setitem(check.__globals__, "get_current_context", lambda: context)
    assert check() == {"year": 2025, "due": True, "missing": ["LT"]}
    assert looked_up == ["dac7_ledger"]
    ((_, text),) = notifications
    assert "There is no ledger file at connection-ledger.sqlite3 yet" in text


def test_deadline_counts_only_what_is_filed() -> None:
    from dac7_support.deadline import missing_filings

    assert missing_filings(["LT"], ["DE", "FR"]) == ["LT"]  # filings elsewhere (e.g. before) do not count
    assert missing_filings(["LT"], ["LT", "FR"]) == []


# --- a real run through dag.test() ----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from dac7_demo import generate_demo

    url = f"sqlite:///{tmp_path_factory.mktemp('source') / 'marketplace.db'}"
    generate_demo(url, sellers=200, seed=7, year=2025, replace=True)
    return url


def preview_config(path: Path) -> Path:
    """A copy of the demo configuration as a preview (routing ``jurisdiction``, environment
    ``test``): what each member state receives from LT, one file per state, never a filing."""
    demo = (REPO / "dac7.toml").read_text(encoding="utf-8")
    assert demo.count('routing = "nexus"') == 1 and demo.count('environment = "test"') == 1, "dac7.toml changed"
    path.write_text(demo.replace('routing = "nexus"', 'routing = "jurisdiction"'), encoding="utf-8")
    return path


def dac7_environment(mp: pytest.MonkeyPatch, root: Path, source: str, config: Path | None = None) -> dict[str, Path]:
    """``DAC7_*`` into ``root``; the demo configuration (the filing, in LT) unless ``config``."""
    config = config or REPO / "dac7.toml"
    assert config.is_file(), f"the configuration {config} is missing"
    paths = {"out": root / "out", "staging": root / "staging", "ledger": root / "dac7-ledger.sqlite3"}
    mp.setenv("DAC7_CONFIG", str(config))
    mp.setenv("DAC7_SOURCE_URL", source)
    mp.setenv("DAC7_OUT_DIR", str(paths["out"]))
    mp.setenv("DAC7_STAGING_DIR", str(paths["staging"]))
    mp.setenv("DAC7_LEDGER_URL", f"sqlite:///{paths['ledger']}")
    return paths


@pytest.fixture
def dac7_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_db: str) -> dict[str, Path]:
    return dac7_environment(monkeypatch, tmp_path, demo_db)


def task_states(dag_run: Any) -> dict[str, set[str]]:
    """Every task's states (a mapped task has one instance per authority)."""
    states: dict[str, set[str]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, set()).add(str(ti.state))
    return states


def xcoms(dag_run: Any) -> dict[tuple[str, int], str]:
    """Every XCom value of the run as stored in the metadata database (JSON)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id)
        ).all()
        return {(x.task_id, x.map_index): json.dumps(x.value, default=str) for x in rows}


def asset_events(dag_run: Any) -> list[tuple[str, dict[str, Any]]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == dag_run.dag_id, AssetEvent.source_run_id == dag_run.run_id)
        ).all()
        return [(uri, dict(extra)) for uri, extra in rows]


@dataclass
class AnnualRun:
    dag_run: Any
    paths: dict[str, Path]
    run_dir: Path
    seconds: float


@pytest.fixture(scope="module")
def annual_run(airflow_db: None, demo_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnnualRun]:
    """One scheduled-style run of 2025 in the test environment with the demo configuration: the
    filing, to LT alone (the member state the operator files in), shared by the tests that look at
    its results."""
    with pytest.MonkeyPatch.context() as mp:
        paths = dac7_environment(mp, tmp_path_factory.mktemp("annual"), demo_db)
        started = time.perf_counter()
        dag_run = fresh_dag().test(logical_date=datetime(2026, 1, 15, 6, tzinfo=UTC))
        seconds = time.perf_counter() - started
        (run_dir,) = paths["staging"].iterdir()
        yield AnnualRun(dag_run, paths, run_dir, seconds)


@pytest.mark.slow
def test_dag_run_files_the_previous_year(annual_run: AnnualRun) -> None:
    dr, out = annual_run.dag_run, annual_run.paths["out"] / "2025"
    assert str(dr.state) == "success"
    states = task_states(dr)
    # a test run: no approval; LT takes a portal upload, so no protocol to wait for
    assert states == {s: {"skipped"} if s in ("approve", "protocol") else {"success"} for s in STAGES}

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["reporting_year"] == 2025
    assert manifest["as_of"] == "2026-01-14"
    assert manifest["environment"] == "test"
    assert manifest["run_id"] == load_dag_module().run_uuid("dac7_annual", dr.run_id)
    # the Timestamp is the moment the run was created for: a rerun of this DAG run renders the same bytes
    assert manifest["timestamp_utc"] == dr.run_after.astimezone(UTC).replace(tzinfo=None).isoformat()
    assert manifest["files"], "the demo marketplace has reportable sellers"
    # the filing: one message to the filing state, with every reportable seller, under its law
    assert (manifest["routing"], manifest["filing_state"], manifest["preview"]) == ("nexus", "LT", False)
    assert manifest["reading"]["filing_state"] == "LT"
    assert {f["authority"] for f in manifest["files"]} == {"LT"}
    assert sum(f["sellers"] for f in manifest["files"]) == manifest["summary"]["reportable"]
    for f in manifest["files"]:
        assert f["message_ref_id"].startswith("LT2025LT"), f["message_ref_id"]
        assert (out / f["file"]).is_file()
    # the mapped tasks: one instance, labelled with the filing state; validate: one per file
    for stage in PER_AUTHORITY:
        labels = sorted(ti.rendered_map_index for ti in dr.get_task_instances() if ti.task_id == stage)
        assert labels == ["LT"], stage
    labels = sorted(ti.rendered_map_index for ti in dr.get_task_instances() if ti.task_id == "validate")
    assert labels == ["LT #1"]  # one file in the demo
    # staging is keyed by (year, run): nothing of it lands in the output directory
    assert annual_run.run_dir.name == f"2025-{manifest['run_id']}"


@pytest.mark.slow
def test_dag_run_keeps_its_effective_settings_with_the_outputs(annual_run: AnnualRun) -> None:
    kept = json.loads((annual_run.paths["out"] / "2025" / "run_settings.json").read_text(encoding="utf-8"))
    staged = json.loads((annual_run.run_dir / "settings.json").read_text(encoding="utf-8"))
    assert kept == staged
    assert kept["year"] == 2025 and kept["as_of"] == "2026-01-14" and kept["mode"] == "auto"


@pytest.mark.slow
def test_dag_run_emits_an_asset_event_per_published_file(annual_run: AnnualRun) -> None:
    manifest = json.loads((annual_run.paths["out"] / "2025" / "manifest.json").read_text(encoding="utf-8"))
    events = sorted(
        (e for e in asset_events(annual_run.dag_run) if e[0].startswith("dac7://filings/")),
        key=lambda e: e[1]["message_ref_id"],
    )
    expected = sorted(manifest["files"], key=lambda f: f["message_ref_id"])
    assert [uri for uri, _ in events] == [f"dac7://filings/{f['authority']}" for f in expected]
    for (_, extra), f in zip(events, expected, strict=True):
        assert extra == {
            "message_ref_id": f["message_ref_id"],
            "file": f["file"],
            "out_dir": str(annual_run.paths["out"] / "2025"),
            "sha256": f["sha256"],
            "year": 2025,
            "environment": "test",
        }


@pytest.mark.slow
def test_dag_run_writes_the_filings_statements_and_announces_them(annual_run: AnnualRun) -> None:
    """The statements task writes one statement per reported seller of the filing, records each
    as pending in the ledger and emits one asset event on ``dac7://statements/LT`` (counts and
    paths only)."""
    from reporting.ledger import open_ledger

    out = annual_run.paths["out"] / "2025"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    feed = [json.loads(line) for line in (out / "statements" / "statements.jsonl").read_text("utf-8").splitlines()]
    reported = sum(f["sellers"] for f in manifest["files"])
    assert len(feed) == reported > 0
    assert {s["filed_with"]["message_ref_id"] for s in feed} == {f["message_ref_id"] for f in manifest["files"]}
    assert all(s["kind"] == "initial" and s["replaces"] is None for s in feed)
    events = [e for e in asset_events(annual_run.dag_run) if e[0].startswith("dac7://statements/")]
    assert events == [
        (
            "dac7://statements/LT",
            {
                "feed": "statements/statements.jsonl",
                "run_feed": f"statements/runs/{manifest['run_id']}.jsonl",
                "sha256": hashlib.sha256((out / "statements" / "statements.jsonl").read_bytes()).hexdigest(),
                "out_dir": str(out),
                "statements": reported,
                "kinds": {"initial": reported},
                "filing_state": "LT",
                "run_id": manifest["run_id"],
                "year": 2025,
                "environment": "test",
            },
        )
    ]
    own = out / "statements" / "runs" / f"{manifest['run_id']}.jsonl"
    assert own.read_bytes() == (out / "statements" / "statements.jsonl").read_bytes()
    with open_ledger(f"sqlite:///{annual_run.paths['ledger']}", create=False) as ledger:
        (counts,) = ledger.statement_counts(year=2025)
    assert (counts.authority, counts.pending, counts.sent, counts.failed) == ("LT", reported, 0, 0)


@pytest.mark.slow
def test_dag_run_passes_only_small_values_through_xcom(annual_run: AnnualRun) -> None:
    values = xcoms(annual_run.dag_run)
    assert json.loads(values[("prepare", -1)]) == str(annual_run.run_dir)
    # the filings, each an operator, an authority and its label: the demo's one operator, in LT
    assert json.loads(values[("plan", -1)]) == [{"operator": "default", "authority": "LT", "label": "LT"}]
    for key, value in values.items():
        assert len(value) < 1024, (key, len(value))


@pytest.mark.slow
def test_approval_request_shows_the_figures_per_authority(annual_run: AnnualRun) -> None:
    """The body the approver reads, built from the run's staging directory: sellers, the kinds
    and counts of records (the difference to the last filing), the Consideration per currency."""
    from dac7_support.approval import approval_request, message_considerations

    request = approval_request(annual_run.run_dir)
    manifest = json.loads((annual_run.paths["out"] / "2025" / "manifest.json").read_text(encoding="utf-8"))
    assert request["year"] == 2025 and request["environment"] == "test"
    assert request["messages"] == len(manifest["files"])
    assert request["authorities"] == ["LT"]
    body = request["body"]
    assert body.startswith("### DAC7 2025: test filing in LT\n")
    assert "| Authority | Reportable sellers | This filing (difference to the last) |" in body
    sellers = manifest["summary"]["sellers_per_authority"]["LT"]
    (filed,) = manifest["files"]
    sent = message_considerations(annual_run.paths["out"] / "2025" / filed["file"])
    assert "EUR" in sent and len(sent) > 1  # sellers of every member state, paid in their currencies
    money = "; ".join(f"{currency} {amount:,}" for currency, amount in sent.items())
    lt = next(line for line in body.splitlines() if line.startswith("| LT |"))
    # published since: the ledger now holds this run's LT message as the last filing
    assert lt.startswith(f"| LT | {sellers} | DPI401: {sellers} new | {money} | ")
    assert "DPI401 LT2025LT" in lt and "published 20" in lt
    assert f"{sum(f['sellers'] for f in manifest['files'])} seller record(s)" in body
    # the gate wrote the request of the run before publishing: every authority a first filing
    gate_request = json.loads((annual_run.run_dir / "approval" / "request.json").read_text(encoding="utf-8"))
    assert gate_request["body"].count("none: first filing") == len(request["authorities"])


def test_approval_consideration_sums_new_and_corrected_records_not_deleted(tmp_path: Path) -> None:
    from dac7_support.approval import message_considerations

    xml = tmp_path / "m.xml"
    xml.write_text(
        '<DPI_OECD xmlns="urn:oecd:ties:dpi:v1" xmlns:stf="urn:oecd:ties:dpistf:v1"><DPIBody>'
        "<ReportableSeller><DocSpec><stf:DocTypeIndic>OECD11</stf:DocTypeIndic></DocSpec>"
        '<Consideration><ConsQ1 currCode="EUR">100</ConsQ1><ConsQ2 currCode="EUR">5</ConsQ2></Consideration>'
        '<Consideration><ConsQ4 currCode="PLN">7</ConsQ4></Consideration></ReportableSeller>'
        "<ReportableSeller><DocSpec><stf:DocTypeIndic>OECD13</stf:DocTypeIndic></DocSpec>"
        '<Consideration><ConsQ1 currCode="EUR">1000</ConsQ1></Consideration></ReportableSeller>'
        "<ReportableSeller><DocSpec><stf:DocTypeIndic>OECD2</stf:DocTypeIndic></DocSpec>"
        '<Consideration><ConsQ3 currCode="EUR">20</ConsQ3></Consideration></ReportableSeller>'
        "</DPIBody></DPI_OECD>",
        encoding="utf-8",
    )
    assert message_considerations(xml) == {"EUR": 125, "PLN": 7}


@pytest.mark.slow
def test_dag_run_params_override_year_and_authorities(
    airflow_db: None, demo_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preview (routing ``jurisdiction``): the Param narrows it to the states named, each
    rendered, validated and published by a mapped task of its own, in the EU generic edition
    (DE and IT have national profiles: a preview never uses them), into a ledger of its own in
    the run's staging; the filing ledger is never opened, and the approval request says that
    nothing is filed."""
    from lxml import etree

    config = preview_config(tmp_path / "preview.toml")
    dac7_env = dac7_environment(monkeypatch, tmp_path, demo_db, config)
    dr = fresh_dag().test(
        logical_date=datetime(2026, 1, 16, 6, tzinfo=UTC),
        run_conf={"reporting_year": 2024, "authorities": ["DE", "IT"]},
    )
    assert str(dr.state) == "success"
    states = task_states(dr)
    # a preview is never transmitted
    assert states == {s: {"skipped"} if s in ("approve", *TRANSMISSION) else {"success"} for s in STAGES}
    # a preview publishes beside the year's filing, never in its place
    assert not (dac7_env["out"] / "2024" / "manifest.json").exists()
    manifest = json.loads((dac7_env["out"] / "2024" / "preview" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["reporting_year"] == 2024
    assert manifest["as_of"] == "2026-01-15"
    assert (manifest["routing"], manifest["filing_state"], manifest["preview"]) == ("jurisdiction", "LT", True)
    assert sorted({f["authority"] for f in manifest["files"]}) == ["DE", "IT"]
    for f in manifest["files"]:
        assert f["message_ref_id"].startswith(f"LT2024{f['authority']}"), f["message_ref_id"]
        root = etree.parse(dac7_env["out"] / "2024" / "preview" / f["file"]).getroot()
        assert root.tag == "{urn:oecd:ties:dpi:v1}DPI_OECD", (f["file"], root.tag)  # the EU generic edition
    for stage in ("render", "publish", "transmit"):
        labels = sorted(ti.rendered_map_index for ti in dr.get_task_instances() if ti.task_id == stage)
        assert labels == ["DE", "IT"], stage
    # each transmit skipped, saying why; so nothing to wait for (protocol is never expanded)
    assert {ti.state for ti in dr.get_task_instances() if ti.task_id == "transmit"} == {"skipped"}
    assert [ti.map_index for ti in dr.get_task_instances() if ti.task_id == "protocol"] == [-1]
    # the preview's own ledgers, one per state in the run's staging; never the filing ledger
    (run_dir,) = dac7_env["staging"].iterdir()
    assert sorted(p.parent.name for p in (run_dir / "preview").glob("*/ledger.sqlite3")) == ["DE", "IT"]
    assert not dac7_env["ledger"].exists()
    request = json.loads((run_dir / "approval" / "request.json").read_text(encoding="utf-8"))
    assert request["body"].startswith(
        "### DAC7 2024: preview of what each member state receives from LT (not a filing)\n"
    )
    assert request["body"].count("none: a preview is never filed") == 2
    assert asset_events(dr) == []  # a preview announces no filing to transmit


@pytest.mark.slow
@pytest.mark.parametrize(
    ("preview", "conf", "refusal"),
    [
        (True, {"environment": "prod"}, "routing 'jurisdiction' with environment 'prod' is refused"),
        (False, {"environment": "prod", "authorities": ["DE"]}, "authorities DE: this operator files in LT only"),
    ],
    ids=["a preview configuration in production", "a filing in another member state"],
)
def test_a_production_run_files_in_the_filing_state_alone(
    airflow_db: None,
    demo_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    preview: bool,
    conf: dict[str, Any],
    refusal: str,
) -> None:
    """A preview (routing ``jurisdiction``) is never filed: a production run with it is refused by
    prepare (``reporting.pipeline.prepare``), with the reason, as is a filing to a member state
    other than the one the operator files in; nothing is staged, published or recorded."""
    config = preview_config(tmp_path / "preview.toml") if preview else None
    paths = dac7_environment(monkeypatch, tmp_path, demo_db, config)
    capfd.readouterr()
    dr = fresh_dag().test(logical_date=datetime(2026, 1, 19, 6, tzinfo=UTC), run_conf={"reporting_year": 2025, **conf})
    output = "".join(capfd.readouterr())
    states = task_states(dr)
    assert str(dr.state) == "failed"
    assert states["prepare"] == {"failed"}
    assert all(states[s] == {"upstream_failed"} for s in STAGES[1:]), states
    assert refusal in output
    assert "ConfigError" in output
    assert not paths["staging"].exists() and not paths["out"].exists() and not paths["ledger"].exists()
    assert asset_events(dr) == []


@pytest.mark.slow
def test_dag_run_with_nothing_to_file_writes_a_manifest(airflow_db: None, dac7_env: dict[str, Path]) -> None:
    """An empty plan skips the mapped tasks and the approval; the gate and finalize still run."""
    dr = fresh_dag().test(logical_date=datetime(2026, 1, 17, 6, tzinfo=UTC), run_conf={"reporting_year": 2023})
    assert str(dr.state) == "success"
    states = task_states(dr)
    skipped = (*MAPPED, "files", "approve")
    assert {s: states[s] for s in skipped} == {s: {"skipped"} for s in skipped}
    assert states["gate"] == states["finalize"] == {"success"}
    manifest = json.loads((dac7_env["out"] / "2023" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"] == []


@pytest.mark.slow
def test_bad_data_fails_the_run_at_once_and_publishes_nothing(
    airflow_db: None,
    dac7_env: dict[str, Path],
    demo_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A DataError is not retried (extract retries transient failures only) and the failure
    callback says which task, which period and what to do."""
    bad = tmp_path / "bad.db"
    shutil.copyfile(demo_db.removeprefix("sqlite:///"), bad)
    with sqlite3.connect(bad) as con:
        con.execute(
            "update transactions set currency = 'XXX' where transaction_id = "
            "(select min(transaction_id) from transactions where paid_at >= '2025-03-01')"
        )
    monkeypatch.setenv("DAC7_SOURCE_URL", f"sqlite:///{bad}")

    started = time.perf_counter()
    # a production run accepts no quarantined seller: the bad row fails the extract
    with caplog.at_level(logging.ERROR, logger="dac7.notify"):
        dr = fresh_dag().test(logical_date=datetime(2026, 1, 17, 6, tzinfo=UTC), run_conf={"environment": "prod"})
    elapsed = time.perf_counter() - started
    output = caplog.text

    states = task_states(dr)
    assert str(dr.state) == "failed"
    assert states["prepare"] == {"success"}
    assert states["extract"] == {"failed"}
    assert all(states[s] == {"upstream_failed"} for s in STAGES[2:]), states
    assert not (dac7_env["out"] / "2025" / "manifest.json").exists()
    assert elapsed < 60, f"the failed extract was retried ({elapsed:.0f} s)"
    assert "DAC7 dac7_annual: task extract failed for reporting year 2025 (prod, as of 2026-01-16)" in output
    assert "Error: DataError: 1 seller(s) quarantined, and a production run accepts 0" in output
    assert "What to do: if the source database was unreachable" in output


@pytest.mark.slow
def test_a_bad_param_combination_is_refused_by_the_first_task(
    airflow_db: None, dac7_env: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    dr = fresh_dag().test(
        logical_date=datetime(2026, 1, 18, 6, tzinfo=UTC),
        run_conf={"sellers": ["S0000001"], "environment": "prod", "as_of": "2025-06-30"},
    )
    output = "".join(capfd.readouterr())
    states = task_states(dr)
    assert states["prepare"] == {"failed"}
    assert all(states[s] == {"upstream_failed"} for s in STAGES[1:]), states
    assert "Sellers are named only for a deletion, but mode is 'auto'" in output
    assert "The as-of date 2025-06-30 is before the end of 2025" in output
    assert not dac7_env["staging"].exists()


@pytest.mark.slow
def test_manual_run_without_logical_date_takes_the_year_from_params(
    airflow_db: None, dac7_env: dict[str, Path]
) -> None:
    """Only prepare runs (the rest is marked success): its settings.json holds the period."""
    conf = {"reporting_year": 2025, "as_of": "2025-12-31"}
    dr = fresh_dag().test(logical_date=None, run_conf=conf, mark_success_pattern="(?!prepare$).*")
    assert dr.logical_date is None
    assert task_states(dr)["prepare"] == {"success"}
    (run_dir,) = dac7_env["staging"].iterdir()
    settings = json.loads((run_dir / "settings.json").read_text(encoding="utf-8"))
    assert (settings["year"], settings["as_of"]) == (2025, "2025-12-31")


@pytest.mark.slow
def test_manual_run_without_logical_date_must_name_its_as_of(
    airflow_db: None, dac7_env: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    """The as-of date is never the day before the trigger by accident (that counted later refunds
    and filed corrections): prepare refuses, with the sentence, and nothing else runs."""
    capfd.readouterr()
    dr = fresh_dag().test(logical_date=None, run_conf={"reporting_year": 2025})
    output = "".join(capfd.readouterr())
    states = task_states(dr)
    assert states["prepare"] == {"failed"}
    assert all(states[s] == {"upstream_failed"} for s in STAGES[1:]), states
    assert "A run triggered by hand must name its as-of date: choose the reporting year, the environment" in output
    assert not dac7_env["staging"].exists()
