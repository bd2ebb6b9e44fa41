"""What each network's fee market asks now, read through a short cache.

Every signature, replacement, gap filler and `GET /v1/networks` prices from the market; reading
it once per network every few seconds, not once per transaction, keeps the node's load flat
under a burst (Chainlink's fee-history estimator caches for 10 s; a block on a fast chain is
2 s, so the cache here lasts about one block: ``block_time_s``, within 1 to 10 s). Concurrent
readers of a stale entry share one read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from sluice.domain.assets import Network
from sluice.domain.fees import FeeLevel, FeeMarket, Fees
from sluice.domain.transaction import ChainTransaction
from sluice.ports import ChainClient
from sluice.services.registry import NetworkRegistry

__all__ = ["FeeMarkets", "read_market"]

#: Bounds of how long one reading of a market is used, in seconds.
MIN_TTL_S = 1.0
MAX_TTL_S = 10.0


async def read_market(network: Network, chain: ChainClient) -> FeeMarket:
    """Ask the node what the network's fee model prices from: ``eth_gasPrice`` on a legacy
    network; ``eth_feeHistory`` at the policy's percentiles (and the suggested tip) else."""
    policy = network.fees
    if policy.legacy:
        return FeeMarket(gas_price=await chain.gas_price())
    return await chain.fee_market(blocks=policy.history_blocks, percentiles=policy.percentiles)


@dataclass(slots=True)
class _Reading:
    market: FeeMarket
    at: float


class FeeMarkets:
    """Each served network's market, cached for about a block."""

    def __init__(
        self,
        registry: NetworkRegistry,
        *,
        cache: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``cache`` False reads the node every time (tests that move the market)."""
        self._registry = registry
        self._cache = cache
        self._now = monotonic
        self._readings: dict[str, _Reading] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def market(self, network: str) -> FeeMarket:
        """The network's market, read again once the last reading is a block old.

        Raises:
            ChainUnavailableError: The node did not answer (and nothing fresh is cached).
        """
        entry = self._registry.get(network)
        if not self._cache:
            return await read_market(entry.network, entry.chain)
        ttl = min(MAX_TTL_S, max(MIN_TTL_S, entry.network.block_time_s))
        reading = self._readings.get(network)
        if reading is not None and self._now() - reading.at < ttl:
            return reading.market
        lock = self._locks.setdefault(network, asyncio.Lock())
        async with lock:
            reading = self._readings.get(network)
            if reading is not None and self._now() - reading.at < ttl:
                return reading.market  # another reader refreshed it meanwhile
            market = await read_market(entry.network, entry.chain)
            self._readings[network] = _Reading(market, self._now())
            return market

    async def offer(self, network: str, level: FeeLevel | None = None) -> Fees:
        """What a first attempt on ``network`` offers now at ``level`` (default: the
        network's), within its floors and caps."""
        policy = self._registry.get(network).network.fees
        return policy.price(await self.market(network), level)

    async def for_transaction(self, transaction: ChainTransaction) -> Fees:
        """What the transaction's level offers now (what a replacement rises to at least)."""
        return await self.offer(transaction.network, transaction.priority)

    async def levels(self, network: str) -> dict[FeeLevel, Fees]:
        """What each level offers now on ``network``."""
        policy = self._registry.get(network).network.fees
        return policy.levels(await self.market(network))
