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
from sluice.domain.fees import Fees

__all__ = [
    "NATIVE_TRANSFER_GAS",
    "TRANSFER_SELECTOR",
    "Attempt",
    "AttemptOutcome",
    "AttemptPurpose",
    "ChainTransaction",
    "Fees",
    "Payload",
    "SignedTransaction",
    "TransactionKind",
    "TransactionStatus",
    "UnsignedTransaction",
    "noop_payload",
    "transfer_payload",
]

#: ERC-20 ``transfer(address,uint256)`` selector.
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")

#: Gas of a plain native transfer to an account without code.
NATIVE_TRANSFER_GAS = 21_000


class TransactionStatus(enum.StrEnum):
    """Where an on-chain transaction is.

    SIGNED ──► BROADCAST ◄──► MINED ──► CONFIRMED | REVERTED | CANCELLED
                   │        (re-org)
                   └──► SUPERSEDED (its nonce was used by a transaction not of ours)
    """

    SIGNED = "SIGNED"
    """Signed and stored with its nonce; maybe not yet sent."""
    BROADCAST = "BROADCAST"
    """Sent (or possibly sent: an unclear answer counts as sent); awaiting a receipt."""
    MINED = "MINED"
    """One of its attempts has a receipt; awaiting the network's finality."""
    CONFIRMED = "CONFIRMED"
    """Its payload was mined with status 1, and the block is final. Final."""
    REVERTED = "REVERTED"
    """Its payload was mined with status 0, and the block is final: nothing was paid. Final."""
    CANCELLED = "CANCELLED"
    """A no-op replacement was mined at its nonce, and the block is final: nothing was paid."""
    SUPERSEDED = "SUPERSEDED"
    """Its nonce was used, at a final block, by a transaction that is none of its attempts (sent
    from the same wallet by someone else): none of its attempts can ever be mined. Final."""

    @property
    def is_final(self) -> bool:
        """Whether the transaction's outcome is settled."""
        return self in FINAL_TRANSACTION_STATUSES

    @property
    def in_flight(self) -> bool:
        """Whether the transaction holds a nonce that is not settled yet."""
        return not self.is_final


FINAL_TRANSACTION_STATUSES = frozenset(
    {
        TransactionStatus.CONFIRMED,
        TransactionStatus.REVERTED,
        TransactionStatus.CANCELLED,
        TransactionStatus.SUPERSEDED,
    }
)


class TransactionKind(enum.StrEnum):
    """Why a transaction exists."""

    PAYOUT = "PAYOUT"
    """It pays one withdrawal (later: several, in a batch)."""
    FILLER = "FILLER"
    """A no-op self-transfer that fills a gap in the hot wallet's nonces; it pays nobody."""


class AttemptPurpose(enum.StrEnum):
    """What an attempt's signed bytes do."""

    PAYLOAD = "PAYLOAD"
    """The transaction's payload (first attempt, or a replacement at higher fees)."""
    CANCEL = "CANCEL"
    """A no-op self-transfer at the same nonce, replacing the payload on an operator's request."""


class AttemptOutcome(enum.StrEnum):
    """What became of an attempt once its transaction was settled."""

    MINED = "MINED"
    """This attempt is the one the chain included."""
    REPLACED = "REPLACED"
    """Another attempt (or, for a superseded transaction, another transaction) took the nonce."""


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


def noop_payload(wallet: Address) -> Payload:
    """A transfer of nothing to the wallet itself: uses a nonce and pays nobody."""
    return Payload(to=wallet, value=0, data=b"")


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
    kind: TransactionKind = TransactionKind.PAYOUT
    cancel_requested_at: datetime | None = None
    nonce_used_at_block: int | None = None
    """The head block when the chain was first seen to have used this nonce without any of our
    attempts being mined; cleared if that stops being true (a re-org)."""
    watch: str | None = None
    """The token of the confirmation chain following it: jobs with another token are stale."""
    watch_until: datetime | None = None
    """When that chain's lease lapses; a lapsed lease means its job was lost."""


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
    purpose: AttemptPurpose = AttemptPurpose.PAYLOAD
    outcome: AttemptOutcome | None = None
    note: str | None = None
    """The node's last answer to sending it, when it was not a plain acceptance."""
