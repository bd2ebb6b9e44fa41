"""On-chain transactions, attempts and nonce counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.db.tables import (
    chain_transactions,
    nonce_counters,
    transaction_attempts,
    withdrawals,
)
from sluice.db.withdrawals import to_withdrawal
from sluice.domain.addresses import Address
from sluice.domain.fees import FeeLevel
from sluice.domain.transaction import (
    FOLLOWED,
    IN_FLIGHT,
    UNMINED,
    Attempt,
    AttemptOutcome,
    AttemptPurpose,
    ChainTransaction,
    Fees,
    Payload,
    TransactionKind,
    TransactionStatus,
)
from sluice.errors import TransientError
from sluice.ports import InFlight


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
        kind=TransactionKind(row.kind),
        cancel_requested_at=row.cancel_requested_at,
        nonce_used_at_block=row.nonce_used_at_block,
        watch=row.watch,
        watch_until=row.watch_until,
        refusal=row.refusal,
        priority=FeeLevel(row.priority) if row.priority else None,
        fee_paid=row.fee_paid,
    )


def _to_attempt(row: Any) -> Attempt:
    return Attempt(
        id=row.id,
        transaction_id=row.transaction_id,
        seq=row.seq,
        fees=Fees(row.max_fee_per_gas, row.max_priority_fee_per_gas),
        raw=bytes(row.raw),
        hash=row.hash,
        created_at=row.created_at,
        sent_at=row.sent_at,
        purpose=AttemptPurpose(row.purpose),
        outcome=None if row.outcome is None else AttemptOutcome(row.outcome),
        note=row.note,
    )


_UNMINED = sorted(s.value for s in UNMINED)
_IN_FLIGHT = sorted(s.value for s in IN_FLIGHT)
_FOLLOWED = sorted(s.value for s in FOLLOWED)


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
                kind=transaction.kind.value,
                priority=transaction.priority,
            )
        )
        await self.add_attempt(attempt)

    async def add_attempt(self, attempt: Attempt) -> None:
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
                purpose=attempt.purpose.value,
                outcome=None if attempt.outcome is None else attempt.outcome.value,
                note=attempt.note,
            )
        )

    async def get(self, transaction_id: str, *, lock: bool = False) -> ChainTransaction | None:
        query = select(chain_transactions).where(chain_transactions.c.id == transaction_id)
        if lock:
            query = query.with_for_update()
        row = (await self._c.execute(query)).first()
        return None if row is None else _to_transaction(row)

    async def load(self, transaction_id: str) -> ChainTransaction | None:
        # The engine's one lock order: the transaction row, then its withdrawals' rows (in
        # their `seq` order), then (by the services) the users' balance rows.
        transaction = await self.get(transaction_id, lock=True)
        if transaction is None:
            return None
        carried = (
            select(withdrawals)
            .where(withdrawals.c.transaction_id == transaction_id)
            .order_by(withdrawals.c.seq)
            .with_for_update()
        )
        transaction.withdrawals = [to_withdrawal(row) for row in await self._c.execute(carried)]
        transaction.attempts = await self.attempts(transaction_id)
        return transaction

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
                cancel_requested_at=transaction.cancel_requested_at,
                nonce_used_at_block=transaction.nonce_used_at_block,
                watch=transaction.watch,
                watch_until=transaction.watch_until,
                refusal=transaction.refusal,
                fee_paid=transaction.fee_paid,
            )
        )

    async def attempts(self, transaction_id: str) -> list[Attempt]:
        query = (
            select(transaction_attempts)
            .where(transaction_attempts.c.transaction_id == transaction_id)
            .order_by(transaction_attempts.c.seq)
        )
        return [_to_attempt(row) for row in await self._c.execute(query)]

    async def mark_sent(self, attempt_id: str, at: datetime, note: str | None = None) -> None:
        await self._c.execute(
            update(transaction_attempts)
            .where(transaction_attempts.c.id == attempt_id)
            .values(sent_at=func.coalesce(transaction_attempts.c.sent_at, at), note=note)
        )

    async def set_outcomes(self, transaction_id: str, mined_hash: str | None) -> None:
        attempts = transaction_attempts.c
        where = attempts.transaction_id == transaction_id
        await self._c.execute(
            update(transaction_attempts).where(where).values(outcome=AttemptOutcome.REPLACED.value)
        )
        if mined_hash is not None:
            await self._c.execute(
                update(transaction_attempts)
                .where(where, attempts.hash == mined_hash)
                .values(outcome=AttemptOutcome.MINED.value)
            )

    async def at_nonce(self, network: str, address: Address, nonce: int) -> ChainTransaction | None:
        c = chain_transactions.c
        query = select(chain_transactions).where(
            c.network == network, c.from_address == address, c.nonce == nonce
        )
        row = (await self._c.execute(query)).first()
        return None if row is None else _to_transaction(row)

    async def nonces_from(self, network: str, address: Address, first: int) -> set[int]:
        c = chain_transactions.c
        query = select(c.nonce).where(
            c.network == network, c.from_address == address, c.nonce >= first
        )
        return {int(n) for n in (await self._c.execute(query)).scalars()}

    async def count_in_flight(self, network: str, address: Address) -> int:
        c = chain_transactions.c
        count_query = select(func.count()).where(
            c.network == network, c.from_address == address, c.status.in_(_IN_FLIGHT)
        )
        return int((await self._c.execute(count_query)).scalar_one())

    async def in_flight(self, network: str, address: Address) -> InFlight:
        c = chain_transactions.c
        a = transaction_attempts.c
        count = await self.count_in_flight(network, address)
        # What unmined transactions may still take from the wallet: value plus gas at the
        # highest fee cap of any of their attempts. Amounts are summed here, not in SQL: SQLite
        # stores them as text, and its SUM and MAX would go through floats and string order.
        cost_query = (
            select(c.id, c.value, c.gas_limit, a.max_fee_per_gas)
            .join(transaction_attempts, a.transaction_id == c.id)
            .where(c.network == network, c.from_address == address, c.status.in_(_UNMINED))
        )
        costs: dict[str, int] = {}
        for row in await self._c.execute(cost_query):
            cost = int(row.value) + int(row.gas_limit) * int(row.max_fee_per_gas)
            costs[row.id] = max(cost, costs.get(row.id, 0))
        native = sum(costs.values())
        w = withdrawals.c
        token_query = (
            select(w.asset_key, w.amount)
            .join(chain_transactions, c.id == w.transaction_id)
            .where(
                c.network == network,
                c.from_address == address,
                c.status.in_(_UNMINED),
                w.token_address.is_not(None),
            )
        )
        tokens: dict[str, int] = {}
        for token_row in await self._c.execute(token_query):
            tokens[token_row.asset_key] = tokens.get(token_row.asset_key, 0) + int(token_row.amount)
        return InFlight(count=count, native=native, tokens=tokens)

    async def renew_watch(self, transaction_id: str, watch: str, until: datetime) -> bool:
        c = chain_transactions.c
        result = await self._c.execute(
            update(chain_transactions)
            .where(c.id == transaction_id, c.watch == watch)
            .values(watch_until=until)
        )
        return bool(result.rowcount)

    async def unwatched(self, now: datetime, *, limit: int) -> list[str]:
        c = chain_transactions.c
        query = (
            select(c.id)
            .where(
                c.status.in_(_FOLLOWED),
                (c.watch_until.is_(None)) | (c.watch_until < now),
            )
            .order_by(c.created_at, c.id)
            .limit(limit)
        )
        return list((await self._c.execute(query)).scalars())

    async def ids_in_status(
        self, status: str, *, limit: int, updated_before: datetime | None = None
    ) -> list[str]:
        c = chain_transactions.c
        query = select(c.id).where(c.status == status)
        if updated_before is not None:
            query = query.where(c.updated_at < updated_before)
        # The id breaks ties: PostgreSQL, unlike SQLite, returns equal keys in no set order.
        query = query.order_by(c.created_at, c.id).limit(limit)
        return list((await self._c.execute(query)).scalars())
