"""Ledger rules: a user's balance per asset is split into available and held.

A withdrawal moves its amount from available to held when it is accepted for payment; completion
settles (removes) the hold; failure or cancellation releases it back to available. No operation
may take either part below zero: the balance check is these rules, applied under a row lock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sluice.errors import InsufficientFundsError

#: The ledger account withdrawal fees are credited to, per network and asset. No platform user
#: can be it: user ids start with a letter or a digit (`sluice.domain.access.USER_ID_PATTERN`).
FEE_ACCOUNT = "_fees"


class EntryKind(enum.StrEnum):
    """What a ledger journal entry did to a balance."""

    CREDIT = "credit"
    """Funds added to available (a deposit, or an operator's credit)."""
    HOLD = "hold"
    """Funds moved from available to held for a withdrawal."""
    RELEASE = "release"
    """A hold returned to available (the withdrawal failed or was cancelled)."""
    SETTLE = "settle"
    """A hold removed for good (the withdrawal was paid on-chain)."""


@dataclass(frozen=True, slots=True)
class Balance:
    """One user's balance of one asset, in base units."""

    available: int = 0
    held: int = 0

    def __post_init__(self) -> None:
        if self.available < 0 or self.held < 0:
            raise ValueError("a balance is never negative")

    def apply(self, kind: EntryKind, amount: int) -> Balance:
        """The balance after one journal entry.

        Raises:
            InsufficientFundsError: A hold larger than what is available.
            ValueError: A non-positive amount, or a release or settle larger than the hold
                (a bug, never a user error).
        """
        if amount <= 0:
            raise ValueError("ledger amounts are positive")
        if kind is EntryKind.CREDIT:
            return Balance(self.available + amount, self.held)
        if kind is EntryKind.HOLD:
            if amount > self.available:
                raise InsufficientFundsError("available balance does not cover the amount")
            return Balance(self.available - amount, self.held + amount)
        if amount > self.held:
            raise ValueError(f"cannot {kind.value} more than is held")
        if kind is EntryKind.RELEASE:
            return Balance(self.available + amount, self.held - amount)
        return Balance(self.available, self.held - amount)
