"""Services wired by `build_services` beside the stages: start-up nonce reconciliation
(`NonceReconciliation`) and the operator's view of the hot wallets (`HotWalletService`), on
SQLite with a fake chain and a real signer."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.domain.addresses import Address
from sluice.domain.transaction import TransactionKind
from sluice.services import jobs
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import CHAIN_ID, ETH, HOT_KEY, NET, CountingSigner, Pipeline, wire


def _pipeline(
    engine: AsyncEngine,
    *,
    more_signers: tuple[LocalSigner, ...] = (),
    draining: frozenset[Address] = frozenset(),
) -> Pipeline:
    return wire(
        engine,
        FakeChain(chain_id=CHAIN_ID),
        CountingSigner(LocalSigner(HOT_KEY)),
        FakeClock(),
        more_signers=more_signers,
        draining=draining,
    )


async def test_nonces_above_the_pool_that_no_stored_transaction_holds_get_fillers(
    engine: AsyncEngine,
) -> None:
    p = _pipeline(engine)
    wallet = p.signer.address
    # Nonce 0 is in the node's pool (someone else's): it must not be replaced from here. The
    # counter reached 3, as if nonces 1 and 2 had been handed out and their rows lost.
    p.chain.pending_counts[wallet] = 1
    async with p.uow() as uow:
        await uow.transactions.reconcile_nonce(NET, wallet, 3)
        await uow.commit()

    [found] = await p.services.nonces.run()

    assert (found.chain_mined, found.chain_pending, found.next_nonce) == (0, 1, 3)
    assert found.gaps == (1, 2)
    async with p.uow() as uow:
        assert await uow.transactions.at_nonce(NET, wallet, 0) is None
        fillers = [await uow.transactions.at_nonce(NET, wallet, n) for n in (1, 2)]
    assert all(f is not None and f.kind is TransactionKind.FILLER for f in fillers)
    broadcasts = [payload for job, payload, *_ in p.queue.published if job == jobs.BROADCAST]
    assert [b["transactionId"] for b in broadcasts] == [f.id for f in fillers if f is not None]

    [again] = await p.services.nonces.run()
    assert again.gaps == ()
    assert again.next_nonce == 3


async def test_a_counter_behind_the_chain_is_raised_to_its_pending_count(
    engine: AsyncEngine,
) -> None:
    p = _pipeline(engine)
    wallet = p.signer.address
    p.chain.transaction_counts[wallet] = 4
    p.chain.pending_counts[wallet] = 5

    [found] = await p.services.nonces.run()

    assert (found.next_nonce, found.gaps) == (5, ())
    async with p.uow() as uow:
        assert await uow.transactions.next_nonce(NET, wallet) == 5


async def test_the_hot_wallet_overview_shows_state_in_flight_and_balance(
    engine: AsyncEngine,
) -> None:
    old = LocalSigner()
    p = _pipeline(engine, more_signers=(old,), draining=frozenset({old.address}))
    async with p.uow() as uow:
        await uow.transactions.reconcile_nonce(NET, p.signer.address, 0)
        await uow.commit()
    p.chain.balances[old.address] = 0
    await p.credit("alice", "2")
    withdrawal_id = await p.submit("alice", "1")
    await p.validate(withdrawal_id)
    await p.sign(withdrawal_id)

    wallets = await p.services.hot_wallets.overview()

    assert [(w.network, w.address, w.draining, w.in_flight) for w in wallets] == [
        (NET, p.signer.address, False, 1),
        (NET, old.address, True, 0),
    ]
    assert [w.native_balance for w in wallets] == [1000 * ETH, 0]
    assert {w.native.symbol for w in wallets} == {"ETH"}


async def test_the_hot_wallet_overview_shows_no_balance_for_a_network_whose_node_is_down(
    engine: AsyncEngine,
) -> None:
    p = _pipeline(engine)
    p.chain.go_down()

    wallets = await p.services.hot_wallets.overview()  # never raises for one network

    assert [(w.address, w.native_balance) for w in wallets] == [(p.signer.address, None)]
