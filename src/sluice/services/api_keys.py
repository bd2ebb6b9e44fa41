"""API keys: made once, shown once, stored as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from sluice.domain.access import ApiKey, Scope, is_user_id, parse_ip_ranges
from sluice.errors import InvalidRequestError, UnauthorizedError
from sluice.ports import Clock, UnitOfWork
from sluice.request_signing import SigningKeyError, parse_public_key

PREFIX = "sluice"


def hash_secret(secret: str) -> str:
    """SHA-256 of a key's secret part.

    A fast hash is right here: the secret is 256 random bits, not a password, so there is nothing
    for a slow hash to protect against and a fast one keeps authentication cheap.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyService:
    """Create, verify, list and revoke API keys."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def create(
        self,
        uow: UnitOfWork,
        *,
        name: str,
        scopes: Iterable[Scope],
        user_ids: Iterable[str] | None = None,
        ip_ranges: Iterable[str] = (),
        signing_public_key: str | None = None,
        rate_limit_per_s: int | None = None,
        operator_id: str | None = None,
    ) -> tuple[str, ApiKey]:
        """Make a key. The returned token is the only copy of its secret.

        Args:
            user_ids: Restrict the key to these users (None: every user).
            ip_ranges: Restrict the key to requests from these CIDR ranges (empty: anywhere).
            signing_public_key: The caller's Ed25519 public key (PEM, or its 32 bytes in base64
                or hex): every request must then be signed with the private key, which Sluice
                never sees (`sluice.request_signing`).
            rate_limit_per_s: Requests a second (None: the deployment's default; 0: none).
            operator_id: The operator whose own key this is (None: a service key).

        Returns:
            The token to hand to the caller (``sluice_<id>_<secret>``) and the stored key.

        Raises:
            InvalidRequestError: An IP range or the public key is malformed, the user list is
                empty, or a key restricted to users asks for ``admin``.
        """
        users = None if user_ids is None else frozenset(user_ids)
        scopes = frozenset(scopes)
        if users is not None and not users:
            raise InvalidRequestError("a key restricted to users needs at least one")
        if users is not None and (bad := sorted(u for u in users if not is_user_id(u))):
            raise InvalidRequestError(
                f"not a user id the API accepts: {bad[0]!r} (1-128 of A-Z a-z 0-9 _ . : @ -,"
                " starting with a letter or digit)"
            )
        if users is not None and Scope.ADMIN in scopes:
            # Admin work spans every user (credits, dead letters, any withdrawal's cancel).
            raise InvalidRequestError("a key restricted to users cannot hold the admin scope")
        try:
            public_key = (
                None if signing_public_key is None else parse_public_key(signing_public_key)
            )
        except SigningKeyError as exc:
            raise InvalidRequestError(f"invalid signing public key: {exc}") from None
        try:
            ranges = parse_ip_ranges(tuple(ip_ranges))
        except ValueError as exc:
            raise InvalidRequestError(f"invalid IP range: {exc}") from None
        if rate_limit_per_s is not None and rate_limit_per_s < 0:
            raise InvalidRequestError("a rate limit is a number of requests a second, at least 0")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            id=key_id,
            name=name,
            scopes=scopes,
            secret_hash=hash_secret(secret),
            created_at=self._clock.now(),
            user_ids=users,
            ip_ranges=ranges,
            require_signature=public_key is not None,
            rate_limit_per_s=rate_limit_per_s,
            signing_public_key=public_key,
            operator_id=operator_id,
        )
        await uow.api_keys.add(key)
        return f"{PREFIX}_{key_id}_{secret}", key

    async def verify(self, uow: UnitOfWork, token: str) -> ApiKey:
        """The live key a token belongs to.

        Raises:
            UnauthorizedError: Malformed, unknown, wrong secret, or revoked.
        """
        prefix, _, rest = token.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not key_id or not secret:
            raise UnauthorizedError("invalid API key")
        key = await uow.api_keys.get(key_id)
        # Compare in constant time even when the key is unknown, so timing tells nothing.
        expected = key.secret_hash if key is not None else hash_secret("")
        if not hmac.compare_digest(expected, hash_secret(secret)) or key is None:
            raise UnauthorizedError("invalid API key")
        if key.revoked_at is not None:
            raise UnauthorizedError("invalid API key")
        return key

    async def revoke(self, uow: UnitOfWork, key_id: str) -> bool:
        """Revoke a key; False if there was no such live key."""
        return await uow.api_keys.revoke(key_id, self._clock.now())
