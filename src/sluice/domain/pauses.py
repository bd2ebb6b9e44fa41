"""Network pauses and the circuit breaker, as the domain sees them (docs/circuit-breaker.md).

A network is paused by hand (an operator's ``manual`` pause, or a freeze of every network) or by
its circuit breaker (``circuit_breaker``): the outflow of one of its assets over a rolling window
would pass that asset's limit. While paused, no new payout of the network takes a nonce; what is
already signed keeps being tracked, replaced and cancelled. Only an operator resumes it.

Pure arithmetic and values: the decision is `breaker_verdict`, the window `window_start`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sluice.domain.amounts import format_amount

#: The network name of the row that pauses every network at once (the runbook's "freeze").
EVERY_NETWORK = "*"

#: The waiting reason's kind of a withdrawal held by a manual pause or a freeze.
PAUSED = "paused"
#: The waiting reason's kind of a withdrawal held by its network's tripped circuit breaker.
TRIPPED = "circuit_breaker"


class PauseKind(enum.StrEnum):
    """Why a network is paused."""

    MANUAL = "manual"
    """An operator paused it (or froze every network)."""
    CIRCUIT_BREAKER = "circuit_breaker"
    """Its circuit breaker tripped: an asset's outflow over the window would pass its limit."""


@dataclass(frozen=True, slots=True)
class Pause:
    """A pause in force on one network (or on every network: `EVERY_NETWORK`)."""

    network: str
    since: datetime
    kind: PauseKind
    reason: str
    actor: str
    """Who paused it (`sluice.domain.audit.Actor.label`): ``system:sluice`` for a trip."""

    @property
    def everywhere(self) -> bool:
        """Whether it pauses every network (a freeze)."""
        return self.network == EVERY_NETWORK

    def waiting_reason(self, network: str) -> str:
        """What a withdrawal of ``network`` held by this pause says it waits for."""
        if self.kind is PauseKind.CIRCUIT_BREAKER:
            return f"{TRIPPED}: {self.reason}"
        where = "every network is frozen" if self.everywhere else f"network {network} is paused"
        return f"{PAUSED}: {where} by {self.actor}: {self.reason}"


@dataclass(frozen=True, slots=True)
class NetworkControl:
    """The stored pause state of one network (or of `EVERY_NETWORK`)."""

    network: str
    pause: Pause | None = None
    """The pause in force; None when the network runs."""
    resumed_at: datetime | None = None
    """When an operator last resumed it: the breaker's window starts no earlier."""
    resumed_by: str | None = None


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """``[networks.<name>.circuit_breaker]``: each asset's most outflow over a rolling window."""

    window_s: int
    """The window's length, in seconds."""
    limits: Mapping[str, int] = field(default_factory=dict)
    """Asset key (`sluice.domain.assets.Asset.key`) → the most its payouts signed within the
    window may add up to, in base units. An asset not named has no limit."""

    def limit_of(self, asset_key: str) -> int | None:
        """The asset's limit in base units, if it has one."""
        return self.limits.get(asset_key)


def window_start(now: datetime, window_s: int, resumed_at: datetime | None) -> datetime:
    """Where the breaker's window begins at ``now``: ``window_s`` before it, but never before
    the last resume (a resumed network starts a fresh window, so it does not trip again at once
    on the outflow that tripped it). Payouts signed after this instant count; one signed
    exactly ``window_s`` ago, or at the resume, has left the window."""
    start = now - timedelta(seconds=window_s)
    return start if resumed_at is None or resumed_at < start else resumed_at


def breaker_verdict(outflow: int, amount: int, limit: int) -> bool:
    """Whether paying ``amount`` on top of ``outflow`` already signed within the window stays
    within ``limit`` (all base units): reaching the limit exactly is allowed, one base unit more
    trips the breaker."""
    if outflow < 0 or amount < 0 or limit < 0:
        raise ValueError("amounts are never negative")
    return outflow + amount <= limit


def trip_reason(
    *,
    network: str,
    symbol: str,
    decimals: int,
    outflow: int,
    amount: int,
    limit: int,
    window_s: int,
) -> str:
    """Why the breaker tripped, in the asset's token units (what the pause and the waiting
    withdrawals say)."""
    total = format_amount(outflow + amount, decimals)
    return (
        f"outflow of {total} {symbol} on {network} within {format_window(window_s)} would pass "
        f"its limit of {format_amount(limit, decimals)} {symbol}"
    )


_WINDOW = re.compile(r"(?P<count>[0-9]+)(?P<unit>[smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}

#: The longest window a breaker may have (a window is summed on every signature).
MAX_WINDOW_S = 7 * 86_400


def parse_window(value: object) -> int:
    """A window from the networks file: seconds (an integer) or a duration such as ``"90s"``,
    ``"30m"``, ``"1h"``, ``"1d"``, or several joined (``"1h30m"``).

    Raises:
        ValueError: Not a whole number of seconds, or outside 1 s to 7 days.
    """
    if isinstance(value, bool):
        raise ValueError('window must be seconds or a duration such as "1h"')
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower()
        parts = list(_WINDOW.finditer(text))
        if not parts or "".join(p.group(0) for p in parts) != text:
            raise ValueError(f'{value!r} is not a duration such as "90s", "30m", "1h" or "1d"')
        seconds = sum(int(p.group("count")) * _UNIT_S[p.group("unit")] for p in parts)
    else:
        raise ValueError('window must be seconds or a duration such as "1h"')
    if not 1 <= seconds <= MAX_WINDOW_S:
        raise ValueError(f"window must be between 1 second and 7 days (got {seconds} s)")
    return seconds


def format_window(window_s: int) -> str:
    """A window as people say it: ``1h``, ``30m``, ``1h30m``, ``45s``."""
    parts = []
    rest = window_s
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
