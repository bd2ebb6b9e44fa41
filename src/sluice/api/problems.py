"""Errors as RFC 9457 problem+json, each with a stable machine-readable ``code``."""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from sluice.errors import RateLimitedError, SluiceError

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/problem+json"

#: HTTP status for each error code; anything unlisted is a 500.
STATUS_BY_CODE: dict[str, int] = {
    "invalid_request": 422,
    "invalid_policy": 422,
    "invalid_amount": 422,
    "amount_limit": 422,
    "invalid_address": 422,
    "unknown_network": 422,
    "unknown_token": 422,
    "insufficient_funds": 422,
    "malformed_json": 400,
    "unauthorized": 401,
    "invalid_signature": 401,
    "rate_limited": 429,
    "forbidden": 403,
    "operator_required": 403,
    "self_approval": 403,
    "stale_revision": 409,
    "already_decided": 409,
    "already_exists": 409,
    "not_found": 404,
    "method_not_allowed": 405,
    "idempotency_conflict": 409,
    "invalid_state": 409,
    "in_batch": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "transient": 503,
    "chain_unavailable": 503,
    "database_unavailable": 503,
}

#: One entry of a problem's ``errors``.
FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "description": "A field of the request and what is wrong with it",
    "type": "object",
    "required": ["field", "in", "code", "message"],
    "properties": {
        "field": {"type": "string", "examples": ["toAddress"]},
        "in": {"type": "string", "enum": ["body", "query", "path", "header"]},
        "code": {"type": "string", "examples": ["invalid_address"]},
        "message": {"type": "string"},
    },
}

#: The body of every error answer, as the OpenAPI document shows it (`components/schemas`).
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem; `code` is stable, `detail` is for people",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "urn:sluice:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "description": (
                "On every 422: each field at fault. `field` is spelled as in the request"
                " (`toAddress`; nested: `items.0.amount`; empty: the body as a whole), `in`"
                " says where it was"
            ),
            "items": {"$ref": "#/components/schemas/FieldError"},
        },
    },
}

_WHEN: dict[int, str] = {
    400: "The body is not valid JSON (`malformed_json`)",
    401: "No API key, not a live one, or a missing or bad request signature",
    403: "The key lacks the scope, or may not act for this user or from this address",
    404: "No such object (or one the key may not see)",
    409: "The id was used with another body, or the object is in a state that forbids this",
    413: "The body is larger than the configured limit",
    415: "The body is not JSON",
    422: "The request breaks the schema or a business rule; `errors` lists the fields",
    429: "The key's rate limit is spent; retry after `Retry-After` seconds",
    503: "A dependency (database, node) is unavailable; retry",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "required": True,
            "description": "Seconds to wait",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}

#: The errors any authenticated route can answer (authentication, scope, rate limit, database).
AUTHENTICATED = (401, 403, 429, 503)
#: The errors of a route that reads a JSON body, on top of `AUTHENTICATED`.
WITH_BODY = (400, 413, 415, 422)


def problem_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route's error answers, each problem+json.

    ``descriptions`` overrides the general description of a status: ``s404="No such wallet"``.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": descriptions.get(f"s{status}", _WHEN[status]),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    return responses


# Which request-body field's failure maps to which specific code.
_FIELD_CODES = {
    "amount": "invalid_amount",
    "toAddress": "invalid_address",
    "tokenAddress": "invalid_address",
}
_LOCATIONS = ("body", "query", "path", "header")


#: RFC 9110's reason phrases where Python's differ by version (3.11 still says "Unprocessable
#: Entity" and "Request Entity Too Large"; 3.13 follows RFC 9110): one title on every Python.
_RFC_9110_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def title_of(status: int) -> str:
    """A problem's ``title``: the status's reason phrase as RFC 9110 gives it."""
    return _RFC_9110_TITLES.get(status) or HTTPStatus(status).phrase


def problem(code: str, detail: str, *, status: int | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    status = status or STATUS_BY_CODE.get(code, 500)
    body: dict[str, Any] = {
        "type": f"urn:sluice:problem:{code}",
        "title": title_of(status),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def field_error(field: str, location: str, code: str, message: str) -> dict[str, str]:
    """One entry of a problem's ``errors`` (`FIELD_ERROR_SCHEMA`)."""
    return {"field": field, "in": location, "code": code, "message": message}


def _validation_problem(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem("malformed_json", "the request body is not valid JSON")
    code = "invalid_request"
    fields = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        location = loc[0] if loc and loc[0] in _LOCATIONS else "body"
        path = loc[1:] if loc and loc[0] in _LOCATIONS else loc
        name = ".".join(path)
        # A missing field is a malformed request, not a bad amount or address.
        specific = (
            location == "body"
            and len(path) == 1
            and path[0] in _FIELD_CODES
            and error.get("type") != "missing"
        )
        field_code = _FIELD_CODES[path[0]] if specific else "invalid_request"
        if code == "invalid_request":
            code = field_code
        fields.append(field_error(name, location, field_code, str(error.get("msg", ""))))
    detail = "; ".join(
        f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields
    )
    return problem(code, detail or "invalid request", errors=fields)


def _sluice_problem(exc: SluiceError, status: int) -> JSONResponse:
    """The problem of an error raised on purpose; a 422 always lists the field at fault."""
    if status != 422:
        return problem(exc.code, exc.detail, status=status)
    field = getattr(exc, "field", None)
    location = getattr(exc, "location", "body")
    # Business rules with no single field (insufficient funds) point at the body as a whole.
    entry = field_error(field or "", location, exc.code, exc.detail)
    return problem(exc.code, exc.detail, status=status, errors=[entry])


def _allowed_methods(request: Request) -> str:
    """Every method the request's path answers to, for a 405's ``Allow`` (RFC 9110 §15.5.6).

    Starlette's own 405 names only the methods of the first route that matches the path, but a
    path can have several (``GET`` and ``POST /v1/withdrawals`` are two routes).
    """
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def install(app: FastAPI) -> None:
    """Register the exception handlers that turn every error into problem+json."""

    async def on_sluice_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SluiceError)  # noqa: S101 - registered for SluiceError only
        status = STATUS_BY_CODE.get(exc.code, 500)
        if status >= 500:
            log.error("request failed", code=exc.code, detail=exc.detail)
            if status == 500:
                return problem("internal_error", "internal error", status=500)
        response = _sluice_problem(exc, status)
        if isinstance(exc, RateLimitedError):
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return response

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
        return _validation_problem(exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
        # A 400 is raised by FastAPI when it cannot read the body at all (bytes that are not
        # UTF-8, say): as malformed as JSON that does not parse.
        code = {400: "malformed_json", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if code == "malformed_json":
            detail = "the request body is not valid JSON (or not UTF-8)"
        response = problem(code, detail, status=exc.status_code)
        response.headers.update(exc.headers or {})  # e.g. the Allow header a 405 must carry
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed_methods(request)
        return response

    async def on_database_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DBAPIError)  # noqa: S101 - registered for it only
        if not exc.connection_invalidated:
            log.exception("unhandled database error", error_type=type(exc.orig).__name__)
            return problem("internal_error", "internal error", status=500)
        # The server dropped the connection (a restart, a failover): the pool has discarded its
        # stale connections, so the caller's retry gets a fresh one. Nothing was committed.
        log.warning("database connection lost", error_type=type(exc.orig).__name__)
        response = problem("database_unavailable", "the database is unavailable; retry")
        response.headers["Retry-After"] = "1"
        return response

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", error_type=type(exc).__name__)
        return problem("internal_error", "internal error", status=500)

    app.add_exception_handler(SluiceError, on_sluice_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)
