"""`sluice.chains.batch_contract`: the packaged artifact, the payloads, the verification of a
configured contract and the set-up of one, on a `FakeChain`; and the batching table
`sluice contracts deploy` prints."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from sluice.chains.batch_contract import (
    ENOUGH_ALLOWANCE,
    MAX_ALLOWANCE,
    OWNER_SELECTOR,
    RUNTIME_CODE_HASH,
    BatchContractError,
    approve_payload,
    artifact,
    created_address,
    creation_payload,
    set_up_batch_contract,
    verify_batch_contract,
)
from sluice.cli.contracts import batching_table
from sluice.config import BatchingConfig, NetworkConfig
from sluice.devnet.anvil import DEV_ACCOUNTS
from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Network
from sluice.domain.fees import FeeModel, FeePolicy
from sluice.testing.fakes import FakeChain, LocalSigner

ROOT = Path(__file__).resolve().parents[3]
SIGNER = LocalSigner(DEV_ACCOUNTS[1].private_key)
WALLET = SIGNER.address
OTHER = Address(Account.create().address)
CONTRACT = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
TOKEN = Address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")


def _owner_word(owner: Address) -> bytes:
    return bytes.fromhex(owner[2:]).rjust(32, b"\0")


def _batch_payout_at(chain: FakeChain, contract: Address, owner: Address) -> None:
    chain.codes[contract] = artifact().deployed_bytecode
    chain.call_answers[(contract, OWNER_SELECTOR)] = _owner_word(owner)


def _network(*, tokens: bool = True, model: FeeModel = FeeModel.EIP1559) -> Network:
    token = Asset("devnet", "DEMO", 18, token_address=TOKEN)
    return Network(
        name="devnet",
        chain_id=31337,
        native=Asset("devnet", "ETH", 18),
        tokens=(token,) if tokens else (),
        poll_interval_s=0.01,
        fees=FeePolicy(model=model),
    )


# ── The artifact and the payloads ─────────────────────────────────────────────────────────────


def test_the_packaged_artifact_is_the_built_one_and_its_runtime_code_hash_is_known() -> None:
    built = json.loads((ROOT / "contracts" / "BatchPayout.json").read_text(encoding="utf-8"))

    assert creation_payload() == bytes.fromhex(built["bytecode"][2:])
    assert keccak(bytes.fromhex(built["deployedBytecode"][2:])) == RUNTIME_CODE_HASH


def test_the_created_address_follows_the_sender_and_its_nonce() -> None:
    # Anvil's first account deploys its first contract at this well-known address.
    deployer = Address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")

    assert created_address(deployer, 0) == Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
    assert created_address(deployer, 1) == Address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")


def test_an_approval_is_the_erc20_call_with_the_spender_and_the_amount() -> None:
    data = approve_payload(CONTRACT)

    assert data[:4] == keccak(b"approve(address,uint256)")[:4]
    assert data[4:36] == _owner_word(CONTRACT)
    assert int.from_bytes(data[36:], "big") == MAX_ALLOWANCE == 2**256 - 1
    assert int.from_bytes(approve_payload(CONTRACT, 0)[36:], "big") == 0
    with pytest.raises(ValueError, match="uint256"):
        approve_payload(CONTRACT, 2**256)


# ── Verification ──────────────────────────────────────────────────────────────────────────────


async def test_a_batch_payout_owned_by_the_wallet_verifies() -> None:
    chain = FakeChain()
    _batch_payout_at(chain, CONTRACT, WALLET)

    assert await verify_batch_contract(chain, CONTRACT, WALLET) is None
    # The owner in another case is the same owner.
    assert await verify_batch_contract(chain, CONTRACT, Address(WALLET.lower())) is None


async def test_an_address_without_code_does_not_verify() -> None:
    reason = await verify_batch_contract(FakeChain(), CONTRACT, WALLET)

    assert reason == f"batch contract {CONTRACT} of hot wallet {WALLET} has no code on this chain"


async def test_other_code_does_not_verify_and_both_hashes_are_named() -> None:
    chain = FakeChain()
    chain.codes[CONTRACT] = b"\x60\x00"

    reason = await verify_batch_contract(chain, CONTRACT, WALLET)

    assert reason is not None
    assert "is not a BatchPayout" in reason
    assert keccak(b"\x60\x00").hex() in reason
    assert RUNTIME_CODE_HASH.hex() in reason


async def test_a_batch_payout_of_another_owner_does_not_verify() -> None:
    chain = FakeChain()
    _batch_payout_at(chain, CONTRACT, OTHER)

    reason = await verify_batch_contract(chain, CONTRACT, WALLET)

    assert reason == f"batch contract {CONTRACT} is owned by {OTHER}, not by hot wallet {WALLET}"


# ── Set-up ────────────────────────────────────────────────────────────────────────────────────


async def test_a_configured_contract_that_verifies_and_is_approved_is_kept_and_nothing_sent() -> (
    None
):
    chain = FakeChain(auto_mine=True)
    _batch_payout_at(chain, CONTRACT, WALLET)
    chain.token_allowances[(TOKEN, WALLET, CONTRACT)] = ENOUGH_ALLOWANCE

    done = await set_up_batch_contract(_network(), chain, SIGNER, CONTRACT)

    assert (done.contract, done.deployed, done.not_kept, done.sent) == (CONTRACT, False, None, ())
    assert [(a.token.symbol, a.approved) for a in done.approvals] == [("DEMO", False)]
    assert chain.send_log == []


async def test_a_contract_is_deployed_from_the_wallet_at_its_pending_nonce() -> None:
    chain = FakeChain(auto_mine=True)
    chain.transaction_counts[WALLET] = 4
    expected = created_address(WALLET, 4)
    _batch_payout_at(chain, expected, WALLET)  # what the creation leaves there on a real chain

    done = await set_up_batch_contract(_network(tokens=False), chain, SIGNER, None)

    assert (done.contract, done.deployed, done.approvals) == (expected, True, ())
    (sent,) = chain.transactions.values()
    assert (sent.sender, sent.nonce, sent.to, sent.data) == (WALLET, 4, "", creation_payload())
    assert not sent.legacy
    assert done.sent == (sent.hash,)


async def test_a_configured_contract_that_does_not_verify_is_replaced_and_says_why() -> None:
    chain = FakeChain(auto_mine=True)
    _batch_payout_at(chain, CONTRACT, OTHER)
    _batch_payout_at(chain, created_address(WALLET, 0), WALLET)

    done = await set_up_batch_contract(
        _network(tokens=False, model=FeeModel.LEGACY), chain, SIGNER, CONTRACT
    )

    assert done.deployed
    assert done.contract == created_address(WALLET, 0)
    assert done.not_kept is not None
    assert f"owned by {OTHER}" in done.not_kept
    (sent,) = chain.transactions.values()
    assert sent.legacy  # the network's fee model


async def test_a_deployed_contract_that_does_not_verify_is_an_error() -> None:
    chain = FakeChain(auto_mine=True)  # the fake leaves no code at the created address

    with pytest.raises(BatchContractError, match="the deployed contract does not verify"):
        await set_up_batch_contract(_network(tokens=False), chain, SIGNER, None)


async def test_a_smaller_nonzero_allowance_is_set_to_zero_before_the_maximum() -> None:
    chain = FakeChain(auto_mine=True)
    _batch_payout_at(chain, CONTRACT, WALLET)
    chain.token_allowances[(TOKEN, WALLET, CONTRACT)] = 5

    # The fake's allowance does not follow the approvals: after them it is still 5.
    with pytest.raises(BatchContractError, match=r"the allowance of .* is 5, not the maximum"):
        await set_up_batch_contract(_network(), chain, SIGNER, CONTRACT)

    sent = [chain.transactions[h] for h in chain.send_log]
    assert [(t.to, t.data) for t in sent] == [
        (TOKEN, approve_payload(CONTRACT, 0)),
        (TOKEN, approve_payload(CONTRACT, MAX_ALLOWANCE)),
    ]
    assert [t.nonce for t in sent] == [0, 1]


async def test_a_reverted_deployment_is_an_error_naming_its_block() -> None:
    chain = FakeChain()

    async def revert_when_sent() -> None:
        for _ in range(1000):  # the set-up sends at its first await on the chain's answers
            if chain.pool:
                chain.mine(chain.pool[0], succeeded=False)
                return
            await asyncio.sleep(0.001)

    miner = asyncio.create_task(revert_when_sent())
    with pytest.raises(BatchContractError, match=r"deployment .* reverted in block"):
        await set_up_batch_contract(_network(tokens=False), chain, SIGNER, None)
    await miner


async def test_a_transaction_without_a_receipt_in_time_is_an_error_saying_to_wait() -> None:
    chain = FakeChain()  # nothing is ever mined

    with pytest.raises(BatchContractError, match=r"no receipt after 0\.05 s; wait until it is"):
        await set_up_batch_contract(
            _network(tokens=False), chain, SIGNER, None, receipt_timeout_s=0.05
        )


# ── The table to paste ────────────────────────────────────────────────────────────────────────


def test_the_batching_table_keeps_the_files_settings_and_names_every_contract() -> None:
    config = NetworkConfig(
        chain_id=31337,
        rpc_urls=["http://127.0.0.1:8545"],
        hot_wallet_keystore=Path("/keys/a.json"),
        batching=BatchingConfig(enabled=False, max_size=50, window_s=1.5),
    )
    contracts = {WALLET: CONTRACT, OTHER: TOKEN}

    text = batching_table("anvil", config, contracts)

    parsed = tomllib.loads(text)["networks"]["anvil"]["batching"]
    assert BatchingConfig.model_validate(parsed) == BatchingConfig(
        enabled=False, max_size=50, window_s=1.5, contracts=contracts
    )
    assert text.startswith("[networks.anvil.batching]\n")
