"""Signatures granted by a signer kept apart (`sluice signer`)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from sluice.db.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signer_grants",
        sa.Column("hash", sa.String(66), primary_key=True),
        sa.Column("withdrawal_id", sa.String(64), nullable=False),
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("wallet", sa.String(42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.String(40), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_signer_grants_withdrawal_id", "signer_grants", ["withdrawal_id"])


def downgrade() -> None:
    op.drop_index("ix_signer_grants_withdrawal_id", table_name="signer_grants")
    op.drop_table("signer_grants")
