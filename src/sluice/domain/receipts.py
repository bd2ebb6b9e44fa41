"""What a mined transaction's receipt says it did: its event logs, and whether they show a
token payment.

A receipt's status only says the call did not revert. For a token that returns ``false`` instead
of reverting, or one that takes a fee on transfer, the ``Transfer`` event is what shows who was
paid how much: `token_transfer_paid` reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sluice.domain.addresses import Address

__all__ = ["MAX_UINT256", "TRANSFER_TOPIC", "Log", "address_topic", "token_transfer_paid"]

#: ``keccak256("Transfer(address,address,uint256)")``: the first topic of an ERC-20 (and an
#: ERC-721) ``Transfer`` event.
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

#: The largest value a ``uint256`` holds.
MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True, slots=True)
class Log:
    """One event a mined transaction emitted."""

    address: Address
    """The contract that emitted it."""
    topics: tuple[str, ...]
    """Its indexed topics (0 to 4), each 0x and 64 lowercase hexadecimal digits; the first is
    the event's signature hash unless the event is anonymous."""
    data: bytes
    """Its non-indexed arguments, ABI-encoded."""


def address_topic(address: Address) -> str:
    """An address as an indexed event argument: left-padded to 32 bytes, lowercase hex."""
    return "0x" + address[2:].lower().rjust(64, "0")


def token_transfer_paid(
    logs: Iterable[Log], token: Address, sender: Address, recipient: Address, amount: int
) -> bool:
    """Whether ``logs`` hold an ERC-20 ``Transfer(from=sender, to=recipient, value=amount)``
    emitted by the ``token`` contract itself.

    An event of the same shape from any other contract proves nothing (anyone can emit one), and
    an ERC-721 ``Transfer`` (its third argument indexed, so four topics) is not a token amount.

    Raises:
        ValueError: ``amount`` is not a ``uint256``.
    """
    if not 0 <= amount <= MAX_UINT256:
        raise ValueError("a token amount is a uint256")
    wanted = (TRANSFER_TOPIC, address_topic(sender), address_topic(recipient))
    value = amount.to_bytes(32, "big")
    return any(
        log.address.lower() == token.lower()
        and tuple(topic.lower() for topic in log.topics) == wanted
        and log.data == value
        for log in logs
    )


def token_transfer_seen(
    logs: Iterable[Log], token: Address, sender: Address, recipient: Address
) -> bool:
    """Whether ``logs`` hold a ``Transfer(from=sender, to=recipient)`` of any amount emitted by
    the ``token`` contract: something reached the recipient (a token that takes a fee on
    transfer pays less than was sent, and says so in its event)."""
    wanted = (TRANSFER_TOPIC, address_topic(sender), address_topic(recipient))
    return any(
        log.address.lower() == token.lower()
        and tuple(topic.lower() for topic in log.topics) == wanted
        and len(log.data) == 32
        for log in logs
    )
