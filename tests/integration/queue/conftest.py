"""Fixtures for the queue adapters against real services: the Redis on 127.0.0.1:6379."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379


def _redis_answers() -> bool:
    """Whether something on the Redis port answers PING like Redis (no client, no retries)."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1.0) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis; skipped when it is not running, except in CI, where that fails."""
    if not _redis_answers():
        message = f"Redis is not running on {REDIS_HOST}:{REDIS_PORT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
async def redis_admin(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client, for looking at (and tampering with) the keys directly."""
    client = Redis.from_url(redis_url, decode_responses=True, protocol=2)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_namespace(redis_admin: Redis) -> AsyncIterator[str]:
    """A namespace of this test's own; its keys are deleted afterwards."""
    namespace = f"sluice-test-{uuid.uuid4().hex}"
    try:
        yield namespace
    finally:
        keys = [key async for key in redis_admin.scan_iter(match=f"{namespace}:*")]
        if keys:
            await redis_admin.delete(*keys)
