"""Each condition of a rule, alone, matching and not; velocity limits by sum, value and count;
fees; the revision an approver names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from sluice.domain.addresses import Address
from sluice.domain.approvals import revision
from sluice.domain.policy import BUILT_IN, Candidate, Fee, Scope, Verdict, evaluate
from sluice.domain.policy_file import load
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
TO = Address("0x1111111111111111111111111111111111111111")
OTHER = Address("0x2222222222222222222222222222222222222222")
ETH = 10**18
BASE = Candidate(
    user_id="u1",
    network="base",
    asset_key="native",
    symbol="ETH",
    decimals=18,
    amount=ETH,
    to_address=TO,
    api_key_id="k1",
    now=NOW,
)


def _rule(condition: str) -> str:
    return (
        'label = "t"\n[prices]\nETH = "2000"\nUSDC = "1"\n[groups]\nvip = ["u1"]\nstaff = ["u9"]\n'
        '[address_book]\ncool_down = "1h"\n'
        f'[[rules]]\nname = "r"\n{condition}\naction = "deny"\ncode = "hit"\n'
        '[default]\naction = "allow"\n'
    )


@pytest.mark.parametrize(
    ("condition", "candidate", "hit"),
    [
        ('networks = ["base"]', BASE, True),
        ('networks = ["arbitrum"]', BASE, False),
        ('assets = ["base:ETH"]', BASE, True),
        ('assets = ["USDC"]', BASE, False),
        ('min_amount = "1"\nmax_amount = "1"', BASE, True),
        ('max_amount = "0.5"', BASE, False),
        ('min_usd = "2000"', BASE, True),
        ('max_usd = "1999"', BASE, False),
        ('users = ["u1"]', BASE, True),
        ('users = ["u2"]', BASE, False),
        ('groups = ["vip"]', BASE, True),
        ('groups = ["staff"]', BASE, False),
        (f'destinations = ["{TO}"]', BASE, True),
        (f'destinations = ["{OTHER}"]', BASE, False),
        ("in_address_book = true", replace(BASE, book_entry_added_at=NOW), True),
        ("in_address_book = true", BASE, False),
        ("in_address_book = false", BASE, True),
        ("cooling = false", replace(BASE, book_entry_added_at=NOW - timedelta(hours=2)), True),
        ("cooling = false", replace(BASE, book_entry_added_at=NOW), False),
        ('api_keys = ["k1"]', BASE, True),
        ('api_keys = ["k2"]', replace(BASE, api_key_id=None), False),
    ],
)
def test_each_condition_alone(condition: str, candidate: Candidate, hit: bool) -> None:
    decision = evaluate(load(_rule(condition).encode()), candidate)
    assert (decision.rule == "r") is hit, decision.why
    assert decision.verdict is (Verdict.DENY if hit else Verdict.ALLOW)


DAY = (Scope.USER, 86_400)


@pytest.mark.parametrize(
    ("limit", "totals", "hit"),
    [
        ('max_amount = "3"', {("base", "native"): (2 * ETH, 2)}, False),
        ('max_amount = "3"', {("base", "native"): (2 * ETH + 1, 2)}, True),
        ('max_amount = "9", max_count = 2', {("base", "native"): (ETH, 2)}, True),
        ('max_amount = "9", max_count = 2', {("base", "usdc"): (ETH, 5)}, False),
        ('max_usd = "4000"', {("base", "usdc"): (2000 * 10**6 + 1, 1)}, True),
        ('max_usd = "4000"', {("base", "usdc"): (2000 * 10**6, 1)}, False),
        ("max_count = 3", {("base", "usdc"): (1, 2)}, False),
        ("max_count = 3", {("base", "usdc"): (1, 2), ("base", "native"): (1, 1)}, True),
    ],
)
def test_velocity_limits(
    limit: str, totals: dict[tuple[str, str], tuple[int, int]], hit: bool
) -> None:
    policy = load(_rule(f'velocity = {{ per = "user", window = "24h", {limit} }}').encode())
    candidate = replace(BASE, windows={DAY: totals}, decimals_of={("base", "usdc"): ("USDC", 6)})
    assert (evaluate(policy, candidate).rule == "r") is hit


def test_the_built_in_policy_allows_everything() -> None:
    decision = evaluate(BUILT_IN, BASE)
    assert (decision.verdict, decision.rule, decision.why) == (
        Verdict.ALLOW,
        "default",
        "no rule matched",
    )


def test_reasons_name_the_conditions_that_held() -> None:
    policy = load(_rule('networks = ["base"]\nmin_usd = "1500"\nmax_amount = "2"').encode())
    assert evaluate(policy, BASE).why == "network base, amount 1 ETH, value 2000 USD"
    every = load(_rule("").encode())
    assert evaluate(every, replace(BASE, amount=ETH + ETH // 3)).why == "matches every withdrawal"


@pytest.mark.parametrize(
    ("fee", "amount", "expected"),
    [
        (Fee(fixed=Fraction("0.5")), 10**6, 500_000),
        (Fee(percent=Fraction("0.1")), 1_000 * 10**6, 10**6),
        (Fee(percent=Fraction("0.1"), minimum=Fraction(2)), 1_000 * 10**6, 2 * 10**6),
        (Fee(percent=Fraction("0.1"), maximum=Fraction("0.5")), 1_000 * 10**6, 500_000),
        (Fee(percent=Fraction("0.3")), 1, 1),
    ],
)
def test_fees_round_up_to_a_whole_base_unit(fee: Fee, amount: int, expected: int) -> None:
    assert fee.base_units(amount, 6) == expected


def test_a_revision_changes_with_what_an_approver_judges() -> None:
    withdrawal = Withdrawal(
        id="wd_1",
        user_id="u1",
        network="base",
        asset_key="native",
        token_address=None,
        amount=ETH,
        to_address=TO,
        status=WithdrawalStatus.PENDING_APPROVAL,
        created_at=NOW,
        updated_at=NOW,
        fingerprint="f",
        fee=10,
    )
    seen = revision(withdrawal)
    assert len(seen) == 16
    assert revision(replace(withdrawal, status=WithdrawalStatus.VALIDATING)) == seen
    for changed in (
        replace(withdrawal, amount=ETH + 1),
        replace(withdrawal, to_address=OTHER),
        replace(withdrawal, fee=11),
    ):
        assert revision(changed) != seen


def test_a_blocklisted_destination_is_denied_before_any_rule() -> None:
    policy = load(_rule('users = ["nobody"]').encode().replace(b'"deny"\ncode = "hit"', b'"allow"'))
    decision = evaluate(policy, replace(BASE, blocklisted=True))
    assert (decision.verdict, decision.rule, decision.action.code) == (
        Verdict.DENY,
        "blocklist",
        "blocklisted",
    )


def test_a_policy_reads_the_address_book_only_if_a_rule_asks() -> None:
    assert not BUILT_IN.reads_address_book
    assert not load(_rule('users = ["u1"]').encode()).reads_address_book
    assert load(_rule("in_address_book = false").encode()).reads_address_book
    assert load(_rule("cooling = true").encode()).reads_address_book
