"""Velocity windows under concurrency: 100 requests at once through two API processes, decided by
two worker processes on PostgreSQL, never push a user's, a destination's or the hot wallets'
window past its limit, and the limit is reached exactly. Then a SIGHUP to one process reloads the
policy for all of them."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.bootstrap import build
from sluice.cli.common import cli_actor
from sluice.db.engine import create_engine
from sluice.db.tables import withdrawals
from sluice.devnet.anvil import AnvilProcess
from sluice.devnet.setup import TOKEN_SYMBOL
from sluice.domain.access import ALL_SCOPES
from sluice.domain.addresses import Address
from sluice.domain.operators import Role
from sluice.testing.cluster import Cluster, cluster_env
from sluice.testing.harness import prepare

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.usefixtures("anvil_only", "mines_on_an_interval"),
]

DESTINATION = Account.create().address
POLICY = f"""
label = "velocity v1"

[[rules]]
name = "user day"
velocity = {{ per = "user", window = "24h", max_amount = "10" }}
assets = ["ETH"]
action = "deny"
code = "user_daily_limit"

[[rules]]
name = "destination count"
velocity = {{ per = "destination", window = "24h", max_count = 12 }}
action = "deny"
code = "destination_limit"

[[rules]]
name = "wallet hour"
assets = ["{TOKEN_SYMBOL}"]
velocity = {{ per = "hot_wallet", window = "1h", max_amount = "100" }}
action = "deny"
code = "wallet_hourly_limit"

[default]
action = "allow"
"""
DECIDE_TIMEOUT_S = 90.0


async def _decided(engine: AsyncEngine) -> list[tuple[str, str, str | None]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(withdrawals.c.id, withdrawals.c.status, withdrawals.c.error_code)
        )
        return [(r.id, r.status, r.error_code) for r in rows]


def _tally(
    rows: list[tuple[str, str, str | None]],
) -> tuple[dict[str, int], dict[str, set[str | None]]]:
    """Per group of requests (a: user-a's coin, b: to the one destination, c: tokens), how many
    were allowed and which codes denied the others."""
    allowed = {"a": 0, "b": 0, "c": 0}
    denied: dict[str, set[str | None]] = {"a": set(), "b": set(), "c": set()}
    for withdrawal_id, status, code in rows:
        i = int(withdrawal_id.removeprefix("race-"))
        group = "a" if i < 40 else "b" if i < 70 else "c"
        if status == "FAILED":
            denied[group].add(code)
        else:
            allowed[group] += 1
    return allowed, denied


async def test_racing_requests_from_two_processes_overrun_no_window(
    anvil: AnvilProcess, tmp_path: Path, postgres_url: str, redis_queue_url: str
) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY, "utf-8")
    settings, chain = await prepare(
        anvil,
        tmp_path,
        database_url=postgres_url,
        queue_url=redis_queue_url,
        poll_interval_s=0.2,
        policy_file=policy_file,
    )
    container = await build(settings)
    try:
        async with container.uow() as uow:
            api_key, _ = await container.api_keys.create(uow, name="race", scopes=ALL_SCOPES)
            _, operator_key = await container.operators.create(
                uow, name="root", role=Role.ADMIN, actor=cli_actor()
            )
            await uow.commit()
        credits: list[tuple[str, Address | None, str]] = [("user-a", None, "50")]
        credits += [(f"user-b{i}", None, "1") for i in range(30)]
        credits += [(f"user-c{i}", chain.token, "10") for i in range(30)]
        for user, token, amount in credits:
            async with container.uow() as uow:
                await container.ledger.credit(
                    uow,
                    user_id=user,
                    network="anvil",
                    token_address=token,
                    amount=amount,
                    reference=f"race:{user}",
                )
                await uow.commit()
    finally:
        await container.close()

    logs = tmp_path / "logs"
    logs.mkdir()
    env = cluster_env(settings, SLUICE_POLICY_FILE=str(policy_file))
    cluster = Cluster(env=env, logs=logs)
    cluster.start(apis=2, workers=2)
    engine = create_engine(postgres_url)
    requests = (
        [("user-a", "1", Account.create().address, None) for _ in range(40)]
        + [(f"user-b{i}", "0.01", DESTINATION, None) for i in range(30)]
        + [(f"user-c{i}", "5", Account.create().address, chain.token) for i in range(30)]
    )
    try:
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}"}, timeout=60
        ) as client:
            await cluster.healthy(client)

            async def submit(i: int) -> tuple[str, str]:
                user, amount, to, token = requests[i]
                response = await client.post(
                    f"{cluster.api_urls[i % 2]}/v1/withdrawals",
                    json={
                        "id": f"race-{i}",
                        "userId": user,
                        "amount": amount,
                        "toAddress": to,
                        "network": "anvil",
                        "tokenAddress": token,
                    },
                )
                assert response.status_code == 202, response.text
                return f"race-{i}", user

            await asyncio.gather(*(submit(i) for i in range(len(requests))))
            deadline = asyncio.get_running_loop().time() + DECIDE_TIMEOUT_S
            while True:
                rows = await _decided(engine)
                if not [r for r in rows if r[1] == "PENDING"]:
                    break
                assert asyncio.get_running_loop().time() < deadline, "not all decided"
                await asyncio.sleep(0.5)

            allowed, denied = _tally(rows)
            # Each window holds exactly its limit: 10 ETH of user-a's, 12 withdrawals to the
            # destination, 100 tokens through the hot wallets; every other request was denied
            # by its own rule.
            assert allowed == {"a": 10, "b": 12, "c": 20}, (allowed, denied)
            assert denied == {
                "a": {"user_daily_limit"},
                "b": {"destination_limit"},
                "c": {"wallet_hourly_limit"},
            }

            # SIGHUP to the first API process reloads the policy; the second follows.
            policy_file.write_text(POLICY.replace("velocity v1", "velocity v2"), "utf-8")
            cluster.apis[0].send_signal(signal.SIGHUP)
            operator = {"Authorization": f"Bearer {operator_key}"}
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                seen = await client.get(f"{cluster.api_urls[1]}/v1/admin/policy", headers=operator)
                if seen.json().get("label") == "velocity v2":
                    break
                assert asyncio.get_running_loop().time() < deadline, seen.text
                await asyncio.sleep(0.2)
            versions = await client.get(
                f"{cluster.api_urls[1]}/v1/admin/policy/versions", headers=operator
            )
            assert [v["label"] for v in versions.json()] == ["velocity v2", "velocity v1"]
    finally:
        codes = cluster.stop()
        await engine.dispose()
    assert all(code == 0 for code in codes), f"exit codes {codes}; logs in {logs}"
