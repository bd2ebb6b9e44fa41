"""Approvals: operators' decisions on a withdrawal the policy sent for approval.

An approval names the revision of the withdrawal the approver saw: a digest of what they judged
(network, asset, amount, destination, fee). A withdrawal that differs from it refuses the
approval, so nobody approves something other than what they looked at. The quorum is of
distinct operators, each of at least the rule's role; nobody decides twice, nobody approves a
withdrawal asked for with their own key, and one rejection ends it.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime

from sluice.domain.withdrawal import Withdrawal


class Vote(enum.StrEnum):
    """An operator's decision."""

    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Approval:
    """One operator's decision on one withdrawal."""

    withdrawal_id: str
    operator_id: str
    vote: Vote
    revision: str
    at: datetime
    reason: str | None = None
    api_key_id: str | None = None
    address: str | None = None


def revision(withdrawal: Withdrawal) -> str:
    """The revision an approver sees: 16 hex digits of the SHA-256 of what they judge."""
    fields = (
        withdrawal.id,
        withdrawal.network,
        withdrawal.asset_key,
        str(withdrawal.amount),
        withdrawal.to_address,
        str(withdrawal.fee),
    )
    return hashlib.sha256("|".join(fields).encode()).hexdigest()[:16]
