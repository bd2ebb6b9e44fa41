"""What the signer has signed: one row per payload signature and withdrawal it pays (a
transaction that pays several withdrawals has a row for each; no-ops are not recorded)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.db.tables import signer_grants


@dataclass(frozen=True, slots=True)
class Grant:
    """A payload signature handed out, for one of the withdrawals it pays."""

    hash: str
    withdrawal_id: str
    network: str
    wallet: str
    nonce: int
    transaction_id: str
    at: datetime


class SqlGrantRepository:
    """Grants in SQL."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def for_withdrawal(self, withdrawal_id: str) -> list[Grant]:
        """Every payload signature of a withdrawal, oldest first."""
        query = (
            select(signer_grants)
            .where(signer_grants.c.withdrawal_id == withdrawal_id)
            .order_by(signer_grants.c.at, signer_grants.c.hash)
        )
        return [
            Grant(
                hash=row.hash,
                withdrawal_id=row.withdrawal_id,
                network=row.network,
                wallet=row.wallet,
                nonce=int(row.nonce),
                transaction_id=row.transaction_id,
                at=row.at,
            )
            for row in await self._c.execute(query)
        ]

    async def add(self, grant: Grant) -> None:
        """Record a signature before it is handed out."""
        await self._c.execute(
            insert(signer_grants).values(
                hash=grant.hash,
                withdrawal_id=grant.withdrawal_id,
                network=grant.network,
                wallet=grant.wallet,
                nonce=grant.nonce,
                transaction_id=grant.transaction_id,
                at=grant.at,
            )
        )
