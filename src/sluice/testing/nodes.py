"""The local nodes the tests run on, by kind: ``anvil`` (the default everywhere) and ``hardhat``.

The end-to-end suite runs once per kind in `selected_kinds` (``SLUICE_TEST_NODES``, a comma list;
default both); everything else runs on Anvil. `sluice.testing.anvil_control.control_for` gives a
node's test controls.
"""

from __future__ import annotations

import os
from typing import Final, Literal, get_args

from sluice.devnet.anvil import AnvilProcess, LocalNode, anvil_binary
from sluice.testing.hardhat import HardhatProcess, hardhat_installed

__all__ = [
    "KINDS",
    "NODES_ENV",
    "PARALLEL_BLOCK_TIME_S",
    "NodeKind",
    "installed",
    "new_node",
    "not_installed_reason",
    "selected_kinds",
]

NodeKind = Literal["anvil", "hardhat"]
KINDS: Final[tuple[NodeKind, ...]] = get_args(NodeKind)

#: Which kinds of node the end-to-end suite runs on: ``anvil,hardhat`` (the default), or one.
NODES_ENV: Final = "SLUICE_TEST_NODES"

#: How often a Hardhat node mines while several workers sign in parallel (the end-to-end
#: fixture ``mines_on_an_interval``). With automine on, Hardhat refuses a transaction whose nonce
#: is ahead of the sender's next one ("transactions can't be queued when automining"), which such
#: workers send all the time; a real chain queues it, as Hardhat does when it mines on an interval.
PARALLEL_BLOCK_TIME_S: Final = 0.1


def selected_kinds() -> tuple[NodeKind, ...]:
    """The kinds named by ``SLUICE_TEST_NODES`` (default every kind), in `KINDS` order.

    Raises:
        ValueError: It names an unknown kind, or none.
    """
    raw = os.environ.get(NODES_ENV, "")
    if not raw.strip():
        return KINDS
    named = {part.strip().lower() for part in raw.split(",") if part.strip()}
    unknown = named.difference(KINDS)
    if unknown or not named:
        raise ValueError(
            f"{NODES_ENV}={raw!r}: expected a comma list of {', '.join(KINDS)}"
            f" (unknown: {', '.join(sorted(unknown)) or 'none named'})"
        )
    return tuple(kind for kind in KINDS if kind in named)


def installed(kind: NodeKind) -> bool:
    """Whether a node of ``kind`` can be started here (`make tools` installs both)."""
    if kind == "anvil":
        return anvil_binary() is not None
    return hardhat_installed()


def not_installed_reason(kind: NodeKind) -> str:
    """Why a test on ``kind`` cannot run without it."""
    return f"the pinned {kind} is not installed: run `make tools`"


def new_node(kind: str) -> LocalNode:
    """A node of ``kind``, not started."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of node {kind!r}: expected one of {', '.join(KINDS)}")
    if kind == "anvil":
        return AnvilProcess()
    return HardhatProcess()
