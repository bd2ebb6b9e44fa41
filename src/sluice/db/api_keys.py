"""Stored API keys (hashes only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.db.tables import api_keys
from sluice.domain.access import ApiKey, Scope


def _to_key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        scopes=frozenset(Scope(s) for s in row.scopes.split(",") if s),
        secret_hash=row.secret_hash,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        user_ids=None if row.user_ids is None else frozenset(row.user_ids),
        ip_ranges=tuple(r for r in (row.ip_ranges or "").split(",") if r),
        require_signature=bool(row.require_signature),
        rate_limit_per_s=row.rate_limit_per_s,
        signing_public_key=(
            None if row.signing_public_key is None else bytes.fromhex(row.signing_public_key)
        ),
        operator_id=row.operator_id,
    )


class SqlApiKeyRepository:
    """API keys in SQL."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def add(self, key: ApiKey) -> None:
        await self._c.execute(
            insert(api_keys).values(
                id=key.id,
                name=key.name,
                scopes=",".join(sorted(key.scopes)),
                secret_hash=key.secret_hash,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
                user_ids=None if key.user_ids is None else sorted(key.user_ids),
                ip_ranges=",".join(key.ip_ranges) or None,
                require_signature=key.require_signature,
                rate_limit_per_s=key.rate_limit_per_s,
                signing_public_key=(
                    None if key.signing_public_key is None else key.signing_public_key.hex()
                ),
                operator_id=key.operator_id,
            )
        )

    async def get(self, key_id: str) -> ApiKey | None:
        row = (await self._c.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        return None if row is None else _to_key(row)

    async def all(self) -> list[ApiKey]:
        # The id breaks ties: PostgreSQL, unlike SQLite, returns equal keys in no set order.
        newest_first = (api_keys.c.created_at.desc(), api_keys.c.id.desc())
        rows = await self._c.execute(select(api_keys).order_by(*newest_first))
        return [_to_key(row) for row in rows]

    async def revoke(self, key_id: str, at: datetime) -> bool:
        result = await self._c.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(result.rowcount)
