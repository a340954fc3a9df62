"""CSV for people: no cell is ever read as a formula.

A spreadsheet opening a CSV treats a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in
some, a tab or a carriage return) as a formula: a seller id such as ``=1+cmd|' /C calc'!A0``
taken from the source would run on the compliance officer's machine. Every text cell of every
CSV the project writes for people (``reports/*.csv``, the watch list; the view serves these
files as they are) is written with a leading apostrophe when it starts with one of these
characters, as OWASP recommends; the apostrophe shows in a text editor, and a spreadsheet shows
the text. Numbers are written as numbers. The Parquet files beside the CSVs keep every value as
the source had it.
"""

from __future__ import annotations

from typing import Any

import duckdb

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """A text that cannot start a formula; any other value unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def row(values: dict[str, Any]) -> dict[str, Any]:
    return {k: cell(v) for k, v in values.items()}


def select(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``sql`` wrapped so that each of its text columns is neutralised as :func:`cell` does."""
    relation = con.sql(sql)
    columns = []
    for name, kind in zip(relation.columns, relation.dtypes, strict=True):
        quoted = '"' + name.replace('"', '""') + '"'
        if str(kind) == "VARCHAR":
            columns.append(
                f"case when regexp_matches({quoted}, '^[=+\\-@\\t\\r]') then '''' || {quoted} else {quoted} end "
                f"as {quoted}"
            )
        else:
            columns.append(quoted)
    return f"select {', '.join(columns)} from ({sql})"
