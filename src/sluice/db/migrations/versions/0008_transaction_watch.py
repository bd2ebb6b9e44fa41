"""Transactions: the token and lease of the confirmation chain that follows them

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from sluice.db.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chain_transactions") as table:
        table.add_column(sa.Column("watch", sa.String(40)))
        table.add_column(sa.Column("watch_until", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("chain_transactions") as table:
        table.drop_column("watch_until")
        table.drop_column("watch")
