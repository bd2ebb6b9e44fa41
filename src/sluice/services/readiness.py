"""Readiness: can this process do its work? The database, the queue and each network's node.

The database and the queue are the process's own: if either fails it is ``not_ready`` (503), and
a load balancer should send it nothing. A network whose node is down (or misconfigured, or not
verified yet) is that network's outage, not the process's: the API still takes and serves
withdrawals for every network, and the others pay; the process is ``degraded`` (200) and names
the networks in ``degraded``. The balance cache is optional (without it Sluice is correct, only
slower): a failing cache is ``degraded`` too.

With a `NetworkHealth` monitor, each network's check is its last probe (no request waits on a
node that hangs); without one, each node is asked its chain id, within the timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sluice.errors import SluiceError
from sluice.services.network_health import NetworkHealth
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
    """``ready``, ``degraded`` (the cache or some networks fail) or ``not_ready`` (the
    database or the queue fails)."""
    checks: dict[str, CheckResult]
    degraded: tuple[str, ...] = ()
    """What fails without making the process unready: ``cache``, ``chain:<network>``."""

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
        health: NetworkHealth | None = None,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._database = database
        self._queue = queue
        self._registry = registry
        self._cache = cache
        self._health = health
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
        if self._health is None:
            probes.extend(
                run(f"chain:{entry.network.name}", self._chain_matches(entry))
                for entry in self._registry
            )
        else:
            for name, state in self._health.states().items():
                checks[f"chain:{name}"] = CheckResult(
                    ok=state.open,
                    detail="ok" if state.open else f"{state.status.value}: {state.detail}",
                )
        await asyncio.gather(*probes)
        cache = checks.get("cache")
        if cache is not None and not cache.ok:
            checks["cache"] = CheckResult(
                ok=False, detail=f"degraded, balances read from the database ({cache.detail})"
            )
        own = ("database", "queue")
        degraded = tuple(sorted(n for n, c in checks.items() if not c.ok and n not in own))
        if not all(checks[name].ok for name in own):
            status = "not_ready"
        else:
            status = "degraded" if degraded else "ready"
        return Readiness(status=status, checks=checks, degraded=degraded)

    @staticmethod
    async def _chain_matches(entry: NetworkEntry) -> None:
        expected = entry.network.chain_id
        actual = await entry.chain.chain_id()
        if actual != expected:
            raise SluiceError(f"node reports chain id {actual}, expected {expected}")
