"""Seller statements: the delivery record of each statement and its delivery events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

Written out in full (not imported from reporting.ledger.schema): a revision stays what it was
when later ones change the model.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_DELIVERY = "status IN ('pending', 'sent', 'failed')"


def upgrade() -> None:
    op.create_table(
        "ledger_statements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("statement_id", sa.String(200), nullable=False),
        sa.Column("replaces", sa.String(200)),
        sa.Column("replaces_recorded", sa.Boolean),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("seller_id", sa.String(200)),
        sa.Column("message_ref_id", sa.String(170), nullable=False),
        sa.Column("doc_ref_id", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(4), nullable=False),
        sa.Column("authority", sa.String(2), nullable=False),
        sa.Column("reporting_year", sa.Integer, nullable=False),
        sa.Column("language", sa.String(35), nullable=False),
        sa.Column("html_path", sa.String(400)),
        sa.Column("out_dir", sa.String(1000)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.Text),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("status_changed", sa.DateTime, nullable=False),
        sa.Column("erased", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_statements"),
        sa.ForeignKeyConstraint(
            ["message_ref_id"],
            ["ledger_messages.message_ref_id"],
            name="fk_ledger_statements_message_ref_id_ledger_messages",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("statement_id", name="uq_ledger_statements_statement_id"),
        sa.CheckConstraint("kind IN ('initial', 'correction', 'deletion')", name="ck_ledger_statements_kind"),
        sa.CheckConstraint(_DELIVERY, name="ck_ledger_statements_status"),
        sa.CheckConstraint("environment IN ('test', 'prod')", name="ck_ledger_statements_environment"),
        sa.CheckConstraint("(kind = 'initial') = (replaces IS NULL)", name="ck_ledger_statements_replaces"),
    )
    op.create_index(
        "ix_ledger_statements_period_status",
        "ledger_statements",
        ["environment", "authority", "reporting_year", "status"],
    )
    op.create_index("ix_ledger_statements_replaces", "ledger_statements", ["replaces"])
    op.create_index("ix_ledger_statements_created", "ledger_statements", ["created"])

    op.create_table(
        "ledger_statement_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("statement_id", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("detail", sa.String(500)),
        sa.Column("source", sa.String(400), nullable=False),
        sa.Column("recorded", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_statement_events"),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["ledger_statements.statement_id"],
            name="fk_ledger_statement_events_statement_id_ledger_statements",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("statement_id", "at", "status", name="uq_ledger_statement_events_statement_id_at_status"),
        sa.CheckConstraint(_DELIVERY, name="ck_ledger_statement_events_status"),
    )


def downgrade() -> None:
    op.drop_table("ledger_statement_events")
    op.drop_table("ledger_statements")
