"""`sluice network status|pause|resume`: pause a network's automatic signing, freeze every
network, and resume, from the command line (for when the API is down; docs/operations.md,
"Freeze"). Each change is audited as ``cli:<local user>``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import typer
from rich.table import Table

from sluice.cli.common import (
    cli_actor,
    console,
    fail,
    line,
    plain,
    print_json,
    records,
    run,
    settings,
)
from sluice.clock import SystemClock
from sluice.config import Settings
from sluice.domain.pauses import EVERY_NETWORK, NetworkControl
from sluice.ports import UnitOfWork
from sluice.services.pauses import ConfiguredCatalog, PauseService, snapshot

app = typer.Typer(
    help="Pause and resume networks' automatic signing, or freeze every network.",
    no_args_is_help=True,
)

Name = Annotated[
    str | None, typer.Argument(help="The network, as in the networks file (or --all).")
]
Every = Annotated[bool, typer.Option("--all", help="Every network at once (the freeze).")]


def _service(loaded: Settings) -> PauseService:
    """Pauses over the networks file's networks (no node is asked, no key is read)."""
    networks = {name: config.to_domain(name) for name, config in loaded.networks().items()}
    return PauseService(ConfiguredCatalog(networks), SystemClock())


def _target(name: str | None, every: bool) -> str | None:
    """The network named, or None for every network; one of the two, not both."""
    if every == (name is not None):
        fail("name a network or give --all (not both)")
    return name


def _change(
    loaded: Settings, act: Callable[[PauseService, UnitOfWork], Awaitable[NetworkControl]]
) -> NetworkControl:
    async def main() -> NetworkControl:
        service = _service(loaded)
        async with records(loaded) as uow:
            changed = await act(service, uow)
            await uow.commit()
        return changed

    return run(main())


def _where(network: str) -> str:
    return "every network" if network == EVERY_NETWORK else f"network {network}"


@app.command("pause")
def pause(
    name: Name = None,
    every: Every = False,
    reason: Annotated[
        str, typer.Option(help="Why: kept with the pause and in the audit log.")
    ] = "",
) -> None:
    """Pause a network's automatic signing (or freeze every network with --all): no new payout
    takes a nonce until it is resumed; what is signed keeps going."""
    loaded = settings()
    network = _target(name, every)
    if not reason.strip():
        fail("a pause needs --reason")
    control = _change(
        loaded, lambda service, uow: service.pause(uow, network, reason=reason, actor=cli_actor())
    )
    pause_ = control.pause
    assert pause_ is not None  # noqa: S101 - a pause always leaves one in force
    console.print(
        line(
            (f"{_where(control.network)} paused", "yellow"),
            f" since {pause_.since.isoformat()} by {pause_.actor}: {pause_.reason}",
        ),
        highlight=False,
        soft_wrap=True,
    )


@app.command("resume")
def resume(
    name: Name = None,
    every: Every = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit log.")] = None,
) -> None:
    """Resume a paused network (a manual pause or a tripped circuit breaker; its breaker's
    window starts afresh), or lift the freeze with --all (a network paused on its own stays
    paused). Held withdrawals are woken by the running workers within 30 s."""
    loaded = settings()
    network = _target(name, every)
    control = _change(
        loaded, lambda service, uow: service.resume(uow, network, actor=cli_actor(), reason=reason)
    )
    console.print(line((f"{_where(control.network)} runs", "green")), highlight=False)


@app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every network's pause state, and the freeze's (network "*")."""
    loaded = settings()

    async def main() -> dict[str, NetworkControl]:
        service = _service(loaded)
        async with records(loaded) as uow:
            return await service.states(uow)

    states = run(main())
    if as_json:
        print_json({name: snapshot(control) for name, control in states.items()})
        return
    table = Table("network", "state", "since", "by", "reason", "resumed")
    for name, control in states.items():
        pause_ = control.pause
        resumed = "" if control.resumed_at is None else control.resumed_at.isoformat()
        if pause_ is None:
            table.add_row(plain(name), plain("runs", "green"), "", "", "", plain(resumed))
            continue
        table.add_row(
            plain(name),
            plain(f"paused ({pause_.kind.value})", "yellow"),
            plain(pause_.since.isoformat()),
            plain(pause_.actor),
            plain(pause_.reason),
            plain(resumed),
        )
    console.print(table)
