"""What a transaction's payload pays, read back from its bytes, and whether that is exactly what
the withdrawals it names call for.

`payments_of` is the one reader of payloads: a native transfer (no data: ``value`` wei to
``to``) or an ERC-20 ``transfer(address,uint256)`` call to a configured token (no value), one
payment each; or a call to one of the network's batch contracts (`sluice.domain.batches`),
which reads to many payments. Everything that checks payments (`sluice.keyholder.policy`)
works the same for all of them.

`match_withdrawals` compares the payments with the withdrawals as multisets of (asset,
destination, amount): each withdrawal paid exactly once, nothing else paid. Its refusals say
which withdrawal or payment is at fault.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from eth_utils.address import to_checksum_address

from sluice.domain.addresses import Address
from sluice.domain.assets import Network
from sluice.domain.batches import UnreadableBatchError, read_batch
from sluice.domain.transaction import TRANSFER_SELECTOR, Payload
from sluice.domain.withdrawal import Withdrawal

__all__ = [
    "Payment",
    "PaymentMismatchError",
    "UnreadablePayloadError",
    "match_withdrawals",
    "owed",
    "payments_of",
]

_WORD: Final = 32
#: transfer(address,uint256): the selector and two 32-byte words.
_TRANSFER_LENGTH: Final = len(TRANSFER_SELECTOR) + 2 * _WORD
_ADDRESS_PADDING: Final = bytes(_WORD - 20)


@dataclass(frozen=True, slots=True)
class Payment:
    """``amount`` base units of an asset (its key on the network: `Asset.key`) to ``to``."""

    asset: str
    to: Address
    amount: int

    def __str__(self) -> str:
        return f"{self.amount} of {self.asset} to {self.to}"


class UnreadablePayloadError(ValueError):
    """A payload that is none of the payments `payments_of` knows how to read."""


class PaymentMismatchError(ValueError):
    """The payments are not exactly what the withdrawals call for."""


def payments_of(payload: Payload, network: Network) -> list[Payment]:
    """The payments a payload makes on ``network``, in the order it makes them.

    A plain transfer of nothing (no value, no data) pays nobody: ``[]``.

    Raises:
        UnreadablePayloadError: Data to an address that is not a configured token, a call that is
            not a well-formed ``transfer(address,uint256)``, or value sent with a token call.
    """
    to = _checksummed(payload.to)
    if payload.data and network.batching.is_contract(to):
        return _batch_payments(payload, network)
    if not payload.data:
        return [] if payload.value == 0 else [Payment(network.native.key, to, payload.value)]
    token = next((t for t in network.tokens if t.token_address == to), None)
    if token is None:
        raise UnreadablePayloadError(
            f"a call to {to}, which is no token configured on {network.name}"
        )
    if payload.value != 0:
        raise UnreadablePayloadError("a token call that also sends the native coin")
    data = payload.data
    if len(data) != _TRANSFER_LENGTH or data[: len(TRANSFER_SELECTOR)] != TRANSFER_SELECTOR:
        raise UnreadablePayloadError(
            f"a call to {token.symbol} that is not transfer(address,uint256)"
        )
    start = len(TRANSFER_SELECTOR)
    destination, amount = data[start : start + _WORD], data[start + _WORD :]
    if destination[: len(_ADDRESS_PADDING)] != _ADDRESS_PADDING:
        raise UnreadablePayloadError("a transfer whose address word is not an address")
    recipient = _checksummed("0x" + destination[len(_ADDRESS_PADDING) :].hex())
    return [Payment(token.key, recipient, int.from_bytes(amount, "big"))]


def _batch_payments(payload: Payload, network: Network) -> list[Payment]:
    try:
        batch = read_batch(payload)
    except UnreadableBatchError as exc:
        raise UnreadablePayloadError(str(exc)) from None
    if batch.token is None:
        key = network.native.key
    else:
        token = next((t for t in network.tokens if t.token_address == batch.token), None)
        if token is None:
            raise UnreadablePayloadError(
                f"a batch of {batch.token}, which is no token configured on {network.name}"
            )
        key = token.key
    return [Payment(key, to, amount) for to, amount in batch.payments]


def owed(withdrawal: Withdrawal) -> Payment:
    """The payment a withdrawal calls for."""
    return Payment(withdrawal.asset_key, _checksummed(withdrawal.to_address), withdrawal.amount)


def match_withdrawals(payments: Sequence[Payment], withdrawals: Sequence[Withdrawal]) -> None:
    """Check that ``payments`` pay each of ``withdrawals`` exactly once, and nothing else.

    Raises:
        PaymentMismatchError: No withdrawal named, one named twice, or the multisets differ: the
            message names each withdrawal paid a wrong amount, each one not paid, and each
            payment no withdrawal calls for.
    """
    if not withdrawals:
        raise PaymentMismatchError("a payout names the withdrawals it pays: none was named")
    named = Counter(w.id for w in withdrawals)
    twice = sorted(i for i, count in named.items() if count > 1)
    if twice:
        raise PaymentMismatchError(f"withdrawal {', '.join(twice)} is named more than once")
    left = Counter(payments)
    unpaid: list[Withdrawal] = []
    for withdrawal in withdrawals:
        payment = owed(withdrawal)
        if left[payment] > 0:
            left[payment] -= 1
        else:
            unpaid.append(withdrawal)
    extra = list(left.elements())
    if not unpaid and not extra:
        return
    raise PaymentMismatchError("; ".join(_reasons(unpaid, extra)))


def _reasons(unpaid: Iterable[Withdrawal], extra: list[Payment]) -> list[str]:
    """Why they differ: a wrong amount where an unpaid withdrawal and an extra payment share an
    asset and a destination, else the unpaid withdrawal and the extra payment each."""
    reasons: list[str] = []
    for withdrawal in unpaid:
        expected = owed(withdrawal)
        near = next((p for p in extra if (p.asset, p.to) == (expected.asset, expected.to)), None)
        if near is not None:
            extra.remove(near)
            reasons.append(
                f"withdrawal {withdrawal.id} is for {expected.amount} of {expected.asset} to "
                f"{expected.to}, the payload pays {near.amount}"
            )
        else:
            reasons.append(f"withdrawal {withdrawal.id} ({expected}) is not paid by the payload")
    reasons.extend(f"the payload pays {p}, which no named withdrawal calls for" for p in extra)
    return reasons


def _checksummed(address: str) -> Address:
    return Address(to_checksum_address(address))
