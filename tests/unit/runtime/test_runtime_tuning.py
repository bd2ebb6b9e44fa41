"""The process-level tuning `sluice serve` and `sluice worker` apply before serving."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import httpx
import pytest
import uvloop
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from sluice import runtime
from sluice.api import problems


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_the_garbage_collector_runs_less_often_and_skips_the_start_up_heap() -> None:
    runtime.tune_garbage_collector()

    assert gc.get_threshold() == runtime.GC_THRESHOLD
    assert gc.get_freeze_count() > 0


def test_the_loop_is_uvloop() -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        seen.append(asyncio.get_running_loop())

    runtime.run_loop(main())

    assert isinstance(seen[0], uvloop.Loop)


async def _get_raising(exc: Exception) -> httpx.Response:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/boom")


async def test_a_lost_database_connection_is_a_503_the_caller_may_retry() -> None:
    lost = OperationalError("SELECT 1", {}, ConnectionResetError("reset"))
    lost.connection_invalidated = True

    response = await _get_raising(lost)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "database_unavailable"
    assert "SELECT" not in response.text


async def test_any_other_database_error_is_an_internal_error_without_details() -> None:
    broken = OperationalError("SELECT secret_column", {}, ValueError("boom"))

    response = await _get_raising(broken)

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret_column" not in response.text
