"""Address lists: each user's address book, and the global blocklist."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime

from sluice.domain.addresses import Address, parse_address
from sluice.errors import InvalidRequestError


@dataclass(frozen=True, slots=True)
class BookEntry:
    """An address in a user's address book."""

    user_id: str
    network: str
    address: Address
    label: str | None
    added_at: datetime


@dataclass(frozen=True, slots=True)
class Blocked:
    """A blocklisted address."""

    address: Address
    source: str
    reason: str | None
    added_at: datetime


_ANY_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}(?![0-9a-fA-F])")


def parse_lines(text: str) -> list[Address]:
    """A blocklist file of one address per line; blank lines and ``#`` comments are skipped.
    Any letter case is taken (lists are often lower case, which carries no checksum).

    Raises:
        InvalidRequestError: A line that is not an address (``field`` is ``line N``).
    """
    found: list[Address] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not _ANY_ADDRESS.fullmatch(entry):
            raise InvalidRequestError(
                f"line {number}: not an EVM address: {entry[:60]!r}", field=f"line {number}"
            )
        found.append(parse_address(entry.lower()))
    return found


def parse_csv(text: str) -> list[Address]:
    """Every EVM address in a CSV file, in any column: a sanctions list such as OFAC's SDN
    file names them inside its remarks (``Digital Currency Address - ETH 0x…;``)."""
    found: dict[Address, None] = {}
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            for match in _ANY_ADDRESS.findall(cell):
                found.setdefault(parse_address(match.lower()))
    return list(found)
