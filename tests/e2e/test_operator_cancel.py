"""An operator's cancel over HTTP, on a real node: the no-op replacement wins, or the payout does.

Each test has an Anvil of its own with automatic mining off, so a sent withdrawal waits in the
node's pool until the test mines a block.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from sluice.devnet.anvil import AnvilProcess
from sluice.testing.anvil_control import NodeControl, control_for
from sluice.testing.harness import RunningSluice, running_sluice, wait_until_final

WAIT_S = 30.0


@pytest.fixture
async def instance(
    node: AnvilProcess, tmp_path: Path, database_url: str
) -> AsyncIterator[RunningSluice]:
    async with running_sluice(node, tmp_path, database_url=database_url) as running:
        yield running


async def _until(client: httpx.AsyncClient, path: str, check: Any, *, what: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        response = await client.get(path)
        body: dict[str, Any] = response.json()
        if response.status_code == 200 and check(body):
            return body
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}: {response.text[:300]}")
        await asyncio.sleep(0.05)


async def _broadcast_with_mining_off(
    instance: RunningSluice, client: httpx.AsyncClient, control: NodeControl
) -> tuple[str, str]:
    await instance.credit("alice", "5")
    await control.set_automine(False)
    recipient = Account.create().address
    created = await client.post(
        "/v1/withdrawals",
        json={"userId": "alice", "amount": "1", "toAddress": recipient, "network": "anvil"},
    )
    assert created.status_code == 202, created.text
    withdrawal_id = created.json()["id"]
    await _until(
        client,
        f"/v1/withdrawals/{withdrawal_id}",
        lambda body: body["status"] == "BROADCASTING",
        what="BROADCASTING",
    )
    return withdrawal_id, recipient


async def test_a_cancelled_broadcast_withdrawal_is_replaced_by_a_no_op_and_released(
    instance: RunningSluice, node: AnvilProcess
) -> None:
    async with instance.client() as client, control_for(node) as control:
        withdrawal_id, recipient = await _broadcast_with_mining_off(instance, client, control)

        cancel = await client.post(
            f"/v1/admin/withdrawals/{withdrawal_id}/cancel", json={"reason": "fraud suspected"}
        )
        assert cancel.status_code == 202, cancel.text
        assert cancel.json()["status"] == "BROADCASTING"
        transaction = await _until(
            client,
            f"/v1/withdrawals/{withdrawal_id}/transaction",
            lambda body: len(body["attempts"]) == 2 and body["attempts"][1]["sentAt"] is not None,
            what="the cancel attempt to be sent",
        )
        payout, noop = transaction["attempts"]
        assert (payout["purpose"], noop["purpose"]) == ("PAYLOAD", "CANCEL")
        assert transaction["cancelRequestedAt"] is not None
        assert int(noop["maxFeePerGas"]) >= int(payout["maxFeePerGas"]) * 110 // 100

        await control.mine(3)
        final = (await wait_until_final(client, [withdrawal_id], timeout_s=WAIT_S))[withdrawal_id]

        assert final["status"] == "CANCELLED"
        assert await control.balance(recipient) == 0, "the payout was never mined"
        transaction = (await client.get(f"/v1/withdrawals/{withdrawal_id}/transaction")).json()
        assert transaction["status"] == "CANCELLED"
        assert [a["outcome"] for a in transaction["attempts"]] == ["REPLACED", "MINED"]
        assert transaction["minedHash"] == noop["transactionHash"]
        balances = (await client.get("/v1/users/alice/balances")).json()
        assert [(b["available"], b["held"]) for b in balances] == [("5", "0")]
        events = (await client.get(f"/v1/withdrawals/{withdrawal_id}/events")).json()["events"]
        reasons = [e["reason"] for e in events]
        assert any("cancel requested (fraud suspected)" in r for r in reasons)
        assert [e["status"] for e in events][-1] == "CANCELLED"
        again = await client.post(f"/v1/admin/withdrawals/{withdrawal_id}/cancel")
        assert again.status_code == 200
        assert again.json()["status"] == "CANCELLED"


async def test_a_cancel_after_the_payout_is_mined_is_refused_and_it_completes(
    instance: RunningSluice, node: AnvilProcess
) -> None:
    async with instance.client() as client, control_for(node) as control:
        withdrawal_id, recipient = await _broadcast_with_mining_off(instance, client, control)
        await control.mine(1)
        await _until(
            client,
            f"/v1/withdrawals/{withdrawal_id}",
            lambda body: body["status"] in {"CONFIRMING", "COMPLETED"},
            what="the payout to be mined",
        )

        cancel = await client.post(f"/v1/admin/withdrawals/{withdrawal_id}/cancel")

        assert cancel.status_code == 409
        assert cancel.json()["code"] == "invalid_state"
        await control.mine(2)
        final = (await wait_until_final(client, [withdrawal_id], timeout_s=WAIT_S))[withdrawal_id]
        assert final["status"] == "COMPLETED"
        assert await control.balance(recipient) == 10**18
