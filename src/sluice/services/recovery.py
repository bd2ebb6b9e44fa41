"""Re-create queued work from the database: at start-up, and whenever a job was lost.

The queue only carries work; the rows are the truth. Every non-final row maps to one job that
moves it on, and every job is idempotent, so enqueuing work that is queued already is harmless,
except for the jobs that re-schedule themselves (confirmation chains, which would then poll
twice): those are identified by a token on the transaction (`sluice.services.watch`), and a new
chain supersedes the old one.

- `recover` (at start-up) enqueues the next job of every unfinished row and starts a new
  confirmation chain for every sent transaction.
- `sweep` (every ``SLUICE_SWEEP_INTERVAL_S`` in each worker process) finds work whose job was
  lost while running, say a queue that restarted without its data: transactions whose
  confirmation chain's lease lapsed (a new chain at once), and withdrawals and signed
  transactions untouched for
  ``SLUICE_STALE_AFTER_S`` (their job enqueued again).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sluice.domain.transaction import FOLLOWED, TransactionStatus
from sluice.domain.withdrawal import WithdrawalStatus
from sluice.ports import UnitOfWork
from sluice.services import jobs
from sluice.services.watch import start_watching

#: Rows read per status on recovery; more than this many stuck rows is an incident, not a restart.
RECOVERY_LIMIT = 100_000
#: Rows untouched this long have lost their job (none stays queued this long unless the queue
#: holds a backlog of that age; a job enqueued twice then does its work once). The default of
#: ``SLUICE_STALE_AFTER_S``.
STALE_S = 600.0
#: Rows a sweep re-enqueues at most per status.
SWEEP_LIMIT = 500

PollInterval = Callable[[str], float]
"""A network's confirmation poll interval, by name."""


async def recover(uow: UnitOfWork, *, now: datetime, poll_s: PollInterval) -> dict[str, int]:
    """Enqueue the next job of every unfinished withdrawal and transaction.

    Returns:
        How many jobs of each kind were enqueued.
    """
    return await _requeue(uow, now=now, poll_s=poll_s, before=None, limit=RECOVERY_LIMIT)


async def sweep(
    uow: UnitOfWork, *, now: datetime, poll_s: PollInterval, stale_s: float = STALE_S
) -> dict[str, int]:
    """Enqueue again the work whose job was lost (see the module).

    Returns:
        How many jobs of each kind were enqueued.
    """
    counts = await _requeue(
        uow, now=now, poll_s=poll_s, before=now - timedelta(seconds=stale_s), limit=SWEEP_LIMIT
    )
    lapsed = await uow.transactions.unwatched(now, limit=SWEEP_LIMIT)
    counts[jobs.CONFIRM] = await _watch(uow, lapsed, now=now, poll_s=poll_s)
    return counts


async def _requeue(
    uow: UnitOfWork,
    *,
    now: datetime,
    poll_s: PollInterval,
    before: datetime | None,
    limit: int,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status, job in (
        (WithdrawalStatus.PENDING, jobs.VALIDATE),
        (WithdrawalStatus.VALIDATING, jobs.SIGN),
    ):
        ids = await uow.withdrawals.ids_in_status(status, limit=limit, updated_before=before)
        for withdrawal_id in ids:
            uow.enqueue(job, {"withdrawalId": withdrawal_id})
        counts[job] = len(ids)
    signed = await uow.transactions.ids_in_status(
        TransactionStatus.SIGNED.value, limit=limit, updated_before=before
    )
    for transaction_id in signed:
        uow.enqueue(jobs.BROADCAST, {"transactionId": transaction_id})
    counts[jobs.BROADCAST] = len(signed)
    if before is None:  # at start-up: a new confirmation chain for every sent transaction
        followed = [
            transaction_id
            for status in sorted(FOLLOWED)
            for transaction_id in await uow.transactions.ids_in_status(status.value, limit=limit)
        ]
        counts[jobs.CONFIRM] = await _watch(uow, followed, now=now, poll_s=poll_s)
    return counts


async def _watch(
    uow: UnitOfWork, transaction_ids: list[str], *, now: datetime, poll_s: PollInterval
) -> int:
    started = 0
    for transaction_id in transaction_ids:
        transaction = await uow.transactions.get(transaction_id, lock=True)
        if transaction is None or transaction.status not in FOLLOWED:
            continue
        start_watching(uow, transaction, now=now, poll_s=poll_s(transaction.network))
        await uow.transactions.save(transaction)
        started += 1
    return started
