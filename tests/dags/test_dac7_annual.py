"""The annual DAG: it parses fast and clean, wires the stages in order, derives its period from
the run (never the clock) and, through ``dag.test()``, files a small demo marketplace."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
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
STAGES = ["prepare", "extract", "aggregate", "apply_rules", "render", "validate", "publish"]
HEAVY = ("pandas", "lxml", "duckdb", "great_expectations", "pyarrow", "sqlalchemy_utils", "reporting")


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


@pytest.fixture
def fresh_dag() -> Any:
    """A newly parsed DAG for each dag.test() run.

    Trap: dag.test() runs the tasks in this process and merges the run's conf into the
    operators' own params in place, so a second dag.test() of the same DAG object without
    run_conf still sees the first run's Params (measured on Airflow 3.3.2).
    """
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags["dac7_annual"]


# --- (a) integrity ---------------------------------------------------------------------------


def test_dag_folder_imports_without_errors_in_under_2s() -> None:
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS))
    elapsed = time.perf_counter() - started
    assert bag.import_errors == {}
    assert "dac7_annual" in bag.dag_ids
    assert elapsed < 2.0, f"parsing dags/ took {elapsed:.2f} s"


def test_tasks_are_the_stages_in_order(dag: Any) -> None:
    assert [t.task_id for t in dag.topological_sort()] == STAGES
    for before, after in pairwise(STAGES):
        assert before in dag.get_task(after).upstream_task_ids
    # every stage gets the run directory from prepare through XCom
    for stage in STAGES[1:]:
        assert "prepare" in dag.get_task(stage).upstream_task_ids


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


def test_retries_only_on_extract(dag: Any) -> None:
    extract = dag.get_task("extract")
    assert extract.retries == 2
    assert extract.retry_exponential_backoff
    for stage in ("prepare", "aggregate", "apply_rules", "render", "validate", "publish"):
        assert dag.get_task(stage).retries == 0, stage


def test_params_have_form_labels(dag: Any) -> None:
    params = dag.params
    assert set(params.keys()) == {"reporting_year", "as_of", "environment"}
    for name in params:
        param = params.get_param(name)
        assert param.schema.get("title") and param.description, name
        assert params[name] is None
    assert params.get_param("environment").schema["enum"] == [None, "test", "prod"]
    assert params.get_param("as_of").schema["format"] == "date"


@pytest.mark.parametrize(
    ("name", "value"),
    [("reporting_year", 2022), ("reporting_year", "2025"), ("as_of", "15/01/2026"), ("environment", "staging")],
)
def test_params_reject_bad_values(dag: Any, name: str, value: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        dag.params.get_param(name).resolve(value)


# --- (b) no heavy imports at parse time -------------------------------------------------------


def test_dag_file_imports_nothing_heavy_at_module_level() -> None:
    code = (
        "import importlib.util, json, sys, time\n"
        "t = time.perf_counter()\n"
        f"spec = importlib.util.spec_from_file_location('dac7_annual', {str(DAG_FILE)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        f"print(json.dumps({{'heavy': [n for n in {HEAVY!r} if n in sys.modules],"
        " 'seconds': time.perf_counter() - t}))\n"
    )
    env = dict(os.environ)  # AIRFLOW_HOME & co. as conftest.py set them
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []


# --- (d) the period comes from the run --------------------------------------------------------

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


# --- (c) + (d) a real run through dag.test() --------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from reporting.demo import generate_demo

    url = f"sqlite:///{tmp_path_factory.mktemp('source') / 'marketplace.db'}"
    generate_demo(url, sellers=200, seed=7, year=2025, replace=True)
    return url


@pytest.fixture
def dac7_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_db: str) -> dict[str, Path]:
    config = REPO / "dac7.toml"
    assert config.is_file(), "the demo configuration dac7.toml is missing"
    paths = {"out": tmp_path / "out", "staging": tmp_path / "staging"}
    monkeypatch.setenv("DAC7_CONFIG", str(config))
    monkeypatch.setenv("DAC7_SOURCE_URL", demo_db)
    monkeypatch.setenv("DAC7_OUT_DIR", str(paths["out"]))
    monkeypatch.setenv("DAC7_STAGING_DIR", str(paths["staging"]))
    return paths


def run_dag(dag: Any, logical_date: datetime, conf: dict[str, Any] | None = None) -> Any:
    from airflow.utils.state import DagRunState, TaskInstanceState

    dr = dag.test(logical_date=logical_date, run_conf=conf)
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states == dict.fromkeys(STAGES, TaskInstanceState.SUCCESS)
    assert dr.state == DagRunState.SUCCESS
    return dr


@pytest.mark.slow
def test_dag_run_files_the_previous_year(airflow_db: None, fresh_dag: Any, dac7_env: dict[str, Path]) -> None:
    dr = run_dag(fresh_dag, datetime(2026, 1, 15, 6, tzinfo=UTC))

    manifest = json.loads((dac7_env["out"] / "2025" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["reporting_year"] == 2025
    assert manifest["as_of"] == "2026-01-14"
    assert manifest["run_id"] == load_dag_module().run_uuid("dac7_annual", dr.run_id)
    assert manifest["files"], "the demo marketplace has reportable sellers"
    for f in manifest["files"]:
        assert f["message_ref_id"].startswith("LT2025"), f["message_ref_id"]
        assert (dac7_env["out"] / "2025" / f["file"]).is_file()
    # staging is keyed by (year, run): nothing of it lands in the output directory
    assert [p.name for p in dac7_env["staging"].iterdir()] == [f"2025-{manifest['run_id']}"]


@pytest.mark.slow
def test_dag_run_reporting_year_param_overrides(airflow_db: None, fresh_dag: Any, dac7_env: dict[str, Path]) -> None:
    run_dag(fresh_dag, datetime(2026, 1, 16, 6, tzinfo=UTC), {"reporting_year": 2024})

    manifest = json.loads((dac7_env["out"] / "2024" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["reporting_year"] == 2024
    assert manifest["as_of"] == "2026-01-15"
    for f in manifest["files"]:
        assert f["message_ref_id"].startswith("LT2024")


@pytest.mark.slow
def test_bad_data_fails_the_run_at_once_and_publishes_nothing(
    airflow_db: None,
    fresh_dag: Any,
    dac7_env: dict[str, Path],
    demo_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A DataError is not retried (extract has retries=2 for transient failures only)."""
    from airflow.utils.state import DagRunState, TaskInstanceState

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
    dr = fresh_dag.test(logical_date=datetime(2026, 1, 17, 6, tzinfo=UTC), run_conf={"environment": "prod"})
    elapsed = time.perf_counter() - started

    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == DagRunState.FAILED
    assert states["prepare"] == TaskInstanceState.SUCCESS
    assert states["extract"] == TaskInstanceState.FAILED
    assert all(states[s] == TaskInstanceState.UPSTREAM_FAILED for s in STAGES[2:])
    assert not (dac7_env["out"] / "2025" / "manifest.json").exists()
    assert elapsed < 60, f"the failed extract was retried ({elapsed:.0f} s)"


@pytest.mark.slow
def test_manual_run_without_logical_date_takes_the_year_from_params(
    airflow_db: None, fresh_dag: Any, dac7_env: dict[str, Path]
) -> None:
    """Only prepare runs (the rest is marked success): its settings.json holds the period."""
    from airflow.utils.state import TaskInstanceState

    dr = fresh_dag.test(logical_date=None, run_conf={"reporting_year": 2025}, mark_success_pattern="(?!prepare$).*")
    assert dr.logical_date is None
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["prepare"] == TaskInstanceState.SUCCESS
    (run_dir,) = dac7_env["staging"].iterdir()
    settings = json.loads((run_dir / "settings.json").read_text(encoding="utf-8"))
    assert settings["year"] == 2025
    assert settings["as_of"] == (dr.run_after.astimezone(UTC).date() - timedelta(days=1)).isoformat()
