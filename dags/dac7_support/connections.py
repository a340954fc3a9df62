"""The source database and the filing ledger as Airflow Connections.

In production their passwords live in Airflow's secrets backend (Vault, AWS Secrets Manager, a
Kubernetes secret exported as ``AIRFLOW_CONN_<ID>`` ...), never in ``dac7.toml``. Name the
Connections with ``DAC7_SOURCE_CONN_ID`` and ``DAC7_LEDGER_CONN_ID``; a task turns them into
SQLAlchemy URLs when it runs. ``DAC7_SOURCE_URL`` / ``DAC7_LEDGER_URL``, when set, win (local
runs, tests).

The BZSt DIP credentials (the client id, key and certificate registered in the BZSt portal) are
the Connection named by ``DAC7_DIP_CONN_ID``: login = the client id, password = the private key
(PEM), extra ``{"certificate": "<PEM>"}``; without it, ``DAC7_DIP_CLIENT_ID``,
``DAC7_DIP_PRIVATE_KEY`` and ``DAC7_DIP_CERTIFICATE``. They are read when a task sends to the
DIP, handed to ``reporting`` as values, and never logged or put into XCom.

The URL (``reporting.connections.sqlalchemy_url``) is handed to the stage that connects as an
argument: never logged, never written to the run's settings, never put into the environment.
"""

from __future__ import annotations

import os
from typing import Any

from reporting.connections import DRIVERS, sqlalchemy_url
from reporting.errors import ConfigError

__all__ = [
    "DIP_CONN_VAR",
    "DRIVERS",
    "connection_url",
    "dip_conn_id",
    "dip_credentials",
    "ledger_url",
    "source_url",
    "sqlalchemy_url",
]

DIP_CONN_VAR = "DAC7_DIP_CONN_ID"


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


def ledger_url(config_url: str | None = None) -> str | None:
    """The filing ledger's URL: ``DAC7_LEDGER_URL``, else the Connection named by
    ``DAC7_LEDGER_CONN_ID``, else ``config_url`` (``[ledger] url`` of the configuration), else
    None (``reporting.ledger.url.resolve_ledger_url``, the one resolver). The environment is read,
    never written: the task passes the URL on."""
    from reporting.ledger.url import ledger_from_env, resolve_ledger_url

    env = os.environ
    connection = None if ledger_from_env(env) else connection_url(env.get("DAC7_LEDGER_CONN_ID"))
    return resolve_ledger_url(connection, env=env, config_url=config_url)


def dip_conn_id() -> str | None:
    """The id of the DIP Connection (``DAC7_DIP_CONN_ID``), or None: ``DAC7_DIP_*`` then."""
    return os.environ.get(DIP_CONN_VAR) or None


def dip_credentials() -> Any:
    """The BZSt DIP credentials (``reporting.transmit.DipCredentials``): the Connection named by
    ``DAC7_DIP_CONN_ID``, else ``DAC7_DIP_CLIENT_ID`` / ``_PRIVATE_KEY`` / ``_CERTIFICATE``."""
    from reporting.transmit.dip import DipCredentials
    from reporting.transmit.errors import CredentialsError

    conn_id = dip_conn_id()
    if not conn_id:
        return DipCredentials.from_env()
    from airflow.sdk import Connection

    try:
        conn = Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or the secrets backend failing: never its text
        raise CredentialsError(f"the DIP Connection {conn_id!r} could not be read ({type(exc).__name__})") from None
    return DipCredentials.from_connection(conn_id, conn.login, conn.password, conn.extra_dejson)
