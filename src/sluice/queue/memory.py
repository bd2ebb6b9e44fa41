"""An in-process queue for a single asyncio process: development, tests, and one-box deployments.

Everything lives in memory and is lost on restart. That is acceptable for the work itself: the
database is the truth and a message only points at it, so recovery on start re-creates the work
from the rows. Dead letters are lost too, though, and nothing re-creates those: an operator who
needs them kept across restarts needs a durable backend (Redis Streams or SQS).

Semantics match what the durable backends will offer:

- Messages become visible at their ready time, earliest first (FIFO among equal times).
- A received message is in flight for ``visibility_timeout_s``; unless it is acked, retried or
  dead-lettered by then it is delivered again with ``attempts`` incremented (at-least-once).
- Payloads are round-tripped through JSON at publish, so what cannot be serialized fails at
  publish, and every delivery hands out a fresh payload that shares nothing with the producer
  or with other deliveries.
- ``retry`` and ``dead_letter`` act on the message they are given, taking it back from wherever
  it is (in flight, or already handed back by an expired visibility timeout).

Ready and visibility times come from ``clock`` (``time.monotonic`` unless injected); waiting is
plain asyncio, woken by publishes and by timed waits until the next message is due.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sluice.ports import DeadLetter, Message

MAX_ERROR_CHARS = 500
"""``last_error`` is truncated to this many characters."""

_MIN_TIMED_WAIT_S = 0.001
"""Floor for a timed wait, so a clock that does not advance (a test's) cannot spin the loop."""


@dataclass(slots=True)
class _Record:
    """A message as the queue stores it: the payload kept as JSON text, as a broker would."""

    id: str
    job: str
    body: str
    attempts: int
    request_id: str | None
    enqueued_at: float
    last_error: str | None
    due: float = 0.0  # ready time while queued, visibility deadline while in flight
    seq: int = 0  # which heap entry is current; older entries for this id are stale

    def to_message(self) -> Message:
        return Message(
            id=self.id,
            job=self.job,
            payload=json.loads(self.body),
            attempts=self.attempts,
            request_id=self.request_id,
            enqueued_at=self.enqueued_at,
            last_error=self.last_error,
        )

    @classmethod
    def from_message(cls, message: Message) -> _Record:
        return cls(
            id=message.id,
            job=message.job,
            body=json.dumps(message.payload),
            attempts=message.attempts,
            request_id=message.request_id,
            enqueued_at=message.enqueued_at,
            last_error=message.last_error,
        )


@dataclass(frozen=True, slots=True)
class _Dead:
    record: _Record
    reason: str
    dead_at: datetime


class MemoryQueue:
    """The `Queue` port in memory, for one asyncio process."""

    def __init__(
        self,
        *,
        visibility_timeout_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if visibility_timeout_s <= 0:
            raise ValueError("visibility_timeout_s must be positive")
        self._visibility_timeout_s = visibility_timeout_s
        self._clock = clock
        self._seq = itertools.count()
        self._queued: dict[str, _Record] = {}
        self._in_flight: dict[str, _Record] = {}
        self._dead: dict[str, _Dead] = {}  # insertion order is dead-lettering order
        self._ready_heap: list[tuple[float, int, str]] = []
        self._flight_heap: list[tuple[float, int, str]] = []
        self._wakeup = asyncio.Event()
        self._closed = False

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
        if self._closed:
            raise RuntimeError("queue closed")
        body = json.dumps(dict(payload))  # TypeError/ValueError here, as on a real broker
        record = _Record(
            id=uuid.uuid4().hex,
            job=job,
            body=body,
            attempts=0,
            request_id=request_id,
            enqueued_at=time.time(),
            last_error=None,
        )
        self._schedule(record, self._clock() + max(delay_s, 0.0))

    async def receive(self, *, max_messages: int, wait_s: float) -> list[Message]:
        """Take up to ``max_messages`` ready messages, waiting up to ``wait_s`` for the first."""
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(wait_s, 0.0)
        while not self._closed:
            now = self._clock()
            self._reclaim_expired(now)
            batch = self._take_ready(now, max_messages)
            if batch:
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            timeout = remaining
            next_due = self._next_due()
            if next_due is not None:
                timeout = min(timeout, max(next_due - now, _MIN_TIMED_WAIT_S))
            wakeup = self._wakeup
            try:
                async with asyncio.timeout(timeout):
                    await wakeup.wait()
            except TimeoutError:
                pass  # a message may be due now, or the wait is over: the loop decides
        return []

    async def ack(self, message: Message) -> None:
        """Forget an in-flight message; an unknown id is ignored."""
        self._in_flight.pop(message.id, None)

    async def retry(self, message: Message, *, delay_s: float, error: str) -> None:
        """Deliver the message again after ``delay_s``, counting an attempt; keeps the error."""
        record = self._take_back(message)
        record.attempts += 1
        record.last_error = error[:MAX_ERROR_CHARS]
        self._schedule(record, self._clock() + max(delay_s, 0.0))

    async def dead_letter(self, message: Message, *, reason: str) -> None:
        """Move the message to the dead-letter queue."""
        record = self._take_back(message)
        self._dead.pop(record.id, None)  # dead again: it moves to the end
        self._dead[record.id] = _Dead(record=record, reason=reason, dead_at=datetime.now(UTC))

    async def dead_letters(self) -> list[DeadLetter]:
        """What is in the dead-letter queue, oldest first."""
        return [
            DeadLetter(message=dead.record.to_message(), reason=dead.reason, dead_at=dead.dead_at)
            for dead in self._dead.values()
        ]

    async def requeue(self, message_id: str) -> bool:
        """Move a dead letter back, ready now with attempts reset; False if there is none."""
        dead = self._dead.pop(message_id, None)
        if dead is None:
            return False
        dead.record.attempts = 0
        self._schedule(dead.record, self._clock())
        return True

    async def ping(self) -> None:
        """Always reachable: it is in this process."""

    async def close(self) -> None:
        """Hand in-flight messages back, wake every receiver, and refuse further publishes."""
        if self._closed:
            return
        self._closed = True
        now = self._clock()
        for record in list(self._in_flight.values()):
            del self._in_flight[record.id]
            self._schedule(record, now)  # _schedule also wakes the receivers
        self._wake()

    # ── Beyond the port ───────────────────────────────────────────────────────────────────────

    def stats(self) -> dict[str, int]:
        """Counts of ready, delayed, in-flight and dead messages (for /ready and metrics)."""
        now = self._clock()
        self._reclaim_expired(now)
        ready = sum(1 for record in self._queued.values() if record.due <= now)
        return {
            "ready": ready,
            "delayed": len(self._queued) - ready,
            "in_flight": len(self._in_flight),
            "dead": len(self._dead),
        }

    # ── Internals ─────────────────────────────────────────────────────────────────────────────

    def _wake(self) -> None:
        """Wake every waiting receiver; later waiters wait on a fresh event."""
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def _schedule(self, record: _Record, ready_at: float) -> None:
        record.due = ready_at
        record.seq = next(self._seq)
        self._queued[record.id] = record
        heapq.heappush(self._ready_heap, (ready_at, record.seq, record.id))
        self._wake()

    def _take_back(self, message: Message) -> _Record:
        """The stored record of a message, removed from wherever it is; rebuilt if unknown."""
        record = self._in_flight.pop(message.id, None) or self._queued.pop(message.id, None)
        return record if record is not None else _Record.from_message(message)

    def _reclaim_expired(self, now: float) -> None:
        """Hand back in-flight messages whose visibility timeout has passed."""
        heap = self._flight_heap
        while heap and heap[0][0] <= now:
            deadline, seq, message_id = heapq.heappop(heap)
            record = self._in_flight.get(message_id)
            if record is None or record.seq != seq:
                continue  # acked, retried or dead-lettered meanwhile
            del self._in_flight[message_id]
            record.attempts += 1
            self._schedule(record, deadline)

    def _take_ready(self, now: float, max_messages: int) -> list[Message]:
        batch: list[Message] = []
        heap = self._ready_heap
        while heap and len(batch) < max_messages and heap[0][0] <= now:
            _, seq, message_id = heapq.heappop(heap)
            record = self._queued.get(message_id)
            if record is None or record.seq != seq:
                continue  # stale entry: taken back or rescheduled since
            del self._queued[message_id]
            record.due = now + self._visibility_timeout_s
            record.seq = next(self._seq)
            self._in_flight[message_id] = record
            heapq.heappush(self._flight_heap, (record.due, record.seq, message_id))
            batch.append(record.to_message())
        return batch

    def _next_due(self) -> float | None:
        """When the next queued message becomes ready or visibility timeout ends, if any."""
        due: float | None = None
        for heap, live in ((self._ready_heap, self._queued), (self._flight_heap, self._in_flight)):
            while heap:
                at, seq, message_id = heap[0]
                record = live.get(message_id)
                if record is not None and record.seq == seq:
                    due = at if due is None else min(due, at)
                    break
                heapq.heappop(heap)  # drop a stale entry
        return due
