"""Fee rules: each level on EIP-1559 and legacy networks, base-fee projection, floors and caps,
replacement pricing, and when a transaction counts as stuck."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sluice.domain.fees import (
    GWEI,
    LEVELS,
    MIN_BUMP_PERCENT,
    FeeLevel,
    FeeMarket,
    FeeModel,
    FeePolicy,
    Fees,
    least_replacement,
    projected_base_fee,
    raised,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SLOW, NORMAL, FAST = FeeLevel.SLOW, FeeLevel.NORMAL, FeeLevel.FAST
#: No base-fee projection: the fee cap is the base fee plus the tip, easy to read.
FLAT = FeePolicy(base_fee_blocks=0)
LEGACY = FeePolicy(model=FeeModel.LEGACY)
MARKET = FeeMarket(base_fee=10 * GWEI, priority_fee=GWEI, rewards=(2 * GWEI, 3 * GWEI, 5 * GWEI))


# ── Fees, levels, arithmetic ──────────────────────────────────────────────────────────────────


def test_the_most_gas_can_cost_is_gas_times_the_fee_cap() -> None:
    assert Fees(max_fee_per_gas=3 * GWEI, max_priority_fee_per_gas=GWEI).max_cost(21_000) == (
        63_000 * GWEI
    )


def test_legacy_fees_are_one_gas_price_as_both_the_cap_and_the_tip() -> None:
    assert Fees.legacy(7 * GWEI) == Fees(
        max_fee_per_gas=7 * GWEI, max_priority_fee_per_gas=7 * GWEI
    )


def test_levels_run_slowest_first_and_each_knows_its_rank() -> None:
    assert LEVELS == (SLOW, NORMAL, FAST)
    assert [level.rank for level in LEVELS] == [0, 1, 2]
    assert FeeLevel("fast") is FAST


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


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(100, 110, id="ten-percent-more"),
        pytest.param(101, 112, id="rounded-up"),
        pytest.param(5, 6, id="small-values-round-up"),
        pytest.param(0, 1, id="zero-must-become-one-wei"),
    ],
)
def test_the_least_replacement_is_ten_percent_more_and_more_at_all(
    value: int, expected: int
) -> None:
    assert least_replacement(value) == expected


@pytest.mark.parametrize(
    ("base_fee", "blocks", "expected"),
    [
        pytest.param(100, 0, 100, id="no-blocks-is-the-base-fee"),
        pytest.param(100, 1, 113, id="one-block-112.5-rounded-up"),
        pytest.param(100, 2, 128, id="each-block-rounds-up-127.125"),
        pytest.param(8, 1, 9, id="exactly-9-stays-9"),
        pytest.param(0, 6, 0, id="zero-stays-zero"),
        pytest.param(30 * GWEI, 6, 60_818_595_888, id="six-blocks-about-twice"),
    ],
)
def test_the_base_fee_projects_by_an_eighth_per_full_block_rounded_up(
    base_fee: int, blocks: int, expected: int
) -> None:
    assert projected_base_fee(base_fee, blocks) == expected


# ── First attempts on EIP-1559 networks ───────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("level", "tip"),
    [
        pytest.param(SLOW, 2 * GWEI, id="slow-first-percentile"),
        pytest.param(NORMAL, 3 * GWEI, id="normal-second-percentile"),
        pytest.param(FAST, 5 * GWEI, id="fast-third-percentile"),
    ],
)
def test_each_level_tips_the_reward_of_its_percentile(level: FeeLevel, tip: int) -> None:
    assert FLAT.price(MARKET, level) == Fees(
        max_fee_per_gas=10 * GWEI + tip, max_priority_fee_per_gas=tip
    )


def test_the_fee_cap_covers_the_base_fee_projected_over_the_policys_blocks() -> None:
    market = FeeMarket(base_fee=30 * GWEI, priority_fee=GWEI, rewards=(GWEI, 2 * GWEI, 3 * GWEI))
    assert FeePolicy().price(market, NORMAL) == Fees(60_818_595_888 + 2 * GWEI, 2 * GWEI)
    assert FeePolicy(base_fee_blocks=1).price(market, FAST) == Fees(
        33_750_000_000 + 3 * GWEI, 3 * GWEI
    )


def test_a_level_whose_percentile_paid_no_reward_tips_the_nodes_suggestion() -> None:
    market = FeeMarket(base_fee=10 * GWEI, priority_fee=GWEI, rewards=(0, 3 * GWEI, 5 * GWEI))
    assert FLAT.price(market, SLOW) == Fees(11 * GWEI, GWEI)
    assert FLAT.price(market, NORMAL) == Fees(13 * GWEI, 3 * GWEI)


@pytest.mark.parametrize(
    "rewards",
    [
        pytest.param((), id="no-history"),
        pytest.param((2 * GWEI, 3 * GWEI), id="not-one-per-level"),
    ],
)
def test_without_a_reward_per_level_every_level_tips_the_nodes_suggestion(
    rewards: tuple[int, ...],
) -> None:
    market = FeeMarket(base_fee=10 * GWEI, priority_fee=GWEI, rewards=rewards)
    assert set(FLAT.levels(market).values()) == {Fees(11 * GWEI, GWEI)}


def test_the_networks_default_level_prices_a_request_that_names_none() -> None:
    assert FLAT.price(MARKET) == FLAT.price(MARKET, NORMAL)
    fast_by_default = FeePolicy(base_fee_blocks=0, default_level=FAST)
    assert fast_by_default.price(MARKET) == Fees(15 * GWEI, 5 * GWEI)
    assert fast_by_default.price(MARKET, None) == fast_by_default.price(MARKET, FAST)
    assert fast_by_default.price(MARKET, SLOW) == Fees(12 * GWEI, 2 * GWEI)


def test_levels_prices_every_level_slowest_first() -> None:
    levels = FLAT.levels(MARKET)
    assert list(levels) == list(LEVELS)
    assert levels == {level: FLAT.price(MARKET, level) for level in LEVELS}
    assert [fees.max_priority_fee_per_gas for fees in levels.values()] == [
        2 * GWEI,
        3 * GWEI,
        5 * GWEI,
    ]


def test_the_minimum_tip_is_a_floor_under_every_level() -> None:
    policy = FeePolicy(base_fee_blocks=0, min_tip_per_gas=25 * GWEI)
    assert policy.levels(MARKET) == dict.fromkeys(LEVELS, Fees(35 * GWEI, 25 * GWEI))
    above = FeeMarket(base_fee=10 * GWEI, rewards=(GWEI, 2 * GWEI, 40 * GWEI))
    assert policy.price(above, FAST) == Fees(50 * GWEI, 40 * GWEI)


def test_a_price_is_kept_within_the_networks_cap() -> None:
    policy = FeePolicy(max_fee_per_gas=50 * GWEI, base_fee_blocks=0)
    assert policy.price(FeeMarket(base_fee=10 * GWEI, priority_fee=GWEI)) == Fees(11 * GWEI, GWEI)
    assert policy.price(FeeMarket(base_fee=40 * GWEI, priority_fee=60 * GWEI)) == Fees(
        50 * GWEI, 50 * GWEI
    )


def test_the_maximum_tip_caps_the_tip_before_the_fee_cap_is_built_on_it() -> None:
    policy = FeePolicy(base_fee_blocks=0, max_tip_per_gas=4 * GWEI)
    assert policy.price(MARKET, NORMAL) == Fees(13 * GWEI, 3 * GWEI)
    assert policy.price(MARKET, FAST) == Fees(14 * GWEI, 4 * GWEI)


def test_a_cap_wins_over_a_floor() -> None:
    tip_capped = FeePolicy(base_fee_blocks=0, min_tip_per_gas=30 * GWEI, max_tip_per_gas=20 * GWEI)
    assert tip_capped.price(MARKET) == Fees(30 * GWEI, 20 * GWEI)
    fee_capped = FeePolicy(base_fee_blocks=0, min_tip_per_gas=30 * GWEI, max_fee_per_gas=25 * GWEI)
    assert fee_capped.price(MARKET) == Fees(25 * GWEI, 25 * GWEI)


def test_first_attempt_fees_are_the_markets_within_the_cap() -> None:
    policy = FeePolicy(max_fee_per_gas=50 * GWEI)
    market = Fees(max_fee_per_gas=80 * GWEI, max_priority_fee_per_gas=60 * GWEI)

    assert policy.capped(market) == Fees(50 * GWEI, 50 * GWEI)
    cheap = Fees(10 * GWEI, GWEI)
    assert policy.capped(cheap) == cheap


# ── First attempts on legacy networks ─────────────────────────────────────────────────────────


def test_a_policy_knows_its_model() -> None:
    assert LEGACY.legacy
    assert not FeePolicy().legacy


@pytest.mark.parametrize(
    ("level", "gas_price"),
    [
        pytest.param(SLOW, 101, id="slow-100-percent"),
        pytest.param(NORMAL, 127, id="normal-125-percent-of-126.25-rounded-up"),
        pytest.param(FAST, 152, id="fast-150-percent-of-151.5-rounded-up"),
    ],
)
def test_a_legacy_level_is_the_nodes_gas_price_times_its_factor_rounded_up(
    level: FeeLevel, gas_price: int
) -> None:
    market = FeeMarket(base_fee=50, priority_fee=40, rewards=(30, 40, 50), gas_price=101)
    assert LEGACY.price(market, level) == Fees.legacy(gas_price)


def test_a_legacy_policy_takes_its_own_factors_and_default_level() -> None:
    policy = FeePolicy(model=FeeModel.LEGACY, gas_price_percent=(100, 100, 300), default_level=SLOW)
    market = FeeMarket(gas_price=3 * GWEI)
    assert policy.price(market) == Fees.legacy(3 * GWEI)
    assert policy.levels(market) == {
        SLOW: Fees.legacy(3 * GWEI),
        NORMAL: Fees.legacy(3 * GWEI),
        FAST: Fees.legacy(9 * GWEI),
    }


def test_the_minimum_gas_price_is_a_floor_on_legacy_networks() -> None:
    policy = FeePolicy(model=FeeModel.LEGACY, min_gas_price=GWEI)
    assert policy.price(FeeMarket(gas_price=GWEI // 10), FAST) == Fees.legacy(GWEI)
    assert policy.price(FeeMarket(gas_price=2 * GWEI), FAST) == Fees.legacy(3 * GWEI)


def test_the_cap_wins_over_the_minimum_gas_price() -> None:
    policy = FeePolicy(model=FeeModel.LEGACY, min_gas_price=10 * GWEI, max_fee_per_gas=5 * GWEI)
    assert policy.price(FeeMarket(gas_price=GWEI)) == Fees.legacy(5 * GWEI)


def test_a_capped_legacy_price_stays_one_price() -> None:
    policy = FeePolicy(model=FeeModel.LEGACY, max_fee_per_gas=50 * GWEI)
    assert policy.capped(Fees(80 * GWEI, 2 * GWEI)) == Fees.legacy(50 * GWEI)
    assert policy.capped(Fees.legacy(20 * GWEI)) == Fees.legacy(20 * GWEI)


# ── Replacements on EIP-1559 networks ─────────────────────────────────────────────────────────


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


def test_a_replacement_takes_the_higher_of_the_bump_and_the_market_for_each_fee() -> None:
    policy = FeePolicy(bump_percent=20)
    previous = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI)
    market = Fees(max_fee_per_gas=11 * GWEI, max_priority_fee_per_gas=2 * GWEI)

    assert policy.replacement(previous, market) == Fees(12 * GWEI, 2 * GWEI)


def test_a_replacement_of_a_zero_tip_offers_at_least_one_wei() -> None:
    # geth refuses a replacement whose tip is not higher at all, and 10 % of nothing is nothing
    # (Arbitrum's node suggests no tip).
    previous = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=0)

    assert FeePolicy().replacement(previous, market=previous) == Fees(12 * GWEI, 1)


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


@pytest.mark.parametrize(
    ("max_tip", "previous_tip"),
    [
        pytest.param(GWEI, GWEI, id="tip-already-at-the-cap"),
        pytest.param(GWEI + GWEI // 20, GWEI, id="room-for-five-percent-only"),
        pytest.param(0, 0, id="no-tip-allowed"),
    ],
)
def test_no_replacement_when_the_maximum_tip_leaves_no_room(
    max_tip: int, previous_tip: int
) -> None:
    policy = FeePolicy(max_tip_per_gas=max_tip)
    previous = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=previous_tip)

    assert policy.replacement(previous, market=previous) is None


def test_a_replacement_up_to_the_cap_is_still_one_when_both_rise_by_ten_percent() -> None:
    policy = FeePolicy(max_fee_per_gas=11 * GWEI, bump_percent=50)
    previous = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI)

    assert policy.replacement(previous, market=previous) == Fees(11 * GWEI, GWEI * 15 // 10)


def test_a_replacement_is_capped_at_the_maximum_tip_when_ten_percent_still_fits() -> None:
    policy = FeePolicy(bump_percent=50, max_tip_per_gas=GWEI * 12 // 10)
    previous = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI)

    assert policy.replacement(previous, market=previous) == Fees(15 * GWEI, GWEI * 12 // 10)


# ── Replacements on legacy networks ───────────────────────────────────────────────────────────


def test_a_legacy_replacement_raises_the_gas_price_by_the_bump_and_stays_one_price() -> None:
    previous = Fees.legacy(100 * GWEI)
    replacement = LEGACY.replacement(previous, market=Fees.legacy(50 * GWEI))

    assert replacement == Fees.legacy(120 * GWEI)


def test_a_legacy_replacement_rises_at_least_ten_percent() -> None:
    policy = FeePolicy(model=FeeModel.LEGACY, bump_percent=MIN_BUMP_PERCENT)

    assert policy.replacement(Fees.legacy(101), market=Fees.legacy(1)) == Fees.legacy(112)


def test_a_legacy_replacement_goes_up_to_the_market_level_when_it_is_higher() -> None:
    previous = Fees.legacy(100 * GWEI)

    assert LEGACY.replacement(previous, market=Fees.legacy(150 * GWEI)) == Fees.legacy(150 * GWEI)


def test_a_legacy_replacement_stops_at_the_cap_when_ten_percent_still_fits() -> None:
    policy = FeePolicy(model=FeeModel.LEGACY, max_fee_per_gas=115 * GWEI)

    assert policy.replacement(Fees.legacy(100 * GWEI), market=Fees.legacy(200 * GWEI)) == (
        Fees.legacy(115 * GWEI)
    )


def test_no_legacy_replacement_when_the_cap_leaves_no_room() -> None:
    policy = FeePolicy(model=FeeModel.LEGACY, max_fee_per_gas=109 * GWEI)

    assert policy.replacement(Fees.legacy(100 * GWEI), market=Fees.legacy(200 * GWEI)) is None


def test_a_legacy_replacement_of_a_zero_gas_price_offers_one_wei() -> None:
    assert LEGACY.replacement(Fees.legacy(0), market=Fees.legacy(0)) == Fees.legacy(1)


# ── Stuck attempts and validation ─────────────────────────────────────────────────────────────


def test_an_attempt_is_stuck_once_it_waited_the_policys_time() -> None:
    policy = FeePolicy(stuck_after_s=60)

    assert not policy.is_stuck(T0, T0 + timedelta(seconds=59))
    assert policy.is_stuck(T0, T0 + timedelta(seconds=60))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"bump_percent": MIN_BUMP_PERCENT - 1}, "bump_percent", id="bump-below-ten"),
        pytest.param({"max_fee_per_gas": 0}, "max_fee_per_gas", id="no-cap"),
        pytest.param({"stuck_after_s": 0}, "stuck_after_s", id="never-waits"),
        pytest.param({"max_tip_per_gas": -1}, "max_tip_per_gas", id="negative-tip-cap"),
        pytest.param({"min_tip_per_gas": -1}, "floors", id="negative-tip-floor"),
        pytest.param({"min_gas_price": -1}, "floors", id="negative-gas-price-floor"),
        pytest.param({"percentiles": (50, 10, 85)}, "percentiles", id="percentiles-not-in-order"),
        pytest.param({"percentiles": (-1, 50, 85)}, "percentiles", id="percentile-below-0"),
        pytest.param({"percentiles": (10, 50, 101)}, "percentiles", id="percentile-above-100"),
        pytest.param(
            {"gas_price_percent": (150, 125, 100)}, "gas price factors", id="factors-not-in-order"
        ),
        pytest.param({"gas_price_percent": (0, 125, 150)}, "gas price factors", id="zero-factor"),
        pytest.param({"history_blocks": 0}, "history_blocks", id="no-history"),
        pytest.param({"history_blocks": 1025}, "history_blocks", id="history-beyond-1024"),
        pytest.param({"base_fee_blocks": -1}, "base_fee_blocks", id="negative-projection"),
        pytest.param({"base_fee_blocks": 65}, "base_fee_blocks", id="projection-beyond-64"),
    ],
)
def test_a_policy_nodes_would_not_honour_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeePolicy(**changes)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"bump_percent": MIN_BUMP_PERCENT}, id="bump-of-ten"),
        pytest.param({"max_tip_per_gas": 0}, id="no-tip"),
        pytest.param({"percentiles": (0, 0, 100)}, id="percentiles-0-to-100-ties-allowed"),
        pytest.param({"gas_price_percent": (1, 1, 1)}, id="factors-of-one-percent"),
        pytest.param({"history_blocks": 1, "base_fee_blocks": 0}, id="least-history"),
        pytest.param({"history_blocks": 1024, "base_fee_blocks": 64}, id="most-history"),
    ],
)
def test_a_policy_at_the_limits_is_accepted(changes: dict[str, Any]) -> None:
    policy = FeePolicy(**changes)
    for name, value in changes.items():
        assert getattr(policy, name) == value
