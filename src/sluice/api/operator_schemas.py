"""Bodies of the operator and audit routes (camelCase on the wire, as everywhere)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, StrictBool, StrictStr

from sluice.api.schemas import _In, _Out
from sluice.domain.audit import AuditEntry
from sluice.domain.operators import NAME_PATTERN, Operator, Role


class OperatorCreate(_In):
    """A new operator."""

    name: StrictStr = Field(pattern=NAME_PATTERN, examples=["alice"])
    role: Role = Field(examples=["approver"])


class OperatorChange(_In):
    """What to change; fields left out stay."""

    role: Role | None = None
    disabled: StrictBool | None = None


class OperatorOut(_Out):
    """An operator."""

    id: str
    name: str
    role: Role
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, operator: Operator) -> OperatorOut:
        """The wire form of an operator."""
        return cls(
            id=operator.id,
            name=operator.name,
            role=operator.role,
            disabled=operator.disabled,
            created_at=operator.created_at,
        )


class OperatorWithKey(OperatorOut):
    """A new operator and their first API key, shown this once."""

    api_key: str


class OperatorKeyOut(_Out):
    """A new API key of an operator, shown this once."""

    api_key: str


class AuditEntryOut(_Out):
    """One audit log entry, with the hashes that chain it."""

    seq: int
    at: datetime
    actor: str = Field(description="`operator:<id>`, `service_key:<id>`, `cli:<user>`, `system:…`")
    api_key_id: str | None
    address: str | None
    action: str
    subject: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: dict[str, Any] | None
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        """The wire form of an entry."""
        record = entry.record
        return cls(
            seq=entry.seq,
            at=record.at,
            actor=record.actor.label,
            api_key_id=record.actor.api_key_id,
            address=record.actor.address,
            action=record.action,
            subject=record.subject,
            before=None if record.before is None else dict(record.before),
            after=None if record.after is None else dict(record.after),
            detail=None if record.detail is None else dict(record.detail),
            prev_hash=entry.prev_hash,
            hash=entry.hash,
        )


class AuditPage(_Out):
    """A page of audit entries, newest first."""

    items: list[AuditEntryOut]
    next_cursor: str | None
