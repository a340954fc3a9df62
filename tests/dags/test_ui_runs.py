"""The runs page of the DAC7 view (``plugins/dac7_runs.py``): Airflow's runs of the DAC7 DAGs with
their state, who triggered them, the approval step and the answers it refused, and the outcome.

Fast checks here: the runs read from a real (SQLite) Airflow metadata database, the page built
from them, the refused answers read from a run's staging directory. The page in a real api-server
and Chromium, with a run that waits for an approval and then succeeds, is part of
``test_four_eyes_browser.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import html

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"


@pytest.fixture
def dac7_runs(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(PLUGINS))
    import dac7_runs

    return dac7_runs


@pytest.fixture
def dac7_view(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(PLUGINS))
    import dac7_view

    return dac7_view


def row(dac7_runs: Any, **changes: Any) -> Any:
    values = {
        "dag_id": "dac7_annual",
        "run_id": "manual__2026-01-20T06:00:00+00:00",
        "state": "running",
        "run_type": "manual",
        "triggered_by": "admin",
        "run_after": datetime(2026, 1, 20, 6, 0, tzinfo=UTC),
        "start": datetime(2026, 1, 20, 6, 0, 5, tzinfo=UTC),
        "end": None,
        "note": "",
        "approval": "awaiting_input",
    }
    return dac7_runs.RunRow(**(values | changes))


def cells(page: str) -> list[list[str]]:
    tree = html.fromstring(page)
    return [[c.text_content().strip() for c in tr.xpath("td")] for tr in tree.xpath("//table[@id='runs']/tr[td]")]


def test_the_page_shows_state_trigger_approval_refusals_and_outcome(dac7_runs: Any, dac7_view: Any) -> None:
    waiting = row(dac7_runs)
    failed = row(
        dac7_runs,
        run_id="manual__2026-01-19T06:00:00+00:00",
        state="failed",
        end=datetime(2026, 1, 20, 6, 1, 35, tzinfo=UTC),
        approval="upstream_failed",
        note="[DAC7 annual_filing failed](../dac7/): **extract** failed\n- see its log",
    )
    done = row(
        dac7_runs,
        dag_id="dac7_quarterly",
        run_id="scheduled__2026-04-01T06:00:00+00:00",
        state="success",
        triggered_by="",
        end=datetime(2026, 1, 20, 6, 0, 47, tzinfo=UTC),
        approval="",
        note="[DAC7 2026 watch (Q1)](../dac7/2026/): **3 sellers** crossed a limit",
    )
    refused = {
        (waiting.dag_id, waiting.run_id): [
            dac7_runs.Refusal(at="2026-01-20T06:10:00+00:00", user="admin", answer="Approve", reason="<own run>")
        ]
    }
    pending = {(waiting.dag_id, waiting.run_id): "2025-0b7c8a5e-6f8d-5d2e-9a3b-1c2d3e4f5a6b"}
    page = dac7_runs.runs_page(
        [waiting, failed, done], refused, pending, dags=list(dac7_runs.DAGS), dag=None, state=None, page=dac7_view
    )
    assert cells(page) == [
        [
            "annual filing" + waiting.run_id,
            "running",
            "admin",
            "2026-01-20 06:00",
            "",
            "waiting for an approval pending filesrefused: Approve by admin 2026-01-20 06:10 (<own run>)",
            "no outcome yet",
        ],
        [
            "annual filing" + failed.run_id,
            "failed",
            "admin",
            "2026-01-20 06:00",
            "1 min 30 s",
            "not reached (an earlier task failed)",
            "DAC7 annual_filing failed: extract failed",
        ],
        [
            "quarterly watch" + done.run_id,
            "success",
            "the schedule",
            "2026-01-20 06:00",
            "42 s",
            "",
            "DAC7 2026 watch (Q1): 3 sellers crossed a limit",
        ],
    ]
    assert "<own run>" not in page and "&lt;own run&gt;" in page  # escaped
    assert "Listed: 1 failed, 1 running, 1 success." in html.fromstring(page).text_content()
    tree = html.fromstring(page)
    links = tree.xpath("//table[@id='runs']//a/@href")
    assert "../dags/dac7_annual/runs/manual__2026-01-20T06%3A00%3A00%2B00%3A00" in links
    assert "pending/2025-0b7c8a5e-6f8d-5d2e-9a3b-1c2d3e4f5a6b/" in links
    assert tree.xpath("//table[@id='runs']//a[contains(@href, '../dags/')]/@target") == ["_top"] * 3


def test_the_filters_keep_each_other(dac7_runs: Any, dac7_view: Any) -> None:
    page = dac7_runs.runs_page([], {}, {}, dags=list(dac7_runs.DAGS), dag="dac7_annual", state="failed", page=dac7_view)
    tree = html.fromstring(page)
    assert "No run of the DAC7 DAGs matches." in tree.text_content()
    assert tree.xpath("//p[@class='filter']//a[@class='current']/@href") == [
        "runs?dag=dac7_annual&state=failed",
        "runs?dag=dac7_annual&state=failed",
    ]
    assert "runs?state=failed" in tree.xpath("//p[@class='filter']//a/@href")  # every DAG, still failed


def test_refused_answers_come_from_the_runs_staging_directory(dac7_runs: Any, tmp_path: Path) -> None:
    from dac7_support.common import run_uuid

    run_id = "manual__2026-01-20T06:00:00+00:00"
    run_dir = tmp_path / f"2025-{run_uuid('dac7_annual', run_id)}"
    (run_dir / "approval").mkdir(parents=True)
    (run_dir / "approval" / "refused.jsonl").write_text(
        json.dumps({"at": "2026-01-20T06:10:00+00:00", "user": "admin", "answer": "Approve", "reason": "own run"})
        + "\nnot json\n",
        encoding="utf-8",
    )
    assert dac7_runs.staging_of(tmp_path, "dac7_annual", run_id) == run_dir
    assert dac7_runs.staging_of(tmp_path, "dac7_annual", "another run") is None
    assert dac7_runs.staging_of(None, "dac7_annual", run_id) is None
    refused, pending = dac7_runs.refusals_of([row(dac7_runs, run_id=run_id)], tmp_path)
    assert pending == {("dac7_annual", run_id): run_dir.name}
    assert refused == {
        ("dac7_annual", run_id): [
            dac7_runs.Refusal(at="2026-01-20T06:10:00+00:00", user="admin", answer="Approve", reason="own run")
        ]
    }


def test_the_runs_are_read_from_airflows_metadata_database(dac7_runs: Any, airflow_db: None) -> None:
    """Runs of DAG ids of this test only: the session's metadata database holds the runs of other
    tests too (``dac7_annual`` among them)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    annual, quarterly, other = "runs_page_annual", "runs_page_quarterly", "runs_page_other"

    def make(dag_id: str, run_id: str, day: int, state: DagRunState, user: str | None) -> DagRun:
        at = datetime(2031, 1, day, 6, tzinfo=UTC)
        return DagRun(
            dag_id=dag_id,
            run_id=run_id,
            run_type=DagRunType.MANUAL,
            state=state,
            logical_date=at,
            run_after=at,
            triggering_user_name=user,
        )

    with create_session() as session:
        session.add_all(
            [
                make(annual, "a", 18, DagRunState.FAILED, "admin"),
                make(annual, "b", 19, DagRunState.SUCCESS, "compliance"),
                make(quarterly, "c", 20, DagRunState.SUCCESS, None),
                make(other, "d", 21, DagRunState.FAILED, "admin"),
            ]
        )
    every = dac7_runs.read_runs([annual, quarterly], None)
    assert [(r.dag_id, r.run_id, r.state, r.triggered_by, r.approval) for r in every] == [
        (quarterly, "c", "success", "", ""),
        (annual, "b", "success", "compliance", ""),
        (annual, "a", "failed", "admin", ""),
    ]
    assert [r.run_id for r in dac7_runs.read_runs([annual], "failed")] == ["a"]
    assert [r.run_id for r in dac7_runs.read_runs([annual, quarterly], None, limit=1)] == ["c"]
    assert dac7_runs.read_runs([], None) == []
