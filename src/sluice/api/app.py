"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sluice import __version__
from sluice.api import (
    admin,
    approvals,
    docs,
    health,
    ledger,
    networks,
    openapi,
    operators,
    pauses,
    policy,
    problems,
    webhooks,
    withdrawals,
)
from sluice.api.auth import KeyCache
from sluice.api.middleware import BodyGuard, RequestContext
from sluice.bootstrap import Container

DESCRIPTION = """
Sluice is a withdrawal engine for custodial crypto platforms: it checks each request, holds the
user's funds in its ledger, signs with a hot wallet key it never exposes, broadcasts, and follows
the transaction to finality.

- Every endpoint except `/health`, `/ready` and `/metrics` needs `Authorization: Bearer <api
  key>`; a key made with a public key must also sign each request (Ed25519: see "Signed
  requests" in docs/api.md).
- Amounts are decimal strings in token units (`"1.5"`), never JSON numbers.
- `POST /v1/withdrawals` is idempotent by the withdrawal's `id` (or `Idempotency-Key`).
- Errors are `application/problem+json` (RFC 9457) with a stable `code`; a 422 lists each field
  at fault in `errors`.
"""


def create_app(container: Container) -> FastAPI:
    """An app serving one container's services."""
    app = FastAPI(
        title="Sluice",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served by `sluice.api.docs` from Sluice's own copy of Swagger UI
        redoc_url=None,
        # `/v1/withdrawals/` is not a route: a 404 problem, not a redirect with an empty body.
        redirect_slashes=False,
    )
    app.state.container = container
    app.state.key_cache = KeyCache()
    problems.install(app)
    openapi.document(app)
    routers = (
        health,
        withdrawals,
        networks,
        ledger,
        admin,
        operators,
        approvals,
        policy,
        pauses,
        webhooks,
    )
    for module in routers:
        app.include_router(module.router)
    docs.install(app)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    settings = container.settings
    # Added innermost first. CORS is closed unless origins are configured: without the
    # middleware no answer carries Access-Control-Allow-Origin, so browsers on other origins
    # cannot read anything (and preflights get 405).
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=list(CORS_HEADERS),
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    # The request id must exist before the body guard can answer with it.
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext, tls=settings.tls_certfile is not None)
    return app


#: Request headers a browser on an allowed origin may send.
CORS_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-ID",
    "X-Sluice-Timestamp",
    "X-Sluice-Nonce",
    "X-Sluice-Signature",
)
