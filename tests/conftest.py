"""Fixtures shared by every test suite."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar

import pytest

from sluice.devnet.anvil import AnvilProcess, anvil_binary
from sluice.testing import nodes
from sluice.testing.databases import (
    BACKEND_ENV,
    Backend,
    DatabaseUnavailableError,
    FreshDatabases,
    PostgresDatabases,
    fresh_databases,
    postgres_server_url,
    selected_backend,
)
from sluice.testing.hardhat import HardhatProcess
from sluice.testing.moto import MotoServer, kms_sign_honouring_digests

T = TypeVar("T")


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    """One auto-mining Anvil node for the whole session.

    Tests share it: each must use fresh contracts or recipients, and read nonces from the chain.
    Without the pinned binary the test is skipped locally but fails in CI, where `make tools`
    must have run.
    """
    if anvil_binary() is None:
        message = "the pinned anvil is not installed: run `make tools`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with AnvilProcess() as process:
        yield process


@pytest.fixture(scope="session")
def hardhat() -> Iterator[HardhatProcess]:
    """One auto-mining Hardhat node for the whole session (the tests' second node).

    As `anvil`: skipped without the pinned Hardhat (or Node.js) locally, failed in CI.
    """
    if not nodes.installed("hardhat"):
        _not_available(nodes.not_installed_reason("hardhat"))
    with HardhatProcess() as process:
        yield process


def _not_available(reason: str) -> NoReturn:
    """Skip locally; fail in CI, where the database is part of the job."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _run_on_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from a synchronous (session) fixture.

    On a thread of its own, so its event loop never meets the ones pytest-asyncio gives tests.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def database_backend() -> Backend:
    """The database the session's tests run on: ``SLUICE_TEST_DATABASE`` (default sqlite)."""
    return selected_backend()


@pytest.fixture(scope="session")
def databases(
    database_backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FreshDatabases]:
    """Hands out fresh migrated databases, copies of one template migrated per session.

    Without a reachable PostgreSQL (when it is the backend) every test that needs a database is
    skipped locally, and fails in CI.
    """
    factory = fresh_databases(database_backend, tmp_path_factory.mktemp("databases"))
    try:
        _run_on_own_loop(factory.setup())
    except DatabaseUnavailableError as exc:
        _not_available(f"{BACKEND_ENV}={database_backend}: {exc}")
    except BaseException:
        _run_on_own_loop(factory.close())  # a template created but not migrated
        raise
    try:
        yield factory
    finally:
        _run_on_own_loop(factory.close())


@pytest.fixture
async def database_url(databases: FreshDatabases) -> AsyncIterator[str]:
    """A fresh, migrated database of the session's backend, dropped after the test."""
    try:
        url = await databases.create()
    except DatabaseUnavailableError as exc:
        _not_available(str(exc))
    try:
        yield url
    finally:
        await databases.drop(url)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "database: uses `database_url`, so it runs on the SLUICE_TEST_DATABASE backend"
    )
    config.addinivalue_line(
        "markers", "hardhat: runs on a Hardhat node (the pinned Hardhat installed by `make tools`)"
    )
    try:
        selected_backend()
        nodes.selected_kinds()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_report_header(config: pytest.Config) -> list[str]:
    backend = selected_backend()
    where = f" ({postgres_server_url()})" if backend == "postgresql" else ""
    kinds = ", ".join(nodes.selected_kinds())
    return [f"database: {backend}{where}", f"end-to-end nodes ({nodes.NODES_ENV}): {kinds}"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use a node or `database_url`, so `-m` can select or deselect them.

    `anvil`: the test uses the session's node (an end-to-end test, on either kind: see
    tests/e2e/conftest.py); `hardhat`: it runs on a Hardhat node. `make test` runs the `database`
    ones a second time on PostgreSQL.
    """
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "anvil" in fixtures:
            item.add_marker(pytest.mark.anvil)
        callspec = getattr(item, "callspec", None)
        on_hardhat = callspec is not None and callspec.params.get("anvil") == "hardhat"
        if "hardhat" in fixtures or on_hardhat:
            item.add_marker(pytest.mark.hardhat)
        if "database_url" in fixtures:
            item.add_marker(pytest.mark.database)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's server on 127.0.0.1, for every test that needs AWS (SQS, Secrets Manager, KMS)."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """botocore pointed at the moto server, whatever the developer's shell says."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    # A service's own variable wins over AWS_ENDPOINT_URL: one left in a shell would reach AWS.
    for service in ("SQS", "KMS", "SECRETS_MANAGER"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_server.endpoint_url)
    return moto_server


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database (whatever the session's backend), dropped after."""
    databases = PostgresDatabases(postgres_server_url())
    try:
        await databases.setup()
    except DatabaseUnavailableError as exc:
        _not_available(f"PostgreSQL is needed: {exc}")
    url = await databases.create()
    try:
        yield url
    finally:
        await databases.drop(url)
        await databases.close()


@pytest.fixture
def redis_queue_url() -> Iterator[str]:
    """A Redis Streams queue in a namespace of its own on 127.0.0.1:6379, its keys deleted after."""
    import redis  # noqa: PLC0415 - only this fixture needs the sync client

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.RedisError as exc:
        _not_available(f"Redis is needed on 127.0.0.1:6379: {type(exc).__name__}")
    namespace = f"sluice-test-{uuid.uuid4().hex[:8]}"
    try:
        yield f"redis://127.0.0.1:6379/0?namespace={namespace}&visibility_timeout_s=5"
    finally:
        for key in client.scan_iter(f"{namespace}*"):
            client.delete(key)
        client.close()


@pytest.fixture
def kms_signs_digests(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """AWS through moto, its KMS signing ``MessageType=DIGEST`` as AWS KMS does (moto 5.2.5
    hashes the digest again: `sluice.testing.moto.kms_sign_honouring_digests`)."""
    from moto.kms.responses import KmsResponse  # noqa: PLC0415 - only AWS tests need moto's KMS

    monkeypatch.setattr(KmsResponse, "sign", kms_sign_honouring_digests(KmsResponse.sign))
    return aws
