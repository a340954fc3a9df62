"""A real Airflow for the integration tests: its processes, their environment, its REST API.

Four kinds of user: :func:`dac7_view_app` runs the DAC7 view's app in the test process behind
Airflow's own login (``tests/dags/test_ui_filings.py``, ``test_ui_attention.py``);
``tests/dags/test_ui_view.py`` starts a lone api-server (the helpers at the
top: :func:`free_port`, :func:`wait_until_healthy`, :func:`stop`, :func:`tail`, :func:`request`);
``tests/dags/test_distributed.py`` starts a whole distributed Airflow with :func:`celery_airflow`:
an api-server, a scheduler with the CeleryExecutor, a dag-processor, a triggerer and Celery
workers; ``tests/dags/test_protocol_triggerer.py`` the same components on one machine with
:func:`local_airflow` (the LocalExecutor, SQLite). Each component is an ``airflow`` process with an
explicit environment (nothing of the test process's own ``AIRFLOW__*`` settings leaks in), each in
a process group of its own so that stopping it stops whatever it started.

Celery workers on one machine share the OS hostname, which Airflow records as a task instance's
``hostname``. :func:`worker_hostname` is a ``[core] hostname_callable`` that reads a name from the
environment instead; it is imported by the workers' task supervisors (``tests/`` on their
``PYTHONPATH``), so this module imports nothing heavy at its top (not even pytest).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = Path(sys.executable).with_name("airflow")
#: the environment variable :func:`worker_hostname` reads
HOSTNAME_VAR = "DAC7_TEST_HOSTNAME"
#: what an Airflow process keeps of this process's environment; the rest is set explicitly
KEEP_ENV = ("PATH", "PYTHONPATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


def worker_hostname() -> str:
    """``[core] hostname_callable`` of a test worker: the name in ``DAC7_TEST_HOSTNAME``."""
    name = os.environ.get(HOSTNAME_VAR)
    if name:
        return name
    return socket.getfqdn()


def _fail(message: str) -> NoReturn:
    import pytest

    pytest.fail(message, pytrace=False)


def base_env() -> dict[str, str]:
    """This machine's basics, with the venv's bin first on PATH (``airflow standalone`` and the
    Celery workers start Airflow commands as a bare ``airflow``)."""
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV}
    env["PATH"] = f"{AIRFLOW.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    if not path.is_file():
        return f"({path.name}: no such file)"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def request(url: str, cookie: str | None = None) -> tuple[int, bytes]:
    """GET without a proxy (one from the environment must not see 127.0.0.1), no redirects
    followed; the status and body, also of an error."""
    headers = {"Cookie": cookie} if cookie else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_healthy(server: subprocess.Popen[bytes], base: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            _fail(f"the api-server exited with {server.returncode}:\n{tail(log)}")
        with suppress(OSError):
            if request(f"{base}/api/v2/monitor/health")[0] == 200:
                return
        time.sleep(0.25)
    _fail(f"the api-server did not answer within {timeout:g} s:\n{tail(log)}")


def _descendants(pid: int) -> list[Any]:
    import psutil

    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def stop(*servers: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """End processes started in sessions of their own, and everything they started: ``sig`` to
    each (all at once), then, for any still there after ``timeout``, SIGKILL to its process group;
    and SIGKILL to whatever outlived its parent, in its group or in a group of its own (Airflow's
    task supervisor puts each task process into a group of its own)."""
    import psutil

    family = [child for server in servers for child in _descendants(server.pid)]
    for server in servers:
        # to the leader only: each Airflow component stops its own children in order (a SIGTERM
        # to the triggerer's whole group costs it a 10 s wait for its trigger runner)
        with suppress(ProcessLookupError):
            os.kill(server.pid, sig)
    deadline = time.monotonic() + timeout
    for server in servers:
        try:
            server.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        with suppress(ProcessLookupError):  # children that outlived their parent
            os.killpg(server.pid, signal.SIGKILL)
    for child in family:
        with suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(family, timeout=5)


# ------------------------------------------------------------------------------------ REST API


@dataclass
class Api:
    """The public REST API of an api-server, as one user (a JWT from ``POST /auth/token``)."""

    base: str
    user: str
    token: str = ""

    @classmethod
    def log_in(cls, base: str, user: str, password: str) -> Api:
        status, body = call(base, "POST", "/auth/token", {"username": user, "password": password})
        if status not in (200, 201):
            raise AssertionError(f"no token for {user}: HTTP {status} {body!r:.300}")
        return cls(base, user, body["access_token"])

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return call(self.base, method, f"/api/v2{path}", body, self.token)

    def get(self, path: str) -> Any:
        status, body = self("GET", path)
        if status != 200:
            raise AssertionError(f"GET {path} as {self.user}: HTTP {status} {body!r:.500}")
        return body


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """One JSON request without a proxy; the status and the decoded body, also of an error."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(f"{base}{path}", data=data, headers=headers, method=method)
    try:
        with opener.open(req, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


# ------------------------------------------------------------------------- a distributed Airflow


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class CeleryAirflow:
    """A running distributed Airflow (see :func:`celery_airflow`)."""

    base: str  # http://127.0.0.1:<port>
    home: Path
    passwords: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def api(self, user: str) -> Api:
        return Api.log_in(self.base, user, self.passwords[user])

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def wait_until_ready(self, dag_id: str, timeout: float = 180) -> None:
        """Until the api-server answers and the dag-processor has stored ``dag_id``, unpaused."""
        api_server = self.process("api-server")
        wait_until_healthy(api_server.popen, self.base, api_server.log, timeout)
        api = self.api(next(iter(self.passwords)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            status, body = api("GET", f"/dags/{dag_id}")
            if status == 200 and body and body.get("is_paused") is False:
                return
            time.sleep(0.5)
        self.fail(f"the DAG {dag_id} was not parsed (unpaused) within {timeout:g} s")

    def check_alive(self) -> None:
        for p in self.processes:
            if p.popen.poll() is not None:
                self.fail(f"the {p.name} exited with {p.popen.returncode}")

    def logs(self, lines: int = 25) -> str:
        return "\n".join(f"--- {p.name} ({p.log.name}) ---\n{tail(p.log, lines)}" for p in self.processes)

    def fail(self, message: str) -> NoReturn:
        _fail(f"{message}\n{self.logs()}")


def _processes_of(home: Path) -> list[Any]:
    """Every process on this machine whose AIRFLOW_HOME is ``home``."""
    import psutil

    found = []
    for process in psutil.process_iter():
        with suppress(psutil.Error):
            if process.environ().get("AIRFLOW_HOME") == str(home):
                found.append(process)
    return found


def spawn(argv: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """A process with ``env`` only, its output (both streams) into ``log``, no input, in a
    process group of its own (so that :func:`stop` stops whatever it starts)."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def api_server(env: Mapping[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """``airflow db migrate``, then an ``airflow api-server`` on 127.0.0.1:``port`` (one process
    group: the caller goes on, e.g. runs the pipeline, while it starts)."""
    script = '"$0" db migrate && exec "$0" api-server --host 127.0.0.1 --port "$1"'
    return spawn(["sh", "-c", script, str(AIRFLOW), str(port)], env, log)


def _start(name: str, argv: list[str], env: Mapping[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    return Process(name, spawn(argv, env, log, cwd=logs), log)


def _settings(home: Path, port: int, users: Mapping[str, str], jwt_secret: str) -> dict[str, str]:
    """What every component of a test Airflow shares, whatever its executor."""
    return base_env() | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in users.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        # only triggered runs: the latest due run of a scheduled DAG would start at once
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # Trap (Airflow 3.3.2): a task supervisor whose task process closed its sockets before it
        # exited notices the exit only when its select() times out, after up to this many seconds
        # (default 5): the workers' "Workload finished" durations showed ~5 s more than the task
        # logs on many tasks
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    }


def celery_settings(
    *,
    home: Path,
    port: int,
    metadata_url: str,
    broker_url: str,
    key_prefix: str,
    users: Mapping[str, str],
    jwt_secret: str,
    concurrency: int = 1,
) -> dict[str, str]:
    """The whole environment of every process of :func:`celery_airflow` (workers add theirs).

    ``users``: name -> role of the simple auth manager (passwords in ``home/passwords.json``)."""
    result_backend = "db+" + metadata_url
    return _settings(home, port, users, jwt_secret) | {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        # Airflow derives its async URL with asyncpg (not installed); psycopg 3 does both
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url.replace("+psycopg://", "+psycopg_async://", 1),
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        # every Redis key and channel of this Airflow under a prefix of its own: parallel runs
        # on one Redis server do not see each other's queues
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": key_prefix,
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "3600",
    }


def local_settings(
    *, home: Path, port: int, users: Mapping[str, str], jwt_secret: str, parallelism: int = 2
) -> dict[str, str]:
    """The whole environment of every process of :func:`local_airflow`: the LocalExecutor (its
    ``parallelism`` worker processes are the scheduler's children) and a SQLite metadata database
    in ``home``. ``users``: name -> role of the simple auth manager."""
    return _settings(home, port, users, jwt_secret) | {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


@contextmanager
def celery_airflow(
    *,
    root: Path,
    env: Mapping[str, str],
    passwords: Mapping[str, str],
    workers: Mapping[str, Mapping[str, str]],
) -> Iterator[CeleryAirflow]:
    """Migrate the metadata database, then start an api-server, a scheduler, a dag-processor, a
    triggerer and one Celery worker per entry of ``workers`` (name -> extra environment; the name
    begins its Celery node name and is, through :func:`worker_hostname`, the ``hostname`` of the
    task instances it runs). Yields at once, while they start: call
    :meth:`CeleryAirflow.wait_until_ready`. Stops every process on exit (SIGTERM, the scheduler
    first so that nothing new is queued, the api-server last) and fails if any process of this
    ``AIRFLOW_HOME`` is left."""
    tests = str(Path(__file__).resolve().parent)
    more: dict[str, tuple[list[str], dict[str, str]]] = {}
    for name, extra in workers.items():
        worker_env = dict(env) | {
            "PYTHONPATH": os.pathsep.join(p for p in (tests, env.get("PYTHONPATH")) if p),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{Path(__file__).stem}.worker_hostname",
            HOSTNAME_VAR: name,
            **extra,
        }
        argv = [
            str(AIRFLOW),
            "celery",
            "worker",
            "--celery-hostname",  # unique: Celery refuses a second worker of the same name
            f"{name}-{secrets.token_hex(3)}@%h",
            "--concurrency",
            env.get("AIRFLOW__CELERY__WORKER_CONCURRENCY", "1"),
            "--skip-serve-logs",  # task logs are files of the shared AIRFLOW_HOME
            "--without-mingle",
            "--without-gossip",
        ]
        more[name] = (argv, worker_env)
    with _airflow(root=root, env=env, passwords=passwords, more=more) as stack:
        yield stack


@contextmanager
def local_airflow(*, root: Path, env: Mapping[str, str], passwords: Mapping[str, str]) -> Iterator[CeleryAirflow]:
    """As :func:`celery_airflow`, with the executor of ``env`` running the tasks itself (the
    LocalExecutor of :func:`local_settings`: the scheduler's worker processes): an api-server, a
    scheduler, a dag-processor and a triggerer, each a process of its own."""
    with _airflow(root=root, env=env, passwords=passwords, more={}) as stack:
        yield stack


@contextmanager
def _airflow(
    *,
    root: Path,
    env: Mapping[str, str],
    passwords: Mapping[str, str],
    more: Mapping[str, tuple[list[str], Mapping[str, str]]],
) -> Iterator[CeleryAirflow]:
    """``airflow db migrate``, then the four components and the processes of ``more`` (name ->
    argv and environment); stops them all on exit and fails on any process of ``AIRFLOW_HOME`` left."""
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    logs = root / "process-logs"
    logs.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / "passwords.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(dict(passwords), f)
    port = env["AIRFLOW__API__PORT"]
    airflow = str(AIRFLOW)
    stack = CeleryAirflow(f"http://127.0.0.1:{port}", home, dict(passwords))
    try:
        migrate = subprocess.run(
            [airflow, "db", "migrate"], env=dict(env), capture_output=True, text=True, timeout=300, check=False
        )
        if migrate.returncode:
            _fail(
                f"airflow db migrate failed ({migrate.returncode}):\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}"
            )
        commands = {
            "api-server": [airflow, "api-server", "--host", "127.0.0.1", "--port", port],
            "scheduler": [airflow, "scheduler"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer", "--skip-serve-logs"],
        }
        for name, argv in commands.items():
            stack.processes.append(_start(name, argv, env, logs))
        for name, (argv, own_env) in more.items():
            stack.processes.append(_start(name, argv, own_env, logs))
        yield stack
    finally:
        # the scheduler first (nothing new is queued), the workers and the rest together, the
        # api-server (which the task processes report to) last
        for names in (("scheduler",), None, ("api-server",)):
            group = [
                p.popen
                for p in stack.processes
                if (p.name in names if names else p.name not in ("scheduler", "api-server"))
            ]
            stop(*group, timeout=30)
        leftovers = _processes_of(home)
        for process in leftovers:
            with suppress(Exception):
                process.kill()
        if leftovers:
            _fail(f"processes of this Airflow outlived it (killed now): {[p.pid for p in leftovers]}")


@contextmanager
def logged_in(
    tmp: Path, users: Mapping[str, str], env: Mapping[str, str] | None = None
) -> Iterator[tuple[Any, dict[str, str]]]:
    """Airflow's API app in this process (the Core API behind a FastAPI ``TestClient``, no
    server), with Airflow's simple auth manager and ``users`` (name -> role) of a passwords file
    in ``tmp``, each logged in through Airflow's own ``POST /auth/token``. ``env`` is set while it
    is open. Yields the client and each user's token."""
    import pytest
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    passwords = {user: secrets.token_urlsafe(16) for user in users}
    passwords_file = tmp / "passwords.json"
    passwords_file.write_text(json.dumps(passwords), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "AIRFLOW__CORE__AUTH_MANAGER",
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        )
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", ",".join(f"{u}:{r}" for u, r in users.items()))
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords_file))
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
        mp.setenv("AIRFLOW__API__SECRET_KEY", secrets.token_hex(16))
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        purge_cached_app()  # no auth manager of an earlier test: this one reads the users above
        try:
            core = TestClient(create_app("core"))
            tokens = {}
            for user, password in passwords.items():
                response = core.post("/auth/token", json={"username": user, "password": password})
                assert response.status_code == 201, response.text
                tokens[user] = response.json()["access_token"]
            yield core, tokens
        finally:
            purge_cached_app()


@contextmanager
def dac7_view_app(tmp: Path, users: Mapping[str, str], env: Mapping[str, str]) -> Iterator[tuple[Any, dict[str, str]]]:
    """The DAC7 view's app (``dac7_plugin.create_app``) behind a ``TestClient`` in this process,
    with the logins of :func:`logged_in`: the same login and permission checks as in the
    api-server. ``env`` (``DAC7_LEDGER_URL`` ...) is set while it is open. Yields the client and
    each user's token."""
    from fastapi.testclient import TestClient

    with logged_in(tmp, users, env) as (_, tokens):
        import dac7_plugin

        yield TestClient(dac7_plugin.create_app()), tokens
