"""Signed webhooks end to end: a running Sluice on a real node delivers every status change to a
real HTTP receiver on 127.0.0.1, which verifies each delivery with the `standardwebhooks`
package (an independent verifier) before answering.

Issue 13, must-hold 4: every status change of 100 withdrawals delivered and verified; an
endpoint answering 500 for a while then 200 receives everything; kill -9 of the worker
mid-delivery loses nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from sluice.bootstrap import Container, build
from sluice.devnet.anvil import LocalNode
from sluice.domain.access import Scope
from sluice.domain.audit import SYSTEM
from sluice.services.withdrawals import WithdrawalRequest
from sluice.testing.harness import PASSPHRASE, RunningSluice, prepare, running_sluice
from sluice.testing.webhooks import WebhookReceiver

# Withdrawals are signed in parallel: Hardhat must queue nonces ahead of the next (conftest).
pytestmark = [
    pytest.mark.anvil,
    pytest.mark.usefixtures("anvil_only", "mines_on_an_interval"),
]

#: Webhook settings for a test: 127.0.0.1 allowed, the schedule a thousand times faster
#: (5 ms, 0.3 s, 1.8 s, 7.2 s …), quick polling.
FAST: dict[str, Any] = {
    "webhook_allow_private": True,
    "webhook_retry_scale": 0.001,
    "webhook_poll_s": 0.05,
}
WAIT_S = 120.0
_NOT_ADMIN = (Scope.WITHDRAWALS_READ, Scope.WITHDRAWALS_WRITE)


async def _register(client: httpx.AsyncClient, url: str, receiver: WebhookReceiver) -> str:
    response = await client.post("/v1/webhooks", json={"url": url, "description": "test"})
    assert response.status_code == 201, response.text
    body = response.json()
    receiver.secrets = [body["secret"]]
    return str(body["id"])


async def _expected(client: httpx.AsyncClient, ids: list[str]) -> Counter[tuple[str, str]]:
    """Each status change of the withdrawals, as (withdrawal id, status entered)."""
    expected: Counter[tuple[str, str]] = Counter()
    for withdrawal_id in ids:
        history = (await client.get(f"/v1/withdrawals/{withdrawal_id}/events")).json()
        for event in history["events"]:
            if event["fromStatus"] != event["status"]:
                expected[(withdrawal_id, event["status"])] += 1
    return expected


def _received(receiver: WebhookReceiver) -> Counter[tuple[str, str]]:
    """What the receiver verified, each webhook-id once (delivery is at least once)."""
    seen: dict[str, tuple[str, str]] = {}
    for r in receiver.received:
        seen[r.webhook_id] = (r.payload["data"]["id"], r.payload["data"]["status"])
    return Counter(seen.values())


async def _eventually_everything(
    receiver: WebhookReceiver, want: Counter[tuple[str, str]]
) -> Counter[tuple[str, str]]:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        got = _received(receiver)
        if got == want:
            return got
        if asyncio.get_running_loop().time() > deadline:
            missing = want - got
            raise AssertionError(
                f"{sum(missing.values())} events missing, e.g. {list(missing)[:5]}"
            )
        await asyncio.sleep(0.1)


async def _submit(client: httpx.AsyncClient, n: int, prefix: str) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        body = {
            "id": f"{prefix}-{i}",
            "userId": "alice",
            "amount": "0.001",
            "toAddress": Account.create().address,
            "network": "anvil",
        }
        async with gate:
            response = await client.post("/v1/withdrawals", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _final(client: httpx.AsyncClient, ids: list[str]) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    pending = set(ids)
    while pending:
        for withdrawal_id in list(pending):
            body = (await client.get(f"/v1/withdrawals/{withdrawal_id}")).json()
            if body["status"] in {"COMPLETED", "FAILED", "CANCELLED"}:
                pending.discard(withdrawal_id)
        assert asyncio.get_running_loop().time() < deadline, f"not final: {sorted(pending)[:5]}"
        if pending:
            await asyncio.sleep(0.2)


async def _whole_log(client: httpx.AsyncClient, endpoint_id: str) -> list[str]:
    """Every delivery id of the endpoint's log, paging with the cursor."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/v1/webhooks/{endpoint_id}/deliveries", params=params)).json()
        ids += [d["id"] for d in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            return ids


async def test_every_status_change_of_100_withdrawals_is_delivered_and_verifies(
    anvil: LocalNode, tmp_path: Path, database_url: str
) -> None:
    async with (
        WebhookReceiver() as receiver,
        running_sluice(anvil, tmp_path, database_url=database_url, **FAST) as sluice,
        sluice.client() as client,
    ):
        endpoint_id = await _register(client, receiver.url, receiver)
        await sluice.credit("alice", "1")
        ids = await _submit(client, 100, "hooked")
        await _final(client, ids)
        want = await _expected(client, ids)
        got = await _eventually_everything(receiver, want)
        logged = await _whole_log(client, endpoint_id)
    assert len(logged) == len(set(logged)) == sum(want.values())
    assert sum(got.values()) >= 100 * 5  # pending, validating, signed, broadcasting, … final
    assert {status for _, status in got} >= {"PENDING", "COMPLETED"}
    assert receiver.unverified == 0
    completed = [
        r.payload for r in receiver.received if r.payload["type"] == "withdrawal.completed"
    ]
    assert {p["data"]["amount"] for p in completed} == {"0.001"}
    assert all(p["data"]["transactionHash"] for p in completed)


async def _log_when_settled(client: httpx.AsyncClient, endpoint_id: str) -> dict[str, Any]:
    """The delivery log once no delivery is pending (the receiver sees a delivery just before
    the worker records it)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        log: dict[str, Any] = (
            await client.get(f"/v1/webhooks/{endpoint_id}/deliveries?limit=200")
        ).json()
        if all(d["status"] != "PENDING" for d in log["items"]):
            return log
        assert asyncio.get_running_loop().time() < deadline, "deliveries still pending"
        await asyncio.sleep(0.1)


async def test_an_endpoint_answering_500_for_a_while_then_200_receives_everything(
    anvil: LocalNode, tmp_path: Path, database_url: str
) -> None:
    loop = asyncio.get_running_loop()
    first: list[float] = []

    def answer() -> int:
        """500 for 1.5 s from the first verified request on, then 200."""
        first[:] = first or [loop.time()]
        return 200 if loop.time() >= first[0] + 1.5 else 500

    async with (
        WebhookReceiver(answer=answer) as receiver,
        running_sluice(anvil, tmp_path, database_url=database_url, **FAST) as sluice,
        sluice.client() as client,
    ):
        endpoint_id = await _register(client, receiver.url, receiver)
        await sluice.credit("alice", "1")
        ids = await _submit(client, 5, "flaky")
        await _final(client, ids)
        got = await _eventually_everything(receiver, await _expected(client, ids))
        log = await _log_when_settled(client, endpoint_id)
    assert sum(got.values()) == len(log["items"])
    assert all(d["status"] == "DELIVERED" for d in log["items"])
    assert any(d["attempts"] > 1 for d in log["items"]), "some deliveries were retried"
    assert receiver.requests > len(log["items"])


async def test_a_private_destination_is_refused_unless_the_settings_allow_it(
    sluice_without_workers: RunningSluice,
) -> None:
    async with sluice_without_workers.client() as client:
        refused = await client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/h"})
        metadata = await client.post(
            "/v1/webhooks", json={"url": "http://169.254.169.254/latest/meta-data"}
        )
        public = await client.post(
            "/v1/webhooks",
            json={"url": "https://93.184.216.34/h", "eventTypes": ["withdrawal.completed"]},
        )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["field"] == "url"
    assert "loopback" in refused.json()["detail"]
    assert metadata.status_code == 422
    assert "link-local" in metadata.json()["detail"]
    assert public.status_code == 201, public.text
    assert public.json()["secret"].startswith("whsec_")


async def test_endpoints_are_managed_through_the_admin_api(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    reader = await instance.make_key(*_NOT_ADMIN)
    async with instance.client() as client, instance.client(reader) as not_admin:
        created = await client.post("/v1/webhooks", json={"url": "https://93.184.216.34/h"})
        endpoint = created.json()
        path = f"/v1/webhooks/{endpoint['id']}"
        assert (await not_admin.get("/v1/webhooks")).status_code == 403
        listed = (await client.get("/v1/webhooks")).json()
        assert [e["id"] for e in listed] == [endpoint["id"]]
        assert "secret" not in listed[0]
        changed = await client.patch(path, json={"eventTypes": ["withdrawal.failed"]})
        assert changed.json()["eventTypes"] == ["withdrawal.failed"]
        bad = await client.patch(path, json={"eventTypes": ["withdrawal.paid"]})
        assert bad.status_code == 422
        disabled = (await client.patch(path, json={"disabled": True})).json()
        assert disabled["disabled"] is True
        rotated = (await client.post(f"{path}/rotate-secret")).json()
        assert rotated["secret"] != endpoint["secret"]
        assert rotated["previousSecretExpiresAt"] is not None
        log = (await client.get(f"{path}/deliveries")).json()
        assert log == {"items": [], "nextCursor": None}
        replay = await client.post(f"{path}/replay", json={"since": "2026-01-01T00:00:00Z"})
        assert replay.status_code == 202
        assert (await client.post(f"{path}/deliveries/dlv_none/replay")).status_code == 404
        assert (await client.delete(path)).status_code == 204
        assert (await client.get(path)).status_code == 404


# ── kill -9 of the worker mid-delivery ────────────────────────────────────────────────────────


def _spawn_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "sluice", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def _wait_for(check: Any, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _credit(container: Container) -> None:
    async with container.uow() as uow:
        await container.ledger.credit(
            uow,
            user_id="alice",
            network="anvil",
            token_address=None,
            amount="1",
            reference="kill-9-credit",
        )
        await uow.commit()


async def _history_when_final(container: Container, ids: list[str]) -> Counter[tuple[str, str]]:
    """Once every withdrawal is final: each status change, as (withdrawal id, status)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        async with container.uow() as uow:
            withdrawals = await uow.withdrawals.get_many(ids)
        if all(w.status.is_final for w in withdrawals):
            break
        assert asyncio.get_running_loop().time() < deadline, "the withdrawals did not finish"
        await asyncio.sleep(0.2)
    expected: Counter[tuple[str, str]] = Counter()
    for withdrawal_id in ids:
        async with container.uow() as uow:
            history = await uow.withdrawals.events(withdrawal_id)
        for change in history:
            if change.from_status != change.to_status:
                expected[(withdrawal_id, change.to_status.value)] += 1
    return expected


async def test_killing_the_worker_mid_delivery_loses_nothing(
    anvil: LocalNode, tmp_path: Path, database_url: str
) -> None:
    receiver = WebhookReceiver(stall=asyncio.Event())
    await receiver.start()
    workers: list[subprocess.Popen[bytes]] = []
    settings, _chain = await prepare(anvil, tmp_path, database_url=database_url, **FAST)
    container = await build(settings)  # migrates; the endpoint, credits and withdrawals
    try:
        async with container.uow() as uow:
            endpoint = await container.webhooks.create(
                uow, url=receiver.url, event_types=(), description="kill -9", actor=SYSTEM
            )
            await uow.commit()
        receiver.secrets = [endpoint.secret]
        await _credit(container)
        ids = []
        for i in range(5):
            async with container.uow() as uow:
                withdrawal, _ = await container.withdrawals.submit(
                    uow,
                    WithdrawalRequest(
                        user_id="alice",
                        amount="0.001",
                        to_address=Account.create().address,
                        network="anvil",
                        id=f"killed-{i}",
                    ),
                )
                await uow.commit()
            ids.append(withdrawal.id)

        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(
            SLUICE_DATABASE_URL=settings.database_url,
            SLUICE_NETWORKS_FILE=str(settings.networks_file),
            SLUICE_KEYSTORE_PASSPHRASE=PASSPHRASE,
            SLUICE_LOG_FORMAT="json",
            SLUICE_LOG_LEVEL="warning",
            SLUICE_RETRY_BASE_S="0.05",
            SLUICE_RETRY_MAX_S="0.5",
            SLUICE_WEBHOOK_ALLOW_PRIVATE="true",
            SLUICE_WEBHOOK_RETRY_SCALE="0.001",
            SLUICE_WEBHOOK_POLL_S="0.05",
            SLUICE_WEBHOOK_LEASE_S="3",
            SLUICE_WEBHOOK_TIMEOUT_S="2",
        )
        log = tmp_path / "workers.log"
        workers.append(_spawn_worker(env, log))
        # The first deliveries reach the receiver, which holds them: they are in flight.
        await _wait_for(lambda: receiver.stalled >= 1, "a delivery in flight")
        workers[0].send_signal(signal.SIGKILL)
        assert workers[0].wait(timeout=30) == -signal.SIGKILL
        # What the killed worker had in flight never counts as received (the receiver answers
        # it 503 and forgets it): only another worker's attempt can deliver it.
        stall, receiver.stall = receiver.stall, None
        assert stall is not None
        stall.set()
        workers.append(_spawn_worker(env, log))
        want = await _history_when_final(container, ids)
        got = await _eventually_everything(receiver, want)
        assert receiver.unverified == 0
        assert sum(got.values()) >= 5 * 5
        # The deliveries the killed worker had in flight were delivered by the other one.
        assert receiver.stalled_ids
        assert receiver.stalled_ids <= receiver.ids()
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        await receiver.stop()
        await container.close()
