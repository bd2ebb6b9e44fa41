"""Webhooks, pure: event types, payloads, Standard Webhooks signatures, the retry schedule, and
which destination addresses a webhook may never reach (server-side request forgery).

Nothing here does I/O: resolving a host and sending the request are the sender adapter's
(`sluice.webhook_sender`), storing endpoints and deliveries the database's (`sluice.db.webhooks`).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sluice.domain.amounts import format_amount
from sluice.domain.assets import Asset
from sluice.domain.withdrawal import StatusChange, Withdrawal, WithdrawalStatus
from sluice.errors import InvalidRequestError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix every secret carries, not a secret
#: Random bytes in a new secret (the spec asks for 24 to 64).
SECRET_BYTES = 32
#: The spec's example schedule: the delay before each attempt after the previous one failed
#: (the first is immediate); ten attempts over about 75 hours ("about three days").
RETRY_SCHEDULE_S: tuple[float, ...] = (
    0,
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
)
#: Jitter around each delay (the spec recommends some): ±10 %.
JITTER = 0.1

#: One event type per status a withdrawal can enter: ``withdrawal.<status in lower case>``.
EVENT_TYPES: tuple[str, ...] = tuple(f"withdrawal.{s.value.lower()}" for s in WithdrawalStatus)


def event_type(status: WithdrawalStatus) -> str:
    """The event type of a withdrawal entering ``status`` (``withdrawal.completed``)."""
    return f"withdrawal.{status.value.lower()}"


def check_event_types(types: Iterable[str]) -> tuple[str, ...]:
    """The event types an endpoint subscribes to, checked (empty: every type).

    Raises:
        InvalidRequestError: An unknown type (naming it and the field ``eventTypes``).
    """
    checked: list[str] = []
    for name in types:
        if name not in EVENT_TYPES:
            raise InvalidRequestError(
                f"unknown event type {name!r}; known: {', '.join(EVENT_TYPES)}", field="eventTypes"
            )
        if name not in checked:
            checked.append(name)
    return tuple(checked)


def subscribed(event_types: Sequence[str], name: str) -> bool:
    """Whether an endpoint with these event types receives an event of type ``name``."""
    return not event_types or name in event_types


# ── Events and payloads ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One status change of one withdrawal, as stored for delivery.

    ``data`` keeps the amount as an integer of base units (a string in JSON, exact); it becomes
    a decimal string only when the payload is rendered, with the asset's decimals.
    """

    id: str
    """The message id, sent as ``webhook-id`` on every attempt and replay (``msg_…``)."""
    type: str
    withdrawal_id: str
    data: Mapping[str, Any]
    at: datetime
    seq: int | None = None


def event_data(withdrawal: Withdrawal, change: StatusChange) -> dict[str, Any]:
    """What an event says of a withdrawal's status change (amount in base units, a string)."""
    return {
        "id": withdrawal.id,
        "userId": withdrawal.user_id,
        "network": withdrawal.network,
        "assetKey": withdrawal.asset_key,
        "tokenAddress": withdrawal.token_address,
        "amountBaseUnits": str(withdrawal.amount),
        "toAddress": withdrawal.to_address,
        "status": change.to_status.value,
        "previousStatus": change.from_status.value if change.from_status else None,
        "reason": change.reason,
        "errorCode": change.error_code,
        "transactionHash": withdrawal.transaction_hash,
        "feeBaseUnits": str(withdrawal.fee),
        "policyVersion": withdrawal.policy_version,
        "policyRule": withdrawal.policy_rule,
        "at": _iso(change.at),
    }


def is_event(change: StatusChange) -> bool:
    """Whether a history entry is a webhook event: a change of status (a note is not)."""
    return change.from_status != change.to_status


def payload(event: WebhookEvent, asset: Asset | None) -> dict[str, Any]:
    """The body of a delivery, Standard Webhooks' shape: ``{"type", "timestamp", "data"}``.

    ``data.amount`` and ``data.fee`` are decimal strings in token units and ``data.asset`` the
    asset's symbol,
    from ``asset`` (None when the asset is no longer configured: both are null, and
    ``amountBaseUnits`` still says the amount exactly).
    """
    data = dict(event.data)
    base_units = int(data["amountBaseUnits"])
    data["asset"] = None if asset is None else asset.symbol
    data["amount"] = None if asset is None else format_amount(base_units, asset.decimals)
    fee = int(data.get("feeBaseUnits", "0"))
    data["fee"] = None if asset is None else format_amount(fee, asset.decimals)
    return {"type": event.type, "timestamp": _iso(event.at), "data": data}


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact JSON, keys in a stable order."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# ── Signatures ───────────────────────────────────────────────────────────────────────────────


def new_secret(random_bytes: bytes) -> str:
    """A signing secret from fresh random bytes: ``whsec_`` + their base64.

    Raises:
        ValueError: Fewer than 24 bytes (the spec's minimum).
    """
    if len(random_bytes) < 24:
        raise ValueError("a webhook secret needs at least 24 random bytes")
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,`` signature: base64 of HMAC-SHA256 over ``id.timestamp.body``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, one signature per live secret (during a
    rotation the new secret's and the old one's, space-separated)."""
    if not secrets:
        raise ValueError("an endpoint always has a secret")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets),
        "content-type": "application/json",
    }


# ── Endpoints ────────────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class WebhookEndpoint:
    """A platform's URL that receives events, with its signing secret(s)."""

    id: str
    url: str
    event_types: tuple[str, ...]
    description: str
    secret: str
    created_at: datetime
    updated_at: datetime
    previous_secret: str | None = None
    previous_secret_until: datetime | None = None
    """Until when the secret before the last rotation still signs, beside the new one."""
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    """When the current run of failed attempts began (None: the last attempt succeeded)."""

    def secrets(self, now: datetime) -> list[str]:
        """The secrets that sign an attempt made now: the current one, and the previous one
        while its overlap lasts."""
        live = [self.secret]
        if (
            self.previous_secret is not None
            and self.previous_secret_until is not None
            and now < self.previous_secret_until
        ):
            live.append(self.previous_secret)
        return live

    @property
    def disabled(self) -> bool:
        """Whether deliveries to it are stopped."""
        return self.disabled_at is not None


def check_url(url: str) -> str:
    """A webhook URL as given, checked for shape: http(s), a host, no credentials.

    Raises:
        InvalidRequestError: Any other URL (field ``url``).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # an unbalanced IPv6 bracket, say
        raise InvalidRequestError("the URL is not valid", field="url") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequestError("the URL must be http:// or https:// with a host", field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequestError("the URL may not carry credentials", field="url")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise InvalidRequestError("the URL's port is not valid", field="url") from None
    return url


def host_of(url: str) -> str:
    """The host of a checked URL (an IPv6 literal without its brackets)."""
    host = urlsplit(check_url(url)).hostname
    if host is None:  # pragma: no cover - `check_url` refused it
        raise InvalidRequestError("the URL has no host", field="url")
    return host


def forbidden_address(address: str) -> str | None:
    """Why a webhook may not be sent to an IP address, or None if it may.

    Private, loopback, link-local, multicast, reserved and unspecified addresses are refused
    (an IPv4 address mapped into IPv6 is judged as the IPv4 address it carries), so that a
    registered URL cannot make Sluice reach into its own network.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    )
    for name, hit in checks:
        if hit:
            return name
    if not ip.is_global:  # shared address space (100.64/10) and the like
        return "not global"
    return None


# ── Deliveries and the retry schedule ────────────────────────────────────────────────────────


class DeliveryStatus(enum.StrEnum):
    """Where a delivery of one event to one endpoint is."""

    PENDING = "PENDING"
    """Not delivered yet: due at ``next_attempt_at`` (or in flight, while claimed)."""
    DELIVERED = "DELIVERED"
    """The endpoint answered 2xx. Final."""
    FAILED = "FAILED"
    """Every attempt of the schedule failed, or the endpoint was disabled. Final (a replay
    makes a new delivery)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: the endpoint's status code, or why there was none."""

    status_code: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer (a 3xx is a failure: redirects are not followed)."""
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the endpoint wants no more webhooks; it is disabled at once."""
        return self.status_code == 410

    def describe(self) -> str:
        """A short line for the delivery log."""
        if self.status_code is not None:
            return f"HTTP {self.status_code}"
        return self.error or "no answer"


@dataclass(frozen=True, slots=True)
class Schedule:
    """The retry schedule, scaled: ``scale`` multiplies every delay (tests run it in seconds).

    ``delays_s[n]`` is the wait before attempt ``n + 1`` after attempt ``n`` failed; the first
    attempt is immediate.
    """

    delays_s: tuple[float, ...] = RETRY_SCHEDULE_S
    scale: float = 1.0
    jitter: float = JITTER

    @property
    def attempts(self) -> int:
        """Attempts of one delivery before it fails."""
        return len(self.delays_s)

    def next_delay_s(self, attempts_made: int, random_unit: float) -> float | None:
        """Seconds until the next attempt after ``attempts_made`` attempts failed, or None when
        the schedule is spent. ``random_unit`` in [0, 1) draws the jitter."""
        if attempts_made >= self.attempts:
            return None
        base = self.delays_s[attempts_made] * self.scale
        return base * (1 + self.jitter * (2 * random_unit - 1))

    def total_s(self) -> float:
        """How long the whole schedule spans, without jitter."""
        return sum(self.delays_s) * self.scale


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event to one endpoint, with its attempts so far."""

    id: str
    endpoint_id: str
    event: WebhookEvent
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    claim: str | None = None
    seq: int | None = None
    replay_of: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What to write after an attempt: the delivery's new state and the endpoint's."""

    status: DeliveryStatus
    next_attempt_at: datetime | None
    failing_since: datetime | None
    disable_reason: str | None = None
    """Set when the endpoint is to be disabled now."""


def after_attempt(
    *,
    outcome: Outcome,
    attempts_made: int,
    now: datetime,
    schedule: Schedule,
    failing_since: datetime | None,
    disable_after: timedelta,
    random_unit: float,
) -> AttemptResult:
    """The consequences of one attempt (``attempts_made`` counts it).

    Success delivers and ends the endpoint's failing run. Any failure schedules the next
    attempt, or fails the delivery when the schedule is spent. 410 Gone disables the endpoint at
    once, and so does failing without a success for ``disable_after``; a disabled endpoint's
    deliveries keep their place in the schedule and resume if it is enabled again.
    """
    if outcome.ok:
        return AttemptResult(DeliveryStatus.DELIVERED, None, None)
    since = failing_since or now
    disable = None
    if outcome.gone:
        disable = "the endpoint answered 410 Gone"
    elif now - since >= disable_after:
        disable = f"failing since {_iso(since)} without a success"
    delay = schedule.next_delay_s(attempts_made, random_unit)
    if delay is None:
        return AttemptResult(DeliveryStatus.FAILED, None, since, disable)
    return AttemptResult(DeliveryStatus.PENDING, now + timedelta(seconds=delay), since, disable)
