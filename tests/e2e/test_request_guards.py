"""Signed requests (HMAC-SHA256, a time window, no replays) and per-key rate limits, over HTTP."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from sluice.domain.access import ALL_SCOPES, Scope
from sluice.services.api_keys import request_signature, secret_of
from sluice.testing.harness import RunningSluice

RECIPIENT = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def _signed(
    token: str, method: str, target: str, body: bytes = b"", *, at: float | None = None
) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    signature = request_signature(
        secret_of(token), timestamp=timestamp, method=method, target=target.encode(), body=body
    )
    return {
        "Authorization": f"Bearer {token}",
        "X-Sluice-Timestamp": timestamp,
        "X-Sluice-Signature": signature,
        "Content-Type": "application/json",
    }


async def test_a_key_that_must_sign_is_refused_unless_each_request_is_signed_once(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    token = await instance.make_key(*ALL_SCOPES, require_signature=True)
    target = "/v1/withdrawals?limit=5"
    async with httpx.AsyncClient(base_url=instance.base_url) as client:
        unsigned = await client.get(target, headers={"Authorization": f"Bearer {token}"})
        headers = _signed(token, "GET", target)
        signed = await client.get(target, headers=headers)
        replayed = await client.get(target, headers=headers)
        stale = await client.get(
            target, headers=_signed(token, "GET", target, at=time.time() - 120)
        )
        other_path = await client.get(
            "/v1/withdrawals?limit=6", headers=_signed(token, "GET", target)
        )

        body = json.dumps(
            {"userId": "alice", "amount": "1", "toAddress": RECIPIENT, "network": instance.network}
        ).encode()
        created = await client.post(
            "/v1/withdrawals", content=body, headers=_signed(token, "POST", "/v1/withdrawals", body)
        )
        tampered = await client.post(
            "/v1/withdrawals",
            content=body.replace(b'"1"', b'"9"'),
            headers=_signed(token, "POST", "/v1/withdrawals", body),
        )

    assert signed.status_code == 200, signed.text
    assert created.status_code == 202, created.text
    for refused in (unsigned, replayed, stale, other_path, tampered):
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_signature"
        assert refused.headers["www-authenticate"] == "Bearer"
    assert "sent before" in replayed.json()["detail"]
    assert "clock" in stale.json()["detail"]


async def test_a_key_over_its_rate_limit_gets_429_with_retry_after(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    limited = await instance.make_key(Scope.WITHDRAWALS_READ, rate_limit_per_s=3)
    unlimited = await instance.make_key(Scope.WITHDRAWALS_READ)
    async with instance.client(limited) as client, instance.client(unlimited) as other:
        # Start at the beginning of a second, so the burst falls into one window.
        await asyncio.sleep(1 - time.time() % 1)
        answers = [await client.get("/v1/withdrawals") for _ in range(5)]
        others = [await other.get("/v1/withdrawals") for _ in range(5)]
        await asyncio.sleep(1.05)
        after = await client.get("/v1/withdrawals")

    statuses = [a.status_code for a in answers]
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]
    limited_answer = next(a for a in answers if a.status_code == 429)
    assert limited_answer.json()["code"] == "rate_limited"
    assert limited_answer.headers["retry-after"] == "1"
    assert {a.status_code for a in others} == {200}, "limits are per key"
    assert after.status_code == 200, "the next second has a fresh window"
