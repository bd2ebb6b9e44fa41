"""EVM addresses: format, EIP-55 checksum, and who may receive a withdrawal."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, NewType

from eth_utils.address import is_checksum_address, to_checksum_address

from sluice.errors import InvalidAddressError

#: An address in EIP-55 checksum form.
Address = NewType("Address", str)

ZERO_ADDRESS = Address("0x0000000000000000000000000000000000000000")

#: The precompiled contracts, by address: code built into every node, with no key and no way to
#: move what is sent to them, so a withdrawal there is lost. 0x01-0x0a are Ethereum's since
#: Cancun, 0x0b-0x11 the BLS12-381 operations of Prague (EIP-2537), and 0x100 P256VERIFY
#: (RIP-7212 on rollups, EIP-7951 on Ethereum from Fusaka).
PRECOMPILES: Final[dict[int, str]] = {
    0x01: "ecrecover",
    0x02: "SHA2-256",
    0x03: "RIPEMD-160",
    0x04: "identity",
    0x05: "modexp",
    0x06: "BN254 ecAdd",
    0x07: "BN254 ecMul",
    0x08: "BN254 pairing",
    0x09: "BLAKE2 F",
    0x0A: "KZG point evaluation",
    0x0B: "BLS12-381 G1 add",
    0x0C: "BLS12-381 G1 multi-scalar multiplication",
    0x0D: "BLS12-381 G2 add",
    0x0E: "BLS12-381 G2 multi-scalar multiplication",
    0x0F: "BLS12-381 pairing",
    0x10: "BLS12-381 map to G1",
    0x11: "BLS12-381 map to G2",
    0x100: "P256VERIFY",
}

#: `PRECOMPILES`' addresses in checksum form (0x0a-0x0f have letters, and so a case).
PRECOMPILE_ADDRESSES: Final = frozenset(
    Address(to_checksum_address(number.to_bytes(20, "big"))) for number in PRECOMPILES
)

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
    destination: Address,
    *,
    hot_wallets: Iterable[Address],
    token_contracts: Iterable[Address],
    batch_contracts: Iterable[Address] = (),
) -> None:
    """Refuse destinations that would burn funds or loop them back.

    Raises:
        InvalidAddressError: The zero address, a precompiled contract (`PRECOMPILES`), one of our
            hot wallets, a known token contract (tokens sent to a token contract are almost
            always lost), or one of our batch contracts (it can move nothing out).
    """
    if destination == ZERO_ADDRESS:
        raise InvalidAddressError("the zero address cannot receive a withdrawal")
    if destination in PRECOMPILE_ADDRESSES:
        name = PRECOMPILES[int(destination, 16)]
        raise InvalidAddressError(
            f"{destination} is a precompiled contract ({name}) and cannot receive a withdrawal"
        )
    if destination in set(hot_wallets):
        raise InvalidAddressError("a hot wallet cannot receive a withdrawal")
    if destination in set(token_contracts):
        raise InvalidAddressError("a token contract cannot receive a withdrawal")
    if destination in set(batch_contracts):
        raise InvalidAddressError("a hot wallet's batch contract cannot receive a withdrawal")
