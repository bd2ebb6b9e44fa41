"""The built-in networks: what Sluice knows about each public EVM chain it can pay out on.

A networks file enables one by name (``preset = "polygon"``) and adds only what is the
operator's: RPC URLs, hot wallets, overrides (`sluice.config.NetworkConfig`). Each value here,
its source and the reason for each choice (finality, floors, caps) are in docs/networks.md,
whose tables a unit test holds this module to.

Pure data: no I/O, nothing read at import but these literals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sluice.domain.addresses import Address
from sluice.domain.assets import Explorer
from sluice.domain.fees import GWEI, FeeModel, FeePolicy, Finality
from sluice.errors import ConfigurationError

#: Where every USDC address below was read (and cross-checked: docs/networks.md, "Tokens").
CIRCLE = (
    "Circle, USDC contract addresses (developers.circle.com/stablecoins/usdc-contract-addresses)"
)
#: Tether's list of the chains it issues USDT on itself (Ethereum, Avalanche, Polygon).
TETHER = "Tether, Supported protocols (tether.to/en/supported-protocols)"
#: BNB Smart Chain's stablecoins are Binance-Peg tokens, issued by Binance, not Circle or Tether.
BSCSCAN = "BscScan token page (bscscan.com/token/<address>): Binance-Peg, 18 decimals"

#: The OP Stack's GasPriceOracle predeploy: the L1 data fee of a transaction (docs.optimism.io,
#: "Smart contract overview", predeploys).
OP_GAS_PRICE_ORACLE = Address("0x420000000000000000000000000000000000000F")


@dataclass(frozen=True, slots=True)
class TokenPreset:
    """A well-known token of a preset network."""

    symbol: str
    address: Address
    decimals: int
    source: str
    """Where the address and decimals come from."""


@dataclass(frozen=True, slots=True)
class NetworkPreset:
    """Everything about a public network that is not the operator's."""

    name: str
    display_name: str
    chain_id: int
    native_symbol: str
    native_decimals: int
    fee_model: FeeModel
    finality: Finality
    confirmations: int
    """The depth that makes a block final when ``finality`` is a depth, and the depth an
    operator gets by overriding ``finality = "depth"`` on a network that has a tag."""
    block_time_s: float
    explorer: Explorer
    tokens: tuple[TokenPreset, ...]
    testnet: bool
    fees: FeePolicy
    l1_fee_oracle: Address | None
    sources: str
    """Where the chain id and the finality rule come from."""
    fixed_transfer_gas: bool = True
    """Whether a native transfer to an account costs exactly 21,000 gas (not on Arbitrum,
    whose gas also pays for the L1 calldata; there it is estimated)."""

    def token(self, symbol: str) -> TokenPreset:
        """The preset token with this symbol.

        Raises:
            ConfigurationError: The preset has no such token.
        """
        for token in self.tokens:
            if token.symbol == symbol:
                return token
        known = ", ".join(t.symbol for t in self.tokens) or "none"
        raise ConfigurationError(f"preset {self.name} has no token {symbol} (it has: {known})")


def _explorer(host: str) -> Explorer:
    return Explorer(
        transaction=f"https://{host}/tx/{{hash}}", address=f"https://{host}/address/{{address}}"
    )


def _chain(chain_id: int) -> str:
    return f"ethereum-lists/chains _data/chains/eip155-{chain_id}.json"


def _usdc(address: str, decimals: int = 6, source: str = CIRCLE) -> TokenPreset:
    return TokenPreset(symbol="USDC", address=Address(address), decimals=decimals, source=source)


def _usdt(address: str, source: str, decimals: int = 6) -> TokenPreset:
    return TokenPreset(symbol="USDT", address=Address(address), decimals=decimals, source=source)


# Fee policies (docs/networks.md, "Fees"): caps a few orders of magnitude above what each chain
# usually asks, floors where nodes refuse less, stuck times of several blocks.
_ETHEREUM_FEES = FeePolicy(max_fee_per_gas=500 * GWEI, stuck_after_s=60.0)
_BSC_FEES = FeePolicy(
    model=FeeModel.LEGACY, max_fee_per_gas=10 * GWEI, min_gas_price=GWEI // 20, stuck_after_s=30.0
)
_BSC_TESTNET_FEES = FeePolicy(
    model=FeeModel.LEGACY, max_fee_per_gas=10 * GWEI, min_gas_price=GWEI // 10, stuck_after_s=30.0
)
_POLYGON_FEES = FeePolicy(
    max_fee_per_gas=3000 * GWEI, min_tip_per_gas=30 * GWEI, stuck_after_s=30.0
)
_AMOY_FEES = FeePolicy(max_fee_per_gas=3000 * GWEI, min_tip_per_gas=25 * GWEI, stuck_after_s=30.0)
_L2_FEES = FeePolicy(max_fee_per_gas=50 * GWEI, stuck_after_s=30.0)
_AVALANCHE_FEES = FeePolicy(max_fee_per_gas=100 * GWEI, stuck_after_s=30.0)

#: Chainlink's per-chain defaults (finality rules): the current ones, and the older core ones.
_CL = "smartcontractkit/chainlink-evm pkg/config/toml/defaults"
_CL_CORE = "smartcontractkit/chainlink core/chains/evm/config/toml/defaults"

_ALL = (
    NetworkPreset(
        name="ethereum",
        display_name="Ethereum",
        chain_id=1,
        native_symbol="ETH",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=64,
        block_time_s=12.0,
        explorer=_explorer("etherscan.io"),
        tokens=(
            _usdc("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
            _usdt("0xdAC17F958D2ee523a2206206994597C13D831ec7", TETHER),
        ),
        testnet=False,
        fees=_ETHEREUM_FEES,
        l1_fee_oracle=None,
        sources=f"{_chain(1)}; finality: {_CL}/Ethereum_Mainnet.toml FinalityTagEnabled",
    ),
    NetworkPreset(
        name="sepolia",
        display_name="Sepolia",
        chain_id=11155111,
        native_symbol="ETH",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=64,
        block_time_s=12.0,
        explorer=_explorer("sepolia.etherscan.io"),
        tokens=(_usdc("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"),),
        testnet=True,
        fees=_ETHEREUM_FEES,
        l1_fee_oracle=None,
        sources=f"{_chain(11155111)}; finality: as Ethereum (same consensus)",
    ),
    NetworkPreset(
        name="hoodi",
        display_name="Hoodi",
        chain_id=560048,
        native_symbol="ETH",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=64,
        block_time_s=12.0,
        explorer=_explorer("hoodi.etherscan.io"),
        tokens=(),
        testnet=True,
        fees=_ETHEREUM_FEES,
        l1_fee_oracle=None,
        sources=f"{_chain(560048)}; finality: as Ethereum (same consensus)",
    ),
    NetworkPreset(
        name="bsc",
        display_name="BNB Smart Chain",
        chain_id=56,
        native_symbol="BNB",
        native_decimals=18,
        fee_model=FeeModel.LEGACY,
        finality=Finality.FINALIZED,
        confirmations=50,
        block_time_s=0.75,
        explorer=_explorer("bscscan.com"),
        tokens=(
            _usdc("0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d", decimals=18, source=BSCSCAN),
            _usdt("0x55d398326f99059fF775485246999027B3197955", BSCSCAN, decimals=18),
        ),
        testnet=False,
        fees=_BSC_FEES,
        l1_fee_oracle=None,
        sources=(
            f"{_chain(56)}; finality: fast finality (BEP-126); depth: "
            f"{_CL_CORE}/BSC_Mainnet.toml FinalityDepth 50"
        ),
    ),
    NetworkPreset(
        name="bsc-testnet",
        display_name="BNB Smart Chain Testnet",
        chain_id=97,
        native_symbol="tBNB",
        native_decimals=18,
        fee_model=FeeModel.LEGACY,
        finality=Finality.FINALIZED,
        confirmations=50,
        block_time_s=0.75,
        explorer=_explorer("testnet.bscscan.com"),
        tokens=(),
        testnet=True,
        fees=_BSC_TESTNET_FEES,
        l1_fee_oracle=None,
        sources=f"{_chain(97)}; finality: {_CL}/BSC_Testnet.toml FinalityTagEnabled",
    ),
    NetworkPreset(
        name="polygon",
        display_name="Polygon PoS",
        chain_id=137,
        native_symbol="POL",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.DEPTH,
        confirmations=500,
        block_time_s=2.0,
        explorer=_explorer("polygonscan.com"),
        tokens=(
            _usdc("0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
            _usdt("0xc2132D05D31c914a87C6611C10748AEb04B58e8F", TETHER),
        ),
        testnet=False,
        fees=_POLYGON_FEES,
        l1_fee_oracle=None,
        sources=(
            f"{_chain(137)}; finality: {_CL}/Polygon_Mainnet.toml FinalityDepth 500, "
            "FinalityTagEnabled false"
        ),
    ),
    NetworkPreset(
        name="amoy",
        display_name="Polygon Amoy",
        chain_id=80002,
        native_symbol="POL",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.DEPTH,
        confirmations=500,
        block_time_s=2.0,
        explorer=_explorer("amoy.polygonscan.com"),
        tokens=(_usdc("0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582"),),
        testnet=True,
        fees=_AMOY_FEES,
        l1_fee_oracle=None,
        sources=(
            f"{_chain(80002)}; finality: {_CL}/Polygon_Amoy.toml FinalityDepth 500, "
            "FinalityTagEnabled false"
        ),
    ),
    NetworkPreset(
        name="arbitrum",
        display_name="Arbitrum One",
        chain_id=42161,
        native_symbol="ETH",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=50,
        block_time_s=0.25,
        explorer=_explorer("arbiscan.io"),
        tokens=(
            _usdc("0xaf88d065e77c8cC2239327C5EDb3A432268e5831"),
            _usdt(
                "0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9",
                "USDT0, Tether's omnichain USDT on LayerZero (docs.usdt0.to)",
            ),
        ),
        testnet=False,
        fees=_L2_FEES,
        l1_fee_oracle=None,
        fixed_transfer_gas=False,
        sources=f"{_chain(42161)}; finality: {_CL}/Arbitrum_Mainnet.toml FinalityTagEnabled",
    ),
    NetworkPreset(
        name="arbitrum-sepolia",
        display_name="Arbitrum Sepolia",
        chain_id=421614,
        native_symbol="ETH",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=50,
        block_time_s=0.25,
        explorer=_explorer("sepolia.arbiscan.io"),
        tokens=(_usdc("0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d"),),
        testnet=True,
        fees=_L2_FEES,
        l1_fee_oracle=None,
        fixed_transfer_gas=False,
        sources=f"{_chain(421614)}; finality: as Arbitrum One",
    ),
    NetworkPreset(
        name="optimism",
        display_name="OP Mainnet",
        chain_id=10,
        native_symbol="ETH",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=200,
        block_time_s=2.0,
        explorer=_explorer("optimistic.etherscan.io"),
        tokens=(
            _usdc("0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85"),
            _usdt(
                "0x94b008aA00579c1307B0EF2c499aD98a8ce58e58",
                "Optimism token list (ethereum-optimism.github.io data/USDT/data.json)",
            ),
        ),
        testnet=False,
        fees=_L2_FEES,
        l1_fee_oracle=OP_GAS_PRICE_ORACLE,
        sources=(
            f"{_chain(10)}; finality: {_CL}/Optimism_Mainnet.toml FinalityTagEnabled, "
            "FinalityDepth 200"
        ),
    ),
    NetworkPreset(
        name="op-sepolia",
        display_name="OP Sepolia",
        chain_id=11155420,
        native_symbol="ETH",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=200,
        block_time_s=2.0,
        explorer=_explorer("sepolia-optimism.etherscan.io"),
        tokens=(_usdc("0x5fd84259d66Cd46123540766Be93DFE6D43130D7"),),
        testnet=True,
        fees=_L2_FEES,
        l1_fee_oracle=OP_GAS_PRICE_ORACLE,
        sources=f"{_chain(11155420)}; finality: as OP Mainnet",
    ),
    NetworkPreset(
        name="base",
        display_name="Base",
        chain_id=8453,
        native_symbol="ETH",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=200,
        block_time_s=2.0,
        explorer=_explorer("basescan.org"),
        tokens=(_usdc("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),),
        testnet=False,
        fees=_L2_FEES,
        l1_fee_oracle=OP_GAS_PRICE_ORACLE,
        sources=(
            f"{_chain(8453)}; finality: {_CL}/Base_Mainnet.toml FinalityTagEnabled, "
            "FinalityDepth 200"
        ),
    ),
    NetworkPreset(
        name="base-sepolia",
        display_name="Base Sepolia",
        chain_id=84532,
        native_symbol="ETH",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=200,
        block_time_s=2.0,
        explorer=_explorer("sepolia.basescan.org"),
        tokens=(_usdc("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),),
        testnet=True,
        fees=_L2_FEES,
        l1_fee_oracle=OP_GAS_PRICE_ORACLE,
        sources=f"{_chain(84532)}; finality: as Base",
    ),
    NetworkPreset(
        name="avalanche",
        display_name="Avalanche C-Chain",
        chain_id=43114,
        native_symbol="AVAX",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=10,
        block_time_s=2.0,
        explorer=_explorer("snowtrace.io"),
        tokens=(
            _usdc("0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E"),
            _usdt("0x9702230A8Ea53601f5cD2dc00fDBc13d4dF4A8c7", TETHER),
        ),
        testnet=False,
        fees=_AVALANCHE_FEES,
        l1_fee_oracle=None,
        sources=(
            f"{_chain(43114)}; finality: Snowman consensus (an accepted block is final); "
            f"depth: {_CL_CORE}/Avalanche_Mainnet.toml FinalityDepth 10"
        ),
    ),
    NetworkPreset(
        name="fuji",
        display_name="Avalanche Fuji",
        chain_id=43113,
        native_symbol="AVAX",
        native_decimals=18,
        fee_model=FeeModel.EIP1559,
        finality=Finality.FINALIZED,
        confirmations=10,
        block_time_s=2.0,
        explorer=_explorer("testnet.snowtrace.io"),
        tokens=(_usdc("0x5425890298aed601595a70AB815c96711a31Bc65"),),
        testnet=True,
        fees=_AVALANCHE_FEES,
        l1_fee_oracle=None,
        sources=f"{_chain(43113)}; finality: {_CL}/Avalanche_Fuji.toml FinalityTagEnabled",
    ),
)

#: Every built-in network, by name.
PRESETS: Mapping[str, NetworkPreset] = MappingProxyType({p.name: p for p in _ALL})


def preset(name: str) -> NetworkPreset:
    """The built-in network called ``name``.

    Raises:
        ConfigurationError: No preset has that name (the message lists those that exist).
    """
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ConfigurationError(f"unknown preset {name!r}; known presets: {known}") from None
