"""The ledger's statements compiled once per process (``SharedCompiledCache``: every ledger engine
whose dialect is configured the same shares them) and its records inserted with the DB-API
cursor's executemany on SQLite (``insert_records``): the same SQL, the same rows as SQLAlchemy's
own per-engine cache and Core insert."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reporting.ledger.db as ledger_db
import reporting.ledger.schema as t
from reporting.ledger import open_ledger
from reporting.ledger.db import RECORD_COLUMNS, SharedCompiledCache, _dialect_settings, _records_insert, insert_records
from reporting.stages.plan import _empty_ledger


def _message(conn: sa.Connection, ref: str) -> int:
    return int(
        conn.execute(
            sa.insert(t.messages)
            .values(
                message_ref_id=ref,
                environment="test",
                authority="DE",
                operator="X",
                reporting_year=2025,
                message_type_indic="DPI401",
                file_name="f.xml",
                sha256="0" * 64,
                run_id="r",
                created=sa.func.now(),
                status="rendered",
            )
            .returning(t.messages.c.id)
        ).scalar_one()
    )


def test_two_ledgers_share_one_compiled_statement_and_each_reads_its_own_rows(tmp_path: Path) -> None:
    cache = SharedCompiledCache()
    engines = [
        sa.create_engine(f"sqlite:///{tmp_path}/{name}.sqlite3", execution_options={"compiled_cache": cache})
        for name in ("a", "b")
    ]
    table = sa.table("probe", sa.column("x"))
    query = sa.select(table.c.x).where(table.c.x > sa.bindparam("low")).order_by(table.c.x)
    try:
        for engine, values in zip(engines, ([1, 2, 3], [10, 20]), strict=True):
            with engine.begin() as conn:
                conn.exec_driver_sql("create table probe (x integer)")
                conn.exec_driver_sql("insert into probe values " + ", ".join(f"({v})" for v in values))
        with engines[0].connect() as conn:
            assert conn.execute(query, {"low": 1}).scalars().all() == [2, 3]
        assert len(cache) == 1
        with engines[1].connect() as conn:
            assert conn.execute(query, {"low": 1}).scalars().all() == [10, 20]
        assert len(cache) == 1  # the second engine found the first one's statement
        assert engines[0].dialect is not engines[1].dialect
        assert _dialect_settings(engines[0].dialect) == _dialect_settings(engines[1].dialect)
    finally:
        for engine in engines:
            engine.dispose()


def test_a_dialect_configured_otherwise_compiles_its_own(tmp_path: Path) -> None:
    cache = SharedCompiledCache()
    qmark = sa.create_engine(f"sqlite:///{tmp_path}/a.sqlite3", execution_options={"compiled_cache": cache})
    named = sa.create_engine(
        f"sqlite:///{tmp_path}/b.sqlite3", paramstyle="named", execution_options={"compiled_cache": cache}
    )
    query = sa.select(sa.literal_column("1") + sa.bindparam("n"))
    try:
        with qmark.connect() as conn:
            assert conn.execute(query, {"n": 1}).scalar_one() == 2
        with named.connect() as conn:
            assert conn.execute(query, {"n": 2}).scalar_one() == 3
        assert _dialect_settings(qmark.dialect) != _dialect_settings(named.dialect)
        assert len(cache) == 2
        assert sorted(c.string for c in cache._cache.values()) == ["SELECT 1 + :n AS anon_1", "SELECT 1 + ? AS anon_1"]
    finally:
        qmark.dispose()
        named.dispose()


def test_a_dialect_not_connected_yet_keeps_its_key() -> None:
    cache = SharedCompiledCache()
    dialect = sa.create_engine("sqlite://").dialect  # no connection: not initialized
    key = (dialect, ("statement",), (), False, False)
    assert cache._key(key) is key
    cache[key] = "compiled"
    assert cache.get(key) == "compiled" and cache[key] == "compiled"
    del cache[key]
    assert cache.get(key) is None and len(cache) == 0


def test_the_ledgers_of_a_process_use_the_shared_cache(tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path}/a.sqlite3") as a, open_ledger(f"sqlite:///{tmp_path}/b.sqlite3") as b:
        assert a.engine.get_execution_options()["compiled_cache"] is ledger_db.COMPILED
        assert b.engine.get_execution_options()["compiled_cache"] is ledger_db.COMPILED
        a.pending("test", "DE", 2025)
        size = len(ledger_db.COMPILED)
        b.pending("test", "DE", 2025)
        assert len(ledger_db.COMPILED) == size


def test_the_sqlite_insert_is_the_core_insert_of_the_records_columns(tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path}/a.sqlite3") as ledger:
        assert _records_insert(ledger.engine.dialect) == (
            "INSERT INTO ledger_records (message_id, position, kind, seller_key, doc_type, doc_type_indic, "
            "doc_ref_id, corr_doc_ref_id, content_hash, content, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
    # a named parameter style has no positional SQL: the Core insert it is
    assert _records_insert(sa.create_engine("sqlite://", paramstyle="named").dialect) is None


def _rows_of(url: str) -> list[tuple[Any, ...]]:
    with sa.create_engine(url).connect() as conn:
        cols = ", ".join(f"{c}, typeof({c})" for c in ("id", *RECORD_COLUMNS))
        return list(conn.exec_driver_sql(f"select {cols} from ledger_records order by id").all())


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_record = st.tuples(
    st.sampled_from(["seller", "platform_operator"]),
    _text,
    st.sampled_from(["new", "correction"]),
    st.sampled_from(["OECD1", "OECD2"]),
    _text,
    _text,
    st.text("0123456789abcdef", min_size=64, max_size=64),
    _text,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_record, min_size=1, max_size=12), batch=st.integers(1, 5), data=st.data())
def test_the_cursor_insert_stores_what_the_core_insert_stores(
    tmp_path_factory: Any, records: list[tuple[Any, ...]], batch: int, data: st.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("insert")
    rows = []
    for i, (kind, key, doc_type, indic, ref, corr, digest, content) in enumerate(records):
        rows.append(
            (
                i,
                kind,
                None if kind == "platform_operator" else key,
                doc_type,
                indic,
                f"{ref}-{i}",  # unique
                f"{corr}-{i}" if doc_type == "correction" else None,
                digest,
                content,
                data.draw(st.sampled_from(["sent", "accepted"])),
            )
        )
    urls = [f"sqlite:///{folder}/{name}.sqlite3" for name in ("core", "cursor")]
    for url in urls:
        shutil.copyfile(_empty_ledger(), url.removeprefix("sqlite:///"))  # migrated once, not per example
        with open_ledger(url) as ledger, ledger.engine.begin() as conn:
            message_id = _message(conn, "M1")
            full = [(message_id, *row) for row in rows]
            for start in range(0, len(full), batch):
                part = full[start : start + batch]
                if url.endswith("core.sqlite3"):  # the insert as it was: a dict per row, Core
                    conn.execute(sa.insert(t.records), [dict(zip(RECORD_COLUMNS, r, strict=True)) for r in part])
                else:
                    insert_records(conn, part)
    assert _rows_of(urls[0]) == _rows_of(urls[1])
    assert len(_rows_of(urls[1])) == len(rows)


def test_insert_records_takes_the_core_insert_where_there_is_no_positional_sql(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.sqlite3"
    open_ledger(url).close()
    engine = sa.create_engine(url, paramstyle="named")
    try:
        with engine.begin() as conn:
            message_id = _message(conn, "M1")
            insert_records(conn, [(message_id, 0, "seller", "S1", "new", "OECD1", "D1", None, "a" * 64, "{}", "sent")])
    finally:
        engine.dispose()
    assert _rows_of(url) == [
        (
            1,
            "integer",
            1,
            "integer",
            0,
            "integer",
            "seller",
            "text",
            "S1",
            "text",
            "new",
            "text",
            "OECD1",
            "text",
            "D1",
            "text",
            None,
            "null",
            "a" * 64,
            "text",
            "{}",
            "text",
            "sent",
            "text",
        )
    ]


def test_dialects_given_different_callables_do_not_share(tmp_path: Path) -> None:
    """A setting that is callable but no plain function (a ``functools.partial`` JSON serializer)
    tells dialects apart by identity: only the dialects given the same object count as alike."""
    compact = functools.partial(json.dumps, separators=(",", ":"))
    spaced = functools.partial(json.dumps, indent=1)
    engines = [
        sa.create_engine(f"sqlite:///{tmp_path}/{i}.sqlite3", json_serializer=serializer)
        for i, serializer in enumerate((compact, compact, spaced))
    ]
    try:
        for engine in engines:
            with engine.connect() as conn:
                conn.exec_driver_sql("select 1")
        same, also, other = (_dialect_settings(e.dialect) for e in engines)
        assert same == also
        assert same != other
    finally:
        for engine in engines:
            engine.dispose()
