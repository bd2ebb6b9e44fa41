"""What the command line prints from data, settings, errors or the user is printed as it is:
``[...]`` in a name, an id, a path or an error message is never taken as Rich markup (which would
eat it, or fail with a traceback), and our own styling stays."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sluice import runtime
from sluice.cli import app
from sluice.cli import keystore as keystore_cli
from sluice.devnet import dev, setup

runner = CliRunner()

#: Texts Rich would take as markup: a closing tag that matches nothing (a MarkupError), a style
#: (eaten), and an extra's name in brackets (eaten).
BRACKETED = ["[/y]", "[bold]x", "x[aws]"]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated data directory that every setting derives from, and nothing else set."""
    for name in (
        "SLUICE_DATABASE_URL",
        "SLUICE_NETWORKS_FILE",
        "SLUICE_KEYSTORE_PASSPHRASE",
        "SLUICE_QUEUE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "data"
    monkeypatch.setenv("SLUICE_DATA_DIR", str(directory))
    monkeypatch.setenv("SLUICE_LOG_FORMAT", "json")
    monkeypatch.setenv("COLUMNS", "250")
    migrated = runner.invoke(app, ["migrate"])
    assert migrated.exit_code == 0, migrated.output
    return directory


def _one_line(output: str) -> str:
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.usefixtures("data_dir")
@pytest.mark.parametrize("name", BRACKETED)
def test_a_key_name_with_brackets_is_printed_as_given_and_the_secret_is_not_lost(
    name: str,
) -> None:
    created = runner.invoke(app, ["apikey", "create", "--name", name])
    assert created.exit_code == 0, created.output
    assert created.stdout.strip().startswith("sluice_")
    assert f"API key for {name!r}" in created.output

    table = runner.invoke(app, ["apikey", "list"])
    assert table.exit_code == 0, table.output
    assert "Traceback" not in table.output
    assert f" {name} " in table.output
    (listed,) = json.loads(runner.invoke(app, ["apikey", "list", "--json"]).stdout)
    assert listed["name"] == name


@pytest.mark.usefixtures("data_dir")
@pytest.mark.parametrize("key_id", BRACKETED)
def test_an_id_with_brackets_is_named_in_one_line(key_id: str) -> None:
    missing = runner.invoke(app, ["withdrawals", "get", key_id])
    assert missing.exit_code == 1
    assert _one_line(missing.output) == f"error: withdrawal {key_id!r} does not exist"

    revoked = runner.invoke(app, ["apikey", "revoke", key_id])
    assert revoked.exit_code == 1
    assert _one_line(revoked.output) == f"error: no live key {key_id!r}"


@pytest.mark.parametrize("directory", BRACKETED)
def test_a_data_dir_with_brackets_is_named_as_it_is(
    directory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLUICE_DATABASE_URL", raising=False)
    monkeypatch.setenv("SLUICE_LOG_FORMAT", "json")
    data_dir = tmp_path / directory
    monkeypatch.setenv("SLUICE_DATA_DIR", str(data_dir))

    missing = runner.invoke(app, ["apikey", "list"])
    assert missing.exit_code == 2
    where = (data_dir / "sluice.db").resolve()
    assert _one_line(missing.output).startswith(f"error: no Sluice database at {where} ")

    migrated = runner.invoke(app, ["migrate"], env={"COLUMNS": "500"})
    assert migrated.exit_code == 0, migrated.output
    assert f"database at {where} is up to date" in migrated.output


@pytest.mark.usefixtures("data_dir")
def test_config_check_prints_paths_with_brackets_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    networks_file = tmp_path / "[bold]networks" / "networks.toml"
    networks_file.parent.mkdir()
    keystore = tmp_path / "[/k]" / "hot.json"
    # Port 9 (discard) on loopback: nothing listens, the RPC URL is refused at once.
    networks_file.write_text(
        f"""
[networks.local]
chain_id = 31337
rpc_urls = ["http://127.0.0.1:9"]
hot_wallet_keystore = "{keystore}"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("SLUICE_NETWORKS_FILE", str(networks_file))
    result = runner.invoke(app, ["config", "check"], env={"COLUMNS": "500"})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert str(keystore) in result.output
    assert f"problem(s) ({networks_file.resolve()})" in result.output


def test_keystore_new_names_a_path_with_brackets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keystore_cli, "KDF", ("pbkdf2", 2))
    monkeypatch.setenv("SLUICE_KEYSTORE_PASSPHRASE", "brackets")
    out = tmp_path / "[/k]" / "hot.json"
    result = runner.invoke(app, ["keystore", "new", "--out", str(out)], env={"COLUMNS": "500"})
    assert result.exit_code == 0, result.output
    assert f"wrote {out.resolve()} (mode 0600)" in result.output

    again = runner.invoke(app, ["keystore", "new", "--out", str(out)])
    assert again.exit_code == 2
    assert _one_line(again.output).startswith(f"error: {out.resolve()} exists already")


def test_demo_names_a_dev_file_with_brackets(tmp_path: Path) -> None:
    dev_file = tmp_path / "[/d]" / "dev.json"
    result = runner.invoke(app, ["demo", "--dev-file", str(dev_file)], env={"COLUMNS": "500"})
    assert result.exit_code == 1
    assert f"{dev_file.resolve()} not found:" in result.output


def test_the_dev_summary_prints_paths_with_brackets_and_keeps_its_styles(tmp_path: Path) -> None:
    dev_file = tmp_path / "[/d]" / "[bold]dev.json"
    info = setup.DevInfo(
        apiUrl="http://127.0.0.1:8000",
        apiKey="sluice_x_y",
        rpcUrl="http://127.0.0.1:8545",
        network=setup.NETWORK,
        chainId=setup.CHAIN_ID,
        hotWallet="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        tokens={setup.TOKEN_SYMBOL: "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
        demoUserId=dev.DEMO_USER,
    )
    console = Console(record=True, width=500, force_terminal=True, file=io.StringIO())
    dev._next_steps(console, info, dev_file)  # what `sluice dev` prints once ready
    text = console.export_text(clear=False)
    assert f"details  {dev_file}  (API key, addresses)" in text
    assert f"jq -r .apiKey '{dev_file}'" in text
    assert "Sluice is running" in text
    assert "[bold green]" not in text  # our own markup is styling, not text
    assert "[/]" not in text
    assert "\x1b[1;32mSluice is running" in console.export_text(styles=True)


def _block(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Make ``packages`` and their submodules unimportable, as if not installed (as
    tests/unit/test_optional.py does)."""
    loaded = [name for name in sys.modules if name.split(".", 1)[0] in packages]
    for name in {*packages, *loaded}:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.usefixtures("data_dir")
@pytest.mark.parametrize(
    ("queue_url", "libraries", "extra"),
    [
        ("sqs://q", ("aiobotocore", "botocore"), "aws"),
        ("redis://127.0.0.1:6379/0", ("redis",), "redis"),
    ],
)
def test_a_missing_extra_is_named_with_its_brackets(
    queue_url: str, libraries: tuple[str, ...], extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("serve got past the missing extra")

    monkeypatch.setattr(runtime, "run", never)  # a failure, never a server that blocks the test
    _block(monkeypatch, *libraries)
    monkeypatch.setenv("SLUICE_QUEUE_URL", queue_url)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2, result.output
    line = _one_line(result.output)
    assert line.startswith("error: SLUICE_QUEUE_URL=")
    assert f"needs the {extra} extra: pip install 'sluice-withdrawals[{extra}]'" in line
