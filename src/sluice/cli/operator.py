"""`sluice operator create|list|change|key`: the people who run Sluice."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sluice.cli.common import (
    cli_actor,
    console,
    line,
    plain,
    print_json,
    records,
    run,
    settings,
    stderr,
)
from sluice.clock import SystemClock
from sluice.domain.operators import Operator, Role
from sluice.services.api_keys import ApiKeyService
from sluice.services.operators import OperatorService

app = typer.Typer(
    help="Create, list and change operators, and give them keys.", no_args_is_help=True
)


def _service() -> OperatorService:
    return OperatorService(ApiKeyService(SystemClock()), SystemClock())


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise typer.BadParameter(f"roles are: {', '.join(r.value for r in Role)}") from None


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Lower case: a-z 0-9 . _ @ - (e.g. alice).")],
    role: Annotated[str, typer.Option(help="viewer, approver or admin.")] = "viewer",
) -> None:
    """Make an operator and their first API key, shown once (only its hash is stored)."""
    loaded = settings()
    wanted = _role(role)

    async def main() -> tuple[Operator, str]:
        async with records(loaded) as uow:
            made = await _service().create(uow, name=name, role=wanted, actor=cli_actor())
            await uow.commit()
        return made

    operator, token = run(main())
    print(token, flush=True)
    stderr.print(
        line(
            f"operator {operator.name!r} ({operator.id}), role {operator.role.value}: "
            "their API key is shown once, above"
        ),
        highlight=False,
        soft_wrap=True,
    )


@app.command("list")
def list_operators(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List operators."""
    loaded = settings()

    async def main() -> list[Operator]:
        async with records(loaded) as uow:
            return await uow.operators.all()

    found = run(main())
    if as_json:
        print_json(
            [
                {"id": o.id, "name": o.name, "role": o.role.value, "disabled": o.disabled}
                for o in found
            ]
        )
        return
    table = Table("id", "name", "role", "state", "created")
    for o in found:
        state = plain("disabled", "dim") if o.disabled else plain("enabled", "green")
        table.add_row(
            plain(o.id), plain(o.name), plain(o.role.value), state, plain(o.created_at.isoformat())
        )
    console.print(table)


@app.command("change")
def change(
    operator: Annotated[str, typer.Argument(help="The operator's name or id.")],
    role: Annotated[str | None, typer.Option(help="A new role.")] = None,
    disable: Annotated[
        bool | None, typer.Option("--disable/--enable", help="Disable or enable them.")
    ] = None,
) -> None:
    """Change an operator's role, or disable them (their keys are revoked; an enabled operator
    with a new role gets a new key, printed)."""
    loaded = settings()
    wanted = None if role is None else _role(role)

    async def main() -> Operator:
        async with records(loaded) as uow:
            changed = await _service().change(
                uow, operator, actor=cli_actor(), role=wanted, disabled=disable
            )
            await uow.commit()
        return changed

    changed = run(main())
    state = "disabled" if changed.disabled else "enabled"
    console.print(
        line(f"operator {changed.name!r}: role {changed.role.value}, {state}"), highlight=False
    )


@app.command("key")
def key(operator: Annotated[str, typer.Argument(help="The operator's name or id.")]) -> None:
    """Make another API key for an operator, shown once."""
    loaded = settings()

    async def main() -> str:
        async with records(loaded) as uow:
            token = await _service().new_key(uow, operator, actor=cli_actor())
            await uow.commit()
        return token

    print(run(main()), flush=True)
