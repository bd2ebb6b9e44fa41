"""The queue contract against `RedisStreamsQueue` on a real Redis, and what only Redis has.

Each test gets a namespace of its own, deleted afterwards, so tests never see each other's keys.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from sluice.errors import TransientError
from sluice.ports import Queue
from sluice.queue.redis_streams import MAX_ERROR_CHARS, RedisStreamsQueue
from sluice.testing.queue_contract import QueueContract

MakeQueue = Callable[..., RedisStreamsQueue]

WAIT_S = 5.0
"""Upper bound for anything expected soon; reached only when a test fails."""


class TestRedisStreamsQueueContract(QueueContract):
    redis_url: str
    namespace: str

    @pytest.fixture(autouse=True)
    def _redis(self, redis_url: str, redis_namespace: str) -> None:
        self.redis_url = redis_url
        self.namespace = redis_namespace

    async def make_queue(self, *, visibility_timeout_s: float) -> Queue:
        return RedisStreamsQueue(
            self.redis_url, namespace=self.namespace, visibility_timeout_s=visibility_timeout_s
        )


@pytest.fixture
async def make(redis_url: str, redis_namespace: str) -> AsyncIterator[MakeQueue]:
    """Makes queues on the test's namespace (each its own "process"); closes them afterwards."""
    queues: list[RedisStreamsQueue] = []

    def make(**options: Any) -> RedisStreamsQueue:
        options.setdefault("namespace", redis_namespace)
        queue = RedisStreamsQueue(redis_url, **options)
        queues.append(queue)
        return queue

    try:
        yield make
    finally:
        for queue in queues:
            await queue.close()


async def receive_one(queue: RedisStreamsQueue, wait_s: float = WAIT_S) -> Any:
    messages = await queue.receive(max_messages=1, wait_s=wait_s)
    assert len(messages) == 1, f"expected one message within {wait_s}s"
    return messages[0]


def free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# ── Many processes, one stream ────────────────────────────────────────────────────────────────


async def test_two_instances_sharing_the_stream_get_distinct_messages(
    make: MakeQueue, redis_admin: Redis, redis_namespace: str
) -> None:
    a, b = make(consumer="a"), make(consumer="b")
    for n in range(4):
        await a.publish("job", {"n": n})

    first = await a.receive(max_messages=2, wait_s=WAIT_S)
    second = await b.receive(max_messages=2, wait_s=WAIT_S)

    assert [m.payload["n"] for m in first] == [0, 1]
    assert [m.payload["n"] for m in second] == [2, 3]
    assert await a.receive(max_messages=1, wait_s=0) == []
    assert await b.receive(max_messages=1, wait_s=0) == []
    consumers = await redis_admin.xinfo_consumers(f"{redis_namespace}:jobs", "workers")
    assert {c["name"]: c["pending"] for c in consumers} == {"a": 2, "b": 2}
    for message in first:
        await a.ack(message)
    for message in second:
        await b.ack(message)
    assert await a.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}


async def test_concurrent_instances_handle_each_message_exactly_once(make: MakeQueue) -> None:
    total = 40
    instances = [make(), make()]
    seen: list[int] = []

    async def consume(queue: RedisStreamsQueue) -> None:
        while len(seen) < total:
            for message in await queue.receive(max_messages=2, wait_s=0.2):
                seen.append(message.payload["n"])
                await queue.ack(message)

    consumers = [asyncio.create_task(consume(q)) for q in instances for _ in range(3)]
    await asyncio.sleep(0.05)  # some consumers are blocked when the messages arrive
    for n in range(total):
        await instances[n % 2].publish("job", {"n": n})
    await asyncio.wait_for(asyncio.gather(*consumers), WAIT_S)

    assert sorted(seen) == list(range(total))


_DYING_CONSUMER = """
import asyncio, os, sys
from sluice.queue.redis_streams import RedisStreamsQueue

async def main() -> None:
    url, namespace, visibility = sys.argv[1], sys.argv[2], float(sys.argv[3])
    queue = RedisStreamsQueue(
        url, namespace=namespace, consumer="doomed", visibility_timeout_s=visibility
    )
    [message] = await queue.receive(max_messages=1, wait_s=5)
    print(message.id, message.attempts, flush=True)
    os._exit(9)  # die mid-job: no ack, no close, no cleanup

asyncio.run(main())
"""


async def test_message_of_a_consumer_that_dies_goes_to_another_after_the_visibility_timeout(
    make: MakeQueue, redis_url: str, redis_namespace: str, redis_admin: Redis
) -> None:
    visibility_s = 1.0
    survivor = make(consumer="survivor", visibility_timeout_s=visibility_s)
    await survivor.publish("job", {"k": "v"}, request_id="req-1")

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _DYING_CONSUMER,
        redis_url,
        redis_namespace,
        str(visibility_s),
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 9
    message_id, attempts = stdout.decode().split()
    assert attempts == "0"
    pending = await redis_admin.xpending(f"{redis_namespace}:jobs", "workers")
    assert pending["pending"] == 1
    assert [c["name"] for c in pending["consumers"]] == ["doomed"]
    assert await survivor.receive(max_messages=1, wait_s=0) == [], "before the timeout"

    again = await receive_one(survivor)

    assert again.id == message_id
    assert again.attempts == 1
    assert again.payload == {"k": "v"}
    assert again.request_id == "req-1"
    await survivor.ack(again)
    assert await survivor.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}


async def test_close_leaves_in_flight_messages_to_be_reclaimed_by_others(
    make: MakeQueue, redis_admin: Redis, redis_namespace: str
) -> None:
    visibility_s = 1.0
    leaving = make(consumer="leaving", visibility_timeout_s=visibility_s)
    staying = make(consumer="staying", visibility_timeout_s=visibility_s)
    await leaving.publish("job", {"n": 1})
    message = await receive_one(leaving)
    taken_at = time.monotonic()

    await leaving.close()

    consumers = await redis_admin.xinfo_consumers(f"{redis_namespace}:jobs", "workers")
    assert {c["name"]: c["pending"] for c in consumers} == {"leaving": 1}
    assert await staying.receive(max_messages=1, wait_s=0.2) == [], "before the timeout"
    again = await receive_one(staying)
    assert time.monotonic() - taken_at >= visibility_s * 0.8
    assert (again.id, again.attempts) == (message.id, 1)
    await staying.ack(again)
    await staying.close()
    consumers = await redis_admin.xinfo_consumers(f"{redis_namespace}:jobs", "workers")
    assert {c["name"]: c["pending"] for c in consumers} == {"leaving": 0}, "empty: retired"


async def test_the_verdict_of_a_reclaimed_delivery_is_dropped(make: MakeQueue) -> None:
    slow = make(visibility_timeout_s=0.2)
    other = make(visibility_timeout_s=0.2)
    await slow.publish("job", {"n": 1})
    await slow.publish("job", {"n": 2})
    stale = await slow.receive(max_messages=2, wait_s=WAIT_S)
    assert len(stale) == 2
    redelivered: list[Any] = []
    while len(redelivered) < 2:  # reclaimed from `slow`, which overran the timeout
        redelivered += await other.receive(max_messages=2, wait_s=WAIT_S)

    await slow.retry(stale[0], delay_s=0, error="late")
    await slow.dead_letter(stale[1], reason="late")
    await slow.ack(stale[0])  # late, and harmless too

    assert await other.stats() == {"ready": 0, "delayed": 0, "in_flight": 2, "dead": 0}
    for message in redelivered:
        await other.ack(message)
    assert await other.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}
    assert await other.dead_letters() == []


async def test_a_message_reclaimed_too_often_is_dead_lettered(make: MakeQueue) -> None:
    queue = make(visibility_timeout_s=0.2, max_delivery_reclaims=1)
    await queue.publish("job", {"crash": "loop"})
    first = await receive_one(queue)
    second = await receive_one(queue)  # reclaimed once: delivered again
    assert (second.id, second.attempts) == (first.id, 1)

    assert await queue.receive(max_messages=1, wait_s=1.0) == []  # reclaimed twice: dead

    [dead] = await queue.dead_letters()
    assert dead.message.id == first.id
    assert dead.message.attempts == 2
    assert dead.reason.startswith("reclaimed 2 times")
    assert await queue.requeue(first.id)
    again = await receive_one(queue)
    assert (again.id, again.attempts) == (first.id, 0)
    await queue.ack(again)


async def test_delayed_messages_are_moved_by_any_instance(make: MakeQueue) -> None:
    producer, consumer = make(), make()
    await producer.publish("job", {"later": True}, delay_s=0.3)
    published_at = time.monotonic()

    assert await consumer.receive(max_messages=1, wait_s=0.1) == []
    message = await receive_one(consumer)

    assert time.monotonic() - published_at >= 0.3 * 0.8
    assert message.payload == {"later": True}
    await consumer.ack(message)


async def test_stats_follow_messages_through_their_states(make: MakeQueue) -> None:
    queue = make()
    assert await queue.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}

    await queue.publish("job", {"n": 1})
    await queue.publish("job", {"n": 2}, delay_s=60)
    await queue.publish("job", {"n": 3}, delay_s=0.2)
    assert await queue.stats() == {"ready": 1, "delayed": 2, "in_flight": 0, "dead": 0}
    await asyncio.sleep(0.3)
    assert await queue.stats() == {"ready": 2, "delayed": 1, "in_flight": 0, "dead": 0}

    first, third = await queue.receive(max_messages=5, wait_s=WAIT_S)
    assert [first.payload, third.payload] == [{"n": 1}, {"n": 3}]
    assert await queue.stats() == {"ready": 0, "delayed": 1, "in_flight": 2, "dead": 0}

    await queue.dead_letter(first, reason="poison")
    await queue.ack(third)
    assert await queue.stats() == {"ready": 0, "delayed": 1, "in_flight": 0, "dead": 1}
    assert await queue.requeue(first.id)
    assert await queue.stats() == {"ready": 1, "delayed": 1, "in_flight": 0, "dead": 0}


# ── Durability and layout ─────────────────────────────────────────────────────────────────────


async def test_dead_letters_survive_the_instance(make: MakeQueue) -> None:
    before = make()
    await before.publish("job", {"w": "a"}, request_id="req-a")
    await before.publish("job", {"w": "b"})
    a, b = await before.receive(max_messages=2, wait_s=WAIT_S)
    await before.dead_letter(a, reason="exhausted retries")
    await before.dead_letter(b, reason="poison")
    await before.close()

    after = make()
    dead = await after.dead_letters()

    assert [(d.message.payload, d.reason) for d in dead] == [
        ({"w": "a"}, "exhausted retries"),
        ({"w": "b"}, "poison"),
    ]
    assert dead[0].message.request_id == "req-a"
    assert all(abs(d.dead_at - datetime.now(UTC)) < timedelta(minutes=1) for d in dead)
    assert await after.requeue(a.id)
    assert await after.requeue(a.id) is False
    again = await receive_one(after)
    assert (again.id, again.payload, again.attempts) == (a.id, {"w": "a"}, 0)


async def test_a_message_dead_again_moves_to_the_end(make: MakeQueue) -> None:
    queue = make()
    await queue.publish("job", {"w": "a"})
    await queue.publish("job", {"w": "b"})
    a, b = await queue.receive(max_messages=2, wait_s=WAIT_S)
    await queue.dead_letter(a, reason="first")
    await queue.dead_letter(b, reason="second")
    await queue.requeue(a.id)
    await queue.dead_letter(await receive_one(queue), reason="third")

    assert [(d.message.id, d.reason) for d in await queue.dead_letters()] == [
        (b.id, "second"),
        (a.id, "third"),
    ]


async def test_key_layout(make: MakeQueue, redis_admin: Redis, redis_namespace: str) -> None:
    queue = make()
    await queue.publish("withdrawal.sign", {"withdrawal_id": "wd_1"}, request_id="req-1")
    await queue.publish("job", {"n": 2}, delay_s=60)
    ns = redis_namespace

    [(_, fields)] = await redis_admin.xrange(f"{ns}:jobs") or []
    assert fields is not None
    assert set(fields) == {"id", "job", "payload", "attempts", "reclaims", "enqueued_at"} | {
        "request_id"
    }
    assert fields["payload"] == '{"withdrawal_id": "wd_1"}'
    assert abs(float(fields["enqueued_at"]) - time.time()) < 60
    delayed = await redis_admin.zrange(f"{ns}:delayed", 0, -1, withscores=True)
    [(_, due_ms)] = cast("list[tuple[str, float]]", delayed)
    assert abs(due_ms / 1000 - 60 - time.time()) < 5, "score: ready time in ms"

    message = await receive_one(queue)
    await queue.dead_letter(message, reason="poison")

    types = {key: await redis_admin.type(key) async for key in redis_admin.scan_iter(f"{ns}:*")}
    assert types == {
        f"{ns}:jobs": "stream",
        f"{ns}:delayed": "zset",
        f"{ns}:dead": "stream",
        f"{ns}:dead:ids": "hash",
    }
    assert await redis_admin.xlen(f"{ns}:jobs") == 0, "settled entries are deleted"
    assert [g["name"] for g in await redis_admin.xinfo_groups(f"{ns}:jobs")] == ["workers"]


# ── Payloads and strings ──────────────────────────────────────────────────────────────────────


async def test_strings_survive_every_path(make: MakeQueue) -> None:
    queue = make()
    odd = 'Zürich — 東京 — 🚀 — \u0000 nul — "quoted" \\ / \t\n'
    payload = {"amount": 2**256 - 1, "text": odd}
    await queue.publish(f"job {odd}", payload, request_id=f"req {odd}")

    message = await receive_one(queue)
    await queue.retry(message, delay_s=0.05, error=f"boom {odd}")  # through the delayed set
    delayed = await receive_one(queue)
    await queue.retry(delayed, delay_s=0, error=f"bang {odd}")  # straight to the stream
    direct = await receive_one(queue)
    await queue.dead_letter(direct, reason=f"dead {odd}")
    [dead] = await queue.dead_letters()

    for seen in (message, delayed, direct, dead.message):
        assert seen.job == f"job {odd}"
        assert seen.request_id == f"req {odd}"
        assert seen.payload == payload
        assert type(seen.payload["amount"]) is int
    assert delayed.last_error == f"boom {odd}"
    assert direct.last_error == f"bang {odd}"
    assert dead.reason == f"dead {odd}"


async def test_last_error_is_truncated_and_made_encodable(make: MakeQueue) -> None:
    queue = make()
    await queue.publish("job", {})
    message = await receive_one(queue)

    await queue.retry(message, delay_s=0, error="\udc80" + "x" * 2000)  # a lone surrogate

    again = await receive_one(queue)
    assert again.last_error == "?" + "x" * (MAX_ERROR_CHARS - 1)


async def test_a_malformed_entry_is_dead_lettered_not_delivered(
    make: MakeQueue, redis_admin: Redis, redis_namespace: str
) -> None:
    queue = make()
    await redis_admin.xadd(f"{redis_namespace}:jobs", {"what": "not a message"})
    await queue.publish("job", {"n": 1})

    messages = await queue.receive(max_messages=5, wait_s=WAIT_S)

    assert [m.payload for m in messages] == [{"n": 1}]
    [dead] = await queue.dead_letters()
    assert dead.reason == "malformed message: no payload field"
    assert dead.message.payload["what"] == "not a message"
    assert await queue.stats() == {"ready": 0, "delayed": 0, "in_flight": 1, "dead": 1}


# ── Configuration and failure ─────────────────────────────────────────────────────────────────


async def test_from_url_reads_the_queue_options(
    redis_url: str, redis_namespace: str, redis_admin: Redis
) -> None:
    url = (
        f"{redis_url}?namespace={redis_namespace}&visibility_timeout_s=0.2"
        "&consumer=from-url&max_delivery_reclaims=none&timeout_s=2"
    )
    queue = RedisStreamsQueue.from_url(url)
    try:
        assert queue.consumer == "from-url"
        await queue.publish("job", {})
        first = await receive_one(queue)
        again = await receive_one(queue)  # redelivered after 0.2 s, not 300
        assert (again.id, again.attempts) == (first.id, 1)
        assert await redis_admin.exists(f"{redis_namespace}:jobs") == 1
    finally:
        await queue.close()


@pytest.mark.parametrize(
    ("option", "value"),
    [("visibility_timeout_s", "soon"), ("visibility_timeout_s", "0"), ("timeout_s", "x")],
)
def test_from_url_rejects_bad_options_without_echoing_the_url(option: str, value: str) -> None:
    with pytest.raises(ValueError, match=option) as raised:
        RedisStreamsQueue.from_url(f"redis://:hunter2@127.0.0.1:6379/0?{option}={value}")

    assert "hunter2" not in str(raised.value)


async def test_redis_down_raises_transient_error_without_the_url() -> None:
    password = "s3cret-Passw0rd"
    url = f"redis://sluice:{password}@127.0.0.1:{free_port()}/0"
    queue = RedisStreamsQueue(url, timeout_s=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"^queue unavailable: ") as raised:
            await queue.publish("job", {"n": 1})
        assert time.monotonic() - started < WAIT_S, "failing must be quick"
        for text in (str(raised.value), repr(raised.value), str(raised.value.__cause__)):
            assert password not in text
            assert url not in text
        with pytest.raises(TransientError):
            await queue.receive(max_messages=1, wait_s=0)
        with pytest.raises(TransientError):
            await queue.ping()
        with pytest.raises(TransientError):
            await queue.stats()
    finally:
        await queue.close()  # closing must not fail either


async def test_receive_recreates_a_deleted_stream_and_group(
    make: MakeQueue, redis_admin: Redis, redis_namespace: str
) -> None:
    queue = make()
    assert await queue.receive(max_messages=1, wait_s=0) == []  # the group exists now
    await redis_admin.delete(f"{redis_namespace}:jobs")
    await queue.publish("job", {"n": 1})  # a new stream, without the group

    message = await receive_one(queue)

    assert message.payload == {"n": 1}


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="visibility_timeout_s"):
        RedisStreamsQueue("redis://127.0.0.1:6379/0", visibility_timeout_s=0)
    with pytest.raises(ValueError, match="max_delivery_reclaims"):
        RedisStreamsQueue("redis://127.0.0.1:6379/0", max_delivery_reclaims=-1)


async def test_receive_rejects_max_messages_below_one(make: MakeQueue) -> None:
    with pytest.raises(ValueError, match="max_messages"):
        await make().receive(max_messages=0, wait_s=0)
