"""The extract from Apache Spark (``[source.spark]``): the contract's tables as Parquet files or
as tables of a database of Spark's catalog, read with the extract's own queries into the same
files as every other source, then checked by the same checks (:mod:`reporting.stages.extract`).

The queries are the files of ``sql/``, written for SQLAlchemy with ``:named`` parameters, turned
into Spark's SQL by sqlglot: each parameter a typed literal (the period's bounds are naive UTC
instants, written as TIMESTAMP literals and compared in the session time zone, set to UTC while
the extract reads), each contract table by the name Spark knows it by (a temporary view per
Parquet table, or ``database.table``).

A table's rows are never collected into the driver: Spark writes them as Parquet into an
owner-only folder of the run's staging area, read back batch by batch, never as a Python object
per value, and converted column by column by the rules of the columnar read
(:func:`reporting.stages.extract.columnar_batch`). A table that those rules do not take as it comes (a
float where an integer belongs) is converted value by value instead,
by the rules of the DB-API read (:func:`reporting.stages.extract.to_batch`), which turn each value that
cannot be read into a finding naming its row: both give the file any other source would give.
The contract's times and dates must have Spark's time and date types: text there is refused
before any query runs (:func:`_check_time_types`).

With ``[source] aggregate = "source"`` Spark sums the transactions, as PostgreSQL and MariaDB do
(:mod:`reporting.pushdown` in Spark's dialect), and only the sums, the rows the checks must see
and the identity rows travel. The per-seller counts, the undated transactions and the rows that
refer to nothing are made by the extract's own helpers, through :class:`SparkQueries`.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from reporting.checks import data as datachecks
from reporting.config import Config, spark_conf
from reporting.errors import ConfigError, SourceContractError
from reporting.findings import Finding
from reporting.pushdown import (
    Flags,
    OperatorFilter,
    exotic_whitespace_sql,
    flagged_refunds_sql,
    flagged_transactions_sql,
)
from reporting.results import AggregatedAtSource, ExtractResult
from reporting.settings import RunSettings
from reporting.source import CONTRACT, sql_text
from reporting.spark_source import active_session, read_spark_totals, register_tables, spark_session, to_arrow
from reporting.stages import extract as ex

if TYPE_CHECKING:
    import sqlalchemy as sa
    from pyspark.sql import DataFrame, SparkSession
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)


class _SourceTables(TypedDict):
    """The names Spark knows the tables by, as the pushdown's queries take them (keyword arguments)."""

    transactions: str
    refunds: str
    listings: str


def spark_sql(sql: str, params: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """One of the extract's queries (``sql/``, with SQLAlchemy's ``:named`` parameters) in
    Spark's SQL: each parameter a typed literal (a datetime, naive UTC: a TIMESTAMP; a date: a
    DATE), each table of the contract by its name in ``names``."""

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name:
            if node.name not in params:
                raise ValueError(f"the query's parameter :{node.name} has no value")
            return _literal(params[node.name])
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in names:
            table = exp.to_table(names[node.name])
            table.set("alias", node.args.get("alias"))
            return table
        return node

    return sqlglot.parse_one(sql).transform(rewrite).sql(dialect="spark")


def _literal(value: Any) -> exp.Expression:
    """A period bound or a rate date as a typed literal (our own values, never input data)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build("timestamp"))
    if isinstance(value, date) and not isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("date"))
    raise TypeError(f"no Spark literal for a parameter of type {type(value).__name__}")


class _Dialect:
    name = "spark"


class _Rows:
    """A query's result, as much of SQLAlchemy's ``Result`` as the extract's helpers use."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def keys(self) -> list[str]:
        return self._table.column_names

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(_tuples(self._table))

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return _tuples(self._table)

    def partitions(self, size: int) -> Iterator[list[tuple[Any, ...]]]:
        for batch in self._table.to_batches(max_chunksize=size):
            yield list(_tuples(batch))

    def scalar_one(self) -> Any:
        if self._table.num_rows != 1 or self._table.num_columns != 1:
            raise ValueError(f"expected one value, the query gave {self._table.num_rows} row(s)")
        return self._table.column(0)[0].as_py()


def _tuples(data: pa.Table | pa.RecordBatch) -> Iterator[tuple[Any, ...]]:
    return zip(*(column.to_pylist() for column in data.columns), strict=True)


def _scalar(frame: DataFrame) -> int:
    """The one number a query gives (a count)."""
    return int(_Rows(to_arrow(frame)).scalar_one())


class SparkQueries:
    """The extract's queries run by Spark over the contract's tables (``names``: the name Spark
    knows each by), answering the few calls of a SQLAlchemy connection that the extract's helpers
    make (``execute`` of a text with its parameters, ``execution_options``, ``dialect.name``): the
    per-seller counts, the undated transactions and the rows that refer to nothing are made by the
    very code that makes them for a database (``_seller_counts``, ``_undated_transactions``,
    ``_orphans`` of :mod:`reporting.stages.extract`). Results are small: one row per seller at most."""

    dialect = _Dialect()

    def __init__(self, spark: SparkSession, names: Mapping[str, str]) -> None:
        self.spark = spark
        self.names = dict(names)

    def frame(self, sql: str, params: Mapping[str, Any] | None = None) -> DataFrame:
        return self.spark.sql(spark_sql(sql, params or {}, self.names))

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        return _scalar(self.frame(sql, params))

    def execute(self, statement: sa.TextClause, params: Mapping[str, Any] | None = None) -> _Rows:
        return _Rows(to_arrow(self.frame(statement.text, params)))

    def execution_options(self, **_options: Any) -> SparkQueries:
        return self

    def as_connection(self) -> Connection:
        """This object where the extract's helpers take a connection."""
        return cast("Connection", self)


@contextmanager
def _session(config: Config) -> Iterator[SparkSession]:
    """Spark for the extract: the session this process has already (a notebook's, a test's),
    else one started with ``[source.spark]``'s master and settings and stopped afterwards; its
    time zone UTC while the extract reads, set back afterwards."""
    active = active_session()
    if active is None:
        assert config.spark is not None
        spark = spark_session(config.spark.master, conf=spark_conf(config))
    else:
        spark = active
    zone = spark.conf.get("spark.sql.session.timeZone")
    assert zone is not None  # Spark has a default for it (the JVM's time zone)
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        yield spark
    finally:
        if active is None:
            spark.stop()
        elif zone != "UTC":
            spark.conf.set("spark.sql.session.timeZone", zone)


def extract(settings: RunSettings, source_url: str | None = None) -> ExtractResult:
    """The extract of a source whose tables Apache Spark reads (:mod:`reporting.stages.extract_spark`),
    checked as every other source's."""
    if source_url:
        raise ConfigError(
            "[source.spark] names the source's tables and a source URL was given too (--source or "
            "DAC7_SOURCE_URL); a run reads one source: leave out one of them"
        )
    worker = datachecks.ChecksWorker.start()
    try:
        return ex.check_extract(settings, worker, **read_spark_source(settings, worker))
    finally:
        if worker is not None:
            worker.close()


def read_spark_source(settings: RunSettings, worker: datachecks.ChecksWorker | None) -> dict[str, Any]:
    """Write the period's rows of every contract table from ``[source.spark]`` to
    ``<run>/extract/``, as :func:`reporting.stages.extract.extract` does for a database; return what its
    checks need (the keyword arguments of ``_check_extract``)."""
    config = settings.config.spark
    assert config is not None
    out = settings.stage_dir("extract")
    period = settings.period
    with _session(settings.config) as spark:
        names = register_tables(spark, tables_dir=config.tables, database=config.database, tables=tuple(CONTRACT))
        try:
            _check_time_types(spark, names)
            columns = {t: {c.lower() for c in spark.table(name).columns} for t, name in names.items()}
            scope = ex.operator_filter(settings, columns["transactions"])
            if scope.column:
                _check_operator_type(spark, names)
            queries = SparkQueries(spark, names)
            tables: _SourceTables = {
                "transactions": names["transactions"],
                "refunds": names["refunds"],
                "listings": names["property_listings"],
            }
            params = {"period_start": period.start_utc, "period_end": period.paid_until_utc}
            counts: dict[str, int] = {}
            findings: list[Finding] = []
            pushdown = _pushdown(settings, spark, names)

            def read_rates() -> None:
                rates = queries.frame(sql_text("extract_fx_rates.sql"), {"last_rate_date": date(settings.year, 12, 31)})
                counts["fx_rates"] = _to_parquet(rates, "fx_rates", out / "fx_rates.parquet", findings)

            flags = None
            summed_here = 0
            if pushdown:
                read_rates()  # first: which payments have a rate decides which rows the checks see
                flags = ex.source_flags(settings, out / "fx_rates.parquet")
                odd = _scalar(
                    spark.sql(
                        exotic_whitespace_sql(
                            period,
                            dialect="spark",
                            transactions=tables["transactions"],
                            refunds=tables["refunds"],
                            operator=scope,
                        )
                    )
                )
                if odd:
                    ex.warn_white_space(odd)
                    flags = None
                    summed_here = odd
            for table in ex.TABLES:
                if table == "fx_rates":
                    continue
                if flags is not None and table in ("transactions", "refunds"):
                    # only the rows the checks must see; Spark sums the others
                    flagged = flagged_transactions_sql if table == "transactions" else flagged_refunds_sql
                    frame = spark.sql(flagged(period, flags, dialect="spark", operator=scope, **tables))
                else:
                    frame = queries.frame(ex.extract_sql(table, columns[table], scope, "spark"), params)
                counts[table] = _to_parquet(frame, table, out / f"{table}.parquet", findings)
            if flags is None:
                read_rates()
            aggregated_at_source = _pushed_totals(
                settings, spark, flags, names, counts, out / "pushed_totals.parquet", scope
            )
            control = {
                table: queries.scalar(ex.scoped_sql(f"count_{table}.sql", scope, "spark"), params)
                for table in ex.CONTROLLED
            }
            ex.write_controls(out / "control_counts.parquet", counts, control)
            if worker is not None:  # the suite reads what is written now, while Spark is asked on
                worker.submit("extract", datachecks.check_arguments(settings, "extract"))
            undated = ex.source_findings(queries.as_connection(), params, out, findings, scope)
        finally:
            if config.tables is not None:  # the temporary views of the Parquet tables
                for view in names.values():
                    spark.catalog.dropTempView(view)
    return {
        "counts": counts,
        "control": control,
        "findings": findings,
        "undated": undated,
        "aggregated_at_source": aggregated_at_source,
        "summed_here": summed_here,
        "source": f"Apache Spark: {config.where}",
    }


def _to_parquet(frame: DataFrame, table: str, path: Path, findings: list[Finding]) -> int:
    """Write the frame's rows to ``path`` by the extract's rules for ``table``: column by column
    (the columnar read's rules), or, for a table those rules do not take as it comes, value by
    value (the DB-API read's rules, with a finding per value that cannot be read).

    The rows never come to this process at once: Spark writes them as Parquet into a folder of the
    run's staging area (``.spark-<table>/`` beside ``path``, owner-only, removed afterwards, also
    on an error), read back here batch by batch (:data:`reporting.stages.extract.BATCH_ROWS` rows)."""
    spec = ex.TABLES[table]
    schema = pa.schema([(name, typ) for name, typ, _ in spec])
    folder = path.with_name(f".spark-{table}")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    try:
        parts = _spark_parquet(frame, folder / "rows")
        names = pq.ParquetFile(parts[0]).schema_arrow.names if parts else []
        present = {n.lower() for n in names}
        rows = 0

        def batches() -> Iterator[pa.RecordBatch]:
            nonlocal rows
            rows = 0
            for part in parts:
                with pq.ParquetFile(part) as f:
                    for batch in f.iter_batches(batch_size=ex.BATCH_ROWS):
                        rows += batch.num_rows
                        yield pa.RecordBatch.from_arrays(batch.columns, names=[n.lower() for n in batch.schema.names])

        try:
            _write(path, schema, (ex.columnar_batch(b, spec, present, schema) for b in batches()))
        except ex.NotColumnar as exc:
            log.info("extract %s: read value by value (%s)", table, exc)
            index = {name.lower(): i for i, name in enumerate(names)}
            _write(
                path, schema, (ex.to_batch(list(_tuples(b)), spec, index, schema, table, findings) for b in batches())
            )
        return rows
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _spark_parquet(frame: DataFrame, folder: Path) -> list[Path]:
    """The frame's rows written by Spark as Parquet files into ``folder`` (which Spark creates);
    its part files in the order of the frame's partitions (their names). Times as microseconds:
    a TIMESTAMP column marked as UTC (read back as zoned UTC times), a TIMESTAMP_NTZ column as
    naive times, as ``DataFrame.toArrow`` gives them, never as Spark's INT96 default."""
    spark = frame.sparkSession
    settings = {
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.writeLegacyFormat": "false",
        "spark.sql.session.timeZone": "UTC",
    }
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        frame.write.mode("errorifexists").parquet(folder.resolve().as_uri())
    finally:
        for key, earlier in before.items():
            if earlier is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, earlier)
    return sorted(p for p in folder.iterdir() if p.name.startswith("part-") and p.name.endswith(".parquet"))


def _write(path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
    """The batches as ``path``, written under a temporary name first (removed on an error)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            written = 0
            for batch in batches:
                writer.write_batch(batch)
                written += batch.num_rows
            if written == 0:
                writer.write_table(schema.empty_table())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def _pushed_totals(
    settings: RunSettings,
    spark: SparkSession,
    flags: Flags | None,
    names: Mapping[str, str],
    counts: dict[str, int],
    path: Path,
    scope: OperatorFilter | None = None,
) -> AggregatedAtSource | None:
    """With ``flags``: Spark's sums of every transaction not flagged, written to ``path`` and
    added to ``counts``, and what ``extract.json`` says of them; else an empty file and None
    (:func:`reporting.stages.extract.write_pushed_totals`)."""
    started = time.perf_counter()
    totals = None
    if flags is not None:
        totals = read_spark_totals(
            spark,
            settings.period,
            payment_date_rates=settings.config.reporting.fx_basis == "payment_date",
            flags=flags,
            transactions=names["transactions"],
            refunds=names["refunds"],
            property_listings=names["property_listings"],
            operator=scope,
        )
    return ex.write_pushed_totals(totals, path, counts, started, "by Spark")


#: the contract's times and dates (sql/source_schema.sql) and the Spark types they may have
_SPARK_TIMES = {
    ("transactions", "paid_at"): ("timestamp", "a TIMESTAMP or TIMESTAMP_NTZ"),
    ("refunds", "refunded_at"): ("timestamp", "a TIMESTAMP or TIMESTAMP_NTZ"),
    ("sellers", "birth_date"): ("date", "a DATE"),
    ("fx_rates", "rate_date"): ("date", "a DATE"),
}


def _check_time_types(spark: SparkSession, names: Mapping[str, str]) -> None:
    """The contract's times and dates must be Spark's times and dates, whatever ``aggregate`` says,
    before any query runs: the queries compare them with the period's bounds, and a text there is
    cast by Spark, which (in ANSI mode) stops on the first value it cannot read with that value in
    its error and its log, or (ANSI off) drops the row without a word."""
    from pyspark.sql import types as T

    classes = {"timestamp": (T.TimestampType, T.TimestampNTZType), "date": (T.DateType,)}
    wrong: list[str] = []
    for (table, column), (kind, what) in _SPARK_TIMES.items():
        if table not in names:
            continue
        types = {f.name.lower(): f.dataType for f in spark.table(names[table]).schema.fields}
        if column in types and not isinstance(types[column], classes[kind]):
            wrong.append(f"{table}.{column} is {types[column].simpleString()}, not {what}")
    if wrong:
        raise SourceContractError(
            "the contract's times and dates must have Spark's time and date types (sql/source_schema.sql), "
            f"since the queries compare them with the period's bounds: {'; '.join(wrong)}. Store them with "
            "those types, or give a view that converts them"
        )


def _check_operator_type(spark: SparkSession, names: Mapping[str, str]) -> None:
    """``transactions.operator_id`` must be a text (it is compared, trimmed, with the ids of the
    configuration), compared exactly (a collation that ignores case would take 'DE' for 'de')."""
    from pyspark.sql import types as T

    kind = {f.name.lower(): f.dataType for f in spark.table(names["transactions"]).schema.fields}["operator_id"]
    if not isinstance(kind, T.StringType | T.VarcharType | T.CharType):
        raise SourceContractError(
            f"transactions.operator_id is {kind.simpleString()}, not a text type (sql/source_schema.sql: VARCHAR(64)); "
            "it holds the configuration's operator ids ([operators.ID], or 'default')"
        )
    if (collation := getattr(kind, "collation", "UTF8_BINARY")) != "UTF8_BINARY":
        raise SourceContractError(
            f"transactions.operator_id is compared by the collation {collation}, not exactly; the operator ids "
            "of the configuration are compared as they are written"
        )


def _pushdown(settings: RunSettings, spark: SparkSession, names: Mapping[str, str]) -> bool:
    """Whether Spark sums the transactions (``[source] aggregate = "source"``). The columns it
    sums or compares must have the contract's types: an amount as a decimal or a float, or an id
    in a collation that ignores case would be summed or compared otherwise than the extract reads
    them (the times are checked for every run, :func:`_check_time_types`)."""
    if settings.config.aggregate != "source":
        return False
    from pyspark.sql import types as T

    expected: Sequence[tuple[Mapping[str, tuple[str, ...]], tuple[type, ...], str]] = (
        (ex.PUSHDOWN_INTEGER_COLUMNS, (T.ByteType, T.ShortType, T.IntegerType, T.LongType), "an integer"),
        (ex.PUSHDOWN_TEXT_COLUMNS, (T.StringType, T.VarcharType, T.CharType), "a text"),
    )
    wrong: list[str] = []
    for table in ("transactions", "refunds", "property_listings"):
        types = {f.name.lower(): f.dataType for f in spark.table(names[table]).schema.fields}
        for kinds, classes, what in expected:
            for column in kinds.get(table, ()):
                kind = types[column]
                if not isinstance(kind, classes):
                    wrong.append(f"{table}.{column} is {kind.simpleString()}, not {what} type")
                elif (collation := getattr(kind, "collation", "UTF8_BINARY")) != "UTF8_BINARY":
                    wrong.append(f"{table}.{column} is compared by the collation {collation}, not exactly")
    if wrong:
        raise SourceContractError(
            "[source] aggregate = 'source' sums and compares the source's columns as they are, so they must "
            f"have the contract's types (sql/source_schema.sql): {'; '.join(wrong)}. Correct the types, or "
            "use aggregate = 'local', which reads and checks every value"
        )
    return True
