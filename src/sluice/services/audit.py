"""Reading and checking the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.domain.audit import Break, ChainCheck
from sluice.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class Verification:
    """What `verify` found: how many entries it read, and the first break, if any."""

    entries: int
    broken: Break | None


async def verify(uow: UnitOfWork) -> Verification:
    """Walk the whole log, oldest first, and find the first entry that does not follow from the
    ones before it (edited, removed, reordered), or a log that ends before its recorded head."""
    head = await uow.audit.head()
    check = ChainCheck()
    async for entry in uow.audit.walk():
        if not check.feed(entry):
            break
    return Verification(entries=check.count, broken=check.finish(head))
