"""Networks and the assets they carry, as the domain sees them (configuration, not I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sluice.domain.addresses import Address
from sluice.domain.fees import FeePolicy, Finality
from sluice.domain.pauses import CircuitBreaker
from sluice.errors import UnknownTokenError

#: The asset key of a network's native coin; tokens use their lowercase contract address.
NATIVE = "native"


@dataclass(frozen=True, slots=True)
class Asset:
    """Something a withdrawal can pay out: a network's native coin or an ERC-20 token."""

    network: str
    symbol: str
    decimals: int
    token_address: Address | None = None

    @property
    def key(self) -> str:
        """A stable key for ledgers and lookups: ``"native"`` or the lowercase token address."""
        return NATIVE if self.token_address is None else self.token_address.lower()

    @property
    def is_native(self) -> bool:
        """Whether this is the network's native coin."""
        return self.token_address is None


@dataclass(frozen=True, slots=True)
class Explorer:
    """A block explorer's URL templates: ``{hash}`` and ``{address}`` are filled in."""

    transaction: str
    address: str

    def transaction_url(self, transaction_hash: str) -> str:
        """The page of a transaction."""
        return self.transaction.replace("{hash}", transaction_hash)

    def address_url(self, address: str) -> str:
        """The page of an address."""
        return self.address.replace("{address}", address)


@dataclass(frozen=True, slots=True)
class Batching:
    """How a network batches payouts.

    ``contracts`` pairs each hot wallet with its own ``BatchPayout`` contract; a wallet without one
    pays every withdrawal on its own. ``window_s``: how long a withdrawal ready to be signed may
    wait for others to share its transaction; ``max_size``: the most a batch carries.
    """

    contracts: tuple[tuple[Address, Address], ...] = ()
    enabled: bool = True
    max_size: int = 100
    window_s: float = 2.0

    def contract_of(self, wallet: Address) -> Address | None:
        """The wallet's batch contract, if batching is on and it has one (new batches)."""
        return self.configured(wallet) if self.enabled else None

    def configured(self, wallet: Address) -> Address | None:
        """The batch contract configured for the wallet, whether batching is on or not: a batch
        signed before it was turned off is still the wallet's to replace or verify."""
        return next((c for w, c in self.contracts if w.lower() == wallet.lower()), None)

    @property
    def on(self) -> bool:
        """Whether any wallet batches."""
        return self.enabled and bool(self.contracts) and self.max_size >= 2

    def is_contract(self, address: str) -> bool:
        """Whether ``address`` is one of the network's batch contracts."""
        return address.lower() in {c.lower() for _, c in self.contracts}


@dataclass(frozen=True, slots=True)
class Network:
    """One EVM network Sluice pays out on."""

    name: str
    chain_id: int
    native: Asset
    tokens: tuple[Asset, ...] = ()
    confirmations: int = 1
    poll_interval_s: float = 1.0
    hot_wallets: tuple[Address, ...] = field(default=())
    finality: Finality = Finality.DEPTH
    fees: FeePolicy = field(default_factory=FeePolicy)
    max_in_flight: int = 16
    """Transactions a hot wallet may have between signing and finality; beyond, signing waits."""
    display_name: str = ""
    """How people call it ("BNB Smart Chain"); the name when empty."""
    preset: str | None = None
    """The built-in preset it was made from (`sluice.domain.presets`), if any."""
    block_time_s: float = 12.0
    """Typical seconds between blocks."""
    explorer: Explorer | None = None
    """Where a person looks a transaction or an address up."""
    l1_fee_oracle: Address | None = None
    """An OP Stack chain's GasPriceOracle: each transaction also pays an L1 data fee."""
    fixed_transfer_gas: bool = True
    """Whether a native transfer to an account costs exactly 21,000 gas. False on Arbitrum,
    whose gas also pays for the L1 calldata: such a transfer is estimated like a call."""
    batching: Batching = field(default_factory=Batching)
    """How payouts share transactions (`sluice.domain.batches`); off without contracts."""
    circuit_breaker: CircuitBreaker | None = None
    """The most each asset may pay out over a rolling window before signing pauses
    (`sluice.domain.pauses`); None: no breaker."""

    def asset(self, token_address: Address | None) -> Asset:
        """The asset for a token address, or the native coin for None.

        Raises:
            UnknownTokenError: The token is not configured on this network.
        """
        if token_address is None:
            return self.native
        for token in self.tokens:
            if token.token_address == token_address:
                return token
        raise UnknownTokenError(f"token {token_address} is not configured on {self.name}")

    def asset_by_key(self, key: str) -> Asset:
        """The asset for a ledger key (see `Asset.key`)."""
        if key == NATIVE:
            return self.native
        for token in self.tokens:
            if token.key == key:
                return token
        raise UnknownTokenError(f"asset {key} is not configured on {self.name}")

    @property
    def token_addresses(self) -> tuple[Address, ...]:
        """Contract addresses of every configured token."""
        return tuple(t.token_address for t in self.tokens if t.token_address is not None)
