"""Due-diligence runs: the ``[due_diligence]`` settings each daily run scheduled with.

Revision ID: 0008_due_diligence_run_settings
Revises: 0007_transmissions
Create Date: 2027-01-10

``ledger_due_diligence_runs.settings`` (JSON text, nullable: the runs before it have none): the
measure, the reminders' spacing, the measure's day and the day reporting began, as the run used
them, so that the DAC7 view's due-diligence desk computes the actions with the settings the run's
feed was made with, not with the settings of the process showing it.

Written out in full (not imported from reporting.ledger.schema).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_due_diligence_run_settings"
down_revision = "0007_transmissions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_due_diligence_runs") as batch:
        batch.add_column(sa.Column("settings", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_due_diligence_runs") as batch:
        batch.drop_column("settings")
