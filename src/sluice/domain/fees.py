"""Fee rules: what a transaction may pay, and how a stuck one is re-priced.

Replacement pricing follows what nodes accept: geth (and most clients) take a replacement at the
same nonce only if both the fee cap and the tip rise by at least 10%. A replacement rises by the
network's ``bump_percent`` (at least 10) or to what the market asks now, whichever is higher, so
a risen base fee is met in one step; it never goes above the network's ``max_fee_per_gas``. When
the cap leaves no room for a 10% rise, no replacement can help, and the stored attempt is sent
again unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

#: The smallest rise of both the fee cap and the tip a node accepts for a replacement.
MIN_BUMP_PERCENT = 10

GWEI = 10**9


@dataclass(frozen=True, slots=True)
class Fees:
    """EIP-1559 fee parameters, in wei per gas."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def max_cost(self, gas: int) -> int:
        """The most ``gas`` can cost at these fees, in wei."""
        return gas * self.max_fee_per_gas


@dataclass(frozen=True, slots=True)
class FeeMarket:
    """What the chain asks for now: what a fee strategy prices from."""

    base_fee: int
    """The next block's base fee, in wei per gas (the least any transaction in it pays)."""
    priority_fee: int
    """The tip the node suggests, in wei per gas."""


class FeeStrategy(Protocol):
    """How a network's first attempts are priced from the market (the networks issue adds
    percentile levels and legacy gas prices)."""

    def price(self, market: FeeMarket) -> Fees:
        """Fees for a transaction signed now, before any cap."""
        ...


@dataclass(frozen=True, slots=True)
class BaseFeeMultiple:
    """Fee cap ``multiplier`` times the next block's base fee + the tip; the tip as suggested.

    The base fee rises by at most 12.5% per full block (EIP-1559), so twice the next block's
    base fee keeps a transaction includable through about six full blocks in a row, while only
    the actual base fee plus the tip is ever charged (go-ethereum's and MetaMask's default).
    """

    multiplier: int = 2

    def __post_init__(self) -> None:
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def price(self, market: FeeMarket) -> Fees:
        return Fees(
            max_fee_per_gas=self.multiplier * market.base_fee + market.priority_fee,
            max_priority_fee_per_gas=market.priority_fee,
        )


class Finality(enum.StrEnum):
    """When a network's transactions are final, and the ledger may settle."""

    DEPTH = "depth"
    """After the network's number of confirmations (the block and the ones on top of it)."""
    FINALIZED = "finalized"
    """When the node's ``finalized`` block tag has reached the block."""


@dataclass(frozen=True, slots=True)
class FeePolicy:
    """A network's limits on fees and when a transaction counts as stuck."""

    max_fee_per_gas: int = 500 * GWEI
    """The highest fee cap any attempt may carry, in wei per gas."""
    bump_percent: int = 20
    """How much a replacement raises both the fee cap and the tip, at least."""
    stuck_after_s: float = 60.0
    """How long an attempt may go without a receipt before it is replaced (or re-sent)."""
    strategy: FeeStrategy = field(default_factory=BaseFeeMultiple)
    """How a first attempt is priced from the market."""

    def __post_init__(self) -> None:
        if self.bump_percent < MIN_BUMP_PERCENT:
            raise ValueError(f"bump_percent must be at least {MIN_BUMP_PERCENT}")
        if self.max_fee_per_gas <= 0 or self.stuck_after_s <= 0:
            raise ValueError("max_fee_per_gas and stuck_after_s must be positive")

    def price(self, market: FeeMarket) -> Fees:
        """Fees for an attempt signed now: the strategy's price, within the cap."""
        return self.capped(self.strategy.price(market))

    def capped(self, fees: Fees) -> Fees:
        """Fees for a first attempt: the market's, within the cap."""
        cap = min(fees.max_fee_per_gas, self.max_fee_per_gas)
        return Fees(
            max_fee_per_gas=cap, max_priority_fee_per_gas=min(fees.max_priority_fee_per_gas, cap)
        )

    def replacement(self, previous: Fees, market: Fees) -> Fees | None:
        """Fees for a replacement of an attempt priced ``previous``, given what the market asks.

        Returns:
            The new fees, or None when the cap leaves no room for the rise a node requires (the
            caller re-sends the stored attempt unchanged instead).
        """
        tip = max(
            raised(previous.max_priority_fee_per_gas, self.bump_percent),
            market.max_priority_fee_per_gas,
        )
        cap = max(raised(previous.max_fee_per_gas, self.bump_percent), market.max_fee_per_gas, tip)
        cap = min(cap, self.max_fee_per_gas)
        tip = min(tip, cap)
        if cap < raised(previous.max_fee_per_gas, MIN_BUMP_PERCENT) or tip < raised(
            previous.max_priority_fee_per_gas, MIN_BUMP_PERCENT
        ):
            return None
        return Fees(max_fee_per_gas=cap, max_priority_fee_per_gas=tip)

    def is_stuck(self, last_attempt_at: datetime, now: datetime) -> bool:
        """Whether the latest attempt has waited long enough without a receipt."""
        return (now - last_attempt_at).total_seconds() >= self.stuck_after_s


def raised(value: int, percent: int) -> int:
    """``value`` raised by ``percent``, rounded up (a node compares exact integers)."""
    return -(-value * (100 + percent) // 100)
