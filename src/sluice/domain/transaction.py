"""On-chain transactions and their attempts.

A `ChainTransaction` is one nonce of one hot wallet, carrying one payload; it may pay one
withdrawal or (later) many, in a batch. Each time its payload is signed, with whatever fees, that
signed form is an attempt; the first attempt is stored before anything is sent, and every attempt's
hash is kept, since any of them may be the one that is mined.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sluice.domain.addresses import Address
from sluice.domain.assets import Asset

#: ERC-20 ``transfer(address,uint256)`` selector.
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")

#: Gas of a plain native transfer to an account without code.
NATIVE_TRANSFER_GAS = 21_000


class TransactionStatus(enum.StrEnum):
    """Where an on-chain transaction is."""

    SIGNED = "SIGNED"
    """Signed and stored with its nonce; maybe not yet sent."""
    BROADCAST = "BROADCAST"
    """Sent (or possibly sent: an unclear answer counts as sent); awaiting receipt and depth."""
    CONFIRMED = "CONFIRMED"
    """Mined with status 1 and confirmed to the network's depth. Final."""
    REVERTED = "REVERTED"
    """Mined with status 0 and confirmed: the nonce is used, nothing was paid. Final."""

    @property
    def is_final(self) -> bool:
        """Whether the transaction's outcome is settled."""
        return self in {TransactionStatus.CONFIRMED, TransactionStatus.REVERTED}


@dataclass(frozen=True, slots=True)
class Payload:
    """What a transaction does: its call, independent of nonce and fees."""

    to: Address
    value: int
    data: bytes


def transfer_payload(asset: Asset, destination: Address, amount: int) -> Payload:
    """The payload that pays ``amount`` base units of ``asset`` to ``destination``."""
    if asset.token_address is None:
        return Payload(to=destination, value=amount, data=b"")
    # ABI encoding of transfer(address,uint256): two left-padded 32-byte words after the selector.
    data = (
        TRANSFER_SELECTOR
        + bytes.fromhex(destination[2:]).rjust(32, b"\0")
        + amount.to_bytes(32, "big")
    )
    return Payload(to=asset.token_address, value=0, data=data)


@dataclass(frozen=True, slots=True)
class Fees:
    """EIP-1559 fee parameters, in wei per gas."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True, slots=True)
class UnsignedTransaction:
    """Everything a signer needs: an EIP-1559 transaction."""

    chain_id: int
    nonce: int
    to: Address
    value: int
    data: bytes
    gas: int
    fees: Fees


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A signed transaction's raw bytes and hash (0x-prefixed hex)."""

    raw: bytes
    hash: str


@dataclass(slots=True)
class ChainTransaction:
    """One nonce of one hot wallet and the payload it carries."""

    id: str
    network: str
    from_address: Address
    nonce: int
    payload: Payload
    gas_limit: int
    status: TransactionStatus
    created_at: datetime
    updated_at: datetime
    request_id: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    mined_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One signed form of a transaction."""

    id: str
    transaction_id: str
    seq: int
    fees: Fees
    raw: bytes
    hash: str
    created_at: datetime
    sent_at: datetime | None = None
