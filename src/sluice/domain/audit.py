"""The audit log: who did what, when, from where, with what before and after.

Append-only and tamper-evident: every entry carries the hash of the one before it, and its own
hash covers its fields and that link. Editing, removing or reordering a stored entry breaks the
chain at that entry (`first_break`), which ``sluice audit verify`` reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: The link of the first entry: the hash of nothing before it.
GENESIS = "0" * 64

#: JSON values an entry's ``before``, ``after`` and ``detail`` may hold.
Snapshot = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an operator (by their key), a platform's service key, the command line or
    Sluice itself."""

    kind: str
    """``operator``, ``service_key``, ``cli`` or ``system``."""
    id: str
    """The operator's id, the key's id, the local user's name, or the component's name."""
    api_key_id: str | None = None
    """The API key the request was made with, if any."""
    address: str | None = None
    """The client address the request came from, if any."""

    @property
    def label(self) -> str:
        """``kind:id``: how the log names the actor."""
        return f"{self.kind}:{self.id}"


SYSTEM = Actor("system", "sluice")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What an action appends to the log (the chain fields are added by the log)."""

    actor: Actor
    action: str
    """Dotted, past tense: ``operator.created``, ``withdrawal.approved``, ``policy.loaded``."""
    subject: str
    """What the action was on: ``withdrawal:wd_…``, ``operator:op_…``, ``network:base``."""
    at: datetime
    before: Snapshot | None = None
    after: Snapshot | None = None
    detail: Snapshot | None = None
    """Anything else worth keeping (a reason, a count)."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What `SqlAuditLog.page` selects; every field set narrows it."""

    actor: str | None = None
    """``kind:id`` (`Actor.label`)."""
    action: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One stored entry: a record, its place in the chain, and the hashes that bind it."""

    seq: int
    record: AuditRecord
    prev_hash: str
    hash: str


def canonical(seq: int, record: AuditRecord, prev_hash: str) -> bytes:
    """The bytes an entry's hash covers: its fields as sorted, compact JSON."""
    actor = record.actor
    body = {
        "seq": seq,
        "at": record.at.astimezone(UTC).isoformat(),
        "actor": actor.label,
        "apiKeyId": actor.api_key_id,
        "address": actor.address,
        "action": record.action,
        "subject": record.subject,
        "before": record.before,
        "after": record.after,
        "detail": record.detail,
        "prev": prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def plain(snapshot: Snapshot | None) -> dict[str, Any] | None:
    """A snapshot as the JSON it is stored as (timestamps and decimals become strings), so the
    hash computed before storing is the one recomputed after reading it back."""
    if snapshot is None:
        return None
    result: dict[str, Any] = json.loads(json.dumps(snapshot, default=str))
    return result


def chain(seq: int, record: AuditRecord, prev_hash: str) -> AuditEntry:
    """The entry that appends ``record`` after an entry whose hash is ``prev_hash``."""
    digest = hashlib.sha256(canonical(seq, record, prev_hash)).hexdigest()
    return AuditEntry(seq=seq, record=record, prev_hash=prev_hash, hash=digest)


@dataclass(frozen=True, slots=True)
class Break:
    """Where and how the chain is broken."""

    seq: int
    reason: str


class ChainCheck:
    """Checks entries fed to it in ``seq`` order, one at a time (a log too large to hold)."""

    def __init__(self) -> None:
        self.count = 0
        self.broken: Break | None = None
        self._seq, self._prev = 1, GENESIS

    def feed(self, entry: AuditEntry) -> bool:
        """Check the next entry; False once the chain is broken (`broken` says where)."""
        if self.broken is not None:
            return False
        self.count += 1
        if entry.seq != self._seq:
            self.broken = Break(self._seq, f"entry {self._seq} is missing (next is {entry.seq})")
        elif entry.prev_hash != self._prev:
            self.broken = Break(entry.seq, "its link does not match the hash of the entry before")
        elif chain(entry.seq, entry.record, entry.prev_hash).hash != entry.hash:
            self.broken = Break(entry.seq, "its contents do not match its hash (edited)")
        else:
            self._seq, self._prev = entry.seq + 1, entry.hash
        return self.broken is None

    def finish(self, head: tuple[int, str] | None = None) -> Break | None:
        """The first break, or None if the chain is whole. ``head``: the (seq, hash) the log
        recorded as its last append; a chain that ends before it lost its newest entries."""
        if self.broken is None and head is not None and head != (self._seq - 1, self._prev):
            last = self._seq - 1
            self.broken = Break(
                last + 1, f"the log ends at entry {last}; entries up to {head[0]} were written"
            )
        return self.broken


def first_break(
    entries: Iterable[AuditEntry], *, head: tuple[int, str] | None = None
) -> Break | None:
    """The first entry, in ``seq`` order, that does not follow from the ones before; None if the
    chain is whole (see `ChainCheck`)."""
    check = ChainCheck()
    for entry in entries:
        if not check.feed(entry):
            break
    return check.finish(head)
