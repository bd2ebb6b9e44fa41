"""Liveness and readiness (no API key needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from sluice.api.auth import container_of
from sluice.api.schemas import Check, Health, Readiness
from sluice.errors import SluiceError

router = APIRouter(tags=["health"])

_TIMEOUT_S = 3.0
_OK = Check(ok=True, detail="ok")
_CHECKS: dict[str, object] = {
    name: {"ok": True, "detail": "ok"} for name in ("database", "queue", "chain:sepolia")
}
_READY = {"status": "ready", "checks": _CHECKS}
_NOT_READY = {
    "status": "not_ready",
    "checks": {**_CHECKS, "chain:sepolia": {"ok": False, "detail": "timed out"}},
}


@router.get(
    "/health",
    summary="Liveness: the process answers",
    operation_id="getHealth",
    response_model=Health,
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def health() -> Health:
    """Always ok while the process runs."""
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={
        200: {"content": {"application/json": {"example": _READY}}},
        503: {
            "model": Readiness,
            "description": "Not ready",
            "content": {"application/json": {"example": _NOT_READY}},
        },
    },
    summary="Readiness: database, queue and every chain RPC answer",
    operation_id="getReadiness",
)
async def ready(request: Request) -> JSONResponse:
    """Checks the database, the queue and each network's node (and its chain id)."""
    container = container_of(request)
    checks: dict[str, Check] = {}

    async def database() -> None:
        async with container.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def run(name: str, probe: Awaitable[object]) -> None:
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                await probe
            checks[name] = Check(ok=True, detail="ok")
        except TimeoutError:
            checks[name] = Check(ok=False, detail="timed out")
        except SluiceError as exc:
            checks[name] = Check(ok=False, detail=exc.detail)
        except Exception as exc:  # any failure of a dependency makes us not ready
            checks[name] = Check(ok=False, detail=type(exc).__name__)

    async def chain_matches(expected: int, name: str) -> None:
        actual = await container.registry.get(name).chain.chain_id()
        if actual != expected:
            raise SluiceError(f"node reports chain id {actual}, expected {expected}")

    probes = [run("database", database()), run("queue", container.queue.ping())]
    if container.cache is not None:
        probes.append(run("cache", container.cache.ping()))
    for entry in container.registry:
        network = entry.network
        probes.append(run(f"chain:{network.name}", chain_matches(network.chain_id, network.name)))
    await asyncio.gather(*probes)
    # The cache is optional: without it Sluice is correct, only slower. Degraded, still ready.
    if "cache" in checks and not checks["cache"].ok:
        checks["cache"] = Check(
            ok=False, detail=f"degraded, balances read from the database ({checks['cache'].detail})"
        )
    ok = all(check.ok for name, check in checks.items() if name != "cache")
    status = "not_ready" if not ok else "ready" if checks.get("cache", _OK).ok else "degraded"
    body = Readiness(status=status, checks=checks)
    return JSONResponse(body.model_dump(by_alias=True), status_code=200 if ok else 503)
