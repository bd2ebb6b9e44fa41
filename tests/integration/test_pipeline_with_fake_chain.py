"""The withdrawal pipeline on SQLite with an in-memory queue, a fake chain and a real signer.

Stage handlers are driven one by one where a test needs to observe each step, and by a running
`Worker` where retries, dead letters and restarts are the point.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
import structlog
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.engine import create_engine
from sluice.db.tables import ledger_entries, metadata, nonce_counters
from sluice.domain.addresses import Address
from sluice.domain.ledger import Balance, EntryKind
from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    TRANSFER_SELECTOR,
    TransactionStatus,
)
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.errors import InvalidStateError, SluiceError
from sluice.queue.memory import MemoryQueue
from sluice.services import jobs
from sluice.services.ledger import move_funds
from sluice.services.recovery import recover
from sluice.services.withdrawals import WithdrawalRequest
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import (
    CHAIN_ID,
    DEST,
    ETH,
    HOT_KEY,
    NET,
    TOKEN,
    CountingSigner,
    Pipeline,
    wire,
)

WAIT_S = 10.0
SOON_A_BATCH_CONTRACT = Address("0x00000000000000000000000000000000000000E5")
"""Upper bound for anything a running worker should finish; reached only when a test fails."""


@pytest.fixture
async def pipeline(engine: AsyncEngine) -> AsyncIterator[Pipeline]:
    p = wire(
        engine, FakeChain(chain_id=CHAIN_ID), CountingSigner(LocalSigner(HOT_KEY)), FakeClock()
    )
    async with p.uow() as uow:
        await uow.transactions.reconcile_nonce(NET, p.signer.address, 0)
        await uow.commit()
    try:
        yield p
    finally:
        await p.queue.close()


async def eventually(check: Callable[[], Awaitable[bool]], *, what: str) -> None:
    """Poll ``check`` until it holds, failing after `WAIT_S`."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def decoded_nonce(raw: bytes) -> int:
    nonce = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["nonce"]
    assert isinstance(nonce, int)
    return nonce


# ── The happy path and its failures ──────────────────────────────────────────────────────────


@pytest.mark.parametrize("token", [False, True], ids=["native", "token"])
async def test_happy_path_completes_and_settles_the_hold(pipeline: Pipeline, token: bool) -> None:
    p = pipeline
    await p.credit("alice", "5", token=token)
    decimals = 6 if token else 18
    amount = 15 * 10**decimals // 10
    wid = await p.submit("alice", "1.5", token=token)
    assert await p.status(wid) is WithdrawalStatus.PENDING

    assert await p.validate(wid) is None
    assert await p.status(wid) is WithdrawalStatus.VALIDATING
    assert await p.balance("alice", token=token) == Balance(5 * 10**decimals - amount, amount)

    await p.sign(wid)
    transaction, [attempt] = await p.transaction(wid)
    assert await p.status(wid) is WithdrawalStatus.SIGNED
    assert transaction.status is TransactionStatus.SIGNED
    assert transaction.nonce == 0
    assert p.chain.send_log == [], "nothing is sent before the signed transaction is stored"
    if token:
        assert transaction.payload.to == TOKEN
        assert transaction.payload.data.startswith(TRANSFER_SELECTOR)
        assert transaction.gas_limit == 60_000  # the estimate plus 20%
    else:
        assert (transaction.payload.to, transaction.payload.value) == (DEST, amount)
        assert transaction.gas_limit == NATIVE_TRANSFER_GAS

    await p.broadcast(wid)
    assert await p.status(wid) is WithdrawalStatus.BROADCASTING
    assert p.chain.send_log == [attempt.hash]
    assert p.chain.raw(attempt.hash) == attempt.raw
    assert decoded_nonce(attempt.raw) == 0

    assert await p.confirm(wid) == p.network.poll_interval_s, "not mined yet: look again"
    receipt = p.chain.mine(attempt.hash)
    assert await p.confirm(wid) is None

    withdrawal = await p.get(wid)
    assert withdrawal.status is WithdrawalStatus.COMPLETED
    assert (withdrawal.transaction_hash, withdrawal.block_number) == (
        attempt.hash,
        receipt.block_number,
    )
    transaction, _ = await p.transaction(wid)
    assert transaction.status is TransactionStatus.CONFIRMED
    assert transaction.mined_hash == attempt.hash
    assert await p.balance("alice", token=token) == Balance(5 * 10**decimals - amount, 0)
    assert await p.journal(wid) == [(EntryKind.HOLD, amount), (EntryKind.SETTLE, amount)]
    async with p.uow() as uow:
        events = await uow.withdrawals.events(wid)
    assert [e.to_status for e in events] == [
        WithdrawalStatus.PENDING,
        WithdrawalStatus.VALIDATING,
        WithdrawalStatus.SIGNED,
        WithdrawalStatus.BROADCASTING,
        WithdrawalStatus.CONFIRMING,
        WithdrawalStatus.COMPLETED,
    ]
    assert [job for job, *_ in p.queue.published] == [
        jobs.VALIDATE,
        jobs.SIGN,
        jobs.BROADCAST,
        jobs.CONFIRM,
    ]
    assert len(p.signer.signed) == 1


async def test_confirmation_waits_for_the_network_depth(engine: AsyncEngine) -> None:
    p = wire(
        engine,
        FakeChain(),
        CountingSigner(LocalSigner(HOT_KEY)),
        FakeClock(),
        confirmations=3,
    )
    try:
        async with p.uow() as uow:
            await uow.transactions.reconcile_nonce(NET, p.signer.address, 0)
            await uow.commit()
        await p.credit("alice", "1")
        wid = await p.submit("alice", "1")
        await p.validate(wid)
        await p.sign(wid)
        await p.broadcast(wid)
        _, [attempt] = await p.transaction(wid)
        p.chain.mine(attempt.hash)

        assert await p.confirm(wid) == p.network.poll_interval_s  # depth 1 of 3
        p.chain.advance_blocks(1)
        assert await p.confirm(wid) == p.network.poll_interval_s  # depth 2 of 3
        assert await p.status(wid) is WithdrawalStatus.CONFIRMING
        assert await p.balance("alice") == Balance(0, ETH)
        p.chain.advance_blocks(1)
        assert await p.confirm(wid) is None  # depth 3 of 3
        assert await p.status(wid) is WithdrawalStatus.COMPLETED
    finally:
        await p.queue.close()


async def test_a_reverted_transaction_fails_the_withdrawal_and_releases_the_hold(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    await p.credit("alice", "2")
    wid = await p.submit("alice", "0.5")
    await p.validate(wid)
    await p.sign(wid)
    await p.broadcast(wid)
    _, [attempt] = await p.transaction(wid)
    p.chain.mine(attempt.hash, succeeded=False)

    assert await p.confirm(wid) is None

    withdrawal = await p.get(wid)
    assert withdrawal.status is WithdrawalStatus.FAILED
    assert withdrawal.error_code == "reverted"
    transaction, _ = await p.transaction(wid)
    assert transaction.status is TransactionStatus.REVERTED
    assert await p.balance("alice") == Balance(2 * ETH, 0)
    assert await p.journal(wid) == [(EntryKind.HOLD, ETH // 2), (EntryKind.RELEASE, ETH // 2)]


async def test_a_transaction_the_node_forgot_is_resent_with_the_same_bytes(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    await p.credit("alice", "1")
    wid = await p.submit("alice", "1")
    await p.validate(wid)
    await p.sign(wid)
    await p.broadcast(wid)
    _, [attempt] = await p.transaction(wid)
    assert p.chain.sends[attempt.hash] == 1

    p.chain.drop(attempt.hash)
    assert await p.confirm(wid) == p.network.poll_interval_s
    assert p.chain.sends[attempt.hash] == 2, "re-sent"
    assert await p.confirm(wid) == p.network.poll_interval_s
    assert p.chain.sends[attempt.hash] == 2, "known again: not sent a third time"

    p.chain.mine(attempt.hash)
    assert await p.confirm(wid) is None

    assert await p.status(wid) is WithdrawalStatus.COMPLETED
    assert set(p.chain.send_log) == {attempt.hash}, "one hash only ever existed for the nonce"
    assert p.chain.raw(attempt.hash) == attempt.raw
    assert len(p.signer.signed) == 1, "never re-signed"
    _, attempts = await p.transaction(wid)
    assert [a.hash for a in attempts] == [attempt.hash]


async def test_every_job_delivered_twice_changes_nothing_the_second_time(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    await p.credit("alice", "3")
    wid = await p.submit("alice", "1", withdrawal_id="wd_twice")
    again, created = await _resubmit(p, "wd_twice", "1")
    assert (again.id, created) == (wid, False)

    async def state() -> tuple[object, ...]:
        return (await snapshot(p.engine), list(p.chain.send_log), len(p.queue.published))

    async def deliver_twice(stage: Callable[[str], Awaitable[float | None]]) -> None:
        first_answer = await stage(wid)
        after_first = await state()
        assert await stage(wid) == first_answer
        assert await state() == after_first, f"{stage.__name__} changed something twice"

    await deliver_twice(p.validate)
    await deliver_twice(p.sign)
    await deliver_twice(p.broadcast)
    await deliver_twice(p.confirm)  # not mined yet: both look and reschedule
    _, [attempt] = await p.transaction(wid)
    p.chain.mine(attempt.hash)
    first = await p.confirm(wid)
    after_first = await state()
    assert first is None
    assert await p.confirm(wid) is None
    assert await state() == after_first

    assert await p.status(wid) is WithdrawalStatus.COMPLETED
    assert await p.balance("alice") == Balance(2 * ETH, 0)
    assert await p.journal(wid) == [(EntryKind.HOLD, ETH), (EntryKind.SETTLE, ETH)]
    assert p.chain.sends[attempt.hash] == 1
    assert len(p.signer.signed) == 1


async def test_concurrent_duplicate_deliveries_do_the_work_once(pipeline: Pipeline) -> None:
    p = pipeline
    await p.credit("alice", "3")
    wid = await p.submit("alice", "1")

    await asyncio.gather(p.validate(wid), p.validate(wid))
    await asyncio.gather(p.sign(wid), p.sign(wid))
    await asyncio.gather(p.broadcast(wid), p.broadcast(wid))
    _, [attempt] = await p.transaction(wid)
    p.chain.mine(attempt.hash)
    await asyncio.gather(p.confirm(wid), p.confirm(wid))

    assert await p.status(wid) is WithdrawalStatus.COMPLETED
    assert len(p.signer.signed) == 1
    # Both broadcasts may send, but only ever the same stored bytes.
    assert set(p.chain.send_log) == {attempt.hash}
    assert await p.journal(wid) == [(EntryKind.HOLD, ETH), (EntryKind.SETTLE, ETH)]
    assert await p.balance("alice") == Balance(2 * ETH, 0)
    async with p.uow() as uow:
        assert (
            len(await uow.withdrawals.events(wid)) == 6
        )  # PENDING … BROADCASTING, CONFIRMING, COMPLETED


async def _resubmit(p: Pipeline, withdrawal_id: str, amount: str) -> tuple[Withdrawal, bool]:
    async with p.uow() as uow:
        result = await p.withdrawals.submit(
            uow,
            WithdrawalRequest(
                user_id="alice", amount=amount, to_address=DEST, network=NET, id=withdrawal_id
            ),
        )
        await uow.commit()
    return result


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = await connection.execute(select(table).order_by(*table.primary_key.columns))
            tables[table.name] = [tuple(row) for row in rows]
    return tables


# ── Ledger ───────────────────────────────────────────────────────────────────────────────────


async def test_a_reused_ledger_reference_never_moves_the_balance(pipeline: Pipeline) -> None:
    p = pipeline
    # The first credit commits; the second is the loser of a race: it checked the reference
    # before the first committed, so it reaches move_funds with a reference already in use.
    await p.credit("alice", "1")
    async with p.uow() as uow:
        with contextlib.suppress(SluiceError):
            await move_funds(
                uow,
                user_id="alice",
                asset=p.network.native,
                kind=EntryKind.CREDIT,
                amount=ETH,
                clock=p.clock,
                reference="credit-1",
            )
        await uow.commit()

    assert await p.balance("alice") == Balance(ETH, 0), "the journal holds one credit of 1"


# ── Outages, dead letters and restarts ───────────────────────────────────────────────────────


async def test_a_chain_outage_during_signing_dead_letters_then_requeue_completes(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    await p.credit("alice", "1")
    p.chain.go_down()
    with structlog.contextvars.bound_contextvars(request_id="req-outage"):
        wid = await p.submit("alice", "0.25")
    worker = p.worker(max_attempts=3)
    worker.start()
    try:
        await eventually(
            lambda: _dead_count(p.queue, at_least=1), what="the sign job to be dead-lettered"
        )
        [dead] = await p.queue.dead_letters()
        assert dead.message.job == jobs.SIGN
        assert dead.message.payload == {"withdrawalId": wid}
        assert dead.message.request_id == "req-outage", "the request id follows the work"
        assert dead.reason == "3 attempts; last: fake node unavailable"
        assert p.chain.calls["fee_market"] == 3, "tried max_attempts times"
        assert len(p.queue.retries) == 2
        assert p.queue.retries[0][1] < p.queue.retries[1][1], "backoff grows"
        assert await p.status(wid) is WithdrawalStatus.VALIDATING
        assert await p.balance("alice") == Balance(ETH * 3 // 4, ETH // 4), "funds stay held"
        assert p.chain.send_log == []

        p.chain.come_back()
        p.chain.auto_mine = True
        assert await p.queue.requeue(dead.message.id)
        await eventually(
            lambda: _status_is(p, wid, WithdrawalStatus.COMPLETED), what="the withdrawal"
        )
    finally:
        await worker.stop(timeout_s=5)

    assert await p.balance("alice") == Balance(ETH * 3 // 4, 0)
    assert await p.queue.dead_letters() == []
    assert len(p.signer.signed) == 1


async def _dead_count(queue: MemoryQueue, *, at_least: int) -> bool:
    return len(await queue.dead_letters()) >= at_least


async def _status_is(p: Pipeline, withdrawal_id: str, status: WithdrawalStatus) -> bool:
    return await p.status(withdrawal_id) is status


async def _all_status(p: Pipeline, withdrawal_ids: list[str], status: WithdrawalStatus) -> bool:
    return all([await p.status(wid) is status for wid in withdrawal_ids])


async def test_recovery_after_a_lost_queue_enqueues_one_job_per_unfinished_row(
    pipeline: Pipeline, database_url: str
) -> None:
    p = pipeline
    await p.credit("alice", "10")
    done = await p.submit("alice", "1")
    for stage in (p.validate, p.sign, p.broadcast):
        await stage(done)
    _, [done_attempt] = await p.transaction(done)
    p.chain.mine(done_attempt.hash)
    await p.confirm(done)
    broadcast = await p.submit("alice", "1")
    for stage in (p.validate, p.sign, p.broadcast):
        await stage(broadcast)
    signed = await p.submit("alice", "1")
    for stage in (p.validate, p.sign):
        await stage(signed)
    validating = await p.submit("alice", "1")
    await p.validate(validating)
    pending = await p.submit("alice", "1")
    tx_broadcast, [broadcast_attempt] = await p.transaction(broadcast)
    tx_signed, _ = await p.transaction(signed)
    assert [await p.status(w) for w in (done, broadcast, signed, validating, pending)] == [
        WithdrawalStatus.COMPLETED,
        WithdrawalStatus.BROADCASTING,
        WithdrawalStatus.SIGNED,
        WithdrawalStatus.VALIDATING,
        WithdrawalStatus.PENDING,
    ]
    await p.queue.close()  # the old process dies with its in-memory queue

    # A restart: new engine, new queue, same database; the node restarted too and lost its pool.
    p.chain.drop(broadcast_attempt.hash)
    p.chain.auto_mine = True
    engine = create_engine(database_url)
    restarted = wire(engine, p.chain, p.signer, p.clock)
    try:
        async with restarted.uow() as uow:
            counts = await recover(uow, now=p.clock.now(), poll_s=lambda _name: 0.01)
            await uow.commit()
        assert counts == {jobs.VALIDATE: 1, jobs.SIGN: 1, jobs.BROADCAST: 1, jobs.CONFIRM: 1}
        published = {
            (job, tuple((k, v) for k, v in body.items() if k != "watch"))
            for job, body, *_ in restarted.queue.published
        }
        watches = {body.get("watch") for job, body, *_ in restarted.queue.published}
        watched, _ = await restarted.transaction(broadcast)
        assert watched.watch in watches, "a new confirmation chain, with its token"
        assert published == {
            (jobs.VALIDATE, (("withdrawalId", pending),)),
            (jobs.SIGN, (("withdrawalId", validating),)),
            (jobs.BROADCAST, (("transactionId", tx_signed.id),)),
            (jobs.CONFIRM, (("transactionId", tx_broadcast.id),)),
        }
        assert len(restarted.queue.published) == 4

        worker = restarted.worker()
        worker.start()
        try:
            unfinished = [broadcast, signed, validating, pending]
            await eventually(
                lambda: _all_status(restarted, unfinished, WithdrawalStatus.COMPLETED),
                what="every unfinished withdrawal to complete",
            )
        finally:
            await worker.stop(timeout_s=5)
    finally:
        await restarted.queue.close()
        await engine.dispose()

    # read through the old engine: the restarted one is disposed
    assert await p.balance("alice") == Balance(5 * ETH, 0)
    assert p.chain.sends[broadcast_attempt.hash] == 2, "re-sent after the node lost it"
    assert len(p.signer.signed) == 5, "one signature per withdrawal, none twice"


# ── Cancellation ─────────────────────────────────────────────────────────────────────────────


async def _cancel(p: Pipeline, withdrawal_id: str) -> Withdrawal:
    async with p.uow() as uow:
        withdrawal = await p.withdrawals.cancel(uow, withdrawal_id, reason="user asked")
        await uow.commit()
    return withdrawal


async def test_cancel_while_pending_moves_no_funds(pipeline: Pipeline) -> None:
    p = pipeline
    await p.credit("alice", "1")
    wid = await p.submit("alice", "1")

    assert (await _cancel(p, wid)).status is WithdrawalStatus.CANCELLED
    assert (await _cancel(p, wid)).status is WithdrawalStatus.CANCELLED, "idempotent"
    await p.validate(wid)  # the queued job finds nothing to do

    assert await p.status(wid) is WithdrawalStatus.CANCELLED
    assert await p.balance("alice") == Balance(ETH, 0)
    assert await p.journal(wid) == []


async def test_cancel_while_validating_releases_the_hold(pipeline: Pipeline) -> None:
    p = pipeline
    await p.credit("alice", "1")
    wid = await p.submit("alice", "0.4")
    await p.validate(wid)
    assert await p.balance("alice") == Balance(ETH * 6 // 10, ETH * 4 // 10)

    assert (await _cancel(p, wid)).status is WithdrawalStatus.CANCELLED
    await p.sign(wid)  # the queued sign job finds nothing to do

    assert await p.status(wid) is WithdrawalStatus.CANCELLED
    assert await p.balance("alice") == Balance(ETH, 0)
    assert await p.journal(wid) == [
        (EntryKind.HOLD, ETH * 4 // 10),
        (EntryKind.RELEASE, ETH * 4 // 10),
    ]
    assert p.chain.calls["fee_market"] == 0
    assert p.signer.signed == []


async def test_cancel_after_signing_is_refused(pipeline: Pipeline) -> None:
    p = pipeline
    await p.credit("alice", "1")
    wid = await p.submit("alice", "1")
    await p.validate(wid)
    await p.sign(wid)

    with pytest.raises(InvalidStateError, match="no longer be cancelled"):
        await _cancel(p, wid)

    assert await p.status(wid) is WithdrawalStatus.SIGNED
    assert await p.balance("alice") == Balance(0, ETH)


# ── Concurrency ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "many-at-once"])
async def test_concurrent_validations_never_overdraw_a_balance(
    pipeline: Pipeline, batching: Pipeline, batched: bool
) -> None:
    p = batching if batched else pipeline
    await p.credit("alice", "10")
    ids = [await p.submit("alice", "1") for _ in range(30)]

    await asyncio.gather(*(p.validate(wid) for wid in ids))

    withdrawals = [await p.get(wid) for wid in ids]
    validating = [w for w in withdrawals if w.status is WithdrawalStatus.VALIDATING]
    failed = [w for w in withdrawals if w.status is WithdrawalStatus.FAILED]
    assert len(validating) == 10
    assert len(failed) == 20
    assert {w.error_code for w in failed} == {"insufficient_funds"}
    assert await p.balance("alice") == Balance(0, 10 * ETH)
    # Replaying the journal in commit order never takes the balance below zero.
    async with p.engine.connect() as connection:
        rows = (
            await connection.execute(
                select(ledger_entries.c.kind, ledger_entries.c.amount).order_by(ledger_entries.c.id)
            )
        ).all()
    balance = Balance()
    for kind, amount in rows:
        balance = balance.apply(EntryKind(kind), amount)  # raises if it would go negative
    assert balance == Balance(0, 10 * ETH)
    assert [kind for kind, _ in rows].count(EntryKind.HOLD) == 10


async def test_where_each_withdrawal_is_its_own_transaction_a_validation_job_takes_only_its_own(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    await p.credit("alice", "10")
    first = await p.submit("alice", "1")
    second = await p.submit("alice", "1")
    await p.validate(second)
    assert (await p.status(first), await p.status(second)) == (
        WithdrawalStatus.PENDING,
        WithdrawalStatus.VALIDATING,
    )


@pytest.fixture
async def batching(engine: AsyncEngine) -> AsyncIterator[Pipeline]:
    p = wire(
        engine,
        FakeChain(chain_id=CHAIN_ID),
        CountingSigner(LocalSigner(HOT_KEY)),
        FakeClock(),
        batch_window_s=5.0,
    )
    try:
        yield p
    finally:
        await p.queue.close()


async def test_where_withdrawals_are_batched_one_validation_job_takes_the_oldest_pending_ones(
    batching: Pipeline,
) -> None:
    """Oldest first: a user's earlier withdrawal is served before a later one, whichever job
    runs; each gets its own status, hold, history entry and sign job; the others' jobs end."""
    p = batching
    await p.credit("alice", "10")
    await p.credit("bob", "1")
    first = await p.submit("alice", "6")
    bobs = await p.submit("bob", "1")
    second = await p.submit("alice", "6")  # 6 + 6 > 10: refused, though its job runs first
    third = await p.submit("alice", "4")
    nobodys = await p.submit("carol", "1")  # never credited: no balance row at all
    becomes_a_contract = await p.submit("alice", "1", to=SOON_A_BATCH_CONTRACT)
    # Configuration changed since intake: that destination is now the wallet's batch contract.
    entry = p.registry.get(NET)
    contracts = (*entry.network.batching.contracts, (LocalSigner().address, SOON_A_BATCH_CONTRACT))
    configured = replace(entry.network.batching, contracts=contracts)
    entry.network = p.network = replace(entry.network, batching=configured)
    p.queue.published.clear()

    assert await p.validate(second) is None

    statuses = {wid: await p.get(wid) for wid in (first, bobs, second, third, nobodys)}
    assert {wid: w.status for wid, w in statuses.items()} == {
        first: WithdrawalStatus.VALIDATING,
        bobs: WithdrawalStatus.VALIDATING,
        second: WithdrawalStatus.FAILED,
        third: WithdrawalStatus.VALIDATING,
        nobodys: WithdrawalStatus.FAILED,
    }
    assert statuses[second].error_code == statuses[nobodys].error_code == "insufficient_funds"
    refused = await p.get(becomes_a_contract)
    assert (refused.status, refused.error_code) == (WithdrawalStatus.FAILED, "invalid_address")
    assert await p.balance("alice") == Balance(0, 10 * ETH)
    assert await p.balance("bob") == Balance(0, ETH)
    assert await p.balance("carol") == Balance()
    signs = {b["withdrawalId"]: delay for job, b, delay, _ in p.queue.published if job == jobs.SIGN}
    # The first of the asset opens the batch window at once; the others look a window later.
    assert signs == {first: 0.0, bobs: 5.0, third: 5.0}
    for wid in (first, second, third, nobodys, becomes_a_contract):
        assert [e.to_status for e in await p.events(wid)][-1] is (await p.status(wid))
    for wid in (first, bobs, third, nobodys, becomes_a_contract):
        assert await p.validate(wid) is None  # its own job: already done
    assert await p.balance("alice") == Balance(0, 10 * ETH)


async def test_concurrent_signing_hands_out_gap_free_unique_nonces(pipeline: Pipeline) -> None:
    p = pipeline
    await p.credit("alice", "25")
    ids = [await p.submit("alice", "1") for _ in range(25)]
    for wid in ids:
        await p.validate(wid)

    await asyncio.gather(*(p.sign(wid) for wid in ids))

    nonces: list[int] = []
    for wid in ids:
        transaction, [attempt] = await p.transaction(wid)
        assert decoded_nonce(attempt.raw) == transaction.nonce
        assert transaction.from_address == p.signer.address
        nonces.append(transaction.nonce)
    assert sorted(nonces) == list(range(25))
    assert len(p.signer.signed) == 25
    async with p.engine.connect() as connection:
        counter = (await connection.execute(select(nonce_counters.c.next_nonce))).scalar_one()
    assert counter == 25

    await asyncio.gather(*(p.broadcast(wid) for wid in ids))
    p.chain.mine_pending()
    await asyncio.gather(*(p.confirm(wid) for wid in ids))
    assert {await p.status(wid) for wid in ids} == {WithdrawalStatus.COMPLETED}
    assert await p.balance("alice") == Balance(0, 0)
