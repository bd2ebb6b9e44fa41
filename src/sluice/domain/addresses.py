"""EVM addresses: format, EIP-55 checksum, and who may receive a withdrawal."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NewType

from eth_utils.address import is_checksum_address, to_checksum_address

from sluice.errors import InvalidAddressError

#: An address in EIP-55 checksum form.
Address = NewType("Address", str)

ZERO_ADDRESS = Address("0x0000000000000000000000000000000000000000")

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def parse_address(text: str) -> Address:
    """Validate an address and return it in checksum form.

    All-lowercase and all-uppercase hex carry no checksum and are accepted; mixed case must be a
    valid EIP-55 checksum, since a typo in a mixed-case address is exactly what EIP-55 catches.

    Raises:
        InvalidAddressError: Not 0x and 40 hex digits, or a mixed-case address with a bad checksum.
    """
    if not _HEX_ADDRESS.fullmatch(text):
        raise InvalidAddressError("address must be 0x followed by 40 hexadecimal digits")
    digits = text[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(text):
        raise InvalidAddressError("address has an invalid EIP-55 checksum")
    return Address(to_checksum_address(text))


def ensure_payable_destination(
    destination: Address, *, hot_wallets: Iterable[Address], token_contracts: Iterable[Address]
) -> None:
    """Refuse destinations that would burn funds or loop them back.

    Raises:
        InvalidAddressError: The zero address, one of our hot wallets, or a known token contract
            (tokens sent to a token contract are almost always lost).
    """
    if destination == ZERO_ADDRESS:
        raise InvalidAddressError("the zero address cannot receive a withdrawal")
    if destination in set(hot_wallets):
        raise InvalidAddressError("a hot wallet cannot receive a withdrawal")
    if destination in set(token_contracts):
        raise InvalidAddressError("a token contract cannot receive a withdrawal")
