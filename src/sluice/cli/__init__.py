"""The `sluice` command line (entry point ``sluice.cli:app``).

Each group is a module of its own (`apikey`, `keystore`, `check` for ``config``, `withdrawals`,
`contracts`; `run` for the commands that run Sluice). Heavy imports (the database, web3, the
bootstrap) stay inside the commands that need them, so ``sluice --help`` and the small commands
start fast.
Every command reads the same `sluice.config.Settings`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from sluice import __version__
from sluice.cli import (
    apikey,
    audit,
    blocklist,
    check,
    contracts,
    keystore,
    network,
    operator,
    policy,
    run,
    withdrawals,
)

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
app.add_typer(contracts.app, name="contracts")
app.add_typer(operator.app, name="operator")
app.add_typer(audit.app, name="audit")
app.add_typer(policy.app, name="policy")
app.add_typer(blocklist.app, name="blocklist")
app.add_typer(network.app, name="network")


def _reflowed(doc: str | None) -> str | None:
    """A docstring with each paragraph on one line: Typer keeps a docstring's line breaks after
    the first paragraph, which in a narrow terminal break a sentence in odd places."""
    if doc is None:
        return None
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split("\n")) for p in paragraphs)


def _reflow(typer_app: typer.Typer) -> None:
    """Reflow the help of every command of ``typer_app`` and of its groups (the docstrings are
    read when the command line is built, after this)."""
    callbacks: list[Callable[..., Any] | None] = [c.callback for c in typer_app.registered_commands]
    if typer_app.registered_callback is not None:
        callbacks.append(typer_app.registered_callback.callback)
    for callback in callbacks:
        if callback is not None:
            callback.__doc__ = _reflowed(callback.__doc__)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _reflow(group.typer_instance)


_reflow(app)
