"""The annual DAG on a distributed Airflow: CeleryExecutor, two workers, PostgreSQL, Redis.

The stack (``tests/airflow_stack.py``): a fresh PostgreSQL metadata database of this module
(``dac7_af_<hex>``, also the Celery result backend), Redis as the broker under a key prefix of
this module's own, an api-server, a scheduler, a dag-processor, a triggerer and two Celery
workers (``worker-a``, ``worker-b``: concurrency 2, prefetch 1, so that the mapped tasks spread
over both), parallelism 4. Each worker records its own name as the task instances' ``hostname``
(workers on one machine share the OS hostname; ``[core] hostname_callable`` reads the name from
the worker's environment). The tasks file into a fresh PostgreSQL ledger (``dac7_ledger_<hex>``);
the output directory is one directory for both workers, as the shared mount of production.
Logins: the simple auth manager with a passwords file of the test's own, users ``operator`` (who
triggers) and ``reviewer`` (who approves).

Configuration: both workers read ``DAC7_CONFIG=<tmp>/dac7.toml``. The demo operator files in LT;
the demo configuration (routing ``nexus``) makes a run the filing, one message to LT. To keep the
fan-out over many member states covered, the compared run is a *preview* (a copy of the demo
configuration with routing ``jurisdiction``, test environment: what each member state receives
from LT, one file per state, in ledgers of its own in the run's staging); the production runs file
with the demo configuration. The configuration is read by ``prepare`` alone (the run's
``settings.json`` carries it to the other tasks), so :meth:`Cluster.use_config` switches the file
only once every run triggered so far is past its ``prepare``.

Staging: each worker has a local staging directory of its own and both the same
``DAC7_STAGING_URL=file://<tmp>/shared-staging`` (``dags/dac7_support/staging.py`` pulls the run
before each task and pushes what it wrote). ``DAC7_TEST_STAGING=shared`` runs both workers on one
``DAC7_STAGING_DIR`` instead (the default when the DAGs do not read ``DAC7_STAGING_URL``).

Runs are triggered through the REST API as a user would (a JWT of ``POST /auth/token``):

1. A preview of 2025 (test environment, routing ``jurisdiction``): every member state that
   receives a seller of the demo marketplace from LT (21), compared with the same run made in
   this process with ``dag.test(logical_date=T, run_after=T)`` (T = 2026-01-15T06:00Z) against a
   SQLite metadata database, a SQLite ledger and an output directory of its own. ``dag.test``
   names its run with Airflow's ``DagRun.generate_run_id(run_type=MANUAL, logical_date=T,
   run_after=T)``, i.e. ``manual__2026-01-15T06:00:00+00:00``; the Celery run is triggered first
   with that very ``dag_run_id``, that ``logical_date`` and that ``run_after`` (``airflow dags
   test`` cannot be the reference: it has no option for ``run_after``, which is then the wall
   clock), and the single-process run works while the cluster does. The message Timestamp is the
   run's ``run_after`` and the pipeline's run UUID is derived from (dag_id, dag_run_id), so both
   runs must publish the same bytes: every XML message, every CSV, Parquet and HTML report and the
   run summary are compared byte for byte, and so are the manifests' ``run_id``,
   ``timestamp_utc``, ``files`` (names, MessageRefIds, SHA-256, sizes), ``summary`` and
   ``reports``, and the messages of the preview's ledgers (``preview/<XX>/ledger.sqlite3`` in the
   run's staging, one per state); neither run touches its filing ledger. Not compared: the
   manifest file itself (durations of the data checks, the run's staging path),
   ``run_settings.json`` (the run's own paths and ledger URL) and Great Expectations' Data Docs
   (named and stamped with the wall-clock time of each validation). Render, validate and publish
   (mapped per member state) ran on both workers, and each worker's staging cache holds the
   outputs of what it ran, as pushed.
2. A conf that breaks a Param's schema is refused with HTTP 400 (and no run is created).
3. Four eyes, through the human-in-the-loop endpoint the UI uses
   (``PATCH .../taskInstances/approve/-1/hitlDetails``), with the demo configuration: a production
   filing in LT (the Param ``authorities`` naming it) triggered by ``operator`` waits at
   ``approve``; approved by ``operator`` himself, the endpoint takes the answer but the task
   refuses it and waits again with the answer removed; ``reviewer`` then rejects it: the run fails
   and nothing is published. A production filing (no Param: the filing
   state), approved by ``reviewer``, publishes LT alone (the LT message of the refused run
   discarded); the ledger records the published message as triggered by ``operator`` and approved
   by ``reviewer``.

Every process is stopped at the end (no process of the stack may outlive it), the Redis keys
deleted and both databases dropped. About 3.5 minutes on the 2-core machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow_stack import Api, CeleryAirflow, celery_airflow, celery_settings, free_port, tail
from test_dac7_annual import preview_config

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "dac7_annual"
YEAR = 2025
#: logical date and run_after of the run compared with the single-process run
RUN_AFTER = datetime(2026, 1, 15, 6, tzinfo=UTC)
TEST_CONF = {"reporting_year": YEAR, "environment": "test"}
PROD_CONF = {"reporting_year": YEAR, "environment": "prod"}
USERS = {"operator": "user", "reviewer": "user"}  # simple auth manager roles: both may trigger and approve
WORKERS = ("worker-a", "worker-b")
PER_AUTHORITY = ("render", "validate", "publish")
RUN_TIMEOUT = 300  # seconds for one run (about 100 s for the preview of all 21 states on the 2-core machine)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.pg,
    # dag.test(): the in-process execution API loads starlette's test client
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]


def staging_mode() -> str:
    """``per-worker`` (a local staging cache per worker, shared storage behind) or ``shared`` (one
    staging directory for both workers): ``DAC7_TEST_STAGING``, else ``per-worker`` once the
    DAGs (or the pipeline) read ``DAC7_STAGING_URL``."""
    chosen = os.environ.get("DAC7_TEST_STAGING")
    if chosen:
        if chosen not in ("per-worker", "shared"):
            raise pytest.UsageError(f"DAC7_TEST_STAGING={chosen!r}: use 'per-worker' or 'shared'")
        return chosen
    sources = [*(REPO / "dags").rglob("*.py"), *(REPO / "reporting").rglob("*.py")]
    supported = any("DAC7_STAGING_URL" in p.read_text(encoding="utf-8") for p in sources)
    return "per-worker" if supported else "shared"


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------------ the stack


@dataclass
class Cluster:
    airflow: CeleryAirflow
    out: Path  # DAC7_OUT_DIR of both workers
    staging: dict[str, Path]  # DAC7_STAGING_DIR of each worker
    shared_staging: Path | None  # behind DAC7_STAGING_URL (per-worker staging only)
    ledger_url: str
    config: Path  # DAC7_CONFIG of both workers

    def api(self, user: str) -> Api:
        return self.airflow.api(user)

    def run_staging(self, run: str) -> Path:
        """A run's staging as the tasks left it: the shared staging, else the one directory."""
        return (self.shared_staging or self.staging[WORKERS[0]]) / run

    def use_config(self, source: Path, timeout: float = RUN_TIMEOUT) -> None:
        """Make ``source`` the configuration of the runs triggered next, once every run of the DAG
        is past its ``prepare`` (the only task that reads the file)."""
        api = self.api(next(iter(USERS)))
        deadline = time.monotonic() + timeout
        while True:
            runs = api.get(f"/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
            waiting = [r["dag_run_id"] for r in runs if r["state"] not in ("success", "failed")]
            waiting = [run for run in waiting if not self._prepared(api, run)]
            if not waiting:
                break
            if time.monotonic() > deadline:
                self.airflow.fail(f"runs still to prepare after {timeout:g} s: {waiting}")
            self.airflow.check_alive()
            time.sleep(0.5)
        staged = self.config.with_suffix(".new")
        shutil.copyfile(source, staged)
        staged.replace(self.config)  # in one step: a prepare never reads half a file

    def _prepared(self, api: Api, run_id: str) -> bool:
        status, ti = api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/prepare")
        return status == 200 and ti["state"] in ("success", "failed", "upstream_failed", "skipped")

    def task_instances(self, api: Api, run_id: str) -> list[dict[str, Any]]:
        return api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=200")["task_instances"]

    def diagnose(self, api: Api, run_id: str) -> str:
        """The run's task states, the end of each failed task's log and of every process's log."""
        lines = []
        try:
            tis = self.task_instances(api, run_id)
        except AssertionError as exc:
            return f"(no task instances: {exc})\n{self.airflow.logs()}"
        states: dict[str, list[str]] = {}
        for ti in tis:
            states.setdefault(f"{ti['state']}", []).append(label(ti))
        lines.append("task states: " + json.dumps(states, sort_keys=True))
        for ti in tis:
            if ti["state"] == "failed":
                folder = (
                    self.airflow.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={ti['task_id']}"
                )
                for log in sorted(folder.rglob("attempt=*.log")):
                    lines.append(f"--- task log {log.relative_to(folder.parent)} ---\n{tail(log, 30)}")
        return "\n".join(lines) + "\n" + self.airflow.logs()

    def trigger(self, api: Api, run_id: str, at: datetime, conf: dict[str, Any]) -> None:
        body = {"dag_run_id": run_id, "logical_date": iso(at), "run_after": iso(at), "conf": conf}
        status, answer = api("POST", f"/dags/{DAG_ID}/dagRuns", body)
        assert status == 200, f"trigger of {run_id}: HTTP {status} {answer!r:.500}"
        assert answer["dag_run_id"] == run_id and answer["triggering_user_name"] == api.user

    def wait_for_run(self, api: Api, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
        """The final state of the run (success or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.airflow.check_alive()
            state = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return str(state)
            time.sleep(1)
        pytest.fail(
            f"the run {run_id} did not finish within {timeout:g} s\n{self.diagnose(api, run_id)}", pytrace=False
        )

    def wait_for_approval(
        self, api: Api, run_id: str, timeout: float = RUN_TIMEOUT, *, reopened: bool = False
    ) -> dict[str, Any]:
        """Until the run's ``approve`` task waits for a human (its HITL detail, once it does);
        ``reopened``: until it waits again with no answer, after the task refused one."""
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve/-1"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.airflow.check_alive()
            state = api.get(path)["state"]
            if state in ("awaiting_input", "deferred"):
                detail = dict(api.get(f"{path}/hitlDetails"))
                if not (reopened and detail["response_received"]):
                    return detail
            if state in ("success", "failed", "skipped", "upstream_failed", "removed"):
                break
            time.sleep(1)
        pytest.fail(f"the run {run_id} did not wait for an approval\n{self.diagnose(api, run_id)}", pytrace=False)

    def answer(self, api: Api, run_id: str, option: str) -> tuple[int, Any]:
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
        return api("PATCH", path, {"chosen_options": [option]})


def label(ti: dict[str, Any]) -> str:
    return f"{ti['task_id']}[{ti['rendered_map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]


@pytest.fixture(scope="module")
def preview_toml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The preview configuration: the demo's with routing ``jurisdiction`` (test environment)."""
    return preview_config(tmp_path_factory.mktemp("config") / "preview.toml")


@pytest.fixture(scope="module")
def source_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo marketplace both runs read (SQLite, read only)."""
    from dac7_demo import generate_demo

    url = f"sqlite:///{tmp_path_factory.mktemp('source') / 'marketplace.db'}"
    generate_demo(url, sellers=200, seed=7, year=YEAR, replace=True)
    return url


def celery_provider_problem() -> str | None:
    """Why the installed Celery provider cannot run, if it cannot (its executor fails to import)."""
    try:
        from airflow.providers.celery.executors import celery_executor_utils  # noqa: F401
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    pg_databases: Any,
    redis_namespace: tuple[str, str],
    source_url: str,
) -> Iterator[Cluster]:
    """The distributed Airflow, started (not waited for: see :meth:`CeleryAirflow.wait_until_ready`)."""
    problem = celery_provider_problem()
    if problem:
        hint = ""
        if "celery.backends.database" in problem:
            hint = (
                " (apache-airflow-providers-celery 3.26.0 imports celery.backends.database.retry, which"
                " Celery 5.7 removed: pin celery<5.7, e.g. 5.6.3, in pyproject.toml)"
            )
        pytest.fail(f"the CeleryExecutor cannot start: {problem}{hint}", pytrace=False)
    root = tmp_path_factory.mktemp("celery")
    broker, prefix = redis_namespace
    ledger_url = pg_databases("dac7_ledger")
    env = celery_settings(
        home=root / "airflow-home",
        port=free_port(),
        metadata_url=pg_databases("dac7_af"),
        broker_url=broker,
        key_prefix=prefix,
        users=USERS,
        jwt_secret=secrets.token_urlsafe(32),
        concurrency=2,
    )
    config = root / "dac7.toml"  # the demo configuration until a test switches it
    shutil.copyfile(REPO / "dac7.toml", config)
    common = {
        "DAC7_CONFIG": str(config),
        "DAC7_SOURCE_URL": source_url,
        "DAC7_OUT_DIR": str(root / "out"),
        "DAC7_LEDGER_URL": ledger_url,
    }
    shared: Path | None = None
    if staging_mode() == "per-worker":
        shared = root / "shared-staging"
        shared.mkdir()
        staging = {w: root / f"staging-{w}" for w in WORKERS}
        common["DAC7_STAGING_URL"] = shared.as_uri()
    else:
        staging = dict.fromkeys(WORKERS, root / "staging")
    workers = {w: common | {"DAC7_STAGING_DIR": str(staging[w])} for w in WORKERS}
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    with celery_airflow(root=root, env=env, passwords=passwords, workers=workers) as airflow:
        yield Cluster(airflow, root / "out", staging, shared, ledger_url, config)


def parse_dag() -> Any:
    """A newly parsed DAG (dag.test() merges a run's conf into the operators' params in place)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).dags[DAG_ID]


def single_process_run_id() -> str:
    """The run id ``dag.test(logical_date=RUN_AFTER, run_after=RUN_AFTER)`` gives its run: Airflow's
    own ``DagRun.generate_run_id`` for a manual run, ``manual__<run_after in ISO>`` (the fixture
    ``reference`` checks that the run got it)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    return str(DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=RUN_AFTER, run_after=RUN_AFTER))


@pytest.fixture(scope="module")
def triggered(cluster: Cluster, preview_toml: Path) -> str:
    """The run compared with the single-process run, a preview, triggered on the cluster as
    ``operator`` with the single-process run's dag_run_id, logical_date and run_after: its id."""
    run_id = single_process_run_id()
    cluster.airflow.wait_until_ready(DAG_ID)
    cluster.use_config(preview_toml)
    cluster.trigger(cluster.api("operator"), run_id, RUN_AFTER, TEST_CONF)
    return run_id


@dataclass(frozen=True)
class Reference:
    run_id: str
    out: Path  # the year's output directory
    ledger_url: str  # the filing ledger (DAC7_LEDGER_URL), which a preview never opens
    staging: Path  # DAC7_STAGING_DIR


@pytest.fixture(scope="module")
def reference(
    airflow_db: None, triggered: str, source_url: str, preview_toml: Path, tmp_path_factory: pytest.TempPathFactory
) -> Reference:
    """The same run in this process (``dag.test``, SQLite metadata database and ledger, an output
    directory of its own), while the cluster works on its run."""
    root = tmp_path_factory.mktemp("single-process")
    ledger_url = f"sqlite:///{root / 'ledger.sqlite3'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAC7_CONFIG", str(preview_toml))
        mp.setenv("DAC7_SOURCE_URL", source_url)
        mp.setenv("DAC7_OUT_DIR", str(root / "out"))
        mp.setenv("DAC7_STAGING_DIR", str(root / "staging"))
        mp.setenv("DAC7_LEDGER_URL", ledger_url)
        mp.delenv("DAC7_STAGING_URL", raising=False)
        dag_run = parse_dag().test(logical_date=RUN_AFTER, run_after=RUN_AFTER, run_conf=TEST_CONF)
    assert str(dag_run.state) == "success"
    assert (dag_run.run_id, dag_run.run_after, dag_run.logical_date) == (triggered, RUN_AFTER, RUN_AFTER)
    return Reference(dag_run.run_id, root / "out" / str(YEAR) / "preview", ledger_url, root / "staging")


@dataclass(frozen=True)
class DistributedRun:
    run_id: str
    out: Path  # a copy of the year's output directory, taken when the run had finished
    task_instances: list[dict[str, Any]]


@pytest.fixture(scope="module")
def distributed_run(
    cluster: Cluster, triggered: str, reference: Reference, tmp_path_factory: pytest.TempPathFactory
) -> DistributedRun:
    """The triggered run, finished (after the single-process run: both share the machine's cores)."""
    api = cluster.api("operator")
    state = cluster.wait_for_run(api, triggered)
    assert state == "success", f"the distributed run {state}\n{cluster.diagnose(api, triggered)}"
    snapshot = tmp_path_factory.mktemp("distributed-out") / str(YEAR)
    # a preview publishes beside the year's filing, into preview/; later runs publish there too
    shutil.copytree(cluster.out / str(YEAR) / "preview", snapshot)
    return DistributedRun(triggered, snapshot, cluster.task_instances(api, triggered))


# ------------------------------------------------------------------------------------ the tests


#: what differs between two runs of the same DAG run, and why: the manifest (durations of the
#: data checks, the run's staging path), the run settings (the run's own paths and ledger), Great
#: Expectations' Data Docs (named and stamped with the wall-clock time of each validation), the
#: run's kept copy under runs/ (its manifest; its reports are those of reports/, compared there)
NOT_COMPARED = ("manifest.json", "run_settings.json", "reports/data-docs/", "runs/")


def compared(out: Path) -> dict[str, bytes]:
    """The files compared byte for byte: every published file but those of ``NOT_COMPARED``: the
    XML messages, the CSV, Parquet and HTML reports, the run summary."""
    files = {p.relative_to(out).as_posix(): p for p in sorted(out.rglob("*")) if p.is_file()}
    return {name: p.read_bytes() for name, p in files.items() if not name.startswith(NOT_COMPARED)}


def test_the_distributed_run_publishes_the_same_bytes_as_one_process(
    distributed_run: DistributedRun, reference: Reference
) -> None:
    assert distributed_run.run_id == reference.run_id == f"manual__{RUN_AFTER.isoformat()}"
    ours, theirs = compared(distributed_run.out), compared(reference.out)
    manifest = json.loads((reference.out / "manifest.json").read_text(encoding="utf-8"))
    assert {f["file"] for f in manifest["files"]} <= set(theirs)  # every XML message
    assert {"reports/figures.csv", "reports/decisions.csv", "reports/due_diligence.csv"} <= set(theirs)
    assert sorted(ours) == sorted(theirs)
    # names only in the message: the CSV reports hold sellers' data
    assert [name for name in sorted(ours) if ours[name] != theirs[name]] == []

    manifests = [
        json.loads((out / "manifest.json").read_text(encoding="utf-8")) for out in (distributed_run.out, reference.out)
    ]
    for key in ("run_id", "timestamp_utc", "files", "summary", "reports"):
        assert manifests[0][key] == manifests[1][key], key
    assert manifests[0]["timestamp_utc"] == "2026-01-15T06:00:00"
    # a preview of what each member state receives from LT: one file per state, every state that
    # receives a seller
    assert (manifest["routing"], manifest["filing_state"], manifest["preview"]) == ("jurisdiction", "LT", True)
    authorities = [f["authority"] for f in manifest["files"]]
    assert sorted(authorities) == sorted(manifest["summary"]["sellers_per_authority"]) == sorted(set(authorities))
    assert len(authorities) > 10, authorities


def test_the_preview_ledgers_hold_the_same_messages_and_the_filing_ledgers_none(
    distributed_run: DistributedRun, reference: Reference, cluster: Cluster
) -> None:
    """Each state of the preview has a ledger of its own in the run's staging (written by the
    mapped tasks of that state, on either worker); the filing ledger is never opened."""
    from reporting.ledger import open_ledger

    def filed(url: str) -> list[tuple[Any, ...]]:
        with open_ledger(url, create=False) as ledger:
            messages = ledger.messages(year=YEAR, environment="test")
        return sorted((m.authority, m.message_ref_id, m.file_name, m.sha256, m.sellers, m.status) for m in messages)

    manifest = json.loads((reference.out / "manifest.json").read_text(encoding="utf-8"))
    run = f"{YEAR}-{manifest['run_id']}"
    for authority in sorted({f["authority"] for f in manifest["files"]}):
        ledger = Path("preview", authority, "ledger.sqlite3")
        ours = filed(f"sqlite:///{cluster.run_staging(run) / ledger}")
        assert ours == filed(f"sqlite:///{reference.staging / run / ledger}"), authority
        assert [(a, status) for a, *_, status in ours] == [(authority, "published")], authority
    assert not Path(reference.ledger_url.removeprefix("sqlite:///")).exists()
    assert filed(cluster.ledger_url) == []


@pytest.mark.parametrize("conf", [{"reporting_year": "x"}, {"mode": "bogus"}, {"authorities": ["XX"]}])
def test_a_conf_that_breaks_a_param_is_refused(cluster: Cluster, conf: dict[str, Any]) -> None:
    cluster.airflow.wait_until_ready(DAG_ID)
    api = cluster.api("operator")
    body = {"dag_run_id": f"bad-{secrets.token_hex(4)}", "logical_date": None, "conf": conf}
    status, answer = api("POST", f"/dags/{DAG_ID}/dagRuns", body)
    assert status == 400, answer
    assert f"Invalid input for param {next(iter(conf))}" in answer["detail"]
    assert api("GET", f"/dags/{DAG_ID}/dagRuns/{body['dag_run_id']}")[0] == 404


def test_the_mapped_tasks_ran_on_both_workers(distributed_run: DistributedRun, cluster: Cluster) -> None:
    tis = distributed_run.task_instances
    assert {ti["hostname"] for ti in tis if ti["state"] == "success"} <= set(WORKERS), "a task ran elsewhere"
    manifest = json.loads((distributed_run.out / "manifest.json").read_text(encoding="utf-8"))
    authorities = sorted({f["authority"] for f in manifest["files"]})
    ran_on: dict[str, set[str]] = {w: set() for w in WORKERS}
    for stage in PER_AUTHORITY:
        mapped = [ti for ti in tis if ti["task_id"] == stage]
        # render, publish: one per authority; validate: one per rendered file (one each here)
        expected = [f"{a} #1" for a in authorities] if stage == "validate" else authorities
        assert sorted(ti["rendered_map_index"] for ti in mapped) == expected, stage
        assert {ti["state"] for ti in mapped} == {"success"}, stage
        for ti in mapped:
            ran_on[ti["hostname"]].add(label(ti))
    assert all(ran_on.values()), {w: len(labels) for w, labels in ran_on.items()}
    if cluster.shared_staging is not None:
        assert_each_cache_holds_what_its_worker_ran(cluster, tis)


def assert_each_cache_holds_what_its_worker_ran(cluster: Cluster, tis: list[dict[str, Any]]) -> None:
    """Per-worker staging (``DAC7_STAGING_URL``): the output of each mapped task
    (``<stage>/authorities/<XX>.json``) is in the shared staging and in the local cache of the
    worker that ran it, the same bytes; and it is *not* in the other worker's cache when that
    worker ran no task of the run after it started (a task pulls the shared copy when it starts,
    so the other worker cannot have seen it): a cache holds what its worker ran or pulled,
    nothing else."""
    assert cluster.shared_staging is not None
    (run,) = [p.name for p in cluster.shared_staging.iterdir() if p.is_dir()]
    shared = cluster.shared_staging / run
    last_end = {w: max(moment(ti["end_date"]) for ti in tis if ti["hostname"] == w) for w in WORKERS}
    for ti in tis:
        if ti["task_id"] not in PER_AUTHORITY or ti["state"] != "success":
            continue
        rel = mapped_output(ti)
        assert (shared / rel).is_file(), f"{label(ti)} pushed no {rel}"
        own = cluster.staging[ti["hostname"]] / run / rel
        assert own.is_file() and own.read_bytes() == (shared / rel).read_bytes(), f"{label(ti)}: {own}"
        (other,) = set(WORKERS) - {ti["hostname"]}
        if last_end[other] < moment(ti["start_date"]):
            assert not (cluster.staging[other] / run / rel).exists(), f"{other} has {rel} of {label(ti)}"


def mapped_output(ti: dict[str, Any]) -> Path:
    """What a mapped task writes: ``render|publish/authorities/<XX>.json``, or for the validation
    of one file ``validate/parts/<XX>/<n - 1>.json`` (labelled ``<XX> #<n>``)."""
    if ti["task_id"] == "validate":
        authority, number = ti["rendered_map_index"].split(" #")
        return Path("validate", "parts", authority, f"{int(number) - 1:04d}.json")
    return Path(ti["task_id"], "authorities", f"{ti['rendered_map_index']}.json")


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class SelfApproved:
    run_id: str
    state: str
    detail: dict[str, Any]  # the HITL detail the approver saw
    answer: tuple[int, Any]  # the HITL endpoint's answer to the approval
    reopened: dict[str, Any]  # the HITL detail once the task refused the approval and waits again
    task_states: dict[str, set[str]]
    approve_log: str
    prod_messages: list[tuple[str, str]]  # (authority, status) of the ledger's prod messages, after


@pytest.fixture(scope="module")
def self_approved(cluster: Cluster) -> SelfApproved:
    """A production filing in LT (the demo configuration; the Param names the filing state)
    triggered by ``operator`` and approved by ``operator`` (refused: the request stays open), then
    rejected by ``reviewer``."""
    from reporting.ledger import open_ledger

    cluster.airflow.wait_until_ready(DAG_ID)
    cluster.use_config(REPO / "dac7.toml")
    operator = cluster.api("operator")
    run_id = "prod-approved-by-its-trigger"
    cluster.trigger(operator, run_id, datetime(2026, 1, 16, 6, tzinfo=UTC), PROD_CONF | {"authorities": ["LT"]})
    detail = cluster.wait_for_approval(operator, run_id)
    answer = cluster.answer(operator, run_id, "Approve")
    reopened = cluster.wait_for_approval(operator, run_id, reopened=True)
    assert cluster.answer(cluster.api("reviewer"), run_id, "Reject")[0] == 200
    state = cluster.wait_for_run(operator, run_id)
    states: dict[str, set[str]] = {}
    for ti in cluster.task_instances(operator, run_id):
        states.setdefault(ti["task_id"], set()).add(ti["state"])
    with open_ledger(cluster.ledger_url, create=False) as ledger:
        prod = [(m.authority, m.status) for m in ledger.messages(year=YEAR, environment="prod")]
    return SelfApproved(run_id, state, detail, answer, reopened, states, approve_log(operator, run_id), prod)


def approve_log(api: Api, run_id: str) -> str:
    """The ``approve`` task's log, as the UI reads it (its last try)."""
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve"
    try_number = api.get(f"{path}/-1")["try_number"]
    content = api.get(f"{path}/logs/{try_number}?full_content=true")["content"]
    return content if isinstance(content, str) else json.dumps(content)


def test_the_person_who_triggered_a_production_filing_cannot_approve_it(self_approved: SelfApproved) -> None:
    """The HITL endpoint takes the answer (the task has no assigned users), the task refuses it
    and waits again for another person; the reviewer's reject fails the run: nothing is published."""
    run = self_approved
    assert run.detail["subject"] == f"Publish the DAC7 {YEAR} production filing?"
    assert run.detail["options"] == ["Approve", "Reject"]
    assert run.detail["body"].startswith("### DAC7 2025: production filing in LT\n")
    status, answer = run.answer
    assert status == 200 and answer["responded_by"]["name"] == "operator", answer
    assert run.reopened["response_received"] is False and run.reopened["body"] == run.detail["body"]
    assert run.state == "failed"
    assert run.task_states["approve"] == {"failed"}, run.task_states
    assert run.task_states["publish"] == run.task_states["finalize"] == {"upstream_failed"}, run.task_states
    assert "operator triggered this run and cannot approve it: four eyes need a second person" in run.approve_log, (
        run.approve_log[-2000:]
    )
    assert run.prod_messages == [("LT", "rendered")]  # rendered, never published


def test_a_production_filing_is_published_when_a_second_person_approves_it(
    cluster: Cluster, self_approved: SelfApproved
) -> None:
    """The filing goes to LT (no Param: the filing state); the LT message of the refused run is
    discarded."""
    from reporting.ledger import open_ledger

    cluster.airflow.wait_until_ready(DAG_ID)
    cluster.use_config(REPO / "dac7.toml")
    operator, reviewer = cluster.api("operator"), cluster.api("reviewer")
    run_id = "prod-four-eyes"
    authorities = ["LT"]
    cluster.trigger(operator, run_id, datetime(2026, 1, 17, 6, tzinfo=UTC), PROD_CONF)
    detail = cluster.wait_for_approval(reviewer, run_id)
    assert detail["body"].startswith("### DAC7 2025: production filing in LT\n")
    assert "Discarded before this run: 1 message(s) rendered by an earlier run, never published." in detail["body"]
    status, answer = cluster.answer(reviewer, run_id, "Approve")
    assert status == 200 and answer["responded_by"]["name"] == "reviewer", answer
    assert cluster.answer(operator, run_id, "Reject")[0] == 409  # answered already
    state = cluster.wait_for_run(reviewer, run_id)
    assert state == "success", cluster.diagnose(reviewer, run_id)

    publish = [ti for ti in cluster.task_instances(reviewer, run_id) if ti["task_id"] == "publish"]
    assert sorted(ti["rendered_map_index"] for ti in publish if ti["state"] == "success") == authorities
    assert {ti["hostname"] for ti in publish} <= set(WORKERS)
    with open_ledger(cluster.ledger_url, create=False) as ledger:
        prod = ledger.messages(year=YEAR, environment="prod")
    published = [m for m in prod if m.status == "published"]
    assert sorted(m.authority for m in published) == authorities
    assert {(m.triggered_by, m.approved_by) for m in published} == {("operator", "reviewer")}
    assert [(m.authority, m.status) for m in prod if m.status != "published"] == [("LT", "discarded")]
