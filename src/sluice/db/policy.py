"""What the policy reads and keeps in SQL: its versions, address books, the blocklist, and the
velocity windows (with the locks that make racing decisions see each other)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.db.tables import (
    address_book,
    approvals,
    blocklist,
    policy_versions,
    velocity_locks,
    withdrawals,
)
from sluice.domain.address_lists import Blocked, BookEntry
from sluice.domain.addresses import Address
from sluice.domain.approvals import Approval, Vote
from sluice.domain.policy import Scope, StoredPolicy, WindowTotals
from sluice.domain.withdrawal import HOLDING_STATUSES, WithdrawalStatus

#: Withdrawals a velocity window counts: decided and not (yet) refused, paid or on their way.
COUNTED = sorted(s.value for s in (*HOLDING_STATUSES, WithdrawalStatus.COMPLETED))


def _stored(row: Any) -> StoredPolicy:
    return StoredPolicy(
        seq=row.seq,
        version=row.version,
        label=row.label,
        body=row.body,
        loaded_at=row.loaded_at,
        loaded_by=row.loaded_by,
    )


class SqlPolicyRepository:
    """Policy data within one database transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection
        self._dialect = connection.dialect.name

    # --- versions ---

    async def current(self) -> StoredPolicy | None:
        """The policy loaded last: the one in force."""
        row = (
            await self._c.execute(
                select(policy_versions).order_by(policy_versions.c.seq.desc()).limit(1)
            )
        ).first()
        return None if row is None else _stored(row)

    async def add_version(
        self, *, version: str, label: str, body: str, at: datetime, by: str
    ) -> StoredPolicy:
        """Record a policy file as the one in force from now on."""
        seq = (
            await self._c.execute(
                insert(policy_versions)
                .values(version=version, label=label, body=body, loaded_at=at, loaded_by=by)
                .returning(policy_versions.c.seq)
            )
        ).scalar_one()
        return StoredPolicy(seq, version, label, body, at, by)

    async def history(self, *, limit: int) -> list[StoredPolicy]:
        """Loaded policies, newest first."""
        rows = await self._c.execute(
            select(policy_versions).order_by(policy_versions.c.seq.desc()).limit(limit)
        )
        return [_stored(row) for row in rows]

    async def by_version(self, version: str) -> StoredPolicy | None:
        """The last load of a version."""
        row = (
            await self._c.execute(
                select(policy_versions)
                .where(policy_versions.c.version == version)
                .order_by(policy_versions.c.seq.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else _stored(row)

    # --- approvals ---

    async def add_approval(self, approval: Approval) -> bool:
        """Record an operator's decision; False if they decided on this withdrawal before."""
        insert_ = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        result = await self._c.execute(
            insert_(approvals)
            .values(
                withdrawal_id=approval.withdrawal_id,
                operator_id=approval.operator_id,
                vote=approval.vote.value,
                revision=approval.revision,
                reason=approval.reason,
                api_key_id=approval.api_key_id,
                address=approval.address,
                at=approval.at,
            )
            .on_conflict_do_nothing()
        )
        return bool(result.rowcount)

    async def approvals(self, withdrawal_ids: Sequence[str]) -> dict[str, list[Approval]]:
        """The decisions on each withdrawal, oldest first."""
        found: dict[str, list[Approval]] = {w: [] for w in withdrawal_ids}
        if not found:
            return found
        c = approvals.c
        rows = await self._c.execute(
            select(approvals).where(c.withdrawal_id.in_(list(found))).order_by(c.at, c.operator_id)
        )
        for r in rows:
            found[r.withdrawal_id].append(
                Approval(
                    withdrawal_id=r.withdrawal_id,
                    operator_id=r.operator_id,
                    vote=Vote(r.vote),
                    revision=r.revision,
                    at=r.at,
                    reason=r.reason,
                    api_key_id=r.api_key_id,
                    address=r.address,
                )
            )
        return found

    # --- address books ---

    async def book_entries(
        self, keys: Iterable[tuple[str, str, Address]]
    ) -> dict[tuple[str, str, Address], datetime]:
        """When each (user, network, address) entered the user's address book, for those there."""
        wanted = set(keys)
        if not wanted:
            return {}
        c = address_book.c
        rows = await self._c.execute(
            select(c.user_id, c.network, c.address, c.added_at).where(
                c.user_id.in_({k[0] for k in wanted}), c.address.in_({k[2] for k in wanted})
            )
        )
        found = {(r.user_id, r.network, Address(r.address)): r.added_at for r in rows}
        return {k: v for k, v in found.items() if k in wanted}

    async def add_to_book(self, entry: BookEntry) -> bool:
        """Add an address to a user's book; False if it is there already (its time kept)."""
        insert_ = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        result = await self._c.execute(
            insert_(address_book)
            .values(
                user_id=entry.user_id,
                network=entry.network,
                address=entry.address,
                label=entry.label,
                added_at=entry.added_at,
            )
            .on_conflict_do_nothing()
        )
        return bool(result.rowcount)

    async def remove_from_book(self, user_id: str, network: str, address: Address) -> bool:
        """Remove an address from a user's book; False if it was not there."""
        c = address_book.c
        result = await self._c.execute(
            delete(address_book).where(
                c.user_id == user_id, c.network == network, c.address == address
            )
        )
        return bool(result.rowcount)

    async def book(self, user_id: str) -> list[BookEntry]:
        """A user's address book, oldest entry first."""
        c = address_book.c
        rows = await self._c.execute(
            select(address_book).where(c.user_id == user_id).order_by(c.added_at, c.address)
        )
        return [
            BookEntry(r.user_id, r.network, Address(r.address), r.label, r.added_at) for r in rows
        ]

    # --- the blocklist ---

    async def blocked(self, addresses: Iterable[Address]) -> set[Address]:
        """Which of ``addresses`` are blocklisted."""
        wanted = sorted(set(addresses))
        if not wanted:
            return set()
        rows = await self._c.execute(
            select(blocklist.c.address).where(blocklist.c.address.in_(wanted))
        )
        return {Address(r.address) for r in rows}

    async def block(self, entries: Sequence[Blocked]) -> int:
        """Add addresses to the blocklist (those there already are kept as they are); how many
        were new."""
        if not entries:
            return 0
        insert_ = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        before = await self._count()
        for start in range(0, len(entries), 1_000):
            await self._c.execute(
                insert_(blocklist).on_conflict_do_nothing(),
                [
                    {
                        "address": e.address,
                        "source": e.source,
                        "reason": e.reason,
                        "added_at": e.added_at,
                    }
                    for e in entries[start : start + 1_000]
                ],
            )
        return await self._count() - before

    async def unblock(self, address: Address) -> bool:
        """Take an address off the blocklist; False if it was not on it."""
        result = await self._c.execute(delete(blocklist).where(blocklist.c.address == address))
        return bool(result.rowcount)

    async def blocklist(self, *, limit: int, source: str | None = None) -> list[Blocked]:
        """Blocklisted addresses, newest first."""
        query = select(blocklist)
        if source is not None:
            query = query.where(blocklist.c.source == source)
        rows = await self._c.execute(
            query.order_by(blocklist.c.added_at.desc(), blocklist.c.address).limit(limit)
        )
        return [Blocked(Address(r.address), r.source, r.reason, r.added_at) for r in rows]

    async def _count(self) -> int:
        return int(
            (await self._c.execute(select(func.count()).select_from(blocklist))).scalar_one()
        )

    # --- velocity ---

    async def lock_windows(self, keys: Iterable[str]) -> None:
        """Lock each window owner's row (made on first use), in one global order, until the
        transaction ends: a decision totalling a window waits for one that is deciding on it."""
        ordered = sorted(set(keys))
        if not ordered:
            return
        insert_ = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        await self._c.execute(
            insert_(velocity_locks).on_conflict_do_nothing(), [{"key": k} for k in ordered]
        )
        await self._c.execute(
            select(velocity_locks.c.key)
            .where(velocity_locks.c.key.in_(ordered))
            .order_by(velocity_locks.c.key)
            .with_for_update()
        )

    async def window_totals(
        self, per: Scope, owner: str, *, network: str, since: datetime
    ) -> WindowTotals:
        """Per (network, asset key): the sum of amounts and the count of the withdrawals the
        window holds (created at or after ``since``, decided and not refused)."""
        c = withdrawals.c
        where: list[ColumnElement[bool]] = [c.created_at >= since, c.status.in_(COUNTED)]
        if per is Scope.USER:
            where.append(c.user_id == owner)
        elif per is Scope.DESTINATION:
            where += [c.to_address == owner, c.network == network]
        else:
            where.append(c.network == network)
        if self._dialect == "postgresql":
            rows = await self._c.execute(
                select(c.network, c.asset_key, func.sum(c.amount), func.count())
                .where(*where)
                .group_by(c.network, c.asset_key)
            )
            return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}
        # SQLite keeps amounts as text, and its SUM of text is a float: add in Python.
        totals: dict[tuple[str, str], tuple[int, int]] = {}
        for r in await self._c.execute(select(c.network, c.asset_key, c.amount).where(*where)):
            summed, count = totals.get((r.network, r.asset_key), (0, 0))
            totals[(r.network, r.asset_key)] = (summed + int(r.amount), count + 1)
        return totals
