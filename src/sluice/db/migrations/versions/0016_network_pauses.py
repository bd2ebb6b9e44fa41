"""Network pauses and the circuit breaker

``network_pauses`` holds one row per network that was paused, resumed or checked by its circuit
breaker, and one for every network at once (``network = "*"``, the freeze); ``paused_at`` NULL
means the network runs. An index on ``chain_transactions (network, created_at)`` serves the
breaker's sum of the payouts signed within its window.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

from sluice.db.types import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network_pauses",
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("paused_at", UTCDateTime(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(160), nullable=True),
        sa.Column("resumed_at", UTCDateTime(), nullable=True),
        sa.Column("resumed_by", sa.String(160), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("network", name="pk_network_pauses"),
    )
    op.create_index(
        "ix_chain_transactions_network_created_at",
        "chain_transactions",
        ["network", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_chain_transactions_network_created_at", table_name="chain_transactions")
    op.drop_table("network_pauses")
