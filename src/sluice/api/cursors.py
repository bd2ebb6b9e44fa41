"""Opaque page cursors: a client passes `nextCursor` back as it got it, and never parses it.

A cursor is base64url (no padding) of a small JSON object: the last row's ``seq`` and, for a
listing ordered by update time, its ``updatedAt``. Opaque so the encoding can change without
breaking clients; not signed, because a forged cursor can only move the forger's own listing
(authorization filters every page).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from sluice.errors import InvalidRequestError
from sluice.services.withdrawals import PagePosition

_MAX_SEQ = 2**63 - 1


def encode(position: PagePosition) -> str:
    """The cursor of a page position."""
    fields: dict[str, object] = {"s": position.seq}
    if position.updated_at is not None:
        fields["u"] = position.updated_at.astimezone(UTC).isoformat()
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(cursor: str) -> PagePosition:
    """The page position a cursor stands for.

    Raises:
        InvalidRequestError: Not a cursor this API made (field ``cursor`` in the query).
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fields = json.loads(raw)
        seq = fields["s"]
        updated = fields.get("u")
        if type(seq) is not int or not 0 <= seq <= _MAX_SEQ:
            raise ValueError("seq")
        at = None if updated is None else datetime.fromisoformat(updated)
        if at is not None and at.tzinfo is None:
            raise ValueError("naive time")
        at = None if at is None else at.astimezone(UTC)
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError, OverflowError):
        raise InvalidRequestError(
            "cursor is not one this API returned: pass `nextCursor` back unchanged",
            field="cursor",
            location="query",
        ) from None
    return PagePosition(seq, at)
