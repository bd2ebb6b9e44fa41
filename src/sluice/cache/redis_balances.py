"""User balances cached in Redis, invalidated by generation counters.

Reads of `GET /v1/users/{id}/balances` are served from here; the balance check behind every hold
reads the database under a lock and never looks at this cache.

Correctness without locks: each user has a generation counter. Every committed ledger change
increments it (`invalidate`). A reader takes the generation *before* reading the database and
stores its result tagged with that generation, but only if the counter has not moved meanwhile
(a Lua compare-and-set); a cached value counts only while its tag equals the current counter.
So a value read before a change can never be served after it. Entries also expire after
`ttl_s`, which bounds staleness if an invalidation is lost (Redis down at that moment).

Redis being down never fails a request: every error is logged, and the cache steps aside for
`backoff_s` so a dead Redis costs no timeouts per request.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import structlog

from sluice import optional
from sluice.domain.ledger import Balance

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger(__name__)

BalanceRows = list[tuple[str, str, Balance]]

# KEYS[1] value, KEYS[2] generation; ARGV[1] expected generation, ARGV[2] value, ARGV[3] ttl (s)
_PUT_IF_CURRENT = """
if (redis.call('GET', KEYS[2]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""

#: Generation counters outlive any value tagged with them.
_GENERATION_TTL_S = 86_400


class RedisBalanceCache:
    """Cache-aside for per-user balances."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "sluice",
        ttl_s: int = 30,
        backoff_s: float = 5.0,
        timeout_s: float = 0.5,
    ) -> None:
        # The redis extra, imported only when the cache is configured (sluice.optional).
        with optional.importing("redis", needed_by="SLUICE_REDIS_URL (the balance cache)"):
            from redis.asyncio import Redis  # noqa: PLC0415 - optional extra, see above
            from redis.exceptions import RedisError  # noqa: PLC0415 - same

        self._redis: Redis = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        self._redis_error: type[Exception] = RedisError
        self._ns = namespace
        self._ttl_s = ttl_s
        self._backoff_s = backoff_s
        self._down_until = 0.0
        self._put = self._redis.register_script(_PUT_IF_CURRENT)

    def _keys(self, user_id: str) -> tuple[str, str]:
        # One hash tag per user keeps both keys in one cluster slot, as the script needs.
        return f"{self._ns}:bal:{{{user_id}}}", f"{self._ns}:balgen:{{{user_id}}}"

    @property
    def available(self) -> bool:
        """False while stepping aside after an error."""
        return time.monotonic() >= self._down_until

    def _failed(self, what: str, exc: Exception) -> None:
        self._down_until = time.monotonic() + self._backoff_s
        log.warning("balance cache unavailable", operation=what, error=type(exc).__name__)

    async def generation(self, user_id: str) -> str | None:
        """The user's current generation, or None if the cache is unavailable."""
        if not self.available:
            return None
        try:
            value = await self._redis.get(self._keys(user_id)[1])
        except self._redis_error as exc:
            self._failed("generation", exc)
            return None
        return "0" if value is None else str(value)

    async def get(self, user_id: str) -> BalanceRows | None:
        """Cached balances if present and current; None on a miss or when unavailable."""
        if not self.available:
            return None
        try:
            value, generation = await self._redis.mget(self._keys(user_id))
        except self._redis_error as exc:
            self._failed("get", exc)
            return None
        if value is None:
            return None
        entry = json.loads(value)
        if entry["generation"] != (str(generation) if generation is not None else "0"):
            return None
        return [(n, a, Balance(int(av), int(h))) for n, a, av, h in entry["balances"]]

    async def put(self, user_id: str, generation: str, balances: BalanceRows) -> None:
        """Store balances read at ``generation``, unless a change has happened since."""
        if not self.available:
            return
        entry = {
            "generation": generation,
            "balances": [(n, a, str(b.available), str(b.held)) for n, a, b in balances],
        }
        try:
            await self._put(
                keys=list(self._keys(user_id)), args=[generation, json.dumps(entry), self._ttl_s]
            )
        except self._redis_error as exc:
            self._failed("put", exc)

    async def invalidate(self, user_ids: set[str]) -> None:
        """Make every cached value of these users stale (after their ledger changed)."""
        if not user_ids:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    generation_key = self._keys(user_id)[1]
                    pipe.incr(generation_key)
                    pipe.expire(generation_key, _GENERATION_TTL_S)
                await pipe.execute()
        except self._redis_error as exc:
            # Entries of these users may now be served until they expire (ttl_s).
            self._failed("invalidate", exc)

    async def ping(self) -> None:
        """Raise if Redis does not answer."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
