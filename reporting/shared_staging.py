"""A run's staging directory on shared storage, for workers that share no disk.

Every stage reads and writes the run's staging directory as local files (DuckDB, Parquet, lxml
want a real path). When the workers of a deployment share no filesystem (CeleryExecutor on
several hosts, KubernetesExecutor), the staging directory lives on shared storage: any fsspec
filesystem (S3, GCS, Azure Blob, a ``file://`` mount ...). A task then works on a *local copy*:

    shared = SharedStaging.from_url("s3://my-bucket/dac7/staging")
    with shared.staged(run_dir_name, local_root) as run_dir:   # pull what changed
        pipeline.render(run_dir, "DE")                           # local files
                                                                 # push what the stage wrote

``pull`` brings the local copy up to date with the shared one: files that changed on the shared
side since this worker last saw them are fetched, files deleted there are deleted locally; a local
change that is not pushed yet (a stage of this worker running now) is kept. ``push`` uploads what
the stage wrote or changed and deletes on the shared side what the stage deleted, and nothing
else: tasks of one run that work at the same time (the mapped render/validate/publish of each
authority) write disjoint files, so their pushes never undo each other.

What a worker last saw is recorded beside its copy (``.<run>.sync.json``, outside the run's
directory, so it is never uploaded), under a file lock: two tasks of the same run on one worker
share the copy safely. A shared file is recognised by its listing (size plus ETag, generation or
modification time: whatever the filesystem reports), a local one by size and ``mtime_ns``.

Staging holds personal data: local copies are readable by the owner only (0600 files in a 0700
directory); on shared storage, restrict access to the workers (bucket policy, encryption). Paths
and counts are logged, never contents.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlencode

log = logging.getLogger(__name__)

#: A run's staging directory: ``<year>-<run uuid>`` (``pipeline.prepare``). Housekeeping touches
#: nothing else under a staging root.
RUN_NAME = re.compile(r"^\d{4}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: Local scratch that is never shared: DuckDB's spill files, and the sellers' rows the render of
#: every authority reads once for all (``render/.routed_seller_rows``, personal data, removed when
#: the render ends: a killed render's stays on its worker until the next render replaces it).
LOCAL_ONLY_DIRS = frozenset({".duckdb-spill", ".routed_seller_rows"})
#: The keys of a listing entry that change when a file's content changes, by filesystem: S3
#: (ETag, LastModified), GCS (generation, md5Hash), Azure (etag, last_modified), local (mtime).
CHANGE_KEYS = ("ETag", "etag", "generation", "md5Hash", "LastModified", "last_modified", "mtime", "size")


#: SQLite's transient companions of a database file (a preview's ledger lives in staging): they
#: exist only while a process writes, and belong to that process's worker.
SQLITE_TRANSIENT = ("-journal", "-wal", "-shm")


def local_only(rel: PurePosixPath) -> bool:
    """A file that stays on the worker: scratch directories, temp files (``.name.tmp``) and the
    transient files of a SQLite database being written."""
    return (
        any(part in LOCAL_ONLY_DIRS for part in rel.parts)
        or (rel.name.startswith(".") and rel.name.endswith(".tmp"))
        or rel.name.endswith(SQLITE_TRANSIENT)
    )


def listing_token(info: dict[str, Any]) -> str:
    """What identifies one version of a shared file in a listing."""
    return json.dumps({k: str(info[k]) for k in CHANGE_KEYS if k in info}, sort_keys=True)


@dataclass
class SyncReport:
    """What one pull or push moved: counts and bytes, for the task log."""

    files: int = 0
    bytes: int = 0
    deleted: int = 0
    seconds: float = 0.0
    paths: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.files} file(s), {self.bytes:,} bytes, {self.deleted} deleted, {self.seconds:.1f} s"


@dataclass(frozen=True, slots=True)
class SharedStaging:
    """The shared staging root: an fsspec filesystem and the path of the root in it."""

    fs: Any  # fsspec.AbstractFileSystem (fsspec is imported only when it is used)
    root: str
    url: str

    @classmethod
    def from_url(cls, url: str, **storage_options: Any) -> SharedStaging:
        """``s3://bucket/prefix``, ``gs://...``, ``file:///mnt/shared/staging`` ...: any fsspec URL
        whose filesystem is installed (S3 needs the ``s3`` extra). Credentials come from the
        filesystem's own chain (for S3: environment, instance role) or ``storage_options``; the
        DAGs go through Airflow's ObjectStoragePath instead, which takes them from a Connection."""
        from fsspec.core import url_to_fs

        fs, root = url_to_fs(url, **storage_options)
        return cls(fs=fs, root=root.rstrip("/"), url=url)

    def remote(self, run: str, rel: PurePosixPath | str = "") -> str:
        path = f"{self.root}/{run}"
        return f"{path}/{rel}" if str(rel) else path

    # --- one run ----------------------------------------------------------------------------------

    @contextmanager
    def staged(self, run: str, local_root: str | Path) -> Iterator[str]:
        """The local copy of ``run`` for the duration of one stage: pulled before, pushed after.

        The push happens also when the stage fails: what it wrote (a failed validation's report,
        a quarantine list) is what the next attempt, on whichever worker, must see; a single
        machine would see it too."""
        local = Path(local_root).resolve() / run
        self.pull(run, local_root)
        try:
            yield str(local)
        finally:
            self.push(run, local_root)

    def pull(self, run: str, local_root: str | Path) -> SyncReport:
        """Bring the local copy of ``run`` up to date with the shared one."""
        started = time.perf_counter()
        report = SyncReport()
        local = _local_dir(local_root, run)
        with _SyncState(local_root, run) as state:
            remote = self._listing(run)
            for rel, info in remote.items():
                token = listing_token(info)
                target = local / rel
                # a version seen before is not fetched again: a local change to it (a stage of
                # this worker running now, or one that died before its push) is kept, as a
                # single machine would keep it
                if state.remote(rel) == token:
                    continue
                _private_parents(target, local)
                tmp = target.with_name(f".{target.name}.pull.tmp")
                self.fs.get_file(self.remote(run, rel), str(tmp))
                os.chmod(tmp, 0o600)
                os.replace(tmp, target)
                state.record(rel, target, token)
                report.files += 1
                report.bytes += target.stat().st_size
            for rel in sorted(set(state.known()) - set(remote)):
                target = local / rel
                # deleted on the shared side; a file this worker changed since is left alone
                if state.unchanged(rel, target) or not target.exists():
                    target.unlink(missing_ok=True)
                    state.forget(rel)
                    report.deleted += 1
        report.seconds = time.perf_counter() - started
        log.info("staging %s: pulled %s from %s", run, report, self.url_for_log())
        return report

    def push(self, run: str, local_root: str | Path) -> SyncReport:
        """Upload what changed in the local copy since it was last synchronised; delete on the
        shared side what was deleted locally."""
        started = time.perf_counter()
        report = SyncReport()
        local = _local_dir(local_root, run)
        with _SyncState(local_root, run) as state:
            uploaded: list[tuple[PurePosixPath, os.stat_result | None]] = []
            for target in sorted(p for p in local.rglob("*") if p.is_file()):
                rel = PurePosixPath(target.relative_to(local).as_posix())
                if local_only(rel) or state.unchanged(rel, target):
                    continue
                destination = self.remote(run, rel)
                self.fs.makedirs(self.remote(run, rel.parent), exist_ok=True)
                try:
                    before = target.stat()
                    self.fs.put_file(str(target), destination)
                except FileNotFoundError:
                    # gone since the listing: a file another task of this worker removed (its
                    # own push deals with it)
                    continue
                try:
                    after = target.stat()
                except FileNotFoundError:  # removed while it was uploading: so is the shared copy
                    if self.fs.exists(destination):
                        self.fs.rm_file(destination)
                    state.forget(rel)
                    continue
                if _is_local_fs(self.fs):
                    os.chmod(destination, 0o600)
                report.files += 1
                report.bytes += before.st_size
                report.paths.append(str(rel))
                # replaced while it was uploading (by another task of this worker)? Then the
                # version uploaded may be an older one: the shared version is recorded as seen (a
                # pull must not fetch it over the newer local file), the local one as not yet
                # synchronised (the next push, its writer's, uploads it again)
                uploaded.append((rel, before if _version(before) == _version(after) else None))
            if uploaded:
                # the versions just written, read as a pull reads them: one listing of the run,
                # not one metadata request per file
                listing = self._listing(run)
                for rel, st in uploaded:
                    if rel in listing:
                        state.record_stat(rel, st, listing_token(listing[rel]))
            for rel in sorted(state.known()):
                if not (local / rel).exists():
                    if self.fs.exists(self.remote(run, rel)):
                        self.fs.rm_file(self.remote(run, rel))
                    state.forget(rel)
                    report.deleted += 1
        report.seconds = time.perf_counter() - started
        log.info("staging %s: pushed %s to %s", run, report, self.url_for_log())
        return report

    def prune(self, older_than: timedelta, now: datetime | None = None) -> list[str]:
        """Delete the shared copies of runs whose newest file is older than ``older_than``;
        returns their names. Only ``<year>-<uuid>`` directories are touched."""
        cutoff = (now or datetime.now(UTC)) - older_than
        if not self.fs.exists(self.root):
            return []
        self.fs.invalidate_cache(self.root)
        pruned = []
        for entry in self.fs.ls(self.root, detail=True):
            name = PurePosixPath(self.fs._strip_protocol(entry["name"])).name
            if entry.get("type") != "directory" or not RUN_NAME.match(name):
                continue
            newest = max((_modified(i) for i in self._listing(name).values()), default=None)
            if newest is None or newest < cutoff:
                self.fs.rm(self.remote(name), recursive=True)
                pruned.append(name)
        log.info("staging %s: %s run(s) older than %s deleted", self.url_for_log(), len(pruned), older_than)
        return sorted(pruned)

    def _listing(self, run: str) -> dict[PurePosixPath, dict[str, Any]]:
        base = self.remote(run)
        self.fs.invalidate_cache(base)  # listings cached by this process may predate other workers' pushes
        if not self.fs.exists(base):
            return {}
        found = self.fs.find(base, detail=True, withdirs=False)
        listing = {}
        prefix = self.fs._strip_protocol(base).rstrip("/") + "/"
        for path, info in found.items():
            stripped = self.fs._strip_protocol(path)
            if not stripped.startswith(prefix):
                continue
            rel = PurePosixPath(stripped[len(prefix) :])
            if not local_only(rel):
                listing[rel] = info
        return listing

    def url_for_log(self) -> str:
        """The URL without credentials: a user:password@ part is cut off, and the value of a query
        parameter that carries a secret (``?token=``, ``?secret_access_key=``) is masked."""
        from reporting.source import MASK, is_secret_parameter  # imports SQLAlchemy: only when logged

        scheme, sep, rest = self.url.partition("://")
        if not sep:
            return self.url
        rest = rest.partition("#")[0]
        # the user part ends at the last "@" (a password may hold "/", "?" or "@" unencoded); an
        # "@" in the path or the query is not one (no ":" before the first "/" of what precedes it)
        user, at, after = rest.rpartition("@")
        if at and ("/" not in user or ":" in user.partition("/")[0]):
            rest = after
        location, question, query = rest.partition("?")
        shown = f"{scheme}://{location}"
        if question:
            pairs = [(k, MASK if is_secret_parameter(k) else v) for k, v in parse_qsl(query, keep_blank_values=True)]
            shown += "?" + urlencode(pairs, safe="*/")
        return shown


def prune_local(local_root: str | Path, older_than: timedelta, now: datetime | None = None) -> list[str]:
    """Delete the local staging of runs (a worker's copies, or the staging of a single machine)
    whose newest file is older than ``older_than``, with their sync records; returns their names.
    Staging holds personal data: it is kept as long as reruns may need it, and no longer."""
    root = Path(local_root)
    if not root.is_dir():
        return []
    cutoff = ((now or datetime.now(UTC)) - older_than).timestamp()
    pruned = []
    for run in sorted(p for p in root.iterdir() if p.is_dir() and RUN_NAME.match(p.name)):
        newest = max((p.stat().st_mtime for p in run.rglob("*") if p.is_file()), default=run.stat().st_mtime)
        if newest < cutoff:
            with _SyncState(root, run.name):  # not while a pull or push of this worker runs
                shutil.rmtree(run)
            for extra in (root / f".{run.name}.sync.json", root / f".{run.name}.sync.lock"):
                extra.unlink(missing_ok=True)
            pruned.append(run.name)
    log.info("staging %s: %s run(s) older than %s deleted", root, len(pruned), older_than)
    return pruned


def _modified(info: dict[str, Any]) -> datetime:
    """A listing entry's modification time (S3 LastModified, GCS updated, local mtime)."""
    for key in ("LastModified", "last_modified", "updated", "mtime"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)  # unknown: treated as new, never deleted by mistake


# --- local side ---------------------------------------------------------------------------------


def _version(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells one version of a local file from another: size, mtime, ctime and inode."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _local_dir(local_root: str | Path, run: str) -> Path:
    if not run or "/" in run or run in (".", ".."):
        raise ValueError(f"staging run name {run!r}: expected one directory name")
    local = Path(local_root).resolve() / run
    local.mkdir(parents=True, exist_ok=True)
    os.chmod(local, 0o700)
    return local


def _private_parents(target: Path, top: Path) -> None:
    missing = []
    parent = target.parent
    while parent != top and not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o700)


def _is_local_fs(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


class _SyncState:
    """What this worker last synchronised of one run, locked for the duration of a pull or push.

    Stored as ``<local_root>/.<run>.sync.json``: per relative path, the shared listing token and
    the local file's size and ``mtime_ns`` right after the transfer."""

    def __init__(self, local_root: str | Path, run: str) -> None:
        root = Path(local_root).resolve()
        self.path = root / f".{run}.sync.json"
        self.lock_path = root / f".{run}.sync.lock"
        self.entries: dict[str, dict[str, Any]] = {}
        self._lock: Any = None

    def __enter__(self) -> _SyncState:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.lock_path, "a+")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        if self.path.is_file():
            self.entries = json.loads(self.path.read_text(encoding="utf-8"))
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            tmp = self.path.with_name(f"{self.path.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.entries, fh, sort_keys=True)
            os.replace(tmp, self.path)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def known(self) -> list[PurePosixPath]:
        return [PurePosixPath(rel) for rel in self.entries]

    def remote(self, rel: PurePosixPath) -> str | None:
        entry = self.entries.get(str(rel))
        return entry["remote"] if entry else None

    def unchanged(self, rel: PurePosixPath, target: Path) -> bool:
        """The local file is exactly the version last synchronised."""
        entry = self.entries.get(str(rel))
        if entry is None:
            return False
        try:
            st = target.stat()
        except FileNotFoundError:
            return False
        # size, mtime and inode: a file replaced by a rename has another inode even within one
        # tick of a coarse clock (entries written before the inode was kept compare without it)
        ino = entry.get("ino", st.st_ino)
        return (st.st_size, st.st_mtime_ns, st.st_ino) == (entry["size"], entry["mtime_ns"], ino)

    def record(self, rel: PurePosixPath, target: Path, remote: str) -> None:
        self.record_stat(rel, target.stat(), remote)

    def record_stat(self, rel: PurePosixPath, st: os.stat_result | None, remote: str) -> None:
        """The local version of ``rel`` (its ``stat`` when it was synchronised) and the remote
        one; ``st`` None: the remote version is seen, the local one is not synchronised yet."""
        if st is None:
            self.entries[str(rel)] = {"remote": remote, "size": -1, "mtime_ns": -1, "ino": -1}
            return
        self.entries[str(rel)] = {"remote": remote, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}

    def forget(self, rel: PurePosixPath) -> None:
        self.entries.pop(str(rel), None)
