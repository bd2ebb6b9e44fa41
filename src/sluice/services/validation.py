"""Stage 1: validate a PENDING withdrawal and hold its funds."""

from __future__ import annotations

from sluice.domain.addresses import ensure_payable_destination
from sluice.domain.ledger import EntryKind
from sluice.domain.withdrawal import WithdrawalStatus, move
from sluice.errors import InsufficientFundsError, InvalidRequestError
from sluice.ports import Clock, UnitOfWork
from sluice.services import jobs
from sluice.services.ledger import move_funds
from sluice.services.registry import NetworkRegistry


class ValidationService:
    """PENDING → VALIDATING with the funds held, or → FAILED with a reason."""

    def __init__(self, registry: NetworkRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock

    async def validate(self, uow: UnitOfWork, withdrawal_id: str) -> WithdrawalStatus | None:
        """Validate one withdrawal; a no-op unless it is PENDING.

        The withdrawal row is locked, then the balance row: the status change and the hold
        commit together or not at all.

        Returns:
            The new status, or None if there was nothing to do.
        """
        withdrawal = await uow.withdrawals.get(withdrawal_id, lock=True)
        if withdrawal is None or withdrawal.status is not WithdrawalStatus.PENDING:
            return None
        now = self._clock.now()
        try:
            network = self._registry.get(withdrawal.network).network
            # Configuration may have changed since intake (a new hot wallet, a new token).
            ensure_payable_destination(
                withdrawal.to_address,
                hot_wallets=network.hot_wallets,
                token_contracts=network.token_addresses,
                batch_contracts=[c for _, c in network.batching.contracts],
            )
            asset = network.asset_by_key(withdrawal.asset_key)
            await move_funds(
                uow,
                user_id=withdrawal.user_id,
                asset=asset,
                kind=EntryKind.HOLD,
                amount=withdrawal.amount,
                clock=self._clock,
                withdrawal_id=withdrawal.id,
            )
        # Not enough funds, a refused destination, a network or token no longer configured:
        # each error's code is the withdrawal's error code (see ErrorCode).
        except (InsufficientFundsError, InvalidRequestError) as exc:
            change = move(
                withdrawal, WithdrawalStatus.FAILED, at=now, reason=exc.detail, error_code=exc.code
            )
        else:
            change = move(withdrawal, WithdrawalStatus.VALIDATING, at=now, reason="funds held")
            uow.enqueue(jobs.SIGN, {"withdrawalId": withdrawal.id})
        await uow.withdrawals.save(withdrawal)
        await uow.withdrawals.add_event(change)
        return withdrawal.status
