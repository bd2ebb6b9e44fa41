"""Operators, their API keys, and the hash-chained audit log

Reserved while issue 13 is built in parallel branches; the tables land with their code.

Revision ID: 0014
Revises: 0013
"""

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
