"""The behaviour every `Queue` adapter must show, as tests each backend runs against itself.

Subclass `QueueContract` in a test module under a name pytest collects (``Test*``) and implement
`QueueContract.make_queue`; every test below then runs against that backend::

    class TestMemoryQueueContract(QueueContract):
        async def make_queue(self, *, visibility_timeout_s: float) -> Queue:
            return MemoryQueue(visibility_timeout_s=visibility_timeout_s)

The class attributes set the timings; a backend with a coarser clock (SQS counts whole seconds)
raises them. Timing assertions are one-sided or generous, so slow machines do not fail them.
"""

# Asserting is what this module is for; it runs only under pytest (the S101 ignore covers tests/).
# ruff: noqa: S101

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from sluice.ports import Message, Queue


class QueueContract:
    """Tests any `Queue` adapter must pass; subclasses provide the queue."""

    long_visibility_s: ClassVar[float] = 60.0
    """Visibility timeout for tests that must never see a redelivery."""
    short_visibility_s: ClassVar[float] = 0.2
    """Visibility timeout for the redelivery tests."""
    retry_delay_s: ClassVar[float] = 0.3
    """Delay used by the retry test."""
    max_wait_s: ClassVar[float] = 5.0
    """Upper bound for anything expected to happen soon; reached only when a test fails."""

    async def make_queue(self, *, visibility_timeout_s: float) -> Queue:
        """A fresh, empty queue of the backend under test."""
        raise NotImplementedError

    @pytest.fixture
    async def queue(self) -> AsyncIterator[Queue]:
        queue = await self.make_queue(visibility_timeout_s=self.long_visibility_s)
        try:
            yield queue
        finally:
            await queue.close()

    @pytest.fixture
    async def short_queue(self) -> AsyncIterator[Queue]:
        queue = await self.make_queue(visibility_timeout_s=self.short_visibility_s)
        try:
            yield queue
        finally:
            await queue.close()

    async def receive_one(self, queue: Queue) -> Message:
        """The next message, failing if none arrives within ``max_wait_s``."""
        messages = await queue.receive(max_messages=1, wait_s=self.max_wait_s)
        assert len(messages) == 1, f"expected one message within {self.max_wait_s}s"
        return messages[0]

    # ── Delivery ──────────────────────────────────────────────────────────────────────────────

    async def test_publish_receive_ack(self, queue: Queue) -> None:
        await queue.publish("withdrawal.sign", {"withdrawal_id": "wd_1"})

        message = await self.receive_one(queue)

        assert message.job == "withdrawal.sign"
        assert message.payload == {"withdrawal_id": "wd_1"}
        assert message.attempts == 0
        assert message.last_error is None
        assert abs(message.enqueued_at - time.time()) < 60
        assert message.id
        assert await queue.receive(max_messages=1, wait_s=0) == [], "in flight: not visible"
        await queue.ack(message)
        await queue.ack(message)  # acking twice (or an unknown id) is harmless
        assert await queue.receive(max_messages=1, wait_s=0) == []

    async def test_receive_takes_up_to_max_messages_in_order(self, queue: Queue) -> None:
        for n in range(5):
            await queue.publish("job", {"n": n})

        first = await queue.receive(max_messages=3, wait_s=self.max_wait_s)
        rest = await queue.receive(max_messages=10, wait_s=self.max_wait_s)

        assert [m.payload["n"] for m in first] == [0, 1, 2]
        assert [m.payload["n"] for m in rest] == [3, 4]
        assert len({m.id for m in first + rest}) == 5

    async def test_unacked_message_is_redelivered_after_visibility_timeout(
        self, short_queue: Queue
    ) -> None:
        await short_queue.publish("job", {"k": "v"})
        first = await self.receive_one(short_queue)
        taken_at = time.monotonic()

        again = await self.receive_one(short_queue)

        assert time.monotonic() - taken_at >= self.short_visibility_s * 0.8
        assert again.id == first.id
        assert again.payload == {"k": "v"}
        assert again.attempts == first.attempts + 1

    async def test_acked_message_is_not_redelivered(self, short_queue: Queue) -> None:
        await short_queue.publish("job", {})
        await short_queue.ack(await self.receive_one(short_queue))

        assert await short_queue.receive(max_messages=1, wait_s=self.short_visibility_s * 2.5) == []

    # ── Retries and dead letters ──────────────────────────────────────────────────────────────

    async def test_retry_is_delivered_after_the_delay_with_attempt_and_error(
        self, queue: Queue
    ) -> None:
        await queue.publish("job", {"k": 1})
        message = await self.receive_one(queue)
        retried_at = time.monotonic()

        await queue.retry(message, delay_s=self.retry_delay_s, error="node timed out")

        assert await queue.receive(max_messages=1, wait_s=0) == [], "delivered before its delay"
        again = await self.receive_one(queue)
        assert time.monotonic() - retried_at >= self.retry_delay_s * 0.8
        assert again.payload == {"k": 1}
        assert again.attempts == message.attempts + 1
        assert again.last_error == "node timed out"
        await queue.ack(again)
        assert await queue.receive(max_messages=1, wait_s=0) == [], "retry left a copy behind"

    async def test_retry_without_delay_is_delivered_at_once(self, queue: Queue) -> None:
        await queue.publish("job", {})
        first = await self.receive_one(queue)
        await queue.retry(first, delay_s=0, error="e1")
        second = await self.receive_one(queue)
        await queue.retry(second, delay_s=0, error="e2")

        third = await self.receive_one(queue)

        assert third.attempts == 2
        assert third.last_error == "e2"

    async def test_dead_letter_requeue_cycle(self, queue: Queue) -> None:
        await queue.publish("job", {"w": "a"}, request_id="req-a")
        await queue.publish("job", {"w": "b"})
        a, b = await queue.receive(max_messages=2, wait_s=self.max_wait_s)
        await queue.retry(a, delay_s=0, error="boom")
        a = await self.receive_one(queue)
        assert a.attempts == 1

        await queue.dead_letter(a, reason="exhausted retries")
        await queue.dead_letter(b, reason="poison")

        assert await queue.receive(max_messages=1, wait_s=0) == [], "a dead letter was delivered"
        dead = await queue.dead_letters()
        assert [d.message.payload for d in dead] == [{"w": "a"}, {"w": "b"}], "oldest first"
        assert [d.reason for d in dead] == ["exhausted retries", "poison"]
        assert dead[0].message.job == "job"
        assert dead[0].message.request_id == "req-a"
        assert all(d.dead_at.utcoffset() is not None for d in dead), "dead_at must be aware"

        assert await queue.requeue(dead[0].message.id) is True

        again = await self.receive_one(queue)
        assert again.payload == {"w": "a"}
        assert again.job == "job"
        assert again.attempts == 0
        assert again.request_id == "req-a"
        assert [d.message.payload for d in await queue.dead_letters()] == [{"w": "b"}]
        assert await queue.requeue(dead[0].message.id) is False, "requeued twice"

    async def test_requeue_unknown_is_false(self, queue: Queue) -> None:
        assert await queue.requeue("no-such-message") is False

    # ── Payloads ──────────────────────────────────────────────────────────────────────────────

    async def test_payload_round_trip(self, queue: Queue) -> None:
        payload: dict[str, Any] = {
            "amount": 2**256 - 1,
            "negative": -(2**255),
            "ratio": 0.125,
            "unicode": "Zürich — 東京 — 🚀 — \u0000 nul",
            "nested": {"list": [1, "two", {"three": [None, True, False]}], "empty": {}},
            "address": "0x" + "ab" * 20,
        }
        snapshot: dict[str, Any] = {
            **payload,
            "nested": {"list": [1, "two", {"three": [None, True, False]}], "empty": {}},
        }
        await queue.publish("job", payload)
        payload["nested"]["list"].append("added after publish")
        payload["amount"] = 0

        message = await self.receive_one(queue)

        assert message.payload == snapshot, "the consumer must not share the producer's dict"
        assert message.payload["amount"] == 2**256 - 1
        assert type(message.payload["amount"]) is int

    async def test_non_serializable_payload_fails_at_publish(self, queue: Queue) -> None:
        with pytest.raises((TypeError, ValueError)):
            await queue.publish("job", {"when": object()})
        with pytest.raises((TypeError, ValueError)):
            await queue.publish("job", {"nested": {"ids": {1, 2}}})

        assert await queue.receive(max_messages=1, wait_s=0) == []

    async def test_request_id_is_carried(self, queue: Queue) -> None:
        await queue.publish("job", {}, request_id="req-123")
        await queue.publish("job", {})

        messages = await queue.receive(max_messages=2, wait_s=self.max_wait_s)

        assert [m.request_id for m in messages] == ["req-123", None]

    # ── Waiting ───────────────────────────────────────────────────────────────────────────────

    async def test_receive_times_out_empty(self, queue: Queue) -> None:
        started = time.monotonic()

        assert await queue.receive(max_messages=1, wait_s=0.1) == []

        assert time.monotonic() - started < self.max_wait_s

    async def test_receive_wakes_when_a_message_is_published(self, queue: Queue) -> None:
        waiting = asyncio.create_task(queue.receive(max_messages=1, wait_s=self.max_wait_s * 4))
        await asyncio.sleep(0.05)  # let the receiver start waiting
        published_at = time.monotonic()

        await queue.publish("job", {"n": 1})
        messages = await asyncio.wait_for(waiting, self.max_wait_s)

        assert [m.payload for m in messages] == [{"n": 1}]
        assert time.monotonic() - published_at < self.max_wait_s

    async def test_concurrent_consumers_get_distinct_messages(self, queue: Queue) -> None:
        total = 30
        seen: list[int] = []

        async def consume() -> None:
            while len(seen) < total:
                for message in await queue.receive(max_messages=3, wait_s=0.2):
                    seen.append(message.payload["n"])
                    await queue.ack(message)

        consumers = [asyncio.create_task(consume()) for _ in range(4)]
        await asyncio.sleep(0.02)  # some consumers are waiting when the messages arrive
        for n in range(total):
            await queue.publish("job", {"n": n})
        await asyncio.wait_for(asyncio.gather(*consumers), self.max_wait_s)

        assert sorted(seen) == list(range(total)), "each message exactly once"

    async def test_close_wakes_receivers(self, queue: Queue) -> None:
        waiting = [
            asyncio.create_task(queue.receive(max_messages=1, wait_s=self.max_wait_s * 4))
            for _ in range(2)
        ]
        await asyncio.sleep(0.05)  # let the receivers start waiting

        await queue.close()

        assert await asyncio.wait_for(asyncio.gather(*waiting), self.max_wait_s) == [[], []]
        assert await queue.receive(max_messages=1, wait_s=self.max_wait_s) == []
        with pytest.raises(RuntimeError, match="closed"):
            await queue.publish("job", {})
        await queue.close()  # closing twice is harmless

    async def test_ping(self, queue: Queue) -> None:
        await queue.ping()
