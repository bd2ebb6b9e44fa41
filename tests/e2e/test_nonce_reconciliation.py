"""Start-up reconciliation of hot wallet nonces against a real node: gaps get no-op fillers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sluice.bootstrap import build
from sluice.devnet import setup
from sluice.devnet.anvil import AnvilProcess
from sluice.domain.addresses import Address
from sluice.domain.transaction import TransactionKind, TransactionStatus
from sluice.testing.harness import prepare

WAIT_S = 30.0


async def test_nonces_the_counter_passed_without_a_stored_transaction_are_filled_at_start(
    node: AnvilProcess, tmp_path: Path, database_url: str
) -> None:
    settings, chain = await prepare(node, tmp_path, database_url=database_url)
    container = await build(settings)
    wallet = Address(chain.hot_wallet)
    network = setup.NETWORK
    try:
        # As if nonces 0 and 1 had been handed out and their rows lost with a database restore.
        async with container.uow() as uow:
            await uow.transactions.reconcile_nonce(network, wallet, 2)
            await uow.commit()

        await container.reconcile_nonces()

        async with container.uow() as uow:
            fillers = [await uow.transactions.at_nonce(network, wallet, n) for n in (0, 1)]
        assert all(f is not None and f.kind is TransactionKind.FILLER for f in fillers)
        await container.check_networks(workers=False)  # the worker's chain work waits for it
        worker = container.worker()
        worker.start()
        try:
            client = container.registry.get(network).chain
            deadline = asyncio.get_running_loop().time() + WAIT_S
            while await client.transaction_count(wallet) < 2:
                assert asyncio.get_running_loop().time() < deadline, "fillers not mined"
                await asyncio.sleep(0.1)
            for filler in fillers:
                assert filler is not None
                while True:
                    async with container.uow() as uow:
                        stored = await uow.transactions.get(filler.id)
                    assert stored is not None
                    if stored.status is TransactionStatus.CONFIRMED:
                        break
                    assert asyncio.get_running_loop().time() < deadline, stored.status
                    await asyncio.sleep(0.1)
        finally:
            await worker.stop(timeout_s=5)

        await container.reconcile_nonces()  # again: nothing more to fill
        async with container.uow() as uow:
            assert await uow.transactions.nonces_from(network, wallet, 0) == {0, 1}
    finally:
        await container.close()
