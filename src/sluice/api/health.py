"""Liveness and readiness (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sluice.api.auth import container_of
from sluice.api.schemas import Check, Health, Readiness

router = APIRouter(tags=["health"])

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
    readiness = await container_of(request).readiness.check()
    body = Readiness(
        status=readiness.status,
        checks={name: Check(ok=c.ok, detail=c.detail) for name, c in readiness.checks.items()},
    )
    return JSONResponse(body.model_dump(by_alias=True), status_code=200 if readiness.ok else 503)
