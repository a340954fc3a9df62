"""Errors of DuckDB (the staged data) and of the ADBC drivers (the columnar extract) may quote the
values of the rows in their words: a TIN in "Could not convert string '...' to INT64", a key in
"Duplicate key ...". They reach a log line, a raised message or a worker's answer only as
:func:`reporting.errors.database_error_text` writes them: the type and the first line, the
table and column names kept, the values left out. Provoked with real errors."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from reporting import cli, pipeline, workers
from reporting.due_diligence.run import run_due_diligence
from reporting.due_diligence.verify import verify_due_items
from reporting.errors import QueryError, database_error_text, database_errors, is_database_error

TIN = "DE123456789"  # a seller's TIN-like value in the data
W = "(value withheld)"


@pytest.fixture
def con() -> Any:
    con = duckdb.connect()
    con.execute(f"create table sellers as select 'S1' as seller_id, '{TIN}' as tin, 5 as n")
    yield con
    con.close()


def raised(con: Any, sql: str) -> Exception:
    with pytest.raises(duckdb.Error) as caught:
        con.execute(sql).fetchall()
    assert TIN in str(caught.value) or "9223372036854775807" in str(caught.value)  # DuckDB's own words quote it
    return caught.value


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "select cast(tin as bigint) from sellers",
            "duckdb.ConversionException: Conversion Error: Could not convert string (value withheld) to INT64 when "
            "casting from source column tin",
            id="conversion",
        ),
        pytest.param(
            "create table k (tin varchar primary key); insert into k select tin from sellers; "
            "insert into k select tin from sellers",
            'duckdb.ConstraintException: Constraint Error: Duplicate key "tin: (value withheld)" violates primary key '
            "constraint.",
            id="duplicate key",
        ),
        pytest.param(
            "select 9223372036854775807 + n from sellers",
            "duckdb.OutOfRangeException: Out of Range Error: Overflow in addition of INT64 (value withheld)!",
            id="overflow",
        ),
        pytest.param(
            "select strptime(tin, '%Y') from sellers",
            "duckdb.InvalidInputException: Invalid Input Error: Could not parse string (value withheld)",
            id="invalid input (from the value's quote to the last one of the line)",
        ),
        pytest.param(
            f"select * from sellers where tin = '{TIN}' and nosuch = 1",
            'duckdb.BinderException: Binder Error: Referenced column "nosuch" not found in FROM clause!',
            id="binder (the query, on the lines after, quotes the value)",
        ),
    ],
)
def test_duckdb_errors_keep_their_type_and_names_without_the_values(con: Any, sql: str, expected: str) -> None:
    exc = raised(con, sql)
    assert is_database_error(exc)
    assert database_error_text(exc) == expected
    assert TIN not in database_error_text(exc)


@pytest.mark.parametrize(
    ("value", "cast", "expected"),
    [
        pytest.param(
            "O'Brien Anna",
            "int",
            "duckdb.ConversionException: Conversion Error: Could not convert string (value withheld) to INT32",
            id="a quote in a string literal (DuckDB does not double it)",
        ),
        pytest.param(
            "Anna\nO'Brien",
            "int",
            "duckdb.ConversionException: Conversion Error: Could not convert string (value withheld)",
            id="a line break in a string literal (the first line ends inside the quotes)",
        ),
        pytest.param(
            'Anna "Nan" Brien',
            "date",
            "duckdb.ConversionException: Conversion Error: invalid date field format: (value withheld), expected "
            "format is (value withheld)",
            id="a double quote in a quoted value",
        ),
        pytest.param(
            'Anna\n"Brien',
            "date",
            "duckdb.ConversionException: Conversion Error: invalid date field format: (value withheld)",
            id="a line break in a quoted value",
        ),
    ],
)
def test_a_value_with_quotes_or_line_breaks_is_withheld_whole(value: str, cast: str, expected: str) -> None:
    """DuckDB quotes a value as it is: a literal does not end at a quote inside the value, and a
    value's line break cuts the first line inside the quotes; no part of the value stays."""
    con = duckdb.connect()
    with pytest.raises(duckdb.Error) as caught:
        con.execute(f"select cast(? as {cast})", [value])
    assert "Brien" in str(caught.value)  # DuckDB's own words quote it
    assert database_error_text(caught.value) == expected


def test_an_adbc_sqlite_error_keeps_its_type_without_the_values() -> None:
    dbapi = pytest.importorskip("adbc_driver_sqlite.dbapi")
    with dbapi.connect() as conn, conn.cursor() as cur:
        cur.execute(f"create table seller_tins (seller_id text primary key, tin text check (tin <> '{TIN}'))")
        with pytest.raises(dbapi.IntegrityError) as caught:
            cur.execute(f"insert into seller_tins values ('S1', '{TIN}')")
    assert TIN in str(caught.value)
    assert is_database_error(caught.value)
    assert database_error_text(caught.value) == (
        f"adbc_driver_manager.IntegrityError: INTEGRITY: CHECK constraint failed: tin <> {W}"
    )


def test_an_adbc_error_of_sqlstate_class_22_is_an_error_about_data() -> None:
    """ADBC's PostgreSQL driver raises a value that does not parse as a ``ProgrammingError`` (its
    class follows ADBC's status, not the server's SQLSTATE), quoting the value in double quotes:
    the SQLSTATE 22P02 makes it an error about data. Made as the driver makes it (no server in
    the unit tests)."""
    adbc = pytest.importorskip("adbc_driver_manager")
    exc = adbc.ProgrammingError(
        f'[libpq] Failed to execute query: ERROR:  invalid input syntax for type bigint: "{TIN}"\nQUERY: select',
        status_code=adbc.AdbcStatusCode.INVALID_ARGUMENT,
        vendor_code=None,
        sqlstate="22P02",
        details=None,
    )
    assert database_error_text(exc) == (
        f"adbc_driver_manager.ProgrammingError: [libpq] Failed to execute query: ERROR:  invalid input syntax for "
        f"type bigint: {W}"
    )
    undefined = adbc.ProgrammingError(
        '[libpq] Failed to execute query: ERROR:  relation "seller_tins" does not exist',
        status_code=adbc.AdbcStatusCode.NOT_FOUND,
        vendor_code=None,
        sqlstate="42P01",
        details=None,
    )
    assert database_error_text(undefined) == (  # not about data: the table's quoted name stays
        'adbc_driver_manager.ProgrammingError: [libpq] Failed to execute query: ERROR:  relation "seller_tins" does '
        "not exist"
    )


def test_other_errors_are_not_database_errors() -> None:
    assert not is_database_error(ValueError(TIN))
    assert not is_database_error(QueryError("x"))


def test_a_stage_that_meets_a_duckdb_error_fails_with_its_words_without_the_values(
    con: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every stage runs in ``pipeline._stage`` (the CLI's run and the DAGs' tasks): a DuckDB error
    leaves it as a :class:`QueryError` naming the stage, the type and the column, without the TIN
    and without the original as its printed cause."""
    monkeypatch.setattr(
        pipeline, "load_settings", lambda run_dir: SimpleNamespace(year=2025, operator_ids=(), operator_id="default")
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(QueryError) as caught, pipeline._stage("aggregate", "unused"):
        con.execute("select cast(tin as bigint) from sellers").fetchall()
    assert str(caught.value) == (
        "aggregate: a query failed: duckdb.ConversionException: Conversion Error: Could not convert string "
        "(value withheld) to INT64 when casting from source column tin"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert TIN not in caplog.text
    # any other error leaves the stage as it was raised
    with pytest.raises(KeyError), pipeline._stage("aggregate", "unused"):
        raise KeyError("seller_id")


def test_the_cli_says_a_duckdb_error_in_one_line_without_the_values(
    con: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def summary(args: Any) -> int:
        con.execute("select cast(tin as bigint) from sellers").fetchall()
        return 0

    monkeypatch.setattr(cli, "_summary", summary)
    assert cli.main(["summary", "--out", "unused"]) == 1
    out = capsys.readouterr()
    assert out.err == (
        "dac7: a query failed: duckdb.ConversionException: Conversion Error: Could not convert string "
        "(value withheld) to INT64 when casting from source column tin\n"
    )
    assert TIN not in out.out


def test_a_worker_says_a_database_error_it_cannot_give_back_without_the_values() -> None:
    """A worker gives back an exception that does not pickle in words: for a DuckDB or ADBC
    error, without the values (a DuckDB error that pickles comes back as it is, and the stage
    says it as above)."""
    code = (
        "class ConversionException(Exception): pass\n"
        "ConversionException.__module__ = 'duckdb'\n"  # not found there: it cannot be pickled back
        f"raise ConversionException(\"Conversion Error: Could not convert string '{TIN}' to INT64\")\n"
    )
    proc = workers._start()
    try:
        ok, error = workers._call(proc, exec, (code,))
    finally:
        workers._stop(proc)
    assert not ok and isinstance(error, workers.WorkerError)
    assert str(error) == (
        "a worker could not give back its outcome: duckdb.ConversionException: Conversion Error: Could not convert "
        "string (value withheld) to INT64"
    )


def test_the_due_diligence_says_a_duckdb_error_without_the_values(con: Any) -> None:
    """The due diligence reads the source's identity tables in DuckDB outside a run's stages: its
    two entry points say a DuckDB error as a stage does."""

    @database_errors("due diligence")
    def read() -> None:
        con.execute("select cast(tin as bigint) from sellers").fetchall()

    with pytest.raises(QueryError) as caught:
        read()
    assert str(caught.value) == (
        "due diligence: a query failed: duckdb.ConversionException: Conversion Error: Could not convert string "
        "(value withheld) to INT64 when casting from source column tin"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    for entry in (run_due_diligence, verify_due_items):
        # the decorator, not a copy of the function: its body runs inside database_errors
        assert entry.__wrapped__.__name__ == entry.__name__  # type: ignore[attr-defined]
        assert entry is not entry.__wrapped__  # type: ignore[attr-defined]
