"""Shared fixtures: a SQLite file and fresh PostgreSQL / MariaDB databases on this machine.

``pg_url`` and ``mariadb_url`` create a database with a unique name (``dac7_test_<8 hex>``)
through an admin connection, yield its SQLAlchemy URL and drop it afterwards; ``pg_databases``
makes as many as a module needs, named after a prefix of its own. ``redis_namespace`` is a key
prefix of its own on the Redis server, its keys deleted afterwards. When a server is not
reachable the test is skipped, unless the environment variable ``CI`` is set: CI must run the
database tests, so there it fails.

The admin URLs can be overridden with ``DAC7_TEST_PG_ADMIN_URL`` and
``DAC7_TEST_MARIADB_ADMIN_URL``, the Redis URL with ``DAC7_TEST_REDIS_URL``. This file must not
import airflow (see tests/dags/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa
from resources import MissingResourceItem, ReferenceModule, outside_reference_present
from sqlalchemy.pool import NullPool

# The data checks run in the test process: it imports Great Expectations once for the session,
# where a worker per stage would import it again for every pipeline run of every test. The
# worker itself has tests of its own (tests/unit/test_data_checks.py, and a whole run with it in
# tests/integration/test_record_checks.py).
os.environ.setdefault("DAC7_CHECKS_WORKER", "0")

# A test outside tests/dags that imports airflow (a UI plugin's helpers) would otherwise make
# ``~/airflow/logs`` (a bare ``import airflow`` creates ``$AIRFLOW_HOME/logs``): a throwaway
# AIRFLOW_HOME of this process instead, set before anything imports airflow. Each pytest-xdist
# worker makes its own. tests/dags/conftest.py points AIRFLOW_HOME at a home of its own (with the
# metadata database and the DAG folder) for the DAG tests.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="dac7-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME

PG_ADMIN_URL = os.environ.get("DAC7_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("DAC7_TEST_MARIADB_ADMIN_URL", "mysql+pymysql://root@127.0.0.1:3306/")
REDIS_URL = os.environ.get("DAC7_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

_MARKERS = {
    "pg": "needs the PostgreSQL server on 127.0.0.1:5432",
    "mariadb": "needs the MariaDB server on 127.0.0.1:3306",
    "spark": "needs pyspark (the spark extra) and Java 17; Apache Spark in local mode",
    "slow": "end-to-end runs (a real Airflow, larger data); still run in CI",
    "outside_reference": "needs reference files whose terms do not allow redistribution; read from ../shared/reference",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regenerate-golden",
        action="store_true",
        help="rewrite the golden XML files from the current renderer (review the diff before committing)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, text in _MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module:
    """A test module whose reference files are missing in CI is one failing test (resources.py)."""
    return ReferenceModule.from_parent(parent, path=module_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside CI, without the reference files that stay outside the repository: the tests of a
    module that need them are one skipped test per module, ``outside_reference``, whose message
    names them all (in CI each runs, and fails, on its own)."""
    if os.environ.get("CI") or outside_reference_present():
        return
    groups: dict[pytest.Collector, list[pytest.Item]] = {}
    for item in items:
        if item.get_closest_marker("outside_reference") and not isinstance(item, MissingResourceItem):
            module = item.getparent(pytest.Module)
            if module is not None:
                groups.setdefault(module, []).append(item)
    if not groups:
        return
    gone = {id(i) for group in groups.values() for i in group}
    kept: list[pytest.Item] = [i for i in items if id(i) not in gone]
    for module, group in groups.items():
        names = ", ".join(i.name for i in group)
        item = MissingResourceItem.from_parent(
            module,
            name="outside_reference",
            message=f"{len(group)} test(s) need reference files that stay outside the repository and are absent "
            f"({names}): they lie beside the checkout in ../shared/reference (their terms do not allow "
            "redistribution, see tests/reference/README.md)",
        )
        item.add_marker("outside_reference")
        kept.append(item)
    items[:] = kept


def _unreachable(server: str, exc: Exception) -> NoReturn:
    """Skip (locally) or fail (in CI) when a database server cannot be reached."""
    reason = getattr(exc, "orig", None) or exc
    detail = " ".join(str(reason).split())[:200]
    message = f"{server} is not reachable ({type(reason).__name__}: {detail})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the database tests", pytrace=False)
    pytest.skip(f"{message}; start it to run this test")


def _admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 5})


def _database_name() -> str:
    return f"dac7_test_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session", autouse=True)
def _session_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs outside a test function (module fixtures) file into a session ledger, never into a
    file in the working directory."""
    before = os.environ.get("DAC7_LEDGER_URL")
    os.environ["DAC7_LEDGER_URL"] = f"sqlite:///{tmp_path_factory.mktemp('session-ledger') / 'dac7-ledger.sqlite3'}"
    yield
    if before is None:
        os.environ.pop("DAC7_LEDGER_URL", None)
    else:
        os.environ["DAC7_LEDGER_URL"] = before


@pytest.fixture(autouse=True)
def _own_ledger(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test files into a ledger of its own (a run's default is a file in the working
    directory, which would carry one test's filings into the next); a test that needs another
    passes ``ledger_url`` or ``--ledger``."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'dac7-ledger.sqlite3'}"
    monkeypatch.setenv("DAC7_LEDGER_URL", url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in the test's temporary directory (not created yet)."""
    return f"sqlite:///{tmp_path / 'source.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped after the test."""
    admin = _admin_engine(PG_ADMIN_URL)
    name = _database_name()
    server = f"PostgreSQL at {admin.url.host}:{admin.url.port or 5432}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unreachable(server, exc)
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # FORCE: connections a test left open do not keep the database alive (PG 13+)
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module")
def pg_databases() -> Iterator[Callable[[str], str]]:
    """Make fresh, empty PostgreSQL databases, ``make(prefix)`` -> the URL of ``<prefix>_<8 hex>``;
    every one dropped after the module (``WITH (FORCE)``: also while a process still holds a
    connection)."""
    admin = _admin_engine(PG_ADMIN_URL)
    server = f"PostgreSQL at {admin.url.host}:{admin.url.port or 5432}"
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
        except sa.exc.OperationalError as exc:
            _unreachable(server, exc)
        made.append(name)
        return admin.url.set(database=name).render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module")
def redis_namespace() -> Iterator[tuple[str, str]]:
    """The Redis server's URL and a key prefix of this module's own (``dac7_test_<8 hex>:``);
    every key under the prefix is deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        _unreachable(f"Redis at {REDIS_URL.split('://', 1)[-1]}", exc)
    prefix = f"{_database_name()}:"
    try:
        yield REDIS_URL, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database (utf8mb4); dropped after the test."""
    admin = _admin_engine(MARIADB_ADMIN_URL)
    name = _database_name()
    server = f"MariaDB at {admin.url.host}:{admin.url.port or 3306}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unreachable(server, exc)
    try:
        url = admin.url.set(database=name).update_query_dict({"charset": "utf8mb4"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()
