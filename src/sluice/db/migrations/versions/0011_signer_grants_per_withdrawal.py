"""Signer grants: one row per signature and withdrawal it pays

A transaction may pay several withdrawals: `sluice signer` records its signature once for each,
so the primary key becomes (hash, withdrawal_id). Existing rows (one withdrawal per signature)
keep their meaning.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signer_grants") as table:
        table.drop_constraint("pk_signer_grants", type_="primary")
        table.create_primary_key("pk_signer_grants", ["hash", "withdrawal_id"])


def downgrade() -> None:
    # Fails if a signature paid several withdrawals: those grants cannot be kept in one row.
    with op.batch_alter_table("signer_grants") as table:
        table.drop_constraint("pk_signer_grants", type_="primary")
        table.create_primary_key("pk_signer_grants", ["hash"])
