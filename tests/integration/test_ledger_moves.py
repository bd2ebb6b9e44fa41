"""Many ledger moves at once (`move_many`), as a batch settles them: same rules, fewer statements.

Runs on SQLite and, in `make test`'s second pass, on PostgreSQL, where concurrent settlements of
the same balances in opposite orders must not deadlock.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.tables import ledger_entries
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.domain.addresses import Address
from sluice.domain.amounts import MAX_BASE_UNITS
from sluice.domain.assets import Asset
from sluice.domain.ledger import Balance, EntryKind
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.errors import InsufficientFundsError
from sluice.queue.memory import MemoryQueue
from sluice.services.ledger import Move, move_funds, move_many

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NET = "testnet"
COIN = Asset(network=NET, symbol="ETH", decimals=18)
TOKEN = Asset(
    network=NET,
    symbol="DEMO",
    decimals=6,
    token_address=Address("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
)
DEST = Address("0x90F79bf6EB2c4f870365E785982E1f101E93b906")


class _Clock:
    def now(self) -> datetime:
        return T0


CLOCK = _Clock()


@pytest.fixture
def uow(engine: AsyncEngine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine, MemoryQueue())


async def _hold(uow: SqlUnitOfWorkFactory, user: str, asset: Asset, credit: int, held: int) -> None:
    async with uow() as u:
        await move_funds(
            u,
            user_id=user,
            asset=asset,
            kind=EntryKind.CREDIT,
            amount=credit,
            clock=CLOCK,
            reference=f"deposit-{user}-{asset.key}",
        )
        if held:
            await move_funds(
                u, user_id=user, asset=asset, kind=EntryKind.HOLD, amount=held, clock=CLOCK
            )
        await u.commit()


async def test_move_many_applies_every_rule_once_and_journals_each(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await _hold(uow, "bob", COIN, 1_000, 600)
    await _hold(uow, "alice", COIN, 500, 300)
    await _hold(uow, "alice", TOKEN, MAX_BASE_UNITS, MAX_BASE_UNITS - 1)
    moves = [
        Move("bob", COIN, EntryKind.SETTLE, 100, "w-1"),
        Move("alice", TOKEN, EntryKind.SETTLE, MAX_BASE_UNITS - 2, "w-2"),
        Move("bob", COIN, EntryKind.RELEASE, 200, "w-3"),  # a second move on one balance
        Move("alice", COIN, EntryKind.SETTLE, 300, "w-4"),
        Move("carol", COIN, EntryKind.CREDIT, 7, "w-5"),  # no row yet: created one by one
    ]
    async with uow() as u:
        await move_many(u, moves, clock=CLOCK)
        await u.commit()

    async with uow() as u:
        assert await u.ledger.balance("bob", NET, COIN.key) == Balance(600, 300)
        assert await u.ledger.balance("alice", NET, COIN.key) == Balance(200, 0)
        assert await u.ledger.balance("alice", NET, TOKEN.key) == Balance(1, 1)
        assert await u.ledger.balance("carol", NET, COIN.key) == Balance(7, 0)
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(
                    ledger_entries.c.withdrawal_id, ledger_entries.c.kind, ledger_entries.c.amount
                )
                .where(ledger_entries.c.withdrawal_id.is_not(None))
                .order_by(ledger_entries.c.withdrawal_id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("w-1", "settle", 100),
        ("w-2", "settle", MAX_BASE_UNITS - 2),
        ("w-3", "release", 200),
        ("w-4", "settle", 300),
        ("w-5", "credit", 7),
    ]


async def test_move_many_refuses_a_move_beyond_the_hold_and_moves_nothing(
    uow: SqlUnitOfWorkFactory,
) -> None:
    await _hold(uow, "bob", COIN, 1_000, 100)
    await _hold(uow, "alice", COIN, 1_000, 0)
    beyond_the_hold = [
        Move("alice", COIN, EntryKind.HOLD, 10, "w-1"),
        Move("bob", COIN, EntryKind.SETTLE, 101, "w-2"),
    ]
    beyond_the_balance = [
        Move("alice", COIN, EntryKind.HOLD, 1_001, "w-3"),
        Move("bob", COIN, EntryKind.SETTLE, 1, "w-4"),
    ]
    async with uow() as u:
        with pytest.raises(ValueError, match="more than is held"):
            await move_many(u, beyond_the_hold, clock=CLOCK)
    async with uow() as u:
        with pytest.raises(InsufficientFundsError):
            await move_many(u, beyond_the_balance, clock=CLOCK)
    async with uow() as u:
        assert await u.ledger.balance("alice", NET, COIN.key) == Balance(1_000, 0)
        assert await u.ledger.balance("bob", NET, COIN.key) == Balance(900, 100)


async def test_concurrent_settlements_of_the_same_balances_in_any_order_all_commit(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    """Each settlement names the same users in its own order; balances are locked in one global
    order, so on PostgreSQL none waits for another in a cycle (a deadlock would raise here)."""
    users = [f"user-{i:02d}" for i in range(12)]
    rounds = 16
    for user in users:
        await _hold(uow, user, COIN, 10 * rounds, 10 * rounds)
    shuffle = random.Random(7)  # noqa: S311  # test data, not a secret

    async def settle(round_: int) -> None:
        order = users[:]
        shuffle.shuffle(order)
        async with uow() as u:
            await move_many(
                u,
                [Move(user, COIN, EntryKind.SETTLE, 10, f"w-{round_}-{user}") for user in order],
                clock=CLOCK,
            )
            await asyncio.sleep(0.01)  # hold the locks while the others queue behind them
            await u.commit()

    await asyncio.gather(*(settle(r) for r in range(rounds)))
    async with uow() as u:
        for user in users:
            assert await u.ledger.balance(user, NET, COIN.key) == Balance(0, 0)
    async with engine.connect() as connection:
        settled = (
            await connection.execute(
                select(func.count()).where(ledger_entries.c.kind == EntryKind.SETTLE.value)
            )
        ).scalar_one()
    assert settled == len(users) * rounds


async def test_save_many_writes_each_withdrawals_fields(uow: SqlUnitOfWorkFactory) -> None:
    made = [
        Withdrawal(
            id=f"w-{i}",
            user_id="alice",
            network=NET,
            asset_key=COIN.key,
            token_address=None,
            amount=MAX_BASE_UNITS - i,
            to_address=DEST,
            status=WithdrawalStatus.VALIDATING,
            created_at=T0,
            updated_at=T0,
            fingerprint="f" * 64,
            request_id=f"req-{i}",
        )
        for i in range(3)
    ]
    async with uow() as u:
        for withdrawal in made:
            assert await u.withdrawals.add(withdrawal)
        await u.commit()
    for i, withdrawal in enumerate(made):
        withdrawal.status = WithdrawalStatus.SIGNED
        withdrawal.transaction_hash = f"0x{i:064x}"
        withdrawal.fee_paid = 21_000 * (i + 1)
        withdrawal.waiting_reason = None if i else "waiting"
        withdrawal.unbatched = i == 2
    async with uow() as u:
        await u.withdrawals.save_many(made[:2])
        await u.withdrawals.save_many(made[2:])  # one alone takes the single path
        await u.commit()
    async with uow() as u:
        for i, withdrawal in enumerate(made):
            read = await u.withdrawals.get(withdrawal.id)
            assert read is not None
            assert (read.status, read.transaction_hash, read.fee_paid, read.unbatched) == (
                WithdrawalStatus.SIGNED,
                f"0x{i:064x}",
                21_000 * (i + 1),
                i == 2,
            )
            assert read.waiting_reason == (None if i else "waiting")
            assert read.amount == MAX_BASE_UNITS - i
