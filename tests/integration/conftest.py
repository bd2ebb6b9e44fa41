"""Integration fixtures: a migrated SQLite database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.engine import create_engine, migrate


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A fresh SQLite file database in the test's temporary directory (not migrated yet)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'sluice.db'}"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a freshly migrated database, disposed after the test."""
    await migrate(database_url)
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()
