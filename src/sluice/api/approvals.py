"""Approval routes: the withdrawals waiting for operators, and their decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import Field, StrictStr

from sluice.api import cursors, examples
from sluice.api.auth import actor_of, container_of, require_operator
from sluice.api.problems import AUTHENTICATED, WITH_BODY, problem_responses
from sluice.api.schemas import WithdrawalOut, _In, _Out
from sluice.api.withdrawals import WithdrawalId, render
from sluice.domain.operators import Operator, Role
from sluice.services.approvals import Waiting
from sluice.services.withdrawals import PagePosition

router = APIRouter(tags=["operators"], responses=problem_responses(*AUTHENTICATED))

_REVISION = "3f9a1c2b7d4e5f60"


class VoteOut(_Out):
    """One operator's decision."""

    operator_id: str
    vote: str
    at: datetime
    reason: str | None


class ApprovalOut(_Out):
    """A withdrawal waiting for approval: what it needs, what it has, the revision to name."""

    withdrawal: WithdrawalOut
    revision: str = Field(description="Name it when approving: a withdrawal changed since refuses")
    approvals_required: int
    approver_role: Role
    approvals: int
    votes: list[VoteOut]
    expires_at: datetime | None


class ApprovalPage(_Out):
    """A page of withdrawals waiting for approval, newest first."""

    items: list[ApprovalOut]
    next_cursor: str | None


class ApproveRequest(_In):
    """An approval of the revision the operator saw."""

    revision: Annotated[StrictStr, Field(min_length=16, max_length=16)]


class RejectRequest(_In):
    """A rejection, with why."""

    reason: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    revision: Annotated[StrictStr, Field(min_length=16, max_length=16)] | None = None


def _out(request: Request, waiting: Waiting) -> ApprovalOut:
    container = container_of(request)
    return ApprovalOut(
        withdrawal=render(container, waiting.withdrawal),
        revision=waiting.revision,
        approvals_required=waiting.required.approvals,
        approver_role=waiting.required.role,
        approvals=waiting.approvals,
        votes=[
            VoteOut(operator_id=v.operator_id, vote=v.vote.value, at=v.at, reason=v.reason)
            for v in waiting.votes
        ],
        expires_at=waiting.withdrawal.approval_expires_at,
    )


_WAITING = {
    "withdrawal": {**examples.WITHDRAWAL, "status": "PENDING_APPROVAL", "policyRule": "large"},
    "revision": _REVISION,
    "approvalsRequired": 2,
    "approverRole": "approver",
    "approvals": 1,
    "votes": [
        {"operatorId": "op_5f1c2a9e0b7d4c3a", "vote": "approve", "at": examples.AT, "reason": None}
    ],
    "expiresAt": examples.LATER,
}


@router.get(
    "/v1/admin/approvals",
    response_model=ApprovalPage,
    summary="Withdrawals waiting for approval",
    operation_id="listApprovals",
    dependencies=[Depends(require_operator(Role.VIEWER))],
    responses={
        200: examples.json_example({"items": [_WAITING], "nextCursor": None}, "Newest first"),
        **problem_responses(422),
    },
)
async def list_approvals(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ApprovalPage:
    """Funds are held for each; each shows its quorum, the votes so far and when it expires."""
    container = container_of(request)
    before = None if cursor is None else cursors.decode(cursor).seq
    async with container.uow() as uow:
        found = await container.approvals.waiting(uow, limit=limit + 1, before_seq=before)
    page = found[:limit]
    last = page[-1].withdrawal.seq if page else None
    next_cursor = (
        cursors.encode(PagePosition(last)) if len(found) > limit and last is not None else None
    )
    return ApprovalPage(items=[_out(request, w) for w in page], next_cursor=next_cursor)


_DECIDED = problem_responses(
    *WITH_BODY,
    404,
    409,
    s404="No such withdrawal",
    s409="Not waiting for approval, changed since (`stale_revision`), or decided before "
    "by this operator (`already_decided`)",
)


@router.post(
    "/v1/admin/approvals/{withdrawalId}/approve",
    response_model=WithdrawalOut,
    summary="Approve a withdrawal waiting for approval",
    operation_id="approveWithdrawal",
    responses={
        200: examples.json_example(
            {**examples.WITHDRAWAL, "status": "VALIDATING"}, "At the quorum: on to signing"
        ),
        **_DECIDED,
    },
)
async def approve(
    withdrawal_id: WithdrawalId,
    body: Annotated[
        ApproveRequest, Body(openapi_examples={"seen": {"value": {"revision": _REVISION}}})
    ],
    request: Request,
    operator: Annotated[Operator, Depends(require_operator(Role.APPROVER))],
) -> WithdrawalOut:
    """Distinct operators of at least the rule's role make the quorum; nobody approves twice
    (409 `already_decided`) or approves a withdrawal asked for with their own key (403
    `self_approval`). At the last approval the policy in force decides again: a blocklist
    entry added meanwhile still wins."""
    container = container_of(request)
    async with container.uow() as uow:
        withdrawal = await container.approvals.approve(
            uow, withdrawal_id, operator=operator, actor=actor_of(request), seen=body.revision
        )
        await uow.commit()
    return render(container, withdrawal)


@router.post(
    "/v1/admin/approvals/{withdrawalId}/reject",
    response_model=WithdrawalOut,
    summary="Reject a withdrawal waiting for approval",
    operation_id="rejectWithdrawal",
    responses={
        200: examples.json_example(
            {**examples.WITHDRAWAL, "status": "FAILED", "errorCode": "rejected"},
            "Ended; its hold released",
        ),
        **_DECIDED,
    },
)
async def reject(
    withdrawal_id: WithdrawalId,
    body: Annotated[
        RejectRequest, Body(openapi_examples={"why": {"value": {"reason": "unknown destination"}}})
    ],
    request: Request,
    operator: Annotated[Operator, Depends(require_operator(Role.APPROVER))],
) -> WithdrawalOut:
    """One rejection ends it: FAILED `rejected`, its hold released."""
    container = container_of(request)
    async with container.uow() as uow:
        withdrawal = await container.approvals.reject(
            uow,
            withdrawal_id,
            operator=operator,
            actor=actor_of(request),
            reason=body.reason,
            seen=body.revision,
        )
        await uow.commit()
    return render(container, withdrawal)
