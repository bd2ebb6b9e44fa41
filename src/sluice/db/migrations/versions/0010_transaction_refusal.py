"""Transactions: why a node refused a payload for good

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chain_transactions") as table:
        # The refusal's reason (gas_too_low, wrong_chain_id...): a no-op then takes the nonce
        # and the withdrawals fail with `rejected` once it is final.
        table.add_column(sa.Column("refusal", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("chain_transactions") as table:
        table.drop_column("refusal")
