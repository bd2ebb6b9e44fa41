"""ASGI middleware: request ids, and guards on request bodies (size and media type).

Written as plain ASGI rather than Starlette's BaseHTTPMiddleware: it runs on every request, and
plain ASGI adds no extra task or body buffering per request.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice.api.problems import problem

log = structlog.get_logger("sluice.api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class BodyTooLargeError(Exception):
    """The body grew past the limit while being read."""


#: Sent with every answer: nothing here is for a browser to render, sniff, frame or cache.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
#: A policy that allows nothing; `/docs` sends its own (`sluice.api.docs`).
CONTENT_SECURITY_POLICY = (
    b"content-security-policy",
    b"default-src 'none'; frame-ancestors 'none'",
)
#: Sent when Sluice itself serves TLS.
STRICT_TRANSPORT_SECURITY = (b"strict-transport-security", b"max-age=31536000")


_ENCODED_SLASH = b"%2f"


class RequestContext:
    """Gives every request an id (echoed from ``X-Request-ID`` or made up), binds it to the
    log context, returns it as ``X-Request-ID`` with the security headers, and logs one line per
    request."""

    def __init__(self, app: ASGIApp, *, tls: bool = False) -> None:
        self.app = app
        self._tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = _header(scope, b"x-request-id")
        request_id = supplied if supplied and _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        extra = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
        if scope["path"] != "/docs":
            extra.append(CONTENT_SECURITY_POLICY)
        if self._tls:
            extra.append(STRICT_TRANSPORT_SECURITY)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.extend(extra)
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                if _ENCODED_SLASH in scope.get("raw_path", b"").lower():
                    # The server routes on the decoded path, where `%2F` would split one
                    # segment in two (`/v1/withdrawals/a%2Fevents` reaching a's events); no id
                    # holds a `/`, so such a path names nothing.
                    response = problem("not_found", "a path segment may not hold an encoded /")
                    await response(scope, receive, send_with_id)
                    return
                await self.app(scope, receive, send_with_id)
            finally:
                log.info(
                    "http request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )


class BodyGuard:
    """Refuses bodies that are too large (413) or not JSON (415) before any route runs.

    A body without a Content-Length (chunked) is read up front, at most ``max_bytes`` of it.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _too_large(self.max_bytes, scope, receive, send)
            return
        if length is None:
            # A chunked body has no declared size: read it here, up to the limit, and replay it.
            # Raising from inside the route's body read would not work: FastAPI turns any error
            # there into a 400.
            buffered = await _read_body(receive, self.max_bytes)
            if buffered is None:
                await _too_large(self.max_bytes, scope, receive, send)
                return
            receive = _replay(buffered, receive)
            length = str(sum(len(m.get("body", b"")) for m in buffered))
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        has_body = int(length) > 0
        if has_body and content_type != "application/json" and not content_type.endswith("+json"):
            response = problem(
                "unsupported_media_type", "the request body must be application/json"
            )
            await response(scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await _too_large(self.max_bytes, scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> list[Message] | None:
    """The request's messages up to the end of its body; None once it exceeds ``limit``."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":  # the client went away
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out ``messages`` first, then defers to ``receive``."""
    pending = list(messages)

    async def replaying_receive() -> Message:
        return pending.pop(0) if pending else await receive()

    return replaying_receive


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem("payload_too_large", f"the request body is larger than {limit} bytes")
    await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def request_id_of(state: Any) -> str | None:
    """The request id the middleware stored on a request's state."""
    value = getattr(state, "request_id", None)
    return value if isinstance(value, str) else None
