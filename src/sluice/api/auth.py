"""Bearer API keys with scopes, checked per route."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sluice.bootstrap import Container
from sluice.domain.access import ApiKey, Scope
from sluice.errors import ForbiddenError, UnauthorizedError

_bearer = HTTPBearer(auto_error=False, description="An API key made with `sluice apikey create`")

#: Seconds a verified key is trusted without reading the database again; revocation takes effect
#: within this time.
CACHE_TTL_S = 5.0


class KeyCache:
    """Verified keys by token digest, for a few seconds, so a request costs no key lookup."""

    def __init__(self, ttl_s: float = CACHE_TTL_S, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: dict[str, tuple[float, ApiKey]] = {}

    def get(self, digest: str) -> ApiKey | None:
        """A cached key, if still fresh."""
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, key: ApiKey) -> None:
        """Remember a verified key."""
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + self._ttl_s, key)


def container_of(request: Request) -> Container:
    """The process's container, stored on the app at start-up."""
    container: Container = request.app.state.container
    return container


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The API key behind the request's bearer token.

    Raises:
        UnauthorizedError: No token, or not a live key.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise UnauthorizedError("an API key is required: Authorization: Bearer <key>")
    token = credentials.credentials
    digest = hashlib.sha256(token.encode()).hexdigest()
    cache: KeyCache = request.app.state.key_cache
    key = cache.get(digest)
    if key is None:
        container = container_of(request)
        async with container.uow() as uow:
            key = await container.api_keys.verify(uow, token)
        cache.put(digest, key)
    return key


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that admits only keys carrying ``scope``."""

    async def dependency(key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
        if not key.allows(scope):
            raise ForbiddenError(f"this API key lacks the {scope.value!r} scope")
        return key

    return dependency
