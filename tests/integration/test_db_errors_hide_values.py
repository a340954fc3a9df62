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
    statements = [
        "insert into pii_t (tin, name, k) values (:tin, :name, 1)",
        "insert into pii_t (tin, name, k) values (:tin || 'x', null, 1)",
        "insert into pii_t (tin, name, k) values (:tin || 'y', :name, -1)",
        "insert into pii_t (tin, name, k, born) values (:tin || 'z', :name, 1, cast(:tin as date))",
    ]
    table = "create table pii_t (tin text primary key, name text not null, k int check (k > 0), born date)"
    return _refused(engine, [table], statements, TIN)


def _refused(engine: sa.Engine, setup: list[str], statements: list[str], tin: str) -> list[BaseException]:
    """The errors of ``statements`` (each bound to ``tin`` and the name), run after ``setup`` and
    the first of them, which records the row that the others collide with."""
    caught: list[BaseException] = []
    with engine.connect() as conn:
        for sql in setup:
            conn.exec_driver_sql(sql)
        conn.execute(sa.text(statements[0]), {"tin": tin, "name": NAME})
        conn.commit()
        for sql in statements:
            with pytest.raises(sa.exc.DBAPIError) as failed:
                conn.execute(sa.text(sql), {"tin": tin, "name": NAME})
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


QUOTED_TIN = "DE-TIN-86'095742719"  # a quote inside: MariaDB quotes values without escaping it


def _mariadb_value_errors(engine: sa.Engine) -> list[BaseException]:
    """The errors of statements MariaDB refuses with a message that quotes the value (strict
    mode): a unique key (1062), a date (1292) and an integer (1366) it cannot read, and a
    syntax error (1064: PyMySQL writes the bound values into the statement); and one that
    quotes none, a NOT NULL column (1048)."""
    statements = [
        "insert into pii_t (tin, name, k) values (:tin, :name, 1)",
        "insert into pii_t (tin, name, k, born) values (concat(:tin, 'z'), :name, 1, :tin)",
        "insert into pii_t (tin, name, k) values (concat(:tin, 'w'), :name, :tin)",
        "insert into pii_t (tin, name, k) values (:tin, :name 1)",
        "insert into pii_t (tin, name, k) values (concat(:tin, 'x'), null, 1)",
    ]
    setup = [
        "set session sql_mode = 'STRICT_ALL_TABLES'",
        "create table pii_t (tin varchar(40) primary key, name varchar(40) not null, k int, born date)",
    ]
    return _refused(engine, setup, statements, QUOTED_TIN)


def test_mariadb_errors_hide_values(mariadb_url):
    """MariaDB's own messages quote the value (``Duplicate entry '...' for key 'PRIMARY'``,
    ``Incorrect date value: '...' for column ...``): the source's engine (the ledger runs on
    SQLite or PostgreSQL) withholds it, in SQLAlchemy's message and in the driver's exception,
    and keeps the error number and the names."""
    engine = make_engine(mariadb_url)
    try:
        errors = _mariadb_value_errors(engine)
    finally:
        engine.dispose()
    for exc in errors:
        for text in (str(exc), str(exc.orig), repr(exc.orig)):  # type: ignore[attr-defined]
            assert "86" not in text and "095742719" not in text and NAME not in text, text
    expected = [
        (1062, "Duplicate entry (value withheld) for key 'PRIMARY'"),
        (1292, "Incorrect date value: (value withheld) for column `{db}`.`pii_t`.`born` at row 1"),
        (1366, "Incorrect integer value: (value withheld) for column `{db}`.`pii_t`.`k` at row 1"),
        (
            1064,
            "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server "
            "version for the right syntax to use near (value withheld)",
        ),
        (1048, "Column 'name' cannot be null"),  # no value quoted: as the server said it
    ]
    db = sa.make_url(mariadb_url).database
    wanted = [(n, m.format(db=db)) for n, m in expected]
    assert [exc.orig.args for exc in errors] == wanted  # type: ignore[attr-defined]
    assert "(pymysql.err.IntegrityError) (1062, \"Duplicate entry (value withheld) for key 'PRIMARY'\")" in str(
        errors[0]
    )


@pytest.mark.parametrize(
    ("errno", "message", "shown"),
    [
        (
            1411,
            "Incorrect datetime value: 'Anna 'Nan' Brien' for function str_to_date",
            "Incorrect datetime value: (value withheld) for function str_to_date",
        ),
        (
            1367,
            "Illegal double 'DE12'3' value found during parsing",
            "Illegal double (value withheld) value found during parsing",
        ),
        (
            1690,
            "BIGINT value is out of range in '`t`.`k` + 86095742719'",
            "BIGINT value is out of range in (value withheld)",
        ),
        (
            1586,
            "Duplicate entry 'a' for key 'b'' for key 'uq_tin'",
            "Duplicate entry (value withheld) for key 'uq_tin'",
        ),
        (  # MySQL 8 names the key with its table; a value holding a line break, a backtick, the words
            1062,
            "Duplicate entry 'DE'86\n`x` for column 'k' for key 'y' for key 'pii_t.PRIMARY'",
            "Duplicate entry (value withheld) for key 'pii_t.PRIMARY'",
        ),
        (
            1292,
            "Truncated incorrect DOUBLE value: 'Anna\nNan Brien'",
            "Truncated incorrect DOUBLE value: (value withheld)",
        ),
        (
            1300,
            "Invalid utf8mb4 character string: '\\xF0 Nan Brien'",
            "Invalid utf8mb4 character string: (value withheld)",
        ),
        (  # lc_messages = 'de_DE': no "near"
            1064,
            "Fehler in der SQL-Syntax. Bitte die korrekte Syntax im Handbuch nachschlagen bei "
            "''DE-TIN\\'86 Anna'' in Zeile 1",
            "Fehler in der SQL-Syntax. Bitte die korrekte Syntax im Handbuch nachschlagen bei (value withheld)",
        ),
        (1146, "Table 'dac7.no_such_table' doesn't exist", "Table 'dac7.no_such_table' doesn't exist"),
    ],
)
def test_mysql_error_words(errno, message, shown):
    """Each of MariaDB's and MySQL's messages that quote a value, as the server words it: the
    value is withheld from its first quote to the last one before the words that follow it (a
    quote inside it is not escaped), the names stay; a message that quotes only names is left
    as it is."""
    import pymysql

    from reporting.errors import hide_database_values

    class Context:
        original_exception = pymysql.err.OperationalError(errno, message)
        sqlalchemy_exception = None

    hide_database_values(Context())
    assert Context.original_exception.args == (errno, shown)


def test_mariadb_errors_hide_values_in_other_words(mariadb_url):
    """Two more of MariaDB's messages that quote what it was given: a syntax error in the
    server's messages in another language (``lc_messages``: no "near" to find, German ``bei
    '...'``), and the bytes a conversion could not read (1300: a text column converted from
    binary, from the first bad byte on, in a statement that makes a table of it)."""
    engine = make_engine(mariadb_url)
    caught: list[BaseException] = []
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("create table raw_t (b varbinary(40))")
            conn.execute(sa.text("insert into raw_t values (concat(x'F0', :name))"), {"name": NAME})
            conn.commit()
            for sql, lang in [
                ("select * from raw_t where b = :tin limit :tin", "de_DE"),
                ("create table conv_t (c varchar(40)) select convert(b using utf8mb4) as c from raw_t", "en_US"),
            ]:
                conn.exec_driver_sql(f"set lc_messages = '{lang}'")
                with pytest.raises(sa.exc.DBAPIError) as failed:
                    conn.execute(sa.text(sql), {"tin": QUOTED_TIN})
                conn.rollback()
                caught.append(failed.value)
    finally:
        engine.dispose()
    for exc in caught:
        for text in (str(exc), str(exc.orig), repr(exc.orig)):  # type: ignore[attr-defined]
            assert "86" not in text and "095742719" not in text and NAME[2:] not in text, text
    assert [exc.orig.args for exc in caught] == [  # type: ignore[attr-defined]
        (1064, "Fehler in der SQL-Syntax. Bitte die korrekte Syntax im Handbuch nachschlagen bei (value withheld)"),
        (1300, "Invalid utf8mb4 character string: (value withheld)"),
    ]
