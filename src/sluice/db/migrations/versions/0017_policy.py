"""The policy engine: versions, decisions, fees, approvals, address book, blocklist, velocity

Each withdrawal records the fee held with its amount, the API key that asked, the policy version
and rule that decided it, and when its wait for approval expires. Indexes serve the velocity
windows (a user's, a destination's, a network's withdrawals since a time).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

from sluice.db.types import BaseUnits, UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("withdrawals") as table:
        table.add_column(sa.Column("fee", BaseUnits(), nullable=True))
        table.add_column(sa.Column("api_key_id", sa.String(32), nullable=True))
        table.add_column(sa.Column("policy_version", sa.String(64), nullable=True))
        table.add_column(sa.Column("policy_rule", sa.String(64), nullable=True))
        table.add_column(sa.Column("approval_expires_at", UTCDateTime(), nullable=True))
    op.create_index("ix_withdrawals_user_id_created_at", "withdrawals", ["user_id", "created_at"])
    op.create_index(
        "ix_withdrawals_to_address_created_at", "withdrawals", ["to_address", "created_at"]
    )
    op.create_index("ix_withdrawals_network_created_at", "withdrawals", ["network", "created_at"])
    op.create_table(
        "policy_versions",
        sa.Column("seq", _KEY, autoincrement=True, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.Column("loaded_by", sa.String(160), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_policy_versions"),
    )
    op.create_index("ix_policy_versions_version", "policy_versions", ["version"])
    op.create_table(
        "address_book",
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("label", sa.String(128), nullable=True),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "network", "address", name="pk_address_book"),
    )
    op.create_table(
        "blocklist",
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_blocklist"),
    )
    op.create_table(
        "approvals",
        sa.Column("withdrawal_id", sa.String(64), nullable=False),
        sa.Column("operator_id", sa.String(40), nullable=False),
        sa.Column("vote", sa.String(8), nullable=False),
        sa.Column("revision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("api_key_id", sa.String(32), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name="fk_approvals_operator_id_operators"
        ),
        sa.PrimaryKeyConstraint("withdrawal_id", "operator_id", name="pk_approvals"),
    )
    op.create_table(
        "velocity_locks",
        sa.Column("key", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_velocity_locks"),
    )


def downgrade() -> None:
    op.drop_table("velocity_locks")
    op.drop_table("approvals")
    op.drop_table("blocklist")
    op.drop_table("address_book")
    op.drop_index("ix_policy_versions_version", "policy_versions")
    op.drop_table("policy_versions")
    op.drop_index("ix_withdrawals_network_created_at", "withdrawals")
    op.drop_index("ix_withdrawals_to_address_created_at", "withdrawals")
    op.drop_index("ix_withdrawals_user_id_created_at", "withdrawals")
    with op.batch_alter_table("withdrawals") as table:
        for column in ("approval_expires_at", "policy_rule", "policy_version", "api_key_id", "fee"):
            table.drop_column(column)
