"""Recording what the transaction aggregate decided: the one place its effects are written.

Every stage loads a transaction with `TransactionRepository.load` (the transaction's row locked,
then its withdrawals'), calls one of `ChainTransaction`'s methods, and hands the `Effects` here:
the transaction and each withdrawal it changed are saved, their history entries appended, the
ledger moved, follow-up jobs enqueued and the events counted, all in the caller's database
transaction, so a status change and its ledger movement commit together or not at all. Later
consumers of the effects (webhooks, an audit trail) plug in here.
"""

from __future__ import annotations

from sluice import metrics
from sluice.domain.effects import Effects
from sluice.domain.transaction import ChainTransaction
from sluice.ports import Clock, UnitOfWork
from sluice.services import jobs
from sluice.services.ledger import move_funds
from sluice.services.registry import NetworkRegistry


async def record(
    uow: UnitOfWork,
    transaction: ChainTransaction,
    effects: Effects,
    *,
    registry: NetworkRegistry,
    clock: Clock,
) -> None:
    """Write a transition of ``transaction`` and everything it caused."""
    await uow.transactions.save(transaction)
    if effects.outcome is not None:
        await uow.transactions.set_outcomes(transaction.id, effects.outcome[0])
    carried = {w.id: w for w in transaction.carried}
    saved: set[str] = set()
    for change in effects.changes:
        if change.withdrawal_id not in saved:
            await uow.withdrawals.save(carried[change.withdrawal_id])
            saved.add(change.withdrawal_id)
        await uow.withdrawals.add_event(change)
    if effects.moves:
        network = registry.get(transaction.network).network
        # Balance rows are locked in one global order (user, asset), whatever the order of the
        # withdrawals: two batches settling users A and B, and B and A, never deadlock.
        for move in sorted(
            effects.moves, key=lambda m: (m.withdrawal.user_id, m.withdrawal.asset_key)
        ):
            await move_funds(
                uow,
                user_id=move.withdrawal.user_id,
                asset=network.asset_by_key(move.withdrawal.asset_key),
                kind=move.kind,
                amount=move.amount,
                clock=clock,
                withdrawal_id=move.withdrawal.id,
            )
    for withdrawal_id in effects.resign:
        uow.enqueue(jobs.SIGN, {"withdrawalId": withdrawal_id})
    for event in effects.events:
        metrics.TRANSACTION_EVENTS.labels(transaction.network, event.value).inc()
