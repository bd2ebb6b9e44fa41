"""Bodies of the pause routes and the pause state `GET /v1/networks` shows."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, StrictStr

from sluice.api.schemas import _In, _Out
from sluice.domain.amounts import format_amount
from sluice.domain.assets import Network
from sluice.domain.pauses import NetworkControl, Pause, PauseKind
from sluice.services.pauses import MAX_REASON


class PauseRequest(_In):
    """Why the network (or every network) is paused: kept with the pause and in the audit log."""

    reason: StrictStr = Field(min_length=1, max_length=MAX_REASON, examples=["incident 42"])


class ResumeRequest(_In):
    """Why it is resumed, for the audit log (optional)."""

    reason: StrictStr | None = Field(default=None, max_length=MAX_REASON)


class PauseOut(_Out):
    """A pause in force."""

    network: str = Field(description='The network it pauses; `"*"`: every network (a freeze)')
    since: datetime
    kind: PauseKind = Field(
        description="`manual` (an operator), or `circuit_breaker` (its outflow limit)"
    )
    reason: str
    actor: str = Field(description="Who paused it: `operator:<id>`, `cli:<user>`, `system:sluice`")

    @classmethod
    def of(cls, pause: Pause) -> PauseOut:
        """The wire form of a pause."""
        return cls(
            network=pause.network,
            since=pause.since,
            kind=pause.kind,
            reason=pause.reason,
            actor=pause.actor,
        )


class NetworkPauseOut(_Out):
    """A network's own pause state (or the freeze's, network `"*"`)."""

    network: str
    paused: PauseOut | None = Field(description="The pause in force; null: it runs")
    resumed_at: datetime | None = Field(
        description="When an operator last resumed it: its circuit breaker's window starts then"
    )
    resumed_by: str | None

    @classmethod
    def of(cls, control: NetworkControl) -> NetworkPauseOut:
        """The wire form of a pause state."""
        return cls(
            network=control.network,
            paused=None if control.pause is None else PauseOut.of(control.pause),
            resumed_at=control.resumed_at,
            resumed_by=control.resumed_by,
        )


class CircuitBreakerOut(_Out):
    """The network's circuit breaker (docs/circuit-breaker.md)."""

    window_seconds: int = Field(description="The rolling window's length")
    max_outflow: dict[str, str] = Field(
        description="Asset symbol → the most its payouts signed within the window may add up "
        "to, in token units",
        examples=[{"ETH": "50", "USDC": "250000"}],
    )

    @classmethod
    def of(cls, network: Network) -> CircuitBreakerOut | None:
        """The wire form of a network's breaker; None without one."""
        breaker = network.circuit_breaker
        if breaker is None:
            return None
        limits = {}
        for key, limit in breaker.limits.items():
            asset = network.asset_by_key(key)
            limits[asset.symbol] = format_amount(limit, asset.decimals)
        return cls(window_seconds=breaker.window_s, max_outflow=limits)
