"""Fee rules: caps, replacement pricing, and when a transaction counts as stuck."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sluice.domain.fees import (
    GWEI,
    MIN_BUMP_PERCENT,
    BaseFeeMultiple,
    FeeMarket,
    FeePolicy,
    Fees,
    raised,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_the_most_gas_can_cost_is_gas_times_the_fee_cap() -> None:
    assert Fees(max_fee_per_gas=3 * GWEI, max_priority_fee_per_gas=GWEI).max_cost(21_000) == (
        63_000 * GWEI
    )


@pytest.mark.parametrize(
    ("value", "percent", "expected"),
    [
        pytest.param(100, 10, 110, id="exact"),
        pytest.param(101, 10, 112, id="rounded-up"),
        pytest.param(0, 20, 0, id="zero"),
    ],
)
def test_raising_rounds_up_as_a_node_compares_exact_integers(
    value: int, percent: int, expected: int
) -> None:
    assert raised(value, percent) == expected


def test_first_attempt_fees_are_the_markets_within_the_cap() -> None:
    policy = FeePolicy(max_fee_per_gas=50 * GWEI)
    market = Fees(max_fee_per_gas=80 * GWEI, max_priority_fee_per_gas=60 * GWEI)

    assert policy.capped(market) == Fees(50 * GWEI, 50 * GWEI)
    cheap = Fees(10 * GWEI, GWEI)
    assert policy.capped(cheap) == cheap


def test_a_replacement_raises_both_fees_by_the_bump_when_the_market_is_calm() -> None:
    policy = FeePolicy(bump_percent=20)
    previous = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI)

    assert policy.replacement(previous, market=Fees(5 * GWEI, GWEI // 2)) == Fees(
        12 * GWEI, GWEI * 12 // 10
    )


def test_a_replacement_meets_a_risen_market_in_one_step() -> None:
    policy = FeePolicy(bump_percent=20)
    previous = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI)
    market = Fees(max_fee_per_gas=40 * GWEI, max_priority_fee_per_gas=3 * GWEI)

    assert policy.replacement(previous, market) == market


def test_no_replacement_when_the_cap_leaves_no_room_for_the_rise_a_node_requires() -> None:
    policy = FeePolicy(max_fee_per_gas=10 * GWEI + 5)
    previous = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI)

    assert policy.replacement(previous, market=previous) is None


def test_no_replacement_when_the_cap_keeps_the_tip_from_rising_enough() -> None:
    # A tip above its fee cap (a node would take the cap as the tip) cannot rise 10% under a cap
    # that lets the fee cap itself rise 10%.
    policy = FeePolicy(max_fee_per_gas=115 * GWEI // 10)
    previous = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=12 * GWEI)

    assert policy.replacement(previous, market=previous) is None


def test_a_replacement_up_to_the_cap_is_still_one_when_both_rise_by_ten_percent() -> None:
    policy = FeePolicy(max_fee_per_gas=11 * GWEI, bump_percent=50)
    previous = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI)

    assert policy.replacement(previous, market=previous) == Fees(11 * GWEI, GWEI * 15 // 10)


def test_an_attempt_is_stuck_once_it_waited_the_policys_time() -> None:
    policy = FeePolicy(stuck_after_s=60)

    assert not policy.is_stuck(T0, T0 + timedelta(seconds=59))
    assert policy.is_stuck(T0, T0 + timedelta(seconds=60))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"bump_percent": MIN_BUMP_PERCENT - 1}, id="bump-below-ten"),
        pytest.param({"max_fee_per_gas": 0}, id="no-cap"),
        pytest.param({"stuck_after_s": 0}, id="never-waits"),
    ],
)
def test_a_policy_nodes_would_not_honour_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        FeePolicy(**changes)


def test_the_default_strategy_prices_twice_the_next_base_fee_plus_the_tip() -> None:
    market = FeeMarket(base_fee=30 * GWEI, priority_fee=2 * GWEI)
    assert BaseFeeMultiple().price(market) == Fees(62 * GWEI, 2 * GWEI)
    assert BaseFeeMultiple(multiplier=3).price(market) == Fees(92 * GWEI, 2 * GWEI)


def test_a_price_is_kept_within_the_networks_cap() -> None:
    policy = FeePolicy(max_fee_per_gas=50 * GWEI)
    assert policy.price(FeeMarket(base_fee=10 * GWEI, priority_fee=GWEI)) == Fees(21 * GWEI, GWEI)
    assert policy.price(FeeMarket(base_fee=40 * GWEI, priority_fee=60 * GWEI)) == Fees(
        50 * GWEI, 50 * GWEI
    )


def test_a_multiplier_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BaseFeeMultiple(multiplier=0)
