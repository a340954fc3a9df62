"""Four eyes through the approval's real completion path, in this process, without Celery.

A production run of ``dac7_annual`` (Param ``environment`` = ``prod``; the demo configuration
``dac7.toml`` files in LT, routing ``nexus``; a demo marketplace as the source) runs through
``dag.test()``. Its ``approve`` task (``FilingApproval``) writes its Human-in-the-loop request and
waits for a person.

Airflow 3.3 no longer defers a Human-in-the-loop task to ``HITLTrigger``: ``HITLOperator.execute``
raises ``TaskAwaitingInput`` and the task is parked in the ``awaiting_input`` state, with no
trigger and no triggerer. ``dag.test()`` keeps the run alive while a task waits there ("Waiting for
Human-in-the-loop input") until a response recorded from outside sets it back to ``scheduled``:
the Core API's ``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails``
(what the *Required actions* page sends) records ``responded_by``, ``chosen_options`` and
``responded_at`` and, for a parked task, hands ``HITLDetail.as_resume_event_payload()`` (the keys
of the provider's ``HITLTriggerEventSuccessPayload``) to ``handle_event_submit``; ``dag.test()``
then resumes the task in ``execute_complete(context, event)``, where ``FilingApproval`` calls
``check_second_person`` with the run's ``triggering_user_name``.

Here the response goes through that very endpoint: Airflow's API app (``create_app("core")``)
with the simple auth manager and a passwords file of this module, behind a FastAPI
``TestClient``, each user logged in through ``POST /auth/token``. A background thread answers
once ``dag.test()`` says it waits for ``approve`` (its log line: answering between the task being
parked and ``dag.test()`` recording that state would have the answer overwritten), first reading
what the approver sees (``GET .../hitlDetails``) and what has been published at that moment.

``dag.test()`` always triggers its run as ``dag_test`` (``triggering_user_name="dag_test"`` in
``airflow/sdk/definitions/dag.py``): the user who triggered is therefore named ``dag_test``, and
``reviewer`` is the second person. The background thread gives a list of answers in turn, each
once the task waits with no answer recorded.

1. No approvers configured: ``dag_test`` approves, Airflow takes the answer, ``execute_complete``
   refuses it (logged, ``approval/refused.jsonl``), clears it and parks the same request again;
   ``reviewer`` then approves and the run publishes, recorded as triggered by ``dag_test`` and
   approved by ``reviewer``. The request shows per message its MessageRefId, a link to the
   pending file and its sha256, and who triggered.
2. ``DAC7_APPROVERS`` names ``dag_test``, ``reviewer`` and ``carol``: the request is assigned to
   ``reviewer`` and ``carol`` only, Airflow refuses ``dag_test``'s answer (403) and the task waits
   on; ``reviewer`` approves.
3. ``reviewer`` rejects: the run fails, nothing is published.
4. "Mark as success" on the waiting task publishes nothing (no approval in the ledger).
5. A test run of new data skips the approval; a test run that deletes a seller asks for a
   confirmation with the count per authority, which the person who triggered may give.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow_stack import logged_in

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
DAG_ID = "dac7_annual"
YEAR = 2025
FILING_STATE = "LT"  # dac7.toml: the operator's address is in LT, routing "nexus"
TRIGGERED_BY = "dag_test"  # what dag.test() records as the run's triggering user
REVIEWER = "reviewer"
USERS = {TRIGGERED_BY: "user", REVIEWER: "user"}  # simple auth manager roles: both may approve
PROD = {"environment": "prod"}
HITL_DETAILS = "/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
TASK_INSTANCE = "/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve"
#: seconds for a run to reach the approval (about 10 s on the 2-core machine), and to end after it
RUN_TIMEOUT = 120.0

pytestmark = [pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")]


# --- the source, the DAG, the environment of a run ------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from dac7_demo import generate_demo

    url = f"sqlite:///{tmp_path_factory.mktemp('source') / 'marketplace.db'}"
    generate_demo(url, sellers=200, seed=7, year=YEAR, replace=True)
    return url


def fresh_dag(*, retry_delay: timedelta | None = None) -> Any:
    """A newly parsed DAG for each dag.test() (it merges a run's conf into the operators' params).

    ``retry_delay``: the first delay of every task that retries, in place of the minute of
    ``dac7_support.common.RETRY``, for a run whose failing task is retried in full (its retries,
    their exponential back-off, the same final state) without waiting minutes for it."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS)).dags[DAG_ID]
    if retry_delay is not None:
        for task in dag.tasks:
            if task.retries:
                task.retry_delay = retry_delay
    return dag


@dataclass(frozen=True)
class Paths:
    out: Path
    staging: Path
    ledger_url: str


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_db: str) -> Paths:
    config = REPO / "dac7.toml"
    assert config.is_file(), "the demo configuration dac7.toml is missing"
    p = Paths(tmp_path / "out", tmp_path / "staging", f"sqlite:///{tmp_path / 'dac7-ledger.sqlite3'}")
    monkeypatch.setenv("DAC7_CONFIG", str(config))
    monkeypatch.setenv("DAC7_SOURCE_URL", demo_db)
    monkeypatch.setenv("DAC7_OUT_DIR", str(p.out))
    monkeypatch.setenv("DAC7_STAGING_DIR", str(p.staging))
    monkeypatch.setenv("DAC7_LEDGER_URL", p.ledger_url)
    return p


def output_files(p: Paths) -> list[str]:
    return sorted(str(f.relative_to(p.out)) for f in p.out.rglob("*") if f.is_file()) if p.out.exists() else []


def ledger_messages(p: Paths) -> list[Any]:
    """The production messages of the year in the run's ledger (none before the ledger exists)."""
    from reporting.ledger import open_ledger

    if not Path(p.ledger_url.removeprefix("sqlite:///")).exists():
        return []
    with open_ledger(p.ledger_url, create=False) as ledger:
        return ledger.messages(year=YEAR, environment="prod")


def asset_events(dag_run: Any) -> list[str]:
    """The URIs of the asset events the run emitted (one per published file, one for the statements)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return sorted(
            session.scalars(
                select(AssetModel.uri)
                .join(AssetEvent, AssetModel.id == AssetEvent.asset_id)
                .where(AssetEvent.source_dag_id == dag_run.dag_id, AssetEvent.source_run_id == dag_run.run_id)
            )
        )


def task_states(dag_run: Any) -> dict[str, set[str]]:
    states: dict[str, set[str]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, set()).add(str(ti.state))
    return states


def xcom(dag_run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalar(
            select(XComModel.value).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
        )


# --- Airflow's API, as the UI calls it ------------------------------------------------------------


@dataclass
class Api:
    client: Any  # fastapi.testclient.TestClient of Airflow's API app
    tokens: dict[str, str]

    def call(self, user: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        response = self.client.request(method, path, headers=headers, **kwargs)
        return response.status_code, response.json()


@pytest.fixture(scope="module")
def api(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Airflow's API app in this process (the Core API, no server), with the simple auth manager
    and the users of a passwords file of this module; each user logged in through ``/auth/token``."""
    with logged_in(tmp_path_factory.mktemp("api"), USERS) as (client, tokens):
        yield Api(client, tokens)


# --- the approver: a person answering in the UI while dag.test() waits ---------------------------


class _WaitingForApproval(logging.Handler):
    """Sets ``event`` when dag.test() logs that it waits for the human input of ``approve``: the
    task is parked and dag.test() has recorded it so. (dag.test() sets the task's state from the
    task runner's result after the task was parked; an answer given in between would be
    overwritten and the run would wait for ever.)"""

    def __init__(self, event: threading.Event) -> None:
        super().__init__(logging.INFO)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Waiting for Human-in-the-loop input") and "'approve'" in message:
            self.event.set()


@dataclass
class Answer:
    """One answer given while the approval waited, and what the approver saw before giving it."""

    user: str
    option: str
    detail: dict[str, Any] = field(default_factory=dict)
    state: str | None = None
    files: list[str] = field(default_factory=list)
    ledger: list[tuple[str, str]] = field(default_factory=list)
    status: int | None = None
    response: Any = None


@dataclass
class Approver:
    """Answers the approval of the run at ``logical_date``, from a background thread: each of
    ``answers`` (user, option) in turn, each once the task waits for a person with no answer
    recorded (after an answer the task refused, it waits again).

    Before answering it records what the approver sees (the HITL detail, through the API) and what
    is published at that moment. Whatever goes wrong, it never leaves dag.test() waiting: a task
    still parked when it gives up is marked failed."""

    api: Api
    answers: list[Answer]
    logical_date: datetime
    paths: Paths
    asked: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    run_id: str | None = None
    error: BaseException | None = None
    #: instead of answering, mark the parked approval task done, as "Mark as success" in the UI
    mark_success: bool = False

    # the first answer, as the tests of a single answer read it
    @property
    def first(self) -> Answer:
        return self.answers[0]

    @property
    def detail(self) -> dict[str, Any]:
        return self.first.detail

    @property
    def state_when_asked(self) -> str | None:
        return self.first.state

    @property
    def files_when_asked(self) -> list[str]:
        return self.first.files

    @property
    def ledger_when_asked(self) -> list[tuple[str, str]]:
        return self.first.ledger

    @property
    def answer(self) -> tuple[int, Any] | None:
        last = self.answers[-1]
        return None if last.status is None else (last.status, last.response)

    def wait_until_asked(self, deadline: float) -> Any:
        """The parked approval, once dag.test() has recorded it waiting with no answer."""
        while True:
            while not self.asked.wait(0.1):
                if self.finished.is_set():
                    raise AssertionError("the run ended without waiting for an approval")
                if time.monotonic() > deadline:
                    raise AssertionError(f"the run did not wait for an approval within {RUN_TIMEOUT:.0f} s")
            self.asked.clear()
            ti = self.parked_approval()
            if ti is None:
                continue
            status, detail = self.api.call(REVIEWER, "GET", HITL_DETAILS.format(dag_id=DAG_ID, run_id=ti.run_id))
            if status == 200 and not detail["response_received"]:
                # one more "Waiting" line: dag.test() has recorded the state the task parked in
                while not self.asked.wait(0.1):
                    if time.monotonic() > deadline:
                        raise AssertionError("dag.test() did not record the waiting approval")
                return ti

    def run(self) -> None:
        answered = False
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            ti = None
            for answer in self.answers:
                if ti is None:
                    ti = self.wait_until_asked(deadline)
                self.run_id = ti.run_id
                answer.state = str(ti.state)
                path = HITL_DETAILS.format(dag_id=DAG_ID, run_id=self.run_id)
                status, answer.detail = self.api.call(answer.user, "GET", path)
                assert status == 200, (status, answer.detail)
                answer.files = output_files(self.paths)
                answer.ledger = [(m.authority, m.status) for m in ledger_messages(self.paths)]
                if self.mark_success:
                    answer.status, answer.response = self.api.call(
                        answer.user,
                        "PATCH",
                        TASK_INSTANCE.format(dag_id=DAG_ID, run_id=self.run_id),
                        json={"new_state": "success"},
                    )
                else:
                    answer.status, answer.response = self.api.call(
                        answer.user, "PATCH", path, json={"chosen_options": [answer.option], "params_input": {}}
                    )
                answered = answer.status == 200
                # an answer Airflow refused leaves the task parked: the next one answers at once;
                # an answer it took resumes the task, which may park again (a refused approval)
                ti = None if answered else ti
        except BaseException as exc:
            self.error = exc
        finally:
            if not answered:
                self.fail_parked_approval()

    def parked_approval(self) -> Any:
        from airflow.models.dagrun import DagRun
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        with create_session() as session:
            return session.scalar(
                select(TaskInstance)
                .join(TaskInstance.dag_run)
                .where(
                    TaskInstance.dag_id == DAG_ID,
                    TaskInstance.task_id == "approve",
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                    DagRun.logical_date == self.logical_date,
                )
            )

    def fail_parked_approval(self) -> None:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        ti = self.parked_approval()
        if ti is not None:
            with create_session() as session:
                session.get(TaskInstance, ti.id).state = TaskInstanceState.FAILED


@contextmanager
def approval(
    api: Api,
    answers: list[tuple[str, str]],
    logical_date: datetime,
    p: Paths,
    *,
    mark_success: bool = False,
) -> Iterator[Approver]:
    """An approver that gives ``answers`` (user, option) while the body of the ``with`` runs dag.test()."""
    approver = Approver(api, [Answer(u, o) for u, o in answers], logical_date, p, mark_success=mark_success)
    handler = _WaitingForApproval(approver.asked)
    logger = logging.getLogger("airflow.sdk.definitions.dag")
    level, disabled = logger.level, logger.disabled
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.disabled = False
    thread = threading.Thread(target=approver.run, name="approver", daemon=True)
    thread.start()
    try:
        yield approver
    finally:
        approver.finished.set()
        thread.join(timeout=30)
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled
    assert not thread.is_alive(), "the approver did not stop"
    if approver.error is not None:
        raise approver.error


def run_until_answered(
    api: Api, answers: list[tuple[str, str]], logical_date: datetime, p: Paths, conf: dict[str, Any] = PROD
) -> tuple[Any, Approver]:
    with approval(api, answers, logical_date, p) as approver:
        dag_run = fresh_dag().test(logical_date=logical_date, run_conf=conf)
    return dag_run, approver


def rendered_messages(p: Paths, dag_run: Any) -> list[dict[str, Any]]:
    """The messages the run rendered for the filing state (its render's own list)."""
    gate = xcom(dag_run, "gate")
    run = Path(gate["file"]).parents[1]
    return json.loads((run / "render" / "authorities" / f"{FILING_STATE}.json").read_text(encoding="utf-8"))["messages"]


def assert_waited_for_approval(approver: Approver, dag_run: Any, p: Paths) -> None:
    """The run waited at ``approve`` for a person, with the filing's figures, nothing published."""
    assert approver.run_id == dag_run.run_id
    assert approver.state_when_asked == "awaiting_input"
    detail = approver.detail
    assert detail["subject"] == f"Publish the DAC7 {YEAR} production filing?"
    assert detail["options"] == ["Approve", "Reject"]
    body = detail["body"]
    assert body.startswith(f"### DAC7 {YEAR}: production filing in {FILING_STATE}\n"), body
    assert f"| {FILING_STATE} | " in body
    assert f"Triggered by: **{TRIGGERED_BY}**." in body
    assert (
        f"The person who triggered the run cannot approve it: an approval by {TRIGGERED_BY} is refused and this "
        "request stays open for another person." in body
    )
    # per message: its MessageRefId, a link to the pending file, its sha256
    run_name = Path(xcom(dag_run, "gate")["file"]).parents[1].name
    messages = rendered_messages(p, dag_run)
    assert messages
    for m in messages:
        name = m["file"].rsplit("/", 1)[-1]
        row = (
            f"| {FILING_STATE} | {m['message_ref_id']} | {m['message_type_indic']} | {m['records']['new']} new "
            f"| [{name}](/dac7/pending/{run_name}/{m['file']}) |"
        )
        assert row in body, body
        assert f"\n- {name}: `{m['sha256']}`\n" in body, body
    assert "seller(s) quarantined" in body
    assert detail["response_received"] is False and detail["responded_by_user"] is None
    assert detail["task_instance"]["state"] == "awaiting_input"
    assert approver.files_when_asked == []
    assert approver.ledger_when_asked == [(FILING_STATE, "rendered")]


# --- the tests ------------------------------------------------------------------------------------


def assert_published(dag_run: Any, p: Paths, approved_by: str) -> None:
    """The run published the filing state's messages, approved by ``approved_by``."""
    assert str(dag_run.state) == "success", task_states(dag_run)
    states = task_states(dag_run)
    assert states["approve"] == states["publish"] == states["finalize"] == {"success"}, states
    result = xcom(dag_run, "approve")
    assert result["chosen_options"] == ["Approve"] and result["params_input"] == {}
    assert result["responded_by_user"] == {"id": approved_by, "name": approved_by}
    manifest = json.loads((p.out / str(YEAR) / "manifest.json").read_text(encoding="utf-8"))
    assert [f["authority"] for f in manifest["files"]] == [FILING_STATE]
    for f in manifest["files"]:
        assert (p.out / str(YEAR) / f["file"]).is_file()
    # one event per published file, and one for the filing's seller statements once written
    assert asset_events(dag_run) == sorted(
        [f"dac7://filings/{FILING_STATE}"] * len(manifest["files"]) + [f"dac7://statements/{FILING_STATE}"]
    )
    assert states["statements"] == {"success"}, states
    messages = ledger_messages(p)
    assert [(m.authority, m.status) for m in messages] == [(FILING_STATE, "published")]
    assert [m.message_ref_id for m in messages] == [f["message_ref_id"] for f in manifest["files"]]
    assert {(m.triggered_by, m.approved_by) for m in messages} == {(TRIGGERED_BY, approved_by)}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_approval_by_the_person_who_triggered_is_refused_and_the_request_stays_open(
    api: Api, paths: Paths, caplog: pytest.LogCaptureFixture
) -> None:
    """No approvers configured: Airflow takes anyone's answer (the task has no assigned users);
    ``execute_complete`` refuses the approval of the person who triggered the run, records why,
    and waits again with the same request, answer cleared; a second person then approves it."""
    logical_date = datetime(2026, 1, 19, 6, tzinfo=UTC)
    caplog.set_level(logging.WARNING, logger="dac7.approval")
    dag_run, approver = run_until_answered(api, [(TRIGGERED_BY, "Approve"), (REVIEWER, "Approve")], logical_date, paths)

    assert dag_run.triggering_user_name == TRIGGERED_BY
    assert_waited_for_approval(approver, dag_run, paths)
    assert (
        "Asked to approve: anyone Airflow lets answer (no other approver is configured in DAC7_APPROVERS)"
        in (approver.detail["body"])
    )
    assert approver.detail["assigned_users"] == []
    refused, second = approver.answers
    assert refused.status == 200, refused.response
    assert refused.response["chosen_options"] == ["Approve"]
    assert refused.response["responded_by"] == {"id": TRIGGERED_BY, "name": TRIGGERED_BY}
    # asked again: the same request, its answer removed, the task waiting; nothing published
    assert second.state == "awaiting_input"
    assert second.detail["body"] == refused.detail["body"]
    assert second.detail["response_received"] is False and second.detail["responded_by_user"] is None
    assert second.files == [] and second.ledger == [(FILING_STATE, "rendered")]
    reason = (
        f"{TRIGGERED_BY} triggered this run and cannot approve it: four eyes need a second person. "
        "The request stays open for another approver; nothing was published."
    )
    assert [r.getMessage() for r in caplog.records if r.name == "dac7.approval"] == [f"approval refused: {reason}"]
    run = Path(xcom(dag_run, "gate")["file"]).parents[1]
    lines = (run / "approval" / "refused.jsonl").read_text(encoding="utf-8").splitlines()
    assert [{k: v for k, v in json.loads(line).items() if k != "at"} for line in lines] == [
        {"user": TRIGGERED_BY, "answer": "Approve", "reason": reason}
    ]
    assert second.status == 200, second.response
    assert_published(dag_run, paths, REVIEWER)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_only_the_approvers_other_than_the_person_who_triggered_are_asked(
    api: Api, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DAC7_APPROVERS`` names the approvers: the request is assigned to them minus the person
    who triggered the run, and Airflow refuses that person's answer (403) before the task sees it."""
    monkeypatch.setenv("DAC7_APPROVERS", f" {TRIGGERED_BY}, {REVIEWER}, 7=carol ")
    logical_date = datetime(2026, 1, 20, 6, tzinfo=UTC)
    dag_run, approver = run_until_answered(api, [(TRIGGERED_BY, "Approve"), (REVIEWER, "Approve")], logical_date, paths)

    assert dag_run.triggering_user_name == TRIGGERED_BY
    assert_waited_for_approval(approver, dag_run, paths)
    detail = approver.detail
    assert detail["assigned_users"] == [{"id": REVIEWER, "name": REVIEWER}, {"id": "7", "name": "carol"}]
    assert (
        f"Asked to approve: **{REVIEWER}, carol** (the approvers of DAC7_APPROVERS, without the person who "
        "triggered the run)." in detail["body"]
    )
    # the held-back sellers, as the rules stage counted them
    run = Path(xcom(dag_run, "gate")["file"]).parents[1]
    decisions = json.loads((run / "rules" / "rules.json").read_text(encoding="utf-8"))["decisions"]
    quarantined = sum(n for code, n in decisions.items() if code.startswith("quarantined:"))
    assert f"**Not in this filing:** {quarantined} seller(s) quarantined" in detail["body"]
    refused, second = approver.answers
    assert refused.status == 403, refused.response
    assert refused.response["detail"] == f"User={TRIGGERED_BY} (id={TRIGGERED_BY}) is not a respondent for the task."
    assert second.state == "awaiting_input" and second.detail["response_received"] is False
    assert not (run / "approval" / "refused.jsonl").exists()  # never reached the task
    assert second.status == 200, second.response
    assert_published(dag_run, paths, REVIEWER)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_reject_by_an_approver_fails_the_filing_and_publishes_nothing(
    api: Api, paths: Paths, capfd: pytest.CaptureFixture[str]
) -> None:
    logical_date = datetime(2026, 1, 21, 6, tzinfo=UTC)
    dag_run, approver = run_until_answered(api, [(REVIEWER, "Reject")], logical_date, paths)
    assert approver.answer is not None and approver.answer[0] == 200, approver.answer
    states = task_states(dag_run)
    assert str(dag_run.state) == "failed"
    assert states["approve"] == {"failed"}, states
    assert states["publish"] == states["finalize"] == {"upstream_failed"}, states
    assert output_files(paths) == []
    assert asset_events(dag_run) == []
    assert [(m.authority, m.status, m.approved_by) for m in ledger_messages(paths)] == [
        (FILING_STATE, "rendered", None)
    ]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_marking_the_approval_done_publishes_nothing(api: Api, paths: Paths, capfd: pytest.CaptureFixture[str]) -> None:
    """ "Mark as success" on the waiting approval records no approval: ``publish`` finds none in the
    ledger and refuses; nothing is in the output, the message stays rendered."""
    logical_date = datetime(2026, 1, 22, 6, tzinfo=UTC)
    capfd.readouterr()
    with approval(api, [(REVIEWER, "Approve")], logical_date, paths, mark_success=True) as approver:
        # publish refuses with a LedgerError, which RETRY retries twice: after a second and two here,
        # not after the minute and two of a real run (five minutes of waiting in the test otherwise)
        dag_run = fresh_dag(retry_delay=timedelta(seconds=1)).test(logical_date=logical_date, run_conf=PROD)
    output = "".join(capfd.readouterr())
    assert approver.answer is not None and approver.answer[0] == 200, approver.answer
    states = task_states(dag_run)
    assert states["approve"] == {"success"}, states
    assert states["publish"] == {"failed"}, states
    assert str(dag_run.state) == "failed"
    assert "has no recorded approval: four eyes need a second person" in output, output[-3000:]
    assert output_files(paths) == []
    assert asset_events(dag_run) == []
    assert [(m.authority, m.status, m.approved_by) for m in ledger_messages(paths)] == [
        (FILING_STATE, "rendered", None)
    ]


def messages_in_test_space(p: Paths) -> list[Any]:
    """The test-environment messages of the year in the run's ledger."""
    from reporting.ledger import open_ledger

    with open_ledger(p.ledger_url, create=False) as ledger:
        return ledger.messages(year=YEAR, environment="test")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_test_run_that_deletes_asks_for_a_confirmation_first(api: Api, paths: Paths) -> None:
    """A test filing of new data publishes without a question; a test run that would delete a
    seller's record asks first, saying how many per authority, and the person who triggered it
    may confirm."""
    from reporting.ledger import open_ledger

    test = {"environment": "test"}
    first = fresh_dag().test(logical_date=datetime(2026, 1, 23, 6, tzinfo=UTC), run_conf=test)
    assert str(first.state) == "success", task_states(first)
    assert task_states(first)["approve"] == {"skipped"}
    [filed] = messages_in_test_space(paths)
    with open_ledger(paths.ledger_url, create=False) as ledger:
        seller = next(r.seller_key for r in ledger.records(filed.message_ref_id) if r.kind == "seller")

    deletion = test | {"mode": "deletion", "sellers": [seller]}
    dag_run, approver = run_until_answered(
        api, [(TRIGGERED_BY, "Approve")], datetime(2026, 1, 24, 6, tzinfo=UTC), paths, deletion
    )
    detail = approver.detail
    assert detail["subject"] == f"File corrections or deletions of DAC7 {YEAR} in the test space?"
    assert detail["assigned_users"] == []
    assert detail["body"].startswith(f"### DAC7 {YEAR}: this test filing corrects or deletes earlier messages\n")
    assert f"| {FILING_STATE} | 0 | 1 | 1 |" in detail["body"], detail["body"]
    assert "anyone may confirm, also the person who triggered the run" in detail["body"]
    assert approver.answer is not None and approver.answer[0] == 200, approver.answer
    assert str(dag_run.state) == "success", task_states(dag_run)
    messages = messages_in_test_space(paths)
    assert [m.message_type_indic for m in messages] == ["DPI401", "DPI402"], messages


# --- a group of operators: one request for every operator's filing --------------------------------


@pytest.fixture
def group_paths(paths: Paths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Paths:
    """A group's production run: the demo operator (the default, LT), lt2 (LT too) and de_gmbh
    (DE), over a marketplace whose figures are computed by hand (EUR, sales of goods):

    - the default operator: D1, 31 sales of 10.00 (EUR 310); DX, 31 sales, a birth date and city
      missing: reportable, held back with incomplete data;
    - lt2: L1, 31 sales of 20.00 (EUR 620) and L2, 40 of 5.00 (EUR 200): EUR 820; LX1 and LX2,
      31 sales each, incomplete as DX;
    - de_gmbh: G1, 30 sales of 15.00 (EUR 450): 30 is not fewer than 30, reportable under the
      EU and the German reading alike.

    A production run accepts quarantined sellers up to ``max_quarantined`` (3 here)."""
    from builders import GROUP_TOML, Marketplace, write_config

    m = Marketplace()
    for seller in ("D1", "L1", "L2"):
        m.seller(seller)
    for seller in ("DX", "LX1", "LX2"):
        m.seller(seller, birth_date=None, address_city=None)
    m.seller("G1", country="DE", tin="12345678901")
    m.sales("D1", 31, 10_00)
    m.sales("DX", 31, 10_00, start="2025-05-02 10:00:00")
    m.sales("L1", 31, 20_00, start="2025-06-01 10:00:00", operator_id="lt2")
    m.sales("L2", 40, 5_00, start="2025-06-02 10:00:00", operator_id="lt2")
    m.sales("LX1", 31, 10_00, start="2025-06-03 10:00:00", operator_id="lt2")
    m.sales("LX2", 31, 10_00, start="2025-06-04 10:00:00", operator_id="lt2")
    m.sales("G1", 30, 15_00, start="2025-07-01 10:00:00", operator_id="de_gmbh")
    source = m.write(f"sqlite:///{tmp_path / 'group-marketplace.db'}")
    config = write_config(tmp_path / "group.toml", max_quarantined=3, extra=GROUP_TOML)
    monkeypatch.setenv("DAC7_CONFIG", str(config))
    monkeypatch.setenv("DAC7_SOURCE_URL", source)
    return paths


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_groups_request_shows_each_operators_filing(api: Api, group_paths: Paths) -> None:
    """What the approver of a group's production run reads under *Required actions* (the HITL
    detail, through the API): one row per filing, named by operator and authority as the DAG's
    task labels (``lt2 LT``); the incomplete sellers counted per filing; the paragraph that one
    approval covers every operator's files. The reviewer rejects: nothing is published."""
    logical_date = datetime(2026, 1, 27, 6, tzinfo=UTC)
    dag_run, approver = run_until_answered(api, [(REVIEWER, "Reject")], logical_date, group_paths)
    body = approver.detail["body"]
    assert body.startswith(
        f"### DAC7 {YEAR}: production filing of the group: default in LT, lt2 in LT, de_gmbh in DE\n"
    ), body
    assert "| Filing (operator, authority) | Reportable sellers | This filing (difference to the last) " in body
    assert "| Authority |" not in body
    # each filing's own figures, never two operators' added up (both LT filings apart)
    assert "| default LT | 1 | DPI401: 1 new | EUR 310 | none: first filing |" in body, body
    assert "| lt2 LT | 2 | DPI401: 2 new | EUR 820 | none: first filing |" in body, body
    assert "| de_gmbh DE | 1 | DPI401: 1 new | EUR 450 | none: first filing |" in body, body
    assert "Total: 3 filings, 3 message(s), 4 seller record(s), Consideration EUR 1,580." in body, body
    # the files to approve: each message, a further operator's pending file in its folder
    run_name = Path(xcom(dag_run, "gate")["file"]).parents[1].name
    messages = {m.operator_id: m for m in ledger_messages(group_paths)}
    assert sorted(messages) == ["de_gmbh", "default", "lt2"]
    sellers = {"default": 1, "lt2": 2, "de_gmbh": 1}
    for operator_id, m in messages.items():
        folder = "" if operator_id == "default" else f"operators/{operator_id}/"
        name = m.file_name.rsplit("/", 1)[-1]
        row = (
            f"| {operator_id} {m.authority} | {m.message_ref_id} | DPI401 | {sellers[operator_id]} new "
            f"| [{name}](/dac7/pending/{run_name}/{folder}{m.file_name}) |"
        )
        assert row in body, body
        assert f"\n- {name}: `{m.sha256}`\n" in body, body
    assert (
        "**Not in this filing:** 3 seller(s) quarantined (not reported until their data is corrected; "
        "reports/quarantine.csv and the due-diligence report after the run); of them, reportable with "
        "incomplete data: default LT 1, lt2 LT 2." in body
    ), body
    assert (
        "**A group's filing:** each operator files its own sellers in its own member state, under its own "
        "identity and ledger; this approval covers every operator's files above." in body
    ), body
    assert f"Triggered by: **{TRIGGERED_BY}**." in body
    # the reviewer rejected: the run failed, every operator's message stays rendered, none published
    assert approver.answer is not None and approver.answer[0] == 200, approver.answer
    assert str(dag_run.state) == "failed"
    assert output_files(group_paths) == []
    assert sorted((m.operator_id, m.authority, m.status) for m in ledger_messages(group_paths)) == [
        ("de_gmbh", "DE", "rendered"),
        ("default", "LT", "rendered"),
        ("lt2", "LT", "rendered"),
    ]
