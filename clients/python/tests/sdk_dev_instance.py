"""A running `sluice dev`, as the SDK's integration tests see it (the `sluice_dev` fixture)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True, slots=True)
class DevInstance:
    """A running `sluice dev`: what its dev.json says, and how to make more API keys."""

    api_url: str
    api_key: str
    network: str
    tokens: dict[str, str]
    demo_user_id: str
    hot_wallet: str
    data_dir: Path
    sluice: Path

    def env(self) -> dict[str, str]:
        """The environment of a `sluice` command on this instance's data directory."""
        return sluice_env(self.data_dir)

    def create_api_key(self, name: str, *options: str) -> str:
        """A new API key on this instance (``sluice apikey create``): its token."""
        result = subprocess.run(  # noqa: S603 - our own command, arguments from the tests
            [str(self.sluice), "apikey", "create", "--name", name, *options],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"sluice apikey create failed: {result.stdout}{result.stderr}")
        return result.stdout.strip().splitlines()[-1]


def sluice_env(data_dir: Path) -> dict[str, str]:
    # None of the developer's SLUICE_ settings (another database, a queue, a rate limit): the
    # instance runs on its embedded defaults in its own directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_DATA_DIR"] = str(data_dir)
    env["SLUICE_LOG_FORMAT"] = "json"
    return env
