"""Addresses: 0x plus 40 hex digits, EIP-55 checksums, and who may receive a withdrawal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.domain.addresses import (
    PRECOMPILE_ADDRESSES,
    PRECOMPILES,
    ZERO_ADDRESS,
    Address,
    ensure_payable_destination,
    parse_address,
)
from sluice.errors import InvalidAddressError

FAST = settings(max_examples=200, deadline=None, database=None)

#: Test vectors from EIP-55 itself.
CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
CHECKSUMMED_2 = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
#: CHECKSUMMED with the case of its first letter flipped.
BAD_CHECKSUM = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

HOT_WALLET = Address("0xdAC17F958D2ee523a2206206994597C13D831ec7")
TOKEN_CONTRACT = Address("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
OTHER_TOKEN = Address("0x6B175474E89094C44Da98b954EedeAC495271d0F")
BATCH_CONTRACT = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
USER = Address(CHECKSUMMED)


def _numbered(number: int) -> Address:
    """The address whose 160-bit value is ``number``."""
    return Address("0x" + format(number, "040x"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(CHECKSUMMED.lower(), CHECKSUMMED, id="all-lowercase"),
        pytest.param("0x" + CHECKSUMMED[2:].upper(), CHECKSUMMED, id="all-uppercase"),
        pytest.param(CHECKSUMMED, CHECKSUMMED, id="valid-mixed-case-checksum"),
        pytest.param(CHECKSUMMED_2, CHECKSUMMED_2, id="another-valid-checksum"),
        pytest.param("0x" + "1" * 40, "0x" + "1" * 40, id="digits-only"),
        pytest.param(ZERO_ADDRESS, ZERO_ADDRESS, id="zero-address-is-well-formed"),
    ],
)
def test_a_well_formed_address_is_returned_in_checksum_form(text: str, expected: str) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(BAD_CHECKSUM, "EIP-55 checksum", id="bad-checksum"),
        pytest.param(
            CHECKSUMMED[:-1] + CHECKSUMMED[-1].swapcase(),
            "EIP-55 checksum",
            id="last-letter-flipped",
        ),
        pytest.param(CHECKSUMMED[:-1], "40 hexadecimal digits", id="too-short"),
        pytest.param(CHECKSUMMED + "0", "40 hexadecimal digits", id="too-long"),
        pytest.param("0x" + "g" * 40, "40 hexadecimal digits", id="non-hex"),
        pytest.param(CHECKSUMMED[2:], "40 hexadecimal digits", id="no-0x-prefix"),
        pytest.param("0X" + CHECKSUMMED[2:], "40 hexadecimal digits", id="uppercase-0X-prefix"),
        pytest.param(" " + CHECKSUMMED, "40 hexadecimal digits", id="leading-space"),
        pytest.param(CHECKSUMMED + "\n", "40 hexadecimal digits", id="trailing-newline"),
        pytest.param("", "40 hexadecimal digits", id="empty"),
        pytest.param("0x", "40 hexadecimal digits", id="prefix-only"),
    ],
)
def test_a_malformed_address_or_a_bad_checksum_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidAddressError, match=message):
        parse_address(text)


@FAST
@given(raw=st.binary(min_size=20, max_size=20))
def test_lowercase_uppercase_and_checksum_forms_parse_to_the_same_address(raw: bytes) -> None:
    digits = raw.hex()
    checksummed = parse_address("0x" + digits)
    assert parse_address("0x" + digits.upper()) == checksummed
    assert parse_address(checksummed) == checksummed
    assert checksummed.lower() == "0x" + digits


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        pytest.param(ZERO_ADDRESS, "zero address", id="zero-address"),
        pytest.param(HOT_WALLET, "hot wallet", id="hot-wallet"),
        pytest.param(TOKEN_CONTRACT, "token contract", id="token-contract"),
        pytest.param(BATCH_CONTRACT, "batch contract", id="batch-contract"),
        pytest.param(OTHER_TOKEN, "token contract", id="second-token-contract"),
    ],
)
def test_a_destination_that_burns_or_loops_funds_is_refused(
    destination: Address, message: str
) -> None:
    with pytest.raises(InvalidAddressError, match=message):
        ensure_payable_destination(
            destination,
            hot_wallets=[HOT_WALLET],
            token_contracts=(TOKEN_CONTRACT, OTHER_TOKEN),
            batch_contracts=[BATCH_CONTRACT],
        )


@pytest.mark.parametrize(
    ("hot_wallets", "token_contracts"),
    [
        pytest.param([HOT_WALLET], [TOKEN_CONTRACT], id="neither-hot-wallet-nor-token"),
        pytest.param([], [], id="nothing-configured"),
    ],
)
def test_any_other_destination_is_payable(
    hot_wallets: list[Address], token_contracts: list[Address]
) -> None:
    ensure_payable_destination(
        USER, hot_wallets=iter(hot_wallets), token_contracts=iter(token_contracts)
    )


@pytest.mark.parametrize(
    ("number", "name"),
    [pytest.param(number, name, id=f"{number:#x}") for number, name in PRECOMPILES.items()],
)
def test_a_precompile_address_is_refused_and_named(number: int, name: str) -> None:
    destination = parse_address(_numbered(number))

    with pytest.raises(InvalidAddressError) as excinfo:
        ensure_payable_destination(destination, hot_wallets=[], token_contracts=[])

    assert excinfo.value.code == "invalid_address"
    assert excinfo.value.detail == (
        f"{destination} is a precompiled contract ({name}) and cannot receive a withdrawal"
    )


def test_the_precompiles_are_0x01_to_0x11_and_p256verify_at_0x100() -> None:
    assert sorted(PRECOMPILES) == [*range(0x01, 0x12), 0x100]
    assert len(PRECOMPILE_ADDRESSES) == 18
    assert "0x0000000000000000000000000000000000000001" in PRECOMPILE_ADDRESSES
    assert "0x000000000000000000000000000000000000000A" in PRECOMPILE_ADDRESSES
    assert "0x0000000000000000000000000000000000000100" in PRECOMPILE_ADDRESSES
    assert all(parse_address(address) == address for address in PRECOMPILE_ADDRESSES)


@pytest.mark.parametrize(
    "number",
    [
        pytest.param(0x12, id="0x12-just-past-the-bls-precompiles"),
        pytest.param(0xFF, id="0xff"),
        pytest.param(0x101, id="0x101-just-past-p256verify"),
        pytest.param(1 << 152, id="0x01-in-the-top-byte"),
    ],
)
def test_an_address_near_the_precompiles_is_payable(number: int) -> None:
    ensure_payable_destination(parse_address(_numbered(number)), hot_wallets=[], token_contracts=[])
