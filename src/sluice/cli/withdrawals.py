"""`sluice withdrawals list|get`: the records, read from the database as the API shows them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from sluice.cli.common import console, fail, plain, print_json, records, run, settings, warn
from sluice.config import Settings
from sluice.domain.withdrawal import WithdrawalStatus
from sluice.errors import ConfigurationError, NotFoundError, SluiceError

if TYPE_CHECKING:
    from sluice.api.schemas import WithdrawalOut
    from sluice.domain.assets import Asset, Network
    from sluice.domain.withdrawal import StatusChange, Withdrawal
    from sluice.ports import UnitOfWork
    from sluice.services.withdrawals import WithdrawalService

app = typer.Typer(help="Read withdrawals and their history.", no_args_is_help=True)

#: Exit status for a withdrawal that does not exist.
NOT_FOUND = 1


def _service() -> WithdrawalService:
    """The service's reads (get, page, events) need no network: an empty registry serves."""
    from sluice.clock import SystemClock  # noqa: PLC0415 - keeps other commands fast
    from sluice.services.registry import NetworkRegistry  # noqa: PLC0415 - as above
    from sluice.services.withdrawals import WithdrawalService  # noqa: PLC0415 - as above

    return WithdrawalService(NetworkRegistry({}), SystemClock())


async def _page(
    uow: UnitOfWork, *, user_id: str | None, status: WithdrawalStatus | None, limit: int
) -> tuple[list[Withdrawal], bool]:
    """The newest ``limit`` withdrawals, and whether there are more (the one call to the
    listing: adapt it here when the listing's parameters change)."""
    items, next_page = await _service().page(
        uow, user_id=user_id, status=status, limit=limit, cursor=None
    )
    return items, next_page is not None


def _networks(loaded: Settings) -> dict[str, Network]:
    """The configured networks, for the assets' decimals; none (amounts in base units, with a
    warning) if the networks file cannot be read: the records are still worth showing."""
    try:
        return {name: config.to_domain(name) for name, config in loaded.networks().items()}
    except ConfigurationError as exc:
        warn(f"amounts in base units: {exc.detail}")
        return {}


def _render(withdrawal: Withdrawal, networks: dict[str, Network]) -> WithdrawalOut:
    from sluice.api.schemas import WithdrawalOut  # noqa: PLC0415 - keeps other commands fast

    asset: Asset | None = None
    network = networks.get(withdrawal.network)
    if network is not None:
        try:
            asset = network.asset_by_key(withdrawal.asset_key)
        except SluiceError:  # a token no longer configured: amounts in base units
            asset = None
    return WithdrawalOut.of(withdrawal, asset, network)


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


@app.command("list")
def list_withdrawals(
    user: Annotated[str | None, typer.Option(help="Only this user's withdrawals.")] = None,
    status: Annotated[
        WithdrawalStatus | None, typer.Option(case_sensitive=False, help="Only in this status.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List withdrawals, newest first (from the configured database; no chain needed)."""
    loaded = settings()

    async def main() -> tuple[list[Withdrawal], bool]:
        async with records(loaded) as uow:
            return await _page(uow, user_id=user, status=status, limit=limit)

    items, more = run(main())
    networks = _networks(loaded)
    shown = [_render(w, networks) for w in items]
    if as_json:
        print_json([_dump(w) for w in shown])
    else:
        table = Table("id", "user", "amount", "network", "status", "to", "updated")
        for w in shown:
            cells = (
                w.id,
                w.user_id,
                f"{w.amount} {w.symbol or '(base units)'}",
                w.network,
                w.status.value,
                w.to_address,
                w.updated_at.isoformat(timespec="seconds"),
            )
            table.add_row(*(plain(cell) for cell in cells))  # the records' data: never markup
        console.print(table)
    if more:
        warn(f"more than {limit} match: raise --limit (at most 200) or filter")


@app.command("get")
def get(
    withdrawal_id: Annotated[str, typer.Argument(help="The withdrawal's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show one withdrawal and its history (every status change, with times and reasons)."""
    from sluice.api.schemas import EventOut  # noqa: PLC0415 - keeps other commands fast

    loaded = settings()

    async def main() -> tuple[Withdrawal, list[StatusChange]]:
        service = _service()
        async with records(loaded) as uow:
            withdrawal = await service.get(uow, withdrawal_id)
            return withdrawal, await service.events(uow, withdrawal_id)

    async def found() -> tuple[Withdrawal, list[StatusChange]]:
        try:
            return await main()
        except NotFoundError as exc:
            fail(exc.detail, NOT_FOUND)

    withdrawal, changes = run(found())
    shown = _render(withdrawal, _networks(loaded))
    events = [EventOut.of(change) for change in changes]
    if as_json:
        print_json({"withdrawal": _dump(shown), "events": [_dump(e) for e in events]})
        return
    details = Table.grid(padding=(0, 2))
    for key, value in _dump(shown).items():
        if value is not None:
            details.add_row(plain(key, "bold"), plain(value))
    console.print(details)
    history = Table("at", "from", "to", "reason", "error")
    for event in events:
        cells = (
            event.at.isoformat(timespec="milliseconds"),
            event.from_status.value if event.from_status else "",
            event.status.value,
            event.reason,
            event.error_code or "",
        )
        history.add_row(*(plain(cell) for cell in cells))
    console.print(history)
