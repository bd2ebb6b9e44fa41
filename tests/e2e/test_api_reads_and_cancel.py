"""Reading, listing and cancelling withdrawals; request ids; the operational endpoints."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from sluice.domain.ledger import Balance
from sluice.testing.harness import RunningSluice, wait_until_final

pytestmark = pytest.mark.anvil

RECIPIENT = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


def _body(instance: RunningSluice, user: str = "alice", **changes: object) -> dict[str, object]:
    return {
        "userId": user,
        "amount": "1",
        "toAddress": RECIPIENT,
        "network": instance.network,
        **changes,
    }


async def _submit(client: httpx.AsyncClient, body: dict[str, object]) -> dict[str, Any]:
    response = await client.post("/v1/withdrawals", json=body)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_submitted_withdrawal_reads_back_pending_in_canonical_form(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    body = _body(instance, amount="0.50", toAddress=RECIPIENT.lower(), tokenAddress=instance.token)
    async with instance.client() as client:
        created = await _submit(client, body)
        response = await client.get(f"/v1/withdrawals/{created['id']}")
    assert response.status_code == 200, response.text
    read = response.json()
    assert read == created
    assert read["id"].startswith("wd_")
    assert read["status"] == "PENDING"
    assert read["amount"] == "0.5"
    assert read["symbol"] == "DEMO"
    assert read["toAddress"] == RECIPIENT
    assert read["tokenAddress"] == instance.token
    assert read["userId"] == "alice"
    assert read["network"] == instance.network
    assert read["transactionHash"] is None
    assert read["errorCode"] is None


async def test_a_pending_withdrawal_can_be_cancelled_once_and_again(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    async with instance.client() as client:
        created = await _submit(client, _body(instance))
        path = f"/v1/withdrawals/{created['id']}"
        cancelled = await client.post(f"{path}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "CANCELLED"
        assert (await client.get(path)).json()["status"] == "CANCELLED"

        again = await client.post(f"{path}/cancel")
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "CANCELLED"

        events = (await client.get(f"{path}/events")).json()
    assert events["withdrawalId"] == created["id"]
    moves = [(e["fromStatus"], e["status"]) for e in events["events"]]
    assert moves == [(None, "PENDING"), ("PENDING", "CANCELLED")]  # the repeat added nothing
    assert "cancel" in events["events"][-1]["reason"]


async def test_a_bodiless_post_without_content_length_cancels(
    sluice_without_workers: RunningSluice,
) -> None:
    """What `curl -X POST …/cancel` sends: no body, no Content-Length, no Content-Type."""
    instance = sluice_without_workers
    async with instance.client() as client:
        created = await _submit(client, _body(instance))
    url = httpx.URL(instance.base_url)
    assert url.host
    assert url.port
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(
            (
                f"POST /v1/withdrawals/{created['id']}/cancel HTTP/1.1\r\n"
                f"Host: {url.host}:{url.port}\r\n"
                f"Authorization: Bearer {instance.api_key}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 200"), answer[:300]
    assert b'"status":"CANCELLED"' in rest


async def test_listing_filters_and_pages_newest_first(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    async with instance.client() as client:
        mine = [
            (await _submit(client, _body(instance, user="lister", amount=str(n))))["id"]
            for n in range(1, 6)
        ]
        other = (await _submit(client, _body(instance, user="someone-else")))["id"]
        assert (await client.post(f"/v1/withdrawals/{mine[1]}/cancel")).status_code == 200
        newest_first = mine[::-1]

        async def ids(query: str) -> list[str]:
            response = await client.get(f"/v1/withdrawals?{query}")
            assert response.status_code == 200, response.text
            page = response.json()
            assert page["nextCursor"] is None, query
            return [item["id"] for item in page["items"]]

        assert await ids("userId=lister") == newest_first
        assert await ids("userId=someone-else") == [other]
        assert await ids("userId=nobody") == []
        assert await ids("") == [other, *newest_first]
        assert await ids("status=CANCELLED") == [mine[1]]
        assert await ids("userId=lister&status=PENDING") == [
            i for i in newest_first if i != mine[1]
        ]

        pages: list[list[str]] = []
        cursor: str | None = None
        while True:
            query = "userId=lister&limit=2" + (f"&cursor={cursor}" if cursor else "")
            response = await client.get(f"/v1/withdrawals?{query}")
            assert response.status_code == 200, response.text
            page = response.json()
            pages.append([item["id"] for item in page["items"]])
            created = [item["createdAt"] for item in page["items"]]
            assert created == sorted(created, reverse=True)
            cursor = page["nextCursor"]
            if cursor is None:
                break
            assert len(pages) < 5, "pagination does not end"
    assert [len(p) for p in pages] == [2, 2, 1]
    flat = [i for p in pages for i in p]
    assert flat == newest_first
    assert len(set(flat)) == len(flat)


async def test_request_ids_are_echoed_generated_or_replaced(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    async with instance.client() as client:
        echoed = await client.get("/v1/withdrawals", headers={"X-Request-ID": "req-42.a:b_c"})
        assert echoed.headers["x-request-id"] == "req-42.a:b_c"

        generated = await client.get("/v1/withdrawals")
        assert GENERATED_ID.match(generated.headers["x-request-id"])
        another = await client.get("/v1/withdrawals")
        assert another.headers["x-request-id"] != generated.headers["x-request-id"]

        too_long = "a" * 200
        replaced = await client.get("/v1/withdrawals", headers={"X-Request-ID": too_long})
        assert GENERATED_ID.match(replaced.headers["x-request-id"])

        odd = await client.get("/v1/withdrawals", headers={"X-Request-ID": "no spaces"})
        assert GENERATED_ID.match(odd.headers["x-request-id"])

        # Errors carry it too, even those the body guard answers before any route runs.
        refused = await client.post(
            "/v1/withdrawals",
            content=b"{}",
            headers={"Content-Type": "text/plain", "X-Request-ID": "req-415"},
        )
        assert refused.status_code == 415
        assert refused.headers["x-request-id"] == "req-415"
        missing = await client.get("/v1/withdrawals/nope", headers={"X-Request-ID": "req-404"})
        assert missing.status_code == 404
        assert missing.headers["x-request-id"] == "req-404"


async def test_a_completed_withdrawal_cannot_be_cancelled(sluice: RunningSluice) -> None:
    await sluice.credit("carol", "2")
    async with sluice.client() as client:
        created = await _submit(client, _body(sluice, user="carol"))
        final = (await wait_until_final(client, [created["id"]]))[created["id"]]
        assert final["status"] == "COMPLETED", final
        refused = await client.post(f"/v1/withdrawals/{created['id']}/cancel")
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "invalid_state"
        assert (await client.get(f"/v1/withdrawals/{created['id']}")).json()["status"] == (
            "COMPLETED"
        )
        metrics = (await client.get("/metrics")).text
    assert re.search(r'^sluice_jobs_total\{[^}]*outcome="done"[^}]*\} [1-9]', metrics, re.M)


async def test_a_withdrawal_without_funds_fails_and_holds_nothing(sluice: RunningSluice) -> None:
    async with sluice.client() as client:
        created = await _submit(client, _body(sluice, user="penniless"))
        final = (await wait_until_final(client, [created["id"]]))[created["id"]]
        assert final["status"] == "FAILED", final
        assert final["errorCode"] == "insufficient_funds"
        assert final["error"]
        assert final["transactionHash"] is None
        events = (await client.get(f"/v1/withdrawals/{created['id']}/events")).json()["events"]
        assert [e["status"] for e in events] == ["PENDING", "FAILED"]
        assert events[-1]["errorCode"] == "insufficient_funds"
        balances = (await client.get("/v1/users/penniless/balances")).json()
    assert balances == []  # no balance row at all: nothing was ever held
    async with sluice.container.uow() as uow:
        balance = await uow.ledger.balance("penniless", sluice.network, "native")
    assert balance == Balance(available=0, held=0)


async def test_the_operational_endpoints(sluice: RunningSluice) -> None:
    async with sluice.client() as client:
        letters = await client.get("/v1/admin/dead-letters")
        assert letters.status_code == 200, letters.text
        assert letters.json() == []
        requeue = await client.post("/v1/admin/dead-letters/no-such-letter/requeue")
        assert requeue.status_code == 404, requeue.text
        assert requeue.headers["content-type"] == "application/problem+json"
        assert requeue.json()["code"] == "not_found"

        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ready",
            "checks": {
                name: {"ok": True, "detail": "ok"}
                for name in ("database", "queue", f"chain:{sluice.network}")
            },
            "degraded": [],
        }
        assert (await client.get("/health")).json() == {"status": "ok"}

        schema = (await client.get("/openapi.json")).json()
        assert set(schema["paths"]) >= {
            "/v1/withdrawals",
            "/withdrawal/request",
            "/v1/withdrawals/{withdrawalId}",
            "/v1/withdrawals/{withdrawalId}/cancel",
            "/v1/withdrawals/{withdrawalId}/events",
            "/v1/admin/ledger/credits",
            "/v1/users/{userId}/balances",
            "/v1/admin/dead-letters",
            "/v1/admin/dead-letters/{messageId}/requeue",
            "/health",
            "/ready",
        }
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "text/html" in docs.headers["content-type"]

        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "sluice_jobs_total" in metrics.text
    assert "sluice_withdrawals_requested_total" in metrics.text
