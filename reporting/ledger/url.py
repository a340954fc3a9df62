"""Where the filing ledger is: the one place that resolves its URL.

The first of these wins:

1. the URL given explicitly (``--ledger``, a task's argument, the Airflow Connection's URL);
2. ``DAC7_LEDGER_URL`` in the environment the caller passes (a mapping: the process environment is
   read, never written);
3. ``[ledger] url`` of the configuration;
4. ``dac7-ledger.sqlite3`` in the working directory (a SQLite file; the CLI's and the demo's default).

A caller that must not fall back to a file of its own (the DAC7 view in the api-server, which only
reads a ledger the tasks wrote) passes ``working_dir=None`` and gets ``None`` when nothing is set.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

#: the environment variable that names the ledger (its URL may hold a password: never log it)
LEDGER_ENV = "DAC7_LEDGER_URL"
#: the default ledger's file name, in the working directory
LEDGER_FILE = "dac7-ledger.sqlite3"


def default_ledger_url(working_dir: str | os.PathLike[str]) -> str:
    """``sqlite:///<working_dir>/dac7-ledger.sqlite3`` (an absolute path)."""
    return f"sqlite:///{Path(working_dir).resolve() / LEDGER_FILE}"


def ledger_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """``DAC7_LEDGER_URL`` of ``env`` (the process environment when ``None``), or ``None``."""
    return (os.environ if env is None else env).get(LEDGER_ENV) or None


def resolve_ledger_url(
    given: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_url: str | None = None,
    working_dir: str | os.PathLike[str] | None = None,
) -> str | None:
    """The ledger's URL: ``given``, else ``DAC7_LEDGER_URL`` of ``env`` (the process environment
    when ``None``), else ``config_url`` (``[ledger] url``), else the default file in
    ``working_dir``; ``None`` only when nothing is set and no ``working_dir`` is given."""
    url = given or ledger_from_env(env) or config_url
    if url:
        return url
    return default_ledger_url(working_dir) if working_dir is not None else None


def add_ledger_arguments(parser: argparse.ArgumentParser) -> None:
    """A command's ``--ledger`` and ``--config``: where it finds the ledger (the order above)."""
    parser.add_argument(
        "--ledger",
        default=os.environ.get("DAC7_LEDGER_URL"),
        help="SQLAlchemy URL of the filing ledger (default: $DAC7_LEDGER_URL, else [ledger] url of the "
        "configuration, else dac7-ledger.sqlite3 in the working directory)",
    )
    parser.add_argument("--config", help="configuration file with [ledger] url (default: dac7.toml if present)")
