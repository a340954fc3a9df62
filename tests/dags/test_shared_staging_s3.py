"""Shared staging on S3: the same pull/push over the S3 protocol (s3fs), and the DAGs' route
through Airflow's ObjectStoragePath with the credentials in an Airflow Connection.

The S3 endpoint is moto's standalone server, started here on 127.0.0.1 (a local S3-compatible
HTTP service: no AWS account, no network). What is tested is the client side that production
uses unchanged: s3fs listings (ETag, LastModified), uploads, deletes, and the Amazon provider's
filesystem for ``s3://<conn_id>@bucket/prefix`` URLs.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from reporting.shared_staging import SharedStaging

RUN = "2025-0b9e1f7c-0000-4000-8000-000000000002"
BUCKET = "dac7-staging-test"
CREDENTIALS = {"key": "testing-key", "secret": "testing-secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the local S3 endpoint did not start:\n{tail}") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SharedStaging]:
    """An empty bucket; the staging root is a prefix in it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True, **CREDENTIALS)
    fs.mkdir(BUCKET)
    try:
        yield SharedStaging(fs=fs, root=f"{BUCKET}/dac7/staging", url=f"s3://{BUCKET}/dac7/staging")
    finally:
        fs.rm(BUCKET, recursive=True)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_workers_share_a_run_through_s3(s3: SharedStaging, tmp_path: Path) -> None:
    w1, w2 = tmp_path / "w1", tmp_path / "w2"
    parquet = bytes(range(256)) * 4096  # 1 MiB, a multipart-sized object is not needed here
    with s3.staged(RUN, w1) as run:
        write(Path(run) / "settings.json", b"{}")
        write(Path(run) / "extract" / "transactions.parquet", parquet)
        write(Path(run) / ".duckdb-spill" / "block", b"scratch")
    assert sorted(s3.fs.find(f"{BUCKET}/dac7/staging")) == [
        f"{BUCKET}/dac7/staging/{RUN}/extract/transactions.parquet",
        f"{BUCKET}/dac7/staging/{RUN}/settings.json",
    ]
    with s3.staged(RUN, w2) as run:
        assert tree(Path(run)) == {"extract/transactions.parquet": parquet, "settings.json": b"{}"}
        (Path(run) / "settings.json").unlink()
        write(Path(run) / "aggregate" / "totals.parquet", b"PAR1")
    report = s3.pull(RUN, w1)
    assert (report.files, report.deleted) == (1, 1)  # the new file over, the deleted one gone
    assert tree(w1 / RUN) == tree(w2 / RUN) | {".duckdb-spill/block": b"scratch"}
    # ETag and LastModified say nothing changed: a second pull moves nothing
    assert (s3.pull(RUN, w1).files, s3.pull(RUN, w2).files) == (0, 0)


def test_a_changed_object_is_fetched_again(s3: SharedStaging, tmp_path: Path) -> None:
    w1, w2 = tmp_path / "w1", tmp_path / "w2"
    with s3.staged(RUN, w1) as run:
        write(Path(run) / "render" / "plan.json", b'["DE"]')
    s3.pull(RUN, w2)
    with s3.staged(RUN, w1) as run:
        write(Path(run) / "render" / "plan.json", b'["FR"]')  # same size, other content
    assert s3.pull(RUN, w2).files == 1
    assert (w2 / RUN / "render" / "plan.json").read_bytes() == b'["FR"]'


def test_the_dags_reach_s3_through_an_airflow_connection(
    s3: SharedStaging, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DAC7_STAGING_URL=s3://<conn_id>@bucket/prefix``: the Connection holds the keys and the
    endpoint (a secrets backend in production), the URL holds neither."""
    from dac7_support.staging import share_prepared, shared_staging, staged

    monkeypatch.setenv(
        "AIRFLOW_CONN_DAC7_S3_TEST",
        json.dumps(
            {
                "conn_type": "aws",
                "login": CREDENTIALS["key"],
                "password": CREDENTIALS["secret"],
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    monkeypatch.setenv("DAC7_STAGING_URL", f"s3://dac7_s3_test@{BUCKET}/dac7/staging")
    shared = shared_staging()
    assert shared is not None and shared.root == f"{BUCKET}/dac7/staging"

    prepared = tmp_path / "prepare-worker" / RUN
    write(prepared / "settings.json", b'{"year": 2025}')
    share_prepared(str(prepared))
    monkeypatch.setenv("DAC7_STAGING_DIR", str(tmp_path / "other-worker"))
    with staged(str(prepared)) as here:  # XCom holds the first worker's path: only its name counts
        assert Path(here) == (tmp_path / "other-worker" / RUN).resolve()
        assert (Path(here) / "settings.json").read_bytes() == b'{"year": 2025}'
        write(Path(here) / "extract" / "sellers.parquet", b"PAR1")
    assert s3.fs.cat(f"{BUCKET}/dac7/staging/{RUN}/extract/sellers.parquet") == b"PAR1"


def test_old_runs_are_pruned_from_the_bucket(s3: SharedStaging, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    with s3.staged(RUN, tmp_path / "w1") as run:
        write(Path(run) / "settings.json", b"{}")
    s3.fs.pipe(f"{BUCKET}/dac7/staging/not-a-run/file", b"kept")
    assert s3.prune(timedelta(days=90)) == []  # LastModified is now
    assert s3.prune(timedelta(days=90), now=datetime.now(UTC) + timedelta(days=91)) == [RUN]
    assert s3.fs.find(f"{BUCKET}/dac7/staging") == [f"{BUCKET}/dac7/staging/not-a-run/file"]
