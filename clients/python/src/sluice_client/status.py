"""A withdrawal's status, and the fee level it is paid at."""

from __future__ import annotations

import enum

__all__ = ["FeeLevel", "WithdrawalStatus"]


class WithdrawalStatus(enum.StrEnum):
    """Where a withdrawal is (docs/api.md, "Withdrawals"). A `str`: compares equal to its name."""

    #: Accepted, waiting for validation; funds not held yet.
    PENDING = "PENDING"
    #: Validated and funds held; waiting for the signer (see ``waiting_reason``).
    VALIDATING = "VALIDATING"
    #: Reserved for the policy engine; funds held.
    PENDING_APPROVAL = "PENDING_APPROVAL"
    #: Signed and stored with its nonce.
    SIGNED = "SIGNED"
    #: Sent (or possibly sent); waiting to be mined.
    BROADCASTING = "BROADCASTING"
    #: Mined; waiting for finality (a re-org sends it back to BROADCASTING).
    CONFIRMING = "CONFIRMING"
    #: Mined with status 1, and final: paid.
    COMPLETED = "COMPLETED"
    #: Not paid; ``error_code`` says why (``insufficient_funds``, ``reverted`` …); funds released.
    FAILED = "FAILED"
    #: Cancelled before signing, or an operator's no-op replacement was mined; funds released.
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        """Whether it can change no more (COMPLETED, FAILED or CANCELLED)."""
        return self in _FINAL

    @property
    def is_cancellable(self) -> bool:
        """Whether a client's `cancel_withdrawal` is still allowed (before signing)."""
        return self in _CANCELLABLE


_FINAL = frozenset(
    {WithdrawalStatus.COMPLETED, WithdrawalStatus.FAILED, WithdrawalStatus.CANCELLED}
)
_CANCELLABLE = frozenset(
    {WithdrawalStatus.PENDING, WithdrawalStatus.VALIDATING, WithdrawalStatus.PENDING_APPROVAL}
)


class FeeLevel(enum.StrEnum):
    """How urgently a withdrawal's transaction should be included: its ``priority`` (docs/api.md,
    "Withdrawals"). A `str`: compares equal to its value. What each level pays now is in
    `Network.fee_levels`; a network's default is `Network.default_priority`."""

    #: Cheaper, and slower to be included.
    SLOW = "slow"
    #: The usual default.
    NORMAL = "normal"
    #: Dearer, and included sooner.
    FAST = "fast"
