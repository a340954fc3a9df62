"""Four eyes in ``publish`` itself: a production filing published by the DAG needs a second
person's approval recorded in the ledger for each of its messages. Whatever happens around it in
the UI (the approval marked done, cleared, ``publish`` run alone), no record, no publication."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from builders import Marketplace, write_config

from reporting import pipeline
from reporting.ledger import LedgerError, open_ledger

YEAR = 2025


def _validated(tmp_path: Path, environment: str = "prod") -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    m = Marketplace()
    m.seller("S1")
    m.sales("S1", 30, 10_00)
    run_dir = pipeline.prepare(
        config_path=write_config(tmp_path / "dac7.toml", environment=environment),
        source_url=m.write(f"sqlite:///{tmp_path}/source.db"),
        year=YEAR,
        as_of=date(2026, 1, 31),
        timestamp=datetime(2026, 1, 31, 8, 0),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )
    for stage in (pipeline.extract, pipeline.aggregate, pipeline.apply_rules, pipeline.render, pipeline.validate):
        stage(run_dir)
    return run_dir


def _messages(tmp_path: Path) -> list[tuple[str, str | None, str | None]]:
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        return [(m.status, m.triggered_by, m.approved_by) for m in ledger.messages()]


def test_without_a_recorded_approval_nothing_is_published(tmp_path: Path) -> None:
    """What marking the approval done, or running publish alone, amounts to: publish is called
    with no approval in the ledger (and whatever the XCom says)."""
    run_dir = _validated(tmp_path)
    for approved_by in (None, "reviewer"):  # an approver named only by the caller does not count
        with pytest.raises(LedgerError, match="has no recorded approval: four eyes need a second person"):
            pipeline.publish(run_dir, "LT", triggered_by="ana", approved_by=approved_by, require_approval=True)
    assert not (tmp_path / "out" / "LT").exists() or not list((tmp_path / "out" / "LT").iterdir())
    assert _messages(tmp_path) == [("rendered", None, None)]


def test_the_person_who_triggered_cannot_record_the_approval(tmp_path: Path) -> None:
    run_dir = _validated(tmp_path)
    with pytest.raises(LedgerError, match="ana triggered the run and cannot approve its filing"):
        pipeline.record_approval(run_dir, approved_by="ana", triggered_by="ana")
    with pytest.raises(LedgerError, match="an approval names its approver"):
        pipeline.record_approval(run_dir, approved_by="  ", triggered_by="ana")
    with pytest.raises(LedgerError, match="no recorded approval"):
        pipeline.publish(run_dir, "LT", triggered_by="ana", require_approval=True)


def test_a_second_persons_recorded_approval_publishes(tmp_path: Path) -> None:
    run_dir = _validated(tmp_path)
    assert len(pipeline.record_approval(run_dir, approved_by="jonas", triggered_by="ana")) == 1
    # the XCom may say nothing (the task marked done after the approval was recorded): the ledger counts
    pipeline.publish(run_dir, "LT", triggered_by="ana", approved_by=None, require_approval=True)
    assert _messages(tmp_path) == [("published", "ana", "jonas")]
    # a retried publish of the same run goes on
    pipeline.publish(run_dir, "LT", triggered_by="ana", require_approval=True)


def test_an_approval_covers_the_messages_it_was_given_for(tmp_path: Path) -> None:
    """A render after the approval (a cleared render task) makes messages nobody approved."""
    run_dir = _validated(tmp_path)
    pipeline.record_approval(run_dir, approved_by="jonas", triggered_by="ana")
    pipeline.render(run_dir)  # the same run renders again: its messages are made anew
    pipeline.validate(run_dir)
    with pytest.raises(LedgerError, match="has no recorded approval"):
        pipeline.publish(run_dir, "LT", triggered_by="ana", require_approval=True)


def test_a_test_run_and_the_command_line_need_no_recorded_approval(tmp_path: Path) -> None:
    run_dir = _validated(tmp_path / "test", environment="test")
    assert pipeline.record_approval(run_dir, approved_by="x", triggered_by=None) == []
    pipeline.publish(run_dir, "LT", require_approval=True)  # a test filing: never approved
    run_dir = _validated(tmp_path / "cli")
    pipeline.publish(run_dir, "LT")  # dac7 run: the operator's own command, no approval step


def test_a_file_changed_after_its_validation_is_not_published(tmp_path: Path) -> None:
    """publish copies each rendered file and hashes it in the same reading: a copy whose bytes
    are not those the render recorded is deleted, and the message stays unpublished; the bytes
    restored, the same run publishes, and the manifest holds the file's own digest."""
    import hashlib

    from reporting.errors import XmlValidationError
    from reporting.settings import read_json

    run_dir = _validated(tmp_path, environment="test")
    rendered = next((Path(run_dir) / "render" / "LT").glob("*.xml"))
    original = rendered.read_bytes()
    rendered.write_bytes(original.replace(b"</", b" </", 1))
    with pytest.raises(XmlValidationError, match="changed after it was rendered and validated; nothing was published"):
        pipeline.publish(run_dir, "LT")
    assert not (tmp_path / "out" / "LT").exists() or not list((tmp_path / "out" / "LT").iterdir())
    assert _messages(tmp_path) == [("rendered", None, None)]
    rendered.write_bytes(original)
    pipeline.publish(run_dir)
    published = tmp_path / "out" / "LT" / rendered.name
    assert published.read_bytes() == original
    (entry,) = read_json(tmp_path / "out" / "manifest.json")["files"]
    assert entry["sha256"] == hashlib.sha256(original).hexdigest()
    assert entry["bytes"] == len(original)
