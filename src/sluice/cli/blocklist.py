"""`sluice blocklist import|list|remove`: addresses nothing is ever paid to."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sluice.cli.common import cli_actor, console, fail, line, plain, records, run, settings
from sluice.clock import SystemClock
from sluice.domain.address_lists import Blocked, parse_csv, parse_lines
from sluice.domain.addresses import Address, parse_address
from sluice.domain.audit import AuditRecord
from sluice.errors import InvalidRequestError

app = typer.Typer(help="Import, list and remove blocklisted addresses.", no_args_is_help=True)


class Format(StrEnum):
    """How an imported file lists its addresses."""

    LINES = "lines"
    CSV = "csv"


@app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="The file: one address per line, or a CSV.")],
    file_format: Annotated[
        Format,
        typer.Option(
            "--format",
            help="lines: one address per line (# comments); csv: every "
            "address in any column (a sanctions list's CSV).",
        ),
    ] = Format.LINES,
    source: Annotated[
        str, typer.Option(help="Where the list comes from (kept per address).")
    ] = "import",
    reason: Annotated[str | None, typer.Option(help="Why these addresses are blocked.")] = None,
) -> None:
    """Add every address of a file to the blocklist. It takes effect at once, also for
    withdrawals validated but not yet signed (checked again just before signing)."""
    loaded = settings()
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")
    try:
        addresses = parse_csv(text) if file_format is Format.CSV else parse_lines(text)
    except InvalidRequestError as exc:
        fail(f"{path}: {exc.detail}")
    if not addresses:
        fail(f"{path}: no address found")

    async def main() -> int:
        now = SystemClock().now()
        async with records(loaded) as uow:
            added = await uow.policy.block(
                [Blocked(a, source[:64], reason, now) for a in addresses]
            )
            await uow.audit.append(
                AuditRecord(
                    actor=cli_actor(),
                    action="blocklist.imported",
                    subject=f"blocklist:{source[:64]}",
                    at=now,
                    detail={"file": str(path), "addresses": len(addresses), "new": added},
                )
            )
            await uow.commit()
        return added

    added = run(main())
    console.print(
        line(f"{len(addresses)} addresses read, {added} new on the blocklist (source {source!r})"),
        highlight=False,
    )


@app.command("list")
def list_blocked(
    source: Annotated[str | None, typer.Option(help="Only those from this source.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
) -> None:
    """The newest blocklisted addresses."""
    loaded = settings()

    async def main() -> list[Blocked]:
        async with records(loaded) as uow:
            return await uow.policy.blocklist(limit=limit, source=source)

    table = Table("address", "source", "reason", "added")
    for entry in run(main()):
        table.add_row(
            plain(entry.address),
            plain(entry.source),
            plain(entry.reason or ""),
            plain(entry.added_at.isoformat(timespec="seconds")),
        )
    console.print(table)


@app.command("remove")
def remove(address: Annotated[str, typer.Argument(help="The address to take off.")]) -> None:
    """Take an address off the blocklist."""
    loaded = settings()
    try:
        target = parse_address(address.lower())
    except InvalidRequestError as exc:
        fail(exc.detail)

    async def main(target: Address) -> bool:
        async with records(loaded) as uow:
            removed = await uow.policy.unblock(target)
            if removed:
                await uow.audit.append(
                    AuditRecord(
                        actor=cli_actor(),
                        action="blocklist.removed",
                        subject=f"address:{target}",
                        at=SystemClock().now(),
                    )
                )
            await uow.commit()
        return removed

    if not run(main(target)):
        fail(f"{target} is not on the blocklist", 1)
    console.print(line(f"{target} removed from the blocklist"), highlight=False)
