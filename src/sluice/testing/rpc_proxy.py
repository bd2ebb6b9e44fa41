"""`RpcFaultProxy`: a JSON-RPC HTTP proxy in front of a node that injects faults on demand.

For fault-injection tests: the engine is pointed at ``proxy.url`` instead of the node's URL, and
the test decides, call by call, what goes wrong::

    async with RpcFaultProxy(anvil.rpc_url) as proxy:
        proxy.drop_response("eth_sendRawTransaction")  # the node gets the tx, the client no answer
        proxy.timeout("eth_getTransactionReceipt", seconds=5)
        proxy.error("eth_blockNumber", code=-32005, message="rate limited", count=3)
        proxy.error("*", http_status=502, probability=0.2)  # seeded: the same run, the same faults
        proxy.lag(3)  # the node looks 3 blocks behind
        proxy.fail_all()
        proxy.heal()

The proxy is an aiohttp server on 127.0.0.1 (a free port) in the test's own event loop; it
forwards each POST body to the upstream node over one kept-alive `aiohttp.ClientSession`.

Faults are `FaultRule`\\ s matched by JSON-RPC method (or ``"*"``), first added first, each with a
remaining ``count`` and/or a ``probability`` drawn from a seeded `random.Random`. When neither
is given a rule fires once. A rule that has used up its count stops matching (it stays in
`rules` with ``remaining == 0``, for inspection). Kinds:

``drop``
    Forward the call, wait for the node's answer, then close the connection without answering
    (the client sees a server disconnect). A sent transaction is in the node's pool regardless.
``timeout``
    Delay the answer by ``seconds`` (``None``: hold it until `heal` or the proxy stops). With
    ``forward=True`` (the default) the node gets the call at once and the client gets its answer
    late, if it is still waiting; with ``forward=False`` the node never sees the call and the
    connection is closed after the delay. `heal` and `stop` release held requests at once,
    closing their connections without an answer.
``error``
    Answer without forwarding: an HTTP status (``http_status``, with a short text body) or a
    JSON-RPC error object (``code``, ``message``; HTTP 200).

`lag` makes the node look ``blocks`` behind: ``eth_blockNumber`` answers head-N;
``eth_getBlockByNumber("latest")``, and ``"latest"`` given to the usual state methods
(``eth_getBalance``, ``eth_getTransactionCount``, ``eth_getCode``, ``eth_getStorageAt``,
``eth_call``), are rewritten to block head-N; a block asked for by a number above head-N is
answered ``null``, as is a receipt from such a block. The node's head is read with an extra
``eth_blockNumber`` call per rewritten call (not counted in `calls`).

`fail_all` answers every request with an HTTP error (503 unless told) until `heal`; `heal` also
clears every rule and the lag.

Batches (a JSON list of calls) are supported: each call is counted and lag-rewritten; the first
rule matching any call of the batch applies. A JSON-RPC ``error`` rule replaces only that call's
answer (the rest are forwarded); every other kind (drop, timeout, HTTP error) applies to the
whole HTTP request, since it has one connection and one status.

Counters: `calls` (calls received, per method; a batch counts each call), `forwarded` (calls sent
upstream, per method), `injected` (faults per kind, ``"drop"``, ``"timeout"``, ``"error"``,
``"fail_all"``, ``"lag"``) and `injected_by_method` (per ``(kind, method)``). `reset_counters`
zeroes them.

Everything runs in one event loop and rule state changes without awaiting in between, so tests
may add and remove rules while calls are in flight; a lock also makes the rule methods callable
from another thread (all but `heal`, which must run in the proxy's event loop). The upstream URL
can hold an API key: it is never logged, and ``repr`` shows only ``scheme://host:port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

__all__ = ["ANY_METHOD", "FaultKind", "FaultRule", "RpcFaultProxy"]

#: Matches every JSON-RPC method.
ANY_METHOD: Final = "*"

FaultKind = Literal["drop", "timeout", "error"]

_HOST: Final = "127.0.0.1"
_LOG = logging.getLogger(__name__)

# The position of the block parameter of the state methods `lag` rewrites.
_BLOCK_PARAM: Final = {
    "eth_getBalance": 1,
    "eth_getTransactionCount": 1,
    "eth_getCode": 1,
    "eth_getStorageAt": 2,
    "eth_call": 1,
}
_NOT_JSON_RPC: Final = "<not json-rpc>"


@dataclass(slots=True)
class FaultRule:
    """One fault: what to do to calls of ``method`` (or ``"*"``), how often.

    ``remaining`` None means no limit (then ``probability`` alone decides); ``injected`` counts
    the times it fired. Change nothing but ``remaining`` while the proxy runs.
    """

    kind: FaultKind
    method: str
    remaining: int | None
    probability: float | None
    seconds: float | None = None
    forward: bool = True
    http_status: int | None = None
    code: int = -32000
    message: str = "injected fault"
    injected: int = 0

    @property
    def active(self) -> bool:
        """Whether the rule can still fire."""
        return self.remaining is None or self.remaining > 0

    def matches(self, method: str) -> bool:
        """Whether the rule applies to calls of ``method``."""
        return self.active and self.method in (ANY_METHOD, method)


@dataclass(slots=True)
class _Call:
    """One JSON-RPC call of a request, and what the proxy decided for it."""

    body: dict[str, Any] | None  # None: not a JSON-RPC call object
    method: str
    answer: dict[str, Any] | None = None  # set: answered here, not forwarded
    max_block: int | None = None  # lag: answer null for a block or receipt above this
    lag_head: bool = False  # lag: rewrite an eth_blockNumber answer


@dataclass(slots=True)
class _Decision:
    rule: FaultRule | None = None
    fail_status: int | None = None
    calls: list[_Call] = field(default_factory=list)


class _DropConnectionError(Exception):
    """Close the client's connection without an answer."""


class RpcFaultProxy:
    """A fault-injecting JSON-RPC proxy on 127.0.0.1 in front of ``upstream_url``.

    Use as ``async with RpcFaultProxy(url) as proxy`` (or `start`/`stop`); ``proxy.url`` is the
    address to give the client under test. ``seed`` seeds the random draws of probabilistic
    rules. ``upstream_timeout_s`` bounds each forwarded request.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        seed: int = 0,
        port: int = 0,
        upstream_timeout_s: float = 30.0,
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("the upstream must be an http:// or https:// URL")
        self._upstream_url = upstream_url
        self._redacted = f"{parts.scheme}://{parts.hostname}" + (
            f":{parts.port}" if parts.port is not None else ""
        )
        self._port = port
        self._upstream_timeout_s = upstream_timeout_s
        self._random = random.Random(seed)  # noqa: S311 (fault injection, not cryptography)
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._lag = 0
        self._fail_status: int | None = None
        self._release = asyncio.Event()  # set by heal/stop: held requests give up
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._bound_port: int | None = None
        #: Calls received, per JSON-RPC method (each call of a batch counts).
        self.calls: Counter[str] = Counter()
        #: Calls sent upstream, per JSON-RPC method.
        self.forwarded: Counter[str] = Counter()
        #: Faults injected, per kind (``drop``, ``timeout``, ``error``, ``fail_all``, ``lag``).
        self.injected: Counter[str] = Counter()
        #: Faults injected, per ``(kind, method)``.
        self.injected_by_method: Counter[tuple[str, str]] = Counter()

    # ── lifecycle ─────────────────────────────────────────────────────────────────────────────

    @property
    def url(self) -> str:
        """The proxy's URL, to use instead of the upstream's."""
        if self._bound_port is None:
            raise RuntimeError("the proxy is not started")
        return f"http://{_HOST}:{self._bound_port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1 and open the upstream session."""
        if self._runner is not None:
            raise RuntimeError("the proxy is already started")
        self._release = asyncio.Event()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._upstream_timeout_s)
        )
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/", self._handle)
        app.router.add_post("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        try:
            await runner.setup()
            site = web.TCPSite(runner, _HOST, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._session.close()
            self._session = None
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._bound_port = int(address[1])

    async def stop(self) -> None:
        """Release held requests, stop listening and close the upstream session."""
        self._release.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        self._bound_port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        where = f"{self.url} -> " if self._bound_port is not None else "stopped, "
        return f"<RpcFaultProxy {where}{self._redacted}>"

    # ── faults ────────────────────────────────────────────────────────────────────────────────

    def drop_response(
        self,
        method: str = ANY_METHOD,
        *,
        count: int | None = None,
        probability: float | None = None,
    ) -> FaultRule:
        """Forward matching calls, then close the connection without answering them."""
        return self._add(FaultRule("drop", method, *_limits(count, probability)))

    def timeout(
        self,
        method: str = ANY_METHOD,
        seconds: float | None = None,
        *,
        forward: bool = True,
        count: int | None = None,
        probability: float | None = None,
    ) -> FaultRule:
        """Answer matching calls ``seconds`` late (None: hold them until `heal` or `stop`).

        ``forward`` True sends the call upstream at once and answers late; False never sends it
        and closes the connection after the delay.
        """
        if seconds is not None and seconds < 0:
            raise ValueError("seconds must not be negative")
        remaining, chance = _limits(count, probability)
        return self._add(
            FaultRule("timeout", method, remaining, chance, seconds=seconds, forward=forward)
        )

    def error(
        self,
        method: str = ANY_METHOD,
        *,
        http_status: int | None = None,
        code: int = -32000,
        message: str = "injected fault",
        count: int | None = None,
        probability: float | None = None,
    ) -> FaultRule:
        """Answer matching calls with an error, without forwarding them.

        ``http_status`` given: that HTTP status with a text body. Otherwise a JSON-RPC error
        object with ``code`` and ``message`` (HTTP 200).
        """
        if http_status is not None and not 400 <= http_status <= 599:
            raise ValueError("http_status must be an HTTP error status (400-599)")
        remaining, chance = _limits(count, probability)
        return self._add(
            FaultRule(
                "error",
                method,
                remaining,
                chance,
                http_status=http_status,
                code=code,
                message=message,
            )
        )

    def lag(self, blocks: int) -> None:
        """Make the node look ``blocks`` behind its real head (0: not at all)."""
        if blocks < 0:
            raise ValueError("blocks must not be negative")
        with self._lock:
            self._lag = blocks

    def fail_all(self, http_status: int = 503) -> None:
        """Answer every request with ``http_status`` until `heal`."""
        if not 400 <= http_status <= 599:
            raise ValueError("http_status must be an HTTP error status (400-599)")
        with self._lock:
            self._fail_status = http_status

    def heal(self) -> None:
        """Remove every rule, the lag and `fail_all`; release held requests (unanswered)."""
        with self._lock:
            self._rules.clear()
            self._lag = 0
            self._fail_status = None
        self._release.set()
        self._release = asyncio.Event()

    def remove(self, rule: FaultRule) -> None:
        """Remove one rule (no error if it is already gone)."""
        with self._lock, contextlib.suppress(ValueError):
            self._rules.remove(rule)

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        """The rules, in matching order (spent ones included)."""
        with self._lock:
            return tuple(self._rules)

    def reset_counters(self) -> None:
        """Zero `calls`, `forwarded`, `injected` and `injected_by_method`."""
        with self._lock:
            self.calls.clear()
            self.forwarded.clear()
            self.injected.clear()
            self.injected_by_method.clear()

    def _add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    # ── request handling ──────────────────────────────────────────────────────────────────────

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            payload: object = json.loads(body)
        except ValueError:
            payload = None
        batch = isinstance(payload, list)
        items: list[object] = list(payload) if isinstance(payload, list) else [payload]
        decision = self._decide(items)
        try:
            return await self._respond(request, body, batch, decision)
        except _DropConnectionError:
            _drop(request)
            # The connection is gone: this response is never written.
            return web.Response(status=499)

    def _decide(self, items: list[object]) -> _Decision:
        """Count the calls and choose the fault (all without awaiting: atomic in the loop)."""
        decision = _Decision()
        with self._lock:
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("method"), str):
                    call = _Call(body=item, method=item["method"])
                else:
                    call = _Call(body=None, method=_NOT_JSON_RPC)
                self.calls[call.method] += 1
                decision.calls.append(call)
            if self._fail_status is not None:
                decision.fail_status = self._fail_status
                self._count("fail_all", decision.calls[0].method)
                return decision
            for call in decision.calls:
                rule = self._match(call.method)
                if rule is None:
                    continue
                self._count(rule.kind, call.method)
                if rule.kind == "error" and rule.http_status is None:
                    call.answer = _rpc_error(call.body, rule.code, rule.message)
                    continue
                decision.rule = rule
                break
        return decision

    def _match(self, method: str) -> FaultRule | None:
        for rule in self._rules:
            if not rule.matches(method):
                continue
            if rule.probability is not None and self._random.random() >= rule.probability:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
            rule.injected += 1
            return rule
        return None

    def _count(self, kind: str, method: str) -> None:
        self.injected[kind] += 1
        self.injected_by_method[(kind, method)] += 1
        _LOG.debug("injected %s on %s", kind, method)

    async def _respond(
        self, request: web.Request, body: bytes, batch: bool, decision: _Decision
    ) -> web.StreamResponse:
        if decision.fail_status is not None:
            return _http_error(decision.fail_status)
        rule = decision.rule
        if rule is not None and rule.kind == "error" and rule.http_status is not None:
            return _http_error(rule.http_status)
        if rule is not None and rule.kind == "timeout" and not rule.forward:
            await self._hold(rule.seconds)
            raise _DropConnectionError
        response = await self._forward(body, batch, decision.calls)
        if rule is not None and rule.kind == "drop":
            raise _DropConnectionError
        if rule is not None and rule.kind == "timeout" and not await self._hold(rule.seconds):
            raise _DropConnectionError  # released by heal/stop: no answer
        return response

    async def _hold(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (None: forever); False if `heal` or `stop` cut it short."""
        release = self._release
        try:
            await asyncio.wait_for(release.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    async def _forward(self, body: bytes, batch: bool, calls: list[_Call]) -> web.Response:
        """Send the calls upstream (rewritten for lag, minus those answered here)."""
        with self._lock:
            lag = self._lag
        if lag:
            await self._apply_lag(lag, calls)
        to_send = [call for call in calls if call.answer is None]
        rewritten = lag > 0 or len(to_send) != len(calls)
        if not to_send:
            answers: list[object] = [call.answer for call in calls]
            return _json(answers if batch else answers[0])
        if not rewritten:
            status, upstream_body = await self._post(body, [call.method for call in calls])
            return web.Response(status=status, body=upstream_body, content_type="application/json")
        sent: object = [c.body for c in to_send] if batch else to_send[0].body
        status, upstream_body = await self._post(
            json.dumps(sent).encode(), [call.method for call in to_send]
        )
        try:
            reply: object = json.loads(upstream_body)
        except ValueError:
            return web.Response(status=status, body=upstream_body, content_type="application/json")
        replies = reply if isinstance(reply, list) else [reply]
        if status != 200 or len(replies) != len(to_send):
            return web.Response(status=status, body=upstream_body, content_type="application/json")
        for call, answer in zip(to_send, replies, strict=True):
            call.answer = _lagged(call, answer) if isinstance(answer, dict) else None
        answers = [call.answer for call in calls]
        return _json(answers if batch else answers[0])

    async def _post(self, body: bytes, methods: list[str]) -> tuple[int, bytes]:
        session = self._session
        if session is None:
            raise _DropConnectionError
        with self._lock:
            for method in methods:
                self.forwarded[method] += 1
        try:
            async with session.post(
                self._upstream_url, data=body, headers={"Content-Type": "application/json"}
            ) as upstream:
                return upstream.status, await upstream.read()
        except (aiohttp.ClientError, TimeoutError, OSError):
            # The upstream URL stays out of the logs: it may carry an API key.
            _LOG.debug("the upstream did not answer (%s)", ", ".join(methods))
            return 502, b"upstream unavailable"

    async def _head(self) -> int | None:
        status, body = await self._post(
            json.dumps(
                {"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []}
            ).encode(),
            [],
        )
        try:
            answer = json.loads(body)
            return int(answer["result"], 16) if status == 200 else None
        except (ValueError, KeyError, TypeError):
            return None

    async def _apply_lag(self, lag: int, calls: list[_Call]) -> None:
        """Rewrite the calls that reveal the head so that the node looks ``lag`` behind."""
        affected = [call for call in calls if call.answer is None and _lag_sensitive(call)]
        if not affected:
            return
        head = await self._head()
        if head is None:
            return
        lagged = max(0, head - lag)
        for call in affected:
            if call.body is None:  # _lag_sensitive excludes these; for the type checker
                continue
            params = call.body.get("params")
            params = list(params) if isinstance(params, list) else []
            if call.method == "eth_blockNumber":
                call.lag_head = True
                call.max_block = lagged
            elif call.method == "eth_getBlockByNumber" and params:
                number = _block_number(params[0])
                if params[0] in ("latest", "pending") or params[0] is None:
                    params[0] = hex(lagged)
                elif number is not None and number > lagged:
                    call.answer = {"jsonrpc": "2.0", "id": call.body.get("id"), "result": None}
                call.max_block = lagged
            elif call.method == "eth_getTransactionReceipt":
                call.max_block = lagged
            else:
                position = _BLOCK_PARAM[call.method]
                if len(params) <= position or params[position] == "latest":
                    params = params + [None] * (position + 1 - len(params))
                    params[position] = hex(lagged)
            call.body = {**call.body, "params": params}
            with self._lock:
                self._count("lag", call.method)


def _limits(count: int | None, probability: float | None) -> tuple[int | None, float | None]:
    """A rule's count and probability: once, unless told otherwise."""
    if count is not None and count < 1:
        raise ValueError("count must be at least 1")
    if probability is not None and not 0.0 <= probability <= 1.0:
        raise ValueError("probability must be between 0 and 1")
    if count is None and probability is None:
        count = 1
    return count, probability


def _lag_sensitive(call: _Call) -> bool:
    return call.body is not None and (
        call.method
        in {"eth_blockNumber", "eth_getBlockByNumber", "eth_getTransactionReceipt", *_BLOCK_PARAM}
    )


def _block_number(tag: object) -> int | None:
    if isinstance(tag, str) and tag.startswith("0x"):
        try:
            return int(tag, 16)
        except ValueError:
            return None
    return None


def _lagged(call: _Call, answer: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an upstream answer to match the lagged head."""
    if call.max_block is None:
        return answer
    result = answer.get("result")
    if call.lag_head and isinstance(result, str):
        return {**answer, "result": hex(min(int(result, 16), call.max_block))}
    if isinstance(result, dict):
        number = _block_number(result.get("blockNumber", result.get("number")))
        if number is not None and number > call.max_block:
            return {**answer, "result": None}
    return answer


def _rpc_error(body: dict[str, Any] | None, code: int, message: str) -> dict[str, Any]:
    request_id = body.get("id") if body is not None else None
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _json(payload: object) -> web.Response:
    return web.Response(status=200, text=json.dumps(payload), content_type="application/json")


def _http_error(status: int) -> web.Response:
    return web.Response(status=status, text=f"injected HTTP {status}")


def _drop(request: web.Request) -> None:
    """Close the request's connection at once, unanswered."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    with contextlib.suppress(AttributeError):
        request.protocol.force_close()
