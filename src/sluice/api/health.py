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
_READY = {"status": "ready", "checks": _CHECKS, "degraded": []}
_DEGRADED = {
    "status": "degraded",
    "checks": {**_CHECKS, "chain:sepolia": {"ok": False, "detail": "down: timed out"}},
    "degraded": ["chain:sepolia"],
}
_NOT_READY = {
    "status": "not_ready",
    "checks": {**_CHECKS, "database": {"ok": False, "detail": "timed out"}},
    "degraded": [],
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
        200: {
            "content": {
                "application/json": {
                    "examples": {
                        "ready": {"value": _READY},
                        "degraded": {"summary": "one network down", "value": _DEGRADED},
                    }
                }
            }
        },
        503: {
            "model": Readiness,
            "description": "Not ready",
            "content": {"application/json": {"example": _NOT_READY}},
        },
    },
    summary="Readiness: the database and the queue answer; each network's state",
    operation_id="getReadiness",
)
async def ready(request: Request) -> JSONResponse:
    """Checks the database, the queue and each network's node. A network that is down makes
    the process `degraded` (200, named in `degraded`), never unready: the API still serves every
    network and the others pay. Only a failing database or queue answers 503."""
    readiness = await container_of(request).readiness.check()
    body = Readiness(
        status=readiness.status,
        checks={name: Check(ok=c.ok, detail=c.detail) for name, c in readiness.checks.items()},
        degraded=list(readiness.degraded),
    )
    return JSONResponse(body.model_dump(by_alias=True), status_code=200 if readiness.ok else 503)
