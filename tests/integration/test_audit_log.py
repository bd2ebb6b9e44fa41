"""The audit log on the session's database: appends from many transactions at once form one
chain, rolled-back appends leave no trace, and the database refuses edits and deletes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.domain.audit import Actor, AuditFilter, AuditRecord
from sluice.queue.memory import MemoryQueue
from sluice.services.audit import verify

ALICE = Actor("operator", "op_alice", api_key_id="k1", address="10.0.0.1")


@pytest.fixture
def uow(engine: AsyncEngine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine, MemoryQueue())


def _record(n: int, actor: Actor = ALICE) -> AuditRecord:
    return AuditRecord(
        actor=actor,
        action="withdrawal.approved" if n % 2 else "network.paused",
        subject=f"withdrawal:wd_{n}",
        at=datetime.now(UTC),
        before={"status": "PENDING_APPROVAL", "n": n},
        after={"status": "VALIDATING", "at": datetime.now(UTC)},
    )


async def test_concurrent_appends_form_one_unbroken_chain(uow: SqlUnitOfWorkFactory) -> None:
    async def append(n: int) -> None:
        async with uow() as u:
            await u.audit.append(_record(n))
            await asyncio.sleep(0)  # let the others reach the head's lock meanwhile
            await u.commit()

    await asyncio.gather(*(append(n) for n in range(20)))
    async with uow() as u:
        result = await verify(u)
        assert await u.audit.head() == (20, (await u.audit.page(AuditFilter(), limit=1))[0].hash)
    assert result.entries == 20
    assert result.broken is None


async def test_a_rolled_back_append_leaves_no_gap(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as u:
        await u.audit.append(_record(1))
        await u.commit()
    async with uow() as u:
        await u.audit.append(_record(2))
        await u.rollback()
    async with uow() as u:
        entry = await u.audit.append(_record(3))
        await u.commit()
        assert entry.seq == 2
        assert (await verify(u)).broken is None


async def test_pages_filter_by_actor_action_and_subject(uow: SqlUnitOfWorkFactory) -> None:
    bob = Actor("service_key", "k9")
    async with uow() as u:
        for n in range(1, 7):
            await u.audit.append(_record(n, ALICE if n < 5 else bob))
        await u.commit()
    async with uow() as u:
        approved = await u.audit.page(AuditFilter(action="withdrawal.approved"), limit=10)
        assert [e.seq for e in approved] == [5, 3, 1]
        assert [e.seq for e in await u.audit.page(AuditFilter(actor=bob.label), limit=10)] == [
            6,
            5,
        ]
        only = await u.audit.page(AuditFilter(subject="withdrawal:wd_2"), limit=10)
        assert [e.record.before for e in only] == [{"status": "PENDING_APPROVAL", "n": 2}]
        assert only[0].record.actor == ALICE
        older = await u.audit.page(AuditFilter(), limit=2, before_seq=3)
        assert [e.seq for e in older] == [2, 1]


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"])
async def test_the_database_refuses_to_edit_or_delete_entries(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine, statement: str
) -> None:
    async with uow() as u:
        await u.audit.append(_record(1))
        await u.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    async with uow() as u:
        assert (await verify(u)).broken is None
