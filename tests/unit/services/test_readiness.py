"""`ReadinessService`: ready, degraded (only the cache fails) or not ready, with each check's
reason, on fakes."""

from __future__ import annotations

import asyncio

from sluice.domain.assets import Asset, Network
from sluice.errors import ChainUnavailableError
from sluice.queue.memory import MemoryQueue
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


async def test_a_node_on_another_chain_or_a_queue_down_is_not_ready_with_the_reasons() -> None:
    service = ReadinessService(
        database=database_up,
        queue=Pinged(ChainUnavailableError("queue refused the connection")),
        registry=registry(FakeChain(chain_id=1), chain_id=31337),
        cache=Pinged(),
    )

    readiness = await service.check()

    assert readiness.status == "not_ready"
    assert not readiness.ok
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
