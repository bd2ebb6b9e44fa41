"""API keys restricted to some users and to source IP ranges

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.add_column(sa.Column("user_ids", sa.JSON()))
        table.add_column(sa.Column("ip_ranges", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.drop_column("ip_ranges")
        table.drop_column("user_ids")
