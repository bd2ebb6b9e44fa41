"""Rate limits and replay protection for API keys: in process, or shared through Redis.

Rate limits are fixed one-second windows per key: simple, cheap (one `INCR` per request), and at
worst twice the limit across a window boundary, which is what a per-second limit is for.

Redis being down never fails a request: the Redis guard falls back to the in-process one (each
API process then limits and remembers on its own), logs it, and tries Redis again after
`backoff_s`. Replay protection then holds per process only; with one API process, or sticky
routing, nothing changes.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import structlog

from sluice import optional

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger(__name__)


class MemoryRequestGuard:
    """A `sluice.ports.RequestGuard` in this process's memory."""

    def __init__(self, *, max_tokens: int = 100_000) -> None:
        self._windows: dict[str, tuple[int, int]] = {}
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max_tokens = max_tokens

    async def hit(self, key_id: str, limit_per_s: int) -> float | None:
        """Count a request in the current second's window."""
        now = time.time()
        second = int(now)
        window, count = self._windows.get(key_id, (second, 0))
        if window != second:
            window, count = second, 0
        count += 1
        self._windows[key_id] = (window, count)
        if count > limit_per_s:
            return max(0.001, second + 1 - now)
        return None

    async def first_use(self, token: str, ttl_s: float) -> bool:
        """Remember a token until it expires (the oldest are forgotten first past the cap)."""
        now = time.monotonic()
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now and len(self._seen) < self._max_tokens:
                break
            del self._seen[oldest]
        if token in self._seen:
            return False
        self._seen[token] = now + ttl_s
        return True


class RedisRequestGuard:
    """A `sluice.ports.RequestGuard` shared by every API process through Redis."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "sluice",
        backoff_s: float = 5.0,
        timeout_s: float = 0.5,
    ) -> None:
        # The redis extra, imported only when Redis is configured (sluice.optional).
        with optional.importing("redis", needed_by="SLUICE_REDIS_URL (the shared request guard)"):
            from redis.asyncio import Redis  # noqa: PLC0415 - optional extra, see above
            from redis.exceptions import RedisError  # noqa: PLC0415 - same

        self._redis: Redis = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        self._unavailable: tuple[type[Exception], ...] = (RedisError, OSError)
        self._ns = namespace
        self._backoff_s = backoff_s
        self._down_until = 0.0
        self._fallback = MemoryRequestGuard()

    async def hit(self, key_id: str, limit_per_s: int) -> float | None:
        """`INCR` the key's counter for this second (expiring with it)."""
        if self._down():
            return await self._fallback.hit(key_id, limit_per_s)
        now = time.time()
        second = int(now)
        name = f"{self._ns}:rate:{key_id}:{second}"
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(name)
                pipe.expire(name, 2)
                count, _ = await pipe.execute()
        except self._unavailable:
            self._went_down()
            return await self._fallback.hit(key_id, limit_per_s)
        if int(count) > limit_per_s:
            return max(0.001, second + 1 - now)
        return None

    async def first_use(self, token: str, ttl_s: float) -> bool:
        """`SET NX` with the token's lifetime."""
        if self._down():
            return await self._fallback.first_use(token, ttl_s)
        try:
            created = await self._redis.set(
                f"{self._ns}:replay:{token}", "1", nx=True, ex=max(1, math.ceil(ttl_s))
            )
        except self._unavailable:
            self._went_down()
            return await self._fallback.first_use(token, ttl_s)
        return bool(created)

    async def close(self) -> None:
        """Release the connection pool."""
        await self._redis.aclose()

    def _down(self) -> bool:
        return time.monotonic() < self._down_until

    def _went_down(self) -> None:
        self._down_until = time.monotonic() + self._backoff_s
        log.warning("redis unavailable for rate limits and replay protection; per process now")
