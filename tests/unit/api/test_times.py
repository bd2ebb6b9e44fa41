"""Times in query parameters: RFC 3339 with a zone, read into UTC, anything else a clear 422."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sluice.api.times import parse_rfc3339
from sluice.errors import InvalidRequestError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-02T10:00:00Z", datetime(2026, 12, 2, 10, tzinfo=UTC)),
        ("2026-12-02t10:00:00z", datetime(2026, 12, 2, 10, tzinfo=UTC)),
        ("2026-12-02 11:00:00+01:00", datetime(2026, 12, 2, 10, tzinfo=UTC)),
        ("2026-12-02T10:00:00.5Z", datetime(2026, 12, 2, 10, 0, 0, 500000, tzinfo=UTC)),
        (
            "2026-12-02T10:00:00.123456789Z",  # Go's RFC3339Nano: cut to microseconds
            datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC),
        ),
    ],
)
def test_an_rfc_3339_time_reads_as_utc(text: str, expected: datetime) -> None:
    at = parse_rfc3339(text, field="updatedSince")
    assert at == expected
    assert at.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "0.5",
        "1796200000",
        "2026-12-02",
        "2026-12-02T10:00:00",
        "yesterday",
        "2026-13-02T10:00:00Z",
        "9999-12-31T23:59:59-23:59",  # past year 9999 in UTC
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    ],
)
def test_anything_else_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_rfc3339(text, field="updatedSince")
    assert (caught.value.field, caught.value.location) == ("updatedSince", "query")
