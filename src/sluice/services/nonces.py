"""Start-up nonce reconciliation: each hot wallet's nonce counter against its chain.

The counter becomes at least the chain's pending count (nonces the node knows of, ours or not).
A nonce between that and the counter which no stored transaction holds (a lost database row,
say) would stall every later one: it gets a no-op filler. (A gap that opens later, when a pooled
transaction not of ours is dropped, is found by confirmation tracking: see
`ConfirmationService`.)

Like a stage handler, this opens and commits its own units of work: the chain is read between
them, never inside one (a row lock is never held across a network call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

from sluice.domain.addresses import Address
from sluice.domain.transaction import Fees
from sluice.ports import UnitOfWork, UnitOfWorkFactory
from sluice.services.fee_markets import read_market
from sluice.services.registry import NetworkEntry, NetworkRegistry

__all__ = ["GapFiller", "NonceReconciliation", "WalletNonces"]

log = structlog.get_logger(__name__)


class GapFiller(Protocol):
    """Stores a no-op at a nonce no stored transaction holds (`ConfirmationService.fill_gap`)."""

    async def __call__(
        self,
        uow: UnitOfWork,
        network: str,
        wallet: Address,
        nonce: int,
        market: Fees,
        *,
        why: str,
    ) -> bool:
        """Store the filler and enqueue its broadcast; False if the nonce is held already."""
        ...


@dataclass(frozen=True, slots=True)
class WalletNonces:
    """What reconciling one hot wallet found and did."""

    network: str
    address: Address
    chain_mined: int
    """Nonces the chain has mined."""
    chain_pending: int
    """Nonces the node knows of, counting its pool."""
    next_nonce: int
    """The wallet's counter after reconciliation."""
    gaps: tuple[int, ...]
    """Nonces that got a no-op filler."""


class NonceReconciliation:
    """Brings each hot wallet's nonce counter up to the chain, and fills gaps below it."""

    def __init__(
        self, uow: UnitOfWorkFactory, registry: NetworkRegistry, fill_gap: GapFiller
    ) -> None:
        self._uow = uow
        self._registry = registry
        self._fill_gap = fill_gap

    async def run(self) -> list[WalletNonces]:
        """Reconcile every hot wallet of every network, one after the other."""
        results = []
        for entry in self._registry:
            results.extend(await self.reconcile_network(entry))
        return results

    async def reconcile_network(self, entry: NetworkEntry) -> list[WalletNonces]:
        """Reconcile every hot wallet of one network (before its work starts, and again each
        time it comes back from an outage: `sluice.services.network_health`)."""
        return [await self.reconcile(entry, signer.address) for signer in entry.signers]

    async def reconcile(self, entry: NetworkEntry, address: Address) -> WalletNonces:
        """Reconcile one hot wallet of a network."""
        network = entry.network.name
        pending = await entry.chain.transaction_count(address, pending=True)
        mined = await entry.chain.transaction_count(address)
        async with self._uow() as uow:
            next_nonce = await uow.transactions.reconcile_nonce(network, address, pending)
            held = await uow.transactions.nonces_from(network, address, mined)
            await uow.commit()
        # Below `pending` the node's pool holds something at every nonce (ours, which tracking
        # follows, or someone else's, which must not be replaced from here).
        gaps = tuple(n for n in range(max(mined, pending), next_nonce) if n not in held)
        if gaps:
            market = entry.network.fees.price(await read_market(entry.network, entry.chain))
            async with self._uow() as uow:
                for nonce in gaps:
                    await self._fill_gap(
                        uow, network, address, nonce, market, why="found at start-up"
                    )
                await uow.commit()
        log.info(
            "nonce counter reconciled",
            network=network,
            hot_wallet=address,
            chain_mined=mined,
            chain_pending=pending,
            next_nonce=next_nonce,
            gaps_filled=len(gaps),
        )
        return WalletNonces(network, address, mined, pending, next_nonce, gaps)
