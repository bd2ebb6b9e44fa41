"""End-to-end fixtures: a running Sluice over real HTTP, on the session's Anvil."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.devnet.anvil import AnvilProcess
from sluice.testing.harness import RunningSluice, running_sluice


@pytest.fixture
async def sluice(
    anvil: AnvilProcess, tmp_path: Path, database_url: str
) -> AsyncIterator[RunningSluice]:
    """API and workers, with a fresh database (of the session's backend), hot wallet and token."""
    async with running_sluice(anvil, tmp_path, database_url=database_url) as instance:
        yield instance


@pytest.fixture
async def sluice_without_workers(
    anvil: AnvilProcess, tmp_path: Path, database_url: str
) -> AsyncIterator[RunningSluice]:
    """The API alone: withdrawals stay where intake leaves them."""
    async with running_sluice(
        anvil, tmp_path, workers=False, database_url=database_url
    ) as instance:
        yield instance
