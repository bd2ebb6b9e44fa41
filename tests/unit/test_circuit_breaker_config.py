"""``[networks.<name>.circuit_breaker]``: a window and per-asset limits in token units as
decimal strings, turned into base units; every mistake is refused at load with one line naming
the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.config import load_networks
from sluice.domain.assets import NATIVE
from sluice.domain.pauses import CircuitBreaker
from sluice.errors import ConfigurationError

USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
HEAD = f"""
[networks.base]
chain_id = 84532
rpc_urls = ["https://rpc.invalid/KEY"]
hot_wallet_keystore = "/keys/hot.json"
tokens = [{{ symbol = "USDC", address = "{USDC}", decimals = 6 }}]
"""


def load(tmp_path: Path, breaker: str) -> CircuitBreaker:
    path = tmp_path / "networks.toml"
    path.write_text(HEAD + "\n[networks.base.circuit_breaker]\n" + breaker, encoding="utf-8")
    loaded = load_networks(path)["base"].to_domain("base").circuit_breaker
    assert loaded is not None
    return loaded


def refused(tmp_path: Path, breaker: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load(tmp_path, breaker)
    return caught.value.detail


def test_limits_are_token_units_turned_into_base_units(tmp_path: Path) -> None:
    breaker = load(tmp_path, 'window = "1h"\nmax_outflow = { ETH = "50", USDC = "250000.5" }\n')
    assert breaker.window_s == 3600
    assert breaker.limits == {
        NATIVE: 50 * 10**18,
        USDC.lower(): 250_000_500_000,
    }


def test_a_window_may_be_seconds(tmp_path: Path) -> None:
    breaker = load(tmp_path, 'window = 900\nmax_outflow = { ETH = "1" }\n')
    assert breaker.window_s == 900


def test_no_table_no_breaker(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text(HEAD, encoding="utf-8")
    assert load_networks(path)["base"].to_domain("base").circuit_breaker is None


@pytest.mark.parametrize(
    ("breaker", "named"),
    [
        ('window = "1 hour"\nmax_outflow = { ETH = "1" }\n', "circuit_breaker.window:"),
        ('window = "30d"\nmax_outflow = { ETH = "1" }\n', "circuit_breaker.window:"),
        ('max_outflow = { ETH = "1" }\n', "circuit_breaker.window:"),
        ('window = "1h"\nmax_outflow = { ETH = 50 }\n', "circuit_breaker.max_outflow: ETH"),
        ('window = "1h"\nmax_outflow = { ETH = 0.1 }\n', "circuit_breaker.max_outflow: ETH"),
        ('window = "1h"\nmax_outflow = { DAI = "1" }\n', "circuit_breaker.max_outflow.DAI"),
        ('window = "1h"\nmax_outflow = { USDC = "0.0000001" }\n', "max_outflow.USDC"),
        ('window = "1h"\nmax_outflow = { ETH = "-1" }\n', "max_outflow.ETH"),
        ('window = "1h"\nmax_outflow = { ETH = "0" }\n', "max_outflow.ETH"),
        ('window = "1h"\nmax_outflow = {}\n', "circuit_breaker.max_outflow:"),
        ('window = "1h"\nmax_outflow = { ETH = "1" }\nlimit = 3\n', "circuit_breaker.limit"),
    ],
)
def test_mistakes_are_refused_naming_the_field(tmp_path: Path, breaker: str, named: str) -> None:
    detail = refused(tmp_path, breaker)
    assert named in detail
    assert "networks.base" in detail
