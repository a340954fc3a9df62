"""Transmissions: how each published message reached its authority, who acted and when.

Revision ID: 0007_transmissions
Revises: 0006_verification
Create Date: 2026-12-06

One row per event of a message's way to the authority (``reporting.ledger.transmissions``):
``prepared`` (an outbox package for a portal upload), ``uploaded`` (a person says it was
uploaded), ``started``/``aborted`` (a DIP transfer begun, then given up: its ticket is never used
again), ``transmitted`` (a DIP transfer finished), ``confirmed`` (the DIP protocol fetched and
its receipt confirmed). ``ticket`` is the DIP data transfer number (``Datentransfernummer``);
``detail`` a short text without personal data (the server's words on a failure).

Self-contained: it creates its own table and nothing else, so that it can be chained after any
revision of the ledger. Written out in full (not imported from reporting.ledger.schema).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_transmissions"
down_revision = "0006_verification"
branch_labels = None
depends_on = None

_EVENTS = "event IN ('prepared', 'uploaded', 'started', 'aborted', 'transmitted', 'confirmed')"
_CHANNELS = "channel IN ('dip', 'outbox')"


def upgrade() -> None:
    op.create_table(
        "ledger_transmissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(12), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("ticket", sa.String(170)),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("detail", sa.String(500)),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["ledger_messages.id"],
            name="fk_ledger_transmissions_message_id_ledger_messages",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_transmissions"),
        sa.CheckConstraint(_EVENTS, name="ck_ledger_transmissions_event"),
        sa.CheckConstraint(_CHANNELS, name="ck_ledger_transmissions_channel"),
    )
    op.create_index("ix_ledger_transmissions_message_id", "ledger_transmissions", ["message_id"])
    op.create_index("ix_ledger_transmissions_ticket", "ledger_transmissions", ["ticket"])


def downgrade() -> None:
    op.drop_index("ix_ledger_transmissions_ticket", "ledger_transmissions")
    op.drop_index("ix_ledger_transmissions_message_id", "ledger_transmissions")
    op.drop_table("ledger_transmissions")
