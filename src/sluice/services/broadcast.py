"""Stage 3: send a stored transaction. Sending is idempotent: the same signed bytes, every time.

Whatever the node answers, the transaction then goes to confirmation tracking, which re-sends,
re-prices or fills gaps as the chain requires: a timeout or a dropped connection may hide a
success, "already known", "nonce too low" and "replacement underpriced" mean the nonce is taken
(perhaps by this very transaction), and even a definite refusal (no gas money, a fee below the
base fee, a nonce gap) is something tracking resolves (a top-up, a replacement, a filler), not a
reason to fail a withdrawal. The node's answer is kept on the attempt and in the history.
"""

from __future__ import annotations

import structlog

from sluice import metrics
from sluice.domain.transaction import Attempt, ChainTransaction, TransactionStatus
from sluice.domain.withdrawal import WithdrawalStatus, move
from sluice.errors import ChainUnavailableError, TransactionRefusedError
from sluice.ports import Clock, SendResult, UnitOfWork
from sluice.services.registry import NetworkRegistry
from sluice.services.watch import start_watching

log = structlog.get_logger(__name__)


#: The width of `transaction_attempts.note`.
NOTE_CHARS = 64


def send_note(exc: ChainUnavailableError) -> str:
    """A short note for an attempt whose send did not plainly succeed (at most `NOTE_CHARS`,
    the column's width: a note must never make recording the send fail)."""
    if isinstance(exc, TransactionRefusedError):
        return f"refused: {exc.reason}"[:NOTE_CHARS]
    reason = getattr(exc, "reason", None)
    return f"unclear: {reason if isinstance(reason, str) else 'no answer'}"[:NOTE_CHARS]


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
        """Send the stored attempt's raw bytes; never signs anything, never raises for the
        node's answer: anything but a plain acceptance is returned with a note."""
        chain = self._registry.get(transaction.network).chain
        try:
            result = await chain.send_raw_transaction(attempt.raw)
        except ChainUnavailableError as exc:
            result = SendResult(accepted=False, note=send_note(exc))
            metrics.TRANSACTION_EVENTS.labels(transaction.network, "unclear_send").inc()
            log.warning(
                "send not plainly accepted; confirmation tracking takes over",
                transaction_id=transaction.id,
                transaction_hash=attempt.hash,
                nonce=transaction.nonce,
                note=result.note,
            )
            return result
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
        """Record that the attempt went out (or may have); a no-op if recorded already."""
        transaction = await uow.transactions.get(transaction_id, lock=True)
        if transaction is None or transaction.status is not TransactionStatus.SIGNED:
            return False
        now = self._clock.now()
        await uow.transactions.mark_sent(attempt.id, now, result.note or None)
        network = self._registry.get(transaction.network).network
        transaction.status = TransactionStatus.BROADCAST
        transaction.updated_at = now
        start_watching(uow, transaction, now=now, poll_s=network.poll_interval_s)
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
                data={"transactionHash": attempt.hash, "attempt": attempt.seq},
            )
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)
        return True
