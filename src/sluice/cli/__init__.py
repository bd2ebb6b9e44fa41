"""The `sluice` command line (entry point ``sluice.cli:app``).

Each group is a module of its own (`apikey`, `keystore`, `check` for ``config``, `withdrawals`;
`run` for the commands that run Sluice). Heavy imports (the database, web3, the bootstrap) stay
inside the commands that need them, so ``sluice --help`` and the small commands start fast.
Every command reads the same `sluice.config.Settings`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sluice import __version__
from sluice.cli import apikey, check, keystore, run, withdrawals

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, add_completion=True)


def _print_version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Sluice: a withdrawal engine for custodial crypto platforms.

    Every command reads the same settings: SLUICE_* variables, and SLUICE_DATA_DIR (default
    .sluice) for the database, the networks file and dev.json unless they are set apart.
    """


for command in (run.dev, run.serve, run.worker, run.signer, run.demo, run.migrate, run.version):
    app.command()(command)
app.add_typer(keystore.app, name="keystore")
app.add_typer(check.app, name="config")
app.add_typer(apikey.app, name="apikey")
app.add_typer(withdrawals.app, name="withdrawals")
