"""The command line: help for every command, one set of settings (SLUICE_DATA_DIR), clear lines
for a missing or unmigrated database, and API key management on a real database."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from typer.testing import CliRunner

from sluice import __version__
from sluice.cli import app
from sluice.cli.common import records
from sluice.config import Settings
from sluice.db.engine import alembic_config
from sluice.devnet.anvil import free_port
from sluice.domain.access import ApiKey, Scope
from sluice.services.api_keys import hash_secret

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory that every setting derives from, and nothing else set."""
    for name in ("SLUICE_DATABASE_URL", "SLUICE_NETWORKS_FILE", "SLUICE_KEYSTORE_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "data"
    monkeypatch.setenv("SLUICE_DATA_DIR", str(directory))
    monkeypatch.setenv("SLUICE_LOG_FORMAT", "json")
    monkeypatch.setenv("COLUMNS", "200")  # the tables' columns in full
    return directory


@pytest.fixture
def migrated(data_dir: Path) -> Path:
    """The data directory with its database made by `sluice migrate`."""
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    return data_dir


def _no_traceback(output: str) -> None:
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1, output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["dev"],
        ["serve"],
        ["worker"],
        ["demo"],
        ["migrate"],
        ["apikey"],
        ["apikey", "create"],
        ["apikey", "list"],
        ["keystore"],
        ["keystore", "new"],
        ["keystore", "import"],
        ["keystore", "address"],
        ["config"],
        ["config", "check"],
        ["withdrawals"],
        ["withdrawals", "list"],
        ["withdrawals", "get"],
        ["operator"],
        ["operator", "create"],
        ["operator", "list"],
        ["operator", "change"],
        ["operator", "key"],
        ["audit"],
        ["audit", "verify"],
        ["audit", "list"],
        ["policy"],
        ["policy", "check"],
        ["policy", "load"],
        ["policy", "show"],
        ["blocklist"],
        ["blocklist", "import"],
        ["blocklist", "list"],
        ["blocklist", "remove"],
        ["network"],
        ["network", "status"],
        ["network", "pause"],
        ["network", "resume"],
    ],
)
def test_every_command_explains_itself(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_the_version_is_an_option_and_a_command() -> None:
    for args in (["--version"], ["version"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert result.output.strip() == __version__


def test_shell_completion_is_offered() -> None:
    assert "--install-completion" in runner.invoke(app, ["--help"]).output


def test_migrate_makes_the_database_in_the_data_dir(data_dir: Path) -> None:
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert (data_dir / "sluice.db").is_file()
    assert str((data_dir / "sluice.db").resolve()) in result.output.replace("\n", "")


def test_a_command_never_creates_a_missing_database(data_dir: Path) -> None:
    for args in (
        ["apikey", "create", "--name", "ops"],
        ["apikey", "list"],
        ["apikey", "revoke", "some-id"],
        ["withdrawals", "list"],
        ["withdrawals", "get", "wd_x"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        _no_traceback(result.output)
        assert f"no Sluice database at {(data_dir / 'sluice.db').resolve()}" in result.output
        assert "sluice migrate" in result.output
    assert not data_dir.exists()


def test_a_database_behind_the_head_is_named_with_both_revisions(data_dir: Path) -> None:
    data_dir.mkdir()
    url = f"sqlite+aiosqlite:///{data_dir / 'sluice.db'}"
    command.upgrade(alembic_config(url), "0006")
    result = runner.invoke(app, ["apikey", "list"])
    assert result.exit_code == 2
    _no_traceback(result.output)
    assert "not migrated (at 0006, head " in result.output
    assert "run `sluice migrate`" in result.output

    assert runner.invoke(app, ["migrate"]).exit_code == 0
    assert runner.invoke(app, ["apikey", "list"]).exit_code == 0


def test_an_empty_database_file_is_not_migrated(data_dir: Path) -> None:
    data_dir.mkdir()
    sqlite3.connect(data_dir / "sluice.db").close()
    result = runner.invoke(app, ["apikey", "list"])
    assert result.exit_code == 2
    _no_traceback(result.output)
    assert "not migrated (empty" in result.output


def test_an_unreachable_database_server_is_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    monkeypatch.setenv("SLUICE_DATABASE_URL", "postgresql+asyncpg://sluice:pw@127.0.0.1:9/sluice")
    result = runner.invoke(app, ["apikey", "list"])
    assert result.exit_code == 2
    _no_traceback(result.output)
    assert "cannot reach the database at postgresql+asyncpg://sluice:***@127.0.0.1:9" in (
        result.output
    )
    assert ":pw@" not in result.output


def test_an_invalid_setting_is_one_line(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_PORT", "not-a-port")
    result = runner.invoke(app, ["apikey", "list"])
    assert result.exit_code == 2
    _no_traceback(result.output)
    assert "SLUICE_PORT" in result.output


def test_api_keys_are_created_listed_and_revoked(migrated: Path) -> None:
    created = runner.invoke(app, ["apikey", "create", "--name", "ops", "--scope", "admin"])
    assert created.exit_code == 0, created.output
    assert "scopes admin;" in created.output
    token = created.stdout.strip()  # `KEY=$(sluice apikey create …)` captures the key only
    assert token.startswith("sluice_")
    assert len(token.splitlines()) == 1
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


def test_a_key_gets_withdrawal_scopes_but_not_admin_unless_asked(migrated: Path) -> None:
    plain = runner.invoke(app, ["apikey", "create", "--name", "backend"])
    assert plain.exit_code == 0, plain.output
    assert "scopes withdrawals:read, withdrawals:write;" in plain.output

    alice = runner.invoke(app, ["apikey", "create", "--name", "alice-desk", "--user", "alice"])
    assert alice.exit_code == 0, alice.output
    assert "scopes withdrawals:read, withdrawals:write; users: alice" in alice.output

    listed = json.loads(runner.invoke(app, ["apikey", "list", "--json"]).stdout)
    scopes = {key["name"]: key["scopes"] for key in listed}
    assert scopes == {
        "backend": ["withdrawals:read", "withdrawals:write"],
        "alice-desk": ["withdrawals:read", "withdrawals:write"],
    }


def test_a_key_restricted_to_users_is_refused_the_admin_scope(migrated: Path) -> None:
    args = ["apikey", "create", "--name", "x", "--user", "alice", "--scope", "admin"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    _no_traceback(result.output)
    assert "admin" in result.output
    assert json.loads(runner.invoke(app, ["apikey", "list", "--json"]).stdout) == []


def test_apikey_list_prints_json(migrated: Path) -> None:
    args = ["apikey", "create", "--name", "bot", "--ip", "10.0.0.0/8", "--rate-limit", "5"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["apikey", "list", "--json"])
    assert result.exit_code == 0, result.output
    (key,) = json.loads(result.stdout)
    assert key["name"] == "bot"
    assert key["userIds"] is None
    assert key["ipRanges"] == ["10.0.0.0/8"]
    assert key["rateLimitPerS"] == 5
    assert key["revokedAt"] is None
    assert set(key) >= {"id", "createdAt", "requireSignature"}


def test_an_unknown_scope_is_refused(migrated: Path) -> None:
    result = runner.invoke(app, ["apikey", "create", "--name", "x", "--scope", "root"])
    assert result.exit_code != 0


def test_a_key_made_from_another_directory_lands_in_the_data_dir(
    migrated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    created = runner.invoke(app, ["apikey", "create", "--name", "ops"])
    assert created.exit_code == 0, created.output
    assert not (elsewhere / ".sluice").exists()
    key_id = created.stdout.strip().split("_")[1]
    assert key_id in runner.invoke(app, ["apikey", "list"]).output


def test_demo_without_a_running_instance_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--dev-file", str(tmp_path / "dev.json")])
    assert result.exit_code == 1
    assert "make run" in result.output


def test_demo_looks_for_the_instance_in_the_data_dir(data_dir: Path) -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 1
    assert str((data_dir / "dev.json").resolve()) in result.output.replace("\n", "")


def test_a_key_can_be_restricted_to_users_and_ip_ranges(migrated: Path) -> None:
    args = ["apikey", "create", "--name", "desk", "--user", "bob", "--user", "carol"]
    created = runner.invoke(app, [*args, "--ip", "10.0.0.0/8"])
    assert created.exit_code == 0, created.output

    limited = ["apikey", "create", "--name", "bot", "--rate-limit", "5"]
    assert runner.invoke(app, limited).exit_code == 0

    listed = runner.invoke(app, ["apikey", "list"])
    assert "bob,carol" in listed.output
    assert "10.0.0.0/8" in listed.output
    assert "5/s" in listed.output

    bad = runner.invoke(app, ["apikey", "create", "--name", "x", "--ip", "10.0.0.0/33"])
    assert bad.exit_code == 2
    assert "invalid IP range" in bad.output


def test_apikey_list_shows_a_fingerprint_of_the_signing_key(migrated: Path) -> None:
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    encoded = base64.b64encode(public).decode()
    args = ["apikey", "create", "--name", "signer", "--public-key", encoded]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, ["apikey", "create", "--name", "bearer"]).exit_code == 0

    listed = {
        key["name"]: key
        for key in json.loads(runner.invoke(app, ["apikey", "list", "--json"]).stdout)
    }
    assert listed["signer"]["signingKey"] == f"ed25519:{encoded[:12]}"
    assert listed["signer"]["signingPublicKey"] == encoded
    assert listed["signer"]["requireSignature"] is True
    assert listed["bearer"]["signingKey"] is None

    table = runner.invoke(app, ["apikey", "list"])
    assert table.exit_code == 0, table.output
    assert f"ed25519:{encoded[:12]}" in table.output
    assert encoded not in table.output  # a short fingerprint in the table


async def _store(key: ApiKey) -> None:
    """A stored key as an older version could have made it (the service now refuses its
    shape)."""
    async with records(Settings()) as uow:
        await uow.api_keys.add(key)
        await uow.commit()


def test_apikey_list_shows_the_scopes_a_key_acts_with(migrated: Path) -> None:
    restricted = ApiKey(
        id="0123456789abcdef",
        name="old-desk",
        scopes=frozenset({Scope.ADMIN, Scope.WITHDRAWALS_READ}),
        secret_hash=hash_secret("not a real secret"),
        created_at=datetime.now(UTC),
        user_ids=frozenset({"alice"}),
    )
    asyncio.run(_store(restricted))

    (key,) = json.loads(runner.invoke(app, ["apikey", "list", "--json"]).stdout)
    assert key["scopes"] == ["withdrawals:read"]
    assert key["refusedScopes"] == {"admin": "restricted to users"}

    table = runner.invoke(app, ["apikey", "list"])
    assert table.exit_code == 0, table.output
    assert "withdrawals:read,admin (refused: restricted to users)" in table.output


def test_dev_refuses_a_busy_api_port_before_any_work(data_dir: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["dev", "--port", str(port), "--anvil-port", str(free_port())]
        result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    _no_traceback(result.output)
    assert result.output.startswith(f"error: API port {port} on 127.0.0.1 is in use")
    assert "--port" in result.output
    assert not data_dir.exists()  # nothing deployed, no Anvil started


@pytest.mark.parametrize(
    ("command", "sentence"),
    [
        ([], "SLUICE_DATA_DIR (default .sluice) for the database"),
        (["dev"], "makes an API key (every scope: a local playground), and writes dev.json"),
        (["keystore", "import"], "read from stdin when piped; never give it as an argument"),
    ],
)
def test_help_paragraphs_wrap_to_the_terminal_not_to_the_docstring(
    command: list[str], sentence: str
) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert sentence in result.output
    # A 300-column terminal holds each paragraph of these help texts on one line.
    lines = [line.strip() for line in result.output.splitlines()]
    prose = [line for line in lines if line and not line.startswith(("│", "╭", "╰", "Usage"))]
    assert all(line.endswith((".", ")")) for line in prose), prose
