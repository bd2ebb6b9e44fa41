"""Integration fixtures: an engine on a fresh migrated database of the session's backend.

`database_url` (tests/conftest.py) gives each test its own database: SQLite by default,
PostgreSQL with ``SLUICE_TEST_DATABASE=postgresql``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.engine import create_engine


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test's freshly migrated database, disposed after the test."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()
