"""What stops a run, as one exception hierarchy.

Row-level problems are data (:class:`reporting.findings.Finding`); an exception is raised only
for what must stop a run. Messages name the table, the row key and the rule, never personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    the server names are kept. Other drivers' errors are left as they are."""
    orig = context.original_exception
    sqlstate = getattr(orig, "sqlstate", None)
    diag = getattr(orig, "diag", None)
    if not isinstance(sqlstate, str) or diag is None:
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
