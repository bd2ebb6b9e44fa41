"""The packaged DemoToken artifact deploys and behaves as an ERC-20 on the pinned Anvil."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import pytest
import requests
from eth_abi.abi import decode
from eth_typing import ChecksumAddress

from sluice.devnet.anvil import AnvilProcess
from sluice.devnet.artifacts import load_demo_token

with warnings.catch_warnings():
    # web3 7.x still imports `websockets.legacy`, which websockets >= 14 deprecates on import;
    # pytest's `filterwarnings = error` would turn that third-party warning into a collection error.
    warnings.filterwarnings(
        "ignore", message="websockets.legacy is deprecated", category=DeprecationWarning
    )
    from web3 import Web3
    from web3.contract import Contract
    from web3.exceptions import ContractCustomError
    from web3.providers import HTTPProvider

pytestmark = pytest.mark.anvil

NAME = "Demo USD"
SYMBOL = "DUSD"
DECIMALS = 6
INITIAL_SUPPLY = 1_000_000 * 10**DECIMALS


@pytest.fixture
def w3(anvil: AnvilProcess) -> Iterator[Web3]:
    # An explicit session, so its connections are closed when the test ends.
    with requests.Session() as session:
        yield Web3(HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 10}, session=session))


def _default_accounts(w3: Web3) -> Sequence[ChecksumAddress]:
    # web3 annotates `eth.accounts` as a one-element `Tuple[ChecksumAddress]`; it is really a
    # variable-length tuple (anvil unlocks ten accounts), so widen it to index past [0].
    accounts: Sequence[ChecksumAddress] = w3.eth.accounts
    assert len(accounts) >= 2
    return accounts


@pytest.fixture
def owner(w3: Web3) -> ChecksumAddress:
    """Anvil's first default account: deploys, and therefore owns, the token."""
    return _default_accounts(w3)[0]


@pytest.fixture
def other(w3: Web3) -> ChecksumAddress:
    """Anvil's second default account: starts with no tokens and is not the owner."""
    return _default_accounts(w3)[1]


@pytest.fixture
def token(w3: Web3, owner: ChecksumAddress) -> Contract:
    """A freshly deployed DemoToken, owned by anvil's first default account."""
    artifact = load_demo_token()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx_hash = factory.constructor(NAME, SYMBOL, DECIMALS, INITIAL_SUPPLY).transact({"from": owner})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1
    address = receipt["contractAddress"]
    assert address is not None
    return w3.eth.contract(address=address, abi=artifact.abi)


def _assert_custom_error(
    error: ContractCustomError, signature: str, types: list[str], expected: tuple[object, ...]
) -> None:
    """Check that a revert carried the custom error `signature` with the `expected` arguments."""
    data = error.data
    assert isinstance(data, str), f"unexpected revert data: {data!r}"
    payload = bytes.fromhex(data.removeprefix("0x"))
    selector = Web3.keccak(text=signature)[:4]
    assert payload[:4] == selector, f"expected {signature}, got revert data {data}"
    assert decode(types, payload[4:]) == expected


def test_deployment_sets_metadata_and_mints_initial_supply_to_the_deployer(
    token: Contract, owner: ChecksumAddress
) -> None:
    assert token.functions.name().call() == NAME
    assert token.functions.symbol().call() == SYMBOL
    assert token.functions.decimals().call() == DECIMALS
    assert token.functions.totalSupply().call() == INITIAL_SUPPLY
    assert token.functions.balanceOf(owner).call() == INITIAL_SUPPLY
    assert token.functions.owner().call() == owner


def test_transfer_moves_balance_and_emits_transfer(
    w3: Web3, token: Contract, owner: ChecksumAddress, other: ChecksumAddress
) -> None:
    amount = 250 * 10**DECIMALS

    tx_hash = token.functions.transfer(other, amount).transact({"from": owner})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)

    assert receipt["status"] == 1
    assert token.functions.balanceOf(owner).call() == INITIAL_SUPPLY - amount
    assert token.functions.balanceOf(other).call() == amount
    assert token.functions.totalSupply().call() == INITIAL_SUPPLY
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert event["args"]["from"] == owner
    assert event["args"]["to"] == other
    assert event["args"]["value"] == amount


def test_transfer_beyond_the_balance_reverts_with_insufficient_balance(
    token: Contract, owner: ChecksumAddress, other: ChecksumAddress
) -> None:
    with pytest.raises(ContractCustomError) as excinfo:
        token.functions.transfer(owner, 1).transact({"from": other})

    _assert_custom_error(
        excinfo.value,
        "InsufficientBalance(address,uint256,uint256)",
        ["address", "uint256", "uint256"],
        (other.lower(), 0, 1),
    )
    assert token.functions.balanceOf(owner).call() == INITIAL_SUPPLY


def test_transfer_to_the_zero_address_reverts(token: Contract, owner: ChecksumAddress) -> None:
    zero = Web3.to_checksum_address("0x" + "00" * 20)

    with pytest.raises(ContractCustomError) as excinfo:
        token.functions.transfer(zero, 1).transact({"from": owner})

    _assert_custom_error(excinfo.value, "TransferToZeroAddress()", [], ())


def test_transfer_from_spends_the_allowance_and_reverts_beyond_it(
    w3: Web3, token: Contract, owner: ChecksumAddress, other: ChecksumAddress
) -> None:
    w3.eth.wait_for_transaction_receipt(
        token.functions.approve(other, 100).transact({"from": owner}), timeout=30
    )
    assert token.functions.allowance(owner, other).call() == 100

    w3.eth.wait_for_transaction_receipt(
        token.functions.transferFrom(owner, other, 60).transact({"from": other}), timeout=30
    )

    assert token.functions.allowance(owner, other).call() == 40
    assert token.functions.balanceOf(other).call() == 60
    with pytest.raises(ContractCustomError) as excinfo:
        token.functions.transferFrom(owner, other, 41).transact({"from": other})
    _assert_custom_error(
        excinfo.value,
        "InsufficientAllowance(address,uint256,uint256)",
        ["address", "uint256", "uint256"],
        (other.lower(), 40, 41),
    )


def test_owner_can_mint(
    w3: Web3, token: Contract, owner: ChecksumAddress, other: ChecksumAddress
) -> None:
    amount = 5_000 * 10**DECIMALS

    tx_hash = token.functions.mint(other, amount).transact({"from": owner})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)

    assert receipt["status"] == 1
    assert token.functions.balanceOf(other).call() == amount
    assert token.functions.totalSupply().call() == INITIAL_SUPPLY + amount


def test_mint_by_another_account_reverts_with_not_owner(
    token: Contract, other: ChecksumAddress
) -> None:
    with pytest.raises(ContractCustomError) as excinfo:
        token.functions.mint(other, 1).transact({"from": other})

    _assert_custom_error(excinfo.value, "NotOwner(address)", ["address"], (other.lower(),))
    assert token.functions.balanceOf(other).call() == 0
    assert token.functions.totalSupply().call() == INITIAL_SUPPLY
