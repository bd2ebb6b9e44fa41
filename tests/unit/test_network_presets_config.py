"""A networks file enables a built-in network by name and adds only the operator's parts; it
may override any of the preset's; a network without a preset is a custom EVM network described
in full. Every inconsistency is refused at load with one line naming it."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sluice.config import NetworkConfig, load_networks
from sluice.domain.assets import Explorer
from sluice.domain.fees import GWEI, FeeLevel, FeeModel, FeePolicy, Finality
from sluice.domain.presets import OP_GAS_PRICE_ORACLE, PRESETS, preset
from sluice.errors import ConfigurationError

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPERATOR = 'rpc_urls = ["https://rpc.invalid/KEY"]\nhot_wallet_keystore = "/keys/hot.json"\n'
USDC_E = "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174"


def network(**fields: Any) -> NetworkConfig:
    return NetworkConfig.model_validate(
        {"rpc_urls": ["https://rpc.invalid/KEY"], "hot_wallet_keystore": "/k.json", **fields}
    )


def load(tmp_path: Path, text: str) -> dict[str, NetworkConfig]:
    path = tmp_path / "networks.toml"
    path.write_text(text, encoding="utf-8")
    return load_networks(path)


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load(tmp_path, text)
    detail = caught.value.detail
    assert "\n" not in detail
    return detail


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_needs_only_the_operators_parts(tmp_path: Path, name: str) -> None:
    config = load(tmp_path, f'[networks.mine]\npreset = "{name}"\n{OPERATOR}')["mine"]
    p = preset(name)
    assert (config.chain_id, config.native_symbol, config.native_decimals) == (
        p.chain_id,
        p.native_symbol,
        p.native_decimals,
    )
    assert (config.finality, config.confirmations) == (p.finality, p.confirmations)
    assert config.poll_interval_s == max(1.0, p.block_time_s)
    assert [(t.symbol, t.address, t.decimals) for t in config.tokens] == [
        (t.symbol, t.address, t.decimals) for t in p.tokens
    ]
    domain = config.to_domain("mine")
    assert domain.name == "mine"
    assert domain.preset == name
    assert domain.display_name == p.display_name
    assert domain.block_time_s == p.block_time_s
    assert domain.explorer == p.explorer
    assert domain.l1_fee_oracle == p.l1_fee_oracle
    assert domain.fees == p.fees
    assert [(a.symbol, a.token_address, a.decimals) for a in domain.tokens] == [
        (t.symbol, t.address, t.decimals) for t in p.tokens
    ]


def test_the_poll_interval_is_the_block_time_but_at_least_a_second() -> None:
    assert network(preset="ethereum").poll_interval_s == 12.0
    assert network(preset="polygon").poll_interval_s == 2.0
    assert network(preset="arbitrum").poll_interval_s == 1.0
    assert network(preset="bsc").poll_interval_s == 1.0
    assert network(preset="arbitrum", block_time_s=3).poll_interval_s == 3.0
    assert network(preset="ethereum", poll_interval_s=4).poll_interval_s == 4.0


def test_overrides_replace_the_presets_values() -> None:
    config = network(
        preset="base",
        chain_id=8453,  # the preset's own: allowed
        finality="depth",
        confirmations=30,
        display_name="Base (ours)",
        native_symbol="ETH",
        explorer_transaction_url="https://base.blockscout.com/tx/{hash}",
        explorer_address_url="https://base.blockscout.com/address/{address}",
        max_fee_gwei=5,
        max_tip_gwei="0.5",
        min_tip_gwei="0.001",
        default_priority="fast",
        fee_percentiles=[20, 60, 90],
        fee_bump_percent=30,
        stuck_after_s=45,
    )
    domain = config.to_domain("base")
    assert (domain.finality, domain.confirmations) == (Finality.DEPTH, 30)
    assert domain.display_name == "Base (ours)"
    assert domain.explorer == Explorer(
        transaction="https://base.blockscout.com/tx/{hash}",
        address="https://base.blockscout.com/address/{address}",
    )
    assert domain.l1_fee_oracle == OP_GAS_PRICE_ORACLE
    assert domain.fees == replace(
        preset("base").fees,
        max_fee_per_gas=5 * GWEI,
        max_tip_per_gas=GWEI // 2,
        min_tip_per_gas=10**6,
        default_level=FeeLevel.FAST,
        percentiles=(20, 60, 90),
        bump_percent=30,
        stuck_after_s=45.0,
    )


def test_a_legacy_override_with_a_gas_price_floor_in_fractions_of_a_gwei() -> None:
    fees = network(
        preset="polygon",
        fee_model="legacy",
        min_gas_price_gwei="0.05",
        gas_price_percent=[100, 110, 200],
    ).fee_policy()
    assert fees.model is FeeModel.LEGACY
    assert fees.min_gas_price == 50_000_000
    assert fees.gas_price_percent == (100, 110, 200)
    assert fees.min_tip_per_gas == 30 * GWEI  # the rest stays the preset's


@pytest.mark.parametrize(
    ("written", "wei"),
    [
        pytest.param(500, 500 * GWEI, id="integer"),
        pytest.param("0.05", 50_000_000, id="decimal-string"),
        pytest.param("1e-9", 1, id="one-wei"),
        pytest.param("25", 25 * GWEI, id="integer-string"),
        pytest.param(Decimal("1.5"), 1_500_000_000, id="decimal"),
    ],
)
def test_gwei_amounts_are_exact(written: object, wei: int) -> None:
    assert network(chain_id=5, max_fee_gwei=written).fee_policy().max_fee_per_gas == wei


@pytest.mark.parametrize(
    ("written", "why"),
    [
        pytest.param(0.05, "integer or a decimal string", id="float"),
        pytest.param(True, "integer or a decimal string", id="bool"),
        pytest.param("cheap", "not a decimal number of gwei", id="words"),
        pytest.param("NaN", "finite amount", id="nan"),
        pytest.param("-1", "finite amount, zero or more", id="negative"),
        pytest.param("0.0000000001", "not a whole number of wei", id="below-a-wei"),
    ],
)
def test_gwei_amounts_that_are_not_exact_are_refused(written: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        network(chain_id=5, min_tip_gwei=written)


def test_the_fee_cap_must_be_positive_and_bounded() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        network(chain_id=5, max_fee_gwei=0)
    with pytest.raises(ValueError, match="less than or equal to 1000000"):
        network(chain_id=5, max_fee_gwei="1000000.5")


def test_preset_tokens_choose_and_custom_tokens_follow() -> None:
    config = network(
        preset="polygon",
        preset_tokens=["USDT"],
        tokens=[{"symbol": "USDC.e", "address": USDC_E.lower(), "decimals": 6}],
    )
    assert [(t.symbol, t.address) for t in config.tokens] == [
        ("USDT", "0xc2132D05D31c914a87C6611C10748AEb04B58e8F"),
        ("USDC.e", USDC_E),
    ]
    assert network(preset="polygon", preset_tokens=[]).tokens == []
    assert [t.symbol for t in network(preset="polygon", preset_tokens=["USDT", "USDC"]).tokens] == [
        "USDT",
        "USDC",
    ]


def test_a_custom_network_is_described_in_full_with_the_old_defaults() -> None:
    config = network(chain_id=31337)
    domain = config.to_domain("anvil")
    assert (config.native_symbol, config.confirmations, config.finality) == (
        "ETH",
        12,
        Finality.DEPTH,
    )
    assert domain.preset is None
    assert domain.display_name == ""
    assert domain.explorer is None
    assert domain.l1_fee_oracle is None
    assert domain.block_time_s == config.poll_interval_s == 2.0
    assert domain.fees == FeePolicy()
    assert domain.fees.max_fee_per_gas == 500 * GWEI

    custom = network(
        chain_id=424242,
        native_symbol="XYZ",
        block_time_s=5,
        fee_model="legacy",
        l1_fee_oracle=OP_GAS_PRICE_ORACLE.lower(),
        explorer_transaction_url="https://scan.invalid/tx/{hash}",
        explorer_address_url="https://scan.invalid/a/{address}",
        tokens=[{"symbol": "USDC", "address": USDC_E, "decimals": 6}],
    ).to_domain("xyz")
    assert custom.block_time_s == 5.0
    assert custom.fees.legacy
    assert custom.l1_fee_oracle == OP_GAS_PRICE_ORACLE
    assert custom.explorer is not None
    assert custom.explorer.address_url("0xab") == "https://scan.invalid/a/0xab"
    assert [t.symbol for t in custom.tokens] == ["USDC"]


def test_a_networks_file_without_presets_loads_as_before(tmp_path: Path) -> None:
    text = (
        "[networks.anvil]\nchain_id = 31337\n"
        + OPERATOR
        + "confirmations = 2\npoll_interval_s = 1.0\nmax_fee_gwei = 500\nfee_bump_percent = 25\n"
        + 'stuck_after_s = 90\nfinality = "finalized"\n'
        + '[[networks.anvil.tokens]]\nsymbol = "DEMO"\n'
        + 'address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\ndecimals = 18\n'
    )
    domain = load(tmp_path, text)["anvil"].to_domain("anvil")
    assert (domain.chain_id, domain.confirmations, domain.poll_interval_s) == (31337, 2, 1.0)
    assert domain.finality is Finality.FINALIZED
    assert domain.fees == FeePolicy(max_fee_per_gas=500 * GWEI, bump_percent=25, stuck_after_s=90)
    assert [t.symbol for t in domain.tokens] == ["DEMO"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            f'[networks.p]\npreset = "polgon"\n{OPERATOR}',
            r"networks\.p: unknown preset 'polgon'; known presets: ethereum, "
            r"sepolia, .*, fuji$",
            id="unknown-preset",
        ),
        pytest.param(
            f'[networks.p]\npreset = "polygon"\nchain_id = 1\n{OPERATOR}',
            r"chain_id 1 contradicts preset polygon, whose chain id is 137",
            id="chain-id-contradicts-preset",
        ),
        pytest.param(
            f'[networks.a]\npreset = "ethereum"\n{OPERATOR}[networks.b]\nchain_id = 1\n{OPERATOR}',
            r"networks a and b both have chain id 1",
            id="two-networks-one-chain-id",
        ),
        pytest.param(
            f"[networks.a]\nchain_id = 7\n{OPERATOR}[networks.b]\nchain_id = 7\n{OPERATOR}",
            r"networks a and b both have chain id 7",
            id="two-custom-networks-one-chain-id",
        ),
        pytest.param(
            f'[networks.p]\npreset = "polygon"\n{OPERATOR}[[networks.p.tokens]]\n'
            f'symbol = "USDC"\naddress = "{USDC_E}"\ndecimals = 6\n',
            r"token USDC is one of preset polygon's tokens: choose it with preset_tokens, or "
            r"give the custom token another symbol",
            id="custom-token-with-a-preset-symbol",
        ),
        pytest.param(
            f'[networks.p]\npreset = "base"\npreset_tokens = ["USDT"]\n{OPERATOR}',
            r"preset base has no token USDT \(it has: USDC\)",
            id="unknown-preset-token",
        ),
        pytest.param(
            f'[networks.p]\nchain_id = 5\npreset_tokens = ["USDC"]\n{OPERATOR}',
            r"preset_tokens needs a preset",
            id="preset-tokens-without-preset",
        ),
        pytest.param(
            f"[networks.p]\n{OPERATOR}",
            r"networks\.p\.chain_id: Field required",
            id="custom-network-without-chain-id",
        ),
        pytest.param(
            f'[networks.p]\npreset = "ethereum"\nfee_percentiles = [50, 10, 85]\n{OPERATOR}',
            r"fee settings: percentiles must rise from slow to fast",
            id="percentiles-out-of-order",
        ),
        pytest.param(
            f'[networks.p]\npreset = "ethereum"\nfee_percentiles = [10, 50, 101]\n{OPERATOR}',
            r"fee_percentiles\.2: Input should be less than or equal to 100",
            id="percentile-above-100",
        ),
        pytest.param(
            f'[networks.p]\npreset = "ethereum"\nfee_model = "eip4844"\n{OPERATOR}',
            r"fee_model: Input should be 'eip1559' or 'legacy'",
            id="unknown-fee-model",
        ),
        pytest.param(
            f'[networks.p]\npreset = "ethereum"\ndefault_priority = "urgent"\n{OPERATOR}',
            r"default_priority: Input should be 'slow', 'normal' or 'fast'",
            id="unknown-priority",
        ),
        pytest.param(
            f'[networks.p]\npreset = "bsc"\nmin_gas_price_gwei = 0.05\n{OPERATOR}',
            r"min_gas_price_gwei: gwei must be an integer or a decimal string such "
            r'as "0\.05"',
            id="float-gwei",
        ),
        pytest.param(
            f'[networks.p]\nchain_id = 5\nexplorer_transaction_url = "https://x.invalid/tx/"\n'
            f'explorer_address_url = "https://x.invalid/a/{{address}}"\n{OPERATOR}',
            r"explorer_transaction_url must contain \{hash\}",
            id="explorer-without-placeholder",
        ),
        pytest.param(
            f'[networks.p]\nchain_id = 5\nexplorer_address_url = "https://x.invalid/{{address}}"\n'
            f"{OPERATOR}",
            r"explorer_transaction_url and explorer_address_url go together",
            id="half-an-explorer",
        ),
        pytest.param(
            f'[networks.p]\nchain_id = 5\nl1_fee_oracle = "0x42"\n{OPERATOR}',
            r"l1_fee_oracle: address must be 0x followed by 40 hexadecimal digits",
            id="bad-l1-fee-oracle",
        ),
    ],
)
def test_inconsistent_networks_are_refused_in_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    assert re.search(message, refused(tmp_path, text))


def test_the_example_of_docs_networks_md_loads(tmp_path: Path) -> None:
    doc = (DOCS / "networks.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", doc, re.DOTALL)
    assert example is not None
    config = load(tmp_path, example.group(1))["polygon"]
    assert [t.symbol for t in config.tokens] == ["USDC", "USDC.e"]
    fees = config.fee_policy()
    assert (fees.max_fee_per_gas, fees.default_level) == (5000 * GWEI, FeeLevel.FAST)
