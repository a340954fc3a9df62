"""A preview's ledger is a working copy (``stage_ledger``): opened with ``scratch=True`` its
commits are not synced one by one, and a transaction still rolls back; the working copy is synced
once before it is renamed into place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reporting.ledger import open_ledger
from reporting.stages import plan as plan_stage


def pragmas(url: str, scratch: bool) -> tuple[int, str]:
    with open_ledger(url, scratch=scratch) as ledger, ledger.engine.connect() as conn:
        synchronous = conn.exec_driver_sql("pragma synchronous").scalar_one()
        journal = conn.exec_driver_sql("pragma journal_mode").scalar_one()
    return synchronous, journal


def test_a_scratch_ledger_is_not_synced_per_commit_and_the_ledger_itself_is(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    assert pragmas(url, scratch=False) == (2, "delete")  # FULL, a journal file: as before
    assert pragmas(url, scratch=True) == (0, "memory")  # OFF
    assert pragmas(url, scratch=False) == (2, "delete")  # nothing of it stays with the file


def test_a_failed_transaction_of_a_scratch_ledger_leaves_nothing(tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3", scratch=True) as ledger:
        with ledger.engine.begin() as conn:
            conn.exec_driver_sql("create table probe (x integer)")
            conn.exec_driver_sql("insert into probe values (1)")
        with pytest.raises(RuntimeError), ledger.engine.begin() as conn:
            conn.exec_driver_sql("insert into probe values (2)")
            conn.exec_driver_sql("delete from probe where x = 1")
            raise RuntimeError("stop")
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("select x from probe").scalars().all() == [1]


def test_the_working_copy_is_synced_before_it_replaces_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(plan_stage.os, "fsync", fsync)
    work = tmp_path / ".ledger.sqlite3.1-ab.tmp"
    work.write_bytes(b"x")
    plan_stage._sync(work)
    assert synced == [work.stat().st_ino]


class _Preview:
    """What :func:`plan_stage.stage_ledger` reads of a preview's settings."""

    preview = True

    def __init__(self, root: Path) -> None:
        self.root = root

    def stage_dir(self, stage: str) -> Path:
        d = self.root / stage
        d.mkdir(parents=True, exist_ok=True)
        return d


def _events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    real_sync, real_replace = plan_stage._sync, os.replace
    monkeypatch.setattr(plan_stage, "_sync", lambda p: (events.append(("sync", Path(p).name)), real_sync(p))[1])
    monkeypatch.setattr(
        plan_stage.os, "replace", lambda a, b: (events.append(("replace", Path(a).name)), real_replace(a, b))[1]
    )
    return events


def test_a_stage_that_writes_syncs_its_copy_then_renames_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _events(monkeypatch)
    settings: Any = _Preview(tmp_path)
    with plan_stage.stage_ledger(settings, "DE") as url, open_ledger(url, scratch=True):
        work = Path(url.removeprefix("sqlite:///")).name
    assert events == [("sync", work), ("replace", work)]
    assert [p.name for p in (tmp_path / "preview" / "DE").iterdir()] == ["ledger.sqlite3"]


def test_a_failed_or_reading_stage_neither_syncs_nor_renames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _events(monkeypatch)
    settings: Any = _Preview(tmp_path)
    with pytest.raises(RuntimeError), plan_stage.stage_ledger(settings, "DE"):
        raise RuntimeError("stop")
    with plan_stage.stage_ledger(settings, "DE", write=False):
        pass
    assert events == []
    assert list((tmp_path / "preview" / "DE").iterdir()) == []


def test_a_copy_that_cannot_be_synced_is_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(path: Path) -> None:
        raise OSError("EIO")

    monkeypatch.setattr(plan_stage, "_sync", failing)
    settings: Any = _Preview(tmp_path)
    with pytest.raises(OSError, match="EIO"), plan_stage.stage_ledger(settings, "DE"):
        pass
    assert list((tmp_path / "preview" / "DE").iterdir()) == []
