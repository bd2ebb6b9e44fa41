"""`AnvilControl` against the pinned Anvil (1.7.1): every method is called for real, and the
behaviour the engine's design relies on (re-orgs, roll-backs, drops, base fees, the pool) is
asserted, so that an Anvil upgrade that changes it fails here. The facts are summed up in the
docstring of `sluice.testing.anvil_control`.

`HardhatControl` against the pinned Hardhat (2.29.1, EDR) last: the same operations under
Hardhat's names, and where Hardhat behaves otherwise (the end-to-end suite runs on both).

Each test gets its own node (these tests switch automine off, re-org and change fees), started
through the shared `anvil` (or `hardhat`) fixture's skip rule and marker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from eth_account import Account

from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess, DevAccount
from sluice.testing.anvil_control import (
    ANVIL_METHODS,
    HARDHAT_METHODS,
    AnvilControl,
    AnvilRpcError,
    BlockRef,
    HardhatControl,
    NodeControl,
    NodeRpcError,
    PoolStatus,
    UnsupportedByNodeError,
    control_class,
    control_for,
)
from sluice.testing.hardhat import HardhatProcess

CHAIN_ID = 31337
GWEI = 10**9
SENDER = DEV_ACCOUNTS[0]
OTHER = DEV_ACCOUNTS[2]
RECIPIENT = DEV_ACCOUNTS[1].address


@dataclass(frozen=True)
class Signed:
    raw: bytes
    hash: str


def _transfer(
    nonce: int,
    *,
    max_fee: int = 100 * GWEI,
    tip: int = GWEI,
    value: int = 1,
    account: DevAccount = SENDER,
) -> Signed:
    signed = Account.from_key(account.private_key).sign_transaction(
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": nonce,
            "to": RECIPIENT,
            "value": value,
            "gas": 21_000,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
        }
    )
    return Signed(bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex())


@pytest.fixture
async def node(anvil: AnvilProcess) -> AsyncIterator[AnvilProcess]:
    """A node of this test's own (auto-mining at start). Asks for `anvil` for its skip rule."""
    process = AnvilProcess()
    await process.astart()
    yield process
    await process.astop()


@pytest.fixture
async def control(node: AnvilProcess) -> AsyncIterator[AnvilControl]:
    async with AnvilControl(node.rpc_url) as client:
        yield client


async def _send(control: NodeControl, signed: Signed) -> str:
    tx_hash = await control.send_raw(signed.raw)
    assert tx_hash == signed.hash
    return tx_hash


# ── mining ────────────────────────────────────────────────────────────────────────────────────


async def test_automine_off_keeps_transactions_pooled_until_mined(control: AnvilControl) -> None:
    assert await control.automine()
    await control.set_automine(False)
    assert not await control.automine()
    head = await control.block_number()

    ready = await _send(control, _transfer(0))
    gapped = await _send(control, _transfer(2))  # nonce 1 is missing: "queued"

    assert await control.block_number() == head
    assert await control.pool_status() == PoolStatus(pending=1, queued=1)
    pooled = {tx.hash: tx for tx in await control.pending_transactions()}
    assert set(pooled) == {ready, gapped}
    assert not pooled[ready].queued
    assert pooled[ready].sender == SENDER.address.lower()
    assert pooled[ready].nonce == 0
    assert pooled[ready].max_fee_per_gas == 100 * GWEI
    assert pooled[gapped].queued
    assert pooled[gapped].nonce == 2
    content = await control.txpool_content()
    assert set(content["pending"][SENDER.address.lower()]) == {"0"}
    assert set(content["queued"][SENDER.address.lower()]) == {"2"}
    # A pooled transaction is known, not mined, and counted by the pending nonce.
    known = await control.transaction(ready)
    assert known is not None
    assert known["blockHash"] is None
    assert await control.receipt(ready) is None
    assert await control.nonce(SENDER.address, "latest") == 0
    assert await control.nonce(SENDER.address, "pending") >= 1

    await control.mine(3)  # the first block takes the ready transaction, the gapped one stays

    assert await control.block_number() == head + 3
    first = await control.get_block(head + 1)
    assert first is not None
    assert first.transactions == (ready,)
    assert await control.pool_status() == PoolStatus(pending=0, queued=1)
    assert await control.nonce(SENDER.address, "latest") == 1


async def test_switching_automine_on_mines_the_pool_at_once(control: AnvilControl) -> None:
    await control.set_automine(False)
    pooled = await _send(control, _transfer(0))
    head = await control.block_number()

    await control.set_automine(True)

    receipt = await control.wait_for_receipt(pooled)
    assert int(receipt["blockNumber"], 16) == head + 1
    assert await control.pool_status() == PoolStatus(0, 0)


async def test_interval_mining_mines_on_its_own_and_turns_automine_off(
    control: AnvilControl,
) -> None:
    start = await control.block_number()
    await control.set_interval_mining(1)
    try:
        assert not await control.automine()
        deadline = asyncio.get_running_loop().time() + 10
        while await control.block_number() < start + 2:
            assert asyncio.get_running_loop().time() < deadline, "no interval blocks"
            await asyncio.sleep(0.1)
    finally:
        await control.set_interval_mining(0)
    stopped_at = await control.block_number()
    await asyncio.sleep(1.3)
    assert await control.block_number() == stopped_at


# ── snapshots ─────────────────────────────────────────────────────────────────────────────────


async def test_a_snapshot_reverts_once_and_takes_later_snapshots_with_it(
    control: AnvilControl,
) -> None:
    before = await control.block("latest")
    first = await control.snapshot()
    await control.mine(5)
    second = await control.snapshot()
    await control.mine(1)

    assert first != second
    assert await control.revert(first)

    assert await control.block("latest") == before
    assert not await control.revert(first)  # used up: Anvil answers false
    # Later than the one reverted: Anvil answers -32001 "Resource not found" the first time,
    # false after that; `revert` says False either way.
    with pytest.raises(AnvilRpcError) as excinfo:
        await control.call("evm_revert", [second])
    assert excinfo.value.code == -32001
    assert not await control.revert(second)


# ── re-orgs and roll-backs ────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("depth", [1, 2, 3])
async def test_a_reorg_replaces_blocks_and_drops_their_transactions(
    control: AnvilControl, depth: int
) -> None:
    await control.mine(4)
    signed = _transfer(0)
    await _send(control, signed)  # automine: mined just after the send answers
    receipt = await control.wait_for_receipt(signed.hash)
    recorded = BlockRef(int(receipt["blockNumber"], 16), receipt["blockHash"])
    if depth > 1:
        await control.mine(depth - 1)  # the transaction's block is now `depth` deep
    head = await control.block("latest")

    await control.reorg(depth)

    # Same height, new hashes from the fork point up, linked to each other.
    new_head = await control.block("latest")
    assert new_head.number == head.number
    assert new_head.hash != head.hash
    replaced = await control.get_block(recorded.number)
    assert replaced is not None
    assert replaced.hash != recorded.hash
    assert replaced.transactions == ()
    above = await control.get_block(recorded.number + 1)
    if above is not None:
        assert above.parent_hash == replaced.hash
    below = await control.get_block(recorded.number - 1)
    assert below is not None
    assert replaced.parent_hash == below.hash  # the fork point is untouched
    # The transaction is gone, not pooled again, and its nonce is free again.
    assert await control.receipt(signed.hash) is None
    assert await control.transaction(signed.hash) is None
    assert await control.pool_status() == PoolStatus(0, 0)
    assert await control.nonce(SENDER.address, "latest") == 0
    assert await control.nonce(SENDER.address, "pending") == 0
    # Later blocks do not bring it back: it must be sent again, and then it is mined.
    await control.mine(2)
    assert await control.receipt(signed.hash) is None
    await _send(control, signed)
    again = await control.wait_for_receipt(signed.hash)
    assert again["blockHash"] != recorded.hash


async def test_a_reorg_can_put_transactions_in_the_new_blocks(control: AnvilControl) -> None:
    original = _transfer(0)
    await _send(control, original)
    mined = await control.wait_for_receipt(original.hash)

    # The same signed transaction, re-included one block later in a depth-2 re-org; and a
    # request object that Anvil signs for one of its own accounts.
    await control.mine(1)
    await control.reorg(
        2, [(original.raw, 1), ({"from": OTHER.address, "to": RECIPIENT, "value": "0x5"}, 0)]
    )

    again = await control.receipt(original.hash)
    assert again is not None
    assert int(again["blockNumber"], 16) == int(mined["blockNumber"], 16) + 1
    assert again["blockHash"] != mined["blockHash"]
    first = await control.get_block(int(mined["blockNumber"], 16))
    assert first is not None
    assert len(first.transactions) == 1
    assert await control.nonce(OTHER.address) == 1


async def test_a_reorg_skips_an_invalid_transaction_silently(control: AnvilControl) -> None:
    await control.mine(2)
    head = await control.block_number()

    await control.reorg(1, [(_transfer(5).raw, 0)])  # nonce 5: invalid on the new chain

    block = await control.get_block(head)
    assert block is not None
    assert block.transactions == ()
    assert await control.nonce(SENDER.address) == 0


async def test_a_reorg_deeper_than_the_chain_is_refused(control: AnvilControl) -> None:
    await control.mine(2)
    with pytest.raises(AnvilRpcError) as excinfo:
        await control.reorg(10)
    assert excinfo.value.code == -32602
    with pytest.raises(ValueError, match="offset"):
        await control.reorg(1, [(_transfer(0).raw, 1)])


async def test_a_pooled_transaction_after_a_reorged_one_is_evicted_by_the_next_block(
    control: AnvilControl,
) -> None:
    await control.set_automine(False)
    first = _transfer(0)
    await _send(control, first)
    await control.mine()
    follower = await _send(control, _transfer(1))
    assert await control.pool_status() == PoolStatus(1, 0)

    await control.reorg(1)

    # Still listed (as ready, though its nonce 0 predecessor is gone)...
    assert await control.pool_status() == PoolStatus(1, 0)
    assert await control.nonce(SENDER.address, "latest") == 0
    # ...until the next block, which does not include it and evicts it.
    await control.mine()
    latest = await control.get_block("latest")
    assert latest is not None
    assert latest.transactions == ()
    assert await control.pool_status() == PoolStatus(0, 0)
    assert await control.transaction(follower) is None


async def test_a_rollback_removes_blocks_and_their_transactions(control: AnvilControl) -> None:
    await control.mine(3)
    signed = _transfer(0)
    await _send(control, signed)
    await control.wait_for_receipt(signed.hash)
    head = await control.block_number()

    await control.rollback(2)

    assert await control.block_number() == head - 2
    assert await control.receipt(signed.hash) is None
    assert await control.transaction(signed.hash) is None
    assert await control.pool_status() == PoolStatus(0, 0)
    assert await control.nonce(SENDER.address, "pending") == 0
    await control.rollback()  # default depth 1
    assert await control.block_number() == head - 3


# ── dropping ──────────────────────────────────────────────────────────────────────────────────


async def test_drop_transaction_removes_a_pooled_transaction_and_its_dependants(
    control: AnvilControl,
) -> None:
    await control.set_automine(False)
    dropped = await _send(control, _transfer(0))
    dependant = await _send(control, _transfer(1))  # needs nonce 0: goes with it
    gapped = await _send(control, _transfer(3))  # already queued behind the gap at 2: stays
    other = await _send(control, _transfer(0, account=OTHER))  # another sender: untouched
    assert await control.pool_status() == PoolStatus(pending=3, queued=1)
    assert await control.nonce(SENDER.address, "pending") == 2

    assert await control.drop_transaction(dropped)

    assert await control.transaction(dropped) is None
    assert await control.transaction(dependant) is None
    assert not await control.drop_transaction(dropped)  # no longer pooled
    assert await control.pool_status() == PoolStatus(pending=1, queued=1)
    pooled = {tx.hash: tx for tx in await control.pending_transactions()}
    assert set(pooled) == {gapped, other}
    assert pooled[gapped].queued
    assert await control.nonce(SENDER.address, "pending") == 0
    await control.mine()
    assert await control.receipt(gapped) is None
    assert await control.receipt(other) is not None

    await control.drop_all_transactions()
    assert await control.pool_status() == PoolStatus(0, 0)
    assert await control.pending_transactions() == []


async def test_dropping_a_transaction_in_the_middle_keeps_the_earlier_ones(
    control: AnvilControl,
) -> None:
    await control.set_automine(False)
    first = await _send(control, _transfer(0))
    middle = await _send(control, _transfer(1))
    last = await _send(control, _transfer(2))

    assert await control.drop_transaction(middle)

    assert [tx.hash for tx in await control.pending_transactions()] == [first]
    assert await control.transaction(last) is None
    assert await control.nonce(SENDER.address, "pending") == 1


async def test_a_mined_transaction_cannot_be_dropped(control: AnvilControl) -> None:
    mined = await _send(control, _transfer(0))
    await control.wait_for_receipt(mined)

    assert not await control.drop_transaction(mined)
    assert await control.receipt(mined) is not None


# ── base fee ──────────────────────────────────────────────────────────────────────────────────


async def test_the_next_block_base_fee_is_set_then_falls_by_eip_1559(
    control: AnvilControl,
) -> None:
    await control.set_automine(False)
    latest_before = await control.get_block("latest")
    assert latest_before is not None

    await control.set_next_block_base_fee(50 * GWEI)

    pending = await control.get_block("pending")
    latest = await control.get_block("latest")
    assert pending is not None
    assert latest is not None
    assert pending.base_fee_per_gas == 50 * GWEI
    assert latest.base_fee_per_gas == latest_before.base_fee_per_gas
    await control.mine()
    mined = await control.get_block("latest")
    assert mined is not None
    assert mined.base_fee_per_gas == 50 * GWEI
    await control.mine()
    after_empty = await control.get_block("latest")
    assert after_empty is not None
    assert after_empty.base_fee_per_gas == 50 * GWEI * 7 // 8  # an empty block: -12.5%


async def test_a_transaction_below_the_next_base_fee_is_refused(control: AnvilControl) -> None:
    await control.set_next_block_base_fee(50 * GWEI)
    underpriced = _transfer(0, max_fee=10 * GWEI)

    with pytest.raises(AnvilRpcError) as excinfo:
        await control.send_raw(underpriced.raw)

    assert excinfo.value.code == -32003
    assert "base fee" in excinfo.value.message
    assert await control.pool_status() == PoolStatus(0, 0)


async def test_a_pooled_transaction_priced_out_by_the_base_fee_is_evicted_not_kept(
    control: AnvilControl,
) -> None:
    await control.set_automine(False)
    cheap = await _send(control, _transfer(0, max_fee=5 * GWEI))
    follower = await _send(control, _transfer(1, max_fee=100 * GWEI))  # affordable, but after it
    assert await control.pool_status() == PoolStatus(2, 0)

    await control.set_next_block_base_fee(50 * GWEI)
    # Pending until a block is mined...
    assert await control.pool_status() == PoolStatus(2, 0)
    await control.mine()

    # ...which leaves both out and evicts them: not pending, unknown, nonce back.
    latest = await control.get_block("latest")
    assert latest is not None
    assert latest.transactions == ()
    assert await control.pool_status() == PoolStatus(0, 0)
    assert await control.transaction(cheap) is None
    assert await control.transaction(follower) is None
    assert await control.nonce(SENDER.address, "pending") == 0
    # It is not mined once the base fee falls back under its cap (20 empty blocks: ~3.4 gwei).
    await control.mine(20)
    final = await control.get_block("latest")
    assert final is not None
    assert final.base_fee_per_gas is not None
    assert final.base_fee_per_gas < 5 * GWEI
    assert await control.receipt(cheap) is None


# ── accounts and tags ─────────────────────────────────────────────────────────────────────────


async def test_set_balance_impersonate_and_send_unsigned(control: AnvilControl) -> None:
    stranger = Account.create().address
    await control.set_balance(stranger, 10**18)
    assert await control.balance(stranger) == 10**18

    await control.impersonate(stranger)
    tx_hash = await control.send_unsigned({"from": stranger, "to": RECIPIENT, "value": hex(7)})
    receipt = await control.wait_for_receipt(tx_hash)
    assert receipt["from"] == stranger.lower()
    assert await control.nonce(stranger) == 1

    await control.stop_impersonating(stranger)
    with pytest.raises(AnvilRpcError, match="No Signer available"):
        await control.send_unsigned({"from": stranger, "to": RECIPIENT, "value": hex(7)})


async def test_block_refs_and_the_safe_and_finalized_tags(control: AnvilControl) -> None:
    await control.mine(70)
    head = await control.block("latest")

    assert head == await control.block(head.number)
    assert (await control.block("safe")).number == head.number - 32
    assert (await control.block("finalized")).number == head.number - 64
    assert (await control.block("earliest")).number == 0
    assert await control.get_block(head.number + 100) is None
    with pytest.raises(AnvilRpcError, match="no block"):
        await control.block(head.number + 100)


async def test_set_nonce_and_set_code(control: AnvilControl) -> None:
    stranger = Account.create().address

    await control.set_nonce(stranger, 9)
    await control.set_code(stranger, "0x6001")

    assert await control.nonce(stranger) == 9
    assert await control.call("eth_getCode", [stranger, "latest"]) == "0x6001"


# ── the map of methods, by kind of node ───────────────────────────────────────────────────────


def test_each_kind_of_node_has_its_control_and_method_names() -> None:
    assert control_class("anvil") is AnvilControl
    assert control_class("hardhat") is HardhatControl
    with pytest.raises(ValueError, match="no control for a geth node"):
        control_class("geth")
    assert ANVIL_METHODS.set_balance == "anvil_setBalance"
    assert HARDHAT_METHODS.set_balance == "hardhat_setBalance"
    assert ANVIL_METHODS.interval_mining_units_per_s == 1
    assert HARDHAT_METHODS.interval_mining_units_per_s == 1000
    assert all(AnvilControl.supports(f) for f in ("reorg", "rollback", "txpool"))
    assert not any(HardhatControl.supports(f) for f in ("reorg", "rollback", "txpool"))
    # Only the re-org, roll-back and pool-view names are Anvil's alone.
    for name in ("reorg", "rollback", "txpool", "drop_all_transactions"):
        assert getattr(HARDHAT_METHODS, name) in (None, False)


async def test_control_for_picks_the_control_of_the_nodes_kind(node: AnvilProcess) -> None:
    async with control_for(node) as control:
        assert type(control) is AnvilControl
        assert control.kind == "anvil"
        assert await control.block_number() >= 0


# ── Hardhat ───────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
async def hardhat_node(hardhat: HardhatProcess) -> AsyncIterator[HardhatProcess]:
    """A Hardhat node of this test's own. Asks for `hardhat` for its skip rule and marker."""
    process = HardhatProcess()
    await process.astart()
    yield process
    await process.astop()


@pytest.fixture
async def hardhat_control(hardhat_node: HardhatProcess) -> AsyncIterator[NodeControl]:
    async with control_for(hardhat_node) as client:
        assert type(client) is HardhatControl
        yield client


async def test_hardhat_keeps_transactions_pooled_with_automine_off_until_mined(
    hardhat_control: NodeControl,
) -> None:
    control = hardhat_control
    assert await control.automine()
    await control.set_automine(False)
    assert not await control.automine()
    head = await control.block_number()

    ready = await _send(control, _transfer(0))
    gapped = await _send(control, _transfer(2))

    known = await control.transaction(ready)
    assert known is not None
    assert known["blockHash"] is None
    pooled = {tx["hash"] for tx in await control.call("eth_pendingTransactions")}
    assert pooled == {ready, gapped}
    assert await control.nonce(SENDER.address, "latest") == 0
    assert await control.nonce(SENDER.address, "pending") == 1
    await control.mine(3)
    assert await control.block_number() == head + 3
    first = await control.get_block(head + 1)
    assert first is not None
    assert first.transactions == (ready,)
    assert await control.receipt(gapped) is None
    # Unlike Anvil, switching automine back on does not mine what is pooled.
    follower = await _send(control, _transfer(1))
    await control.set_automine(True)
    await asyncio.sleep(0.5)
    assert await control.receipt(follower) is None
    assert await control.block_number() == head + 3


async def test_hardhat_interval_mining_counts_milliseconds_and_leaves_automine_on(
    hardhat_control: NodeControl,
) -> None:
    control = hardhat_control
    start = await control.block_number()
    await control.set_interval_mining(1)  # sent as 1000 (ms)
    try:
        assert await control.automine(), "Hardhat keeps automine on (Anvil turns it off)"
        deadline = asyncio.get_running_loop().time() + 10
        while await control.block_number() < start + 2:
            assert asyncio.get_running_loop().time() < deadline, "no interval blocks"
            await asyncio.sleep(0.1)
        # About a block a second, not a block a millisecond.
        assert await control.block_number() <= start + 4
    finally:
        await control.set_interval_mining(0)
    stopped_at = await control.block_number()
    await asyncio.sleep(1.3)
    assert await control.block_number() == stopped_at


async def test_hardhat_snapshots_revert_once_and_unknown_ones_answer_false(
    hardhat_control: NodeControl,
) -> None:
    control = hardhat_control
    before = await control.block("latest")
    first = await control.snapshot()
    await control.mine(5)
    second = await control.snapshot()
    await control.mine(1)

    assert first != second
    assert await control.revert(first)

    assert await control.block("latest") == before
    assert not await control.revert(first)
    assert await control.call("evm_revert", [second]) is False  # no error, unlike Anvil
    assert not await control.revert("0x99")


async def test_hardhat_drops_only_the_transaction_asked_for(hardhat_control: NodeControl) -> None:
    control = hardhat_control
    await control.set_automine(False)
    dropped = await _send(control, _transfer(0))
    dependant = await _send(control, _transfer(1))

    assert await control.drop_transaction(dropped)

    assert await control.transaction(dropped) is None
    assert not await control.drop_transaction(dropped)
    # Unlike Anvil, the later nonce stays pooled (now behind a gap).
    assert await control.transaction(dependant) is not None
    assert await control.nonce(SENDER.address, "pending") == 0
    await control.mine()
    assert await control.receipt(dependant) is None

    await control.drop_all_transactions()  # no such method: each pooled one is dropped
    assert await control.call("eth_pendingTransactions") == []
    assert await control.transaction(dependant) is None


async def test_hardhat_a_mined_transaction_cannot_be_dropped(
    hardhat_control: NodeControl,
) -> None:
    control = hardhat_control
    mined = await _send(control, _transfer(0))
    await control.wait_for_receipt(mined)

    assert not await control.drop_transaction(mined)
    assert await control.receipt(mined) is not None


async def test_hardhat_pools_a_transaction_below_the_base_fee_instead_of_refusing_it(
    hardhat_control: NodeControl,
) -> None:
    control = hardhat_control
    await control.set_automine(False)
    latest_before = await control.get_block("latest")
    assert latest_before is not None

    await control.set_next_block_base_fee(50 * GWEI)

    pending = await control.get_block("pending")  # numbered null by Hardhat: the next number
    assert pending is not None
    assert pending.number == latest_before.number + 1
    assert pending.base_fee_per_gas == 50 * GWEI
    underpriced = await _send(control, _transfer(0, max_fee=10 * GWEI))  # Anvil refuses it
    await control.mine()
    mined = await control.get_block("latest")
    assert mined is not None
    assert mined.base_fee_per_gas == 50 * GWEI
    assert mined.transactions == ()
    # Left out of the block but kept in the pool (Anvil evicts it).
    known = await control.transaction(underpriced)
    assert known is not None
    assert known["blockHash"] is None
    await control.mine()
    after_empty = await control.get_block("latest")
    assert after_empty is not None
    assert after_empty.base_fee_per_gas == 50 * GWEI * 7 // 8


async def test_hardhat_sets_balances_nonces_and_code_and_impersonates(
    hardhat_control: NodeControl,
) -> None:
    control = hardhat_control
    stranger = Account.create().address
    await control.set_balance(stranger, 10**18)
    assert await control.balance(stranger) == 10**18

    await control.impersonate(stranger)
    tx_hash = await control.send_unsigned({"from": stranger, "to": RECIPIENT, "value": hex(7)})
    receipt = await control.wait_for_receipt(tx_hash)
    assert receipt["from"] == stranger.lower()
    assert await control.nonce(stranger) == 1

    await control.stop_impersonating(stranger)
    with pytest.raises(NodeRpcError, match="Unknown account"):
        await control.send_unsigned({"from": stranger, "to": RECIPIENT, "value": hex(7)})
    await control.set_nonce(stranger, 9)
    assert await control.nonce(stranger) == 9
    await control.set_code(stranger, "0x6001")
    assert await control.call("eth_getCode", [stranger, "latest"]) == "0x6001"


async def test_hardhat_has_no_reorg_rollback_or_pool_view_and_safe_is_the_head(
    hardhat_control: NodeControl,
) -> None:
    control = hardhat_control
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: control.reorg(1),
        lambda: control.rollback(1),
        control.txpool_content,
        control.pool_status,
        control.pending_transactions,
    ]
    for call in calls:
        with pytest.raises(UnsupportedByNodeError, match="a hardhat node has no"):
            await call()
    with pytest.raises(NodeRpcError, match="not supported"):
        await control.call("anvil_reorg", [1, []])
    await control.mine(70)
    head = await control.block("latest")
    assert await control.block("safe") == head
    assert await control.block("finalized") == head
    assert await control.get_block(head.number + 100) is None
