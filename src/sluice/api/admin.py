"""Admin routes: the dead-letter queue."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from sluice.api.auth import container_of, require
from sluice.api.schemas import DeadLetterOut
from sluice.domain.access import Scope
from sluice.errors import NotFoundError

router = APIRouter(tags=["admin"], dependencies=[Depends(require(Scope.ADMIN))])


@router.get(
    "/v1/admin/dead-letters", response_model=list[DeadLetterOut], summary="List dead letters"
)
async def dead_letters(request: Request) -> list[DeadLetterOut]:
    """Messages that exhausted their retries, oldest first."""
    queue = container_of(request).queue
    return [
        DeadLetterOut(
            id=d.message.id,
            job=d.message.job,
            payload=d.message.payload,
            attempts=d.message.attempts,
            reason=d.reason,
            last_error=d.message.last_error,
            dead_at=d.dead_at,
        )
        for d in await queue.dead_letters()
    ]


@router.post(
    "/v1/admin/dead-letters/{message_id}/requeue",
    status_code=202,
    summary="Put a dead letter back on the queue",
    responses={404: {"description": "No such dead letter"}},
)
async def requeue(message_id: str, request: Request) -> Response:
    """Requeue with fresh attempts; the handler re-reads the row, so this is always safe."""
    if not await container_of(request).queue.requeue(message_id):
        raise NotFoundError(f"dead letter {message_id!r} does not exist")
    return Response(status_code=202)
