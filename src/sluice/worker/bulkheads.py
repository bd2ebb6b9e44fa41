"""Bulkheads: each network's chain work has its own share of the worker and its own outage.

Every handler's chain work runs through `Bulkheads.run` under its network's name:

- a network that is not open (`NetworkHealth`: down, misconfigured, or not verified yet) gets
  no consumer at all: its job is put back for later at once, not attempted, so a dead node costs
  no timeouts and no retry budget (it is never dead-lettered for an outage);
- a node that stops answering mid-job (`ChainUnavailableError`) closes its network at once and
  the job goes back, uncounted, likewise; the health monitor reopens the network when the node
  answers again;
- with several networks, one network's work holds at most ``limit`` of the worker's consumers
  at a time (half of them, by default): a slow node's jobs wait their turn instead of
  occupying every consumer, so the other networks' jobs always find one free.

A job put back returns a delay to the worker, which re-publishes it as it does a polling job's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import structlog

from sluice import metrics
from sluice.errors import ChainUnavailableError, TransactionRefusedError
from sluice.services.network_health import NetworkHealth

__all__ = ["BUSY_RETRY_S", "Bulkheads", "share_of"]

log = structlog.get_logger(__name__)

#: Seconds a job waits when its network's share of consumers is taken.
BUSY_RETRY_S = 0.25


def share_of(concurrency: int, networks: int) -> int:
    """How many consumers one network's work may hold: all of them when it is the only one,
    else half (at least one), so the others always have some."""
    if networks <= 1:
        return concurrency
    return max(1, concurrency // 2)


class Bulkheads:
    """Per-network gates and shares of the worker's consumers (see the module)."""

    def __init__(self, health: NetworkHealth | None, *, limit: int | None) -> None:
        """``health`` None: every network counts as open (tests without a monitor); ``limit``
        None: no share (a caller that runs the handlers itself, not a worker's consumers)."""
        if limit is not None and limit < 1:
            raise ValueError("a network needs at least one consumer")
        self._health = health
        self._limit = limit
        self._busy: Counter[str] = Counter()

    def closed(self, network: str) -> str | None:
        """Why the network takes no chain work now (``down: timed out``), or None if it does."""
        if self._health is None or self._health.is_open(network):
            return None
        state = self._health.state(network)
        return f"{state.status.value}: {state.detail}"

    def busy(self, network: str) -> int:
        """How many consumers hold the network's work now."""
        return self._busy[network]

    async def run(self, network: str, work: Callable[[], Awaitable[float | None]]) -> float | None:
        """Run ``work`` (a handler's chain part) within the network's bulkhead.

        Returns:
            What ``work`` returned, or the seconds after which the job should run again when
            the network is closed, its share is taken, or its node stopped answering.
        """
        health = self._health
        if health is not None and not health.is_open(network):
            metrics.BULKHEAD_DEFERRALS.labels(network, "closed").inc()
            return health.retry_after(network)
        if self._limit is not None and self._busy[network] >= self._limit:
            metrics.BULKHEAD_DEFERRALS.labels(network, "busy").inc()
            return BUSY_RETRY_S
        self._busy[network] += 1
        try:
            return await work()
        except TransactionRefusedError:
            raise  # the chain's answer about one transaction, not an outage
        except ChainUnavailableError as exc:
            if health is None:
                raise
            metrics.BULKHEAD_DEFERRALS.labels(network, "unavailable").inc()
            log.warning(
                "network node unavailable: the job waits", network=network, error=exc.detail
            )
            return health.failed(network, exc)
        finally:
            self._busy[network] -= 1
