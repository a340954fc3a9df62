"""The annual DAG, run through ``dag.test()``, shows no TIN, IBAN, VAT id, registration number or
birth date in clear: not in its logs, its XCom values or its reports.

The secrets and the search are those of ``tests/integration/test_no_personal_data.py``. What is
searched, per run:

- the task logs: every file under the logs folder of the test ``AIRFLOW_HOME``, and the stdout
  and stderr of this process (measured on Airflow 3.3.2: ``dag.test()`` runs each task in this
  process and its in-process supervisor writes no task log file; the task logs, structlog's
  console output with the tracebacks of failed tasks, go to this process's stdout and stderr);
- every record emitted through Python logging at DEBUG level (a handler on the root logger);
- every XCom value of the run, read back from the Airflow metadata database;
- the reports and ``manifest.json`` that the run published.

Clean runs, the filing (in LT, the demo operator's filing state) and the preview of what each
member state receives from it (routing ``jurisdiction``: a file and a ledger of its own per state),
and runs over copies of the source made bad on purpose (a production run that stops at the
extract; an operator filing in France, whose DGFiP schema refuses a line break in a registration
number, which stops at the validate task).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import write_config
from integration.test_no_personal_data import (
    AS_OF,
    FR_LINE_BREAK,
    PROD_QUARANTINE,
    YEAR,
    Scenario,
    Secrets,
    assert_no_personal_data,
    debug_logging,
    generate_source,
    published_texts,
    read_secrets,
)
from test_dac7_annual import STAGES  # the annual DAG's tasks, in order

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
pytestmark = [
    pytest.mark.slow,
    # Trap: the in-process execution API of dag.test() loads starlette's test client, which warns.
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_source(tmp_path_factory.mktemp("source") / "marketplace.db")


@pytest.fixture(scope="module")
def secrets(source: Path) -> Secrets:
    return read_secrets(source)


@pytest.fixture
def dac7_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    """Where a DAG run writes: ``DAC7_*`` point into this test's directory."""
    paths = {"out": tmp_path / "out", "staging": tmp_path / "staging"}
    monkeypatch.setenv("DAC7_OUT_DIR", str(paths["out"]))
    monkeypatch.setenv("DAC7_STAGING_DIR", str(paths["staging"]))
    return paths


def use_source(monkeypatch: pytest.MonkeyPatch, config: Path, source: Path) -> None:
    monkeypatch.setenv("DAC7_CONFIG", str(config))
    monkeypatch.setenv("DAC7_SOURCE_URL", f"sqlite:///{source}")


def fresh_dag() -> Any:
    """A newly parsed DAG per run (dag.test() merges a run's conf into the task params in place)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags["dac7_annual"]


def task_log_files() -> dict[str, str]:
    from airflow.configuration import conf

    folders = {Path(conf.get("logging", "base_log_folder")), Path(os.environ["AIRFLOW_HOME"]) / "logs"}
    files = sorted({p for folder in folders if folder.is_dir() for p in folder.rglob("*") if p.is_file()})
    return {f"log file {p.name}": p.read_bytes().decode("utf-8", "surrogateescape") for p in files}


def xcom_values(dag_run: Any) -> list[str]:
    """Every XCom of the run as stored in the metadata database, raw and deserialised."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id)
        ).all()
        return [
            f"{x.task_id} {x.key}: {json.dumps(x.value, default=str, ensure_ascii=False)} "
            f"{XComModel.deserialize_value(x)!r}"
            for x in rows
        ]


def run_dag(
    label: str, capfd: pytest.CaptureFixture[str], logical_date: datetime, environment: str
) -> tuple[Any, dict[str, str]]:
    """One dag.test() run and everything it said."""
    capfd.readouterr()  # what came before is not this run's
    with debug_logging() as lines:
        dag_run = fresh_dag().test(
            logical_date=logical_date,
            run_conf={"reporting_year": YEAR, "as_of": AS_OF, "environment": environment},
        )
    out, err = capfd.readouterr()
    xcoms = xcom_values(dag_run)
    assert xcoms, "the run pushed no XCom"
    texts = {
        f"{label}: stdout": out,
        f"{label}: stderr": err,
        f"{label}: Python logging (DEBUG)": "\n".join(lines),
        f"{label}: XCom values": "\n".join(xcoms),
    }
    assert "[DAG TEST] starting task_id=prepare" in texts[f"{label}: Python logging (DEBUG)"]
    return dag_run, texts | {f"{label}: {k}": v for k, v in task_log_files().items()}


def states(dag_run: Any) -> dict[str, str]:
    """Each task's state; a task mapped per authority is "failed" when any of its instances failed."""
    found: dict[str, set[str]] = {}
    for ti in dag_run.get_task_instances():
        found.setdefault(ti.task_id, set()).add(str(ti.state))
    return {task: "failed" if "failed" in s else "/".join(sorted(s)) for task, s in found.items()}


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize(
    ("routing", "day"), [("nexus", 20), ("jurisdiction", 23)], ids=["the filing", "a preview per member state"]
)
def test_a_clean_dag_run_shows_no_personal_data(
    routing: str,
    day: int,
    source: Path,
    secrets: Secrets,
    dac7_env: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    use_source(monkeypatch, write_config(tmp_path / "dac7.toml", routing=routing), source)
    label = f"clean run ({routing})"
    dag_run, texts = run_dag(label, capfd, datetime(2026, 1, day, 6, tzinfo=UTC), "test")

    # a test run: no approval; LT takes a portal upload (no protocol to wait for); a preview is never transmitted
    skipped = ("approve", "protocol") if routing == "nexus" else ("approve", "transmit", "protocol")
    assert states(dag_run) == {s: "skipped" if s in skipped else "success" for s in STAGES}
    out = dac7_env["out"] / str(YEAR) / ("preview" if routing == "jurisdiction" else "")
    files = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["files"]
    authorities = {f["authority"] for f in files}
    if routing == "nexus":
        assert authorities == {"LT"}
    else:
        assert len(authorities) > 1, authorities
    assert_no_personal_data(texts | published_texts(out, label), secrets)


@pytest.mark.usefixtures("airflow_db", "dac7_env")
@pytest.mark.parametrize(
    ("scenario", "failed_task", "day"),
    [(PROD_QUARANTINE, "extract", 21), (FR_LINE_BREAK, "validate", 22)],
    ids=["quarantined sellers, production run", "line break in French registration numbers (FR profile)"],
)
def test_a_failed_dag_run_shows_no_personal_data(
    scenario: Scenario,
    failed_task: str,
    day: int,
    source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    bad = scenario.source(source, tmp_path / "bad.db")
    use_source(monkeypatch, scenario.config(tmp_path / "dac7.toml"), bad)
    dag_run, texts = run_dag(scenario.name, capfd, datetime(2026, 1, day, 6, tzinfo=UTC), scenario.environment)

    assert str(dag_run.state) == "failed"
    assert states(dag_run)[failed_task] == "failed", states(dag_run)
    # the error reached the task log
    assert scenario.raises is not None and scenario.raises.__name__ in texts[f"{scenario.name}: stdout"]
    assert_no_personal_data(texts, read_secrets(source, bad))
