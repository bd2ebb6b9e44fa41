"""The policy over real HTTP on a real node: the file named by SLUICE_POLICY_FILE decides at
start; small withdrawals are paid, large ones wait for two operators who approve them over the
API and are then paid; a fee lands in the fee account; a blocklisted address fails; the
address book's cool-down holds; a reload through the API changes the version in force."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from sluice.cli.common import cli_actor
from sluice.devnet.anvil import LocalNode
from sluice.domain.operators import Role
from sluice.testing.harness import RunningSluice, running_sluice

WAIT_S = 30.0
POLICY = """
label = "e2e v1"

[address_book]
cool_down = "1h"

[[assets]]
asset = "ETH"
min_amount = "0.001"
fee = { fixed = "0.01" }

[[rules]]
name = "cooling address"
cooling = true
action = "deny"
code = "address_cooling"

[[rules]]
name = "small"
max_amount = "1"
action = "allow"

[default]
action = "require_approval"
approvals = 2
"""

pytestmark = pytest.mark.usefixtures("anvil_only")


@pytest.fixture
async def instance(
    anvil: LocalNode, tmp_path: Path, database_url: str
) -> AsyncIterator[RunningSluice]:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY, "utf-8")
    async with running_sluice(
        anvil, tmp_path, database_url=database_url, policy_file=policy
    ) as running:
        yield running


async def _operators(instance: RunningSluice) -> dict[str, str]:
    container = instance.container
    tokens: dict[str, str] = {}
    async with container.uow() as uow:
        for name, role in (("root", Role.ADMIN), ("ann", Role.APPROVER), ("ben", Role.APPROVER)):
            _, tokens[name] = await container.operators.create(
                uow, name=name, role=role, actor=cli_actor()
            )
        await uow.commit()
    return tokens


async def _until(client: httpx.AsyncClient, path: str, status: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        body: dict[str, Any] = (await client.get(path)).json()
        if body.get("status") == status:
            return body
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{path} never became {status}: {body}")
        await asyncio.sleep(0.05)


async def _withdraw(
    client: httpx.AsyncClient, instance: RunningSluice, amount: str, to: str
) -> str:
    made = await client.post(
        "/v1/withdrawals",
        json={"userId": "alice", "amount": amount, "toAddress": to, "network": instance.network},
    )
    assert made.status_code == 202, made.text
    assert made.json()["fee"] == "0.01"
    return str(made.json()["id"])


async def test_the_policy_decides_and_two_operators_approve_over_http(
    instance: RunningSluice,
) -> None:
    tokens = await _operators(instance)
    await instance.credit("alice", "20")
    recipient = Account.create().address
    async with (
        instance.client() as service,
        instance.client(tokens["root"]) as root,
        instance.client(tokens["ann"]) as ann,
        instance.client(tokens["ben"]) as ben,
    ):
        policy = (await root.get("/v1/admin/policy")).json()
        assert policy["label"] == "e2e v1"
        assert policy["loadedBy"] == "system:sluice"

        too_small = await service.post(
            "/v1/withdrawals",
            json={
                "userId": "alice",
                "amount": "0.0001",
                "toAddress": recipient,
                "network": instance.network,
            },
        )
        assert (too_small.status_code, too_small.json()["code"]) == (422, "amount_limit")
        assert too_small.json()["errors"][0]["field"] == "amount"

        small = await _withdraw(service, instance, "0.5", recipient)
        paid = await _until(service, f"/v1/withdrawals/{small}", "COMPLETED")
        assert paid["policyRule"] == "small"
        assert paid["policyVersion"] == policy["version"]

        large = await _withdraw(service, instance, "5", recipient)
        await _until(service, f"/v1/withdrawals/{large}", "PENDING_APPROVAL")
        listed = (await ann.get("/v1/admin/approvals")).json()["items"]
        assert [(i["withdrawal"]["id"], i["approvalsRequired"]) for i in listed] == [(large, 2)]
        revision = listed[0]["revision"]
        refused = await service.post(
            f"/v1/admin/approvals/{large}/approve", json={"revision": revision}
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "operator_required")
        stale = await ann.post(f"/v1/admin/approvals/{large}/approve", json={"revision": "0" * 16})
        assert (stale.status_code, stale.json()["code"]) == (409, "stale_revision")
        first = await ann.post(f"/v1/admin/approvals/{large}/approve", json={"revision": revision})
        assert first.json()["status"] == "PENDING_APPROVAL", first.text
        again = await ann.post(f"/v1/admin/approvals/{large}/approve", json={"revision": revision})
        assert (again.status_code, again.json()["code"]) == (409, "already_decided")
        second = await ben.post(f"/v1/admin/approvals/{large}/approve", json={"revision": revision})
        assert second.status_code == 200, second.text
        await _until(service, f"/v1/withdrawals/{large}", "COMPLETED")
        events = (await service.get(f"/v1/withdrawals/{large}/events")).json()["events"]
        decided = [
            e for e in events if e["status"] == "VALIDATING" and e["fromStatus"] == "PENDING"
        ]
        assert decided[0]["data"] == {
            "policyVersion": policy["version"],
            "policyRule": "default",
            "fee": "0.01",
        }
        waiting = [e for e in events if e["status"] == "PENDING_APPROVAL"]
        assert waiting[0]["data"] == {"approvalsRequired": 2, "approverRole": "approver"}
        assert any(e["reason"].startswith("approved by ann, ben") for e in events)
        balances = (await service.get("/v1/users/_fees/balances")).json()
        assert [(b["symbol"], b["available"], b["held"]) for b in balances] == [
            ("ETH", "0.02", "0")
        ]

        blocked = Account.create().address
        added = await root.post("/v1/admin/blocklist", json={"addresses": [blocked.lower()]})
        assert added.json() == {"added": 1, "received": 1}
        denied = await _withdraw(service, instance, "0.5", blocked)
        failed = await _until(service, f"/v1/withdrawals/{denied}", "FAILED")
        assert (failed["errorCode"], failed["policyRule"]) == ("blocklisted", "blocklist")

        fresh = Account.create().address
        booked = await service.post(
            "/v1/users/alice/addresses", json={"network": instance.network, "address": fresh}
        )
        assert booked.status_code == 201, booked.text
        cooling = await _withdraw(service, instance, "0.5", fresh)
        failed = await _until(service, f"/v1/withdrawals/{cooling}", "FAILED")
        assert failed["errorCode"] == "address_cooling"

        assert instance.container.settings.policy_file is not None
        instance.container.settings.policy_file.write_text(
            POLICY.replace("e2e v1", "e2e v2"), "utf-8"
        )
        viewer_refused = await ann.post("/v1/admin/policy/reload")
        assert viewer_refused.status_code == 403
        reloaded = await root.post("/v1/admin/policy/reload")
        assert reloaded.json()["changed"] is True
        versions = (await root.get("/v1/admin/policy/versions")).json()
        assert [v["label"] for v in versions] == ["e2e v2", "e2e v1"]
        instance.container.settings.policy_file.write_text(
            POLICY.replace('max_amount = "1"', "max_amount = 1"), "utf-8"
        )
        bad = await root.post("/v1/admin/policy/reload")
        assert (bad.status_code, bad.json()["code"]) == (422, "invalid_policy")
        assert bad.json()["errors"][0]["field"] == "rules[1].max_amount"
        assert bad.json()["errors"][0]["in"] == "file"
        assert (await root.get("/v1/admin/policy")).json()["label"] == "e2e v2"
        listed = (await ann.get("/v1/admin/blocklist", params={"limit": 1})).json()
        assert listed["items"][0]["address"] == blocked
        assert listed["nextCursor"] is None
        audit = (await root.get("/v1/admin/audit", params={"limit": 500})).json()["items"]
        actions = {e["action"] for e in audit}
        assert {
            "policy.loaded",
            "withdrawal.approved",
            "blocklist.added",
            "operator.created",
        } <= actions
