"""Groups of operators: each message and each filing lock belongs to one operator of the group.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-12

``operator_id`` is the configuration's id of the operator that filed the message
(``[operators.ID]``; ``default`` for ``[operator]``): every query of a period's live state, its
pending messages and its lock is scoped by it, so that two operators of a group filing in the
same member state never share a live state. Every message recorded before is the default
operator's, as every run before was. The lock's key gains the operator: two operators file the
same period at once.

Written out in full (not imported from reporting.ledger.schema): a revision stays what it was
when later ones change the model.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_messages") as batch:
        batch.add_column(sa.Column("operator_id", sa.String(32), nullable=False, server_default="default"))
    op.create_index(
        "ix_ledger_messages_operator_period",
        "ledger_messages",
        ["operator_id", "environment", "authority", "reporting_year"],
    )
    with op.batch_alter_table("ledger_locks", recreate="always") as batch:
        batch.add_column(sa.Column("operator_id", sa.String(32), nullable=False, server_default="default"))
        batch.drop_constraint("pk_ledger_locks", type_="primary")
        batch.create_primary_key("pk_ledger_locks", ["environment", "authority", "reporting_year", "operator_id"])


def downgrade() -> None:
    with op.batch_alter_table("ledger_locks", recreate="always") as batch:
        batch.drop_constraint("pk_ledger_locks", type_="primary")
        batch.drop_column("operator_id")
        batch.create_primary_key("pk_ledger_locks", ["environment", "authority", "reporting_year"])
    op.drop_index("ix_ledger_messages_operator_period", "ledger_messages")
    with op.batch_alter_table("ledger_messages") as batch:
        batch.drop_column("operator_id")
