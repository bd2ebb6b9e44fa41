"""`sluice keystore new|import|address`: a hot wallet's key in an encrypted keystore file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from sluice.cli.common import fail, line, settings, stderr
from sluice.errors import ConfigurationError

app = typer.Typer(
    help="Make hot wallet keystores (Web3 Secret Storage v3, scrypt) and read their address.",
    no_args_is_help=True,
)

#: The key derivation: scrypt with eth-account's strong defaults (None: its default work
#: factor). Tests replace it with a cheap one; nothing else should.
KDF: tuple[Literal["scrypt", "pbkdf2"], int | None] = ("scrypt", None)

_OUT = typer.Option(
    "--out",
    help="The keystore file to write (never overwritten; mode 0600; directories created).",
)


def _passphrase() -> str:
    """SLUICE_KEYSTORE_PASSPHRASE, or asked twice on the terminal (hidden)."""
    loaded = settings().keystore_passphrase
    if loaded is not None:
        return loaded.get_secret_value()
    value: str = typer.prompt(
        "Passphrase for the keystore", hide_input=True, confirmation_prompt=True
    )
    return value


def _write(out: Path, private_key: str | None) -> None:
    from sluice.signers.keystore import create_keystore  # noqa: PLC0415 - keeps others fast

    kdf, iterations = KDF
    if out.exists():  # before asking for a passphrase that would be of no use
        fail(f"{out.resolve()} exists already; not overwriting it (it may hold the only key)")
    passphrase = _passphrase()
    try:
        address = create_keystore(
            out,
            passphrase,
            private_key=private_key,
            kdf=kdf,
            iterations=iterations,
        )
    except ConfigurationError as exc:
        fail(exc.detail)
    stderr.print(
        line(
            f"wrote {out.resolve()} (mode 0600) for the hot wallet below; keep a backup of the"
            " file and of its passphrase (SLUICE_KEYSTORE_PASSPHRASE for `sluice serve`)"
        ),
        highlight=False,
    )
    print(address)  # plain stdout, so scripts can capture it


@app.command("new")
def new(out: Annotated[Path, _OUT]) -> None:
    """Make a new random key, encrypt it into a keystore file, and print its address."""
    _write(out, None)


@app.command("import")
def import_key(out: Annotated[Path, _OUT]) -> None:
    """Encrypt an existing private key into a keystore file, and print its address.

    The key is asked for on the terminal (hidden), or read from stdin when piped; never give it
    as an argument (it would stay in the shell history).
    """
    if sys.stdin.isatty():
        given: str = typer.prompt("Private key (hex)", hide_input=True)
    else:
        given = sys.stdin.readline()
    key = given.strip()
    if not key:
        fail("no private key given (on the terminal, or one line on stdin)")
    _write(out, key if key.startswith("0x") else "0x" + key)


@app.command("address")
def address(
    keystore: Annotated[Path, typer.Argument(help="A keystore file.")],
) -> None:
    """Print the address a keystore file holds (no passphrase needed)."""
    from sluice.signers.keystore import keystore_address  # noqa: PLC0415 - keeps others fast

    try:
        print(keystore_address(keystore))
    except ConfigurationError as exc:
        fail(exc.detail)
