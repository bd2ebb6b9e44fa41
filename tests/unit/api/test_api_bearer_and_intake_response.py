"""The bearer check (one dependency) and intake's ready-made response, without a database.

The key cache is primed, so authentication reads nothing; intake's service and unit of work are
stand-ins, so what is checked is the HTTP layer: statuses, problem+json, the response bytes and
the OpenAPI document.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sluice.api.app import create_app
from sluice.api.auth import KeyCache
from sluice.api.schemas import WithdrawalOut
from sluice.cache.request_guards import MemoryRequestGuard
from sluice.config import Settings
from sluice.domain.access import ApiKey, Scope
from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Network
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.errors import UnauthorizedError
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.services.withdrawals import WithdrawalRequest
from sluice.testing.fakes import FakeChain

NET = "fakenet"
DEST = Address("0x90F79bf6EB2c4f870365E785982E1f101E93b906")
WRITER = "sluice_writer_secret"
READER = "sluice_reader_secret"
AT = datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
BODY = {"userId": "alice", "amount": "1.5", "toAddress": DEST, "network": NET}


def _withdrawal(withdrawal_id: str) -> Withdrawal:
    return Withdrawal(
        id=withdrawal_id,
        user_id="alice",
        network=NET,
        asset_key="native",
        token_address=None,
        amount=15 * 10**17,
        to_address=DEST,
        status=WithdrawalStatus.PENDING,
        created_at=AT,
        updated_at=AT,
        fingerprint="f" * 64,
    )


class StubWithdrawals:
    """Accepts an id once; a repeat is idempotent."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def submit(
        self,
        _uow: object,
        request: WithdrawalRequest,
        *,
        request_id: str | None = None,
        api_key_id: str | None = None,
    ) -> tuple[Withdrawal, bool]:
        withdrawal_id = request.id or "wd_server"
        created = withdrawal_id not in self.seen
        self.seen.add(withdrawal_id)
        return _withdrawal(withdrawal_id), created


class StubApiKeys:
    """Knows no key: every token the cache does not hold is refused."""

    async def verify(self, _uow: object, _token: str) -> ApiKey:
        raise UnauthorizedError("unknown API key")


class StubUnitOfWork:
    async def commit(self) -> None:
        return None


@asynccontextmanager
async def _uow() -> AsyncIterator[StubUnitOfWork]:
    yield StubUnitOfWork()


def _key(token: str, *scopes: Scope) -> tuple[str, ApiKey]:
    key = ApiKey(id=token, name=token, scopes=frozenset(scopes), secret_hash="-", created_at=AT)
    return hashlib.sha256(token.encode()).hexdigest(), key


@pytest.fixture
def app() -> FastAPI:
    network = Network(
        name=NET,
        chain_id=31337,
        native=Asset(NET, "ETH", 18),
        tokens=(),
        confirmations=1,
        poll_interval_s=0.01,
        hot_wallets=(),
    )
    registry = NetworkRegistry(
        {NET: NetworkEntry(network=network, chain=FakeChain(chain_id=31337), signers=())}
    )
    container = types.SimpleNamespace(
        settings=Settings(),
        request_guard=MemoryRequestGuard(),
        registry=registry,
        uow=_uow,
        withdrawals=StubWithdrawals(),
        api_keys=StubApiKeys(),
    )
    app = create_app(container)  # type: ignore[arg-type]
    cache: KeyCache = app.state.key_cache
    cache.put(*_key(WRITER, Scope.WITHDRAWALS_WRITE))
    cache.put(*_key(READER, Scope.WITHDRAWALS_READ))
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sluice") as client:
        yield client


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer   ", "Basic " + WRITER, WRITER, "Bearer nope"]
)
async def test_without_a_live_bearer_key_the_answer_is_401(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await client.post("/v1/withdrawals", json=BODY, headers=headers)

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthorized"


async def test_a_key_without_the_scope_gets_403(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/withdrawals", json=BODY, headers={"Authorization": f"Bearer {READER}"}
    )

    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "forbidden"


async def test_the_scheme_is_case_insensitive_and_bad_input_still_gets_its_problem(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/withdrawals", json={"userId": "alice"}, headers={"Authorization": f"bEaReR {WRITER}"}
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_request"


async def _as_fastapi_would_send(
    withdrawal: Withdrawal, asset: Asset, network: Network | None = None
) -> bytes:
    """The bytes of the same model returned through ``response_model`` (the former route)."""
    reference = FastAPI()

    @reference.get("/", response_model=WithdrawalOut)
    async def send() -> Any:
        return WithdrawalOut.of(withdrawal, asset, network)

    transport = httpx.ASGITransport(app=reference)
    async with httpx.AsyncClient(transport=transport, base_url="http://reference") as client:
        return (await client.get("/")).content


@pytest.mark.parametrize("path", ["/v1/withdrawals", "/withdrawal/request"])
async def test_intake_answers_202_then_200_with_the_bytes_response_model_would_send(
    client: httpx.AsyncClient, path: str
) -> None:
    headers = {"Authorization": f"Bearer {WRITER}"}
    native = Asset(NET, "ETH", 18)
    expected = await _as_fastapi_would_send(
        _withdrawal("wd_1"), native, Network(name=NET, chain_id=31337, native=native)
    )

    first = await client.post(path, json={**BODY, "id": "wd_1"}, headers=headers)
    again = await client.post(path, json=BODY, headers={**headers, "Idempotency-Key": "wd_1"})

    assert (first.status_code, again.status_code) == (202, 200), (first.text, again.text)
    for response in (first, again):
        assert response.headers["content-type"] == "application/json"
        assert response.content == expected
    assert first.json()["amount"] == "1.5"
    assert first.json()["createdAt"] == "2025-01-01T12:00:00.123456Z"


async def test_the_openapi_document_keeps_the_bearer_scheme_and_the_response_schema(
    app: FastAPI,
) -> None:
    schema = app.openapi()

    assert schema["components"]["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key made with `sluice apikey create`",
        }
    }
    for path in ("/v1/withdrawals", "/withdrawal/request"):
        operation = schema["paths"][path]["post"]
        assert operation["security"] == [{"HTTPBearer": []}]
        for status in ("200", "202"):
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Withdrawal"}
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/WithdrawalRequest"
        }
    for path, method in (
        ("/v1/withdrawals/{withdrawalId}", "get"),
        ("/v1/admin/dead-letters", "get"),
    ):
        assert schema["paths"][path][method]["security"] == [{"HTTPBearer": []}]
    assert "security" not in schema["paths"]["/health"]["get"]
