"""`EvmChainClient` against the pinned Anvil, and against a scripted node for the failure modes
Anvil cannot be made to show (timeouts, HTTP errors, malformed answers, other clients' words)."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from eth_abi.abi import encode
from eth_account import Account
from eth_typing import HexAddress, HexStr
from web3.types import Nonce
from web3.utils.address import get_create_address

from sluice.chains.evm import (
    DEFAULT_PRIORITY_FEE,
    ChainRpcError,
    EvmChainClient,
    TransactionRefusedRpcError,
)
from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess, free_port
from sluice.devnet.artifacts import load_demo_token
from sluice.domain.addresses import Address
from sluice.domain.fees import FeeMarket, FeePolicy, projected_base_fee
from sluice.domain.receipts import TRANSFER_TOPIC, Log, address_topic, token_transfer_paid
from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    TRANSFER_SELECTOR,
    Fees,
    SignedTransaction,
    UnsignedTransaction,
)
from sluice.errors import (
    CallRevertedError,
    ChainUnavailableError,
    ConfigurationError,
    TransactionRefusedError,
)
from sluice.ports import ChainClient, Receipt, SendResult
from sluice.signers.keystore import KeystoreSigner, create_keystore
from sluice.testing.anvil_control import AnvilControl

CHAIN_ID = 31337
PASSPHRASE = "integration-test passphrase"
RECEIPT_TIMEOUT_S = 10.0


# ── helpers ───────────────────────────────────────────────────────────────────────────────────


def _fresh_address() -> Address:
    return Address(Account.create().address)


def _signer(tmp_path: Path, private_key: str | None) -> KeystoreSigner:
    path = tmp_path / "keystores" / f"{Account.create().address}.json"
    create_keystore(path, PASSPHRASE, private_key=private_key, kdf="pbkdf2", iterations=2)
    return KeystoreSigner.from_file(path, PASSPHRASE)


async def _sign(
    client: EvmChainClient,
    signer: KeystoreSigner,
    to: Address,
    value: int,
    *,
    data: bytes = b"",
    gas: int = NATIVE_TRANSFER_GAS,
    nonce: int | None = None,
) -> SignedTransaction:
    if nonce is None:
        nonce = await client.transaction_count(signer.address, pending=True)
    return await signer.sign(
        UnsignedTransaction(
            chain_id=CHAIN_ID,
            nonce=nonce,
            to=to,
            value=value,
            data=data,
            gas=gas,
            fees=FeePolicy().price(await client.fee_market(blocks=1, percentiles=())),
        )
    )


async def _mined(client: EvmChainClient, transaction_hash: str) -> Receipt:
    deadline = asyncio.get_running_loop().time() + RECEIPT_TIMEOUT_S
    while (receipt := await client.receipt(transaction_hash)) is None:
        assert asyncio.get_running_loop().time() < deadline, "no receipt in time"
        await asyncio.sleep(0.05)
    return receipt


def _erc20_transfer(to: Address, amount: int) -> bytes:
    return TRANSFER_SELECTOR + encode(["address", "uint256"], [to, amount])


async def _deploy_demo_token(client: EvmChainClient) -> Address:
    """Deploy a DemoToken from Anvil's first account (a signer cannot: it needs a recipient)."""
    deployer = DEV_ACCOUNTS[0]
    artifact = load_demo_token()
    arguments = encode(
        ["string", "string", "uint8", "uint256"], ["Demo USD", "DUSD", 6, 1_000_000 * 10**6]
    )
    nonce = await client.transaction_count(deployer.address, pending=True)
    fees = FeePolicy().price(await client.fee_market(blocks=1, percentiles=()))
    signed = Account.from_key(deployer.private_key).sign_transaction(
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": nonce,
            "value": 0,
            "data": bytes.fromhex(artifact.bytecode.removeprefix("0x")) + arguments,
            "gas": 3_000_000,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }
    )
    result = await client.send_raw_transaction(bytes(signed.raw_transaction))
    assert result.accepted
    receipt = await _mined(client, "0x" + bytes(signed.hash).hex())
    assert receipt.succeeded
    return Address(get_create_address(HexAddress(HexStr(deployer.address)), Nonce(nonce)))


# ── fixtures ──────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
async def client(anvil: AnvilProcess) -> AsyncIterator[EvmChainClient]:
    chain = EvmChainClient(anvil.rpc_url)
    yield chain
    await chain.close()


@pytest.fixture
def signer(tmp_path: Path) -> KeystoreSigner:
    """Anvil's third default account, read from a keystore like a real hot wallet."""
    return _signer(tmp_path, DEV_ACCOUNTS[2].private_key)


# ── against Anvil ─────────────────────────────────────────────────────────────────────────────


def test_the_client_satisfies_the_port(anvil: AnvilProcess) -> None:
    chain: ChainClient = EvmChainClient(anvil.rpc_url)  # mypy checks the protocol here
    assert isinstance(chain, EvmChainClient)


async def test_chain_id_and_block_number(client: EvmChainClient) -> None:
    assert await client.chain_id() == CHAIN_ID
    assert await client.block_number() >= 0


async def test_anvils_fee_market_priced_by_the_default_policy_has_headroom(
    client: EvmChainClient,
) -> None:
    fees = FeePolicy().price(await client.fee_market(blocks=1, percentiles=()))

    assert fees.max_priority_fee_per_gas > 0
    assert fees.max_fee_per_gas >= fees.max_priority_fee_per_gas
    # Anvil has a non-zero base fee, so the cap is strictly above the tip.
    assert fees.max_fee_per_gas > fees.max_priority_fee_per_gas


async def test_estimate_gas_of_a_native_transfer(
    client: EvmChainClient, signer: KeystoreSigner
) -> None:
    gas = await client.estimate_gas(signer.address, _fresh_address(), 10**15, b"")

    assert gas == NATIVE_TRANSFER_GAS


async def test_native_transfer_is_mined_and_pays_exactly(
    client: EvmChainClient, signer: KeystoreSigner
) -> None:
    recipient = _fresh_address()
    value = 123_456_789
    before = await client.balance(recipient)
    block_before = await client.block_number()
    signed = await _sign(client, signer, recipient, value)

    result = await client.send_raw_transaction(signed.raw)
    receipt = await _mined(client, signed.hash)

    assert result.accepted
    assert result.note == ""
    assert receipt.transaction_hash == signed.hash
    assert receipt.succeeded
    assert receipt.gas_used == NATIVE_TRANSFER_GAS
    assert receipt.block_number > block_before
    assert receipt.block_hash.startswith("0x")
    assert receipt.block_hash == receipt.block_hash.lower()
    assert len(receipt.block_hash) == 66
    assert await client.balance(recipient) == before + value
    assert await client.block_number() >= receipt.block_number
    assert await client.is_known(signed.hash)


async def test_sending_the_same_transaction_twice_is_accepted(
    client: EvmChainClient, signer: KeystoreSigner
) -> None:
    signed = await _sign(client, signer, _fresh_address(), 1)

    first = await client.send_raw_transaction(signed.raw)
    second = await client.send_raw_transaction(signed.raw)

    assert first.accepted
    assert second.accepted
    assert second.note in {"already_known", "nonce_too_low"}
    assert (await _mined(client, signed.hash)).succeeded


async def test_another_transaction_with_a_mined_nonce_is_accepted_as_nonce_too_low(
    client: EvmChainClient, signer: KeystoreSigner
) -> None:
    recipient = _fresh_address()
    nonce = await client.transaction_count(signer.address, pending=True)
    mined = await _sign(client, signer, recipient, 1, nonce=nonce)
    assert (await client.send_raw_transaction(mined.raw)).accepted
    await _mined(client, mined.hash)
    stale = await _sign(client, signer, recipient, 2, nonce=nonce)

    result = await client.send_raw_transaction(stale.raw)

    assert result == SendResult(accepted=True, note="nonce_too_low")
    assert not await client.is_known(stale.hash)
    assert await client.balance(recipient) == 1


async def test_a_reverted_token_transfer_has_a_failed_receipt(
    client: EvmChainClient, signer: KeystoreSigner
) -> None:
    token = await _deploy_demo_token(client)
    data = _erc20_transfer(_fresh_address(), 1)  # the signer holds no tokens
    with pytest.raises(CallRevertedError) as excinfo:
        await client.estimate_gas(signer.address, token, 0, data)
    assert excinfo.value.reason == "execution_reverted"
    assert not isinstance(excinfo.value, ChainUnavailableError)  # the call's answer
    # A fixed gas limit, so nothing estimates the call and catches the revert before mining.
    signed = await _sign(client, signer, token, 0, data=data, gas=100_000)

    result = await client.send_raw_transaction(signed.raw)
    receipt = await _mined(client, signed.hash)

    assert result.accepted
    assert not receipt.succeeded
    assert 0 < receipt.gas_used <= 100_000
    assert receipt.logs == ()


async def test_a_token_transfer_receipt_carries_the_transfer_event(
    client: EvmChainClient,
) -> None:
    token = await _deploy_demo_token(client)
    holder = DEV_ACCOUNTS[0]  # the deployer holds the supply
    recipient = _fresh_address()
    amount = 1_234_567
    fees = FeePolicy().price(await client.fee_market(blocks=1, percentiles=()))
    signed = Account.from_key(holder.private_key).sign_transaction(
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": await client.transaction_count(holder.address, pending=True),
            "to": token,
            "value": 0,
            "data": _erc20_transfer(recipient, amount),
            "gas": 100_000,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }
    )
    assert (await client.send_raw_transaction(bytes(signed.raw_transaction))).accepted

    receipt = await _mined(client, "0x" + bytes(signed.hash).hex())

    assert receipt.succeeded
    assert receipt.logs == (
        Log(
            address=token,
            topics=(
                TRANSFER_TOPIC,
                address_topic(Address(holder.address)),
                address_topic(recipient),
            ),
            data=amount.to_bytes(32, "big"),
        ),
    )
    sender = Address(holder.address)
    assert token_transfer_paid(receipt.logs, token, sender, recipient, amount)
    assert not token_transfer_paid(receipt.logs, token, sender, recipient, amount + 1)


async def test_code_size_of_a_contract_and_of_an_account(
    client: EvmChainClient, signer: KeystoreSigner
) -> None:
    token = await _deploy_demo_token(client)

    assert await client.code_size(token) > 0
    assert await client.code_size(signer.address) == 0
    assert await client.code_size(_fresh_address()) == 0


async def test_unknown_transaction_is_not_known_and_has_no_receipt(
    client: EvmChainClient,
) -> None:
    unknown = "0x" + "ab" * 32

    assert not await client.is_known(unknown)
    assert await client.receipt(unknown) is None
    assert await client.receipt(unknown.upper().replace("0X", "0x")) is None


@pytest.fixture
async def unmined_node(anvil: AnvilProcess) -> AsyncIterator[AnvilProcess]:
    """A second node that never mines, so sent transactions stay in its pool.

    It asks for the shared `anvil` only for its skip/fail rule and its marker.
    """
    node = AnvilProcess()
    await node.astart(extra_args=["--no-mining"])
    yield node
    await node.astop()


async def test_a_pooled_transaction_is_known_before_it_has_a_receipt(
    unmined_node: AnvilProcess, tmp_path: Path
) -> None:
    chain = EvmChainClient(unmined_node.rpc_url)
    try:
        signer = _signer(tmp_path, DEV_ACCOUNTS[0].private_key)
        signed = await _sign(chain, signer, _fresh_address(), 1, nonce=0)
        first = await chain.send_raw_transaction(signed.raw)

        again = await chain.send_raw_transaction(signed.raw)
        rival = await _sign(chain, signer, _fresh_address(), 2, nonce=0)
        replacement = await chain.send_raw_transaction(rival.raw)

        assert first == SendResult(accepted=True)
        assert again == SendResult(accepted=True, note="already_known")
        assert replacement == SendResult(accepted=True, note="replacement_underpriced")
        assert await chain.is_known(signed.hash)
        assert await chain.receipt(signed.hash) is None
    finally:
        await chain.close()


async def test_insufficient_funds_is_a_refusal_that_may_pass(
    client: EvmChainClient, tmp_path: Path
) -> None:
    broke = _signer(tmp_path, None)
    signed = await _sign(client, broke, _fresh_address(), 1)

    with pytest.raises(TransactionRefusedError) as excinfo:
        await client.send_raw_transaction(signed.raw)

    assert isinstance(excinfo.value, ChainRpcError)
    assert excinfo.value.reason == "insufficient_funds"
    assert not excinfo.value.permanent
    assert "insufficient_funds" in str(excinfo.value)
    assert "Insufficient funds for gas * price + value" in str(excinfo.value)  # Anvil's words


#: Anvil's default block gas limit; a transaction may not ask for more.
ANVIL_BLOCK_GAS_LIMIT = 30_000_000


def _refused_kinds(base_fee: int) -> dict[str, tuple[dict[str, int], str, bool]]:
    """Transaction fields Anvil refuses, with the reason and permanence each must read as."""
    return {
        "fee below the base fee": (
            {"maxFeePerGas": base_fee // 2, "maxPriorityFeePerGas": 0},
            "fee_too_low",
            False,
        ),
        "gas below the intrinsic 21000": ({"gas": 20_000}, "gas_too_low", True),
        "gas above the block gas limit": (
            {"gas": ANVIL_BLOCK_GAS_LIMIT + 1},
            "gas_limit_too_high",
            True,
        ),
        "tip above the fee cap": (
            {"maxFeePerGas": 2 * base_fee, "maxPriorityFeePerGas": 2 * base_fee + 1},
            "tip_above_fee_cap",
            True,
        ),
        "another chain's id": ({"chainId": CHAIN_ID + 1}, "wrong_chain_id", True),
    }


def sign_refused(
    private_key: str, nonce: int, base_fee: int, kind: str, to: Address | None = None
) -> bytes:
    """A transaction of one of `_refused_kinds`, signed with eth_account (a Sluice signer would
    not sign most of them)."""
    fields, _, _ = _refused_kinds(base_fee)[kind]
    transaction: dict[str, int | str | bytes] = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": to or _fresh_address(),
        "value": 1,
        "data": b"",
        "gas": NATIVE_TRANSFER_GAS,
        "maxFeePerGas": 2 * base_fee + DEFAULT_PRIORITY_FEE,
        "maxPriorityFeePerGas": DEFAULT_PRIORITY_FEE,
        **fields,
    }
    return bytes(Account.from_key(private_key).sign_transaction(transaction).raw_transaction)


REFUSED_KINDS = list(_refused_kinds(10**9))


@pytest.mark.parametrize("kind", REFUSED_KINDS)
async def test_anvils_refusals_read_as_their_reason(client: EvmChainClient, kind: str) -> None:
    account = DEV_ACCOUNTS[1]
    market = await client.fee_market(blocks=1, percentiles=())
    nonce = await client.transaction_count(Address(account.address), pending=True)
    _, reason, permanent = _refused_kinds(market.base_fee)[kind]

    with pytest.raises(TransactionRefusedRpcError) as excinfo:
        await client.send_raw_transaction(
            sign_refused(account.private_key, nonce, market.base_fee, kind)
        )

    assert (excinfo.value.reason, excinfo.value.permanent) == (reason, permanent)
    assert excinfo.value.method == "eth_sendRawTransaction"
    assert "(" in str(excinfo.value)  # the node's own words, sanitised, follow the reason
    assert await client.transaction_count(Address(account.address), pending=True) == nonce


async def _set_code(anvil: AnvilProcess, code: str) -> Address:
    address = _fresh_address()
    async with AnvilControl(anvil.rpc_url) as control:
        await control.call("anvil_setCode", [address, code])
    return address


#: Runtime bytecode: REVERT(0, 0); the INVALID opcode (0xfe); ADD on an empty stack.
REVERTS = "0x60006000fd"
INVALID = "0xfe"
STACK_UNDERFLOW = "0x01"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (REVERTS, "execution_reverted"),
        (INVALID, "invalid_opcode"),
        (STACK_UNDERFLOW, "execution_halted"),
    ],
    ids=["revert", "invalid", "stack underflow"],
)
async def test_a_call_that_reverts_or_halts_is_the_calls_answer(
    anvil: AnvilProcess, client: EvmChainClient, code: str, reason: str
) -> None:
    contract = await _set_code(anvil, code)

    with pytest.raises(CallRevertedError) as estimated:
        await client.estimate_gas(Address(DEV_ACCOUNTS[1].address), contract, 0, b"")
    with pytest.raises(CallRevertedError) as called:
        await client.token_decimals(contract)  # eth_call

    assert estimated.value.reason == called.value.reason == reason
    assert estimated.value.code == "call_reverted"
    assert str(estimated.value).startswith(f"eth_estimateGas failed: {reason} (")


async def test_revert_data_is_kept(anvil: AnvilProcess, client: EvmChainClient) -> None:
    # MSTORE "boom" at 0, then REVERT(0, 4).
    contract = await _set_code(anvil, "0x7f" + b"boom".ljust(32, b"\0").hex() + "60005260046000fd")

    with pytest.raises(CallRevertedError) as excinfo:
        await client.estimate_gas(Address(DEV_ACCOUNTS[1].address), contract, 0, b"")

    assert excinfo.value.reason == "execution_reverted"
    assert excinfo.value.data == b"boom"


async def test_the_fee_market_is_the_next_blocks_base_fee(
    anvil: AnvilProcess, client: EvmChainClient
) -> None:
    async with AnvilControl(anvil.rpc_url) as control:
        history = await control.call("eth_feeHistory", ["0x1", "latest", []])

    market = await client.fee_market(blocks=1, percentiles=())

    assert market.base_fee == int(history["baseFeePerGas"][-1], 16)
    assert market.base_fee > 0
    assert market.priority_fee == DEFAULT_PRIORITY_FEE  # what Anvil suggests


def _all_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


async def test_a_secret_in_the_url_appears_nowhere(
    anvil: AnvilProcess, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk_live_FAKE0123456789SECRET"
    url = f"{anvil.rpc_url}/v3/{secret}?apiKey={secret}"
    caplog.set_level(logging.DEBUG)
    chain = EvmChainClient(url)
    try:
        with pytest.raises(ChainUnavailableError) as excinfo:
            await chain.chain_id()  # Anvil answers 404 off its root path
    finally:
        await chain.close()

    assert excinfo.value.code == "chain_unavailable"
    assert isinstance(excinfo.value, ChainRpcError)
    assert excinfo.value.reason == "http_404"
    assert chain.redacted_url == anvil.rpc_url
    for text in (_all_text(excinfo.value), repr(chain), str(chain.redacted_url), caplog.text):
        assert secret not in text


# ── unreachable and misbehaving nodes ─────────────────────────────────────────────────────────


Call = Callable[[EvmChainClient], Awaitable[object]]

ZERO_HASH = "0x" + "00" * 32
SOME_ADDRESS = DEV_ACCOUNTS[1].address

CALLS: dict[str, Call] = {
    "chain_id": lambda c: c.chain_id(),
    "block_number": lambda c: c.block_number(),
    "fee_market": lambda c: c.fee_market(blocks=1, percentiles=()),
    "estimate_gas": lambda c: c.estimate_gas(SOME_ADDRESS, SOME_ADDRESS, 1, b""),
    "code_size": lambda c: c.code_size(SOME_ADDRESS),
    "send_raw_transaction": lambda c: c.send_raw_transaction(b"\x02\x01"),
    "receipt": lambda c: c.receipt(ZERO_HASH),
    "is_known": lambda c: c.is_known(ZERO_HASH),
    "balance": lambda c: c.balance(SOME_ADDRESS),
    "gas_price": lambda c: c.gas_price(),
    "l1_fee": lambda c: c.l1_fee(SOME_ADDRESS, b"\x02\xc0"),
}


@pytest.mark.parametrize("call", list(CALLS.values()), ids=list(CALLS))
async def test_an_unreachable_node_is_chain_unavailable(call: Call) -> None:
    url = f"http://127.0.0.1:{free_port()}/rpc/unreachable-secret"
    chain = EvmChainClient(url, timeout_s=2.0)
    try:
        with pytest.raises(ChainUnavailableError) as excinfo:
            await call(chain)
    finally:
        await chain.close()

    assert isinstance(excinfo.value, ChainRpcError)
    assert excinfo.value.reason == "connection_failed"
    assert url not in _all_text(excinfo.value)
    assert "unreachable-secret" not in _all_text(excinfo.value)
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


Handler = Callable[[dict[str, object]], Awaitable[web.StreamResponse]]


@dataclass
class ScriptedNode:
    """A JSON-RPC server answering each method as a test scripted it."""

    url: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    params: dict[str, list[list[Any]]] = field(default_factory=dict)
    """The params of each request `answer` answered, by method."""

    def answer(self, method: str, result: object) -> None:
        async def handler(request: dict[str, object]) -> web.StreamResponse:
            params = request["params"]
            assert isinstance(params, list)
            self.params.setdefault(method, []).append(params)
            return web.json_response({"jsonrpc": "2.0", "id": request["id"], "result": result})

        self.handlers[method] = handler

    def refuse(self, method: str, message: str, code: int = -32000) -> None:
        async def handler(request: dict[str, object]) -> web.StreamResponse:
            error = {"code": code, "message": message}
            return web.json_response({"jsonrpc": "2.0", "id": request["id"], "error": error})

        self.handlers[method] = handler


@pytest.fixture
async def node() -> AsyncIterator[ScriptedNode]:
    port = free_port()
    scripted = ScriptedNode(url=f"http://127.0.0.1:{port}/key/scripted-secret")

    async def dispatch(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        handler = scripted.handlers.get(body["method"])
        if handler is None:
            raise web.HTTPNotImplemented
        return await handler(body)

    app = web.Application()
    app.router.add_post("/key/scripted-secret", dispatch)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield scripted
    scripted.release.set()
    await runner.cleanup()


@pytest.fixture
async def scripted_client(node: ScriptedNode) -> AsyncIterator[EvmChainClient]:
    # Answers must come within the timeout even on a loaded CI machine; the one test of a
    # timeout uses a client of its own with a short one.
    chain = EvmChainClient(node.url, timeout_s=5.0)
    yield chain
    await chain.close()


async def _reason(call: Awaitable[object], node: ScriptedNode) -> str:
    with pytest.raises(ChainRpcError) as excinfo:
        await call
    assert "scripted-secret" not in _all_text(excinfo.value)
    assert node.url not in _all_text(excinfo.value)
    return excinfo.value.reason


async def test_a_slow_node_times_out(node: ScriptedNode) -> None:
    async def stall(request: dict[str, object]) -> web.StreamResponse:
        await asyncio.wait_for(node.release.wait(), timeout=5)
        return web.json_response({"jsonrpc": "2.0", "id": request["id"], "result": "0x1"})

    node.handlers["eth_blockNumber"] = stall
    impatient = EvmChainClient(node.url, timeout_s=0.5)
    try:
        assert await _reason(impatient.block_number(), node) == "timeout"
    finally:
        await impatient.close()


async def test_http_errors_are_classified(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    async def unavailable(request: dict[str, object]) -> web.StreamResponse:
        return web.Response(status=503, text=f"upstream {node.url} is down")

    async def html(request: dict[str, object]) -> web.StreamResponse:
        return web.Response(status=200, text="<html>bad gateway</html>")

    node.handlers["eth_blockNumber"] = unavailable
    node.handlers["eth_chainId"] = html

    assert await _reason(scripted_client.block_number(), node) == "http_503"
    assert await _reason(scripted_client.chain_id(), node) == "malformed_response"


@pytest.mark.parametrize(
    "result", ["0xzz", "-0x1", "12", 12, None, "0x", "0x" + "f" * 65], ids=repr
)
async def test_malformed_quantities_are_chain_unavailable(
    node: ScriptedNode, scripted_client: EvmChainClient, result: object
) -> None:
    node.answer("eth_blockNumber", result)

    assert await _reason(scripted_client.block_number(), node) == "malformed_response"


def _receipt(**overrides: object) -> dict[str, object]:
    receipt: dict[str, object] = {
        "transactionHash": ZERO_HASH,
        "status": "0x1",
        "blockNumber": "0x10",
        "blockHash": "0x" + "cd" * 32,
        "gasUsed": "0x5208",
        "logs": [],
    }
    receipt.update(overrides)
    return receipt


TOKEN_ADDRESS = "0x5fbdb2315678afecb367f032d93f642f64180aa3"


def _log(**overrides: object) -> dict[str, object]:
    log: dict[str, object] = {
        "address": TOKEN_ADDRESS,
        "topics": [TRANSFER_TOPIC.upper().replace("0X", "0x"), "0x" + "00" * 12 + "11" * 20],
        "data": "0x" + "00" * 31 + "2a",
        "logIndex": "0x0",
    }
    log.update(overrides)
    return log


async def test_receipts_are_validated(node: ScriptedNode, scripted_client: EvmChainClient) -> None:
    node.answer("eth_getTransactionReceipt", _receipt(blockHash="0x" + "CD" * 32))
    assert await scripted_client.receipt(ZERO_HASH) == Receipt(
        transaction_hash=ZERO_HASH,
        succeeded=True,
        block_number=16,
        block_hash="0x" + "cd" * 32,
        gas_used=21_000,
        logs=(),
    )
    node.answer("eth_getTransactionReceipt", _receipt(blockNumber=None, blockHash=None))
    assert await scripted_client.receipt(ZERO_HASH) is None

    for bad in (
        _receipt(status="0x2"),
        _receipt(status=None),
        _receipt(transactionHash="0x" + "11" * 32),
        _receipt(blockNumber="-0x1"),
        _receipt(blockHash="0x1234"),
        _receipt(gasUsed=None),
        _receipt(effectiveGasPrice="-0x1"),
        _receipt(effectiveGasPrice=7),
        _receipt(l1Fee="0xzz"),
        _receipt(logs=None),
        _receipt(logs=["not a log"]),
        _receipt(logs=[_log(address="0x1234")]),
        _receipt(logs=[_log(address=None)]),
        _receipt(logs=[_log(topics="0x" + "ab" * 32)]),
        _receipt(logs=[_log(topics=["0x" + "ab" * 32] * 5)]),
        _receipt(logs=[_log(topics=["0xabcd"])]),
        _receipt(logs=[_log(data="0x123")]),
        _receipt(logs=[_log(data=None)]),
        ["not", "a", "receipt"],
    ):
        node.answer("eth_getTransactionReceipt", bad)
        assert await _reason(scripted_client.receipt(ZERO_HASH), node) == "malformed_response"


async def test_receipt_logs_are_parsed(node: ScriptedNode, scripted_client: EvmChainClient) -> None:
    anonymous = _log(topics=[], data="0x")
    node.answer("eth_getTransactionReceipt", _receipt(logs=[_log(), anonymous]))

    receipt = await scripted_client.receipt(ZERO_HASH)

    assert receipt is not None
    assert receipt.logs == (
        Log(
            address=Address("0x5FbDB2315678afecb367f032d93F642f64180aa3"),  # checksummed
            topics=(TRANSFER_TOPIC, "0x" + "00" * 12 + "11" * 20),  # lowercased
            data=(42).to_bytes(32, "big"),
        ),
        Log(address=Address("0x5FbDB2315678afecb367f032d93F642f64180aa3"), topics=(), data=b""),
    )


async def test_not_found_errors_mean_unknown(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.refuse("eth_getTransactionReceipt", "transaction not found")
    node.refuse("eth_getTransactionByHash", "Transaction not found")

    assert await scripted_client.receipt(ZERO_HASH) is None
    assert not await scripted_client.is_known(ZERO_HASH)


async def test_the_fee_market_falls_back_to_a_one_gwei_tip(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.refuse("eth_maxPriorityFeePerGas", "the method does not exist", code=-32601)
    node.answer("eth_feeHistory", {"oldestBlock": "0x5", "baseFeePerGas": [hex(6 * 10**9)] * 2})

    market = await scripted_client.fee_market(blocks=1, percentiles=())

    assert market == FeeMarket(base_fee=6 * 10**9, priority_fee=DEFAULT_PRIORITY_FEE)
    assert FeePolicy().price(market) == Fees(
        max_fee_per_gas=projected_base_fee(6 * 10**9, 6) + DEFAULT_PRIORITY_FEE,
        max_priority_fee_per_gas=DEFAULT_PRIORITY_FEE,
    )


async def test_the_fee_market_takes_the_last_base_fee_of_the_fee_history(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    # What Hardhat answers after an empty block: the next block's base fee is lower.
    history = {"oldestBlock": "0x0", "baseFeePerGas": ["0x3b9aca00", "0x342770c0"]}
    node.answer("eth_feeHistory", history)
    node.answer("eth_maxPriorityFeePerGas", hex(2 * 10**9))

    assert await scripted_client.fee_market(blocks=1, percentiles=()) == FeeMarket(
        base_fee=875_000_000, priority_fee=2 * 10**9
    )


async def test_without_fee_history_the_fee_market_reads_the_latest_block(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.refuse("eth_feeHistory", "the method eth_feeHistory does not exist", code=-32601)
    node.refuse("eth_maxPriorityFeePerGas", "the method does not exist", code=-32601)
    node.answer("eth_getBlockByNumber", {"number": "0x5", "baseFeePerGas": hex(7 * 10**9)})

    assert await scripted_client.fee_market(blocks=1, percentiles=()) == FeeMarket(
        base_fee=7 * 10**9, priority_fee=DEFAULT_PRIORITY_FEE
    )
    node.answer("eth_feeHistory", None)
    assert (await scripted_client.fee_market(blocks=1, percentiles=())).base_fee == 7 * 10**9
    node.answer("eth_getBlockByNumber", {"number": "0x5"})  # a chain without EIP-1559
    assert (
        await _reason(scripted_client.fee_market(blocks=1, percentiles=()), node) == "no_base_fee"
    )


@pytest.mark.parametrize(
    "history",
    [
        [],
        {"baseFeePerGas": []},
        {"baseFeePerGas": "0x1"},
        {"baseFeePerGas": ["0x1", "-0x1"]},
        {"oldestBlock": "0x0"},
    ],
    ids=repr,
)
async def test_a_malformed_fee_history_is_malformed(
    node: ScriptedNode, scripted_client: EvmChainClient, history: object
) -> None:
    node.answer("eth_feeHistory", history)
    node.answer("eth_maxPriorityFeePerGas", "0x1")

    assert (
        await _reason(scripted_client.fee_market(blocks=1, percentiles=()), node)
        == "malformed_response"
    )


GWEI = 10**9


async def test_the_fee_history_asked_for_is_one_call(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.answer("eth_maxPriorityFeePerGas", hex(GWEI))
    node.answer("eth_feeHistory", {"baseFeePerGas": ["0x1"] * 21, "reward": [["0x1"] * 3] * 20})

    await scripted_client.fee_market(blocks=20, percentiles=(10, 50, 85))

    assert node.params["eth_feeHistory"] == [["0x14", "latest", [10, 50, 85]]]


async def test_rewards_are_averaged_over_the_blocks_that_paid_any(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.answer("eth_maxPriorityFeePerGas", hex(2 * GWEI))
    history = {
        "oldestBlock": "0x10",
        "baseFeePerGas": [hex(10 * GWEI), hex(11 * GWEI), hex(12 * GWEI), hex(13 * GWEI)],
        "gasUsedRatio": [0.5, 0.0, 0.9],
        "reward": [
            [hex(1 * GWEI), hex(2 * GWEI), hex(4 * GWEI)],
            ["0x0", "0x0", "0x0"],  # an empty block: left out
            [hex(2 * GWEI), hex(3 * GWEI), hex(4 * GWEI + 1)],
        ],
    }
    node.answer("eth_feeHistory", history)

    market = await scripted_client.fee_market(blocks=3, percentiles=(10, 50, 85))

    # (1 + 2) / 2, (2 + 3) / 2, (8 + 1 wei) / 2: integers, rounded up.
    assert market == FeeMarket(
        base_fee=13 * GWEI,
        priority_fee=2 * GWEI,
        rewards=(-(-3 * GWEI // 2), -(-5 * GWEI // 2), 4 * GWEI + 1),
    )
    assert all(isinstance(r, int) for r in market.rewards)


@pytest.mark.parametrize(
    ("reward", "rewards"),
    [
        (None, ()),
        ([["0x0", "0x0"], ["0x0", "0x0"]], (0, 0)),  # only empty blocks
        ([], (0, 0)),
        ([["0x0", "0x5"], ["0x3", "0x0"]], (2, 3)),  # any nonzero reward: not an empty block
    ],
    ids=["no reward", "empty blocks", "no blocks", "partly zero"],
)
async def test_rewards_without_paying_blocks(
    node: ScriptedNode,
    scripted_client: EvmChainClient,
    reward: object,
    rewards: tuple[int, ...],
) -> None:
    node.answer("eth_maxPriorityFeePerGas", "0x1")
    history: dict[str, object] = {"baseFeePerGas": ["0x7"] * 3}
    if reward is not None:
        history["reward"] = reward
    node.answer("eth_feeHistory", history)

    market = await scripted_client.fee_market(blocks=2, percentiles=(20, 80))

    assert market.rewards == rewards


async def test_rewards_not_asked_for_are_none(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.answer("eth_maxPriorityFeePerGas", "0x1")
    node.answer("eth_feeHistory", {"baseFeePerGas": ["0x7"] * 2, "reward": [[]]})

    assert (await scripted_client.fee_market(blocks=1, percentiles=())).rewards == ()


async def test_without_fee_history_there_are_no_rewards(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.refuse("eth_feeHistory", "the method eth_feeHistory does not exist", code=-32601)
    node.answer("eth_maxPriorityFeePerGas", "0x1")
    node.answer("eth_getBlockByNumber", {"number": "0x5", "baseFeePerGas": hex(7 * GWEI)})

    market = await scripted_client.fee_market(blocks=5, percentiles=(10, 50, 85))

    assert market == FeeMarket(base_fee=7 * GWEI, priority_fee=1)


@pytest.mark.parametrize(
    "reward",
    [
        "0x1",
        [["0x1"]],  # one reward where two percentiles were asked for
        [["0x1", "0x2", "0x3"]],
        [["0x1", "-0x2"]],
        [["0x1", 2]],
        ["0x1"],
        [["0x1", "0x2"]] * 3,  # more blocks than asked for
    ],
    ids=repr,
)
async def test_malformed_rewards_are_malformed(
    node: ScriptedNode, scripted_client: EvmChainClient, reward: object
) -> None:
    node.answer("eth_maxPriorityFeePerGas", "0x1")
    node.answer("eth_feeHistory", {"baseFeePerGas": ["0x7"] * 3, "reward": reward})

    call = scripted_client.fee_market(blocks=2, percentiles=(20, 80))
    assert await _reason(call, node) == "malformed_response"


@pytest.mark.parametrize(
    ("blocks", "percentiles"),
    [(0, (50,)), (1025, (50,)), (5, (50, 10)), (5, (-1,)), (5, (101,))],
)
async def test_a_fee_history_request_out_of_range_is_refused(
    scripted_client: EvmChainClient, blocks: int, percentiles: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError, match=r"fee history spans|reward percentiles"):
        await scripted_client.fee_market(blocks=blocks, percentiles=percentiles)


async def test_the_gas_price_is_the_nodes(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.answer("eth_gasPrice", hex(3 * GWEI))
    assert await scripted_client.gas_price() == 3 * GWEI

    node.answer("eth_gasPrice", "3 gwei")
    assert await _reason(scripted_client.gas_price(), node) == "malformed_response"


#: OP Stack (Ecotone) receipt fields as op-geth answers them, from a recorded receipt: a
#: type-2 transaction of 0x215ec gas at 0xf4241 wei, and an L1 data fee of 0x4ab5901 wei.
#: (MegaETH's RPC documentation, eth_getTransactionReceipt; its logs are left out here.)
OP_STACK_RECEIPT: dict[str, object] = {
    "type": "0x2",
    "status": "0x1",
    "cumulativeGasUsed": "0x2736ca",
    "logs": [],
    "transactionHash": "0xf3473347041eb4ccc045ee58e6c79c80d98ee4aa783d49e49c69d0a0e50d8ed6",
    "transactionIndex": "0x9",
    "blockHash": "0xf773491fd24617452b30c3ed626bf440b5846b9c818ec7d8d7f71c9a02993c8b",
    "blockNumber": "0xb120c6",
    "gasUsed": "0x215ec",
    "effectiveGasPrice": "0xf4241",
    "from": "0xa344fb2d117501ee379d2ea9c0c016959ad94f1e",
    "to": "0x5e3ae52eba0f9740364bd5dd39738e1336086a8b",
    "contractAddress": None,
    "l1GasPrice": "0x2221ebf",
    "l1GasUsed": "0x640",
    "l1Fee": "0x4ab5901",
    "l1BaseFeeScalar": "0x558",
    "l1BlobBaseFee": "0x1d64ab8f44912",
    "l1BlobBaseFeeScalar": "0x0",
}


async def test_an_op_stack_receipt_carries_its_l1_fee(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    tx_hash = str(OP_STACK_RECEIPT["transactionHash"])
    node.answer("eth_getTransactionReceipt", OP_STACK_RECEIPT)

    receipt = await scripted_client.receipt(tx_hash)

    assert receipt is not None
    assert (receipt.gas_used, receipt.effective_gas_price) == (0x215EC, 0xF4241)
    assert receipt.l1_fee == 0x4AB5901
    assert receipt.fee_paid == 0x215EC * 0xF4241 + 0x4AB5901 == 136_762_474_989


async def test_a_receipt_without_fee_fields_paid_nothing_it_says(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.answer("eth_getTransactionReceipt", _receipt(effectiveGasPrice=hex(3 * GWEI)))
    receipt = await scripted_client.receipt(ZERO_HASH)
    assert receipt is not None
    assert (receipt.effective_gas_price, receipt.l1_fee) == (3 * GWEI, 0)
    assert receipt.fee_paid == 21_000 * 3 * GWEI

    node.answer("eth_getTransactionReceipt", _receipt(l1Fee=None))  # a deposit, say
    receipt = await scripted_client.receipt(ZERO_HASH)
    assert receipt is not None
    assert (receipt.effective_gas_price, receipt.l1_fee, receipt.fee_paid) == (0, 0, 0)


async def test_the_l1_fee_is_get_l1_fee_of_the_unsigned_transaction(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    oracle = Address("0x420000000000000000000000000000000000000F")
    node.answer("eth_call", "0x" + (41_000_000).to_bytes(32, "big").hex())
    unsigned = b"\x02" + b"\xab" * 40

    assert await scripted_client.l1_fee(oracle, unsigned) == 41_000_000

    ((call, block),) = node.params["eth_call"]
    assert block == "latest"
    assert call == {
        "to": oracle,
        "data": "0x49948e0e"  # getL1Fee(bytes)
        + (32).to_bytes(32, "big").hex()  # the offset of the argument
        + (41).to_bytes(32, "big").hex()  # its length
        + (unsigned + b"\0" * 23).hex(),  # its bytes, padded to whole words
    }


@pytest.mark.parametrize("answer", ["0x", "0x" + "00" * 31, "0x" + "00" * 64, None], ids=repr)
async def test_an_l1_fee_that_is_not_one_word_is_malformed(
    node: ScriptedNode, scripted_client: EvmChainClient, answer: object
) -> None:
    node.answer("eth_call", answer)

    call = scripted_client.l1_fee(Address(SOME_ADDRESS), b"\x02\xc0")
    assert await _reason(call, node) == "malformed_response"


async def test_a_reverted_l1_fee_call_is_the_calls_answer(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.refuse("eth_call", "execution reverted", code=3)

    with pytest.raises(CallRevertedError):
        await scripted_client.l1_fee(Address(SOME_ADDRESS), b"\x02\xc0")


@pytest.mark.parametrize(
    ("message", "note"),
    [
        ("already known", "already_known"),
        ("AlreadyKnown", "already_known"),
        ("Known transaction (5fe1b6)", "already_known"),
        ("Transaction with the same hash was already imported.", "already_known"),
        ("nonce too low: address 0xabc, tx: 1 state: 2", "nonce_too_low"),
        ("NONCE_TOO_LOW", "nonce_too_low"),
        ("OldNonce", "nonce_too_low"),
        ("replacement transaction underpriced", "replacement_underpriced"),
    ],
)
async def test_send_refusals_meaning_already_sent_are_accepted(
    node: ScriptedNode, scripted_client: EvmChainClient, message: str, note: str
) -> None:
    node.refuse("eth_sendRawTransaction", message)

    result = await scripted_client.send_raw_transaction(b"\x02\xc0")

    assert result.accepted
    assert result.note == note


@pytest.mark.parametrize(
    ("message", "code", "expected"),
    [
        ("insufficient funds for gas * price + value", -32000, ("insufficient_funds", False)),
        ("max fee per gas less than block base fee", -32000, ("fee_too_low", False)),
        ("transaction underpriced", -32000, ("underpriced", False)),
        ("unknown transaction type", -32000, ("type_not_supported", True)),
        ("intrinsic gas too low", -32000, ("gas_too_low", True)),
        ("Wrong chainId", -32000, ("wrong_chain_id", True)),
        ("Transaction gas limit exceeds block gas limit", -32005, ("gas_limit_too_high", True)),
        ("txpool is full", -32003, ("pool_full", False)),
        ("something no client says", -32000, ("rejected", False)),
        ("", -32603, ("rejected", False)),
    ],
)
async def test_any_other_error_answer_to_a_send_is_a_refusal(
    node: ScriptedNode,
    scripted_client: EvmChainClient,
    message: str,
    code: int,
    expected: tuple[str, bool],
) -> None:
    node.refuse("eth_sendRawTransaction", message, code=code)

    with pytest.raises(TransactionRefusedRpcError) as excinfo:
        await scripted_client.send_raw_transaction(b"\x02\xc0")

    assert (excinfo.value.reason, excinfo.value.permanent) == expected
    assert "scripted-secret" not in _all_text(excinfo.value)


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        ("daily request count exceeded, request rate limited", -32005, "rate_limited"),
        ("Initial sync is still in progress", -32008, "node_syncing"),
        (
            "the method eth_sendRawTransaction does not exist/is not available",
            -32601,
            "method_unavailable",
        ),
    ],
)
async def test_an_error_answer_about_the_provider_is_no_refusal(
    node: ScriptedNode, scripted_client: EvmChainClient, message: str, code: int, reason: str
) -> None:
    node.refuse("eth_sendRawTransaction", message, code=code)

    with pytest.raises(ChainRpcError) as excinfo:
        await scripted_client.send_raw_transaction(b"\x02\xc0")

    assert excinfo.value.reason == reason
    assert not isinstance(excinfo.value, TransactionRefusedError)


async def test_other_error_answers_to_an_estimate_are_not_reverts(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.refuse("eth_estimateGas", "insufficient funds for transfer")
    assert await _reason(
        scripted_client.estimate_gas(SOME_ADDRESS, SOME_ADDRESS, 1, b""), node
    ) == ("insufficient_funds")
    node.refuse("eth_estimateGas", "header not found")
    assert await _reason(
        scripted_client.estimate_gas(SOME_ADDRESS, SOME_ADDRESS, 1, b""), node
    ) == ("rpc_error")
    node.refuse("eth_estimateGas", "execution reverted: rate limit", code=3)
    with pytest.raises(CallRevertedError):
        await scripted_client.estimate_gas(SOME_ADDRESS, SOME_ADDRESS, 1, b"")


async def test_node_error_text_is_sanitised_and_bounded(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    message = (
        f"refused by {node.url}; see https://status.example.com/incidents?key=abc "
        "or rpc.example.org/v2/other-key\n\x1b[31m" + "x" * 500
    )
    node.refuse("eth_sendRawTransaction", message)

    with pytest.raises(ChainRpcError) as excinfo:
        await scripted_client.send_raw_transaction(b"\x02\xc0")

    text = str(excinfo.value)
    assert excinfo.value.reason == "rejected"
    assert "scripted-secret" not in text
    assert "status.example.com" not in text
    assert "other-key" not in text
    assert "\x1b" not in text
    assert "\n" not in text
    assert len(text) < 250


async def test_a_send_answered_with_the_wrong_hash_is_malformed(
    node: ScriptedNode, scripted_client: EvmChainClient
) -> None:
    node.answer("eth_sendRawTransaction", ZERO_HASH)

    assert await _reason(scripted_client.send_raw_transaction(b"\x02\xc0"), node) == (
        "malformed_response"
    )


def test_the_url_must_be_http_with_a_host() -> None:
    for url in ("ftp://example.com/k", "http:///no-host", "not a url", "http://host:99999/x"):
        with pytest.raises(ConfigurationError) as excinfo:
            EvmChainClient(url)
        assert url not in str(excinfo.value)


# ── against the pinned Hardhat ────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def hardhat_url() -> Iterator[str]:
    """A Hardhat node (sluice.testing.hardhat) for this module, skipped if it cannot run."""
    hardhat: Any = pytest.importorskip("sluice.testing.hardhat")
    if not hardhat.hardhat_installed():
        pytest.skip("the pinned hardhat or Node.js is not installed: run `make tools`")
    with hardhat.HardhatProcess() as process:
        yield str(process.rpc_url)


@pytest.fixture
async def hardhat_client(hardhat_url: str) -> AsyncIterator[EvmChainClient]:
    chain = EvmChainClient(hardhat_url, timeout_s=30.0)
    yield chain
    await chain.close()


#: What Hardhat refuses (it caps a transaction's gas at 2^24, EIP-7825, below its block's).
HARDHAT_REFUSED: dict[str, tuple[dict[str, int], str, bool]] = {
    "fee below the base fee": (
        {"maxFeePerGas": 1, "maxPriorityFeePerGas": 0},
        "fee_too_low",
        False,
    ),
    "gas below the intrinsic 21000": ({"gas": 20_000}, "gas_too_low", True),
    "gas above the transaction gas cap": ({"gas": 2**24 + 1}, "gas_limit_too_high", True),
    "tip above the fee cap": (
        {"maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 2 * 10**9 + 1},
        "tip_above_fee_cap",
        True,
    ),
    "another chain's id": ({"chainId": CHAIN_ID + 1}, "wrong_chain_id", True),
    "a nonce gap": ({"nonce": 1_000}, "nonce_too_high", False),
}


@pytest.mark.parametrize("kind", list(HARDHAT_REFUSED))
async def test_hardhats_refusals_read_as_their_reason(
    hardhat_client: EvmChainClient, kind: str
) -> None:
    account = Account.from_key(DEV_ACCOUNTS[1].private_key)
    fields, reason, permanent = HARDHAT_REFUSED[kind]
    market = await hardhat_client.fee_market(blocks=1, percentiles=())
    transaction = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": await hardhat_client.transaction_count(Address(account.address), pending=True),
        "to": _fresh_address(),
        "value": 1,
        "gas": NATIVE_TRANSFER_GAS,
        "maxFeePerGas": 2 * market.base_fee + DEFAULT_PRIORITY_FEE,
        "maxPriorityFeePerGas": DEFAULT_PRIORITY_FEE,
        **fields,
    }
    raw = bytes(account.sign_transaction(transaction).raw_transaction)

    with pytest.raises(TransactionRefusedRpcError) as excinfo:
        await hardhat_client.send_raw_transaction(raw)

    assert (excinfo.value.reason, excinfo.value.permanent) == (reason, permanent)


async def test_hardhats_insufficient_funds_is_a_refusal(hardhat_client: EvmChainClient) -> None:
    broke = Account.create()
    market = await hardhat_client.fee_market(blocks=1, percentiles=())
    raw = broke.sign_transaction(
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": 0,
            "to": _fresh_address(),
            "value": 1,
            "gas": NATIVE_TRANSFER_GAS,
            "maxFeePerGas": 2 * market.base_fee + DEFAULT_PRIORITY_FEE,
            "maxPriorityFeePerGas": DEFAULT_PRIORITY_FEE,
        }
    ).raw_transaction

    with pytest.raises(TransactionRefusedRpcError) as excinfo:
        await hardhat_client.send_raw_transaction(bytes(raw))

    assert (excinfo.value.reason, excinfo.value.permanent) == ("insufficient_funds", False)


@pytest.mark.parametrize(
    ("code", "reason"),
    [(REVERTS, "execution_reverted"), (INVALID, "invalid_opcode")],
    ids=["revert", "invalid"],
)
async def test_hardhats_reverted_calls_are_the_calls_answer(
    hardhat_url: str, hardhat_client: EvmChainClient, code: str, reason: str
) -> None:
    contract = _fresh_address()
    async with AnvilControl(hardhat_url) as control:
        await control.call("hardhat_setCode", [contract, code])

    with pytest.raises(CallRevertedError) as estimated:
        await hardhat_client.estimate_gas(Address(DEV_ACCOUNTS[1].address), contract, 0, b"")
    with pytest.raises(CallRevertedError) as called:
        await hardhat_client.token_decimals(contract)

    assert estimated.value.reason == called.value.reason == reason


async def test_hardhats_fee_market_is_the_next_blocks_base_fee(
    hardhat_url: str, hardhat_client: EvmChainClient
) -> None:
    async with AnvilControl(hardhat_url) as control:
        history = await control.call("eth_feeHistory", ["0x1", "latest", []])
        latest = await control.call("eth_getBlockByNumber", ["latest", False])

    market = await hardhat_client.fee_market(blocks=1, percentiles=())

    assert market.base_fee == int(history["baseFeePerGas"][-1], 16)
    # After an empty block the base fee falls: the next block's is not the latest block's.
    if int(latest["gasUsed"], 16) == 0:
        assert market.base_fee < int(latest["baseFeePerGas"], 16)
