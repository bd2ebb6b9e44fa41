"""The withdrawal policy: rules in order, the first that matches decides, a default at the end.

A rule matches when every condition it names holds (a rule naming none matches everything). Its
action is ``allow``, ``require_approval`` (by N distinct operators, optionally of a role) or
``deny`` (with a code the caller sees). Velocity conditions hold when the window's total, this
withdrawal included, goes past the limit: "deny above 50,000 USD a day per user" is a rule with
``velocity = { per = "user", window = "24h", max_usd = "50000" }`` and ``action = "deny"``.

Amounts here are exact fractions of token units (or of US dollars, at the operator-set price of
each asset): never floats. The file format and its validation are `sluice.domain.policy_file`;
gathering the facts (the address book, the velocity windows) is the policy service's.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

from sluice.domain.addresses import Address
from sluice.domain.operators import Role


class Verdict(enum.StrEnum):
    """What a rule does with a withdrawal it matches."""

    ALLOW = "allow"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"


#: The error code of a denial whose rule names none.
DENIED = "policy_denied"
#: The error code of a withdrawal to a blocklisted address (before any rule).
BLOCKLISTED = "blocklisted"


@dataclass(frozen=True, slots=True)
class Action:
    """A rule's action."""

    verdict: Verdict
    approvals: int = 0
    """Distinct operators who must approve (``require_approval`` only)."""
    role: Role = Role.APPROVER
    """The role each approver needs at least."""
    code: str = DENIED
    """The error code of a denial."""
    message: str | None = None
    """What a denial tells the caller, beyond its code."""


class Scope(enum.StrEnum):
    """Whose withdrawals a velocity window sums."""

    USER = "user"
    DESTINATION = "destination"
    """Every user's withdrawals to the destination address, on the withdrawal's network."""
    HOT_WALLET = "hot_wallet"
    """Everything the network's hot wallets pay (the wallet is chosen at signing, so the
    wallets of one network share one window)."""


@dataclass(frozen=True, slots=True)
class Velocity:
    """A rolling-window limit; the condition holds once the window goes past it."""

    per: Scope
    window: timedelta
    max_amount: Fraction | None = None
    """In token units of the withdrawal's asset (only that asset's withdrawals count)."""
    max_usd: Fraction | None = None
    """In US dollars, every asset's withdrawals counted at its price."""
    max_count: int | None = None
    """Withdrawals in the window (any asset; of the asset if ``max_amount`` is set too)."""

    @property
    def key(self) -> tuple[Scope, int]:
        """Which window the facts must total: (scope, seconds)."""
        return self.per, int(self.window.total_seconds())


@dataclass(frozen=True, slots=True)
class Conditions:
    """What a rule matches on; unset conditions match everything."""

    networks: frozenset[str] | None = None
    assets: frozenset[str] | None = None
    """``SYMBOL`` (on any network) or ``network:SYMBOL``."""
    min_amount: Fraction | None = None
    max_amount: Fraction | None = None
    """Inclusive bounds, in token units."""
    min_usd: Fraction | None = None
    max_usd: Fraction | None = None
    """Inclusive bounds, in US dollars at the asset's price."""
    users: frozenset[str] | None = None
    groups: frozenset[str] | None = None
    destinations: frozenset[Address] | None = None
    in_address_book: bool | None = None
    """False: the destination is not in the user's address book; True: it is."""
    cooling: bool | None = None
    """True: the destination is in the address book but still in its cool-down."""
    api_keys: frozenset[str] | None = None
    """Ids of the API keys that made the withdrawal."""
    velocity: tuple[Velocity, ...] = ()

    @property
    def uses_usd(self) -> bool:
        """Whether evaluating needs the asset's price."""
        return (
            self.min_usd is not None
            or self.max_usd is not None
            or any(v.max_usd is not None for v in self.velocity)
        )


@dataclass(frozen=True, slots=True)
class Rule:
    """A named rule: its conditions, and what happens to a withdrawal they match."""

    name: str
    when: Conditions
    action: Action


@dataclass(frozen=True, slots=True)
class Fee:
    """A withdrawal fee: fixed, or a percentage of the amount with a minimum (and a maximum)."""

    fixed: Fraction | None = None
    percent: Fraction | None = None
    minimum: Fraction = Fraction(0)
    maximum: Fraction | None = None

    def base_units(self, amount: int, decimals: int) -> int:
        """The fee on ``amount`` base units, in base units, rounded up to a whole base unit."""
        scale = 10**decimals
        if self.fixed is not None:
            return _ceil(self.fixed * scale)
        percent = self.percent or Fraction(0)
        fee = _ceil(amount * percent / 100)
        fee = max(fee, _ceil(self.minimum * scale))
        if self.maximum is not None:
            fee = min(fee, _ceil(self.maximum * scale))
        return fee


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


@dataclass(frozen=True, slots=True)
class AssetTerms:
    """Per asset: the smallest and largest amount, and the fee."""

    asset: str
    """``SYMBOL`` or ``network:SYMBOL`` (which wins over the bare symbol)."""
    min_amount: Fraction | None = None
    max_amount: Fraction | None = None
    fee: Fee | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded policy: its rules, its default, and what it says per asset."""

    version: str
    """The SHA-256 of the file's bytes (hex)."""
    label: str
    rules: tuple[Rule, ...]
    default: Action
    assets: tuple[AssetTerms, ...] = ()
    prices: Mapping[str, Fraction] = field(default_factory=dict)
    """US dollars per token unit, by ``SYMBOL`` or ``network:SYMBOL``."""
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    cool_down: timedelta = timedelta(0)
    """How long a new address-book entry waits before it counts as usable."""
    approval_expiry: timedelta = timedelta(hours=24)

    def terms(self, network: str, symbol: str) -> AssetTerms | None:
        """The per-asset terms for an asset, the network's own entry first."""
        for name in (f"{network}:{symbol}", symbol):
            for terms in self.assets:
                if terms.asset == name:
                    return terms
        return None

    def price(self, network: str, symbol: str) -> Fraction | None:
        """The asset's price in US dollars per token unit, if the operator set one."""
        return self.prices.get(f"{network}:{symbol}", self.prices.get(symbol))

    def groups_of(self, user_id: str) -> frozenset[str]:
        """The groups a user is in."""
        return frozenset(name for name, users in self.groups.items() if user_id in users)

    @property
    def reads_address_book(self) -> bool:
        """Whether a rule matches on the address book or its cool-down."""
        return any(
            r.when.in_address_book is not None or r.when.cooling is not None for r in self.rules
        )

    @property
    def windows(self) -> frozenset[tuple[Scope, int]]:
        """Every velocity window a rule reads (what the service must total)."""
        return frozenset(v.key for r in self.rules for v in r.when.velocity)


#: A velocity window's totals: per (network, asset key), the sum in base units and the count of
#: withdrawals already in it (this one not included).
WindowTotals = Mapping[tuple[str, str], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the policy knows of a withdrawal it decides on."""

    user_id: str
    network: str
    asset_key: str
    symbol: str
    decimals: int
    amount: int
    to_address: Address
    api_key_id: str | None
    now: datetime
    book_entry_added_at: datetime | None = None
    """When the destination entered the user's address book; None: it is not there."""
    blocklisted: bool = False
    windows: Mapping[tuple[Scope, int], WindowTotals] = field(default_factory=dict)
    decimals_of: Mapping[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    """(symbol, decimals) of the other assets a window holds, for their US dollar value."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided, and which rule of which version decided it."""

    action: Action
    rule: str
    """The rule's name; ``default`` for the default, ``blocklist`` for a blocklisted address."""
    version: str
    why: str

    @property
    def verdict(self) -> Verdict:
        """The action's verdict."""
        return self.action.verdict


def evaluate(policy: Policy, candidate: Candidate) -> Decision:
    """The first rule that matches decides; none: the default. A blocklisted destination is
    denied before any rule, whatever the rules say."""
    if candidate.blocklisted:
        return Decision(
            Action(Verdict.DENY, code=BLOCKLISTED, message="the destination is blocklisted"),
            "blocklist",
            policy.version,
            f"{candidate.to_address} is on the blocklist",
        )
    for rule in policy.rules:
        if (why := _matches(policy, rule.when, candidate)) is not None:
            return Decision(rule.action, rule.name, policy.version, why)
    return Decision(policy.default, "default", policy.version, "no rule matched")


def _units(candidate: Candidate) -> Fraction:
    return Fraction(candidate.amount, 10**candidate.decimals)


#: A condition's check: None if the rule does not name it, False if it fails, else why it holds.
Check = str | bool | None


def _matches(policy: Policy, when: Conditions, c: Candidate) -> str | None:
    """Why every condition holds, or None if one does not."""
    reasons: list[str] = []
    for check in _CHECKS:
        outcome = check(policy, when, c)
        if outcome is False:
            return None
        if isinstance(outcome, str):
            reasons.append(outcome)
    for velocity in when.velocity:
        over = _over(policy, velocity, c)
        if over is None:
            return None
        reasons.append(over)
    return ", ".join(reasons) or "matches every withdrawal"


def _network(_: Policy, when: Conditions, c: Candidate) -> Check:
    if when.networks is None:
        return None
    return c.network in when.networks and f"network {c.network}"


def _asset(_: Policy, when: Conditions, c: Candidate) -> Check:
    if when.assets is None:
        return None
    named = c.symbol in when.assets or f"{c.network}:{c.symbol}" in when.assets
    return named and f"asset {c.symbol}"


def _amount(_: Policy, when: Conditions, c: Candidate) -> Check:
    if when.min_amount is None and when.max_amount is None:
        return None
    units = _units(c)
    return _within(units, when.min_amount, when.max_amount) and f"amount {_text(units)} {c.symbol}"


def _value(policy: Policy, when: Conditions, c: Candidate) -> Check:
    if when.min_usd is None and when.max_usd is None:
        return None
    usd = _usd(policy, c.network, c.symbol, _units(c))
    return _within(usd, when.min_usd, when.max_usd) and f"value {_text(usd)} USD"


def _user(_: Policy, when: Conditions, c: Candidate) -> Check:
    if when.users is None:
        return None
    return c.user_id in when.users and f"user {c.user_id}"


def _group(policy: Policy, when: Conditions, c: Candidate) -> Check:
    if when.groups is None:
        return None
    shared = policy.groups_of(c.user_id) & when.groups
    return bool(shared) and f"group {min(shared or {''})}"


def _destination(_: Policy, when: Conditions, c: Candidate) -> Check:
    if when.destinations is None:
        return None
    return c.to_address in when.destinations and "destination listed"


def _book(_: Policy, when: Conditions, c: Candidate) -> Check:
    if when.in_address_book is None:
        return None
    inside = c.book_entry_added_at is not None
    if inside != when.in_address_book:
        return False
    return "in the address book" if inside else "not in the address book"


def _cooling(policy: Policy, when: Conditions, c: Candidate) -> Check:
    if when.cooling is None:
        return None
    added = c.book_entry_added_at
    cooling = added is not None and c.now < added + policy.cool_down
    if cooling != when.cooling:
        return False
    return "address in its cool-down" if cooling else "address past its cool-down"


def _api_key(_: Policy, when: Conditions, c: Candidate) -> Check:
    if when.api_keys is None:
        return None
    return c.api_key_id in when.api_keys and f"API key {c.api_key_id}"


_CHECKS = (
    _network,
    _asset,
    _amount,
    _value,
    _user,
    _group,
    _destination,
    _book,
    _cooling,
    _api_key,
)


def _within(value: Fraction, low: Fraction | None, high: Fraction | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _usd(policy: Policy, network: str, symbol: str, units: Fraction) -> Fraction:
    price = policy.price(network, symbol)
    if price is None:
        # Loading refuses a policy that values an asset it has no price for; an asset added to
        # the networks since is valued at nothing rather than guessed.
        return Fraction(0)
    return units * price


def _over(policy: Policy, velocity: Velocity, c: Candidate) -> str | None:
    """Why the window, this withdrawal included, is past its limit; None if it is not."""
    totals = c.windows.get(velocity.key, {})
    window = _duration(velocity.window)
    mine = totals.get((c.network, c.asset_key), (0, 0))
    if velocity.max_amount is not None:
        units = Fraction(mine[0] + c.amount, 10**c.decimals)
        if units > velocity.max_amount:
            return f"{_text(units)} {c.symbol} per {velocity.per} in {window}"
    if velocity.max_usd is not None:
        usd = _usd(policy, c.network, c.symbol, _units(c))
        for key, (summed, _) in totals.items():
            symbol, decimals = c.decimals_of.get(key, (c.symbol, c.decimals))
            usd += _usd(policy, key[0], symbol, Fraction(summed, 10**decimals))
        if usd > velocity.max_usd:
            return f"{_text(usd)} USD per {velocity.per} in {window}"
    if velocity.max_count is not None:
        # With an amount limit the window is the asset's; otherwise every asset's.
        before = mine[1] if velocity.max_amount is not None else sum(n for _, n in totals.values())
        if before + 1 > velocity.max_count:
            return f"{before + 1} withdrawals per {velocity.per} in {window}"
    return None


def _text(value: Fraction) -> str:
    """A fraction as a short decimal (for reasons only; never for money)."""
    whole, rest = divmod(value.numerator, value.denominator)
    if rest == 0:
        return str(whole)
    return f"{whole}.{(rest * 100) // value.denominator:02d}"


def _duration(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    """One loaded policy file."""

    seq: int
    version: str
    label: str
    body: str
    loaded_at: datetime
    loaded_by: str


#: What applies when no policy file is configured: everything is allowed, no limits, no fees.
BUILT_IN = Policy(
    version="built-in",
    label="built-in: allow everything",
    rules=(),
    default=Action(Verdict.ALLOW),
)
