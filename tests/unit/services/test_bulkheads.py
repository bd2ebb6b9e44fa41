"""`Bulkheads`: a closed network's work is put back unattempted, a network's share of consumers
is bounded, and a node that stops answering closes its own network only, on fakes."""

from __future__ import annotations

import asyncio

import pytest

from sluice.domain.assets import Asset, Network
from sluice.errors import ChainUnavailableError, TransactionRefusedError
from sluice.services.network_health import NetworkHealth, NetworkStatus
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.testing.fakes import FakeChain
from sluice.worker.bulkheads import BUSY_RETRY_S, Bulkheads, share_of

#: A guard so a broken test fails instead of hanging (never part of an assertion).
GUARD_S = 5.0


def registry(*names: str) -> NetworkRegistry:
    return NetworkRegistry(
        {
            name: NetworkEntry(
                network=Network(name=name, chain_id=31337, native=Asset(name, "ETH", 18)),
                chain=FakeChain(),
                signers=(),
            )
            for name in names
        }
    )


async def verified(_: Network) -> None:
    return None


async def open_health(*names: str, interval_s: float = 3.0) -> NetworkHealth:
    health = NetworkHealth(registry(*names), verify=verified, interval_s=interval_s)
    await health.check_all()
    assert all(health.is_open(name) for name in names)
    return health


class Work:
    """A handler's chain part: counts its runs and answers ``result`` (or raises ``error``)."""

    def __init__(self, result: float | None = None, error: Exception | None = None) -> None:
        self.result = result
        self.error = error
        self.runs = 0

    async def __call__(self) -> float | None:
        self.runs += 1
        if self.error is not None:
            raise self.error
        return self.result


class Held:
    """Work that holds its consumer until released."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> float | None:
        self.started.set()
        await self.release.wait()
        return None


def test_one_network_has_every_consumer_and_several_share_half_each() -> None:
    assert share_of(8, 1) == 8
    assert share_of(8, 0) == 8
    assert share_of(8, 3) == 4
    assert share_of(3, 2) == 1
    assert share_of(1, 7) == 1


def test_a_bulkhead_needs_at_least_one_consumer() -> None:
    with pytest.raises(ValueError, match="at least one consumer"):
        Bulkheads(None, limit=0)


async def test_work_on_an_open_network_runs_and_its_answer_is_returned() -> None:
    health = await open_health("devnet")
    bulkheads = Bulkheads(health, limit=2)
    work = Work(result=1.5)

    assert await bulkheads.run("devnet", work) == 1.5
    assert await bulkheads.run("devnet", Work()) is None
    assert work.runs == 1
    assert bulkheads.busy("devnet") == 0


async def test_without_a_monitor_every_network_counts_as_open() -> None:
    work = Work(result=2.0)

    assert await Bulkheads(None, limit=1).run("anywhere", work) == 2.0
    assert work.runs == 1


async def test_a_closed_network_is_deferred_without_running_its_work() -> None:
    health = NetworkHealth(registry("devnet"), verify=verified, interval_s=4.0)  # starting
    bulkheads = Bulkheads(health, limit=2)
    work = Work()

    assert await bulkheads.run("devnet", work) == 4.0
    assert await bulkheads.run("unknown", work) == 4.0
    assert work.runs == 0
    assert bulkheads.busy("devnet") == 0


async def test_a_network_whose_share_is_taken_waits_while_another_network_runs() -> None:
    health = await open_health("slow", "fast")
    bulkheads = Bulkheads(health, limit=2)
    held = [Held(), Held()]
    holders = [asyncio.create_task(bulkheads.run("slow", h)) for h in held]
    for h in held:
        await asyncio.wait_for(h.started.wait(), GUARD_S)
    assert bulkheads.busy("slow") == 2

    third = Work()
    assert await bulkheads.run("slow", third) == BUSY_RETRY_S
    assert third.runs == 0

    other = Work(result=None)
    assert await bulkheads.run("fast", other) is None  # the other network finds a consumer
    assert other.runs == 1

    held[0].release.set()
    await asyncio.wait_for(holders[0], GUARD_S)
    assert bulkheads.busy("slow") == 1
    assert await bulkheads.run("slow", third) is None
    assert third.runs == 1

    held[1].release.set()
    await asyncio.wait_for(holders[1], GUARD_S)
    assert bulkheads.busy("slow") == 0


async def test_a_node_that_stops_answering_closes_only_its_network_and_the_job_waits() -> None:
    health = await open_health("down", "up", interval_s=3.0)
    bulkheads = Bulkheads(health, limit=1)

    delay = await bulkheads.run("down", Work(error=ChainUnavailableError("read timed out")))

    assert delay == 3.0
    assert health.state("down").status is NetworkStatus.DOWN
    assert health.state("down").detail == "read timed out"
    assert bulkheads.busy("down") == 0
    assert health.is_open("up")
    later = Work()
    assert await bulkheads.run("down", later) == 3.0  # closed now: not attempted
    assert later.runs == 0


async def test_a_refused_transaction_is_the_jobs_error_not_an_outage() -> None:
    health = await open_health("devnet")
    bulkheads = Bulkheads(health, limit=1)
    refused = TransactionRefusedError("insufficient funds", reason="insufficient_funds")

    with pytest.raises(TransactionRefusedError):
        await bulkheads.run("devnet", Work(error=refused))

    assert health.is_open("devnet")
    assert bulkheads.busy("devnet") == 0


async def test_without_a_monitor_an_unavailable_node_is_raised_to_the_worker() -> None:
    bulkheads = Bulkheads(None, limit=1)

    with pytest.raises(ChainUnavailableError):
        await bulkheads.run("devnet", Work(error=ChainUnavailableError("down")))

    assert bulkheads.busy("devnet") == 0


async def test_any_other_failure_propagates_and_frees_the_consumer() -> None:
    health = await open_health("devnet")
    bulkheads = Bulkheads(health, limit=1)

    with pytest.raises(KeyError):
        await bulkheads.run("devnet", Work(error=KeyError("bug")))

    assert health.is_open("devnet")
    assert bulkheads.busy("devnet") == 0
    assert await bulkheads.run("devnet", Work(result=0.5)) == 0.5
