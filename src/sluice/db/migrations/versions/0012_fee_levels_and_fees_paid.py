"""Fee levels and fees paid

A withdrawal may ask for a fee level (``priority``: slow, normal, fast; NULL: the network's
default), which its transaction is priced at; once mined, both record what the receipt says the
transaction paid for gas (``fee_paid``, wei; an OP Stack chain's L1 data fee included).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from sluice.db.types import BaseUnits

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for name in ("withdrawals", "chain_transactions"):
        with op.batch_alter_table(name) as table:
            table.add_column(sa.Column("priority", sa.String(8)))
            table.add_column(sa.Column("fee_paid", BaseUnits()))


def downgrade() -> None:
    for name in ("withdrawals", "chain_transactions"):
        with op.batch_alter_table(name) as table:
            table.drop_column("fee_paid")
            table.drop_column("priority")
