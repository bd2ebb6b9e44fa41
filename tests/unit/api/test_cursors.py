"""Opaque page cursors: what the API hands out, it takes back; anything else is a clear 422."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from sluice.api import cursors
from sluice.errors import InvalidRequestError
from sluice.services.withdrawals import PagePosition

AT = datetime(2026, 12, 2, 10, 15, 30, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "position",
    [PagePosition(42), PagePosition(2**63 - 1), PagePosition(7, AT)],
    ids=["seq", "largest-seq", "seq-and-time"],
)
def test_a_cursor_decodes_to_the_position_it_was_made_from(position: PagePosition) -> None:
    cursor = cursors.encode(position)
    assert cursors.decode(cursor) == position
    assert "=" not in cursor, "safe in a query string as is"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "123",
        "!!!",
        _b64(b"not json"),
        _b64(b"[1, 2]"),
        _b64(b'{"s": "12"}'),
        _b64(b'{"s": -1}'),
        _b64(b'{"s": true}'),
        _b64(b'{"s": 1.5}'),
        _b64(b'{"s": 99999999999999999999}'),
        _b64(b'{"s": 1, "u": "yesterday"}'),
        _b64(b'{"s": 1, "u": "2026-12-02T10:15:30"}'),
        _b64(b"\xff\xfe"),
        _b64(b'{"s": 1, "u": "0001-01-01T00:00:00+01:00"}'),
    ],
)
def test_anything_else_is_refused_naming_the_cursor_parameter(cursor: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        cursors.decode(cursor)
    assert (caught.value.field, caught.value.location) == ("cursor", "query")
