"""Re-create queued work from the database after a restart.

The queue only carries work; the rows are the truth. Every non-final row maps to exactly one job
that moves it on, and every job is idempotent, so enqueuing work that is queued already is
harmless.
"""

from __future__ import annotations

from sluice.domain.transaction import TransactionStatus
from sluice.domain.withdrawal import WithdrawalStatus
from sluice.ports import UnitOfWork
from sluice.services import jobs

#: Rows read per status on recovery; more than this many stuck rows is an incident, not a restart.
RECOVERY_LIMIT = 100_000


async def recover(uow: UnitOfWork) -> dict[str, int]:
    """Enqueue the next job of every unfinished withdrawal and transaction.

    Returns:
        How many jobs of each kind were enqueued.
    """
    counts = {}
    for status, job in (
        (WithdrawalStatus.PENDING, jobs.VALIDATE),
        (WithdrawalStatus.VALIDATING, jobs.SIGN),
    ):
        ids = await uow.withdrawals.ids_in_status(status, limit=RECOVERY_LIMIT)
        for withdrawal_id in ids:
            uow.enqueue(job, {"withdrawalId": withdrawal_id})
        counts[job] = len(ids)
    for tx_status, job in (
        (TransactionStatus.SIGNED, jobs.BROADCAST),
        (TransactionStatus.BROADCAST, jobs.CONFIRM),
        (TransactionStatus.MINED, jobs.CONFIRM),
    ):
        ids = await uow.transactions.ids_in_status(tx_status.value, limit=RECOVERY_LIMIT)
        for transaction_id in ids:
            uow.enqueue(job, {"transactionId": transaction_id})
        counts[job] = counts.get(job, 0) + len(ids)
    return counts
