"""Sluice as separate processes (`sluice serve`, `sluice worker`) for multi-process tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sluice.config import Settings
from sluice.devnet.anvil import free_port
from sluice.testing.harness import PASSPHRASE


def cluster_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a cluster's processes: this one's without its SLUICE_* variables,
    and the prepared settings' database, queue, networks file and keystore passphrase, quick
    retries, warnings-only JSON logs; ``extra`` on top (``SLUICE_POLICY_FILE=...``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_DATABASE_URL=settings.database_url,
        SLUICE_QUEUE_URL=settings.queue_url,
        SLUICE_NETWORKS_FILE=str(settings.networks_file),
        SLUICE_KEYSTORE_PASSPHRASE=PASSPHRASE,
        SLUICE_LOG_FORMAT="json",
        SLUICE_LOG_LEVEL="warning",
        SLUICE_RETRY_BASE_S="0.2",
        SLUICE_RETRY_MAX_S="2",
        **extra,
    )
    return env


@dataclass
class Cluster:
    """The processes of one run and how to reach them."""

    env: dict[str, str]
    logs: Path
    api_urls: list[str] = field(default_factory=list)
    apis: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        name = f"{args[0]}-{uuid.uuid4().hex[:6]}.log"
        with (self.logs / name).open("wb") as log:  # the child keeps its own copy
            return subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [sys.executable, "-m", "sluice", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def start(self, apis: int, workers: int) -> None:
        for _ in range(apis):
            port = free_port()
            self.apis.append(self.spawn("serve", "--no-workers", "--port", str(port)))
            self.api_urls.append(f"http://127.0.0.1:{port}")
        for _ in range(workers):
            self.workers.append(self.spawn("worker"))

    def stop(self) -> list[int | None]:
        codes: list[int | None] = []
        for process in [*self.apis, *self.workers]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.apis, *self.workers]:
            try:
                codes.append(process.wait(timeout=30))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(None)
        return codes

    async def healthy(self, client: httpx.AsyncClient) -> None:
        """Wait until every API process answers ``/health`` (about 20 s at most)."""
        for url in self.api_urls:
            for _ in range(200):
                try:
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
