"""The compliance desk's list: per operator and seller that needs attention, what the DAC7 view shows.

Revision ID: 0009_due_diligence_desk
Revises: 0008_due_diligence_run_settings
Create Date: 2027-01-24

``ledger_due_diligence_desk`` holds, for each seller that needs attention, its stage, the items it
lacks, its cycle's dates, the actions due (each with its first and last day), the next step and the
next action with its day, as the daily run computed them with its settings; the view reads it with
SQL (counts per stage, a page of the list, the CSV export) instead of computing each seller again.
Ids, item codes and dates only.
``ledger_due_diligence_runs.desk``: the sellers the desk lists after the run (NULL for the runs
before this revision: the next run fills the desk for all of the operator's sellers).

Written out in full (not imported from reporting.ledger.schema).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_due_diligence_desk"
down_revision = "0008_due_diligence_run_settings"
branch_labels = None
depends_on = None

STAGES = "('requested', 'reminded_twice', 'blocked', 'other')"


def upgrade() -> None:
    with op.batch_alter_table("ledger_due_diligence_runs") as batch:
        batch.add_column(sa.Column("desk", sa.Integer, nullable=True))
    op.create_table(
        "ledger_due_diligence_desk",
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("seller_id", sa.String(200), nullable=False),
        sa.Column("period", sa.Integer, nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("seller_type", sa.String(16)),
        sa.Column("scope", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("items_missing", sa.String(300), nullable=False),
        sa.Column("items_invalid", sa.String(300), nullable=False),
        sa.Column("items_unverified", sa.String(300), nullable=False),
        sa.Column("notice_on", sa.Date),
        sa.Column("requested_on", sa.Date),
        sa.Column("requested_items", sa.String(300)),
        sa.Column("reminder_1_on", sa.Date),
        sa.Column("reminder_2_on", sa.Date),
        sa.Column("measure", sa.String(20)),
        sa.Column("measure_on", sa.Date),
        sa.Column("release_due", sa.Date),
        sa.Column("notice_from", sa.Date),
        sa.Column("request_from", sa.Date),
        sa.Column("request_latest", sa.Date),
        sa.Column("step", sa.String(20)),
        sa.Column("step_from", sa.Date),
        sa.Column("step_latest", sa.Date),
        sa.Column("release_from", sa.Date),
        sa.Column("next_action", sa.String(20)),
        sa.Column("next_on", sa.Date),
        sa.PrimaryKeyConstraint("operator_id", "seller_id", name="pk_ledger_due_diligence_desk"),
        sa.CheckConstraint(f"stage IN {STAGES}", name="ck_ledger_due_diligence_desk_stage"),
    )
    op.create_index(
        "ix_ledger_due_diligence_desk_operator_id_country_seller_id",
        "ledger_due_diligence_desk",
        ["operator_id", "country", "seller_id"],
    )
    op.create_index(
        "ix_ledger_due_diligence_desk_operator_id_stage", "ledger_due_diligence_desk", ["operator_id", "stage"]
    )
    op.create_index(
        "ix_ledger_due_diligence_desk_step_operator_id_seller_id",
        "ledger_due_diligence_desk",
        ["step", "operator_id", "seller_id"],
    )
    op.create_index(
        "ix_ledger_due_diligence_desk_next_action_operator_id_seller_id",
        "ledger_due_diligence_desk",
        ["next_action", "operator_id", "seller_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_due_diligence_desk_next_action_operator_id_seller_id", "ledger_due_diligence_desk")
    op.drop_index("ix_ledger_due_diligence_desk_step_operator_id_seller_id", "ledger_due_diligence_desk")
    op.drop_index("ix_ledger_due_diligence_desk_operator_id_stage", "ledger_due_diligence_desk")
    op.drop_index("ix_ledger_due_diligence_desk_operator_id_country_seller_id", "ledger_due_diligence_desk")
    op.drop_table("ledger_due_diligence_desk")
    with op.batch_alter_table("ledger_due_diligence_runs") as batch:
        batch.drop_column("desk")
