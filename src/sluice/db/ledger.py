"""Balances and the ledger journal."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import BigInteger, bindparam, func, insert, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.db.tables import balances, ledger_entries
from sluice.domain.ledger import Balance, EntryKind
from sluice.ports import BalanceKey, LedgerEntry


def _advisory_key(user_id: str, network: str, asset_key: str) -> int:
    """A signed 64-bit key for PostgreSQL's advisory locks, one per balance.

    A hash: two balances may share a key, which only makes them wait for each other.
    """
    digest = hashlib.blake2b(
        f"sluice:balance:{user_id}\0{network}\0{asset_key}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


#: Existing balances written for many rows at once (`set_balances`).
_SET_BALANCE_MANY = (
    update(balances)
    .where(
        balances.c.user_id == bindparam("_user_id"),
        balances.c.network == bindparam("_network"),
        balances.c.asset_key == bindparam("_asset_key"),
    )
    .values(
        available=bindparam("available"),
        held=bindparam("held"),
        updated_at=bindparam("updated_at"),
    )
)


class SqlLedgerRepository:
    """Balances and journal in SQL."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection
        #: Users whose balances this transaction changed (their cache entries go stale).
        self.touched: set[str] = set()

    def _key(self, user_id: str, network: str, asset_key: str) -> list[object]:
        return [
            balances.c.user_id == user_id,
            balances.c.network == network,
            balances.c.asset_key == asset_key,
        ]

    async def balance(
        self, user_id: str, network: str, asset_key: str, *, lock: bool = False
    ) -> Balance:
        query = select(balances.c.available, balances.c.held).where(
            *self._key(user_id, network, asset_key)  # type: ignore[arg-type]  # column comparisons are SQL expressions
        )
        if lock:
            query = query.with_for_update()
        row = (await self._c.execute(query)).first()
        if row is None and lock and self._c.dialect.name == "postgresql":
            # FOR UPDATE locks nothing when there is no row yet, so two first credits would both
            # read zero and the later write would undo the earlier one. A transaction-scoped
            # advisory lock on the balance's key stands in for the missing row lock; reading
            # again under it sees a row a concurrent creator committed meanwhile, and locks it.
            # (SQLite needs none of this: BEGIN IMMEDIATE serializes whole transactions.)
            key = _advisory_key(user_id, network, asset_key)
            await self._c.execute(select(func.pg_advisory_xact_lock(literal(key, BigInteger))))
            row = (await self._c.execute(query)).first()
        return Balance() if row is None else Balance(row.available, row.held)

    async def set_balance(
        self, user_id: str, network: str, asset_key: str, balance: Balance, at: datetime
    ) -> None:
        self.touched.add(user_id)
        values = {"available": balance.available, "held": balance.held, "updated_at": at}
        result = await self._c.execute(
            update(balances).where(*self._key(user_id, network, asset_key)).values(values)  # type: ignore[arg-type]  # as above
        )
        if result.rowcount == 0:
            await self._c.execute(
                insert(balances).values(
                    user_id=user_id, network=network, asset_key=asset_key, **values
                )
            )

    async def lock_balances(self, keys: Sequence[BalanceKey]) -> dict[BalanceKey, Balance]:
        if not keys:
            return {}
        c = balances.c
        query = (
            select(c.user_id, c.network, c.asset_key, c.available, c.held)
            .where(tuple_(c.user_id, c.network, c.asset_key).in_(sorted(set(keys))))
            # FOR UPDATE with ORDER BY locks the rows as the sort returns them: one global order,
            # the one `move_funds` callers keep, so two settlements never deadlock.
            .order_by(c.user_id, c.network, c.asset_key)
            .with_for_update()
        )
        return {
            (row.user_id, row.network, row.asset_key): Balance(row.available, row.held)
            for row in await self._c.execute(query)
        }

    async def set_balances(self, balances_: Mapping[BalanceKey, Balance], at: datetime) -> None:
        if not balances_:
            return
        rows = [
            {
                "_user_id": user_id,
                "_network": network,
                "_asset_key": asset_key,
                "available": balance.available,
                "held": balance.held,
                "updated_at": at,
            }
            for (user_id, network, asset_key), balance in sorted(balances_.items())
        ]
        self.touched.update(user_id for user_id, _, _ in balances_)
        await self._c.execute(_SET_BALANCE_MANY, rows)

    async def add_entries(self, entries: Sequence[LedgerEntry]) -> None:
        if not entries:
            return
        if any(entry.reference is not None for entry in entries):
            raise ValueError("add_entries takes entries without a reference (see add_entry)")
        await self._c.execute(
            insert(ledger_entries),
            [
                {
                    "user_id": entry.user_id,
                    "network": entry.network,
                    "asset_key": entry.asset_key,
                    "kind": entry.kind.value,
                    "amount": entry.amount,
                    "withdrawal_id": entry.withdrawal_id,
                    "reference": None,
                    "at": entry.at,
                }
                for entry in entries
            ],
        )

    async def balances(self, user_id: str) -> list[tuple[str, str, Balance]]:
        query = (
            select(balances)
            .where(balances.c.user_id == user_id)
            .order_by(balances.c.network, balances.c.asset_key)
        )
        return [
            (row.network, row.asset_key, Balance(row.available, row.held))
            for row in await self._c.execute(query)
        ]

    async def add_entry(self, entry: LedgerEntry) -> bool:
        statement = insert(ledger_entries).values(
            user_id=entry.user_id,
            network=entry.network,
            asset_key=entry.asset_key,
            kind=entry.kind.value,
            amount=entry.amount,
            withdrawal_id=entry.withdrawal_id,
            reference=entry.reference,
            at=entry.at,
        )
        if entry.reference is None:
            await self._c.execute(statement)
            return True
        try:
            async with self._c.begin_nested():
                await self._c.execute(statement)
        except IntegrityError:
            return False
        return True

    async def entry_by_reference(self, reference: str) -> LedgerEntry | None:
        row = (
            await self._c.execute(
                select(ledger_entries).where(ledger_entries.c.reference == reference)
            )
        ).first()
        if row is None:
            return None
        return LedgerEntry(
            user_id=row.user_id,
            network=row.network,
            asset_key=row.asset_key,
            kind=EntryKind(row.kind),
            amount=row.amount,
            at=row.at,
            withdrawal_id=row.withdrawal_id,
            reference=row.reference,
        )
