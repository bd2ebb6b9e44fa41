"""Stage handlers: thin wrappers that open units of work around the services and commit them.

Each handler takes ids only, re-reads its rows, and does nothing unless their state still calls
for it; chain I/O happens between database transactions, never inside one.
"""

from __future__ import annotations

from typing import Any

from sluice.domain.withdrawal import WithdrawalStatus
from sluice.ports import UnitOfWorkFactory
from sluice.services import jobs
from sluice.services.broadcast import BroadcastService
from sluice.services.confirmation import ConfirmationService
from sluice.services.signing import SigningService
from sluice.services.validation import ValidationService
from sluice.worker.runner import Handler


class StageHandlers:
    """One handler per job name."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        validation: ValidationService,
        signing: SigningService,
        broadcast: BroadcastService,
        confirmation: ConfirmationService,
    ) -> None:
        self._uow = uow
        self._validation = validation
        self._signing = signing
        self._broadcast = broadcast
        self._confirmation = confirmation

    def table(self) -> dict[str, Handler]:
        """Job name → handler."""
        return {
            jobs.VALIDATE: self.validate,
            jobs.SIGN: self.sign,
            jobs.BROADCAST: self.broadcast,
            jobs.CONFIRM: self.confirm,
        }

    async def validate(self, payload: dict[str, Any]) -> float | None:
        """PENDING → VALIDATING (funds held) or FAILED."""
        async with self._uow() as uow:
            await self._validation.validate(uow, payload["withdrawalId"])
            await uow.commit()
        return None

    async def sign(self, payload: dict[str, Any]) -> float | None:
        """VALIDATING → SIGNED: quote from the chain, then nonce, sign and store in one commit."""
        withdrawal_id = payload["withdrawalId"]
        async with self._uow() as uow:
            withdrawal = await uow.withdrawals.get(withdrawal_id)
        if withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING:
            return None
        quote = await self._signing.quote(withdrawal)
        async with self._uow() as uow:
            await self._signing.sign(uow, withdrawal_id, quote)
            await uow.commit()
        return None

    async def broadcast(self, payload: dict[str, Any]) -> float | None:
        """Send the stored signed bytes, then record it (SIGNED → BROADCASTING)."""
        transaction_id = payload["transactionId"]
        async with self._uow() as uow:
            pending = await self._broadcast.pending(uow, transaction_id)
        if pending is None:
            return None
        transaction, attempt = pending
        result = await self._broadcast.send(transaction, attempt)
        async with self._uow() as uow:
            await self._broadcast.record_sent(uow, transaction_id, attempt, result)
            await uow.commit()
        return None

    async def confirm(self, payload: dict[str, Any]) -> float | None:
        """Poll for the receipt and depth; settle once deep enough, else look again later."""
        transaction_id = payload["transactionId"]
        async with self._uow() as uow:
            tracked = await self._confirmation.tracked(uow, transaction_id)
        if tracked is None:
            return None
        transaction, attempts = tracked
        observation = await self._confirmation.observe(transaction, attempts)
        receipt = observation.receipt
        if receipt is None or not observation.deep_enough(
            self._confirmation.confirmations(transaction)
        ):
            return self._confirmation.poll_interval(transaction)
        async with self._uow() as uow:
            await self._confirmation.settle(uow, transaction_id, receipt)
            await uow.commit()
        return None
