"""Every endpoint against: no key, a bad key, a key without its scope, a key for another user
(with every scope such a key may hold: never admin), a key with only its scope.

One running Sluice serves the whole matrix; every cell runs even when an earlier one fails, and
the assertion lists each failing cell.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from sluice.api.auth import CACHE_TTL_S
from sluice.domain.access import ALL_SCOPES, Scope
from sluice.testing.harness import RunningSluice

pytestmark = pytest.mark.anvil

RECIPIENT = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
BAD_KEY = "sluice_0123456789abcdef_not-the-secret"

_serial = itertools.count()


@dataclass(frozen=True)
class Endpoint:
    """A route, the scope it needs, what a key with only that scope gets, and what a key with
    every scope it may hold but restricted to another user gets (status, problem code; None: as
    allowed)."""

    method: str
    path: str
    scope: Scope
    allowed: int
    body: Callable[[RunningSluice], object] | None = None
    other_user: tuple[int, str] | None = None


#: A withdrawal of another user reads as one that does not exist; a user named by the caller is
#: refused outright.
HIDDEN = (404, "not_found")
REFUSED = (403, "forbidden")


def _withdrawal(instance: RunningSluice) -> object:
    return {
        "id": f"authz-{next(_serial)}",
        "userId": "alice",
        "amount": "1",
        "toAddress": RECIPIENT,
        "network": instance.network,
    }


def _credit(instance: RunningSluice) -> object:
    return {
        "userId": "alice",
        "network": instance.network,
        "amount": "1",
        "reference": f"authz-{next(_serial)}",
    }


# {id} is an existing PENDING withdrawal; no dead letter exists, so requeue answers 404; it has
# no transaction yet, so that read answers 404 too.
ENDPOINTS = [
    Endpoint("POST", "/v1/withdrawals", Scope.WITHDRAWALS_WRITE, 202, _withdrawal, REFUSED),
    Endpoint("POST", "/withdrawal/request", Scope.WITHDRAWALS_WRITE, 202, _withdrawal, REFUSED),
    Endpoint("GET", "/v1/withdrawals", Scope.WITHDRAWALS_READ, 200, other_user=REFUSED),
    Endpoint("GET", "/v1/withdrawals?userId=alice", Scope.WITHDRAWALS_READ, 200, None, REFUSED),
    Endpoint("GET", "/v1/withdrawals/{id}", Scope.WITHDRAWALS_READ, 200, other_user=HIDDEN),
    Endpoint("POST", "/v1/withdrawals/{id}/cancel", Scope.WITHDRAWALS_WRITE, 200, None, HIDDEN),
    Endpoint("GET", "/v1/withdrawals/{id}/events", Scope.WITHDRAWALS_READ, 200, None, HIDDEN),
    Endpoint("GET", "/v1/withdrawals/{id}/transaction", Scope.WITHDRAWALS_READ, 404, None, HIDDEN),
    # A key restricted to users never acts as admin: 403 on every admin route.
    Endpoint("POST", "/v1/admin/withdrawals/{id}/cancel", Scope.ADMIN, 200, None, REFUSED),
    Endpoint("POST", "/v1/admin/ledger/credits", Scope.ADMIN, 201, _credit, REFUSED),
    Endpoint("GET", "/v1/users/alice/balances", Scope.WITHDRAWALS_READ, 200, None, REFUSED),
    Endpoint("GET", "/v1/admin/dead-letters", Scope.ADMIN, 200, other_user=REFUSED),
    Endpoint("GET", "/v1/admin/hot-wallets", Scope.ADMIN, 200, other_user=REFUSED),
    Endpoint(
        "POST", "/v1/admin/dead-letters/no-such-letter/requeue", Scope.ADMIN, 404, None, REFUSED
    ),
]

#: Every scope a key restricted to users may hold.
USER_SCOPES = (Scope.WITHDRAWALS_WRITE, Scope.WITHDRAWALS_READ)

PUBLIC = ["/health", "/ready", "/docs", "/openapi.json", "/metrics"]


async def _call(
    client: httpx.AsyncClient,
    endpoint: Endpoint,
    instance: RunningSluice,
    withdrawal_id: str,
    token: str | None,
) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return await client.request(
        endpoint.method,
        endpoint.path.format(id=withdrawal_id),
        headers=headers,
        json=None if endpoint.body is None else endpoint.body(instance),
    )


def _problem_mismatch(response: httpx.Response, status: int, code: str) -> str | None:
    if response.status_code != status:
        return f"status {response.status_code}, expected {status}: {response.text[:200]}"
    if response.headers.get("content-type") != "application/problem+json":
        return f"content-type {response.headers.get('content-type')!r}"
    if response.json().get("code") != code:
        return f"code {response.json().get('code')!r}, expected {code!r}"
    if status == 401 and response.headers.get("www-authenticate") != "Bearer":
        return f"www-authenticate {response.headers.get('www-authenticate')!r}"
    return None


async def test_every_endpoint_admits_exactly_the_keys_with_its_scope(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    only = {scope: await instance.make_key(scope) for scope in Scope}
    all_but = {scope: await instance.make_key(*(ALL_SCOPES - {scope})) for scope in Scope}
    bobs = await instance.make_key(*USER_SCOPES, user_ids=["bob"])
    async with instance.client() as setup:
        created = await setup.post("/v1/withdrawals", json=_withdrawal(instance))
        assert created.status_code == 202, created.text
    withdrawal_id = created.json()["id"]

    failures: list[str] = []
    async with httpx.AsyncClient(base_url=instance.base_url, timeout=30) as client:
        for endpoint in ENDPOINTS:
            name = f"{endpoint.method} {endpoint.path}"
            cells = [
                ("no key", None, 401, "unauthorized"),
                ("bad key", BAD_KEY, 401, "unauthorized"),
                ("garbage key", "garbage", 401, "unauthorized"),
                ("without the scope", all_but[endpoint.scope], 403, "forbidden"),
            ]
            if endpoint.other_user is not None:
                cells.append(("another user's key", bobs, *endpoint.other_user))
            for label, token, status, code in cells:
                response = await _call(client, endpoint, instance, withdrawal_id, token)
                if wrong := _problem_mismatch(response, status, code):
                    failures.append(f"[{name} / {label}] {wrong}")
            if endpoint.other_user is None:  # not about a user: bob's key is as good as any
                response = await _call(client, endpoint, instance, withdrawal_id, bobs)
                if response.status_code != endpoint.allowed:
                    failures.append(f"[{name} / bob's key] status {response.status_code}")
            response = await _call(client, endpoint, instance, withdrawal_id, only[endpoint.scope])
            if endpoint.allowed == 404:
                wrong = _problem_mismatch(response, 404, "not_found")
            elif response.status_code != endpoint.allowed:
                wrong = f"status {response.status_code}, expected {endpoint.allowed}"
                wrong += f": {response.text[:200]}"
            else:
                wrong = None
            if wrong:
                failures.append(f"[{name} / only {endpoint.scope}] {wrong}")
        for path in PUBLIC:
            response = await client.get(path)
            if response.status_code != 200:
                failures.append(f"[GET {path} / no key] status {response.status_code}")
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures)


async def test_a_revoked_key_is_refused_within_the_cache_ttl(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    token = await instance.make_key(Scope.WITHDRAWALS_READ)
    key_id = token.split("_")[1]
    async with instance.client(token) as client:
        assert (await client.get("/v1/withdrawals")).status_code == 200  # now cached
        container = instance.container
        async with container.uow() as uow:
            assert await container.api_keys.revoke(uow, key_id)
            await uow.commit()
        loop = asyncio.get_running_loop()
        revoked_at = loop.time()
        deadline = revoked_at + CACHE_TTL_S + 2
        while (response := await client.get("/v1/withdrawals")).status_code == 200:
            assert loop.time() < deadline, f"still admitted {CACHE_TTL_S + 2} s after revocation"
            await asyncio.sleep(0.1)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"
    # Still refused on later requests (the refusal is not cached as a success).
    async with instance.client(token) as client:
        assert (await client.get("/v1/withdrawals")).status_code == 401


async def test_a_key_restricted_to_a_user_sees_and_does_only_that_users_withdrawals(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    bobs = await instance.make_key(*USER_SCOPES, user_ids=["bob"])
    async with instance.client() as admin, instance.client(bobs) as bob:
        alices = (await admin.post("/v1/withdrawals", json=_withdrawal(instance))).json()
        body = _withdrawal(instance)
        assert isinstance(body, dict)
        mine = await bob.post("/v1/withdrawals", json={**body, "userId": "bob"})
        assert mine.status_code == 202, mine.text

        listed = (await bob.get("/v1/withdrawals", params={"userId": "bob"})).json()["items"]
        assert [w["id"] for w in listed] == [mine.json()["id"]]
        missing = await bob.get("/v1/withdrawals/no-such-withdrawal")
        hidden = await bob.get(f"/v1/withdrawals/{alices['id']}")
        assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
        assert hidden.json()["detail"].replace(alices["id"], "X") == missing.json()[
            "detail"
        ].replace("no-such-withdrawal", "X"), "the same answer as for an id that does not exist"
        cancelled = await bob.post(f"/v1/withdrawals/{alices['id']}/cancel")
        assert cancelled.status_code == 404
        assert (await admin.get(f"/v1/withdrawals/{alices['id']}")).json()["status"] == "PENDING"


async def test_a_key_restricted_to_ip_ranges_is_refused_from_elsewhere(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    local = await instance.make_key(Scope.WITHDRAWALS_READ, ip_ranges=("127.0.0.0/8",))
    remote = await instance.make_key(Scope.WITHDRAWALS_READ, ip_ranges=("10.0.0.0/8",))
    async with instance.client(local) as client:
        assert (await client.get("/v1/withdrawals")).status_code == 200
    async with instance.client(remote) as client:
        refused = await client.get("/v1/withdrawals")
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
