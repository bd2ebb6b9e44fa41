"""The circuit breaker and pauses over real HTTP, on Anvil (issue 13, must-hold 5).

- Two chains, one with a breaker of 0.3 ETH an hour: past it, that network's withdrawals wait
  with a ``circuit_breaker`` reason while the other network keeps paying; `GET /v1/networks`
  shows which is paused; a service key cannot resume it (403 ``operator_required``), an admin
  operator can, and the held withdrawals complete.
- An approver's pause of a network and an admin's freeze of every network hold new payouts
  until an admin lifts them (an approver may not resume); each is in the audit log.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from sluice.cli.common import cli_actor
from sluice.devnet import setup
from sluice.domain.operators import Role
from sluice.testing import nodes as node_kinds
from sluice.testing.harness import RunningSluice
from sluice.testing.multichain import ChainSpec, anvil_nodes, native_balance, running_multichain

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("anvil_only")]

BREAKER = """
[networks.anvil.circuit_breaker]
window = "1h"
max_outflow = { ETH = "0.3" }
"""
SPECS = (ChainSpec("anvil", setup.CHAIN_ID, extra_toml=BREAKER), ChainSpec("beta", 31338))
WAIT_S = 60.0


def _require_anvil() -> None:
    """Skip without the pinned Anvil locally, fail in CI (as tests/e2e/conftest.py does)."""
    if "anvil" not in node_kinds.selected_kinds():
        pytest.skip(f"{node_kinds.NODES_ENV} leaves out anvil")
    if not node_kinds.installed("anvil"):
        message = node_kinds.not_installed_reason("anvil")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


async def _operator(container: Any, name: str, role: Role) -> str:
    async with container.uow() as uow:
        _, token = await container.operators.create(uow, name=name, role=role, actor=cli_actor())
        await uow.commit()
    token_text: str = token
    return token_text


async def _submit(client: httpx.AsyncClient, network: str, user: str, tag: str) -> str:
    body = {
        "id": tag,
        "userId": user,
        "amount": "0.1",
        "toAddress": Account.create().address,
        "network": network,
    }
    answer = await client.post("/v1/withdrawals", json=body)
    assert answer.status_code == 202, answer.text
    withdrawal_id: str = answer.json()["id"]
    return withdrawal_id


async def _bodies(client: httpx.AsyncClient, ids: Iterable[str]) -> list[dict[str, Any]]:
    bodies = []
    for wid in ids:
        answer = await client.get(f"/v1/withdrawals/{wid}")
        answer.raise_for_status()
        bodies.append(answer.json())
    return bodies


async def _until(client: httpx.AsyncClient, ids: list[str], done: Any, what: str) -> list[Any]:
    """Poll the withdrawals until ``done(bodies)`` holds; their bodies."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        bodies = await _bodies(client, ids)
        if done(bodies):
            return bodies
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}: {[(b['id'], b['status']) for b in bodies]}")
        await asyncio.sleep(0.2)


def _waiting(bodies: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        b
        for b in bodies
        if b["status"] == "VALIDATING" and (b.get("waitingReason") or "").startswith(kind)
    ]


def _completed(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in bodies if b["status"] == "COMPLETED"]


async def _networks(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    answer = await client.get("/v1/networks")
    answer.raise_for_status()
    return {n["name"]: n for n in answer.json()}


async def test_one_network_trips_the_other_keeps_paying_and_an_admin_resumes_it(
    tmp_path: Path, database_url: str
) -> None:
    _require_anvil()
    async with (
        anvil_nodes(SPECS) as nodes,
        running_multichain(nodes, tmp_path, specs=SPECS, database_url=database_url) as instance,
    ):
        container = instance.sluice.container
        for network in ("anvil", "beta"):
            await instance.credit(f"user-{network}", network, "10", token=False)
        admin = await _operator(container, "root", Role.ADMIN)
        async with instance.client() as service, instance.sluice.client(admin) as operator:
            tripping = [await _submit(service, "anvil", "user-anvil", f"a-{i}") for i in range(5)]
            paying = [await _submit(service, "beta", "user-beta", f"b-{i}") for i in range(5)]

            # 0.3 ETH an hour: three payouts reach it exactly, the fourth would pass it.
            held = await _until(
                service,
                tripping,
                lambda b: len(_completed(b)) == 3 and len(_waiting(b, "circuit_breaker")) == 2,
                "three paid and two held on anvil",
            )
            assert (
                "would pass its limit of 0.3 ETH"
                in _waiting(held, "circuit_breaker")[0]["waitingReason"]
            )
            await _until(service, paying, lambda b: len(_completed(b)) == 5, "beta paying")
            listed = await _networks(service)
            assert listed["anvil"]["paused"]["kind"] == "circuit_breaker"
            assert listed["anvil"]["circuitBreaker"] == {
                "windowSeconds": 3600,
                "maxOutflow": {"ETH": "0.3"},
            }
            assert listed["beta"]["paused"] is None

            refused = await service.post("/v1/admin/networks/anvil/resume")
            assert (refused.status_code, refused.json()["code"]) == (403, "operator_required")
            unknown = await operator.post("/v1/admin/networks/nowhere/resume")
            assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_network")

            resumed = await operator.post(
                "/v1/admin/networks/anvil/resume", json={"reason": "checked with risk"}
            )
            assert resumed.status_code == 200, resumed.text
            assert resumed.json()["paused"] is None

            final = await _until(
                service, tripping, lambda b: len(_completed(b)) == 5, "the held ones paid"
            )
            chain = instance.chains["anvil"]
            for body in final:
                assert await native_balance(chain, body["toAddress"]) == 10**17
            assert (await _networks(service))["anvil"]["paused"] is None
            trail = await operator.get("/v1/admin/audit", params={"subject": "network:anvil"})
            actions = [(e["action"], e["actor"]) for e in trail.json()["items"]]
            assert actions[0][0] == "network.resumed"
            assert actions[0][1].startswith("operator:")
            assert actions[1] == ("network.circuit_breaker_tripped", "system:sluice")


async def test_an_approvers_pause_and_an_admins_freeze_hold_payouts_until_lifted(
    sluice: RunningSluice,
) -> None:
    container = sluice.container
    admin = await _operator(container, "root", Role.ADMIN)
    approver = await _operator(container, "bob", Role.APPROVER)
    await sluice.credit("carol", "10")
    network = sluice.network
    async with (
        sluice.client() as service,
        sluice.client(admin) as root,
        sluice.client(approver) as bob,
    ):
        refused = await service.post(f"/v1/admin/networks/{network}/pause", json={"reason": "x"})
        assert (refused.status_code, refused.json()["code"]) == (403, "operator_required")
        empty = await bob.post(f"/v1/admin/networks/{network}/pause", json={"reason": ""})
        assert empty.status_code == 422

        paused = await bob.post(
            f"/v1/admin/networks/{network}/pause", json={"reason": "incident 42"}
        )
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"]["kind"] == "manual"
        (held,) = [await _submit(service, network, "carol", "p-1")]
        await _until(service, [held], lambda b: len(_waiting(b, "paused")) == 1, "paused")
        assert (await _networks(service))[network]["paused"]["reason"] == "incident 42"
        not_admin = await bob.post(f"/v1/admin/networks/{network}/resume")
        assert (not_admin.status_code, not_admin.json()["code"]) == (403, "operator_required")
        assert (await root.post(f"/v1/admin/networks/{network}/resume")).status_code == 200
        await _until(service, [held], lambda b: len(_completed(b)) == 1, "paid after resume")

        frozen = await root.post("/v1/admin/pause", json={"reason": "runbook: freeze"})
        assert frozen.status_code == 200, frozen.text
        assert frozen.json()["network"] == "*"
        (cold,) = [await _submit(service, network, "carol", "f-1")]
        bodies = await _until(service, [cold], lambda b: len(_waiting(b, "paused")) == 1, "frozen")
        assert "every network is frozen" in bodies[0]["waitingReason"]
        assert (await _networks(service))[network]["paused"]["network"] == "*"
        assert (await bob.post("/v1/admin/resume")).status_code == 403
        assert (await root.post("/v1/admin/resume", json={"reason": "over"})).status_code == 200
        await _until(service, [cold], lambda b: len(_completed(b)) == 1, "paid after unfreeze")

        trail = await root.get("/v1/admin/audit", params={"action": "network.paused"})
        subjects = [(e["subject"], e["detail"]["reason"]) for e in trail.json()["items"]]
        assert subjects == [("network:*", "runbook: freeze"), (f"network:{network}", "incident 42")]
        for entry in trail.json()["items"]:
            assert entry["apiKeyId"] is not None
            assert entry["address"] == "127.0.0.1"
