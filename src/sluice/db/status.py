"""Is there a Sluice database at a URL, and is its schema at the head revision? (never creates)

Commands that only read or write records (``sluice apikey``, ``sluice withdrawals``, ``sluice
config check``) must not create or migrate a database: a mistyped ``SLUICE_DATA_DIR`` would
otherwise make an empty one beside the real one, and a key made there would be refused by the
running instance. `ensure_ready` says in one line what is wrong and what to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from sluice.db.engine import alembic_config
from sluice.errors import ConfigurationError

__all__ = ["CONNECT_TIMEOUT_S", "DatabaseNotReadyError", "describe", "ensure_ready", "head"]

#: How long to wait for a database server before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0


class DatabaseNotReadyError(ConfigurationError):
    """No database at the URL, the server cannot be reached, or its schema is not at the head."""


def describe(url: str) -> str:
    """The database a URL names, for people: a SQLite file's absolute path, or the URL without
    its password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(a malformed URL)"
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ":memory:"
        return database if database == ":memory:" else str(Path(database).resolve())
    return parsed.render_as_string(hide_password=True)


def head() -> str:
    """The newest revision of the packaged migrations."""
    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if revision is None:  # pragma: no cover - the package always ships migrations
        raise ConfigurationError("no database migrations are packaged")
    return revision


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def ensure_ready(url: str) -> str:
    """Check that a migrated Sluice database is at ``url``, without creating or changing it.

    Returns:
        The schema's revision (the head).

    Raises:
        DatabaseNotReadyError: A SQLite file that does not exist, a server that cannot be
            reached, or a schema that is empty, behind or ahead of this version's head.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseNotReadyError("SLUICE_DATABASE_URL is not a database URL") from None
    where = describe(url)
    settings = "(SLUICE_DATABASE_URL)"
    connect_args: dict[str, object] = {}
    verb = "open"
    if parsed.get_backend_name() == "sqlite":
        settings = "(SLUICE_DATABASE_URL, SLUICE_DATA_DIR)"
        database = Path(parsed.database or ":memory:")
        # One stat of a local file, before any connection (which would create it).
        if not database.is_file():  # noqa: ASYNC240 - one stat of a local file
            raise DatabaseNotReadyError(
                f"no Sluice database at {where} {settings}: start `sluice dev` or run"
                " `sluice migrate`"
            )
    else:
        connect_args["timeout"] = CONNECT_TIMEOUT_S
        verb = "reach"
    engine = create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(_current)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise DatabaseNotReadyError(
            f"cannot {verb} the database at {where} {settings}: {_reason(exc)}"
        ) from None
    finally:
        await engine.dispose()
    latest = head()
    if current == latest:
        return current
    if current is None:
        raise DatabaseNotReadyError(
            f"the database at {where} is not migrated (empty, head {latest}): run `sluice migrate`"
        )
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
    if current not in known:
        raise DatabaseNotReadyError(
            f"the database at {where} is at revision {current}, newer than this version of Sluice"
            f" (head {latest}): upgrade Sluice"
        )
    raise DatabaseNotReadyError(
        f"the database at {where} is not migrated (at {current}, head {latest}): run"
        " `sluice migrate`"
    )


def _reason(exc: BaseException) -> str:
    """A short cause, without the driver's full text (which may quote the URL)."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return text[:160] if text else type(cause).__name__
