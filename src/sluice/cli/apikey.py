"""`sluice apikey create|list|revoke`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from sluice.cli.common import console, print_json, records, run, settings, stderr
from sluice.clock import SystemClock
from sluice.domain.access import ApiKey, Scope
from sluice.services.api_keys import ApiKeyService

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)

#: What a key may do unless ``--scope`` says otherwise: withdrawals, never admin.
DEFAULT_SCOPES = frozenset({Scope.WITHDRAWALS_READ, Scope.WITHDRAWALS_WRITE})


def _parse_scopes(values: list[str] | None) -> frozenset[Scope]:
    if not values:
        return DEFAULT_SCOPES
    try:
        return frozenset(Scope(v) for v in values)
    except ValueError:
        choices = ", ".join(s.value for s in Scope)
        raise typer.BadParameter(f"scopes are: {choices}") from None


@app.command("create")
def create(  # noqa: PLR0917 - typer maps each option to a parameter
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="withdrawals:read, withdrawals:write or admin; repeat (default: withdrawals:read"
            " and withdrawals:write; admin only when named, and never with --user)."
        ),
    ] = None,
    user: Annotated[
        list[str] | None,
        typer.Option(help="Only for this user's withdrawals and balances; repeat (default: all)."),
    ] = None,
    ip: Annotated[
        list[str] | None,
        typer.Option(help="Only from this IP range (CIDR); repeat (default: anywhere)."),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            help="Every request must be signed with this Ed25519 key's private half, which"
            " only the caller holds: a PEM file, or the public key in base64 or hex (docs/api.md)."
        ),
    ] = None,
    rate_limit: Annotated[
        int | None,
        typer.Option(min=0, help="Requests a second (default: SLUICE_RATE_LIMIT_PER_S; 0: none)."),
    ] = None,
) -> None:
    """Make an API key on the configured database. It is shown once; only its hash is stored."""
    loaded = settings()
    scopes = _parse_scopes(scope)

    async def main() -> tuple[str, ApiKey]:
        async with records(loaded) as uow:
            token, key = await ApiKeyService(SystemClock()).create(
                uow,
                name=name,
                scopes=scopes,
                user_ids=user,
                ip_ranges=ip or (),
                signing_public_key=_public_key_text(public_key),
                rate_limit_per_s=rate_limit,
            )
            await uow.commit()
        return token, key

    token, key = run(main())
    users = "every user" if key.user_ids is None else ", ".join(sorted(key.user_ids))
    stderr.print(
        f"API key for {name!r}: scopes {', '.join(sorted(key.scopes))}; users: {users}",
        highlight=False,
    )
    print(token)  # plain stdout, so scripts can capture the key


def _public_key_text(value: str | None) -> str | None:
    """The public key as given, or the content of the file it names."""
    if value is None:
        return None
    path = Path(value)
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else value
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {value}: {exc}") from None


def _as_json(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": sorted(key.scopes),
        "userIds": None if key.user_ids is None else sorted(key.user_ids),
        "ipRanges": list(key.ip_ranges),
        "requireSignature": key.require_signature,
        "rateLimitPerS": key.rate_limit_per_s,
        "createdAt": key.created_at.isoformat(),
        "revokedAt": None if key.revoked_at is None else key.revoked_at.isoformat(),
    }


@app.command("list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List API keys (never their secrets)."""
    loaded = settings()

    async def main() -> list[ApiKey]:
        async with records(loaded) as uow:
            return await uow.api_keys.all()

    keys = run(main())
    if as_json:
        print_json([_as_json(key) for key in keys])
        return
    table = Table("name", "scopes", "users", "ip ranges", "signed", "rate", "created", "state")
    # The id is what `revoke` takes: never shortened, however narrow the terminal.
    table.columns.insert(0, Column("id", no_wrap=True, min_width=16))
    for key in keys:
        table.add_row(
            key.id,
            key.name,
            ",".join(sorted(key.scopes)),
            "all" if key.user_ids is None else ",".join(sorted(key.user_ids)),
            ",".join(key.ip_ranges) or "any",
            "yes" if key.require_signature else "no",
            "default" if key.rate_limit_per_s is None else f"{key.rate_limit_per_s}/s",
            key.created_at.isoformat(timespec="seconds"),
            "revoked" if key.revoked_at else "live",
        )
    console.print(table)


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see list).")]) -> None:
    """Revoke an API key (effective within a few seconds everywhere)."""
    loaded = settings()

    async def main() -> bool:
        async with records(loaded) as uow:
            revoked = await ApiKeyService(SystemClock()).revoke(uow, key_id)
            await uow.commit()
        return revoked

    if not run(main()):
        console.print(f"[red]no live key {key_id!r}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")
