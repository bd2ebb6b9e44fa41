"""Times in query parameters and cursors: RFC 3339, read strictly, always in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sluice.errors import InvalidRequestError

_RFC_3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(\.\d{1,12})?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(text: str, *, field: str, location: str = "query") -> datetime:
    """A time as RFC 3339 writes it, with its zone, in UTC (fractions past microseconds cut).

    Not a number, not a date alone, not a time without its zone, nothing that leaves the years
    1-9999 once in UTC.

    Raises:
        InvalidRequestError: Anything else, naming ``field``.
    """
    match = _RFC_3339.match(text)
    try:
        if match is None:
            raise ValueError(text)
        whole, fraction, zone = match.groups()
        zone = "+00:00" if zone in ("Z", "z") else zone
        at = datetime.fromisoformat(whole.replace("t", "T") + (fraction or "")[:7] + zone)
        return at.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequestError(
            f"{field} is a time in RFC 3339 with its zone, e.g. 2026-12-02T10:00:00Z",
            field=field,
            location=location,
        ) from None
