"""API keys: required request signatures and per-key rate limits

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.add_column(
            sa.Column("require_signature", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        table.add_column(sa.Column("rate_limit_per_s", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.drop_column("rate_limit_per_s")
        table.drop_column("require_signature")
