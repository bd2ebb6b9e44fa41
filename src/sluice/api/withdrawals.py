"""Withdrawal routes."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response

from sluice import metrics
from sluice.api import cursors, examples
from sluice.api.auth import container_of, ensure_owner, ensure_user, require
from sluice.api.middleware import request_id_of
from sluice.api.problems import AUTHENTICATED, WITH_BODY, problem_responses
from sluice.api.schemas import (
    CLIENT_ID_PATTERN,
    EventList,
    EventOut,
    TransactionOut,
    WithdrawalCreate,
    WithdrawalOut,
    WithdrawalPage,
)
from sluice.api.times import parse_rfc3339
from sluice.bootstrap import Container
from sluice.domain.access import USER_ID_PATTERN, ApiKey, Scope
from sluice.domain.assets import Asset
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.errors import ForbiddenError, InvalidRequestError, SluiceError
from sluice.services.withdrawals import WithdrawalRequest

router = APIRouter(tags=["withdrawals"])

_write = [Depends(require(Scope.WITHDRAWALS_WRITE))]
_read = [Depends(require(Scope.WITHDRAWALS_READ))]
_ERRORS = problem_responses(*AUTHENTICATED, *WITH_BODY, 409)
_READ_ERRORS = problem_responses(*AUTHENTICATED, 404, 422)
# A POST without a body parameter still passes the body guard (413, 415).
_CANCEL_ERRORS = problem_responses(*AUTHENTICATED, 404, 409, 413, 415, 422)

#: A withdrawal's id in a path: what `id` accepts at intake (`wd_…` for server-made ones).
WithdrawalId = Annotated[
    str,
    Path(
        alias="withdrawalId",
        pattern=CLIENT_ID_PATTERN,
        description="The withdrawal's id (the client's `id`, or the server's `wd_…`)",
        examples=["payout-20261202-0042"],
    ),
]

_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)
_LOCATION = {
    "Location": {
        "description": "The withdrawal's URL",
        "schema": {"type": "string", "examples": ["/v1/withdrawals/payout-20261202-0042"]},
    }
}


def _asset_of(container: Container, withdrawal: Withdrawal) -> Asset | None:
    try:
        return container.registry.get(withdrawal.network).network.asset_by_key(withdrawal.asset_key)
    except SluiceError:
        return None


def render(container: Container, withdrawal: Withdrawal) -> WithdrawalOut:
    """The API view of a withdrawal."""
    try:
        network = container.registry.get(withdrawal.network).network
    except SluiceError:
        network = None
    return WithdrawalOut.of(withdrawal, _asset_of(container, withdrawal), network)


def idempotency_key(value: str | None) -> str | None:
    """The key of an ``Idempotency-Key`` header: a Structured Field string (``"k-1"``, as the
    IETF draft defines the header) or, as many clients send it, the bare token (``k-1``).

    Raises:
        InvalidRequestError: Not a client id (field ``Idempotency-Key`` in the header).
    """
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not _CLIENT_ID.match(key):
        raise InvalidRequestError(
            "Idempotency-Key must be 1-64 of A-Z a-z 0-9 _ . : - (optionally in double quotes)",
            field="Idempotency-Key",
            location="header",
        )
    return key


async def create_withdrawal(
    body: Annotated[WithdrawalCreate, Body(openapi_examples=examples.WITHDRAWAL_REQUEST_EXAMPLES)],
    request: Request,
    idempotency: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=66,
            description='The withdrawal\'s id, if the body has none: `k-1` or `"k-1"`',
        ),
    ] = None,
) -> Response:
    """Request a withdrawal. It is accepted (202) and paid asynchronously; follow it with
    `getWithdrawal` or `listWithdrawalEvents`.

    The `id` (or the `Idempotency-Key` header) is the idempotency key: the same request again
    returns the existing withdrawal with 200, whatever its status; a different body under the
    same id is a 409 `idempotency_conflict`. Ids are global, not per API key.
    """
    if len(request.headers.getlist("Idempotency-Key")) > 1:
        raise InvalidRequestError(
            "send one Idempotency-Key", field="Idempotency-Key", location="header"
        )
    key = idempotency_key(idempotency)
    if body.id is not None and key is not None and body.id != key:
        raise InvalidRequestError(
            "the body's id and the Idempotency-Key header differ",
            field="Idempotency-Key",
            location="header",
        )
    ensure_user(request, body.user_id)
    container = container_of(request)
    withdrawal_request = WithdrawalRequest(
        id=body.id or key,
        user_id=body.user_id,
        amount=body.amount,
        to_address=body.to_address,
        token_address=body.token_address,
        network=body.network,
        priority=body.priority,
    )
    async with container.uow() as uow:
        withdrawal, created = await container.withdrawals.submit(
            uow,
            withdrawal_request,
            request_id=request_id_of(request.state),
            api_key_id=request.state.api_key.id,
        )
        await uow.commit()
    if created:
        metrics.WITHDRAWALS_REQUESTED.labels(withdrawal.network).inc()
    headers = {"Location": f"/v1/withdrawals/{withdrawal.id}"}
    if request.url.path == DEPRECATED_PATH:  # RFC 9745, and where to go instead (RFC 8288)
        headers |= {"Deprecation": "true", "Link": '</v1/withdrawals>; rel="successor-version"'}
    # A ready response: `response_model` (for the schema) would validate and serialise the model
    # a second time; this is byte for byte what FastAPI would send.
    return Response(
        render(container, withdrawal).model_dump_json(by_alias=True),
        status_code=202 if created else 200,
        media_type="application/json",
        headers=headers,
    )


_CREATE_RESPONSES = {
    202: {**examples.json_example(examples.WITHDRAWAL, "Accepted"), "headers": _LOCATION},
    200: {
        **examples.json_example(
            examples.COMPLETED, "An idempotent repeat: the withdrawal as it is"
        ),
        "model": WithdrawalOut,
        "headers": _LOCATION,
    },
    **_ERRORS,
}
router.add_api_route(
    "/v1/withdrawals",
    create_withdrawal,
    methods=["POST"],
    status_code=202,
    response_model=WithdrawalOut,
    dependencies=_write,
    responses=_CREATE_RESPONSES,
    summary="Request a withdrawal",
    operation_id="createWithdrawal",
)
#: The first plan's intake path, kept for existing callers.
DEPRECATED_PATH = "/withdrawal/request"
router.add_api_route(
    DEPRECATED_PATH,
    create_withdrawal,
    methods=["POST"],
    status_code=202,
    response_model=WithdrawalOut,
    dependencies=_write,
    responses=_CREATE_RESPONSES,
    summary="Request a withdrawal (deprecated path: use POST /v1/withdrawals)",
    description="The same as `createWithdrawal`, at the path of the project's first plan.",
    operation_id="createWithdrawalDeprecated",
    deprecated=True,
)


@router.get(
    "/v1/withdrawals/{withdrawalId}",
    response_model=WithdrawalOut,
    dependencies=_read,
    responses={200: examples.json_example(examples.COMPLETED, "The withdrawal"), **_READ_ERRORS},
    summary="Read a withdrawal",
    operation_id="getWithdrawal",
)
async def get_withdrawal(withdrawal_id: WithdrawalId, request: Request) -> WithdrawalOut:
    """A withdrawal by id."""
    container = container_of(request)
    async with container.uow() as uow:
        withdrawal = await container.withdrawals.get(uow, withdrawal_id)
    ensure_owner(request, withdrawal)
    return render(container, withdrawal)


@router.get(
    "/v1/withdrawals",
    response_model=WithdrawalPage,
    dependencies=_read,
    responses={
        200: examples.json_example(examples.PAGE, "A page"),
        **problem_responses(*AUTHENTICATED, 422),
    },
    summary="List withdrawals",
    operation_id="listWithdrawals",
)
async def list_withdrawals(  # noqa: PLR0917 - FastAPI maps each query parameter to one
    request: Request,
    user_id: Annotated[
        str | None, Query(alias="userId", pattern=USER_ID_PATTERN, description="Only this user's")
    ] = None,
    status: Annotated[WithdrawalStatus | None, Query(description="Only in this status")] = None,
    updated_since: Annotated[
        str | None,
        Query(
            alias="updatedSince",
            max_length=64,
            description=(
                "Only those updated at or after this time (RFC 3339 with a zone), oldest change"
                " first: to catch up after downtime"
            ),
            examples=["2026-12-02T10:00:00Z"],
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="`nextCursor` of the previous page, as it came"),
    ] = None,
) -> WithdrawalPage:
    """A page of withdrawals, newest first; pass `nextCursor` back as `cursor` for the next
    page (`null`: none left).

    With `updatedSince` the order is by update time, oldest first, so a platform that was down
    pages forward through everything that changed since it last looked. To resume later, pass
    the `updatedAt` of the last item seen minus a few seconds as `updatedSince` (commits are not
    instantaneous) and skip items whose `updatedAt` you already have.

    A key restricted to some users must name one of them in `userId`.
    """
    key: ApiKey = request.state.api_key
    if user_id is None and key.user_ids is not None:
        raise ForbiddenError("this API key is restricted to some users: pass userId")
    if user_id is not None:
        ensure_user(request, user_id)
    since = None if updated_since is None else parse_rfc3339(updated_since, field="updatedSince")
    position = None if cursor is None else cursors.decode(cursor)
    container = container_of(request)
    async with container.uow() as uow:
        items, following = await container.withdrawals.page(
            uow,
            user_id=user_id,
            status=status,
            limit=limit,
            cursor=position,
            updated_since=since,
        )
    return WithdrawalPage(
        items=[render(container, w) for w in items],
        next_cursor=None if following is None else cursors.encode(following),
    )


@router.post(
    "/v1/withdrawals/{withdrawalId}/cancel",
    response_model=WithdrawalOut,
    dependencies=_write,
    responses={
        200: examples.json_example(
            {**examples.WITHDRAWAL, "status": "CANCELLED"}, "Cancelled (or already cancelled)"
        ),
        **_CANCEL_ERRORS,
    },
    summary="Cancel a withdrawal that is not signed yet",
    operation_id="cancelWithdrawal",
)
async def cancel_withdrawal(withdrawal_id: WithdrawalId, request: Request) -> WithdrawalOut:
    """Cancel before signing (PENDING or VALIDATING): its hold is released. 409
    `invalid_state` once it is signed."""
    container = container_of(request)
    async with container.uow() as uow:
        ensure_owner(request, await container.withdrawals.get(uow, withdrawal_id))
        withdrawal = await container.withdrawals.cancel(
            uow, withdrawal_id, reason="cancelled by the client"
        )
        await uow.commit()
    return render(container, withdrawal)


@router.get(
    "/v1/withdrawals/{withdrawalId}/events",
    response_model=EventList,
    dependencies=_read,
    responses={200: examples.json_example(examples.EVENTS, "The history"), **_READ_ERRORS},
    summary="A withdrawal's status history",
    operation_id="listWithdrawalEvents",
)
async def withdrawal_events(withdrawal_id: WithdrawalId, request: Request) -> EventList:
    """Every status change, oldest first, with times and reasons; also what happened without a
    change of status (a replacement at higher fees, a re-org, a wait for the hot wallet)."""
    container = container_of(request)
    async with container.uow() as uow:
        ensure_owner(request, await container.withdrawals.get(uow, withdrawal_id))
        events = await container.withdrawals.events(uow, withdrawal_id)
    return EventList(withdrawal_id=withdrawal_id, events=[EventOut.of(e) for e in events])


@router.get(
    "/v1/withdrawals/{withdrawalId}/transaction",
    response_model=TransactionOut,
    dependencies=_read,
    responses={
        200: examples.json_example(examples.TRANSACTION, "The transaction"),
        **_READ_ERRORS,
    },
    summary="The on-chain transaction of a withdrawal, with every attempt",
    operation_id="getWithdrawalTransaction",
)
async def withdrawal_transaction(withdrawal_id: WithdrawalId, request: Request) -> TransactionOut:
    """Its nonce, status and block, and each signed attempt: fees, hash, when sent, outcome.

    404 `not_found` while the withdrawal has no transaction (before signing, or after its
    nonce was taken by another transaction and before it is signed again).
    """
    container = container_of(request)
    async with container.uow() as uow:
        withdrawal = await container.withdrawals.get(uow, withdrawal_id)
        ensure_owner(request, withdrawal)
        transaction, attempts = await container.withdrawals.transaction(uow, withdrawal)
    return TransactionOut.of(transaction, attempts, withdrawal.id)
