"""Apache Spark (local mode) as an engine of the pushed-down aggregation.

The source's transactions and refunds, as Parquet files or as tables of a Spark catalog, are
aggregated by Spark with the query every engine runs (:func:`reporting.pushdown.source_totals_sql`
in Spark's dialect): only the aggregates come back, as an Arrow table of
:data:`reporting.pushdown.SOURCE_TOTALS_SCHEMA`.

The session, the registration of the tables and the conversion to Arrow serve a run's extract from
a Spark source too (``[source.spark]``, :mod:`reporting.stages.extract_spark`).

pyspark is the optional extra ``spark`` (``pip install 'dac7-reporting[spark]'``) and needs Java
17; it is imported only inside the functions here, so this module imports without it.

Times: Parquet written by pyarrow from naive datetimes holds UTC times without a zone, which Spark
reads as ``TIMESTAMP_NTZ``; a zoned column (``TIMESTAMP``) is compared with the query's UTC bounds
and turned into dates in the session's time zone. The query runs with that zone set to UTC, so
both kinds give the same aggregates.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from reporting.errors import ConfigError, SourceContractError
from reporting.period import Period
from reporting.pushdown import Flags, OperatorFilter, source_totals_sql, totals_from_arrow, totals_table
from reporting.source import CONTRACT

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: the contract's tables that the aggregation reads
AGGREGATION_TABLES = ("transactions", "refunds")

#: shuffle partitions of a local session (Spark's default is 200): on two cores, 3,000 to 440,000
#: transactions aggregate as fast with 8 as with 4, 16 or 200 (adaptive execution merges small
#: partitions), and 1 or 2 are slower
SHUFFLE_PARTITIONS = 8

#: the driver's memory (in local mode the whole of Spark): its joins and sums of a year's
#: transactions spill to disk beyond it
DRIVER_MEMORY = "1g"

_LOG4J = Path(__file__).with_name("spark_log4j2.properties")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


class SparkUnavailableError(ConfigError):
    """pyspark (the ``spark`` extra) or Java is missing: Spark cannot start."""


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError:
        raise SparkUnavailableError(
            "Apache Spark needs the optional extra 'spark' (pyspark): pip install 'dac7-reporting[spark]'"
        ) from None
    return pyspark.sql


def active_session() -> SparkSession | None:
    """The Spark session this thread has already (a notebook's, a test's), or None."""
    return _pyspark().SparkSession.getActiveSession()


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def spark_session(
    master: str = "local[2]",
    *,
    warehouse_dir: str | os.PathLike[str] | None = None,
    shuffle_partitions: int = SHUFFLE_PARTITIONS,
    driver_memory: str = DRIVER_MEMORY,
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A Spark session in local mode (``master``), reused if this process has one already.

    Session time zone UTC; no web UI; the driver bound to 127.0.0.1 (no look-up of the host's
    name); the catalog in memory (no Hive metastore, no Derby files), its tables' files under
    ``warehouse_dir``; errors alone logged. Nothing is downloaded (no ``spark.jars.packages``):
    the jars are pyspark's own. ``conf``: settings of the operator's own (``[source.spark.conf]``:
    a Hive metastore, Delta's catalog, more memory), applied last, so they win over these. Stop
    it with ``spark.stop()``; a session that is reused keeps the settings it started with, apart
    from the time zone and the shuffle partitions."""
    sql = _pyspark()
    if _java() is None:
        raise SparkUnavailableError(
            "Apache Spark needs Java 17: no java on the PATH and no JAVA_HOME "
            "(on Debian: apt-get install openjdk-17-jre-headless)"
        )
    builder = (
        sql.SparkSession.builder.master(master)
        .appName("dac7-reporting")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.driver.extraJavaOptions", f'"-Dlog4j2.configurationFile={_LOG4J.as_uri()}"')
    )
    if warehouse_dir is not None:
        builder = builder.config("spark.sql.warehouse.dir", Path(warehouse_dir).resolve().as_uri())
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    with _local_ip():
        try:
            return builder.getOrCreate()
        except Exception as exc:
            condition = getattr(exc, "getCondition", lambda: None)()
            if condition == "JAVA_GATEWAY_EXITED":
                raise SparkUnavailableError(
                    f"Apache Spark did not start: its Java process ended ({_java()}; Spark 4.3 needs Java 17 or 21)"
                ) from exc
            raise


@contextmanager
def _local_ip() -> Iterator[None]:
    """SPARK_LOCAL_IP for the Java process that pyspark starts: without it, Spark looks up the
    host's name to find its address."""
    before = os.environ.get("SPARK_LOCAL_IP")
    if before is None:
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SPARK_LOCAL_IP", None)


def register_tables(
    spark: SparkSession,
    *,
    tables_dir: str | os.PathLike[str] | None = None,
    database: str | None = None,
    tables: Sequence[str] = AGGREGATION_TABLES,
) -> dict[str, str]:
    """The contract's ``tables`` (those the aggregation reads by default) made ready to query,
    checked against the contract (:data:`reporting.source.CONTRACT`); returns the name to query
    per table.

    Either Parquet under ``tables_dir``: ``<tables_dir>/<table>`` (a directory of Parquet files)
    or ``<tables_dir>/<table>.parquet``, each registered as the temporary view ``<table>``; or
    the tables of the catalog's ``database`` (``<database>.<table>``). A missing table or column
    is a :class:`SourceContractError` naming them all."""
    if (tables_dir is None) == (database is None):
        raise ValueError("register_tables: give either tables_dir or database")
    unknown = [t for t in tables if t not in CONTRACT]
    if unknown:
        raise ValueError(f"not tables of the source contract: {', '.join(unknown)}")
    if database is not None and not _NAME.fullmatch(database):
        raise ConfigError(f"not a Spark database name: {database!r}")
    names: dict[str, str] = {}
    frames: dict[str, DataFrame] = {}
    missing: list[str] = []
    for table in tables:
        if tables_dir is not None:
            frame = _parquet(spark, str(tables_dir), table)
            if frame is None:
                missing.append(f"table {table} (neither {table}/ nor {table}.parquet in {tables_dir})")
                continue
            frames[table] = frame
            names[table] = table
        else:
            assert database is not None
            if not spark.catalog.tableExists(f"{database}.{table}"):
                missing.append(f"table {database}.{table}")
                continue
            names[table] = f"{database}.{table}"
            frames[table] = spark.table(names[table])
    for table, frame in frames.items():
        have = {c.lower() for c in frame.columns}
        missing.extend(f"column {table}.{c}" for c in CONTRACT[table] if c not in have)
    if missing:
        where = f"the Parquet tables in {tables_dir}" if tables_dir is not None else f"the Spark database {database}"
        raise SourceContractError(f"{where} do not follow the source contract: missing {', '.join(missing)}")
    if tables_dir is not None:
        for table, frame in frames.items():
            frame.createOrReplaceTempView(table)
    return names


def _parquet(spark: SparkSession, tables_dir: str, table: str) -> DataFrame | None:
    """The table's Parquet files, ``<table>/`` or ``<table>.parquet``, or None if neither is
    there. Any file system Spark reads (a local directory, ``s3a://``, ``hdfs://``)."""
    from pyspark.errors import AnalysisException

    base = tables_dir.rstrip("/")
    for path in (f"{base}/{table}", f"{base}/{table}.parquet"):
        try:
            frame = spark.read.parquet(path)
        except AnalysisException as exc:
            if exc.getCondition() != "PATH_NOT_FOUND":
                raise SourceContractError(
                    f"table {table}: {path} cannot be read as Parquet ({exc.getCondition()})"
                ) from None
            continue
        if _exists(spark, f"{path}/_delta_log"):
            raise SourceContractError(
                f"table {table}: {path} is a Delta table, whose folder also holds the files of its older "
                "versions, which a read as Parquet would take too; register it in a database of a Spark that "
                "has Delta configured and name that database in [source.spark] database"
            )
        return frame
    return None


def _exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` exists, on any file system Spark reads (Spark lists it to say)."""
    from pyspark.errors import AnalysisException

    try:
        spark.read.format("binaryFile").load(path)
    except AnalysisException as exc:
        if exc.getCondition() == "PATH_NOT_FOUND":
            return False
        raise
    return True


def to_arrow(frame: DataFrame) -> pa.Table:
    """The frame's rows as Arrow, computed by Spark and sent to this process as Arrow batches
    (``DataFrame.toArrow``): no Python object per value, but every row in the driver and here at
    once, so for small results only (sums, counts); a run's extract streams its tables through
    Parquet files instead (:func:`reporting.stages.extract_spark._to_parquet`). pyspark's warning that it does not
    fully support pandas 3 is left out: pandas has no part in this."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        return frame.toArrow()


def read_spark_totals(
    spark: SparkSession,
    period: Period,
    *,
    payment_date_rates: bool,
    transactions: str = "transactions",
    refunds: str = "refunds",
    flags: Flags | None = None,
    property_listings: str = "property_listings",
    operator: OperatorFilter | None = None,
) -> pa.Table:
    """The aggregates of the period computed by Spark over the tables ``transactions`` and
    ``refunds`` (names from :func:`register_tables`; with ``flags``, without the rows the checks
    must see, found with ``property_listings`` too), as an Arrow table of
    :data:`reporting.pushdown.SOURCE_TOTALS_SCHEMA`. The query runs with the session's time zone
    set to UTC (and set back afterwards). ``operator``: the transactions of one operator of a group."""
    sql = source_totals_sql(
        period,
        payment_date_rates=payment_date_rates,
        dialect="spark",
        transactions=transactions,
        refunds=refunds,
        flags=flags,
        listings=property_listings,
        operator=operator,
    )
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        frame = spark.sql(sql)
        if hasattr(frame, "toArrow"):  # pyspark 4
            return totals_from_arrow(to_arrow(frame))
        return totals_table(frame.collect())
    finally:
        if zone is not None and zone != "UTC":
            spark.conf.set("spark.sql.session.timeZone", zone)
