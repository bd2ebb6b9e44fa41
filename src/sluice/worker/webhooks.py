"""The webhook worker: a loop in every worker process that fans events out and delivers them.

Each round, in units of work of its own: fan undispatched events out to endpoints (commit),
claim due deliveries for a lease (commit), send each claimed attempt outside any transaction,
then record each outcome (commit). A process killed at any point loses nothing: an event not
fanned out is still undispatched, a claimed delivery is claimed again once its lease lapses.
"""

from __future__ import annotations

import asyncio

import structlog

from sluice.ports import UnitOfWorkFactory
from sluice.services.webhooks import Claimed, WebhookDelivery

log = structlog.get_logger(__name__)


class WebhookWorker:
    """Delivers webhooks until cancelled."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        delivery: WebhookDelivery,
        *,
        poll_s: float = 1.0,
        concurrency: int = 16,
    ) -> None:
        self._uow = uow
        self._delivery = delivery
        self._poll_s = poll_s
        self._concurrency = concurrency

    async def run(self) -> None:
        """Rounds until cancelled; a round that found work is followed at once by another."""
        while True:
            try:
                busy = await self.round()
            except Exception:  # the database is down: try again next round
                log.exception("webhook round failed")
                busy = False
            if not busy:
                await asyncio.sleep(self._poll_s)

    async def round(self) -> bool:
        """One round; whether it found anything to do."""
        async with self._uow() as uow:
            dispatched = await self._delivery.dispatch(uow)
            await uow.commit()
        async with self._uow() as uow:
            claimed = await self._delivery.claim(uow, limit=self._concurrency)
            await uow.commit()
        if claimed:
            # Each attempt on its own: one that fails to record (the database went away) is
            # left to its lease, the others are still recorded.
            for failure in await asyncio.gather(
                *(self._deliver(c) for c in claimed), return_exceptions=True
            ):
                if isinstance(failure, Exception):
                    log.error("webhook attempt not recorded", error=repr(failure))
        return bool(dispatched or claimed)

    async def _deliver(self, claimed: Claimed) -> None:
        outcome = await self._delivery.attempt(claimed)
        async with self._uow() as uow:
            await self._delivery.record(uow, claimed, outcome)
            await uow.commit()
        log.info(
            "webhook attempt",
            delivery_id=claimed.delivery.id,
            endpoint_id=claimed.endpoint.id,
            event_type=claimed.delivery.event.type,
            outcome=outcome.describe(),
        )
