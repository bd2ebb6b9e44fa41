"""`sluice config check` against a real node (Anvil): a wrong chain id and wrong token decimals
are both named (on two networks or on one), and the command exits 1; a configuration that
matches the chain passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from sluice.cli import keystore as keystore_cli
from sluice.devnet import setup
from sluice.devnet.anvil import AnvilProcess

runner = CliRunner()

PASSPHRASE = "config-check-test"


def _network(
    name: str, *, chain_id: int, rpc_url: str, keystore: Path, token: str, decimals: int
) -> str:
    return f"""
[networks.{name}]
chain_id = {chain_id}
rpc_urls = ["{rpc_url}"]
hot_wallet_keystore = "{keystore}"

[[networks.{name}.tokens]]
symbol = "DEMO"
address = "{token}"
decimals = {decimals}
"""


@pytest.fixture
def prepared(
    anvil: AnvilProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path, setup.DevChain]:
    """A data directory with a migrated database, a funded hot wallet and the demo token
    (18 decimals) deployed; the settings point at it."""
    data_dir = tmp_path / "data"
    keystore = setup.hot_wallet(data_dir, PASSPHRASE, fast_kdf=True)
    chain = setup.prepare_chain(anvil.rpc_url, data_dir, setup.hot_wallet_address(keystore))
    for name in ("SLUICE_DATABASE_URL", "SLUICE_NETWORKS_FILE", "SLUICE_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLUICE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SLUICE_KEYSTORE_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SLUICE_LOG_FORMAT", "json")
    monkeypatch.setenv("COLUMNS", "250")
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    return data_dir, keystore, chain


def test_a_wrong_chain_id_and_wrong_decimals_are_both_named(
    anvil: AnvilProcess, prepared: tuple[Path, Path, setup.DevChain]
) -> None:
    data_dir, keystore, chain = prepared
    (data_dir / "networks.toml").write_text(
        _network(
            "mainnet",  # Anvil's chain is 31337, not Ethereum's 1
            chain_id=1,
            rpc_url=anvil.rpc_url,
            keystore=keystore,
            token=chain.token,
            decimals=18,
        )
        + _network(
            "anvil",
            chain_id=setup.CHAIN_ID,
            rpc_url=anvil.rpc_url,
            keystore=keystore,
            token=chain.token,
            decimals=6,  # the demo token has 18
        ),
        encoding="utf-8",
    )

    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "chain id 31337, configured 1" in result.output
    assert "decimals() is 18, configured 6" in result.output
    assert "2 problem(s)" in result.output

    as_json = runner.invoke(app, ["config", "check", "--json"])
    assert as_json.exit_code == 1
    rows = json.loads(as_json.stdout)
    found = {(row["check"], row["detail"]) for row in rows if row["result"] == "problem"}
    assert found == {
        ("rpc", "chain id 31337, configured 1"),
        ("token", "decimals() is 18, configured 6"),
    }
    assert ("database", "ok") in {(row["check"], row["result"]) for row in rows}


def test_one_network_with_a_wrong_chain_id_and_wrong_decimals_gets_both_named(
    anvil: AnvilProcess, prepared: tuple[Path, Path, setup.DevChain]
) -> None:
    data_dir, keystore, chain = prepared
    (data_dir / "networks.toml").write_text(
        _network(
            "anvil",
            chain_id=1,  # Anvil's chain is 31337
            rpc_url=anvil.rpc_url,
            keystore=keystore,
            token=chain.token,
            decimals=6,  # the demo token has 18
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["config", "check", "--json"])
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    found = [(row["check"], row["detail"]) for row in rows if row["result"] == "problem"]
    served = " (read on chain 31337, which the RPC serves)"
    assert found == [
        ("rpc", "chain id 31337, configured 1"),
        ("token", f"decimals() is 18, configured 6{served}"),
    ]
    balances = [row for row in rows if row["check"] == "balance"]
    assert [row["result"] for row in balances] == ["ok", "ok"]  # the wallet is funded there
    assert all(row["detail"].endswith(served) for row in balances)

    table = runner.invoke(app, ["config", "check"])
    assert table.exit_code == 1
    assert "decimals() is 18, configured 6 (read on chain 31337" in table.output
    assert "2 problem(s)" in table.output


def test_a_dev_data_dir_without_the_passphrase_says_where_dev_keeps_it(
    anvil: AnvilProcess,
    prepared: tuple[Path, Path, setup.DevChain],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir, keystore, chain = prepared
    setup.write_networks_file(
        data_dir / "networks.toml",
        rpc_url=anvil.rpc_url,
        keystore=keystore,
        token=chain.token,
        confirmations=1,
        poll_interval_s=0.1,
    )
    monkeypatch.delenv("SLUICE_KEYSTORE_PASSPHRASE")

    def wallet_detail() -> str:
        result = runner.invoke(app, ["config", "check", "--json"])
        assert result.exit_code == 1, result.output
        (wallet,) = (row for row in json.loads(result.stdout) if row["check"] == "hot wallet")
        assert wallet["result"] == "problem"
        detail: str = wallet["detail"]
        return detail

    unset = "SLUICE_KEYSTORE_PASSPHRASE is not set: the key cannot be decrypted"
    assert wallet_detail().endswith(unset)  # no dev passphrase here: nothing more to say

    secret = setup.passphrase_file(data_dir)
    secret.write_text(PASSPHRASE, encoding="utf-8")
    where = secret.resolve()
    assert wallet_detail().endswith(
        f"{unset}; sluice dev keeps its passphrase in {where}:"
        f' export SLUICE_KEYSTORE_PASSPHRASE="$(cat {where})"'
    )
    assert PASSPHRASE not in wallet_detail()  # named, never read


def test_a_configuration_matching_the_chain_passes(
    anvil: AnvilProcess, prepared: tuple[Path, Path, setup.DevChain]
) -> None:
    data_dir, keystore, chain = prepared
    setup.write_networks_file(
        data_dir / "networks.toml",
        rpc_url=anvil.rpc_url,
        keystore=keystore,
        token=chain.token,
        confirmations=1,
        poll_interval_s=0.1,
    )
    result = runner.invoke(app, ["config", "check", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["result"] for row in rows} == {"ok"}
    assert [row["check"] for row in rows] == [
        "database",
        "rpc",
        "token",
        "hot wallet",
        "balance",
        "balance",
    ]
    wallet = next(row for row in rows if row["check"] == "hot wallet")
    assert chain.hot_wallet in wallet["target"]


def test_a_wrong_passphrase_and_an_empty_wallet_are_problems(
    anvil: AnvilProcess,
    prepared: tuple[Path, Path, setup.DevChain],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir, _keystore, chain = prepared
    # A second keystore whose address holds nothing on the chain.
    monkeypatch.setattr(keystore_cli, "KDF", ("pbkdf2", 2))
    empty = data_dir / "keys" / "empty.json"
    assert runner.invoke(app, ["keystore", "new", "--out", str(empty)]).exit_code == 0
    setup.write_networks_file(
        data_dir / "networks.toml",
        rpc_url=anvil.rpc_url,
        keystore=empty,
        token=chain.token,
        confirmations=1,
        poll_interval_s=0.1,
    )
    result = runner.invoke(app, ["config", "check", "--json"])
    assert result.exit_code == 1, result.output
    details = [row["detail"] for row in json.loads(result.stdout) if row["result"] == "problem"]
    assert details == ["0 ETH: no gas for any transaction", "0 DEMO: it cannot pay DEMO"]

    monkeypatch.setenv("SLUICE_KEYSTORE_PASSPHRASE", "not the passphrase")
    wrong = runner.invoke(app, ["config", "check", "--json"])
    assert wrong.exit_code == 1
    rows = json.loads(wrong.stdout)
    wallet = next(row for row in rows if row["check"] == "hot wallet")
    assert wallet["result"] == "problem"
    assert "wrong passphrase" in wallet["detail"]


def test_an_invalid_networks_file_is_one_line_and_exit_1(
    prepared: tuple[Path, Path, setup.DevChain],
) -> None:
    data_dir, _keystore, _chain = prepared
    (data_dir / "networks.toml").write_text("[networks.x]\nchain_id = 0\n", encoding="utf-8")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 1
    assert result.output.startswith("error: networks file ")
    assert "Traceback" not in result.output

    (data_dir / "networks.toml").unlink()
    missing = runner.invoke(app, ["config", "check"])
    assert missing.exit_code == 1
    assert "does not exist" in missing.output
