"""Fee rules: what a transaction offers, at which level, within which limits, and how a stuck
one is re-priced.

A network prices in one of two models. **EIP-1559** (type 2): the tip of each level is the
average, over the last ``history_blocks`` blocks, of the reward paid at that level's percentile
(``eth_feeHistory``; blocks that paid no reward at all are left out, as Chainlink's fee-history
estimator does), or the node's suggestion when the history has none; the fee cap is the next
block's base fee projected over ``base_fee_blocks`` full blocks (+12.5 % each, EIP-1559's
largest step) plus the tip, so a transaction stays includable until Sluice re-prices it; only
the actual base fee plus the tip is ever charged. **Legacy** (type 0, EIP-155): the gas price is
the node's ``eth_gasPrice`` times the level's factor. Then floors (Polygon's minimum tip) and
caps (``max_fee_per_gas``, ``max_tip_per_gas``) apply; a cap always wins over a floor. The
defaults and their reasons are in docs/networks.md, "Fees".

Replacement pricing follows what nodes accept: geth (and most clients) take a replacement at the
same nonce only if both the fee cap and the tip rise by at least 10% (a legacy gas price
likewise). A replacement rises by the network's ``bump_percent`` (at least 10) or to what the
transaction's level asks now, whichever is higher, so a risen base fee is met in one step; it
never goes above the caps. When the caps leave no room for a 10% rise, no replacement can help,
and the stored attempt is sent again unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

#: The smallest rise of both the fee cap and the tip a node accepts for a replacement.
MIN_BUMP_PERCENT = 10

GWEI = 10**9


class FeeModel(enum.StrEnum):
    """How a network's transactions pay for gas."""

    EIP1559 = "eip1559"
    """Type-2 transactions: a fee cap and a tip over the block's base fee."""
    LEGACY = "legacy"
    """Type-0 (EIP-155) transactions: one gas price (chains without EIP-1559, and BNB Smart
    Chain, whose base fee is zero)."""


class FeeLevel(enum.StrEnum):
    """How urgently a transaction should be included: what a withdrawal's ``priority`` names."""

    SLOW = "slow"
    NORMAL = "normal"
    FAST = "fast"

    @property
    def rank(self) -> int:
        """Its position in `LEVELS` (slow 0, normal 1, fast 2)."""
        return LEVELS.index(self)


#: Every level, slowest first: the order of per-level settings.
LEVELS: tuple[FeeLevel, ...] = (FeeLevel.SLOW, FeeLevel.NORMAL, FeeLevel.FAST)


@dataclass(frozen=True, slots=True)
class Fees:
    """A transaction's fee parameters, in wei per gas. A legacy transaction's gas price is both
    the fee cap and the tip (it pays exactly that, and a replacement must raise it)."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def max_cost(self, gas: int) -> int:
        """The most ``gas`` can cost at these fees, in wei."""
        return gas * self.max_fee_per_gas

    @classmethod
    def legacy(cls, gas_price: int) -> Fees:
        """The fees of a legacy transaction at ``gas_price``."""
        return cls(max_fee_per_gas=gas_price, max_priority_fee_per_gas=gas_price)


@dataclass(frozen=True, slots=True)
class FeeMarket:
    """What the chain asks for now: what a fee policy prices from."""

    base_fee: int = 0
    """The next block's base fee, in wei per gas (0 on a legacy network)."""
    priority_fee: int = 0
    """The tip the node suggests (``eth_maxPriorityFeePerGas``), in wei per gas."""
    rewards: tuple[int, ...] = ()
    """The average reward at each requested percentile over recent blocks (``eth_feeHistory``),
    in the order asked; empty when the node has no history."""
    gas_price: int = 0
    """The node's ``eth_gasPrice`` (legacy networks), in wei per gas."""


class Finality(enum.StrEnum):
    """When a network's transactions are final, and the ledger may settle."""

    DEPTH = "depth"
    """After the network's number of confirmations (the block and the ones on top of it)."""
    FINALIZED = "finalized"
    """When the node's ``finalized`` block tag has reached the block."""


@dataclass(frozen=True, slots=True)
class FeePolicy:
    """A network's fee strategy: its model, its levels, its floors and caps, and when a
    transaction counts as stuck."""

    model: FeeModel = FeeModel.EIP1559
    max_fee_per_gas: int = 500 * GWEI
    """The highest fee cap (legacy: gas price) any attempt may carry, in wei per gas."""
    max_tip_per_gas: int | None = None
    """The highest tip any attempt may carry; None: only ``max_fee_per_gas`` bounds it."""
    min_tip_per_gas: int = 0
    """The least tip a first attempt offers (Polygon's validators refuse less than 25 gwei)."""
    min_gas_price: int = 0
    """The least gas price a legacy first attempt offers (BNB Smart Chain's nodes' floor)."""
    bump_percent: int = 20
    """How much a replacement raises both the fee cap and the tip, at least."""
    stuck_after_s: float = 60.0
    """How long an attempt may go without a receipt before it is replaced (or re-sent)."""
    percentiles: tuple[int, int, int] = (10, 50, 85)
    """The reward percentile of each level (slow, normal, fast), EIP-1559 networks."""
    gas_price_percent: tuple[int, int, int] = (100, 125, 150)
    """The multiple of ``eth_gasPrice``, in percent, of each level, legacy networks."""
    history_blocks: int = 5
    """How many recent blocks the percentiles are averaged over."""
    base_fee_blocks: int = 6
    """Full blocks of base-fee growth the fee cap covers (6: about twice the next base fee)."""
    default_level: FeeLevel = FeeLevel.NORMAL
    """The level of a withdrawal that names none."""

    def __post_init__(self) -> None:
        if self.bump_percent < MIN_BUMP_PERCENT:
            raise ValueError(f"bump_percent must be at least {MIN_BUMP_PERCENT}")
        if self.max_fee_per_gas <= 0 or self.stuck_after_s <= 0:
            raise ValueError("max_fee_per_gas and stuck_after_s must be positive")
        if self.max_tip_per_gas is not None and self.max_tip_per_gas < 0:
            raise ValueError("max_tip_per_gas cannot be negative")
        if self.min_tip_per_gas < 0 or self.min_gas_price < 0:
            raise ValueError("fee floors cannot be negative")
        if not all(0 <= p <= 100 for p in self.percentiles):
            raise ValueError("percentiles must be between 0 and 100")
        if list(self.percentiles) != sorted(self.percentiles):
            raise ValueError("percentiles must rise from slow to fast (e.g. [10, 50, 85])")
        if not all(p >= 1 for p in self.gas_price_percent):
            raise ValueError("gas price factors must be positive")
        if list(self.gas_price_percent) != sorted(self.gas_price_percent):
            raise ValueError("gas price factors must rise from slow to fast (e.g. [100, 125, 150])")
        if not 1 <= self.history_blocks <= 1024 or not 0 <= self.base_fee_blocks <= 64:
            raise ValueError("history_blocks must be 1-1024 and base_fee_blocks 0-64")

    @property
    def legacy(self) -> bool:
        """Whether the network takes legacy (type 0) transactions."""
        return self.model is FeeModel.LEGACY

    def price(self, market: FeeMarket, level: FeeLevel | None = None) -> Fees:
        """Fees for a first attempt signed now at ``level`` (default: the network's), within
        the floors and caps."""
        level = level or self.default_level
        if self.legacy:
            factor = self.gas_price_percent[level.rank]
            gas_price = max(-(-market.gas_price * factor // 100), self.min_gas_price)
            return self.capped(Fees.legacy(gas_price))
        reward = market.rewards[level.rank] if len(market.rewards) == len(LEVELS) else 0
        tip = max(reward or market.priority_fee, self.min_tip_per_gas)
        if self.max_tip_per_gas is not None:
            tip = min(tip, self.max_tip_per_gas)  # before the cap is built on it
        return self.capped(
            Fees(
                max_fee_per_gas=projected_base_fee(market.base_fee, self.base_fee_blocks) + tip,
                max_priority_fee_per_gas=tip,
            )
        )

    def levels(self, market: FeeMarket) -> dict[FeeLevel, Fees]:
        """What each level would offer now."""
        return {level: self.price(market, level) for level in LEVELS}

    def capped(self, fees: Fees) -> Fees:
        """``fees`` within the caps (a legacy gas price stays one price)."""
        cap = min(fees.max_fee_per_gas, self.max_fee_per_gas)
        if self.legacy:
            return Fees.legacy(cap)
        tip = min(fees.max_priority_fee_per_gas, cap)
        if self.max_tip_per_gas is not None:
            tip = min(tip, self.max_tip_per_gas)
        return Fees(max_fee_per_gas=cap, max_priority_fee_per_gas=tip)

    def replacement(self, previous: Fees, market: Fees) -> Fees | None:
        """Fees for a replacement of an attempt priced ``previous``, given what the
        transaction's level asks now (``market``, already priced by `price`).

        Returns:
            The new fees, or None when the caps leave no room for the rise a node requires
            (the caller re-sends the stored attempt unchanged instead).
        """
        tip = max(
            raised(previous.max_priority_fee_per_gas, self.bump_percent),
            least_replacement(previous.max_priority_fee_per_gas),
            market.max_priority_fee_per_gas,
        )
        cap = max(raised(previous.max_fee_per_gas, self.bump_percent), market.max_fee_per_gas, tip)
        fees = self.capped(Fees(max_fee_per_gas=cap, max_priority_fee_per_gas=tip))
        if fees.max_fee_per_gas < least_replacement(
            previous.max_fee_per_gas
        ) or fees.max_priority_fee_per_gas < least_replacement(previous.max_priority_fee_per_gas):
            return None
        return fees

    def is_stuck(self, last_attempt_at: datetime, now: datetime) -> bool:
        """Whether the latest attempt has waited long enough without a receipt."""
        return (now - last_attempt_at).total_seconds() >= self.stuck_after_s


def projected_base_fee(base_fee: int, blocks: int) -> int:
    """The base fee after ``blocks`` full blocks in a row (+12.5 % each, rounded up): the most
    it can be by then."""
    projected = base_fee
    for _ in range(blocks):
        projected = -(-projected * 1125 // 1000)
    return projected


def least_replacement(value: int) -> int:
    """The least a node takes in place of ``value`` (a fee cap or a tip) at the same nonce: 10 %
    more, and more at all (geth refuses an equal one, so a zero tip must become at least 1)."""
    return max(raised(value, MIN_BUMP_PERCENT), value + 1)


def raised(value: int, percent: int) -> int:
    """``value`` raised by ``percent``, rounded up (a node compares exact integers)."""
    return -(-value * (100 + percent) // 100)
