"""Staging retention: the dac7_housekeeping DAG deletes runs' staging older than the retention,
locally and on shared staging, and nothing else."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reporting.errors import ConfigError
from reporting.shared_staging import SharedStaging, prune_local

OLD = "2024-11111111-1111-4111-8111-111111111111"
NEW = "2025-22222222-2222-4222-8222-222222222222"


def staged_run(root: Path, name: str, age_days: float) -> Path:
    run = root / name
    (run / "extract").mkdir(parents=True)
    for f in (run / "settings.json", run / "extract" / "sellers.parquet"):
        f.write_text("x", encoding="utf-8")
        stamp = time.time() - age_days * 86400
        os.utime(f, (stamp, stamp))
    return run


def test_old_runs_are_deleted_locally_and_nothing_else(tmp_path: Path) -> None:
    staged_run(tmp_path, OLD, age_days=120)
    staged_run(tmp_path, NEW, age_days=3)
    (tmp_path / "notes").mkdir()  # not a run: never touched, however old
    os.utime(tmp_path / "notes", (0, 0))
    (tmp_path / f".{OLD}.sync.json").write_text("{}", encoding="utf-8")
    assert prune_local(tmp_path, timedelta(days=90)) == [OLD]
    assert sorted(p.name for p in tmp_path.iterdir()) == [NEW, "notes"]


def test_a_run_changed_recently_is_kept_whatever_its_age(tmp_path: Path) -> None:
    run = staged_run(tmp_path, OLD, age_days=400)
    (run / "publish").mkdir()
    (run / "publish" / "manifest.json").write_text("{}", encoding="utf-8")  # a rerun today
    assert prune_local(tmp_path, timedelta(days=90)) == []


def test_old_runs_are_deleted_on_shared_staging(tmp_path: Path) -> None:
    shared = SharedStaging.from_url((tmp_path / "shared").as_uri())
    for name, age in ((OLD, 120), (NEW, 3)):
        staged_run(tmp_path / "worker", name, age)
        shared.push(name, tmp_path / "worker")
        for f in (tmp_path / "shared" / name).rglob("*"):
            stamp = time.time() - age * 86400
            os.utime(f, (stamp, stamp))
    (tmp_path / "shared" / "README").write_text("not a run", encoding="utf-8")
    assert shared.prune(timedelta(days=90)) == [OLD]
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == [NEW, "README"]
    # a year on, the other one goes too
    assert shared.prune(timedelta(days=90), now=datetime.now(UTC) + timedelta(days=365)) == [NEW]


def test_the_dag_task_prunes_both_sides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dac7_support.staging import prune_staging

    staged_run(tmp_path / "local", OLD, age_days=40)
    monkeypatch.setenv("DAC7_STAGING_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("DAC7_STAGING_URL", (tmp_path / "shared").as_uri())
    monkeypatch.setenv("DAC7_STAGING_RETENTION_DAYS", "30")
    assert prune_staging() == {"retention_days": 30, "local": 1, "shared": 0}
    monkeypatch.setenv("DAC7_STAGING_RETENTION_DAYS", "0")
    with pytest.raises(ConfigError, match="at least 1"):
        prune_staging()


def test_housekeeping_runs_daily() -> None:
    from test_dac7_annual import fresh_dag

    dag = fresh_dag("dac7_housekeeping")
    assert [t.task_id for t in dag.tasks] == [
        "prune_staging",
        "expire_statements",
        "expire_due_diligence",
        "expire_verifications",
    ]
    assert dag.timetable.expression == "0 3 * * *" and dag.catchup is False


def test_the_verification_record_ends_with_its_ten_years(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The housekeeping task deletes the verification calls and cached answers of a year whose ten
    years have run at the run's logical date, in the configuration's time zone (Vilnius)."""
    import types
    from zoneinfo import ZoneInfo

    from builders import write_config
    from test_dac7_annual import fresh_dag

    from reporting.ledger import open_ledger
    from reporting.ledger.verifications import CachedAnswer, CallRecord, record

    vilnius = ZoneInfo("Europe/Vilnius")
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    made = datetime(2016, 1, 1, 0, 30, tzinfo=vilnius)  # 2015-12-31 22:30 UTC: a record of 2016 there
    with open_ledger(ledger) as led:
        record(
            led.engine,
            [CallRecord(made, "vies", "vat", "DE", "a" * 64, "***100", "S1", 1, "verified", "ok", "W", None, "VIES")],
            [CachedAnswer("vies", "a" * 64, "vat", "DE", "verified", "ok", "W", None, "VIES", made)],
        )
    monkeypatch.setenv("DAC7_LEDGER_URL", ledger)
    monkeypatch.setenv("DAC7_CONFIG", str(write_config(tmp_path / "dac7.toml")))
    task = fresh_dag("dac7_housekeeping").get_task("expire_verifications").python_callable

    def at(moment: datetime, dry: bool = False) -> dict[str, object]:
        context = {
            "logical_date": moment,
            "dag_run": types.SimpleNamespace(run_after=None),
            "params": {"statements_dry_run": dry},
        }
        monkeypatch.setitem(task.__globals__, "get_current_context", lambda: context)
        result: dict[str, object] = task()
        return result

    assert at(datetime(2026, 12, 31, 23, 59, 59, tzinfo=vilnius)) == {
        "dry_run": False,
        "calls": 0,
        "cached": 0,
        "timezone": "Europe/Vilnius",
    }
    due = datetime(2027, 1, 1, tzinfo=vilnius)
    assert at(due, dry=True) == {"dry_run": True, "calls": 1, "cached": 1, "timezone": "Europe/Vilnius"}
    assert at(due) == {"dry_run": False, "calls": 1, "cached": 1, "timezone": "Europe/Vilnius"}
    assert at(due) == {"dry_run": False, "calls": 0, "cached": 0, "timezone": "Europe/Vilnius"}
