"""Errors: every failed call raises one, carrying the problem's ``code`` and field errors.

The tree::

    SluiceError                      status, code, detail, field_errors, request_id
    ├── TransportError               no answer (connection refused, timed out, cut off)
    ├── UnexpectedResponseError      an answer that is not what the API sends (a proxy's page)
    ├── BadRequestError              400, 405, 413, 415: a request the SDK should never send
    ├── AuthenticationError          401 unauthorized, invalid_signature
    ├── PermissionDeniedError        403 forbidden
    ├── NotFoundError                404 not_found
    ├── ConflictError                409
    │   ├── IdempotencyConflictError     idempotency_conflict: the id was used with another body
    │   └── InvalidStateError            invalid_state: e.g. cancelling a signed withdrawal
    ├── InvalidRequestError          422: ``field_errors`` says which fields and why
    ├── RateLimitedError             429, ``retry_after``
    ├── ServerError                  500 and other 5xx
    └── ServiceUnavailableError      503, ``retry_after`` when the server sent one

Catch `SluiceError` for all of them; branch on the class, or on ``code`` (stable, listed in
docs/api.md, "Errors") for finer cases such as ``insufficient_funds`` or ``invalid_address``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "FieldError",
    "IdempotencyConflictError",
    "InvalidRequestError",
    "InvalidStateError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "ServiceUnavailableError",
    "SluiceError",
    "TransportError",
    "UnexpectedResponseError",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field of the request and what is wrong with it (an entry of a problem's ``errors``).

    Attributes:
        field: As spelled in the request (``toAddress``; nested ``items.0.amount``; empty for
            the body as a whole).
        location: Where it was: ``body``, ``query``, ``path`` or ``header`` (``in`` on the wire).
        code: The code for that field, e.g. ``invalid_address``.
        message: For people.
    """

    field: str
    location: str
    code: str
    message: str


class SluiceError(Exception):
    """The root of every error the SDK raises.

    Attributes:
        status: The HTTP status, or None when no answer came (`TransportError`).
        code: The problem's stable code (``invalid_amount``, ``not_found`` …).
        detail: What went wrong, for people.
        field_errors: The fields at fault (every 422 has at least one).
        request_id: The answer's ``X-Request-ID``: quote it to the operator, who finds it in
            Sluice's log.
        problem: The problem+json body as it came (empty without one).
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str = "error",
        field_errors: tuple[FieldError, ...] = (),
        request_id: str | None = None,
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field_errors = list(field_errors)
        self.request_id = request_id
        self.problem: Mapping[str, Any] = problem or {}

    def __str__(self) -> str:
        head = f"{self.status} {self.code}" if self.status is not None else self.code
        text = f"{head}: {self.detail}"
        if self.field_errors:
            fields = "; ".join(f"{e.field or '(body)'}: {e.message}" for e in self.field_errors)
            text += f" [{fields}]"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class TransportError(SluiceError):
    """No answer: the connection failed, timed out or was cut off (after any retries).

    The underlying httpx exception is the ``__cause__``. A write whose answer was lost may or
    may not have happened: repeat it with the same id (idempotent) to find out.
    """


class UnexpectedResponseError(SluiceError):
    """An answer that is not what Sluice sends: not JSON, or not the documented shape."""


class BadRequestError(SluiceError):
    """400 ``malformed_json``, 405, 413 ``payload_too_large``, 415 ``unsupported_media_type``."""


class AuthenticationError(SluiceError):
    """401: no key, an unknown or revoked key (``unauthorized``), or a signing key's request
    unsigned, badly signed, stale or replayed (``invalid_signature``)."""


class PermissionDeniedError(SluiceError):
    """403 ``forbidden``: the key lacks the scope, may not act for the user, or not from here."""


class NotFoundError(SluiceError):
    """404 ``not_found``: no such withdrawal or dead letter (or one the key may not see)."""


class ConflictError(SluiceError):
    """409: the request conflicts with the state of what exists."""


class IdempotencyConflictError(ConflictError):
    """409 ``idempotency_conflict``: the id (or a credit's reference) was used with another body."""


class InvalidStateError(ConflictError):
    """409 ``invalid_state``: not allowed in the object's status (e.g. cancel once signed)."""


class InvalidRequestError(SluiceError):
    """422: the request breaks the schema or a business rule; ``field_errors`` says where."""


class RateLimitedError(SluiceError):
    """429 ``rate_limited``: the key's requests a second are spent.

    Attributes:
        retry_after: Seconds to wait, from ``Retry-After``.
    """

    def __init__(self, detail: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class ServerError(SluiceError):
    """500 ``internal_error`` (a bug; the log has it) or another 5xx but 503."""


class ServiceUnavailableError(SluiceError):
    """503: a dependency failed for a moment (``transient``, ``database_unavailable`` …).

    Attributes:
        retry_after: Seconds to wait, from ``Retry-After`` when the server sent one.
    """

    def __init__(self, detail: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


_BY_STATUS: dict[int, type[SluiceError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: BadRequestError,
    409: ConflictError,
    413: BadRequestError,
    415: BadRequestError,
    422: InvalidRequestError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}
_BY_CODE: dict[str, type[SluiceError]] = {
    "idempotency_conflict": IdempotencyConflictError,
    "invalid_state": InvalidStateError,
}


def retry_after_of(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (Sluice sends whole seconds), or None."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _field_errors(value: object) -> tuple[FieldError, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        FieldError(
            field=str(item.get("field", "")),
            location=str(item.get("in", "")),
            code=str(item.get("code", "")),
            message=str(item.get("message", "")),
        )
        for item in value
        if isinstance(item, dict)
    )


def error_from_response(response: httpx.Response) -> SluiceError:
    """The error for a failed answer: its class by status (and code), its details from the
    problem+json body; an answer without one (a proxy's page) still gets its status's class."""
    status = response.status_code
    request_id = response.headers.get("X-Request-ID")
    problem: dict[str, Any] = {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        problem = body
    code = problem.get("code")
    detail = problem.get("detail")
    if not isinstance(code, str) or not isinstance(detail, str):
        text = response.text[:200].strip()
        code = code if isinstance(code, str) else f"http_{status}"
        detail = detail if isinstance(detail, str) else (text or response.reason_phrase)
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else SluiceError
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "field_errors": _field_errors(problem.get("errors")),
        "request_id": request_id,
        "problem": problem,
    }
    if cls in (RateLimitedError, ServiceUnavailableError):
        kwargs["retry_after"] = retry_after_of(response)
    return cls(detail, **kwargs)
