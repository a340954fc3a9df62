"""The screen of a table's data checks: every expectation counted in one DuckDB query.

Great Expectations validates pandas frames: converting millions of staged rows to frames and
evaluating each expectation over them costs far more than the question asked (does any row fail?)
does where the rows already are. :func:`screen` asks DuckDB that question for every expectation
of a table in one aggregate query over the table as its checks see it (the suite's SQL), and
gives, per expectation, the figures Great Expectations reports for it: the rows it looks at
(``element_count``: those of its row condition), the rows it skips as missing (``missing_count``)
and whether any row fails (``unexpected``).

The screen decides nothing by itself. Where it finds a failing row, the table is validated by
Great Expectations as before (the findings are theirs); where it finds none, the table's
validation result is made from these figures (:mod:`reporting.checks.data`). It therefore answers
only where its answer is the one Great Expectations gives over pandas: the expectation types of
:data:`SCREENED`, over columns of the types listed for each, with row conditions of equality,
nullity, and inequality guarded by a not-null condition on the same column (pandas keeps a
missing category where SQL drops a null); any other expectation makes the whole table go to Great
Expectations unscreened (:func:`screen` returns None). A uniqueness count is positive exactly when
Great Expectations' is, but counts the rows beyond each value's first, not every row of a repeated
value; a pair of columns with only one value missing counts as failing: only zero is taken as an
answer, anything else sends the table to Great Expectations.

The query's SQL is made here from the suite's expectations: column names are checked plain
identifiers (quoted besides), and every value (a bound, a code list, a condition's parameter) is a
bound parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"})
_TIMESTAMP_TYPES = frozenset({"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"})
# Columns whose missing values pandas and SQL agree on (a float NaN is missing to pandas only)
_NULLABLE_TYPES = _INTEGER_TYPES | _TIMESTAMP_TYPES | {"VARCHAR", "BOOLEAN", "DATE", "UBIGINT", "HUGEINT"}

#: Expectation types the screen answers, with the column types it answers them for.
SCREENED: dict[str, frozenset[str]] = {
    "expect_column_values_to_not_be_null": _NULLABLE_TYPES,
    "expect_column_values_to_be_null": _NULLABLE_TYPES,
    "expect_column_values_to_be_in_set": frozenset({"VARCHAR", "BOOLEAN"}),
    "expect_column_values_to_be_between": _INTEGER_TYPES | _TIMESTAMP_TYPES,
    "expect_column_values_to_be_unique": _INTEGER_TYPES | {"VARCHAR"},
    "expect_column_values_to_be_in_type_list": _NULLABLE_TYPES,
    "expect_column_pair_values_a_to_be_greater_than_b": _INTEGER_TYPES,
    "expect_column_pair_values_to_be_equal": _INTEGER_TYPES | {"VARCHAR"},
}
# The kwargs each type may have; another one (``mostly``, ``parse_strings_as_datetimes``, ...)
# leaves the expectation to Great Expectations.
_KWARGS: dict[str, frozenset[str]] = {
    "expect_column_values_to_not_be_null": frozenset({"column", "row_condition"}),
    "expect_column_values_to_be_null": frozenset({"column", "row_condition"}),
    "expect_column_values_to_be_in_set": frozenset({"column", "row_condition", "value_set"}),
    "expect_column_values_to_be_between": frozenset(
        {"column", "row_condition", "min_value", "max_value", "strict_min", "strict_max"}
    ),
    "expect_column_values_to_be_unique": frozenset({"column", "row_condition"}),
    "expect_column_values_to_be_in_type_list": frozenset({"column", "type_list"}),
    "expect_column_pair_values_a_to_be_greater_than_b": frozenset(
        {"column_A", "column_B", "row_condition", "or_equal", "ignore_row_if"}
    ),
    "expect_column_pair_values_to_be_equal": frozenset({"column_A", "column_B", "row_condition", "ignore_row_if"}),
}
# The integer types the checks' frames give pandas (see ``data._frame``): int64, or Int64 with nulls
_FRAME_INTEGER_DTYPES = frozenset({"int64", "Int64Dtype"})


@dataclass(frozen=True, slots=True)
class Figures:
    """What the screen found for one expectation: the rows it looks at (``element_count``), the
    rows among them it skips as missing (``missing_count``), and a count that is zero exactly
    when no row fails (``unexpected``)."""

    element_count: int
    missing_count: int
    unexpected: int


class _Unscreened(Exception):
    """An expectation the screen does not answer."""


class _Query:
    """The select list of the screen's query and its bound parameters."""

    def __init__(self, types: dict[str, str]) -> None:
        self.types = types
        self.selects: list[str] = []
        self.params: dict[str, Any] = {}

    def column(self, name: Any, allowed: frozenset[str]) -> str:
        if not isinstance(name, str) or not _IDENTIFIER.match(name) or self.types.get(name) not in allowed:
            raise _Unscreened(name)
        return f'"{name}"'

    def value(self, value: Any) -> str:
        name = f"screen_{len(self.params)}"
        self.params[name] = value
        return f"${name}"

    def count(self, condition: str) -> None:
        self.selects.append(f"count(*) filter (where {condition})")

    def add(self, expression: str) -> None:
        self.selects.append(expression)


def _condition(q: _Query, node: Any, guarded: frozenset[str] = frozenset()) -> str:
    """A row condition of the suite (Great Expectations' condition objects in their dict form)
    as SQL, selecting the rows pandas' query selects."""
    if node is None:
        return "true"
    if not isinstance(node, dict):
        raise _Unscreened("a row condition as a string")
    kind = node.get("type")
    if kind in ("and", "or"):
        parts = node.get("conditions") or []
        # a column required not null by a sibling of an "and" makes its inequality safe
        not_null = frozenset(
            p["column"]["name"]
            for p in parts
            if kind == "and"
            and isinstance(p, dict)
            and p.get("type") == "nullity"
            and p.get("is_null") is False
            and isinstance(p.get("column"), dict)
        )
        joined = f" {kind} ".join(_condition(q, p, guarded | not_null) for p in parts)
        return f"({joined})" if parts else "true"
    column = node.get("column")
    name = column.get("name") if isinstance(column, dict) else None
    if kind == "nullity" and isinstance(node.get("is_null"), bool):
        return f"({q.column(name, _NULLABLE_TYPES)} is {'' if node['is_null'] else 'not '}null)"
    if kind == "comparison" and isinstance(node.get("parameter"), str):  # DuckDB would cast the text to a number
        operator = node.get("operator")
        if operator == "==" or (operator == "!=" and name in guarded):
            sql_operator = "=" if operator == "==" else "<>"
            return f"({q.column(name, frozenset({'VARCHAR'}))} {sql_operator} {q.value(node['parameter'])})"
    raise _Unscreened(f"row condition {kind}")


def _bound(q: _Query, value: Any, column_type: str) -> str:
    integer = column_type in _INTEGER_TYPES
    if integer and isinstance(value, int) and not isinstance(value, bool):
        return q.value(value)
    if not integer and isinstance(value, datetime) and value.tzinfo is None:
        return q.value(value)
    raise _Unscreened(f"bound {type(value).__name__} for {column_type}")


def _add(q: _Query, expectation: dict[str, Any], params: dict[str, Any]) -> None:
    """The three figures of one expectation, as three expressions of the select list."""
    kind = expectation["type"]
    kwargs = {k: _parameter(v, params) for k, v in expectation["kwargs"].items()}
    if kind not in SCREENED or not set(kwargs) <= _KWARGS[kind]:
        raise _Unscreened(kind)
    allowed = SCREENED[kind]
    where = _condition(q, kwargs.get("row_condition"))
    q.count(where)  # element_count: the rows of the row condition
    if kind.startswith("expect_column_pair_"):
        a, b = q.column(kwargs["column_A"], allowed), q.column(kwargs["column_B"], allowed)
        if q.types[kwargs["column_A"]] != q.types[kwargs["column_B"]]:
            raise _Unscreened("a pair of columns of different types")
        ignore = kwargs.get("ignore_row_if", "both_values_are_missing")
        if ignore == "either_value_is_missing":
            kept = f"{a} is not null and {b} is not null"
        elif ignore == "both_values_are_missing":
            kept = f"({a} is not null or {b} is not null)"
        else:
            raise _Unscreened(f"ignore_row_if {ignore}")
        q.count(f"{where} and not ({kept})")
        if kind == "expect_column_pair_values_to_be_equal":
            holds = f"{a} = {b}"
        else:
            or_equal = kwargs.get("or_equal", False)
            if not isinstance(or_equal, bool):
                raise _Unscreened("or_equal")
            holds = f"{a} {'>=' if or_equal else '>'} {b}"
        # a row with one value missing compares to null: counted as failing
        q.count(f"{where} and {kept} and not coalesce({holds}, false)")
        return
    x = q.column(kwargs["column"], allowed)
    column_type = q.types[kwargs["column"]]
    q.count(f"{where} and {x} is null")  # missing_count where Great Expectations reports one
    if kind == "expect_column_values_to_not_be_null":
        q.count(f"{where} and {x} is null")
    elif kind == "expect_column_values_to_be_null":
        q.count(f"{where} and {x} is not null")
    elif kind == "expect_column_values_to_be_in_set":
        values = kwargs.get("value_set")
        wanted = bool if column_type == "BOOLEAN" else str
        if not isinstance(values, list) or not values or not all(type(v) is wanted for v in values):
            raise _Unscreened("value_set")
        # a semi join on the set's values: ``list_contains`` walks the list for every row (a
        # quarter of a second per million rows against the 186 currencies); the values are
        # non-null and the column's nulls are left out, so ``not in`` is never null
        q.count(f"{where} and {x} is not null and {x} not in (select unnest({q.value(values)}))")
    elif kind == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        strict_min, strict_max = kwargs.get("strict_min", False), kwargs.get("strict_max", False)
        if (low is None and high is None) or not isinstance(strict_min, bool) or not isinstance(strict_max, bool):
            raise _Unscreened("between")
        outside = []
        if low is not None:
            outside.append(f"{x} {'<=' if strict_min else '<'} {_bound(q, low, column_type)}")
        if high is not None:
            outside.append(f"{x} {'>=' if strict_max else '>'} {_bound(q, high, column_type)}")
        q.count(f"{where} and {x} is not null and ({' or '.join(outside)})")
    elif kind == "expect_column_values_to_be_unique":
        q.add(f"count({x}) filter (where {where}) - count(distinct {x}) filter (where {where})")
    else:  # the column's type: an integer column is int64 or Int64 in the frames
        type_list = kwargs.get("type_list")
        fits = column_type in _INTEGER_TYPES and isinstance(type_list, list) and set(type_list) >= _FRAME_INTEGER_DTYPES
        q.add("0" if fits else "1")


def _parameter(value: Any, params: dict[str, Any]) -> Any:
    """A kwarg with its ``$PARAMETER`` reference filled in."""
    if isinstance(value, dict) and set(value) == {"$PARAMETER"}:
        name = value["$PARAMETER"]
        if name not in params:
            raise _Unscreened(f"parameter {name}")
        return params[name]
    return value


def screen(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    sql_params: dict[str, Any],
    expectations: tuple[dict[str, Any], ...],
    params: dict[str, Any],
) -> tuple[int, list[Figures]] | None:
    """The rows of ``sql`` (the table as its checks see it) and every expectation's figures over
    them, in the expectations' order, from one query; None where the screen does not answer one
    of them (the table goes to Great Expectations)."""
    relation = con.sql(sql, params=sql_params)  # not run: its columns and their types
    q = _Query({name: str(typ) for name, typ in zip(relation.columns, relation.types, strict=True)})
    try:
        for e in expectations:
            _add(q, e, params)
    except _Unscreened:
        return None
    if set(q.params) & set(sql_params):
        raise ValueError(f"the table's SQL uses a parameter of the screen: {sorted(set(q.params) & set(sql_params))}")
    # Names and identifiers were checked above; every value is a bound parameter.
    (row,) = con.execute(
        f"select count(*), {', '.join(q.selects)} from ({sql}) as screened", {**sql_params, **q.params}
    ).fetchall()  # fetched to the end: the connection is free for the next query
    return int(row[0]), [Figures(int(row[i]), int(row[i + 1]), int(row[i + 2])) for i in range(1, len(row), 3)]
