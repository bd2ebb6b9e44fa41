"""Fixtures shared by every test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sluice.devnet.anvil import AnvilProcess, anvil_binary


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    """One auto-mining Anvil node for the whole session.

    Tests share it: each must use fresh contracts or recipients, and read nonces from the chain.
    Without the pinned binary the test is skipped locally but fails in CI, where `make tools`
    must have run.
    """
    if anvil_binary() is None:
        message = "the pinned anvil is not installed: run `make tools`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with AnvilProcess() as process:
        yield process


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the `anvil` fixture, so `-m "not anvil"` deselects it."""
    for item in items:
        if "anvil" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.anvil)
