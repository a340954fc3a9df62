"""Other platform operators as records of their own: each AssumedPlatformOperator, and the
AssumingPlatformOperator, is keyed by its ledger key in ``seller_key``, as a seller is by its
seller_id; only the PlatformOperator record has no key.

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10

No ledger before this revision holds an ``other_platform_operators`` record (no release wrote
one), so the stricter constraint holds for every existing row. On SQLite the table is copied
(batch mode); its partial unique index on ``doc_ref_id`` is dropped before and made again after,
so that the copy cannot lose its ``WHERE`` clause.

Written out in full (not imported from reporting.ledger.schema): a revision stays what it was
when later ones change the model.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BEFORE = "(kind = 'seller' AND seller_key IS NOT NULL) OR (kind <> 'seller' AND seller_key IS NULL)"
_AFTER = "(kind = 'platform_operator') = (seller_key IS NULL)"
_INDEX = "uq_ledger_records_doc_ref_id"


def _swap(old: str, new: str) -> None:
    op.drop_index(_INDEX, table_name="ledger_records")
    with op.batch_alter_table("ledger_records") as batch:
        batch.drop_constraint("ck_ledger_records_seller_key", type_="check")
        batch.create_check_constraint("ck_ledger_records_seller_key", sa.text(new))
    op.create_index(
        _INDEX,
        "ledger_records",
        ["doc_ref_id"],
        unique=True,
        sqlite_where=sa.text("doc_type <> 'resend'"),
        postgresql_where=sa.text("doc_type <> 'resend'"),
    )


def upgrade() -> None:
    _swap(_BEFORE, _AFTER)


def downgrade() -> None:
    held = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM ledger_records WHERE kind = 'other_platform_operators'"))
        .scalar_one()
    )
    if held:
        raise RuntimeError(
            f"the ledger holds {held} record(s) of other platform operators, which revision 0002 cannot "
            "keep; they are filings: the downgrade is refused"
        )
    _swap(_AFTER, _BEFORE)
