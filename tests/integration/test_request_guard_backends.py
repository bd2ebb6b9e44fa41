"""Rate limits and replay protection: shared by every API process through Redis, and per
process (never failing a request) while Redis is down."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.cache.request_guards import MemoryRequestGuard, RedisRequestGuard
from sluice.testing.redis_server import RedisServer, redis_server_binary


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    with RedisServer(tmp_path) as server:
        yield server


async def _at_start_of_a_second() -> None:
    await asyncio.sleep(1 - time.time() % 1)


async def test_two_api_processes_share_one_limit_and_one_replay_memory(
    redis_server: RedisServer,
) -> None:
    first, second = RedisRequestGuard(redis_server.url), RedisRequestGuard(redis_server.url)
    try:
        await _at_start_of_a_second()
        waits = [await g.hit("key-1", 3) for g in (first, second, first, second)]
        assert waits[:3] == [None, None, None]
        assert waits[3] is not None
        assert 0 < waits[3] <= 1
        assert await second.hit("key-2", 3) is None, "per key"

        assert await first.first_use("key-1:abc", 60)
        assert not await second.first_use("key-1:abc", 60), "a replay through another process"
    finally:
        await first.close()
        await second.close()


async def test_with_redis_down_each_process_limits_on_its_own_and_nothing_fails(
    redis_server: RedisServer,
) -> None:
    guard = RedisRequestGuard(redis_server.url, backoff_s=60, timeout_s=0.2)
    try:
        redis_server.stop()
        await _at_start_of_a_second()
        assert await guard.hit("key-1", 2) is None
        assert await guard.hit("key-1", 2) is None
        assert await guard.hit("key-1", 2) is not None
        assert await guard.first_use("sig", 60)
        assert not await guard.first_use("sig", 60)
    finally:
        await guard.close()


async def test_the_memory_guard_forgets_tokens_when_they_expire() -> None:
    guard = MemoryRequestGuard()
    assert await guard.first_use("a", 0.05)
    assert not await guard.first_use("a", 0.05)
    await asyncio.sleep(0.06)
    assert await guard.first_use("a", 0.05), "expired: a new use"
