"""Stage 3: send a stored transaction. Sending is idempotent: the same signed bytes, every time.

Whatever the node answers, the transaction then goes to confirmation tracking, which re-sends,
re-prices or fills gaps as the chain requires: a timeout or a dropped connection may hide a
success, "already known", "nonce too low" and "replacement underpriced" mean the nonce is taken
(perhaps by this very transaction), and a refusal that depends on the chain's state (no gas
money, a fee below the base fee, a nonce gap) is something tracking resolves (a top-up, a
replacement, a filler), not a reason to fail a withdrawal. A refusal for good (a gas limit, a
fee pair or a chain id the node can never accept for these bytes) asks for a no-op at the
nonce; once that is final, the withdrawals fail ``rejected``. The node's answer is kept on the
attempt and in the history.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from sluice import metrics
from sluice.domain.transaction import Attempt, ChainTransaction, TransactionStatus
from sluice.errors import ChainUnavailableError, TransactionRefusedError
from sluice.ports import ChainClient, Clock, UnitOfWork
from sluice.services.engine import record
from sluice.services.registry import NetworkRegistry
from sluice.services.watch import start_watching

log = structlog.get_logger(__name__)


#: The width of `transaction_attempts.note`.
NOTE_CHARS = 64


@dataclass(frozen=True, slots=True)
class SendAnswer:
    """The node's answer to a send, as the engine records it."""

    note: str | None = None
    """Anything but a plain acceptance, at most `NOTE_CHARS` (the column's width: a note must
    never make recording the send fail)."""
    refusal: str | None = None
    """The reason, when the node refused these bytes for good."""


async def send_answer(chain: ChainClient, attempt: Attempt) -> SendAnswer:
    """Send an attempt's stored bytes; never raises for the node's answer."""
    try:
        result = await chain.send_raw_transaction(attempt.raw)
    except TransactionRefusedError as exc:
        return SendAnswer(
            note=f"refused: {exc.reason}"[:NOTE_CHARS],
            refusal=exc.reason if exc.permanent else None,
        )
    except ChainUnavailableError as exc:
        return SendAnswer(note=f"unclear: {exc.reason or 'no answer'}"[:NOTE_CHARS])
    return SendAnswer(note=result.note or None)


class BroadcastService:
    """SIGNED → BROADCAST for the transaction, SIGNED → BROADCASTING for its withdrawals."""

    def __init__(self, registry: NetworkRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock

    async def pending(self, uow: UnitOfWork, transaction_id: str) -> ChainTransaction | None:
        """The transaction with its attempts, if it still waits to be sent."""
        transaction = await uow.transactions.get(transaction_id)
        if transaction is None or transaction.status is not TransactionStatus.SIGNED:
            return None
        transaction.attempts = await uow.transactions.attempts(transaction_id)
        return transaction

    async def send(self, transaction: ChainTransaction) -> SendAnswer:
        """Send the latest attempt's stored bytes; never signs anything."""
        attempt = transaction.latest
        answer = await send_answer(self._registry.get(transaction.network).chain, attempt)
        fields = {
            "transaction_id": transaction.id,
            "transaction_hash": attempt.hash,
            "nonce": transaction.nonce,
            "note": answer.note or "accepted",
        }
        if answer.note is not None and answer.note.startswith("unclear"):
            metrics.TRANSACTION_EVENTS.labels(transaction.network, "unclear_send").inc()
            log.warning("send not plainly accepted; confirmation tracking takes over", **fields)
        elif answer.refusal is not None:
            log.error(
                "the node refused the transaction for good; a no-op takes its nonce", **fields
            )
        else:
            log.info("transaction sent", **fields)
        return answer

    async def record_sent(
        self, uow: UnitOfWork, transaction_id: str, attempt: Attempt, answer: SendAnswer
    ) -> bool:
        """Record that the attempt went out (or may have); a no-op if recorded already."""
        transaction = await uow.transactions.load(transaction_id)
        if transaction is None or transaction.status is not TransactionStatus.SIGNED:
            return False
        now = self._clock.now()
        await uow.transactions.mark_sent(attempt.id, now, answer.note)
        effects = transaction.sent(attempt, note_=answer.note, at=now)
        if answer.refusal is not None:
            effects.extend(transaction.refused(answer.refusal, at=now))
        network = self._registry.get(transaction.network).network
        start_watching(uow, transaction, now=now, poll_s=network.poll_interval_s)
        await record(uow, transaction, effects, registry=self._registry, clock=self._clock)
        return True
