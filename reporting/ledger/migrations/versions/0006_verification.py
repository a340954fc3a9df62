"""Verification of identifiers: every call of a verification adapter, and each adapter's cache.

Revision ID: 0006_verification
Revises: 0005
Create Date: 2026-12-06

``ledger_verification_calls`` records each call (an HTTP request to VIES or TIN on the Web, a
python-stdnum check): when, which adapter, the identifier's kind and country, a keyed hash and
the last three characters of the identifier (never the identifier), the seller, the outcome, the
service's words and its consultation number. ``ledger_verification_cache`` keeps the conclusive
answers (verified, invalid) of each adapter, by identifier hash. This revision creates these two
tables only.

Written out in full (not imported from reporting.ledger.schema): a revision stays what it was
when later ones change the model.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_verification"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_verification_calls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("adapter", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(3), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("identifier_hash", sa.String(64), nullable=False),
        sa.Column("identifier_masked", sa.String(40), nullable=False),
        sa.Column("seller_id", sa.String(200)),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("detail", sa.String(300)),
        sa.Column("evidence", sa.String(100)),
        sa.Column("request_date", sa.Date),
        sa.Column("source", sa.String(400), nullable=False),
        sa.Column("duration_ms", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_verification_calls"),
        sa.CheckConstraint("kind IN ('tin', 'vat')", name="ck_ledger_verification_calls_kind"),
        sa.CheckConstraint(
            "outcome IN ('verified', 'invalid', 'unverified')", name="ck_ledger_verification_calls_outcome"
        ),
    )
    op.create_index(
        "ix_ledger_verification_calls_adapter_identifier_hash",
        "ledger_verification_calls",
        ["adapter", "identifier_hash"],
    )
    op.create_index("ix_ledger_verification_calls_seller_id", "ledger_verification_calls", ["seller_id"])
    op.create_index("ix_ledger_verification_calls_at", "ledger_verification_calls", ["at"])
    op.create_table(
        "ledger_verification_cache",
        sa.Column("adapter", sa.String(20), nullable=False),
        sa.Column("identifier_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(3), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("detail", sa.String(300)),
        sa.Column("evidence", sa.String(100)),
        sa.Column("request_date", sa.Date),
        sa.Column("source", sa.String(400), nullable=False),
        sa.Column("checked_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("adapter", "identifier_hash", name="pk_ledger_verification_cache"),
        sa.CheckConstraint("kind IN ('tin', 'vat')", name="ck_ledger_verification_cache_kind"),
        sa.CheckConstraint("state IN ('verified', 'invalid')", name="ck_ledger_verification_cache_state"),
    )
    op.create_index("ix_ledger_verification_cache_checked_at", "ledger_verification_cache", ["checked_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_verification_cache_checked_at", "ledger_verification_cache")
    op.drop_table("ledger_verification_cache")
    op.drop_index("ix_ledger_verification_calls_at", "ledger_verification_calls")
    op.drop_index("ix_ledger_verification_calls_seller_id", "ledger_verification_calls")
    op.drop_index("ix_ledger_verification_calls_adapter_identifier_hash", "ledger_verification_calls")
    op.drop_table("ledger_verification_calls")
