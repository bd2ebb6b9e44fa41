"""Stage 3: send a stored transaction. Sending is idempotent: the same signed bytes, every time."""

from __future__ import annotations

import structlog

from sluice.domain.transaction import Attempt, ChainTransaction, TransactionStatus
from sluice.domain.withdrawal import WithdrawalStatus, move
from sluice.errors import ChainUnavailableError
from sluice.ports import Clock, SendResult, UnitOfWork
from sluice.services import jobs
from sluice.services.registry import NetworkRegistry

log = structlog.get_logger(__name__)


class BroadcastService:
    """SIGNED → BROADCAST for the transaction, SIGNED → BROADCASTING for its withdrawals."""

    def __init__(self, registry: NetworkRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock

    async def pending(
        self, uow: UnitOfWork, transaction_id: str
    ) -> tuple[ChainTransaction, Attempt] | None:
        """The transaction and the attempt to send, if it still waits to be sent."""
        transaction = await uow.transactions.get(transaction_id)
        if transaction is None or transaction.status is not TransactionStatus.SIGNED:
            return None
        attempts = await uow.transactions.attempts(transaction_id)
        return transaction, attempts[-1]

    async def send(self, transaction: ChainTransaction, attempt: Attempt) -> SendResult:
        """Send the stored attempt's raw bytes; never signs anything.

        Raises:
            ChainUnavailableError: The node did not take it and it may not have it (retry).
        """
        chain = self._registry.get(transaction.network).chain
        result = await chain.send_raw_transaction(attempt.raw)
        if not result.accepted:
            raise ChainUnavailableError(f"the node refused the transaction ({result.note})")
        log.info(
            "transaction sent",
            transaction_id=transaction.id,
            transaction_hash=attempt.hash,
            nonce=transaction.nonce,
            note=result.note or "accepted",
        )
        return result

    async def record_sent(
        self, uow: UnitOfWork, transaction_id: str, attempt: Attempt, result: SendResult
    ) -> bool:
        """Record that the attempt went out; a no-op if someone recorded it already."""
        transaction = await uow.transactions.get(transaction_id, lock=True)
        if transaction is None or transaction.status is not TransactionStatus.SIGNED:
            return False
        now = self._clock.now()
        await uow.transactions.mark_sent(attempt.id, now)
        transaction.status = TransactionStatus.BROADCAST
        transaction.updated_at = now
        await uow.transactions.save(transaction)
        reason = f"sent {attempt.hash}" + (f" ({result.note})" if result.note else "")
        for withdrawal in await uow.withdrawals.for_transaction(transaction_id, lock=True):
            if withdrawal.status is not WithdrawalStatus.SIGNED:
                continue
            change = move(
                withdrawal,
                WithdrawalStatus.BROADCASTING,
                at=now,
                reason=reason,
                data={"transactionHash": attempt.hash},
            )
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)
        network = self._registry.get(transaction.network).network
        uow.enqueue(
            jobs.CONFIRM, {"transactionId": transaction_id}, delay_s=network.poll_interval_s
        )
        return True
