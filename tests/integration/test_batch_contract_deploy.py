"""`sluice contracts deploy` on a real node (Anvil): each hot wallet gets a BatchPayout it owns,
approved for the maximum of every token, and a second run keeps it; verification refuses an
address without code, other code and another owner's BatchPayout; and `sluice serve` refuses
to start (exit 2, the reason on one line) with a batch contract that does not verify."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from eth_account import Account
from typer.testing import CliRunner

from sluice.chains.batch_contract import (
    MAX_ALLOWANCE,
    set_up_batch_contract,
    verify_batch_contract,
)
from sluice.chains.evm import EvmChainClient
from sluice.cli import app
from sluice.cli.common import records
from sluice.config import Settings
from sluice.devnet import setup
from sluice.devnet.anvil import AnvilProcess, free_port
from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Network
from sluice.testing.anvil_control import control_for
from sluice.testing.fakes import LocalSigner

runner = CliRunner()

PASSPHRASE = "batch-contract-test"
T = TypeVar("T")


@dataclass(frozen=True)
class Prepared:
    """A data directory with a migrated database, a funded hot wallet, the demo token and a
    networks file (no batching table yet); the settings point at it."""

    data_dir: Path
    keystore: Path
    wallet: Address
    token: Address
    rpc_url: str

    @property
    def networks_file(self) -> Path:
        return self.data_dir / "networks.toml"


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def _deploy(network: str = setup.NETWORK) -> subprocess.CompletedProcess[str]:
    """`sluice contracts deploy` in a process of its own, with the test's settings (in this
    one, it would set up logging for the rest of the session)."""
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "sluice", "contracts", "deploy", "--network", network],
        env={**os.environ, "SLUICE_LOG_LEVEL": "warning"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _read(
    rpc_url: str, contract: Address, wallet: Address, token: Address
) -> tuple[str | None, int, int]:
    """The contract's verification for ``wallet``, the token allowance it has, and the
    wallet's pending nonce."""
    chain = EvmChainClient(rpc_url)
    try:
        return (
            await verify_batch_contract(chain, contract, wallet),
            await chain.token_allowance(token, wallet, contract),
            await chain.transaction_count(wallet, pending=True),
        )
    finally:
        await chain.close()


async def _nonce_counter(wallet: Address) -> int:
    async with records(Settings()) as uow:
        # Never below 0: the stored counter as it is (nothing committed).
        return await uow.transactions.reconcile_nonce(setup.NETWORK, wallet, 0)


def _contract_of(stdout: str, wallet: Address) -> Address:
    table = tomllib.loads(stdout)["networks"][setup.NETWORK]["batching"]
    assert set(table["contracts"]) == {wallet}
    return Address(table["contracts"][wallet])


@pytest.fixture
def prepared(
    anvil: AnvilProcess, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Prepared:
    """On the session's database (SQLite or PostgreSQL): deploying raises its nonce counter."""
    data_dir = tmp_path / "data"
    keystore = setup.hot_wallet(data_dir, PASSPHRASE, fast_kdf=True)
    wallet = setup.hot_wallet_address(keystore)
    chain = setup.prepare_chain(anvil.rpc_url, data_dir, wallet)
    setup.write_networks_file(
        data_dir / "networks.toml",
        rpc_url=anvil.rpc_url,
        keystore=keystore,
        token=chain.token,
        confirmations=1,
        poll_interval_s=0.1,
    )
    for name in ("SLUICE_NETWORKS_FILE", "SLUICE_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLUICE_DATABASE_URL", database_url)
    monkeypatch.setenv("SLUICE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SLUICE_KEYSTORE_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SLUICE_LOG_FORMAT", "json")
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    return Prepared(data_dir, keystore, wallet, chain.token, anvil.rpc_url)


def test_deploy_gives_the_wallet_a_contract_it_owns_approved_for_the_maximum(
    prepared: Prepared,
) -> None:
    result = _deploy()

    assert result.returncode == 0, result.stderr
    contract = _contract_of(result.stdout, prepared.wallet)
    verdict, allowance, pending = _run(
        _read(prepared.rpc_url, contract, prepared.wallet, prepared.token)
    )
    assert verdict is None
    assert allowance == MAX_ALLOWANCE
    assert f"BatchPayout deployed at {contract}" in result.stderr
    assert f"{setup.TOKEN_SYMBOL} approved for {contract}" in result.stderr
    # The nonces it used are never handed out by the engine: the counter is at the chain's.
    assert _run(_nonce_counter(prepared.wallet)) == pending
    assert "Traceback" not in result.stderr


def test_a_second_run_with_the_table_pasted_keeps_the_contract_and_sends_nothing(
    prepared: Prepared,
) -> None:
    first = _deploy()
    assert first.returncode == 0, first.stderr
    contract = _contract_of(first.stdout, prepared.wallet)
    with prepared.networks_file.open("a", encoding="utf-8") as file:
        file.write("\n" + first.stdout)
    *_, pending = _run(_read(prepared.rpc_url, contract, prepared.wallet, prepared.token))

    second = _deploy()

    assert second.returncode == 0, second.stderr
    assert _contract_of(second.stdout, prepared.wallet) == contract
    assert f"batch contract {contract} verifies; kept" in second.stderr
    assert "maximum already" in second.stderr
    *_, after = _run(_read(prepared.rpc_url, contract, prepared.wallet, prepared.token))
    assert after == pending


def test_a_configured_contract_that_does_not_verify_is_replaced_by_a_new_one(
    prepared: Prepared,
) -> None:
    with prepared.networks_file.open("a", encoding="utf-8") as file:
        file.write(
            f"\n[networks.{setup.NETWORK}.batching]\n"
            f'contracts = {{ "{prepared.wallet}" = "{prepared.token}" }}\n'
        )

    result = _deploy()

    assert result.returncode == 0, result.stderr
    contract = _contract_of(result.stdout, prepared.wallet)
    assert contract != prepared.token
    refused = (
        f"batch contract {prepared.token} of hot wallet {prepared.wallet} is not a BatchPayout"
    )
    assert refused in result.stderr
    assert "deploying a new one" in result.stderr


def test_an_unknown_network_is_one_line_and_exit_2(prepared: Prepared) -> None:
    result = _deploy("nowhere")

    assert result.returncode == 2
    assert result.stderr.startswith("error: no network 'nowhere' in ")
    assert f"(it has: {setup.NETWORK})" in result.stderr
    assert "Traceback" not in result.stderr


# ── Verification ──────────────────────────────────────────────────────────────────────────────


async def test_verification_refuses_no_code_other_code_and_another_owner(
    anvil: AnvilProcess, tmp_path: Path
) -> None:
    wallet = Address(Account.create().address)
    chain = await asyncio.to_thread(setup.prepare_chain, anvil.rpc_url, tmp_path, wallet)
    stranger = LocalSigner()
    async with control_for(anvil) as control:
        await control.set_balance(stranger.address, 10**18)
    network = Network(name=setup.NETWORK, chain_id=setup.CHAIN_ID, native=Asset("anvil", "ETH", 18))
    client = EvmChainClient(anvil.rpc_url)
    try:
        theirs = await set_up_batch_contract(network, client, stranger, None)
        nowhere = Address(Account.create().address)

        assert await verify_batch_contract(client, theirs.contract, stranger.address) is None
        assert await verify_batch_contract(client, nowhere, wallet) == (
            f"batch contract {nowhere} of hot wallet {wallet} has no code on this chain"
        )
        other_code = await verify_batch_contract(client, chain.token, wallet)
        assert other_code is not None
        assert other_code.startswith(
            f"batch contract {chain.token} of hot wallet {wallet} is not a BatchPayout"
        )
        assert await verify_batch_contract(client, theirs.contract, wallet) == (
            f"batch contract {theirs.contract} is owned by {stranger.address}, "
            f"not by hot wallet {wallet}"
        )
    finally:
        await client.close()


def test_start_with_a_batch_contract_that_does_not_verify_exits_2_with_the_reason(
    prepared: Prepared,
) -> None:
    with prepared.networks_file.open("a", encoding="utf-8") as file:
        file.write(
            f"\n[networks.{setup.NETWORK}.batching]\n"
            f'contracts = {{ "{prepared.wallet}" = "{prepared.token}" }}\n'
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_DATA_DIR=str(prepared.data_dir),
        SLUICE_KEYSTORE_PASSPHRASE=PASSPHRASE,
        SLUICE_LOG_FORMAT="json",
        SLUICE_LOG_LEVEL="error",
    )

    exited = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "sluice", "serve", "--port", str(free_port())],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    assert exited.returncode == 2, exited.stderr
    (error,) = [line for line in exited.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(
        f"error: network {setup.NETWORK}: batch contract {prepared.token} of hot wallet "
        f"{prepared.wallet} is not a BatchPayout (its code hash is 0x"
    )
    assert "Traceback" not in exited.stderr


@pytest.mark.parametrize("command", [["contracts"], ["contracts", "deploy"]])
def test_the_contracts_commands_explain_themselves(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
