"""Queue job names and their payloads: ids only; the handler re-reads the row."""

from __future__ import annotations

VALIDATE = "withdrawal.validate"
"""Check a PENDING withdrawal and hold its funds. Payload ``{"withdrawalId"}``."""
SIGN = "withdrawal.sign"
"""Assign a nonce to a VALIDATING withdrawal, sign and store its transaction.
Payload ``{"withdrawalId"}``."""
BROADCAST = "transaction.broadcast"
"""Send a SIGNED transaction's stored attempt. Payload ``{"transactionId"}``."""
CONFIRM = "transaction.confirm"
"""Follow a BROADCAST transaction to its receipt and depth. Payload ``{"transactionId"}``."""

ALL = (VALIDATE, SIGN, BROADCAST, CONFIRM)

STAGES_LANE = "stages"
INTAKE_LANE = "intake"
LANES: tuple[tuple[str, frozenset[str]], ...] = (
    (STAGES_LANE, frozenset({CONFIRM, BROADCAST, SIGN})),
    (INTAKE_LANE, frozenset({VALIDATE})),
)
"""Queue lanes, highest priority first: (name, jobs). A worker takes from a lane only when every
lane above it has nothing ready, so work already started (signing, broadcasting, confirming) is
finished before new withdrawals are validated and funds held for them; under overload intake
waits instead of starving the later stages. The first lane is the queue the URL names (what
held every job before lanes), so messages queued by an older version are still drained, first.
Jobs no lane names go to the last lane."""
