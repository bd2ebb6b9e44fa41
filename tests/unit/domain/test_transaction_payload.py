"""Transaction payloads: native transfers and ERC-20 transfer calls."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.domain.addresses import Address
from sluice.domain.amounts import MAX_BASE_UNITS
from sluice.domain.assets import Asset
from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    TRANSFER_SELECTOR,
    Payload,
    TransactionStatus,
    noop_payload,
    transfer_payload,
)

FAST = settings(max_examples=200, deadline=None, database=None)

TOKEN_ADDRESS = Address("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
ETH = Asset(network="ethereum", symbol="ETH", decimals=18)
USDC = Asset(network="ethereum", symbol="USDC", decimals=6, token_address=TOKEN_ADDRESS)

DESTINATIONS = [
    pytest.param(Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"), id="mixed-case"),
    pytest.param(Address("0x0000000000000000000000000000000000000001"), id="leading-zero-bytes"),
    pytest.param(Address("0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF"), id="all-ff"),
]
AMOUNTS = [
    pytest.param(1, id="one-unit"),
    pytest.param(1_500_000, id="one-and-a-half-usdc"),
    pytest.param(MAX_BASE_UNITS, id="uint256-max"),
]


def test_the_transfer_selector_is_that_of_erc20_transfer() -> None:
    assert keccak(text="transfer(address,uint256)")[:4] == TRANSFER_SELECTOR
    assert TRANSFER_SELECTOR.hex() == "a9059cbb"


def test_a_plain_native_transfer_costs_21000_gas() -> None:
    assert NATIVE_TRANSFER_GAS == 21_000


@pytest.mark.parametrize("destination", DESTINATIONS)
@pytest.mark.parametrize("amount", AMOUNTS)
def test_a_native_payload_sends_the_value_to_the_destination_with_no_data(
    destination: Address, amount: int
) -> None:
    assert transfer_payload(ETH, destination, amount) == Payload(
        to=destination, value=amount, data=b""
    )


@pytest.mark.parametrize("destination", DESTINATIONS)
@pytest.mark.parametrize("amount", AMOUNTS)
def test_a_token_payload_calls_transfer_on_the_token_contract(
    destination: Address, amount: int
) -> None:
    payload = transfer_payload(USDC, destination, amount)

    assert payload.to == TOKEN_ADDRESS
    assert payload.value == 0
    assert payload.data[:4] == bytes.fromhex("a9059cbb")
    assert payload.data[4:36] == bytes(12) + bytes.fromhex(destination[2:])
    assert payload.data[36:] == amount.to_bytes(32, "big")
    assert payload.data == TRANSFER_SELECTOR + abi_encode(
        ["address", "uint256"], [destination, amount]
    )


@FAST
@given(raw=st.binary(min_size=20, max_size=20), amount=st.integers(0, MAX_BASE_UNITS))
def test_token_payload_data_matches_the_abi_encoding(raw: bytes, amount: int) -> None:
    destination = Address(to_checksum_address(raw))
    payload = transfer_payload(USDC, destination, amount)
    assert payload.data == TRANSFER_SELECTOR + abi_encode(
        ["address", "uint256"], [destination, amount]
    )
    assert len(payload.data) == 4 + 32 + 32


@pytest.mark.parametrize(
    ("status", "is_final"),
    [
        pytest.param(TransactionStatus.SIGNED, False, id="signed"),
        pytest.param(TransactionStatus.BROADCAST, False, id="broadcast"),
        pytest.param(TransactionStatus.MINED, False, id="mined"),
        pytest.param(TransactionStatus.CONFIRMED, True, id="confirmed"),
        pytest.param(TransactionStatus.REVERTED, True, id="reverted"),
        pytest.param(TransactionStatus.CANCELLED, True, id="cancelled"),
        pytest.param(TransactionStatus.SUPERSEDED, True, id="superseded"),
    ],
)
def test_only_a_settled_transaction_is_final_and_every_other_is_in_flight(
    status: TransactionStatus, is_final: bool
) -> None:
    assert status.is_final is is_final
    assert status.in_flight is not is_final


def test_every_transaction_status_is_in_the_is_final_table() -> None:
    assert {s.value for s in TransactionStatus} == {
        "SIGNED",
        "BROADCAST",
        "MINED",
        "CONFIRMED",
        "REVERTED",
        "CANCELLED",
        "SUPERSEDED",
    }


def test_a_no_op_sends_nothing_from_the_wallet_to_itself() -> None:
    wallet = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
    assert noop_payload(wallet) == Payload(to=wallet, value=0, data=b"")
