"""A withdrawal and the statuses it moves through.

    PENDING ──► VALIDATING ──────────────► SIGNED ──► BROADCASTING ◄──► CONFIRMING ──► COMPLETED
     │   │        │    ▲    ▲                             │   (re-org)      │
     │   │        ▼    │    └── nonce taken by another ───┘                 ├──► FAILED (reverted)
     │   │   PENDING_APPROVAL (reserved) ──► FAILED                         └──► CANCELLED (no-op
     ▼   ▼        ▼                          (rejected)                          replacement mined)
  FAILED  CANCELLED ◄── (also from VALIDATING)

PENDING → FAILED: refused at validation (insufficient funds, a refused address, a policy
denial). VALIDATING → PENDING_APPROVAL: the policy wants operators' approval (funds held).
VALIDATING → FAILED: paying the destination reverts (``destination_reverts``); the hold is
released.

Funds are held from VALIDATING on. A caller can cancel only before signing: once a nonce carries
the payload, that payload may reach the chain, and only the transaction engine decides its fate.
An operator can ask the engine to cancel a broadcast withdrawal: it sends a no-op at the same
nonce, and whichever of the two is mined decides (COMPLETED or CANCELLED, never both).

BROADCASTING → VALIDATING happens only when the hot wallet's nonce was used, at a final block, by
a transaction that is none of this withdrawal's attempts: then none of them can ever be mined,
and the withdrawal is signed again with a new nonce (its funds stay held throughout).
CONFIRMING → BROADCASTING is a re-org that removed the block the transaction was mined in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sluice.domain.addresses import Address
from sluice.domain.fees import FeeLevel
from sluice.errors import InvalidStateError

#: What an event records beside its status change: hashes, fees in wei (decimal strings),
#: and integers for counts and positions (nonce, attempt, blockNumber).
EventData = Mapping[str, str | int]


class WithdrawalStatus(enum.StrEnum):
    """Where a withdrawal is in its life."""

    PENDING = "PENDING"
    """Accepted and stored; waiting for validation. No funds held yet."""
    VALIDATING = "VALIDATING"
    """Validated and funds held; waiting for the signer."""
    PENDING_APPROVAL = "PENDING_APPROVAL"
    """Funds held; waiting for operators to approve (the policy asked for it, docs/policy.md):
    on to VALIDATING at the quorum, FAILED when rejected or expired."""
    SIGNED = "SIGNED"
    """Carried by a signed, stored transaction with its nonce; not yet known to be sent."""
    BROADCASTING = "BROADCASTING"
    """Its transaction was sent (or may have been); waiting for it to be mined."""
    CONFIRMING = "CONFIRMING"
    """Mined; waiting for the network's finality (confirmation depth or the finalized tag)."""
    COMPLETED = "COMPLETED"
    """Paid: mined successfully and confirmed; the hold is settled. Final."""
    FAILED = "FAILED"
    """Not paid, with an error code; any hold is released. Final."""
    CANCELLED = "CANCELLED"
    """Not paid, by request: cancelled before signing, or a no-op replacement was mined in its
    place; any hold is released. Final."""

    @property
    def is_final(self) -> bool:
        """Whether nothing can happen to the withdrawal any more."""
        return self in FINAL_STATUSES

    @property
    def holds_funds(self) -> bool:
        """Whether the withdrawal's amount is held in the user's ledger in this status."""
        return self in HOLDING_STATUSES


S = WithdrawalStatus

FINAL_STATUSES = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
HOLDING_STATUSES = frozenset(
    {S.VALIDATING, S.PENDING_APPROVAL, S.SIGNED, S.BROADCASTING, S.CONFIRMING}
)

#: Every allowed move; anything else is refused.
TRANSITIONS: dict[WithdrawalStatus, frozenset[WithdrawalStatus]] = {
    S.PENDING: frozenset({S.VALIDATING, S.FAILED, S.CANCELLED}),
    S.VALIDATING: frozenset({S.SIGNED, S.PENDING_APPROVAL, S.CANCELLED, S.FAILED}),
    S.PENDING_APPROVAL: frozenset({S.VALIDATING, S.FAILED, S.CANCELLED}),
    S.SIGNED: frozenset({S.BROADCASTING}),
    S.BROADCASTING: frozenset({S.CONFIRMING, S.COMPLETED, S.FAILED, S.CANCELLED, S.VALIDATING}),
    # CONFIRMING → VALIDATING: a batch carrying it reverted; it is paid again on its own.
    S.CONFIRMING: frozenset({S.BROADCASTING, S.COMPLETED, S.FAILED, S.CANCELLED, S.VALIDATING}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

#: Statuses from which a caller may cancel.
CANCELLABLE = frozenset({S.PENDING, S.VALIDATING, S.PENDING_APPROVAL})

#: Statuses in which an operator may ask the engine to cancel (a no-op replacement).
ENGINE_CANCELLABLE = frozenset({S.SIGNED, S.BROADCASTING})


def ensure_transition(current: WithdrawalStatus, target: WithdrawalStatus) -> None:
    """Raise unless ``current → target`` is an allowed move.

    Raises:
        InvalidStateError: The move is not in `TRANSITIONS`.
    """
    if target not in TRANSITIONS[current]:
        raise InvalidStateError(f"a {current} withdrawal cannot become {target}")


class ErrorCode(enum.StrEnum):
    """Why a withdrawal FAILED."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    """The user's available balance did not cover the amount."""
    INVALID_ADDRESS = "invalid_address"
    """The destination was refused at validation."""
    REVERTED = "reverted"
    """The transaction was mined but reverted; nothing was paid."""
    DESTINATION_REVERTS = "destination_reverts"
    """Paying the destination reverts (a contract that refuses the coin, a token that refuses
    the recipient): the estimate before signing said so; nothing was signed or paid."""
    REJECTED = "rejected"
    """A node refused the signed payout for good (a gas limit, fee or chain id it can never
    accept); a no-op took its nonce; nothing was paid."""
    TOKEN_TRANSFER_FAILED = "token_transfer_failed"  # noqa: S105 - an error code, not a secret
    """The transaction succeeded but the token recorded no transfer to the destination (its
    ``transfer`` returned false): nothing was paid."""
    APPROVAL_EXPIRED = "approval_expired"
    """Not approved by enough operators before the policy's ``expire_after``; the hold is
    released. (An operator's rejection ends a withdrawal FAILED ``rejected``.)"""
    PAYMENT_NOT_FOUND = "payment_not_found"
    """The batch transaction carrying it succeeded, but its receipt holds no ``Paid`` event of
    the batch contract for this withdrawal's position: nothing was paid to it."""


@dataclass(slots=True)
class Withdrawal:
    """A request to pay ``amount`` base units of an asset from the hot wallet to ``to_address``."""

    id: str
    user_id: str
    network: str
    asset_key: str
    token_address: Address | None
    amount: int
    to_address: Address
    status: WithdrawalStatus
    created_at: datetime
    updated_at: datetime
    fingerprint: str
    request_id: str | None = None
    transaction_id: str | None = None
    transaction_hash: str | None = None
    block_number: int | None = None
    error: str | None = None
    error_code: str | None = None
    seq: int | None = None
    waiting_reason: str | None = None
    """Why it is not moving on right now (an empty hot wallet, too much in flight), if so."""
    priority: FeeLevel | None = None
    """The fee level it asked for (None: the network's default)."""
    fee_paid: int | None = None
    """What its transaction paid for gas, in wei of the network's coin, once mined (the
    receipt's figure, or its share of a batch's; None before, and again after a re-org removes
    the block)."""
    unbatched: bool = False
    """Paid by a transaction of its own from now on, never in a batch: its destination costs
    more in a batch, or a batch carrying it reverted."""
    fee: int = 0
    """The withdrawal fee in base units of its asset, set at intake by the policy: held with
    the amount, credited to the fee account when the withdrawal completes, released with the
    amount when it fails or is cancelled."""
    api_key_id: str | None = None
    """The API key that asked for it (policy rules may name keys)."""
    policy_version: str | None = None
    """The version (SHA-256) of the policy that decided it, once decided."""
    policy_rule: str | None = None
    """The rule of that policy that decided it (``default``, ``blocklist``)."""
    approval_expires_at: datetime | None = None
    """When its wait for approval ends in FAILED ``approval_expired``, while it waits."""

    @property
    def held(self) -> int:
        """What its hold is, in base units: the amount and the fee."""
        return self.amount + self.fee


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One entry of a withdrawal's status history."""

    withdrawal_id: str
    from_status: WithdrawalStatus | None
    to_status: WithdrawalStatus
    at: datetime
    reason: str
    error_code: str | None = None
    request_id: str | None = None
    data: EventData | None = None


def move(
    withdrawal: Withdrawal,
    target: WithdrawalStatus,
    *,
    at: datetime,
    reason: str,
    error_code: str | None = None,
    data: EventData | None = None,
) -> StatusChange:
    """Move a withdrawal to ``target`` in place and return the history entry for it.

    Raises:
        InvalidStateError: The move is not allowed.
    """
    ensure_transition(withdrawal.status, target)
    change = StatusChange(
        withdrawal_id=withdrawal.id,
        from_status=withdrawal.status,
        to_status=target,
        at=at,
        reason=reason,
        error_code=error_code,
        request_id=withdrawal.request_id,
        data=data,
    )
    withdrawal.status = target
    withdrawal.updated_at = at
    if target is S.FAILED:
        withdrawal.error = reason
        withdrawal.error_code = error_code
    return change


def note(
    withdrawal: Withdrawal, *, at: datetime, reason: str, data: EventData | None = None
) -> StatusChange:
    """A history entry for something that happened without a change of status.

    A replacement at higher fees, a re-send, a wait for the hot wallet: each is recorded so the
    history shows every attempt a withdrawal went through.
    """
    withdrawal.updated_at = at
    return StatusChange(
        withdrawal_id=withdrawal.id,
        from_status=withdrawal.status,
        to_status=withdrawal.status,
        at=at,
        reason=reason,
        request_id=withdrawal.request_id,
        data=data,
    )
