"""Webhook endpoints, events and deliveries in SQL (docs/webhooks.md)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, delete, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.db.tables import webhook_deliveries, webhook_endpoints, webhook_events
from sluice.domain.webhooks import (
    Delivery,
    DeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
    event_data,
    event_type,
    is_event,
)
from sluice.domain.withdrawal import StatusChange, Withdrawal, WithdrawalStatus

#: Status changes of withdrawals, inserted as one executemany at commit.
INSERT_WEBHOOK_EVENTS = insert(webhook_events)
#: The most events one call of `replay_since` re-sends (call again for more).
REPLAY_LIMIT = 10_000

_d = webhook_deliveries.c
_e = webhook_events.c
_w = webhook_endpoints.c


def new_message_id() -> str:
    """A webhook message id: ``msg_`` and 32 hex digits (the spec's ``webhook-id``)."""
    return f"msg_{uuid.uuid4().hex}"


def new_delivery_id() -> str:
    """A delivery's id: ``dlv_`` and 32 hex digits."""
    return f"dlv_{uuid.uuid4().hex}"


def event_rows(
    changes: Sequence[Mapping[str, Any]], withdrawals: Mapping[str, Withdrawal]
) -> list[dict[str, Any]]:
    """The `webhook_events` rows of a unit of work's status history rows (as
    `SqlWithdrawalRepository.take_events` hands them), one per change of status; a note
    (a history entry that keeps the status) is not an event.

    ``withdrawals`` holds each withdrawal as the unit of work last wrote it.
    """
    rows = []
    for row in changes:
        change = StatusChange(
            withdrawal_id=row["withdrawal_id"],
            from_status=WithdrawalStatus(row["from_status"]) if row["from_status"] else None,
            to_status=WithdrawalStatus(row["to_status"]),
            at=row["at"],
            reason=row["reason"],
            error_code=row["error_code"],
        )
        if not is_event(change):
            continue
        withdrawal = withdrawals.get(change.withdrawal_id)
        if withdrawal is None:  # history of no stored withdrawal (only tests write such)
            continue
        rows.append(
            {
                "id": new_message_id(),
                "type": event_type(change.to_status),
                "withdrawal_id": change.withdrawal_id,
                "data": event_data(withdrawal, change),
                "at": change.at,
                "dispatched": False,
            }
        )
    return rows


def _endpoint(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        url=row.url,
        event_types=tuple(row.event_types or ()),
        description=row.description,
        secret=row.secret,
        created_at=row.created_at,
        updated_at=row.updated_at,
        previous_secret=row.previous_secret,
        previous_secret_until=row.previous_secret_until,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
    )


def _event(row: Any) -> WebhookEvent:
    return WebhookEvent(
        id=row.event_id,
        type=row.type,
        withdrawal_id=row.withdrawal_id,
        data=row.data,
        at=row.at,
        seq=row.event_seq,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event=_event(row),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        claim=row.claim,
        seq=row.seq,
        replay_of=row.replay_of,
    )


_DELIVERY_COLUMNS = (
    *webhook_deliveries.c,
    _e.id.label("event_id"),
    _e.type,
    _e.withdrawal_id,
    _e.data,
    _e.at,
)
_SELECT_DELIVERIES = select(*_DELIVERY_COLUMNS).join_from(
    webhook_deliveries, webhook_events, _d.event_seq == _e.seq
)


def _endpoint_values(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "description": endpoint.description,
        "secret": endpoint.secret,
        "previous_secret": endpoint.previous_secret,
        "previous_secret_until": endpoint.previous_secret_until,
        "disabled_at": endpoint.disabled_at,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def _new_delivery(
    endpoint_id: str, event_seq: int, now: datetime, replay_of: str | None = None
) -> dict[str, Any]:
    return {
        "id": new_delivery_id(),
        "endpoint_id": endpoint_id,
        "event_seq": event_seq,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "replay_of": replay_of,
    }


class SqlWebhookRepository:
    """Webhook endpoints, events and deliveries in one transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    # Endpoints.
    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self._c.execute(insert(webhook_endpoints), _endpoint_values(endpoint))

    async def get_endpoint(self, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint | None:
        query = select(webhook_endpoints).where(_w.id == endpoint_id)
        if lock:
            query = query.with_for_update()
        row = (await self._c.execute(query)).first()
        return None if row is None else _endpoint(row)

    async def endpoints(self) -> list[WebhookEndpoint]:
        query = select(webhook_endpoints).order_by(_w.created_at, _w.id)
        return [_endpoint(row) for row in await self._c.execute(query)]

    async def save_endpoint(self, endpoint: WebhookEndpoint) -> None:
        values = _endpoint_values(endpoint)
        del values["id"]
        await self._c.execute(update(webhook_endpoints).where(_w.id == endpoint.id).values(values))

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        await self._c.execute(delete(webhook_deliveries).where(_d.endpoint_id == endpoint_id))
        result = await self._c.execute(delete(webhook_endpoints).where(_w.id == endpoint_id))
        return bool(result.rowcount)

    # Events.
    async def add_events(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self._c.execute(INSERT_WEBHOOK_EVENTS, rows)

    async def undispatched(self, *, limit: int) -> list[WebhookEvent]:
        # SKIP LOCKED: two workers fanning out at once take different events (SQLite's
        # BEGIN IMMEDIATE serializes them instead).
        query = (
            select(
                _e.seq.label("event_seq"),
                _e.id.label("event_id"),
                _e.type,
                _e.withdrawal_id,
                _e.data,
                _e.at,
            )
            .where(_e.dispatched.is_(False))
            .order_by(_e.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_event(row) for row in await self._c.execute(query)]

    async def fan_out(
        self, events: Sequence[WebhookEvent], targets: Mapping[int, Sequence[str]], now: datetime
    ) -> int:
        rows = [
            _new_delivery(endpoint_id, event.seq, now)
            for event in events
            if event.seq is not None
            for endpoint_id in targets.get(event.seq, ())
        ]
        if rows:
            await self._c.execute(insert(webhook_deliveries), rows)
        seqs = [event.seq for event in events]
        if seqs:
            await self._c.execute(
                update(webhook_events).where(_e.seq.in_(seqs)).values(dispatched=True)
            )
        return len(rows)

    # Deliveries.
    async def claim_due(
        self, now: datetime, *, until: datetime, claim: str, limit: int
    ) -> list[tuple[Delivery, WebhookEndpoint]]:
        due = (
            select(_d.seq)
            .join_from(webhook_deliveries, webhook_endpoints, _d.endpoint_id == _w.id)
            .where(
                _d.status == DeliveryStatus.PENDING.value,
                _d.next_attempt_at <= now,
                or_(_d.claimed_until.is_(None), _d.claimed_until <= now),
                _w.disabled_at.is_(None),
            )
            .order_by(_d.next_attempt_at, _d.seq)
            .limit(limit)
            # Another worker's claim in progress is skipped, not waited for.
            .with_for_update(skip_locked=True, of=webhook_deliveries)
        )
        seqs = list((await self._c.execute(due)).scalars())
        if not seqs:
            return []
        await self._c.execute(
            update(webhook_deliveries)
            .where(_d.seq.in_(seqs))
            .values(claim=claim, claimed_until=until)
        )
        query = (
            select(*_DELIVERY_COLUMNS, *(c.label(f"ep_{c.name}") for c in _w))
            .join_from(webhook_deliveries, webhook_events, _d.event_seq == _e.seq)
            .join(webhook_endpoints, _d.endpoint_id == _w.id)
            .where(_d.seq.in_(seqs))
            .order_by(_d.next_attempt_at, _d.seq)
        )
        claimed = []
        for row in await self._c.execute(query):
            endpoint = _endpoint(
                _Prefixed(row, "ep_")  # the endpoint's columns, by their own names
            )
            claimed.append((_delivery(row), endpoint))
        return claimed

    async def record_attempt(
        self,
        delivery_id: str,
        claim: str,
        *,
        status: DeliveryStatus,
        at: datetime,
        next_attempt_at: datetime | None,
        status_code: int | None,
        error: str | None,
    ) -> bool:
        result = await self._c.execute(
            update(webhook_deliveries)
            .where(_d.id == delivery_id, _d.claim == claim)
            .values(
                status=status.value,
                attempts=_d.attempts + 1,
                next_attempt_at=next_attempt_at,
                claim=None,
                claimed_until=None,
                last_attempt_at=at,
                last_status_code=status_code,
                last_error=error,
                delivered_at=at if status is DeliveryStatus.DELIVERED else None,
            )
        )
        return bool(result.rowcount)

    async def deliveries(
        self, endpoint_id: str, *, limit: int, before_seq: int | None
    ) -> list[Delivery]:
        query = _SELECT_DELIVERIES.where(_d.endpoint_id == endpoint_id)
        if before_seq is not None:
            query = query.where(_d.seq < literal(before_seq, BigInteger))
        query = query.order_by(_d.seq.desc()).limit(limit)
        return [_delivery(row) for row in await self._c.execute(query)]

    async def get_delivery(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        query = _SELECT_DELIVERIES.where(_d.endpoint_id == endpoint_id, _d.id == delivery_id)
        row = (await self._c.execute(query)).first()
        return None if row is None else _delivery(row)

    async def replay(self, delivery: Delivery, now: datetime) -> str:
        if delivery.event.seq is None:  # pragma: no cover - read from the database
            raise ValueError("a stored delivery's event has a seq")
        row = _new_delivery(delivery.endpoint_id, delivery.event.seq, now, replay_of=delivery.id)
        await self._c.execute(insert(webhook_deliveries), row)
        return str(row["id"])

    async def replay_since(
        self, endpoint_id: str, since: datetime, event_types: Sequence[str], now: datetime
    ) -> int:
        query = select(_e.seq).where(_e.at >= since).order_by(_e.seq).limit(REPLAY_LIMIT)
        if event_types:
            query = query.where(_e.type.in_(list(event_types)))
        seqs = list((await self._c.execute(query)).scalars())
        if seqs:
            rows = [_new_delivery(endpoint_id, seq, now) for seq in seqs]
            await self._c.execute(insert(webhook_deliveries), rows)
        return len(seqs)

    async def counts(self, endpoint_id: str | None = None) -> dict[str, int]:
        """Deliveries by status (of one endpoint, or all): for tests and operators."""
        query = select(_d.status, func.count()).group_by(_d.status)
        if endpoint_id is not None:
            query = query.where(_d.endpoint_id == endpoint_id)
        return {str(status): int(n) for status, n in await self._c.execute(query)}


class _Prefixed:
    """A row's columns named ``<prefix><name>``, read as ``name``."""

    def __init__(self, row: Any, prefix: str) -> None:
        self._row = row
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


__all__ = [
    "INSERT_WEBHOOK_EVENTS",
    "SqlWebhookRepository",
    "event_rows",
    "new_delivery_id",
    "new_message_id",
]
