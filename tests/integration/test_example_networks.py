"""The example networks files in docs/networks load as they are (placeholders and all), with the
chain ids and USDC contracts docs/testnet.md cites: they cannot rot unnoticed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.config import load_networks
from sluice.domain.fees import Finality

DOCS = Path(__file__).resolve().parents[2] / "docs" / "networks"


@pytest.mark.parametrize(
    ("file", "name", "chain_id", "native", "finality", "usdc"),
    [
        (
            "sepolia.toml",
            "sepolia",
            11155111,
            "ETH",
            Finality.FINALIZED,
            "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238",
        ),
        (
            "base-sepolia.toml",
            "base-sepolia",
            84532,
            "ETH",
            Finality.DEPTH,
            "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        ),
        (
            "amoy.toml",
            "amoy",
            80002,
            "POL",
            Finality.DEPTH,
            "0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582",
        ),
    ],
)
def test_each_example_networks_file_loads(  # noqa: PLR0917 - one parameter per column
    file: str, name: str, chain_id: int, native: str, finality: Finality, usdc: str
) -> None:
    networks = load_networks(DOCS / file)
    assert list(networks) == [name]
    config = networks[name]
    assert config.chain_id == chain_id
    assert config.native_symbol == native
    assert config.finality is finality
    assert [(t.symbol, t.address, t.decimals) for t in config.tokens] == [("USDC", usdc, 6)]
    assert config.hot_wallet_keystore is not None
    assert all(".invalid/" in url for url in config.rpc_urls)  # placeholders, never a real key
    # The domain view builds too (what `sluice withdrawals` renders amounts with).
    assert config.to_domain(name).asset_by_key(config.to_domain(name).tokens[0].key).decimals == 6


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in DOCS.glob("*.toml")) == [
        "amoy.toml",
        "base-sepolia.toml",
        "sepolia.toml",
    ]
