"""The queue contract against `MemoryQueue`, and what only the memory queue has."""

from __future__ import annotations

import pytest

from sluice.ports import Queue
from sluice.queue.memory import MAX_ERROR_CHARS, MemoryQueue
from sluice.testing.queue_contract import QueueContract


class TestMemoryQueueContract(QueueContract):
    async def make_queue(self, *, visibility_timeout_s: float) -> Queue:
        return MemoryQueue(visibility_timeout_s=visibility_timeout_s)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory(clock: FakeClock) -> MemoryQueue:
    return MemoryQueue(visibility_timeout_s=30.0, clock=clock)


async def test_stats_follow_a_message_through_its_states(
    memory: MemoryQueue, clock: FakeClock
) -> None:
    empty = {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}
    assert memory.stats() == empty

    await memory.publish("job", {"n": 1})
    await memory.publish("job", {"n": 2}, delay_s=10)
    assert memory.stats() == {"ready": 1, "delayed": 1, "in_flight": 0, "dead": 0}

    [first] = await memory.receive(max_messages=5, wait_s=0)
    assert first.payload == {"n": 1}
    assert memory.stats() == {"ready": 0, "delayed": 1, "in_flight": 1, "dead": 0}

    clock.now += 10
    assert memory.stats() == {"ready": 1, "delayed": 0, "in_flight": 1, "dead": 0}

    await memory.dead_letter(first, reason="poison")
    [second] = await memory.receive(max_messages=5, wait_s=0)
    await memory.ack(second)
    assert memory.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 1}

    assert await memory.requeue(first.id)
    assert memory.stats() == {"ready": 1, "delayed": 0, "in_flight": 0, "dead": 0}


async def test_visibility_timeout_on_the_injected_clock(
    memory: MemoryQueue, clock: FakeClock
) -> None:
    await memory.publish("job", {})
    [message] = await memory.receive(max_messages=1, wait_s=0)

    clock.now += 29.9
    assert await memory.receive(max_messages=1, wait_s=0) == []
    clock.now += 0.2
    assert memory.stats()["ready"] == 1

    [again] = await memory.receive(max_messages=1, wait_s=0)
    assert again.id == message.id
    assert again.attempts == 1
    await memory.ack(message)  # the first delivery's late ack settles the message
    assert memory.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}


async def test_retry_delay_on_the_injected_clock(memory: MemoryQueue, clock: FakeClock) -> None:
    await memory.publish("job", {})
    [message] = await memory.receive(max_messages=1, wait_s=0)

    await memory.retry(message, delay_s=60, error="x" * 2000)

    assert memory.stats()["delayed"] == 1
    clock.now += 59
    assert await memory.receive(max_messages=1, wait_s=0) == []
    clock.now += 1
    [again] = await memory.receive(max_messages=1, wait_s=0)
    assert again.last_error == "x" * MAX_ERROR_CHARS


async def test_equal_ready_times_are_first_in_first_out(memory: MemoryQueue) -> None:
    for n in range(10):
        await memory.publish("job", {"n": n})

    messages = await memory.receive(max_messages=10, wait_s=0)

    assert [m.payload["n"] for m in messages] == list(range(10))


async def test_each_delivery_gets_its_own_payload(memory: MemoryQueue) -> None:
    await memory.publish("job", {"items": [1]})
    [message] = await memory.receive(max_messages=1, wait_s=0)
    message.payload["items"].append(2)

    await memory.retry(message, delay_s=0, error="e")
    [again] = await memory.receive(max_messages=1, wait_s=0)

    assert again.payload == {"items": [1]}


async def test_close_hands_in_flight_messages_back(memory: MemoryQueue) -> None:
    await memory.publish("job", {})
    await memory.receive(max_messages=1, wait_s=0)

    await memory.close()

    assert memory.stats() == {"ready": 1, "delayed": 0, "in_flight": 0, "dead": 0}


async def test_invalid_arguments(memory: MemoryQueue) -> None:
    with pytest.raises(ValueError, match="max_messages"):
        await memory.receive(max_messages=0, wait_s=0)
    with pytest.raises(ValueError, match="visibility_timeout_s"):
        MemoryQueue(visibility_timeout_s=0)
