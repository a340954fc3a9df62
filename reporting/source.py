"""The source contract: connecting to the marketplace database and creating its tables.

The contract (table and column names) is documented in the README and shipped as
``sql/source_schema.sql``. Any SQLAlchemy URL works; SQLite is the embedded default.
"""

from __future__ import annotations

import os
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from reporting.errors import ConfigError, SourceContractError, hide_database_values

#: Tables and the columns every reader may rely on (optional later additions are not listed).
CONTRACT: dict[str, tuple[str, ...]] = {
    "sellers": (
        "seller_id",
        "seller_type",
        "first_name",
        "last_name",
        "legal_name",
        "birth_date",
        "birth_city",
        "birth_country",
        "residence_country",
        "address_street",
        "address_building",
        "address_post_code",
        "address_city",
        "address_country",
        "vat_id",
        "business_registration_number",
        "is_governmental",
        "is_listed",
    ),
    "seller_tins": ("seller_id", "tin", "issued_by"),
    "seller_financial_accounts": ("seller_id", "identifier", "account_holder_name"),
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
        "property_type",
    ),
    "transactions": (
        "transaction_id",
        "seller_id",
        "activity",
        "listing_id",
        "paid_at",
        "currency",
        "amount_minor",
        "fee_minor",
        "tax_minor",
        "rented_days",
    ),
    "refunds": ("refund_id", "transaction_id", "refunded_at", "amount_minor", "fee_minor", "tax_minor"),
    "fx_rates": ("currency", "rate_date", "units_per_eur"),
}

#: Optional columns added after the first contract; readers use them when present.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    # the language of the seller's statement, an IETF BCP 47 tag (reporting.statements.locale);
    # the jurisdiction of the government verification service the operator relied on, which sets
    # the seller's residence under the OECD Model Rules (reporting.jurisdictions, IEIM902520)
    "sellers": ("language", "gvs_jurisdiction"),
    # the text of DPI910; the owner of the property, whose units at one address DAC7 merges into
    # one Property Listing (the Model Rules merge them whoever owns them, IEIM904230)
    "property_listings": ("other_property_type", "owner_id"),
    "seller_permanent_establishments": ("address_street", "address_building", "address_post_code", "address_city"),
    # the operator of a group whose platform the transaction was made on ([operators.ID]); read
    # in the queries' conditions (reporting.pushdown.OperatorFilter), never staged
    "transactions": ("operator_id",),
}

#: Optional columns that only the due-diligence run reads (:mod:`reporting.due_diligence`); the
#: filing neither stages nor needs them, and a source without them is read as before:
#:
#: - ``registered_at``: the day the seller registered on the platform, which tells a pre-existing
#:   seller (PStTG § 4(3): registered on the day the operator became a reporting operator, by
#:   default 1 January 2023), whose due diligence may run to 31 December of the second period;
#: - ``tin_not_issued``: the seller's state of residence issues it no TIN, or does not require one
#:   to be collected (PStTG § 17(4)): the TIN is then not requested (an individual gives the
#:   place of birth instead);
#: - ``business_registration_not_issued``: the entity's state of residence issues no business
#:   registration number (PStTG § 17(4) Nr. 1): it is then not requested.
DUE_DILIGENCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "sellers": ("registered_at", "tin_not_issued", "business_registration_not_issued"),
}


def sql_text(name: str, *, operator: tuple[str, str] | None = None, dialect: str = "") -> str:
    """The text of a SQL file shipped in ``sql/``, without its comments (which may name
    parameters that the driver must not see).

    ``operator``: the SQL that selects the run's operator's transactions in a group
    (:class:`reporting.pushdown.OperatorFilter`), over ``operator_id`` and over ``t.operator_id``,
    written where the file says ``{operator}`` and ``{operator_t}``; without it, every transaction
    (``1 = 1``: a single operator's source). ``dialect`` (SQLAlchemy's name of the source's):
    where the file says ``{same_transaction_id}``, :func:`same_transaction_id`."""
    text = re.sub(r"--[^\n]*", "", files("reporting.sql").joinpath(name).read_text(encoding="utf-8"))
    mine, mine_t = operator or ("1 = 1", "1 = 1")
    text = text.replace("{operator}", mine).replace("{operator_t}", mine_t)
    return text.replace("{same_transaction_id}", same_transaction_id(dialect))


def same_transaction_id(dialect: str) -> str:
    """SQL: the refund ``r`` names the transaction ``t`` exactly, byte for byte, next to the plain
    ``t.transaction_id = r.transaction_id`` (which keeps the transactions' index in use). On
    MariaDB/MySQL the usual collations (``utf8mb4_general_ci``, ``latin1_swedish_ci``) take 't1'
    for 'T1' and 'T1 ' for 'T1', so both ids are compared as binary strings in UTF-8, as
    :mod:`reporting.pushdown` compares keys; PostgreSQL, SQLite, DuckDB and Spark compare texts
    exactly already (``1 = 1``)."""
    if dialect in ("mysql", "mariadb"):
        return " = ".join(f"cast(cast({c}.transaction_id as char character set utf8mb4) as binary)" for c in ("t", "r"))
    return "1 = 1"


#: ``DAC7_PG_WORK_MEM``: the memory a PostgreSQL session of the extract gives each sort or hash
#: (``work_mem``; default 256MB, empty: the server's own). The server's usual 4MB makes a
#: grouping of the period's transactions (the active sellers of each identity table, the sums in
#: the source) spill in many passes where no parallel worker helps, as in a ``COPY``: 5 minutes
#: instead of 10 s for the sellers of 20 million transactions.
PG_WORK_MEM_ENV = "DAC7_PG_WORK_MEM"
PG_WORK_MEM = "256MB"


def pg_session_settings() -> list[str]:
    """The statements that set up a PostgreSQL session of the extract: UTC, and ``work_mem``."""
    statements = ["SET TIME ZONE 'UTC'"]
    work_mem = os.environ.get(PG_WORK_MEM_ENV, PG_WORK_MEM).strip()
    if work_mem:
        if not re.fullmatch(r"\d+\s*(kB|MB|GB)", work_mem):
            raise ConfigError(f"{PG_WORK_MEM_ENV}={work_mem!r}: expected a size such as 256MB")
        statements.append(f"SET work_mem = '{work_mem}'")
    return statements


def make_engine(url: str | URL) -> Engine:
    """An engine for a source URL; PostgreSQL and MariaDB/MySQL sessions are set to UTC, and a
    PostgreSQL session's ``work_mem`` to :data:`PG_WORK_MEM`."""
    u = make_url(url) if isinstance(url, str) else url
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(u, hide_parameters=True)  # a statement's values (personal data) stay out of errors
    sa.event.listen(engine, "handle_error", hide_database_values)  # and PostgreSQL's lines quoting them
    session = {
        "mysql": ["SET time_zone = '+00:00'"],
        "mariadb": ["SET time_zone = '+00:00'"],
        "postgresql": pg_session_settings() if engine.dialect.name == "postgresql" else [],
    }.get(engine.dialect.name)
    if session:
        # A zoned column (timestamptz, MySQL TIMESTAMP) is read in the session's zone and
        # compared with the naive UTC period bounds in it: the session must be UTC.

        @sa.event.listens_for(engine, "connect")
        def _utc_session(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                for statement in session:
                    cursor.execute(statement)
            finally:
                cursor.close()
            if engine.dialect.name == "postgresql":
                dbapi_connection.commit()

    return engine


#: Query parameters that carry a secret (libpq's ``sslpassword``, a driver's ``password=``, a
#: token): an Airflow Connection's extras become query parameters, so a secret may hide there.
_SECRET_PARAMETER = re.compile(
    r"pass|pwd|secret|token|credential|signature|api_?key|access_?key|private_?key", re.IGNORECASE
)
#: parameters whose name says secret but whose value is a file's path (libpq's password file)
_NOT_SECRET = frozenset({"passfile"})
MASK = "***"


def _url(url: str | URL) -> URL:
    return make_url(url) if isinstance(url, str) else url


def is_secret_parameter(name: str) -> bool:
    return name.lower() not in _NOT_SECRET and bool(_SECRET_PARAMETER.search(name))


class UrlError(ValueError):
    """A database URL that cannot be parsed; the message never quotes it."""


def secret_parameters(url: str | URL) -> list[str]:
    """The names of the URL's query parameters that carry a secret."""
    return sorted(k for k in _url(url).query if is_secret_parameter(k))


def has_secret(url: str | URL) -> bool:
    """Whether the URL carries a password, in its user part or in a query parameter. A URL that
    cannot be parsed is :class:`UrlError` (it may hold one: it is never quoted)."""
    try:
        u = _url(url)
    except Exception:
        raise UrlError("not a usable database URL (it could not be parsed)") from None
    # an unencoded "@" in the password leaves part of it in the host
    return u.password is not None or "@" in (u.host or "") or bool(secret_parameters(u))


def safe_url(url: str | URL) -> str:
    """The URL with every secret masked (the password, and query parameters such as
    ``sslpassword``), for logs, errors, run records and pages. Never raises: a text that is not
    a URL is not echoed."""
    try:
        u = _url(url)
    except Exception:  # whatever SQLAlchemy says: the text may hold a secret
        return "(not a database URL)"
    if "@" in (u.host or ""):  # an unencoded "@" in the password: part of it would show as the host
        return f"{u.drivername}://***@{(u.host or '').rpartition('@')[2]}" + (f"/{u.database}" if u.database else "")
    hidden = secret_parameters(u)
    if hidden:
        u = u.update_query_dict({k: MASK for k in hidden})
    return u.render_as_string(hide_password=True).replace("%2A%2A%2A", MASK)


def ddl_statements(sql: str) -> list[str]:
    """Split a DDL file into statements, without comments."""
    return [s.strip() for s in re.sub(r"--[^\n]*", "", sql).split(";") if s.strip()]


def create_schema(engine: Engine) -> None:
    """Create the source tables (``sql/source_schema.sql``) in an empty database."""
    sql = sql_text("source_schema.sql")
    if engine.dialect.name == "sqlite":
        # SQLite has no exact decimal type: keep rates as text, exactly as published.
        sql = sql.replace("DECIMAL(20, 8)", "TEXT")
    elif engine.dialect.name in ("mysql", "mariadb"):
        # MySQL TIMESTAMP is zone-converted and ends in 2038; DATETIME keeps UTC as written.
        sql = sql.replace("TIMESTAMP", "DATETIME")
    with engine.begin() as conn:
        for stmt in ddl_statements(sql):
            conn.exec_driver_sql(stmt)


def check_contract(engine: Engine) -> dict[str, set[str]]:
    """Fail with a clear message when a contract table or column is missing.

    Returns the columns present per table, so readers can use optional columns.
    """
    insp = sa.inspect(engine)
    present_tables = set(insp.get_table_names())
    missing: list[str] = []
    columns: dict[str, set[str]] = {}
    for table, cols in CONTRACT.items():
        if table not in present_tables:
            missing.append(f"table {table}")
            continue
        have = {c["name"].lower() for c in insp.get_columns(table)}
        columns[table] = have
        missing.extend(f"column {table}.{c}" for c in cols if c not in have)
    if missing:
        raise SourceContractError(
            f"the source database {safe_url(engine.url)} does not follow the source contract: "
            f"missing {', '.join(missing)} (see sql/source_schema.sql)"
        )
    return columns
