"""Networks and assets: keys, lookups by token address and by ledger key, explorer links."""

from __future__ import annotations

import pytest

from sluice.domain.addresses import Address
from sluice.domain.assets import NATIVE, Asset, Explorer, Network
from sluice.domain.fees import FeePolicy, Finality
from sluice.errors import UnknownTokenError

USDC_ADDRESS = Address("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
DAI_ADDRESS = Address("0x6B175474E89094C44Da98b954EedeAC495271d0F")
UNKNOWN_ADDRESS = Address("0xdAC17F958D2ee523a2206206994597C13D831ec7")

ETH = Asset(network="ethereum", symbol="ETH", decimals=18)
USDC = Asset(network="ethereum", symbol="USDC", decimals=6, token_address=USDC_ADDRESS)
DAI = Asset(network="ethereum", symbol="DAI", decimals=18, token_address=DAI_ADDRESS)

ETHEREUM = Network(name="ethereum", chain_id=1, native=ETH, tokens=(USDC, DAI))
BARE = Network(name="bare", chain_id=31337, native=ETH)


@pytest.mark.parametrize(
    ("asset", "key", "is_native"),
    [
        pytest.param(ETH, NATIVE, True, id="native-coin"),
        pytest.param(USDC, USDC_ADDRESS.lower(), False, id="token-is-its-lowercase-address"),
        pytest.param(DAI, "0x6b175474e89094c44da98b954eedeac495271d0f", False, id="another-token"),
    ],
)
def test_an_asset_key_is_native_or_the_lowercase_token_address(
    asset: Asset, key: str, is_native: bool
) -> None:
    assert asset.key == key
    assert asset.is_native is is_native


def test_the_native_key_is_the_word_native() -> None:
    assert NATIVE == "native"


@pytest.mark.parametrize(
    ("token_address", "expected"),
    [
        pytest.param(None, ETH, id="none-is-the-native-coin"),
        pytest.param(USDC_ADDRESS, USDC, id="first-token"),
        pytest.param(DAI_ADDRESS, DAI, id="second-token"),
    ],
)
def test_asset_finds_the_configured_asset_for_a_token_address(
    token_address: Address | None, expected: Asset
) -> None:
    assert ETHEREUM.asset(token_address) is expected


@pytest.mark.parametrize(
    ("network", "token_address"),
    [
        pytest.param(ETHEREUM, UNKNOWN_ADDRESS, id="unconfigured-token"),
        pytest.param(BARE, USDC_ADDRESS, id="network-without-tokens"),
    ],
)
def test_asset_refuses_a_token_that_is_not_configured(
    network: Network, token_address: Address
) -> None:
    with pytest.raises(UnknownTokenError, match=f"not configured on {network.name}"):
        network.asset(token_address)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param(NATIVE, ETH, id="native"),
        pytest.param(USDC_ADDRESS.lower(), USDC, id="first-token"),
        pytest.param(DAI_ADDRESS.lower(), DAI, id="second-token"),
    ],
)
def test_asset_by_key_finds_the_asset_for_a_ledger_key(key: str, expected: Asset) -> None:
    assert ETHEREUM.asset_by_key(key) is expected


@pytest.mark.parametrize(
    ("network", "key"),
    [
        pytest.param(ETHEREUM, UNKNOWN_ADDRESS.lower(), id="unconfigured-token"),
        pytest.param(ETHEREUM, "ETH", id="a-symbol-is-not-a-key"),
        pytest.param(BARE, USDC_ADDRESS.lower(), id="network-without-tokens"),
    ],
)
def test_asset_by_key_refuses_an_unknown_key(network: Network, key: str) -> None:
    with pytest.raises(UnknownTokenError, match=f"not configured on {network.name}"):
        network.asset_by_key(key)


@pytest.mark.parametrize("asset", [ETH, USDC, DAI], ids=["eth", "usdc", "dai"])
def test_every_asset_is_found_again_by_its_own_key(asset: Asset) -> None:
    assert ETHEREUM.asset_by_key(asset.key) is asset


@pytest.mark.parametrize(
    ("network", "addresses"),
    [
        pytest.param(ETHEREUM, (USDC_ADDRESS, DAI_ADDRESS), id="in-configuration-order"),
        pytest.param(BARE, (), id="no-tokens"),
        pytest.param(
            Network(name="odd", chain_id=5, native=ETH, tokens=(ETH, USDC)),
            (USDC_ADDRESS,),
            id="an-asset-without-address-is-skipped",
        ),
    ],
)
def test_token_addresses_lists_every_configured_token_contract(
    network: Network, addresses: tuple[Address, ...]
) -> None:
    assert network.token_addresses == addresses


def test_a_network_has_sensible_defaults() -> None:
    assert (BARE.tokens, BARE.confirmations, BARE.poll_interval_s, BARE.hot_wallets) == (
        (),
        1,
        1.0,
        (),
    )


def test_a_networks_new_settings_default_to_a_plain_network() -> None:
    assert (
        BARE.display_name,
        BARE.preset,
        BARE.block_time_s,
        BARE.explorer,
        BARE.l1_fee_oracle,
        BARE.finality,
        BARE.fees,
    ) == ("", None, 12.0, None, None, Finality.DEPTH, FeePolicy())


ETHERSCAN = Explorer(
    transaction="https://etherscan.io/tx/{hash}", address="https://etherscan.io/address/{address}"
)
TX_HASH = "0x" + "ab" * 32


def test_an_explorer_links_a_transaction_by_its_hash() -> None:
    assert ETHERSCAN.transaction_url(TX_HASH) == f"https://etherscan.io/tx/{TX_HASH}"


def test_an_explorer_links_an_address() -> None:
    assert ETHERSCAN.address_url(USDC_ADDRESS) == f"https://etherscan.io/address/{USDC_ADDRESS}"


def test_an_explorer_fills_only_its_own_placeholder_wherever_it_stands() -> None:
    explorer = Explorer(
        transaction="https://scan.example/{hash}?again={hash}&not={address}",
        address="https://scan.example/?a={address}&not={hash}",
    )
    assert explorer.transaction_url("0x1") == "https://scan.example/0x1?again=0x1&not={address}"
    assert explorer.address_url("0x2") == "https://scan.example/?a=0x2&not={hash}"


def test_a_template_without_a_placeholder_is_returned_as_it_is() -> None:
    explorer = Explorer(transaction="https://scan.example/tx", address="https://scan.example/a")
    assert explorer.transaction_url(TX_HASH) == "https://scan.example/tx"
    assert explorer.address_url(USDC_ADDRESS) == "https://scan.example/a"


def test_a_network_carries_its_explorer() -> None:
    network = Network(name="ethereum", chain_id=1, native=ETH, explorer=ETHERSCAN)
    assert network.explorer is not None
    assert network.explorer.transaction_url(TX_HASH).endswith(TX_HASH)
