"""`NetworkService.overview`: every network, its state, fee levels and wallets; a closed network
is not asked anything, and a slow node's reads are left out after the timeout, on fakes."""

from __future__ import annotations

import asyncio

from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Network
from sluice.domain.fees import FeeMarket
from sluice.services.fee_markets import FeeMarkets
from sluice.services.network_health import NetworkHealth, NetworkStatus
from sluice.services.networks import NetworkService
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.testing.fakes import FakeChain, LocalSigner

#: A guard so a broken test fails instead of hanging (never part of an assertion).
GUARD_S = 5.0

KEY_A = "0x" + "11" * 32
KEY_B = "0x" + "22" * 32


class HangingChain(FakeChain):
    """A node whose ``balance`` (and, with ``fees``, ``fee_market``) never answers."""

    def __init__(self, *, fees: bool = False) -> None:
        super().__init__()
        self.hang_fees = fees

    async def balance(self, address: Address) -> int:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def fee_market(self, *, blocks: int, percentiles: tuple[int, ...]) -> FeeMarket:
        if self.hang_fees:
            await asyncio.Event().wait()
        return await super().fee_market(blocks=blocks, percentiles=percentiles)


def entry(name: str, chain: FakeChain, *keys: str, draining: int | None = None) -> NetworkEntry:
    signers = tuple(LocalSigner(k) for k in keys)
    return NetworkEntry(
        network=Network(name=name, chain_id=31337, native=Asset(name, "ETH", 18)),
        chain=chain,
        signers=signers,
        draining=frozenset() if draining is None else frozenset({signers[draining].address}),
    )


async def verified(_: Network) -> None:
    return None


async def test_an_open_network_shows_its_levels_and_balances_a_closed_one_only_its_state() -> None:
    up, down = FakeChain(), FakeChain()
    down.go_down()
    registry = NetworkRegistry(
        {"beta": entry("beta", down, KEY_B), "alpha": entry("alpha", up, KEY_A, KEY_B, draining=1)}
    )
    health = NetworkHealth(registry, verify=verified)
    await health.check_all()
    signer_a, signer_b = registry.get("alpha").signers
    up.balances[signer_a.address] = 5 * 10**18
    up.balances[signer_b.address] = 7
    down.come_back()  # the monitor has not looked again: beta stays closed
    service = NetworkService(
        registry, FeeMarkets(registry, cache=False), health, providers={"alpha": 3}
    )

    alpha, beta = await service.overview()

    assert alpha.network.name == "alpha"
    assert alpha.state.status is NetworkStatus.UP
    assert alpha.providers == 3
    assert alpha.fee_levels == alpha.network.fees.levels(up.market)
    assert [(w.address, w.draining, w.native_balance) for w in alpha.wallets] == [
        (signer_a.address, False, 5 * 10**18),
        (signer_b.address, True, 7),
    ]

    assert beta.network.name == "beta"
    assert beta.state.status is NetworkStatus.DOWN
    assert beta.providers == 1
    assert beta.fee_levels is None
    assert [(w.address, w.native_balance) for w in beta.wallets] == [
        (registry.get("beta").signers[0].address, None)
    ]
    assert down.calls["fee_market"] == 0
    assert down.calls["balance"] == 0


async def test_a_network_not_verified_yet_is_closed() -> None:
    chain = FakeChain()
    registry = NetworkRegistry({"devnet": entry("devnet", chain, KEY_A)})
    health = NetworkHealth(registry, verify=verified)  # no round yet
    service = NetworkService(registry, FeeMarkets(registry), health)

    (overview,) = await service.overview()

    assert overview.state.status is NetworkStatus.STARTING
    assert overview.fee_levels is None
    assert overview.wallets[0].native_balance is None
    assert sum(chain.calls.values()) == 0


async def test_a_slow_nodes_reads_are_left_out_after_the_timeout_the_others_shown() -> None:
    slow_balances, slow_fees, fine = HangingChain(), HangingChain(fees=True), FakeChain()
    registry = NetworkRegistry(
        {
            "slow-balances": entry("slow-balances", slow_balances, KEY_A),
            "slow-fees": entry("slow-fees", slow_fees, KEY_A),
            "fine": entry("fine", fine, KEY_A),
        }
    )
    fine.balances[registry.get("fine").signers[0].address] = 42
    service = NetworkService(registry, FeeMarkets(registry, cache=False), None, timeout_s=0.01)

    by_name = {o.network.name: o for o in await asyncio.wait_for(service.overview(), GUARD_S)}

    assert list(by_name) == ["fine", "slow-balances", "slow-fees"]
    balances = by_name["slow-balances"]
    assert balances.fee_levels == balances.network.fees.levels(slow_balances.market)
    assert balances.wallets[0].native_balance is None
    fees = by_name["slow-fees"]
    assert fees.fee_levels is None
    assert fees.wallets[0].native_balance is None
    assert by_name["fine"].fee_levels is not None
    assert by_name["fine"].wallets[0].native_balance == 42


async def test_a_failing_read_is_left_out_not_raised() -> None:
    chain = FakeChain()
    chain.fail_next()  # the fee market read
    registry = NetworkRegistry({"devnet": entry("devnet", chain, KEY_A)})
    chain.balances[registry.get("devnet").signers[0].address] = 9
    service = NetworkService(registry, FeeMarkets(registry, cache=False), None)

    (overview,) = await service.overview()

    assert overview.fee_levels is None
    assert overview.wallets[0].native_balance is None  # the reads stop at the first failure
