"""The flagged keys the source hands back are written into the later statements as literals
(:class:`reporting.pushdown.FlagKeys`): each literal must mean exactly the key's text on the
server, through SQLAlchemy's ``text()`` and the DB-API, whatever the key holds."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.pushdown import FlagKeys, _key_literal, _with_keys
from reporting.source import make_engine

#: keys that a naive literal gets wrong: quotes, a colon after a space (SQLAlchemy's parameter),
#: percent signs (the DB-API's), backslashes (MariaDB's escapes), letters beyond ASCII
AWKWARD = [
    "a'b",
    "x :name",
    "50%",
    "%(p)s",
    "%s",
    "C:\\dir\\n",
    "\\",
    "ü€𝄞",
    "'; drop table t; --",
    "  ",
    "(dac7_keys_s)",
    "$$ || $$",
]

#: text a key may hold: any character but NUL, which PostgreSQL's text cannot hold
KEYS = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1)


def _equal(url: str, dialect: str, key: str) -> bool:
    """The server's comparison of the literal with the key bound as a parameter."""
    literal = _key_literal(key, dialect)
    bound = "cast(:k as binary)" if dialect == "mysql" else ":k"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(f"select {literal} = {bound}"), {"k": key}).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.pg
@pytest.mark.parametrize("key", AWKWARD)
def test_postgresql_reads_each_literal_as_its_key(pg_url: str, key: str) -> None:
    assert _equal(pg_url, "postgres", key)


@pytest.mark.mariadb
@pytest.mark.parametrize("key", AWKWARD)
def test_mariadb_reads_each_literal_as_its_key(mariadb_url: str, key: str) -> None:
    assert _equal(mariadb_url, "mysql", key)


@pytest.mark.pg
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS)
def test_postgresql_reads_any_key_back(pg_url: str, key: str) -> None:
    assert _equal(pg_url, "postgres", key)


@pytest.mark.mariadb
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS)
def test_mariadb_reads_any_key_back(mariadb_url: str, key: str) -> None:
    assert _equal(mariadb_url, "mysql", key)


def test_literals_hold_nothing_read_as_a_parameter() -> None:
    for key in AWKWARD:
        for dialect in ("postgres", "mysql"):
            literal = _key_literal(key, dialect)
            assert ":" not in literal and "%" not in literal, literal


def test_a_list_without_keys_matches_no_key() -> None:
    # an empty key is NULL once cleaned, so the empty text matches no key
    assert _with_keys("x in (dac7_keys_t)", "postgres", {"dac7_keys_t": []}) == "x in (E'')"
    assert _with_keys("x in (dac7_keys_t)", "mysql", {"dac7_keys_t": ["b", "a"]}) == "x in (X'61', X'62')"


def test_a_key_naming_another_list_is_written_in_once() -> None:
    sql = "a in (dac7_keys_t) or b in (dac7_keys_s)"
    lists = {"dac7_keys_t": ["x(dac7_keys_s)"], "dac7_keys_s": ["y"]}
    assert _with_keys(sql, "postgres", lists) == "a in (E'x\\x28dac7_keys_s\\x29') or b in (E'y')"
    assert _with_keys(sql, "mysql", lists) == "a in (X'" + b"x(dac7_keys_s)".hex() + "') or b in (X'79')"


def test_a_list_missing_from_the_statement_is_an_error() -> None:
    with pytest.raises(ValueError, match="dac7_keys_s"):
        _with_keys("x in (dac7_keys_t)", "postgres", {"dac7_keys_s": ["a"]})
    with pytest.raises(ValueError, match="dac7_keys_t"):
        _with_keys("x in (dac7_keys_t)", "postgres", {})
    with pytest.raises(ValueError, match="sqlite"):
        _key_literal("a", "sqlite")


def test_keys_come_back_as_text_without_nulls() -> None:
    keys = FlagKeys.of([("t", "T1"), ("t", None), ("s", b"S\xc3\xbc"), ("r", "R1"), ("t", "T1")])
    assert keys == FlagKeys(frozenset({"T1"}), frozenset({"Sü"}), frozenset({"R1"}))
    assert keys.size == 3
