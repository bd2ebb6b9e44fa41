"""Bad input gets the exact status and a precise problem+json, never a traceback.

One running Sluice serves the whole table: an instance per row would cost ~0.3 s each, and the
table has ~90 rows. Every row runs even when an earlier one fails; the assertion lists each
failing row by its id.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx
import pytest

from sluice.domain.access import Scope
from sluice.testing.harness import RunningSluice

pytestmark = pytest.mark.anvil

#: A valid EIP-55 address (the example from the EIP); no hot wallet or token of ours.
RECIPIENT = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
#: Well-formed, but no token is configured there.
UNKNOWN_TOKEN = "0x1111111111111111111111111111111111111111"
ZERO = "0x" + "0" * 40
MEGABYTE = 1024 * 1024

Auth = Literal["default", "none", "garbage", "unknown", "basic", "read_only"]
BodyFn = Callable[[RunningSluice], object]


class _Drop:
    """Marks a field to leave out of the body."""


DROP = _Drop()


def _flip_case_of_one_letter(address: str) -> str:
    digits = list(address[2:])
    index = next(i for i, c in enumerate(digits) if c.isalpha())
    digits[index] = digits[index].swapcase()
    return "0x" + "".join(digits)


def withdrawal(**changes: object) -> BodyFn:
    """A valid withdrawal body with some fields changed (a callable is given the instance)."""

    def build(instance: RunningSluice) -> object:
        body: dict[str, object] = {
            "userId": "mallory",
            "amount": "1",
            "toAddress": RECIPIENT,
            "network": instance.network,
        }
        for name, value in changes.items():
            if value is DROP:
                body.pop(name)
            else:
                body[name] = value(instance) if callable(value) else value
        return body

    return build


def credit(**changes: object) -> BodyFn:
    """A valid credit body with some fields changed."""

    def build(instance: RunningSluice) -> object:
        body: dict[str, object] = {
            "userId": "mallory",
            "network": instance.network,
            "amount": "1",
            "reference": "bad-input-credit",
        }
        body.update(changes)
        return body

    return build


@dataclass(frozen=True)
class Row:
    """One bad request and the problem it must get."""

    id: str
    status: int
    code: str
    body: BodyFn | None = field(default_factory=withdrawal)
    raw: bytes | None = None  # sent as is (with `content_type`) instead of `body`
    content_type: str | None = None
    chunked: bool = False  # stream `raw` without a Content-Length
    auth: Auth = "default"
    detail: str | None = None  # a fragment the detail must contain
    method: str = "POST"
    path: str = ""  # the submit rows get theirs when the table is built
    field: tuple[str, str] | None = None  # a 422's first `errors` entry: (field, in)


def _raw(payload: object) -> bytes:
    return json.dumps(payload).encode()


_VALID = {"userId": "mallory", "amount": "1", "toAddress": RECIPIENT, "network": "anvil"}
_HUGE = _raw({**_VALID, "userId": "x" * MEGABYTE})

SUBMIT_ROWS = [
    # amounts
    Row("amount-zero", 422, "invalid_amount", withdrawal(amount="0"), detail="greater than zero"),
    Row("amount-negative", 422, "invalid_amount", withdrawal(amount="-1")),
    Row("amount-exponent", 422, "invalid_amount", withdrawal(amount="1e18")),
    Row("amount-letters", 422, "invalid_amount", withdrawal(amount="abc")),
    Row("amount-empty", 422, "invalid_amount", withdrawal(amount="")),
    Row("amount-json-number", 422, "invalid_amount", withdrawal(amount=1.5)),
    Row(
        "amount-19-decimals-token",
        422,
        "invalid_amount",
        withdrawal(amount="0.0000000000000000001", tokenAddress=lambda i: i.token),
        detail="18 decimal places",
    ),
    Row(
        "amount-19-decimals-native",
        422,
        "invalid_amount",
        withdrawal(amount="0.0000000000000000001"),
        detail="18 decimal places",
    ),
    # addresses
    Row(
        "address-bad-checksum",
        422,
        "invalid_address",
        withdrawal(toAddress=_flip_case_of_one_letter(RECIPIENT)),
        detail="checksum",
    ),
    Row("address-short", 422, "invalid_address", withdrawal(toAddress=RECIPIENT[:-2])),
    Row("address-non-hex", 422, "invalid_address", withdrawal(toAddress="0x" + "zz" * 20)),
    Row("address-without-0x", 422, "invalid_address", withdrawal(toAddress=RECIPIENT[2:])),
    Row("address-zero", 422, "invalid_address", withdrawal(toAddress=ZERO), detail="zero"),
    Row(
        "address-precompile",
        422,
        "invalid_address",
        withdrawal(toAddress="0x" + "0" * 37 + "100"),
        detail="precompiled contract (P256VERIFY)",
    ),
    Row(
        "address-hot-wallet",
        422,
        "invalid_address",
        withdrawal(toAddress=lambda i: i.hot_wallet),
        detail="hot wallet",
    ),
    Row(
        "address-hot-wallet-lowercase",
        422,
        "invalid_address",
        withdrawal(toAddress=lambda i: i.hot_wallet.lower()),
        detail="hot wallet",
    ),
    Row(
        "address-token-contract",
        422,
        "invalid_address",
        withdrawal(toAddress=lambda i: i.token, tokenAddress=lambda i: i.token),
        detail="token contract",
    ),
    Row(
        "address-token-contract-native",
        422,
        "invalid_address",
        withdrawal(toAddress=lambda i: i.token),
        detail="token contract",
    ),
    # network and token
    Row("unknown-network", 422, "unknown_network", withdrawal(network="mainnet")),
    Row("unknown-token", 422, "unknown_token", withdrawal(tokenAddress=UNKNOWN_TOKEN)),
    # shape
    Row("missing-userId", 422, "invalid_request", withdrawal(userId=DROP), detail="userId"),
    Row("missing-amount", 422, "invalid_request", withdrawal(amount=DROP), detail="amount"),
    Row(
        "missing-toAddress", 422, "invalid_request", withdrawal(toAddress=DROP), detail="toAddress"
    ),
    Row("missing-network", 422, "invalid_request", withdrawal(network=DROP), detail="network"),
    Row("unknown-field", 422, "invalid_request", withdrawal(memo="hi"), detail="memo"),
    Row("snake-case-field", 422, "invalid_request", withdrawal(userId=DROP, user_id="mallory")),
    Row("json-array", 422, "invalid_request", lambda i: [withdrawal()(i)]),
    Row("json-string", 422, "invalid_request", lambda i: "withdraw please"),
    Row("userId-with-slash", 422, "invalid_request", withdrawal(userId="a/b")),
    Row("userId-with-space", 422, "invalid_request", withdrawal(userId="a b")),
    Row("id-with-slash", 422, "invalid_request", withdrawal(id="a/b")),
    Row(
        "not-utf-8",
        400,
        "malformed_json",
        None,
        raw=b'{"userId": "\xff\xfe"}',
        content_type="application/json",
    ),
    Row(
        "malformed-json",
        400,
        "malformed_json",
        None,
        raw=b'{"userId": "mallory",',
        content_type="application/json",
    ),
    # media type and size
    Row(
        "text-plain",
        415,
        "unsupported_media_type",
        None,
        raw=_raw(_VALID),
        content_type="text/plain",
    ),
    Row(
        "form-encoded",
        415,
        "unsupported_media_type",
        None,
        raw=b"userId=mallory&amount=1&network=anvil&toAddress=" + RECIPIENT.encode(),
        content_type="application/x-www-form-urlencoded",
    ),
    Row(
        "no-content-type",
        415,
        "unsupported_media_type",
        None,
        raw=_raw(_VALID),
    ),
    Row(
        "one-megabyte",
        413,
        "payload_too_large",
        None,
        raw=_HUGE,
        content_type="application/json",
    ),
    Row(
        "one-megabyte-chunked",
        413,
        "payload_too_large",
        None,
        raw=_HUGE,
        content_type="application/json",
        chunked=True,
    ),
    # credentials
    Row("no-authorization", 401, "unauthorized", auth="none"),
    Row("basic-scheme", 401, "unauthorized", auth="basic"),
    Row("garbage-key", 401, "unauthorized", auth="garbage"),
    Row("unknown-well-formed-key", 401, "unauthorized", auth="unknown"),
    Row("read-only-key", 403, "forbidden", auth="read_only", detail="withdrawals:write"),
]

OTHER_ROWS = [
    Row("get-unknown", 404, "not_found", None, method="GET", path="/v1/withdrawals/does-not-exist"),
    Row(
        "cancel-unknown",
        404,
        "not_found",
        None,
        path="/v1/withdrawals/does-not-exist/cancel",
    ),
    Row(
        "events-unknown",
        404,
        "not_found",
        None,
        method="GET",
        path="/v1/withdrawals/does-not-exist/events",
    ),
    Row("list-limit-0", 422, "invalid_request", None, method="GET", path="/v1/withdrawals?limit=0"),
    Row(
        "list-limit-1000",
        422,
        "invalid_request",
        None,
        method="GET",
        path="/v1/withdrawals?limit=1000",
    ),
    Row(
        "list-cursor-abc",
        422,
        "invalid_request",
        None,
        method="GET",
        path="/v1/withdrawals?cursor=abc",
    ),
    Row(
        "list-status-nope",
        422,
        "invalid_request",
        None,
        method="GET",
        path="/v1/withdrawals?status=NOPE",
    ),
    Row(
        "credit-bad-amount",
        422,
        "invalid_amount",
        credit(amount="1.2.3"),
        path="/v1/admin/ledger/credits",
    ),
    Row(
        "credit-zero-amount",
        422,
        "invalid_amount",
        credit(amount="0"),
        path="/v1/admin/ledger/credits",
    ),
    Row(
        "credit-unknown-network",
        422,
        "unknown_network",
        credit(network="mainnet"),
        path="/v1/admin/ledger/credits",
    ),
    Row(
        "credit-unknown-token",
        422,
        "unknown_token",
        credit(tokenAddress=UNKNOWN_TOKEN),
        path="/v1/admin/ledger/credits",
    ),
    Row(
        "credit-reference-reused-for-another-amount",
        409,
        "idempotency_conflict",
        credit(reference="taken", amount="2"),
        path="/v1/admin/ledger/credits",
    ),
    Row("unknown-route", 404, "not_found", None, method="GET", path="/v1/nope"),
    Row("trailing-slash", 404, "not_found", None, method="GET", path="/v1/withdrawals/"),
    Row(
        "encoded-slash-in-an-id",
        404,
        "not_found",
        None,
        method="GET",
        path="/v1/withdrawals/get-unknown%2Fevents",
    ),
    Row("get-id-nul", 422, "invalid_request", None, method="GET", path="/v1/withdrawals/a%00b"),
    Row(
        "get-id-not-utf-8", 422, "invalid_request", None, method="GET", path="/v1/withdrawals/a%ff"
    ),
    Row(
        "get-updatedSince-past-year-9999",
        422,
        "invalid_request",
        None,
        method="GET",
        path="/v1/withdrawals?updatedSince=9999-12-31T23:59:59-23:59",
    ),
    Row("unknown-route-post", 404, "not_found", path="/v1/nope"),
    Row("wrong-method", 405, "method_not_allowed", None, method="DELETE", path="/v1/withdrawals"),
    Row(
        "wrong-method-alias",
        405,
        "method_not_allowed",
        None,
        method="GET",
        path="/withdrawal/request",
    ),
    Row(
        "list-updatedSince-not-a-time",
        422,
        "invalid_request",
        None,
        method="GET",
        path="/v1/withdrawals?updatedSince=yesterday",
    ),
    Row(
        "list-updatedSince-a-number",
        422,
        "invalid_request",
        None,
        method="GET",
        path="/v1/withdrawals?updatedSince=0.5",
    ),
    Row(
        "list-updatedSince-without-zone",
        422,
        "invalid_request",
        None,
        method="GET",
        path="/v1/withdrawals?updatedSince=2026-12-02T10:00:00",
    ),
    Row(
        "list-cursor-forged",
        422,
        "invalid_request",
        None,
        method="GET",
        path="/v1/withdrawals?cursor=eyJzIjogIngifQ",
    ),
]

#: The field every 422 row's problem must point at first: (field, where it was).
FIELDS: dict[str, tuple[str, str]] = {
    **{r.id: ("amount", "body") for r in SUBMIT_ROWS if r.id.startswith("amount-")},
    **{r.id: ("toAddress", "body") for r in SUBMIT_ROWS if r.id.startswith("address-")},
    "unknown-network": ("network", "body"),
    "unknown-token": ("tokenAddress", "body"),
    "missing-userId": ("userId", "body"),
    "missing-amount": ("amount", "body"),
    "missing-toAddress": ("toAddress", "body"),
    "missing-network": ("network", "body"),
    "unknown-field": ("memo", "body"),
    "snake-case-field": ("userId", "body"),
    "json-array": ("", "body"),
    "json-string": ("", "body"),
    "userId-with-slash": ("userId", "body"),
    "userId-with-space": ("userId", "body"),
    "id-with-slash": ("id", "body"),
    "list-limit-0": ("limit", "query"),
    "list-limit-1000": ("limit", "query"),
    "list-cursor-abc": ("cursor", "query"),
    "list-cursor-forged": ("cursor", "query"),
    "list-status-nope": ("status", "query"),
    "list-updatedSince-not-a-time": ("updatedSince", "query"),
    "list-updatedSince-a-number": ("updatedSince", "query"),
    "get-updatedSince-past-year-9999": ("updatedSince", "query"),
    "get-id-nul": ("withdrawalId", "path"),
    "get-id-not-utf-8": ("withdrawalId", "path"),
    "list-updatedSince-without-zone": ("updatedSince", "query"),
    "credit-bad-amount": ("amount", "body"),
    "credit-zero-amount": ("amount", "body"),
    "credit-unknown-network": ("network", "body"),
    "credit-unknown-token": ("tokenAddress", "body"),
}
OTHER_ROWS = [replace(row, field=FIELDS.get(row.id)) for row in OTHER_ROWS]

TABLE = [
    replace(row, id=f"{path} {row.id}", path=path, field=FIELDS.get(row.id))
    for path in ("/v1/withdrawals", "/withdrawal/request")
    for row in SUBMIT_ROWS
] + OTHER_ROWS

#: What every problem's title must be: RFC 9110's reason phrase, whatever the Python version.
RFC_9110_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
}

# What a leaked stack trace or server path looks like.
_LEAKS = re.compile(r'Traceback|File "|\.py\b|site-packages|/work/|/home/|/tmp/|/usr/')


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _authorization(row: Row, instance: RunningSluice, read_only_key: str) -> dict[str, str]:
    tokens = {
        "default": f"Bearer {instance.api_key}",
        "garbage": "Bearer not-a-key",
        "unknown": f"Bearer sluice_{'0' * 16}_{'s' * 43}",
        "basic": "Basic dXNlcjpwYXNz",
        "read_only": f"Bearer {read_only_key}",
    }
    return {} if row.auth == "none" else {"Authorization": tokens[row.auth]}


async def _send(
    client: httpx.AsyncClient, row: Row, instance: RunningSluice, read_only_key: str
) -> httpx.Response:
    headers = _authorization(row, instance, read_only_key)
    if row.content_type is not None:
        headers["Content-Type"] = row.content_type
    content: bytes | AsyncIterator[bytes] | None = None
    payload: Any = None
    if row.raw is not None:
        content = _chunks(row.raw) if row.chunked else row.raw
    elif row.body is not None:
        payload = row.body(instance)
    request = client.build_request(
        row.method, row.path, headers=headers, content=content, json=payload
    )
    if row.chunked:
        assert "content-length" not in request.headers, row.id
        assert request.headers.get("transfer-encoding") == "chunked", row.id
    return await client.send(request)


def _mismatches(row: Row, response: httpx.Response) -> list[str]:
    """Everything wrong with a row's response (empty when it is right)."""
    wrong: list[str] = []
    if response.status_code != row.status:
        wrong.append(f"status {response.status_code}, expected {row.status}")
    if response.headers.get("content-type") != "application/problem+json":
        wrong.append(f"content-type {response.headers.get('content-type')!r}")
    if leak := _LEAKS.search(response.text):
        wrong.append(f"leaks internals ({leak.group()!r})")
    try:
        body = response.json()
    except ValueError:
        return [*wrong, "body is not JSON"]
    if not isinstance(body, dict):
        return [*wrong, "body is not a JSON object"]
    expected = {
        "type": f"urn:sluice:problem:{row.code}",
        "title": RFC_9110_TITLES[row.status],
        "status": row.status,
        "code": row.code,
    }
    for name, value in expected.items():
        if body.get(name) != value:
            wrong.append(f"{name} {body.get(name)!r}, expected {value!r}")
    detail = body.get("detail")
    if not isinstance(detail, str) or not detail.strip():
        wrong.append(f"detail {detail!r} is not a non-empty string")
    elif row.detail is not None and row.detail not in detail:
        wrong.append(f"detail {detail!r} lacks {row.detail!r}")
    if row.status == 401 and response.headers.get("www-authenticate") != "Bearer":
        wrong.append(f"www-authenticate {response.headers.get('www-authenticate')!r}")
    if row.status == 405 and not response.headers.get("allow"):
        wrong.append("no Allow header")
    if row.status == 422:
        wrong.extend(_field_mismatches(row, body.get("errors")))
    return wrong


def _field_mismatches(row: Row, errors: object) -> list[str]:
    """What is wrong with a 422's ``errors``: every entry well formed, the first the row's."""
    if row.field is None:
        return ["the table names no field for this 422 row (add it to FIELDS)"]
    if not isinstance(errors, list) or not errors:
        return [f"errors {errors!r} is not a non-empty list"]
    wrong = [
        f"errors entry {entry!r} lacks field, in, code or message"
        for entry in errors
        if not isinstance(entry, dict) or set(entry) != {"field", "in", "code", "message"}
    ]
    first = errors[0]
    if isinstance(first, dict) and (first.get("field"), first.get("in")) != row.field:
        wrong.append(f"first error at {(first.get('field'), first.get('in'))}, not {row.field}")
    return wrong


async def test_bad_input_gets_the_exact_status_and_problem(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    read_only_key = await instance.make_key(Scope.WITHDRAWALS_READ)
    async with httpx.AsyncClient(base_url=instance.base_url, timeout=30) as client:
        taken = await client.post(
            "/v1/admin/ledger/credits",
            json=credit(reference="taken")(instance),
            headers={"Authorization": f"Bearer {instance.api_key}"},
        )
        assert taken.status_code == 201, taken.text

        failures: list[str] = []
        for row in TABLE:
            try:
                response = await _send(client, row, instance, read_only_key)
            except httpx.HTTPError as exc:
                failures.append(f"[{row.id}] request failed: {exc!r}")
                continue
            failures.extend(
                f"[{row.id}] {problem} - body: {response.text[:300]}"
                for problem in _mismatches(row, response)
            )
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures)


async def test_a_repeated_credit_reference_with_the_same_body_is_a_no_op(
    sluice_without_workers: RunningSluice,
) -> None:
    instance = sluice_without_workers
    body = credit(reference="once", amount="2.5")(instance)
    async with instance.client() as client:
        first = await client.post("/v1/admin/ledger/credits", json=body)
        again = await client.post("/v1/admin/ledger/credits", json=body)
        balances = (await client.get("/v1/users/mallory/balances")).json()
    assert first.status_code == 201, first.text
    assert first.json() == {"reference": "once", "credited": True}
    assert again.status_code == 200, again.text
    assert again.json() == {"reference": "once", "credited": False}
    assert [(b["available"], b["held"]) for b in balances] == [("2.5", "0")]
