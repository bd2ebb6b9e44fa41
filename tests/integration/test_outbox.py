"""The transactional outbox: messages commit with their state and are never lost."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.outbox import Outbox
from sluice.db.tables import outbox
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.errors import TransientError
from sluice.queue.memory import MemoryQueue
from sluice.testing.fakes import FakeClock


async def _rows(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (await connection.execute(select(func.count()).select_from(outbox))).scalar_one()
        )


async def test_a_commit_publishes_its_messages_and_the_flush_forgets_them(
    engine: AsyncEngine,
) -> None:
    queue = MemoryQueue()
    store = Outbox(engine, queue, FakeClock())
    async with SqlUnitOfWorkFactory(engine, queue, store)() as uow:
        uow.enqueue("withdrawal.validate", {"withdrawalId": "wd_1"})
        uow.enqueue("withdrawal.validate", {"withdrawalId": "wd_2"})
        await uow.commit()
    assert await _rows(engine) == 2, "written in the transaction, kept until flushed"
    received = await queue.receive(max_messages=10, wait_s=1)
    assert sorted(m.payload["withdrawalId"] for m in received) == ["wd_1", "wd_2"]
    assert await store.flush() == 2
    assert await _rows(engine) == 0


async def test_a_rollback_writes_and_publishes_nothing(engine: AsyncEngine) -> None:
    queue = MemoryQueue()
    async with SqlUnitOfWorkFactory(engine, queue)() as uow:
        uow.enqueue("withdrawal.validate", {"withdrawalId": "wd_1"})
        await uow.rollback()
    assert await _rows(engine) == 0
    assert queue.stats()["ready"] == 0


async def test_messages_orphaned_by_a_dead_publisher_are_relayed_once_stale(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock()
    dead_queue = MemoryQueue()  # the publisher "dies": its queue is never read
    store = Outbox(engine, dead_queue, clock)
    async with engine.begin() as connection:
        await store.write(connection, [("withdrawal.sign", {"withdrawalId": "wd_9"}, 0.0)], "r-9")

    live_queue = MemoryQueue()
    relay = Outbox(engine, live_queue, clock)
    assert await relay.relay(older_than_s=30) == 0, "too fresh: its publisher may be alive"
    clock.advance(timedelta(seconds=31))
    assert await relay.relay(older_than_s=30) == 1
    [message] = await live_queue.receive(max_messages=10, wait_s=1)
    assert (message.job, message.payload, message.request_id) == (
        "withdrawal.sign",
        {"withdrawalId": "wd_9"},
        "r-9",
    )
    assert await _rows(engine) == 0


class _DownQueue(MemoryQueue):
    async def publish(self, *args: object, **kwargs: object) -> None:
        raise TransientError("queue unavailable: ConnectionError")


async def test_a_queue_down_at_commit_loses_nothing_and_fails_no_caller(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock()
    queue = _DownQueue()
    store = Outbox(engine, queue, clock)
    async with SqlUnitOfWorkFactory(engine, queue, store)() as uow:
        uow.enqueue("withdrawal.validate", {"withdrawalId": "wd_7"})
        await uow.commit()  # does not raise: the state is committed
    assert await store.flush() == 0, "not published, so kept"
    assert await _rows(engine) == 1

    live = MemoryQueue()
    clock.advance(timedelta(seconds=31))
    assert await Outbox(engine, live, clock).relay(older_than_s=30) == 1
    [message] = await live.receive(max_messages=1, wait_s=1)
    assert message.payload == {"withdrawalId": "wd_7"}
