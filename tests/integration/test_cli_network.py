"""`sluice network status|pause|resume` on the configured database: a pause and a freeze from
the command line, audited as the local user, seen by `status`; a resume lifts them; unknown
networks and missing reasons are one line and exit 2."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from sluice.cli.common import cli_actor
from sluice.db.engine import create_engine
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.domain.audit import AuditEntry, AuditFilter
from sluice.queue.memory import MemoryQueue

runner = CliRunner()

NETWORKS = """
[networks.anvil]
chain_id = 31337
rpc_urls = ["http://127.0.0.1:8545"]
hot_wallet_keystore = "/nowhere/hot.json"

[networks.beta]
chain_id = 31338
rpc_urls = ["http://127.0.0.1:8546"]
hot_wallet_keystore = "/nowhere/beta.json"

[networks.beta.circuit_breaker]
window = "1h"
max_outflow = { ETH = "5" }
"""


@pytest.fixture
def configured(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    networks_file = tmp_path / "networks.toml"
    networks_file.write_text(NETWORKS, encoding="utf-8")
    monkeypatch.setenv("SLUICE_DATABASE_URL", database_url)
    monkeypatch.setenv("SLUICE_NETWORKS_FILE", str(networks_file))
    monkeypatch.setenv("SLUICE_LOG_FORMAT", "json")
    monkeypatch.setenv("COLUMNS", "250")
    return database_url


async def _audit(database_url: str) -> list[AuditEntry]:
    engine = create_engine(database_url)
    try:
        async with SqlUnitOfWorkFactory(engine, MemoryQueue())() as uow:
            return await uow.audit.page(AuditFilter(), limit=100)
    finally:
        await engine.dispose()


def _status() -> dict[str, dict[str, object]]:
    result = runner.invoke(app, ["network", "status", "--json"])
    assert result.exit_code == 0, result.output
    parsed: dict[str, dict[str, object]] = json.loads(result.stdout)
    return parsed


def test_pause_freeze_and_resume_from_the_command_line_are_audited(configured: str) -> None:
    assert {name: state["paused"] for name, state in _status().items()} == {
        "*": None,
        "anvil": None,
        "beta": None,
    }

    paused = runner.invoke(app, ["network", "pause", "beta", "--reason", "api down, incident 9"])
    assert paused.exit_code == 0, paused.output
    assert "network beta paused" in paused.output
    frozen = runner.invoke(app, ["network", "pause", "--all", "--reason", "freeze"])
    assert frozen.exit_code == 0, frozen.output

    states = _status()
    beta = states["beta"]["paused"]
    assert isinstance(beta, dict)
    assert (beta["kind"], beta["reason"]) == ("manual", "api down, incident 9")
    assert beta["actor"] == cli_actor().label
    assert isinstance(states["*"]["paused"], dict)
    table = runner.invoke(app, ["network", "status"])
    assert "paused (manual)" in table.output

    for args in (["network", "resume", "--all"], ["network", "resume", "beta", "--reason", "ok"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "runs" in result.output
    assert {name: state["paused"] for name, state in _status().items()} == {
        "*": None,
        "anvil": None,
        "beta": None,
    }
    assert _status()["beta"]["resumedBy"] == cli_actor().label

    entries = asyncio.run(_audit(configured))
    assert [(e.record.action, e.record.subject) for e in entries] == [
        ("network.resumed", "network:beta"),
        ("network.resumed", "network:*"),
        ("network.paused", "network:*"),
        ("network.paused", "network:beta"),
    ]
    assert {e.record.actor for e in entries} == {cli_actor()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["network", "pause", "nowhere", "--reason", "x"], "network 'nowhere' is not served"),
        (["network", "pause", "beta"], "a pause needs --reason"),
        (["network", "pause", "beta", "--all", "--reason", "x"], "not both"),
        (["network", "resume"], "name a network or give --all"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(configured: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
