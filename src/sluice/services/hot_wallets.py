"""The hot wallets as an operator sees them: state, transactions in flight, balance."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.domain.addresses import Address
from sluice.domain.assets import Asset
from sluice.ports import UnitOfWorkFactory
from sluice.services.registry import NetworkRegistry

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
    native_balance: int
    """The native coin at the latest block, in base units."""


class HotWalletService:
    """Reads the hot wallets of every network (a read: it writes nothing, commits nothing)."""

    def __init__(self, uow: UnitOfWorkFactory, registry: NetworkRegistry) -> None:
        self._uow = uow
        self._registry = registry

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
                balance = await entry.chain.balance(signer.address)
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
