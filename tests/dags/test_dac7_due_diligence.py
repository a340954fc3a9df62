"""The daily due-diligence DAG: its shape (one mapped task per operator of the configuration, the
day from the logical date, retries on the database steps), its Param, and, through ``dag.test()``,
two days of a group's marketplace with the platform's report in between; and housekeeping ending
the retention of the due-diligence history at its boundary."""

from __future__ import annotations

import json
import logging
import os
import re
import types
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from builders import Marketplace, vat_sellers, with_due_diligence_columns, write_config
from test_dac7_annual import REPO, fresh_dag

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

    assert [t.task_id for t in dag.topological_sort()] == ["operators", "due_diligence", "verify"]
    assert "operators" in dag.get_task("due_diligence").upstream_task_ids
    assert dag.get_task("verify").upstream_task_ids == {"operators", "due_diligence"}
    assert dag.get_task("verify").map_index_template == "{{ operator_id }}"
    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 4 * * *", "UTC")
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.get_task("due_diligence").retries == 2 and dag.get_task("operators").retries == 0
    assert dag.get_task("due_diligence").map_index_template == "{{ operator_id }}"


def test_the_verification_runs_one_at_a_time_in_its_pool_or_else_the_default_pool(
    dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unnamed (``DAC7_VERIFICATION_POOL`` unset), the default pool: a pool that does not exist
    would keep the task from ever being scheduled. Named, that pool, one slot per task; and the
    operators of a group one at a time in either."""
    verify = dag.get_task("verify")
    assert (verify.pool, verify.pool_slots, verify.max_active_tis_per_dagrun) == ("default_pool", 1, 1)
    monkeypatch.setenv("DAC7_VERIFICATION_POOL", "dac7_verification")
    verify = fresh_dag("dac7_due_diligence").get_task("verify")
    assert (verify.pool, verify.pool_slots, verify.max_active_tis_per_dagrun) == ("dac7_verification", 1, 1)


def test_make_airflow_names_the_pool_the_dags_expect() -> None:
    """scripts/airflow_local.sh (``make airflow``) creates and names the pool under the name
    ``VERIFICATION_POOL`` of dags/dac7_support/common.py gives it: the two say the same."""
    from dac7_support.common import VERIFICATION_POOL

    script = (REPO / "scripts" / "airflow_local.sh").read_text(encoding="utf-8")
    assert re.findall(r"^DAC7_VERIFICATION_POOL=\$\{DAC7_VERIFICATION_POOL:-([^}]*)\}$", script, re.M) == [
        VERIFICATION_POOL
    ]


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
    monkeypatch.delenv("DAC7_VERIFICATION_KEY", raising=False)
    monkeypatch.setenv("DAC7_CONFIG", str(write_config(tmp_path / "dac7.toml", extra=GROUP)))
    monkeypatch.setenv("DAC7_SOURCE_URL", marketplace(f"sqlite:///{tmp_path / 'marketplace.db'}"))
    monkeypatch.setenv("DAC7_OUT_DIR", str(out))
    monkeypatch.setenv("DAC7_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("DAC7_LEDGER_URL", ledger)

    dr = fresh_dag("dac7_due_diligence").test(logical_date=datetime(2026, 3, 2, 4, tzinfo=UTC))
    assert str(dr.state) == "success"
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in dr.get_task_instances()}
    # without DAC7_VERIFICATION_KEY nothing is verified: the verification is skipped, saying so
    assert states == {
        ("operators", -1): "success",
        ("due_diligence", 0): "success",
        ("due_diligence", 1): "success",
        ("verify", 0): "skipped",
        ("verify", 1): "skipped",
    }
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


#: VAT numbers of valid form (python-stdnum's de.vat); what VIES answers for each is the script of
#: the local VIES SOAP server (tests/verification_servers.py)
VALID, NOT_REGISTERED, FAILING = "DE811907980", "DE129273398", "DE813495425"


def xcom_values(dag_run: Any) -> dict[tuple[str, int], Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            sa.select(XComModel).where(XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id)
        ).all()
        return {(x.task_id, x.map_index): x.value for x in rows}


@pytest.mark.slow
@pytest.mark.usefixtures("airflow_db")
def test_the_daily_run_verifies_through_vies_within_its_cap_and_keeps_no_identifier_in_xcom_or_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Three sellers whose VAT numbers are unverified, VIES switched on (python-stdnum off, so that
    VIES alone decides), at most two items a day, in the one-slot pool ``dac7_verification``.
    Day 1: S1 verified (with its consultation number), S2 not registered: invalid; S3 left for the
    next day. Day 2: S2 requested as invalid; VIES answers S3 with HTTP 500, retried once (two
    calls), then recorded as not verified; the run goes on."""
    from airflow.models.pool import Pool
    from verification_servers import ViesSoapServer, consultation_number, running

    from reporting.due_diligence import seller_history, seller_state
    from reporting.ledger.verifications import calls

    Pool.create_or_update_pool("dac7_verification", slots=1, description="DAC7 verification", include_deferred=False)
    server = ViesSoapServer()
    server.script.update({VALID[2:]: ["valid"], NOT_REGISTERED[2:]: ["invalid"], FAILING[2:]: ["http500"]})
    out, ledger = tmp_path / "out", f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    source = with_due_diligence_columns(vat_sellers(VALID, NOT_REGISTERED, FAILING)).write(
        f"sqlite:///{tmp_path / 'marketplace.db'}"
    )
    for name, value in {
        "DAC7_SOURCE_URL": source,
        "DAC7_OUT_DIR": str(out),
        "DAC7_STAGING_DIR": str(tmp_path / "staging"),
        "DAC7_LEDGER_URL": ledger,
        "DAC7_VERIFICATION_KEY": "a-test-key-of-at-least-16-bytes",
        "DAC7_VERIFICATION_POOL": "dac7_verification",
    }.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    with running(server):
        extra = (
            "\n[verification]\nmax_per_day = 2\n\n[verification.stdnum]\nenabled = false\n\n[verification.vies]\n"
            f'enabled = true\nurl = "{server.url}"\ntimeout_seconds = 0.5\nrate_per_second = 100\n'
            "max_attempts = 2\nbackoff_seconds = 0.01\n"
        )
        monkeypatch.setenv("DAC7_CONFIG", str(write_config(tmp_path / "dac7.toml", extra=extra)))
        dag = fresh_dag("dac7_due_diligence")
        assert dag.get_task("verify").pool == "dac7_verification"
        day1 = dag.test(logical_date=datetime(2026, 3, 2, 4, tzinfo=UTC))
        assert str(day1.state) == "success"
        assert xcom_values(day1)[("verify", 0)] | {"seconds": 0} == {
            "operator_id": "default",
            "date": "2026-03-02",
            "adapters": ["vies"],
            "due": 3,
            "asked": 2,
            "verified": 1,
            "invalid": 1,
            "unverified": 0,
            "stale": 0,
            "left": 1,
            "seconds": 0,
        }
        with open_ledger(ledger) as led:
            assert [seller_state(led, s).items["vat"] for s in ("S1", "S2", "S3")] == [  # type: ignore[union-attr]
                "verified",
                "invalid",
                "unverified",
            ]
            [check] = [e for e in seller_history(led, "S1") if e.kind == "verification"]
        assert check.source.endswith(f"consultation number {consultation_number(VALID[2:])}")

        day2 = fresh_dag("dac7_due_diligence").test(logical_date=datetime(2026, 3, 3, 4, tzinfo=UTC))
        assert str(day2.state) == "success"
        feed = out / "due_diligence" / "actions.jsonl"
        lines = [json.loads(x) for x in feed.read_text(encoding="utf-8").splitlines()]
        requests = [(x["seller_id"], x["items_missing"], x["items_invalid"]) for x in lines if x["action"] == "request"]
        assert requests == [("S2", ["vat"], ["vat"])]
        result = xcom_values(day2)[("verify", 0)]
        assert (result["due"], result["asked"], result["unverified"], result["left"]) == (1, 1, 1, 0)
        assert server.asked(FAILING[2:]) == 2 and server.errors == []
        with open_ledger(ledger) as led:
            assert seller_state(led, "S3").items["vat"] == "unverified"  # type: ignore[union-attr]
            [tried] = [e for e in seller_history(led, "S3") if e.kind == "verification"]
            assert tried.detail == {"item": "vat", "state": "unverified", "was": "unverified"}
            assert "gave up after 2 call(s)" in tried.source
            assert [c.outcome for c in calls(led.engine, seller_id="S3")] == ["unverified", "unverified"]
    # no TIN or VAT number in XCom, in the logs, or in what the tasks printed
    captured = capfd.readouterr()
    texts = {
        "xcom": json.dumps([list(xcom_values(r).values()) for r in (day1, day2)], default=str),
        "log records": caplog.text,
        "stdout and stderr": captured.out + captured.err,
        **{str(f): f.read_text(errors="replace") for f in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log")},
    }
    assert "due-diligence verification default 2026-03-03" in caplog.text  # the logs were searched
    for where, text in texts.items():
        for number in (VALID, NOT_REGISTERED, FAILING):
            assert number[2:] not in text, where


def retention_log(monkeypatch: pytest.MonkeyPatch) -> list[logging.LogRecord]:
    """The records of the retention's logger from now on (Airflow's logging set up by the DagBag
    does not pass them to caplog)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("dac7.retention")
    monkeypatch.setattr(logger, "handlers", [*logger.handlers, handler])
    monkeypatch.setattr(logger, "level", logging.INFO)
    return records


@pytest.mark.parametrize("configured", [True, False], ids=["configuration", "recorded by the run"])
def test_housekeeping_ends_the_due_diligence_retention_at_the_boundary(
    configured: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded in 2026: kept until 31 December 2036 23:59:59 in Vilnius (the configuration's
    zone), deleted from 1 January 2037 00:00 there (PStTG § 24(3)); so also where the housekeeping
    runs without the configuration: the daily run recorded the zone it counted its days in. In
    UTC the years would end two hours later (nothing would go at midnight in Vilnius)."""
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
    monkeypatch.setenv("DAC7_CONFIG", str(config if configured else tmp_path / "elsewhere" / "dac7.toml"))
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

    zone = {"timezone": "Europe/Vilnius"}
    records = retention_log(monkeypatch)
    assert at(datetime(2036, 12, 31, 23, 59, 59, tzinfo=VILNIUS)) == {
        "dry_run": False,
        "events": 0,
        "states": 0,
        **zone,
    }
    origin = "configuration" if configured else "recorded by the latest due-diligence run (no configuration)"
    said = [r for r in records if "counts the years in the time zone Europe/Vilnius" in r.getMessage()]
    assert said and origin in said[0].getMessage()
    assert said[0].levelno == (logging.INFO if configured else logging.WARNING)
    due = datetime(2037, 1, 1, 0, 0, tzinfo=VILNIUS)  # 2036-12-31 22:00 UTC
    assert at(due, dry=True) == {"dry_run": True, "events": 2, "states": 2, **zone}
    assert at(due) == {"dry_run": False, "events": 2, "states": 2, **zone}
    assert at(due) == {"dry_run": False, "events": 0, "states": 0, **zone}


def test_housekeeping_without_a_configuration_or_a_recorded_zone_counts_in_utc_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs made before the zone was recorded, and no configuration: UTC, with a warning; runs
    of two operators that recorded different zones: refused, naming both (no guess)."""
    from reporting.due_diligence import retention_zone
    from reporting.errors import ConfigError
    from reporting.ledger.due_diligence import last_run_zones

    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    settings = {"measure": "withhold", "measure_day": 1, "reminder_1_days": 30, "reminder_2_days": 60}
    old = json.dumps({**settings, "reporting_since": "2024-01-01"})  # as runs recorded them before the zone

    def run_row(operator: str, day: date) -> dict[str, Any]:
        counts = {"sellers": 0, "in_scope": 0, "changed": 0, "events": 1, "actions": "{}"}
        return {"operator_id": operator, "run_date": day, "run_id": "r", "finished": datetime(2026, 3, 2, 4), **counts}

    made = datetime(2026, 12, 31, 23, 30)  # naive UTC, as the ledger keeps it
    event = {"operator_id": "default", "seller_id": "S1", "at": made, "kind": "request", "detail": "{}"}
    with open_ledger(ledger) as led, led.engine.begin() as conn:
        conn.execute(sa.insert(t.due_diligence_runs), [{**run_row("default", date(2026, 3, 2)), "settings": old}])
        conn.execute(sa.insert(t.due_diligence_events), [{**event, "source": "run", "recorded": made}])
    monkeypatch.setenv("DAC7_LEDGER_URL", ledger)
    monkeypatch.setenv("DAC7_CONFIG", str(tmp_path / "none.toml"))
    task = fresh_dag("dac7_housekeeping").get_task("expire_due_diligence").python_callable
    run = types.SimpleNamespace(run_after=None)
    before = datetime(2036, 12, 31, 23, 59, 59, tzinfo=UTC)
    context = {"logical_date": before, "dag_run": run, "params": {"statements_dry_run": True}}
    monkeypatch.setitem(task.__globals__, "get_current_context", lambda: context)
    records = retention_log(monkeypatch)
    assert task() == {"dry_run": True, "events": 0, "states": 0, "timezone": "UTC"}
    context["logical_date"] = datetime(2037, 1, 1, tzinfo=UTC)
    # made at 23:30 UTC on 31 December 2026: a record of 2026 in UTC, due from 1 January 2037 00:00 UTC
    assert task() == {"dry_run": True, "events": 1, "states": 0, "timezone": "UTC"}
    said = [r for r in records if "counts the years in the time zone UTC" in r.getMessage()][-1]
    assert said.levelno == logging.WARNING and "no due-diligence run recorded its time zone" in said.getMessage()
    with open_ledger(ledger) as led:
        assert last_run_zones(led.engine) == {"default": None}
        with led.engine.begin() as conn:
            later = date(2026, 3, 3)
            rows = [
                {
                    **run_row("default", later),
                    "settings": json.dumps({**json.loads(old), "timezone": "Europe/Vilnius"}),
                },
                {**run_row("second", later), "settings": json.dumps({**json.loads(old), "timezone": "Europe/Paris"})},
                {**run_row("third", later), "settings": "not JSON"},
            ]
            conn.execute(sa.insert(t.due_diligence_runs), rows)
        assert last_run_zones(led.engine) == {"default": "Europe/Vilnius", "second": "Europe/Paris", "third": None}
        with pytest.raises(
            ConfigError, match=r"different time zones \(Europe/Paris, Europe/Vilnius\): set DAC7_CONFIG"
        ):
            retention_zone(led, None)
        assert retention_zone(led, "Europe/Lisbon")[0].key == "Europe/Lisbon"  # the configuration first
