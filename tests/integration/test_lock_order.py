"""The engine's one lock order on PostgreSQL: a transaction's row, then its withdrawals'.

An operator's cancel racing a confirmation round used to lock the withdrawal and then its
transaction while the round locked the transaction and then the withdrawal: PostgreSQL found a
deadlock and aborted one of them. Both now load the transaction first
(`TransactionRepository.load`), so one waits for the other and both finish. These tests hold
the first lock of one side open and let the other run into it, in both orders, then race the
two freely.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sluice.db.engine import create_engine
from sluice.domain.withdrawal import WithdrawalStatus
from sluice.errors import InvalidStateError
from sluice.services.confirmation import Observation, StepKind
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import CHAIN_ID, HOT_KEY, NET, CountingSigner, Pipeline, wire

W = WithdrawalStatus
#: Long enough for PostgreSQL's deadlock detector (deadlock_timeout, 1 s by default) to fire.
BLOCKED_S = 1.5


@pytest.fixture
async def pipeline(postgres_url: str) -> AsyncIterator[Pipeline]:
    engine = create_engine(postgres_url)
    p = wire(
        engine,
        FakeChain(chain_id=CHAIN_ID),
        CountingSigner(LocalSigner(HOT_KEY)),
        FakeClock(),
        confirmations=3,  # mined, not final: the round records MINED and the cancel is refused
    )
    async with p.uow() as uow:
        await uow.transactions.reconcile_nonce(NET, p.signer.address, 0)
        await uow.commit()
    try:
        yield p
    finally:
        await p.queue.close()
        await engine.dispose()


async def _broadcast_and_mine(p: Pipeline) -> tuple[str, str, Observation]:
    """A broadcast withdrawal whose transaction the chain has mined, and what a round saw."""
    await p.credit("alice", "10")
    wid = await p.submit("alice", "1")
    await p.validate(wid)
    await p.sign(wid)
    await p.broadcast(wid)
    transaction, [attempt] = await p.transaction(wid)
    p.chain.mine(attempt.hash)
    confirmation = p.handlers.confirmation
    async with p.uow() as uow:
        tracked = await confirmation.tracked(uow, transaction.id, transaction.watch)
    assert tracked is not None
    seen = await confirmation.observe(tracked)
    assert seen.receipt is not None
    return wid, transaction.id, seen


async def _cancel(p: Pipeline, wid: str) -> None:
    async with p.uow() as uow:
        await p.cancellation.cancel(uow, wid, reason="operator")
        await uow.commit()


async def test_a_cancel_waits_for_a_round_that_holds_the_transaction_then_finds_it_mined(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid, transaction_id, seen = await _broadcast_and_mine(p)
    async with p.uow() as round_uow:
        await round_uow.transactions.get(transaction_id, lock=True)  # the round's first lock
        cancel = asyncio.create_task(_cancel(p, wid))
        await asyncio.sleep(BLOCKED_S)
        assert not cancel.done(), "the cancel must wait for the transaction's row"
        step = await asyncio.wait_for(
            p.handlers.confirmation.apply(round_uow, transaction_id, seen), timeout=10
        )
        await round_uow.commit()
    assert step.kind is StepKind.WAIT
    with pytest.raises(InvalidStateError, match="mined"):
        await asyncio.wait_for(cancel, timeout=10)
    assert await p.status(wid) is W.CONFIRMING


async def test_a_round_waits_for_a_cancel_that_holds_the_transaction_then_records_the_receipt(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid, transaction_id, seen = await _broadcast_and_mine(p)

    async def _round() -> StepKind:
        async with p.uow() as uow:
            step = await p.handlers.confirmation.apply(uow, transaction_id, seen)
            await uow.commit()
        return step.kind

    async with p.uow() as cancel_uow:
        await p.cancellation.cancel(cancel_uow, wid, reason="operator")
        confirmation_round = asyncio.create_task(_round())
        await asyncio.sleep(BLOCKED_S)
        assert not confirmation_round.done(), "the round must wait for the cancel's locks"
        await cancel_uow.commit()
    assert await asyncio.wait_for(confirmation_round, timeout=10) is StepKind.WAIT
    transaction, _ = await p.transaction(wid)
    assert transaction.cancel_requested_at is not None
    assert await p.status(wid) is W.CONFIRMING
    reasons = [event.reason for event in await p.events(wid)]
    assert any(reason.startswith("cancel requested (operator)") for reason in reasons)


async def test_cancels_racing_rounds_never_deadlock(pipeline: Pipeline) -> None:
    p = pipeline
    for _ in range(15):
        wid, transaction_id, seen = await _broadcast_and_mine(p)

        async def _round(transaction_id: str = transaction_id, seen: Observation = seen) -> None:
            async with p.uow() as uow:
                await p.handlers.confirmation.apply(uow, transaction_id, seen)
                await uow.commit()

        results = await asyncio.gather(_cancel(p, wid), _round(), return_exceptions=True)
        # The round always records the receipt; the cancel either came first (and is noted) or
        # found the transaction mined. Nothing else: above all, no deadlock error.
        assert results[1] is None
        assert results[0] is None or isinstance(results[0], InvalidStateError), results[0]
        assert await p.status(wid) is W.CONFIRMING
