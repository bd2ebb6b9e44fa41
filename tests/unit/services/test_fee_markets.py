"""`read_market` and `FeeMarkets`: what each fee model asks the node, and a cache of about a
block that concurrent readers share, on fakes."""

from __future__ import annotations

import asyncio

import pytest

from sluice.domain.assets import Asset, Network
from sluice.domain.fees import GWEI, FeeLevel, FeeMarket, FeeModel, FeePolicy
from sluice.errors import ChainUnavailableError
from sluice.services.fee_markets import FeeMarkets, read_market
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.testing.fakes import FakeChain

#: A guard so a broken test fails instead of hanging (never part of an assertion).
GUARD_S = 5.0

EIP1559 = FeePolicy(history_blocks=7, percentiles=(5, 40, 90))
LEGACY = FeePolicy(model=FeeModel.LEGACY)


def network(
    name: str = "devnet", *, fees: FeePolicy = EIP1559, block_time_s: float = 2.0
) -> Network:
    return Network(
        name=name,
        chain_id=31337,
        native=Asset(name, "ETH", 18),
        fees=fees,
        block_time_s=block_time_s,
    )


def registry(*networks: tuple[Network, FakeChain]) -> NetworkRegistry:
    return NetworkRegistry(
        {n.name: NetworkEntry(network=n, chain=c, signers=()) for n, c in networks}
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class GatedChain(FakeChain):
    """A node whose ``fee_market`` answers only once the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.asked = asyncio.Event()

    async def fee_market(self, *, blocks: int, percentiles: tuple[int, ...]) -> FeeMarket:
        self.asked.set()
        await self.gate.wait()
        return await super().fee_market(blocks=blocks, percentiles=percentiles)


async def test_a_legacy_network_reads_the_gas_price_only() -> None:
    chain = FakeChain(gas_price=3 * GWEI)

    market = await read_market(network(fees=LEGACY), chain)

    assert market == FeeMarket(gas_price=3 * GWEI)
    assert chain.calls["fee_market"] == 0


async def test_an_eip1559_network_reads_the_fee_history_at_its_policys_percentiles() -> None:
    answer = FeeMarket(base_fee=7 * GWEI, priority_fee=GWEI, rewards=(1, 2, 3))
    chain = FakeChain(market=answer)

    market = await read_market(network(), chain)

    assert market == answer
    assert chain.fee_history_asks == [(7, (5, 40, 90))]
    assert chain.calls["gas_price"] == 0


@pytest.mark.parametrize(
    ("block_time_s", "ttl"),
    [(2.0, 2.0), (0.25, 1.0), (12.0, 10.0)],
    ids=["a-block", "at-least-1s", "at-most-10s"],
)
async def test_a_reading_lasts_about_a_block_within_one_to_ten_seconds(
    block_time_s: float, ttl: float
) -> None:
    chain = FakeChain()
    clock = Clock()
    markets = FeeMarkets(registry((network(block_time_s=block_time_s), chain)), monotonic=clock)

    await markets.market("devnet")
    clock.now = ttl - 0.01
    await markets.market("devnet")
    assert chain.calls["fee_market"] == 1

    clock.now = ttl
    await markets.market("devnet")
    assert chain.calls["fee_market"] == 2


async def test_a_reading_is_the_markets_latest_once_the_cache_expired() -> None:
    chain = FakeChain(market=FeeMarket(base_fee=GWEI))
    clock = Clock()
    markets = FeeMarkets(registry((network(), chain)), monotonic=clock)
    await markets.market("devnet")

    chain.market = FeeMarket(base_fee=9 * GWEI)
    assert (await markets.market("devnet")).base_fee == GWEI  # still cached
    clock.now = 5.0
    assert (await markets.market("devnet")).base_fee == 9 * GWEI


async def test_without_the_cache_every_read_asks_the_node() -> None:
    chain = FakeChain()
    markets = FeeMarkets(registry((network(), chain)), cache=False, monotonic=Clock())

    for _ in range(3):
        await markets.market("devnet")

    assert chain.calls["fee_market"] == 3


async def test_concurrent_readers_of_a_stale_market_share_one_read() -> None:
    chain = GatedChain()
    markets = FeeMarkets(registry((network(), chain)), monotonic=Clock())
    readers = [asyncio.create_task(markets.market("devnet")) for _ in range(5)]
    await asyncio.wait_for(chain.asked.wait(), GUARD_S)

    chain.gate.set()
    results = await asyncio.wait_for(asyncio.gather(*readers), GUARD_S)

    assert chain.calls["fee_market"] == 1
    assert results == [chain.market] * 5


async def test_each_network_has_its_own_reading() -> None:
    one, two = FakeChain(), FakeChain(gas_price=5 * GWEI)
    markets = FeeMarkets(
        registry((network("one"), one), (network("two", fees=LEGACY), two)), monotonic=Clock()
    )

    assert await markets.market("one") == one.market
    assert await markets.market("two") == FeeMarket(gas_price=5 * GWEI)
    await markets.market("one")

    assert one.calls["fee_market"] == 1
    assert two.calls["gas_price"] == 1


async def test_a_failed_read_is_not_cached() -> None:
    chain = FakeChain()
    markets = FeeMarkets(registry((network(), chain)), monotonic=Clock())
    chain.fail_next()

    with pytest.raises(ChainUnavailableError):
        await markets.market("devnet")

    assert await markets.market("devnet") == chain.market
    assert chain.calls["fee_market"] == 2


async def test_offers_and_levels_are_the_policys_prices_of_the_market() -> None:
    chain = FakeChain(market=FeeMarket(base_fee=GWEI, priority_fee=GWEI, rewards=(1, 2, 3)))
    net = network()
    markets = FeeMarkets(registry((net, chain)), monotonic=Clock())

    levels = await markets.levels("devnet")

    assert levels == net.fees.levels(chain.market)
    assert await markets.offer("devnet") == levels[FeeLevel.NORMAL]
    assert await markets.offer("devnet", FeeLevel.FAST) == levels[FeeLevel.FAST]
    assert chain.calls["fee_market"] == 1
