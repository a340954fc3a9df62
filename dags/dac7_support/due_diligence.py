"""The due-diligence tasks' bodies: where the configuration, source, ledger and output are, then
one call of ``reporting.due_diligence`` each (wiring only: the rules are in ``reporting``).

Read when a task runs, never at parse time: the configuration (``DAC7_CONFIG``), the source
(``DAC7_SOURCE_URL`` or the Connection of ``DAC7_SOURCE_CONN_ID``, else ``[source] url``), the
ledger (``DAC7_LEDGER_URL`` or the Connection of ``DAC7_LEDGER_CONN_ID``, else ``[ledger] url``),
the output directory (``DAC7_OUT_DIR``: the feed goes to ``<out>/due_diligence/actions.jsonl``) and
the staging root (``DAC7_STAGING_DIR``: the run's work files, deleted after it). The results hold
counts and the feed's path, never personal data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


def operators(chosen: str | None) -> list[str]:
    """The operators of the configuration, or the one ``chosen`` (the Param; refused if unknown)."""
    from dac7_support.common import settings_from_env
    from reporting.config import load_config
    from reporting.errors import ConfigError

    config = load_config(str(settings_from_env()["config_path"]))
    if chosen:
        if chosen not in config.operator_ids:
            raise ConfigError(
                f"the operator Param {chosen!r} is not configured; the operators are {', '.join(config.operator_ids)}"
            )
        return [chosen]
    return list(config.operator_ids)


def _where() -> tuple[Any, dict[str, str | None], str, str]:
    """The configuration, the environment's settings, the source's URL and the ledger's URL."""
    from dac7_support.common import settings_from_env
    from dac7_support.connections import ledger_url
    from reporting.config import load_config
    from reporting.errors import ConfigError
    from reporting.ledger.url import resolve_ledger_url

    env = settings_from_env()
    config = load_config(str(env["config_path"]))
    source = env["source_url"] or config.source
    if not source:
        raise ConfigError("no source database: set DAC7_SOURCE_URL, DAC7_SOURCE_CONN_ID or [source] url")
    url = ledger_url(config.ledger) or resolve_ledger_url(None, env={}, config_url=None, working_dir=Path.cwd())
    assert url is not None  # a working directory is given: never None
    return config, env, str(source), url


def run_day(operator_id: str, day: date, run_id: str) -> dict[str, Any]:
    """One operator's due diligence for ``day`` (the run's logical date): the state brought to the
    day and the feed written (``reporting.due_diligence.run_due_diligence``)."""
    from reporting.due_diligence import run_due_diligence
    from reporting.ledger import open_ledger

    config, env, source, url = _where()
    with open_ledger(url) as ledger:
        result = run_due_diligence(
            config,
            source_url=source,
            ledger=ledger,
            today=day,
            out_dir=Path(str(env["out_dir"])),
            work_root=Path(str(env["staging_root"])),
            now=datetime.now(UTC),
            run_id=run_id,
            operator_id=operator_id,
        )
    return result.as_dict()


def verify_day(operator_id: str, day: date) -> dict[str, Any]:
    """Verify the operator's items due on ``day`` with the adapters the configuration switches on
    (``reporting.due_diligence.verify_due_items``): counts only come back (no identifier). Without
    ``DAC7_VERIFICATION_KEY`` (the key of the identifier hashes, from a secrets backend) nothing
    is verified and the task is skipped, saying so."""
    import os

    from airflow.sdk.exceptions import AirflowSkipException

    from reporting.due_diligence import verify_due_items
    from reporting.ledger import open_ledger
    from reporting.verification import KEY_ENV, hash_key

    if not os.environ.get(KEY_ENV):
        raise AirflowSkipException(
            f"{KEY_ENV} is not set on this worker: nothing is verified (the verification record keeps a keyed hash of "
            "each identifier; see docs/guide/verification.md)"
        )
    config, _, source, url = _where()
    key = hash_key(os.environ[KEY_ENV])
    with open_ledger(url) as ledger:
        result = verify_due_items(config, source_url=source, ledger=ledger, today=day, key=key, operator_id=operator_id)
    return result.as_dict()
