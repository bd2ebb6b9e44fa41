"""Ledger routes: operator credits and balance reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request, Response

from sluice.api import examples
from sluice.api.auth import container_of, ensure_user, require
from sluice.api.problems import AUTHENTICATED, WITH_BODY, problem_responses
from sluice.api.schemas import BalanceOut, CreditCreate, CreditOut
from sluice.domain.access import USER_ID_PATTERN, Scope
from sluice.domain.ledger import FEE_ACCOUNT

router = APIRouter(tags=["ledger"])

#: Whose balances may be read: a user, or the fee account withdrawal fees are credited to.
BALANCE_OWNER_PATTERN = rf"^(?:{FEE_ACCOUNT}|{USER_ID_PATTERN[1:-1]})$"


@router.post(
    "/v1/admin/ledger/credits",
    response_model=CreditOut,
    status_code=201,
    dependencies=[Depends(require(Scope.ADMIN))],
    responses={
        201: examples.json_example(examples.CREDITED, "Credited now"),
        200: {
            **examples.json_example(
                {**examples.CREDITED, "credited": False}, "Credited before (no-op)"
            ),
            "model": CreditOut,
        },
        **problem_responses(*AUTHENTICATED, *WITH_BODY, 409),
    },
    summary="Credit a user's available balance (once per reference)",
    operation_id="creditBalance",
)
async def credit(
    body: Annotated[CreditCreate, Body(openapi_examples={"deposit": {"value": examples.CREDIT}})],
    request: Request,
    response: Response,
) -> CreditOut:
    """Until deposits are tracked by the platform, operators credit balances here.

    A repeated `reference` with the same body is a no-op (200); with a different body, 409.
    """
    ensure_user(request, body.user_id)
    container = container_of(request)
    async with container.uow() as uow:
        credited = await container.ledger.credit(
            uow,
            user_id=body.user_id,
            network=body.network,
            token_address=body.token_address,
            amount=body.amount,
            reference=body.reference,
        )
        await uow.commit()
    response.status_code = 201 if credited else 200
    return CreditOut(reference=body.reference, credited=credited)


@router.get(
    "/v1/users/{userId}/balances",
    response_model=list[BalanceOut],
    dependencies=[Depends(require(Scope.WITHDRAWALS_READ))],
    responses={
        200: examples.json_example(examples.BALANCES, "Every asset the user has held"),
        **problem_responses(*AUTHENTICATED, 422),
    },
    summary="A user's balances",
    operation_id="getUserBalances",
)
async def balances(
    user_id: Annotated[
        str,
        Path(
            alias="userId",
            pattern=BALANCE_OWNER_PATTERN,
            examples=["user-42"],
            description="A user id, or `_fees`: the fee account (docs/policy.md)",
        ),
    ],
    request: Request,
) -> list[BalanceOut]:
    """Available and held, per network and asset, as decimal strings."""
    ensure_user(request, user_id)
    container = container_of(request)
    async with container.uow() as uow:
        items = await container.ledger.balances(uow, user_id)
    return [BalanceOut.of(item) for item in items]
