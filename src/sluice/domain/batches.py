"""Batch payouts: one transaction that pays many withdrawals through a hot wallet's own
``BatchPayout`` contract (``contracts/BatchPayout.sol``).

The contract has two calls, each paying ``to[i]`` ``amounts[i]`` for every ``i``, atomically (any
failing payment reverts the call with ``PaymentFailed(i)``), and logging ``Paid(i)`` after each
payment: the cheapest log that names it, a LOG0 (no topic) whose 4 bytes of data are ``i``
big-endian (407 gas, against 1,006 for an ABI event ``Paid(uint256)``):

- ``payNative(address[] to, uint256[] amounts)``, with ``msg.value`` the sum of the amounts;
- ``payToken(address token, address[] to, uint256[] amounts)``, moving the token from the hot
  wallet (which approved its contract once) with ``transferFrom``.

Only the wallet that deployed a contract may call it. This module encodes those calls, reads them
back (`read_batch`, strict: a call that does not re-encode to the same bytes is refused, so a
signer cannot be shown one thing and sign another), reads a receipt's ``Paid`` events, and holds
the arithmetic the batcher decides with: whether a batch saves gas, and each withdrawal's share
of the fee.

Position ``i`` of a batch is the ``i``-th of its withdrawals in acceptance order (``seq``), the
order `TransactionRepository.load` reads them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address

from sluice.domain.addresses import Address
from sluice.domain.receipts import Log
from sluice.domain.transaction import Payload

__all__ = [
    "MAX_TRANSACTION_GAS",
    "PAY_NATIVE",
    "PAY_TOKEN",
    "Batch",
    "UnreadableBatchError",
    "batch_payload",
    "failed_index",
    "fee_shares",
    "paid_indices",
    "read_batch",
    "saves_gas",
]

#: ``payNative(address[],uint256[])``.
PAY_NATIVE: Final = bytes.fromhex("f5d7dfcc")
#: ``payToken(address,address[],uint256[])``.
PAY_TOKEN: Final = bytes.fromhex("d06de941")
#: ``PaymentFailed(uint256)``: the revert of a batch whose payment at an index failed.
PAYMENT_FAILED: Final = bytes.fromhex("1e67017f")

#: The length of a ``Paid(index)`` log's data: the index as a big-endian ``uint32``.
PAID_BYTES: Final = 4

#: EIP-7825's cap on one transaction's gas (2**24): a batch's gas limit stays below it.
MAX_TRANSACTION_GAS: Final = 16_777_216


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch call read back from its bytes: the token (None: the native coin) and the
    payments, in order."""

    token: Address | None
    payments: tuple[tuple[Address, int], ...]


class UnreadableBatchError(ValueError):
    """Bytes sent to a batch contract that are not a well-formed batch call."""


def batch_payload(
    contract: Address, token: Address | None, payments: Sequence[tuple[Address, int]]
) -> Payload:
    """The payload that pays ``payments`` (destination, base units) through ``contract``: the
    native coin when ``token`` is None, else that ERC-20 token."""
    recipients = [to for to, _ in payments]
    amounts = [amount for _, amount in payments]
    if token is None:
        data = PAY_NATIVE + encode(["address[]", "uint256[]"], [recipients, amounts])
        return Payload(to=contract, value=sum(amounts), data=data)
    data = PAY_TOKEN + encode(["address", "address[]", "uint256[]"], [token, recipients, amounts])
    return Payload(to=contract, value=0, data=data)


def read_batch(payload: Payload) -> Batch:
    """The payments a batch call makes.

    Raises:
        UnreadableBatchError: Another selector, bytes that do not decode, arrays of different
            lengths, a native batch whose value is not the sum of its amounts, a token batch that
            sends the coin too, or bytes that are not the canonical encoding of what they decode
            to.
    """
    selector, body = payload.data[:4], payload.data[4:]
    try:
        if selector == PAY_NATIVE:
            recipients, amounts = decode(["address[]", "uint256[]"], body)
            token: Address | None = None
        elif selector == PAY_TOKEN:
            raw_token, recipients, amounts = decode(["address", "address[]", "uint256[]"], body)
            token = _checksummed(raw_token)
        else:
            raise UnreadableBatchError(
                "a call to a batch contract that is neither payNative nor payToken"
            )
    except (DecodingError, OverflowError, ValueError) as exc:
        if isinstance(exc, UnreadableBatchError):
            raise
        raise UnreadableBatchError(f"a batch call that does not decode: {exc}") from None
    if len(recipients) != len(amounts):
        raise UnreadableBatchError("a batch call whose arrays differ in length")
    payments = tuple(
        (_checksummed(to), int(amount)) for to, amount in zip(recipients, amounts, strict=True)
    )
    if batch_payload(payload.to, token, payments).data != payload.data:
        raise UnreadableBatchError("a batch call that is not canonically encoded")
    expected_value = sum(a for _, a in payments) if token is None else 0
    if payload.value != expected_value:
        raise UnreadableBatchError(
            f"a batch call that sends {payload.value} wei of the coin; it pays {expected_value}"
        )
    return Batch(token=token, payments=payments)


def failed_index(revert_data: bytes) -> int | None:
    """The index a batch's ``PaymentFailed(index)`` revert names, if that is what it is."""
    if len(revert_data) != 36 or revert_data[:4] != PAYMENT_FAILED:
        return None
    return int.from_bytes(revert_data[4:], "big")


def paid_indices(logs: Iterable[Log], contract: Address) -> frozenset[int]:
    """The positions whose ``Paid(index)`` record ``contract`` itself logged in ``logs``: its
    logs without a topic and with 4 bytes of data (the only logs it emits)."""
    indices = set()
    for log in logs:
        if log.address.lower() != contract.lower() or log.topics or len(log.data) != PAID_BYTES:
            continue
        indices.add(int.from_bytes(log.data, "big"))
    return frozenset(indices)


def fee_shares(total: int, count: int) -> list[int]:
    """``total`` split into ``count`` integer shares that add up to it exactly: equal, the
    first ``total % count`` one wei more."""
    if count <= 0:
        raise ValueError("a fee is shared by at least one withdrawal")
    share, rest = divmod(total, count)
    return [share + (1 if i < rest else 0) for i in range(count)]


def saves_gas(batch_gas: int, single_gas: Iterable[int]) -> bool:
    """Whether one batch using ``batch_gas`` costs less than paying each on its own, at the
    gas each single transaction would use."""
    return batch_gas < sum(single_gas)


def _checksummed(address: str) -> Address:
    return Address(to_checksum_address(address))
