"""The batcher through the real services and database (docs/batching.md), against `FakeChain`,
which runs batch calls as the ``BatchPayout`` contract does: atomic, ``PaymentFailed(index)``
for a refusing recipient, a ``Paid(index)`` log per payment.

Each test drives the stage handlers by hand (one delivery of each job), so what the batcher
decides at each step is visible: which withdrawals share a transaction, which are paid on their
own and why, and that every one is paid exactly once, with the ledger agreeing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from eth_utils.address import to_checksum_address
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.domain.addresses import Address
from sluice.domain.batches import MAX_TRANSACTION_GAS, paid_indices, read_batch
from sluice.domain.fees import FeeLevel, FeePolicy
from sluice.domain.ledger import Balance, EntryKind
from sluice.domain.transaction import (
    AttemptPurpose,
    ChainTransaction,
    Fees,
    TransactionStatus,
    UnsignedTransaction,
    transfer_payload,
)
from sluice.domain.withdrawal import WithdrawalStatus
from sluice.errors import InBatchError
from sluice.services import jobs
from sluice.services.batcher import Batcher
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import (
    BATCH_CONTRACT,
    CHAIN_ID,
    ETH,
    HOT_KEY,
    NET,
    TOKEN,
    CountingSigner,
    Pipeline,
    wire,
)

W = WithdrawalStatus
TS = TransactionStatus
WINDOW_S = 5.0
STUCK_S = 60.0
TKN = 10**6  # TOKEN has 6 decimals


def recipient(n: int) -> Address:
    """A distinct destination per ``n`` (well above the precompiles)."""
    return Address(to_checksum_address(f"0x{0xBEEF0000 + n:040x}"))


async def _pipeline(engine: AsyncEngine, **options: object) -> Pipeline:
    chain = FakeChain(chain_id=CHAIN_ID)
    options.setdefault("batch_window_s", WINDOW_S)
    options.setdefault("fees", FeePolicy(stuck_after_s=STUCK_S))
    p = wire(
        engine,
        chain,
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


async def ready(
    p: Pipeline,
    count: int,
    *,
    token: bool = False,
    first: int = 0,
    new: frozenset[int] = frozenset(),
    user: str = "alice",
) -> list[str]:
    """``count`` withdrawals of 1 (coin or TKN) plus a distinct small amount each, to distinct
    recipients (``first`` on; those whose index is in ``new`` are new accounts, the others
    exist), validated: they wait to be signed, in this order."""
    await p.credit(user, "100", token=token)
    ids = []
    for i in range(first, first + count):
        to = recipient(i)
        if i not in new:
            p.chain.exist(to)
        amount = f"1.{i + 1:03d}"
        ids.append(await p.submit(user, amount, token=token, to=to))
    for wid in ids:
        await p.validate(wid)
    return ids


def refuse(p: Pipeline, destination: Address) -> None:
    """From now on ``destination`` refuses the coin (a contract whose receive reverts)."""
    p.chain.code_sizes[destination] = 100
    p.chain.reverting.add(destination)


async def batch_of(p: Pipeline, wid: str) -> ChainTransaction:
    transaction, _ = await p.transaction(wid)
    return transaction


async def settle(p: Pipeline, wid: str) -> None:
    """Broadcast the withdrawal's transaction, mine it, and follow it to finality."""
    await p.broadcast(wid)
    _, attempts = await p.transaction(wid)
    p.chain.mine(attempts[-1].hash)
    assert await p.confirm(wid) is None


def sign_jobs(p: Pipeline) -> list[str]:
    return [body["withdrawalId"] for job, body, *_ in p.queue.published if job == jobs.SIGN]


async def reasons(p: Pipeline, wid: str) -> list[str]:
    return [e.reason for e in await p.events(wid)]


def amount_of(i: int, decimals: int = 18) -> int:
    """The base units `ready` asks for recipient ``i``."""
    unit: int = 10**decimals
    return unit + (i + 1) * unit // 1000


# ── Forming a group ──────────────────────────────────────────────────────────────────────────


async def test_a_group_waits_for_its_window_then_one_transaction_pays_it_all(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    ids = await ready(p, 3)

    waits = [await p.sign(wid) for wid in ids]

    assert waits[0] == pytest.approx(WINDOW_S)
    assert all(w is not None and w > 0 for w in waits[1:]), "the others wait too"
    assert p.signer.signed == [], "nothing is signed inside the window"
    assert {await p.status(wid) for wid in ids} == {W.VALIDATING}

    p.clock.advance(WINDOW_S)
    await p.sign(ids[0])

    transaction = await batch_of(p, ids[0])
    assert [await p.status(wid) for wid in ids] == [W.SIGNED] * 3
    assert {(await p.get(wid)).transaction_id for wid in ids} == {transaction.id}
    assert len(p.signer.signed) == 1
    assert transaction.is_batch
    assert transaction.payload.to == BATCH_CONTRACT
    assert transaction.payload.value == sum(amount_of(i) for i in range(3))
    assert read_batch(transaction.payload).payments == tuple(
        (recipient(i), amount_of(i)) for i in range(3)
    )
    assert await p.carried(transaction.id) == ids, "positions in acceptance order"
    assert transaction.gas_limit == p.chain.batch_gas(3) * 120 // 100

    await settle(p, ids[0])

    assert [await p.status(wid) for wid in ids] == [W.COMPLETED] * 3
    transaction = await batch_of(p, ids[0])
    assert sorted(p.chain.paid(p.signer.address)) == sorted(
        (transaction.mined_hash, None, recipient(i), amount_of(i)) for i in range(3)
    )
    for i, wid in enumerate(ids):
        assert await p.journal(wid) == [
            (EntryKind.HOLD, amount_of(i)),
            (EntryKind.SETTLE, amount_of(i)),
        ]
    assert await p.balance("alice") == Balance(100 * ETH - sum(amount_of(i) for i in range(3)), 0)


async def test_a_full_group_is_batched_at_once_and_the_next_group_starts(
    engine: AsyncEngine,
) -> None:
    p = await _pipeline(engine, batch_max_size=3)
    try:
        ids = await ready(p, 4)
        before = len(sign_jobs(p))

        assert await p.sign(ids[0]) is None, "its own withdrawal is signed: the job is done"

        transaction = await batch_of(p, ids[0])
        assert await p.carried(transaction.id) == ids[:3]
        assert await p.status(ids[3]) is W.VALIDATING
        assert not (await p.get(ids[3])).unbatched, "it waits for the next batch"
        assert ids[3] in sign_jobs(p)[before:], "the next group's oldest is started at once"
    finally:
        await p.queue.close()


async def test_only_the_oldest_job_forms_the_batch_until_it_is_a_window_late(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    ids = await ready(p, 3)
    p.clock.advance(WINDOW_S)

    wait = await p.sign(ids[1])

    assert wait is not None
    assert wait > 0
    assert p.signer.signed == [], "a later member waits for the oldest's job"

    p.clock.advance(WINDOW_S)  # the oldest's job is a window late: another member takes over
    await p.sign(ids[1])

    transaction = await batch_of(p, ids[1])
    assert await p.carried(transaction.id) == ids
    assert len(p.signer.signed) == 1


async def test_a_withdrawal_asking_for_fast_goes_alone_at_once(pipeline: Pipeline) -> None:
    p = pipeline
    others = await ready(p, 2)
    p.chain.exist(recipient(9))
    await p.credit("bob", "10")
    fast = await p.submit("bob", "2", to=recipient(9), priority=FeeLevel.FAST)
    await p.validate(fast)

    assert await p.sign(fast) is None

    transaction = await batch_of(p, fast)
    assert not transaction.is_batch
    assert transaction.payload == transfer_payload(p.network.native, recipient(9), 2 * ETH)
    assert await p.carried(transaction.id) == [fast]
    assert {await p.status(wid) for wid in others} == {W.VALIDATING}, "the group still waits"

    p.clock.advance(WINDOW_S)
    await p.sign(others[0])
    assert await p.carried((await batch_of(p, others[0])).id) == others


# ── Only where it saves gas ──────────────────────────────────────────────────────────────────


async def test_the_coin_to_a_new_account_is_paid_alone_and_existing_accounts_are_batched(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    ids = await ready(p, 3, new=frozenset({0}))
    p.clock.advance(WINDOW_S)

    await p.sign(ids[0])

    batch = await batch_of(p, ids[1])
    assert await p.carried(batch.id) == ids[1:]
    alone = await p.get(ids[0])
    assert alone.status is W.VALIDATING
    assert alone.unbatched
    assert any(
        "paid on its own" in r and "new account" in r and recipient(0) in r
        for r in await reasons(p, ids[0])
    )
    assert ids[0] in sign_jobs(p)

    await p.sign(ids[0])

    single = await batch_of(p, ids[0])
    assert single.payload == transfer_payload(p.network.native, recipient(0), amount_of(0))
    assert single.nonce == batch.nonce + 1
    await settle(p, ids[1])
    await settle(p, ids[0])
    assert [await p.status(wid) for wid in ids] == [W.COMPLETED] * 3
    assert len(p.chain.paid(p.signer.address)) == 3


async def test_a_token_to_new_holders_is_batched(pipeline: Pipeline) -> None:
    p = pipeline
    ids = await ready(p, 3, token=True, new=frozenset({0, 1, 2}))
    p.clock.advance(WINDOW_S)

    await p.sign(ids[0])

    transaction = await batch_of(p, ids[0])
    assert await p.carried(transaction.id) == ids
    batch = read_batch(transaction.payload)
    assert batch.token == TOKEN
    assert transaction.payload.value == 0
    await settle(p, ids[0])
    assert [await p.status(wid) for wid in ids] == [W.COMPLETED] * 3
    _, [attempt] = await p.transaction(ids[0])
    receipt = p.chain.transactions[attempt.hash].receipt
    assert receipt is not None
    assert paid_indices(receipt.logs, BATCH_CONTRACT) == {0, 1, 2}


async def test_a_batch_that_would_not_save_gas_is_paid_as_singles(pipeline: Pipeline) -> None:
    p = pipeline
    p.chain.batch_gas_per_payment = 25_000  # more than a 21,000-gas transfer of its own
    ids = await ready(p, 2)
    p.clock.advance(WINDOW_S)

    await p.sign(ids[0])

    for wid in ids:
        withdrawal = await p.get(wid)
        assert withdrawal.unbatched
        assert any("paid on its own: a batch of 2 would use" in r for r in await reasons(p, wid))
    assert p.signer.signed == []
    assert p.chain.calls["send_raw_transaction"] == 0

    for wid in ids:
        await p.sign(wid)
        await settle(p, wid)
    assert [await p.status(wid) for wid in ids] == [W.COMPLETED] * 2
    assert [to for _, _, to, _ in p.chain.paid(p.signer.address)] == [recipient(0), recipient(1)]
    assert p.chain.batches() == []


async def test_a_token_batch_without_the_contracts_allowance_is_paid_as_singles(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    p.allow(0)
    ids = await ready(p, 2, token=True)
    p.clock.advance(WINDOW_S)

    await p.sign(ids[0])

    for wid in ids:
        assert (await p.get(wid)).unbatched
        assert any(
            f"batch contract {BATCH_CONTRACT} is not approved for TKN" in r
            for r in await reasons(p, wid)
        )
    for wid in ids:
        await p.sign(wid)
        transaction = await batch_of(p, wid)
        assert transaction.payload.to == TOKEN, "an ERC-20 transfer of its own"
        await settle(p, wid)
    assert [await p.status(wid) for wid in ids] == [W.COMPLETED] * 2
    assert p.chain.batches() == []


async def test_a_batch_over_the_gas_cap_keeps_its_older_half(pipeline: Pipeline) -> None:
    p = pipeline
    # Six payments are estimated at 18 M gas, over EIP-7825's cap; three at 9 M, under it (and
    # below three single transfers at 5 M each).
    p.chain.batch_gas_per_payment = 3_000_000
    p.chain.gas_estimate = 5_000_000
    ids = await ready(p, 6, token=True)
    p.clock.advance(WINDOW_S)

    await p.sign(ids[0])

    first = await batch_of(p, ids[0])
    assert await p.carried(first.id) == ids[:3]
    assert first.gas_limit == p.chain.batch_gas(3) * 120 // 100 < MAX_TRANSACTION_GAS
    assert [await p.status(wid) for wid in ids[3:]] == [W.VALIDATING] * 3
    assert [(await p.get(wid)).unbatched for wid in ids[3:]] == [False] * 3
    assert ids[3] in sign_jobs(p)

    await p.sign(ids[3])

    second = await batch_of(p, ids[3])
    assert await p.carried(second.id) == ids[3:]
    assert second.nonce == first.nonce + 1


# ── Recipients that revert ───────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("token", [False, True], ids=["native", "token"])
async def test_a_reverting_recipient_is_taken_out_and_the_rest_are_batched(
    pipeline: Pipeline, token: bool
) -> None:
    p = pipeline
    decimals = 6 if token else 18
    ids = await ready(p, 3, token=token)
    if token:
        p.chain.reverting.add(recipient(1))  # the token refuses a blocked holder
    else:
        refuse(p, recipient(1))
    p.clock.advance(WINDOW_S)

    await p.sign(ids[0])

    failed = await p.get(ids[1])
    assert failed.status is W.FAILED
    assert failed.error_code == "destination_reverts"
    assert failed.transaction_id is None
    assert await p.journal(ids[1]) == [
        (EntryKind.HOLD, amount_of(1, decimals)),
        (EntryKind.RELEASE, amount_of(1, decimals)),
    ]
    transaction = await batch_of(p, ids[0])
    assert await p.carried(transaction.id) == [ids[0], ids[2]]
    assert [to for to, _ in read_batch(transaction.payload).payments] == [
        recipient(0),
        recipient(2),
    ]
    await settle(p, ids[0])
    assert [await p.status(wid) for wid in (ids[0], ids[2])] == [W.COMPLETED] * 2
    paid = sum(amount_of(i, decimals) for i in (0, 2))
    assert await p.balance("alice", token=token) == Balance(100 * 10**decimals - paid, 0)
    assert [to for _, _, to, _ in p.chain.paid(p.signer.address)] == [recipient(0), recipient(2)]


async def test_a_batch_that_reverts_on_chain_is_split_and_each_is_paid_alone_once(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    ids = await ready(p, 3)
    p.clock.advance(WINDOW_S)
    await p.sign(ids[0])
    batch = await batch_of(p, ids[0])
    await p.broadcast(ids[0])
    refuse(p, recipient(1))  # it starts refusing after the simulation
    receipt = p.chain.mine(p.chain.pool[0])
    assert not receipt.succeeded

    assert await p.confirm_transaction(batch.id) is None

    reverted, _ = await p.transaction_by_id(batch.id)
    assert reverted.status is TS.REVERTED
    for wid in ids:
        withdrawal = await p.get(wid)
        assert withdrawal.status is W.VALIDATING
        assert withdrawal.unbatched
        assert withdrawal.transaction_id is None
        assert any(
            f"the batch of 3 reverted in block {receipt.block_number}" in r
            and "paying this withdrawal on its own" in r
            for r in await reasons(p, wid)
        )
    held = sum(amount_of(i) for i in range(3))
    assert await p.balance("alice") == Balance(100 * ETH - held, held), "holds kept"

    for wid in ids:
        await p.sign(wid)
    failed = await p.get(ids[1])
    assert failed.status is W.FAILED
    assert failed.error_code == "destination_reverts"
    for wid in (ids[0], ids[2]):
        transaction = await batch_of(p, wid)
        assert not transaction.is_batch
        assert await p.carried(transaction.id) == [wid]
        await settle(p, wid)

    assert [await p.status(wid) for wid in ids] == [W.COMPLETED, W.FAILED, W.COMPLETED]
    paid = p.chain.paid(p.signer.address)
    assert sorted(to for _, _, to, _ in paid) == [recipient(0), recipient(2)], "each once"
    assert await p.journal(ids[1]) == [
        (EntryKind.HOLD, amount_of(1)),
        (EntryKind.RELEASE, amount_of(1)),
    ]
    for i in (0, 2):
        assert await p.journal(ids[i]) == [
            (EntryKind.HOLD, amount_of(i)),
            (EntryKind.SETTLE, amount_of(i)),
        ]
    spent = amount_of(0) + amount_of(2)
    assert await p.balance("alice") == Balance(100 * ETH - spent, 0)


# ── A batch on the chain ─────────────────────────────────────────────────────────────────────


async def test_fee_shares_add_up_to_the_transactions_fee_by_position(pipeline: Pipeline) -> None:
    p = pipeline
    ids = await ready(p, 3, token=True)
    p.clock.advance(WINDOW_S)
    await p.sign(ids[0])
    await p.broadcast(ids[0])
    _, [attempt] = await p.transaction(ids[0])
    # An odd gas figure, so the fee does not divide by three.
    receipt = p.chain.mine(attempt.hash, gas_used=p.chain.batch_gas(3) + 1)
    assert receipt.fee_paid % 3 != 0

    assert await p.confirm(ids[0]) is None

    transaction = await p.load((await p.get(ids[0])).transaction_id or "")
    assert transaction.fee_paid == receipt.fee_paid
    shares = [(await p.get(wid)).fee_paid for wid in ids]
    assert sum(s or 0 for s in shares) == receipt.fee_paid
    base = receipt.fee_paid // 3
    rest = receipt.fee_paid % 3
    assert shares == [base + 1 if i < rest else base for i in range(3)]
    assert [transaction.position(wid) for wid in ids] == [0, 1, 2]
    assert paid_indices(receipt.logs, BATCH_CONTRACT) == {0, 1, 2}
    assert [await p.status(wid) for wid in ids] == [W.COMPLETED] * 3
    paid = p.chain.paid(p.signer.address)
    assert [(token, to, amount) for _, token, to, amount in paid] == [
        (TOKEN, recipient(i), amount_of(i, 6)) for i in range(3)
    ]


async def test_a_stuck_batch_is_replaced_by_one_that_carries_the_same_withdrawals(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    ids = await ready(p, 3)
    p.clock.advance(WINDOW_S)
    await p.sign(ids[0])
    await p.broadcast(ids[0])
    transaction, [first] = await p.transaction(ids[0])
    p.clock.advance(STUCK_S)

    await p.confirm(ids[0])

    replaced, [_, second] = await p.transaction(ids[0])
    assert second.purpose is AttemptPurpose.PAYLOAD
    assert second.fees.max_fee_per_gas > first.fees.max_fee_per_gas
    sent = p.chain.transactions[second.hash]
    assert (sent.to, sent.value, sent.data) == (
        transaction.payload.to,
        transaction.payload.value,
        transaction.payload.data,
    )
    assert sent.nonce == transaction.nonce
    assert await p.carried(replaced.id) == ids
    for wid in ids:
        assert (await p.get(wid)).transaction_hash == second.hash
        assert any("replaced by attempt 2" in r for r in await reasons(p, wid))

    p.chain.mine(second.hash)
    assert await p.confirm(ids[0]) is None

    assert [await p.status(wid) for wid in ids] == [W.COMPLETED] * 3
    assert len(p.chain.paid(p.signer.address)) == 3
    assert p.chain.transactions[first.hash].receipt is None, "the first attempt never mined"


async def test_an_operators_cancel_of_a_batched_withdrawal_is_refused(pipeline: Pipeline) -> None:
    p = pipeline
    ids = await ready(p, 3)
    await p.cancel(ids[2])  # before the batch is signed, a cancel works as always
    assert await p.status(ids[2]) is W.CANCELLED
    p.clock.advance(WINDOW_S)
    await p.sign(ids[0])
    await p.broadcast(ids[0])

    with pytest.raises(InBatchError) as refused:
        await p.cancel(ids[1])

    assert refused.value.code == "in_batch"
    transaction, attempts = await p.transaction(ids[1])
    assert await p.carried(transaction.id) == ids[:2]
    assert [a.purpose for a in attempts] == [AttemptPurpose.PAYLOAD], "no no-op was signed"
    assert transaction.cancel_requested_at is None
    assert [await p.status(wid) for wid in ids[:2]] == [W.BROADCASTING] * 2
    await settle(p, ids[0])
    assert [await p.status(wid) for wid in ids] == [W.COMPLETED, W.COMPLETED, W.CANCELLED]
    assert await p.journal(ids[2]) == [
        (EntryKind.HOLD, amount_of(2)),
        (EntryKind.RELEASE, amount_of(2)),
    ]


async def test_a_superseded_batch_has_all_its_withdrawals_signed_again(
    engine: AsyncEngine,
) -> None:
    p = await _pipeline(engine, confirmations=2)
    try:
        ids = await ready(p, 3)
        p.clock.advance(WINDOW_S)
        await p.sign(ids[0])
        await p.broadcast(ids[0])
        transaction, [ours] = await p.transaction(ids[0])
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
        await p.confirm(ids[0])
        p.chain.advance_blocks(1)

        assert await p.confirm_transaction(transaction.id) is None

        superseded, _ = await p.transaction_by_id(transaction.id)
        assert superseded.status is TS.SUPERSEDED
        assert [await p.status(wid) for wid in ids] == [W.VALIDATING] * 3
        assert set(ids) <= set(sign_jobs(p))

        p.clock.advance(WINDOW_S)
        await p.sign(ids[0])

        renewed = await batch_of(p, ids[0])
        assert renewed.id != transaction.id
        assert renewed.nonce == transaction.nonce + 1
        assert await p.carried(renewed.id) == ids
        assert renewed.payload == transaction.payload
        await p.broadcast(ids[0])
        _, [attempt] = await p.transaction(ids[0])
        p.chain.mine(attempt.hash)
        p.chain.advance_blocks(1)
        assert await p.confirm(ids[0]) is None
        assert [await p.status(wid) for wid in ids] == [W.COMPLETED] * 3
        assert len(p.chain.paid(p.signer.address)) == 3, "each paid once"
    finally:
        await p.queue.close()


async def test_while_a_group_is_planned_its_members_jobs_look_again_a_window_later(
    engine: AsyncEngine,
) -> None:
    """Not every moment: a member is most likely in the batch being planned. A newcomer beyond
    the full group looks again soon (it plans the next group)."""
    p = await _pipeline(engine, batch_max_size=3)
    try:
        ids = await ready(p, 4)
        entry = p.registry.get(NET)
        batcher = Batcher()
        async with p.uow() as uow:
            members = await uow.withdrawals.get_many(ids)
            planner = await batcher.group(uow, entry, members[0], p.clock.now())
            member = await batcher.group(uow, entry, members[1], p.clock.now())
            newcomer = await batcher.group(uow, entry, members[3], p.clock.now())
        assert [w.id for w in planner.withdrawals] == ids[:3]
        assert planner.planning is not None
        assert planner.wait_s is None
        assert member.wait_s == WINDOW_S
        assert newcomer.wait_s == pytest.approx(0.2)
        batcher.release(planner.planning)
        async with p.uow() as uow:
            again = await batcher.group(uow, entry, members[1], p.clock.now())
        assert again.planning is not None, (
            "the lease is released: a member's job plans a full group"
        )
    finally:
        await p.queue.close()
