"""A withdrawal's ``priority`` over HTTP: its first attempt is priced at that level, as
`GET /v1/networks` shows the levels at that moment, and once completed it shows the fee its
receipt says was paid (issue 11, must-hold 3).

The test's node has a block of transactions with different tips (so the levels differ) and
then mines only when told, so the market holds still between the quote and the signatures.

The network's levels read the 0th, 50th and 100th reward percentiles, not the default 10th,
50th and 85th: Hardhat 2 (EDR) answers ``eth_feeHistory`` rewards as if each percentile were
of the block's gas limit, not of the gas its transactions used. In a block of three 21 000-gas
transfers tipping 1, 2 and 4 gwei it answers 4 gwei at the 10th, 50th and 100th percentiles
alike and 1 gwei only at the 0th, where Anvil (and geth) answer 1, 2 and 4 gwei at the 10th,
50th and 85th; so only the 0th percentile tells its tips apart there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from sluice.config import Settings
from sluice.devnet import setup
from sluice.devnet.anvil import DEV_ACCOUNTS, LocalNode
from sluice.domain.fees import GWEI
from sluice.domain.transaction import NATIVE_TRANSFER_GAS
from sluice.testing.anvil_control import control_for
from sluice.testing.harness import RunningSluice, running_sluice, wait_until_final

WAIT_S = 30.0
ETH = 10**18
#: The tips of the block the test mines before Sluice starts: its rewards at the network's
#: percentiles (0, 50, 100) are 1, 2 and 4 gwei on Anvil (1, 4 and 4 on Hardhat, see above).
TIPS = (1 * GWEI, 2 * GWEI, 4 * GWEI)
PERCENTILES = "fee_percentiles = [0, 50, 100]\n"


def _mixed_tips_then_mining_off(
    node: LocalNode,
) -> Callable[[Settings, setup.DevChain], Awaitable[setup.DevChain]]:
    async def after_prepare(settings: Settings, chain: setup.DevChain) -> setup.DevChain:
        networks = settings.networks_file.read_text(encoding="utf-8")
        tokens = f"\n[[networks.{setup.NETWORK}.tokens]]"
        assert tokens in networks
        settings.networks_file.write_text(
            networks.replace(tokens, "\n" + PERCENTILES + tokens, 1), encoding="utf-8"
        )
        async with control_for(node) as control:
            await control.set_automine(False)
            for account, tip in zip(DEV_ACCOUNTS, TIPS, strict=True):
                transaction = {
                    "type": 2,
                    "chainId": node.chain_id,
                    "nonce": await control.nonce(account.address, "pending"),
                    "to": Account.create().address,
                    "value": 1,
                    "gas": NATIVE_TRANSFER_GAS,
                    "maxFeePerGas": 100 * GWEI,
                    "maxPriorityFeePerGas": tip,
                }
                signed = Account.from_key(account.private_key).sign_transaction(transaction)
                await control.send_raw(bytes(signed.raw_transaction))
            await control.mine()
        return chain

    return after_prepare


async def _until(client: httpx.AsyncClient, path: str, check: Any, *, what: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        response = await client.get(path)
        if response.status_code == 200 and check(body := response.json()):
            assert isinstance(body, dict)
            return body
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}: {response.text[:300]}")
        await asyncio.sleep(0.05)


async def _fee_levels(instance: RunningSluice, client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/v1/networks")
    assert response.status_code == 200, response.text
    (network,) = [n for n in response.json() if n["name"] == instance.network]
    levels: dict[str, Any] = network["feeLevels"]
    return levels


def _tip(fees: dict[str, str]) -> int:
    return int(fees["maxPriorityFeePerGas"])


async def test_each_withdrawal_is_priced_at_its_priority_and_shows_the_fee_its_receipt_paid(
    node: LocalNode, tmp_path: Path, database_url: str
) -> None:
    async with (
        running_sluice(
            node,
            tmp_path,
            database_url=database_url,
            after_prepare=_mixed_tips_then_mining_off(node),
        ) as instance,
        instance.client() as client,
        control_for(node) as control,
    ):
        await instance.credit("alice", "10")
        levels = await _fee_levels(instance, client)
        assert _tip(levels["slow"]) <= _tip(levels["normal"]) <= _tip(levels["fast"])
        assert _tip(levels["slow"]) < _tip(levels["fast"])

        asked: dict[str, str | None] = {}
        for priority in ("slow", "fast", None):
            body = {
                "userId": "alice",
                "amount": "1",
                "toAddress": Account.create().address,
                "network": instance.network,
            }
            if priority is not None:
                body["priority"] = priority
            response = await client.post("/v1/withdrawals", json=body)
            assert response.status_code == 202, response.text
            created = response.json()
            assert created["priority"] == (priority or "normal")  # the network's default
            asked[created["id"]] = priority

        first_attempts: dict[str, dict[str, Any]] = {}
        for withdrawal_id in asked:
            transaction = await _until(
                client,
                f"/v1/withdrawals/{withdrawal_id}/transaction",
                lambda body: bool(body["attempts"]) and body["attempts"][0]["sentAt"] is not None,
                what=f"the first attempt of {withdrawal_id} sent",
            )
            first_attempts[withdrawal_id] = transaction["attempts"][0]
        assert await _fee_levels(instance, client) == levels  # nothing mined: the same market

        for withdrawal_id, priority in asked.items():
            first = first_attempts[withdrawal_id]
            offered = {k: first[k] for k in ("maxFeePerGas", "maxPriorityFeePerGas")}
            assert offered == levels[priority or "normal"], priority
        by_priority = {priority: first_attempts[w] for w, priority in asked.items()}
        assert _tip(by_priority["fast"]) > _tip(by_priority["slow"])

        await control.mine()
        final = await wait_until_final(client, list(asked), timeout_s=WAIT_S)

        for withdrawal_id, priority in asked.items():
            withdrawal = final[withdrawal_id]
            assert withdrawal["status"] == "COMPLETED", withdrawal
            assert withdrawal["priority"] == (priority or "normal")
            receipt = await control.receipt(withdrawal["transactionHash"])
            assert receipt is not None
            paid = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
            assert Decimal(withdrawal["feePaid"]) == Decimal(paid) / ETH  # in ETH, exactly
            assert await control.balance(withdrawal["toAddress"]) == ETH
            transaction = (await client.get(f"/v1/withdrawals/{withdrawal_id}/transaction")).json()
            assert [a["outcome"] for a in transaction["attempts"]] == ["MINED"]
            assert transaction["minedHash"] == first_attempts[withdrawal_id]["transactionHash"]
