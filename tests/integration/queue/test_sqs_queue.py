"""The queue contract against `SqsQueue` on an in-process moto server, and what only SQS has.

SQS counts delays, waits and visibility timeouts in whole seconds, so the contract's timings are
raised to one second. Every test uses fresh queues (a unique name), so tests share the server.

Moto delivers a standard queue's messages in the order they were sent, and returns every
visible message a receive asks for; real SQS promises neither (best-effort order, and a receive
may return fewer). The contract's ordering and batching assertions hold against moto, which is
what this file runs against; the adapter itself promises no order.
"""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from collections.abc import AsyncIterator

import pytest

from sluice.devnet.anvil import free_port
from sluice.errors import ConfigurationError, TransientError
from sluice.ports import DeadLetter, Message, Queue
from sluice.queue.sqs import REDRIVE_REASON, SqsQueue
from sluice.testing.moto import MotoServer
from sluice.testing.queue_contract import QueueContract

WAIT_S = 5.0
"""Upper bound for anything expected to happen soon; reached only when a test fails."""


def unique_name() -> str:
    return f"sluice-test-{uuid.uuid4().hex[:16]}"


def sqs_queue() -> SqsQueue:
    return SqsQueue(unique_name(), region="us-east-1")


@pytest.fixture
async def make_sqs(aws: MotoServer) -> AsyncIterator[list[SqsQueue]]:
    """Queues a test creates (append them), closed after it."""
    queues: list[SqsQueue] = []
    try:
        yield queues
    finally:
        for queue in queues:
            await queue.close()


class TestSqsQueueContract(QueueContract):
    short_visibility_s = 1.0  # SQS's smallest visibility timeout
    retry_delay_s = 1.0  # SQS's smallest delay
    max_wait_s = WAIT_S

    @pytest.fixture(autouse=True)
    def _aws(self, aws: MotoServer) -> None:
        """Autouse, so the environment is set before the contract's queue fixtures run."""

    async def make_queue(self, *, visibility_timeout_s: float) -> Queue:
        return SqsQueue(
            unique_name(), region="us-east-1", visibility_timeout_s=visibility_timeout_s
        )


# ── Redrive, dead letters, requeue ────────────────────────────────────────────────────────────


async def test_redrive_moves_a_message_received_max_receives_times_to_the_dlq(
    make_sqs: list[SqsQueue],
) -> None:
    queue = SqsQueue(unique_name(), region="us-east-1", max_receives=2, visibility_timeout_s=1)
    make_sqs.append(queue)
    await queue.publish("job", {"w": "crash"}, request_id="req-c")

    first = (await queue.receive(max_messages=1, wait_s=WAIT_S))[0]
    second = (await queue.receive(max_messages=1, wait_s=WAIT_S))[0]  # after the timeout
    assert second.id == first.id
    assert (first.attempts, second.attempts) == (0, 1), "each receive counts as an attempt"

    # Neither delivery was settled (the worker "died"). The next receive after the visibility
    # timeout finds the message received max_receives times, and SQS moves it to the DLQ.
    deadline = time.monotonic() + WAIT_S
    dead: list[DeadLetter] = []
    while not dead and time.monotonic() < deadline:
        assert await queue.receive(max_messages=1, wait_s=0) == [], "delivered a third time"
        dead = await queue.dead_letters()
        await asyncio.sleep(0.2)

    assert len(dead) == 1
    assert dead[0].reason == REDRIVE_REASON
    assert dead[0].message.id == first.id
    assert dead[0].message.payload == {"w": "crash"}
    assert dead[0].message.request_id == "req-c"
    assert dead[0].message.attempts == 1, "delivered twice"
    assert dead[0].dead_at.utcoffset() is not None
    assert (await queue.stats())["dead"] == 1

    assert await queue.requeue(first.id) is True

    again = (await queue.receive(max_messages=1, wait_s=WAIT_S))[0]
    assert (again.id, again.payload, again.attempts) == (first.id, {"w": "crash"}, 0)
    await queue.ack(again)
    assert await queue.dead_letters() == []
    assert await queue.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}


async def test_dead_letters_and_requeue_see_past_one_receive_batch(
    make_sqs: list[SqsQueue],
) -> None:
    queue = sqs_queue()
    make_sqs.append(queue)
    total = 13  # more than the 10 one ReceiveMessage returns
    for n in range(total):
        await queue.publish("job", {"n": n})
    received: list[Message] = []
    while len(received) < total:
        received += await queue.receive(max_messages=10, wait_s=WAIT_S)
    for message in sorted(received, key=lambda m: m.payload["n"]):
        await queue.dead_letter(message, reason=f"poison {message.payload['n']}")

    dead = await queue.dead_letters()
    assert [d.message.payload["n"] for d in dead] == list(range(total)), "oldest first"
    assert [d.reason for d in dead] == [f"poison {n}" for n in range(total)]

    assert await queue.requeue(dead[-1].message.id) is True

    again = await queue.receive(max_messages=10, wait_s=WAIT_S)
    assert [m.payload for m in again] == [{"n": total - 1}]
    remaining = await queue.dead_letters()  # the scan handed the others back at once
    assert [d.message.payload["n"] for d in remaining] == list(range(total - 1))


async def test_retry_resends_the_payload_as_received(make_sqs: list[SqsQueue]) -> None:
    queue = sqs_queue()
    make_sqs.append(queue)
    await queue.publish("job", {"items": [1]})
    [message] = await queue.receive(max_messages=1, wait_s=WAIT_S)
    message.payload["items"].append(2)  # a handler changed what it was given

    await queue.retry(message, delay_s=0, error="e" * 2000)

    [again] = await queue.receive(max_messages=1, wait_s=WAIT_S)
    assert again.payload == {"items": [1]}
    assert again.last_error == "e" * 500


async def test_close_hands_received_messages_back(make_sqs: list[SqsQueue]) -> None:
    name = unique_name()
    first = SqsQueue(name, region="us-east-1", visibility_timeout_s=60)
    await first.publish("job", {"k": 1})
    [message] = await first.receive(max_messages=1, wait_s=WAIT_S)

    await first.close()

    second = SqsQueue(name, region="us-east-1", visibility_timeout_s=60)  # gets the same queues
    make_sqs.append(second)
    [again] = await second.receive(max_messages=1, wait_s=1)
    assert again.id == message.id
    assert again.attempts == 1


# ── Whole seconds ─────────────────────────────────────────────────────────────────────────────


async def test_delays_are_rounded_up_and_clamped_to_900_s(make_sqs: list[SqsQueue]) -> None:
    queue = sqs_queue()
    make_sqs.append(queue)
    await queue.publish("job", {"n": 1}, delay_s=0.2)  # SQS delays it a whole second
    await queue.publish("job", {"n": 2}, delay_s=10_000)  # SQS would refuse more than 900

    assert await queue.receive(max_messages=10, wait_s=0) == [], "0.2 s is not 0 s"
    assert (await queue.stats())["delayed"] == 2
    [message] = await queue.receive(max_messages=10, wait_s=WAIT_S)
    assert message.payload == {"n": 1}
    await queue.ack(message)
    assert await queue.stats() == {"ready": 0, "delayed": 1, "in_flight": 0, "dead": 0}


async def test_stats_follow_a_message_through_its_states(make_sqs: list[SqsQueue]) -> None:
    queue = sqs_queue()
    make_sqs.append(queue)
    assert await queue.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}

    await queue.publish("job", {"n": 1})
    await queue.publish("job", {"n": 2}, delay_s=600)
    assert await queue.stats() == {"ready": 1, "delayed": 1, "in_flight": 0, "dead": 0}

    [message] = await queue.receive(max_messages=10, wait_s=WAIT_S)
    assert await queue.stats() == {"ready": 0, "delayed": 1, "in_flight": 1, "dead": 0}

    await queue.dead_letter(message, reason="poison")
    assert await queue.stats() == {"ready": 0, "delayed": 1, "in_flight": 0, "dead": 1}


# ── Configuration and failures ────────────────────────────────────────────────────────────────


def test_from_url() -> None:
    queue = SqsQueue.from_url(
        "sqs://withdrawals?region=eu-west-1&max_receives=3&visibility_timeout_s=0.5"
    )

    assert queue.queue_name == "withdrawals"
    assert queue.dead_letter_queue_name == "withdrawals-dlq"
    assert queue.max_receives == 3
    assert queue.visibility_timeout_s == 1, "rounded up to whole seconds"
    assert SqsQueue.from_url("sqs://Case_Kept-1").queue_name == "Case_Kept-1"


@pytest.mark.parametrize(
    "url",
    [
        "redis://withdrawals",
        "sqs://withdrawals.fifo",
        "sqs://" + "x" * 77,
        "sqs://withdrawals/path",
        "sqs://withdrawals?colour=blue",
        "sqs://withdrawals?max_receives=0",
        "sqs://withdrawals?max_receives=many",
        "sqs://withdrawals?visibility_timeout_s=0",
        "sqs://withdrawals?region=a&region=b",
    ],
)
def test_from_url_refuses(url: str) -> None:
    with pytest.raises(ConfigurationError):
        SqsQueue.from_url(url)


def test_from_url_refuses_credentials_without_repeating_them() -> None:
    with pytest.raises(ConfigurationError) as info:
        SqsQueue.from_url("sqs://AKIDEXAMPLE:url-s3cret@withdrawals")

    assert "url-s3cret" not in str(info.value)
    assert "AKIDEXAMPLE" not in str(info.value)


# With userinfo in the endpoint, aiohttp refuses the request before connecting (it will not send
# URL credentials next to botocore's signature); the error must still be transient and quiet.
@pytest.mark.parametrize("userinfo", ["", "endpoint-user:endpoint-s3cret@"])
async def test_unreachable_endpoint_is_transient_and_tells_no_secret(
    monkeypatch: pytest.MonkeyPatch, userinfo: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{userinfo}127.0.0.1:{free_port()}")
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-s3cret-access-key")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no botocore retries: fail fast
    queue = sqs_queue()
    try:
        for call in (queue.ping(), queue.publish("job", {})):
            with pytest.raises(TransientError) as info:
                await call
            text = "".join(traceback.format_exception(info.value)) + repr(info.value)
            for secret in ("s3cret", "AKIAEXAMPLEKEYID0000", "endpoint-user"):
                assert secret not in text
            assert "SQS" in str(info.value)
    finally:
        await queue.close()
