"""`LaneQueue` over memory queues: the shared contract, priority, and settling on the right lane."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from sluice.bootstrap import make_queue
from sluice.errors import ConfigurationError
from sluice.ports import DeadLetter, Message, Queue
from sluice.queue.lanes import Lane, LaneQueue, lane_url
from sluice.queue.memory import MemoryQueue
from sluice.services import jobs
from sluice.testing.queue_contract import QueueContract

EMPTY = {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}


def memory_lanes(*, visibility_timeout_s: float = 60.0) -> list[Lane]:
    return [
        Lane(name, MemoryQueue(visibility_timeout_s=visibility_timeout_s), lane_jobs)
        for name, lane_jobs in jobs.LANES
    ]


class TestLaneQueueContract(QueueContract):
    """Unknown jobs (the contract's ``job``) go to the lowest lane, the one a receive waits on."""

    async def make_queue(self, *, visibility_timeout_s: float) -> Queue:
        return LaneQueue(memory_lanes(visibility_timeout_s=visibility_timeout_s), poll_s=0.05)


class TestLaneQueueContractOnTheHighLane(QueueContract):
    """Unknown jobs go to the highest lane: a waiting receive sees them between its waits."""

    async def make_queue(self, *, visibility_timeout_s: float) -> Queue:
        lanes = memory_lanes(visibility_timeout_s=visibility_timeout_s)
        return LaneQueue(lanes, default=lanes[0].name, poll_s=0.05)


@pytest.fixture
async def lanes() -> list[Lane]:
    return memory_lanes()


@pytest.fixture
async def queue(lanes: list[Lane]) -> LaneQueue:
    return LaneQueue(lanes, poll_s=0.05)


def inner(lane: Lane) -> MemoryQueue:
    assert isinstance(lane.queue, MemoryQueue)
    return lane.queue


# ── The lane table ────────────────────────────────────────────────────────────────────────────


def test_every_job_has_exactly_one_lane() -> None:
    named = [job for _, lane_jobs in jobs.LANES for job in lane_jobs]
    assert sorted(named) == sorted(jobs.ALL)
    assert [name for name, _ in jobs.LANES] == [jobs.STAGES_LANE, jobs.INTAKE_LANE]
    assert jobs.VALIDATE in dict(jobs.LANES)[jobs.INTAKE_LANE], "intake is the lowest lane"


# ── Priority ──────────────────────────────────────────────────────────────────────────────────


async def test_later_stages_are_served_before_a_backlog_of_intake(queue: LaneQueue) -> None:
    for n in range(20):
        await queue.publish(jobs.VALIDATE, {"n": n})
    await queue.publish(jobs.SIGN, {"n": "s"})
    await queue.publish(jobs.CONFIRM, {"n": "c"})
    await queue.publish(jobs.BROADCAST, {"n": "b"})

    order = []
    while messages := await queue.receive(max_messages=1, wait_s=0):
        order.append(messages[0].payload["n"])
        await queue.ack(messages[0])

    assert order == ["s", "c", "b", *range(20)]


async def test_a_stage_job_published_mid_backlog_jumps_the_queue(queue: LaneQueue) -> None:
    for n in range(5):
        await queue.publish(jobs.VALIDATE, {"n": n})
    [first] = await queue.receive(max_messages=1, wait_s=0)
    await queue.publish(jobs.SIGN, {"n": "s"})  # what handling the first one produces

    [second] = await queue.receive(max_messages=1, wait_s=0)

    assert (first.payload["n"], second.payload["n"]) == (0, "s")


async def test_lower_lanes_fill_what_the_higher_leave_of_a_batch(queue: LaneQueue) -> None:
    for n in range(5):
        await queue.publish(jobs.VALIDATE, {"n": n})
    await queue.publish(jobs.SIGN, {"n": "s"})

    batch = await queue.receive(max_messages=3, wait_s=0)

    assert [m.payload["n"] for m in batch] == ["s", 0, 1]


async def test_a_waiting_receive_sees_a_high_lane_message_within_the_poll(
    queue: LaneQueue,
) -> None:
    waiting = asyncio.create_task(queue.receive(max_messages=1, wait_s=10))
    await asyncio.sleep(0.1)  # waiting on the intake lane by now
    published_at = time.monotonic()

    await queue.publish(jobs.CONFIRM, {"n": 1})
    messages = await asyncio.wait_for(waiting, 5)

    assert [m.job for m in messages] == [jobs.CONFIRM]
    assert time.monotonic() - published_at < 1.0, "picked up within about poll_s (0.05 s)"


async def test_a_delayed_high_lane_message_does_not_block_intake(queue: LaneQueue) -> None:
    await queue.publish(jobs.CONFIRM, {}, delay_s=60)
    await queue.publish(jobs.VALIDATE, {})

    [message] = await queue.receive(max_messages=1, wait_s=0)

    assert message.job == jobs.VALIDATE


# ── Settling on the lane a message came from ──────────────────────────────────────────────────


async def test_ack_retry_and_dead_letter_go_to_the_lane_of_the_message(
    queue: LaneQueue, lanes: list[Lane]
) -> None:
    stages, intake = (inner(lane) for lane in lanes)
    await queue.publish(jobs.VALIDATE, {"w": 1})
    await queue.publish(jobs.SIGN, {"w": 2})
    await queue.publish(jobs.BROADCAST, {"w": 3})
    sign, broadcast, validate = await queue.receive(max_messages=3, wait_s=0)
    assert stages.stats()["in_flight"] == 2
    assert intake.stats()["in_flight"] == 1

    await queue.retry(validate, delay_s=60, error="later")
    await queue.dead_letter(sign, reason="poison")
    await queue.ack(broadcast)

    assert intake.stats() == {**EMPTY, "delayed": 1}
    assert stages.stats() == {**EMPTY, "dead": 1}
    assert await queue.stats() == {**EMPTY, "delayed": 1, "dead": 1}
    assert await queue.lane_stats() == {
        jobs.STAGES_LANE: {**EMPTY, "dead": 1},
        jobs.INTAKE_LANE: {**EMPTY, "delayed": 1},
    }


async def test_a_message_from_before_the_split_is_drained_and_settled_where_it_is(
    queue: LaneQueue, lanes: list[Lane]
) -> None:
    """The first lane is the old single queue: a validate job queued there before an upgrade."""
    stages, intake = (inner(lane) for lane in lanes)
    await stages.publish(jobs.VALIDATE, {"old": True})
    await queue.publish(jobs.VALIDATE, {"old": False})

    old = await queue.receive(max_messages=1, wait_s=0)
    assert [m.payload for m in old] == [{"old": True}], "the first lane is served first"
    await queue.retry(old[0], delay_s=0, error="e")

    assert stages.stats()["ready"] == 1, "retried on the lane it came from, not its job's"
    assert intake.stats()["ready"] == 1
    [again] = await queue.receive(max_messages=1, wait_s=0)
    await queue.dead_letter(again, reason="r")
    assert stages.stats()["dead"] == 1


async def test_a_redelivery_is_settled_on_its_lane_too(lanes: list[Lane]) -> None:
    short = [Lane(lane.name, MemoryQueue(visibility_timeout_s=0.05), lane.jobs) for lane in lanes]
    queue = LaneQueue(short, poll_s=0.02)
    await queue.publish(jobs.VALIDATE, {})
    first = (await queue.receive(max_messages=1, wait_s=0))[0]
    second = (await queue.receive(max_messages=1, wait_s=2))[0]  # after the visibility timeout
    assert (second.id, second.attempts) == (first.id, first.attempts + 1)

    await queue.ack(first)  # late: harmless
    await queue.dead_letter(second, reason="r")

    assert inner(short[1]).stats() == {**EMPTY, "dead": 1}


async def test_messages_not_received_here_are_settled_by_their_job(
    queue: LaneQueue, lanes: list[Lane]
) -> None:
    stages, intake = (inner(lane) for lane in lanes)
    stranger = Message(id="m-1", job=jobs.SIGN, payload={"k": 1})

    await queue.ack(stranger)  # unknown everywhere: nothing happens
    await queue.retry(stranger, delay_s=0, error="e")
    await queue.dead_letter(Message(id="m-2", job="some.job", payload={}), reason="r")

    assert stages.stats() == {**EMPTY, "ready": 1}
    assert intake.stats() == {**EMPTY, "dead": 1}, "unknown jobs belong to the last lane"


# ── Dead letters ──────────────────────────────────────────────────────────────────────────────


async def test_dead_letters_of_all_lanes_oldest_first_and_requeue_from_either(
    queue: LaneQueue, lanes: list[Lane]
) -> None:
    for job in (jobs.VALIDATE, jobs.SIGN, jobs.VALIDATE, jobs.CONFIRM):
        await queue.publish(job, {"job": job})
    received = await queue.receive(max_messages=4, wait_s=0)
    by_job = {m.job: m for m in received}
    order = [by_job[jobs.CONFIRM], received[-1], by_job[jobs.SIGN], received[-2]]
    for n, message in enumerate(order):
        await queue.dead_letter(message, reason=f"r{n}")
        await asyncio.sleep(0.002)  # distinct dead_at

    dead = await queue.dead_letters()

    assert [d.reason for d in dead] == ["r0", "r1", "r2", "r3"]
    assert await queue.requeue(order[1].id) is True  # intake
    assert await queue.requeue(order[2].id) is True  # stages
    assert await queue.requeue(order[2].id) is False
    assert await queue.requeue("nope") is False
    assert inner(lanes[0]).stats() == {**EMPTY, "ready": 1, "dead": 1}
    assert inner(lanes[1]).stats() == {**EMPTY, "ready": 1, "dead": 1}
    assert [d.reason for d in await queue.dead_letters()] == ["r0", "r3"]


async def test_dead_letters_merge_keeps_each_lanes_order() -> None:
    def letter(n: int, second: int) -> DeadLetter:
        at = datetime(2024, 1, 1, 0, 0, second, tzinfo=UTC)
        return DeadLetter(message=Message(id=str(n), job="j", payload={}), reason="", dead_at=at)

    class Fixed(MemoryQueue):
        def __init__(self, letters: list[DeadLetter]) -> None:
            super().__init__()
            self.letters = letters

        async def dead_letters(self) -> list[DeadLetter]:
            return self.letters

    queue = LaneQueue(
        [Lane("a", Fixed([letter(1, 1), letter(2, 5)])), Lane("b", Fixed([letter(3, 3)]))]
    )

    assert [d.message.id for d in await queue.dead_letters()] == ["1", "3", "2"]


# ── Failures, closing, configuration ──────────────────────────────────────────────────────────


class _Broken(MemoryQueue):
    async def receive(self, *, max_messages: int, wait_s: float) -> list[Message]:
        raise ConnectionError("down")

    async def ping(self) -> None:
        raise ConnectionError("down")


async def test_a_failing_lower_lane_does_not_lose_what_a_higher_lane_gave() -> None:
    high = MemoryQueue()
    queue = LaneQueue([Lane("high", high, frozenset({"a"})), Lane("low", _Broken())])
    await queue.publish("a", {})

    assert len(await queue.receive(max_messages=2, wait_s=0)) == 1
    with pytest.raises(ConnectionError):
        await queue.receive(max_messages=2, wait_s=0)
    with pytest.raises(ConnectionError):
        await queue.ping()


async def test_close_closes_every_lane(queue: LaneQueue, lanes: list[Lane]) -> None:
    await queue.publish(jobs.SIGN, {})
    await queue.receive(max_messages=1, wait_s=0)

    await queue.close()

    assert inner(lanes[0]).stats()["ready"] == 1, "the memory lane handed its message back"
    for lane in lanes:
        with pytest.raises(RuntimeError, match="closed"):
            await lane.queue.publish("job", {})
    await queue.close()


async def test_invalid_lanes() -> None:
    with pytest.raises(ValueError, match="at least one"):
        LaneQueue([])
    with pytest.raises(ValueError, match="unique"):
        LaneQueue([Lane("a", MemoryQueue()), Lane("a", MemoryQueue())])
    with pytest.raises(ValueError, match="is in lanes"):
        LaneQueue(
            [Lane("a", MemoryQueue(), frozenset({"j"})), Lane("b", MemoryQueue(), frozenset({"j"}))]
        )
    with pytest.raises(ValueError, match="default"):
        LaneQueue([Lane("a", MemoryQueue())], default="b")
    with pytest.raises(ValueError, match="poll_s"):
        LaneQueue([Lane("a", MemoryQueue())], poll_s=0)
    with pytest.raises(ValueError, match="max_messages"):
        await LaneQueue([Lane("a", MemoryQueue())]).receive(max_messages=0, wait_s=0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0?namespace=sluice.intake"),
        (
            "redis://:pw@h:6379/2?namespace=app&visibility_timeout_s=5",
            "redis://:pw@h:6379/2?visibility_timeout_s=5&namespace=app.intake",
        ),
        ("rediss://h/0?namespace=%7Bapp%7D", "rediss://h/0?namespace=%7Bapp%7D.intake"),
        ("sqs://sluice?region=eu-west-1", "sqs://sluice-intake?region=eu-west-1"),
        ("memory://", "memory://"),
    ],
)
def test_lane_url(url: str, expected: str) -> None:
    assert lane_url(url, "intake") == expected


async def test_make_queue_builds_the_lanes_of_the_pipeline() -> None:
    queue = make_queue("memory://")
    assert isinstance(queue, LaneQueue)
    assert [(lane.name, lane.jobs) for lane in queue.lanes] == list(jobs.LANES)
    assert all(isinstance(lane.queue, MemoryQueue) for lane in queue.lanes)
    assert queue.lane_for("anything.else").name == jobs.INTAKE_LANE
    await queue.close()


async def test_make_queue_names_sqs_lanes_beside_the_urls_queue() -> None:
    from sluice.queue.sqs import SqsQueue  # noqa: PLC0415 - only this test needs it

    queue = make_queue("sqs://sluice?region=us-east-1&visibility_timeout_s=5")
    assert isinstance(queue, LaneQueue)
    names = []
    for lane in queue.lanes:
        assert isinstance(lane.queue, SqsQueue)
        names.append((lane.queue.queue_name, lane.queue.visibility_timeout_s))
    assert names == [("sluice", 5), ("sluice-intake", 5)]
    await queue.close()
    with pytest.raises(ConfigurationError, match="unsupported"):
        make_queue("kafka://x")
