"""Operator routes: operators and their keys, and the audit log. Operator keys only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from sluice.api import cursors, examples
from sluice.api.auth import actor_of, container_of, require_operator
from sluice.api.operator_schemas import (
    AuditEntryOut,
    AuditPage,
    OperatorChange,
    OperatorCreate,
    OperatorKeyOut,
    OperatorOut,
    OperatorWithKey,
)
from sluice.api.problems import AUTHENTICATED, WITH_BODY, problem_responses
from sluice.api.times import parse_rfc3339
from sluice.domain.audit import AuditFilter
from sluice.domain.operators import Role
from sluice.services.withdrawals import PagePosition

_OPERATOR = {
    "id": "op_5f1c2a9e0b7d4c3a",
    "name": "bob",
    "role": "approver",
    "disabled": False,
    "createdAt": "2026-12-04T12:00:00Z",
}
_KEY = "sluice_3f9a1c2b7d4e5f60_Vb3…(shown once)"
_AUDIT_ENTRY = {
    "seq": 42,
    "at": "2026-12-04T12:00:00Z",
    "actor": "operator:op_7a0d3e1f9c2b4d5e",
    "apiKeyId": "9c2b4d5e7a0d3e1f",
    "address": "10.0.0.7",
    "action": "operator.created",
    "subject": "operator:op_5f1c2a9e0b7d4c3a",
    "before": None,
    "after": {"id": "op_5f1c2a9e0b7d4c3a", "name": "bob", "role": "approver", "disabled": False},
    "detail": None,
    "prevHash": "5d1f0c9a" + "0" * 56,
    "hash": "a9e3b1c7" + "0" * 56,
}

router = APIRouter(tags=["operators"], responses=problem_responses(*AUTHENTICATED))

OperatorId = Annotated[str, Path(alias="operatorId", max_length=64)]


def _TIME_QUERY(description: str) -> Any:  # noqa: N802 - reads as the Query it makes
    return Query(
        max_length=64,
        description=description,
        examples=["2026-12-02T10:00:00Z"],
        json_schema_extra={"format": "date-time"},
    )


def _created(body: OperatorWithKey | OperatorKeyOut) -> JSONResponse:
    return JSONResponse(body.model_dump(mode="json", by_alias=True), status_code=201)


@router.post(
    "/v1/admin/operators",
    status_code=201,
    response_model=OperatorWithKey,
    summary="Create an operator and their first API key",
    operation_id="createOperator",
    dependencies=[Depends(require_operator(Role.ADMIN))],
    responses={
        201: examples.json_example({**_OPERATOR, "apiKey": _KEY}, "Made; the key is shown once"),
        **problem_responses(*WITH_BODY, 409, s409="An operator has that name"),
    },
)
async def create_operator(
    body: Annotated[
        OperatorCreate,
        Body(openapi_examples={"approver": {"value": {"name": "bob", "role": "approver"}}}),
    ],
    request: Request,
) -> JSONResponse:
    """The key is shown this once; Sluice keeps only its hash."""
    container = container_of(request)
    async with container.uow() as uow:
        operator, token = await container.operators.create(
            uow, name=body.name, role=body.role, actor=actor_of(request)
        )
        await uow.commit()
    return _created(OperatorWithKey(**OperatorOut.of(operator).model_dump(), api_key=token))


@router.get(
    "/v1/admin/operators",
    response_model=list[OperatorOut],
    summary="List operators",
    operation_id="listOperators",
    dependencies=[Depends(require_operator(Role.VIEWER))],
    responses={200: examples.json_example([_OPERATOR], "By name")},
)
async def list_operators(request: Request) -> list[OperatorOut]:
    """Every operator, by name."""
    container = container_of(request)
    async with container.uow() as uow:
        return [OperatorOut.of(o) for o in await uow.operators.all()]


@router.patch(
    "/v1/admin/operators/{operatorId}",
    response_model=OperatorOut,
    summary="Change an operator's role, or disable them",
    operation_id="changeOperator",
    dependencies=[Depends(require_operator(Role.ADMIN))],
    responses={
        200: examples.json_example({**_OPERATOR, "disabled": True}, "Changed"),
        **problem_responses(
            *WITH_BODY, 404, 409, s404="No such operator", s409="It would leave no enabled admin"
        ),
    },
)
async def change_operator(
    operator_id: OperatorId,
    body: Annotated[
        OperatorChange, Body(openapi_examples={"disable": {"value": {"disabled": True}}})
    ],
    request: Request,
) -> OperatorOut:
    """A changed role or a disabling revokes the operator's keys (a new key comes with a new
    role; ask for one with `POST …/keys`)."""
    container = container_of(request)
    async with container.uow() as uow:
        operator = await container.operators.change(
            uow, operator_id, actor=actor_of(request), role=body.role, disabled=body.disabled
        )
        await uow.commit()
    return OperatorOut.of(operator)


@router.post(
    "/v1/admin/operators/{operatorId}/keys",
    status_code=201,
    response_model=OperatorKeyOut,
    summary="Make another API key for an operator",
    operation_id="createOperatorKey",
    dependencies=[Depends(require_operator(Role.ADMIN))],
    responses={
        201: examples.json_example({"apiKey": _KEY}, "Made; shown once"),
        **problem_responses(404, 422, s404="No such operator"),
    },
)
async def create_operator_key(operator_id: OperatorId, request: Request) -> JSONResponse:
    """The key is shown this once."""
    container = container_of(request)
    async with container.uow() as uow:
        token = await container.operators.new_key(uow, operator_id, actor=actor_of(request))
        await uow.commit()
    return _created(OperatorKeyOut(api_key=token))


@router.get(
    "/v1/admin/audit",
    response_model=AuditPage,
    summary="Read the audit log",
    operation_id="listAuditEntries",
    dependencies=[Depends(require_operator(Role.VIEWER))],
    responses={
        200: examples.json_example({"items": [_AUDIT_ENTRY], "nextCursor": None}, "Newest first"),
        **problem_responses(422),
    },
)
async def audit(
    request: Request,
    *,
    actor: Annotated[str | None, Query(max_length=160, description="`kind:id`")] = None,
    action: Annotated[str | None, Query(max_length=64, examples=["withdrawal.approved"])] = None,
    subject: Annotated[str | None, Query(max_length=160, examples=["withdrawal:wd_1"])] = None,
    since: Annotated[
        str | None, _TIME_QUERY("At or after this time (RFC 3339 with a zone)")
    ] = None,
    until: Annotated[str | None, _TIME_QUERY("Before this time (RFC 3339 with a zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AuditPage:
    """Newest first; every filter given narrows the list. Each entry carries the hash of the
    one before it (`sluice audit verify` checks the whole chain)."""
    container = container_of(request)
    before = None if cursor is None else cursors.decode(cursor).seq
    where = AuditFilter(
        actor=actor,
        action=action,
        subject=subject,
        since=None if since is None else parse_rfc3339(since, field="since"),
        until=None if until is None else parse_rfc3339(until, field="until"),
    )
    async with container.uow() as uow:
        entries = await uow.audit.page(where, limit=limit + 1, before_seq=before)
    page = entries[:limit]
    next_cursor = (
        cursors.encode(PagePosition(page[-1].seq)) if len(entries) > limit and page else None
    )
    return AuditPage(items=[AuditEntryOut.of(e) for e in page], next_cursor=next_cursor)
