"""A local Hardhat node (Hardhat 2, its EDR engine) as a child process: the tests' second node.

The end-to-end suite runs on it as well as on Anvil (``tests/e2e/conftest.py``), so the engine
is not tied to one node's quirks. Hardhat is pinned in ``tools/package.json`` and installed by
``make tools``; it runs as ``node <tools>/node_modules/hardhat/internal/cli/bootstrap.js node``.

Hardhat has no command-line flags for the chain: each start writes a ``hardhat.config.js`` of its
own in a temporary directory (removed at stop) with the chain id, the public dev mnemonic
(`sluice.devnet.anvil.DEV_MNEMONIC`: the same ten accounts, 10 000 ETH each, as Anvil's),
``allowUnlimitedContractSize`` off and the mining mode. Hardhat refuses to run from outside a
project that installs it (HH12), so the node's working directory is ``tools/``; the config's
directory is the project root, so its caches land in the temporary directory too.

What differs from Anvil (the method names are mapped by `sluice.testing.anvil_control`, whose
docstring lists the rest): with automine on, Hardhat *refuses* a transaction whose nonce is
ahead of the sender's next one ("Nonce too high ... transactions can't be queued when
automining"), where Anvil and real nodes queue it, so the end-to-end tests with workers signing
in parallel have Hardhat mine on an interval (`sluice.testing.nodes.PARALLEL_BLOCK_TIME_S`);
``safe`` and ``finalized`` are the head itself; there is no re-org or roll-back method and no
``txpool_*`` view; interval mining is set in milliseconds; there is no ``--state`` file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Final

from sluice.devnet.anvil import DEV_MNEMONIC, LocalNode, NodeError, repo_root

__all__ = [
    "HardhatError",
    "HardhatProcess",
    "config_text",
    "hardhat_cli",
    "hardhat_installed",
    "node_executable",
]

#: Accounts derived from `DEV_MNEMONIC`, and the balance of each at genesis (as Anvil's).
ACCOUNT_COUNT: Final = 10
ACCOUNT_BALANCE_WEI: Final = 10_000 * 10**18

_HOST: Final = "127.0.0.1"


class HardhatError(NodeError):
    """Hardhat could not be found or started."""


def node_executable() -> Path | None:
    """The ``node`` (Node.js) that runs Hardhat, or None without one on PATH."""
    found = shutil.which("node")
    return Path(found) if found else None


def hardhat_cli() -> Path | None:
    """Hardhat's command-line entry point in ``tools/node_modules``, None if not installed."""
    root = repo_root()
    if root is None:
        return None
    path = root / "tools" / "node_modules" / "hardhat" / "internal" / "cli" / "bootstrap.js"
    return path if path.is_file() else None


def hardhat_installed() -> bool:
    """Whether `HardhatProcess` can start: Node.js and the pinned Hardhat are both there."""
    return node_executable() is not None and hardhat_cli() is not None


def config_text(chain_id: int, block_time: float | None) -> str:
    """The ``hardhat.config.js`` of one node: its chain, accounts and mining mode.

    ``block_time`` None mines a block per transaction; otherwise a block every ``block_time``
    seconds (Hardhat counts milliseconds).
    """
    mining = (
        {"auto": True, "interval": 0}
        if block_time is None
        else {"auto": False, "interval": max(1, round(block_time * 1000))}
    )
    network = {
        "chainId": chain_id,
        "allowUnlimitedContractSize": False,
        # The node logs every call otherwise: noise, and time spent writing it.
        "loggingEnabled": False,
        "accounts": {
            "mnemonic": DEV_MNEMONIC,
            "count": ACCOUNT_COUNT,
            "accountsBalance": str(ACCOUNT_BALANCE_WEI),
        },
        "mining": mining,
        # Several blocks a second (automine, or a short interval): without this each takes the
        # next second as its timestamp, and the chain's clock runs ahead of the wall clock.
        "allowBlocksWithSameTimestamp": True,
    }
    body = json.dumps({"networks": {"hardhat": network}}, indent=2)
    return f"// Written by sluice.testing.hardhat for one test node.\nmodule.exports = {body};\n"


class HardhatProcess(LocalNode):
    """A Hardhat node on 127.0.0.1, managed as a child process (see `LocalNode`).

    ``start(state_path=...)`` is refused: Hardhat keeps no state file.
    """

    kind: ClassVar[str] = "hardhat"
    error_type: ClassVar[type[NodeError]] = HardhatError

    def __init__(
        self,
        *,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        # Node.js loads Hardhat for a few seconds before the node answers: a longer default.
        super().__init__(startup_timeout_s=startup_timeout_s, stop_timeout_s=stop_timeout_s)
        self._config_dir: Path | None = None

    def _command(
        self,
        port: int,
        block_time: float | None,
        state_path: Path | None,
        chain_id: int,
        extra_args: Sequence[str],
    ) -> tuple[list[str], dict[str, str] | None, Path | None]:
        if state_path is not None:
            raise ValueError("a Hardhat node keeps no state file")
        node, cli = node_executable(), hardhat_cli()
        if node is None:
            raise HardhatError("Node.js (`node`) is needed to run Hardhat: see README.md")
        if cli is None:
            raise HardhatError("the pinned hardhat is not installed: run `make tools`")
        self._stopped()  # a previous attempt's config
        config_dir = Path(tempfile.mkdtemp(prefix="sluice-hardhat-"))
        self._config_dir = config_dir
        config = config_dir / "hardhat.config.js"
        config.write_text(config_text(chain_id, block_time), encoding="utf-8")
        argv = [str(node), str(cli), "node", "--config", str(config)]
        argv += ["--hostname", _HOST, "--port", str(port), *extra_args]
        env = {
            **os.environ,
            # No telemetry question (it is only asked on a terminal, but never ask), no banners.
            "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true",
            "HARDHAT_HIDE_SOLIDITY_SURVEY_MESSAGE": "true",
        }
        # tools/ (where Hardhat is installed) as the working directory: see the module docstring.
        tools = cli.parents[4]  # tools/node_modules/hardhat/internal/cli/bootstrap.js
        return argv, env, tools

    def _stopped(self) -> None:
        config_dir, self._config_dir = self._config_dir, None
        if config_dir is not None:
            shutil.rmtree(config_dir, ignore_errors=True)
