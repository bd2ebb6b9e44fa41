"""The audit log in SQL: appended under a lock on its head row, read in pages or whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.db.tables import audit_head, audit_log
from sluice.domain.audit import Actor, AuditEntry, AuditFilter, AuditRecord, chain, plain

#: Rows read at a time when the whole log is walked (`SqlAuditLog.walk`).
WALK_CHUNK = 1_000


def _entry(row: Any) -> AuditEntry:
    kind, _, actor_id = row.actor.partition(":")
    record = AuditRecord(
        actor=Actor(kind, actor_id, api_key_id=row.api_key_id, address=row.address),
        action=row.action,
        subject=row.subject,
        at=row.at,
        before=row.before,
        after=row.after,
        detail=row.detail,
    )
    return AuditEntry(seq=row.seq, record=record, prev_hash=row.prev_hash, hash=row.hash)


class SqlAuditLog:
    """The audit log within one database transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def append(self, record: AuditRecord) -> AuditEntry:
        """Append an entry in the caller's transaction (it is kept only if that commits).

        The head row is locked first, so appends from several processes queue behind each other
        and each links to the one committed before it.
        """
        head = (
            await self._c.execute(
                select(audit_head.c.seq, audit_head.c.hash)
                .where(audit_head.c.id == 1)
                .with_for_update()
            )
        ).one()
        stored = AuditRecord(
            actor=record.actor,
            action=record.action,
            subject=record.subject,
            at=record.at,
            before=plain(record.before),
            after=plain(record.after),
            detail=plain(record.detail),
        )
        entry = chain(head.seq + 1, stored, head.hash)
        actor = record.actor
        await self._c.execute(
            insert(audit_log).values(
                seq=entry.seq,
                at=stored.at,
                actor=actor.label,
                api_key_id=actor.api_key_id,
                address=actor.address,
                action=stored.action,
                subject=stored.subject,
                before=stored.before,
                after=stored.after,
                detail=stored.detail,
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )
        await self._c.execute(
            update(audit_head).where(audit_head.c.id == 1).values(seq=entry.seq, hash=entry.hash)
        )
        return entry

    async def head(self) -> tuple[int, str]:
        """The seq and hash of the last entry appended (0 and the genesis hash: none yet)."""
        row = (
            await self._c.execute(
                select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
            )
        ).one()
        return int(row.seq), str(row.hash)

    async def page(
        self, where: AuditFilter, *, limit: int, before_seq: int | None = None
    ) -> list[AuditEntry]:
        """Entries matching ``where``, newest first, below ``before_seq`` if given."""
        query = select(audit_log)
        c = audit_log.c
        if where.actor is not None:
            query = query.where(c.actor == where.actor)
        if where.action is not None:
            query = query.where(c.action == where.action)
        if where.subject is not None:
            query = query.where(c.subject == where.subject)
        if where.since is not None:
            query = query.where(c.at >= where.since)
        if where.until is not None:
            query = query.where(c.at < where.until)
        if before_seq is not None:
            query = query.where(c.seq < before_seq)
        rows = await self._c.execute(query.order_by(c.seq.desc()).limit(limit))
        return [_entry(row) for row in rows]

    async def walk(self) -> AsyncIterator[AuditEntry]:
        """Every entry, oldest first, read in chunks."""
        after = 0
        while True:
            rows = (
                await self._c.execute(
                    select(audit_log)
                    .where(audit_log.c.seq > after)
                    .order_by(audit_log.c.seq)
                    .limit(WALK_CHUNK)
                )
            ).all()
            for row in rows:
                yield _entry(row)
            if len(rows) < WALK_CHUNK:
                return
            after = rows[-1].seq
