"""Stage handlers: thin wrappers that open units of work around the services and commit them.

Each handler takes ids only, re-reads its rows, and does nothing unless their state still calls
for it; chain I/O happens between database transactions, never inside one.
"""

from __future__ import annotations

from typing import Any

from sluice import faults
from sluice.domain.withdrawal import WithdrawalStatus
from sluice.ports import UnitOfWorkFactory
from sluice.services import jobs
from sluice.services.broadcast import BroadcastService
from sluice.services.confirmation import ConfirmationService, StepKind
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

    @property
    def confirmation(self) -> ConfirmationService:
        """The confirmation service (start-up reconciliation uses it to fill nonce gaps)."""
        return self._confirmation

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
        """VALIDATING → SIGNED: quote and check the wallets, then nonce, sign, store, commit.

        When no hot wallet can pay now (or all have too much in flight), the withdrawal waits
        with its reason recorded, and this job runs again later.
        """
        withdrawal_id = payload["withdrawalId"]
        async with self._uow() as uow:
            withdrawal = await uow.withdrawals.get(withdrawal_id)
            if withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING:
                return None
            entry = self._signing.entry(withdrawal)
            in_flight = {
                s.address: await uow.transactions.in_flight(withdrawal.network, s.address)
                for s in entry.signers
            }
        payload_, gas, fees = await self._signing.quote(withdrawal)
        quote = await self._signing.choose_wallet(withdrawal, payload_, gas, fees, in_flight)
        if quote.wallet is None:
            async with self._uow() as uow:
                await self._signing.wait(uow, withdrawal_id, quote.waiting_reason or "waiting")
                await uow.commit()
            return self._signing.retry_after(withdrawal)
        async with self._uow() as uow:
            signed = await self._signing.sign(uow, withdrawal_id, quote)
            if signed:
                await uow.commit()
        faults.checkpoint("after_store", signed)
        # Not signed: nothing to do any more, or the wallet filled up meanwhile (look later).
        # Asked after the unit of work ends: on SQLite a second one would wait for its lock.
        if signed or await self._settled(withdrawal_id):
            return None
        return self._signing.retry_after(withdrawal)

    async def _settled(self, withdrawal_id: str) -> bool:
        """Whether a withdrawal no longer waits to be signed."""
        async with self._uow() as uow:
            withdrawal = await uow.withdrawals.get(withdrawal_id)
        return withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING

    async def broadcast(self, payload: dict[str, Any]) -> float | None:
        """Send the stored signed bytes, then record it (SIGNED → BROADCASTING)."""
        transaction_id = payload["transactionId"]
        async with self._uow() as uow:
            pending = await self._broadcast.pending(uow, transaction_id)
        if pending is None:
            return None
        transaction, attempt = pending
        result = await self._broadcast.send(transaction, attempt)
        faults.checkpoint("after_send")
        async with self._uow() as uow:
            await self._broadcast.record_sent(uow, transaction_id, attempt, result)
            await uow.commit()
        return None

    async def confirm(self, payload: dict[str, Any]) -> float | None:
        """One round of tracking: observe, decide and record, then act; see `ConfirmationService`.

        Returns None once the transaction is settled, else when to look again.
        """
        confirmation = self._confirmation
        transaction_id = payload["transactionId"]
        async with self._uow() as uow:
            tracked = await confirmation.tracked(uow, transaction_id, payload.get("watch"))
            if tracked is not None:
                await confirmation.keep_watching(uow, tracked[0])
                await uow.commit()
        if tracked is None:
            return None  # settled, or this chain was superseded by another
        transaction, attempts = tracked
        seen = await confirmation.observe(transaction, attempts)
        faults.checkpoint("after_receipt", seen.receipt is not None)
        if confirmation.nothing_to_record(transaction, attempts, seen):
            return confirmation.poll_interval(transaction)
        async with self._uow() as uow:
            step = await confirmation.apply(uow, transaction_id, seen)
            await uow.commit()
        if step.kind is StepKind.DONE:
            return None
        to_send = step.attempt if step.kind is StepKind.RESEND else None
        if step.kind in (StepKind.REPLACE, StepKind.CANCEL) and step.attempt is not None:
            chain = confirmation.chain(transaction)
            market = await chain.fees()
            balance = await chain.balance(transaction.from_address)
            async with self._uow() as uow:
                to_send = await confirmation.replace(
                    uow,
                    transaction_id,
                    step.attempt,
                    market=market,
                    wallet_balance=balance,
                    cancel=step.kind is StepKind.CANCEL,
                )
                await uow.commit()
        elif step.kind is StepKind.FILL_GAP and step.nonce is not None:
            market = await confirmation.chain(transaction).fees()
            async with self._uow() as uow:
                await confirmation.fill_gap(
                    uow,
                    transaction.network,
                    transaction.from_address,
                    step.nonce,
                    market,
                    why=f"below transaction {transaction.id} (nonce {transaction.nonce})",
                )
                await uow.commit()
        if to_send is not None:
            answer = await confirmation.send(transaction, to_send)
            async with self._uow() as uow:
                await confirmation.record_sent(uow, to_send, answer)
                await uow.commit()
        return confirmation.poll_interval(transaction)
