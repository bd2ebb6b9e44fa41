"""initial schema

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

from sluice.db.types import BaseUnits, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("scopes", sa.String(length=256), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_table(
        "balances",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=42), nullable=False),
        sa.Column("available", BaseUnits(), nullable=False),
        sa.Column("held", BaseUnits(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "network", "asset_key", name=op.f("pk_balances")),
    )
    op.create_table(
        "chain_transactions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("from_address", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=False),
        sa.Column("value", BaseUnits(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("gas_limit", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("mined_hash", sa.String(length=66), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_transactions")),
        sa.UniqueConstraint(
            "network",
            "from_address",
            "nonce",
            name=op.f("uq_chain_transactions_network_from_address_nonce"),
        ),
    )
    with op.batch_alter_table("chain_transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chain_transactions_status_created_at"),
            ["status", "created_at"],
            unique=False,
        )

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=42), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", BaseUnits(), nullable=False),
        sa.Column("withdrawal_id", sa.String(length=64), nullable=True),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("reference", name=op.f("uq_ledger_entries_reference")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_user_id_network_asset_key"),
            ["user_id", "network", "asset_key"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_withdrawal_id"), ["withdrawal_id"], unique=False
        )

    op.create_table(
        "nonce_counters",
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("network", "address", name=op.f("pk_nonce_counters")),
    )
    op.create_table(
        "withdrawal_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("withdrawal_id", sa.String(length=64), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_withdrawal_events")),
    )
    with op.batch_alter_table("withdrawal_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_withdrawal_events_withdrawal_id_id"),
            ["withdrawal_id", "id"],
            unique=False,
        )

    op.create_table(
        "transaction_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("transaction_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("max_fee_per_gas", BaseUnits(), nullable=False),
        sa.Column("max_priority_fee_per_gas", BaseUnits(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["chain_transactions.id"],
            name=op.f("fk_transaction_attempts_transaction_id_chain_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transaction_attempts")),
        sa.UniqueConstraint("hash", name=op.f("uq_transaction_attempts_hash")),
        sa.UniqueConstraint(
            "transaction_id", "seq", name=op.f("uq_transaction_attempts_transaction_id_seq")
        ),
    )
    op.create_table(
        "withdrawals",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=42), nullable=False),
        sa.Column("token_address", sa.String(length=42), nullable=True),
        sa.Column("amount", BaseUnits(), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("transaction_id", sa.String(length=40), nullable=True),
        sa.Column("transaction_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["chain_transactions.id"],
            name=op.f("fk_withdrawals_transaction_id_chain_transactions"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_withdrawals")),
        sa.UniqueConstraint("id", name=op.f("uq_withdrawals_id")),
    )
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_withdrawals_status_seq"), ["status", "seq"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_withdrawals_transaction_id"), ["transaction_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_withdrawals_user_id_seq"), ["user_id", "seq"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_withdrawals_user_id_seq"))
        batch_op.drop_index(batch_op.f("ix_withdrawals_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_withdrawals_status_seq"))

    op.drop_table("withdrawals")
    op.drop_table("transaction_attempts")
    with op.batch_alter_table("withdrawal_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_withdrawal_events_withdrawal_id_id"))

    op.drop_table("withdrawal_events")
    op.drop_table("nonce_counters")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_withdrawal_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_user_id_network_asset_key"))

    op.drop_table("ledger_entries")
    with op.batch_alter_table("chain_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_transactions_status_created_at"))

    op.drop_table("chain_transactions")
    op.drop_table("balances")
    op.drop_table("api_keys")
