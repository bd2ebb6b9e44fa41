"""What a change of a transaction causes: history entries, ledger moves and engine events.

The transaction aggregate (`sluice.domain.transaction.ChainTransaction`) decides; a service
records what it decided, in one database transaction, in one place
(`sluice.services.engine.record`). Later consumers of these effects (webhooks, an audit trail)
plug in there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from sluice.domain.ledger import EntryKind
from sluice.domain.withdrawal import StatusChange, Withdrawal


class EngineEvent(enum.StrEnum):
    """Something that happened to a transaction that operators count (a metric label)."""

    SENT = "sent"
    MINED = "mined"
    REORGED = "reorged"
    SETTLED = "settled"
    SUPERSEDED = "superseded"
    REPLACED = "replaced"
    RESENT = "resent"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_SENT = "cancel_sent"
    REFUSED = "refused"
    GAP_FILLED = "gap_filled"


@dataclass(frozen=True, slots=True)
class LedgerMove:
    """One ledger rule to apply to the user of a withdrawal."""

    withdrawal: Withdrawal
    kind: EntryKind
    amount: int


@dataclass(slots=True)
class Effects:
    """Everything one transition caused, for the service to record."""

    changes: list[StatusChange] = field(default_factory=list)
    """History entries; each names a withdrawal the transition changed (save it)."""
    moves: list[LedgerMove] = field(default_factory=list)
    events: list[EngineEvent] = field(default_factory=list)
    resign: list[str] = field(default_factory=list)
    """Withdrawals to sign again (their transaction can never be mined)."""
    outcome: tuple[str | None] | None = None
    """Set when the transaction is settled: the hash of the mined attempt (None: none was)."""

    def __bool__(self) -> bool:
        return bool(self.changes or self.moves or self.events or self.resign or self.outcome)

    def extend(self, other: Effects) -> Effects:
        """Add another transition's effects to these (in order) and return self."""
        self.changes.extend(other.changes)
        self.moves.extend(other.moves)
        self.events.extend(other.events)
        self.resign.extend(other.resign)
        if other.outcome is not None:
            self.outcome = other.outcome
        return self
