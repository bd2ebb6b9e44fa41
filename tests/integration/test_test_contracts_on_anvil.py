"""The test-only contracts (contracts/test/) behave as their tests need, on the pinned Anvil.

`sluice.testing.contracts` deploys them with plain JSON-RPC and a funded key: here a fresh key
per module, funded by one of Anvil's default accounts, so nothing depends on Anvil's unlocked
accounts or on its `anvil_*` methods.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_abi.abi import decode
from eth_account import Account
from eth_utils.crypto import keccak

from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess
from sluice.domain.addresses import Address
from sluice.testing.contracts import (
    TRANSFER_TOPIC,
    ChainSender,
    RpcError,
    deploy_blocking_token,
    deploy_false_token,
    deploy_invalid_receiver,
    deploy_reverting_receiver,
    deploy_test_contracts,
    is_blocked,
    mint,
    set_blocked,
    token_balance,
    transfer,
    transfer_returns,
)

ETHER = 10**18
#: Enough for a plain transfer and whatever a receiver's code does before it fails.
SEND_GAS = 100_000
SUPPLY = 1_000 * ETHER


def _fresh_address() -> Address:
    return Address(Account.create().address)


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


@pytest.fixture(scope="module")
def funded_key(anvil: AnvilProcess) -> str:
    """A new key holding 100 ETH, sent to it by Anvil's third default account."""
    account = Account.create()
    with ChainSender(anvil.rpc_url, DEV_ACCOUNTS[2].private_key) as faucet:
        assert faucet.send(account.address, value=100 * ETHER).succeeded
    return "0x" + bytes(account.key).hex()


@pytest.fixture
def sender(anvil: AnvilProcess, funded_key: str) -> Iterator[ChainSender]:
    with ChainSender(anvil.rpc_url, funded_key) as chain_sender:
        yield chain_sender


def test_deploy_test_contracts_puts_code_at_four_distinct_addresses(
    anvil: AnvilProcess, funded_key: str, sender: ChainSender
) -> None:
    deployed = deploy_test_contracts(anvil.rpc_url, funded_key)

    addresses = [
        deployed.reverting_receiver,
        deployed.invalid_receiver,
        deployed.false_token,
        deployed.blocking_token,
    ]
    assert len(set(addresses)) == 4
    for address in addresses:
        assert sender.rpc("eth_getCode", [address, "latest"]) not in ("0x", "", None)
    assert token_balance(sender, deployed.false_token, sender.address) == 0
    assert token_balance(sender, deployed.blocking_token, sender.address) == 0


# --- receivers that refuse the native coin ------------------------------------------------


def test_a_native_send_to_the_reverting_receiver_fails_and_refunds_the_unused_gas(
    sender: ChainSender,
) -> None:
    receiver = deploy_reverting_receiver(sender)

    receipt = sender.send(receiver, value=ETHER, gas=SEND_GAS)

    assert receipt.status == 0
    assert receipt.gas_used < receipt.gas_limit  # REVERT gives the rest of the gas back
    assert receipt.logs == ()
    assert sender.native_balance(receiver) == 0


def test_the_reverting_receiver_reverts_with_a_reason_string(sender: ChainSender) -> None:
    receiver = deploy_reverting_receiver(sender)
    request = {"from": sender.address, "to": receiver, "value": hex(ETHER)}

    with pytest.raises(RpcError) as excinfo:
        sender.rpc("eth_estimateGas", [request])

    revert_data = excinfo.value.revert_data
    assert revert_data is not None
    assert revert_data[:4] == _selector("Error(string)")
    assert decode(["string"], revert_data[4:]) == ("RevertingReceiver: refuses the native coin",)


def test_a_native_send_to_the_invalid_receiver_fails_and_uses_all_its_gas(
    sender: ChainSender,
) -> None:
    receiver = deploy_invalid_receiver(sender)

    receipt = sender.send(receiver, value=ETHER, gas=SEND_GAS)

    assert receipt.status == 0
    assert receipt.gas_used == receipt.gas_limit == SEND_GAS  # INVALID (0xfe) consumes it all
    assert receipt.logs == ()
    assert sender.native_balance(receiver) == 0


def test_the_invalid_receiver_fails_without_revert_data(sender: ChainSender) -> None:
    receiver = deploy_invalid_receiver(sender)
    request = {"from": sender.address, "to": receiver, "value": hex(ETHER)}

    with pytest.raises(RpcError) as excinfo:
        sender.rpc("eth_estimateGas", [request])

    assert excinfo.value.revert_data in (None, b"")


def test_the_same_send_to_a_plain_address_succeeds(sender: ChainSender) -> None:
    """The control: the receivers' refusals come from their code, not from the send."""
    recipient = _fresh_address()

    receipt = sender.send(recipient, value=ETHER, gas=SEND_GAS)

    assert receipt.succeeded
    assert sender.native_balance(recipient) == ETHER


# --- FalseToken: transfer returns false ---------------------------------------------------


def test_false_token_transfer_returns_false(sender: ChainSender) -> None:
    token = deploy_false_token(sender, initial_supply=SUPPLY)

    assert transfer_returns(sender, token, _fresh_address(), ETHER) is False


def test_false_token_transfer_succeeds_on_chain_but_moves_nothing_and_emits_no_transfer(
    sender: ChainSender,
) -> None:
    token = deploy_false_token(sender, initial_supply=SUPPLY)
    recipient = _fresh_address()

    receipt = transfer(sender, token, recipient, ETHER)

    assert receipt.status == 1  # no revert: only the return value says it failed
    assert receipt.logs == ()  # no Transfer, no other event
    assert token_balance(sender, token, sender.address) == SUPPLY
    assert token_balance(sender, token, recipient) == 0


def test_false_token_mints_and_reports_balances_normally(sender: ChainSender) -> None:
    token = deploy_false_token(sender)
    holder = _fresh_address()

    receipt = mint(sender, token, holder, 5 * ETHER)

    assert token_balance(sender, token, holder) == 5 * ETHER
    (log,) = receipt.logs
    assert log.topics[0] == TRANSFER_TOPIC
    assert log.address == token


# --- BlockingToken: a block list set by its owner -----------------------------------------


@pytest.fixture
def blocking_token(sender: ChainSender) -> Address:
    """A BlockingToken owned by `sender`, who holds its whole supply."""
    return deploy_blocking_token(sender, initial_supply=SUPPLY)


def test_blocking_token_transfers_to_an_account_not_blocked(
    sender: ChainSender, blocking_token: Address
) -> None:
    recipient = _fresh_address()

    receipt = transfer(sender, blocking_token, recipient, ETHER)

    assert receipt.succeeded
    (log,) = receipt.logs
    assert log.topics[0] == TRANSFER_TOPIC
    assert token_balance(sender, blocking_token, recipient) == ETHER
    assert token_balance(sender, blocking_token, sender.address) == SUPPLY - ETHER


def test_blocking_token_reverts_a_transfer_to_a_blocked_recipient(
    sender: ChainSender, blocking_token: Address
) -> None:
    blocked = _fresh_address()
    set_blocked(sender, blocking_token, blocked)
    assert is_blocked(sender, blocking_token, blocked)

    with pytest.raises(RpcError) as excinfo:
        transfer_returns(sender, blocking_token, blocked, ETHER)
    receipt = transfer(sender, blocking_token, blocked, ETHER, gas=SEND_GAS)

    revert_data = excinfo.value.revert_data
    assert revert_data is not None
    assert revert_data[:4] == _selector("Blocked(address)")
    assert decode(["address"], revert_data[4:]) == (blocked.lower(),)
    assert receipt.status == 0
    assert token_balance(sender, blocking_token, blocked) == 0
    assert token_balance(sender, blocking_token, sender.address) == SUPPLY


def test_blocking_token_works_again_once_the_recipient_is_unblocked(
    sender: ChainSender, blocking_token: Address
) -> None:
    recipient = _fresh_address()
    set_blocked(sender, blocking_token, recipient)

    set_blocked(sender, blocking_token, recipient, blocked=False)
    receipt = transfer(sender, blocking_token, recipient, ETHER)

    assert not is_blocked(sender, blocking_token, recipient)
    assert receipt.succeeded
    assert token_balance(sender, blocking_token, recipient) == ETHER


def test_blocking_token_reverts_every_transfer_from_a_blocked_sender(
    sender: ChainSender, blocking_token: Address
) -> None:
    set_blocked(sender, blocking_token, sender.address)

    receipt = transfer(sender, blocking_token, _fresh_address(), ETHER, gas=SEND_GAS)

    assert receipt.status == 0
    assert token_balance(sender, blocking_token, sender.address) == SUPPLY


def test_blocking_token_refuses_minting_to_a_blocked_account(
    sender: ChainSender, blocking_token: Address
) -> None:
    blocked = _fresh_address()
    set_blocked(sender, blocking_token, blocked)

    with pytest.raises(RpcError):
        mint(sender, blocking_token, blocked, ETHER)

    assert token_balance(sender, blocking_token, blocked) == 0


def test_only_the_owner_may_block(
    anvil: AnvilProcess, sender: ChainSender, blocking_token: Address
) -> None:
    stranger_key = "0x" + bytes(Account.create().key).hex()
    with (
        ChainSender(anvil.rpc_url, stranger_key) as stranger,
        pytest.raises(RpcError) as excinfo,
    ):
        set_blocked(stranger, blocking_token, sender.address)

    revert_data = excinfo.value.revert_data
    assert revert_data is not None
    assert revert_data[:4] == _selector("NotOwner(address)")
    assert not is_blocked(sender, blocking_token, sender.address)
