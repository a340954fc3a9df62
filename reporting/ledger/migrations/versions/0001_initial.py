"""The filing ledger: messages, records, status imports and their errors, filing locks.

Revision ID: 0001
Revises:
Create Date: 2026-01-20

Written out in full (not imported from reporting.ledger.schema): a revision stays what it was
when later ones change the model.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ENVIRONMENTS = "environment IN ('test', 'prod')"


def upgrade() -> None:
    op.create_table(
        "ledger_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_ref_id", sa.String(170), nullable=False),
        sa.Column("environment", sa.String(4), nullable=False),
        sa.Column("authority", sa.String(2), nullable=False),
        sa.Column("operator", sa.String(400), nullable=False),
        sa.Column("reporting_year", sa.Integer, nullable=False),
        sa.Column("message_type_indic", sa.String(6), nullable=False),
        sa.Column("file_name", sa.String(400), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("transfer_id", sa.String(170)),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("published", sa.DateTime),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("status_changed", sa.DateTime),
        sa.Column("triggered_by", sa.String(200)),
        sa.Column("params", sa.Text),
        sa.Column("approved_by", sa.String(200)),
        sa.Column("approved_at", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_messages"),
        sa.UniqueConstraint("message_ref_id", name="uq_ledger_messages_message_ref_id"),
        sa.CheckConstraint(_ENVIRONMENTS, name="ck_ledger_messages_environment"),
        sa.CheckConstraint(
            "status IN ('rendered', 'published', 'accepted', 'rejected', 'discarded')",
            name="ck_ledger_messages_status",
        ),
        sa.CheckConstraint(
            "message_type_indic IN ('DPI401', 'DPI402', 'DPI403')", name="ck_ledger_messages_message_type_indic"
        ),
    )
    op.create_index(
        "ix_ledger_messages_environment_authority_reporting_year",
        "ledger_messages",
        ["environment", "authority", "reporting_year"],
    )
    op.create_index("ix_ledger_messages_transfer_id", "ledger_messages", ["transfer_id"])

    op.create_table(
        "ledger_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("seller_key", sa.String(200)),
        sa.Column("doc_type", sa.String(10), nullable=False),
        sa.Column("doc_type_indic", sa.String(6), nullable=False),
        sa.Column("doc_ref_id", sa.String(200), nullable=False),
        sa.Column("corr_doc_ref_id", sa.String(200)),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("prior_status", sa.String(10)),
        sa.Column("superseded_by", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_records"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["ledger_messages.id"],
            name="fk_ledger_records_message_id_ledger_messages",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("message_id", "position", name="uq_ledger_records_message_id_position"),
        sa.UniqueConstraint("message_id", "doc_ref_id", name="uq_ledger_records_message_id_doc_ref_id"),
        sa.CheckConstraint(
            "kind IN ('platform_operator', 'other_platform_operators', 'seller')", name="ck_ledger_records_kind"
        ),
        sa.CheckConstraint(
            "doc_type IN ('new', 'resend', 'correction', 'deletion')", name="ck_ledger_records_doc_type"
        ),
        sa.CheckConstraint(
            "status IN ('sent', 'accepted', 'rejected', 'superseded', 'deleted')", name="ck_ledger_records_status"
        ),
        sa.CheckConstraint(
            "(kind = 'seller' AND seller_key IS NOT NULL) OR (kind <> 'seller' AND seller_key IS NULL)",
            name="ck_ledger_records_seller_key",
        ),
        sa.CheckConstraint(
            "(doc_type IN ('correction', 'deletion')) = (corr_doc_ref_id IS NOT NULL)",
            name="ck_ledger_records_corr_doc_ref_id",
        ),
        sa.CheckConstraint(
            "doc_type <> 'resend' OR kind = 'platform_operator'", name="ck_ledger_records_resend_operator_only"
        ),
    )
    # DocRefIds are never reused, except by a resend (OECD0) of the PlatformOperator.
    op.create_index(
        "uq_ledger_records_doc_ref_id",
        "ledger_records",
        ["doc_ref_id"],
        unique=True,
        sqlite_where=sa.text("doc_type <> 'resend'"),
        postgresql_where=sa.text("doc_type <> 'resend'"),
    )
    op.create_index("ix_ledger_records_corr_doc_ref_id", "ledger_records", ["corr_doc_ref_id"])
    op.create_index("ix_ledger_records_kind_seller_key", "ledger_records", ["kind", "seller_key"])

    op.create_table(
        "ledger_status_imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, nullable=False),
        sa.Column("format", sa.String(40), nullable=False),
        sa.Column("status_message_ref_id", sa.String(170)),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("file_name", sa.String(400), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("imported", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_status_imports"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["ledger_messages.id"],
            name="fk_ledger_status_imports_message_id_ledger_messages",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("sha256", name="uq_ledger_status_imports_sha256"),
    )

    op.create_table(
        "ledger_errors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, nullable=False),
        sa.Column("import_id", sa.Integer, nullable=False),
        sa.Column("scope", sa.String(6), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("details", sa.Text),
        sa.Column("doc_ref_id", sa.String(200)),
        sa.Column("fields", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_errors"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["ledger_messages.id"],
            name="fk_ledger_errors_message_id_ledger_messages",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["ledger_status_imports.id"],
            name="fk_ledger_errors_import_id_ledger_status_imports",
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint("scope IN ('file', 'record')", name="ck_ledger_errors_scope"),
    )
    op.create_index("ix_ledger_errors_message_id", "ledger_errors", ["message_id"])
    op.create_index("ix_ledger_errors_doc_ref_id", "ledger_errors", ["doc_ref_id"])

    op.create_table(
        "ledger_locks",
        sa.Column("environment", sa.String(4), nullable=False),
        sa.Column("authority", sa.String(2), nullable=False),
        sa.Column("reporting_year", sa.Integer, nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired", sa.DateTime, nullable=False),
        sa.Column("host", sa.String(200)),
        sa.Column("pid", sa.Integer),
        sa.PrimaryKeyConstraint("environment", "authority", "reporting_year", name="pk_ledger_locks"),
    )


def downgrade() -> None:
    for table in ("ledger_locks", "ledger_errors", "ledger_status_imports", "ledger_records", "ledger_messages"):
        op.drop_table(table)
