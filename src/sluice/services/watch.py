"""Confirmation chains: each sent transaction is followed by one chain of `transaction.confirm`
jobs, identified by a token stored on the transaction and kept alive by a lease.

A job whose token is not the transaction's is stale and stops (`ConfirmationService.tracked`),
so starting a new chain (after a restart, or when the sweep finds a lapsed lease because the
queue lost the job) never leaves two chains polling one transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sluice.domain.transaction import ChainTransaction
from sluice.ports import UnitOfWork
from sluice.services import jobs
from sluice.services.ids import new_id

#: How long a confirmation chain's lease lasts beyond its next poll; a chain renews it when half
#: is left, and a lapsed one is taken over by the sweep (`sluice.services.recovery.sweep`).
WATCH_LEASE_S = 120.0


def start_watching(
    uow: UnitOfWork, transaction: ChainTransaction, *, now: datetime, poll_s: float
) -> None:
    """Give a sent transaction a new confirmation chain: a fresh token, a lease, and its first
    job. Any older chain following it finds its token stale and stops."""
    transaction.watch = new_id("w")
    transaction.watch_until = now + timedelta(seconds=poll_s + WATCH_LEASE_S)
    uow.enqueue(
        jobs.CONFIRM,
        {"transactionId": transaction.id, "watch": transaction.watch},
        delay_s=poll_s,
    )
