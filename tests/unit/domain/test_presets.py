"""The built-in networks agree with the tables of docs/networks.md, both ways: every preset's
chain id, native coin, fee model, finality, block time, explorer and fee limits, and every token's
address and decimals (must-hold 4 of issue 11). Then the lookups and their errors."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from sluice.domain.addresses import parse_address
from sluice.domain.fees import GWEI, FeeModel, Finality
from sluice.domain.presets import OP_GAS_PRICE_ORACLE, PRESETS, NetworkPreset, preset
from sluice.errors import ConfigurationError

DOC = Path(__file__).resolve().parents[3] / "docs" / "networks.md"


def _table(first_columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of the table in docs/networks.md whose header starts with ``first_columns``."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    for at, line in enumerate(lines):
        cells = _cells(line)
        if tuple(cells[: len(first_columns)]) == first_columns:
            rows = []
            for row in lines[at + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(cells, _cells(row), strict=True)))
            return rows
    raise AssertionError(f"docs/networks.md has no table starting {first_columns}")


def _cells(line: str) -> list[str]:
    if not line.startswith("|"):
        return []
    return [cell.replace("`", "").strip() for cell in line.strip().strip("|").split("|")]


NETWORKS = _table(("name", "network", "chain id"))
TOKENS = _table(("network", "symbol", "address"))
FEES = _table(("network", "fee cap"))
MAINNETS = {"ethereum", "bsc", "polygon", "arbitrum", "optimism", "base", "avalanche"}


def _gwei(text: str) -> int:
    """``"0.05 gwei"`` or ``"0"`` in wei."""
    amount = Decimal(text.removesuffix(" gwei"))
    return int(amount * GWEI)


def test_the_tables_name_every_preset_and_nothing_else() -> None:
    assert [row["name"] for row in NETWORKS] == list(PRESETS)
    assert [row["network"] for row in FEES] == list(PRESETS)
    assert {row["network"] for row in TOKENS} <= set(PRESETS)


@pytest.mark.parametrize("row", NETWORKS, ids=[row["name"] for row in NETWORKS])
def test_each_preset_is_as_documented(row: dict[str, str]) -> None:
    p = preset(row["name"])
    assert p.display_name == row["network"]
    assert p.chain_id == int(row["chain id"])
    assert row["chain id source"] == f"ethereum-lists/chains _data/chains/eip155-{p.chain_id}.json"
    assert f"eip155-{p.chain_id}.json" in p.sources
    assert p.native_symbol == row["native"]
    assert p.native_decimals == 18
    assert p.fee_model is FeeModel(row["fee model"]) is p.fees.model
    if p.finality is Finality.FINALIZED:
        assert row["finality"] == "finalized"
    else:
        assert row["finality"] == f"depth {p.confirmations}"
    assert p.block_time_s == float(row["block time"].removesuffix(" s"))
    host = row["explorer"]
    assert p.explorer.transaction == f"https://{host}/tx/{{hash}}"
    assert p.explorer.address == f"https://{host}/address/{{address}}"
    assert p.explorer.transaction_url("0xab") == f"https://{host}/tx/0xab"
    assert p.testnet is (p.name not in MAINNETS)


@pytest.mark.parametrize("row", FEES, ids=[row["network"] for row in FEES])
def test_each_presets_fee_limits_are_as_documented(row: dict[str, str]) -> None:
    fees = preset(row["network"]).fees
    assert fees.max_fee_per_gas == _gwei(row["fee cap"])
    assert fees.min_tip_per_gas == _gwei(row["min tip"])
    assert fees.min_gas_price == _gwei(row["min gas price"])
    assert fees.stuck_after_s == float(row["stuck after"].removesuffix(" s"))
    assert fees.max_tip_per_gas is None
    assert (fees.percentiles, fees.gas_price_percent, fees.bump_percent) == (
        (10, 50, 85),
        (100, 125, 150),
        20,
    )


def test_every_documented_token_is_a_preset_token() -> None:
    for row in TOKENS:
        token = preset(row["network"]).token(row["symbol"])
        assert token.address == row["address"], row
        assert token.decimals == int(row["decimals"]), row


def test_every_preset_token_is_documented() -> None:
    documented = {(row["network"], row["symbol"]) for row in TOKENS}
    declared = {(p.name, t.symbol) for p in PRESETS.values() for t in p.tokens}
    assert declared == documented
    assert len(TOKENS) == len(documented)  # no row twice


@pytest.mark.parametrize("p", PRESETS.values(), ids=list(PRESETS))
def test_token_addresses_are_checksummed_and_sourced(p: NetworkPreset) -> None:
    for token in p.tokens:
        assert parse_address(token.address) == token.address
        assert token.source
    assert len({t.symbol for t in p.tokens}) == len(p.tokens)
    assert len({t.address for t in p.tokens}) == len(p.tokens)


def test_chain_ids_are_unique() -> None:
    assert len({p.chain_id for p in PRESETS.values()}) == len(PRESETS)


def test_bsc_is_legacy_with_18_decimal_stablecoins() -> None:
    bsc = preset("bsc")
    assert bsc.fees.legacy
    assert {t.symbol: t.decimals for t in bsc.tokens} == {"USDC": 18, "USDT": 18}
    assert not preset("base").fees.legacy


def test_only_op_stack_chains_name_the_gas_price_oracle() -> None:
    op_stack = {"optimism", "op-sepolia", "base", "base-sepolia"}
    for p in PRESETS.values():
        assert p.l1_fee_oracle == (OP_GAS_PRICE_ORACLE if p.name in op_stack else None)
    assert parse_address(OP_GAS_PRICE_ORACLE) == OP_GAS_PRICE_ORACLE


def test_polygon_waits_a_depth_of_500() -> None:
    for name in ("polygon", "amoy"):
        assert preset(name).finality is Finality.DEPTH
        assert preset(name).confirmations == 500


def test_an_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown preset 'polgon'; known presets: ") as e:
        preset("polgon")
    assert all(name in e.value.detail for name in PRESETS)


def test_an_unknown_token_names_the_presets_tokens() -> None:
    with pytest.raises(ConfigurationError, match=r"preset base has no token USDT \(it has: USDC\)"):
        preset("base").token("USDT")
    with pytest.raises(
        ConfigurationError, match=r"preset hoodi has no token USDC \(it has: none\)"
    ):
        preset("hoodi").token("USDC")


def test_presets_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        PRESETS["ethereum"] = PRESETS["base"]  # type: ignore[index]


def test_the_doc_cites_a_source_for_every_row() -> None:
    assert all(row["source"] for row in TOKENS)
    assert all(re.fullmatch(r"0x[0-9a-fA-F]{40}", row["address"]) for row in TOKENS)
