"""Priority lanes: one `Queue` made of several, each job routed to a lane of its own.

A single first-in first-out queue lets a flood of new work stand in front of the work that
finishes what was started: under overload, thousands of ``withdrawal.validate`` jobs queue ahead
of every ``sign``, ``broadcast`` and ``confirm`` job. `LaneQueue` puts each job on the inner queue
of its lane and receives from the lanes in priority order, so a lower lane is served only when
every higher lane has nothing ready. Which job goes where is the pipeline's business
(`sluice.services.jobs.LANES`); this module only composes queues.

The inner queues are ordinary adapters (memory, Redis Streams, SQS), used through the port only:

- ``publish`` goes to the lane of the job; a job no lane names goes to the default lane (the
  last, lowest one, unless told otherwise).
- ``receive`` polls every lane without waiting, highest first, filling the batch; when all are
  empty it waits on the lowest lane for at most ``poll_s`` and polls again, until ``wait_s`` is
  over. A message arriving on a higher lane is thus picked up within about ``poll_s`` (rounded
  up to whole seconds on SQS), on the lowest at once. Inner receives are never cancelled: a
  cancelled blocking read on Redis or SQS would strand what it had taken until the visibility
  timeout.
- ``ack``, ``retry`` and ``dead_letter`` go to the lane the message was received from,
  remembered per delivery (message id and attempts) until it is settled. A message not received
  here is acked on every lane (acking an unknown message is harmless) and retried or
  dead-lettered on the lane of its job.
- ``dead_letters`` merges the lanes' dead letters, oldest first; ``requeue`` asks each lane in
  turn, and the message goes back to the lane it died in.
- ``ping`` and ``close`` reach every lane; ``stats`` adds the lanes' counts up.

Every lane's consumer takes every job, whichever lane it came from: a queue that holds messages
from before the split (or from an older process that does not split) is still drained.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

from sluice.ports import DeadLetter, Message, Queue

log = structlog.get_logger(__name__)

DEFAULT_POLL_S = 0.25
"""Longest a waiting receive blocks on the lowest lane before it looks at the higher ones."""

REDIS_DEFAULT_NAMESPACE = "sluice"
"""`RedisStreamsQueue`'s namespace when its URL names none."""


@dataclass(frozen=True, slots=True)
class Lane:
    """One lane: its name, its inner queue, and the jobs published to it."""

    name: str
    queue: Queue
    jobs: frozenset[str] = frozenset()


class LaneQueue:
    """The `Queue` port over prioritized lanes, each an inner `Queue` (highest priority first)."""

    def __init__(
        self,
        lanes: Sequence[Lane],
        *,
        default: str | None = None,
        poll_s: float = DEFAULT_POLL_S,
    ) -> None:
        """Compose ``lanes``, highest priority first.

        Args:
            lanes: At least one lane; names unique, and no job in two lanes.
            default: The lane of jobs no lane names (the last lane if None).
            poll_s: Longest a waiting receive blocks on the lowest lane before it polls the
                higher lanes again.
        """
        if not lanes:
            raise ValueError("a LaneQueue needs at least one lane")
        if not poll_s > 0:
            raise ValueError("poll_s must be positive")
        names = [lane.name for lane in lanes]
        if len(set(names)) != len(names):
            raise ValueError(f"lane names must be unique: {names}")
        route: dict[str, Lane] = {}
        for lane in lanes:
            for job in lane.jobs:
                if job in route:
                    raise ValueError(
                        f"job {job!r} is in lanes {route[job].name!r} and {lane.name!r}"
                    )
                route[job] = lane
        by_name = {lane.name: lane for lane in lanes}
        if default is not None and default not in by_name:
            raise ValueError(f"unknown default lane {default!r}")
        self._lanes = tuple(lanes)
        self._route = route
        self._default = by_name[default] if default is not None else self._lanes[-1]
        self._poll_s = poll_s
        self._origins: dict[tuple[str, int], Lane] = {}
        self._closed = False

    @property
    def lanes(self) -> tuple[Lane, ...]:
        """The lanes, highest priority first."""
        return self._lanes

    def lane_for(self, job: str) -> Lane:
        """The lane a job is published to."""
        return self._route.get(job, self._default)

    # ── The port ──────────────────────────────────────────────────────────────────────────────

    async def publish(
        self,
        job: str,
        payload: Mapping[str, Any],
        *,
        delay_s: float = 0.0,
        request_id: str | None = None,
    ) -> None:
        """Send a message on its job's lane, visible after ``delay_s`` seconds."""
        if self._closed:
            raise RuntimeError("queue closed")
        await self.lane_for(job).queue.publish(job, payload, delay_s=delay_s, request_id=request_id)

    async def receive(self, *, max_messages: int, wait_s: float) -> list[Message]:
        """Take up to ``max_messages``, highest lane first, waiting up to ``wait_s`` for the first.

        Lower lanes fill what the higher ones leave of ``max_messages``.
        """
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(wait_s, 0.0)
        *higher, lowest = self._lanes
        while not self._closed:
            batch: list[Message] = []
            for lane in higher:
                if not await self._take(lane, batch, max_messages, wait_s=0.0):
                    return batch  # a lane failed after others gave messages: hand those out
                if len(batch) == max_messages:
                    return batch
            remaining = deadline - loop.time()
            wait = 0.0 if batch or remaining <= 0 else min(remaining, self._poll_s)
            if not await self._take(lowest, batch, max_messages, wait_s=wait):
                return batch
            if batch or remaining <= 0:
                return batch
        return []

    async def ack(self, message: Message) -> None:
        """Settle the message on its lane; unknown here: on every lane (harmless where absent)."""
        lane = self._origins.pop(_key(message), None)
        for target in (lane,) if lane is not None else self._lanes:
            await target.queue.ack(message)

    async def retry(self, message: Message, *, delay_s: float, error: str) -> None:
        """Deliver the message again after ``delay_s`` on the lane it came from."""
        await self._settling_lane(message).queue.retry(message, delay_s=delay_s, error=error)

    async def dead_letter(self, message: Message, *, reason: str) -> None:
        """Move the message to the dead-letter queue of the lane it came from."""
        await self._settling_lane(message).queue.dead_letter(message, reason=reason)

    async def dead_letters(self) -> list[DeadLetter]:
        """Every lane's dead letters, oldest first."""
        per_lane = [await lane.queue.dead_letters() for lane in self._lanes]
        return list(heapq.merge(*per_lane, key=lambda dead: dead.dead_at))

    async def requeue(self, message_id: str) -> bool:
        """Move a dead letter back to its lane with fresh attempts; False if no lane has it."""
        for lane in self._lanes:
            if await lane.queue.requeue(message_id):
                return True
        return False

    async def ping(self) -> None:
        """Raise if any lane cannot be reached."""
        await asyncio.gather(*(lane.queue.ping() for lane in self._lanes))

    async def close(self) -> None:
        """Close every lane (at once: each may wait for its receivers); closing twice is harmless.

        Raises the first lane's error, if any, after trying all of them.
        """
        self._closed = True
        self._origins.clear()
        results = await asyncio.gather(
            *(lane.queue.close() for lane in self._lanes), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    # ── Beyond the port ───────────────────────────────────────────────────────────────────────

    async def lane_stats(self) -> dict[str, dict[str, int]]:
        """Each lane's counts (ready, delayed, in flight, dead), for lanes whose queue has them."""
        counts: dict[str, dict[str, int]] = {}
        for lane in self._lanes:
            stats = getattr(lane.queue, "stats", None)
            if stats is None:
                continue
            result = stats()
            if inspect.isawaitable(result):
                result = await result
            counts[lane.name] = {str(name): int(count) for name, count in result.items()}
        return counts

    async def stats(self) -> dict[str, int]:
        """Counts of ready, delayed, in-flight and dead messages over all lanes."""
        totals: dict[str, int] = {}
        for counts in (await self.lane_stats()).values():
            for name, count in counts.items():
                totals[name] = totals.get(name, 0) + count
        return totals

    # ── Internals ─────────────────────────────────────────────────────────────────────────────

    async def _take(
        self, lane: Lane, batch: list[Message], max_messages: int, *, wait_s: float
    ) -> bool:
        """Receive from one lane into ``batch``; False if it failed while ``batch`` held some.

        With an empty batch the error is raised, as from any queue.
        """
        try:
            messages = await lane.queue.receive(
                max_messages=max_messages - len(batch), wait_s=wait_s
            )
        except Exception:
            if not batch:
                raise
            log.warning("queue lane receive failed", lane=lane.name, exc_info=True)
            return False
        for message in messages:
            self._origins[_key(message)] = lane
        batch.extend(messages)
        return True

    def _settling_lane(self, message: Message) -> Lane:
        """The lane a message came from (forgotten now), or its job's lane if unknown here."""
        return self._origins.pop(_key(message), None) or self.lane_for(message.job)


def _key(message: Message) -> tuple[str, int]:
    """A delivery: a message id is stable across retries, its attempts are not."""
    return (message.id, message.attempts)


# ── Lane queue URLs ───────────────────────────────────────────────────────────────────────────


def lane_url(url: str, lane: str) -> str:
    """The URL of a lane's own queue, next to the queue ``url`` names.

    ``redis://…?namespace=ns`` gives namespace ``ns.<lane>`` (``sluice.<lane>`` when the URL names
    none); ``sqs://name?…`` gives queue ``name-<lane>`` (and its DLQ ``name-<lane>-dlq``); every
    other option is kept. ``memory://`` has no names: each lane is a queue of its own anyway.
    """
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss", "unix"):
        query = parse_qsl(parts.query, keep_blank_values=True)
        namespace = (
            next((value for key, value in reversed(query) if key == "namespace"), "")
            or REDIS_DEFAULT_NAMESPACE
        )
        query = [(key, value) for key, value in query if key != "namespace"]
        query.append(("namespace", f"{namespace}.{lane}"))
        return urlunsplit(parts._replace(query=urlencode(query)))
    if parts.scheme == "sqs":
        return urlunsplit(parts._replace(netloc=f"{parts.netloc}-{lane}"))
    return url
