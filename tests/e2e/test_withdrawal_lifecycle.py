"""A withdrawal goes from the HTTP API to a confirmed transaction, and the chain agrees."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from eth_abi.abi import encode
from eth_account import Account

from sluice.testing.harness import RunningSluice, wait_until_final

pytestmark = pytest.mark.anvil

ETHER = 10**18


async def _rpc(instance: RunningSluice, method: str, params: list[object]) -> object:
    async with instance.client() as client:
        response = await client.post(
            instance.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
    return response.json()["result"]


async def _token_balance(instance: RunningSluice, holder: str) -> int:
    selector = bytes.fromhex("70a08231")  # balanceOf(address)
    data = "0x" + (selector + encode(["address"], [holder])).hex()
    result = await _rpc(instance, "eth_call", [{"to": instance.token, "data": data}, "latest"])
    assert isinstance(result, str)
    return int(result, 16)


async def _native_balance(instance: RunningSluice, holder: str) -> int:
    result = await _rpc(instance, "eth_getBalance", [holder, "latest"])
    assert isinstance(result, str)
    return int(result, 16)


@pytest.mark.parametrize("asset", ["native", "token"])
async def test_a_withdrawal_completes_and_the_recipient_receives_exactly_the_amount(
    sluice: RunningSluice, asset: str
) -> None:
    await sluice.credit("alice", "10", token=asset == "token")
    recipient = Account.create().address
    body = {
        "userId": "alice",
        "amount": "1.25",
        "toAddress": recipient,
        "network": "anvil",
        "tokenAddress": sluice.token if asset == "token" else None,
    }
    async with sluice.client() as client:
        response = await client.post("/v1/withdrawals", json=body)
        assert response.status_code == 202, response.text
        created = response.json()
        assert created["status"] == "PENDING"
        assert created["amount"] == "1.25"
        assert response.headers["x-request-id"]

        final = (await wait_until_final(client, [created["id"]]))[created["id"]]
        assert final["status"] == "COMPLETED", final
        receipt = await _rpc(sluice, "eth_getTransactionReceipt", [final["transactionHash"]])
        assert isinstance(receipt, dict)
        assert receipt["status"] == "0x1"
        assert int(receipt["blockNumber"], 16) == final["blockNumber"]

        expected = 1_250_000_000_000_000_000
        if asset == "token":
            assert await _token_balance(sluice, recipient) == expected
        else:
            assert await _native_balance(sluice, recipient) == expected

        events = (await client.get(f"/v1/withdrawals/{created['id']}/events")).json()["events"]
        assert [e["status"] for e in events] == [
            "PENDING",
            "VALIDATING",
            "SIGNED",
            "BROADCASTING",
            "CONFIRMING",
            "COMPLETED",
        ]
        assert all(e["requestId"] == response.headers["x-request-id"] for e in events)

        balances = (await client.get("/v1/users/alice/balances")).json()
        assert balances == [
            {
                "network": "anvil",
                "tokenAddress": sluice.token if asset == "token" else None,
                "symbol": "DEMO" if asset == "token" else "ETH",
                "available": "8.75",
                "held": "0",
            }
        ]


async def test_twenty_concurrent_withdrawals_against_a_balance_for_ten_pay_exactly_ten(
    sluice: RunningSluice,
) -> None:
    await sluice.credit("bob", "10", token=True)
    hot_before = await _token_balance(sluice, sluice.hot_wallet)
    recipients = [Account.create().address for _ in range(20)]
    async with sluice.client() as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/v1/withdrawals",
                    json={
                        "userId": "bob",
                        "amount": "1",
                        "toAddress": to,
                        "network": "anvil",
                        "tokenAddress": sluice.token,
                    },
                )
                for to in recipients
            )
        )
        assert {r.status_code for r in responses} == {202}
        ids = [r.json()["id"] for r in responses]
        final = await wait_until_final(client, ids)
        statuses = [final[i]["status"] for i in ids]
        assert statuses.count("COMPLETED") == 10
        assert statuses.count("FAILED") == 10
        assert {final[i]["errorCode"] for i in ids if final[i]["status"] == "FAILED"} == {
            "insufficient_funds"
        }
        balances = (await client.get("/v1/users/bob/balances")).json()
        assert balances[0]["available"] == "0"
        assert balances[0]["held"] == "0"

    paid = [to for to, i in zip(recipients, ids, strict=True) if final[i]["status"] == "COMPLETED"]
    for to in recipients:
        assert await _token_balance(sluice, to) == (ETHER if to in paid else 0)
    assert hot_before - await _token_balance(sluice, sluice.hot_wallet) == 10 * ETHER


async def test_the_same_request_sent_twice_moves_money_once(sluice: RunningSluice) -> None:
    await sluice.credit("carol", "5")
    recipient = Account.create().address
    body = {
        "id": f"client-{uuid.uuid4().hex[:12]}",
        "userId": "carol",
        "amount": "2",
        "toAddress": recipient,
        "network": "anvil",
    }
    async with sluice.client() as client:
        first, second = await asyncio.gather(
            client.post("/v1/withdrawals", json=body), client.post("/v1/withdrawals", json=body)
        )
        assert sorted([first.status_code, second.status_code]) == [200, 202]
        assert first.json()["id"] == second.json()["id"] == body["id"]
        await wait_until_final(client, [body["id"]])
        third = await client.post("/v1/withdrawals", json=body)
        assert third.status_code == 200
        assert third.json()["status"] == "COMPLETED"

        conflict = await client.post("/v1/withdrawals", json={**body, "amount": "3"})
        assert conflict.status_code == 409
        assert conflict.json()["code"] == "idempotency_conflict"

        balances = (await client.get("/v1/users/carol/balances")).json()
        assert balances[0]["available"] == "3"
    assert await _native_balance(sluice, recipient) == 2 * ETHER


async def test_the_idempotency_key_header_names_the_withdrawal(sluice: RunningSluice) -> None:
    await sluice.credit("dave", "1")
    key = f"idem-{uuid.uuid4().hex[:12]}"
    body = {
        "userId": "dave",
        "amount": "0.1",
        "toAddress": Account.create().address,
        "network": "anvil",
    }
    async with sluice.client() as client:
        first = await client.post("/v1/withdrawals", json=body, headers={"Idempotency-Key": key})
        again = await client.post("/v1/withdrawals", json=body, headers={"Idempotency-Key": key})
        assert (first.status_code, again.status_code) == (202, 200)
        assert first.json()["id"] == again.json()["id"] == key
        mismatch = await client.post(
            "/v1/withdrawals", json={**body, "id": "other"}, headers={"Idempotency-Key": key}
        )
        assert mismatch.status_code == 422
        assert mismatch.json()["code"] == "invalid_request"
