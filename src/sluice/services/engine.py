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
from sluice.domain.ledger import FEE_ACCOUNT, EntryKind
from sluice.domain.transaction import ChainTransaction
from sluice.ports import Clock, UnitOfWork
from sluice.services import jobs
from sluice.services.ledger import Move, move_many
from sluice.services.registry import NetworkRegistry

#: Waiting withdrawals woken when a transaction of their network reaches finality: more than
#: the one slot it frees, in case the oldest cannot take it (another asset short, say).
WAKE = 2


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
    changed: dict[str, None] = {}
    for change in effects.changes:
        changed.setdefault(change.withdrawal_id)
        await uow.withdrawals.add_event(change)
    await uow.withdrawals.save_many([carried[withdrawal_id] for withdrawal_id in changed])
    if effects.moves:
        network = registry.get(transaction.network).network
        # One statement each for a batch's balances and journal entries; balance rows are locked
        # in one global order (user, network, asset), whatever the order of the withdrawals: two
        # batches settling users A and B, and B and A, never deadlock.
        moves = [
            Move(
                user_id=move.withdrawal.user_id,
                asset=network.asset_by_key(move.withdrawal.asset_key),
                kind=move.kind,
                amount=move.amount,
                withdrawal_id=move.withdrawal.id,
            )
            for move in effects.moves
        ]
        # A paid withdrawal's fee, settled with its amount, is the fee account's now.
        moves += [
            Move(FEE_ACCOUNT, m.asset, EntryKind.CREDIT, move.withdrawal.fee, m.withdrawal_id)
            for m, move in zip(moves, effects.moves, strict=True)
            if move.kind is EntryKind.SETTLE and move.withdrawal.fee
        ]
        await move_many(uow, moves, clock=clock)
    for withdrawal_id in effects.resign:
        uow.enqueue(jobs.SIGN, {"withdrawalId": withdrawal_id})
    if transaction.status.is_final and effects.changes:
        # A slot of the wallet is free (and what it held in flight): the oldest withdrawals
        # that wait to be signed look now rather than at their next retry.
        for withdrawal_id in await uow.withdrawals.waiting(transaction.network, limit=WAKE):
            uow.enqueue(jobs.SIGN, {"withdrawalId": withdrawal_id})
    for event in effects.events:
        metrics.TRANSACTION_EVENTS.labels(transaction.network, event.value).inc()
