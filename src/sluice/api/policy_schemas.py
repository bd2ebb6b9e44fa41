"""Bodies of the policy, blocklist and address book routes (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictStr

from sluice.api.schemas import AddressText, NetworkName, _In, _Out
from sluice.domain.address_lists import Blocked, BookEntry
from sluice.domain.policy import StoredPolicy


class PolicyVersionOut(_Out):
    """A loaded policy file."""

    version: str = Field(description="SHA-256 of the file's bytes")
    label: str
    loaded_at: datetime
    loaded_by: str = Field(description="The actor: `operator:<id>`, `cli:<user>`, `system:sluice`")

    @classmethod
    def of(cls, stored: StoredPolicy) -> PolicyVersionOut:
        """The wire form of a stored policy, without its text."""
        return cls(
            version=stored.version,
            label=stored.label,
            loaded_at=stored.loaded_at,
            loaded_by=stored.loaded_by,
        )


class PolicyOut(PolicyVersionOut):
    """The policy in force, with its text."""

    body: str = Field(description="The policy file as loaded (TOML)")

    @classmethod
    def of(cls, stored: StoredPolicy) -> PolicyOut:
        """The wire form of a stored policy, with its text."""
        return cls(
            version=stored.version,
            label=stored.label,
            loaded_at=stored.loaded_at,
            loaded_by=stored.loaded_by,
            body=stored.body,
        )


class PolicyReloadOut(_Out):
    """What a reload did."""

    version: str
    label: str
    changed: bool = Field(description="False: that version was in force already")


class BlocklistAdd(_In):
    """Addresses to block."""

    addresses: Annotated[list[AddressText], Field(min_length=1, max_length=1_000)]
    """At most 1,000 a request (the body limit); a longer list: `sluice blocklist import`."""
    source: Annotated[StrictStr, Field(min_length=1, max_length=64)] = "api"
    reason: Annotated[StrictStr, Field(max_length=500)] | None = None


class BlocklistAdded(_Out):
    """How many of the addresses were new on the blocklist."""

    added: int
    received: int


class BlockedOut(_Out):
    """A blocklisted address."""

    address: str
    source: str
    reason: str | None
    added_at: datetime

    @classmethod
    def of(cls, entry: Blocked) -> BlockedOut:
        """The wire form of a blocklist entry."""
        return cls(
            address=entry.address, source=entry.source, reason=entry.reason, added_at=entry.added_at
        )


class AddressBookCreate(_In):
    """An address to add to a user's address book."""

    network: NetworkName
    address: AddressText
    label: Annotated[StrictStr, Field(max_length=128)] | None = None


class AddressBookEntryOut(_Out):
    """An address in a user's address book."""

    network: str
    address: str
    label: str | None
    added_at: datetime = Field(description="The cool-down of the policy counts from here")

    @classmethod
    def of(cls, entry: BookEntry) -> AddressBookEntryOut:
        """The wire form of an address book entry."""
        return cls(
            network=entry.network, address=entry.address, label=entry.label, added_at=entry.added_at
        )
