"""The source database and the filing ledger as Airflow Connections.

In production their passwords live in Airflow's secrets backend (Vault, AWS Secrets Manager, a
Kubernetes secret exported as ``AIRFLOW_CONN_<ID>`` ...), never in ``dac7.toml``. Name the
Connections with ``DAC7_SOURCE_CONN_ID`` and ``DAC7_LEDGER_CONN_ID``; a task turns them into
SQLAlchemy URLs when it runs. ``DAC7_SOURCE_URL`` / ``DAC7_LEDGER_URL``, when set, win (local
runs, tests).

A Connection's type picks the SQLAlchemy driver (``postgres`` -> ``postgresql+psycopg``,
``mysql`` -> ``mysql+pymysql``, ``sqlite`` with the file's path as host); the extra field
``sqlalchemy_scheme`` names another one (``mssql+pyodbc``, ...); every other extra becomes a query
parameter of the URL (``sslmode``, ``charset``). The URL is handed to the stage that connects,
never logged and never written to the run's settings.
"""

from __future__ import annotations

import os
from typing import Any

from reporting.errors import ConfigError

#: SQLAlchemy drivers for Airflow's connection types (the drivers the project installs).
DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "sqlite": "sqlite",
}


def sqlalchemy_url(conn: Any) -> str:
    """The SQLAlchemy URL of an Airflow Connection (with its password: keep it out of logs)."""
    from sqlalchemy.engine import URL

    extra = dict(conn.extra_dejson or {})
    scheme = extra.pop("sqlalchemy_scheme", None) or DRIVERS.get(conn.conn_type or "")
    if not scheme:
        raise ConfigError(
            f"Airflow Connection {conn.conn_id!r} has type {conn.conn_type!r}: use one of "
            f"{', '.join(sorted(DRIVERS))}, or name the SQLAlchemy driver in its extra field "
            '"sqlalchemy_scheme"'
        )
    if scheme == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise ConfigError(f"Airflow Connection {conn.conn_id!r}: a sqlite connection needs the file's path as host")
        return f"sqlite:///{path}"
    url = URL.create(
        drivername=scheme,
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=int(conn.port) if conn.port else None,
        database=conn.schema or None,
        query={k: str(v) for k, v in sorted(extra.items())},
    )
    return url.render_as_string(hide_password=False)


def connection_url(conn_id: str | None) -> str | None:
    """The SQLAlchemy URL of the Airflow Connection ``conn_id`` (None: no Connection named)."""
    if not conn_id:
        return None
    from airflow.sdk import Connection

    try:
        conn = Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or the secrets backend failing
        raise ConfigError(f"Airflow Connection {conn_id!r} could not be read: {type(exc).__name__}") from None
    return sqlalchemy_url(conn)


def source_url() -> str | None:
    """``DAC7_SOURCE_URL``, else the Connection named by ``DAC7_SOURCE_CONN_ID``, else None (the
    configuration's ``[source] url``)."""
    return os.environ.get("DAC7_SOURCE_URL") or connection_url(os.environ.get("DAC7_SOURCE_CONN_ID"))


def export_ledger_url() -> None:
    """Make the ledger of ``DAC7_LEDGER_CONN_ID`` the task's ``DAC7_LEDGER_URL`` (the stages read
    it from there; the variable lives only as long as this task's process)."""
    if not os.environ.get("DAC7_LEDGER_URL"):
        url = connection_url(os.environ.get("DAC7_LEDGER_CONN_ID"))
        if url:
            os.environ["DAC7_LEDGER_URL"] = url
