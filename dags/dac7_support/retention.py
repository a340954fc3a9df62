"""The retention of seller statements and of the due-diligence history: ten years from the end of
the year each record was made, then deleted (PStTG § 24(3)); the rule and its boundary are in
``reporting.ledger.statements`` and ``reporting.ledger.due_diligence``.

The housekeeping DAG calls :func:`expire_statements` daily: the pages (in the output directory
recorded with each statement, else under ``<DAC7_OUT_DIR>/<year>/statements/``) and the ledger's
content of every statement whose ten years have run are deleted; with ``dry_run`` only counted.
A page that is not found fails the task (its statement's content is kept) unless ``missing_ok``
acknowledges it. ``DAC7_OUT_DIR`` unset is no licence to look in the working directory: the
statements recorded without their output directory then count as not found. The ledger is the
annual runs' one (``DAC7_LEDGER_URL``, else the Connection of ``DAC7_LEDGER_CONN_ID``, else the
configuration's ``[ledger] url``). The result holds counts and statement ids, never personal data.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger("dac7.retention")


def expire_statements(now: datetime, *, dry_run: bool = False, missing_ok: bool = False) -> dict[str, Any]:
    """Delete (or, ``dry_run``, count) what the retention of PStTG § 24(3) ends at ``now`` (an
    aware instant: the run's logical date, never the clock). ``missing_ok``: the operator has
    made sure that the pages not found are gone; their statements are erased all the same."""
    from dac7_support.common import settings_from_env
    from dac7_support.connections import ledger_url
    from reporting.config import load_config
    from reporting.deadlines import time_zone
    from reporting.ledger import LedgerError, RetentionError, open_ledger
    from reporting.ledger.statements import erase_expired
    from reporting.ledger.url import resolve_ledger_url

    env = settings_from_env()
    config_path = env["config_path"]
    config_url = load_config(config_path).ledger if config_path and Path(config_path).is_file() else None
    url = ledger_url(config_url) or resolve_ledger_url(None, env={}, config_url=None, working_dir=Path.cwd())
    assert url is not None  # a working directory is given: never None
    given = os.environ.get("DAC7_OUT_DIR", "").strip()
    out_root = Path(given) if given else None
    try:
        ledger = open_ledger(url, create=False)
    except LedgerError as exc:  # no ledger file yet: nothing was ever recorded, so nothing to delete
        log.info("no ledger to examine for expired statements (%s)", str(exc).splitlines()[0][:200])
        return {"dry_run": dry_run, "statements": 0, "files": 0, "feeds": 0, "missing_files": 0}
    with ledger:
        try:
            outcome = erase_expired(
                ledger.engine, out_root, now=now, zone_of=time_zone, dry_run=dry_run, missing_ok=missing_ok
            )
        except RetentionError as exc:
            if out_root is None:
                raise RetentionError(
                    f"{exc} DAC7_OUT_DIR is not set: the pages of statements recorded without their output "
                    "directory are looked for under <DAC7_OUT_DIR>/<year>/statements/; set it"
                ) from None
            raise
    verb = "would delete" if dry_run else "deleted"
    if outcome.statements:
        log.warning(
            "PStTG § 24(3): the retention of %s statement(s) has ended; %s their content, %s page(s) and %s "
            "feed(s) (first: %s)",
            outcome.statements,
            verb,
            outcome.files,
            outcome.feeds,
            ", ".join(outcome.statement_ids[:10]),
        )
    if outcome.missing_files:
        log.warning(
            "%s page(s) of statements whose retention has ended were not found (%s; first: %s)",
            outcome.missing_files,
            "erased all the same: missing_ok" if missing_ok else "their content is kept",
            ", ".join(outcome.missing_ids[:10]),
        )
    return {
        "dry_run": dry_run,
        "statements": outcome.statements,
        "files": outcome.files,
        "feeds": outcome.feeds,
        "missing_files": outcome.missing_files,
    }


def _retention_ledger(what: str) -> tuple[Any, ZoneInfo] | None:
    """The ledger (open) and the time zone whose years a retention counts: the configuration's
    ``[reporting] timezone``, the zone the due-diligence cycle counts its days in; without a
    configuration, the zone its latest daily runs recorded; UTC only where neither is known
    (``reporting.due_diligence.retention_zone``). The zone and where it came from are logged.
    None where there is no ledger yet (nothing was ever recorded): ``what`` names the records in
    the log line."""
    from dac7_support.common import settings_from_env
    from dac7_support.connections import ledger_url
    from reporting.config import load_config
    from reporting.due_diligence import retention_zone
    from reporting.ledger import LedgerError, open_ledger
    from reporting.ledger.url import resolve_ledger_url

    config_path = settings_from_env()["config_path"]
    config = load_config(config_path) if config_path and Path(config_path).is_file() else None
    url = ledger_url(config.ledger if config else None) or resolve_ledger_url(
        None, env={}, config_url=None, working_dir=Path.cwd()
    )
    assert url is not None  # a working directory is given: never None
    try:
        ledger = open_ledger(url, create=False)
    except LedgerError as exc:  # no ledger file yet: nothing was ever recorded
        log.info("no ledger to examine for expired %s (%s)", what, str(exc).splitlines()[0][:200])
        return None
    try:
        zone, origin = retention_zone(ledger, config.reporting.timezone if config else None)
    except BaseException:
        ledger.close()
        raise
    said = "the retention of the %s counts the years in the time zone %s (%s)"
    if config:
        log.info(said, what, zone.key, origin)
    else:  # the task runs without the configuration the cycle runs with
        log.warning(said, what, zone.key, origin)
    return ledger, zone


def expire_due_diligence(now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete (or, ``dry_run``, count) the due-diligence events recorded in a year whose ten years
    have run at ``now`` (the run's logical date), and the state rows last changed then with no
    cycle open (PStTG § 24(3)), the years counted in the zone of ``[reporting] timezone`` (see
    :func:`_retention_ledger` without a configuration). Counts, and the zone (``timezone``)."""
    from reporting.due_diligence import expire_history

    opened = _retention_ledger("due-diligence records")
    if opened is None:
        return {"dry_run": dry_run, "events": 0, "states": 0, "timezone": None}
    ledger, zone = opened
    with ledger:
        outcome = expire_history(ledger, now=now, zone=zone, dry_run=dry_run)
    if outcome.events or outcome.states:
        log.warning(
            "PStTG § 24(3): the retention of %s due-diligence event(s) and %s state row(s) has ended; %s",
            outcome.events,
            outcome.states,
            "would delete them (dry run)" if dry_run else "deleted",
        )
    return {"dry_run": dry_run, "events": outcome.events, "states": outcome.states, "timezone": zone.key}


def expire_verifications(now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete (or, ``dry_run``, count) the verification calls and cached answers made in a year
    whose ten years have run at ``now`` (the run's logical date; PStTG § 24(3), in the zone of
    ``[reporting] timezone``, see :func:`_retention_ledger`: ``reporting.verification.delete_expired``).
    Counts, and the zone (``timezone``)."""
    from reporting.verification import delete_expired

    opened = _retention_ledger("verification records")
    if opened is None:
        return {"dry_run": dry_run, "calls": 0, "cached": 0, "timezone": None}
    ledger, zone = opened
    with ledger:
        done = delete_expired(ledger.engine, before=now, zone=zone, dry_run=dry_run)
    if done.calls or done.cached:
        log.warning(
            "PStTG § 24(3): the retention of %s verification call(s) and %s cached answer(s) has ended; %s",
            done.calls,
            done.cached,
            "would delete them (dry run)" if dry_run else "deleted",
        )
    return {"dry_run": dry_run, "calls": done.calls, "cached": done.cached, "timezone": zone.key}
