"""Withdrawal routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from sluice import metrics
from sluice.api.auth import container_of, ensure_owner, ensure_user, require
from sluice.api.middleware import request_id_of
from sluice.api.problems import AUTHENTICATED, WITH_BODY, problem_responses
from sluice.api.schemas import (
    ClientId,
    EventList,
    EventOut,
    TransactionOut,
    WithdrawalCreate,
    WithdrawalOut,
    WithdrawalPage,
)
from sluice.bootstrap import Container
from sluice.domain.access import ApiKey, Scope
from sluice.domain.assets import Asset
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.errors import ForbiddenError, InvalidRequestError, NotFoundError, SluiceError
from sluice.services.withdrawals import WithdrawalRequest

router = APIRouter(tags=["withdrawals"])

_write = [Depends(require(Scope.WITHDRAWALS_WRITE))]
_read = [Depends(require(Scope.WITHDRAWALS_READ))]
_ERRORS = problem_responses(*AUTHENTICATED, *WITH_BODY, 409)
_READ_ERRORS = problem_responses(*AUTHENTICATED, 404, 422)
# A POST without a body parameter still passes the body guard (413, 415).
_CANCEL_ERRORS = problem_responses(*AUTHENTICATED, 404, 409, 413, 415, 422)


def _asset_of(container: Container, withdrawal: Withdrawal) -> Asset | None:
    try:
        return container.registry.get(withdrawal.network).network.asset_by_key(withdrawal.asset_key)
    except SluiceError:
        return None


def render(container: Container, withdrawal: Withdrawal) -> WithdrawalOut:
    """The API view of a withdrawal."""
    return WithdrawalOut.of(withdrawal, _asset_of(container, withdrawal))


async def create_withdrawal(
    body: WithdrawalCreate,
    request: Request,
    idempotency_key: Annotated[ClientId | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Request a withdrawal.

    The `id` (or the `Idempotency-Key` header) is the idempotency key: repeating a request with
    the same body returns the existing withdrawal with 200; a different body under the same id is
    a 409. A new withdrawal answers 202: it is accepted and processed asynchronously.
    """
    if body.id is not None and idempotency_key is not None and body.id != idempotency_key:
        raise InvalidRequestError("the body's id and the Idempotency-Key header differ")
    ensure_user(request, body.user_id)
    container = container_of(request)
    withdrawal_request = WithdrawalRequest(
        id=body.id or idempotency_key,
        user_id=body.user_id,
        amount=body.amount,
        to_address=body.to_address,
        token_address=body.token_address,
        network=body.network,
    )
    async with container.uow() as uow:
        withdrawal, created = await container.withdrawals.submit(
            uow, withdrawal_request, request_id=request_id_of(request.state)
        )
        await uow.commit()
    if created:
        metrics.WITHDRAWALS_REQUESTED.labels(withdrawal.network).inc()
    # A ready response: `response_model` (for the schema) would validate and serialise the model
    # a second time; this is byte for byte what FastAPI would send.
    return Response(
        render(container, withdrawal).model_dump_json(by_alias=True),
        status_code=202 if created else 200,
        media_type="application/json",
    )


router.add_api_route(
    "/v1/withdrawals",
    create_withdrawal,
    methods=["POST"],
    status_code=202,
    response_model=WithdrawalOut,
    dependencies=_write,
    responses={200: {"description": "An idempotent repeat", "model": WithdrawalOut}, **_ERRORS},
    summary="Request a withdrawal",
)
router.add_api_route(
    "/withdrawal/request",
    create_withdrawal,
    methods=["POST"],
    status_code=202,
    response_model=WithdrawalOut,
    dependencies=_write,
    responses={200: {"description": "An idempotent repeat", "model": WithdrawalOut}, **_ERRORS},
    summary="Request a withdrawal (the seed plan's path; same as POST /v1/withdrawals)",
)


@router.get(
    "/v1/withdrawals/{withdrawal_id}",
    response_model=WithdrawalOut,
    dependencies=_read,
    responses=_READ_ERRORS,
    summary="Read a withdrawal",
)
async def get_withdrawal(withdrawal_id: str, request: Request) -> WithdrawalOut:
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
    responses=problem_responses(*AUTHENTICATED, 422),
    summary="List withdrawals, newest first",
)
async def list_withdrawals(
    request: Request,
    user_id: Annotated[str | None, Query(alias="userId", max_length=128)] = None,
    status: WithdrawalStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> WithdrawalPage:
    """A page of withdrawals; pass `nextCursor` back as `cursor` for the next page.

    A key restricted to some users must name one of them in `userId`.
    """
    key: ApiKey = request.state.api_key
    if user_id is None and key.user_ids is not None:
        raise ForbiddenError("this API key is restricted to some users: pass userId")
    if user_id is not None:
        ensure_user(request, user_id)
    container = container_of(request)
    async with container.uow() as uow:
        items, next_seq = await container.withdrawals.page(
            uow,
            user_id=user_id,
            status=status,
            limit=limit,
            cursor=int(cursor) if cursor else None,
        )
    return WithdrawalPage(
        items=[render(container, w) for w in items],
        next_cursor=None if next_seq is None else str(next_seq),
    )


@router.post(
    "/v1/withdrawals/{withdrawal_id}/cancel",
    response_model=WithdrawalOut,
    dependencies=_write,
    responses=_CANCEL_ERRORS,
    summary="Cancel a withdrawal that is not signed yet",
)
async def cancel_withdrawal(withdrawal_id: str, request: Request) -> WithdrawalOut:
    """Cancel before signing (PENDING or VALIDATING); 409 `invalid_state` after."""
    container = container_of(request)
    async with container.uow() as uow:
        ensure_owner(request, await container.withdrawals.get(uow, withdrawal_id))
        withdrawal = await container.withdrawals.cancel(
            uow, withdrawal_id, reason="cancelled by the client"
        )
        await uow.commit()
    return render(container, withdrawal)


@router.get(
    "/v1/withdrawals/{withdrawal_id}/events",
    response_model=EventList,
    dependencies=_read,
    responses=_READ_ERRORS,
    summary="A withdrawal's status history",
)
async def withdrawal_events(withdrawal_id: str, request: Request) -> EventList:
    """Every status change, oldest first, with times and reasons."""
    container = container_of(request)
    async with container.uow() as uow:
        ensure_owner(request, await container.withdrawals.get(uow, withdrawal_id))
        events = await container.withdrawals.events(uow, withdrawal_id)
    return EventList(withdrawal_id=withdrawal_id, events=[EventOut.of(e) for e in events])


@router.get(
    "/v1/withdrawals/{withdrawal_id}/transaction",
    response_model=TransactionOut,
    dependencies=_read,
    responses=_READ_ERRORS,
    summary="The on-chain transaction of a withdrawal, with every attempt",
)
async def withdrawal_transaction(withdrawal_id: str, request: Request) -> TransactionOut:
    """Its nonce, status and block, and each signed attempt: fees, hash, when sent, outcome.

    404 `not_found` while the withdrawal has no transaction (before signing, or after its
    nonce was taken by another transaction and before it is signed again).
    """
    container = container_of(request)
    async with container.uow() as uow:
        withdrawal = await container.withdrawals.get(uow, withdrawal_id)
        ensure_owner(request, withdrawal)
        transaction_id = withdrawal.transaction_id
        transaction = None if transaction_id is None else await uow.transactions.get(transaction_id)
        if transaction is None:
            raise NotFoundError(f"withdrawal {withdrawal_id!r} has no transaction yet")
        attempts = await uow.transactions.attempts(transaction.id)
    return TransactionOut.of(transaction, attempts)
