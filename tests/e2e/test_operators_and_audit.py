"""Operators over real HTTP: only an operator's own key does operator work, roles decide what,
every change lands in the audit log with who, key and address, and `sluice audit verify` finds
an entry edited behind the log's back."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from sqlalchemy import text

from sluice.cli.common import cli_actor
from sluice.domain.operators import Role
from sluice.testing.harness import RunningSluice

pytestmark = pytest.mark.usefixtures("anvil_only")


async def _verify(database_url: str) -> tuple[int, str]:
    """`sluice audit verify` as an operator runs it, in a process of its own."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice",
        "audit",
        "verify",
        env={**os.environ, "SLUICE_DATABASE_URL": database_url, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return await process.wait(), output.decode()


async def _admin(sluice: RunningSluice) -> tuple[str, str]:
    container = sluice.container
    async with container.uow() as uow:
        operator, token = await container.operators.create(
            uow, name="root", role=Role.ADMIN, actor=cli_actor()
        )
        await uow.commit()
    return operator.id, token


async def test_a_service_key_cannot_do_operator_work(sluice_without_workers: RunningSluice) -> None:
    async with sluice_without_workers.client() as service:
        for answer in (
            await service.get("/v1/admin/operators"),
            await service.get("/v1/admin/audit"),
            await service.post("/v1/admin/operators", json={"name": "eve", "role": "admin"}),
        ):
            assert answer.status_code == 403, answer.text
            assert answer.json()["code"] == "operator_required"


async def test_operators_by_role_each_change_audited_with_key_and_address(
    sluice_without_workers: RunningSluice,
) -> None:
    sluice = sluice_without_workers
    admin_id, admin_token = await _admin(sluice)
    async with sluice.client(admin_token) as admin:
        made = await admin.post("/v1/admin/operators", json={"name": "bob", "role": "approver"})
        assert made.status_code == 201, made.text
        bob = made.json()
        assert bob["role"] == "approver"
        assert bob["apiKey"].startswith("sluice_")
        taken = await admin.post("/v1/admin/operators", json={"name": "bob", "role": "viewer"})
        assert (taken.status_code, taken.json()["code"]) == (409, "already_exists")
        bad = await admin.post("/v1/admin/operators", json={"name": "Bob!", "role": "viewer"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "name"

        async with sluice.client(bob["apiKey"]) as approver:
            listed = await approver.get("/v1/admin/operators")
            assert [o["name"] for o in listed.json()] == ["bob", "root"]
            refused = await approver.post(
                "/v1/admin/operators", json={"name": "mallory", "role": "admin"}
            )
            assert (refused.status_code, refused.json()["code"]) == (403, "operator_required")
            # Operators' keys do no platform work beyond reading.
            credit = await approver.post(
                "/v1/admin/credits",
                json={"userId": "bob", "network": sluice.network, "amount": "1", "reference": "x"},
            )
            assert credit.status_code in (403, 404), credit.text

            disabled = await admin.patch(
                f"/v1/admin/operators/{bob['id']}", json={"disabled": True}
            )
            assert disabled.status_code == 200, disabled.text
            assert disabled.json()["disabled"] is True
            # At once, whatever the key cache holds.
            after = await approver.get("/v1/admin/operators")
            assert after.status_code in (401, 403), after.text

        last = await admin.patch(f"/v1/admin/operators/{admin_id}", json={"role": "viewer"})
        assert (last.status_code, last.json()["code"]) == (409, "invalid_state")

        log = (await admin.get("/v1/admin/audit", params={"limit": 500})).json()["items"]
        actions = [(e["action"], e["actor"].split(":")[0]) for e in reversed(log)]
        assert actions == [
            ("operator.created", "cli"),
            ("api_key.created", "cli"),
            ("operator.created", "operator"),
            ("api_key.created", "operator"),
            ("operator.changed", "operator"),
        ]
        change = log[0]
        assert change["actor"] == f"operator:{admin_id}"
        assert change["address"] == "127.0.0.1"
        assert change["apiKeyId"] == admin_token.split("_")[1]
        assert change["before"]["disabled"] is False
        assert change["after"]["disabled"] is True
        assert [e["prevHash"] for e in log[:-1]] == [e["hash"] for e in log[1:]]
        only = await admin.get("/v1/admin/audit", params={"action": "operator.created"})
        assert [e["subject"] for e in only.json()["items"]] == [
            f"operator:{bob['id']}",
            f"operator:{admin_id}",
        ]
        paged = await admin.get("/v1/admin/audit", params={"limit": 2})
        rest = await admin.get(
            "/v1/admin/audit", params={"limit": 500, "cursor": paged.json()["nextCursor"]}
        )
        assert [e["seq"] for e in rest.json()["items"]] == [3, 2, 1]


async def test_audit_verify_names_the_entry_edited_behind_the_logs_back(
    sluice_without_workers: RunningSluice,
) -> None:
    sluice = sluice_without_workers
    _, admin_token = await _admin(sluice)
    async with sluice.client(admin_token) as admin:
        for name in ("ann", "ben"):
            made = await admin.post("/v1/admin/operators", json={"name": name, "role": "viewer"})
            assert made.status_code == 201
    url = sluice.container.settings.database_url
    status, output = await _verify(url)
    assert status == 0, output
    assert "intact: 6 entries" in output

    engine = sluice.container.engine
    async with engine.begin() as connection:
        # Someone with the database's owner rights gets past the append-only triggers…
        if connection.dialect.name == "postgresql":
            await connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            await connection.execute(text("DROP TRIGGER audit_log_no_update"))
        await connection.execute(
            text("UPDATE audit_log SET after = :after WHERE seq = 4"),
            {"after": '{"role": "admin"}'},
        )
    # …and the chain still tells.
    status, output = await _verify(url)
    assert status == 1, output
    assert "broken at entry 4" in output
    assert "edited" in output
