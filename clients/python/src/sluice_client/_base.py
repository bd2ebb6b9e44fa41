"""What the sync and async clients share: defaults, headers, the retry loop's decisions."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from sluice_client._calls import Call
from sluice_client._version import __version__
from sluice_client.errors import SluiceError, TransportError
from sluice_client.retries import Retries
from sluice_client.signing import SigningKey, SluiceAuth

#: Sent with every request.
USER_AGENT = f"sluice-client/{__version__}"
#: 10 s to read an answer, 5 s to connect: every Sluice operation answers in milliseconds
#: (the work is asynchronous), so a longer wait means something is wrong.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: How far `changes_since` reaches back before the time it is given (docs/api.md, "Catching
#: up": transactions commit in an order their timestamps need not follow exactly).
DEFAULT_OVERLAP = timedelta(seconds=5)
#: The largest page the API serves.
MAX_PAGE_SIZE = 200


@dataclass(frozen=True, slots=True)
class Options:
    """How a client reaches Sluice (what both clients' constructors take)."""

    base_url: str
    auth: SluiceAuth
    timeout: httpx.Timeout
    retries: Retries
    headers: Mapping[str, str]


def options(
    base_url: str,
    api_key: str,
    *,
    signing_key: SigningKey | None,
    timeout: float | httpx.Timeout | None,
    retries: Retries | int | None,
    headers: Mapping[str, str] | None,
    clock: Callable[[], float] = time.time,
) -> Options:
    """Check and complete the constructor's arguments.

    Raises:
        ValueError: A base URL that is not http(s), or an empty API key.
    """
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"base_url must be an http(s) URL, e.g. http://127.0.0.1:8000: {base_url!r}"
        )
    if not api_key or api_key != api_key.strip():
        raise ValueError("api_key must be the sluice_<id>_<secret> token, without spaces")
    if isinstance(retries, int):
        retries = Retries(max_retries=retries)
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    elif not isinstance(timeout, httpx.Timeout):
        timeout = httpx.Timeout(timeout)
    return Options(
        base_url=str(url).rstrip("/"),
        auth=SluiceAuth(api_key, signing_key, clock=clock),
        timeout=timeout,
        retries=retries or Retries(),
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/json, application/problem+json",
            **(headers or {}),
        },
    )


def transport_error(
    error: httpx.TransportError, call: Call[Any], request_id: str | None
) -> SluiceError:
    """The SDK's error for a request that got no answer."""
    kind = type(error).__name__
    detail = f"{call.method} {call.path}: no answer ({kind}: {error or 'no detail'})"
    return TransportError(detail, code="transport_error", request_id=request_id)


def check_page_size(page_size: int) -> int:
    """A page size the API accepts.

    Raises:
        ValueError: Outside 1-200.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1-{MAX_PAGE_SIZE}: {page_size}")
    return page_size


def catch_up_from(since: datetime, overlap: timedelta) -> datetime:
    """Where `changes_since` starts reading: ``since`` minus the overlap.

    Raises:
        ValueError: A naive ``since``, or a negative overlap.
    """
    if since.tzinfo is None or since.utcoffset() is None:
        raise ValueError("since needs a time zone, e.g. datetime.now(UTC)")
    if overlap < timedelta(0):
        raise ValueError("overlap cannot be negative")
    return since - overlap
