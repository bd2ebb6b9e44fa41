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
