"""A durable queue over Redis Streams, shared by every process that points at the same Redis.

Keys, all under one namespace (``sluice`` unless configured)::

    {ns}:jobs        stream        messages ready or in flight; consumer group ``workers``
    {ns}:delayed     sorted set    messages not ready yet: score = ready time (Redis clock, ms)
    {ns}:dead        stream        dead letters, oldest first
    {ns}:dead:ids    hash          message id → its entry in {ns}:dead (for requeue)

The scripts touch several of these keys at once; on Redis Cluster, put a hash tag in the
namespace (``{sluice}``) so they share a slot. Needs Redis 6.2 or later (XAUTOCLAIM).

A stream entry holds one message as flat fields: ``id`` (the logical message id, stable across
retries), ``job``, ``payload`` (JSON text), ``attempts``, ``reclaims``, ``enqueued_at`` (epoch
seconds), and ``request_id`` / ``last_error`` when set. A member of the delayed set is the same
fields as a JSON array, so moving it to the stream is a decode and an XADD.

Semantics (the shared contract, `sluice.testing.queue_contract`, runs against this adapter):

- Entries are immutable, so every change is a fresh entry: ``retry`` and a reclaim XACK and XDEL
  the delivered entry and add the message again with its new ``attempts``. An entry is settled
  (acked, retried, dead-lettered) by XACK + XDEL, so the stream holds only live messages.
- Delivery is through XREADGROUP into a consumer group: each entry goes to one consumer.
- A delivered entry that nobody settles within ``visibility_timeout_s`` (its consumer died,
  hung or closed) is reclaimed by any receiver with XAUTOCLAIM and re-added with ``attempts``
  (and ``reclaims``) incremented, in one script: at-least-once, and a fresh entry rather than
  XPENDING's delivery counter, so ``attempts`` is in the entry and survives every path alike.
  After ``max_delivery_reclaims`` reclaims the message is dead-lettered instead: a job that kills
  its process must not crash-loop the fleet forever.
- ``retry`` and ``dead_letter`` of a delivery that was reclaimed meanwhile do nothing: the
  reclaimed copy owns the message now and will reach its own verdict. A message this instance
  does not know (never received here) is rebuilt from the `Message` given.
- Delayed messages are moved to the stream by a script at the start of each receive (at most
  every `POLL_S` per instance, or when the next one is due), so no background task is needed.
  Ready times are on the Redis server's clock, so the hosts' clocks need not agree.
- A blocked receive wakes at least every `POLL_S` to move due messages and reclaim stale ones.
- ``close`` does not hand in-flight messages back: they stay pending in the group, exactly as
  if the process had died, and are reclaimed by the others after the visibility timeout (the
  database is the truth; recovery re-creates work anyway). Messages read by a receive that
  ``close`` interrupted are handed back at once, since nobody saw them.

Connection and timeout errors surface as `TransientError` ("queue unavailable: …"), without the
URL, which may hold a password.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sluice import optional
from sluice.errors import TransientError
from sluice.ports import DeadLetter, Message
from sluice.queue import redis_scripts as scripts

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_ERROR_CHARS = 500
"""``last_error`` is truncated to this many characters (as in `sluice.queue.memory`)."""

POLL_S = 0.25
"""Longest a receive blocks before it moves due delayed messages and reclaims stale ones."""

_BATCH = 100
"""Delayed messages moved, and pending entries examined for reclaim, per script call."""

_MAX_RECLAIM_INTERVAL_S = 5.0
"""Stale entries are looked for every visibility timeout / 4, but at least this often."""

_DEAD_PAGE = 500
"""Dead letters read per XRANGE call."""

_STATE_FIELDS = ("reason", "dead_at_us")
"""Fields a dead letter has beyond its message's."""

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Delivery:
    """What this instance keeps about a message it handed out: its entry, and its fields."""

    entry_id: str
    fields: dict[str, str]


class _MalformedError(ValueError):
    """A stream entry that is not a message."""


def default_consumer_name() -> str:
    """A consumer name unique to this process: host, pid, and a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class RedisStreamsQueue:
    """The `Queue` port over Redis Streams with a consumer group, for many processes."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "sluice",
        group: str = "workers",
        consumer: str | None = None,
        visibility_timeout_s: float = 300.0,
        max_delivery_reclaims: int | None = 10,
        timeout_s: float = 5.0,
    ) -> None:
        """Connect lazily to the Redis at ``url`` (``redis://``, ``rediss://`` or ``unix://``).

        Args:
            url: Where Redis is; may hold credentials, so it never appears in an error.
            namespace: Prefix of every key.
            group: The consumer group; processes sharing it share the work.
            consumer: This process's name in the group (unique by default).
            visibility_timeout_s: How long a delivered message may stay unsettled before it is
                delivered again.
            max_delivery_reclaims: Dead-letter a message after this many reclaims rather than
                deliver it again; None never does.
            timeout_s: Connect and read timeout of each Redis command.
        """
        if visibility_timeout_s <= 0:
            raise ValueError("visibility_timeout_s must be positive")
        if max_delivery_reclaims is not None and max_delivery_reclaims < 0:
            raise ValueError("max_delivery_reclaims must not be negative")
        if not namespace or not group:
            raise ValueError("namespace and group must not be empty")
        if timeout_s <= POLL_S:
            raise ValueError(f"timeout_s must exceed {POLL_S}s, the longest blocking read")
        # The redis extra, imported only when this queue is configured (sluice.optional).
        with optional.importing("redis", needed_by="SLUICE_QUEUE_URL=redis://…"):
            from redis.asyncio import Redis  # noqa: PLC0415 - optional extra, see above
            from redis.asyncio.retry import Retry  # noqa: PLC0415 - same
            from redis.backoff import ExponentialWithJitterBackoff  # noqa: PLC0415 - same
            from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: PLC0415
            from redis.exceptions import ReadOnlyError, ResponseError  # noqa: PLC0415 - same
            from redis.exceptions import TimeoutError as RedisTimeoutError  # noqa: PLC0415

        self._response_error: type[Exception] = ResponseError
        # Errors that may pass on their own: Redis down, slow, loading, or failing over.
        self._unavailable: tuple[type[Exception], ...] = (
            RedisConnectionError,
            RedisTimeoutError,
            ReadOnlyError,
        )
        self._redis: Redis = Redis.from_url(
            url,
            protocol=2,  # the reply shapes below are RESP2's
            decode_responses=True,
            encoding_errors="replace",
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
        )
        self._jobs = f"{namespace}:jobs"
        self._delayed = f"{namespace}:delayed"
        self._dead = f"{namespace}:dead"
        self._dead_ids = f"{namespace}:dead:ids"
        self._group = group
        self._consumer = consumer or default_consumer_name()
        self._visibility_ms = max(1, round(visibility_timeout_s * 1000))
        self._reclaim_interval_s = min(visibility_timeout_s / 4, _MAX_RECLAIM_INTERVAL_S)
        self._max_reclaims = -1 if max_delivery_reclaims is None else max_delivery_reclaims
        self._maintain = self._redis.register_script(scripts.MAINTAIN)
        self._settle = self._redis.register_script(scripts.SETTLE)
        self._requeue = self._redis.register_script(scripts.REQUEUE)
        self._stats = self._redis.register_script(scripts.STATS)
        self._retire = self._redis.register_script(scripts.RETIRE)
        self._deliveries: dict[tuple[str, int], _Delivery] = {}
        self._group_ready = False
        self._received = False  # whether this consumer may exist in the group
        self._maintain_at = 0.0  # loop time of the next maintenance
        self._reclaim_at = 0.0  # loop time of the next reclaim
        self._cursor = "0-0"  # XAUTOCLAIM's, across calls
        self._receivers = 0
        self._receivers_gone = asyncio.Event()
        self._receivers_gone.set()
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> Self:
        """A queue from ``redis://[:password@]host:port/db?namespace=…&visibility_timeout_s=…``.

        Also understood in the query: ``group``, ``consumer``, ``max_delivery_reclaims`` (a count
        or ``none``) and ``timeout_s``; every other query argument goes to redis-py.
        """
        parts = urlsplit(url)
        ours: dict[str, str] = {}
        theirs: list[tuple[str, str]] = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _URL_OPTIONS:
                ours[key] = value
            else:
                theirs.append((key, value))
        options: dict[str, Any] = {}
        for key, value in ours.items():
            try:
                options[key] = _URL_OPTIONS[key](value)
            except ValueError:
                raise ValueError(f"queue URL option {key} is invalid: {value!r}") from None
        return cls(urlunsplit(parts._replace(query=urlencode(theirs))), **options)

    @property
    def consumer(self) -> str:
        """This instance's consumer name in the group."""
        return self._consumer

    # ── The port ──────────────────────────────────────────────────────────────────────────────

    async def publish(
        self,
        job: str,
        payload: Mapping[str, Any],
        *,
        delay_s: float = 0.0,
        request_id: str | None = None,
    ) -> None:
        """Send a message, visible after ``delay_s`` seconds; raises if it cannot be serialized."""
        self._check_open()
        fields = {
            "id": uuid.uuid4().hex,
            "job": job,
            "payload": json.dumps(dict(payload)),  # TypeError/ValueError here, as in memory
            "attempts": "0",
            "reclaims": "0",
            "enqueued_at": repr(time.time()),
        }
        if request_id is not None:
            fields["request_id"] = request_id
        await self._put("", fields, delay_s)

    async def receive(self, *, max_messages: int, wait_s: float) -> list[Message]:
        """Take up to ``max_messages`` ready messages, waiting up to ``wait_s`` for the first."""
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if self._closed:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(wait_s, 0.0)
        self._receivers += 1
        self._receivers_gone.clear()
        try:
            while not self._closed:
                await self._ensure_group()
                try:
                    await self._run_maintenance(loop)
                    remaining = deadline - loop.time()
                    block_s = min(remaining, max(self._maintain_at - loop.time(), 0.001))
                    entries = await self._read(max_messages, block_s if remaining > 0 else None)
                except self._response_error as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    self._group_ready = False  # the stream or group was deleted: create again
                    continue
                if self._closed:
                    await self._hand_back(entries)
                    return []
                messages = await self._deliver(entries)
                if messages or remaining <= 0:
                    return messages
            return []
        finally:
            self._receivers -= 1
            if not self._receivers:
                self._receivers_gone.set()

    async def ack(self, message: Message) -> None:
        """Settle a delivered message; an unknown or already settled one is ignored."""
        self._check_open()
        delivery = self._deliveries.pop((message.id, message.attempts), None)
        if delivery is not None:
            await self._call(self._script(self._settle, delivery.entry_id, "ack", ""))

    async def retry(self, message: Message, *, delay_s: float, error: str) -> None:
        """Deliver the message again after ``delay_s``, counting an attempt; keeps the error."""
        self._check_open()
        entry_id, fields = self._take_back(message)
        fields["attempts"] = str(int(fields.get("attempts", "0")) + 1)
        fields["last_error"] = error[:MAX_ERROR_CHARS]
        await self._put(entry_id, fields, delay_s)

    async def dead_letter(self, message: Message, *, reason: str) -> None:
        """Move the message to the dead-letter stream."""
        self._check_open()
        entry_id, fields = self._take_back(message)
        await self._call(self._script(self._settle, entry_id, "bury", reason, fields))

    async def dead_letters(self) -> list[DeadLetter]:
        """What is in the dead-letter stream, oldest first."""
        self._check_open()
        letters: list[DeadLetter] = []
        start = "-"
        while True:
            page = await self._call(self._redis.xrange(self._dead, start, "+", count=_DEAD_PAGE))
            entries = _stream_entries(page or [])
            letters.extend(_dead_letter(entry_id, fields) for entry_id, fields in entries)
            if len(entries) < _DEAD_PAGE:
                return letters
            start = f"({entries[-1][0]}"

    async def requeue(self, message_id: str) -> bool:
        """Move a dead letter back, ready now with attempts reset; False if there is none."""
        self._check_open()
        keys = [self._dead, self._dead_ids, self._jobs]
        return bool(await self._call(self._requeue(keys=keys, args=[message_id])))

    async def ping(self) -> None:
        """Raise `TransientError` if Redis cannot be reached."""
        self._check_open()
        await self._call(self._redis.ping())

    async def close(self) -> None:
        """Wake every receiver and release the connections; in-flight messages stay pending.

        They are reclaimed by another consumer after the visibility timeout, as after a crash.
        """
        if self._closed:
            return
        self._closed = True
        away: tuple[type[Exception], ...] = (TimeoutError, self._response_error, *self._unavailable)
        try:
            # Receivers notice within one blocking read (POLL_S); a hung one is not waited for.
            async with asyncio.timeout(POLL_S * 4):
                await self._receivers_gone.wait()
            if self._received:
                # A consumer holding nothing is forgotten, so the group does not collect names.
                await self._retire(keys=[self._jobs], args=[self._group, self._consumer])
        except away:
            pass  # best effort: closing must not fail because Redis is away
        finally:
            await self._redis.aclose()

    # ── Beyond the port ───────────────────────────────────────────────────────────────────────

    async def stats(self) -> dict[str, int]:
        """Counts of ready, delayed, in-flight and dead messages (for /ready and metrics).

        Delayed messages already due count as ready; an in-flight message past its visibility
        timeout counts as in flight until a receiver reclaims it.
        """
        self._check_open()
        reply = await self._call(
            self._stats(keys=[self._jobs, self._delayed, self._dead], args=[self._group])
        )
        length, in_flight, delayed, due, dead = (int(n) for n in reply)
        return {
            "ready": length - in_flight + due,
            "delayed": delayed - due,
            "in_flight": in_flight,
            "dead": dead,
        }

    # ── Internals ─────────────────────────────────────────────────────────────────────────────

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("queue closed")

    async def _call(self, awaitable: Awaitable[_T]) -> _T:
        """Await a Redis command, turning unavailability into `TransientError`."""
        with _unavailable_as_transient(self._unavailable):
            return await awaitable

    def _script(
        self,
        script: Callable[..., Awaitable[Any]],
        entry_id: str,
        action: str,
        argument: str,
        fields: Mapping[str, str] | None = None,
    ) -> Awaitable[Any]:
        args: list[str] = [self._group, entry_id, action, argument]
        for name, value in (fields or {}).items():
            args += [name, value]
        return script(keys=[self._jobs, self._delayed, self._dead, self._dead_ids], args=args)

    async def _put(self, entry_id: str, fields: Mapping[str, str], delay_s: float) -> None:
        delay_ms = max(0, round(delay_s * 1000))
        await self._call(self._script(self._settle, entry_id, "put", str(delay_ms), fields))
        if delay_ms:  # a receiver here looks again when this is due, not a poll later
            due_at = asyncio.get_running_loop().time() + delay_ms / 1000
            self._maintain_at = min(self._maintain_at, due_at)

    def _take_back(self, message: Message) -> tuple[str, dict[str, str]]:
        """The entry and stored fields of a delivered message; rebuilt if not delivered here."""
        delivery = self._deliveries.pop((message.id, message.attempts), None)
        if delivery is not None:
            return delivery.entry_id, dict(delivery.fields)
        fields = {
            "id": message.id,
            "job": message.job,
            "payload": json.dumps(message.payload),
            "attempts": str(message.attempts),
            "reclaims": "0",
            "enqueued_at": repr(message.enqueued_at),
        }
        if message.request_id is not None:
            fields["request_id"] = message.request_id
        if message.last_error is not None:
            fields["last_error"] = message.last_error
        return "", fields

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From id 0, so what was published before any worker started is delivered too.
            await self._call(self._redis.xgroup_create(self._jobs, self._group, "0", mkstream=True))
        except self._response_error as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _run_maintenance(self, loop: asyncio.AbstractEventLoop) -> None:
        """Move due delayed messages and, now and then, reclaim stale ones; once per POLL_S."""
        now = loop.time()
        if now < self._maintain_at:
            return  # another receiver of this instance did it moments ago
        self._maintain_at = now + POLL_S  # set before awaiting, so concurrent receivers skip
        min_idle_ms = -1
        if now >= self._reclaim_at:
            self._reclaim_at = now + self._reclaim_interval_s
            min_idle_ms = self._visibility_ms
        self._received = True
        wait_ms, cursor = await self._call(
            self._maintain(
                keys=[self._jobs, self._delayed, self._dead, self._dead_ids],
                args=[
                    self._group,
                    self._consumer,
                    _BATCH,
                    min_idle_ms,
                    self._cursor,
                    self._max_reclaims,
                ],
            )
        )
        self._cursor = str(cursor)
        if int(wait_ms) >= 0:
            self._maintain_at = min(self._maintain_at, loop.time() + int(wait_ms) / 1000)

    async def _read(self, count: int, block_s: float | None) -> list[tuple[str, dict[str, str]]]:
        """XREADGROUP new entries, blocking up to ``block_s`` (None: not at all)."""
        block_ms = None if block_s is None else max(1, round(block_s * 1000))  # 0 is forever
        self._received = True
        reply = await self._call(
            self._redis.xreadgroup(
                self._group, self._consumer, {self._jobs: ">"}, count=count, block=block_ms
            )
        )
        if not reply:
            return []
        streams = reply.values() if isinstance(reply, dict) else (s[1] for s in reply)
        return [entry for stream in streams for entry in _stream_entries(stream)]

    async def _deliver(self, entries: Sequence[tuple[str, dict[str, str]]]) -> list[Message]:
        """Messages of read entries, remembered for settling; unreadable ones are dead-lettered."""
        messages: list[Message] = []
        for entry_id, fields in entries:
            try:
                message = _message(fields)
            except _MalformedError as exc:
                buried = {"id": f"malformed-{entry_id}", **fields}
                await self._call(self._script(self._settle, entry_id, "bury", str(exc), buried))
                continue
            self._deliveries[(message.id, message.attempts)] = _Delivery(entry_id, fields)
            messages.append(message)
        return messages

    async def _hand_back(self, entries: Sequence[tuple[str, dict[str, str]]]) -> None:
        """Put entries read by an interrupted receive back as they were."""
        for entry_id, fields in entries:
            try:
                await self._call(self._script(self._settle, entry_id, "put", "0", fields))
            except TransientError:
                return  # they stay pending and are reclaimed after the visibility timeout


def _optional_count(value: str) -> int | None:
    return None if value.lower() in ("", "none") else int(value)


_URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "namespace": str,
    "group": str,
    "consumer": str,
    "visibility_timeout_s": float,
    "max_delivery_reclaims": _optional_count,
    "timeout_s": float,
}
"""Query arguments of a queue URL that configure the queue, with their parsers."""


@contextmanager
def _unavailable_as_transient(unavailable: tuple[type[Exception], ...]) -> Iterator[None]:
    try:
        yield
    except unavailable as exc:
        # The class only: redis-py's message names host and port, and the URL must not leak.
        raise TransientError(f"queue unavailable: {type(exc).__name__}") from exc


def _stream_entries(raw: object) -> list[tuple[str, dict[str, str]]]:
    """(entry id, fields) pairs of a stream reply; entries without fields are left out."""
    entries: list[tuple[str, dict[str, str]]] = []
    for item in raw if isinstance(raw, list) else []:
        entry_id, fields = item[0], item[1]
        if isinstance(fields, list):  # a flat [name, value, …] list
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        if entry_id is not None and isinstance(fields, dict):
            entries.append((str(entry_id), {str(k): str(v) for k, v in fields.items()}))
    return entries


def _message(fields: Mapping[str, str]) -> Message:
    try:
        payload = json.loads(fields["payload"])
        if not isinstance(payload, dict):
            raise _MalformedError("malformed message: payload is not an object")
        return Message(
            id=fields["id"],
            job=fields["job"],
            payload=payload,
            attempts=int(fields["attempts"]),
            request_id=fields.get("request_id"),
            enqueued_at=float(fields["enqueued_at"]),
            last_error=fields.get("last_error"),
        )
    except _MalformedError:
        raise
    except KeyError as exc:
        raise _MalformedError(f"malformed message: no {exc.args[0]} field") from None
    except ValueError as exc:
        raise _MalformedError(f"malformed message: {type(exc).__name__}") from None


def _dead_letter(entry_id: str, fields: Mapping[str, str]) -> DeadLetter:
    try:
        message = _message(fields)
    except _MalformedError:  # shown as it is, so an operator can see what it was
        raw = {k: v for k, v in fields.items() if k not in _STATE_FIELDS}
        message = Message(id=fields.get("id", entry_id), job=fields.get("job", ""), payload=raw)
    try:
        dead_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            microseconds=int(fields["dead_at_us"])
        )
    except (KeyError, ValueError):
        dead_at = datetime.fromtimestamp(int(entry_id.split("-", maxsplit=1)[0]) / 1000, UTC)
    return DeadLetter(message=message, reason=fields.get("reason", ""), dead_at=dead_at)
