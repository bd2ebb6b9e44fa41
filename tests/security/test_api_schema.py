"""Schemathesis against the running API's OpenAPI document.

Sluice runs with its real HTTP server on 127.0.0.1 (API and workers, on the session's Anvil and a
fresh database). Schemathesis reads ``/openapi.json`` from it and sends generated requests, valid
and invalid, to every operation with an API key that has every scope. Each answer must not be a
5xx and must conform to the document: a documented status code, content type, headers and body.
Its stateful phase follows the links it infers from the document (create a withdrawal, then read,
list, cancel it).

The server runs on a thread of its own with its own event loop: Schemathesis calls it
synchronously from the test's thread.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluice.cli.common import cli_actor
from sluice.devnet.anvil import AnvilProcess
from sluice.domain.access import ALL_SCOPES
from sluice.domain.operators import Role
from sluice.testing import secret_scan
from sluice.testing.databases import FreshDatabases
from sluice.testing.harness import RunningSluice, running_sluice

# Every Schemathesis check is on: no 5xx; status codes, content types, headers and bodies as
# documented; invalid data refused; nothing answered without a valid key (`ignored_auth`); a 405's
# Allow header; and the stateful ones (what a POST creates can be read, ...). But one:
#: A request valid by the schema can still break a business rule (no balance, an address or an
#: amount Sluice refuses): Sluice answers 422, as documented. docs/security.md explains.
EXCLUDED_CHECKS = ("positive_data_acceptance",)
#: Examples per operation: enough to reach every branch of the validation, quick on 2 cores.
MAX_EXAMPLES = 30
#: A user credited before the run, so generated withdrawals can also be accepted (202).
FUNDED_USER = "schemathesis-user"

pytestmark = pytest.mark.database  # it makes its own database from the session's `databases`


class _ServerThread(threading.Thread):
    """Sluice on a thread with its own event loop, until `stop`."""

    def __init__(self, anvil: AnvilProcess, databases: FreshDatabases, data_dir: Path) -> None:
        super().__init__(name="sluice-under-schemathesis", daemon=True)
        self._anvil = anvil
        self._databases = databases
        self._data_dir = data_dir
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self.instance: RunningSluice | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test's thread by `start_and_wait`
            self.error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        url = await self._databases.create()
        try:
            async with running_sluice(self._anvil, self._data_dir, database_url=url) as instance:
                await instance.credit(FUNDED_USER, "1000")
                await instance.credit(FUNDED_USER, "1000000", token=True)
                # An admin operator's key that also carries every scope, so the operator routes
                # are fuzzed as well as the platform's.
                container = instance.container
                async with container.uow() as uow:
                    operator, _ = await container.operators.create(
                        uow, name="fuzz", role=Role.ADMIN, actor=cli_actor()
                    )
                    token, _ = await container.api_keys.create(
                        uow, name="fuzz", scopes=ALL_SCOPES, operator_id=operator.id
                    )
                    await uow.commit()
                secret_scan.register_api_key(token)
                instance.api_key = token
                self.instance = instance
                self._ready.set()
                await self._stopping.wait()
        finally:
            await self._databases.drop(url)

    def start_and_wait(self, timeout_s: float = 120.0) -> RunningSluice:
        self.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError("Sluice did not start")
        if self.instance is None:
            raise RuntimeError("Sluice did not start") from self.error
        return self.instance

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(timeout=60)
        if self.error is not None:
            raise self.error


@pytest.fixture(scope="module")
def sluice_server(
    anvil: AnvilProcess, databases: FreshDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSluice]:
    """One running Sluice for the module's tests."""
    server = _ServerThread(anvil, databases, tmp_path_factory.mktemp("schemathesis"))
    instance = server.start_and_wait()
    try:
        yield instance
    finally:
        server.stop()


def _config(instance: RunningSluice) -> str:
    """A `schemathesis.toml`: the key, and values that let some requests past validation.

    Without them nearly every generated withdrawal is refused (an unknown network, a random user
    with no balance), and the operations behind a created withdrawal are reached only with ids
    that do not exist. Each value is drawn with the given probability; otherwise Schemathesis
    generates as usual.
    """
    values = {
        "users": [FUNDED_USER],
        "networks": [instance.network],
        "addresses": ["0x" + "5a" * 20, instance.hot_wallet],
        "tokens": [instance.token],
        "amounts": ["0.001", "1", "0.000000000000000001"],
    }
    bindings = {
        "body.userId": ("users", 0.6),
        "body.network": ("networks", 0.8),
        "body.toAddress": ("addresses", 0.8),
        "body.tokenAddress": ("tokens", 0.5),
        "body.amount": ("amounts", 0.7),
        "path.user_id": ("users", 0.5),
        "query.userId": ("users", 0.5),
    }
    lines = [f"headers = {{ Authorization = {json.dumps('Bearer ' + instance.api_key)} }}", ""]
    lines += ["[checks]", "enabled = true"]
    lines += [f"{name}.enabled = false" for name in EXCLUDED_CHECKS]
    lines.append("")
    for name, items in values.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(items)}", ""]
    lines.append("[parameters]")
    for key, (name, probability) in bindings.items():
        lines.append(f'"{key}" = {{ dictionary = "{name}", probability = {probability} }}')
    # A withdrawal's transaction exists once it is signed, moments after it is created; until
    # then its `/transaction` answers 404, as documented. docs/security.md explains.
    lines += [
        "",
        "[[operations]]",
        'include-path = "/v1/withdrawals/{withdrawalId}/transaction"',
        "checks.ensure_resource_availability.enabled = false",
    ]
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_nothing(sluice_server: RunningSluice, tmp_path: Path) -> None:
    """Every phase (examples, coverage, fuzzing, stateful), valid and invalid data: no failure."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(sluice_server))
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{sluice_server.base_url}/openapi.json",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261128",  # the same generated data on every run: a CI failure reproduces locally
        "--generation-database",
        "none",
        # One worker: on Python 3.11.7, Hypothesis's lambda descriptions (`ast.parse`) on
        # several threads at once fail with "AST constructor recursion depth mismatch".
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        "--no-color",
    ]
    result = subprocess.run(  # noqa: S603 - our own venv's schemathesis, fixed arguments
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    print(result.stdout)  # the run's summary, shown by `pytest -s`
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]


def test_a_405_allows_every_method_of_the_path(sluice_server: RunningSluice) -> None:
    """`GET` and `POST /v1/withdrawals` are two routes: the Allow header names both."""
    response = httpx.delete(f"{sluice_server.base_url}/v1/withdrawals", timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"


def test_every_documented_error_is_a_problem(sluice_server: RunningSluice) -> None:
    """No 4xx/5xx in the document keeps FastAPI's `application/json` validation error."""
    document = httpx.get(f"{sluice_server.base_url}/openapi.json", timeout=10).json()
    assert "Problem" in document["components"]["schemas"]
    wrong = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and not (path == "/ready" and status == "503"):
                    content = response.get("content", {})
                    if list(content) != ["application/problem+json"]:
                        wrong.append(f"{method.upper()} {path} {status}: {sorted(content)}")
    assert not wrong, wrong
