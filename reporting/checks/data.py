"""Data checks with Great Expectations 1.x: the "audit" of write, audit, publish.

A stage writes its Parquet files to the run's staging area; :func:`run_data_checks` validates
them with the stage's suite before anything is published to the next stage. The suites are
versioned files in :mod:`reporting.expectations` (one JSON file per stage, in Great
Expectations' own expectation configuration form); values known only at run time (the period,
the code lists) are ``$PARAMETER`` references filled in here.

What the checks see is decided in SQL before Great Expectations does: each table is read with
DuckDB into pandas frames of only the columns its suite needs, derived columns (a refund's
transaction, the totals of its refunds, a rate for the currency) are joined in, and personal
columns are reduced to what the check needs ("present" or null for a name, the year of a birth
date). No TIN, IBAN, name or birth date therefore reaches Great Expectations, its results or
its Data Docs. Great Expectations runs with ``exclude_unexpected_values`` and reports failed
rows by their row number in the staged file (the frame's index, named through
``unexpected_index_column_names``); their keys and sellers are then read from the frame.

Memory is bounded by :data:`CHUNK_ROWS`, not by the size of a table. A table of at most that
many rows is one frame, validated once with its whole suite by its Checkpoint. A larger one is
read in chunks of that many rows, each validated with the expectations that look at one row at
a time. An expectation whose result depends on other rows cannot see a chunk alone: a unique key
(:data:`KEY_EXPECTATIONS`) runs over partitions of the table by a hash of the key, each a frame
of the key and the seller only, and equal keys always share a partition; an aggregate
(:data:`WHOLE_TABLE_EXPECTATIONS`) runs once, on a frame of only the columns it reads. The
results of these parts are merged into one validation result of the table (a success when every
part succeeded, counts summed, failed rows together): findings, summaries and the table's one
page in the Data Docs are the same whatever the chunks.

Most tables have no failing row, and Great Expectations over pandas spends far longer saying so
than DuckDB does where the rows are. A table of more than :data:`SCREEN_SAMPLE_ROWS` rows is
therefore screened first (:mod:`reporting.checks.screen`): one DuckDB query counts, for every
expectation, the rows it looks at, the missing ones and the failing ones. Where none fails, Great
Expectations validates a sample of the table's rows with its whole suite (which must succeed
too), and the table's result is that one with the counts of the whole table: the same result,
statistics and Data Docs page as a validation of every row (``tests/unit/test_data_checks_screen.py``
compares them field by field). Where a row fails, or the screen cannot answer an expectation
exactly (a regular expression, a float column, ...), the table is validated as below, and its
findings are Great Expectations' own.

Every failed row becomes a :class:`~reporting.findings.Finding` (rule ``gx.<expectation>.<column>``,
the row's key, its seller, what failed and what to do). A missing table or column raises
:class:`DataCheckStructureError` before any check runs; a failed structural expectation (a
duplicate or missing key, a non-integer amount column, a transaction outside the period)
makes :attr:`DataCheckReport.stops_run` true; other failed rows quarantine their sellers.

Great Expectations is imported inside the functions that use it: the import costs about 2.5 s.
A stage that audits its output starts a :class:`ChecksWorker` when it begins: a process that
imports Great Expectations while the stage reads and computes, then runs the stage's suites
(:func:`run_data_checks`, unchanged) when the files are written. The import is then off the
critical path; what the worker returns, logs and writes is what the same call in the stage's
own process would return, log and write. A worker that fails for any reason leaves the checks
to the stage's process, which then runs them itself (and raises what they raise).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from reporting.checks import gx_kwargs
from reporting.checks.screen import Figures, screen
from reporting.countries import ISO_COUNTRIES, ISO_CURRENCIES, is_currency
from reporting.errors import DataError
from reporting.findings import Finding, Severity
from reporting.quarantine import write_quarantine
from reporting.settings import RunSettings, write_json
from reporting.staging import duckdb_config, sql_literal
from reporting.vocabulary import ACTIVITY_ORDER, DECISION_CODES, QUARANTINED
from reporting.workers import Worker

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

STAGES: dict[str, str] = {"extract": "extract.json", "identity": "identity.json", "aggregates": "aggregates.json"}
DOCS_DIR = "data-docs"  # in the run's staging directory, then published to <out>/reports/data-docs/

ROW_COLUMN = "file_row_number"  # DuckDB's row number in the staged file, 0-based
TABLE_LEVEL_KEY = "(all rows)"
DOCS_SITE = "run"
CHUNK_ROWS = 500_000  # rows validated at once; a larger table is validated in chunks
_READ_ROWS = 131_072  # rows per Arrow batch read from DuckDB; chunks are made of these
# A table of more rows is screened first (:mod:`reporting.checks.screen`): where no row fails,
# Great Expectations validates this many of its rows and the result is made from the screen's
# figures of all of them.
SCREEN_SAMPLE_ROWS = 1_000

# Expectations whose result for a row depends on other rows of the table cannot run per chunk.
# Those that compare rows only for equality (a unique key) run over partitions of the table by a
# hash of the columns they compare (see :func:`table_partitions`): equal values always share a
# partition, so the results of the partitions together are those of the table, and a partition
# has about as many rows as a chunk (unless many rows share one value: all null, say).
KEY_EXPECTATIONS: frozenset[str] = frozenset(
    {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
)
# The others (aggregates, order) run once per table, on a frame of only the columns they read;
# so does an expectation with ``mostly``, whatever its type: its success is a share of all rows.
# Every other expectation looks at one row at a time, or at the frame's columns and types, and
# runs per chunk.
WHOLE_TABLE_EXPECTATIONS: frozenset[str] = frozenset(
    {
        "expect_column_values_to_be_increasing",
        "expect_column_values_to_be_decreasing",
        "expect_column_value_z_scores_to_be_less_than",
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_contain_set",
        "expect_column_distinct_values_to_equal_set",
        "expect_column_unique_value_count_to_be_between",
        "expect_column_proportion_of_unique_values_to_be_between",
        "expect_column_proportion_of_non_null_values_to_be_between",
        "expect_column_most_common_value_to_be_in_set",
        "expect_column_min_to_be_between",
        "expect_column_max_to_be_between",
        "expect_column_mean_to_be_between",
        "expect_column_median_to_be_between",
        "expect_column_sum_to_be_between",
        "expect_column_stdev_to_be_between",
        "expect_column_quantile_values_to_be_between",
        "expect_column_kl_divergence_to_be_less_than",
        "expect_table_row_count_to_be_between",
        "expect_table_row_count_to_equal",
        "expect_table_row_count_to_equal_other_table",
    }
)
# Every failed row, by its row number only (the frame's index, which GX lists without reading
# the frame row by row), and no value at all.
_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW_COLUMN],
    "exclude_unexpected_values": True,
    "partial_unexpected_count": 0,
    "return_unexpected_index_query": False,
}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_SQL_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")


class DataCheckStructureError(DataError):
    """A staged table or column that a suite needs is missing: no check can run."""


@dataclass(frozen=True, slots=True)
class ExpectationSummary:
    """The outcome of one expectation on one table, without any data value."""

    table: str
    expectation_type: str
    column: str
    success: bool
    unexpected_count: int
    element_count: int | None = None
    severity: Severity = Severity.ERROR
    structural: bool = False
    #: rules of :mod:`reporting.checks.staged` that find the same defect (``meta.same_as``): a row they
    #: already name is reported once, under their shorter rule
    same_as: tuple[str, ...] = ()

    @property
    def rule(self) -> str:
        return f"gx.{self.expectation_type}.{self.column}"


def _rule(expectation_type: str, kwargs: dict[str, Any]) -> str:
    """The rule of an expectation: its type and what it checks (:attr:`ExpectationSummary.rule`)."""
    return f"gx.{expectation_type}.{_column(kwargs)}"


@dataclass(frozen=True, slots=True)
class DataCheckReport:
    """What the checks of one stage found.

    ``success`` is false when an error-severity expectation failed (warnings do not fail a
    stage). ``docs_index`` is the Data Docs ``index.html`` when docs were requested.
    """

    stage: str
    success: bool
    results: list[ExpectationSummary]
    findings: list[Finding]
    docs_index: Path | None = None

    @property
    def stops_run(self) -> bool:
        """A structural expectation failed (keys, column types, the extract's period): the
        stage's output must not be published and the run stops."""
        return any(r.structural and not r.success for r in self.results)

    @property
    def structural_findings(self) -> list[Finding]:
        failed = {(r.table, r.rule) for r in self.results if r.structural and not r.success}
        return [f for f in self.findings if (f.table, f.rule) in failed]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    def without(self, others: list[Finding]) -> list[Finding]:
        """The row errors, less those that ``others`` (the relational checks) already name under
        an equivalent rule for the same seller, or for the whole run."""
        same = {(r.table, r.rule): r.same_as for r in self.results if r.same_as}
        run_level = {f.rule for f in others if f.seller_id is None}
        by_seller = {(f.rule, f.seller_id) for f in others if f.seller_id is not None}
        return [
            f
            for f in self.errors
            if not any(
                rule in run_level or (rule, f.seller_id) in by_seller for rule in same.get((f.table, f.rule), ())
            )
        ]

    def named_errors(self) -> list[Finding]:
        """The row errors under the rule of :mod:`reporting.checks.staged` or the render that names the
        same defect (``meta.same_as``), where there is one: one name per defect for people."""
        same = {(r.table, r.rule): r.same_as for r in self.results if r.same_as}
        return [replace(f, rule=same[(f.table, f.rule)][0]) if (f.table, f.rule) in same else f for f in self.errors]

    @property
    def quarantined_sellers(self) -> dict[str, list[str]]:
        """Sellers with row errors, with the rules they broke: they go to quarantine and the
        run goes on for everyone else (structural failures stop the run instead)."""
        structural = {(r.table, r.rule) for r in self.results if r.structural}
        out: dict[str, set[str]] = {}
        for f in self.errors:
            if f.seller_id is not None and (f.table, f.rule) not in structural:
                out.setdefault(f.seller_id, set()).add(f.rule)
        return {seller: sorted(r) for seller, r in sorted(out.items())}


# --- suite definitions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableSuite:
    """One table of a stage's suite: where it is staged, how it is read, what is expected."""

    table: str
    file: str  # relative to the run directory
    columns: tuple[str, ...]  # source columns the checks need
    key: tuple[str, ...]
    seller: str | None
    expectations: tuple[dict[str, Any], ...]
    sql: str | None = None  # a file in reporting.expectations; default: the columns as they are
    requires: tuple[str, ...] = ()  # other staged files the SQL reads


@dataclass(frozen=True, slots=True)
class StageSuite:
    name: str
    version: int
    tables: tuple[TableSuite, ...]


def load_suite(stage: str) -> StageSuite:
    """The versioned suite of a stage, read from ``reporting/expectations/<stage>.json``."""
    if stage not in STAGES:
        raise ValueError(f"unknown data-check stage {stage!r}; expected one of {', '.join(STAGES)}")
    doc = json.loads(resources.files("reporting.expectations").joinpath(STAGES[stage]).read_text("utf-8"))
    tables = []
    for t in doc["tables"]:
        names = [t["table"], *t["columns"], *t["key"], *([t["seller"]] if t.get("seller") else [])]
        bad = [n for n in names if not _IDENTIFIER.match(n)]
        if bad:  # names go into SQL as identifiers: only plain ones
            raise ValueError(f"suite {doc['suite']}: not a plain identifier: {bad}")
        rules_ = [_rule(e["type"], e["kwargs"]) for e in t["expectations"]]
        if len(set(rules_)) != len(rules_):  # a rule names one expectation: findings and merged chunks rely on it
            raise ValueError(f"suite {doc['suite']}: two expectations of {t['table']} have the same rule")
        tables.append(
            TableSuite(
                table=t["table"],
                file=t["file"],
                columns=tuple(t["columns"]),
                key=tuple(t["key"]),
                seller=t.get("seller"),
                expectations=tuple(t["expectations"]),
                sql=t.get("sql"),
                requires=tuple(t.get("requires", ())),
            )
        )
    return StageSuite(name=doc["suite"], version=int(doc["version"]), tables=tuple(tables))


def expectation_parameters(
    *, as_of_end_utc: datetime, period_start_utc: datetime, period_end_utc: datetime
) -> dict[str, Any]:
    """The run-time values of the suites' ``$PARAMETER`` references."""
    return {
        "activities": list(ACTIVITY_ORDER),
        "payment_currencies": sorted(c for c in ISO_CURRENCIES if is_currency(c)),
        "currencies": sorted(ISO_CURRENCIES),
        "countries": sorted(ISO_COUNTRIES),
        "period_start_utc": _naive_utc(period_start_utc),
        "period_end_utc": _naive_utc(period_end_utc),
        # EU rule 40130: a birth date up to 31 December of the current year
        "max_birth_year": _naive_utc(as_of_end_utc).year,
        # a stable code, or a quarantine with the rule that set the seller aside
        "decision_pattern": "^(?:" + "|".join(map(re.escape, DECISION_CODES)) + f")$|^{QUARANTINED}\\S+$",
    }


def _naive_utc(value: datetime) -> datetime:
    """Staged timestamps are naive UTC; an aware bound is converted to the same form."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


# --- structure ---------------------------------------------------------------------------------


def check_structure(run_dir: Path, suite: StageSuite) -> list[Finding]:
    """Every staged file and column the suite needs, as findings for what is missing."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for t in suite.tables:
        for rel, columns in [(t.file, t.columns), *((r, ()) for r in t.requires)]:
            path = run_dir / rel
            if not path.is_file():
                if rel not in seen:
                    findings.append(
                        Finding(
                            rule="gx.structure.missing_table",
                            table=Path(rel).stem,
                            key=rel,
                            message=f"the staged file {rel} is missing; rerun the stage that writes it",
                        )
                    )
                seen.add(rel)
                continue
            present = set(pq.read_schema(path).names)
            findings += [
                Finding(
                    rule="gx.structure.missing_column",
                    table=t.table,
                    key=c,
                    message=f"column {c} is missing from {rel}; rerun the stage with the current code",
                )
                for c in columns
                if c not in present
            ]
    return findings


# --- frames ------------------------------------------------------------------------------------


def _connect(run_dir: Path, suite: StageSuite) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per staged file the suite reads, with its row numbers."""
    con = duckdb.connect(":memory:", config=duckdb_config(run_dir))
    files = {f for t in suite.tables for f in (t.file, *t.requires)}
    for rel in sorted(files):
        # DDL takes no parameters; the name and the path come from our own suite files.
        con.execute(
            f"create view {Path(rel).stem} as "
            f"select * from read_parquet({sql_literal(run_dir / rel)}, file_row_number = true)"
        )
    return con


def _frame_sql(t: TableSuite) -> str:
    if t.sql:
        return resources.files("reporting.expectations").joinpath(t.sql).read_text("utf-8")
    return f"select {', '.join([ROW_COLUMN, *t.columns])} from {t.table}"


def _relation(con: duckdb.DuckDBPyConnection, t: TableSuite, sql_params: dict[str, Any]) -> duckdb.DuckDBPyRelation:
    """The table as its checks see it, as a DuckDB relation (not run yet)."""
    sql = _frame_sql(t)
    return con.sql(sql, params={name: sql_params[name] for name in set(_SQL_PARAMETER.findall(sql))})


def table_frames(
    con: duckdb.DuckDBPyConnection, t: TableSuite, sql_params: dict[str, Any], chunk_rows: int = CHUNK_ROWS
) -> Iterator[tuple[pd.DataFrame, bool]]:
    """The table as its checks see it, in frames of at most ``chunk_rows`` rows, each with whether
    it is the last: only one frame is built at a time, from Arrow batches streamed by DuckDB.

    DuckDB reads in parallel, so rows come in no particular order; each keeps its row number in
    the staged file as the frame's index. Until the last frame the stream holds the connection:
    it runs no other query.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    with _relation(con, t, sql_params).to_arrow_reader(min(chunk_rows, _READ_ROWS)) as reader:
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            while rows > chunk_rows:  # a row beyond this chunk: it is not the last
                head, pending = _split(pending, chunk_rows)
                rows -= chunk_rows
                yield _frame(_drain(head, reader.schema), t), False
        frame = _frame(_drain(pending, reader.schema), t)
    yield frame, True  # the stream is closed: the connection can run the next query


def _split(batches: list[pa.RecordBatch], rows: int) -> tuple[list[pa.RecordBatch], list[pa.RecordBatch]]:
    """The first ``rows`` rows of the batches, and the rest (slices: no copy)."""
    head: list[pa.RecordBatch] = []
    rest: list[pa.RecordBatch] = []
    seen = 0
    for b in batches:
        if seen >= rows:
            rest.append(b)
        elif seen + b.num_rows <= rows:
            head.append(b)
        else:
            head.append(b.slice(0, rows - seen))
            rest.append(b.slice(rows - seen))
        seen += b.num_rows
    return head, rest


def _drain(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """The batches as one table, emptying the list: the table is then their only holder, so
    converting it to pandas frees them as it goes."""
    table = pa.Table.from_batches(batches, schema=schema)
    batches.clear()
    return table


def table_partitions(
    con: duckdb.DuckDBPyConnection,
    t: TableSuite,
    sql_params: dict[str, Any],
    expectations: Iterable[dict[str, Any]],
    by: tuple[str, ...] = (),
    partitions: int = 1,
) -> Iterator[pd.DataFrame]:
    """All rows of the table in ``partitions`` frames by a hash of the columns ``by`` (rows with
    equal values in them are in the same frame), or in one frame; with only the columns the
    expectations read, and the key and the seller, which name failed rows. For the transactions'
    unique key: the key and the seller of about a chunk's rows at a time."""
    rel = _relation(con, t, sql_params)
    wanted: list[str] = [*t.key, *([t.seller] if t.seller else []), *by]
    for e in expectations:
        read = _columns_read(e)
        wanted += rel.columns if read is None else sorted(read)
    # a column the relation lacks is left to GX, which reports that the expectation could not run
    columns = [ROW_COLUMN, *(c for c in dict.fromkeys(wanted) if c in rel.columns and c != ROW_COLUMN)]
    rel = rel.select(*map(duckdb.ColumnExpression, columns))
    if not by or not set(by) <= set(columns):
        yield _frame(rel.to_arrow_table(), t)
        return
    part = duckdb.FunctionExpression("hash", *map(duckdb.ColumnExpression, by)) % duckdb.ConstantExpression(partitions)
    for i in range(partitions):
        yield _frame(rel.filter(part == duckdb.ConstantExpression(i)).to_arrow_table(), t)


def _columns_read(expectation: dict[str, Any]) -> set[str] | None:
    """The columns an expectation reads: its own and those of its row condition; None (all of
    them) for a row condition given as a pandas query string, which is not parsed here."""
    kwargs = expectation["kwargs"]
    names = {str(kwargs[k]) for k in ("column", "column_A", "column_B") if k in kwargs}
    names.update(str(c) for c in kwargs.get("column_list", ()))
    pending = [kwargs.get("row_condition")]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            return None
        if isinstance(node, list):
            pending += node
        elif isinstance(node, dict):
            column = node.get("column")
            if isinstance(column, dict) and isinstance(column.get("name"), str):
                names.add(column["name"])
            pending += node.values()
    return names


_INTS = frozenset([pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32()])
# Timestamps go to pandas in nanoseconds, the unit Great Expectations compares vectorised (other
# units are compared value by value in Python, ~5 s per million rows). Values outside the range
# of nanoseconds are clamped to its ends first: they stay outside any reporting period.
_NS_MIN, _NS_MAX = datetime(1678, 1, 1), datetime(2261, 12, 31)


def _frame(table: pa.Table, t: TableSuite) -> pd.DataFrame:
    """Rows of the table as its checks see them: integers as integers, never floats (numpy int64,
    or pandas' nullable Int64 where a column of these rows has nulls), timestamps in nanoseconds,
    text as pandas strings, the row number as the index."""
    import pandas as pd
    import pyarrow.compute as pc

    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.tz is None and f.type.unit != "ns":
            lo, hi = pa.scalar(_NS_MIN, f.type), pa.scalar(_NS_MAX, f.type)
            clamped = pc.min_element_wise(
                pc.max_element_wise(table.column(i), lo, skip_nulls=False), hi, skip_nulls=False
            )
            table = table.set_column(i, f.name, clamped.cast(pa.timestamp("ns")))
    for i, f in enumerate(table.schema):
        # Text other than the keys (codes, seller ids) as categories: Great Expectations hashes
        # and filters the whole frame several times, and categories make that several times
        # cheaper. Keys stay text: encoding millions of unique values costs more than it saves.
        if pa.types.is_string(f.type) and f.name not in t.key:
            table = table.set_column(i, f.name, table.column(i).dictionary_encode())
    # integers without nulls as plain int64: Great Expectations compares those vectorised
    dense = [f.name for f in table.schema if f.type in _INTS and table.column(f.name).null_count == 0]
    frame: pd.DataFrame = table.to_pandas(
        types_mapper=lambda typ: pd.Int64Dtype() if typ in _INTS else None, split_blocks=True, self_destruct=True
    )
    del table
    for name in dense:
        frame[name] = frame[name].astype("int64")
    # The row number is the index: Great Expectations lists failed rows by it cheaply (an
    # integer index; a text index costs seconds per lookup on millions of rows).
    return frame.set_index(ROW_COLUMN)


# --- Great Expectations ------------------------------------------------------------------------


def _import_gx() -> Any:
    """The ``great_expectations`` module, imported the first time it is needed.

    With pyspark installed (the ``spark`` extra), Great Expectations imports pyspark's Spark
    Connect client, whose check of its own dependencies takes a process whose ``__main__`` has
    neither ``__spec__`` nor ``__file__`` (``python -c``: the checks worker, a task run by hand)
    for a doctest run and ends it, ``sys.exit(0)`` halfway through the import. For that import
    such a ``__main__`` has the ``__file__`` Python gives ``-c`` code, ``<string>``. Every
    path into Great Expectations (:func:`run_data_checks`, the worker's first job) imports it
    here first."""
    gx = sys.modules.get("great_expectations")
    if gx is not None:
        gx_kwargs.install(gx)  # once per process
        return gx
    main = sys.modules.get("__main__")
    lend = (
        main if main is not None and getattr(main, "__spec__", None) is None and not hasattr(main, "__file__") else None
    )
    if lend is not None:
        lend.__file__ = "<string>"
    try:
        import great_expectations
    finally:
        if lend is not None:
            del lend.__file__
    gx_kwargs.install(great_expectations)  # an expectation's configuration built once per look-up
    return great_expectations


_DOCS_VIEW = {"module_name": "reporting.checks.docs_views"}


def _context(docs_dir: Path | None) -> Any:
    """An ephemeral Data Context: in-memory stores, no progress bars, and a Data Docs site in
    ``docs_dir`` only when asked (no temporary default site)."""
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            # Great Expectations' views, with the templates compiled once per process
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "view": _DOCS_VIEW | {"class_name": "IndexPageView"},
            },
            "site_section_builders": {
                section: {"view": _DOCS_VIEW | {"class_name": "PageView"}}
                for section in ("expectations", "validations")
            },
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    # Every data source added (one per table) "saves" the project's configuration: an ephemeral
    # context writes the whole of it as YAML to an in-memory store that nothing reads (about a
    # fifth of the extract's suite at 30,000 sellers). Great Expectations' own word for an
    # ephemeral context is "not saved": here it is not written either.
    context._save_project_config = _not_saved
    return context


def _not_saved() -> None:
    """An ephemeral context's save of its project configuration (see :func:`_context`)."""


def _partitioned_by(expectation: dict[str, Any]) -> tuple[str, ...] | None:
    """Where an expectation runs on a table too large for one chunk: None for every chunk, the
    columns it compares for partitions by their hash (:data:`KEY_EXPECTATIONS`), or () for the
    whole table at once (:data:`WHOLE_TABLE_EXPECTATIONS`, ``mostly``)."""
    kwargs = expectation["kwargs"]
    if "mostly" in kwargs or expectation["type"] in WHOLE_TABLE_EXPECTATIONS:
        return ()
    if expectation["type"] in KEY_EXPECTATIONS:
        return (str(kwargs["column"]),) if "column" in kwargs else tuple(map(str, kwargs["column_list"]))
    return None


def _gx_suite(name: str, expectations: Iterable[dict[str, Any]], version: int) -> Any:
    gx = _import_gx()

    configs = [copy.deepcopy(e) for e in expectations]
    gx_suite = gx.ExpectationSuite(name=name, expectations=configs, meta={"version": version})
    if len(gx_suite.expectations) != len(configs):  # GX skips an invalid configuration with a log line
        raise ValueError(f"suite {name}: {len(configs) - len(gx_suite.expectations)} invalid expectation(s)")
    return gx_suite


@dataclass(frozen=True, slots=True)
class _GxTable:
    """One table's objects in the Data Context: a batch definition over whichever frame a run
    gives it, and the Checkpoint of the table's whole suite (a ValidationDefinition of it)."""

    name: str
    batch: Any
    checkpoint: Any
    suite: Any  # the table's whole suite, as the context holds it


def _register(context: Any, suite: StageSuite, t: TableSuite) -> _GxTable:
    gx = _import_gx()

    name = f"{suite.name}.{t.table}"
    batch = (
        context.data_sources.add_pandas(name).add_dataframe_asset(t.table).add_batch_definition_whole_dataframe(t.table)
    )
    gx_suite = context.suites.add(_gx_suite(name, t.expectations, suite.version))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=gx_suite))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=[],  # the Data Docs are built once per stage, after every table
            result_format=_RESULT_FORMAT,
        )
    )
    return _GxTable(name=name, batch=batch, checkpoint=checkpoint, suite=gx_suite)


# (row number, column whose value a finding shows or None) -> (key, seller, shown value)
_FailedRows = dict[tuple[int, str | None], tuple[str, str | None, Any]]


def _validate_table(
    context: Any,
    suite: StageSuite,
    t: TableSuite,
    con: duckdb.DuckDBPyConnection,
    sql_params: dict[str, Any],
    params: dict[str, Any],
    run_id: Any,
    chunk_rows: int,
    gx_table: _GxTable | None = None,
    whole: pa.Table | None = None,
) -> tuple[Any, _FailedRows]:
    """Validate one table with its suite (``gx_table``: its objects in the context, registered
    here when not given): its one validation result, and the key and seller of each failed row
    (read from the frames while they exist).

    A table of at most ``chunk_rows`` rows is one frame, validated by its Checkpoint, whose run
    stores the result for the Data Docs. A larger one is validated a chunk at a time with the
    expectations of single rows, then with the others over partitions of the table or over the
    whole table (:func:`table_partitions`); the results of these parts are merged into one result
    of the whole suite, stored as the Checkpoint stores its own. ``whole``: every row of the table
    (of at most ``chunk_rows``), already read, instead of reading it again.
    """
    gx_table = gx_table or _register(context, suite, t)
    per_chunk = [e for e in t.expectations if _partitioned_by(e) is None]
    chunk_suite = _gx_suite(f"{gx_table.name}.chunk", per_chunk, suite.version)
    parts: list[Any] = []
    failed: _FailedRows = {}

    def keep(validation: Any, frame: pd.DataFrame) -> None:
        failed.update(_failed(t, validation, frame))  # while the frame exists
        parts.append(validation)
        _release(gx_table.batch)

    chunks = rows = 0
    frames = table_frames(con, t, sql_params, chunk_rows) if whole is None else iter([(_frame(whole, t), True)])
    for frame, last in frames:
        chunks += 1
        rows += len(frame)
        if chunks == 1 and last:  # the whole table in one frame
            result = gx_table.checkpoint.run(
                batch_parameters={"dataframe": frame}, expectation_parameters=params, run_id=run_id
            )
            (validation,) = result.run_results.values()
            keep(validation, frame)
            return validation, failed
        if per_chunk:
            keep(_validate_frame(gx_table.batch, chunk_suite, frame, params), frame)
        del frame
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for e in t.expectations:
        by = _partitioned_by(e)
        if by is not None:
            groups.setdefault(by, []).append(e)
    for by, expectations in groups.items():
        part_suite = _gx_suite(f"{gx_table.name}.{'+'.join(by) or 'table'}", expectations, suite.version)
        partitions = math.ceil(rows / chunk_rows) if by else 1
        for frame in table_partitions(con, t, sql_params, expectations, by, partitions):
            keep(_validate_frame(gx_table.batch, part_suite, frame, params), frame)
            del frame
    merged = _merged(gx_table.name, t, parts, run_id, chunks)
    _store(context, merged, run_id)
    return merged, failed


def _screened(
    context: Any,
    suite: StageSuite,
    gx_table: _GxTable,
    t: TableSuite,
    con: duckdb.DuckDBPyConnection,
    run_dir: Path,
    sql_params: dict[str, Any],
    params: dict[str, Any],
    run_id: Any,
    sample_rows: int,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[Any, _FailedRows] | None:
    """The table's validation result made from its screen (:mod:`reporting.checks.screen`),
    when the screen answers every expectation of the table, finds no failing row and counts more
    than ``sample_rows`` rows (its staged file more than that, first); None otherwise, and the
    table is validated by Great Expectations. A table of the suite's SQL that has at most
    ``sample_rows`` rows (of a larger staged file) is validated whole at once, from the rows read
    for the sample (:func:`_validate_table`): its result is then Great Expectations' own.

    Great Expectations validates the first ``sample_rows`` rows with the whole suite (every
    expectation must succeed there too); each result's counts are then those of the screen over
    all rows: the rows looked at, the missing ones and their shares, no failed row. The result
    is stored as a merged one is (the table's page in the Data Docs)."""
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult

    if pq.read_metadata(run_dir / t.file).num_rows <= sample_rows:  # a small table: validated at once
        return None
    # The sample, and one row more: a table of the suite's SQL (a reconciliation) may have few rows
    # for a large staged file; then these are all of them and the table is validated whole, its
    # SQL run once instead of by the screen and again for the frames.
    head = _relation(con, t, sql_params).limit(sample_rows + 1).to_arrow_table()
    if head.num_rows <= sample_rows:
        if head.num_rows > chunk_rows:  # not one frame: validated in chunks as any table
            return None
        return _validate_table(context, suite, t, con, sql_params, params, run_id, chunk_rows, gx_table, whole=head)
    sql = _frame_sql(t)
    try:
        screened = screen(
            con, sql, {name: sql_params[name] for name in set(_SQL_PARAMETER.findall(sql))}, t.expectations, params
        )
    except duckdb.Error:  # a column that does not compare as expected: Great Expectations says what
        return None
    if screened is None:
        return None
    rows, figures = screened
    if rows <= sample_rows or any(f.unexpected for f in figures):
        return None
    sample = _frame(head.slice(0, sample_rows), t)  # the first rows, as ``limit`` gives them
    del head
    for e, f in zip(t.expectations, figures, strict=True):
        column = e["kwargs"].get("column")
        # a column's type as the whole table gives it to pandas: Int64 where a row has no value
        typed = e["type"] == "expect_column_values_to_be_in_type_list" and column in sample
        if typed and f.missing_count and str(sample[column].dtype) == "int64":
            sample[column] = sample[column].astype("Int64")
    validation = _validate_frame(gx_table.batch, gx_table.suite, sample, params)
    _release(gx_table.batch)
    del sample
    if not all(r.success and not _raised(r.exception_info) for r in validation.results):
        return None
    by_rule = {_rule(r.expectation_config.type, r.expectation_config.kwargs): r for r in validation.results}
    results = []
    for e, f in zip(t.expectations, figures, strict=True):
        r = by_rule[_rule(e["type"], e["kwargs"])]
        results.append(
            ExpectationValidationResult(
                success=True,
                expectation_config=r.expectation_config,
                result=_screened_counts(r.result or {}, f),
                meta=r.meta,
                exception_info=r.exception_info,
            )
        )
    validation.results = results
    merged = _merged(gx_table.name, t, [validation], run_id, chunks=0, screened_rows=rows, sample_rows=sample_rows)
    _store(context, merged, run_id)
    return merged, {}


def _screened_counts(result: dict[str, Any], f: Figures) -> dict[str, Any]:
    """A result of the sample with the screen's counts of the whole table, no row failed, and
    the shares computed as Great Expectations computes them."""
    result = dict(result)
    if "element_count" not in result:  # a table-level result (a column's type)
        return result
    elements = considered = f.element_count
    result |= {"element_count": elements, "unexpected_count": 0}
    if "missing_count" in result:
        considered = elements - f.missing_count
        result |= {
            "missing_count": f.missing_count,
            "missing_percent": _percent(f.missing_count, elements),
            "unexpected_percent_total": _percent(0, elements),
            "unexpected_percent_nonmissing": _percent(0, considered),
        }
    result["unexpected_percent"] = _percent(0, considered)
    return result


def _release(batch: Any) -> None:
    """Drop the frame GX keeps after a validation: the execution engine of the data source holds
    its last batch until another is loaded, which would keep a chunk's frame alive while the
    next is read (and a table's last frame for the rest of the stage)."""
    manager = batch.data_asset.datasource.get_execution_engine().batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()


def _validate_frame(batch: Any, gx_suite: Any, frame: pd.DataFrame, params: dict[str, Any]) -> Any:
    """One part of a table's suite over one frame: the validation result, stored nowhere.

    This is the validator a ValidationDefinition runs, without storing the result. (The public
    ``Batch.validate`` loads the batch twice, and each load hashes the whole frame for a
    fingerprint.)"""
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(batch_definition=batch, batch_parameters={"dataframe": frame}, result_format=_RESULT_FORMAT)
    return validator.validate_expectation_suite(gx_suite, params)


def _merged(
    name: str,
    t: TableSuite,
    parts: list[Any],
    run_id: Any,
    chunks: int,
    screened_rows: int | None = None,
    sample_rows: int | None = None,
) -> Any:
    """The validation results of a table's parts as one result of its whole suite, in the
    suite's order, with the meta a Checkpoint run gives a result (and, for a screened table, the
    rows the screen counted: ``screened_rows``)."""
    from great_expectations.constants import DATAFRAME_REPLACEMENT_STR
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.validator.validation_statistics import calc_validation_statistics

    by_rule: dict[str, list[Any]] = {}
    for part in parts:
        for r in part.results:
            by_rule.setdefault(_rule(r.expectation_config.type, r.expectation_config.kwargs), []).append(r)
    results = [_merged_result(by_rule[_rule(e["type"], e["kwargs"])]) for e in t.expectations]
    stats = calc_validation_statistics(results)
    merged = ExpectationSuiteValidationResult(
        success=stats.success,
        results=results,
        suite_name=name,
        suite_parameters=parts[0].suite_parameters,
        statistics={
            "evaluated_expectations": stats.evaluated_expectations,
            "successful_expectations": stats.successful_expectations,
            "unsuccessful_expectations": stats.unsuccessful_expectations,
            "success_percent": stats.success_percent,
        },
        meta={
            **parts[0].meta,
            # the fingerprint GX takes of a frame would be that of one part only
            "batch_markers": {
                **{
                    k: v
                    for k, v in (parts[0].meta.get("batch_markers") or {}).items()
                    if k != "pandas_data_fingerprint"
                },
                # shown on the table's page: the counts are DuckDB's, Great Expectations saw a sample
                **(
                    {"screened": f"{screened_rows} rows counted in DuckDB; the first {sample_rows} validated"}
                    if screened_rows is not None
                    else {}
                ),
            },
            "batch_parameters": {"dataframe": DATAFRAME_REPLACEMENT_STR},
            "chunks": chunks,
            **({"screened_rows": screened_rows} if screened_rows is not None else {}),
        },
        batch_id=parts[0].batch_id,
    )
    merged.meta["run_id"] = run_id  # as ValidationDefinition.run sets them
    merged.meta["validation_time"] = run_id.run_time
    return merged


def _merged_result(results: list[Any]) -> Any:
    """One expectation's results over several parts as one: a success when every part
    succeeded, counts summed and percentages of the sums (as GX computes them), failed rows
    together; the rest (configuration, observed value, exception) from the first part that
    raised, else failed, else ran."""
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult

    if len(results) == 1:
        return results[0]
    first = next((r for r in results if _raised(r.exception_info)), None) or next(
        (r for r in results if not r.success), results[0]
    )
    result = dict(first.result or {})
    each = [r.result or {} for r in results]
    if "element_count" in result:
        elements = sum(r.get("element_count") or 0 for r in each)
        unexpected = sum(r.get("unexpected_count") or 0 for r in each)
        considered = elements
        result |= {"element_count": elements, "unexpected_count": unexpected}
        if "missing_count" in result:
            missing = sum(r.get("missing_count") or 0 for r in each)
            considered = elements - missing
            result |= {
                "missing_count": missing,
                "missing_percent": _percent(missing, elements),
                "unexpected_percent_total": _percent(unexpected, elements),
                "unexpected_percent_nonmissing": _percent(unexpected, considered),
            }
        result["unexpected_percent"] = _percent(unexpected, considered)
    if any("unexpected_index_list" in r for r in each):
        rows = sorted(row for r in each for row in _failed_rows(r.get("unexpected_index_list")))
        result["unexpected_index_list"] = [{ROW_COLUMN: rows}]
    return ExpectationValidationResult(
        success=all(r.success for r in results),
        expectation_config=first.expectation_config,
        result=result,
        meta=first.meta,
        exception_info=first.exception_info,
    )


def _percent(part: int, whole: int) -> float | None:
    return part / whole * 100 if whole > 0 else None


def _store(context: Any, validation: Any, run_id: Any) -> None:
    """Store a merged result where a Checkpoint run stores its own: the table's one page in the
    Data Docs."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    suite_id = ExpectationSuiteIdentifier(name=validation.suite_name)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=validation.batch_id
    )
    context.validation_results_store.store_validation_results(
        suite_validation_result=validation,
        suite_validation_result_identifier=key,
        expectation_suite_identifier=suite_id,
    )


def _column(kwargs: dict[str, Any]) -> str:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_list" in kwargs:
        return "+".join(kwargs["column_list"])
    if "column_B" in kwargs:  # a pair: the column compared with its bound
        return str(kwargs["column_B"])
    return "table"


def _raised(info: Any) -> bool:
    if not isinstance(info, dict):
        return False
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def _value(v: Any) -> Any:
    """A value read back from pandas or GX: None for a missing one (NaN, NA, NaT)."""
    import pandas as pd

    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _failed_rows(index_list: Any) -> list[int]:
    """The row numbers in GX's ``unexpected_index_list``: ``[{"file_row_number": [r1, r2, ...]}]``
    when unexpected values are excluded, else one dict per row."""
    rows: list[int] = []
    for entry in index_list or ():
        value: Any = entry.get(ROW_COLUMN) if isinstance(entry, dict) else entry
        rows += [int(r) for r in (value if isinstance(value, list) else [value]) if _value(r) is not None]
    return sorted(set(rows))


def _row_key(key: tuple[Any, ...], row: int) -> str:
    """The row's key values joined by spaces (empty parts left out: an aggregate of a
    non-property activity has listing_id ''), or, where a key value is missing, the row's number
    in the staged file (1-based), which is unambiguous."""
    if any(_value(k) is None for k in key):
        return f"row {row + 1}"
    return " ".join(str(k) for k in key if str(k) != "")


def _shown(cfg: Any) -> str | None:
    """The column whose failed value a finding shows: only one the suite marks as a code."""
    return _column(cfg.kwargs) if (cfg.meta or {}).get("show_value") else None


def _failed(t: TableSuite, validation: Any, frame: pd.DataFrame) -> _FailedRows:
    """The key, seller and shown value of each row the validation failed, read from the frame
    for those rows only."""
    out: _FailedRows = {}
    for r in validation.results:
        rows = _failed_rows((r.result or {}).get("unexpected_index_list"))
        if r.success or _raised(r.exception_info) or not rows:
            continue
        shown = _shown(r.expectation_config)
        columns = list(dict.fromkeys([*t.key, *([t.seller] if t.seller else []), *([shown] if shown else [])]))
        part = frame.loc[rows, columns]
        for row, values in zip(part.index, part.itertuples(index=False, name=None), strict=True):
            record = dict(zip(columns, values, strict=True))
            seller = _value(record.get(t.seller)) if t.seller else None
            out[(int(row), shown)] = (
                _row_key(tuple(record[c] for c in t.key), int(row)),
                None if seller is None else str(seller),
                _value(record.get(shown)) if shown else None,
            )
    return out


def _summarise(t: TableSuite, validation: Any, failed: _FailedRows) -> tuple[list[ExpectationSummary], list[Finding]]:
    """Per-expectation summaries, in the suite's order, and one finding per failed row (per key
    and seller); no data value except the keys and sellers, and the failed value itself only
    where the suite marks the column as a code (``show_value``)."""
    summaries: list[ExpectationSummary] = []
    findings: list[Finding] = []
    by_rule = {_rule(r.expectation_config.type, r.expectation_config.kwargs): r for r in validation.results}
    for r in (by_rule[_rule(e["type"], e["kwargs"])] for e in t.expectations):
        cfg = r.expectation_config
        meta = cfg.meta or {}
        column = _column(cfg.kwargs)
        critical = str(getattr(cfg.severity, "value", cfg.severity)) == "critical"
        severity = Severity.ERROR if critical else Severity.WARNING
        raised = _raised(r.exception_info)
        res = r.result or {}
        rows = _failed_rows(res.get("unexpected_index_list"))
        summary = ExpectationSummary(
            table=t.table,
            expectation_type=cfg.type,
            column=column,
            success=bool(r.success),
            unexpected_count=int(res.get("unexpected_count") or len(rows)),
            element_count=res.get("element_count"),
            severity=severity,
            structural=bool(meta.get("structural")) or raised,
            same_as=tuple(meta.get("same_as", ())),
        )
        summaries.append(summary)
        if r.success:
            continue
        message = str(meta.get("message", f"{cfg.type} failed on {column}"))
        if raised:
            message = f"the check could not run; {message}. See the Data Docs of the run"
            findings.append(Finding(rule=summary.rule, table=t.table, key=TABLE_LEVEL_KEY, message=message))
            continue
        if not rows:  # a table-level expectation (e.g. the type of a column)
            observed = res.get("observed_value")
            if isinstance(observed, str) and _IDENTIFIER.match(observed.lower()):
                message += f" (observed {observed})"
            findings.append(Finding(rule=summary.rule, table=t.table, key=TABLE_LEVEL_KEY, message=message))
            continue
        shown = _shown(cfg)
        for row in rows:
            key, seller, value = failed[(row, shown)]
            text = message if value is None else f"{message} (value {str(value)[:40]!r})"
            findings.append(
                Finding(rule=summary.rule, table=t.table, key=key, message=text, severity=severity, seller_id=seller)
            )
    return summaries, findings


def run_data_checks(
    run_dir: Path,
    stage: str,
    *,
    docs_dir: Path | None = None,
    year: int,
    as_of_end_utc: datetime,
    period_start_utc: datetime,
    period_end_utc: datetime,
    chunk_rows: int = CHUNK_ROWS,
    screen_sample_rows: int | None = SCREEN_SAMPLE_ROWS,
) -> DataCheckReport:
    """Validate the staged Parquet files of ``stage`` ("extract", "identity" or "aggregates")
    with the stage's Great Expectations suite, one table at a time, and a table of more than
    ``chunk_rows`` rows a chunk at a time (the findings are the same whatever the chunks).

    A table of more than ``screen_sample_rows`` rows is screened in DuckDB first
    (:func:`_screened`); None validates every table in pandas without a screen. The findings and
    the results are the same either way.

    Raises :class:`DataCheckStructureError` when a file or column the suite needs is missing.
    With ``docs_dir``, Data Docs HTML is built there (``index.html``, one validation page per
    table; each call builds the index of its own stage, so give each stage its own directory to
    keep them all).
    """
    run_dir = Path(run_dir)
    suite = load_suite(stage)
    missing = check_structure(run_dir, suite)
    if missing:
        raise DataCheckStructureError(missing)
    params = expectation_parameters(
        as_of_end_utc=as_of_end_utc, period_start_utc=period_start_utc, period_end_utc=period_end_utc
    )
    sql_params = {"year_end": date(year, 12, 31), "as_of_end": _naive_utc(as_of_end_utc)}
    if docs_dir is not None:
        docs_dir = Path(docs_dir).resolve()
        docs_dir.mkdir(parents=True, exist_ok=True)

    _import_gx()
    from great_expectations.core.run_identifier import RunIdentifier

    context = _context(docs_dir)
    run_id = RunIdentifier(run_name=f"{suite.name}.v{suite.version}-{year}")
    summaries: list[ExpectationSummary] = []
    findings: list[Finding] = []
    con = _connect(run_dir, suite)
    try:
        for t in suite.tables:
            gx_table = _register(context, suite, t)
            screened = (
                _screened(
                    context,
                    suite,
                    gx_table,
                    t,
                    con,
                    run_dir,
                    sql_params,
                    params,
                    run_id,
                    screen_sample_rows,
                    chunk_rows,
                )
                if screen_sample_rows is not None
                else None
            )
            validation, failed = screened or _validate_table(
                context, suite, t, con, sql_params, params, run_id, chunk_rows, gx_table
            )
            s, f = _summarise(t, validation, failed)
            del validation, failed
            summaries += s
            findings += list(dict.fromkeys(f))  # rows with the same key and seller: one finding
    finally:
        con.close()
    if docs_dir is not None:
        context.build_data_docs(site_names=[DOCS_SITE])
    index = docs_dir / "index.html" if docs_dir is not None else None
    if index is not None and not index.is_file():
        raise FileNotFoundError(f"Great Expectations wrote no Data Docs index in {docs_dir}")
    success = not any(not s.success and s.severity is Severity.ERROR for s in summaries)
    failed_count = sum(not s.success for s in summaries)
    log.info(
        "data checks %s: %d expectation(s) on %d table(s), %d failed, %d finding(s)",
        stage,
        len(summaries),
        len(suite.tables),
        failed_count,
        len(findings),
    )
    return DataCheckReport(stage=stage, success=success, results=summaries, findings=findings, docs_index=index)


#: ``DAC7_CHECKS_WORKER``: "1" always runs the checks in a worker process, "0" never; unset, a
#: worker is used where Great Expectations is not imported yet (a fresh task process), so that a
#: process that has paid the import (a test session, a second stage in one process) keeps it.
WORKER_ENV = "DAC7_CHECKS_WORKER"


class ChecksWorker:
    """A worker process (:class:`reporting.workers.Worker`) that imports Great Expectations at
    once, then runs :func:`run_data_checks` for the stage's requests.

    ``submit`` sends a stage's request and returns at once; :func:`audit` collects the report.
    Nothing is lost when the worker fails: :meth:`collect` returns None and the caller runs the
    checks itself. The worker's log records are passed back and handled by this process's
    loggers, as if the checks had run here."""

    def __init__(self) -> None:
        self._worker: Worker | None = None
        self._pending: tuple[str, dict[str, Any]] | None = None
        self._warming = True
        try:
            self._worker = Worker()
            _running.add(self)
            self._worker.send(_import_great_expectations)
        except Exception as exc:
            log.info("data checks run in this process: no worker (%s)", type(exc).__name__)
            self._end()

    @classmethod
    def start(cls) -> ChecksWorker | None:
        """A worker, or None where the checks should run in this process (see :data:`WORKER_ENV`).
        Within :func:`keep_checks_worker`, the worker an earlier stage of this process used, if it
        is still there (its Great Expectations imported once for the whole run)."""
        wanted = os.environ.get(WORKER_ENV, "").strip()
        if wanted == "0" or (wanted != "1" and "great_expectations" in sys.modules):
            return None
        global _kept
        kept, _kept = _kept, None
        if kept is not None:
            if kept._worker is not None and kept._worker.alive():
                return kept
            kept._end()
        worker = cls()
        return worker if worker._worker is not None else None

    def submit(self, stage: str, arguments: dict[str, Any]) -> None:
        """Send the checks of ``stage`` (keyword arguments of :func:`run_data_checks`)."""
        if self._worker is None or self._pending is not None:
            return
        try:
            self._worker.send(_checks_with_records, arguments, logging.getLogger(__name__).getEffectiveLevel())
        except Exception:  # the worker is gone: the checks run in this process
            self._end()
            return
        self._pending = (stage, arguments)

    def collect(self, stage: str, arguments: dict[str, Any]) -> tuple[DataCheckReport, float] | None:
        """The report and the worker's seconds of the submitted checks of ``stage`` (submitted
        now if they were not), or None when the worker could not give them."""
        if self._pending is None:
            self.submit(stage, arguments)
        if self._pending != (stage, arguments) or self._worker is None:
            return None
        self._pending = None
        try:
            if self._warming:  # the import's outcome comes first
                self._warming = False
                self._worker.receive()
            report, seconds, records = self._worker.receive()
        except Exception as exc:  # the checks raised there, the import failed, or the worker is gone
            log.info("data checks %s: not from the worker (%s); they run in this process", stage, type(exc).__name__)
            self._end()
            return None
        for record in records:
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        return report, seconds

    def close(self) -> None:
        """Done with the worker: kept for the next stage of this process within
        :func:`keep_checks_worker` when it is idle (no checks submitted and not collected) and
        still running; ended otherwise."""
        global _kept
        worker = self._worker
        if _keeping and _kept is None and worker is not None and worker.alive() and self._idle(worker):
            _kept = self
            return
        self._end()

    def _idle(self, worker: Worker) -> bool:
        """No checks submitted and not collected: nothing to read but the import's outcome."""
        return self._pending is None and worker.unread == (1 if self._warming else 0)

    def _end(self) -> None:
        worker, self._worker = self._worker, None
        self._pending = None
        if worker is not None:
            worker.close(wait=False)  # every report it gave was read; its files are written
        _running.discard(self)

    @property
    def pid(self) -> int | None:
        """The worker process's id, while it runs."""
        return self._worker.pid if self._worker is not None else None

    def __enter__(self) -> ChecksWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: within :func:`keep_checks_worker`: an idle worker left by a stage, for the next one
_kept: ChecksWorker | None = None
_keeping = False
#: the workers started and not ended yet (for :func:`checks_worker_cpu`)
_running: set[ChecksWorker] = set()


@contextmanager
def keep_checks_worker() -> Iterator[None]:
    """Within this, every stage of this process that checks data uses one worker (see
    :class:`ChecksWorker`): Great Expectations is imported once, not once per stage (about 2.5 s
    of CPU each time). For a run of every stage in one process (``dac7 run``, ``dac7 bench``);
    a task process of the DAGs runs one stage and keeps nothing. The worker ends on leaving.
    Every worker is started inside a stage, under its umask (owner-only), so the kept one has
    the same."""
    global _keeping, _kept
    if _keeping:  # nested: the outer one ends it
        yield
        return
    _keeping = True
    try:
        yield
    finally:
        _keeping = False
        kept, _kept = _kept, None
        if kept is not None:
            kept._end()


def checks_worker_cpu() -> float:
    """The CPU seconds used so far by the workers of this process that have not ended (0 for one
    that cannot be read: Linux's ``/proc`` only). A worker's CPU is counted with its parent's
    children (``RUSAGE_CHILDREN``) only once it has ended; a benchmark that times the stages of a
    run adds this for the worker that lives on between them (:func:`keep_checks_worker`)."""
    total = 0.0
    for worker in list(_running):
        pid = worker.pid
        if pid is None:
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return total


def _import_great_expectations() -> None:
    """The worker's first job: the import it exists for."""
    _import_gx()
    from great_expectations.core.run_identifier import RunIdentifier  # noqa: F401


class _Records(logging.Handler):
    """Keeps the worker's log records, made picklable, for the stage's process to handle."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg, record.args = record.getMessage(), None
        except Exception:  # a library's malformed log call: kept as its bare format
            record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        self.records.append(record)


def _checks_with_records(
    arguments: dict[str, Any], level: int = logging.INFO
) -> tuple[DataCheckReport, float, list[logging.LogRecord]]:
    """A worker's job: :func:`run_data_checks`, its seconds, and the log records it emitted at
    ``level`` (the stage's process's) or above."""
    records = _Records(level)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(records)
    root.setLevel(level)
    started = time.perf_counter()
    try:
        report = run_data_checks(**arguments)
    finally:
        root.removeHandler(records)
        root.setLevel(previous)
    return report, time.perf_counter() - started, records.records


def check_arguments(settings: RunSettings, stage: str) -> dict[str, Any]:
    """The keyword arguments of :func:`run_data_checks` for ``stage`` of a run."""
    period = settings.period
    return {
        "run_dir": settings.run_path,
        "stage": stage,
        "docs_dir": settings.run_path / DOCS_DIR / stage if settings.config.data_docs else None,
        "year": settings.year,
        "as_of_end_utc": period.as_of_end_utc,
        "period_start_utc": period.start_utc,
        "period_end_utc": period.paid_until_utc,
    }


def audit(settings: RunSettings, stage: str, worker: ChecksWorker | None = None) -> DataCheckReport:
    """The audit of a pipeline stage: run the stage's suite over what it staged, keep a summary
    (``<run>/checks/<stage>.json``) and the Data Docs (``<run>/data-docs/<stage>/``, when
    ``[quality] data_docs``), and stop the run on a structural failure.

    Raises :class:`DataCheckStructureError` for a missing file or column and :class:`DataError`
    when a structural expectation failed; otherwise returns the report, whose row errors the
    caller quarantines (by seller) and whose warnings go to the due-diligence report. With a
    ``worker``, the checks run there (see :class:`ChecksWorker`).
    """
    arguments = check_arguments(settings, stage)
    done = worker.collect(stage, arguments) if worker is not None else None
    if done is not None:
        report, seconds = done
    else:
        started = time.perf_counter()
        report = run_data_checks(**arguments)
        seconds = time.perf_counter() - started
    checks = settings.stage_dir("checks")
    write_json(
        checks / f"{stage}.json",
        {
            "stage": stage,
            "suite": load_suite(stage).name,
            "success": report.success,
            "stops_run": report.stops_run,
            "seconds": round(seconds, 3),
            "expectations": len(report.results),
            "failed": [
                {
                    "table": r.table,
                    "rule": r.rule,
                    "severity": str(r.severity),
                    "structural": r.structural,
                    "unexpected": r.unexpected_count,
                }
                for r in report.results
                if not r.success
            ],
            "quarantined_sellers": len(report.quarantined_sellers),
            "warnings": len(report.warnings),
            "data_docs": f"{DOCS_DIR}/{stage}/index.html" if report.docs_index is not None else None,
        },
    )
    write_quarantine(checks / f"{stage}_warnings.parquet", report.warnings)  # same layout: seller, rule, key
    if report.stops_run:
        raise DataError(
            report.structural_findings,
            headline=f"the {stage} data checks failed on the structure of the staged data "
            f"({len(report.structural_findings)} finding(s)); the stage's output is not used",
        )
    unassigned = [f for f in report.errors if f.seller_id is None]
    if unassigned:  # a row error that belongs to no seller (a rate, an orphan) concerns the whole run
        raise DataError(unassigned, headline=f"the {stage} data checks found rows of no seller")
    return report
