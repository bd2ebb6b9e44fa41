"""The hot wallets as an operator sees them: state, transactions in flight, balance."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sluice.domain.addresses import Address
from sluice.domain.assets import Asset
from sluice.errors import ChainUnavailableError
from sluice.ports import UnitOfWorkFactory
from sluice.services.network_health import NetworkHealth
from sluice.services.registry import NetworkEntry, NetworkRegistry

#: Seconds one wallet's balance read may take before it is shown as unknown.
READ_TIMEOUT_S = 2.0

__all__ = ["HotWalletService", "HotWalletState"]


@dataclass(frozen=True, slots=True)
class HotWalletState:
    """One hot wallet of one network, as read now."""

    network: str
    address: Address
    draining: bool
    """Being retired: it finishes its transactions in flight and takes no new ones."""
    in_flight: int
    """Transactions between signing and finality."""
    native: Asset
    native_balance: int | None
    """The native coin at the latest block, in base units; None when the network's node is
    down or did not answer within `READ_TIMEOUT_S` (the listing never fails for one network)."""


class HotWalletService:
    """Reads the hot wallets of every network (a read: it writes nothing, commits nothing)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        registry: NetworkRegistry,
        health: NetworkHealth | None = None,
        *,
        timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        """``health``: a network it calls closed is not asked for balances."""
        self._uow = uow
        self._registry = registry
        self._health = health
        self._timeout_s = timeout_s

    async def overview(self) -> list[HotWalletState]:
        """Every network's hot wallets, in the order they are configured.

        Each wallet's count is read in a short unit of work of its own, and its balance from the
        chain after that unit closed: no database transaction stays open across an RPC call
        (on SQLite each one holds the write lock).
        """
        wallets = []
        for entry in self._registry:
            network = entry.network
            for signer in entry.signers:
                async with self._uow() as uow:
                    in_flight = await uow.transactions.in_flight(network.name, signer.address)
                balance = await self._balance(entry, signer.address)
                wallets.append(
                    HotWalletState(
                        network=network.name,
                        address=signer.address,
                        draining=signer.address in entry.draining,
                        in_flight=in_flight.count,
                        native=network.native,
                        native_balance=balance,
                    )
                )
        return wallets

    async def _balance(self, entry: NetworkEntry, address: Address) -> int | None:
        if self._health is not None and not self._health.is_open(entry.network.name):
            return None
        try:
            async with asyncio.timeout(self._timeout_s):
                return await entry.chain.balance(address)
        except (TimeoutError, ChainUnavailableError):
            return None
