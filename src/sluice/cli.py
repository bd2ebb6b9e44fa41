"""The `sluice` command line."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from sluice import __version__
from sluice.clock import SystemClock
from sluice.config import Settings
from sluice.domain.access import ALL_SCOPES, ApiKey, Scope
from sluice.errors import SluiceError
from sluice.observability import configure_logging
from sluice.ports import UnitOfWork
from sluice.services.api_keys import ApiKeyService

app = typer.Typer(
    help="Sluice: a withdrawal engine for custodial crypto platforms.",
    no_args_is_help=True,
    add_completion=False,
)
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")

console = Console()


def _settings() -> Settings:
    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    return settings


def _fail(exc: SluiceError) -> typer.Exit:
    console.print(f"[red]error:[/] {exc.detail}")
    return typer.Exit(2)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1.")] = 8000,
    anvil_port: Annotated[int, typer.Option(help="Anvil JSON-RPC port on 127.0.0.1.")] = 8545,
    block_time: Annotated[float, typer.Option(help="Seconds between Anvil blocks.")] = 1.0,
    confirmations: Annotated[int, typer.Option(help="Blocks before a payout is final.")] = 2,
) -> None:
    """Run everything locally: an Anvil chain, the API and the workers, on embedded defaults.

    Deploys a demo token, funds a hot wallet, credits a demo user, makes an API key, and writes
    .sluice/dev.json. Ctrl-C stops it; running it again resumes on the same data.
    """
    from sluice.devnet.anvil import AnvilError  # noqa: PLC0415 - keeps other commands fast
    from sluice.devnet.dev import DevOptions, run_dev  # noqa: PLC0415 - as above

    settings = _settings()
    options = DevOptions(
        host="127.0.0.1",
        port=port,
        anvil_port=anvil_port,
        block_time_s=block_time,
        confirmations=confirmations,
    )
    try:
        asyncio.run(run_dev(settings, options, console))
    except SluiceError as exc:
        raise _fail(exc) from None
    except AnvilError as exc:
        console.print(f"[red]error:[/] cannot start Anvil: {exc}")
        raise typer.Exit(2) from None


def _run(settings: Settings, *, api: bool, workers: bool, host: str, port: int) -> None:
    from sluice import runtime  # noqa: PLC0415 - keeps other commands fast
    from sluice.bootstrap import build  # noqa: PLC0415 - as above

    async def main() -> None:
        container = await build(settings)
        runtime.tune_garbage_collector()
        try:
            await runtime.run(container, api=api, workers=workers, host=host, port=port)
        finally:
            await container.close()

    try:
        runtime.run_loop(main())
    except SluiceError as exc:
        raise _fail(exc) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (SLUICE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (SLUICE_PORT).")] = None,
    workers: Annotated[bool, typer.Option(help="Run the workers in this process too.")] = True,
) -> None:
    """Run the API (and, by default, the workers) against the configured networks."""
    settings = _settings()
    _run(
        settings,
        api=True,
        workers=workers,
        host=host or settings.host,
        port=port if port is not None else settings.port,
    )


@app.command()
def worker() -> None:
    """Run the workers only (needs a shared queue backend to be useful beside `serve`)."""
    settings = _settings()
    _run(settings, api=False, workers=True, host=settings.host, port=settings.port)


@app.command()
def signer() -> None:
    """Hold the hot wallet keys in this process only, and sign for the others.

    Listens on SLUICE_SIGNER_URL (unix:///path or http://127.0.0.1:PORT), requires
    SLUICE_SIGNER_TOKEN, and signs only what the withdrawal records call for. API and worker
    processes given the same SLUICE_SIGNER_URL and token then need no key and no passphrase.
    """
    from sluice import runtime  # noqa: PLC0415 - keeps other commands fast
    from sluice.keyholder.server import serve as serve_signer  # noqa: PLC0415 - as above

    settings = _settings()
    try:
        runtime.run_loop(serve_signer(settings))
    except SluiceError as exc:
        raise _fail(exc) from None


@app.command()
def demo(
    dev_file: Annotated[Path, typer.Option(help="Written by `sluice dev`.")] = Path(
        ".sluice/dev.json"
    ),
    asset: Annotated[
        list[str] | None, typer.Option(help="ETH or DEMO; repeat for both (default: both).")
    ] = None,
    amount: Annotated[str, typer.Option(help="Amount per withdrawal, in token units.")] = "0.25",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each to finish.")] = 120,
) -> None:
    """Send withdrawals to the running `sluice dev` and follow them live until final."""
    from sluice.devnet.demo import run_demo  # noqa: PLC0415 - keeps other commands fast

    ok = run_demo(
        console, dev_file, assets=asset or ["ETH", "DEMO"], amount=amount, timeout_s=timeout
    )
    raise typer.Exit(0 if ok else 1)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (SLUICE_DATABASE_URL)."""
    from sluice.db.engine import migrate as run_migrations  # noqa: PLC0415 - fast start

    settings = _settings()
    asyncio.run(run_migrations(settings.database_url))
    console.print("database is up to date")


def _parse_scopes(values: list[str] | None) -> frozenset[Scope]:
    if not values:
        return ALL_SCOPES
    try:
        return frozenset(Scope(v) for v in values)
    except ValueError:
        choices = ", ".join(s.value for s in Scope)
        raise typer.BadParameter(f"scopes are: {choices}") from None


@contextlib.asynccontextmanager
async def _unit_of_work(settings: Settings) -> AsyncIterator[UnitOfWork]:
    """A unit of work on the configured database (no networks, no workers needed)."""
    from sluice.db.engine import create_engine  # noqa: PLC0415 - keeps other commands fast
    from sluice.db.unit_of_work import SqlUnitOfWorkFactory  # noqa: PLC0415 - as above
    from sluice.queue.memory import MemoryQueue  # noqa: PLC0415 - as above

    engine = create_engine(settings.database_url)
    try:
        async with SqlUnitOfWorkFactory(engine, MemoryQueue())() as uow:
            yield uow
    finally:
        await engine.dispose()


@apikey_app.command("create")
def apikey_create(  # noqa: PLR0917 - typer maps each option to a parameter
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(help="withdrawals:write, withdrawals:read or admin; repeat (default: all)."),
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
    """Make an API key. It is shown once; only its hash is stored."""
    from sluice.db.engine import migrate as run_migrations  # noqa: PLC0415 - fast start

    settings = _settings()
    scopes = _parse_scopes(scope)

    async def main() -> str:
        await run_migrations(settings.database_url)
        async with _unit_of_work(settings) as uow:
            token, _key = await ApiKeyService(SystemClock()).create(
                uow,
                name=name,
                scopes=scopes,
                user_ids=user,
                ip_ranges=ip or (),
                signing_public_key=_public_key_text(public_key),
                rate_limit_per_s=rate_limit,
            )
            await uow.commit()
        return token

    try:
        token = asyncio.run(main())
    except SluiceError as exc:
        raise _fail(exc) from None
    console.print(f"API key for {name!r} ({', '.join(sorted(scopes))}):")
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


@apikey_app.command("list")
def apikey_list() -> None:
    """List API keys (never their secrets)."""
    settings = _settings()

    async def main() -> list[ApiKey]:
        async with _unit_of_work(settings) as uow:
            return await uow.api_keys.all()

    table = Table("name", "scopes", "users", "ip ranges", "signed", "rate", "created", "state")
    # The id is what `revoke` takes: never shortened, however narrow the terminal.
    table.columns.insert(0, Column("id", no_wrap=True, min_width=16))
    for key in asyncio.run(main()):
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


@apikey_app.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see list).")]) -> None:
    """Revoke an API key (effective within a few seconds everywhere)."""
    settings = _settings()

    async def main() -> bool:
        async with _unit_of_work(settings) as uow:
            revoked = await ApiKeyService(SystemClock()).revoke(uow, key_id)
            await uow.commit()
        return revoked

    if not asyncio.run(main()):
        console.print(f"[red]no live key {key_id!r}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")
