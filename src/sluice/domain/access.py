"""API keys and the scopes they carry."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Scope(enum.StrEnum):
    """What an API key may do."""

    WITHDRAWALS_WRITE = "withdrawals:write"
    """Request and cancel withdrawals."""
    WITHDRAWALS_READ = "withdrawals:read"
    """Read withdrawals, their history, and user balances."""
    ADMIN = "admin"
    """Credit ledgers, manage dead letters and keys."""


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key: only a hash of its secret is kept."""

    id: str
    name: str
    scopes: frozenset[Scope]
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        """Whether the key is live and carries ``scope``."""
        return self.revoked_at is None and scope in self.scopes
