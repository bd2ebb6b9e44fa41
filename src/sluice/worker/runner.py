"""The consumer loop: receive, dispatch, acknowledge; retry with backoff; dead-letter at last."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from sluice import metrics
from sluice.errors import SluiceError, TransientError
from sluice.ports import Message, Queue

log = structlog.get_logger(__name__)

#: A handler takes a message payload; it returns None when done, or seconds after which the same
#: job should run again (polling, e.g. for confirmations), which is not counted as a failure.
Handler = Callable[[dict[str, Any]], Awaitable[float | None]]


def backoff(attempt: int, *, base_s: float, max_s: float) -> float:
    """Exponential backoff with jitter: about base·2^(attempt-1), at most ``max_s``."""
    factor: int = 2 ** max(0, attempt - 1)
    ceiling = min(max_s, base_s * factor)
    # Jitter spreads retries out; it needs no cryptographic randomness.
    return ceiling * (0.5 + random.random() / 2)  # noqa: S311


class Worker:
    """Runs ``concurrency`` consumers over one queue until stopped."""

    def __init__(
        self,
        queue: Queue,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 8,
        max_attempts: int = 8,
        retry_base_s: float = 0.5,
        retry_max_s: float = 60.0,
        receive_wait_s: float = 0.5,
    ) -> None:
        self._queue = queue
        self._handlers = dict(handlers)
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._receive_wait_s = receive_wait_s
        self._stopping = asyncio.Event()
        self._consumers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the consumers in the background."""
        self._stopping.clear()
        self._consumers = [
            asyncio.create_task(self._consume(), name=f"sluice-consumer-{n}")
            for n in range(self._concurrency)
        ]

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking work and wait for in-flight messages to finish.

        A message still running after ``timeout_s`` is abandoned unacknowledged: the queue
        redelivers it (and recovery re-creates it from the database), so nothing is lost.
        """
        self._stopping.set()
        if not self._consumers:
            return
        _done, pending = await asyncio.wait(self._consumers, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._consumers = []

    async def _consume(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = await self._queue.receive(max_messages=1, wait_s=self._receive_wait_s)
            except Exception:  # the queue backend is down: wait, never spin or die
                log.exception("queue receive failed")
                await asyncio.sleep(1.0)
                continue
            for message in messages:
                try:
                    await self.handle(message)
                except Exception:  # the queue failed to ack or retry: it will redeliver
                    log.exception("queue operation failed; the message will be redelivered")
                    await asyncio.sleep(1.0)

    async def handle(self, message: Message) -> None:
        """Handle one message: ack, reschedule, retry or dead-letter it."""
        ids = {k: v for k, v in message.payload.items() if k.endswith("Id")}
        with structlog.contextvars.bound_contextvars(
            request_id=message.request_id, job=message.job, message_id=message.id, **ids
        ):
            handler = self._handlers.get(message.job)
            if handler is None:
                await self._queue.dead_letter(message, reason=f"no handler for {message.job}")
                metrics.JOBS.labels(message.job, "dead_lettered").inc()
                log.error("unknown job dead-lettered")
                return
            started = time.perf_counter()
            try:
                again_in = await handler(message.payload)
            except Exception as exc:
                await self._failed(message, exc)
            else:
                if again_in is not None:
                    await self._queue.publish(
                        message.job,
                        message.payload,
                        delay_s=again_in,
                        request_id=message.request_id,
                    )
                await self._queue.ack(message)
                outcome = "rescheduled" if again_in is not None else "done"
                metrics.JOBS.labels(message.job, outcome).inc()
                log.info(
                    "job handled",
                    outcome=outcome,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            finally:
                metrics.JOB_SECONDS.labels(message.job).observe(time.perf_counter() - started)

    async def _failed(self, message: Message, exc: Exception) -> None:
        attempt = message.attempts + 1
        reason = exc.detail if isinstance(exc, SluiceError) else type(exc).__name__
        if attempt >= self._max_attempts:
            await self._queue.dead_letter(message, reason=f"{attempt} attempts; last: {reason}")
            metrics.JOBS.labels(message.job, "dead_lettered").inc()
            log.error("job dead-lettered", attempts=attempt, error=reason)
            return
        delay = backoff(attempt, base_s=self._retry_base_s, max_s=self._retry_max_s)
        await self._queue.retry(message, delay_s=delay, error=reason)
        metrics.JOBS.labels(message.job, "retried").inc()
        if isinstance(exc, TransientError):
            log.warning(
                "job will be retried", attempt=attempt, delay_s=round(delay, 2), error=reason
            )
        else:
            log.exception("job failed unexpectedly; will be retried", attempt=attempt)
