"""Airflow for the DAG tests: a throwaway AIRFLOW_HOME, set before anything imports airflow.

A bare ``import airflow`` reads its configuration and creates ``$AIRFLOW_HOME/logs`` (``~/airflow``
when unset), so the environment below must be in place before the first import. pytest imports
this conftest before the test modules of this directory, which import airflow lazily.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"

# tests/conftest.py sets a throwaway AIRFLOW_HOME of its own for the tests outside this folder;
# airflow must not have read it (nor another home) before the environment below is in place.
if "airflow" in sys.modules:
    raise pytest.UsageError(
        "airflow was imported before tests/dags/conftest.py could point AIRFLOW_HOME at a "
        "temporary directory; do not import airflow in a top-level conftest or at a unit test's module level"
    )

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="dac7-airflow-test-"))
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
}
os.environ.update(AIRFLOW_ENV)

# The DAG files import their helper package (dags/dac7_support) by name: Airflow's DAG processor,
# task runner and `airflow dags test` put the DAG bundle's folder on sys.path (BundleDagBag); a
# plain DagBag(dag_folder=...) in a test does not.
if str(DAGS) not in sys.path:
    sys.path.append(str(DAGS))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[None]:
    """A fresh SQLite metadata database (the in-process equivalent of ``airflow db migrate``)."""
    from airflow.utils.db import initdb

    initdb()
    yield


#: Trap (Airflow 3.3.2 with pathspec 1.1.1): reading any ``.airflowignore`` in the default glob
#: syntax warns "GitWildMatchPattern ('gitwildmatch') is deprecated" from pathspec (attributed to
#: typing_extensions, so the ``airflow.*`` filter of pyproject.toml misses it). dags/.airflowignore
#: keeps the DAG processor out of dags/dac7_support/; under ``filterwarnings = error`` every DagBag
#: here would fail on that warning.
GITWILDMATCH_DEPRECATED = r"ignore:GitWildMatchPattern \('gitwildmatch'\) is deprecated:DeprecationWarning"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.filterwarnings(GITWILDMATCH_DEPRECATED))
