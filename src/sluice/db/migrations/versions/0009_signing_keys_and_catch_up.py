"""API keys: an Ed25519 signing public key; withdrawals: an index for catching up by update time

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        # Hex of the 32 raw bytes. Keys that signed with HMAC keep require_signature and no
        # public key: they are refused until replaced (docs/api.md, "Signed requests").
        table.add_column(sa.Column("signing_public_key", sa.String(64)))
    op.create_index("ix_withdrawals_updated_at_seq", "withdrawals", ["updated_at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_withdrawals_updated_at_seq", table_name="withdrawals")
    with op.batch_alter_table("api_keys") as table:
        table.drop_column("signing_public_key")
