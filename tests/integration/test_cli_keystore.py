"""`sluice keystore new|import|address`: encrypted keystores, the passphrase from the environment
or asked twice, the private key never on the command line."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from sluice.cli import app
from sluice.cli import keystore as keystore_cli
from sluice.signers.keystore import KeystoreSigner

runner = CliRunner()

PASSPHRASE = "correct horse battery staple"
#: Anvil's second default account (public test mnemonic): never a real key.
KEY = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
KEY_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cheap key derivation, as sluice.devnet.setup.hot_wallet(fast_kdf=True) uses in tests."""
    monkeypatch.setattr(keystore_cli, "KDF", ("pbkdf2", 2))


@pytest.fixture
def no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLUICE_KEYSTORE_PASSPHRASE", raising=False)


def test_new_writes_a_strongly_encrypted_keystore_readable_only_by_its_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_KEYSTORE_PASSPHRASE", PASSPHRASE)
    out = tmp_path / "keys" / "hot.json"
    result = runner.invoke(app, ["keystore", "new", "--out", str(out)])
    assert result.exit_code == 0, result.output
    address = result.stdout.strip()  # the address alone on stdout, for scripts

    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    keyfile = json.loads(out.read_text(encoding="utf-8"))
    assert keyfile["crypto"]["kdf"] == "scrypt"  # the strong default, not a test shortcut
    assert KeystoreSigner.from_file(out, PASSPHRASE).address == address


@pytest.mark.usefixtures("fast_kdf", "no_passphrase")
def test_new_asks_for_the_passphrase_twice(tmp_path: Path) -> None:
    out = tmp_path / "hot.json"
    result = runner.invoke(
        app, ["keystore", "new", "--out", str(out)], input=f"{PASSPHRASE}\n{PASSPHRASE}\n"
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("Passphrase") == 1
    assert "Repeat for confirmation" in result.output
    address = result.stdout.strip().splitlines()[-1]
    assert KeystoreSigner.from_file(out, PASSPHRASE).address == address


@pytest.mark.usefixtures("fast_kdf", "no_passphrase")
def test_two_different_passphrases_are_asked_again(tmp_path: Path) -> None:
    out = tmp_path / "hot.json"
    typed = f"{PASSPHRASE}\nsomething else\n{PASSPHRASE}\n{PASSPHRASE}\n"
    result = runner.invoke(app, ["keystore", "new", "--out", str(out)], input=typed)
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    KeystoreSigner.from_file(out, PASSPHRASE)


@pytest.mark.usefixtures("fast_kdf")
def test_new_never_overwrites_a_keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_KEYSTORE_PASSPHRASE", PASSPHRASE)
    out = tmp_path / "hot.json"
    assert runner.invoke(app, ["keystore", "new", "--out", str(out)]).exit_code == 0
    before = out.read_bytes()
    again = runner.invoke(app, ["keystore", "new", "--out", str(out)])
    assert again.exit_code == 2
    assert "not overwriting" in again.output
    assert "Traceback" not in again.output
    assert out.read_bytes() == before


@pytest.mark.usefixtures("fast_kdf")
def test_import_reads_the_key_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_KEYSTORE_PASSPHRASE", PASSPHRASE)
    out = tmp_path / "imported.json"
    result = runner.invoke(app, ["keystore", "import", "--out", str(out)], input=f"0x{KEY}\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == KEY_ADDRESS
    assert KEY not in result.output  # never echoed
    assert KeystoreSigner.from_file(out, PASSPHRASE).address == KEY_ADDRESS
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.usefixtures("fast_kdf", "no_passphrase")
def test_import_takes_a_key_without_0x_and_asks_for_the_passphrase(tmp_path: Path) -> None:
    out = tmp_path / "imported.json"
    typed = f"{KEY}\n{PASSPHRASE}\n{PASSPHRASE}\n"
    result = runner.invoke(app, ["keystore", "import", "--out", str(out)], input=typed)
    assert result.exit_code == 0, result.output
    assert KeystoreSigner.from_file(out, PASSPHRASE).address == KEY_ADDRESS


@pytest.mark.usefixtures("fast_kdf")
def test_import_refuses_a_malformed_key_without_quoting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_KEYSTORE_PASSPHRASE", PASSPHRASE)
    out = tmp_path / "imported.json"
    result = runner.invoke(app, ["keystore", "import", "--out", str(out)], input="0xnothex123\n")
    assert result.exit_code == 2
    assert "not a valid secp256k1 key" in result.output
    assert "nothex123" not in result.output
    assert not out.exists()

    empty = runner.invoke(app, ["keystore", "import", "--out", str(out)], input="\n")
    assert empty.exit_code == 2
    assert "no private key" in empty.output


def test_import_takes_no_key_argument(tmp_path: Path) -> None:
    result = runner.invoke(app, ["keystore", "import", "--out", str(tmp_path / "k.json"), KEY])
    assert result.exit_code == 2  # a usage error: there is no such argument
    assert not (tmp_path / "k.json").exists()


def test_address_reads_a_keystore_without_its_passphrase(tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    out.write_text(
        json.dumps(Account.encrypt(bytes.fromhex(KEY), "x", kdf="pbkdf2", iterations=2)), "utf-8"
    )
    result = runner.invoke(app, ["keystore", "address", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == KEY_ADDRESS

    missing = runner.invoke(app, ["keystore", "address", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
    assert "cannot read the keystore" in missing.output
    out.write_text("{}", "utf-8")
    assert "declares no address" in runner.invoke(app, ["keystore", "address", str(out)]).output
