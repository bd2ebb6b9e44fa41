"""Readiness: can this process do its work? The database, the queue and each network's node.

The balance cache is optional: without it Sluice is correct, only slower. A failing cache makes
the process ``degraded``, still ready; any other failing check makes it ``not_ready``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sluice.errors import SluiceError
from sluice.services.registry import NetworkEntry, NetworkRegistry

__all__ = ["CheckResult", "Pingable", "Readiness", "ReadinessService"]

#: Seconds each check may take before it counts as failed.
TIMEOUT_S = 3.0


class Pingable(Protocol):
    """Something that can say whether it answers (the queue, the balance cache)."""

    async def ping(self) -> None:
        """Raise if it cannot be reached."""
        ...


@dataclass(frozen=True, slots=True)
class CheckResult:
    """How one check ended."""

    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Readiness:
    """Every check, by name (``database``, ``queue``, ``cache``, ``chain:<network>``)."""

    status: str
    """``ready``, ``degraded`` (only the cache fails) or ``not_ready``."""
    checks: dict[str, CheckResult]

    @property
    def ok(self) -> bool:
        """Whether the process can do its work (a degraded one can)."""
        return self.status != "not_ready"


class ReadinessService:
    """Runs every readiness check at once, each bounded by a timeout."""

    def __init__(
        self,
        *,
        database: Callable[[], Awaitable[None]],
        queue: Pingable,
        registry: NetworkRegistry,
        cache: Pingable | None = None,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._database = database
        self._queue = queue
        self._registry = registry
        self._cache = cache
        self._timeout_s = timeout_s

    async def check(self) -> Readiness:
        """Check the database, the queue, the cache (if any) and each network's chain id."""
        checks: dict[str, CheckResult] = {}

        async def run(name: str, probe: Awaitable[object]) -> None:
            try:
                async with asyncio.timeout(self._timeout_s):
                    await probe
                checks[name] = CheckResult(ok=True, detail="ok")
            except TimeoutError:
                checks[name] = CheckResult(ok=False, detail="timed out")
            except SluiceError as exc:
                checks[name] = CheckResult(ok=False, detail=exc.detail)
            except Exception as exc:  # any failure of a dependency makes us not ready
                checks[name] = CheckResult(ok=False, detail=type(exc).__name__)

        probes = [run("database", self._database()), run("queue", self._queue.ping())]
        if self._cache is not None:
            probes.append(run("cache", self._cache.ping()))
        probes.extend(
            run(f"chain:{entry.network.name}", self._chain_matches(entry))
            for entry in self._registry
        )
        await asyncio.gather(*probes)
        cache = checks.get("cache")
        if cache is not None and not cache.ok:
            checks["cache"] = CheckResult(
                ok=False, detail=f"degraded, balances read from the database ({cache.detail})"
            )
        ok = all(check.ok for name, check in checks.items() if name != "cache")
        status = "not_ready" if not ok else "ready" if cache is None or cache.ok else "degraded"
        return Readiness(status=status, checks=checks)

    @staticmethod
    async def _chain_matches(entry: NetworkEntry) -> None:
        expected = entry.network.chain_id
        actual = await entry.chain.chain_id()
        if actual != expected:
            raise SluiceError(f"node reports chain id {actual}, expected {expected}")
