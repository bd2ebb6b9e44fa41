"""End-to-end fixtures: a running Sluice over real HTTP, on the session's Anvil."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sluice.devnet.anvil import AnvilProcess
from sluice.testing import secret_scan
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


@pytest.fixture
async def node(anvil: AnvilProcess) -> AsyncIterator[AnvilProcess]:
    """An Anvil of this test's own, for tests that stop mining, re-org or spend its accounts.
    Asks for the session's `anvil` for its skip rule and marker."""
    process = AnvilProcess()
    await process.astart()
    try:
        yield process
    finally:
        await process.astop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Fail an end-to-end test whose captured logs or output carry a known secret.

    The run's secrets (keystore passphrase, hot wallet keys, API keys, signer tokens) are
    registered where they are made (`sluice.testing.secret_scan`); HTTP answers are scanned as
    they arrive (`RunningSluice.client`). Log lines are what a log shipper would send on.
    """
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    text = "\n".join(content for _name, content in report.sections)
    leaked = secret_scan.find(text)
    if leaked and report.passed:
        report.outcome = "failed"
        report.longrepr = f"captured output of {item.nodeid} ({call.when}) carries {leaked}"
