"""Commands that run Sluice: `dev`, `serve`, `worker`, `signer`, `demo`, `migrate`, `version`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice import __version__
from sluice.cli.common import console, fail, line, run, settings
from sluice.config import Settings
from sluice.errors import SluiceError


def version() -> None:
    """Print the version (also `sluice --version`)."""
    console.print(__version__, markup=False, highlight=False)


def dev(
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1.")] = 8000,
    anvil_port: Annotated[int, typer.Option(help="Anvil JSON-RPC port on 127.0.0.1.")] = 8545,
    block_time: Annotated[float, typer.Option(help="Seconds between Anvil blocks.")] = 1.0,
    confirmations: Annotated[int, typer.Option(help="Blocks before a payout is final.")] = 2,
) -> None:
    """Run everything locally: an Anvil chain, the API and the workers, on embedded defaults.

    Deploys a demo token, funds a hot wallet, credits a demo user, makes an API key (every
    scope: a local playground), and writes dev.json, all in SLUICE_DATA_DIR (default .sluice).
    Ctrl-C stops it; running it again resumes on the same data.
    """
    import asyncio  # noqa: PLC0415 - keeps other commands fast

    from sluice.devnet.anvil import AnvilError  # noqa: PLC0415 - as above
    from sluice.devnet.dev import DevOptions, run_dev  # noqa: PLC0415 - as above

    loaded = settings()
    options = DevOptions(
        host="127.0.0.1",
        port=port,
        anvil_port=anvil_port,
        block_time_s=block_time,
        confirmations=confirmations,
    )
    try:
        asyncio.run(run_dev(loaded, options, console))
    except SluiceError as exc:
        fail(exc.detail)
    except AnvilError as exc:
        fail(f"cannot start Anvil: {exc}")


def _run(loaded: Settings, *, api: bool, workers: bool, host: str, port: int) -> None:
    from sluice import runtime  # noqa: PLC0415 - keeps other commands fast
    from sluice.bootstrap import build  # noqa: PLC0415 - as above

    async def main() -> None:
        container = await build(loaded)
        runtime.tune_garbage_collector()
        try:
            await runtime.run(container, api=api, workers=workers, host=host, port=port)
        finally:
            await container.close()

    try:
        runtime.run_loop(main())
    except SluiceError as exc:
        fail(exc.detail)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (SLUICE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (SLUICE_PORT).")] = None,
    workers: Annotated[bool, typer.Option(help="Run the workers in this process too.")] = True,
) -> None:
    """Run the API (and, by default, the workers) against the configured networks."""
    loaded = settings()
    _run(
        loaded,
        api=True,
        workers=workers,
        host=host or loaded.host,
        port=port if port is not None else loaded.port,
    )


def worker() -> None:
    """Run the workers only (needs a shared queue backend to be useful beside `serve`)."""
    loaded = settings()
    _run(loaded, api=False, workers=True, host=loaded.host, port=loaded.port)


def signer() -> None:
    """Hold the hot wallet keys in this process only, and sign for the others.

    Listens on SLUICE_SIGNER_URL (unix:///path or http://127.0.0.1:PORT), requires
    SLUICE_SIGNER_TOKEN, and signs only what the withdrawal records call for. API and worker
    processes given the same SLUICE_SIGNER_URL and token then need no key and no passphrase.
    """
    from sluice import runtime  # noqa: PLC0415 - keeps other commands fast
    from sluice.keyholder.server import serve as serve_signer  # noqa: PLC0415 - as above

    loaded = settings()
    try:
        runtime.run_loop(serve_signer(loaded))
    except SluiceError as exc:
        fail(exc.detail)


def demo(
    dev_file: Annotated[
        Path | None,
        typer.Option(help="Written by `sluice dev` (default: dev.json in SLUICE_DATA_DIR)."),
    ] = None,
    asset: Annotated[
        list[str] | None, typer.Option(help="ETH or DEMO; repeat for both (default: both).")
    ] = None,
    amount: Annotated[str, typer.Option(help="Amount per withdrawal, in token units.")] = "0.25",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each to finish.")] = 120,
) -> None:
    """Send withdrawals to the running `sluice dev` and follow them live until final."""
    from sluice.devnet.demo import run_demo  # noqa: PLC0415 - keeps other commands fast

    loaded = settings()
    ok = run_demo(
        console,
        dev_file or loaded.dev_file,
        assets=asset or ["ETH", "DEMO"],
        amount=amount,
        timeout_s=timeout,
    )
    raise typer.Exit(0 if ok else 1)


def migrate() -> None:
    """Create the database or bring its schema up to date (SLUICE_DATABASE_URL)."""
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - keeps other commands fast

    from sluice.db.engine import migrate as run_migrations  # noqa: PLC0415 - as above
    from sluice.db.status import describe, head  # noqa: PLC0415 - as above

    loaded = settings()
    where = describe(loaded.database_url)
    try:
        run(run_migrations(loaded.database_url))
    except (SQLAlchemyError, OSError) as exc:
        cause = getattr(exc, "orig", None) or exc
        why = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:160]
        fail(f"cannot migrate the database at {where}: {why}")
    console.print(line(f"database at {where} is up to date (schema {head()})"), highlight=False)
