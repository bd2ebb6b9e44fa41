"""Withdrawals and their status history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, and_, bindparam, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.elements import ColumnElement

from sluice.db.tables import withdrawal_events, withdrawals
from sluice.domain.addresses import Address
from sluice.domain.fees import FeeLevel
from sluice.domain.withdrawal import StatusChange, Withdrawal, WithdrawalStatus

_MUTABLE = (
    "status",
    "error",
    "error_code",
    "transaction_id",
    "transaction_hash",
    "block_number",
    "updated_at",
    "waiting_reason",
    "fee_paid",
    "unbatched",
    "policy_version",
    "policy_rule",
    "approval_expires_at",
)

#: A withdrawal's mutable fields, written for many rows at once (`save_many`).
_UPDATE_MANY = (
    update(withdrawals)
    .where(withdrawals.c.id == bindparam("_id"))
    .values({name: bindparam(name) for name in _MUTABLE})
)

# Statements built once: executed with a parameter dict, each compiles once per dialect and
# process instead of building fresh bind parameters (and cache keys) on every call.

#: A new withdrawal, or nothing if its id is taken: no savepoint, and the seq of a new row in the
#: same round trip (SQLite has ON CONFLICT and RETURNING since 3.35).
_INSERT_NEW: dict[str, ReturningInsert[int]] = {
    "postgresql": postgresql.insert(withdrawals)
    .on_conflict_do_nothing(index_elements=[withdrawals.c.id])
    .returning(withdrawals.c.seq),
    "sqlite": sqlite.insert(withdrawals)
    .on_conflict_do_nothing(index_elements=[withdrawals.c.id])
    .returning(withdrawals.c.seq),
}
_SELECT_BY_ID = select(withdrawals).where(withdrawals.c.id == bindparam("withdrawal_id"))
_SELECT_BY_ID_FOR_UPDATE = _SELECT_BY_ID.with_for_update()
#: Status changes, inserted as one executemany (see `SqlWithdrawalRepository.add_event`).
INSERT_EVENT = insert(withdrawal_events)


def to_withdrawal(row: Any) -> Withdrawal:
    return Withdrawal(
        id=row.id,
        user_id=row.user_id,
        network=row.network,
        asset_key=row.asset_key,
        token_address=Address(row.token_address) if row.token_address else None,
        amount=row.amount,
        to_address=Address(row.to_address),
        status=WithdrawalStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        fingerprint=row.fingerprint,
        request_id=row.request_id,
        transaction_id=row.transaction_id,
        transaction_hash=row.transaction_hash,
        block_number=row.block_number,
        error=row.error,
        error_code=row.error_code,
        seq=row.seq,
        waiting_reason=row.waiting_reason,
        priority=FeeLevel(row.priority) if row.priority else None,
        fee_paid=row.fee_paid,
        unbatched=bool(row.unbatched),
        fee=row.fee or 0,
        api_key_id=row.api_key_id,
        policy_version=row.policy_version,
        policy_rule=row.policy_rule,
        approval_expires_at=row.approval_expires_at,
    )


def _batchable(network: str, asset_key: str) -> tuple[ColumnElement[bool], ...]:
    """Waiting to be signed, and free to share a transaction."""
    c = withdrawals.c
    return (
        c.status == WithdrawalStatus.VALIDATING.value,
        c.network == network,
        c.asset_key == asset_key,
        c.unbatched.is_(False),
        or_(c.priority.is_(None), c.priority != FeeLevel.FAST.value),
    )


class SqlWithdrawalRepository:
    """Withdrawals in SQL."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection
        try:
            self._insert_new = _INSERT_NEW[connection.dialect.name]
        except KeyError:
            raise NotImplementedError(
                f"withdrawals need PostgreSQL or SQLite, not {connection.dialect.name}"
            ) from None
        self._pending_events: list[dict[str, Any]] = []
        #: Each withdrawal this unit of work added or saved, as last written: the webhook events
        #: of its status changes are made from it at commit, without reading it back.
        self.written: dict[str, Withdrawal] = {}
        #: Every status history row added in this unit of work, flushed or not (`take_changes`).
        self._changes: list[dict[str, Any]] = []

    async def add(self, withdrawal: Withdrawal) -> bool:
        values = {
            "id": withdrawal.id,
            "user_id": withdrawal.user_id,
            "network": withdrawal.network,
            "asset_key": withdrawal.asset_key,
            "token_address": withdrawal.token_address,
            "amount": withdrawal.amount,
            "to_address": withdrawal.to_address,
            "status": withdrawal.status.value,
            "error": withdrawal.error,
            "error_code": withdrawal.error_code,
            "fingerprint": withdrawal.fingerprint,
            "request_id": withdrawal.request_id,
            "transaction_id": withdrawal.transaction_id,
            "transaction_hash": withdrawal.transaction_hash,
            "block_number": withdrawal.block_number,
            "created_at": withdrawal.created_at,
            "updated_at": withdrawal.updated_at,
            "priority": withdrawal.priority,
            "unbatched": withdrawal.unbatched,
            "fee": withdrawal.fee or None,
            "api_key_id": withdrawal.api_key_id,
            "policy_version": withdrawal.policy_version,
            "policy_rule": withdrawal.policy_rule,
            "approval_expires_at": withdrawal.approval_expires_at,
        }
        # ON CONFLICT (id) DO NOTHING: a taken id returns no row and leaves the transaction
        # usable, without a savepoint around the insert.
        seq = (await self._c.execute(self._insert_new, values)).scalar_one_or_none()
        if seq is None:
            return False
        withdrawal.seq = seq
        self.written[withdrawal.id] = withdrawal
        return True

    async def get(self, withdrawal_id: str, *, lock: bool = False) -> Withdrawal | None:
        query = _SELECT_BY_ID_FOR_UPDATE if lock else _SELECT_BY_ID
        row = (await self._c.execute(query, {"withdrawal_id": withdrawal_id})).first()
        return None if row is None else to_withdrawal(row)

    async def save(self, withdrawal: Withdrawal) -> None:
        values = {name: getattr(withdrawal, name) for name in _MUTABLE}
        values["status"] = withdrawal.status.value
        self.written[withdrawal.id] = withdrawal
        await self._c.execute(
            update(withdrawals).where(withdrawals.c.id == withdrawal.id).values(values)
        )

    async def save_many(self, withdrawals_: Sequence[Withdrawal]) -> None:
        if len(withdrawals_) < 2:
            for withdrawal in withdrawals_:
                await self.save(withdrawal)
            return
        rows = []
        for withdrawal in withdrawals_:
            values = {name: getattr(withdrawal, name) for name in _MUTABLE}
            values["status"] = withdrawal.status.value
            values["_id"] = withdrawal.id
            rows.append(values)
            self.written[withdrawal.id] = withdrawal
        # One executemany: asyncpg sends every row's parameters in one pipelined round trip.
        await self._c.execute(_UPDATE_MANY, rows)

    async def page(
        self,
        *,
        user_id: str | None,
        status: WithdrawalStatus | None,
        limit: int,
        before_seq: int | None,
    ) -> list[Withdrawal]:
        query = select(withdrawals).order_by(withdrawals.c.seq.desc()).limit(limit)
        if user_id is not None:
            query = query.where(withdrawals.c.user_id == user_id)
        if status is not None:
            query = query.where(withdrawals.c.status == status.value)
        if before_seq is not None:
            # Bound as BIGINT: a client's cursor may exceed PostgreSQL's 32-bit INTEGER, which
            # asyncpg would refuse to send for an INTEGER comparison (any cursor that large simply
            # means "from the newest").
            query = query.where(withdrawals.c.seq < literal(before_seq, BigInteger))
        return [to_withdrawal(row) for row in await self._c.execute(query)]

    async def changed_since(
        self,
        *,
        user_id: str | None,
        status: WithdrawalStatus | None,
        limit: int,
        since: datetime,
        after: tuple[datetime, int] | None,
    ) -> list[Withdrawal]:
        c = withdrawals.c
        query = (
            select(withdrawals)
            .where(c.updated_at >= since)
            .order_by(c.updated_at, c.seq)
            .limit(limit)
        )
        if user_id is not None:
            query = query.where(c.user_id == user_id)
        if status is not None:
            query = query.where(c.status == status.value)
        if after is not None:
            at, seq = after
            after_seq = literal(seq, BigInteger)  # as in `page`: a cursor may exceed INTEGER
            query = query.where(or_(c.updated_at > at, and_(c.updated_at == at, c.seq > after_seq)))
        return [to_withdrawal(row) for row in await self._c.execute(query)]

    async def for_transaction(self, transaction_id: str, *, lock: bool = False) -> list[Withdrawal]:
        query = (
            select(withdrawals)
            .where(withdrawals.c.transaction_id == transaction_id)
            .order_by(withdrawals.c.seq)
        )
        if lock:
            query = query.with_for_update()
        return [to_withdrawal(row) for row in await self._c.execute(query)]

    async def batchable(self, network: str, asset_key: str, *, limit: int) -> list[Withdrawal]:
        query = (
            select(withdrawals)
            .where(*_batchable(network, asset_key))
            .order_by(withdrawals.c.seq)
            .limit(limit)
        )
        return [to_withdrawal(row) for row in await self._c.execute(query)]

    async def batch_queue(
        self, network: str, asset_key: str, *, limit: int
    ) -> list[tuple[str, datetime]]:
        c = withdrawals.c
        query = (
            select(c.id, c.updated_at, c.created_at, c.waiting_reason)
            .where(*_batchable(network, asset_key))
            .order_by(c.seq)
            .limit(limit)
        )
        return [
            (row.id, row.updated_at if row.waiting_reason is None else row.created_at)
            for row in await self._c.execute(query)
        ]

    async def get_many(self, ids: Sequence[str], *, lock: bool = False) -> list[Withdrawal]:
        if not ids:
            return []
        query = (
            select(withdrawals).where(withdrawals.c.id.in_(list(ids))).order_by(withdrawals.c.seq)
        )
        if lock:
            query = query.with_for_update()
        return [to_withdrawal(row) for row in await self._c.execute(query)]

    async def waiting(self, network: str, *, limit: int) -> list[str]:
        c = withdrawals.c
        query = (
            select(c.id)
            .where(
                c.status == WithdrawalStatus.VALIDATING.value,
                c.network == network,
                c.waiting_reason.is_not(None),
            )
            .order_by(c.seq)
            .limit(limit)
        )
        return list((await self._c.execute(query)).scalars())

    async def claim_pending(self, network: str, *, limit: int, besides: str) -> list[Withdrawal]:
        if limit <= 0:
            return []
        query = (
            select(withdrawals)
            .where(
                withdrawals.c.status == WithdrawalStatus.PENDING.value,
                withdrawals.c.network == network,
                withdrawals.c.id != besides,
            )
            .order_by(withdrawals.c.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)  # SQLite: BEGIN IMMEDIATE serializes instead
        )
        return [to_withdrawal(row) for row in await self._c.execute(query)]

    async def ids_in_status(
        self,
        status: WithdrawalStatus,
        *,
        limit: int,
        updated_before: datetime | None = None,
    ) -> list[str]:
        query = select(withdrawals.c.id).where(withdrawals.c.status == status.value)
        if updated_before is not None:
            query = query.where(withdrawals.c.updated_at < updated_before)
        query = query.order_by(withdrawals.c.seq).limit(limit)
        return list((await self._c.execute(query)).scalars())

    async def approvals_expired(self, now: datetime, *, limit: int) -> list[str]:
        """Ids of withdrawals whose wait for approval ended before ``now``, oldest first."""
        c = withdrawals.c
        query = (
            select(c.id)
            .where(c.status == WithdrawalStatus.PENDING_APPROVAL.value, c.approval_expires_at < now)
            .order_by(c.seq)
            .limit(limit)
        )
        return list((await self._c.execute(query)).scalars())

    async def add_event(self, change: StatusChange) -> None:
        """Record a status change; it is written with the next `flush_events` or at commit.

        The unit of work writes the pending events at commit together with its outbox rows
        (on PostgreSQL in the same statement), which saves a round trip per unit of work.
        History is append-only and read back only through `events` (which flushes first), so
        nothing in the transaction can tell the difference.
        """
        row = {
            "withdrawal_id": change.withdrawal_id,
            "from_status": change.from_status.value if change.from_status else None,
            "to_status": change.to_status.value,
            "reason": change.reason,
            "error_code": change.error_code,
            "request_id": change.request_id,
            "data": change.data,
            "at": change.at,
        }
        self._pending_events.append(row)
        self._changes.append(row)

    def take_events(self) -> list[dict[str, Any]]:
        """The rows of events added but not written yet, which the caller now must write."""
        events, self._pending_events = self._pending_events, []
        return events

    def drop_events(self) -> None:
        """Forget unwritten events (the transaction is rolled back)."""
        self._pending_events.clear()
        self._changes.clear()

    def take_changes(self) -> list[dict[str, Any]]:
        """Every history row added since the last call, written already or not (the unit of
        work makes its webhook events of them at commit)."""
        changes, self._changes = self._changes, []
        return changes

    async def flush_events(self) -> None:
        """Write the events added so far."""
        events = self.take_events()
        if events:
            await self._c.execute(INSERT_EVENT, events)

    async def events(self, withdrawal_id: str) -> list[StatusChange]:
        await self.flush_events()
        query = (
            select(withdrawal_events)
            .where(withdrawal_events.c.withdrawal_id == withdrawal_id)
            .order_by(withdrawal_events.c.id)
        )
        return [
            StatusChange(
                withdrawal_id=row.withdrawal_id,
                from_status=WithdrawalStatus(row.from_status) if row.from_status else None,
                to_status=WithdrawalStatus(row.to_status),
                at=row.at,
                reason=row.reason,
                error_code=row.error_code,
                request_id=row.request_id,
                data=row.data,
            )
            for row in await self._c.execute(query)
        ]
