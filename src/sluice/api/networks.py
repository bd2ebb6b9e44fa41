"""The networks this deployment pays on: `GET /v1/networks`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from sluice.api import examples
from sluice.api.auth import container_of, require
from sluice.api.network_schemas import NetworkOut
from sluice.api.problems import AUTHENTICATED, problem_responses
from sluice.domain.access import Scope
from sluice.domain.pauses import EVERY_NETWORK

router = APIRouter(
    tags=["networks"],
    dependencies=[Depends(require(Scope.WITHDRAWALS_READ))],
    responses=problem_responses(*AUTHENTICATED),
)


@router.get(
    "/v1/networks",
    response_model=list[NetworkOut],
    summary="Networks: assets, finality, fee model and levels now, RPC health, hot wallets",
    operation_id="listNetworks",
    responses={200: examples.json_example(examples.NETWORKS, "Every network, by name")},
)
async def list_networks(request: Request) -> list[NetworkOut]:
    """Every network this deployment pays on, by name. `feeLevels` is what a withdrawal's
    `priority` would pay now (null while the network is down); `rpc` is the health monitor's
    last look at its node (never a URL). A down network is listed like the others. `paused`
    is the pause that holds its new payouts, if any (docs/circuit-breaker.md)."""
    container = container_of(request)
    async with container.uow() as uow:
        states = await container.pauses.states(uow)
    freeze = states[EVERY_NETWORK].pause
    return [
        NetworkOut.of(o, freeze or states[o.network.name].pause)
        for o in await container.networks.overview()
    ]
