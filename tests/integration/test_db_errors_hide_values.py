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
