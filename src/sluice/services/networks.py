"""What `GET /v1/networks` shows: each network, its assets, rules, fees now, health, wallets.

A read that never waits on a sick node: every network is described at once; a network that is
not open shows its state and its configuration with no fee levels and no balances, and an open
one's chain reads are bounded by a timeout (a read that does not answer in time is left out,
never an error). RPC URLs never appear: only how many providers there are.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from sluice.domain.addresses import Address
from sluice.domain.assets import Network
from sluice.domain.fees import FeeLevel, Fees
from sluice.services.fee_markets import FeeMarkets
from sluice.services.network_health import (
    NetworkHealth,
    NetworkState,
    NetworkStatus,
    describe_failure,
)
from sluice.services.registry import NetworkEntry, NetworkRegistry

__all__ = ["NetworkOverview", "NetworkService", "WalletView"]

log = structlog.get_logger(__name__)

#: Seconds one network's chain reads may take before they are left out of the answer.
READ_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class WalletView:
    """A hot wallet as the networks listing shows it."""

    address: Address
    draining: bool
    native_balance: int | None
    """In base units; None when the node was not asked (closed) or did not answer in time."""


@dataclass(frozen=True, slots=True)
class NetworkOverview:
    """One network, as read now."""

    network: Network
    state: NetworkState
    providers: int
    """How many RPC providers it has (never their URLs)."""
    fee_levels: dict[FeeLevel, Fees] | None
    """What each level offers now; None when the network is closed or its node slow."""
    wallets: tuple[WalletView, ...]


class NetworkService:
    """Describes the served networks (a read: no unit of work, no commit)."""

    def __init__(
        self,
        registry: NetworkRegistry,
        fees: FeeMarkets,
        health: NetworkHealth | None,
        *,
        providers: dict[str, int] | None = None,
        timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self._registry = registry
        self._fees = fees
        self._health = health
        self._providers = providers or {}
        self._timeout_s = timeout_s

    async def overview(self) -> list[NetworkOverview]:
        """Every network, in name order."""
        return list(
            await asyncio.gather(
                *(self._describe(self._registry.get(name)) for name in self._registry.names())
            )
        )

    async def _describe(self, entry: NetworkEntry) -> NetworkOverview:
        name = entry.network.name
        state = (
            self._health.state(name)
            if self._health is not None
            else NetworkState(status=NetworkStatus.UP, detail="not monitored")
        )
        open_ = self._health is None or state.open
        levels: dict[FeeLevel, Fees] | None = None
        balances: dict[Address, int] = {}
        if open_:
            try:
                async with asyncio.timeout(self._timeout_s):
                    levels = await self._fees.levels(name)
                    for signer in entry.signers:
                        balances[signer.address] = await entry.chain.balance(signer.address)
            except Exception as exc:  # a slow or failing node: show what was read
                log.info(
                    "network read left out of the listing",
                    network=name,
                    error=describe_failure(exc),  # never a URL
                )
        wallets = tuple(
            WalletView(
                address=signer.address,
                draining=signer.address in entry.draining,
                native_balance=balances.get(signer.address),
            )
            for signer in entry.signers
        )
        return NetworkOverview(
            network=entry.network,
            state=state,
            providers=self._providers.get(name, 1),
            fee_levels=levels,
            wallets=wallets,
        )
