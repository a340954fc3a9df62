"""Data checks with Great Expectations 1.x: the "audit" of write, audit, publish.

A stage writes its Parquet files to the run's staging area; :func:`run_data_checks` validates
them with the stage's suite before anything is published to the next stage. The suites are
versioned files in :mod:`reporting.expectations` (one JSON file per stage, in Great
Expectations' own expectation configuration form); values known only at run time (the period,
the code lists) are ``$PARAMETER`` references filled in here.

What the checks see is decided in SQL before Great Expectations does: each table is read with
DuckDB into a pandas frame of only the columns its suite needs, derived columns (a refund's
transaction, the totals of its refunds, a rate for the currency) are joined in, and personal
columns are reduced to what the check needs ("present" or null for a name, the year of a birth
date). No TIN, IBAN, name or birth date therefore reaches Great Expectations, its results or
its Data Docs. Great Expectations runs with ``exclude_unexpected_values`` and reports failed
rows by their row number in the staged file (the frame's index, named through
``unexpected_index_column_names``); their keys and sellers are then read from the frame.

Every failed row becomes a :class:`~reporting.findings.Finding` (rule ``gx.<expectation>.<column>``,
the row's key, its seller, what failed and what to do). A missing table or column raises
:class:`DataCheckStructureError` before any check runs; a failed structural expectation (a
duplicate or missing key, a non-integer amount column, a transaction outside the period)
makes :attr:`DataCheckReport.stops_run` true; other failed rows quarantine their sellers.

Great Expectations is imported inside the functions that use it: the import costs about 2.5 s.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from reporting import rules
from reporting.countries import ISO_COUNTRIES, ISO_CURRENCIES, is_currency
from reporting.errors import DataError
from reporting.findings import Finding, Severity
from reporting.quarantine import write_quarantine
from reporting.run import RunSettings, write_json
from reporting.staging import sql_literal

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

STAGES: dict[str, str] = {"extract": "extract.json", "identity": "identity.json", "aggregates": "aggregates.json"}
DOCS_DIR = "data-docs"  # in the run's staging directory, then published to <out>/reports/data-docs/

# The stable decision reason codes of reporting.rules (its module docstring lists them).
DECISION_CODES: tuple[str, ...] = (
    rules.REPORTED,
    rules.EXCLUDED_GOVERNMENTAL,
    rules.EXCLUDED_LISTED,
    rules.EXCLUDED_DE_MINIMIS,
    rules.EXCLUDED_LISTING,
    rules.NOT_REPORTABLE_NON_EU,
    rules.NOT_REPORTABLE_NO_ACTIVITY,
)
QUARANTINED = "quarantined:"  # reporting.rules: "quarantined:<rule>" for a seller set aside with its reason

ROW_COLUMN = "file_row_number"  # DuckDB's row number in the staged file, 0-based
TABLE_LEVEL_KEY = "(all rows)"
DOCS_SITE = "run"
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
    #: rules of :mod:`reporting.checks` that find the same defect (``meta.same_as``): a row they
    #: already name is reported once, under their shorter rule
    same_as: tuple[str, ...] = ()

    @property
    def rule(self) -> str:
        return f"gx.{self.expectation_type}.{self.column}"


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
        """The row errors under the rule of :mod:`reporting.checks` or the render that names the
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
        "activities": list(rules.ACTIVITY_ORDER),
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
    con = duckdb.connect(":memory:", config={"threads": 2})
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


_INTS = frozenset([pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32()])
# Timestamps go to pandas in nanoseconds, the unit Great Expectations compares vectorised (other
# units are compared value by value in Python, ~5 s per million rows). Values outside the range
# of nanoseconds are clamped to its ends first: they stay outside any reporting period.
_NS_MIN, _NS_MAX = datetime(1678, 1, 1), datetime(2261, 12, 31)


def table_frame(con: duckdb.DuckDBPyConnection, t: TableSuite, sql_params: dict[str, Any]) -> pd.DataFrame:
    """The table as its checks see it: only the suite's columns (and derived ones); integers as
    integers, never floats (numpy int64, or pandas' nullable Int64 where a column has nulls),
    timestamps in nanoseconds, text as pandas strings."""
    import pandas as pd
    import pyarrow.compute as pc

    sql = _frame_sql(t)
    params = {name: sql_params[name] for name in set(_SQL_PARAMETER.findall(sql))}
    table = con.sql(sql, params=params).to_arrow_table()
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
    frame = table.to_pandas(
        types_mapper=lambda typ: pd.Int64Dtype() if typ in _INTS else None, split_blocks=True, self_destruct=True
    )
    del table
    for name in dense:
        frame[name] = frame[name].astype("int64")
    # The row number is the index: Great Expectations lists failed rows by it cheaply (an
    # integer index; a text index costs seconds per lookup on millions of rows).
    return frame.set_index(ROW_COLUMN)


# --- Great Expectations ------------------------------------------------------------------------


def _context(docs_dir: Path | None) -> Any:
    """An ephemeral Data Context: in-memory stores, no progress bars, and a Data Docs site in
    ``docs_dir`` only when asked (no temporary default site)."""
    import great_expectations as gx
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
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _validate_table(
    context: Any, suite: StageSuite, t: TableSuite, frame: pd.DataFrame, params: dict[str, Any], run_id: Any
) -> Any:
    """Run one table's suite through a ValidationDefinition and a Checkpoint; the result of
    that one validation."""
    import great_expectations as gx

    name = f"{suite.name}.{t.table}"
    batch = (
        context.data_sources.add_pandas(name).add_dataframe_asset(t.table).add_batch_definition_whole_dataframe(t.table)
    )
    gx_suite = gx.ExpectationSuite(
        name=name, expectations=[copy.deepcopy(e) for e in t.expectations], meta={"version": suite.version}
    )
    if len(gx_suite.expectations) != len(t.expectations):  # GX skips an invalid configuration with a log line
        raise ValueError(f"suite {name}: {len(t.expectations) - len(gx_suite.expectations)} invalid expectation(s)")
    gx_suite = context.suites.add(gx_suite)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=gx_suite))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=[],  # the Data Docs are built once per stage, after every table
            result_format={
                # every failed row, by its row number only (the frame's index, which GX lists
                # without reading the frame row by row), and no value at all
                "result_format": "COMPLETE",
                "unexpected_index_column_names": [ROW_COLUMN],
                "exclude_unexpected_values": True,
                "partial_unexpected_count": 0,
                "return_unexpected_index_query": False,
            },
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=params, run_id=run_id)
    (validation,) = result.run_results.values()
    return validation


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
        value = entry.get(ROW_COLUMN) if isinstance(entry, dict) else entry
        rows += [int(r) for r in (value if isinstance(value, list) else [value]) if _value(r) is not None]
    return sorted(set(rows))


def _row_key(key: tuple[Any, ...], row: int) -> str:
    """The row's key values joined by spaces (empty parts left out: an aggregate of a
    non-property activity has listing_id ''), or, where a key value is missing, the row's number
    in the staged file (1-based), which is unambiguous."""
    if any(_value(k) is None for k in key):
        return f"row {row + 1}"
    return " ".join(str(k) for k in key if str(k) != "")


def _failed(
    frame: pd.DataFrame, t: TableSuite, rows: list[int], shown: str | None
) -> list[tuple[str, str | None, Any]]:
    """(key, seller, shown value) of each failed row, read from the frame for those rows only."""
    columns = list(dict.fromkeys([*t.key, *([t.seller] if t.seller else []), *([shown] if shown else [])]))
    part = frame.loc[rows, columns]
    out = []
    for row, values in zip(part.index, part.itertuples(index=False, name=None), strict=True):
        record = dict(zip(columns, values, strict=True))
        seller = _value(record.get(t.seller)) if t.seller else None
        out.append(
            (
                _row_key(tuple(record[c] for c in t.key), int(row)),
                None if seller is None else str(seller),
                _value(record.get(shown)) if shown else None,
            )
        )
    return out


def _summarise(t: TableSuite, validation: Any, frame: pd.DataFrame) -> tuple[list[ExpectationSummary], list[Finding]]:
    """Per-expectation summaries and one finding per failed row (per key and seller); no data
    value except the keys and sellers, and the failed value itself only where the suite marks
    the column as a code (``show_value``)."""
    summaries: list[ExpectationSummary] = []
    findings: list[Finding] = []
    for r in validation.results:
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
        shown = column if meta.get("show_value") else None
        for key, seller, value in _failed(frame, t, rows, shown):
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
) -> DataCheckReport:
    """Validate the staged Parquet files of ``stage`` ("extract", "identity" or "aggregates")
    with the stage's Great Expectations suite, one table at a time.

    Raises :class:`DataCheckStructureError` when a file or column the suite needs is missing.
    With ``docs_dir``, Data Docs HTML is built there (``index.html``; each call builds the index
    of its own stage, so give each stage its own directory to keep them all).
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

    from great_expectations.core.run_identifier import RunIdentifier

    context = _context(docs_dir)
    run_id = RunIdentifier(run_name=f"{suite.name}.v{suite.version}-{year}")
    summaries: list[ExpectationSummary] = []
    findings: list[Finding] = []
    con = _connect(run_dir, suite)
    try:
        for t, frame in _frames(con, suite, sql_params):
            validation = _validate_table(context, suite, t, frame, params, run_id)
            s, f = _summarise(t, validation, frame)
            del frame, validation
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
    failed = sum(not s.success for s in summaries)
    log.info(
        "data checks %s: %d expectation(s) on %d table(s), %d failed, %d finding(s)",
        stage,
        len(summaries),
        len(suite.tables),
        failed,
        len(findings),
    )
    return DataCheckReport(stage=stage, success=success, results=summaries, findings=findings, docs_index=index)


def _frames(
    con: duckdb.DuckDBPyConnection, suite: StageSuite, sql_params: dict[str, Any]
) -> Iterator[tuple[TableSuite, pd.DataFrame]]:
    """One table's frame at a time, so that only one is in memory."""
    for t in suite.tables:
        yield t, table_frame(con, t, sql_params)


def audit(settings: RunSettings, stage: str) -> DataCheckReport:
    """The audit of a pipeline stage: run the stage's suite over what it staged, keep a summary
    (``<run>/checks/<stage>.json``) and the Data Docs (``<run>/data-docs/<stage>/``, when
    ``[quality] data_docs``), and stop the run on a structural failure.

    Raises :class:`DataCheckStructureError` for a missing file or column and :class:`DataError`
    when a structural expectation failed; otherwise returns the report, whose row errors the
    caller quarantines (by seller) and whose warnings go to the due-diligence report.
    """
    period = settings.period
    docs = settings.run_path / DOCS_DIR / stage if settings.config.data_docs else None
    started = time.perf_counter()
    report = run_data_checks(
        settings.run_path,
        stage,
        docs_dir=docs,
        year=settings.year,
        as_of_end_utc=period.as_of_end_utc,
        period_start_utc=period.start_utc,
        period_end_utc=period.end_utc,
    )
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
