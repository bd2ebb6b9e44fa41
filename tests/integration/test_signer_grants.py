"""The signer's grant book: one row per signature and withdrawal it pays (migration 0011), on the
session's backend; a book taken back to 0010 and up again keeps its grants."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.engine import alembic_config, create_engine, migrate
from sluice.db.tables import signer_grants
from sluice.keyholder.grants import Grant, SqlGrantRepository

AT = datetime(2026, 12, 1, tzinfo=UTC)
HASH = "0x" + "ab" * 32
WALLET = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def _grant(withdrawal_id: str, *, tx_hash: str = HASH, nonce: int = 3) -> Grant:
    return Grant(
        hash=tx_hash,
        withdrawal_id=withdrawal_id,
        network="devnet",
        wallet=WALLET,
        nonce=nonce,
        transaction_id="tx_1",
        at=AT,
    )


async def test_one_signature_is_granted_once_for_each_withdrawal_it_pays(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        book = SqlGrantRepository(connection)
        for withdrawal_id in ("wd_1", "wd_2", "wd_3"):
            await book.add(_grant(withdrawal_id))

    async with engine.connect() as connection:
        book = SqlGrantRepository(connection)
        assert [g.withdrawal_id for g in await book.for_withdrawal("wd_2")] == ["wd_2"]
        assert await book.for_withdrawal("wd_1") == [_grant("wd_1")]


async def test_the_same_grant_twice_is_refused(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await SqlGrantRepository(connection).add(_grant("wd_1"))

    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await SqlGrantRepository(connection).add(_grant("wd_1"))


async def test_a_book_from_before_0011_keeps_its_grants(database_url: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0010")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(signer_grants).values(
                    hash=HASH,
                    withdrawal_id="wd_old",
                    network="devnet",
                    wallet=WALLET,
                    nonce=1,
                    transaction_id="tx_old",
                    at=AT - timedelta(days=1),
                )
            )
        await migrate(database_url)
        async with engine.begin() as connection:
            book = SqlGrantRepository(connection)
            await book.add(_grant("wd_new"))  # the same signature, another withdrawal
            (old,) = await book.for_withdrawal("wd_old")
        assert (old.hash, old.nonce, old.transaction_id) == (HASH, 1, "tx_old")
    finally:
        await engine.dispose()
