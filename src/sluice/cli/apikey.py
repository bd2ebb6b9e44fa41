"""`sluice apikey create|list|revoke`."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

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
    stderr,
)
from sluice.clock import SystemClock
from sluice.domain.access import ApiKey, Scope
from sluice.domain.audit import AuditRecord
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
            await uow.audit.append(
                AuditRecord(
                    actor=cli_actor(),
                    action="api_key.created",
                    subject=f"api_key:{key.id}",
                    at=key.created_at,
                    after={"name": key.name, "scopes": sorted(key.scopes)},
                )
            )
            await uow.commit()
        return token, key

    token, key = run(main())
    # The key is stored: its secret first (plain stdout, so scripts can capture it), before
    # anything that could still fail and lose it.
    print(token, flush=True)
    users = "every user" if key.user_ids is None else ", ".join(sorted(key.user_ids))
    stderr.print(
        line(
            f"API key for {name!r} (shown once, above): scopes {', '.join(sorted(key.scopes))};"
            f" users: {users}"
        ),
        highlight=False,
        soft_wrap=True,
    )


def _public_key_text(value: str | None) -> str | None:
    """The public key as given, or the content of the file it names."""
    if value is None:
        return None
    path = Path(value)
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else value
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {value}: {exc}") from None


def fingerprint(public_key: bytes) -> str:
    """A short name for a signing key: ``ed25519:`` and the first 12 characters of its base64
    (the form `create --public-key` takes), enough to tell keys apart at a glance."""
    return "ed25519:" + base64.b64encode(public_key).decode("ascii")[:12]


def _refused(key: ApiKey) -> dict[str, str]:
    """The scopes a key carries but does not act with, and why (revocation aside: the key's
    state says that)."""
    live = dataclasses.replace(key, revoked_at=None)
    return {
        scope.value: "restricted to users" if key.user_ids is not None else "refused"
        for scope in sorted(key.scopes)
        if not live.allows(scope)
    }


def _scopes(key: ApiKey) -> list[str]:
    """The scopes a key acts with (`ApiKey.allows`), revocation aside."""
    live = dataclasses.replace(key, revoked_at=None)
    return sorted(scope.value for scope in key.scopes if live.allows(scope))


def _signing(key: ApiKey) -> str:
    if key.signing_public_key is not None:
        return fingerprint(key.signing_public_key)
    # A key that must sign but has no public key (an older HMAC key) is refused until replaced.
    return "no key: refused" if key.require_signature else "no"


def _as_json(key: ApiKey) -> dict[str, object]:
    public_key = key.signing_public_key
    return {
        "id": key.id,
        "name": key.name,
        "scopes": _scopes(key),
        "refusedScopes": _refused(key),
        "userIds": None if key.user_ids is None else sorted(key.user_ids),
        "ipRanges": list(key.ip_ranges),
        "requireSignature": key.require_signature,
        "signingKey": None if public_key is None else fingerprint(public_key),
        "signingPublicKey": None
        if public_key is None
        else base64.b64encode(public_key).decode("ascii"),
        "rateLimitPerS": key.rate_limit_per_s,
        "createdAt": key.created_at.isoformat(),
        "revokedAt": None if key.revoked_at is None else key.revoked_at.isoformat(),
    }


def _scope_cell(key: ApiKey) -> str:
    refused = [f"{scope} (refused: {why})" for scope, why in _refused(key).items()]
    return ",".join([*_scopes(key), *refused]) or "none"


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
        cells = (
            key.id,
            key.name,
            _scope_cell(key),
            "all" if key.user_ids is None else ",".join(sorted(key.user_ids)),
            ",".join(key.ip_ranges) or "any",
            _signing(key),
            "default" if key.rate_limit_per_s is None else f"{key.rate_limit_per_s}/s",
            key.created_at.isoformat(timespec="seconds"),
        )
        state = plain("revoked", "dim") if key.revoked_at else plain("live", "green")
        table.add_row(*(plain(cell) for cell in cells), state)  # the key's data: never markup
    console.print(table)


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see list).")]) -> None:
    """Revoke an API key (effective within a few seconds everywhere)."""
    loaded = settings()

    async def main() -> bool:
        async with records(loaded) as uow:
            revoked = await ApiKeyService(SystemClock()).revoke(uow, key_id)
            if revoked:
                await uow.audit.append(
                    AuditRecord(
                        actor=cli_actor(),
                        action="api_key.revoked",
                        subject=f"api_key:{key_id}",
                        at=SystemClock().now(),
                    )
                )
            await uow.commit()
        return revoked

    if not run(main()):
        fail(f"no live key {key_id!r}", 1)
    console.print(line("revoked ", key_id), highlight=False)
