"""The publish stage's two reports: one after the other below
:data:`reporting.stages.publish.PARALLEL_REPORTS_MIN_SELLERS` sellers, side by side from it (the
explanation reports in a thread beside the due-diligence report), and a report that failed raises
its own error in the caller, once both have ended."""

from __future__ import annotations

import contextvars
import gc
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from reporting.errors import ReportingError
from reporting.stages import publish
from reporting.stages.publish import PARALLEL_REPORTS_MIN_SELLERS, write_seller_reports

REPORTS = {"reports": ["reports/decisions.parquet"]}
DILIGENCE = {"sellers": 1, "findings": 2, "by_kind": {"TIN unknown": 2}}
PERIOD: contextvars.ContextVar[str] = contextvars.ContextVar("period", default="none")


class Fakes:
    """Stand-ins for the two report writers: each records the thread it ran in, the caller's
    context it saw, whether the collector was on, and when it ended."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, reports_fail: bool = False, diligence_fail: bool = False):
        self.calls: list[tuple[str, str, str, bool]] = []
        self.order: list[str] = []
        self.reports_fail, self.diligence_fail = reports_fail, diligence_fail
        monkeypatch.setattr(publish, "write_reports", self.write_reports)
        monkeypatch.setattr(publish, "write_due_diligence", self.write_due_diligence)

    def _record(self, name: str) -> None:
        self.calls.append((name, threading.current_thread().name, PERIOD.get(), gc.isenabled()))

    def write_reports(self, settings: Any, out: Path) -> dict[str, Any]:
        self._record("reports")
        time.sleep(0.05)  # still under way when the due-diligence report is done
        self.order.append("reports")
        if self.reports_fail:
            raise ReportingError("reports/decisions.parquet could not be written: the disk is full")
        return REPORTS

    def write_due_diligence(self, settings: Any, out: Path) -> dict[str, Any]:
        self._record("diligence")
        self.order.append("diligence")
        if self.diligence_fail:
            raise ValueError("due diligence failed")
        return DILIGENCE


def run(sellers: int) -> tuple[Any, Any]:
    PERIOD.set("2025")
    return write_seller_reports(None, Path("out"), sellers=sellers)  # type: ignore[arg-type]


def test_below_the_threshold_the_reports_are_written_one_after_the_other_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = Fakes(monkeypatch)
    here = threading.current_thread().name
    assert gc.isenabled()
    assert run(PARALLEL_REPORTS_MIN_SELLERS - 1) == (REPORTS, DILIGENCE)
    assert fakes.calls == [("reports", here, "2025", False), ("diligence", here, "2025", False)]
    assert fakes.order == ["reports", "diligence"]
    assert gc.isenabled()  # the collector on again afterwards


def test_from_the_threshold_the_explanation_reports_are_written_in_a_thread_beside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = Fakes(monkeypatch)
    here = threading.current_thread().name
    assert run(PARALLEL_REPORTS_MIN_SELLERS) == (REPORTS, DILIGENCE)
    # the thread sees the caller's context (its log lines name the stage), the collector paused
    assert sorted(fakes.calls) == [
        ("diligence", here, "2025", False),
        ("reports", "dac7-seller-reports", "2025", False),
    ]
    assert fakes.order == ["diligence", "reports"]  # side by side: the slower one ended last, and was waited for
    assert gc.isenabled()
    assert not [t for t in threading.enumerate() if t.name == "dac7-seller-reports"]


@pytest.mark.parametrize("sellers", [PARALLEL_REPORTS_MIN_SELLERS - 1, PARALLEL_REPORTS_MIN_SELLERS])
def test_a_failed_explanation_report_raises_its_own_error_in_the_caller(
    monkeypatch: pytest.MonkeyPatch, sellers: int
) -> None:
    fakes = Fakes(monkeypatch, reports_fail=True)
    with pytest.raises(ReportingError, match=r"^reports/decisions\.parquet could not be written: the disk is full$"):
        run(sellers)
    # one after the other, the due-diligence report is not written after the failure; side by
    # side it was written already, and the error waited for both
    assert fakes.order == (["reports"] if sellers < PARALLEL_REPORTS_MIN_SELLERS else ["diligence", "reports"])
    assert gc.isenabled()


def test_a_failed_due_diligence_report_raises_once_the_thread_has_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(monkeypatch, diligence_fail=True)
    with pytest.raises(ValueError, match=r"^due diligence failed$"):
        run(PARALLEL_REPORTS_MIN_SELLERS)
    assert fakes.order == ["diligence", "reports"]  # the explanation reports finished before the error came
    assert not [t for t in threading.enumerate() if t.name == "dac7-seller-reports"]


def test_when_both_fail_the_explanation_reports_error_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    Fakes(monkeypatch, reports_fail=True, diligence_fail=True)
    with pytest.raises(ReportingError, match="the disk is full") as raised:
        run(PARALLEL_REPORTS_MIN_SELLERS)
    assert isinstance(raised.value.__context__, ValueError)  # the other one is not lost


@pytest.mark.parametrize(("sellers", "thread"), [(3_999, False), (4_000, True)])
def test_the_threshold_is_4000_sellers(monkeypatch: pytest.MonkeyPatch, sellers: int, thread: bool) -> None:
    # the figure measured (docs/performance.md): a change of it is a change of the docs too
    fakes = Fakes(monkeypatch)
    run(sellers)
    threads = {name: where for name, where, _, _ in fakes.calls}
    assert (threads["reports"] == "dac7-seller-reports") is thread
    assert threads["diligence"] == threading.current_thread().name


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_of_the_caller_stays_an_interrupt_once_the_thread_has_ended(
    monkeypatch: pytest.MonkeyPatch, interrupt: type[BaseException]
) -> None:
    fakes = Fakes(monkeypatch, reports_fail=True)

    def interrupted(settings: Any, out: Path) -> dict[str, Any]:
        fakes.order.append("diligence")
        raise interrupt()

    monkeypatch.setattr(publish, "write_due_diligence", interrupted)
    # not the explanation reports' error: a Ctrl-C or an exit is not turned into a failed report
    with pytest.raises(interrupt):
        run(PARALLEL_REPORTS_MIN_SELLERS)
    assert fakes.order == ["diligence", "reports"]  # raised once the thread had ended
    assert not [t for t in threading.enumerate() if t.name == "dac7-seller-reports"]
    assert gc.isenabled()


def test_an_exit_in_the_thread_is_raised_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(monkeypatch)

    def exits(settings: Any, out: Path) -> dict[str, Any]:
        raise SystemExit("the explanation reports exited")

    monkeypatch.setattr(publish, "write_reports", exits)
    with pytest.raises(SystemExit, match=r"^the explanation reports exited$"):
        run(PARALLEL_REPORTS_MIN_SELLERS)
    assert fakes.order == ["diligence"]


class Stop(Exception):
    pass


def test_the_publish_passes_the_runs_sellers_decided_after_keeping_the_earlier_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "run" / "rules").mkdir(parents=True)
    rules = {"sellers": 4_321, "reportable": 17, "decisions": {"reported": 17}}
    (tmp_path / "run" / "rules" / "rules.json").write_text(json.dumps(rules), encoding="utf-8")
    settings = SimpleNamespace(out_dir=tmp_path / "out", run_id="r1", run_path=tmp_path / "run")
    steps: list[tuple[str, object]] = []
    monkeypatch.setattr(publish, "keep_earlier_run", lambda out, run_id: steps.append(("keep", run_id)))

    def reports(settings: Any, out: Path, *, sellers: int) -> Any:
        steps.append(("reports", sellers))
        raise Stop

    monkeypatch.setattr(publish, "write_seller_reports", reports)
    with pytest.raises(Stop):
        publish._write_manifest(
            settings,  # type: ignore[arg-type]
            files=[],
            set_aside=[],
            warnings=[],
            discarded=[],
            other_live_filings=[],
            watch=True,
        )
    assert steps == [("keep", "r1"), ("reports", 4_321)]  # the sellers decided, not those reported
