"""Bearer API keys with scopes, checked per route."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.security import HTTPBearer

from sluice.bootstrap import Container
from sluice.domain.access import ApiKey, Scope
from sluice.domain.audit import Actor
from sluice.domain.operators import Operator, Role
from sluice.domain.withdrawal import Withdrawal
from sluice.errors import (
    ForbiddenError,
    InvalidSignatureError,
    NotFoundError,
    OperatorRequiredError,
    RateLimitedError,
    UnauthorizedError,
)
from sluice.request_signing import (
    NONCE_HEADER,
    NONCE_PATTERN,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    canonical_request,
    decode_signature,
    verify,
)

_DESCRIPTION = "An API key made with `sluice apikey create`"

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


async def authenticate(request: Request) -> ApiKey:
    """The API key behind the request's bearer token.

    Reads the ``Authorization`` header as `HTTPBearer` does (scheme case-insensitive).

    Raises:
        UnauthorizedError: No token, or not a live key.
    """
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    token = token.strip()
    if not token or scheme.lower() != "bearer":
        raise UnauthorizedError("an API key is required: Authorization: Bearer <key>")
    digest = hashlib.sha256(token.encode()).hexdigest()
    cache: KeyCache = request.app.state.key_cache
    key = cache.get(digest)
    if key is None:
        container = container_of(request)
        async with container.uow() as uow:
            key = await container.api_keys.verify(uow, token)
        cache.put(digest, key)
    return key


class _ScopedBearer(HTTPBearer):
    """One dependency that authenticates the bearer key and checks its scope.

    Being an `HTTPBearer`, it documents the same ``HTTPBearer`` security scheme in the OpenAPI
    schema as the plain `HTTPBearer` would; unlike a chain of dependencies (bearer →
    authenticate → scope check) FastAPI resolves it in one step.
    """

    def __init__(self, scope: Scope) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=_DESCRIPTION)
        self.scope = scope

    async def __call__(self, request: Request) -> ApiKey:  # type: ignore[override]
        key = await authenticate(request)
        if not key.allows(self.scope):
            raise ForbiddenError(f"this API key lacks the {self.scope.value!r} scope")
        if not key.admits(request.client.host if request.client else None):
            raise ForbiddenError("this API key may not be used from this address")
        container = container_of(request)
        settings = container.settings
        limit = key.rate_limit_per_s
        limit = settings.rate_limit_per_s if limit is None else limit
        if limit > 0:
            wait_s = await container.request_guard.hit(key.id, limit)
            if wait_s is not None:
                raise RateLimitedError(
                    f"this API key may make {limit} requests a second", retry_after_s=wait_s
                )
        if key.require_signature:
            await _check_signature(request, key, settings.signature_window_s)
        request.state.api_key = key
        return key


async def _check_signature(request: Request, key: ApiKey, window_s: float) -> None:
    """Verify ``X-Sluice-Signature`` (Ed25519 over `canonical_request`, with the key's public
    key), its time window, and that it is not a replay.

    The bearer token alone proves nothing here: the signature needs the caller's private key,
    which never travels and which Sluice never holds.

    Raises:
        InvalidSignatureError: Unsigned, stale, wrong, or seen before.
    """
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    nonce = request.headers.get(NONCE_HEADER, "")
    signature_text = request.headers.get(SIGNATURE_HEADER, "")
    if key.signing_public_key is None:
        # Made by a version that signed with HMAC keyed by the token's own secret, which a
        # leaked token defeats: such keys are refused until replaced.
        raise InvalidSignatureError(
            "this API key signs with HMAC, which is no longer accepted: make a new key with an"
            " Ed25519 public key (sluice apikey create --public-key)"
        )
    if not timestamp or not nonce or not signature_text:
        raise InvalidSignatureError(
            "this API key must sign its requests: "
            f"{TIMESTAMP_HEADER}, {NONCE_HEADER} and {SIGNATURE_HEADER}"
        )
    if not NONCE_PATTERN.match(nonce):
        raise InvalidSignatureError(f"{NONCE_HEADER} is 16-64 of A-Z a-z 0-9 _ -")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise InvalidSignatureError(f"{TIMESTAMP_HEADER} is Unix time in seconds")
    if abs(time.time() - int(timestamp)) > window_s:
        raise InvalidSignatureError(
            f"{TIMESTAMP_HEADER} is more than {window_s:g} s from the server's clock"
        )
    signature = decode_signature(signature_text)
    if signature is None:
        raise InvalidSignatureError(
            f"{SIGNATURE_HEADER} is the base64 of a 64-byte Ed25519 signature"
        )
    query = request.scope.get("query_string", b"")
    target = request.scope.get("raw_path", request.url.path.encode()) + (
        b"?" + query if query else b""
    )
    message = canonical_request(
        timestamp=timestamp,
        nonce=nonce,
        method=request.method,
        target=target,
        body=await request.body(),
    )
    if not verify(key.signing_public_key, message, signature):
        raise InvalidSignatureError("the request signature does not match")
    # A signature is remembered as long as its timestamp is acceptable, on either side of now.
    guard = container_of(request).request_guard
    if not await guard.first_use(f"{key.id}:{signature.hex()}", 2 * window_s):
        raise InvalidSignatureError("this signed request was sent before (a replay)")


def require(scope: Scope) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency that admits only keys carrying ``scope`` (from their allowed addresses)."""
    return _ScopedBearer(scope)


def ensure_user(request: Request, user_id: str) -> None:
    """Refuse a request naming a user its key may not act for (403).

    For a user named by the caller (in a body, a path or a query), whose id the caller knows.

    Raises:
        ForbiddenError: The key is restricted to other users.
    """
    key: ApiKey = request.state.api_key
    if not key.may_act_for(user_id):
        raise ForbiddenError(f"this API key may not act for user {user_id!r}")


def ensure_owner(request: Request, withdrawal: Withdrawal) -> None:
    """Answer as if a withdrawal of another user did not exist (404), so a key restricted to
    some users learns nothing about the others' withdrawals, not even that an id is taken.

    Raises:
        NotFoundError: The key may not act for the withdrawal's user.
    """
    key: ApiKey = request.state.api_key
    if not key.may_act_for(withdrawal.user_id):
        raise NotFoundError(f"withdrawal {withdrawal.id!r} does not exist")


class _OperatorBearer(HTTPBearer):
    """Admits only an operator's own key, of an enabled operator whose role covers ``role``.

    The operator is read on every request (operator work is rare), so disabling one or
    changing their role takes effect at once, whatever the key cache holds.
    """

    def __init__(self, role: Role) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=_DESCRIPTION)
        self.role = role

    async def __call__(self, request: Request) -> Operator:  # type: ignore[override]
        key = await authenticate(request)
        if not key.admits(request.client.host if request.client else None):
            raise ForbiddenError("this API key may not be used from this address")
        if key.operator_id is None:
            raise OperatorRequiredError(
                "this is operator work: use an operator's own API key (sluice operator create),"
                " not a service key"
            )
        container = container_of(request)
        async with container.uow() as uow:
            operator = await uow.operators.get(key.operator_id)
        if operator is None or operator.disabled:
            raise OperatorRequiredError("this operator is disabled")
        if not operator.may(self.role):
            raise OperatorRequiredError(
                f"this needs the {self.role.value!r} role; operator {operator.name!r} is"
                f" {operator.role.value!r}"
            )
        request.state.api_key = key
        request.state.operator = operator
        return operator


def require_operator(role: Role) -> Callable[[Request], Awaitable[Operator]]:
    """A dependency that admits only an enabled operator's own key whose role covers ``role``."""
    return _OperatorBearer(role)


def actor_of(request: Request) -> Actor:
    """Who makes this request, for the audit log: the operator (with the key and address they
    used) or the service key."""
    key: ApiKey = request.state.api_key
    address = request.client.host if request.client else None
    operator: Operator | None = getattr(request.state, "operator", None)
    if operator is not None:
        return Actor("operator", operator.id, api_key_id=key.id, address=address)
    if key.operator_id is not None:
        return Actor("operator", key.operator_id, api_key_id=key.id, address=address)
    return Actor("service_key", key.id, api_key_id=key.id, address=address)
