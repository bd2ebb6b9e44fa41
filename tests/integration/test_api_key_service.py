"""API keys as the service makes them: scopes a restricted key may hold, signing public keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.domain.access import ALL_SCOPES, Scope
from sluice.errors import InvalidRequestError
from sluice.queue.memory import MemoryQueue
from sluice.request_signing import parse_public_key, public_key_text
from sluice.services.api_keys import ApiKeyService
from sluice.testing.fakes import FakeClock


@pytest.fixture
def uow(engine: AsyncEngine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine, MemoryQueue())


async def test_a_key_restricted_to_users_cannot_be_made_with_admin(
    uow: SqlUnitOfWorkFactory,
) -> None:
    async with uow() as u:
        with pytest.raises(InvalidRequestError, match="admin"):
            await ApiKeyService(FakeClock()).create(
                u, name="bob", scopes=ALL_SCOPES, user_ids=["bob"]
            )
        assert await u.api_keys.all() == []


async def test_a_signing_key_stores_only_the_public_key_and_must_sign(
    uow: SqlUnitOfWorkFactory,
) -> None:
    private = Ed25519PrivateKey.generate()
    service = ApiKeyService(FakeClock())
    async with uow() as u:
        token, made = await service.create(
            u,
            name="signed",
            scopes=[Scope.WITHDRAWALS_READ],
            signing_public_key=public_key_text(private),
        )
        await u.commit()
    async with uow() as u:
        stored = await service.verify(u, token)
    assert stored == made
    assert stored.require_signature
    assert stored.signing_public_key == parse_public_key(public_key_text(private))


async def test_a_malformed_signing_key_is_refused_with_the_reason(
    uow: SqlUnitOfWorkFactory,
) -> None:
    async with uow() as u:
        with pytest.raises(InvalidRequestError, match="signing public key"):
            await ApiKeyService(FakeClock()).create(
                u, name="x", scopes=[Scope.WITHDRAWALS_READ], signing_public_key="nope"
            )


async def test_a_key_cannot_be_restricted_to_a_user_the_api_would_refuse(
    uow: SqlUnitOfWorkFactory,
) -> None:
    async with uow() as u:
        with pytest.raises(InvalidRequestError, match="a/b"):
            await ApiKeyService(FakeClock()).create(
                u, name="x", scopes=[Scope.WITHDRAWALS_READ], user_ids=["alice", "a/b"]
            )
