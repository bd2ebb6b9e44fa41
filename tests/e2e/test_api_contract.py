"""The API contract an integrator relies on: Location, the Idempotency-Key forms, catching up
with `updatedSince`, typed event data, amounts in token units everywhere."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account

from sluice.testing.harness import RunningSluice, wait_until_final

pytestmark = pytest.mark.anvil


def _body(instance: RunningSluice, user: str, **changes: object) -> dict[str, object]:
    return {
        "userId": user,
        "amount": "0.1",
        "toAddress": Account.create().address,
        "network": instance.network,
        **changes,
    }


async def test_an_accepted_withdrawal_answers_with_its_location(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    body = _body(instance, "loc", id=f"loc-{uuid.uuid4().hex[:8]}")
    async with instance.client() as client:
        created = await client.post("/v1/withdrawals", json=body)
        repeated = await client.post("/v1/withdrawals", json=body)
        followed = await client.get(created.headers["location"])
    assert created.status_code == 202
    assert created.headers["location"] == f"/v1/withdrawals/{body['id']}"
    assert repeated.status_code == 200
    assert repeated.headers["location"] == created.headers["location"]
    assert followed.status_code == 200
    assert followed.json()["id"] == body["id"]
    assert "deprecation" not in created.headers


async def test_the_deprecated_intake_path_says_so_and_names_its_successor(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    async with instance.client() as client:
        old = await client.post("/withdrawal/request", json=_body(instance, "old"))
    assert old.status_code == 202
    assert old.headers["deprecation"] == "true"
    assert old.headers["link"] == '</v1/withdrawals>; rel="successor-version"'


@pytest.mark.parametrize(
    "header",
    ['"{key}"', "{key}"],
    ids=["structured-field-string", "bare-token"],
)
async def test_the_idempotency_key_is_read_in_the_drafts_quoted_form_and_bare(
    sluice_without_workers: RunningSluice, header: str
) -> None:
    instance = sluice_without_workers
    key = f"idem-{uuid.uuid4().hex[:8]}"
    body = _body(instance, "idem")
    async with instance.client() as client:
        first = await client.post(
            "/v1/withdrawals", json=body, headers={"Idempotency-Key": header.format(key=key)}
        )
        again = await client.post("/v1/withdrawals", json=body, headers={"Idempotency-Key": key})
        bad = await client.post("/v1/withdrawals", json=body, headers={"Idempotency-Key": '"a/b"'})
        two = await client.post(
            "/v1/withdrawals",
            json=body,
            headers=[("Idempotency-Key", f'"{key}"'), ("Idempotency-Key", '"other"')],
        )
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"] == key
    assert (two.status_code, two.json()["errors"][0]["field"]) == (422, "Idempotency-Key")
    assert bad.status_code == 422
    assert bad.json()["errors"][0] | {"message": ""} == {
        "field": "Idempotency-Key",
        "in": "header",
        "code": "invalid_request",
        "message": "",
    }


async def _all_pages(client: httpx.AsyncClient, **query: str | int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):
        params: dict[str, str | int] = {**query, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/withdrawals", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination does not end")


async def test_a_platform_catches_up_on_what_changed_with_updated_since(
    sluice_without_workers: RunningSluice,
) -> None:
    """Oldest change first, over pages; a withdrawal changed again moves to the end; the cursor
    of one listing is refused by the other."""
    instance = sluice_without_workers
    user = f"catch-{uuid.uuid4().hex[:6]}"
    async with instance.client() as client:
        ids = [
            (await client.post("/v1/withdrawals", json=_body(instance, user))).json()["id"]
            for _ in range(5)
        ]
        read = [(await client.get(f"/v1/withdrawals/{i}")).json() for i in ids]
        since = min(w["updatedAt"] for w in read)
        await asyncio.sleep(0.01)
        assert (await client.post(f"/v1/withdrawals/{ids[1]}/cancel")).status_code == 200

        changed = await _all_pages(client, userId=user, updatedSince=since, limit=2)
        # An offset written out (+00:00) is as good as Z, encoded as a query value must be.
        later = (datetime.fromisoformat(since) + timedelta(days=1)).isoformat()
        nothing = await _all_pages(client, userId=user, updatedSince=later)
        first = (await client.get("/v1/withdrawals", params={"userId": user, "limit": 2})).json()
        mixed = await client.get(
            "/v1/withdrawals",
            params={"userId": user, "updatedSince": since, "cursor": first["nextCursor"]},
        )
        naive = await client.get("/v1/withdrawals?updatedSince=2026-12-02T10:00:00")

    assert [w["id"] for w in changed] == [*(i for i in ids if i != ids[1]), ids[1]]
    assert changed[-1]["status"] == "CANCELLED"
    stamps = [w["updatedAt"] for w in changed]
    assert stamps == sorted(stamps)
    assert nothing == []
    assert mixed.status_code == 422
    assert mixed.json()["errors"][0]["field"] == "cursor"
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "updatedSince"
    assert datetime.fromisoformat(since).utcoffset() == timedelta(0)


async def test_event_data_and_hot_wallet_balances_are_typed_like_the_resources(
    sluice: RunningSluice,
) -> None:
    await sluice.credit("typed", "1")
    async with sluice.client() as client:
        created = (await client.post("/v1/withdrawals", json=_body(sluice, "typed"))).json()
        await wait_until_final(client, [created["id"]])
        events = (await client.get(f"/v1/withdrawals/{created['id']}/events")).json()["events"]
        transaction = (await client.get(f"/v1/withdrawals/{created['id']}/transaction")).json()
        wallets = (await client.get("/v1/admin/hot-wallets")).json()
        raw_balance = await sluice.container.registry.get(sluice.network).chain.balance(
            sluice.hot_wallet
        )

    signed = next(e for e in events if e["status"] == "SIGNED")
    assert signed["data"]["nonce"] == transaction["nonce"]
    assert isinstance(signed["data"]["nonce"], int)
    assert signed["data"]["maxFeePerGas"] == transaction["attempts"][0]["maxFeePerGas"]
    mined = next(e for e in events if e["status"] == "CONFIRMING")
    assert mined["data"]["blockNumber"] == transaction["blockNumber"]
    assert isinstance(mined["data"]["attempt"], int)
    assert None not in signed["data"].values(), "keys that do not apply are left out"

    (wallet,) = wallets
    assert wallet["nativeSymbol"] == "ETH"
    assert "." in wallet["nativeBalance"] or wallet["nativeBalance"].isdigit()
    whole, _, fraction = wallet["nativeBalance"].partition(".")
    assert int(whole) * 10**18 + int(fraction.ljust(18, "0") or 0) <= raw_balance
