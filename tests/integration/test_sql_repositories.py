"""The SQL repositories and the unit of work on a migrated SQLite file database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.tables import balances, withdrawals
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.domain.access import ApiKey, Scope
from sluice.domain.addresses import Address
from sluice.domain.amounts import MAX_BASE_UNITS
from sluice.domain.assets import NATIVE
from sluice.domain.ledger import Balance, EntryKind
from sluice.domain.transaction import (
    Attempt,
    ChainTransaction,
    Fees,
    Payload,
    TransactionStatus,
)
from sluice.domain.withdrawal import StatusChange, Withdrawal, WithdrawalStatus
from sluice.errors import TransientError
from sluice.ports import LedgerEntry
from sluice.queue.memory import MemoryQueue

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
NET = "testnet"
HOT = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
OTHER_HOT = Address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
DEST = Address("0x90F79bf6EB2c4f870365E785982E1f101E93b906")


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue()


@pytest.fixture
def uow(engine: AsyncEngine, queue: MemoryQueue) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine, queue)


def _withdrawal(
    withdrawal_id: str,
    *,
    user_id: str = "alice",
    status: WithdrawalStatus = WithdrawalStatus.PENDING,
    amount: int = 1_000,
    at: datetime = T0,
) -> Withdrawal:
    return Withdrawal(
        id=withdrawal_id,
        user_id=user_id,
        network=NET,
        asset_key=NATIVE,
        token_address=None,
        amount=amount,
        to_address=DEST,
        status=status,
        created_at=at,
        updated_at=at,
        fingerprint="f" * 64,
        request_id="req-1",
    )


def _transaction(
    transaction_id: str, *, nonce: int, from_address: Address = HOT, network: str = NET
) -> ChainTransaction:
    return ChainTransaction(
        id=transaction_id,
        network=network,
        from_address=from_address,
        nonce=nonce,
        payload=Payload(to=DEST, value=5, data=b"\x01\x02"),
        gas_limit=21_000,
        status=TransactionStatus.SIGNED,
        created_at=T0,
        updated_at=T0,
        request_id="req-1",
    )


def _attempt(transaction_id: str, *, seq: int = 1, tag: str = "a") -> Attempt:
    return Attempt(
        id=f"at_{transaction_id}_{seq}",
        transaction_id=transaction_id,
        seq=seq,
        fees=Fees(max_fee_per_gas=3 * 10**9, max_priority_fee_per_gas=10**9),
        raw=bytes.fromhex("02f8") + tag.encode(),
        hash="0x" + (tag * 64)[:64],
        created_at=T0,
    )


def _entry(
    amount: int, *, kind: EntryKind = EntryKind.CREDIT, reference: str | None
) -> LedgerEntry:
    return LedgerEntry(
        user_id="alice",
        network=NET,
        asset_key=NATIVE,
        kind=kind,
        amount=amount,
        at=T0,
        reference=reference,
    )


# ── Withdrawals ───────────────────────────────────────────────────────────────────────────────


async def test_withdrawal_add_and_get_round_trip(uow: SqlUnitOfWorkFactory) -> None:
    original = _withdrawal("wd_1")
    async with uow() as u:
        assert await u.withdrawals.add(original)
        await u.commit()
    assert original.seq is not None

    async with uow() as u:
        stored = await u.withdrawals.get("wd_1")
        assert await u.withdrawals.get("wd_missing") is None

    assert stored == original


async def test_duplicate_withdrawal_id_returns_false_and_keeps_the_transaction_usable(
    uow: SqlUnitOfWorkFactory,
) -> None:
    async with uow() as u:
        assert await u.withdrawals.add(_withdrawal("wd_1"))
        duplicate = _withdrawal("wd_1", user_id="mallory", amount=9)
        assert not await u.withdrawals.add(duplicate)
        assert await u.withdrawals.add(_withdrawal("wd_2"))  # still usable after the conflict
        await u.commit()

    async with uow() as u:
        first = await u.withdrawals.get("wd_1")
        assert first is not None
        assert (first.user_id, first.amount) == ("alice", 1_000)
        assert await u.withdrawals.get("wd_2") is not None


async def test_withdrawal_save_writes_the_mutable_fields(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as u:
        await u.transactions.add(_transaction("tx_1", nonce=0), _attempt("tx_1"))
        withdrawal = _withdrawal("wd_1")
        await u.withdrawals.add(withdrawal)
        withdrawal.status = WithdrawalStatus.FAILED
        withdrawal.error = "reverted in block 7"
        withdrawal.error_code = "reverted"
        withdrawal.transaction_id = "tx_1"
        withdrawal.transaction_hash = "0x" + "b" * 64
        withdrawal.block_number = 7
        withdrawal.updated_at = T0 + timedelta(minutes=5)
        await u.withdrawals.save(withdrawal)
        await u.commit()

    async with uow() as u:
        assert await u.withdrawals.get("wd_1", lock=True) == withdrawal


async def test_page_is_newest_first_with_filters_and_a_keyset_cursor(
    uow: SqlUnitOfWorkFactory,
) -> None:
    specs = [
        ("wd_0", "alice", WithdrawalStatus.PENDING),
        ("wd_1", "bob", WithdrawalStatus.PENDING),
        ("wd_2", "alice", WithdrawalStatus.FAILED),
        ("wd_3", "alice", WithdrawalStatus.PENDING),
        ("wd_4", "bob", WithdrawalStatus.FAILED),
        ("wd_5", "alice", WithdrawalStatus.PENDING),
    ]
    async with uow() as u:
        for withdrawal_id, user_id, status in specs:
            await u.withdrawals.add(_withdrawal(withdrawal_id, user_id=user_id, status=status))
        await u.commit()

    async with uow() as u:

        async def ids(
            *,
            user_id: str | None = None,
            status: WithdrawalStatus | None = None,
            limit: int = 100,
            before_seq: int | None = None,
        ) -> list[str]:
            page = await u.withdrawals.page(
                user_id=user_id, status=status, limit=limit, before_seq=before_seq
            )
            return [w.id for w in page]

        assert await ids() == ["wd_5", "wd_4", "wd_3", "wd_2", "wd_1", "wd_0"]
        assert await ids(user_id="alice") == ["wd_5", "wd_3", "wd_2", "wd_0"]
        assert await ids(status=WithdrawalStatus.FAILED) == ["wd_4", "wd_2"]
        assert await ids(user_id="alice", status=WithdrawalStatus.PENDING) == [
            "wd_5",
            "wd_3",
            "wd_0",
        ]
        first = await u.withdrawals.page(user_id="alice", status=None, limit=2, before_seq=None)
        assert [w.id for w in first] == ["wd_5", "wd_3"]
        cursor = first[-1].seq
        assert cursor is not None
        assert await ids(user_id="alice", limit=2, before_seq=cursor) == ["wd_2", "wd_0"]
        assert await ids(before_seq=cursor, status=WithdrawalStatus.PENDING) == ["wd_1", "wd_0"]
        oldest = (await u.withdrawals.page(user_id=None, status=None, limit=6, before_seq=None))[-1]
        assert oldest.seq is not None
        assert await ids(before_seq=oldest.seq) == []


async def test_changed_since_is_oldest_change_first_with_a_keyset_cursor(
    uow: SqlUnitOfWorkFactory,
) -> None:
    # wd_0 and wd_1 were updated at the same instant: seq breaks the tie.
    specs = [
        ("wd_0", "alice", T0 + timedelta(seconds=5)),
        ("wd_1", "alice", T0 + timedelta(seconds=5)),
        ("wd_2", "bob", T0 + timedelta(seconds=1)),
        ("wd_3", "alice", T0),
        ("wd_4", "alice", T0 + timedelta(seconds=9, microseconds=1)),
    ]
    async with uow() as u:
        for withdrawal_id, user_id, at in specs:
            await u.withdrawals.add(_withdrawal(withdrawal_id, user_id=user_id, at=at))
        await u.commit()

    async with uow() as u:

        async def page(
            since: datetime, *, user_id: str | None = None, limit: int = 10, after: Any = None
        ) -> list[Withdrawal]:
            return await u.withdrawals.changed_since(
                user_id=user_id, status=None, limit=limit, since=since, after=after
            )

        everything = await page(T0)
        assert [w.id for w in everything] == ["wd_3", "wd_2", "wd_0", "wd_1", "wd_4"]
        assert [w.id for w in await page(T0 + timedelta(seconds=1))] == [
            "wd_2",
            "wd_0",
            "wd_1",
            "wd_4",
        ], "at or after"
        assert [w.id for w in await page(T0, user_id="bob")] == ["wd_2"]
        first = await page(T0 + timedelta(seconds=1), limit=2)
        assert [w.id for w in first] == ["wd_2", "wd_0"]
        last = first[-1]
        assert last.seq is not None
        rest = await page(T0 + timedelta(seconds=1), after=(last.updated_at, last.seq))
        assert [w.id for w in rest] == ["wd_1", "wd_4"], "a tie at the cursor's time is kept"
        beyond = everything[-1]
        assert beyond.seq is not None
        assert await page(T0, after=(beyond.updated_at, beyond.seq)) == []


async def test_for_transaction_and_ids_in_status(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as u:
        await u.transactions.add(_transaction("tx_1", nonce=0), _attempt("tx_1"))
        for n in range(4):
            withdrawal = _withdrawal(f"wd_{n}")
            await u.withdrawals.add(withdrawal)
            if n in (1, 3):
                withdrawal.transaction_id = "tx_1"
                withdrawal.status = WithdrawalStatus.SIGNED
                await u.withdrawals.save(withdrawal)
        await u.commit()

    async with uow() as u:
        carried = await u.withdrawals.for_transaction("tx_1", lock=True)
        assert [w.id for w in carried] == ["wd_1", "wd_3"]
        assert await u.withdrawals.for_transaction("tx_none") == []
        pending = WithdrawalStatus.PENDING
        assert await u.withdrawals.ids_in_status(pending, limit=10) == ["wd_0", "wd_2"]
        assert await u.withdrawals.ids_in_status(pending, limit=1) == ["wd_0"]
        assert await u.withdrawals.ids_in_status(WithdrawalStatus.SIGNED, limit=10) == [
            "wd_1",
            "wd_3",
        ]


async def test_events_come_back_in_order_with_their_data(uow: SqlUnitOfWorkFactory) -> None:
    changes = [
        StatusChange("wd_1", None, WithdrawalStatus.PENDING, T0, "accepted", request_id="r"),
        StatusChange(
            "wd_1",
            WithdrawalStatus.PENDING,
            WithdrawalStatus.VALIDATING,
            T0 + timedelta(seconds=1),
            "funds held",
        ),
        StatusChange(
            "wd_1",
            WithdrawalStatus.VALIDATING,
            WithdrawalStatus.SIGNED,
            T0 + timedelta(seconds=1),  # same instant: order is insertion order
            "signed with nonce 3",
            data={"nonce": "3", "transactionHash": "0x" + "c" * 64},
        ),
        StatusChange(
            "wd_1",
            WithdrawalStatus.BROADCASTING,
            WithdrawalStatus.FAILED,
            T0 + timedelta(seconds=2),
            "reverted",
            error_code="reverted",
        ),
    ]
    async with uow() as u:
        await u.withdrawals.add(_withdrawal("wd_1"))
        for change in changes:
            await u.withdrawals.add_event(change)
        await u.withdrawals.add_event(
            StatusChange("wd_other", None, WithdrawalStatus.PENDING, T0, "accepted")
        )
        await u.commit()

    async with uow() as u:
        assert await u.withdrawals.events("wd_1") == changes
        assert await u.withdrawals.events("wd_none") == []


# ── Ledger ────────────────────────────────────────────────────────────────────────────────────


async def test_balance_defaults_to_zero_and_set_balance_inserts_then_updates(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    async with uow() as u:
        assert await u.ledger.balance("alice", NET, NATIVE, lock=True) == Balance(0, 0)
        await u.ledger.set_balance("alice", NET, NATIVE, Balance(100, 0), T0)
        await u.ledger.set_balance("alice", NET, NATIVE, Balance(60, 40), T0)
        await u.ledger.set_balance("alice", NET, "0xtoken", Balance(7, 0), T0)
        await u.ledger.set_balance("bob", NET, NATIVE, Balance(1, 1), T0)
        await u.commit()

    async with uow() as u:
        assert await u.ledger.balance("alice", NET, NATIVE) == Balance(60, 40)
        assert await u.ledger.balances("alice") == [
            (NET, "0xtoken", Balance(7, 0)),
            (NET, NATIVE, Balance(60, 40)),
        ]
        assert await u.ledger.balances("nobody") == []
    async with engine.connect() as connection:
        rows = (await connection.execute(select(balances.c.user_id))).all()
    assert len(rows) == 3, "the second set_balance updated, it did not insert"


async def test_add_entry_with_a_reused_reference_returns_false_and_keeps_the_transaction_usable(
    uow: SqlUnitOfWorkFactory,
) -> None:
    async with uow() as u:
        assert await u.ledger.add_entry(_entry(100, reference="deposit-1"))
        assert not await u.ledger.add_entry(_entry(999, reference="deposit-1"))
        assert await u.ledger.add_entry(_entry(5, kind=EntryKind.HOLD, reference=None))
        assert await u.ledger.add_entry(_entry(5, kind=EntryKind.RELEASE, reference=None))
        await u.ledger.set_balance("alice", NET, NATIVE, Balance(100, 0), T0)  # still usable
        await u.commit()

    async with uow() as u:
        assert await u.ledger.entry_by_reference("deposit-1") == _entry(100, reference="deposit-1")
        assert await u.ledger.entry_by_reference("unknown") is None
        assert await u.ledger.balance("alice", NET, NATIVE) == Balance(100, 0)


# ── Transactions and nonces ───────────────────────────────────────────────────────────────────


async def test_reconcile_nonce_creates_the_counter_and_only_moves_it_forward(
    uow: SqlUnitOfWorkFactory,
) -> None:
    async with uow() as u:
        assert await u.transactions.reconcile_nonce(NET, HOT, 5) == 5
        assert await u.transactions.reconcile_nonce(NET, HOT, 3) == 5, "never backwards"
        assert await u.transactions.reconcile_nonce(NET, HOT, 8) == 8
        assert await u.transactions.reconcile_nonce(NET, OTHER_HOT, 0) == 0
        await u.commit()

    async with uow() as u:
        assert await u.transactions.next_nonce(NET, HOT) == 8
        assert await u.transactions.next_nonce(NET, OTHER_HOT) == 0


async def test_next_nonce_increments_and_is_consumed_only_on_commit(
    uow: SqlUnitOfWorkFactory,
) -> None:
    async with uow() as u:
        with pytest.raises(TransientError, match="not initialised"):
            await u.transactions.next_nonce(NET, HOT)
    async with uow() as u:
        await u.transactions.reconcile_nonce(NET, HOT, 0)
        await u.commit()

    async with uow() as u:
        assert [await u.transactions.next_nonce(NET, HOT) for _ in range(3)] == [0, 1, 2]
        await u.commit()
    async with uow() as u:
        assert await u.transactions.next_nonce(NET, HOT) == 3
        # not committed: the nonce goes back
    async with uow() as u:
        assert await u.transactions.next_nonce(NET, HOT) == 3
        await u.rollback()
    async with uow() as u:
        assert await u.transactions.next_nonce(NET, HOT) == 3


async def test_transaction_add_get_save_attempts_and_mark_sent(
    uow: SqlUnitOfWorkFactory,
) -> None:
    transaction = _transaction("tx_1", nonce=4)
    first = _attempt("tx_1", seq=1, tag="a")
    async with uow() as u:
        await u.transactions.add(transaction, first)
        await u.commit()

    sent_at = T0 + timedelta(seconds=10)
    async with uow() as u:
        assert await u.transactions.get("tx_1", lock=True) == transaction
        assert await u.transactions.get("tx_missing") is None
        assert await u.transactions.attempts("tx_1") == [first]
        await u.transactions.mark_sent(first.id, sent_at)
        await u.transactions.mark_sent(first.id, sent_at + timedelta(hours=1))  # ignored
        transaction.status = TransactionStatus.CONFIRMED
        transaction.block_number = 12
        transaction.block_hash = "0x" + "d" * 64
        transaction.mined_hash = first.hash
        transaction.updated_at = sent_at
        await u.transactions.save(transaction)
        await u.commit()

    async with uow() as u:
        assert await u.transactions.get("tx_1") == transaction
        attempts = await u.transactions.attempts("tx_1")
        assert [a.sent_at for a in attempts] == [sent_at], "only the first mark_sent counts"
        assert await u.transactions.ids_in_status("CONFIRMED", limit=10) == ["tx_1"]
        assert await u.transactions.ids_in_status("SIGNED", limit=10) == []


async def test_the_database_refuses_a_second_payload_for_a_nonce(
    uow: SqlUnitOfWorkFactory,
) -> None:
    async with uow() as u:
        await u.transactions.add(_transaction("tx_1", nonce=7), _attempt("tx_1", tag="a"))
        # the same nonce is fine for another wallet or another network
        await u.transactions.add(
            _transaction("tx_2", nonce=7, from_address=OTHER_HOT), _attempt("tx_2", tag="b")
        )
        await u.transactions.add(
            _transaction("tx_3", nonce=7, network="othernet"), _attempt("tx_3", tag="c")
        )
        await u.commit()

    async with uow() as u:
        with pytest.raises(IntegrityError):
            await u.transactions.add(_transaction("tx_4", nonce=7), _attempt("tx_4", tag="d"))

    async with uow() as u:
        assert await u.transactions.get("tx_4") is None
        assert await u.transactions.ids_in_status("SIGNED", limit=10) == ["tx_1", "tx_2", "tx_3"]


# ── API keys ──────────────────────────────────────────────────────────────────────────────────


async def test_api_keys_add_get_all_revoke(uow: SqlUnitOfWorkFactory) -> None:
    old = ApiKey("k1", "old", frozenset({Scope.WITHDRAWALS_READ}), "h" * 64, T0)
    new = ApiKey(
        "k2",
        "new",
        frozenset(Scope),
        "i" * 64,
        T0 + timedelta(days=1),
        user_ids=frozenset({"bob", 'a,b"c'}),
        ip_ranges=("10.0.0.0/8", "2001:db8::/32"),
        require_signature=True,
        signing_public_key=bytes(range(32)),
    )
    async with uow() as u:
        await u.api_keys.add(old)
        await u.api_keys.add(new)
        await u.commit()

    revoked_at = T0 + timedelta(days=2)
    async with uow() as u:
        assert await u.api_keys.get("k1") == old
        assert await u.api_keys.get("nope") is None
        assert await u.api_keys.all() == [new, old], "newest first"
        assert await u.api_keys.revoke("k1", revoked_at)
        assert not await u.api_keys.revoke("k1", revoked_at + timedelta(days=1)), "once only"
        assert not await u.api_keys.revoke("nope", revoked_at)
        await u.commit()

    async with uow() as u:
        stored = await u.api_keys.get("k1")
        assert stored is not None
        assert stored.revoked_at == revoked_at
        assert not stored.allows(Scope.WITHDRAWALS_READ)


# ── Unit of work ──────────────────────────────────────────────────────────────────────────────


async def test_unit_of_work_publishes_only_after_commit(
    uow: SqlUnitOfWorkFactory, queue: MemoryQueue
) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-42"):
        async with uow() as u:
            await u.withdrawals.add(_withdrawal("wd_1"))
            u.enqueue("withdrawal.validate", {"withdrawalId": "wd_1"})
            u.enqueue("later", {"n": 1}, delay_s=60)
            assert queue.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}
            await u.commit()

    assert queue.stats() == {"ready": 1, "delayed": 1, "in_flight": 0, "dead": 0}
    [message] = await queue.receive(max_messages=10, wait_s=0)
    assert (message.job, message.payload) == ("withdrawal.validate", {"withdrawalId": "wd_1"})
    assert message.request_id == "req-42"
    async with uow() as u:
        assert await u.withdrawals.get("wd_1") is not None, "the row is there before the message"


async def test_unit_of_work_drops_messages_on_rollback_and_on_exit_without_commit(
    uow: SqlUnitOfWorkFactory, queue: MemoryQueue
) -> None:
    async with uow() as u:
        await u.withdrawals.add(_withdrawal("wd_1"))
        u.enqueue("withdrawal.validate", {"withdrawalId": "wd_1"})
        await u.rollback()
    async with uow() as u:
        await u.withdrawals.add(_withdrawal("wd_2"))
        u.enqueue("withdrawal.validate", {"withdrawalId": "wd_2"})

    async def fail_midway() -> None:
        async with uow() as u:
            await u.withdrawals.add(_withdrawal("wd_3"))
            u.enqueue("withdrawal.validate", {"withdrawalId": "wd_3"})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_midway()

    assert queue.stats() == {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0}
    async with uow() as u:
        for withdrawal_id in ("wd_1", "wd_2", "wd_3"):
            assert await u.withdrawals.get(withdrawal_id) is None


async def test_commit_outside_an_open_unit_of_work_is_refused(
    engine: AsyncEngine, queue: MemoryQueue
) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await SqlUnitOfWorkFactory(engine, queue)().commit()


# ── Column types ──────────────────────────────────────────────────────────────────────────────


async def test_base_units_round_trip_uint256_max_exactly(uow: SqlUnitOfWorkFactory) -> None:
    big = MAX_BASE_UNITS
    assert big == 2**256 - 1
    async with uow() as u:
        await u.withdrawals.add(_withdrawal("wd_big", amount=big))
        await u.ledger.set_balance("alice", NET, NATIVE, Balance(big, big - 1), T0)
        await u.ledger.add_entry(_entry(big, reference="huge"))
        await u.commit()

    async with uow() as u:
        withdrawal = await u.withdrawals.get("wd_big")
        assert withdrawal is not None
        assert withdrawal.amount == big
        assert type(withdrawal.amount) is int
        assert await u.ledger.balance("alice", NET, NATIVE) == Balance(big, big - 1)
        entry = await u.ledger.entry_by_reference("huge")
        assert entry is not None
        assert entry.amount == big


async def test_utc_datetime_reads_back_aware_utc(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2025, 6, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    async with uow() as u:
        await u.withdrawals.add(_withdrawal("wd_1", at=local))
        await u.commit()

    async with uow() as u:
        withdrawal = await u.withdrawals.get("wd_1")
    assert withdrawal is not None
    assert withdrawal.created_at.tzinfo is UTC
    assert withdrawal.created_at == local
    assert withdrawal.created_at.hour == 12
    async with engine.connect() as connection:
        raw = (await connection.execute(select(withdrawals.c.created_at))).scalar_one()
    assert raw.tzinfo is UTC

    async with uow() as u:
        with pytest.raises(StatementError, match="timezone-aware"):
            await u.withdrawals.add(_withdrawal("wd_naive", at=datetime(2025, 1, 1)))
