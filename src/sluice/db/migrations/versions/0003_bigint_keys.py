"""64-bit surrogate keys on PostgreSQL

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (table, column, sequence) whose serial keys become bigint. SQLite's INTEGER keys are 64-bit.
_KEYS = (
    ("withdrawals", "seq", "withdrawals_seq_seq"),
    ("withdrawal_events", "id", "withdrawal_events_id_seq"),
    ("ledger_entries", "id", "ledger_entries_id_seq"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, sequence in _KEYS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_nullable=False)
        op.execute(f"ALTER SEQUENCE {sequence} AS bigint")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, sequence in _KEYS:
        op.execute(f"ALTER SEQUENCE {sequence} AS integer")
        op.alter_column(table, column, type_=sa.Integer(), existing_nullable=False)
