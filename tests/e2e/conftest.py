"""End-to-end fixtures: a running Sluice over real HTTP, on each kind of node in turn.

Every test that uses the session's node (`anvil`, and `node` and `sluice` through it) runs once
on Anvil and once on Hardhat: ids ``[anvil]`` and ``[hardhat]``; ``SLUICE_TEST_NODES=anvil``
keeps one. Tests talk to the node through `sluice.testing.anvil_control.control_for`, never by
``anvil_*`` names; one that needs what only Anvil has (re-orgs, its pool view) skips on Hardhat
with `skip_unless_supported`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.devnet.anvil import LocalNode
from sluice.testing import nodes, secret_scan
from sluice.testing.anvil_control import Feature, control_class, control_for
from sluice.testing.harness import RunningSluice, running_sluice


def _require_installed(kind: nodes.NodeKind) -> None:
    """Skip without the pinned node locally; fail in CI, where `make tools` must have run."""
    if not nodes.installed(kind):
        message = nodes.not_installed_reason(kind)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session", params=nodes.selected_kinds())
def anvil(request: pytest.FixtureRequest) -> Iterator[LocalNode]:
    """The session's auto-mining node, once per kind (named `anvil` as before Hardhat came).

    Overrides tests/conftest.py's `anvil` for the end-to-end suite. pytest runs every test on
    the first kind, then every test on the next: one node of each kind per session, shared (each
    test uses fresh contracts or recipients, and reads nonces from the chain).
    """
    kind: nodes.NodeKind = request.param
    _require_installed(kind)
    with nodes.new_node(kind) as process:
        yield process


@pytest.fixture
def anvil_only(anvil: LocalNode) -> None:
    """Skip the test on the other kinds of node: it checks Sluice's own rules (policy,
    operators, webhooks), which no node's behaviour changes; the suite that checks what a node
    does (payouts, fees, batches, re-orgs) runs on every kind."""
    if anvil.kind != "anvil":
        pytest.skip(f"node-independent: runs on the Anvil node only, not on {anvil.kind}")


@pytest.fixture
async def mines_on_an_interval(anvil: LocalNode) -> AsyncIterator[None]:
    """On Hardhat, the session's node mines a block every 0.1 s for this test, not one per
    transaction; automine again after. For tests whose workers sign in parallel: with automine,
    Hardhat refuses the nonces they send ahead of the next one
    (`sluice.testing.nodes.PARALLEL_BLOCK_TIME_S`). Anvil queues them: nothing changes there."""
    if anvil.kind != "hardhat":
        yield
        return
    async with control_for(anvil) as control:
        await control.set_automine(False)
        await control.set_interval_mining(nodes.PARALLEL_BLOCK_TIME_S)
        try:
            yield
        finally:
            await control.set_interval_mining(0)
            await control.set_automine(True)


def skip_unless_supported(node: LocalNode, feature: Feature) -> None:
    """Skip the test on a node without ``feature`` (Hardhat: no re-org, roll-back, pool view)."""
    if not control_class(node.kind).supports(feature):
        reasons = {
            "reorg": "has no re-org method (anvil_reorg)",
            "rollback": "has no roll-back method (anvil_rollback)",
            "txpool": "has no view of its pool (txpool_content, txpool_status)",
        }
        pytest.skip(f"a {node.kind} node {reasons[feature]}")


@pytest.fixture
async def sluice(
    anvil: LocalNode, tmp_path: Path, database_url: str
) -> AsyncIterator[RunningSluice]:
    """API and workers, with a fresh database (of the session's backend), hot wallet and token."""
    async with running_sluice(anvil, tmp_path, database_url=database_url) as instance:
        yield instance


@pytest.fixture
async def sluice_without_workers(
    anvil: LocalNode, tmp_path: Path, database_url: str
) -> AsyncIterator[RunningSluice]:
    """The API alone: withdrawals stay where intake leaves them."""
    async with running_sluice(
        anvil, tmp_path, workers=False, database_url=database_url
    ) as instance:
        yield instance


@pytest.fixture
async def node(anvil: LocalNode) -> AsyncIterator[LocalNode]:
    """A node of this test's own, of the session node's kind, for tests that stop mining, re-org
    or spend its accounts. Asks for the session's `anvil` for its kind, skip rule and marker."""
    process = nodes.new_node(anvil.kind)
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
