"""Alembic environment of the ledger: run in process by :func:`reporting.ledger.db.upgrade`, which
hands over an open connection; there is no alembic.ini and no URL in any file."""

from __future__ import annotations

from alembic import context

from reporting.ledger.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "the ledger's migrations run through reporting.ledger.open_ledger(url), which passes a connection"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
