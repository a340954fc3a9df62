"""A failed statement's error never carries the values bound to it: the ledger's engines and
the source's are made with SQLAlchemy's ``hide_parameters``, so that a TIN, a name or a record's
content bound to a statement that fails (a lost connection, a locked file, a bad column) does not
reach an exception message, a log or a task's output."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reporting.ledger import open_ledger
from reporting.source import make_engine

TIN = "DE-TIN-86095742719"
NAME = "Mustermann-Geheim"


def _failure(engine: sa.Engine) -> str:
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.connect() as conn:
        # a statement that fails in the database, after its values were bound
        conn.execute(sa.text("select :tin, :name from no_such_table"), {"tin": TIN, "name": NAME})
    return str(caught.value)


def _check(message: str) -> None:
    assert "no_such_table" in message  # the statement and the driver's reason are still named
    assert "parameters hidden" in message
    assert TIN not in message
    assert NAME not in message


@pytest.mark.parametrize("where", ["file", "memory"])
def test_sqlite_ledger_errors_hide_values(tmp_path, where):
    url = f"sqlite:///{tmp_path / 'ledger.db'}" if where == "file" else "sqlite://"
    with open_ledger(url) as ledger:
        _check(_failure(ledger.engine))


def test_postgresql_ledger_errors_hide_values(pg_url):
    with open_ledger(pg_url) as ledger:
        _check(_failure(ledger.engine))


def test_source_errors_hide_values(sqlite_url, pg_url):
    for url in (sqlite_url, pg_url):
        engine = make_engine(url)
        try:
            _check(_failure(engine))
        finally:
            engine.dispose()


def _pg_server_lines(engine: sa.Engine) -> list[BaseException]:
    """The errors of statements that PostgreSQL refuses with lines of its own quoting the values:
    a unique key (``DETAIL: Key (tin)=(...)``), a NOT NULL and a CHECK constraint (``Failing row
    contains (...)``), a value the column's type refuses (its primary message quotes it)."""
    caught: list[BaseException] = []
    statements = [
        "insert into pii_t (tin, name, k) values (:tin, :name, 1)",
        "insert into pii_t (tin, name, k) values (:tin || 'x', null, 1)",
        "insert into pii_t (tin, name, k) values (:tin || 'y', :name, -1)",
        "insert into pii_t (tin, name, k, born) values (:tin || 'z', :name, 1, cast(:tin as date))",
    ]
    with engine.connect() as conn:
        conn.exec_driver_sql(
            "create table pii_t (tin text primary key, name text not null, k int check (k > 0), born date)"
        )
        conn.execute(sa.text(statements[0]), {"tin": TIN, "name": NAME})
        conn.commit()
        for sql in statements:
            with pytest.raises(sa.exc.DBAPIError) as failed:
                conn.execute(sa.text(sql), {"tin": TIN, "name": NAME})
            conn.rollback()
            caught.append(failed.value)
    return caught


def test_postgresql_server_lines_hide_values(pg_url):
    """hide_parameters alone leaves PostgreSQL's DETAIL lines: the engines drop them, from the
    driver's exception too (printed as the cause with a traceback)."""
    with open_ledger(pg_url) as ledger:
        ledger_errors = _pg_server_lines(ledger.engine)
    engine = make_engine(pg_url)
    try:
        engine.dispose()
        with engine.connect() as conn:
            conn.exec_driver_sql("drop table pii_t")
            conn.commit()
        source_errors = _pg_server_lines(engine)
    finally:
        engine.dispose()
    for exc in ledger_errors + source_errors:
        for text in (str(exc), str(exc.orig), repr(exc.orig)):  # type: ignore[attr-defined]
            assert TIN not in text and NAME not in text and "DETAIL" not in text
            assert "pii_t" in text or "SQLSTATE 22" in text  # what failed is still named
    kinds = [type(exc).__name__ for exc in ledger_errors]
    assert kinds == ["IntegrityError", "IntegrityError", "IntegrityError", "DataError"]
    assert "pii_t_pkey" in str(ledger_errors[0])  # the constraint the server named
    assert "column name" in str(ledger_errors[1])


def test_other_errors_left_as_they_are():
    """A listener that finds no PostgreSQL error (SQLite's) changes nothing."""

    class Context:
        original_exception = ValueError("as it was")
        sqlalchemy_exception = None

    from reporting.errors import hide_database_values

    hide_database_values(Context())
    assert Context.original_exception.args == ("as it was",)
