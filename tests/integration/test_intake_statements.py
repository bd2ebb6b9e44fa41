"""Intake's statements: one INSERT per new withdrawal, its event and outbox row batched at commit.

Counts the statements sent to the database (SQLAlchemy's ``before_cursor_execute``), so a change
that brings back a read before the insert, a savepoint, or a statement per row shows up here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.tables import outbox, withdrawal_events, withdrawals
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.domain.assets import Asset, Network
from sluice.domain.withdrawal import StatusChange, WithdrawalStatus
from sluice.errors import IdempotencyConflictError
from sluice.services import jobs
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.services.withdrawals import WithdrawalRequest, WithdrawalService
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner, RecordingQueue

NET = "fakenet"
HOT_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
DEST = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def uow(engine: AsyncEngine, queue: RecordingQueue) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine, queue)


@pytest.fixture
def service() -> WithdrawalService:
    signer = LocalSigner(HOT_KEY)
    network = Network(
        name=NET,
        chain_id=31337,
        native=Asset(NET, "ETH", 18),
        tokens=(),
        confirmations=1,
        poll_interval_s=0.01,
        hot_wallets=(signer.address,),
    )
    entry = NetworkEntry(network=network, chain=FakeChain(chain_id=31337), signers=(signer,))
    return WithdrawalService(NetworkRegistry({NET: entry}), FakeClock())


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs (transaction control left out)."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        statement: str = args[2]
        if statement.split(maxsplit=1)[0].upper() not in {"BEGIN", "COMMIT", "ROLLBACK", "PRAGMA"}:
            sent.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def _request(withdrawal_id: str | None = None, amount: str = "0.5") -> WithdrawalRequest:
    return WithdrawalRequest(
        user_id="alice", amount=amount, to_address=DEST, network=NET, id=withdrawal_id
    )


async def _counts(engine: AsyncEngine) -> tuple[int, int, int]:
    async with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            [
                (await connection.execute(select(func.count()).select_from(table))).scalar_one()
                for table in (withdrawals, withdrawal_events, outbox)
            ]
        )


async def _submit(
    uow: SqlUnitOfWorkFactory, service: WithdrawalService, request: WithdrawalRequest
) -> tuple[str, bool]:
    async with uow() as u:
        withdrawal, created = await service.submit(u, request, request_id="req-1")
        await u.commit()
    return withdrawal.id, created


@pytest.mark.parametrize("withdrawal_id", [None, "client-1"])
async def test_a_new_withdrawal_is_one_insert_without_a_read_or_a_savepoint(
    engine: AsyncEngine,
    uow: SqlUnitOfWorkFactory,
    service: WithdrawalService,
    queue: RecordingQueue,
    withdrawal_id: str | None,
) -> None:
    # The first request of a process reads the policy in force; the others, for the next
    # `REFRESH_S`, read nothing.
    async with uow() as u:
        await service.policy.in_force(u)
    with statements(engine) as sent:
        made_id, created = await _submit(uow, service, _request(withdrawal_id))

    assert created
    assert withdrawal_id is None or made_id == withdrawal_id
    assert not [s for s in sent if s.startswith(("SELECT", "SAVEPOINT", "RELEASE"))], sent
    assert "ON CONFLICT (id) DO NOTHING RETURNING" in sent[0], sent
    if engine.dialect.name == "postgresql":
        # The event, its webhook event and the outbox row share one statement (data-modifying
        # CTEs).
        assert len(sent) == 2, sent
        assert sent[1].startswith("WITH new_event AS (INSERT INTO withdrawal_events"), sent
        assert "INSERT INTO webhook_events" in sent[1], sent
    else:
        assert len(sent) == 4, sent
    assert await _counts(engine) == (1, 1, 1)
    assert [(job, payload) for job, payload, _delay, _rid in queue.published] == [
        (jobs.VALIDATE, {"withdrawalId": made_id})
    ]
    async with uow() as u:
        [accepted] = await u.withdrawals.events(made_id)
        stored = await u.withdrawals.get(made_id)
    assert (accepted.from_status, accepted.to_status) == (None, WithdrawalStatus.PENDING)
    assert (accepted.reason, accepted.request_id, accepted.data) == ("accepted", "req-1", None)
    assert stored is not None
    assert stored.seq is not None


async def test_a_repeat_returns_the_existing_withdrawal_and_writes_nothing(
    engine: AsyncEngine,
    uow: SqlUnitOfWorkFactory,
    service: WithdrawalService,
    queue: RecordingQueue,
) -> None:
    await _submit(uow, service, _request("client-1"))
    async with uow() as u:
        first = await u.withdrawals.get("client-1")

    with statements(engine) as sent:
        async with uow() as u:
            again, created = await service.submit(u, _request("client-1"))
            await u.commit()

    assert not created
    assert again == first
    # The insert did nothing; only then is the existing row read to compare.
    assert [s.split(maxsplit=1)[0] for s in sent] == ["INSERT", "SELECT"], sent
    assert await _counts(engine) == (1, 1, 1)
    assert len(queue.published) == 1


async def test_a_different_body_under_a_taken_id_is_a_conflict(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, service: WithdrawalService
) -> None:
    await _submit(uow, service, _request("client-1"))

    with pytest.raises(IdempotencyConflictError, match="client-1"):
        await _submit(uow, service, _request("client-1", amount="0.6"))

    assert await _counts(engine) == (1, 1, 1)


def _change(withdrawal_id: str, reason: str) -> StatusChange:
    return StatusChange(
        withdrawal_id=withdrawal_id,
        from_status=WithdrawalStatus.PENDING,
        to_status=WithdrawalStatus.VALIDATING,
        at=FakeClock().now(),
        reason=reason,
        data={"k": reason},
    )


@pytest.mark.parametrize(("n_events", "n_messages"), [(0, 0), (1, 0), (0, 2), (1, 1), (2, 1)])
async def test_events_and_messages_are_all_written_at_commit(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, n_events: int, n_messages: int
) -> None:
    async with uow() as u:
        for n in range(n_events):
            await u.withdrawals.add_event(_change("wd_1", f"r{n}"))
        for n in range(n_messages):
            u.enqueue("job", {"n": n})
        await u.commit()

    assert await _counts(engine) == (0, n_events, n_messages)
    async with uow() as u:
        reasons = [(e.reason, e.data) for e in await u.withdrawals.events("wd_1")]
    assert reasons == [(f"r{n}", {"k": f"r{n}"}) for n in range(n_events)]


async def test_an_event_is_readable_in_its_transaction_and_gone_after_a_rollback(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    async with uow() as u:
        await u.withdrawals.add_event(_change("wd_1", "first"))
        assert [e.reason for e in await u.withdrawals.events("wd_1")] == ["first"]
        await u.withdrawals.add_event(_change("wd_1", "second"))
        await u.rollback()
        await u.withdrawals.add_event(_change("wd_1", "after the rollback"))
        await u.commit()

    async with uow() as u:
        assert [e.reason for e in await u.withdrawals.events("wd_1")] == ["after the rollback"]

    async with uow() as u:
        await u.withdrawals.add_event(_change("wd_1", "never committed"))
    assert await _counts(engine) == (0, 1, 0)
