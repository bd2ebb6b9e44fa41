"""The bodies of `GET /v1/networks`: each network, its assets, rules, fees now and health."""

from __future__ import annotations

from pydantic import Field

from sluice.api.pause_schemas import CircuitBreakerOut, PauseOut
from sluice.api.schemas import _Out
from sluice.domain.amounts import format_amount
from sluice.domain.fees import FeeLevel, FeeModel, Fees, Finality
from sluice.domain.pauses import Pause
from sluice.services.networks import NetworkOverview


class AssetOut(_Out):
    """Something a network pays out."""

    symbol: str
    decimals: int
    token_address: str | None = Field(description="null for the network's native coin")


class FinalityOut(_Out):
    """When a network's payouts count as final."""

    rule: Finality = Field(
        description="`finalized`: the node's finalized block tag; `depth`: a number of blocks"
    )
    confirmations: int = Field(description="Blocks on top of it, when the rule is `depth`")


class FeeOut(_Out):
    """What a fee level offers now, in wei per gas (decimal strings). On a legacy network both
    are the gas price."""

    max_fee_per_gas: str
    max_priority_fee_per_gas: str

    @classmethod
    def of(cls, fees: Fees) -> FeeOut:
        """Render domain fees."""
        return cls(
            max_fee_per_gas=str(fees.max_fee_per_gas),
            max_priority_fee_per_gas=str(fees.max_priority_fee_per_gas),
        )


class FeeLimitsOut(_Out):
    """A network's fee caps and floors, in wei per gas (decimal strings)."""

    max_fee_per_gas: str
    max_tip_per_gas: str | None
    min_tip_per_gas: str
    min_gas_price: str
    bump_percent: int


class RpcHealthOut(_Out):
    """A network's node, as the health monitor last saw it (never a URL)."""

    status: str = Field(description="`up`, `down`, `starting` or `misconfigured`")
    detail: str
    head: int | None = Field(description="The latest block its node reported")
    providers: int = Field(description="How many RPC providers are configured")


class NetworkWalletOut(_Out):
    """A hot wallet of a network."""

    address: str
    state: str = Field(description="`active`, or `draining` (takes no new withdrawals)")
    native_balance: str | None = Field(
        description="In token units; null when the node was not asked (down) or slow"
    )
    batch_contract: str | None = Field(
        description="Its BatchPayout contract, when it pays withdrawals in batches"
    )


class BatchingOut(_Out):
    """How the network pays withdrawals in batches (docs/batching.md)."""

    enabled: bool = Field(description="False when no hot wallet batches (off, or no contract)")
    max_size: int = Field(description="The most withdrawals one transaction pays")
    window_seconds: float = Field(
        description="How long a withdrawal ready to be signed waits for others to join it"
    )


class ExplorerOut(_Out):
    """A block explorer's URL templates."""

    transaction: str = Field(examples=["https://etherscan.io/tx/{hash}"])
    address: str = Field(examples=["https://etherscan.io/address/{address}"])


class NetworkOut(_Out):
    """A network this deployment pays out on."""

    name: str
    display_name: str
    preset: str | None = Field(description="The built-in preset it is based on, if any")
    chain_id: int
    assets: list[AssetOut] = Field(description="The native coin first, then the tokens")
    finality: FinalityOut
    block_time_seconds: float
    fee_model: FeeModel
    default_priority: FeeLevel
    fee_levels: dict[FeeLevel, FeeOut] | None = Field(
        description="What each level offers now; null while the network is down"
    )
    fee_limits: FeeLimitsOut
    rpc: RpcHealthOut
    hot_wallets: list[NetworkWalletOut]
    batching: BatchingOut
    explorer: ExplorerOut | None
    circuit_breaker: CircuitBreakerOut | None = Field(
        description="Its outflow limits over a rolling window; null: none"
    )
    paused: PauseOut | None = Field(
        description="The pause that holds its new payouts: a freeze of every network (network "
        '`"*"`), else its own (by an operator or its circuit breaker); null: it signs'
    )

    @classmethod
    def of(cls, overview: NetworkOverview, paused: Pause | None = None) -> NetworkOut:
        """Render a network overview and the pause in force on it, if any."""
        network, state, policy = overview.network, overview.state, overview.network.fees
        native = network.native
        return cls(
            name=network.name,
            display_name=network.display_name or network.name,
            preset=network.preset,
            chain_id=network.chain_id,
            assets=[
                AssetOut(symbol=a.symbol, decimals=a.decimals, token_address=a.token_address)
                for a in (native, *network.tokens)
            ],
            finality=FinalityOut(rule=network.finality, confirmations=network.confirmations),
            block_time_seconds=network.block_time_s,
            fee_model=policy.model,
            default_priority=policy.default_level,
            fee_levels=None
            if overview.fee_levels is None
            else {level: FeeOut.of(fees) for level, fees in overview.fee_levels.items()},
            fee_limits=FeeLimitsOut(
                max_fee_per_gas=str(policy.max_fee_per_gas),
                max_tip_per_gas=None
                if policy.max_tip_per_gas is None
                else str(policy.max_tip_per_gas),
                min_tip_per_gas=str(policy.min_tip_per_gas),
                min_gas_price=str(policy.min_gas_price),
                bump_percent=policy.bump_percent,
            ),
            rpc=RpcHealthOut(
                status=state.status.value,
                detail=state.detail,
                head=state.head,
                providers=overview.providers,
            ),
            hot_wallets=[
                NetworkWalletOut(
                    address=w.address,
                    state="draining" if w.draining else "active",
                    native_balance=None
                    if w.native_balance is None
                    else format_amount(w.native_balance, native.decimals),
                    batch_contract=network.batching.contract_of(w.address),
                )
                for w in overview.wallets
            ],
            batching=BatchingOut(
                enabled=network.batching.on,
                max_size=network.batching.max_size,
                window_seconds=network.batching.window_s,
            ),
            explorer=None
            if network.explorer is None
            else ExplorerOut(
                transaction=network.explorer.transaction, address=network.explorer.address
            ),
            circuit_breaker=CircuitBreakerOut.of(network),
            paused=None if paused is None else PauseOut.of(paused),
        )
