"""Fresh, migrated databases for tests: SQLite files or PostgreSQL databases.

Both kinds share one API (`FreshDatabases`): `setup` migrates a template once per session,
`create` hands out a fresh copy of it for one test, `drop` throws that copy away and `close`
removes the template. Copying is what makes a database per test cheap: a SQLite template is a
file copy, a PostgreSQL one is ``CREATE DATABASE … TEMPLATE …`` (tens of milliseconds, against
hundreds for running the migrations each time).

Which kind the tests use comes from ``SLUICE_TEST_DATABASE`` (``sqlite``, the default, or
``postgresql``); the PostgreSQL server from ``SLUICE_TEST_POSTGRES_URL``. Names are unique per
session and per test, so several sessions can share one server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Protocol

from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from sluice.db.engine import migrate

Backend = Literal["sqlite", "postgresql"]

BACKEND_ENV = "SLUICE_TEST_DATABASE"
POSTGRES_URL_ENV = "SLUICE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
#: How long to wait for the PostgreSQL server before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0


class DatabaseUnavailableError(RuntimeError):
    """The test database server cannot be reached (or refuses to create databases)."""


def selected_backend(env: Mapping[str, str] = os.environ) -> Backend:
    """The backend named by ``SLUICE_TEST_DATABASE`` (default ``sqlite``)."""
    value = env.get(BACKEND_ENV, "").strip().lower() or "sqlite"
    if value == "sqlite":
        return "sqlite"
    if value in ("postgresql", "postgres"):
        return "postgresql"
    raise ValueError(f"{BACKEND_ENV} must be 'sqlite' or 'postgresql', not {value!r}")


def postgres_server_url(env: Mapping[str, str] = os.environ) -> str:
    """The SQLAlchemy URL of the PostgreSQL server's maintenance database."""
    return env.get(POSTGRES_URL_ENV, "").strip() or DEFAULT_POSTGRES_URL


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class FreshDatabases(Protocol):
    """Hands out fresh, migrated databases of one kind."""

    backend: Backend

    async def setup(self) -> None:
        """Create and migrate the template (once per session)."""

    async def create(self) -> str:
        """A fresh migrated database; its SQLAlchemy async URL."""

    async def drop(self, url: str) -> None:
        """Remove a database `create` made."""

    async def close(self) -> None:
        """Remove the template."""


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


class SqliteDatabases:
    """SQLite files in ``directory``, each a copy of one migrated template file."""

    backend: Backend = "sqlite"

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._template = directory / f"{_unique_name('sluice_template')}.db"

    def _url(self, path: Path) -> str:
        return f"sqlite+aiosqlite:///{path}"

    async def setup(self) -> None:
        await asyncio.to_thread(self._directory.mkdir, parents=True, exist_ok=True)
        await migrate(self._url(self._template))

    async def create(self) -> str:
        path = self._directory / f"{_unique_name('sluice_test')}.db"
        # The migration engine is disposed and never set WAL mode: the file is the whole database.
        await asyncio.to_thread(shutil.copyfile, self._template, path)
        return self._url(path)

    async def drop(self, url: str) -> None:
        database = make_url(url).database
        if database:
            await asyncio.to_thread(_remove_sqlite_files, Path(database))

    async def close(self) -> None:
        await self.drop(self._url(self._template))


class PostgresDatabases:
    """Databases on one PostgreSQL server, each created from a migrated template database.

    ``server_url`` names a database to connect to for ``CREATE``/``DROP DATABASE`` (normally
    ``postgres``) as a role allowed to create databases.
    """

    backend: Backend = "postgresql"

    def __init__(self, server_url: str) -> None:
        url = make_url(server_url)
        if url.get_backend_name() != "postgresql":
            raise ValueError(f"not a PostgreSQL URL: {url.render_as_string()}")
        self._server = url
        self._template = _unique_name("sluice_template")
        self._template_created = False

    def _url_of(self, database: str) -> URL:
        return self._server.set(database=database)

    async def _execute(self, statement: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE refuse to run in one)."""
        engine = create_async_engine(
            self._server,
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
            connect_args={"timeout": CONNECT_TIMEOUT_S},
        )
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        except (OSError, TimeoutError, InterfaceError, OperationalError) as exc:
            where = self._server.render_as_string(hide_password=True)
            raise DatabaseUnavailableError(
                f"PostgreSQL at {where} is not reachable ({type(exc).__name__}: {exc}); "
                f"start it or point {POSTGRES_URL_ENV} at one"
            ) from exc
        finally:
            await engine.dispose()

    async def setup(self) -> None:
        # Names are ours (a prefix and a uuid's hex), so quoting them is enough.
        await self._execute(f'CREATE DATABASE "{self._template}"')
        self._template_created = True
        # migrate() disposes its engine: no session stays on the template, which CREATE DATABASE
        # … TEMPLATE requires.
        await migrate(self._url_of(self._template).render_as_string(hide_password=False))

    async def create(self) -> str:
        if not self._template_created:
            raise RuntimeError("setup() has not run")
        name = _unique_name("sluice_test")
        await self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        return self._url_of(name).render_as_string(hide_password=False)

    async def drop(self, url: str) -> None:
        name = make_url(url).database
        if not name or not name.startswith("sluice_test_"):
            raise ValueError(f"not a test database: {name!r}")
        # FORCE ends sessions a test left open (a killed subprocess, an undisposed engine).
        await self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def close(self) -> None:
        if self._template_created:
            await self._execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
            self._template_created = False


def fresh_databases(
    backend: Backend, directory: Path, env: Mapping[str, str] = os.environ
) -> FreshDatabases:
    """The `FreshDatabases` for ``backend``; SQLite files go to ``directory``."""
    if backend == "postgresql":
        return PostgresDatabases(postgres_server_url(env))
    return SqliteDatabases(directory)
