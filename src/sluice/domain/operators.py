"""Operators: the people who run Sluice, and what each role may do."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime


class Role(enum.StrEnum):
    """What an operator may do; each role may do what the ones before it may."""

    VIEWER = "viewer"
    """Read everything operators see: withdrawals, approvals, audit, policy."""
    APPROVER = "approver"
    """Also approve and reject withdrawals waiting for approval."""
    ADMIN = "admin"
    """Also manage operators, keys, policy, networks (pause, resume) and the blocklist."""

    @property
    def rank(self) -> int:
        """Its place in viewer < approver < admin."""
        return list(Role).index(self)

    def covers(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        return self.rank >= needed.rank


#: An operator's name: what they log in with and what the audit log shows beside their id.
NAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)


def is_operator_name(text: str) -> bool:
    """Whether ``text`` is a valid operator name (lower case, `NAME_PATTERN`)."""
    return _NAME.match(text) is not None


@dataclass(frozen=True, slots=True)
class Operator:
    """A person with a role."""

    id: str
    name: str
    role: Role
    created_at: datetime
    disabled: bool = False

    def may(self, needed: Role) -> bool:
        """Whether the operator is enabled and their role covers ``needed``."""
        return not self.disabled and self.role.covers(needed)
