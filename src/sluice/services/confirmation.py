"""Stage 4: follow a sent transaction to its receipt and the network's confirmation depth."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from sluice.domain.ledger import EntryKind
from sluice.domain.transaction import Attempt, ChainTransaction, TransactionStatus
from sluice.domain.withdrawal import ErrorCode, WithdrawalStatus, move
from sluice.ports import Clock, Receipt, UnitOfWork
from sluice.services.ledger import move_funds
from sluice.services.registry import NetworkRegistry

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the chain says about a transaction right now."""

    receipt: Receipt | None
    depth: int

    def deep_enough(self, confirmations: int) -> bool:
        """Whether the receipt is buried under enough blocks to settle on."""
        return self.receipt is not None and self.depth >= confirmations


class ConfirmationService:
    """BROADCAST → CONFIRMED (withdrawals COMPLETED, holds settled) or REVERTED (FAILED,
    holds released)."""

    def __init__(self, registry: NetworkRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock

    async def tracked(
        self, uow: UnitOfWork, transaction_id: str
    ) -> tuple[ChainTransaction, list[Attempt]] | None:
        """The transaction and its attempts, if it is still waiting for confirmation."""
        transaction = await uow.transactions.get(transaction_id)
        if transaction is None or transaction.status is not TransactionStatus.BROADCAST:
            return None
        return transaction, await uow.transactions.attempts(transaction_id)

    async def observe(self, transaction: ChainTransaction, attempts: list[Attempt]) -> Observation:
        """Look for a receipt of any attempt; re-send the latest one if the node lost them all.

        A transaction the node does not know (dropped from its pool, a node restarted, a send
        that never arrived) is sent again with its stored bytes: the same nonce and payload, so
        it can never pay twice.
        """
        chain = self._registry.get(transaction.network).chain
        for attempt in reversed(attempts):
            receipt = await chain.receipt(attempt.hash)
            if receipt is not None:
                head = await chain.block_number()
                return Observation(receipt, max(0, head - receipt.block_number + 1))
        if not any([await chain.is_known(a.hash) for a in attempts]):
            result = await chain.send_raw_transaction(attempts[-1].raw)
            log.warning(
                "transaction unknown to the node; sent again",
                transaction_id=transaction.id,
                transaction_hash=attempts[-1].hash,
                note=result.note or "accepted",
            )
        return Observation(None, 0)

    def poll_interval(self, transaction: ChainTransaction) -> float:
        """How long to wait before looking again."""
        return self._registry.get(transaction.network).network.poll_interval_s

    def confirmations(self, transaction: ChainTransaction) -> int:
        """The depth this transaction's network settles at."""
        return self._registry.get(transaction.network).network.confirmations

    async def settle(self, uow: UnitOfWork, transaction_id: str, receipt: Receipt) -> bool:
        """Record the outcome and settle or release every hold it carries, in one transaction.

        Returns:
            True if settled now; False if it was settled already.
        """
        transaction = await uow.transactions.get(transaction_id, lock=True)
        if transaction is None or transaction.status is not TransactionStatus.BROADCAST:
            return False
        now = self._clock.now()
        transaction.status = (
            TransactionStatus.CONFIRMED if receipt.succeeded else TransactionStatus.REVERTED
        )
        transaction.block_number = receipt.block_number
        transaction.block_hash = receipt.block_hash
        transaction.mined_hash = receipt.transaction_hash
        transaction.updated_at = now
        await uow.transactions.save(transaction)
        network = self._registry.get(transaction.network).network
        data = {
            "transactionHash": receipt.transaction_hash,
            "blockNumber": str(receipt.block_number),
            "blockHash": receipt.block_hash,
        }
        for withdrawal in await uow.withdrawals.for_transaction(transaction_id, lock=True):
            if withdrawal.status is not WithdrawalStatus.BROADCASTING:
                continue
            withdrawal.transaction_hash = receipt.transaction_hash
            withdrawal.block_number = receipt.block_number
            asset = network.asset_by_key(withdrawal.asset_key)
            kind = EntryKind.SETTLE if receipt.succeeded else EntryKind.RELEASE
            await move_funds(
                uow,
                user_id=withdrawal.user_id,
                asset=asset,
                kind=kind,
                amount=withdrawal.amount,
                clock=self._clock,
                withdrawal_id=withdrawal.id,
            )
            if receipt.succeeded:
                change = move(
                    withdrawal,
                    WithdrawalStatus.COMPLETED,
                    at=now,
                    reason=f"confirmed in block {receipt.block_number}",
                    data=data,
                )
            else:
                change = move(
                    withdrawal,
                    WithdrawalStatus.FAILED,
                    at=now,
                    reason=f"transaction reverted in block {receipt.block_number}",
                    error_code=ErrorCode.REVERTED,
                    data=data,
                )
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)
        return True
