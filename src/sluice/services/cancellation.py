"""An operator's cancel of a withdrawal that may already be on its way to the chain.

Before signing, a cancel is the caller's ordinary cancel (`WithdrawalService.cancel`). Once a
nonce carries the payload, it may reach the chain whatever Sluice does next, so a cancel is a
request to the transaction engine: confirmation tracking sends a no-op self-transfer at the same
nonce, priced as a replacement, and whichever of the two the chain includes decides. The payout
mined: COMPLETED. The no-op mined: CANCELLED, the hold released. Never both, since they share one
nonce. A withdrawal paid by a batch is not cancelled once the batch is signed (`InBatchError`,
``in_batch``): the transaction pays the others too.

Locks are taken in the engine's one order, the transaction's row before its withdrawals'
(`TransactionRepository.load`), like every confirmation round: the withdrawal is first read
without a lock only to find its transaction.
"""

from __future__ import annotations

from sluice.domain.withdrawal import CANCELLABLE, ENGINE_CANCELLABLE, Withdrawal, WithdrawalStatus
from sluice.errors import InBatchError, InvalidStateError, NotFoundError
from sluice.ports import Clock, UnitOfWork
from sluice.services.engine import record
from sluice.services.registry import NetworkRegistry
from sluice.services.withdrawals import WithdrawalService

#: How often the withdrawal may move to another transaction between reading it and locking that
#: transaction (each time, a nonce was superseded and it was signed again meanwhile).
_ATTEMPTS = 3


class CancellationService:
    """Cancels at any point before the chain has decided."""

    def __init__(
        self, withdrawals: WithdrawalService, registry: NetworkRegistry, clock: Clock
    ) -> None:
        self._withdrawals = withdrawals
        self._registry = registry
        self._clock = clock

    async def cancel(self, uow: UnitOfWork, withdrawal_id: str, *, reason: str) -> Withdrawal:
        """Cancel now if not signed yet; else ask the engine for a no-op replacement.

        Asking twice is harmless: the second request changes nothing.

        Raises:
            NotFoundError: No such withdrawal.
            InvalidStateError: Its transaction is mined already (or it is final).
            InBatchError: Its transaction is a batch.
        """
        for _ in range(_ATTEMPTS):
            withdrawal = await uow.withdrawals.get(withdrawal_id)
            if withdrawal is None:
                raise NotFoundError(f"withdrawal {withdrawal_id!r} does not exist")
            if withdrawal.status in CANCELLABLE or withdrawal.status is WithdrawalStatus.CANCELLED:
                # No transaction involved; the caller's cancel locks the row and looks again.
                return await self._withdrawals.cancel(uow, withdrawal_id, reason=reason)
            if withdrawal.status not in ENGINE_CANCELLABLE or withdrawal.transaction_id is None:
                raise InvalidStateError(
                    f"a {withdrawal.status} withdrawal can no longer be cancelled"
                    + (": its transaction is mined" if withdrawal.status.holds_funds else "")
                )
            transaction = await uow.transactions.load(withdrawal.transaction_id)
            carried = next(
                (w for w in transaction.carried if w.id == withdrawal_id)
                if transaction is not None
                else iter(()),
                None,
            )
            if transaction is None or carried is None:
                continue  # signed again meanwhile, with another nonce: look again
            if carried.status not in ENGINE_CANCELLABLE:
                raise InvalidStateError(
                    f"a {carried.status} withdrawal can no longer be cancelled"
                    + (": its transaction is mined" if carried.status.holds_funds else "")
                )
            if transaction.is_batch:
                raise InBatchError(
                    f"withdrawal {withdrawal_id!r} is paid by transaction {transaction.id}, a "
                    f"batch of {len(transaction.carried)}: a signed batch is not cancelled for "
                    "one of its withdrawals (it pays the others too); each of its payments ends "
                    "by what the chain says of it"
                )
            effects = transaction.cancel_requested(reason, at=self._clock.now())
            if effects:
                await record(uow, transaction, effects, registry=self._registry, clock=self._clock)
            return carried
        raise InvalidStateError(
            f"withdrawal {withdrawal_id!r} kept moving to new transactions; try again"
        )
