"""Failed answers become typed errors; the SDK repeats only what is safe to repeat."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sluice_client import (
    AsyncSluiceClient,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FieldError,
    IdempotencyConflictError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    Retries,
    ServerError,
    ServiceUnavailableError,
    SluiceClient,
    SluiceError,
    TransportError,
    UnexpectedResponseError,
)

NO_WAIT = Retries(max_retries=2, backoff_s=0.0)
Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, code: str, detail: str = "it went wrong", **extra: Any) -> dict[str, Any]:
    return {
        "type": f"urn:sluice:problem:{code}",
        "title": "Title",
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def answer(status: int, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/problem+json", "X-Request-ID": "req-1", **headers},
    )


def client(handler: Handler, retries: Retries = NO_WAIT) -> SluiceClient:
    return SluiceClient(
        "http://sluice.test",
        "sluice_id_secret",
        transport=httpx.MockTransport(handler),
        retries=retries,
    )


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "malformed_json", BadRequestError),
        (401, "unauthorized", AuthenticationError),
        (401, "invalid_signature", AuthenticationError),
        (403, "forbidden", PermissionDeniedError),
        (404, "not_found", NotFoundError),
        (405, "method_not_allowed", BadRequestError),
        (409, "idempotency_conflict", IdempotencyConflictError),
        (409, "invalid_state", InvalidStateError),
        (409, "some_new_conflict", ConflictError),
        (413, "payload_too_large", BadRequestError),
        (415, "unsupported_media_type", BadRequestError),
        (500, "internal_error", ServerError),
        (418, "teapot", SluiceError),
    ],
)
def test_each_status_and_code_raises_its_error_class(
    status: int, code: str, expected: type[SluiceError]
) -> None:
    with (
        client(lambda _: answer(status, problem(status, code, "what happened"))) as sluice,
        pytest.raises(expected) as caught,
    ):
        sluice.get_withdrawal("wd-1")
    error = caught.value
    assert type(error) is expected
    assert (error.status, error.code, error.detail, error.request_id) == (
        status,
        code,
        "what happened",
        "req-1",
    )
    assert error.problem["type"] == f"urn:sluice:problem:{code}"


def test_a_422_carries_its_field_errors() -> None:
    body = problem(
        422,
        "invalid_address",
        "toAddress: bad checksum",
        errors=[
            {"field": "toAddress", "in": "body", "code": "invalid_address", "message": "bad"},
            {"field": "", "in": "body", "code": "invalid_request", "message": "whole body"},
        ],
    )
    with (
        client(lambda _: answer(422, body)) as sluice,
        pytest.raises(InvalidRequestError) as caught,
    ):
        sluice.create_withdrawal(user_id="u", amount="1", to_address="0xAB", network="anvil")
    assert caught.value.code == "invalid_address"
    assert caught.value.field_errors == [
        FieldError(field="toAddress", location="body", code="invalid_address", message="bad"),
        FieldError(field="", location="body", code="invalid_request", message="whole body"),
    ]
    assert str(caught.value) == (
        "422 invalid_address: toAddress: bad checksum [toAddress: bad; (body): whole body]"
        " (request id req-1)"
    )


def test_an_answer_without_a_problem_still_gets_its_status_class() -> None:
    def gateway(_: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    with client(gateway, Retries(max_retries=0)) as sluice, pytest.raises(ServerError) as caught:
        sluice.get_withdrawal("wd-1")
    assert (caught.value.status, caught.value.code) == (502, "http_502")
    assert "Bad Gateway" in caught.value.detail


def test_a_rate_limited_call_waits_for_retry_after_and_succeeds() -> None:
    answers = [
        answer(429, problem(429, "rate_limited"), **{"Retry-After": "0"}),
        httpx.Response(200, json={"status": "ok"}),
    ]
    with client(lambda _: answers.pop(0)) as sluice:
        assert sluice.get_health().status == "ok"
    assert answers == []


def test_rate_limited_after_the_retries_carries_retry_after() -> None:
    def limited(_: httpx.Request) -> httpx.Response:
        return answer(429, problem(429, "rate_limited"), **{"Retry-After": "3"})

    with (
        client(limited, Retries(max_retries=0)) as sluice,
        pytest.raises(RateLimitedError) as caught,
    ):
        sluice.get_health()
    assert caught.value.retry_after == 3.0


def test_a_retry_after_longer_than_the_limit_is_not_waited_for() -> None:
    calls: list[httpx.Request] = []

    def limited(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answer(429, problem(429, "rate_limited"), **{"Retry-After": "120"})

    with client(limited) as sluice, pytest.raises(RateLimitedError) as caught:
        sluice.get_health()
    assert len(calls) == 1
    assert caught.value.retry_after == 120.0


def test_a_503_is_retried_for_a_repeatable_call_then_raised() -> None:
    calls: list[httpx.Request] = []

    def unavailable(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        body = problem(503, "database_unavailable")
        return answer(503, body, **{"Retry-After": "0"})

    with client(unavailable) as sluice, pytest.raises(ServiceUnavailableError) as caught:
        sluice.get_withdrawal("wd-1")
    assert len(calls) == 3  # the first attempt and two retries
    assert (caught.value.code, caught.value.retry_after) == ("database_unavailable", 0.0)


def test_a_create_retried_after_a_lost_answer_sends_the_same_id_and_body() -> None:
    bodies: list[bytes] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        if len(bodies) == 1:
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json=json.loads(request.content) | WITHDRAWAL_FIELDS)

    with client(flaky) as sluice:
        withdrawal = sluice.create_withdrawal(
            user_id="u-1", amount="1.5", to_address="0x" + "ab" * 20, network="anvil"
        )
    assert len(bodies) == 2
    assert bodies[0] == bodies[1]
    assert withdrawal.id == json.loads(bodies[0])["id"]
    assert withdrawal.id.startswith("wd_")


def test_a_requeue_is_not_repeated_when_its_answer_is_lost() -> None:
    calls: list[httpx.Request] = []

    def lost(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("no answer", request=request)

    with client(lost) as sluice, pytest.raises(TransportError) as caught:
        sluice.requeue_dead_letter("m-1")
    assert len(calls) == 1
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert caught.value.status is None
    assert caught.value.code == "transport_error"


def test_a_requeue_is_repeated_when_the_connection_was_never_made() -> None:
    calls: list[httpx.Request] = []

    def refused_once(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(202)

    with client(refused_once) as sluice:
        sluice.requeue_dead_letter("m-1")
    assert len(calls) == 2


def test_no_retries_means_one_attempt() -> None:
    calls: list[httpx.Request] = []

    def refused(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    with client(refused, Retries(max_retries=0)) as sluice, pytest.raises(TransportError):
        sluice.get_health()
    assert len(calls) == 1


def test_a_success_that_is_not_json_is_an_unexpected_response() -> None:
    def html(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>a captive portal</html>")

    with client(html) as sluice, pytest.raises(UnexpectedResponseError) as caught:
        sluice.get_withdrawal("wd-1")
    assert caught.value.status == 200


def test_a_success_missing_a_field_names_it() -> None:
    def partial(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "wd-1"}, headers={"X-Request-ID": "req-9"})

    with client(partial) as sluice, pytest.raises(UnexpectedResponseError) as caught:
        sluice.get_withdrawal("wd-1")
    assert "Withdrawal.userId" in caught.value.detail
    assert caught.value.request_id == "req-9"


def test_not_ready_is_an_answer_and_a_proxys_503_an_error() -> None:
    checks = {"database": {"ok": True, "detail": "ok"}, "chain:anvil": {"ok": False, "detail": "x"}}
    with client(lambda _: httpx.Response(503, json={"status": "not_ready", "checks": checks})) as s:
        readiness = s.get_readiness()
    assert not readiness.ready
    assert not readiness.checks["chain:anvil"].ok
    with (
        client(lambda _: httpx.Response(503, text="down"), Retries(max_retries=0)) as sluice,
        pytest.raises(ServiceUnavailableError),
    ):
        sluice.get_readiness()


def test_the_request_id_and_user_agent_are_sent_on_every_attempt() -> None:
    seen: list[httpx.Request] = []

    def once_unavailable(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return answer(503, problem(503, "transient"))
        return httpx.Response(200, json={"status": "ok"})

    with client(once_unavailable) as sluice:
        sluice.get_health(request_id="trace-42")
    assert [r.headers["X-Request-ID"] for r in seen] == ["trace-42", "trace-42"]
    assert {r.headers["User-Agent"] for r in seen} == {"sluice-client/0.1.0"}


async def test_the_async_client_raises_the_same_errors() -> None:
    def not_found(_: httpx.Request) -> httpx.Response:
        return answer(404, problem(404, "not_found", "withdrawal 'x' does not exist"))

    async with AsyncSluiceClient(
        "http://sluice.test", "sluice_id_secret", transport=httpx.MockTransport(not_found)
    ) as sluice:
        with pytest.raises(NotFoundError) as caught:
            await sluice.get_withdrawal("x")
    assert caught.value.detail == "withdrawal 'x' does not exist"


async def test_the_async_client_retries_like_the_sync_one() -> None:
    calls: list[httpx.Request] = []

    def refused_once(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"status": "ok"})

    async with AsyncSluiceClient(
        "http://sluice.test",
        "sluice_id_secret",
        transport=httpx.MockTransport(refused_once),
        retries=NO_WAIT,
    ) as sluice:
        assert (await sluice.get_health()).status == "ok"
    assert len(calls) == 2


WITHDRAWAL_FIELDS = {
    "symbol": "ETH",
    "status": "PENDING",
    "transactionHash": None,
    "blockNumber": None,
    "error": None,
    "errorCode": None,
    "waitingReason": None,
    "createdAt": "2026-12-02T10:00:00Z",
    "updatedAt": "2026-12-02T10:00:00Z",
}
