"""What every command shares: the console, the settings, errors as one line, the database."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
from collections.abc import AsyncIterator, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from sluice.config import Settings
from sluice.domain.audit import Actor
from sluice.errors import SluiceError
from sluice.observability import configure_logging
from sluice.ports import UnitOfWork

T = TypeVar("T")

#: Tables and progress for people, on stdout.
console = Console()
#: Errors, warnings and notes, on stderr: stdout stays clean for `--json` and for what scripts
#: capture (a new API key, a keystore's address).
stderr = Console(stderr=True)

#: Exit status of a command that could not run (bad settings, no database, refused input).
CANNOT_RUN = 2


def plain(value: object, style: str = "") -> Text:
    """``value`` as text, never read as Rich markup: what comes from data, settings, errors or
    the user (a name, a path, a URL) may hold ``[...]``, which markup would eat or choke on."""
    return Text(str(value), style=style)


def line(*parts: str | tuple[str, str] | Text) -> Text:
    """One line from parts: a plain string is printed as it is (no markup), a ``(text, style)``
    pair or a `Text` is styled. Our styling, anyone's values."""
    return Text.assemble(*parts)


def cli_actor() -> Actor:
    """The audit log's name for whoever runs a command: the local user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's arbitrary user)
        user = "unknown"
    return Actor("cli", user)


def fail(detail: str, code: int = CANNOT_RUN) -> NoReturn:
    """Print one ``error:`` line on stderr and exit with ``code``."""
    stderr.print(line(("error:", "red"), " ", detail), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(detail: str) -> None:
    """Print one ``warning:`` line on stderr."""
    stderr.print(line(("warning:", "yellow"), " ", detail), highlight=False, soft_wrap=True)


def settings(*, exit_code: int = CANNOT_RUN) -> Settings:
    """The settings every command reads (``SLUICE_*``), with logging set up; one line if the
    environment holds an invalid value."""
    try:
        loaded = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"SLUICE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid settings: {problems}", exit_code)
    configure_logging(fmt=loaded.log_format, level=loaded.log_level)
    return loaded


def run(main: Coroutine[Any, Any, T], *, exit_code: int = CANNOT_RUN) -> T:
    """Run a command's coroutine; a `SluiceError` becomes one line and exit ``exit_code``."""
    try:
        return asyncio.run(main)
    except SluiceError as exc:
        fail(exc.detail, exit_code)


def print_json(value: object) -> None:
    """JSON on plain stdout (no colours, no wrapping), for scripts."""
    print(json.dumps(value, indent=2, default=str))


@contextlib.asynccontextmanager
async def records(settings: Settings) -> AsyncIterator[UnitOfWork]:
    """A unit of work on the configured database, which must exist and be migrated.

    Never creates or migrates one: a command run from the wrong directory would otherwise make
    an empty database beside the real one.

    Raises:
        DatabaseNotReadyError: No database there, unreachable, or not at the head revision.
    """
    from sluice.db.engine import create_engine  # noqa: PLC0415 - keeps other commands fast
    from sluice.db.status import ensure_ready  # noqa: PLC0415 - as above
    from sluice.db.unit_of_work import SqlUnitOfWorkFactory  # noqa: PLC0415 - as above
    from sluice.queue.memory import MemoryQueue  # noqa: PLC0415 - as above

    await ensure_ready(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with SqlUnitOfWorkFactory(engine, MemoryQueue())() as uow:
            yield uow
    finally:
        await engine.dispose()
