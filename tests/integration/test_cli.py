"""The command line: help for every command, and API key management on a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "command",
    [[], ["dev"], ["serve"], ["worker"], ["demo"], ["migrate"], ["apikey"], ["apikey", "create"]],
)
def test_every_command_explains_itself(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_api_keys_are_created_listed_and_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SLUICE_LOG_FORMAT", "json")
    monkeypatch.setenv("COLUMNS", "200")  # the table's columns in full

    created = runner.invoke(app, ["apikey", "create", "--name", "ops", "--scope", "admin"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("sluice_")
    key_id = token.split("_")[1]

    listed = runner.invoke(app, ["apikey", "list"])
    assert listed.exit_code == 0, listed.output
    assert key_id in listed.output
    assert "live" in listed.output
    assert token.split("_", 2)[2] not in listed.output  # never the secret

    revoked = runner.invoke(app, ["apikey", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in runner.invoke(app, ["apikey", "list"]).output
    again = runner.invoke(app, ["apikey", "revoke", key_id])
    assert again.exit_code == 1


def test_an_unknown_scope_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    result = runner.invoke(app, ["apikey", "create", "--name", "x", "--scope", "root"])
    assert result.exit_code != 0


def test_demo_without_a_running_instance_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--dev-file", str(tmp_path / "dev.json")])
    assert result.exit_code == 1
    assert "make run" in result.output


def test_a_key_can_be_restricted_to_users_and_ip_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    args = ["apikey", "create", "--name", "desk", "--user", "bob", "--user", "carol"]
    created = runner.invoke(app, [*args, "--ip", "10.0.0.0/8"])
    assert created.exit_code == 0, created.output

    limited = ["apikey", "create", "--name", "bot", "--signed", "--rate-limit", "5"]
    assert runner.invoke(app, limited).exit_code == 0

    listed = runner.invoke(app, ["apikey", "list"])
    assert "bob,carol" in listed.output
    assert "10.0.0.0/8" in listed.output
    assert "5/s" in listed.output

    bad = runner.invoke(app, ["apikey", "create", "--name", "x", "--ip", "10.0.0.0/33"])
    assert bad.exit_code == 2
    assert "invalid IP range" in bad.output
