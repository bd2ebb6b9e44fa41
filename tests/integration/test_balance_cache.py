"""The Redis balance cache: served while current, never stale after a change, never in the way."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sluice.cache.redis_balances import RedisBalanceCache
from sluice.devnet.anvil import free_port
from sluice.domain.ledger import Balance
from sluice.testing.redis_server import RedisServer, redis_server_binary

ROWS = [("anvil", "native", Balance(5, 1))]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    with RedisServer(tmp_path) as server:
        yield server


@pytest.fixture
async def cache(redis_server: RedisServer) -> AsyncIterator[RedisBalanceCache]:
    cache = RedisBalanceCache(redis_server.url, backoff_s=0.2)
    try:
        yield cache
    finally:
        await cache.close()


async def test_a_value_read_at_the_current_generation_is_served(cache: RedisBalanceCache) -> None:
    assert await cache.get("u1") is None
    generation = await cache.generation("u1")
    assert generation == "0"
    await cache.put("u1", generation, ROWS)
    assert await cache.get("u1") == ROWS


async def test_a_ledger_change_makes_the_cached_value_stale(cache: RedisBalanceCache) -> None:
    await cache.put("u1", "0", ROWS)
    await cache.invalidate({"u1"})
    assert await cache.get("u1") is None


async def test_a_value_read_before_a_change_is_never_stored_after_it(
    cache: RedisBalanceCache,
) -> None:
    generation = await cache.generation("u1")  # a reader starts...
    assert generation is not None
    await cache.invalidate({"u1"})  # ...a writer commits and invalidates...
    await cache.put("u1", generation, ROWS)  # ...the reader stores what it read before
    assert await cache.get("u1") is None


async def test_users_do_not_share_entries(cache: RedisBalanceCache) -> None:
    await cache.put("u1", "0", ROWS)
    await cache.invalidate({"u2"})
    assert await cache.get("u1") == ROWS
    assert await cache.get("u2") is None


async def test_a_stopped_redis_turns_every_operation_into_a_miss(
    redis_server: RedisServer, cache: RedisBalanceCache
) -> None:
    await cache.put("u1", "0", ROWS)
    redis_server.stop()
    assert await cache.get("u1") is None
    assert not cache.available, "it steps aside instead of timing out on every request"
    assert await cache.generation("u1") is None
    await cache.put("u1", "0", ROWS)
    await cache.invalidate({"u1"})
    with pytest.raises(Exception):  # noqa: B017, PT011 - any connection error: /ready reports it
        await cache.ping()


async def test_an_unreachable_redis_never_raises_from_reads() -> None:
    cache = RedisBalanceCache(f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    try:
        assert await cache.get("u1") is None
    finally:
        await cache.close()
