"""The transactional outbox: queue messages committed with the state they point at.

A unit of work writes its messages into ``outbox`` inside its transaction, publishes them right
after the commit, and hands their ids to `Outbox` for deletion in batches. If the process dies
after the commit and before the publish (or the delete), the rows stay; `Outbox.relay`, run
periodically by every process, publishes rows older than a grace period and deletes them. A
message may thus be published twice, never lost; every handler is idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluice.db.tables import outbox
from sluice.ports import Clock, Queue

log = structlog.get_logger(__name__)

#: Rows this old are presumed orphaned by a publisher that died.
RELAY_AFTER_S = 30.0
#: Rows relayed per round.
RELAY_BATCH = 500
#: Built once; executed with parameter dicts (one executemany per unit of work).
INSERT_MESSAGES = insert(outbox)


class Outbox:
    """Writes, forgets and relays outbox rows for one engine and queue."""

    def __init__(self, engine: AsyncEngine, queue: Queue, clock: Clock) -> None:
        self._engine = engine
        self._queue = queue
        self._clock = clock
        self._published: list[str] = []

    def rows(
        self,
        messages: Sequence[tuple[str, dict[str, Any], float]],
        request_id: str | None,
    ) -> list[dict[str, Any]]:
        """The outbox rows of messages, each with a new ``id``, for `INSERT_MESSAGES`."""
        now = self._clock.now()
        return [
            {
                "id": uuid.uuid4().hex,
                "job": job,
                "payload": payload,
                "request_id": request_id,
                "delay_s": delay_s,
                "created_at": now,
            }
            for job, payload, delay_s in messages
        ]

    async def write(
        self,
        connection: AsyncConnection,
        messages: Sequence[tuple[str, dict[str, Any], float]],
        request_id: str | None,
    ) -> list[str]:
        """Insert messages in the caller's transaction; their ids."""
        rows = self.rows(messages, request_id)
        if rows:
            await connection.execute(INSERT_MESSAGES, rows)
        return [row["id"] for row in rows]

    def published(self, ids: Sequence[str]) -> None:
        """Remember ids whose messages reached the queue; `flush` deletes them."""
        self._published.extend(ids)

    async def flush(self) -> int:
        """Delete the rows of published messages, in one statement."""
        ids, self._published = self._published, []
        if not ids:
            return 0
        try:
            async with self._engine.begin() as connection:
                await connection.execute(delete(outbox).where(outbox.c.id.in_(ids)))
        except Exception:
            # Keep them for the next round; at worst the relay publishes them once more.
            self._published.extend(ids)
            raise
        return len(ids)

    async def relay(self, *, older_than_s: float = RELAY_AFTER_S) -> int:
        """Publish and delete rows left behind by a publisher that died."""
        cutoff: datetime = self._clock.now() - timedelta(seconds=older_than_s)
        async with self._engine.begin() as connection:
            # SKIP LOCKED: two processes relaying at once take different rows (PostgreSQL).
            rows = (
                await connection.execute(
                    select(outbox)
                    .where(outbox.c.created_at < cutoff)
                    .order_by(outbox.c.created_at)
                    .limit(RELAY_BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await self._queue.publish(
                    row.job, row.payload, delay_s=row.delay_s, request_id=row.request_id
                )
            if rows:
                await connection.execute(
                    delete(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                )
        if rows:
            log.warning("relayed orphaned outbox messages", count=len(rows))
        return len(rows)
