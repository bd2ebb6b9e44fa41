"""The policy in force: loaded from its file, versioned in the database, and asked for a
decision on each withdrawal at validation (docs/policy.md).

Every process reads the version in force from the database (at most `REFRESH_S` old), so a
reload by one process (SIGHUP, or the admin call) takes effect in all of them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sluice.domain.addresses import Address
from sluice.domain.amounts import format_amount
from sluice.domain.assets import Asset, Network
from sluice.domain.audit import Actor, AuditRecord
from sluice.domain.policy import BUILT_IN, Candidate, Decision, Policy, Scope, Verdict, evaluate
from sluice.domain.policy_file import load, served_problems
from sluice.domain.withdrawal import Withdrawal
from sluice.errors import AmountLimitError, InvalidRequestError, PolicyError
from sluice.ports import Clock, UnitOfWork
from sluice.services.registry import NetworkRegistry

#: The lock row (of the velocity locks' table) that serializes loading policy versions.
LOADING_LOCK = "policy:loading"
#: Seconds a process trusts the version in force it read last.
REFRESH_S = 2.0


@dataclass(frozen=True, slots=True)
class Loaded:
    """What loading a policy file did."""

    policy: Policy
    changed: bool
    """False: that version was in force already (nothing recorded)."""


class PolicyService:
    """The policy in force, its loading, and its decisions."""

    def __init__(self, registry: NetworkRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock
        self._parsed: dict[str, Policy] = {}
        self._current: tuple[float, Policy] | None = None

    async def in_force(self, uow: UnitOfWork) -> Policy:
        """The policy loaded last (the built-in allow-everything one if none was)."""
        if self._current is not None and time.monotonic() < self._current[0]:
            return self._current[1]
        stored = await uow.policy.current()
        policy = BUILT_IN
        if stored is not None:
            policy = self._parsed.get(stored.version) or load(stored.body.encode("utf-8"))
            self._parsed[stored.version] = policy
        self._current = (time.monotonic() + REFRESH_S, policy)
        return policy

    def forget(self) -> None:
        """Read the version in force again at the next decision."""
        self._current = None

    async def load(self, uow: UnitOfWork, raw: bytes, *, source: str, actor: Actor) -> Loaded:
        """Check a policy file against the served networks and make it the one in force (see
        `record_policy`); forget the version read before."""
        networks = [self._registry.get(name).network for name in self._registry.names()]
        loaded = await record_policy(
            uow, raw, source=source, actor=actor, networks=networks, clock=self._clock
        )
        self._parsed[loaded.policy.version] = loaded.policy
        self.forget()
        return loaded

    def fee(self, policy: Policy, asset: Asset, amount: int) -> int:
        """The withdrawal fee on ``amount`` of ``asset``, in its base units.

        Raises:
            AmountLimitError: The amount is outside the asset's minimum and maximum.
        """
        terms = policy.terms(asset.network, asset.symbol)
        if terms is None:
            return 0
        scale = 10**asset.decimals
        if terms.min_amount is not None and amount < terms.min_amount * scale:
            raise AmountLimitError(
                f"the smallest {asset.symbol} withdrawal is "
                f"{format_amount(int(terms.min_amount * scale), asset.decimals)}",
                field="amount",
            )
        if terms.max_amount is not None and amount > terms.max_amount * scale:
            raise AmountLimitError(
                f"the largest {asset.symbol} withdrawal is "
                f"{format_amount(int(terms.max_amount * scale), asset.decimals)}",
                field="amount",
            )
        return 0 if terms.fee is None else terms.fee.base_units(amount, asset.decimals)

    async def decide(
        self,
        uow: UnitOfWork,
        policy: Policy,
        group: Sequence[Withdrawal],
        *,
        counted: bool = False,
    ) -> dict[str, Decision]:
        """A decision for each withdrawal, oldest first, in the caller's transaction.

        The velocity windows the policy reads are locked first (one global order), then
        totalled; each withdrawal allowed or sent for approval counts in the windows of the
        ones after it. Racing decisions on one window thus wait for each other: none of them
        pushes it past its limit unseen. ``counted``: the withdrawals are in their windows
        already (decided once, waiting for approval): each is left out of its own totals.
        """
        if not group:
            return {}
        windows = sorted(policy.windows)
        await uow.policy.lock_windows(_lock_key(per, w) for w in group for per, _ in windows)
        now = self._clock.now()
        totals: dict[tuple[int, str], dict[tuple[str, str], tuple[int, int]]] = {}
        for per, seconds in windows:
            for w in group:
                key = (seconds, _lock_key(per, w))
                if key not in totals:
                    owner = w.user_id if per is Scope.USER else w.to_address
                    since = now - timedelta(seconds=seconds)
                    totals[key] = dict(
                        await uow.policy.window_totals(per, owner, network=w.network, since=since)
                    )
        # The address book is read only when a rule asks about it (most validations: never).
        book = (
            await uow.policy.book_entries((w.user_id, w.network, w.to_address) for w in group)
            if policy.reads_address_book
            else {}
        )
        blocked = await uow.policy.blocked(w.to_address for w in group)
        decisions: dict[str, Decision] = {}
        for w in group:
            asset = self._registry.get(w.network).network.asset_by_key(w.asset_key)
            mine = {
                (per, seconds): totals[(seconds, _lock_key(per, w))] for per, seconds in windows
            }
            if counted:
                mine = {k: _without(v, w) for k, v in mine.items()}
            decision = evaluate(
                policy,
                Candidate(
                    user_id=w.user_id,
                    network=w.network,
                    asset_key=w.asset_key,
                    symbol=asset.symbol,
                    decimals=asset.decimals,
                    amount=w.amount,
                    to_address=w.to_address,
                    api_key_id=w.api_key_id,
                    now=now,
                    book_entry_added_at=book.get((w.user_id, w.network, w.to_address)),
                    blocklisted=w.to_address in blocked,
                    windows=mine,
                    decimals_of=self._decimals(mine),
                ),
            )
            decisions[w.id] = decision
            if decision.verdict is not Verdict.DENY:
                for window in mine.values():
                    summed, count = window.get((w.network, w.asset_key), (0, 0))
                    window[(w.network, w.asset_key)] = (summed + w.amount, count + 1)
        return decisions

    def _decimals(
        self, windows: dict[tuple[Scope, int], dict[tuple[str, str], tuple[int, int]]]
    ) -> dict[tuple[str, str], tuple[str, int]]:
        out: dict[tuple[str, str], tuple[str, int]] = {}
        for window in windows.values():
            for network, asset_key in window:
                try:
                    asset = self._registry.get(network).network.asset_by_key(asset_key)
                except InvalidRequestError:  # an asset no longer served: valued at nothing
                    continue
                out[(network, asset_key)] = (asset.symbol, asset.decimals)
        return out

    async def blocklisted(self, uow: UnitOfWork, addresses: Sequence[Address]) -> set[Address]:
        """Which of ``addresses`` are blocklisted now (checked again just before signing)."""
        return await uow.policy.blocked(addresses)


def _lock_key(per: Scope, withdrawal: Withdrawal) -> str:
    """The window owner a withdrawal counts in: a user (on every network), a destination on its
    network, a network's hot wallets."""
    if per is Scope.USER:
        return f"user:{withdrawal.user_id}"
    if per is Scope.DESTINATION:
        return f"destination:{withdrawal.network}:{withdrawal.to_address}"
    return f"hot_wallet:{withdrawal.network}"


async def record_policy(
    uow: UnitOfWork,
    raw: bytes,
    *,
    source: str,
    actor: Actor,
    networks: Sequence[Network],
    clock: Clock,
) -> Loaded:
    """Check a policy file against ``networks`` and make it the one in force, with an audit
    entry, in the caller's transaction; loading the version in force already changes nothing.

    Raises:
        PolicyError: It does not parse, or values in US dollars an asset it has no price for.
    """
    policy = load(raw, source=source)
    assets = {n.name: [a.symbol for a in (n.native, *n.tokens)] for n in networks}
    if problems := served_problems(policy, assets):
        field, why = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PolicyError(f"{field}: {why}{more}", field=field)
    # Processes starting together load the same file: one records it, the others see it.
    await uow.policy.lock_windows([LOADING_LOCK])
    stored = await uow.policy.current()
    if stored is not None and stored.version == policy.version:
        return Loaded(policy, changed=False)
    now = clock.now()
    await uow.policy.add_version(
        version=policy.version, label=policy.label, body=raw.decode("utf-8"), at=now, by=actor.label
    )
    await uow.audit.append(
        AuditRecord(
            actor=actor,
            action="policy.loaded",
            subject=f"policy:{policy.version}",
            at=now,
            before=None if stored is None else {"version": stored.version, "label": stored.label},
            after={"version": policy.version, "label": policy.label, "rules": len(policy.rules)},
            detail={"source": source},
        )
    )
    return Loaded(policy, changed=True)


def _without(
    window: dict[tuple[str, str], tuple[int, int]], withdrawal: Withdrawal
) -> dict[tuple[str, str], tuple[int, int]]:
    """A window's totals without one withdrawal it holds."""
    key = (withdrawal.network, withdrawal.asset_key)
    summed, count = window.get(key, (0, 0))
    return {**window, key: (max(0, summed - withdrawal.amount), max(0, count - 1))}
