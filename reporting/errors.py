"""What stops a run, as one exception hierarchy.

Row-level problems are data (:class:`reporting.findings.Finding`); an exception is raised only
for what must stop a run. Messages name the table, the row key and the rule, never personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reporting.findings import Finding


class ReportingError(Exception):
    """Base of every error that stops a DAC7 run."""


class PermanentError(ReportingError):
    """An error that a retry cannot fix: the input or the configuration must change first."""


class ConfigError(PermanentError):
    """The configuration file is missing, malformed or incomplete."""


class SourceError(ReportingError):
    """The source database could not be read (a retry may help: a lost connection, a
    concurrent load that changed the counts)."""


class SourceContractError(SourceError, PermanentError):
    """The source database does not follow the source contract (a missing table or column)."""


class XmlValidationError(PermanentError):
    """A rendered file does not validate against its schema; nothing was published."""


class DataError(PermanentError):
    """The input data breaks one or more rules; every finding is listed."""

    def __init__(self, findings: Sequence[Finding], *, limit: int = 50, headline: str | None = None) -> None:
        self.findings = list(findings)
        lines = [f.describe() for f in self.findings[:limit]]
        more = len(self.findings) - limit
        if more > 0:
            lines.append(f"... and {more} more")
        head = headline or f"{len(self.findings)} data error(s)"
        super().__init__(f"{head}; nothing was published:\n  " + "\n  ".join(lines))


def hide_database_values(context: Any) -> None:
    """A SQLAlchemy ``handle_error`` listener (of the ledger's and the source's engines): a
    PostgreSQL error's message keeps the database's primary message only. ``hide_parameters``
    keeps the bound values out of SQLAlchemy's part of the message, but the server's own lines
    quote them: ``DETAIL: Key (tin)=(...) already exists``, ``Failing row contains (...)`` (every
    column of the row), and a data exception's primary message (SQLSTATE class 22, ``invalid
    input syntax for type date: "..."``). Those are dropped, from the driver's exception too (it
    is the cause printed with a traceback); the SQLSTATE and the constraint, table and column
    the server names are kept. MariaDB's and MySQL's values are withheld in their own words
    (:func:`_hide_mysql_values`). Other drivers' errors are left as they are."""
    orig = context.original_exception
    sqlstate = getattr(orig, "sqlstate", None)
    diag = getattr(orig, "diag", None)
    if not isinstance(sqlstate, str) or diag is None:
        _hide_mysql_values(context)
        return
    if sqlstate.startswith("22"):
        text = f"a value refused by the database (SQLSTATE {sqlstate}; its message is left out: it quotes the value)"
    else:
        text = diag.message_primary or f"SQLSTATE {sqlstate}"
    named = [
        f"{what} {name}"
        for what, name in (
            ("constraint", diag.constraint_name),
            ("table", diag.table_name),
            ("column", diag.column_name),
        )
        if name
    ]
    if named:
        text += f" ({', '.join(named)})"
    orig.args = (text,)
    exc = context.sqlalchemy_exception
    if exc is not None and exc.args:
        exc.args = (f"({type(orig).__module__}.{type(orig).__name__}) {text}", *exc.args[1:])


#: MariaDB's and MySQL's errors whose message quotes a value: a key's (1062 ``Duplicate entry
#: '...' for key 'PRIMARY'``, 1586), a value refused (1292 ``Incorrect date value: '...' for
#: column ...``, 1366, 1367, 1411, 1525), an expression (1690 ``... out of range in '...'``),
#: the bytes a conversion could not read (1300 ``Invalid utf8mb4 character string: '...'``, the
#: source's text from the first bad byte on)
_MYSQL_VALUE_ERRNOS = frozenset({1062, 1292, 1300, 1366, 1367, 1411, 1525, 1586, 1690})
#: the quoted value of such a message: from its first quote to the last quote before the words
#: that follow a value (a quote inside the value is not escaped), or to the end; what follows
#: (the key's, the column's or the function's name) stays
_MYSQL_VALUE = re.compile(r"'.*'(?= for (?:key|column|function)\b| value found during parsing)", re.S)
#: else from the first quote to the end (a value that ends the message, or words not foreseen)
_MYSQL_LAST_VALUE = re.compile(r"'.*", re.S)
#: a syntax error (1064) quotes the statement from where the parser stopped, with the values
#: that the driver (PyMySQL binds on the client) wrote into it
_MYSQL_SYNTAX = re.compile(r"near '.*", re.S)
_MYSQL_SYNTAX_ERRNO = 1064


def _hide_mysql_values(context: Any) -> None:
    """The values that a MariaDB or MySQL error (PyMySQL's or mysqlclient's: ``args`` are the
    error number and the message) quotes are withheld, in the driver's exception and in
    SQLAlchemy's: ``Duplicate entry (value withheld) for key 'PRIMARY'``. The error number and
    the names the server gives (a key, a column, a constraint) stay."""
    orig = context.original_exception
    if not type(orig).__module__.startswith(("pymysql", "MySQLdb")):
        return
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) < 2 or not isinstance(args[0], int) or not isinstance(args[1], str):
        return
    errno, message = args[0], args[1]
    if errno in _MYSQL_VALUE_ERRNOS:
        hidden, found = _MYSQL_VALUE.subn(_WITHHELD, message, count=1)
        if not found:
            hidden = _MYSQL_LAST_VALUE.sub(_WITHHELD, message, count=1)
    elif errno == _MYSQL_SYNTAX_ERRNO:
        hidden, found = _MYSQL_SYNTAX.subn(f"near {_WITHHELD}", message, count=1)
        if not found:  # the server's words in another language (lc_messages): ``bei '...'``
            hidden = _MYSQL_LAST_VALUE.sub(_WITHHELD, message, count=1)
    else:
        return
    orig.args = (errno, hidden, *args[2:])
    exc = context.sqlalchemy_exception
    if exc is not None and exc.args:
        exc.args = (f"({type(orig).__module__}.{type(orig).__name__}) {orig.args[:2]!r}", *exc.args[1:])


class QueryError(ReportingError):
    """A query of DuckDB (the staged data: the aggregation, the checks, the rules, the render) or
    of an ADBC driver (the columnar extract) failed. The message keeps the error's type and its
    first line, with the values it quotes left out (:func:`database_error_text`); a retry may
    help (a full disk, memory), so it is not a :class:`PermanentError`."""


#: The modules whose exceptions :func:`is_database_error` recognises: DuckDB's and the ADBC
#: driver manager's (every ADBC driver raises the manager's classes).
_DATABASE_MODULES = ("duckdb", "_duckdb", "adbc_driver_manager")
# a string literal, a quoted name or value: from its quote to the last quote of the line, or to
# the line's end when none closes it there (DuckDB quotes a value as it is: a quote inside it is
# not doubled, "'O'Brien'", and a line break in it cuts the first line inside the quotes); a
# parenthesised part; a number standing alone (not the 64 of INT64)
_SINGLE_QUOTED = re.compile(r"'.*'|'.*")
_DOUBLE_QUOTED = re.compile(r'".*"|".*')
_PARENTHESISED = re.compile(r"\([^()]*\)")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])")
_WITHHELD = "(value withheld)"


def _key_names(quoted: re.Match[str]) -> str:
    """A quoted key of a constraint error (``"tin: ..."``, ``"a: ..., b: ..."``): its column
    names, each value withheld; any other quoted part withheld whole."""
    names = _KEY_NAME.findall(quoted.group(0)[1:-1])
    return '"' + ", ".join(f"{n}: {_WITHHELD}" for n in names) + '"' if names else _WITHHELD


_KEY_NAME = re.compile(r"(?:^|, )([A-Za-z_][\w]*): ")


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an error of DuckDB or of an ADBC driver (asked of its class's module, so
    that neither needs to be imported)."""
    return any(
        (cls.__module__ or "").split(".")[0] in _DATABASE_MODULES for cls in type(exc).__mro__ if cls is not object
    )


def _is_data_error(exc: BaseException) -> bool:
    """A DB-API ``DataError`` or ``IntegrityError`` (DuckDB: a conversion, an overflow, a
    constraint), DuckDB's ``InvalidInputException`` (a value that does not parse), or an error
    whose SQLSTATE is of class 22 (data) or 23 (integrity): their messages quote the values."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"DataError", "IntegrityError", "InvalidInputException"}:
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in ("22", "23")


def database_error_text(exc: BaseException) -> str:
    """A DuckDB or ADBC error in one line without the values of the rows it may quote: its type
    (``duckdb.ConversionException``) and the first line of its message (the lines after it quote
    the query or the value), with every string literal left out, and for an error about data
    (:func:`_is_data_error`: ``Could not convert string '...' to INT64``, ``Duplicate key "tin:
    ..."``, ``Overflow in addition of INT64 (... + ...)``) every quoted, parenthesised or numeric
    part too. Table and column names that stand unquoted (``when casting from source column
    tin``, ``NOT NULL constraint failed: w.a``) stay."""
    lines = str(exc).strip().splitlines()
    text = _SINGLE_QUOTED.sub(_WITHHELD, lines[0] if lines else "")
    if _is_data_error(exc):
        text = _NUMBER.sub(_WITHHELD, _PARENTHESISED.sub(_WITHHELD, _DOUBLE_QUOTED.sub(_key_names, text)))
    module = type(exc).__module__.lstrip("_").split(".")[0]
    return f"{module}.{type(exc).__name__}: {text}"


@contextmanager
def database_errors(where: str) -> Iterator[None]:
    """Within it (or on a function it decorates), an error of DuckDB or of an ADBC driver becomes
    a :class:`QueryError` naming ``where`` (a stage, the due diligence) in the words of
    :func:`database_error_text`, without the original as its printed cause; any other error is
    raised as it is."""
    try:
        yield
    except Exception as exc:
        if not is_database_error(exc):
            raise
        raise QueryError(f"{where}: a query failed: {database_error_text(exc)}") from None
