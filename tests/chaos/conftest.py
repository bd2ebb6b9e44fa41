"""Fixtures of the fault-injection suite: a private Anvil, a PostgreSQL database and a Redis
Streams namespace per scenario.

Every test here is marked ``chaos``. Those marked ``chaos_full`` too (scenarios 2, 5, 6 and 7,
the batched forms of 3 and 4, and the full-size runs) are deselected unless ``SLUICE_CHAOS=1``
(`make chaos`); the short forms of scenarios 1 (single and batched), 3 and 4 run in `make test`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from typing import NoReturn

import pytest

from sluice.devnet.anvil import AnvilProcess, anvil_binary

FULL = os.environ.get("SLUICE_CHAOS") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: a fault-injection scenario (tests/chaos)")
    config.addinivalue_line("markers", "chaos_full: runs only with SLUICE_CHAOS=1 (make chaos)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if FULL:
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (dropped if item.get_closest_marker("chaos_full") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _require(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
async def chain() -> AsyncIterator[AnvilProcess]:
    """A fresh auto-mining Anvil for one scenario (scenarios change its mining and re-org it)."""
    if anvil_binary() is None:
        _require("the pinned anvil is not installed: run `make tools`")
    if sys.platform != "linux":
        pytest.skip("the suite kills and restarts processes the Linux way")
    node = AnvilProcess()
    await node.astart()
    try:
        yield node
    finally:
        await node.astop()
