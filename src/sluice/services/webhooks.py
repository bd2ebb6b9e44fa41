"""Webhooks: endpoints a platform registers, and the delivery of events to them.

`WebhookService` manages endpoints and their delivery logs (the admin API's use cases);
`WebhookDelivery` is the worker's side: fan events out to endpoints, claim due deliveries,
send one signed attempt, record its outcome. Neither commits: the caller (an HTTP route,
`sluice.worker.webhooks.WebhookWorker`) does. See docs/webhooks.md.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from sluice import metrics
from sluice.domain.assets import Asset
from sluice.domain.audit import SYSTEM, Actor, AuditRecord
from sluice.domain.webhooks import (
    SECRET_BYTES,
    Delivery,
    Outcome,
    Schedule,
    WebhookEndpoint,
    after_attempt,
    check_event_types,
    check_url,
    encode_body,
    forbidden_address,
    host_of,
    new_secret,
    payload,
    signed_headers,
    subscribed,
)
from sluice.errors import InvalidRequestError, NotFoundError, SluiceError
from sluice.ports import Clock, UnitOfWork, WebhookSender
from sluice.services.ids import new_id
from sluice.services.registry import NetworkRegistry

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """How webhooks are delivered (from `Settings`: ``SLUICE_WEBHOOK_*``)."""

    allow_private: bool = False
    """Allow URLs whose host resolves to a private, loopback, link-local … address."""
    schedule: Schedule = field(default_factory=Schedule)
    timeout_s: float = 15.0
    secret_overlap: timedelta = timedelta(hours=24)
    """How long the secret before a rotation keeps signing beside the new one."""
    disable_after: timedelta = timedelta(days=5)
    """An endpoint failing this long without a success is disabled."""
    lease: timedelta = timedelta(seconds=60)
    """How long a claimed delivery is a worker's before another may take it."""


async def check_destination(sender: WebhookSender, url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host resolves to an address webhooks may not reach (unless
    ``allow_private``): checked at registration and again before every attempt.

    Raises:
        InvalidRequestError: Not an http(s) URL, the host does not resolve, or an address it
            resolves to is private, loopback, link-local, multicast, reserved or unspecified
            (field ``url``).
    """
    check_url(url)
    if allow_private:
        return
    for address in await sender.resolve(host_of(url)):
        why = forbidden_address(address)
        if why is not None:
            raise InvalidRequestError(
                f"the URL's host resolves to a {why} address ({address}); webhooks go to"
                " public addresses only (SLUICE_WEBHOOK_ALLOW_PRIVATE allows others)",
                field="url",
            )


class WebhookService:
    """Endpoints, their secrets and their delivery logs (never commits)."""

    def __init__(self, clock: Clock, sender: WebhookSender, policy: WebhookPolicy) -> None:
        self._clock = clock
        self._sender = sender
        self._policy = policy

    async def check_destination(self, url: str) -> None:
        """See `check_destination`."""
        await check_destination(self._sender, url, allow_private=self._policy.allow_private)

    async def create(
        self,
        uow: UnitOfWork,
        *,
        url: str,
        event_types: Sequence[str],
        description: str,
        actor: Actor,
    ) -> WebhookEndpoint:
        """Register an endpoint with a fresh secret (shown to the caller once); audited."""
        types = check_event_types(event_types)
        await self.check_destination(url)
        now = self._clock.now()
        endpoint = WebhookEndpoint(
            id=new_id("we"),
            url=url,
            event_types=types,
            description=description,
            secret=new_secret(secrets.token_bytes(SECRET_BYTES)),
            created_at=now,
            updated_at=now,
        )
        await uow.webhooks.add_endpoint(endpoint)
        await _audit(uow, actor, "webhook.created", endpoint, now, after=snapshot(endpoint))
        return endpoint

    async def get(
        self, uow: UnitOfWork, endpoint_id: str, *, lock: bool = False
    ) -> WebhookEndpoint:
        """One endpoint.

        Raises:
            NotFoundError: There is none with this id.
        """
        endpoint = await uow.webhooks.get_endpoint(endpoint_id, lock=lock)
        if endpoint is None:
            raise NotFoundError(f"webhook endpoint {endpoint_id!r} does not exist")
        return endpoint

    async def all(self, uow: UnitOfWork) -> list[WebhookEndpoint]:
        """Every endpoint, oldest first."""
        return await uow.webhooks.endpoints()

    async def update(
        self,
        uow: UnitOfWork,
        endpoint_id: str,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        description: str | None = None,
        disabled: bool | None = None,
        actor: Actor,
    ) -> WebhookEndpoint:
        """Change what is given (audited). Enabling a disabled endpoint resumes its pending
        deliveries where their schedule left them, and starts its failing run afresh."""
        endpoint = await self.get(uow, endpoint_id, lock=True)
        before = snapshot(endpoint)
        now = self._clock.now()
        if url is not None:
            await self.check_destination(url)
            endpoint.url = url
        if event_types is not None:
            endpoint.event_types = check_event_types(event_types)
        if description is not None:
            endpoint.description = description
        if disabled is True and endpoint.disabled_at is None:
            endpoint.disabled_at, endpoint.disabled_reason = now, "disabled by an operator"
        elif disabled is False:
            endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
        endpoint.updated_at = now
        await uow.webhooks.save_endpoint(endpoint)
        after = snapshot(endpoint)
        if after != before:
            await _audit(uow, actor, "webhook.changed", endpoint, now, before=before, after=after)
        return endpoint

    async def delete(self, uow: UnitOfWork, endpoint_id: str, *, actor: Actor) -> None:
        """Delete an endpoint and its delivery log (audited).

        Raises:
            NotFoundError: There is none with this id.
        """
        # The endpoint's row first, then its deliveries: the order `WebhookDelivery.record`
        # locks them in, so a delete and a recorded attempt cannot deadlock.
        endpoint = await self.get(uow, endpoint_id, lock=True)
        await uow.webhooks.delete_endpoint(endpoint_id)
        await _audit(
            uow, actor, "webhook.deleted", endpoint, self._clock.now(), before=snapshot(endpoint)
        )

    async def rotate_secret(
        self, uow: UnitOfWork, endpoint_id: str, *, actor: Actor
    ) -> WebhookEndpoint:
        """A new secret; the one it replaces keeps signing beside it for the overlap (audited,
        without either secret)."""
        endpoint = await self.get(uow, endpoint_id, lock=True)
        now = self._clock.now()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = now + self._policy.secret_overlap
        endpoint.secret = new_secret(secrets.token_bytes(SECRET_BYTES))
        endpoint.updated_at = now
        await uow.webhooks.save_endpoint(endpoint)
        await _audit(
            uow,
            actor,
            "webhook.secret_rotated",
            endpoint,
            now,
            detail={"previousSecretUntil": now + self._policy.secret_overlap},
        )
        return endpoint

    async def deliveries(
        self, uow: UnitOfWork, endpoint_id: str, *, limit: int, before_seq: int | None
    ) -> list[Delivery]:
        """An endpoint's delivery log, newest first."""
        await self.get(uow, endpoint_id)
        return await uow.webhooks.deliveries(endpoint_id, limit=limit, before_seq=before_seq)

    async def replay(
        self, uow: UnitOfWork, endpoint_id: str, delivery_id: str, *, actor: Actor
    ) -> Delivery:
        """Send a delivery's event again (a new delivery, same ``webhook-id``), now.

        Raises:
            NotFoundError: No such endpoint, or no such delivery of it.
        """
        delivery = await uow.webhooks.get_delivery(endpoint_id, delivery_id)
        if delivery is None:
            raise NotFoundError(f"delivery {delivery_id!r} of {endpoint_id!r} does not exist")
        endpoint = await self.get(uow, endpoint_id)
        new = await uow.webhooks.replay(delivery, self._clock.now())
        await _audit(
            uow,
            actor,
            "webhook.replayed",
            endpoint,
            self._clock.now(),
            detail={"delivery": delivery_id, "replay": new, "webhookId": delivery.event.id},
        )
        replayed = await uow.webhooks.get_delivery(endpoint_id, new)
        if replayed is None:  # pragma: no cover - written just now, in this transaction
            raise NotFoundError(f"delivery {new!r} does not exist")
        return replayed

    async def replay_since(
        self, uow: UnitOfWork, endpoint_id: str, since: datetime, *, actor: Actor
    ) -> int:
        """Send again every event since a time the endpoint subscribes to; how many (audited)."""
        endpoint = await self.get(uow, endpoint_id)
        now = self._clock.now()
        count = await uow.webhooks.replay_since(endpoint_id, since, endpoint.event_types, now)
        await _audit(
            uow, actor, "webhook.replayed", endpoint, now, detail={"since": since, "count": count}
        )
        return count


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker holds, with its endpoint and the claim that proves it."""

    delivery: Delivery
    endpoint: WebhookEndpoint
    claim: str


class WebhookDelivery:
    """The worker's side: fan-out, claims, attempts, outcomes (never commits)."""

    def __init__(
        self,
        clock: Clock,
        sender: WebhookSender,
        registry: NetworkRegistry,
        policy: WebhookPolicy,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._sender = sender
        self._registry = registry
        self._policy = policy
        # Jitter needs no cryptographic randomness.
        self._rng = rng or random.Random()  # noqa: S311

    async def dispatch(self, uow: UnitOfWork, *, limit: int = 500) -> int:
        """Fan undispatched events out to the endpoints that subscribe to their types (those
        enabled now); the number of events taken."""
        events = await uow.webhooks.undispatched(limit=limit)
        if not events:
            return 0
        endpoints = [e for e in await uow.webhooks.endpoints() if not e.disabled]
        targets = {
            event.seq: [e.id for e in endpoints if subscribed(e.event_types, event.type)]
            for event in events
            if event.seq is not None
        }
        await uow.webhooks.fan_out(events, targets, self._clock.now())
        return len(events)

    async def claim(self, uow: UnitOfWork, *, limit: int) -> list[Claimed]:
        """Claim due deliveries for one lease."""
        now = self._clock.now()
        claim = uuid.uuid4().hex
        rows = await uow.webhooks.claim_due(
            now, until=now + self._policy.lease, claim=claim, limit=limit
        )
        return [Claimed(delivery, endpoint, claim) for delivery, endpoint in rows]

    def _asset(self, network: str, asset_key: str) -> Asset | None:
        try:
            return self._registry.get(network).network.asset_by_key(asset_key)
        except SluiceError:
            return None

    async def attempt(self, claimed: Claimed) -> Outcome:
        """One signed attempt, outside any transaction. The destination is checked again
        first (a host may resolve elsewhere now than at registration)."""
        endpoint, event = claimed.endpoint, claimed.delivery.event
        try:
            await check_destination(
                self._sender, endpoint.url, allow_private=self._policy.allow_private
            )
        except InvalidRequestError as exc:
            return Outcome(error=f"refused: {exc.detail}"[:300])
        data = event.data
        body = encode_body(payload(event, self._asset(data["network"], data["assetKey"])))
        now = self._clock.now()
        headers = signed_headers(endpoint.secrets(now), event.id, int(now.timestamp()), body)
        return await self._sender.send(
            endpoint.url, headers, body, timeout_s=self._policy.timeout_s
        )

    async def record(self, uow: UnitOfWork, claimed: Claimed, outcome: Outcome) -> bool:
        """Write an attempt's outcome, and what it means for the endpoint (its failing run;
        disabling it on 410 or after failing too long). False if the claim had lapsed and
        another worker holds the delivery now (nothing written: its attempt counts)."""
        now = self._clock.now()
        # Lock order: the endpoint, then its delivery (as `WebhookService.delete`). The lock also
        # serializes the endpoint's failing run across workers recording at once.
        endpoint = await uow.webhooks.get_endpoint(claimed.endpoint.id, lock=True)
        if endpoint is None:  # deleted meanwhile: its deliveries went with it
            return False
        result = after_attempt(
            outcome=outcome,
            attempts_made=claimed.delivery.attempts + 1,
            now=now,
            schedule=self._policy.schedule,
            failing_since=endpoint.failing_since,
            disable_after=self._policy.disable_after,
            random_unit=self._rng.random(),
        )
        written = await uow.webhooks.record_attempt(
            claimed.delivery.id,
            claimed.claim,
            status=result.status,
            at=now,
            next_attempt_at=result.next_attempt_at,
            status_code=outcome.status_code,
            error=outcome.error,
        )
        if not written:
            return False
        metrics.WEBHOOK_ATTEMPTS.labels("ok" if outcome.ok else "failed").inc()
        changed = replace(endpoint, failing_since=result.failing_since)
        if result.disable_reason is not None and endpoint.disabled_at is None:
            changed.disabled_at, changed.disabled_reason = now, result.disable_reason
            await self._audit_disabled(uow, endpoint, changed)
        if changed != endpoint:
            changed.updated_at = now
            await uow.webhooks.save_endpoint(changed)
        return True

    async def _audit_disabled(
        self, uow: UnitOfWork, before: WebhookEndpoint, after: WebhookEndpoint
    ) -> None:
        log.warning(
            "webhook endpoint disabled",
            endpoint_id=after.id,
            url=after.url,
            reason=after.disabled_reason,
        )
        at = after.disabled_at or self._clock.now()
        await _audit(
            uow,
            SYSTEM,
            "webhook.disabled",
            after,
            at,
            before=snapshot(before),
            after=snapshot(after),
            detail={"reason": after.disabled_reason, "failingSince": after.failing_since},
        )


def snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as the audit log keeps it: never its secrets."""
    return {
        "url": endpoint.url,
        "eventTypes": list(endpoint.event_types),
        "description": endpoint.description,
        "disabled": endpoint.disabled,
        "disabledReason": endpoint.disabled_reason,
    }


async def _audit(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    endpoint: WebhookEndpoint,
    at: datetime,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an entry about an endpoint to the audit log, in the caller's transaction."""
    await uow.audit.append(
        AuditRecord(
            actor=actor,
            action=action,
            subject=f"webhook:{endpoint.id}",
            at=at,
            before=before,
            after=after,
            detail=None if detail is None else _jsonable(detail),
        )
    )


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """Times as RFC 3339 strings (the audit log stores JSON)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
