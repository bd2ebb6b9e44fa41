"""Withdrawals paid on their own

A withdrawal whose destination costs more gas inside a batch (the coin to an account that does
not exist yet), or whose batch reverted, is marked ``unbatched``: from then on it is paid by a
transaction of its own. The batch a withdrawal is in is its transaction (``transaction_id``);
its position is its rank among that transaction's withdrawals in acceptance order (``seq``).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("withdrawals") as table:
        table.add_column(
            sa.Column("unbatched", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("withdrawals") as table:
        table.drop_column("unbatched")
