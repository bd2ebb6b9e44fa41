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

from sluice.errors import RateLimitedError, SluiceError

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/problem+json"

#: HTTP status for each error code; anything unlisted is a 500.
STATUS_BY_CODE: dict[str, int] = {
    "invalid_request": 422,
    "invalid_amount": 422,
    "invalid_address": 422,
    "unknown_network": 422,
    "unknown_token": 422,
    "insufficient_funds": 422,
    "malformed_json": 400,
    "unauthorized": 401,
    "invalid_signature": 401,
    "rate_limited": 429,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "idempotency_conflict": 409,
    "invalid_state": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "transient": 503,
    "chain_unavailable": 503,
    "database_unavailable": 503,
}

# Which request-body field's failure maps to which specific code.
_FIELD_CODES = {
    "amount": "invalid_amount",
    "toAddress": "invalid_address",
    "tokenAddress": "invalid_address",
}


def problem(code: str, detail: str, *, status: int | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    status = status or STATUS_BY_CODE.get(code, 500)
    body: dict[str, Any] = {
        "type": f"urn:sluice:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _validation_problem(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem("malformed_json", "the request body is not valid JSON")
    code = "invalid_request"
    fields = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        field = ".".join(location)
        fields.append({"field": field, "message": str(error.get("msg", ""))})
        # A missing field is a malformed request, not a bad amount or address.
        specific = bool(location) and location[0] in _FIELD_CODES and error.get("type") != "missing"
        if code == "invalid_request" and specific:
            code = _FIELD_CODES[location[0]]
    detail = "; ".join(
        f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields
    )
    return problem(code, detail or "invalid request", errors=fields)


def install(app: FastAPI) -> None:
    """Register the exception handlers that turn every error into problem+json."""

    async def on_sluice_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SluiceError)  # noqa: S101 - registered for SluiceError only
        status = STATUS_BY_CODE.get(exc.code, 500)
        if status >= 500:
            log.error("request failed", code=exc.code, detail=exc.detail)
            if status == 500:
                return problem("internal_error", "internal error", status=500)
        response = problem(exc.code, exc.detail, status=status)
        if isinstance(exc, RateLimitedError):
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return response

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
        return _validation_problem(exc)

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        response = problem(code, detail, status=exc.status_code)
        response.headers.update(exc.headers or {})  # e.g. the Allow header a 405 must carry
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
