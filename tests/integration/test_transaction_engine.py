"""The transaction engine on a fake chain: unclear sends, stuck transactions, re-orgs, nonces
taken by others, gaps, cancels, empty hot wallets and the in-flight limit.

Each test drives the stage handlers by hand (one delivery of each job) against `FakeChain`,
which decodes nonces and refuses to mine two transactions at one nonce, so "paid twice" is
checked against a chain that behaves like one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.domain.fees import FeePolicy, Finality
from sluice.domain.ledger import Balance, EntryKind
from sluice.domain.transaction import (
    AttemptOutcome,
    AttemptPurpose,
    Fees,
    TransactionKind,
    TransactionStatus,
    UnsignedTransaction,
)
from sluice.domain.withdrawal import WithdrawalStatus
from sluice.errors import (
    CallRevertedError,
    ChainUnavailableError,
    InvalidStateError,
    TransactionRefusedError,
)
from sluice.services import jobs
from sluice.services.engine import WAKE
from sluice.services.recovery import STALE_S, sweep
from sluice.services.signing import CAPACITY_RETRY_S
from sluice.services.watch import WATCH_LEASE_S
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import (
    CHAIN_ID,
    DEST,
    ETH,
    HOT_KEY,
    NET,
    CountingSigner,
    Pipeline,
    wire,
)

W = WithdrawalStatus
STUCK_S = 60.0


async def _pipeline(engine: AsyncEngine, **options: object) -> Pipeline:
    p = wire(
        engine,
        FakeChain(chain_id=CHAIN_ID),
        CountingSigner(LocalSigner(HOT_KEY)),
        FakeClock(),
        **options,  # type: ignore[arg-type]  # keyword options of `wire`, passed through
    )
    async with p.uow() as uow:
        await uow.transactions.reconcile_nonce(NET, p.signer.address, 0)
        await uow.commit()
    return p


@pytest.fixture
async def pipeline(engine: AsyncEngine) -> AsyncIterator[Pipeline]:
    p = await _pipeline(engine)
    try:
        yield p
    finally:
        await p.queue.close()


async def _signed_one(p: Pipeline, amount: str = "1", *, token: bool = False) -> str:
    await p.credit("alice", "10", token=token)
    wid = await p.submit("alice", amount, token=token)
    await p.validate(wid)
    await p.sign(wid)
    return wid


async def _broadcast_one(p: Pipeline, amount: str = "1", *, token: bool = False) -> str:
    wid = await _signed_one(p, amount, token=token)
    await p.broadcast(wid)
    return wid


# ── Unclear sends ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ChainUnavailableError("timed out"), id="timeout"),
        pytest.param(TransactionRefusedError("no", reason="insufficient_funds"), id="refused"),
    ],
)
async def test_a_send_without_a_plain_answer_goes_to_tracking_never_to_failure(
    pipeline: Pipeline, error: Exception
) -> None:
    p = pipeline
    await p.credit("alice", "10")
    wid = await p.submit("alice", "1")
    await p.validate(wid)
    await p.sign(wid)
    p.chain.fail_next(1, error)

    assert await p.broadcast(wid) is None

    assert await p.status(wid) is W.BROADCASTING
    _, [attempt] = await p.transaction(wid)
    assert attempt.sent_at is not None
    assert attempt.note is not None
    assert attempt.note.startswith(("unclear", "refused"))
    # Tracking finds the node never got it and sends the same bytes again.
    await p.confirm(wid)
    assert p.chain.sends[attempt.hash] == 1
    p.chain.mine(attempt.hash)
    assert await p.confirm(wid) is None
    assert await p.status(wid) is W.COMPLETED


# ── Stuck transactions ───────────────────────────────────────────────────────────────────────


async def test_a_stuck_transaction_is_replaced_at_higher_fees_and_the_replacement_settles(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _broadcast_one(p)
    _, [first] = await p.transaction(wid)
    p.clock.advance(STUCK_S)

    await p.confirm(wid)

    transaction, [_, second] = await p.transaction(wid)
    assert second.seq == 2
    assert second.purpose is AttemptPurpose.PAYLOAD
    assert second.fees.max_fee_per_gas >= first.fees.max_fee_per_gas * 120 // 100
    assert second.fees.max_priority_fee_per_gas >= first.fees.max_priority_fee_per_gas * 120 // 100
    assert p.chain.nonce_of(second.hash) == transaction.nonce
    assert p.chain.sends[second.hash] == 1, "stored, then sent"
    assert (await p.get(wid)).transaction_hash == second.hash

    p.chain.mine(second.hash)
    assert await p.confirm(wid) is None
    assert await p.status(wid) is W.COMPLETED
    transaction, attempts = await p.transaction(wid)
    assert transaction.mined_hash == second.hash
    assert [a.outcome for a in attempts] == [AttemptOutcome.REPLACED, AttemptOutcome.MINED]
    assert await p.balance("alice") == Balance(9 * ETH, 0)
    reasons = [e.reason for e in await p.events(wid)]
    assert any("replaced by attempt 2" in r for r in reasons)


async def test_when_the_original_is_mined_after_a_replacement_it_completes_once(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _broadcast_one(p)
    _, [first] = await p.transaction(wid)
    p.clock.advance(STUCK_S)
    await p.confirm(wid)

    p.chain.mine(first.hash)
    p.chain.mine_pending()  # the replacement shares the nonce: the node evicts it

    assert await p.confirm(wid) is None
    assert await p.status(wid) is W.COMPLETED
    transaction, attempts = await p.transaction(wid)
    assert transaction.mined_hash == first.hash
    assert [a.outcome for a in attempts] == [AttemptOutcome.MINED, AttemptOutcome.REPLACED]
    assert len(p.chain.mined_by(p.signer.address)) == 1
    assert await p.journal(wid) == [(EntryKind.HOLD, ETH), (EntryKind.SETTLE, ETH)]


async def test_at_the_fee_cap_a_stuck_transaction_is_sent_again_unchanged(
    engine: AsyncEngine,
) -> None:
    p = await _pipeline(engine, fees=FeePolicy(max_fee_per_gas=3 * 10**9, stuck_after_s=STUCK_S))
    try:
        wid = await _broadcast_one(p)
        _, [first] = await p.transaction(wid)
        assert first.fees.max_fee_per_gas == 3 * 10**9  # the fake's market, priced: at the cap
        p.chain.drop(first.hash)
        p.clock.advance(STUCK_S)

        await p.confirm(wid)

        _, attempts = await p.transaction(wid)
        assert [a.hash for a in attempts] == [first.hash], "no replacement above the cap"
        assert p.chain.sends[first.hash] == 2, "the stored bytes, once more"
    finally:
        await p.queue.close()


async def test_a_wallet_that_cannot_pay_higher_fees_re_sends_unchanged(pipeline: Pipeline) -> None:
    p = pipeline
    wid = await _broadcast_one(p)
    _, [first] = await p.transaction(wid)
    p.chain.balances[p.signer.address] = ETH  # the value, and not quite the bumped gas
    p.clock.advance(STUCK_S)

    await p.confirm(wid)

    _, attempts = await p.transaction(wid)
    assert len(attempts) == 1
    assert p.chain.sends[first.hash] == 2


# ── Re-orgs and finality ─────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("depth", [1, 2, 3])
async def test_a_reorg_before_finality_sends_the_transaction_again_and_settles_once(
    engine: AsyncEngine, depth: int
) -> None:
    p = await _pipeline(engine, confirmations=depth + 2)
    try:
        wid = await _broadcast_one(p)
        _, [attempt] = await p.transaction(wid)
        receipt = p.chain.mine(attempt.hash)
        p.chain.advance_blocks(depth - 1)
        await p.confirm(wid)
        assert await p.status(wid) is W.CONFIRMING
        assert await p.balance("alice") == Balance(9 * ETH, ETH), "not settled before finality"

        removed = p.chain.reorg(depth, drop=True)
        assert removed == [attempt.hash]
        await p.confirm(wid)

        assert await p.status(wid) is W.BROADCASTING
        transaction, _ = await p.transaction(wid)
        assert (transaction.status, transaction.block_number) == (TransactionStatus.BROADCAST, None)
        assert p.chain.sends[attempt.hash] == 2, "the stored transaction is sent again"

        again = p.chain.mine(attempt.hash)
        assert again.block_hash != receipt.block_hash
        p.chain.advance_blocks(depth + 1)
        assert await p.confirm(wid) is None
        assert await p.status(wid) is W.COMPLETED
        assert (await p.get(wid)).block_number == again.block_number
        assert await p.journal(wid) == [(EntryKind.HOLD, ETH), (EntryKind.SETTLE, ETH)]
        statuses = [(e.from_status, e.to_status) for e in await p.events(wid)]
        assert (W.CONFIRMING, W.BROADCASTING) in statuses
        assert statuses[-1] == (W.CONFIRMING, W.COMPLETED)
    finally:
        await p.queue.close()


async def test_a_reorg_that_re_mines_the_transaction_elsewhere_moves_its_block(
    engine: AsyncEngine,
) -> None:
    p = await _pipeline(engine, confirmations=4)
    try:
        wid = await _broadcast_one(p)
        _, [attempt] = await p.transaction(wid)
        p.chain.mine(attempt.hash)
        await p.confirm(wid)
        p.chain.reorg(1)  # back to the pool, still known
        moved = p.chain.mine(attempt.hash)
        await p.confirm(wid)

        transaction, _ = await p.transaction(wid)
        assert (transaction.block_number, transaction.block_hash) == (
            moved.block_number,
            moved.block_hash,
        )
        assert await p.status(wid) is W.CONFIRMING
    finally:
        await p.queue.close()


async def test_with_the_finalized_tag_it_settles_when_the_tag_reaches_the_block(
    engine: AsyncEngine,
) -> None:
    p = await _pipeline(engine, finality=Finality.FINALIZED, confirmations=1)
    try:
        wid = await _broadcast_one(p)
        _, [attempt] = await p.transaction(wid)
        p.chain.finalized_lag = 5
        p.chain.mine(attempt.hash)
        p.chain.advance_blocks(4)
        await p.confirm(wid)
        assert await p.status(wid) is W.CONFIRMING
        p.chain.advance_blocks(1)
        assert await p.confirm(wid) is None
        assert await p.status(wid) is W.COMPLETED
    finally:
        await p.queue.close()


# ── Nonces ───────────────────────────────────────────────────────────────────────────────────


async def test_a_nonce_taken_by_an_outside_transaction_is_signed_again_with_a_new_one(
    engine: AsyncEngine,
) -> None:
    p = await _pipeline(engine, confirmations=2)
    try:
        wid = await _broadcast_one(p)
        transaction, [ours] = await p.transaction(wid)
        # Someone else's transaction at our nonce, signed with the hot wallet's key, wins.
        outside = await LocalSigner(HOT_KEY).sign(
            UnsignedTransaction(
                chain_id=CHAIN_ID,
                nonce=transaction.nonce,
                to=p.signer.address,
                value=0,
                data=b"",
                gas=21_000,
                fees=Fees(max_fee_per_gas=10**10, max_priority_fee_per_gas=5 * 10**9),
            )
        )
        p.chain.drop(ours.hash)
        await p.chain.send_raw_transaction(outside.raw)
        p.chain.mine(outside.hash)
        await p.confirm(wid)
        assert await p.status(wid) is W.BROADCASTING, "not before that nonce is final"
        p.chain.advance_blocks(1)

        assert await p.confirm(wid) is None

        assert await p.status(wid) is W.VALIDATING
        superseded, _ = await p.transaction_by_id(transaction.id)
        assert superseded.status is TransactionStatus.SUPERSEDED
        assert (jobs.SIGN, {"withdrawalId": wid}) in [(j, b) for j, b, *_ in p.queue.published]
        assert await p.balance("alice") == Balance(9 * ETH, ETH), "still held"

        await p.sign(wid)
        await p.broadcast(wid)
        renewed, [attempt] = await p.transaction(wid)
        assert renewed.nonce == transaction.nonce + 1
        p.chain.mine(attempt.hash)
        p.chain.advance_blocks(1)
        assert await p.confirm(wid) is None
        assert await p.status(wid) is W.COMPLETED
        assert await p.journal(wid) == [(EntryKind.HOLD, ETH), (EntryKind.SETTLE, ETH)]
        ours_mined = [t for t in p.chain.mined_by(p.signer.address) if t.hash != outside.hash]
        assert len(ours_mined) == 1, "paid once"
    finally:
        await p.queue.close()


async def test_a_gap_below_a_stuck_transaction_is_filled_with_a_no_op(pipeline: Pipeline) -> None:
    p = pipeline
    async with p.uow() as uow:  # nonce 0 was handed out once and its record is gone
        await uow.transactions.reconcile_nonce(NET, p.signer.address, 1)
        await uow.commit()
    wid = await _broadcast_one(p)
    transaction, _ = await p.transaction(wid)
    assert transaction.nonce == 1
    p.clock.advance(STUCK_S)

    await p.confirm(wid)

    async with p.uow() as uow:
        filler = await uow.transactions.at_nonce(NET, p.signer.address, 0)
    assert filler is not None
    assert filler.kind is TransactionKind.FILLER
    assert (filler.payload.to, filler.payload.value) == (p.signer.address, 0)
    await p.handlers.broadcast({"transactionId": filler.id})
    p.chain.mine_pending()
    assert await p.confirm_transaction(filler.id) is None
    assert await p.confirm(wid) is None
    assert await p.status(wid) is W.COMPLETED


# ── Cancel ───────────────────────────────────────────────────────────────────────────────────


async def test_an_operator_cancel_sends_a_no_op_and_its_mining_cancels_and_releases(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _broadcast_one(p)
    transaction, [payout] = await p.transaction(wid)

    await p.cancel(wid)
    await p.confirm(wid)

    _, [_, cancel] = await p.transaction(wid)
    assert cancel.purpose is AttemptPurpose.CANCEL
    assert p.chain.nonce_of(cancel.hash) == transaction.nonce
    p.chain.mine(cancel.hash)
    assert await p.confirm(wid) is None

    withdrawal = await p.get(wid)
    assert withdrawal.status is W.CANCELLED
    settled, attempts = await p.transaction(wid)
    assert settled.status is TransactionStatus.CANCELLED
    assert [a.outcome for a in attempts] == [AttemptOutcome.REPLACED, AttemptOutcome.MINED]
    assert await p.balance("alice") == Balance(10 * ETH, 0)
    assert await p.journal(wid) == [(EntryKind.HOLD, ETH), (EntryKind.RELEASE, ETH)]
    assert payout.hash not in [t.hash for t in p.chain.mined_by(p.signer.address)]


async def test_if_the_payout_is_mined_despite_a_cancel_it_completes_and_is_not_cancelled(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _broadcast_one(p)
    _, [payout] = await p.transaction(wid)
    await p.cancel(wid)
    p.chain.mine(payout.hash)

    assert await p.confirm(wid) is None

    assert await p.status(wid) is W.COMPLETED
    _, attempts = await p.transaction(wid)
    assert [a.purpose for a in attempts] == [AttemptPurpose.PAYLOAD], "no cancel sent any more"
    with pytest.raises(InvalidStateError):
        await p.cancel(wid)


async def test_a_cancel_before_signing_is_an_ordinary_cancel(pipeline: Pipeline) -> None:
    p = pipeline
    await p.credit("alice", "2")
    wid = await p.submit("alice", "1")
    await p.validate(wid)

    withdrawal = await p.cancel(wid)

    assert withdrawal.status is W.CANCELLED
    assert await p.balance("alice") == Balance(2 * ETH, 0)


# ── The hot wallet ───────────────────────────────────────────────────────────────────────────


async def test_an_underfunded_hot_wallet_makes_withdrawals_wait_not_fail(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    p.chain.balances[p.signer.address] = ETH // 2
    await p.credit("alice", "10")
    wid = await p.submit("alice", "1")
    await p.validate(wid)

    again_in = await p.sign(wid)
    assert again_in is not None
    assert again_in > 0
    assert await p.sign(wid) is not None, "still waiting"

    withdrawal = await p.get(wid)
    assert withdrawal.status is W.VALIDATING
    assert withdrawal.waiting_reason is not None
    assert withdrawal.waiting_reason.startswith("underfunded")
    waits = [e for e in await p.events(wid) if e.reason.startswith("waiting")]
    assert len(waits) == 1, "recorded once, not on every retry"
    assert p.signer.signed == []

    p.chain.balances[p.signer.address] = 10 * ETH  # topped up
    assert await p.sign(wid) is None
    withdrawal = await p.get(wid)
    assert (withdrawal.status, withdrawal.waiting_reason) == (W.SIGNED, None)


async def test_an_underfunded_token_balance_waits_too(pipeline: Pipeline) -> None:
    p = pipeline
    p.chain.token_balances.clear()
    await p.credit("alice", "10", token=True)
    wid = await p.submit("alice", "1", token=True)
    await p.validate(wid)

    assert await p.sign(wid) is not None

    withdrawal = await p.get(wid)
    assert withdrawal.waiting_reason is not None
    assert "TKN" in withdrawal.waiting_reason


async def test_no_more_than_the_in_flight_limit_is_signed_even_concurrently(
    engine: AsyncEngine,
) -> None:
    p = await _pipeline(engine, max_in_flight=4)
    try:
        await p.credit("alice", "10")
        ids = [await p.submit("alice", "1") for _ in range(7)]
        for wid in ids:
            await p.validate(wid)

        await asyncio.gather(*(p.sign(wid) for wid in ids))

        statuses = [await p.status(wid) for wid in ids]
        assert statuses.count(W.SIGNED) == 4
        assert statuses.count(W.VALIDATING) == 3
        signed = [wid for wid, s in zip(ids, statuses, strict=True) if s is W.SIGNED]
        for wid in signed:
            await p.broadcast(wid)
        p.chain.mine_pending()
        for wid in signed:
            await p.confirm(wid)
        waiting = [wid for wid in ids if wid not in signed]
        for wid in waiting:
            assert await p.sign(wid) is None
        assert {await p.status(wid) for wid in waiting} == {W.SIGNED}
    finally:
        await p.queue.close()


async def test_withdrawals_waiting_for_a_full_wallet_look_again_late_unless_finality_wakes_them(
    engine: AsyncEngine,
) -> None:
    """Not every second each: a slot freed at finality wakes the oldest waiting ones at once."""
    p = await _pipeline(engine, max_in_flight=2)
    try:
        await p.credit("alice", "10")
        ids = [await p.submit("alice", "1") for _ in range(5)]
        for wid in ids:
            await p.validate(wid)
        first, second, *waiting = ids
        assert await p.sign(first) is None
        assert await p.sign(second) is None
        for wid in waiting:
            assert await p.sign(wid) == CAPACITY_RETRY_S
            assert "in_flight" in ((await p.get(wid)).waiting_reason or "")
        await p.broadcast(first)
        p.chain.mine_pending()
        mark = len(p.queue.published)

        await p.confirm(first)

        assert await p.status(first) is W.COMPLETED
        woken = [b["withdrawalId"] for job, b in _published_since(p, mark) if job == jobs.SIGN]
        assert woken == waiting[:WAKE]
        assert await p.sign(waiting[0]) is None
        assert await p.status(waiting[0]) is W.SIGNED
    finally:
        await p.queue.close()


async def test_several_hot_wallets_share_the_load_and_each_keeps_its_own_nonces(
    engine: AsyncEngine,
) -> None:
    second = LocalSigner()
    p = await _pipeline(engine, max_in_flight=2, more_signers=(second,))
    try:
        async with p.uow() as uow:
            await uow.transactions.reconcile_nonce(NET, second.address, 0)
            await uow.commit()
        await p.credit("alice", "10")
        ids = [await p.submit("alice", "1") for _ in range(5)]
        for wid in ids:
            await p.validate(wid)
            await p.sign(wid)

        signed = [await p.transaction(wid) for wid in ids[:4]]
        by_wallet = sorted((t.from_address, t.nonce) for t, _ in signed)
        assert by_wallet == sorted(
            [(p.signer.address, 0), (p.signer.address, 1), (second.address, 0), (second.address, 1)]
        )
        fifth = await p.get(ids[4])
        assert fifth.status is W.VALIDATING, "both wallets at their in-flight limit"
        assert fifth.waiting_reason is not None
        assert fifth.waiting_reason.count("in_flight") == 2
    finally:
        await p.queue.close()


async def test_a_draining_wallet_takes_no_new_withdrawals_but_still_replaces_its_own(
    engine: AsyncEngine,
) -> None:
    new = LocalSigner()
    p = await _pipeline(engine, more_signers=(new,))
    try:
        async with p.uow() as uow:
            await uow.transactions.reconcile_nonce(NET, new.address, 0)
            await uow.commit()
        old_wid = await _broadcast_one(p)
        old_tx, _ = await p.transaction(old_wid)
        assert old_tx.from_address == p.signer.address

        # Rotation: the old wallet is set to drain (a restart with it in
        # draining_hot_wallet_keystores); withdrawals keep flowing, to the new one.
        draining = wire(
            engine,
            p.chain,
            p.signer,
            p.clock,
            more_signers=(new,),
            draining=frozenset({p.signer.address}),
        )
        fresh = await draining.submit("alice", "1")
        await draining.validate(fresh)
        await draining.sign(fresh)
        fresh_tx, _ = await draining.transaction(fresh)
        assert fresh_tx.from_address == new.address

        p.clock.advance(STUCK_S)
        await draining.confirm(old_wid)  # the old wallet still signs its replacement
        _, attempts = await draining.transaction(old_wid)
        assert len(attempts) == 2
        p.chain.mine(attempts[-1].hash)
        assert await draining.confirm(old_wid) is None
        assert await draining.status(old_wid) is W.COMPLETED
        await draining.queue.close()
    finally:
        await p.queue.close()


# ── Lost jobs ────────────────────────────────────────────────────────────────────────────────


async def _sweep(p: Pipeline) -> dict[str, int]:
    async with p.uow() as uow:
        counts = await sweep(uow, now=p.clock.now(), poll_s=lambda _name: 0.01)
        await uow.commit()
    return counts


def _published_since(p: Pipeline, mark: int) -> list[tuple[str, dict[str, object]]]:
    return [(job, body) for job, body, *_ in p.queue.published[mark:]]


async def test_a_lost_confirmation_chain_is_restarted_once_and_the_old_one_stops(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _broadcast_one(p)
    transaction, [attempt] = await p.transaction(wid)
    old_watch = transaction.watch
    assert old_watch is not None
    mark = len(p.queue.published)

    assert await _sweep(p) == {jobs.VALIDATE: 0, jobs.SIGN: 0, jobs.BROADCAST: 0, jobs.CONFIRM: 0}
    p.clock.advance(WATCH_LEASE_S + 1)  # the queue lost the chain's job: its lease lapses
    counts = await _sweep(p)

    assert counts[jobs.CONFIRM] == 1
    renewed, _ = await p.transaction(wid)
    assert renewed.watch not in (None, old_watch)
    assert _published_since(p, mark) == [
        (jobs.CONFIRM, {"transactionId": transaction.id, "watch": renewed.watch})
    ]
    stale = {"transactionId": transaction.id, "watch": old_watch}
    assert await p.handlers.confirm(stale) is None, "the old chain's job stops"
    assert (await _sweep(p))[jobs.CONFIRM] == 0, "the new chain's lease is fresh"
    p.chain.mine(attempt.hash)
    assert await p.confirm(wid) is None
    assert await p.status(wid) is W.COMPLETED


async def test_a_live_chain_renews_its_lease_so_the_sweep_leaves_it_alone(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _broadcast_one(p)
    for _ in range(6):  # three lease lengths of polling, not mined yet
        p.clock.advance(WATCH_LEASE_S / 2)
        assert await p.confirm(wid) is not None
        assert (await _sweep(p))[jobs.CONFIRM] == 0


async def test_withdrawals_whose_job_was_lost_are_enqueued_again_after_a_while(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    await p.credit("alice", "10")
    validating = await p.submit("alice", "1")
    await p.validate(validating)
    pending = await p.submit("alice", "1")  # after: a validation job takes every PENDING one
    mark = len(p.queue.published)

    assert await _sweep(p) == {jobs.VALIDATE: 0, jobs.SIGN: 0, jobs.BROADCAST: 0, jobs.CONFIRM: 0}
    p.clock.advance(STALE_S + 1)
    counts = await _sweep(p)

    assert (counts[jobs.VALIDATE], counts[jobs.SIGN]) == (1, 1)
    assert _published_since(p, mark) == [
        (jobs.VALIDATE, {"withdrawalId": pending}),
        (jobs.SIGN, {"withdrawalId": validating}),
    ]


# ── What the chain answers: reverting destinations, hostile tokens, refusals ──────────────────


@pytest.mark.parametrize("token", [False, True], ids=["native-to-a-contract", "token"])
async def test_a_destination_that_reverts_fails_the_withdrawal_and_releases_its_hold(
    pipeline: Pipeline, token: bool
) -> None:
    p = pipeline
    if not token:
        p.chain.code_sizes[DEST] = 100  # a contract: its receive() reverts
    p.chain.estimate_error = CallRevertedError("execution reverted: nope")
    await p.credit("alice", "10", token=token)
    wid = await p.submit("alice", "1", token=token)
    await p.validate(wid)

    assert await p.sign(wid) is None, "nothing to try again"

    withdrawal = await p.get(wid)
    assert (withdrawal.status, withdrawal.error_code) == (W.FAILED, "destination_reverts")
    assert withdrawal.error is not None
    assert "nope" in withdrawal.error
    assert withdrawal.transaction_id is None
    assert p.signer.signed == [], "nothing was signed"
    assert await p.balance("alice", token=token) == Balance(10 * _unit(token), 0)


def _unit(token: bool) -> int:
    return 10**6 if token else ETH


async def test_a_token_shortfall_waits_as_underfunded_without_estimating(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    p.chain.token_balances.clear()
    p.chain.estimate_error = CallRevertedError("ERC20: transfer amount exceeds balance")
    await p.credit("alice", "10", token=True)
    wid = await p.submit("alice", "1", token=True)
    await p.validate(wid)

    assert await p.sign(wid) is not None, "tried again later"

    withdrawal = await p.get(wid)
    assert withdrawal.status is W.VALIDATING
    assert withdrawal.waiting_reason is not None
    assert withdrawal.waiting_reason.startswith("underfunded")
    assert p.chain.calls["estimate_gas"] == 0


async def test_a_token_that_returns_false_is_not_a_payment(pipeline: Pipeline) -> None:
    p = pipeline
    wid = await _broadcast_one(p, token=True)
    _, [attempt] = await p.transaction(wid)
    p.chain.mine(attempt.hash, logs=())  # status 1, but no Transfer event: nothing moved

    assert await p.confirm(wid) is None

    withdrawal = await p.get(wid)
    assert (withdrawal.status, withdrawal.error_code) == (W.FAILED, "token_transfer_failed")
    assert await p.balance("alice", token=True) == Balance(10 * 10**6, 0)
    transaction, _ = await p.transaction(wid)
    assert transaction.status is TransactionStatus.CONFIRMED, "the chain did run it"


async def test_a_token_payment_counts_when_its_transfer_event_is_in_the_receipt(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _broadcast_one(p, token=True)
    _, [attempt] = await p.transaction(wid)
    p.chain.mine(attempt.hash)

    assert await p.confirm(wid) is None

    assert await p.status(wid) is W.COMPLETED
    assert await p.balance("alice", token=True) == Balance(9 * 10**6, 0)


async def test_a_refusal_for_good_sends_a_noop_and_fails_the_withdrawal_once_it_is_final(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _signed_one(p)
    p.chain.fail_next(
        1, TransactionRefusedError("intrinsic gas too low", reason="gas_too_low", permanent=True)
    )

    await p.broadcast(wid)

    transaction, [payout] = await p.transaction(wid)
    assert transaction.refusal == "gas_too_low"
    assert payout.note == "refused: gas_too_low"
    assert await p.status(wid) is W.BROADCASTING, "held until the chain has decided"
    await p.confirm(wid)  # the no-op at the same nonce
    _, [_, noop] = await p.transaction(wid)
    assert noop.purpose is AttemptPurpose.CANCEL
    p.chain.mine(noop.hash)
    assert await p.confirm(wid) is None

    withdrawal = await p.get(wid)
    assert (withdrawal.status, withdrawal.error_code) == (W.FAILED, "rejected")
    assert await p.balance("alice") == Balance(10 * ETH, 0)
    assert p.chain.sends[payout.hash] == 0, "refused (before the fake logs a send), never resent"


async def test_a_refusal_that_depends_on_the_chain_is_resent_until_it_is_taken(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _signed_one(p)
    p.chain.fail_next(1, TransactionRefusedError("insufficient funds", reason="insufficient_funds"))

    await p.broadcast(wid)

    transaction, [payout] = await p.transaction(wid)
    assert transaction.refusal is None
    assert payout.note == "refused: insufficient_funds"
    await p.confirm(wid)  # the node does not know it: the same bytes again
    p.chain.mine(payout.hash)
    assert await p.confirm(wid) is None
    assert await p.status(wid) is W.COMPLETED


@pytest.mark.parametrize("cancel", [False, True], ids=["replacement", "cancel"])
async def test_every_signature_of_a_transaction_names_the_withdrawals_it_carries(
    pipeline: Pipeline, cancel: bool
) -> None:
    p = pipeline
    wid = await _broadcast_one(p)
    if cancel:
        await p.cancel(wid)
    else:
        p.clock.advance(STUCK_S)

    await p.confirm(wid)

    _, [_, second] = await p.transaction(wid)
    assert second.purpose is (AttemptPurpose.CANCEL if cancel else AttemptPurpose.PAYLOAD)
    contexts = [c for c in p.signer.contexts if c is not None]
    assert [c.withdrawal_ids for c in contexts] == [(wid,), (wid,)], "a signer checks them all"


async def test_a_token_that_pays_less_than_was_sent_still_settles_the_hold(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _broadcast_one(p, token=True)
    _, [attempt] = await p.transaction(wid)
    sent = p.chain.transactions[attempt.hash]
    [transfer] = p.chain.mine(attempt.hash).logs
    p.chain.reorg(1)  # mine it again with the event of a token that kept a fee
    kept = dataclasses.replace(transfer, data=(10**6 - 1_000).to_bytes(32, "big"))
    assert sent.hash in p.chain.pool
    p.chain.mine(attempt.hash, logs=(kept,))

    assert await p.confirm(wid) is None

    assert await p.status(wid) is W.COMPLETED, "something reached the destination"
    assert await p.balance("alice", token=True) == Balance(9 * 10**6, 0)
