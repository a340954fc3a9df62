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
    assert [t.task_id for t in dag.tasks] == ["prune_staging", "expire_statements", "expire_due_diligence"]
    assert dag.timetable.expression == "0 3 * * *" and dag.catchup is False
