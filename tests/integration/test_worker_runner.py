"""The `Worker` consumer loop over a `MemoryQueue`, with toy handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from sluice.errors import ChainUnavailableError
from sluice.ports import Message
from sluice.testing.fakes import RecordingQueue
from sluice.worker.runner import Handler, Worker, backoff

WAIT_S = 5.0
"""Upper bound for anything expected to happen soon; reached only when a test fails."""

EMPTY = {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}


@pytest.fixture
async def queue() -> AsyncIterator[RecordingQueue]:
    queue = RecordingQueue()
    try:
        yield queue
    finally:
        await queue.close()


def make_worker(
    queue: RecordingQueue, handlers: Mapping[str, Handler], *, max_attempts: int = 4
) -> Worker:
    return Worker(
        queue,
        handlers,
        concurrency=2,
        max_attempts=max_attempts,
        retry_base_s=0.01,
        retry_max_s=1.0,
        receive_wait_s=0.02,
    )


async def eventually(check: Callable[[], Awaitable[bool] | bool], *, what: str) -> None:
    """Poll ``check`` until it holds, failing after `WAIT_S`."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def test_a_finished_handler_acks_its_message(queue: RecordingQueue) -> None:
    seen: list[dict[str, Any]] = []

    async def handler(payload: dict[str, Any]) -> float | None:
        seen.append(payload)
        return None

    worker = make_worker(queue, {"job": handler})
    worker.start()
    try:
        await queue.publish("job", {"withdrawalId": "wd_1"})
        await eventually(lambda: len(queue.acked) == 1, what="the ack")
    finally:
        await worker.stop(timeout_s=WAIT_S)

    assert seen == [{"withdrawalId": "wd_1"}]
    assert queue.retries == []
    assert queue.stats() == EMPTY


async def test_a_returned_delay_reschedules_without_counting_a_failure(
    queue: RecordingQueue,
) -> None:
    deliveries: list[int] = []

    async def poll(payload: dict[str, Any]) -> float | None:
        deliveries.append(payload["n"])
        return 0.01 if len(deliveries) < 3 else None

    worker = make_worker(queue, {"poll": poll}, max_attempts=1)
    worker.start()
    try:
        await queue.publish("poll", {"n": 7})
        await eventually(lambda: len(queue.acked) == 3, what="three deliveries")
    finally:
        await worker.stop(timeout_s=WAIT_S)

    assert deliveries == [7, 7, 7], "ran again even with max_attempts=1: not a failure"
    assert queue.published == [
        ("poll", {"n": 7}, 0.0, None),
        ("poll", {"n": 7}, 0.01, None),
        ("poll", {"n": 7}, 0.01, None),
    ]
    assert [m.attempts for m in queue.acked] == [0, 0, 0]
    assert queue.retries == []
    assert await queue.dead_letters() == []
    assert queue.stats() == EMPTY


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ChainUnavailableError("node down"), "node down"),
        (RuntimeError("internal detail"), "RuntimeError"),  # never the message of a bug
    ],
    ids=["transient", "unexpected"],
)
async def test_failures_retry_with_growing_backoff_then_dead_letter(
    queue: RecordingQueue, error: Exception, reason: str
) -> None:
    calls = 0

    async def failing(payload: dict[str, Any]) -> float | None:
        nonlocal calls
        calls += 1
        raise error

    worker = make_worker(queue, {"job": failing}, max_attempts=4)
    with capture_logs() as logs:
        worker.start()
        try:
            await queue.publish("job", {"withdrawalId": "wd_1"}, request_id="req-7")
            await eventually(lambda: queue.stats()["dead"] == 1, what="the dead letter")
        finally:
            await worker.stop(timeout_s=WAIT_S)

    assert calls == 4
    assert [(attempts, why) for attempts, _, why in queue.retries] == [
        (0, reason),
        (1, reason),
        (2, reason),
    ]
    delays = [delay for _, delay, _ in queue.retries]
    assert delays == sorted(delays)
    assert len(set(delays)) == 3, f"backoff grows: {delays}"
    for n, delay in enumerate(delays, start=1):
        assert 0.01 * 2 ** (n - 1) / 2 <= delay <= 0.01 * 2 ** (n - 1)
    [dead] = await queue.dead_letters()
    assert dead.reason == f"4 attempts; last: {reason}"
    assert dead.message.payload == {"withdrawalId": "wd_1"}
    assert dead.message.request_id == "req-7"
    assert dead.message.last_error == reason
    assert queue.acked == []
    assert queue.stats() == {**EMPTY, "dead": 1}
    assert [e["event"] for e in logs].count("job dead-lettered") == 1


def test_backoff_doubles_within_jitter_and_is_capped() -> None:
    for attempt in range(1, 8):
        ceiling = min(5.0, 0.5 * 2 ** (attempt - 1))
        for _ in range(20):
            assert ceiling / 2 <= backoff(attempt, base_s=0.5, max_s=5.0) <= ceiling


async def test_an_unknown_job_is_dead_lettered_at_once(queue: RecordingQueue) -> None:
    async def unused(payload: dict[str, Any]) -> float | None:
        raise AssertionError("not this handler")

    worker = make_worker(queue, {"known": unused}, max_attempts=8)
    with capture_logs():
        worker.start()
        try:
            await queue.publish("mystery.job", {"x": 1})
            await eventually(lambda: queue.stats()["dead"] == 1, what="the dead letter")
        finally:
            await worker.stop(timeout_s=WAIT_S)

    [dead] = await queue.dead_letters()
    assert dead.reason == "no handler for mystery.job"
    assert dead.message.attempts == 0
    assert queue.retries == []


async def test_stop_waits_for_the_in_flight_handler(queue: RecordingQueue) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def slow(payload: dict[str, Any]) -> float | None:
        started.set()
        await release.wait()
        finished.append(payload["withdrawalId"])
        return None

    worker = make_worker(queue, {"slow": slow})
    worker.start()
    await queue.publish("slow", {"withdrawalId": "wd_1"})
    await asyncio.wait_for(started.wait(), WAIT_S)

    stopping = asyncio.create_task(worker.stop(timeout_s=WAIT_S))
    await asyncio.sleep(0.1)  # several receive waits: the idle consumer has long stopped
    assert not stopping.done(), "stop() returned while a handler was running"
    assert finished == []

    release.set()
    await asyncio.wait_for(stopping, WAIT_S)

    assert finished == ["wd_1"]
    assert [m.payload for m in queue.acked] == [{"withdrawalId": "wd_1"}]
    assert queue.stats() == EMPTY
    await queue.publish("slow", {"withdrawalId": "wd_2"})
    await asyncio.sleep(0.05)
    assert queue.stats()["ready"] == 1, "a stopped worker takes no more work"


async def test_stop_abandons_a_handler_that_overruns_its_timeout(queue: RecordingQueue) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck(payload: dict[str, Any]) -> float | None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return None

    worker = make_worker(queue, {"stuck": stuck})
    worker.start()
    await queue.publish("stuck", {})
    await asyncio.wait_for(started.wait(), WAIT_S)

    await asyncio.wait_for(worker.stop(timeout_s=0.05), WAIT_S)

    assert cancelled.is_set()
    assert queue.acked == []
    assert queue.stats()["in_flight"] == 1, "left unacknowledged for redelivery"


async def test_the_request_id_is_bound_while_the_handler_runs(queue: RecordingQueue) -> None:
    seen: list[dict[str, Any]] = []

    async def handler(payload: dict[str, Any]) -> float | None:
        seen.append(dict(structlog.contextvars.get_contextvars()))
        structlog.get_logger("test").info("inside the handler")
        return None

    worker = make_worker(queue, {"withdrawal.sign": handler})
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await queue.publish("withdrawal.sign", {"withdrawalId": "wd_9", "n": 1}, request_id="req-x")
        [message] = await queue.receive(max_messages=1, wait_s=WAIT_S)
        await worker.handle(message)

    [context] = seen
    assert context["request_id"] == "req-x"
    assert context["job"] == "withdrawal.sign"
    assert context["message_id"] == message.id
    assert context["withdrawalId"] == "wd_9"
    assert "n" not in context, "only ids are bound"
    inside = next(e for e in logs if e["event"] == "inside the handler")
    assert inside["request_id"] == "req-x"
    assert structlog.contextvars.get_contextvars() == {}, "unbound after the handler"


class _AckFailsOnce(RecordingQueue):
    def __init__(self) -> None:
        super().__init__()
        self.ack_failures = 0

    async def ack(self, message: Message) -> None:
        if self.ack_failures == 0:
            self.ack_failures += 1
            raise ConnectionError("queue went away")
        await super().ack(message)


async def test_a_failing_queue_operation_does_not_kill_the_consumer() -> None:
    queue = _AckFailsOnce()
    seen: list[int] = []

    async def handler(payload: dict[str, Any]) -> float | None:
        seen.append(payload["n"])
        return None

    worker = Worker(queue, {"job": handler}, concurrency=1, receive_wait_s=0.05)
    worker.start()
    try:
        await queue.publish("job", {"n": 1})
        await eventually(lambda: queue.ack_failures == 1, what="the failed ack")
        await queue.publish("job", {"n": 2})
        await eventually(lambda: 2 in seen, what="the next message, on the same consumer")
    finally:
        await worker.stop(timeout_s=WAIT_S)
