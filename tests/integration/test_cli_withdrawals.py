"""`sluice withdrawals list|get`: the records on the configured database, rendered as the API
renders them (amounts in token units from the networks file), with their history."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from sluice.clock import SystemClock
from sluice.config import load_networks
from sluice.db.engine import create_engine
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.queue.memory import MemoryQueue
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.services.withdrawals import WithdrawalRequest, WithdrawalService
from sluice.testing.fakes import FakeChain

runner = CliRunner()

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
NETWORKS = f"""
[networks.anvil]
chain_id = 31337
rpc_urls = ["http://127.0.0.1:8545"]
hot_wallet_keystore = "/nowhere/hot.json"

[[networks.anvil.tokens]]
symbol = "USDC"
address = "{TOKEN}"
decimals = 6
"""
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


async def _submit(database_url: str, networks_file: Path) -> list[str]:
    """Three withdrawals through the service, as the API would accept them: their ids."""
    config = load_networks(networks_file)["anvil"]
    registry = NetworkRegistry(
        {"anvil": NetworkEntry(network=config.to_domain("anvil"), chain=FakeChain(), signers=())}
    )
    service = WithdrawalService(registry, SystemClock())
    engine = create_engine(database_url)
    ids = []
    try:
        for user, amount, token in (
            ("alice", "1.5", None),
            ("bob", "2.25", TOKEN),
            ("alice", "0.000001", TOKEN),
        ):
            async with SqlUnitOfWorkFactory(engine, MemoryQueue())() as uow:
                withdrawal, _ = await service.submit(
                    uow,
                    WithdrawalRequest(
                        id=None,
                        user_id=user,
                        amount=amount,
                        to_address=RECIPIENT,
                        token_address=token,
                        network="anvil",
                    ),
                )
                await uow.commit()
            ids.append(withdrawal.id)
    finally:
        await engine.dispose()
    return ids


@pytest.fixture
def submitted(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], Path]:
    networks_file = tmp_path / "networks.toml"
    networks_file.write_text(NETWORKS, encoding="utf-8")
    monkeypatch.setenv("SLUICE_DATABASE_URL", database_url)
    monkeypatch.setenv("SLUICE_NETWORKS_FILE", str(networks_file))
    monkeypatch.setenv("SLUICE_LOG_FORMAT", "json")
    monkeypatch.setenv("COLUMNS", "250")
    return asyncio.run(_submit(database_url, networks_file)), networks_file


def test_list_shows_the_newest_first_in_token_units(submitted: tuple[list[str], Path]) -> None:
    ids, _ = submitted
    result = runner.invoke(app, ["withdrawals", "list", "--json"])
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert [item["id"] for item in items] == ids[::-1]
    assert [(item["amount"], item["symbol"]) for item in items] == [
        ("0.000001", "USDC"),
        ("2.25", "USDC"),
        ("1.5", "ETH"),
    ]
    assert {item["status"] for item in items} == {"PENDING"}
    assert set(items[0]) >= {"userId", "toAddress", "network", "createdAt", "updatedAt"}

    table = runner.invoke(app, ["withdrawals", "list"])
    assert table.exit_code == 0, table.output
    assert all(withdrawal_id in table.output for withdrawal_id in ids)
    assert "2.25 USDC" in table.output


def test_list_filters_by_user_and_status_and_limits(submitted: tuple[list[str], Path]) -> None:
    ids, _ = submitted
    alice = json.loads(
        runner.invoke(app, ["withdrawals", "list", "--user", "alice", "--json"]).stdout
    )
    assert [item["id"] for item in alice] == [ids[2], ids[0]]

    done = runner.invoke(app, ["withdrawals", "list", "--status", "completed", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == []

    limited = runner.invoke(app, ["withdrawals", "list", "--limit", "2", "--json"])
    assert [item["id"] for item in json.loads(limited.stdout)] == [ids[2], ids[1]]
    assert "more than 2 match" in limited.output

    bad = runner.invoke(app, ["withdrawals", "list", "--status", "LOST"])
    assert bad.exit_code == 2


def test_get_shows_the_withdrawal_and_its_history(submitted: tuple[list[str], Path]) -> None:
    ids, _ = submitted
    result = runner.invoke(app, ["withdrawals", "get", ids[1], "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["withdrawal"]["id"] == ids[1]
    assert shown["withdrawal"]["amount"] == "2.25"
    assert shown["withdrawal"]["tokenAddress"] == TOKEN
    assert [(e["fromStatus"], e["status"], e["reason"]) for e in shown["events"]] == [
        (None, "PENDING", "accepted")
    ]

    table = runner.invoke(app, ["withdrawals", "get", ids[1]])
    assert table.exit_code == 0, table.output
    assert "accepted" in table.output
    assert "2.25" in table.output


def test_an_unknown_withdrawal_is_one_line_and_exit_1(submitted: tuple[list[str], Path]) -> None:
    result = runner.invoke(app, ["withdrawals", "get", "wd_nope"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: withdrawal 'wd_nope' does not exist"


def test_without_the_networks_file_amounts_are_in_base_units(
    submitted: tuple[list[str], Path],
) -> None:
    ids, networks_file = submitted
    networks_file.unlink()
    result = runner.invoke(app, ["withdrawals", "get", ids[0], "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["withdrawal"]["amount"] == str(15 * 10**17)
    assert "warning: amounts in base units" in result.output
