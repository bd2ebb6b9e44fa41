"""`FailoverChainClient` over real HTTP: a dead provider with an API key in its URL, then Anvil;
and two providers of one Anvil, neither benched by the chain's answers (refusals, reverts)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import traceback
from collections.abc import AsyncIterator

import pytest
from eth_account import Account
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from sluice.chains.evm import DEFAULT_PRIORITY_FEE, EvmChainClient
from sluice.chains.failover import FailoverChainClient, RpcProvider
from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess, free_port
from sluice.domain.addresses import Address
from sluice.domain.fees import FeePolicy
from sluice.domain.transaction import NATIVE_TRANSFER_GAS, UnsignedTransaction
from sluice.errors import (
    CallRevertedError,
    ChainUnavailableError,
    ConfigurationError,
    TransactionRefusedError,
)
from sluice.ports import ChainClient, SendResult
from sluice.signers.keystore import KeystoreSigner
from sluice.testing.anvil_control import AnvilControl

SECRET = "SECRETKEY"
CHAIN_ID = 31337
RECEIPT_TIMEOUT_S = 10.0


def _dead_url() -> str:
    """A closed port on localhost, with a provider-style API key in the path."""
    return f"http://127.0.0.1:{free_port()}/v3/{SECRET}"


def _no_secret_in(error: BaseException) -> None:
    text = "".join(traceback.format_exception(error))
    assert SECRET not in text
    assert SECRET not in repr(error)


async def test_calls_go_through_anvil_and_the_dead_providers_key_is_never_shown(
    anvil: AnvilProcess, caplog: pytest.LogCaptureFixture
) -> None:
    dead = _dead_url()
    client: ChainClient = FailoverChainClient.from_urls(
        [dead, anvil.rpc_url], network="devnet", expected_chain_id=CHAIN_ID
    )
    assert isinstance(client, FailoverChainClient)
    assert SECRET not in repr(client)
    signer = KeystoreSigner(Account.from_key(DEV_ACCOUNTS[1].private_key))
    recipient = Address(Account.create().address)
    caplog.set_level(logging.DEBUG)
    try:
        with capture_logs() as logs:
            assert await client.chain_id() == CHAIN_ID
            assert await client.block_number() >= 0
            assert await client.balance(signer.address) > 0
            signed = await signer.sign(
                UnsignedTransaction(
                    chain_id=CHAIN_ID,
                    nonce=await client.transaction_count(signer.address, pending=True),
                    to=recipient,
                    value=12_345,
                    data=b"",
                    gas=NATIVE_TRANSFER_GAS,
                    fees=FeePolicy().price(await client.fee_market(blocks=1, percentiles=())),
                )
            )
            result = await client.send_raw_transaction(signed.raw)
            assert result.accepted
            deadline = asyncio.get_running_loop().time() + RECEIPT_TIMEOUT_S
            while (receipt := await client.receipt(signed.hash)) is None:
                assert asyncio.get_running_loop().time() < deadline, "no receipt in time"
                await asyncio.sleep(0.05)
            assert receipt.succeeded
            assert await client.balance(recipient) == 12_345
    finally:
        await client.close()

    benched = [e for e in logs if e["event"] == "rpc provider benched"]
    assert benched
    assert benched[0]["provider"] == dead.split("/v3/")[0]
    assert benched[0]["reason"] == "connection_failed"
    assert SECRET not in str(logs)
    assert SECRET not in caplog.text


async def test_when_no_provider_answers_the_error_shows_no_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = FailoverChainClient.from_urls(
        [_dead_url(), _dead_url()], network="devnet", timeout_s=2.0
    )
    caplog.set_level(logging.DEBUG)
    try:
        with capture_logs() as logs:
            for _ in range(2):  # the second time, every provider is benched
                with pytest.raises(ChainUnavailableError) as caught:
                    await client.fee_market(blocks=1, percentiles=())
                _no_secret_in(caught.value)
    finally:
        await client.close()

    assert len([e for e in logs if e["event"] == "rpc provider benched"]) >= 2
    assert SECRET not in str(logs)
    assert SECRET not in caplog.text


def test_a_malformed_url_is_reported_by_position_only() -> None:
    with pytest.raises(ConfigurationError) as caught:
        FailoverChainClient.from_urls(
            [f"http://127.0.0.1:1/v3/{SECRET}", f"ftp://node.example/{SECRET}"], network="devnet"
        )
    assert "#2" in str(caught.value)
    _no_secret_in(caught.value)


# ── the chain's answers bench nothing ─────────────────────────────────────────────────────────


class CountingClient(EvmChainClient):
    """An `EvmChainClient` that counts the sends and estimates it was asked for."""

    def __init__(self, rpc_url: str) -> None:
        super().__init__(rpc_url)
        self.sends = 0
        self.estimates = 0

    async def send_raw_transaction(self, raw: bytes) -> SendResult:
        self.sends += 1
        return await super().send_raw_transaction(raw)

    async def estimate_gas(self, sender: Address, to: Address, value: int, data: bytes) -> int:
        self.estimates += 1
        return await super().estimate_gas(sender, to, value, data)


_networks = itertools.count()
FIRST = "http://first.example"
SECOND = "http://second.example"


@pytest.fixture
async def pair(
    anvil: AnvilProcess,
) -> AsyncIterator[tuple[FailoverChainClient, str, list[CountingClient]]]:
    """Two providers of the one Anvil, and the network's metric label."""
    clients = [CountingClient(anvil.rpc_url), CountingClient(anvil.rpc_url)]
    network = f"devnet-{next(_networks)}"
    failover = FailoverChainClient(
        [RpcProvider(FIRST, clients[0]), RpcProvider(SECOND, clients[1])],
        network=network,
        expected_chain_id=CHAIN_ID,
    )
    yield failover, network, clients
    await failover.close()


def _benched(network: str) -> float:
    """How often any provider of ``network`` was benched, for any reason."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "sluice_rpc_failovers"
        for sample in metric.samples
        if sample.name == "sluice_rpc_failovers_total" and sample.labels["network"] == network
    )


#: What Anvil refuses: transaction fields over a plain transfer, and the reason it reads as.
REFUSED: dict[str, tuple[dict[str, int], str]] = {
    "insufficient funds": ({}, "insufficient_funds"),
    "fee below the base fee": ({"maxFeePerGas": 1, "maxPriorityFeePerGas": 0}, "fee_too_low"),
    "gas 20000": ({"gas": 20_000}, "gas_too_low"),
    "gas above the block gas limit": ({"gas": 30_000_001}, "gas_limit_too_high"),
    "tip above the fee cap": (
        {"maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 2 * 10**9 + 1},
        "tip_above_fee_cap",
    ),
    "another chain's id": ({"chainId": CHAIN_ID + 1}, "wrong_chain_id"),
}


@pytest.mark.parametrize("kind", list(REFUSED))
async def test_a_refused_send_benches_neither_provider(
    pair: tuple[FailoverChainClient, str, list[CountingClient]], kind: str
) -> None:
    client, network, (first, second) = pair
    fields, reason = REFUSED[kind]
    # The broke account has nothing; the funded one refuses only for its fields.
    account = (
        Account.create()
        if kind == "insufficient funds"
        else Account.from_key(DEV_ACCOUNTS[1].private_key)
    )
    market = await client.fee_market(blocks=1, percentiles=())
    transaction = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": await client.transaction_count(Address(account.address), pending=True),
        "to": Account.create().address,
        "value": 1,
        "gas": NATIVE_TRANSFER_GAS,
        "maxFeePerGas": 2 * market.base_fee + DEFAULT_PRIORITY_FEE,
        "maxPriorityFeePerGas": DEFAULT_PRIORITY_FEE,
        **fields,
    }
    raw = bytes(account.sign_transaction(transaction).raw_transaction)

    with capture_logs() as logs, pytest.raises(TransactionRefusedError) as caught:
        await client.send_raw_transaction(raw)

    assert caught.value.reason == reason
    assert (first.sends, second.sends) == (1, 0)  # not tried on the next provider
    assert not [e for e in logs if e["event"] == "rpc provider benched"]
    assert _benched(network) == 0.0
    assert await client.block_number() >= 0  # the first provider still answers


#: Runtime bytecode: REVERT(0, 0), and the INVALID opcode.
@pytest.mark.parametrize(
    ("code", "reason"), [("0x60006000fd", "execution_reverted"), ("0xfe", "invalid_opcode")]
)
async def test_a_reverted_estimate_benches_neither_provider(
    anvil: AnvilProcess,
    pair: tuple[FailoverChainClient, str, list[CountingClient]],
    code: str,
    reason: str,
) -> None:
    client, network, (first, second) = pair
    contract = Address(Account.create().address)
    async with AnvilControl(anvil.rpc_url) as control:
        await control.call("anvil_setCode", [contract, code])

    with capture_logs() as logs, pytest.raises(CallRevertedError) as caught:
        await client.estimate_gas(Address(DEV_ACCOUNTS[1].address), contract, 0, b"")

    assert caught.value.reason == reason
    assert (first.estimates, second.estimates) == (1, 0)
    assert not [e for e in logs if e["event"] == "rpc provider benched"]
    assert _benched(network) == 0.0
