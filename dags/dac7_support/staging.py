"""Where a task finds its run's staging directory: local, or pulled from shared storage.

``DAC7_STAGING_DIR`` is the worker's local staging root. When ``DAC7_STAGING_URL`` is set (an
Airflow ObjectStoragePath URL: ``s3://aws_default@my-bucket/dac7/staging``, ``gs://...``,
``file:///mnt/shared/dac7-staging``; the part before ``@`` names the Airflow Connection holding
the credentials), the run's staging lives there and each task works on a local copy:
:func:`staged` pulls what changed before the stage and pushes what the stage wrote after it
(``reporting.shared_staging``). Unset, the local staging root is used as it is, and must then be the
same directory for every worker (one machine, or a shared mount).

XCom carries the staging directory the ``prepare`` task returned; only its last part (the run's
name, ``<year>-<run uuid>``) means anything to another worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dac7_support.common import staging_root

if TYPE_CHECKING:
    from reporting.shared_staging import SharedStaging

log = logging.getLogger("dac7")

#: Days a run's staging is kept after its last change (``DAC7_STAGING_RETENTION_DAYS``).
DEFAULT_RETENTION_DAYS = 90


def shared_staging() -> SharedStaging | None:
    """The shared staging root of ``DAC7_STAGING_URL``, or None (local staging only)."""
    url = os.environ.get("DAC7_STAGING_URL")
    if not url:
        return None
    from airflow.sdk import ObjectStoragePath

    from reporting.shared_staging import SharedStaging

    path = ObjectStoragePath(url)  # credentials from the Connection named in the URL, if any
    return SharedStaging(fs=path.fs, root=path.path.rstrip("/"), url=url)


@contextmanager
def staged(run_dir: str) -> Iterator[str]:
    """The staging directory to work in for one task: ``run_dir`` itself, or this worker's copy
    of it, pulled before and pushed after (a task enters it through
    ``dac7_support.tasks.in_run``, which also hands the run's stages the ledger's URL)."""
    shared = shared_staging()
    if shared is None:
        yield run_dir
        return
    with shared.staged(Path(run_dir).name, staging_root()) as local:
        yield local


def share_prepared(run_dir: str) -> None:
    """Upload a run's staging directory just created by ``prepare`` (no-op without shared staging)."""
    shared = shared_staging()
    if shared is not None:
        shared.push(Path(run_dir).name, Path(run_dir).parent)


def retention() -> timedelta:
    """``DAC7_STAGING_RETENTION_DAYS`` (default 90): long enough for any rerun of a filing."""
    raw = os.environ.get("DAC7_STAGING_RETENTION_DAYS") or str(DEFAULT_RETENTION_DAYS)
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if days < 1:
        from reporting.errors import ConfigError

        raise ConfigError(f"DAC7_STAGING_RETENTION_DAYS={raw!r}: expected a whole number of days, at least 1")
    return timedelta(days=days)


def prune_staging() -> dict[str, Any]:
    """Delete the staging of runs older than the retention, locally and on shared staging."""
    from reporting.shared_staging import prune_local

    keep = retention()
    local = prune_local(staging_root(), keep)
    shared = shared_staging()
    remote = shared.prune(keep) if shared is not None else []
    log.info(
        "staging older than %s days deleted: %s run(s) locally, %s on shared staging",
        keep.days,
        len(local),
        len(remote) if shared is not None else "no",
    )
    return {"retention_days": keep.days, "local": len(local), "shared": len(remote) if shared else None}
