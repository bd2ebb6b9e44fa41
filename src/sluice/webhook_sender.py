"""The webhook sender: one POST per attempt over httpx, and host resolution for the SSRF check.

Redirects are never followed (a 3xx is a failed attempt: the platform should register the
URL it means). Every failure of the endpoint becomes an `Outcome`, never an exception.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping

import httpx

from sluice import __version__
from sluice.domain.webhooks import Outcome
from sluice.errors import InvalidRequestError

#: How long resolving a host may take before the URL counts as unresolvable.
RESOLVE_TIMEOUT_S = 5.0
USER_AGENT = f"Sluice-Webhooks/{__version__}"


class HttpWebhookSender:
    """`WebhookSender` over one pooled `httpx.AsyncClient`."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(
            follow_redirects=False, headers={"user-agent": USER_AGENT}
        )

    async def resolve(self, host: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
            )
        except (OSError, TimeoutError, ValueError):  # ValueError: a host IDNA cannot encode
            raise InvalidRequestError(
                f"the URL's host {host!r} does not resolve", field="url"
            ) from None
        return sorted({str(info[4][0]) for info in infos})

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, *, timeout_s: float
    ) -> Outcome:
        try:
            response = await self._client.post(
                url, content=body, headers=dict(headers), timeout=timeout_s
            )
        except httpx.TimeoutException:
            return Outcome(error=f"no answer within {timeout_s:g} s")
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:200])
        return Outcome(status_code=response.status_code)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
