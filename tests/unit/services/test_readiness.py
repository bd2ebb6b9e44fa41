"""`ReadinessService`: ready, degraded (the cache or a network fails) or not ready (the
database or the queue fails), with each check's reason, on fakes."""

from __future__ import annotations

import asyncio

from sluice.domain.assets import Asset, Network
from sluice.errors import ChainUnavailableError
from sluice.queue.memory import MemoryQueue
from sluice.services.network_health import MisconfiguredError, NetworkHealth
from sluice.services.readiness import CheckResult, ReadinessService
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.testing.fakes import FakeChain

OK = CheckResult(ok=True, detail="ok")


class Pinged:
    """A dependency whose ping fails with ``error``, if given."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def ping(self) -> None:
        if self.error is not None:
            raise self.error


def registry(chain: FakeChain, chain_id: int = 31337) -> NetworkRegistry:
    network = Network(name="devnet", chain_id=chain_id, native=Asset("devnet", "ETH", 18))
    return NetworkRegistry({"devnet": NetworkEntry(network=network, chain=chain, signers=())})


async def database_up() -> None:
    return None


async def test_every_dependency_answering_is_ready() -> None:
    service = ReadinessService(
        database=database_up, queue=MemoryQueue(), registry=registry(FakeChain())
    )

    readiness = await service.check()

    assert readiness.status == "ready"
    assert readiness.ok
    assert readiness.checks == {"database": OK, "queue": OK, "chain:devnet": OK}


async def test_a_failing_cache_is_degraded_but_still_ready() -> None:
    service = ReadinessService(
        database=database_up,
        queue=MemoryQueue(),
        registry=registry(FakeChain()),
        cache=Pinged(ConnectionError("refused")),
    )

    readiness = await service.check()

    assert readiness.status == "degraded"
    assert readiness.ok
    assert readiness.checks["cache"] == CheckResult(
        ok=False, detail="degraded, balances read from the database (ConnectionError)"
    )


async def test_a_node_on_another_chain_is_degraded_naming_the_network() -> None:
    service = ReadinessService(
        database=database_up,
        queue=MemoryQueue(),
        registry=registry(FakeChain(chain_id=1), chain_id=31337),
    )

    readiness = await service.check()

    assert readiness.status == "degraded"
    assert readiness.ok
    assert readiness.degraded == ("chain:devnet",)
    assert readiness.checks["chain:devnet"] == CheckResult(
        ok=False, detail="node reports chain id 1, expected 31337"
    )


async def test_a_queue_down_is_not_ready_with_the_reasons() -> None:
    service = ReadinessService(
        database=database_up,
        queue=Pinged(ChainUnavailableError("queue refused the connection")),
        registry=registry(FakeChain(chain_id=1), chain_id=31337),
        cache=Pinged(),
    )

    readiness = await service.check()

    assert readiness.status == "not_ready"
    assert not readiness.ok
    assert readiness.degraded == ("chain:devnet",)
    assert readiness.checks["chain:devnet"] == CheckResult(
        ok=False, detail="node reports chain id 1, expected 31337"
    )
    assert readiness.checks["queue"] == CheckResult(ok=False, detail="queue refused the connection")
    assert readiness.checks["cache"] == OK


async def test_a_database_that_does_not_answer_in_time_is_not_ready() -> None:
    async def database_hangs() -> None:
        await asyncio.sleep(10)

    service = ReadinessService(
        database=database_hangs,
        queue=MemoryQueue(),
        registry=registry(FakeChain()),
        timeout_s=0.01,
    )

    readiness = await service.check()

    assert readiness.status == "not_ready"
    assert readiness.checks["database"] == CheckResult(ok=False, detail="timed out")


def two_networks(up: FakeChain, down: FakeChain) -> NetworkRegistry:
    return NetworkRegistry(
        {
            name: NetworkEntry(
                network=Network(name=name, chain_id=31337, native=Asset(name, "ETH", 18)),
                chain=chain,
                signers=(),
            )
            for name, chain in (("alpha", up), ("beta", down))
        }
    )


async def verified(_: Network) -> None:
    return None


async def test_with_a_monitor_a_network_down_is_degraded_and_no_node_is_asked() -> None:
    up, down = FakeChain(), FakeChain()
    down.go_down()
    networks = two_networks(up, down)
    health = NetworkHealth(networks, verify=verified)
    await health.check_all()
    asked = up.calls.copy(), down.calls.copy()
    service = ReadinessService(
        database=database_up, queue=MemoryQueue(), registry=networks, health=health
    )

    readiness = await service.check()

    assert readiness.status == "degraded"
    assert readiness.ok
    assert readiness.degraded == ("chain:beta",)
    assert readiness.checks["chain:alpha"] == OK
    assert readiness.checks["chain:beta"] == CheckResult(
        ok=False, detail="down: fake node unavailable"
    )
    assert (up.calls, down.calls) == asked


async def test_with_a_monitor_networks_starting_or_misconfigured_are_degraded() -> None:
    async def verify(network: Network) -> None:
        if network.name == "beta":
            raise MisconfiguredError("network beta: RPC URL #1 serves chain id 1")

    networks = two_networks(FakeChain(), FakeChain())
    starting = ReadinessService(
        database=database_up,
        queue=MemoryQueue(),
        registry=networks,
        health=NetworkHealth(networks, verify=verify),
    )
    assert (await starting.check()).degraded == ("chain:alpha", "chain:beta")
    assert (await starting.check()).checks["chain:alpha"] == CheckResult(
        ok=False, detail="starting: not checked yet"
    )

    health = NetworkHealth(networks, verify=verify)
    await health.check_all()
    service = ReadinessService(
        database=database_up, queue=MemoryQueue(), registry=networks, health=health
    )

    readiness = await service.check()

    assert readiness.status == "degraded"
    assert readiness.checks["chain:beta"] == CheckResult(
        ok=False, detail="misconfigured: network beta: RPC URL #1 serves chain id 1"
    )


async def test_with_a_monitor_a_database_down_is_still_not_ready() -> None:
    async def database_down() -> None:
        raise ConnectionError("refused")

    networks = two_networks(FakeChain(), FakeChain())
    health = NetworkHealth(networks, verify=verified)
    await health.check_all()
    service = ReadinessService(
        database=database_down, queue=MemoryQueue(), registry=networks, health=health
    )

    readiness = await service.check()

    assert readiness.status == "not_ready"
    assert not readiness.ok
    assert readiness.degraded == ()
    assert readiness.checks["database"] == CheckResult(ok=False, detail="ConnectionError")
