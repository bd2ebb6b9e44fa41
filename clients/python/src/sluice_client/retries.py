"""When the SDK repeats a request by itself, and how long it waits first.

A request is repeated only when repeating it cannot do anything twice:

- it never reached the server (the connection could not be made): always;
- the server refused it before acting (429, with ``Retry-After``): always;
- the answer was lost or the server was briefly unavailable (read timeout, connection cut, 502,
  503, 504): only for operations that are safe to repeat. Every operation of the API is, except
  `requeue_dead_letter` (a second requeue of the same message finds nothing: 404). Creating a
  withdrawal is safe because the SDK always sends an ``id`` (its own if you give none), and the
  same id with the same body returns the existing withdrawal.

Each retry is a new request, signed again with a fresh timestamp.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from sluice_client.errors import retry_after_of

__all__ = ["Retries"]

#: Transport failures that happen before the request is sent: repeating is always safe.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Answers of a gateway or a briefly unavailable server, for operations safe to repeat.
_UNAVAILABLE = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class Retries:
    """The retry policy of a client.

    Attributes:
        max_retries: Repeats after the first attempt (0: never repeat).
        backoff_s: The first wait; it doubles each time, with jitter, up to ``max_backoff_s``.
        max_backoff_s: The longest wait between attempts without a ``Retry-After``.
        max_retry_after_s: A ``Retry-After`` longer than this is not waited for: the error is
            raised at once (its ``retry_after`` says how long the server asked for).
    """

    max_retries: int = 2
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 30.0

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff_s, self.backoff_s * 2.0**attempt)
        # A random wait between half the ceiling and all of it, so clients that failed together
        # do not come back together.
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security

    def after_error(
        self, error: httpx.TransportError, *, attempt: int, repeatable: bool
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` after ``error``; None: give up."""
        if attempt >= self.max_retries:
            return None
        if isinstance(error, _NOT_SENT) or repeatable:
            return self._backoff(attempt)
        return None

    def after_response(
        self, response: httpx.Response, *, attempt: int, repeatable: bool
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` after a failed answer; None: give up."""
        if attempt >= self.max_retries:
            return None
        status = response.status_code
        if status != 429 and not (status in _UNAVAILABLE and repeatable):
            return None
        retry_after = retry_after_of(response)
        if retry_after is None:
            return self._backoff(attempt)
        return retry_after if retry_after <= self.max_retry_after_s else None
