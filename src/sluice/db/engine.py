"""Engine creation and migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_engine(
    url: str, *, pool_size: int = 15, max_overflow: int = 5, read_only: bool = False
) -> AsyncEngine:
    """An async engine for a SQLite or PostgreSQL URL, set up for safe concurrent writes.

    PostgreSQL connections are pooled: ``pool_size`` stay open, up to ``max_overflow`` more are
    opened under load and closed when returned. A unit of work holds one connection and never
    asks for a second, so a busy pool makes callers queue (up to ``pool_timeout``) but cannot
    deadlock. Size the pool to what one process runs at once (``SLUICE_WORKER_CONCURRENCY`` plus
    the API's share), within the server's ``max_connections`` divided by the number of processes;
    a pool smaller than the load churns connections (a new backend per checkout).

    ``read_only``: for a process that only reads (``sluice signer``'s view of the records): on
    SQLite its transactions do not take the write lock.

    There is no ``pool_pre_ping`` (three round trips on every checkout, about a third of all
    statements). A connection the server dropped fails its first statement instead: SQLAlchemy
    then discards every pooled connection older than the failure, and the caller's unit of work
    fails as a transient database error (the worker retries the job, the API answers 503).
    ``pool_recycle`` retires connections before idle timeouts in proxies and load balancers.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            url,
            # The locking relies on READ COMMITTED: a statement that waited for a row lock reads
            # the row as committed by its previous holder. Under REPEATABLE READ (should a server
            # default to it) the waiter would fail with a serialization error instead.
            isolation_level="READ COMMITTED",
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_recycle=1800,
        )
    database = parsed.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # SQLite has no row locks. BEGIN IMMEDIATE takes the database's write lock at the start of
        # every transaction, so read-check-write sequences (balance holds, nonce assignment) are
        # serialized exactly as row locks serialize them on PostgreSQL. A read-only engine (the
        # signer's view of the records) begins deferred: in WAL mode it reads beside the writer.
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def alembic_config(url: str) -> Config:
    """Alembic configuration for the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


async def migrate(url: str) -> None:
    """Bring the database schema to the latest migration."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
    # Alembic's async env runs its own event loop, so it goes to a thread of its own.
    await asyncio.to_thread(_upgrade, url)


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
