"""Operators in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.db.tables import operators
from sluice.domain.operators import Operator, Role


def _operator(row: Any) -> Operator:
    return Operator(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        disabled=bool(row.disabled),
    )


class SqlOperatorRepository:
    """Operators within one database transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def add(self, operator: Operator) -> bool:
        """Store a new operator; False if the name is taken."""
        taken = (
            await self._c.execute(select(operators.c.id).where(operators.c.name == operator.name))
        ).first()
        if taken is not None:
            return False
        await self._c.execute(
            insert(operators).values(
                id=operator.id,
                name=operator.name,
                role=operator.role.value,
                disabled=operator.disabled,
                created_at=operator.created_at,
                updated_at=operator.created_at,
            )
        )
        return True

    async def get(self, operator_id: str, *, lock: bool = False) -> Operator | None:
        """An operator by id."""
        query = select(operators).where(operators.c.id == operator_id)
        row = (await self._c.execute(query.with_for_update() if lock else query)).first()
        return None if row is None else _operator(row)

    async def by_name(self, name: str) -> Operator | None:
        """An operator by name."""
        row = (await self._c.execute(select(operators).where(operators.c.name == name))).first()
        return None if row is None else _operator(row)

    async def all(self) -> list[Operator]:
        """Every operator, by name."""
        rows = await self._c.execute(select(operators).order_by(operators.c.name))
        return [_operator(row) for row in rows]

    async def save(self, operator: Operator, at: datetime) -> None:
        """Write an operator's role and disabled flag."""
        await self._c.execute(
            update(operators)
            .where(operators.c.id == operator.id)
            .values(role=operator.role.value, disabled=operator.disabled, updated_at=at)
        )
