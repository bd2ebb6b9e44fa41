"""The chain adapter's fee reads, receipts' fees and legacy (type 0) signing, against the pinned
Anvil: a London-or-later node that mines on command (known tips in known blocks, a base fee set
with ``anvil_setNextBlockBaseFeePerGas``), a ``--hardfork berlin`` node (no EIP-1559: legacy
transactions only), and an ``--network optimism`` one.

What ``anvil --network optimism`` (1.7) offers: OP Stack deposit transactions and its hardforks'
rules, but no GasPriceOracle predeploy (no code at 0x42…0F, so ``getL1Fee`` answers nothing) and
no ``l1Fee`` in receipts. The L1 fee is read here from a stand-in oracle, and an OP Stack receipt
is parsed from a recorded one in test_evm_chain_client.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from eth_account import Account

from sluice.chains.evm import ChainRpcError, EvmChainClient, TransactionRefusedRpcError
from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess
from sluice.domain.addresses import Address
from sluice.domain.fees import GWEI, FeeLevel, FeeMarket, FeeModel, FeePolicy, Fees
from sluice.domain.transaction import NATIVE_TRANSFER_GAS, UnsignedTransaction
from sluice.errors import CallRevertedError
from sluice.ports import Receipt
from sluice.signers.eip1559 import unsigned_serialization
from sluice.signers.keystore import KeystoreSigner, create_keystore
from sluice.testing.anvil_control import AnvilControl

CHAIN_ID = 31337
PASSPHRASE = "integration-test passphrase"
#: Where OP Mainnet and Base keep their GasPriceOracle.
OP_GAS_PRICE_ORACLE = Address("0x420000000000000000000000000000000000000F")


def _node(*args: str) -> Iterator[AnvilProcess]:
    node = AnvilProcess()
    node.start(extra_args=list(args))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def unmined(anvil: AnvilProcess) -> Iterator[AnvilProcess]:
    """A fresh node that mines only when told (``anvil`` is asked for its skip rule and mark)."""
    yield from _node("--no-mining")


@pytest.fixture(scope="module")
def berlin_node() -> Iterator[AnvilProcess]:
    yield from _node("--hardfork", "berlin")


@pytest.fixture
def berlin(anvil: AnvilProcess, berlin_node: AnvilProcess) -> AnvilProcess:
    """An auto-mining node without EIP-1559 (``anvil`` for its skip rule and mark)."""
    return berlin_node


@pytest.fixture
async def client(anvil: AnvilProcess) -> AsyncIterator[EvmChainClient]:
    """The session's shared node."""
    chain = EvmChainClient(anvil.rpc_url)
    yield chain
    await chain.close()


def _keystore_signer(tmp_path: Path, private_key: str) -> KeystoreSigner:
    path = tmp_path / "keystores" / f"{Account.create().address}.json"
    create_keystore(path, PASSPHRASE, private_key=private_key, kdf="pbkdf2", iterations=2)
    return KeystoreSigner.from_file(path, PASSPHRASE)


def _fresh_address() -> Address:
    return Address(Account.create().address)


async def _mined(chain: EvmChainClient, transaction_hash: str) -> Receipt:
    for _ in range(200):  # Anvil mines on arrival; a busy machine may lag a little
        receipt = await chain.receipt(transaction_hash)
        if receipt is not None:
            return receipt
        await asyncio.sleep(0.05)
    raise AssertionError("no receipt in time")


def _tipped(private_key: str, nonce: int, tip: int) -> bytes:
    transaction = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": _fresh_address(),
        "value": 1,
        "gas": NATIVE_TRANSFER_GAS,
        "maxFeePerGas": 100 * GWEI,
        "maxPriorityFeePerGas": tip,
    }
    return bytes(Account.from_key(private_key).sign_transaction(transaction).raw_transaction)


# ── eth_feeHistory ─────────────────────────────────────────────────────────────────────────────


async def test_the_fee_market_is_the_base_fee_set_and_the_tips_paid(
    unmined: AnvilProcess,
) -> None:
    chain = EvmChainClient(unmined.rpc_url)
    first, second = DEV_ACCOUNTS[0].private_key, DEV_ACCOUNTS[1].private_key
    try:
        async with AnvilControl(unmined.rpc_url) as control:
            # Block 1: tips of 1 and 3 gwei, 21 000 gas each; block 2: empty; block 3: 5 gwei.
            await chain.send_raw_transaction(_tipped(first, 0, 1 * GWEI))
            await chain.send_raw_transaction(_tipped(second, 0, 3 * GWEI))
            await control.mine()
            await control.mine()
            await chain.send_raw_transaction(_tipped(first, 1, 5 * GWEI))
            await control.mine()
            await control.set_next_block_base_fee(7 * GWEI)

            market = await chain.fee_market(blocks=3, percentiles=(10, 50, 90))
            unrewarded = await chain.fee_market(blocks=3, percentiles=())
    finally:
        await chain.close()

    assert market.base_fee == 7 * GWEI  # the next block's, as set
    # Per block, gas-weighted: [1, 1, 3] gwei, then an empty block (left out), then [5, 5, 5].
    assert market.rewards == (3 * GWEI, 3 * GWEI, 4 * GWEI)
    assert market.priority_fee > 0  # Anvil's suggestion
    assert unrewarded.base_fee == 7 * GWEI
    assert unrewarded.rewards == ()
    # The default strategy prices each level from those rewards, over the projected base fee.
    policy = FeePolicy(percentiles=(10, 50, 90), history_blocks=3)
    levels = policy.levels(market)
    assert [levels[level].max_priority_fee_per_gas for level in FeeLevel] == [
        3 * GWEI,
        3 * GWEI,
        4 * GWEI,
    ]


async def test_a_fee_history_of_empty_blocks_has_zero_rewards(unmined: AnvilProcess) -> None:
    chain = EvmChainClient(unmined.rpc_url)
    try:
        async with AnvilControl(unmined.rpc_url) as control:
            await control.mine(3)
        market = await chain.fee_market(blocks=3, percentiles=(10, 50, 85))
    finally:
        await chain.close()

    assert market.rewards == (0, 0, 0)
    assert FeePolicy().price(market).max_priority_fee_per_gas == market.priority_fee


# ── receipts' fees ─────────────────────────────────────────────────────────────────────────────


async def test_a_receipt_says_what_an_eip1559_transaction_paid(
    unmined: AnvilProcess, tmp_path: Path
) -> None:
    chain = EvmChainClient(unmined.rpc_url)
    signer = _keystore_signer(tmp_path, DEV_ACCOUNTS[2].private_key)
    try:
        before = await chain.balance(signer.address)
        signed = await signer.sign(
            UnsignedTransaction(
                chain_id=CHAIN_ID,
                nonce=await chain.transaction_count(signer.address, pending=True),
                to=_fresh_address(),
                value=777,
                data=b"",
                gas=NATIVE_TRANSFER_GAS,
                fees=Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI),
            )
        )
        assert (await chain.send_raw_transaction(signed.raw)).accepted
        async with AnvilControl(unmined.rpc_url) as control:
            await control.set_next_block_base_fee(2 * GWEI)
            await control.mine()
            raw = await control.call("eth_getTransactionReceipt", [signed.hash])
        receipt = await _mined(chain, signed.hash)
        spent = before - await chain.balance(signer.address)
    finally:
        await chain.close()

    assert receipt.effective_gas_price == 3 * GWEI  # the base fee set, plus the tip
    assert receipt.effective_gas_price == int(raw["effectiveGasPrice"], 16)
    assert receipt.l1_fee == 0
    assert receipt.fee_paid == NATIVE_TRANSFER_GAS * 3 * GWEI
    assert receipt.fee_paid == int(raw["gasUsed"], 16) * int(raw["effectiveGasPrice"], 16)
    assert spent == 777 + receipt.fee_paid


# ── legacy (berlin) ────────────────────────────────────────────────────────────────────────────


async def test_a_legacy_transaction_from_the_keystore_signer_is_mined_as_type_0(
    berlin: AnvilProcess, tmp_path: Path
) -> None:
    chain = EvmChainClient(berlin.rpc_url)
    signer = _keystore_signer(tmp_path, DEV_ACCOUNTS[2].private_key)
    recipient = _fresh_address()
    try:
        gas_price = await chain.gas_price()
        policy = FeePolicy(model=FeeModel.LEGACY)
        fees = policy.price(await _legacy_market(chain))
        before = await chain.balance(signer.address)
        signed = await signer.sign(
            UnsignedTransaction(
                chain_id=await chain.chain_id(),
                nonce=await chain.transaction_count(signer.address, pending=True),
                to=recipient,
                value=4242,
                data=b"",
                gas=NATIVE_TRANSFER_GAS,
                fees=fees,
                fee_model=FeeModel.LEGACY,
            )
        )

        assert (await chain.send_raw_transaction(signed.raw)).accepted
        receipt = await _mined(chain, signed.hash)
        async with AnvilControl(berlin.rpc_url) as control:
            mined = await control.call("eth_getTransactionByHash", [signed.hash])
        spent = before - await chain.balance(signer.address)
        received = await chain.balance(recipient)
    finally:
        await chain.close()

    assert fees.max_fee_per_gas == -(-gas_price * 125 // 100)  # the normal level: 125 %
    assert receipt.succeeded
    assert mined["type"] == "0x0"
    assert int(mined["v"], 16) in {CHAIN_ID * 2 + 35, CHAIN_ID * 2 + 36}  # EIP-155
    assert int(mined["chainId"], 16) == CHAIN_ID
    assert int(mined["gasPrice"], 16) == fees.max_fee_per_gas
    assert mined["from"].lower() == signer.address.lower()
    assert receipt.effective_gas_price == fees.max_fee_per_gas  # a legacy price is paid whole
    assert receipt.fee_paid == NATIVE_TRANSFER_GAS * fees.max_fee_per_gas
    assert spent == 4242 + receipt.fee_paid
    assert received == 4242


async def _legacy_market(chain: EvmChainClient) -> FeeMarket:
    return FeeMarket(gas_price=await chain.gas_price())


async def test_a_berlin_node_has_a_gas_price_and_no_base_fee(berlin: AnvilProcess) -> None:
    chain = EvmChainClient(berlin.rpc_url)
    try:
        async with AnvilControl(berlin.rpc_url) as control:
            node_says = int(await control.call("eth_gasPrice", []), 16)
        gas_price = await chain.gas_price()
        market = await chain.fee_market(blocks=2, percentiles=(50,))
    finally:
        await chain.close()

    assert gas_price == node_says > 0
    assert market.base_fee == 0  # Anvil keeps a fee history of zero base fees before London


async def test_a_berlin_node_refuses_a_type_2_transaction(
    berlin: AnvilProcess, tmp_path: Path
) -> None:
    chain = EvmChainClient(berlin.rpc_url)
    signer = _keystore_signer(tmp_path, DEV_ACCOUNTS[1].private_key)
    try:
        signed = await signer.sign(
            UnsignedTransaction(
                chain_id=CHAIN_ID,
                nonce=await chain.transaction_count(signer.address, pending=True),
                to=_fresh_address(),
                value=1,
                data=b"",
                gas=NATIVE_TRANSFER_GAS,
                fees=Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI),
            )
        )
        with pytest.raises(TransactionRefusedRpcError) as refused:
            await chain.send_raw_transaction(signed.raw)
    finally:
        await chain.close()

    assert (refused.value.reason, refused.value.permanent) == ("type_not_supported", True)


# ── the L1 data fee ────────────────────────────────────────────────────────────────────────────

#: A stand-in oracle that answers ``getL1Fee(bytes)`` with the length of its argument, read
#: from the ABI encoding (CALLDATALOAD(0x24) after the selector and the offset word), times
#: 1000: PUSH1 0x24 CALLDATALOAD PUSH2 0x03e8 MUL PUSH1 0 MSTORE PUSH1 0x20 PUSH1 0 RETURN.
LENGTH_ORACLE = "0x602435" + "6103e802" + "600052" + "60206000f3"

#: REVERT(0, 0).
REVERTING = "0x60006000fd"


async def _with_code(anvil: AnvilProcess, code: str) -> Address:
    address = _fresh_address()
    async with AnvilControl(anvil.rpc_url) as control:
        await control.call("anvil_setCode", [address, code])
    return address


async def test_the_l1_fee_is_the_oracles_answer_to_the_unsigned_transaction(
    anvil: AnvilProcess, client: EvmChainClient
) -> None:
    oracle = await _with_code(anvil, LENGTH_ORACLE)
    unsigned = unsigned_serialization(
        UnsignedTransaction(
            chain_id=10,
            nonce=3,
            to=_fresh_address(),
            value=10**15,
            data=b"\x01" * 100,
            gas=60_000,
            fees=Fees(max_fee_per_gas=GWEI, max_priority_fee_per_gas=10**6),
        )
    )

    assert await client.l1_fee(oracle, unsigned) == len(unsigned) * 1000
    assert await client.l1_fee(oracle, b"") == 0


async def test_an_l1_fee_oracle_that_reverts_is_the_calls_answer(
    anvil: AnvilProcess, client: EvmChainClient
) -> None:
    oracle = await _with_code(anvil, REVERTING)

    with pytest.raises(CallRevertedError) as reverted:
        await client.l1_fee(oracle, b"\x02\xc0")

    assert reverted.value.reason == "execution_reverted"


@pytest.fixture
def optimism(anvil: AnvilProcess) -> Iterator[AnvilProcess]:
    yield from _node("--network", "optimism")


async def test_anvils_optimism_mode_has_no_gas_price_oracle(optimism: AnvilProcess) -> None:
    chain = EvmChainClient(optimism.rpc_url)
    try:
        assert await chain.code_size(OP_GAS_PRICE_ORACLE) == 0
        with pytest.raises(ChainRpcError) as nothing:
            await chain.l1_fee(OP_GAS_PRICE_ORACLE, b"\x02\xc0")
    finally:
        await chain.close()

    assert nothing.value.reason == "malformed_response"  # an empty answer, not one word
