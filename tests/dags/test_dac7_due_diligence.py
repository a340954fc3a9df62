"""The daily due-diligence DAG: its shape (one mapped task per operator of the configuration, the
day from the logical date, retries on the database steps), its Param, and, through ``dag.test()``,
two days of a group's marketplace with the platform's report in between; and housekeeping ending
the retention of the due-diligence history at its boundary."""

from __future__ import annotations

import json
import types
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config
from test_dac7_annual import REPO, fresh_dag  # noqa: F401 - REPO for the readers of this module

from reporting.ledger import open_ledger
from reporting.ledger import schema as t
from reporting.source import DUE_DILIGENCE_COLUMNS

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
VILNIUS = ZoneInfo("Europe/Vilnius")
GROUP = """
[operators.pl_spzoo]
name = "Demo Marketplace sp. z o.o."
tin = "5260001246"
tin_issued_by = "PL"
nexus = "RPONEX1"

[operators.pl_spzoo.address]
city = "Warszawa"
country = "PL"
"""


@pytest.fixture(scope="module")
def dag() -> Any:
    return fresh_dag("dac7_due_diligence")


def test_one_task_per_operator_daily_without_catchup(dag: Any) -> None:
    from airflow.sdk import CronTriggerTimetable

    assert [t.task_id for t in dag.topological_sort()] == ["operators", "due_diligence"]
    assert "operators" in dag.get_task("due_diligence").upstream_task_ids
    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 4 * * *", "UTC")
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.get_task("due_diligence").retries == 2 and dag.get_task("operators").retries == 0
    assert dag.get_task("due_diligence").map_index_template == "{{ operator_id }}"


def test_the_operator_param_takes_an_operator_id_or_nothing(dag: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    param = dag.params.get_param("operator")
    assert param.schema.get("title") and param.description
    assert param.resolve("pl_spzoo") == "pl_spzoo" and param.resolve(None) is None
    with pytest.raises(ParamValidationError):
        param.resolve("PL SP")


def marketplace(url: str) -> str:
    m = Marketplace()
    m.seller("S1", tin=None)
    m.seller("S2")
    m.seller("P1", tin=None)
    for row in m.rows["sellers"]:
        row.update(dict.fromkeys(DUE_DILIGENCE_COLUMNS["sellers"]))
    m.tx("S1", "2026-01-15 10:00:00", 50_000, activity="personal_services")
    m.tx("S2", "2026-01-15 10:00:00", 50_000, activity="personal_services")
    m.tx("P1", "2026-01-15 10:00:00", 50_000, activity="personal_services", operator_id="pl_spzoo")
    return m.write(url)


def lines(path: Path) -> list[tuple[str, str, str]]:
    return [
        (x["operator_id"], x["seller_id"], x["action"])
        for x in map(json.loads, path.read_text(encoding="utf-8").splitlines())
    ]


@pytest.mark.slow
@pytest.mark.usefixtures("airflow_db")
def test_two_days_of_a_group_through_dag_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, ledger = tmp_path / "out", f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    monkeypatch.setenv("DAC7_CONFIG", str(write_config(tmp_path / "dac7.toml", extra=GROUP)))
    monkeypatch.setenv("DAC7_SOURCE_URL", marketplace(f"sqlite:///{tmp_path / 'marketplace.db'}"))
    monkeypatch.setenv("DAC7_OUT_DIR", str(out))
    monkeypatch.setenv("DAC7_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("DAC7_LEDGER_URL", ledger)

    dr = fresh_dag("dac7_due_diligence").test(logical_date=datetime(2026, 3, 2, 4, tzinfo=UTC))
    assert str(dr.state) == "success"
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in dr.get_task_instances()}
    assert states == {("operators", -1): "success", ("due_diligence", 0): "success", ("due_diligence", 1): "success"}
    default_feed = out / "due_diligence" / "actions.jsonl"
    polish_feed = out / "operators" / "pl_spzoo" / "due_diligence" / "actions.jsonl"
    assert lines(default_feed) == [
        ("default", "S1", "pre_report_notice"),
        ("default", "S1", "request"),
        ("default", "S2", "pre_report_notice"),
    ]
    assert lines(polish_feed) == [("pl_spzoo", "P1", "pre_report_notice"), ("pl_spzoo", "P1", "request")]

    report = tmp_path / "sent.jsonl"
    report.write_text(
        "".join(
            json.dumps({"seller_id": s, "action": a, "at": "2026-03-02T10:00:00Z", "operator_id": o}) + "\n"
            for o, s, a in lines(default_feed) + lines(polish_feed)
        ),
        encoding="utf-8",
    )
    from reporting.cli import main

    assert (
        main(
            [
                "due-diligence",
                "mark",
                "--file",
                str(report),
                "--ledger",
                ledger,
                "--config",
                str(tmp_path / "dac7.toml"),
            ]
        )
        == 0
    )

    dr = fresh_dag("dac7_due_diligence").test(logical_date=datetime(2026, 3, 16, 4, tzinfo=UTC))
    assert str(dr.state) == "success"
    assert lines(default_feed) == [("default", "S1", "reminder_1")]
    assert lines(polish_feed) == [("pl_spzoo", "P1", "reminder_1")]
    with open_ledger(ledger) as led, led.engine.connect() as conn:
        runs = conn.execute(
            sa.select(
                t.due_diligence_runs.c.operator_id, t.due_diligence_runs.c.run_date, t.due_diligence_runs.c.actions
            )
        ).all()
    assert sorted((o, d.isoformat(), json.loads(a)) for o, d, a in runs) == [
        ("default", "2026-03-02", {"pre_report_notice": 2, "request": 1}),
        ("default", "2026-03-16", {"reminder_1": 1}),
        ("pl_spzoo", "2026-03-02", {"pre_report_notice": 1, "request": 1}),
        ("pl_spzoo", "2026-03-16", {"reminder_1": 1}),
    ]


def test_housekeeping_ends_the_due_diligence_retention_at_the_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded in 2026: kept until 31 December 2036 23:59:59 in Vilnius (the configuration's
    zone), deleted from 1 January 2037 00:00 there (PStTG § 24(3))."""
    from reporting.config import load_config
    from reporting.due_diligence import run_due_diligence

    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    config = write_config(tmp_path / "dac7.toml")
    with open_ledger(ledger) as led:
        run_due_diligence(
            load_config(config),
            source_url=marketplace(f"sqlite:///{tmp_path / 'marketplace.db'}"),
            ledger=led,
            today=date(2026, 3, 2),
            out_dir=tmp_path / "out",
            work_root=tmp_path / "staging",
            now=datetime(2026, 3, 2, 4, tzinfo=UTC),
            run_id="r",
        )
    monkeypatch.setenv("DAC7_LEDGER_URL", ledger)
    monkeypatch.setenv("DAC7_CONFIG", str(config))
    task = fresh_dag("dac7_housekeeping").get_task("expire_due_diligence").python_callable

    def at(moment: datetime, dry: bool = False) -> dict[str, Any]:
        context = {
            "logical_date": moment,
            "dag_run": types.SimpleNamespace(run_after=None),
            "params": {"statements_dry_run": dry},
        }
        monkeypatch.setitem(task.__globals__, "get_current_context", lambda: context)
        result: dict[str, Any] = task()
        return result

    assert at(datetime(2036, 12, 31, 23, 59, 59, tzinfo=VILNIUS)) == {"dry_run": False, "events": 0, "states": 0}
    due = datetime(2037, 1, 1, 0, 0, tzinfo=VILNIUS)
    assert at(due, dry=True) == {"dry_run": True, "events": 2, "states": 2}
    assert at(due) == {"dry_run": False, "events": 2, "states": 2}
    assert at(due) == {"dry_run": False, "events": 0, "states": 0}
