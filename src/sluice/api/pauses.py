"""Pausing and resuming networks (`sluice.services.pauses`): an operator's pause of one
network, a freeze of every network, and resuming either, a tripped circuit breaker included.
Operator keys only; stopping is the safe direction, so an approver may pause, and only an admin
resumes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request

from sluice.api import examples
from sluice.api.auth import actor_of, container_of, require_operator
from sluice.api.pause_schemas import NetworkPauseOut, PauseRequest, ResumeRequest
from sluice.api.problems import AUTHENTICATED, WITH_BODY, problem_responses
from sluice.domain.operators import Role

router = APIRouter(tags=["operators"], responses=problem_responses(*AUTHENTICATED))

NetworkName = Annotated[str, Path(max_length=64, examples=["base"])]

_PAUSED: dict[str, Any] = {
    "network": "base",
    "paused": {
        "network": "base",
        "since": examples.AT,
        "kind": "manual",
        "reason": "incident 42",
        "actor": "operator:op_7a0d3e1f9c2b4d5e",
    },
    "resumedAt": None,
    "resumedBy": None,
}
_RESUMED: dict[str, Any] = {
    "network": "base",
    "paused": None,
    "resumedAt": examples.AT,
    "resumedBy": "operator:op_7a0d3e1f9c2b4d5e",
}
_FROZEN: dict[str, Any] = {
    **_PAUSED,
    "network": "*",
    "paused": {**_PAUSED["paused"], "network": "*", "reason": "runbook: freeze"},
}
_PAUSE_BODY = Body(openapi_examples={"incident": {"value": {"reason": "incident 42"}}})
_RESUME_BODY = Body(
    openapi_examples={"checked": {"value": {"reason": "outflow checked with the risk team"}}},
)


@router.post(
    "/v1/admin/networks/{network}/pause",
    response_model=NetworkPauseOut,
    summary="Pause a network's automatic signing",
    operation_id="pauseNetwork",
    dependencies=[Depends(require_operator(Role.APPROVER))],
    responses={
        200: examples.json_example(_PAUSED, "Paused (or already paused: unchanged)"),
        **problem_responses(*WITH_BODY),
    },
)
async def pause_network(
    network: NetworkName,
    body: Annotated[PauseRequest, _PAUSE_BODY],
    request: Request,
) -> NetworkPauseOut:
    """No new payout of the network takes a nonce until an admin resumes it; its withdrawals
    wait in `VALIDATING` with a `waitingReason`. What is already signed is still sent, tracked,
    replaced and cancelled as usual. Pausing a paused network changes nothing."""
    container = container_of(request)
    async with container.uow() as uow:
        control = await container.pauses.pause(
            uow, network, reason=body.reason, actor=actor_of(request)
        )
        await uow.commit()
    return NetworkPauseOut.of(control)


@router.post(
    "/v1/admin/networks/{network}/resume",
    response_model=NetworkPauseOut,
    summary="Resume a paused network (an operator's pause or a tripped circuit breaker)",
    operation_id="resumeNetwork",
    dependencies=[Depends(require_operator(Role.ADMIN))],
    responses={
        200: examples.json_example(_RESUMED, "Resumed (or not paused: unchanged)"),
        **problem_responses(*WITH_BODY),
    },
)
async def resume_network(
    network: NetworkName,
    request: Request,
    body: Annotated[ResumeRequest | None, _RESUME_BODY] = None,
) -> NetworkPauseOut:
    """Lifts the network's own pause, manual or a tripped breaker, and wakes the withdrawals it
    held. Its circuit breaker's window starts afresh now: the outflow that tripped it no longer
    counts. A freeze of every network stays until it is lifted (`unfreezeNetworks`)."""
    container = container_of(request)
    async with container.uow() as uow:
        control = await container.pauses.resume(
            uow, network, actor=actor_of(request), reason=None if body is None else body.reason
        )
        await uow.commit()
    return NetworkPauseOut.of(control)


@router.post(
    "/v1/admin/pause",
    response_model=NetworkPauseOut,
    summary="Freeze every network: no new payout anywhere is signed",
    operation_id="freezeNetworks",
    dependencies=[Depends(require_operator(Role.APPROVER))],
    responses={
        200: examples.json_example(_FROZEN, "Frozen (or already frozen: unchanged)"),
        **problem_responses(*WITH_BODY),
    },
)
async def freeze(body: Annotated[PauseRequest, _PAUSE_BODY], request: Request) -> NetworkPauseOut:
    """The incident runbook's freeze (docs/operations.md): every network at once, networks
    added later included, until an admin lifts it. What is already signed keeps going."""
    container = container_of(request)
    async with container.uow() as uow:
        control = await container.pauses.pause(
            uow, None, reason=body.reason, actor=actor_of(request)
        )
        await uow.commit()
    return NetworkPauseOut.of(control)


@router.post(
    "/v1/admin/resume",
    response_model=NetworkPauseOut,
    summary="Lift the freeze of every network",
    operation_id="unfreezeNetworks",
    dependencies=[Depends(require_operator(Role.ADMIN))],
    responses={
        200: examples.json_example({**_RESUMED, "network": "*"}, "Lifted (or not frozen)"),
        **problem_responses(*WITH_BODY),
    },
)
async def unfreeze(
    request: Request, body: Annotated[ResumeRequest | None, _RESUME_BODY] = None
) -> NetworkPauseOut:
    """Lifts the freeze only: a network paused on its own (by hand, or by its circuit breaker)
    stays paused until it is resumed by name (`resumeNetwork`)."""
    container = container_of(request)
    async with container.uow() as uow:
        control = await container.pauses.resume(
            uow, None, actor=actor_of(request), reason=None if body is None else body.reason
        )
        await uow.commit()
    return NetworkPauseOut.of(control)
