"""Shared staging (reporting.shared_staging): a run's stages on workers that share no disk.

Each "worker" here has its own local staging root; the shared side is a real fsspec filesystem
(``file://`` on a directory of the test: the same code path as S3, whose client is s3fs). The
pipeline test runs every stage on alternating workers, the mapped per-authority stages on both at
once, and compares the published files byte for byte with a run on one local directory.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path, PurePosixPath

import pytest
from builders import write_config

from dac7_demo import generate_demo
from reporting import pipeline
from reporting.shared_staging import SharedStaging, listing_token, local_only

RUN = "2025-6f1d3c2a-0000-4000-8000-000000000001"


@pytest.fixture
def shared(tmp_path: Path) -> SharedStaging:
    return SharedStaging.from_url((tmp_path / "shared").as_uri())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root, by relative path (the sync state files sit outside a run's dir)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- pull and push ------------------------------------------------------------------------------


def test_a_second_worker_sees_what_the_first_pushed(shared: SharedStaging, tmp_path: Path) -> None:
    w1, w2 = tmp_path / "w1", tmp_path / "w2"
    with shared.staged(RUN, w1) as run:
        write(Path(run) / "settings.json", "{}")
        write(Path(run) / "extract" / "sellers.parquet", "PAR1")
    with shared.staged(RUN, w2) as run:
        assert tree(Path(run)) == {"settings.json": b"{}", "extract/sellers.parquet": b"PAR1"}
        write(Path(run) / "aggregate" / "totals.parquet", "PAR2")
    # back on the first worker: only the new file comes over
    report = shared.pull(RUN, w1)
    assert (report.files, report.deleted) == (1, 0)
    assert tree(w1 / RUN) == tree(w2 / RUN)


def test_nothing_moves_twice(shared: SharedStaging, tmp_path: Path) -> None:
    w1 = tmp_path / "w1"
    with shared.staged(RUN, w1) as run:
        write(Path(run) / "a.json", "1")
    assert shared.pull(RUN, w1).files == 0
    assert shared.push(RUN, w1).files == 0
    with shared.staged(RUN, w1) as run:
        write(Path(run) / "a.json", "22")  # a changed file is uploaded again
    assert (tmp_path / "shared" / RUN / "a.json").read_text(encoding="utf-8") == "22"


def test_a_deletion_travels_both_ways(shared: SharedStaging, tmp_path: Path) -> None:
    w1, w2 = tmp_path / "w1", tmp_path / "w2"
    with shared.staged(RUN, w1) as run:
        write(Path(run) / "render" / "DE" / "old.xml", "<old/>")
        write(Path(run) / "keep.json", "{}")
    with shared.staged(RUN, w2) as run:
        (Path(run) / "render" / "DE" / "old.xml").unlink()  # e.g. a discarded message
    assert not (tmp_path / "shared" / RUN / "render" / "DE" / "old.xml").exists()
    report = shared.pull(RUN, w1)
    assert report.deleted == 1
    assert tree(w1 / RUN) == {"keep.json": b"{}"}


def test_concurrent_tasks_of_one_run_do_not_undo_each_other(shared: SharedStaging, tmp_path: Path) -> None:
    """The mapped render of two authorities at once, on two workers and twice on one worker
    (sharing its local copy): every task's files end up on the shared side, none is lost."""
    with shared.staged(RUN, tmp_path / "w1") as run:
        write(Path(run) / "render" / "plan.json", '["DE","FR","IT","NL"]')
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def task(worker: str, authority: str) -> None:
        try:
            with shared.staged(RUN, tmp_path / worker) as run:
                barrier.wait(timeout=10)  # all four have pulled before any writes
                for i in range(5):
                    write(Path(run) / "render" / authority / f"part-{i}.xml", f"<{authority} part='{i}'/>")
                write(Path(run) / "render" / "authorities" / f"{authority}.json", authority)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=task, args=(w, a)) for w, a in (("w1", "DE"), ("w1", "FR"), ("w2", "IT"), ("w2", "NL"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    shared.pull(RUN, tmp_path / "w3")
    files = tree(tmp_path / "w3" / RUN)
    for authority in ("DE", "FR", "IT", "NL"):
        assert files[f"render/authorities/{authority}.json"] == authority.encode()
        assert all(f"render/{authority}/part-{i}.xml" in files for i in range(5))


def test_scratch_and_temp_files_stay_on_the_worker(shared: SharedStaging, tmp_path: Path) -> None:
    with shared.staged(RUN, tmp_path / "w1") as run:
        write(Path(run) / ".duckdb-spill" / "duckdb_temp_block-1.block", "spill")
        write(Path(run) / "extract" / ".sellers.parquet.tmp", "half")
        write(Path(run) / "extract" / "sellers.parquet", "PAR1")
        # a preview's ledger being written by a task of the same worker: its journal stays here
        write(Path(run) / "preview" / "FR" / "ledger.sqlite3", "SQLite format 3")
        write(Path(run) / "preview" / "FR" / "ledger.sqlite3-journal", "pages")
    assert tree(tmp_path / "shared" / RUN) == {
        "extract/sellers.parquet": b"PAR1",
        "preview/FR/ledger.sqlite3": b"SQLite format 3",
    }
    assert local_only(PurePosixPath(".duckdb-spill/x")) and not local_only(PurePosixPath("a/b.json"))
    assert local_only(PurePosixPath("preview/DE/ledger.sqlite3-wal"))
    # the render's personal data while it renders: the sellers' rows and contents
    assert local_only(PurePosixPath("render/.routed_seller_rows/part-0.parquet"))
    assert local_only(PurePosixPath("render/.seller_contents-DE.tmp"))
    assert not local_only(PurePosixPath("render/.seller_contents-DE")) and not local_only(
        PurePosixPath("render/DE/a.xml")
    )


def test_a_file_removed_while_pushing_is_left_to_its_owner(
    shared: SharedStaging, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that another task of the worker removes between the push's listing and its upload
    (a SQLite journal of a concurrent render, say) is skipped, not an error."""
    original = shared.fs.put_file

    def vanishing(local: str, remote: str, **kw: object) -> None:
        if local.endswith("gone.json"):
            Path(local).unlink()
            raise FileNotFoundError(local)
        original(local, remote, **kw)

    monkeypatch.setattr(shared.fs, "put_file", vanishing)
    with shared.staged(RUN, tmp_path / "w1") as run:
        write(Path(run) / "render" / "gone.json", "{}")
        write(Path(run) / "render" / "kept.json", "{}")
    assert tree(tmp_path / "shared" / RUN) == {"render/kept.json": b"{}"}


def test_a_file_replaced_while_it_uploads_is_pushed_again(
    shared: SharedStaging, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two tasks of one run on one worker: while one pushes, the other replaces a file (its
    ledger, say) after the upload read the old version. The push must not record the new version
    as synchronised, or the writer's own push would skip it and the shared copy stay old."""
    original = shared.fs.put_file
    replaced: list[str] = []

    def racing(local: str, remote: str, **kw: object) -> None:
        original(local, remote, **kw)
        if local.endswith("ledger.sqlite3") and not replaced:
            tmp = Path(local).with_name(".ledger.sqlite3.tmp")
            tmp.write_text("version 2", encoding="utf-8")
            os.utime(tmp, ns=(1, 10**18))  # a new version, whatever the clock's granularity
            tmp.replace(local)  # the other task's stage renamed its new version in meanwhile
            replaced.append(local)

    monkeypatch.setattr(shared.fs, "put_file", racing)
    with shared.staged(RUN, tmp_path / "w1") as run:
        write(Path(run) / "preview" / "GR" / "ledger.sqlite3", "version 1")
    assert replaced
    assert tree(tmp_path / "shared" / RUN)["preview/GR/ledger.sqlite3"] == b"version 1"
    monkeypatch.setattr(shared.fs, "put_file", original)
    local = tmp_path / "w1" / RUN / "preview" / "GR" / "ledger.sqlite3"
    shared.pull(RUN, tmp_path / "w1")  # a third task of the worker starts before the writer pushes
    assert local.read_text(encoding="utf-8") == "version 2"  # the old shared version is not fetched over it
    shared.push(RUN, tmp_path / "w1")  # the writer's push
    assert tree(tmp_path / "shared" / RUN)["preview/GR/ledger.sqlite3"] == b"version 2"


def test_a_replacement_within_one_clock_tick_is_still_a_change(shared: SharedStaging, tmp_path: Path) -> None:
    """A file replaced by a rename with the same size and mtime (a coarse clock): its inode tells."""
    with shared.staged(RUN, tmp_path / "w1") as run:
        path = write(Path(run) / "render" / "DE.json", "{1}")
    st = path.stat()
    tmp = path.with_name(".DE.json.tmp")
    tmp.write_text("{2}", encoding="utf-8")
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    tmp.replace(path)
    shared.push(RUN, tmp_path / "w1")
    assert tree(tmp_path / "shared" / RUN)["render/DE.json"] == b"{2}"


def test_a_failed_stage_still_pushes_what_it_wrote(shared: SharedStaging, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), shared.staged(RUN, tmp_path / "w1") as run:
        write(Path(run) / "validate" / "authorities" / "DE.json", '{"valid": false}')
        raise RuntimeError("invalid XML")
    assert (tmp_path / "shared" / RUN / "validate" / "authorities" / "DE.json").is_file()


def test_local_copies_are_readable_by_the_owner_only(shared: SharedStaging, tmp_path: Path) -> None:
    with shared.staged(RUN, tmp_path / "w1") as run:
        write(Path(run) / "extract" / "sellers.parquet", "PAR1")
    shared.pull(RUN, tmp_path / "w2")
    local = tmp_path / "w2" / RUN
    assert stat.S_IMODE(os.stat(local).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(local / "extract").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(local / "extract" / "sellers.parquet").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "shared" / RUN / "extract" / "sellers.parquet").st_mode) == 0o600


def test_a_run_name_is_one_directory(shared: SharedStaging, tmp_path: Path) -> None:
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError, match="one directory name"):
            shared.pull(bad, tmp_path)


def test_urls_are_logged_without_credentials() -> None:
    s = SharedStaging(fs=None, root="bucket/dac7", url="s3://key:secret@bucket/dac7/staging")
    assert s.url_for_log() == "s3://bucket/dac7/staging"
    assert SharedStaging(fs=None, root="x", url="file:///mnt/x").url_for_log() == "file:///mnt/x"


def test_a_listing_token_changes_with_the_content_version() -> None:
    s3 = {"name": "b/k", "size": 3, "ETag": '"abc"', "LastModified": "2026-01-15T06:00:00Z", "type": "file"}
    assert listing_token(s3) != listing_token({**s3, "ETag": '"abd"'})
    assert listing_token(s3) == listing_token({**s3, "name": "b/other"})


# --- a whole run, stage by stage on two workers ----------------------------------------------------

#: One mapped task in its own process: pull the run to the worker's copy, run the stage for one
#: authority, push (argv: shared URL, run name, worker root, stage, authority).
TASK = """
import sys
from reporting import pipeline
from reporting.shared_staging import SharedStaging
url, name, worker, stage, authority = sys.argv[1:]
with SharedStaging.from_url(url).staged(name, worker) as run:
    getattr(pipeline, stage)(run, authority)
"""


def sha256_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and (p.suffix in (".xml", ".csv"))
    }


@pytest.mark.slow
def test_a_run_across_two_workers_files_the_same_bytes_as_one_machine(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'marketplace.db'}"
    generate_demo(source, sellers=150, seed=11, year=2025, replace=True)
    config = write_config(tmp_path / "dac7.toml", routing="jurisdiction")  # a preview: one task per state
    common = {
        "config_path": config,
        "year": 2025,
        "run_id": RUN.removeprefix("2025-"),
        "source_url": source,
        "authorities": ("DE", "FR", "IT", "LT"),  # four mapped tasks per stage: two per worker
    }
    from datetime import date, datetime

    common |= {"as_of": date(2026, 1, 14), "timestamp": datetime(2026, 1, 15, 6, 0)}

    # one machine
    one = pipeline.run(
        out_dir=tmp_path / "one" / "out",
        staging_root=tmp_path / "one" / "staging",
        ledger_url=f"sqlite:///{tmp_path / 'one-ledger.db'}",
        **common,
    )
    assert one.manifest["files"]

    # two workers: every stage pulls, runs and pushes; mapped stages run on both at once
    shared = SharedStaging.from_url((tmp_path / "shared").as_uri())
    workers = [tmp_path / "w1", tmp_path / "w2"]
    prepared = pipeline.prepare(
        out_dir=tmp_path / "two" / "out",
        staging_root=workers[0],
        ledger_url=f"sqlite:///{tmp_path / 'two-ledger.db'}",
        **common,
    )
    name = Path(prepared).name
    shared.push(name, workers[0])
    for i, stage in enumerate(("extract", "aggregate", "apply_rules")):
        with shared.staged(name, workers[(i + 1) % 2]) as run:
            if stage == "extract":
                pipeline.extract(run, source)
            else:
                getattr(pipeline, stage)(run)
    with shared.staged(name, workers[0]) as run:
        authorities = pipeline.plan(run)
    assert authorities == ["DE", "FR", "IT", "LT"]
    for stage in ("render", "validate", "publish"):
        # one process per mapped task, all at once, alternating between the workers (as Airflow
        # runs them: a task is a process; the ledger and Alembic are not for threads)
        tasks = [
            subprocess.Popen(
                [sys.executable, "-c", TASK, shared.url, name, str(workers[i % 2]), stage, authority],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for i, authority in enumerate(authorities)
        ]
        for authority, t in zip(authorities, tasks, strict=True):
            output = t.communicate(timeout=300)[0].decode(errors="replace")
            assert t.returncode == 0, f"{stage} {authority}:\n{output[-3000:]}"
    with shared.staged(name, workers[1]) as run:
        manifest = pipeline.finalize(run)

    assert [f["file"] for f in manifest["files"]] == [f["file"] for f in one.manifest["files"]]
    assert sha256_tree(tmp_path / "two" / "out") == sha256_tree(tmp_path / "one" / "out")
    # both workers rendered: each holds the render report of the authorities it ran, and has
    # pulled the others' only later (validate reads none of them; finalize ran on w2)
    ran = {a: workers[i % 2] for i, a in enumerate(authorities)}
    for authority, worker in ran.items():
        assert (worker / name / "render" / "authorities" / f"{authority}.json").is_file()
