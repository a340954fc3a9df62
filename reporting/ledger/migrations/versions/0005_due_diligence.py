"""Due diligence: each seller's state per operator, its history, and the daily runs.

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-20

``ledger_due_diligence`` holds one row per operator and seller: its scope, the state of each data
item (missing, invalid, unverified, verified, not_applicable) with a digest of the item's value
and the day of its last verification, and where its request cycle stands (the dates the platform
reported the notice, the request, the reminders, the measure sent). ``ledger_due_diligence_events``
is its history, append-only until the retention deletes it (PStTG § 24(3)).
``ledger_due_diligence_runs`` records each daily run.

Written out in full (not imported from reporting.ledger.schema): a revision stays what it was
when later ones change the model.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ITEMS = (
    "name",
    "primary_address",
    "tin",
    "birth_place",
    "birth_date",
    "vat",
    "business_registration",
    "permanent_establishment",
    "property_address",
    "land_registration",
)
STATES = "('missing', 'invalid', 'unverified', 'verified', 'not_applicable')"
KINDS = (
    "('scope', 'items', 'verification', 'data_received', 'cycle_closed', 'pre_report_notice', 'request', "
    "'reminder_1', 'reminder_2', 'withhold_payouts', 'close_account', 'release')"
)


def upgrade() -> None:
    items: list[sa.Column[object]] = []
    checks = []
    for item in ITEMS:
        items += [
            sa.Column(f"{item}_state", sa.String(14), nullable=False),
            sa.Column(f"{item}_hash", sa.String(16)),
            sa.Column(f"{item}_checked", sa.Date),
        ]
        checks.append(sa.CheckConstraint(f"{item}_state IN {STATES}", name=f"ck_ledger_due_diligence_{item}_state"))
    op.create_table(
        "ledger_due_diligence",
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("seller_id", sa.String(200), nullable=False),
        sa.Column("seller_type", sa.String(16)),
        sa.Column("country", sa.String(2)),
        sa.Column("registered_at", sa.Date),
        sa.Column("scope", sa.String(40), nullable=False),
        sa.Column("period", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("needs", sa.String(300), nullable=False),
        *items,
        sa.Column("reverify_on", sa.Date),
        sa.Column("notice_due", sa.Date),
        sa.Column("notice_on", sa.Date),
        sa.Column("request_due", sa.Date),
        sa.Column("requested_on", sa.Date),
        sa.Column("requested_items", sa.String(300)),
        sa.Column("reminder_1_on", sa.Date),
        sa.Column("reminder_2_on", sa.Date),
        sa.Column("measure", sa.String(20)),
        sa.Column("measure_on", sa.Date),
        sa.Column("release_due", sa.Date),
        sa.Column("cycles", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_seen", sa.Date, nullable=False),
        sa.Column("updated", sa.Date, nullable=False),
        sa.Column("changed", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("operator_id", "seller_id", name="pk_ledger_due_diligence"),
        *checks,
        sa.CheckConstraint(
            "measure IS NULL OR measure IN ('withhold_payouts', 'close_account')",
            name="ck_ledger_due_diligence_measure",
        ),
    )
    op.create_index("ix_ledger_due_diligence_operator_id_scope", "ledger_due_diligence", ["operator_id", "scope"])
    op.create_index("ix_ledger_due_diligence_operator_id_updated", "ledger_due_diligence", ["operator_id", "updated"])

    op.create_table(
        "ledger_due_diligence_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("seller_id", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("source", sa.String(400), nullable=False),
        sa.Column("recorded", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_due_diligence_events"),
        sa.CheckConstraint(f"kind IN {KINDS}", name="ck_ledger_due_diligence_events_kind"),
    )
    op.create_index(
        "ix_ledger_due_diligence_events_operator_id_seller_id_at",
        "ledger_due_diligence_events",
        ["operator_id", "seller_id", "at"],
    )
    op.create_index("ix_ledger_due_diligence_events_recorded", "ledger_due_diligence_events", ["recorded"])

    op.create_table(
        "ledger_due_diligence_runs",
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("run_date", sa.Date, nullable=False),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("finished", sa.DateTime, nullable=False),
        sa.Column("sellers", sa.Integer, nullable=False),
        sa.Column("in_scope", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("actions", sa.Text, nullable=False),
        sa.Column("feed_sha256", sa.String(64)),
        sa.PrimaryKeyConstraint("operator_id", "run_date", name="pk_ledger_due_diligence_runs"),
    )


def downgrade() -> None:
    op.drop_table("ledger_due_diligence_runs")
    op.drop_index("ix_ledger_due_diligence_events_recorded", "ledger_due_diligence_events")
    op.drop_index("ix_ledger_due_diligence_events_operator_id_seller_id_at", "ledger_due_diligence_events")
    op.drop_table("ledger_due_diligence_events")
    op.drop_index("ix_ledger_due_diligence_operator_id_updated", "ledger_due_diligence")
    op.drop_index("ix_ledger_due_diligence_operator_id_scope", "ledger_due_diligence")
    op.drop_table("ledger_due_diligence")
