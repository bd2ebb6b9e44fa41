"""An operator's cancel of a withdrawal that may already be on its way to the chain.

Before signing, a cancel is the caller's ordinary cancel (`WithdrawalService.cancel`). Once a
nonce carries the payload, it may reach the chain whatever Sluice does next, so a cancel is a
request to the transaction engine: confirmation tracking sends a no-op self-transfer at the same
nonce, priced as a replacement, and whichever of the two the chain includes decides. The payout
mined: COMPLETED. The no-op mined: CANCELLED, the hold released. Never both, since they share one
nonce. A transaction carries every withdrawal of a batch, so a cancel applies to all of them.
"""

from __future__ import annotations

from sluice.domain.transaction import TransactionStatus
from sluice.domain.withdrawal import (
    CANCELLABLE,
    ENGINE_CANCELLABLE,
    Withdrawal,
    WithdrawalStatus,
    note,
)
from sluice.errors import InvalidStateError, NotFoundError
from sluice.ports import Clock, UnitOfWork
from sluice.services.withdrawals import WithdrawalService

_SENDABLE = (TransactionStatus.SIGNED, TransactionStatus.BROADCAST)


class CancellationService:
    """Cancels at any point before the chain has decided."""

    def __init__(self, withdrawals: WithdrawalService, clock: Clock) -> None:
        self._withdrawals = withdrawals
        self._clock = clock

    async def cancel(self, uow: UnitOfWork, withdrawal_id: str, *, reason: str) -> Withdrawal:
        """Cancel now if not signed yet; else ask the engine for a no-op replacement.

        Asking twice is harmless: the second request changes nothing.

        Raises:
            NotFoundError: No such withdrawal.
            InvalidStateError: Its transaction is mined already (or it is final).
        """
        withdrawal = await uow.withdrawals.get(withdrawal_id, lock=True)
        if withdrawal is None:
            raise NotFoundError(f"withdrawal {withdrawal_id!r} does not exist")
        if withdrawal.status in CANCELLABLE or withdrawal.status is WithdrawalStatus.CANCELLED:
            return await self._withdrawals.cancel(uow, withdrawal_id, reason=reason)
        if withdrawal.status not in ENGINE_CANCELLABLE or withdrawal.transaction_id is None:
            raise InvalidStateError(
                f"a {withdrawal.status} withdrawal can no longer be cancelled"
                + (": its transaction is mined" if withdrawal.status.holds_funds else "")
            )
        transaction = await uow.transactions.get(withdrawal.transaction_id, lock=True)
        if transaction is None or transaction.status not in _SENDABLE:
            raise InvalidStateError("its transaction is mined; it can no longer be cancelled")
        if transaction.cancel_requested_at is not None:
            return withdrawal
        now = self._clock.now()
        transaction.cancel_requested_at = now
        transaction.updated_at = now
        await uow.transactions.save(transaction)
        for carried in await uow.withdrawals.for_transaction(transaction.id, lock=True):
            if carried.id == withdrawal.id:
                withdrawal = carried
            change = note(
                carried,
                at=now,
                reason=f"cancel requested ({reason}): a no-op will replace nonce "
                f"{transaction.nonce}; if the payout is mined first, it completes",
            )
            await uow.withdrawals.save(carried)
            await uow.withdrawals.add_event(change)
        return withdrawal
