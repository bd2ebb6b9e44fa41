"""User balances: credits, holds, releases and settlements, each with its journal entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sluice.domain.addresses import Address, parse_address
from sluice.domain.amounts import parse_amount
from sluice.domain.assets import Asset
from sluice.domain.ledger import Balance, EntryKind
from sluice.errors import (
    IdempotencyConflictError,
    InsufficientFundsError,
    InvalidRequestError,
    UnknownTokenError,
    about,
)
from sluice.ports import BalanceCache, Clock, LedgerEntry, UnitOfWork
from sluice.services.registry import NetworkRegistry


async def move_funds(
    uow: UnitOfWork,
    *,
    user_id: str,
    asset: Asset,
    kind: EntryKind,
    amount: int,
    clock: Clock,
    withdrawal_id: str | None = None,
    reference: str | None = None,
) -> Balance | None:
    """Apply one ledger rule to a user's balance and journal it, in the caller's transaction.

    The balance row is locked first, so concurrent holds against one balance are serialized and
    the rule sees the latest figures: that is what keeps balances from going negative.

    Returns:
        The new balance; None if ``reference`` was journaled already, in which case nothing
        moved (the loser of two concurrent credits with one reference lands here).

    Raises:
        InsufficientFundsError: A hold larger than the available balance.
    """
    now = clock.now()
    balance = await uow.ledger.balance(user_id, asset.network, asset.key, lock=True)
    updated = balance.apply(kind, amount)
    journaled = await uow.ledger.add_entry(
        LedgerEntry(
            user_id=user_id,
            network=asset.network,
            asset_key=asset.key,
            kind=kind,
            amount=amount,
            at=now,
            withdrawal_id=withdrawal_id,
            reference=reference,
        )
    )
    if not journaled:
        return None
    await uow.ledger.set_balance(user_id, asset.network, asset.key, updated, now)
    return updated


@dataclass(frozen=True, slots=True)
class Move:
    """One ledger rule for `move_many`: what moves in whose balance, for which withdrawal."""

    user_id: str
    asset: Asset
    kind: EntryKind
    amount: int
    withdrawal_id: str


async def move_many(uow: UnitOfWork, moves: Sequence[Move], *, clock: Clock) -> None:
    """Apply several ledger rules (a batch settling, say) in the caller's transaction, in a few
    statements whatever their number: the balances locked at once in the global order, the
    journal entries written at once, the balances written back at once.

    The same rules and the same lock order as `move_funds` one by one (which it falls back on
    for a balance without a row yet, where that function's first-write lock applies).

    Raises:
        InsufficientFundsError: A hold larger than the available balance.
    """
    await _apply(uow, moves, clock, refusable=False)


async def hold_many(uow: UnitOfWork, holds: Sequence[Move], *, clock: Clock) -> set[str]:
    """Hold funds for several withdrawals at once, each in turn (in the order given), in the
    caller's transaction and in a few statements, as `move_many` does.

    Returns:
        The ids of the withdrawals whose hold the available balance did not cover: nothing
        moved for them; the others' holds are made.
    """
    if any(hold.kind is not EntryKind.HOLD for hold in holds):
        raise ValueError("hold_many takes holds only")
    return await _apply(uow, holds, clock, refusable=True)


async def _apply(
    uow: UnitOfWork, moves: Sequence[Move], clock: Clock, *, refusable: bool
) -> set[str]:
    """Apply ``moves`` in order; with ``refusable`` a move the balance does not cover is left
    out (its withdrawal's id returned) instead of raising."""
    refused: set[str] = set()
    keys = sorted({(m.user_id, m.asset.network, m.asset.key) for m in moves})
    found = await uow.ledger.lock_balances(keys) if len(moves) > 1 else {}
    now = clock.now()
    updated = dict(found)
    entries = []
    later: list[Move] = []
    for move in moves:
        key = (move.user_id, move.asset.network, move.asset.key)
        if key not in found:
            later.append(move)
            continue
        try:
            updated[key] = updated[key].apply(move.kind, move.amount)
        except InsufficientFundsError:
            if not refusable:
                raise
            refused.add(move.withdrawal_id)
            continue
        entries.append(
            LedgerEntry(
                user_id=move.user_id,
                network=move.asset.network,
                asset_key=move.asset.key,
                kind=move.kind,
                amount=move.amount,
                at=now,
                withdrawal_id=move.withdrawal_id,
            )
        )
    await uow.ledger.add_entries(entries)
    await uow.ledger.set_balances({k: v for k, v in updated.items() if v != found[k]}, now)
    # A balance without a row (never one a release or settle moves: its hold made it; a hold of
    # one never credited is refused) goes the way of `move_funds`, one by one, after: its
    # first-write lock covers a row created meanwhile.
    for move in later:
        try:
            await _move_one(uow, move, clock)
        except InsufficientFundsError:
            if not refusable:
                raise
            refused.add(move.withdrawal_id)
    return refused


async def _move_one(uow: UnitOfWork, move: Move, clock: Clock) -> None:
    await move_funds(
        uow,
        user_id=move.user_id,
        asset=move.asset,
        kind=move.kind,
        amount=move.amount,
        clock=clock,
        withdrawal_id=move.withdrawal_id,
    )


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """A balance with the asset it is in."""

    network: str
    asset_key: str
    asset: Asset | None
    balance: Balance


class LedgerService:
    """Credits and balance reads."""

    def __init__(
        self, registry: NetworkRegistry, clock: Clock, cache: BalanceCache | None = None
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._cache = cache

    async def credit(
        self,
        uow: UnitOfWork,
        *,
        user_id: str,
        network: str,
        token_address: str | None,
        amount: str,
        reference: str,
    ) -> bool:
        """Credit a user's available balance once per reference.

        Returns:
            True if credited now; False if this reference was credited before with the same body.

        Raises:
            IdempotencyConflictError: The reference was used for a different credit.
        """
        asset = self._asset(network, token_address)
        with about("amount"):
            base_units = parse_amount(amount, asset.decimals)
        if await uow.ledger.entry_by_reference(reference) is None:
            moved = await move_funds(
                uow,
                user_id=user_id,
                asset=asset,
                kind=EntryKind.CREDIT,
                amount=base_units,
                clock=self._clock,
                reference=reference,
            )
            if moved is not None:
                return True
        # The reference was used: before we looked, or by a concurrent credit since.
        previous = await uow.ledger.entry_by_reference(reference)
        same = previous is not None and (
            previous.kind,
            previous.user_id,
            previous.network,
            previous.asset_key,
            previous.amount,
        ) == (EntryKind.CREDIT, user_id, asset.network, asset.key, base_units)
        if same:
            return False
        raise IdempotencyConflictError(f"reference {reference!r} was used for another entry")

    async def balances(self, uow: UnitOfWork, user_id: str) -> list[AssetBalance]:
        """Every balance a user has, with its asset where the network is still served.

        Served from the cache when it holds a current value; read from the database (and cached)
        otherwise. The cache is for reads like this one only, never for a balance check.
        """
        rows = await self._cached_rows(uow, user_id)
        result = []
        for network, asset_key, balance in rows:
            asset: Asset | None
            try:
                asset = self._registry.get(network).network.asset_by_key(asset_key)
            except (InvalidRequestError, UnknownTokenError):
                asset = None
            result.append(AssetBalance(network, asset_key, asset, balance))
        return result

    async def _cached_rows(self, uow: UnitOfWork, user_id: str) -> list[tuple[str, str, Balance]]:
        if self._cache is None:
            return await uow.ledger.balances(user_id)
        cached = await self._cache.get(user_id)
        if cached is not None:
            return cached
        generation = await self._cache.generation(user_id)  # before the read: see the cache
        rows = await uow.ledger.balances(user_id)
        if generation is not None:
            await self._cache.put(user_id, generation, rows)
        return rows

    def _asset(self, network: str, token_address: str | None) -> Asset:
        with about("network"):
            entry = self._registry.get(network)
        with about("tokenAddress"):
            token: Address | None = None if token_address is None else parse_address(token_address)
            return entry.network.asset(token)
