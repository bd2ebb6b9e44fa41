"""Operators: made, changed and given keys, each change in the audit log."""

from __future__ import annotations

from dataclasses import asdict

from sluice.domain.access import Scope
from sluice.domain.audit import Actor, AuditRecord
from sluice.domain.operators import Operator, Role, is_operator_name
from sluice.errors import (
    AlreadyExistsError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
)
from sluice.ports import Clock, UnitOfWork
from sluice.services.api_keys import ApiKeyService
from sluice.services.ids import new_id

#: What an operator's own key may do beside operator work: read withdrawals; an admin's also
#: does a service key's admin work (credits, dead letters, cancels, keys).
SCOPES_BY_ROLE: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.WITHDRAWALS_READ}),
    Role.APPROVER: frozenset({Scope.WITHDRAWALS_READ}),
    Role.ADMIN: frozenset({Scope.WITHDRAWALS_READ, Scope.ADMIN}),
}


def snapshot(operator: Operator) -> dict[str, object]:
    """What the audit log keeps of an operator."""
    return {k: v for k, v in asdict(operator).items() if k != "created_at"}


class OperatorService:
    """Create, change and list operators; give them keys."""

    def __init__(self, api_keys: ApiKeyService, clock: Clock) -> None:
        self._keys = api_keys
        self._clock = clock

    async def create(
        self, uow: UnitOfWork, *, name: str, role: Role, actor: Actor
    ) -> tuple[Operator, str]:
        """A new operator and their first API key's token (its only copy).

        Raises:
            InvalidRequestError: The name is not a valid operator name (field ``name``).
            AlreadyExistsError: An operator has that name.
        """
        if not is_operator_name(name):
            raise InvalidRequestError(
                f"not an operator name: {name!r} (1-64 of a-z 0-9 . _ @ -, starting with a"
                " letter or digit)",
                field="name",
            )
        operator = Operator(id=new_id("op"), name=name, role=role, created_at=self._clock.now())
        if not await uow.operators.add(operator):
            raise AlreadyExistsError(f"an operator named {name!r} exists")
        token = await self._key(uow, operator, actor)
        await uow.audit.append(
            AuditRecord(
                actor=actor,
                action="operator.created",
                subject=f"operator:{operator.id}",
                at=operator.created_at,
                after=snapshot(operator),
            )
        )
        return operator, token

    async def change(
        self,
        uow: UnitOfWork,
        operator_id: str,
        *,
        actor: Actor,
        role: Role | None = None,
        disabled: bool | None = None,
    ) -> Operator:
        """Change an operator's role or disabled flag (a disabled operator's keys stop working
        for operator work at once and for everything else within the key cache's seconds).

        Raises:
            NotFoundError: No such operator.
            InvalidStateError: It would leave no enabled admin.
        """
        before = await self._get(uow, operator_id, lock=True)
        after = Operator(
            id=before.id,
            name=before.name,
            role=before.role if role is None else role,
            created_at=before.created_at,
            disabled=before.disabled if disabled is None else disabled,
        )
        if after == before:
            return before
        if before.may(Role.ADMIN) and not after.may(Role.ADMIN):
            admins = [o for o in await uow.operators.all() if o.may(Role.ADMIN)]
            if len(admins) <= 1:
                raise InvalidStateError(
                    f"{before.name!r} is the last enabled admin: make another admin first"
                )
        now = self._clock.now()
        await uow.operators.save(after, now)
        if after.role != before.role or after.disabled:
            # A key carries its scopes: an operator's keys follow their role, and a disabled
            # operator's keys are revoked.
            for key in await uow.api_keys.all():
                if key.operator_id == after.id and key.revoked_at is None:
                    await uow.api_keys.revoke(key.id, now)
            if not after.disabled:
                await self._key(uow, after, actor)
        await uow.audit.append(
            AuditRecord(
                actor=actor,
                action="operator.changed",
                subject=f"operator:{after.id}",
                at=now,
                before=snapshot(before),
                after=snapshot(after),
            )
        )
        return after

    async def new_key(self, uow: UnitOfWork, operator_id: str, *, actor: Actor) -> str:
        """Another API key for an operator; its token.

        Raises:
            NotFoundError: No such operator.
            InvalidRequestError: The operator is disabled.
        """
        operator = await self._get(uow, operator_id)
        if operator.disabled:
            raise InvalidRequestError(f"operator {operator.name!r} is disabled")
        return await self._key(uow, operator, actor)

    async def _key(self, uow: UnitOfWork, operator: Operator, actor: Actor) -> str:
        token, key = await self._keys.create(
            uow,
            name=f"operator {operator.name}",
            scopes=SCOPES_BY_ROLE[operator.role],
            operator_id=operator.id,
        )
        await uow.audit.append(
            AuditRecord(
                actor=actor,
                action="api_key.created",
                subject=f"api_key:{key.id}",
                at=key.created_at,
                after={"operatorId": operator.id, "scopes": sorted(key.scopes)},
            )
        )
        return token

    async def _get(self, uow: UnitOfWork, operator_id: str, *, lock: bool = False) -> Operator:
        operator = await uow.operators.get(operator_id, lock=lock)
        if operator is None:
            operator = await uow.operators.by_name(operator_id)
        if operator is None:
            raise NotFoundError(f"operator {operator_id!r} does not exist")
        return operator
