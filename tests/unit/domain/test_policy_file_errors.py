"""A policy file that cannot be loaded says which field is at fault, as a path."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sluice.domain.policy import Scope, Verdict
from sluice.domain.policy_file import load, unpriced
from sluice.errors import PolicyError

HEAD = 'label = "t"\n[default]\naction = "allow"\n'


def _deny_when(condition: str) -> str:
    """A policy with one denying rule under ``condition``."""
    return HEAD + f'[[rules]]\nname = "a"\n{condition}\naction = "deny"\n'


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("label = [", "(file)", "not valid TOML"),
        ('[default]\naction = "allow"\n', "label", "label"),
        ('label = "t"\n', "default", "no rule matches"),
        ('label = "t"\n[default]\naction = "maybe"\n', "default.action", "one of allow"),
        ('colour = "red"\n' + HEAD, "colour", "not a policy field"),
        (HEAD + '[[rules]]\naction = "allow"\n', "rules[0].name", "has a name"),
        (
            HEAD
            + '[[rules]]\nname = "a"\naction = "allow"\n[[rules]]\nname = "a"\naction = "deny"\n',
            "rules[1].name",
            "two rules",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\nmax_usd = 5\naction = "allow"\n',
            "rules[0].max_usd",
            "never a float",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\nmin_amount = "5"\nmax_amount = "1"\naction = "allow"\n',
            "rules[0].min_amount",
            "above",
        ),
        (
            _deny_when('velocity = { per = "user", window = "1 day", max_count = 1 }'),
            "rules[0].velocity[0].window",
            "duration",
        ),
        (
            _deny_when('velocity = { per = "team", window = "1d", max_count = 1 }'),
            "rules[0].velocity[0].per",
            "user, destination, hot_wallet",
        ),
        (
            _deny_when('velocity = { per = "user", window = "1d" }'),
            "rules[0].velocity[0].max_amount",
            "a limit",
        ),
        (
            _deny_when('velocity = { per = "user", window = "1d", max_count = -1 }'),
            "rules[0].velocity[0].max_count",
            "whole number",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\naction = "require_approval"\napprovals = 0\n',
            "rules[0].approvals",
            "1-10",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\naction = "require_approval"\nrole = "viewer"\n',
            "rules[0].role",
            "never approves",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\naction = "require_approval"\nrole = "boss"\n',
            "rules[0].role",
            "approver or admin",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\naction = "allow"\napprovals = 2\n',
            "rules[0].approvals",
            "only for action = require_approval",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\naction = "allow"\ncode = "x"\n',
            "rules[0].code",
            "only for action = deny",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\naction = "deny"\ncode = "Bad Code"\n',
            "rules[0].code",
            "lower case",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\naction = "deny"\nmessage = 3\n',
            "rules[0].message",
            "text",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\ndestinations = ["0x12"]\naction = "deny"\n',
            "rules[0].destinations[0]",
            "address",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\nusers = [1]\naction = "deny"\n',
            "rules[0].users",
            "strings",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\ncooling = "yes"\naction = "deny"\n',
            "rules[0].cooling",
            "true or false",
        ),
        (
            HEAD + '[[rules]]\nname = "a"\ngroups = ["vip"]\naction = "deny"\n',
            "rules[0].groups",
            "does not define",
        ),
        (HEAD + '[[assets]]\nmin_amount = "1"\n', "assets[0].asset", "SYMBOL"),
        (
            HEAD + '[[assets]]\nasset = "ETH"\nfee = { fixed = "1", percent = "1" }\n',
            "assets[0].fee",
            "either fixed or percent",
        ),
        (
            HEAD + '[[assets]]\nasset = "ETH"\nfee = { fixed = "1", min = "1" }\n',
            "assets[0].fee",
            "go with percent",
        ),
        (
            HEAD + '[[assets]]\nasset = "ETH"\nfee = { percent = "100" }\n',
            "assets[0].fee.percent",
            "below 100",
        ),
        ("rules = 3\n" + HEAD, "rules", "a list"),
        (
            _deny_when('velocity = { per = "user", max_count = 1 }'),
            "rules[0].velocity[0].window",
            "such as 24h",
        ),
        ("prices = 3\n" + HEAD, "prices", "a table"),
        (
            HEAD + '[address_book]\ncool_down = "0s"\nkeep = "x"\n',
            "address_book.keep",
            "not a policy field",
        ),
        (HEAD + '[approvals]\nexpire_after = "0s"\n', "approvals.expire_after", "longer than 0"),
    ],
)
def test_a_bad_policy_names_the_field(text: str, field: str, says: str) -> None:
    with pytest.raises(PolicyError, match=says) as refused:
        load(text.encode())
    assert refused.value.field == field
    assert refused.value.code == "invalid_policy"


def test_a_good_policy_has_its_bytes_hash_as_version() -> None:
    text = HEAD + (
        '[[rules]]\nname = "a"\nvelocity = [{ per = "user", window = "1d", max_usd = "5" },'
        ' { per = "destination", window = "90s", max_amount = "1.5", max_count = 3 }]\n'
        'assets = ["ETH"]\naction = "deny"\n'
        '[[assets]]\nasset = "base:USDC"\nfee = { percent = "0.25", min = "1", max = "9" }\n'
        '[[assets]]\nasset = "ETH"\nmin_amount = "0.01"\n'
        '[prices]\nETH = "3000.5"\n[address_book]\ncool_down = "2h"\n'
    )
    policy = load(text.encode())
    assert len(policy.version) == 64
    assert load(text.encode()).version == policy.version
    assert load((text + "\n").encode()).version != policy.version
    rule = policy.rules[0]
    assert rule.action.verdict is Verdict.DENY
    assert rule.action.code == "policy_denied"
    assert [v.key for v in rule.when.velocity] == [(Scope.USER, 86_400), (Scope.DESTINATION, 90)]
    assert rule.when.velocity[1].max_amount == Fraction(3, 2)
    assert policy.prices["ETH"] == Fraction("3000.5")
    assert policy.windows == {(Scope.USER, 86_400), (Scope.DESTINATION, 90)}
    terms = policy.terms("base", "USDC")
    assert terms is not None
    assert terms.fee is not None
    assert terms.fee.base_units(100 * 10**6, 6) == 1 * 10**6
    assert policy.terms("ethereum", "USDC") is None
    assert unpriced(policy, {"base": ["ETH", "USDC"]}) == []


def test_unpriced_names_each_rule_and_asset_without_a_price() -> None:
    text = HEAD + (
        '[prices]\nETH = "1"\n'
        '[[rules]]\nname = "a"\nmax_usd = "5"\naction = "allow"\n'
        '[[rules]]\nname = "b"\nnetworks = ["base"]\nassets = ["USDC"]\nmin_usd = "1"\n'
        'action = "deny"\n'
        '[[rules]]\nname = "c"\nmax_amount = "5"\naction = "allow"\n'
    )
    policy = load(text.encode())
    assert unpriced(policy, {"base": ["ETH", "USDC"], "arb": ["ETH", "USDC"]}) == [
        ("rules[0]", "arb:USDC"),
        ("rules[0]", "base:USDC"),
        ("rules[1]", "base:USDC"),
    ]
