"""Test doubles for webhooks: a fake sender, and a real receiver on 127.0.0.1 that verifies
every delivery with the `standardwebhooks` package (an independent verifier).

`WebhookReceiver` runs a small Starlette app under uvicorn in the test's event loop. What it
answers is up to the test: `answer` (a status code, default 200) or `stall` (hold each request
until released: a delivery in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.devnet.anvil import free_port
from sluice.domain.webhooks import Outcome


@dataclass
class Sent:
    """One request the fake sender was asked to make."""

    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body)


class FakeWebhookSender:
    """A `sluice.ports.WebhookSender` that records requests and answers as told.

    ``addresses``: what each host resolves to (default: a public address for every host).
    ``answers``: status codes (or `Outcome`s) to answer in turn; then ``default``.
    """

    PUBLIC = "93.184.216.34"

    def __init__(self, *, default: int = 200) -> None:
        self.addresses: dict[str, list[str]] = {}
        self.answers: list[int | Outcome] = []
        self.default = default
        self.sent: list[Sent] = []

    async def resolve(self, host: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            return self.addresses.get(host, [self.PUBLIC])

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, *, timeout_s: float
    ) -> Outcome:
        self.sent.append(Sent(url, dict(headers), body))
        answer = self.answers.pop(0) if self.answers else self.default
        return answer if isinstance(answer, Outcome) else Outcome(status_code=answer)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handling: the test process keeps its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Received:
    """One verified delivery: its ``webhook-id`` and payload."""

    webhook_id: str
    payload: dict[str, Any]
    signatures: int


@dataclass
class WebhookReceiver:
    """A real HTTP endpoint on 127.0.0.1 that verifies each delivery before answering.

    Set `secrets` to the endpoint's secret(s) once registered: a request that verifies with
    none of them is counted in `unverified` and answered 400.
    """

    secrets: list[str] = field(default_factory=list)
    answer: Callable[[], int] = lambda: 200
    received: list[Received] = field(default_factory=list)
    unverified: int = 0
    requests: int = 0
    port: int = field(default_factory=free_port)
    stall: asyncio.Event | None = None
    """While set to an unset event, each request waits for it (a delivery held in flight), and
    is then answered 503 without counting as received."""
    stalled: int = 0
    stalled_ids: set[str] = field(default_factory=set)
    """The ``webhook-id``s of the requests held in flight."""
    _server: _Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Where to register it."""
        return f"http://127.0.0.1:{self.port}/hooks"

    def ids(self) -> set[str]:
        """The distinct ``webhook-id``s verified and answered 2xx so far."""
        return {r.webhook_id for r in self.received}

    async def _hook(self, request: Request) -> Response:
        from standardwebhooks.webhooks import (  # noqa: PLC0415 - a test-only dependency
            Webhook,
            WebhookVerificationError,
        )

        self.requests += 1
        body = await request.body()
        headers = dict(request.headers.items())
        if self.stall is not None and not self.stall.is_set():
            # Held in flight; once released it is answered 503 and forgotten, as if its sender
            # had died: only a later attempt can deliver it.
            self.stalled += 1
            self.stalled_ids.add(headers.get("webhook-id", ""))
            await self.stall.wait()
            return Response(status_code=503)
        payload = None
        for secret in self.secrets:
            try:
                payload = Webhook(secret).verify(body, headers)
                break
            except WebhookVerificationError:
                continue
        if payload is None:
            self.unverified += 1
            return Response(status_code=400)
        status = self.answer()
        if 200 <= status < 300:
            signatures = len(headers.get("webhook-signature", "").split(" "))
            self.received.append(Received(headers["webhook-id"], payload, signatures))
        return Response(status_code=status)

    async def start(self) -> None:
        """Serve until `stop`."""
        app = Starlette(routes=[Route("/hooks", self._hook, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await self._task
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Stop serving (releasing any stalled request first)."""
        if self.stall is not None:
            self.stall.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
