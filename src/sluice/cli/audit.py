"""`sluice audit verify|list`: the tamper-evident log of operator actions."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sluice.cli.common import console, fail, line, plain, print_json, records, run, settings
from sluice.domain.audit import AuditEntry, AuditFilter
from sluice.services.audit import Verification, verify

app = typer.Typer(help="Check and read the audit log.", no_args_is_help=True)

#: Exit status of `verify` when the chain is broken.
BROKEN = 1


@app.command("verify")
def verify_command() -> None:
    """Check every entry's hash and link, oldest first; name the first broken entry (exit 1)."""
    loaded = settings()

    async def main() -> Verification:
        async with records(loaded) as uow:
            return await verify(uow)

    result = run(main())
    if result.broken is not None:
        fail(
            f"audit log broken at entry {result.broken.seq}: {result.broken.reason}"
            f" ({result.entries} entries read)",
            BROKEN,
        )
    console.print(line(f"audit log intact: {result.entries} entries"), highlight=False)


@app.command("list")
def list_entries(
    action: Annotated[str | None, typer.Option(help="Only this action.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject (kind:id).")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor (kind:id).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The newest entries."""
    loaded = settings()
    where = AuditFilter(actor=actor, action=action, subject=subject)

    async def main() -> list[AuditEntry]:
        async with records(loaded) as uow:
            return await uow.audit.page(where, limit=limit)

    entries = run(main())
    if as_json:
        print_json(
            [
                {
                    "seq": e.seq,
                    "at": e.record.at.isoformat(),
                    "actor": e.record.actor.label,
                    "action": e.record.action,
                    "subject": e.record.subject,
                    "before": e.record.before,
                    "after": e.record.after,
                    "detail": e.record.detail,
                    "hash": e.hash,
                }
                for e in entries
            ]
        )
        return
    table = Table("seq", "at", "actor", "action", "subject")
    for e in entries:
        table.add_row(
            plain(str(e.seq)),
            plain(e.record.at.isoformat(timespec="seconds")),
            plain(e.record.actor.label),
            plain(e.record.action),
            plain(e.record.subject),
        )
    console.print(table)
