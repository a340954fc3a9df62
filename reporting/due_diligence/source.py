"""What the due-diligence run reads of the source and of the ledger: streams of Arrow batches,
for DuckDB to consume one batch at a time (memory flat in the number of sellers).

Through ADBC (the ``fast`` extra) where it reads the database (SQLite, PostgreSQL), else through
SQLAlchemy's DB-API in batches. Every column of the identity tables is read as text, ``''`` for
NULL (one reading for every driver: ADBC infers a column's type from its first rows), and
cleaned and typed in DuckDB. The period's activity is the filing's own aggregation
(:func:`reporting.pushdown.source_totals_sql`), run by the source's engine: only sums travel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from reporting.period import Period
from reporting.pushdown import ENGINE_DIALECTS, OperatorFilter, source_totals_sql
from reporting.source import CONTRACT, DUE_DILIGENCE_COLUMNS, check_contract, make_engine
from reporting.stages.extract import Columnar, columnar_connection, read_period_rows

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000

#: The columns of each identity table the run reads (the sellers' optional ones where present).
SELLER_COLUMNS = (*CONTRACT["sellers"], *DUE_DILIGENCE_COLUMNS["sellers"])
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "sellers": SELLER_COLUMNS,
    "seller_tins": ("seller_id", "tin", "issued_by"),
    "seller_permanent_establishments": ("seller_id", "country"),
    "property_listings": (
        "listing_id",
        "seller_id",
        "address_street",
        "address_building",
        "address_post_code",
        "address_city",
        "address_country",
        "land_registration_number",
        "owner_id",  # optional: DAC7 merges one owner's units at an address into one listing
    ),
    "fx_rates": ("currency", "rate_date", "units_per_eur"),
}
TOTALS_SCHEMA = pa.schema(
    [
        ("seller_id", pa.string()),
        ("activity", pa.string()),
        ("listing_id", pa.string()),
        ("currency", pa.string()),
        ("activities", pa.int64()),
        ("amount_minor", pa.int64()),
    ]
)


def text_schema(columns: tuple[str, ...]) -> pa.Schema:
    return pa.schema([(c, pa.string()) for c in columns])


def _as_text(dialect: str, column: str) -> str:
    kind = "char" if dialect in ("mysql", "mariadb") else "text"
    return f"coalesce(cast({column} as {kind}), '')"


def table_sql(dialect: str, table: str, present: set[str]) -> str:
    """Every row of ``table`` with the run's columns as text ('' for NULL, and for an optional
    column the source does not have)."""
    cols = ", ".join(f"{_as_text(dialect, c)} as {c}" if c in present else f"'' as {c}" for c in TABLE_COLUMNS[table])
    return f"select {cols} from {table}"


def totals_sql(dialect: str, period: Period, operator: OperatorFilter) -> str:
    """The operator's sums per seller, activity, listing and currency of the period's payments up
    to the end of the as-of day, refunds applied (the filing's aggregation, quarters summed)."""
    inner = source_totals_sql(period, payment_date_rates=False, dialect=ENGINE_DIALECTS[dialect], operator=operator)
    integer = "signed" if dialect in ("mysql", "mariadb") else "bigint"
    listing = _as_text(dialect, "listing_id")
    return (
        f"select {_as_text(dialect, 'seller_id')} as seller_id, {_as_text(dialect, 'activity')} as activity, "
        f"{listing} as listing_id, {_as_text(dialect, 'currency')} as currency, "
        f"cast(sum(activities) as {integer}) as activities, cast(sum(amount_minor) as {integer}) as amount_minor "
        f"from ({inner}) as totals "
        f"group by seller_id, activity, {listing}, currency"
    )


class SourceReader:
    """One source database, read by ADBC where it can be, else by SQLAlchemy."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self.columnar: Columnar | None = (
            columnar_connection(make_url(url)) if self.dialect in ("sqlite", "postgresql") else None
        )
        self._columns: dict[str, set[str]] | None = None

    def close(self) -> None:
        if self.columnar is not None:
            self.columnar.close()
        self.engine.dispose()

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def columns(self) -> dict[str, set[str]]:
        """The columns of each contract table (the contract checked: a missing one stops the run)."""
        if self._columns is None:
            self._columns = check_contract(self.engine)
        return self._columns

    def has_operator_column(self) -> bool:
        return "operator_id" in self.columns()["transactions"]

    @contextmanager
    def table(self, table: str) -> Iterator[pa.RecordBatchReader]:
        present = self.columns()[table]
        with self.read(table_sql(self.dialect, table, present), text_schema(TABLE_COLUMNS[table])) as reader:
            yield reader

    @contextmanager
    def totals(self, period: Period, operator: OperatorFilter) -> Iterator[pa.RecordBatchReader]:
        with self.read(totals_sql(self.dialect, period, operator), TOTALS_SCHEMA) as reader:
            yield reader

    def period_rows(self, period: Period, scope: OperatorFilter, folder: Path) -> dict[str, int]:
        """The period's transactions (of ``scope``'s operator) and their refunds, read as the
        extract reads them, into ``folder`` (``[source] aggregate = "local"``: summed here)."""
        with self.engine.connect() as conn:
            return read_period_rows(conn, self.columnar, period, self.columns(), scope, folder)

    @contextmanager
    def read(self, sql: str, schema: pa.Schema) -> Iterator[pa.RecordBatchReader]:
        """The rows of ``sql`` (no parameters) as a stream of batches with the columns of
        ``schema``: ADBC's own stream (the query gives each column one type: text, or the
        integers of the sums), else batches made from the DB-API's rows."""
        if self.columnar is not None:
            cur = self.columnar.conn.cursor()
            try:
                cur.execute(sql)
                yield cur.fetch_record_batch()
            finally:
                cur.close()
            return
        with self.engine.connect() as conn:
            text = sql.replace("%", "%%") if conn.dialect.paramstyle in ("format", "pyformat") else sql
            result = conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).exec_driver_sql(text)
            yield pa.RecordBatchReader.from_batches(schema, _batches(result, schema))


def _value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8")
    if isinstance(value, Decimal):
        return int(value)
    return value


def _batches(result: sa.CursorResult[Any], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for part in result.partitions(BATCH_ROWS):
        columns = list(zip(*part, strict=True)) if part else [() for _ in schema]
        yield pa.RecordBatch.from_arrays(
            [pa.array([_value(v) for v in c], f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
        )
