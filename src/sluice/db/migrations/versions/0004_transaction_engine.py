"""Transaction engine: kinds, cancels, attempts' purpose and outcome, waiting reasons

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from sluice.db.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chain_transactions") as table:
        table.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="PAYOUT"))
        table.add_column(sa.Column("cancel_requested_at", UTCDateTime()))
        table.add_column(sa.Column("nonce_used_at_block", sa.BigInteger()))
    with op.batch_alter_table("transaction_attempts") as table:
        table.add_column(
            sa.Column("purpose", sa.String(16), nullable=False, server_default="PAYLOAD")
        )
        table.add_column(sa.Column("outcome", sa.String(16)))
        table.add_column(sa.Column("note", sa.String(64)))
    with op.batch_alter_table("withdrawals") as table:
        table.add_column(sa.Column("waiting_reason", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("withdrawals") as table:
        table.drop_column("waiting_reason")
    with op.batch_alter_table("transaction_attempts") as table:
        table.drop_column("note")
        table.drop_column("outcome")
        table.drop_column("purpose")
    with op.batch_alter_table("chain_transactions") as table:
        table.drop_column("nonce_used_at_block")
        table.drop_column("cancel_requested_at")
        table.drop_column("kind")
