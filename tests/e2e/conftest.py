"""End-to-end fixtures: a running Sluice over real HTTP, on the session's Anvil."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.devnet.anvil import AnvilProcess
from sluice.testing.harness import RunningSluice, running_sluice


@pytest.fixture
async def sluice(anvil: AnvilProcess, tmp_path: Path) -> AsyncIterator[RunningSluice]:
    """API and workers, with a fresh database, hot wallet and token."""
    async with running_sluice(anvil, tmp_path) as instance:
        yield instance


@pytest.fixture
async def sluice_without_workers(
    anvil: AnvilProcess, tmp_path: Path
) -> AsyncIterator[RunningSluice]:
    """The API alone: withdrawals stay where intake leaves them."""
    async with running_sluice(anvil, tmp_path, workers=False) as instance:
        yield instance
