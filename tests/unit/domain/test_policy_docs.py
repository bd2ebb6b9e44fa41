"""The example policy of docs/policy.md loads as it is written and decides as the text says."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sluice.domain.addresses import Address
from sluice.domain.policy import Candidate, Policy, Scope, Verdict, evaluate
from sluice.domain.policy_file import load, unpriced

DOC = Path(__file__).parents[3] / "docs" / "policy.md"
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
TO = Address("0x1111111111111111111111111111111111111111")


@pytest.fixture(scope="module")
def policy() -> Policy:
    text = DOC.read_text("utf-8").split("### An example policy for an exchange", 1)[1]
    block = re.search(r"```toml\n(.*?)```", text, re.DOTALL)
    assert block is not None
    return load(block.group(1).encode())


def _usdc(
    amount: str,
    *,
    user: str = "user-1",
    book: timedelta | None = timedelta(days=2),
    day_before: int = 0,
) -> Candidate:
    whole, _, fraction = amount.partition(".")
    return Candidate(
        user_id=user,
        network="base",
        asset_key="0xusdc",
        symbol="USDC",
        decimals=6,
        amount=int(whole) * 10**6 + int(fraction.ljust(6, "0") or "0"),
        to_address=TO,
        api_key_id=None,
        now=NOW,
        book_entry_added_at=None if book is None else NOW - book,
        windows={(Scope.USER, 86_400): {("base", "0xusdc"): (day_before * 10**6, 3)}},
    )


def test_the_example_policy_loads_and_prices_every_asset_it_values(policy: Policy) -> None:
    assert policy.label == "exchange 2026-12"
    assert unpriced(policy, {"ethereum": ["ETH", "USDC", "USDT"], "base": ["ETH", "USDC"]}) == []


@pytest.mark.parametrize(
    ("candidate", "verdict", "rule", "approvals"),
    [
        (_usdc("9999"), Verdict.ALLOW, "automatic", 0),
        (_usdc("20000"), Verdict.REQUIRE_APPROVAL, "default", 1),
        (_usdc("60000"), Verdict.REQUIRE_APPROVAL, "very large", 2),
        (_usdc("100", book=None), Verdict.REQUIRE_APPROVAL, "new or cooling address", 1),
        (_usdc("100", book=timedelta(hours=2)), Verdict.REQUIRE_APPROVAL, "cooling address", 1),
        (_usdc("1000", day_before=249_500), Verdict.DENY, "daily cap per user", 0),
        (_usdc("100", user="user-13"), Verdict.DENY, "frozen accounts", 0),
    ],
)
def test_the_example_policy_decides_as_the_docs_say(
    policy: Policy, candidate: Candidate, verdict: Verdict, rule: str, approvals: int
) -> None:
    decision = evaluate(policy, candidate)
    assert (decision.verdict, decision.rule, decision.action.approvals) == (
        verdict,
        rule,
        approvals,
    )


def test_the_example_policys_fees(policy: Policy) -> None:
    usdc = policy.terms("base", "USDC")
    assert usdc is not None
    assert usdc.fee is not None
    assert usdc.fee.base_units(500 * 10**6, 6) == 1 * 10**6  # 0.1 % is 0.5: the minimum, 1
    assert usdc.fee.base_units(100_000 * 10**6, 6) == 25 * 10**6  # 0.1 % is 100: the maximum
    eth = policy.terms("ethereum", "ETH")
    assert eth is not None
    assert eth.fee is not None
    assert eth.fee.base_units(10**18, 18) == 5 * 10**14


def test_an_asset_without_a_price_is_valued_at_nothing_and_windows_read_in_seconds() -> None:
    policy = load(
        b'label = "t"\n[default]\naction = "allow"\n'
        b'[[rules]]\nname = "v"\nmin_usd = "1"\naction = "deny"\n'
        b'[[rules]]\nname = "w"\n'
        b'velocity = { per = "user", window = "90s", max_count = 0 }\naction = "deny"\n'
    )
    decision = evaluate(policy, _usdc("5"))
    assert decision.rule == "w"
    assert decision.why == "1 withdrawals per user in 90s"
