"""`FailoverChainClient` over real HTTP: a dead provider with an API key in its URL, then Anvil."""

from __future__ import annotations

import asyncio
import logging
import traceback

import pytest
from eth_account import Account
from structlog.testing import capture_logs

from sluice.chains.failover import FailoverChainClient
from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess, free_port
from sluice.domain.addresses import Address
from sluice.domain.transaction import NATIVE_TRANSFER_GAS, UnsignedTransaction
from sluice.errors import ChainUnavailableError, ConfigurationError
from sluice.ports import ChainClient
from sluice.signers.keystore import KeystoreSigner

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
                    fees=await client.fees(),
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
                    await client.fees()
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
