"""The columnar extract's storage-class flags (``extract.not_text_sql``, ``real_or_blob_sql``):
comparisons that say what ``typeof()`` with an IN list said, for a value of every storage class
in a column of every declared affinity and built-in collation, NULL included."""

from __future__ import annotations

import sqlite3

import pytest

from reporting.stages.extract import not_text_sql, real_or_blob_sql

DECLARED = ("TEXT", "INTEGER", "NUMERIC", "REAL", "BLOB", "", "TIMESTAMP", "TEXT COLLATE NOCASE", "TEXT COLLATE RTRIM")
VALUES = (
    None,
    "",
    " ",
    "   ",
    "0",
    "2025-01-15 10:00:00",
    "ab",
    "\x00",
    "\U0010ffff",
    b"",
    b"\x00",
    b"\xff\xff",
    b"abc",
    0,
    -1,
    2**63 - 1,
    -(2**63),
    0.0,
    -0.0,
    1.5,
    -2.5,
    1e308,
    float("inf"),
    float("-inf"),
)


@pytest.mark.parametrize("declared", DECLARED)
def test_the_comparisons_say_what_typeof_said(declared: str) -> None:
    con = sqlite3.connect(":memory:")
    try:
        con.execute(f"create table t (v {declared})")
        con.executemany("insert into t (v) values (?)", [(v,) for v in VALUES])
        rows = con.execute(
            "select typeof(q.v), typeof(q.v) in ('real', 'blob', 'integer'), coalesce("
            + not_text_sql("q.v")
            + ", 0), typeof(q.v) in ('real', 'blob'), coalesce("
            + real_or_blob_sql("q.v")
            + ", 0) from (select v from t) as q"
        ).fetchall()
    finally:
        con.close()
    assert {r[0] for r in rows} >= ({"null", "text", "blob"} if declared else {"null", "text", "blob", "real"})
    for kind, not_text, new_not_text, real_or_blob, new_real_or_blob in rows:
        assert (kind, new_not_text) == (kind, not_text)
        assert (kind, new_real_or_blob) == (kind, real_or_blob)


def test_null_is_null_and_an_or_chain_of_them_is_0_after_coalesce() -> None:
    con = sqlite3.connect(":memory:")
    try:
        flags = con.execute(
            f"select {not_text_sql('null')}, {real_or_blob_sql('null')}, "
            f"coalesce({not_text_sql('null')} or {real_or_blob_sql('null')}, 0), "
            f"coalesce({not_text_sql('null')} or {real_or_blob_sql('1.5')}, 0), "
            f"coalesce({not_text_sql('null')} or {real_or_blob_sql('7')}, 0)"
        ).fetchone()
    finally:
        con.close()
    assert flags == (None, None, 0, 1, 0)
