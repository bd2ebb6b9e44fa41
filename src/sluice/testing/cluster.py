"""Sluice as separate processes (`sluice serve`, `sluice worker`) for multi-process tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sluice.devnet.anvil import free_port


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
