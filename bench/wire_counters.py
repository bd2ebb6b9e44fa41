"""Counting TCP proxies for `make bench`'s probes: what a request costs on the wire.

`PgCounter` sits between a client and PostgreSQL and counts the frontend messages by type
(``Q`` simple query, ``P``/``B``/``E``/``S`` of the extended protocol, ...) and the connections
opened. A client waits for the server once per ``Sync`` (``S``) or simple ``Query`` (``Q``), so
their sum is the number of round trips. It cannot read TLS: point the client at it without TLS
(the bench's PostgreSQL runs with ``ssl = off``).

`RpcCounter` sits between a client and an HTTP JSON-RPC node (Anvil) and counts the calls by
method, reading request bodies framed by ``Content-Length``.

Both run on an event loop of their own in a background thread (`ProxyThread`), so the bench's
main thread can keep driving processes synchronously. They are for short probes only: a Python
proxy adds latency and CPU, so no measured phase goes through one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from typing import Protocol

_HOST = "127.0.0.1"
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CHUNK = 65536


class _Counting(Protocol):
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection."""


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until EOF, then half-close."""
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class PgCounter:
    """Counts PostgreSQL frontend messages (by type) and connections, forwarding everything."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self.messages: Counter[str] = Counter()
        self.connections = 0

    def snapshot(self) -> tuple[dict[str, int], int]:
        """The message counts by type and the connections opened so far."""
        return dict(self.messages), self.connections

    def round_trips(self, messages: dict[str, int]) -> int:
        """Round trips in a set of counts: one per Sync and per simple Query."""
        return messages.get("S", 0) + messages.get("Q", 0)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        back = asyncio.create_task(_copy(up_reader, writer))
        try:
            await self._forward(reader, up_writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                up_writer.close()
            await back

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Untyped packets first: SSL/GSS requests (answered by one byte), then the StartupMessage.
        while True:
            header = await reader.readexactly(8)
            length = int.from_bytes(header[:4], "big")
            code = int.from_bytes(header[4:8], "big")
            rest = await reader.readexactly(length - 8)
            writer.write(header + rest)
            await writer.drain()
            if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
                break
        self.connections += 1
        while True:
            kind = await reader.readexactly(1)
            size = await reader.readexactly(4)
            body = await reader.readexactly(int.from_bytes(size, "big") - 4)
            self.messages[kind.decode("latin-1")] += 1
            writer.write(kind + size + body)
            await writer.drain()


class RpcCounter:
    """Counts JSON-RPC calls by method (HTTP/1.1, Content-Length bodies), forwarding everything."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self.calls: Counter[str] = Counter()
        self.connections = 0

    def snapshot(self) -> tuple[dict[str, int], int]:
        """Calls by method, and the connections opened, so far."""
        return dict(self.calls), self.connections

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        back = asyncio.create_task(_copy(up_reader, writer))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length) if length else b""
                self._count(body)
                up_writer.write(head + body)
                await up_writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                up_writer.close()
            await back

    def _count(self, body: bytes) -> None:
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            self.calls["<unparsed>"] += 1
            return
        for call in parsed if isinstance(parsed, list) else [parsed]:
            method = call.get("method") if isinstance(call, dict) else None
            self.calls[str(method)] += 1


class ProxyThread:
    """Runs a counting proxy on 127.0.0.1 (a free port) in a thread with its own event loop."""

    def __init__(self, counter: _Counting) -> None:
        self._counter = counter
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="bench-proxy", daemon=True)

    def start(self) -> int:
        """Start listening; the port."""
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError("the counting proxy did not start") from self._error
        return self.port

    def stop(self) -> None:
        """Stop listening and end the thread."""
        stop = self._stop
        if stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(stop.set)
            self._thread.join(10)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(); the thread just ends
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._counter.handle, _HOST, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        # Connections still open hold tasks in this loop: end them with it.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
