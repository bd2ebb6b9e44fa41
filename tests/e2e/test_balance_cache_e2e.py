"""Balances through the Redis cache, and Redis stopped in the middle of a run."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from redis.asyncio import Redis

from sluice.devnet.anvil import AnvilProcess
from sluice.testing.harness import running_sluice, wait_until_final
from sluice.testing.redis_server import RedisServer, redis_server_binary

pytestmark = pytest.mark.anvil


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    with RedisServer(workdir) as server:
        yield server


async def test_redis_stopped_mid_run_changes_no_balance_and_fails_no_withdrawal(
    anvil: AnvilProcess, tmp_path: Path, redis_server: RedisServer, database_url: str
) -> None:
    async with running_sluice(
        anvil, tmp_path, database_url=database_url, redis_url=redis_server.url
    ) as sluice:
        await sluice.credit("erin", "10")
        async with sluice.client() as client:

            async def balances() -> list[dict[str, str]]:
                response = await client.get("/v1/users/erin/balances")
                assert response.status_code == 200
                return [{k: b[k] for k in ("available", "held")} for b in response.json()]

            async def withdraw(n: int) -> list[str]:
                responses = await asyncio.gather(
                    *(
                        client.post(
                            "/v1/withdrawals",
                            json={
                                "userId": "erin",
                                "amount": "1",
                                "toAddress": Account.create().address,
                                "network": "anvil",
                            },
                        )
                        for _ in range(n)
                    )
                )
                assert {r.status_code for r in responses} == {202}
                return [r.json()["id"] for r in responses]

            assert await balances() == [{"available": "10", "held": "0"}]
            redis = Redis.from_url(redis_server.url)
            try:
                assert await redis.exists("sluice:bal:{erin}"), "the first read filled the cache"
            finally:
                await redis.aclose()
            assert await balances() == [{"available": "10", "held": "0"}]  # from the cache
            first = await withdraw(3)
            await wait_until_final(client, first)
            assert await balances() == [{"available": "7", "held": "0"}], "invalidated in step"

            redis_server.stop()
            second = await withdraw(3)
            final = await wait_until_final(client, second)
            assert {w["status"] for w in final.values()} == {"COMPLETED"}
            assert await balances() == [{"available": "4", "held": "0"}]
            ready = await client.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            assert not ready.json()["checks"]["cache"]["ok"]

            redis_server.start()
            third = await withdraw(2)
            await wait_until_final(client, third)
            assert await balances() == [{"available": "2", "held": "0"}]
            assert (await client.get("/ready")).json()["status"] == "ready"
