"""The networks this deployment serves, with their chain clients and hot wallets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sluice.domain.addresses import Address
from sluice.domain.assets import Network
from sluice.errors import ConfigurationError, UnknownNetworkError
from sluice.ports import ChainClient, Signer


@dataclass(slots=True)
class NetworkEntry:
    """One served network: its domain description, node and hot wallet signers."""

    network: Network
    chain: ChainClient
    signers: tuple[Signer, ...]
    draining: frozenset[Address] = frozenset()
    """Wallets being retired: they finish their transactions in flight, take no new ones."""

    @property
    def accepting(self) -> tuple[Signer, ...]:
        """The wallets that take new withdrawals."""
        return tuple(s for s in self.signers if s.address not in self.draining)

    @property
    def signer(self) -> Signer:
        """The hot wallet that signs new transactions (one per network for now)."""
        if not self.signers:
            raise ConfigurationError(f"network {self.network.name} has no hot wallet")
        return self.signers[0]

    def signer_for(self, address: str) -> Signer:
        """The signer of a given hot wallet address."""
        for signer in self.signers:
            if signer.address == address:
                return signer
        raise ConfigurationError(f"no signer for hot wallet {address} on {self.network.name}")


class NetworkRegistry:
    """Looks networks up by name."""

    def __init__(self, entries: dict[str, NetworkEntry]) -> None:
        self._entries = dict(entries)

    def get(self, name: str) -> NetworkEntry:
        """The entry for a network.

        Raises:
            UnknownNetworkError: Not a network this deployment serves.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNetworkError(f"network {name!r} is not served here") from None

    def __iter__(self) -> Iterator[NetworkEntry]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        """Names of every served network."""
        return sorted(self._entries)
