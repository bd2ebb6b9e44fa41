"""Network pauses and the circuit breaker

Reserved while issue 13 is built in parallel branches; the tables land with their code.

Revision ID: 0016
Revises: 0015
"""

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
