"""Batch payouts end to end (issue 12, must-hold 2): hundreds of withdrawals over HTTP, of the
coin and of two tokens, to new and existing recipients, one of them blocked by its token, paid
by a few transactions through the hot wallet's batch contract.

The node is Anvil (automine), the engine the real one (API and workers in process, SQLite or
PostgreSQL). Before Sluice starts the test deploys the hot wallet's ``BatchPayout``, approves it
for both tokens, deploys a `BlockingToken` (USDC-like: it refuses a blocked address) with one
recipient blocked, and gives the "existing" recipients some of each asset. It then checks what
the chain says: every recipient holds exactly what it was paid, the hot wallet's outflow is the
payouts plus the gas of its transactions (the receipts'), which is the sum of the withdrawals'
``feePaid`` shares; the blocked recipient's withdrawal FAILED ``destination_reverts`` with its
hold released; far fewer transactions than withdrawals (printed).

``SLUICE_BATCH_E2E_WITHDRAWALS`` sets the count (default 500).
"""

from __future__ import annotations

import asyncio
import json
import os
import tomllib
from collections import Counter, defaultdict
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
from sluice.domain.addresses import Address
from sluice.testing.contracts import (
    ChainSender,
    approve,
    deploy_batch_payout,
    deploy_blocking_token,
    mint,
    set_blocked,
    token_balance,
    transfer,
)
from sluice.testing.harness import PASSPHRASE, running_sluice, wait_until_final

ETHER = 10**18
UNIT = 10**18  # both tokens have 18 decimals
MAX = 2**256 - 1
COUNT = int(os.environ.get("SLUICE_BATCH_E2E_WITHDRAWALS", "500"))
WAIT_S = 300.0


class Plan:
    """Who gets paid what: (asset, recipient, amount in base units), and the recipients that
    already hold the asset (with what they held before)."""

    def __init__(self, count: int) -> None:
        share = count // 10
        self.native_new = [_fresh() for _ in range(2 * share)]
        self.native_existing = [_fresh() for _ in range(3 * share)]
        self.token_new = [_fresh() for _ in range(2 * share)]
        self.token_existing = [_fresh() for _ in range(2 * share)]
        rest = count - 9 * share
        self.blocking = [_fresh() for _ in range(rest)]
        self.blocked = self.blocking[0]
        self.before: dict[tuple[str, Address], int] = {}

    def payments(self, token: Address, blocking: Address) -> list[tuple[str, Address, int]]:
        """Every withdrawal: (asset key, recipient, base units); the amounts differ a little so
        that a payment to the wrong position would show."""
        rows: list[tuple[str, Address, int]] = []
        for i, to in enumerate(self.native_new + self.native_existing):
            rows.append(("native", to, ETHER // 1000 + i))
        for i, to in enumerate(self.token_new + self.token_existing):
            rows.append((token.lower(), to, 12 * UNIT + i))
        for i, to in enumerate(self.blocking):
            rows.append((blocking.lower(), to, 3 * UNIT + i))
        return rows


def _fresh() -> Address:
    return Address(Account.create().address)


def _with_batching(
    plan: Plan, found: dict[str, Any]
) -> Callable[[Settings, setup.DevChain], Awaitable[setup.DevChain]]:
    """Deploy and approve the batch contract, deploy the blocking token, fund the existing
    recipients, and turn batching on in the networks file."""

    async def after_prepare(settings: Settings, chain: setup.DevChain) -> setup.DevChain:
        networks = settings.networks_file.read_text(encoding="utf-8")
        config = tomllib.loads(networks)["networks"][setup.NETWORK]
        rpc_url = config["rpc_urls"][0]
        keystore = Path(config["hot_wallet_keystore"])

        def on_chain() -> tuple[Address, Address, int]:
            key = Account.decrypt(json.loads(keystore.read_text(encoding="utf-8")), PASSPHRASE)
            with (
                ChainSender(rpc_url, "0x" + bytes(key).hex()) as wallet,
                ChainSender(rpc_url, DEV_ACCOUNTS[1].private_key) as funder,
            ):
                batch = deploy_batch_payout(wallet)
                approve(wallet, chain.token, batch, MAX)
                blocking = deploy_blocking_token(wallet, symbol="BLOCK")
                mint(wallet, blocking, wallet.address, 1_000_000 * UNIT)
                approve(wallet, blocking, batch, MAX)
                set_blocked(wallet, blocking, plan.blocked)
                for i, to in enumerate(plan.native_existing):
                    funder.send(to, value=1 + i)
                    plan.before[("native", to)] = 1 + i
                for i, to in enumerate(plan.token_existing):
                    transfer(wallet, chain.token, to, 1 + i)
                    plan.before[(chain.token.lower(), to)] = 1 + i
                return batch, blocking, wallet.native_balance(wallet.address)

        batch, blocking, start_balance = await asyncio.to_thread(on_chain)
        found.update(batch=batch, blocking=blocking, start_balance=start_balance)
        settings.networks_file.write_text(
            networks
            + f"""
[[networks.{setup.NETWORK}.tokens]]
symbol = "BLOCK"
address = "{blocking}"
decimals = 18

[networks.{setup.NETWORK}.batching]
max_size = 100
window_s = 1.0
contracts = {{ "{chain.hot_wallet}" = "{batch}" }}
""",
            encoding="utf-8",
        )
        return chain

    return after_prepare


async def _post_all(
    client: httpx.AsyncClient, rows: list[tuple[str, Address, int]], tokens: dict[str, Address]
) -> dict[str, tuple[str, Address, int]]:
    limit = asyncio.Semaphore(16)
    created: dict[str, tuple[str, Address, int]] = {}

    async def post(row: tuple[str, Address, int]) -> None:
        asset, to, amount = row
        body = {
            "userId": "batch-user",
            "network": setup.NETWORK,
            "toAddress": to,
            "amount": str(Decimal(amount) / 10**18),
            "tokenAddress": None if asset == "native" else tokens[asset],
        }
        async with limit:
            response = await client.post("/v1/withdrawals", json=body)
        assert response.status_code == 202, response.text
        created[response.json()["id"]] = row

    await asyncio.gather(*(post(row) for row in rows))
    return created


async def _rpc(client: httpx.AsyncClient, url: str, method: str, params: list[Any]) -> Any:
    response = await client.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    )
    return response.json()["result"]


async def _gas_spent(client: httpx.AsyncClient, url: str, wallet: Address, first: int) -> int:
    """What the hot wallet paid for gas in blocks from ``first``, from the receipts."""
    head = int(await _rpc(client, url, "eth_blockNumber", []), 16)
    spent = 0
    for number in range(first, head + 1):
        block = await _rpc(client, url, "eth_getBlockByNumber", [hex(number), True])
        for tx in block["transactions"]:
            if tx["from"].lower() != wallet.lower():
                continue
            receipt = await _rpc(client, url, "eth_getTransactionReceipt", [tx["hash"]])
            spent += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    return spent


async def test_hundreds_of_withdrawals_are_paid_by_a_few_batches_and_the_chain_agrees(
    anvil: LocalNode, tmp_path: Path, database_url: str
) -> None:
    if anvil.kind != "anvil":
        pytest.skip(
            "the batch payout end-to-end test runs on Anvil (it checks the engine, not the node)"
        )
    plan = Plan(COUNT)
    found: dict[str, Any] = {}
    async with running_sluice(
        anvil, tmp_path, database_url=database_url, after_prepare=_with_batching(plan, found)
    ) as sluice:
        blocking: Address = found["blocking"]
        rows = plan.payments(Address(sluice.token), blocking)
        tokens = {sluice.token.lower(): Address(sluice.token), blocking.lower(): blocking}
        async with sluice.container.uow() as uow:
            for asset, total in _totals(rows).items():
                await sluice.container.ledger.credit(
                    uow,
                    user_id="batch-user",
                    network=setup.NETWORK,
                    token_address=None if asset == "native" else tokens[asset],
                    amount=str(Decimal(total) / 10**18),
                    reference=f"batch-e2e:{asset}",
                )
            await uow.commit()
        async with httpx.AsyncClient(timeout=30) as rpc:
            first_block = int(await _rpc(rpc, sluice.rpc_url, "eth_blockNumber", []), 16) + 1
        async with sluice.client() as client:
            # The batch contract itself is no destination (it could move nothing out).
            refused = await client.post(
                "/v1/withdrawals",
                json={
                    "userId": "batch-user",
                    "network": setup.NETWORK,
                    "toAddress": found["batch"],
                    "amount": "1",
                    "tokenAddress": sluice.token,
                },
            )
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["field"] == "toAddress"
            assert refused.json()["errors"][0]["code"] == "invalid_address"
            created = await _post_all(client, rows, tokens)
            final = await wait_until_final(client, list(created), timeout_s=WAIT_S)
            views = {
                wid: (await client.get(f"/v1/withdrawals/{wid}/transaction")).json()
                for wid, body in final.items()
                if body["status"] == "COMPLETED"
            }
            balances = (await client.get("/v1/users/batch-user/balances")).json()

        # Every withdrawal but the blocked recipient's completed, once.
        failed = {wid: body for wid, body in final.items() if body["status"] != "COMPLETED"}
        assert [created[wid][1] for wid in failed] == [plan.blocked]
        (blocked_body,) = failed.values()
        assert blocked_body["status"] == "FAILED"
        assert blocked_body["errorCode"] == "destination_reverts"

        # Far fewer transactions than withdrawals; each batch's positions are 0..size-1.
        transactions: dict[str, list[int]] = defaultdict(list)
        sizes: dict[str, int] = {}
        for view in views.values():
            batch = view["batch"]
            if batch is None:
                transactions[view["id"]].append(0)
                sizes[view["id"]] = 1
            else:
                assert batch["contract"] == found["batch"]
                transactions[view["id"]].append(batch["position"])
                sizes[view["id"]] = batch["size"]
        for transaction_id, positions in transactions.items():
            assert sorted(positions) == list(range(sizes[transaction_id])), transaction_id
        batched = sum(1 for size in sizes.values() if size > 1)
        print(
            f"\n{len(created)} withdrawals paid by {len(transactions)} transactions "
            f"({batched} batches, largest {max(sizes.values())}; "
            f"{len(transactions) - batched} single: new accounts paid the coin on their own)"
        )
        assert len(transactions) <= len(plan.native_new) + len(created) // 10

        # Each recipient holds exactly what it was paid (plus what it held before).
        async with httpx.AsyncClient(timeout=30) as rpc:
            with ChainSender(sluice.rpc_url, DEV_ACCOUNTS[1].private_key) as reader:
                for wid, (asset, to, amount) in created.items():
                    paid = 0 if wid in failed else amount
                    expected = plan.before.get((asset, to), 0) + paid
                    if asset == "native":
                        held = reader.native_balance(to)
                    else:
                        held = token_balance(reader, tokens[asset], to)
                    assert held == expected, (asset, to)
                end_balance = reader.native_balance(sluice.hot_wallet)
            gas = await _gas_spent(rpc, sluice.rpc_url, sluice.hot_wallet, first_block)

        # The hot wallet's outflow is the coin paid out plus the gas, and the gas is what the
        # withdrawals' shares add up to.
        native_paid = sum(
            a for wid, (k, _, a) in created.items() if k == "native" and wid not in failed
        )
        assert found["start_balance"] - end_balance == native_paid + gas
        shares = sum(Decimal(body["feePaid"]) * ETHER for body in final.values() if body["feePaid"])
        assert shares == gas

        # The ledger: nothing held, and what is left is what was credited less what was paid.
        by_asset = {(b["tokenAddress"] or "native").lower(): b for b in balances}
        credited = _totals(rows)
        settled = Counter[str]()
        for wid, (asset, _, amount) in created.items():
            if wid not in failed:
                settled[asset] += amount
        for asset, total in credited.items():
            row = by_asset[asset]
            assert Decimal(row["held"]) == 0
            assert Decimal(row["available"]) * 10**18 == total - settled[asset]


def _totals(rows: list[tuple[str, Address, int]]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for asset, _, amount in rows:
        totals[asset] += amount
    return dict(totals)
