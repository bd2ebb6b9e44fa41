"""Signed requests (Ed25519, a time window, no replays) and per-key rate limits, over HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sluice.domain.access import Scope
from sluice.request_signing import public_key_text, sign_request
from sluice.testing.harness import RunningSluice

RECIPIENT = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
WRITE_READ = (Scope.WITHDRAWALS_WRITE, Scope.WITHDRAWALS_READ)


async def _mark_hmac_key(instance: RunningSluice, key_id: str) -> None:
    """Turn a stored key into one of the retired HMAC scheme (must sign, no public key)."""
    from sqlalchemy import update  # noqa: PLC0415 - only this set-up writes the table directly

    from sluice.db.tables import api_keys  # noqa: PLC0415 - as above

    async with instance.container.engine.begin() as connection:
        await connection.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(require_signature=True)
        )


def _signed(
    token: str,
    key: Ed25519PrivateKey,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    at: float | None = None,
) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    nonce = secrets.token_urlsafe(16)
    signature = sign_request(
        key, timestamp=timestamp, nonce=nonce, method=method, target=target.encode(), body=body
    )
    return {
        "Authorization": f"Bearer {token}",
        "X-Sluice-Timestamp": timestamp,
        "X-Sluice-Nonce": nonce,
        "X-Sluice-Signature": signature,
        "Content-Type": "application/json",
    }


async def test_a_key_that_must_sign_is_refused_unless_each_request_is_signed_once(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    key = Ed25519PrivateKey.generate()
    token = await instance.make_key(*WRITE_READ, signing_public_key=public_key_text(key))
    target = "/v1/withdrawals?limit=5"
    async with httpx.AsyncClient(base_url=instance.base_url) as client:
        unsigned = await client.get(target, headers={"Authorization": f"Bearer {token}"})
        headers = _signed(token, key, "GET", target)
        signed = await client.get(target, headers=headers)
        replayed = await client.get(target, headers=headers)
        # The same request again at once, with a nonce of its own, is a new request.
        again = [await client.get(target, headers=_signed(token, key, "GET", target)) for _ in "ab"]
        no_nonce = await client.get(
            target, headers={k: v for k, v in headers.items() if k != "X-Sluice-Nonce"}
        )
        other_nonce = await client.get(target, headers={**headers, "X-Sluice-Nonce": "x" * 22})
        stale = await client.get(
            target, headers=_signed(token, key, "GET", target, at=time.time() - 120)
        )
        other_path = await client.get(
            "/v1/withdrawals?limit=6", headers=_signed(token, key, "GET", target)
        )

        body = json.dumps(
            {"userId": "alice", "amount": "1", "toAddress": RECIPIENT, "network": instance.network}
        ).encode()
        created = await client.post(
            "/v1/withdrawals",
            content=body,
            headers=_signed(token, key, "POST", "/v1/withdrawals", body),
        )
        tampered = await client.post(
            "/v1/withdrawals",
            content=body.replace(b'"1"', b'"9"'),
            headers=_signed(token, key, "POST", "/v1/withdrawals", body),
        )

    assert signed.status_code == 200, signed.text
    assert [a.status_code for a in again] == [200, 200], "identical requests, one second"
    assert created.status_code == 202, created.text
    for refused in (unsigned, replayed, stale, other_path, tampered, no_nonce, other_nonce):
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_signature"
        assert refused.headers["www-authenticate"] == "Bearer"
    assert "sent before" in replayed.json()["detail"]
    assert "clock" in stale.json()["detail"]


async def test_a_leaked_bearer_token_of_a_signing_key_alone_gets_401(
    sluice_without_workers: RunningSluice,
) -> None:
    """Whoever holds the token but not the private key cannot make a single request: not
    unsigned, not signed with a key of their own, not with an HMAC keyed by the token's secret
    (the scheme that used to be accepted), not by moving a captured signature to another body."""
    instance = sluice_without_workers
    key = Ed25519PrivateKey.generate()
    token = await instance.make_key(*WRITE_READ, signing_public_key=public_key_text(key))
    body = json.dumps(
        {"userId": "alice", "amount": "1", "toAddress": RECIPIENT, "network": instance.network}
    ).encode()
    timestamp = str(int(time.time()))
    head = f"{timestamp}\nPOST\n/v1/withdrawals\n".encode()  # HMAC as 0.1 computed it
    secret = token.split("_", 2)[2]
    hmac_signature = hmac.new(secret.encode(), head + body, hashlib.sha256).hexdigest()
    captured = _signed(token, key, "POST", "/v1/withdrawals", b"{}")
    async with httpx.AsyncClient(base_url=instance.base_url) as client:
        attempts = {
            "token alone": {"Authorization": f"Bearer {token}"},
            "own key": _signed(
                token, Ed25519PrivateKey.generate(), "POST", "/v1/withdrawals", body
            ),
            "hmac of the token": {
                "Authorization": f"Bearer {token}",
                "X-Sluice-Timestamp": timestamp,
                "X-Sluice-Nonce": secrets.token_urlsafe(16),
                "X-Sluice-Signature": hmac_signature,
            },
            "hmac as base64": {
                "Authorization": f"Bearer {token}",
                "X-Sluice-Timestamp": timestamp,
                "X-Sluice-Nonce": secrets.token_urlsafe(16),
                "X-Sluice-Signature": base64.b64encode(bytes.fromhex(hmac_signature)).decode(),
            },
            "captured signature": captured,
        }
        answers = {
            name: await client.post(
                "/v1/withdrawals",
                content=body,
                headers={**headers, "Content-Type": "application/json"},
            )
            for name, headers in attempts.items()
        }
        balances = await client.get(
            "/v1/users/alice/balances",
            headers=_signed(token, key, "GET", "/v1/users/alice/balances"),
        )

    for name, answer in answers.items():
        assert answer.status_code == 401, (name, answer.text)
        assert answer.json()["code"] == "invalid_signature", name
    assert balances.status_code == 200, "the holder of the private key is served"
    async with instance.container.uow() as uow:
        page, _ = await instance.container.withdrawals.page(
            uow, user_id="alice", status=None, limit=5, cursor=None
        )
    assert page == [], "nothing was created by the token alone"


async def test_a_key_of_the_old_hmac_scheme_is_refused_with_a_way_out(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    token = await instance.make_key(Scope.WITHDRAWALS_READ)
    await _mark_hmac_key(instance, token.split("_")[1])
    async with instance.client(token) as client:
        answer = await client.get("/v1/withdrawals?limit=1")
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_signature"
    assert "--public-key" in answer.json()["detail"]


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
