"""Webhook endpoints, events and deliveries

Reserved while issue 13 is built in parallel branches; the tables land with their code.

Revision ID: 0015
Revises: 0014
"""

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
