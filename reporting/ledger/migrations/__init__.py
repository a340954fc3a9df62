"""Alembic migrations of the ledger, applied by :func:`reporting.ledger.open_ledger` (no alembic.ini)."""
