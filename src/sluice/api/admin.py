"""Admin routes: the dead-letter queue, and an operator's cancel of a withdrawal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request, Response

from sluice.api import examples
from sluice.api.auth import actor_of, container_of, ensure_owner, require
from sluice.api.problems import AUTHENTICATED, WITH_BODY, problem_responses
from sluice.api.schemas import CancelRequest, DeadLetterOut, HotWalletOut, WithdrawalOut
from sluice.api.withdrawals import WithdrawalId, render
from sluice.domain.access import Scope
from sluice.domain.amounts import format_amount
from sluice.domain.audit import AuditRecord
from sluice.errors import NotFoundError

router = APIRouter(
    tags=["admin"],
    dependencies=[Depends(require(Scope.ADMIN))],
    responses=problem_responses(*AUTHENTICATED),
)


@router.get(
    "/v1/admin/dead-letters",
    response_model=list[DeadLetterOut],
    summary="List dead letters",
    operation_id="listDeadLetters",
    responses={200: examples.json_example(examples.DEAD_LETTERS, "Oldest first")},
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
    "/v1/admin/dead-letters/{messageId}/requeue",
    status_code=202,
    summary="Put a dead letter back on the queue",
    operation_id="requeueDeadLetter",
    response_class=Response,
    responses={
        202: {"description": "Requeued"},
        **problem_responses(404, 413, 415, 422, s404="No such dead letter"),
    },
)
async def requeue(
    message_id: Annotated[str, Path(alias="messageId", max_length=128)], request: Request
) -> Response:
    """Requeue with fresh attempts; the handler re-reads the row, so this is always safe."""
    container = container_of(request)
    if not await container.queue.requeue(message_id):
        raise NotFoundError(f"dead letter {message_id!r} does not exist")
    async with container.uow() as uow:
        await uow.audit.append(
            AuditRecord(
                actor=actor_of(request),
                action="dead_letter.requeued",
                subject=f"message:{message_id}",
                at=container.clock.now(),
            )
        )
        await uow.commit()
    return Response(status_code=202)


@router.post(
    "/v1/admin/withdrawals/{withdrawalId}/cancel",
    response_model=WithdrawalOut,
    summary="Cancel a withdrawal at any point before its transaction is mined",
    operation_id="cancelWithdrawalAsOperator",
    responses={
        200: examples.json_example(
            {**examples.WITHDRAWAL, "status": "CANCELLED"}, "Cancelled at once (not signed yet)"
        ),
        202: {
            **examples.json_example(
                {
                    **examples.WITHDRAWAL,
                    "status": "BROADCASTING",
                    "transactionHash": examples.TX_HASH,
                },
                "A no-op replacement will be sent; the chain decides",
            ),
            "model": WithdrawalOut,
        },
        **problem_responses(
            *WITH_BODY,
            404,
            409,
            s404="No such withdrawal",
            s409="Its transaction is mined, or it is final",
        ),
    },
)
async def cancel(
    withdrawal_id: WithdrawalId,
    request: Request,
    body: Annotated[
        CancelRequest | None, Body(openapi_examples={"reason": {"value": examples.CANCEL_REQUEST}})
    ] = None,
) -> Response:
    """Before signing: cancelled at once (200), its hold released. Signed or broadcasting: the
    engine sends a no-op self-transfer at the same nonce (202); if that is mined the withdrawal
    becomes CANCELLED, if the payout is mined first it COMPLETES. Never both."""
    container = container_of(request)
    reason = (body or CancelRequest()).reason
    async with container.uow() as uow:
        before = await container.withdrawals.get(uow, withdrawal_id)
        ensure_owner(request, before)
        was = before.status.value
        withdrawal = await container.cancellation.cancel(uow, withdrawal_id, reason=reason)
        await uow.audit.append(
            AuditRecord(
                actor=actor_of(request),
                action="withdrawal.cancel_requested",
                subject=f"withdrawal:{withdrawal_id}",
                at=container.clock.now(),
                before={"status": was},
                after={"status": withdrawal.status.value},
                detail={"reason": reason},
            )
        )
        await uow.commit()
    status = 200 if withdrawal.status.is_final else 202
    return Response(
        render(container, withdrawal).model_dump_json(by_alias=True),
        status_code=status,
        media_type="application/json",
    )


@router.get(
    "/v1/admin/hot-wallets",
    response_model=list[HotWalletOut],
    summary="Hot wallets: state, transactions in flight, balance",
    operation_id="listHotWallets",
    responses={200: examples.json_example(examples.HOT_WALLETS, "Every network's hot wallets")},
)
async def hot_wallets(request: Request) -> list[HotWalletOut]:
    """Every network's hot wallets. A draining wallet is retired once its `inFlight` is 0 (see
    docs/security.md, "Key rotation")."""
    return [
        HotWalletOut(
            network=wallet.network,
            address=wallet.address,
            state="draining" if wallet.draining else "active",
            in_flight=wallet.in_flight,
            native_symbol=wallet.native.symbol,
            native_balance=None
            if wallet.native_balance is None
            else format_amount(wallet.native_balance, wallet.native.decimals),
        )
        for wallet in await container_of(request).hot_wallets.overview()
    ]
