"""Stage handlers: thin wrappers that open units of work around the services and commit them.

Each handler takes ids only, re-reads its rows, and does nothing unless their state still calls
for it; chain I/O happens between database transactions, never inside one.
"""

from __future__ import annotations

from typing import Any

from sluice import faults
from sluice.domain.transaction import ChainTransaction
from sluice.ports import UnitOfWorkFactory
from sluice.services import jobs
from sluice.services.broadcast import BroadcastService
from sluice.services.confirmation import ConfirmationService, StepKind
from sluice.services.signing import Ready, SigningService
from sluice.services.validation import ValidationService
from sluice.worker.bulkheads import Bulkheads
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
        bulkheads: Bulkheads | None = None,
    ) -> None:
        """``bulkheads``: each network's gate and share of the consumers (none: ungated)."""
        self._uow = uow
        self._bulkheads = bulkheads or Bulkheads(None, limit=None)
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
        """VALIDATING → SIGNED: plan and quote (chain reads, no lock), then nonce, sign, store.

        When no hot wallet can pay now (or all have too much in flight), or its network is
        paused (`sluice.services.pauses`), the withdrawal waits with its reason recorded, and
        this job runs again later; so it does while its batch fills (`sluice.services.batcher`).
        """
        async with self._uow() as uow:
            ready = await self._signing.ready(uow, payload["withdrawalId"])
        if ready is None:
            return None
        if ready.paused is not None:  # its network is paused: say so, look again later
            async with self._uow() as uow:
                retry = await self._signing.held(uow, ready)
                await uow.commit()
            return retry
        if ready.wait_s is not None:
            return ready.wait_s  # waiting for its batch to fill
        try:
            closed = self._bulkheads.closed(ready.network)
            if closed is not None and not ready.waiting_for_network:
                # Say why it waits (once: the next looks find the reason recorded).
                async with self._uow() as uow:
                    if await self._signing.network_closed(uow, ready, closed):
                        await uow.commit()
            return await self._bulkheads.run(ready.network, lambda: self._sign(ready))
        finally:
            self._signing.done(ready)

    async def _sign(self, ready: Ready) -> float | None:
        quote = await self._signing.quote(ready)
        async with self._uow() as uow:
            outcome = await self._signing.record(uow, quote)
            if outcome.commit:
                await uow.commit()
        faults.checkpoint("after_store", outcome.signed)
        return outcome.retry_after

    async def broadcast(self, payload: dict[str, Any]) -> float | None:
        """Send the stored signed bytes, then record it (SIGNED → BROADCASTING)."""
        transaction_id = payload["transactionId"]
        async with self._uow() as uow:
            transaction = await self._broadcast.pending(uow, transaction_id)
        if transaction is None:
            return None
        return await self._bulkheads.run(
            transaction.network, lambda: self._broadcast_pending(transaction)
        )

    async def _broadcast_pending(self, transaction: ChainTransaction) -> float | None:
        transaction_id = transaction.id
        answer = await self._broadcast.send(transaction)
        faults.checkpoint("after_send")
        async with self._uow() as uow:
            await self._broadcast.record_sent(uow, transaction_id, transaction.latest, answer)
            await uow.commit()
        return None

    async def confirm(self, payload: dict[str, Any]) -> float | None:
        """One round of tracking: observe, decide and record, then act; see `ConfirmationService`.

        Returns None once the transaction is settled, else when to look again.
        """
        confirmation = self._confirmation
        transaction_id = payload["transactionId"]
        async with self._uow() as uow:
            transaction = await confirmation.tracked(uow, transaction_id, payload.get("watch"))
            await uow.commit()
        if transaction is None:
            return None  # settled, or this chain was superseded by another
        return await self._bulkheads.run(
            transaction.network, lambda: self._confirm_round(transaction)
        )

    async def _confirm_round(self, transaction: ChainTransaction) -> float | None:
        confirmation = self._confirmation
        transaction_id = transaction.id
        seen = await confirmation.observe(transaction)
        faults.checkpoint("after_receipt", seen.receipt is not None)
        if confirmation.nothing_to_record(transaction, seen):
            return confirmation.poll_interval(transaction)
        async with self._uow() as uow:
            step = await confirmation.apply(uow, transaction_id, seen)
            await uow.commit()
        if step.kind is StepKind.DONE:
            return None
        to_send = step.attempt if step.kind is StepKind.RESEND else None
        if step.kind in (StepKind.REPLACE, StepKind.CANCEL, StepKind.FILL_GAP):
            prices = await confirmation.prices(transaction)
            async with self._uow() as uow:
                if step.kind is StepKind.FILL_GAP and step.nonce is not None:
                    await confirmation.fill_gap(
                        uow,
                        transaction.network,
                        transaction.from_address,
                        step.nonce,
                        prices.market,
                        why=f"below transaction {transaction.id} (nonce {transaction.nonce})",
                    )
                else:
                    to_send = await confirmation.replace(uow, transaction_id, step, prices)
                await uow.commit()
        if to_send is not None:
            answer = await confirmation.send(transaction, to_send)
            async with self._uow() as uow:
                await confirmation.record_sent(uow, transaction_id, to_send, answer)
                await uow.commit()
        return confirmation.poll_interval(transaction)
