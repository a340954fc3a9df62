"""The database side of the demo generator: the tables and columns it writes (the source
contract, ``sql/source_schema.sql``), the buffered bulk insert, and the schema it prepares.

The generator appends plain tuples to :class:`Sink`'s per-table buffers in :data:`COLUMNS` order;
:data:`POSITION` finds a column in such a tuple. Table and column names are contract constants,
values are always bound parameters.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reporting.errors import SourceError
from reporting.source import CONTRACT, check_contract, create_schema, safe_url

#: Insert order of the tables and their columns (the contract columns plus optional ones).
COLUMNS: dict[str, tuple[str, ...]] = {
    "fx_rates": CONTRACT["fx_rates"],
    "sellers": CONTRACT["sellers"] + ("language",),
    "seller_tins": CONTRACT["seller_tins"],
    "seller_financial_accounts": CONTRACT["seller_financial_accounts"],
    "seller_permanent_establishments": CONTRACT["seller_permanent_establishments"],
    "property_listings": CONTRACT["property_listings"] + ("other_property_type",),
    "transactions": CONTRACT["transactions"],
    "refunds": CONTRACT["refunds"],
}
#: Per table, the position of each column in a buffered row.
POSITION: dict[str, dict[str, int]] = {t: {c: i for i, c in enumerate(cols)} for t, cols in COLUMNS.items()}


class Sink:
    """Buffers rows per table and writes them with one ``executemany`` per flush."""

    def __init__(self, conn: Connection, columns: dict[str, tuple[str, ...]]) -> None:
        self.conn = conn
        self.columns = columns
        self.rows: dict[str, list[tuple]] = {t: [] for t in columns}
        self.counts: dict[str, int] = dict.fromkeys(columns, 0)
        self.pending = 0
        style = conn.dialect.paramstyle
        self._sql: dict[str, str | None] = {}
        for table, cols in columns.items():
            names = ", ".join(cols)
            if style == "qmark":
                marks = ", ".join("?" for _ in cols)
            elif style in ("format", "pyformat"):
                marks = ", ".join("%s" for _ in cols)
            elif style == "numeric":
                marks = ", ".join(f":{i}" for i in range(1, len(cols) + 1))
            elif style == "numeric_dollar":
                marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
            else:
                marks = None
            # Table and column names are contract constants; values are always bound.
            self._sql[table] = f"INSERT INTO {table} ({names}) VALUES ({marks})" if marks else None

    def flush(self) -> None:
        for table, rows in self.rows.items():
            if not rows:
                continue
            sql = self._sql[table]
            if sql is not None:
                self.conn.exec_driver_sql(sql, rows)
            else:  # a driver with named parameters: Core insert of plain dicts
                cols = self.columns[table]
                stmt = sa.insert(sa.table(table, *(sa.column(c) for c in cols)))
                self.conn.execute(stmt, [dict(zip(cols, r, strict=True)) for r in rows])
            self.counts[table] += len(rows)
            rows.clear()
        self.pending = 0


def prepare_schema(engine: Engine, replace: bool) -> bool:
    """Create (or re-create) the contract tables; True when other_property_type exists."""
    insp = sa.inspect(engine)
    present = [t for t in CONTRACT if insp.has_table(t)]
    where = safe_url(engine.url)
    if present:
        with engine.connect() as conn:
            filled = [
                t
                for t in present
                if conn.execute(sa.select(sa.literal_column("1")).select_from(sa.table(t)).limit(1)).first()
            ]
        if replace:
            quote = engine.dialect.identifier_preparer.quote
            with engine.begin() as conn:
                for t in reversed(present):
                    conn.exec_driver_sql(f"DROP TABLE {quote(t)}")
        elif filled:
            raise SourceError(
                f"the source database {where} already holds rows in {', '.join(filled)}; "
                "refusing to add demo data to it (use replace=True to drop and re-create the "
                "source tables)"
            )
        elif len(present) < len(CONTRACT):
            raise SourceError(
                f"the source database {where} has only some of the source tables "
                f"({', '.join(present)}); use replace=True to drop and re-create them"
            )
        else:  # all contract tables exist and are empty: fill them as they are
            columns = check_contract(engine)
            return "other_property_type" in columns["property_listings"]
    create_schema(engine)
    return True


def start_load(conn: Connection) -> None:
    """Session settings for a fast bulk load."""
    name = conn.dialect.name
    if name == "sqlite":
        # demo data: no rollback journal, no fsync (a crash leaves a file to regenerate)
        conn.exec_driver_sql("PRAGMA journal_mode=OFF")
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
        conn.exec_driver_sql("PRAGMA cache_size=-65536")
    elif name in ("mysql", "mariadb"):
        # TIMESTAMP columns are converted from the session time zone: load them as UTC
        conn.exec_driver_sql("SET time_zone = '+00:00'")
    elif name == "postgresql":
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
    conn.commit()
