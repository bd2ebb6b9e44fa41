"""The HTTP webhook sender against a real receiver on 127.0.0.1: what it sends verifies, a
redirect is a failed attempt (never followed), a slow endpoint times out, a dead one fails."""

from __future__ import annotations

import asyncio
import time

from sluice.devnet.anvil import free_port
from sluice.domain.webhooks import encode_body, new_secret, signed_headers
from sluice.testing.webhooks import WebhookReceiver
from sluice.webhook_sender import HttpWebhookSender

SECRET = new_secret(b"\x07" * 32)
BODY = encode_body({"type": "withdrawal.completed", "timestamp": "t", "data": {"id": "w"}})


def _headers() -> dict[str, str]:
    return signed_headers([SECRET], "msg_test", int(time.time()), BODY)


async def test_a_delivery_reaches_the_receiver_and_verifies() -> None:
    sender = HttpWebhookSender()
    try:
        async with WebhookReceiver(secrets=[SECRET]) as receiver:
            outcome = await sender.send(receiver.url, _headers(), BODY, timeout_s=5)
    finally:
        await sender.close()
    assert outcome.ok
    assert [r.webhook_id for r in receiver.received] == ["msg_test"]
    assert receiver.unverified == 0


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed() -> None:
    sender = HttpWebhookSender()
    try:
        async with WebhookReceiver(secrets=[SECRET], answer=lambda: 302) as receiver:
            outcome = await sender.send(receiver.url, _headers(), BODY, timeout_s=5)
    finally:
        await sender.close()
    assert outcome.status_code == 302
    assert not outcome.ok
    assert receiver.requests == 1


async def test_an_endpoint_slower_than_the_timeout_fails_the_attempt() -> None:
    sender = HttpWebhookSender()
    try:
        async with WebhookReceiver(secrets=[SECRET], stall=asyncio.Event()) as receiver:
            outcome = await sender.send(receiver.url, _headers(), BODY, timeout_s=0.3)
    finally:
        await sender.close()
    assert not outcome.ok
    assert "no answer within 0.3 s" in str(outcome.error)


async def test_a_closed_port_fails_the_attempt_without_raising() -> None:
    sender = HttpWebhookSender()
    try:
        outcome = await sender.send(
            f"http://127.0.0.1:{free_port()}/hooks", _headers(), BODY, timeout_s=2
        )
    finally:
        await sender.close()
    assert outcome.status_code is None
    assert outcome.error


async def test_resolving_a_literal_address_needs_no_lookup() -> None:
    sender = HttpWebhookSender()
    try:
        assert await sender.resolve("127.0.0.1") == ["127.0.0.1"]
        assert await sender.resolve("::1") == ["::1"]
        assert "127.0.0.1" in await sender.resolve("localhost")
    finally:
        await sender.close()
