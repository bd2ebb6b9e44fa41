"""On-chain transactions, attempts and nonce counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.db.tables import chain_transactions, nonce_counters, transaction_attempts
from sluice.domain.addresses import Address
from sluice.domain.transaction import (
    Attempt,
    ChainTransaction,
    Fees,
    Payload,
    TransactionStatus,
)
from sluice.errors import TransientError


def _to_transaction(row: Any) -> ChainTransaction:
    return ChainTransaction(
        id=row.id,
        network=row.network,
        from_address=Address(row.from_address),
        nonce=row.nonce,
        payload=Payload(to=Address(row.to_address), value=row.value, data=bytes(row.data)),
        gas_limit=row.gas_limit,
        status=TransactionStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        request_id=row.request_id,
        block_number=row.block_number,
        block_hash=row.block_hash,
        mined_hash=row.mined_hash,
    )


class SqlTransactionRepository:
    """Transactions in SQL."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def next_nonce(self, network: str, address: Address) -> int:
        where = (nonce_counters.c.network == network, nonce_counters.c.address == address)
        # FOR UPDATE holds the counter until commit: the one-writer-per-wallet rule across
        # every process. (On SQLite the transaction's BEGIN IMMEDIATE does the same.)
        row = (
            await self._c.execute(
                select(nonce_counters.c.next_nonce).where(*where).with_for_update()
            )
        ).first()
        if row is None:
            raise TransientError(f"nonce counter for {address} on {network} is not initialised")
        nonce = int(row.next_nonce)
        await self._c.execute(update(nonce_counters).where(*where).values(next_nonce=nonce + 1))
        return nonce

    async def reconcile_nonce(self, network: str, address: Address, chain_count: int) -> int:
        """Make sure the counter exists and is not below what the chain has used.

        The counter only ever moves forward: a stored counter above the chain's count means
        signed transactions that recovery will (re-)send, never nonces to hand out again.
        """
        where = (nonce_counters.c.network == network, nonce_counters.c.address == address)
        locked = select(nonce_counters.c.next_nonce).where(*where).with_for_update()
        row = (await self._c.execute(locked)).first()
        if row is None:
            # Every process reconciles at start-up: on PostgreSQL several may find no counter at
            # once. ON CONFLICT DO NOTHING lets the first insert win (the others wait for it),
            # and the locked read that follows sees and locks whichever row is there.
            values = {"network": network, "address": address, "next_nonce": chain_count}
            if self._c.dialect.name == "postgresql":
                statement = postgresql.insert(nonce_counters).values(values)
                await self._c.execute(
                    statement.on_conflict_do_nothing(index_elements=["network", "address"])
                )
            else:  # SQLite: BEGIN IMMEDIATE already made this transaction the only writer
                await self._c.execute(insert(nonce_counters).values(values))
            row = (await self._c.execute(locked)).one()
        current = int(row.next_nonce)
        if chain_count > current:
            await self._c.execute(
                update(nonce_counters).where(*where).values(next_nonce=chain_count)
            )
            return chain_count
        return current

    async def add(self, transaction: ChainTransaction, attempt: Attempt) -> None:
        await self._c.execute(
            insert(chain_transactions).values(
                id=transaction.id,
                network=transaction.network,
                from_address=transaction.from_address,
                nonce=transaction.nonce,
                to_address=transaction.payload.to,
                value=transaction.payload.value,
                data=transaction.payload.data,
                gas_limit=transaction.gas_limit,
                status=transaction.status.value,
                request_id=transaction.request_id,
                created_at=transaction.created_at,
                updated_at=transaction.updated_at,
            )
        )
        await self._c.execute(
            insert(transaction_attempts).values(
                id=attempt.id,
                transaction_id=attempt.transaction_id,
                seq=attempt.seq,
                max_fee_per_gas=attempt.fees.max_fee_per_gas,
                max_priority_fee_per_gas=attempt.fees.max_priority_fee_per_gas,
                raw=attempt.raw,
                hash=attempt.hash,
                created_at=attempt.created_at,
                sent_at=attempt.sent_at,
            )
        )

    async def get(self, transaction_id: str, *, lock: bool = False) -> ChainTransaction | None:
        query = select(chain_transactions).where(chain_transactions.c.id == transaction_id)
        if lock:
            query = query.with_for_update()
        row = (await self._c.execute(query)).first()
        return None if row is None else _to_transaction(row)

    async def save(self, transaction: ChainTransaction) -> None:
        await self._c.execute(
            update(chain_transactions)
            .where(chain_transactions.c.id == transaction.id)
            .values(
                status=transaction.status.value,
                block_number=transaction.block_number,
                block_hash=transaction.block_hash,
                mined_hash=transaction.mined_hash,
                updated_at=transaction.updated_at,
            )
        )

    async def attempts(self, transaction_id: str) -> list[Attempt]:
        query = (
            select(transaction_attempts)
            .where(transaction_attempts.c.transaction_id == transaction_id)
            .order_by(transaction_attempts.c.seq)
        )
        return [
            Attempt(
                id=row.id,
                transaction_id=row.transaction_id,
                seq=row.seq,
                fees=Fees(row.max_fee_per_gas, row.max_priority_fee_per_gas),
                raw=bytes(row.raw),
                hash=row.hash,
                created_at=row.created_at,
                sent_at=row.sent_at,
            )
            for row in await self._c.execute(query)
        ]

    async def mark_sent(self, attempt_id: str, at: datetime) -> None:
        await self._c.execute(
            update(transaction_attempts)
            .where(
                transaction_attempts.c.id == attempt_id, transaction_attempts.c.sent_at.is_(None)
            )
            .values(sent_at=at)
        )

    async def ids_in_status(self, status: str, *, limit: int) -> list[str]:
        query = (
            select(chain_transactions.c.id)
            .where(chain_transactions.c.status == status)
            # The id breaks ties: PostgreSQL, unlike SQLite, returns equal keys in no set order.
            .order_by(chain_transactions.c.created_at, chain_transactions.c.id)
            .limit(limit)
        )
        return list((await self._c.execute(query)).scalars())
