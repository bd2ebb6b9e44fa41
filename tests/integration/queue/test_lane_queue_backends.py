"""The queue contract against `LaneQueue` over Redis Streams and over SQS (moto), and the lanes
`make_queue` builds on Redis: where each job lands, and that a queue from before lanes drains."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from sluice.bootstrap import make_queue
from sluice.ports import Queue
from sluice.queue.lanes import Lane, LaneQueue
from sluice.queue.redis_streams import RedisStreamsQueue
from sluice.services import jobs
from sluice.testing.moto import MotoServer
from sluice.testing.queue_contract import QueueContract


@pytest.fixture
async def lanes_namespace(redis_admin: Redis) -> AsyncIterator[str]:
    """A namespace of this test's own; its keys and its lanes' are deleted afterwards."""
    namespace = f"sluice-test-{uuid.uuid4().hex}"
    try:
        yield namespace
    finally:
        keys = [key async for key in redis_admin.scan_iter(match=f"{namespace}*")]
        if keys:
            await redis_admin.delete(*keys)


class TestRedisLaneQueueContract(QueueContract):
    redis_url: str
    namespace: str

    @pytest.fixture(autouse=True)
    def _redis(self, redis_url: str, lanes_namespace: str) -> None:
        self.redis_url = redis_url
        self.namespace = lanes_namespace

    async def make_queue(self, *, visibility_timeout_s: float) -> Queue:
        return LaneQueue(
            [
                Lane(
                    name,
                    RedisStreamsQueue(
                        self.redis_url,
                        namespace=self.namespace if n == 0 else f"{self.namespace}.{name}",
                        visibility_timeout_s=visibility_timeout_s,
                    ),
                    lane_jobs,
                )
                for n, (name, lane_jobs) in enumerate(jobs.LANES)
            ]
        )


async def test_make_queue_puts_intake_beside_the_urls_stream_and_drains_the_old_one(
    redis_url: str, lanes_namespace: str, redis_admin: Redis
) -> None:
    old = RedisStreamsQueue(redis_url, namespace=lanes_namespace)  # a version without lanes
    await old.publish(jobs.VALIDATE, {"n": "old"})
    await old.close()
    queue = make_queue(f"{redis_url}?namespace={lanes_namespace}&visibility_timeout_s=5")
    try:
        for n in range(3):
            await queue.publish(jobs.VALIDATE, {"n": n})
        await queue.publish(jobs.SIGN, {"n": "sign"})

        assert await redis_admin.xlen(f"{lanes_namespace}:jobs") == 2
        assert await redis_admin.xlen(f"{lanes_namespace}.intake:jobs") == 3

        order = []
        while messages := await queue.receive(max_messages=1, wait_s=0.3):
            order.append(messages[0].payload["n"])
            if messages[0].payload["n"] == 1:
                await queue.dead_letter(messages[0], reason="poison")
            else:
                await queue.ack(messages[0])

        assert order == ["old", "sign", 0, 1, 2], "the old queue is the first lane"
        [dead] = await queue.dead_letters()
        assert await redis_admin.xlen(f"{lanes_namespace}.intake:dead") == 1
        assert await queue.requeue(dead.message.id) is True
        [again] = await queue.receive(max_messages=1, wait_s=5)
        assert again.payload == {"n": 1}
        await queue.ack(again)
        assert isinstance(queue, LaneQueue)
        assert await queue.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}
    finally:
        await queue.close()


# ── SQS (moto) ────────────────────────────────────────────────────────────────────────────────


class TestSqsLaneQueueContract(QueueContract):
    short_visibility_s = 1.0  # SQS's smallest visibility timeout
    retry_delay_s = 1.0  # SQS's smallest delay

    @pytest.fixture(autouse=True)
    def _aws(self, aws: MotoServer) -> None:
        """Autouse, so the environment is set before the contract's queue fixtures run."""

    async def make_queue(self, *, visibility_timeout_s: float) -> Queue:
        url = f"sqs://sluice-test-{uuid.uuid4().hex[:16]}?region=us-east-1"
        queue = make_queue(f"{url}&visibility_timeout_s={visibility_timeout_s}")
        assert isinstance(queue, LaneQueue)
        return queue
