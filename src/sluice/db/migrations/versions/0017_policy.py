"""The policy engine: versions, decisions, address book, blocklist, fees

Reserved while issue 13 is built in parallel branches; the tables land with their code.

Revision ID: 0017
Revises: 0016
"""

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
