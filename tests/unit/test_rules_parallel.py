"""The rules stage decides a large marketplace in ranges of sellers, in this process and a worker
process (:func:`reporting.stages.rules.apply_rules`): the same files, byte for byte, and the same
:class:`Decided` as one process deciding every seller in one pass; the same exception when a
seller cannot be decided; and a small marketplace never starts a worker."""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import write_config
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from dac7_demo import generate_demo
from reporting import pipeline
from reporting.errors import ConfigError
from reporting.settings import RunSettings, load_settings
from reporting.stages import rules as rules_stage

FR = '\n[authorities.FR]\nsiren = "123456789"\n'
GB = '\n[authorities.GB]\nplatform_operator_id = "XMDPI0001234567"\n'

#: the staged files the stage writes (the info findings are the checks' layout)
OUTPUTS = ("rules/decisions.parquet", "rules/reported.parquet", "rules/routing.parquet", "checks/rules_info.parquet")


def staged(tmp_path: Path, *, seed: int, sellers: int = 600, **config: Any) -> RunSettings:
    """A demo marketplace (5% of its sellers bad on purpose: quarantined by the extract's checks
    or by the rules, or reportable with identity gaps; every 11th seller verified by a government
    service in France, which a DAC7 filing notes as not used) extracted and aggregated."""
    url = f"sqlite:///{tmp_path}/source.db"
    generate_demo(url, sellers=sellers, seed=seed, year=2025, bad_share=0.05)
    with sqlite3.connect(tmp_path / "source.db") as db:
        db.execute("update sellers set gvs_jurisdiction = 'FR' where cast(substr(seller_id, 2) as integer) % 11 = 0")
    db.close()
    run_dir = pipeline.prepare(
        config_path=write_config(tmp_path / "dac7.toml", **config),
        year=2025,
        out_dir=tmp_path / "out",
        as_of=date(2026, 1, 31),
        staging_root=tmp_path / "staging",
        source_url=url,
        ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    pipeline.extract(run_dir, url)
    pipeline.aggregate(run_dir)
    return load_settings(run_dir)


def outputs(settings: RunSettings) -> dict[str, str]:
    return {name: hashlib.sha256((settings.run_path / name).read_bytes()).hexdigest() for name in OUTPUTS}


def decided(d: rules_stage.Decided) -> tuple[Any, ...]:
    """Everything of a Decided, the counters' keys in their order (a report lists them so)."""
    return (
        d.reading,
        d.reportable,
        list(d.decisions.items()),
        list(d.per_authority.items()),
        d.findings,
        list(d.incomplete_reportable.items()),
    )


@pytest.fixture
def parallel(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The parallel path on small data: jobs of 25 sellers whatever the number of sellers, Parquet
    row groups of 7 rows, so that every file's row groups span the jobs' results, and a job's rows
    made into Arrow every 5 rows (in this process's jobs: a worker has its own defaults), so that
    a job gives back tables of several pieces. Gives the (jobs, workers) of each parallel deciding."""
    monkeypatch.setattr(rules_stage, "PARALLEL_MIN_SELLERS", 0)
    monkeypatch.setattr(rules_stage, "SELLERS_PER_JOB", 25)
    monkeypatch.setattr(rules_stage, "JOBS_PER_WORKER", 50)
    monkeypatch.setattr(rules_stage._Writer.__init__, "__defaults__", (7,))
    monkeypatch.setattr(rules_stage._Rows.__init__, "__defaults__", (5,))
    calls: list[tuple[int, int]] = []
    run_ordered = rules_stage.run_ordered

    def counted(fn: Any, jobs: Any, *, workers: int) -> Any:
        calls.append((len(jobs), workers))
        return run_ordered(fn, jobs, workers=workers)

    monkeypatch.setattr(rules_stage, "run_ordered", counted)
    return calls


@pytest.mark.parametrize(
    ("seed", "config"),
    [
        (11, {"routing": "jurisdiction"}),
        (12, {"routing": "nexus"}),
        (13, {"filing_state": "FR", "extra": FR}),
        (14, {"filing_state": "GB", "nexus": "RPONEX4", "extra": GB}),
    ],
    ids=["preview", "filing", "FR", "GB"],
)
def test_the_parallel_path_writes_the_same_files_and_decides_the_same(
    tmp_path: Path, parallel: list[tuple[int, int]], seed: int, config: dict[str, str]
) -> None:
    settings = staged(tmp_path, seed=seed, **config)
    one = rules_stage.apply_rules(settings, workers=1)
    assert parallel == []  # one process: no jobs
    before = outputs(settings)
    both = rules_stage.apply_rules(settings, workers=2)
    assert len(parallel) == 1 and parallel[0][0] >= 20 and parallel[0][1] == 2
    assert outputs(settings) == before
    assert decided(both) == decided(one)
    # the marketplace has what the ranges must carry over, in several ranges each: sellers
    # quarantined by the extract's checks and by the rules, reportable sellers with identity gaps
    assert any(k.startswith("quarantined:") for k in one.decisions) and one.per_authority
    assert len(one.findings) >= 5 and len(one.incomplete_reportable) >= 3
    notes = pq.ParquetFile(settings.run_path / "checks/rules_info.parquet").metadata.num_rows
    assert notes >= 20 if config.get("nexus") != "RPONEX4" else notes == 0  # GB relies on the service


def test_a_seller_that_cannot_be_decided_raises_the_same_in_parallel(
    tmp_path: Path, parallel: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the year-end rate of a currency, the first seller paid in it stops the stage with
    the same exception on either path (the ranges before it done, those after it not started),
    and no file of the stage is left."""
    settings = staged(tmp_path, seed=12, routing="nexus")
    load_rates = rules_stage.load_rates

    def without_pln(con: Any, year: int) -> Any:
        return {c: r for c, r in load_rates(con, year).items() if c != "PLN"}

    monkeypatch.setattr(rules_stage, "load_rates", without_pln)
    raised = []
    for workers in (1, 2):
        with pytest.raises(Exception) as caught:
            rules_stage.apply_rules(settings, workers=workers)
        raised.append((type(caught.value), caught.value.args))
        assert not list((settings.run_path / "rules").iterdir())
    assert raised[0] == raised[1] == (KeyError, ("PLN",))
    assert len(parallel) == 1


def test_dac7_rules_workers_keeps_the_stage_to_its_own_process(
    tmp_path: Path, parallel: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DAC7_RULES_WORKERS=1``: no job, no worker, on a marketplace the stage would decide in
    parallel; a larger number caps the processes (one per CPU at most), unset one per CPU; the
    files and the decisions the same each way. A value that is not a whole number of at least 1
    stops the stage with a configuration error naming the variable."""
    monkeypatch.setattr(rules_stage, "workers_for", lambda jobs: 2)  # two CPUs, whatever the machine
    settings = staged(tmp_path, seed=12, sellers=80, routing="nexus")
    monkeypatch.setenv("DAC7_RULES_WORKERS", "1")
    one = rules_stage.apply_rules(settings)
    assert parallel == []
    before = outputs(settings)
    monkeypatch.setenv("DAC7_RULES_WORKERS", " 8 ")
    both = rules_stage.apply_rules(settings)
    assert [w for _jobs, w in parallel] == [2]
    assert outputs(settings) == before and decided(both) == decided(one)
    monkeypatch.delenv("DAC7_RULES_WORKERS")
    rules_stage.apply_rules(settings)
    assert [w for _jobs, w in parallel] == [2, 2]
    monkeypatch.setenv("DAC7_RULES_WORKERS", "1")
    rules_stage.apply_rules(settings, workers=2)  # the caller's number is taken as it is
    assert [w for _jobs, w in parallel] == [2, 2, 2]
    for bad in ("0", "two", "-1", "1.5", "²"):
        monkeypatch.setenv("DAC7_RULES_WORKERS", bad)
        with pytest.raises(ConfigError) as caught:
            rules_stage.apply_rules(settings)
        assert str(caught.value) == (
            f"DAC7_RULES_WORKERS={bad!r}: give a whole number of processes, at least 1 (1: the rules stage in its "
            "own process), or leave it unset (one per CPU)"
        )
    assert len(parallel) == 3


def test_a_small_marketplace_is_decided_in_this_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer sellers than PARALLEL_MIN_SELLERS, or one CPU: no job, no worker started."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a worker was asked for")

    monkeypatch.setattr(rules_stage, "run_ordered", refused)
    settings = staged(tmp_path, seed=12, sellers=60, routing="nexus")
    monkeypatch.setattr(rules_stage, "PARALLEL_MIN_SELLERS", 61)
    monkeypatch.setattr(rules_stage, "SELLERS_PER_JOB", 10)
    assert rules_stage.apply_rules(settings).decisions
    monkeypatch.setattr(rules_stage, "PARALLEL_MIN_SELLERS", 0)
    monkeypatch.setattr(rules_stage, "workers_for", lambda jobs: 1)
    assert rules_stage.apply_rules(settings).decisions


def test_the_parallel_path_starts_at_parallel_min_sellers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exactly PARALLEL_MIN_SELLERS sellers with activity are decided in parallel, one fewer in one pass."""
    calls: list[int] = []
    run_ordered = rules_stage.run_ordered

    def counted(fn: Any, jobs: Any, *, workers: int) -> Any:
        calls.append(len(jobs))
        return run_ordered(fn, jobs, workers=workers)

    monkeypatch.setattr(rules_stage, "run_ordered", counted)
    monkeypatch.setattr(rules_stage, "SELLERS_PER_JOB", 10)
    settings = staged(tmp_path, seed=15, sellers=60, routing="nexus")
    con = rules_stage.connect(settings.run_path, "aggregate")
    try:
        ((sellers,),) = con.execute("select count(distinct seller_id) from activity_totals").fetchall()
    finally:
        con.close()
    monkeypatch.setattr(rules_stage, "PARALLEL_MIN_SELLERS", sellers + 1)
    one = rules_stage.apply_rules(settings, workers=2)
    assert calls == []
    before = outputs(settings)
    monkeypatch.setattr(rules_stage, "PARALLEL_MIN_SELLERS", sellers)
    both = rules_stage.apply_rules(settings, workers=2)
    assert len(calls) == 1 and calls[0] >= 4
    assert outputs(settings) == before and decided(both) == decided(one)


#: a routing row: (authority, seller id)
ROUTE = st.tuples(st.sampled_from(["DE", "FR", "LT"]), st.from_regex(r"S[0-9]{3}", fullmatch=True))


def _routes(rows: list[tuple[str, str]]) -> pa.Table:
    authorities, sellers = [r[0] for r in rows], [r[1] for r in rows]
    return pa.table([authorities, sellers], schema=rules_stage.ROUTING_SCHEMA)


def _written(path: Path) -> tuple[bytes, list[int]]:
    """A file's bytes and the rows of each of its row groups."""
    meta = pq.ParquetFile(path).metadata
    return path.read_bytes(), [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


@examples(max_examples=150, deadline=None)
@given(
    rows=st.lists(ROUTE, max_size=40),
    cuts=st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=8),
    batch_rows=st.integers(1, 9),
)
def test_the_writer_writes_the_same_row_groups_whether_rows_come_one_by_one_or_as_tables(
    rows: list[tuple[str, str]], cuts: list[tuple[int, bool]], batch_rows: int
) -> None:
    """Rows given to ``_Writer`` in pieces, each piece one by one (``add``) or as a table
    (``add_table``: a job's result), give the same file as every row one by one, which is the
    file of row groups of ``batch_rows`` rows, the last one the rest, written straight with pyarrow."""
    schema = rules_stage.ROUTING_SCHEMA
    bounds = sorted({min(c, len(rows)) for c, _ in cuts} | {0, len(rows)})
    as_table = {min(c, len(rows)): table for c, table in cuts}
    with tempfile.TemporaryDirectory() as tmp:
        one_by_one, pieces, straight = Path(tmp, "a.parquet"), Path(tmp, "b.parquet"), Path(tmp, "c.parquet")
        with rules_stage._Writer(one_by_one, schema, batch_rows) as w:
            for row in rows:
                w.add(row)
        with rules_stage._Writer(pieces, schema, batch_rows) as w:
            for low, high in itertools.pairwise(bounds):
                if as_table.get(low, False):
                    w.add_table(_routes(rows[low:high]))
                else:
                    for row in rows[low:high]:
                        w.add(row)
        table = _routes(rows)
        with pq.ParquetWriter(straight, schema, compression="zstd") as w:
            for start in range(0, len(rows), batch_rows):
                w.write_table(table.slice(start, batch_rows))
        expected = _written(straight)
        assert _written(one_by_one) == expected
        assert _written(pieces) == expected
        assert expected[1] == [batch_rows] * (len(rows) // batch_rows) + [len(rows) % batch_rows] * bool(
            len(rows) % batch_rows
        )
