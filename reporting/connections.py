"""SQLAlchemy URLs from Airflow Connection fields (no Airflow import: the caller reads the
Connection, the DAG tasks through the Task SDK, the DAC7 view in the api-server).

A Connection's type picks the SQLAlchemy driver (``postgres`` -> ``postgresql+psycopg``,
``mysql`` -> ``mysql+pymysql``, ``sqlite`` with the file's path as host); the extra field
``sqlalchemy_scheme`` names another one (``mssql+pyodbc``, ...); every other extra becomes a query
parameter of the URL (``sslmode``, ``charset``). The URL holds the password: never log it.
"""

from __future__ import annotations

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
