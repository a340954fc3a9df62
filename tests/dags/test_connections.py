"""The source and the ledger as Airflow Connections (dags/dac7_support/connections.py).

Unit cases build the SQLAlchemy URL from Connection fields; the end-to-end case runs the annual
DAG with no ``DAC7_SOURCE_URL`` / ``DAC7_LEDGER_URL`` at all: both come from ``AIRFLOW_CONN_*``
Connections (what a secrets backend provides), the ledger on the real PostgreSQL server, and the
Connection's password is found nowhere in the run's files or logs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from reporting.errors import ConfigError

SECRET = "S3cr/t:p@ss#word"


def conn(conn_type: str, **fields: Any) -> SimpleNamespace:
    fields.setdefault("extra_dejson", {})
    defaults = {"conn_id": "dac7_source", "host": None, "login": None, "password": None, "port": None, "schema": None}
    return SimpleNamespace(conn_type=conn_type, **{**defaults, **fields})


def test_a_postgres_connection_becomes_a_psycopg_url_with_its_extras() -> None:
    from dac7_support.connections import sqlalchemy_url

    url = sqlalchemy_url(
        conn(
            "postgres",
            host="db.internal",
            port=5433,
            login="dac7",
            password=SECRET,
            schema="marketplace",
            extra_dejson={"sslmode": "verify-full"},
        )
    )
    parsed = make_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.host, parsed.port, parsed.username, parsed.database) == ("db.internal", 5433, "dac7", "marketplace")
    assert parsed.password == SECRET  # escaped in the URL, intact after parsing
    assert dict(parsed.query) == {"sslmode": "verify-full"}


@pytest.mark.parametrize(
    ("conn_type", "extra", "driver"),
    [
        ("mysql", {}, "mysql+pymysql"),
        ("mariadb", {"charset": "utf8mb4"}, "mysql+pymysql"),
        ("generic", {"sqlalchemy_scheme": "mssql+pyodbc"}, "mssql+pyodbc"),
    ],
)
def test_the_connection_type_or_its_extra_picks_the_driver(conn_type: str, extra: dict[str, str], driver: str) -> None:
    from dac7_support.connections import sqlalchemy_url

    parsed = make_url(sqlalchemy_url(conn(conn_type, host="h", schema="db", extra_dejson=extra)))
    assert parsed.drivername == driver
    assert "sqlalchemy_scheme" not in parsed.query


def test_a_sqlite_connection_names_the_file_as_host(tmp_path: Path) -> None:
    from dac7_support.connections import sqlalchemy_url

    assert sqlalchemy_url(conn("sqlite", host=str(tmp_path / "m.db"))) == f"sqlite:///{tmp_path / 'm.db'}"
    with pytest.raises(ConfigError, match="needs the file's path"):
        sqlalchemy_url(conn("sqlite"))


def test_an_unknown_type_is_refused_without_quoting_the_password() -> None:
    from dac7_support.connections import sqlalchemy_url

    with pytest.raises(ConfigError, match="sqlalchemy_scheme") as err:
        sqlalchemy_url(conn("http", host="h", password=SECRET))
    assert SECRET not in str(err.value) and "dac7_source" in str(err.value)


def test_a_missing_connection_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from dac7_support.connections import source_url

    monkeypatch.delenv("DAC7_SOURCE_URL", raising=False)
    monkeypatch.setenv("DAC7_SOURCE_CONN_ID", "dac7_nowhere")
    with pytest.raises(ConfigError, match="'dac7_nowhere' could not be read"):
        source_url()


def test_an_url_in_the_environment_wins_over_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from dac7_support.connections import source_url

    monkeypatch.setenv("DAC7_SOURCE_URL", "sqlite:///local.db")
    monkeypatch.setenv("DAC7_SOURCE_CONN_ID", "dac7_nowhere")  # not even looked up
    assert source_url() == "sqlite:///local.db"


@pytest.mark.slow
@pytest.mark.pg
def test_a_dag_run_reads_source_and_ledger_from_airflow_connections(
    airflow_db: None, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_dac7_annual import REPO, fresh_dag

    from dac7_demo import generate_demo

    source = tmp_path / "marketplace.db"
    generate_demo(f"sqlite:///{source}", sellers=120, seed=5, year=2025, replace=True)
    ledger = make_url(pg_url)
    monkeypatch.setenv("AIRFLOW_CONN_DAC7_TEST_SOURCE", json.dumps({"conn_type": "sqlite", "host": str(source)}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_DAC7_TEST_LEDGER",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": ledger.host,
                "port": ledger.port or 5432,
                "login": ledger.username,
                "password": SECRET,  # the server trusts local connections: never checked, never written
                "schema": ledger.database,
                # an extra becomes a query parameter of the URL: a secret there is masked too
                "extra": {"application_name": "dac7", "sslpassword": SECRET},
            }
        ),
    )
    for name in ("DAC7_SOURCE_URL", "DAC7_LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAC7_SOURCE_CONN_ID", "dac7_test_source")
    monkeypatch.setenv("DAC7_LEDGER_CONN_ID", "dac7_test_ledger")
    monkeypatch.setenv("DAC7_CONFIG", str(REPO / "dac7.toml"))
    monkeypatch.setenv("DAC7_OUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("DAC7_STAGING_DIR", str(tmp_path / "staging"))

    dag_run = fresh_dag().test(logical_date=datetime(2026, 1, 16, 6, tzinfo=UTC))
    assert str(dag_run.state) == "success"

    manifest = json.loads((tmp_path / "out" / "2025" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"]
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as db:
            filed = db.execute(sa.text("SELECT message_ref_id FROM ledger_messages")).scalars().all()
    finally:
        engine.dispose()
    assert sorted(filed) == sorted(f["message_ref_id"] for f in manifest["files"])
    # a URL with a password is never written down: not in the settings, nowhere in staging,
    # output or logs (a URL without one, the SQLite source's, is kept with the run's settings)
    (run_dir,) = (tmp_path / "staging").iterdir()
    settings = json.loads((run_dir / "settings.json").read_text(encoding="utf-8"))
    assert settings["source_url"] == f"sqlite:///{source}" and settings["ledger_url"] is None
    assert settings["ledger_shown"].endswith("?application_name=dac7&sslpassword=***")
    for path in [*tmp_path.rglob("*"), *Path(_airflow_home()).rglob("*.log")]:
        if path.is_file() and path.suffix in {".json", ".xml", ".csv", ".html", ".log", ".txt"}:
            assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path


def _airflow_home() -> str:
    import os

    return os.environ["AIRFLOW_HOME"]
