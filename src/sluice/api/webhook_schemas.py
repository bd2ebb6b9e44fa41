"""Bodies of the webhook routes (`sluice.api.webhooks`), and their OpenAPI examples."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import Field, StrictBool, StrictStr

from sluice.api.schemas import _In, _Out
from sluice.domain.webhooks import EVENT_TYPES, Delivery, DeliveryStatus, WebhookEndpoint

_ID_PATTERN = r"^[A-Za-z0-9_]{1,64}$"
EndpointId = Annotated[
    str,
    Path(
        alias="endpointId",
        pattern=_ID_PATTERN,
        description="The endpoint's id (`we_…`)",
        examples=["we_0f8fad5bd9cb469fa16570867728950e"],
    ),
]
DeliveryId = Annotated[
    str,
    Path(
        alias="deliveryId",
        pattern=_ID_PATTERN,
        description="The delivery's id (`dlv_…`)",
        examples=["dlv_7c9e6679742540de944be07fc1f90ae7"],
    ),
]
Url = Annotated[
    StrictStr,
    Field(
        min_length=8,
        max_length=2000,
        description="http(s) URL; its host must resolve to public addresses only",
        examples=["https://platform.example/hooks/sluice"],
    ),
]
EventTypeText = Annotated[StrictStr, Field(max_length=64, examples=["withdrawal.completed"])]
EventTypes = Annotated[
    list[EventTypeText],
    Field(
        max_length=len(EVENT_TYPES),
        description=f"Event types to receive (empty: all): {', '.join(EVENT_TYPES)}",
    ),
]
Description = Annotated[StrictStr, Field(max_length=500, examples=["Ledger service"])]

AT = "2026-12-02T10:15:30.123456Z"
ENDPOINT = {
    "id": "we_0f8fad5bd9cb469fa16570867728950e",
    "url": "https://platform.example/hooks/sluice",
    "eventTypes": ["withdrawal.completed", "withdrawal.failed"],
    "description": "Ledger service",
    "disabled": False,
    "disabledAt": None,
    "disabledReason": None,
    "failingSince": None,
    "previousSecretExpiresAt": None,
    "createdAt": AT,
    "updatedAt": AT,
}
SECRET = "whsec_ZXhhbXBsZS1zZWNyZXQtbm90LWEtcmVhbC1vbmUhISE="  # noqa: S105 - an example
DELIVERY = {
    "id": "dlv_7c9e6679742540de944be07fc1f90ae7",
    "webhookId": "msg_2b1e0c1d6f8a4c3e9d7b5a3f1e0d9c8b",
    "eventType": "withdrawal.completed",
    "withdrawalId": "payout-20261202-0042",
    "status": "DELIVERED",
    "attempts": 1,
    "nextAttemptAt": None,
    "lastAttemptAt": AT,
    "lastStatusCode": 200,
    "lastError": None,
    "deliveredAt": AT,
    "replayOf": None,
    "createdAt": AT,
}


def example(value: object, description: str) -> dict[str, object]:
    return {"description": description, "content": {"application/json": {"example": value}}}


class WebhookCreate(_In):
    """An endpoint to register."""

    url: Url
    event_types: EventTypes = Field(default_factory=list)
    description: Description = ""


class WebhookUpdate(_In):
    """What to change of an endpoint (every field optional)."""

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    disabled: StrictBool | None = Field(
        None, description="true stops deliveries; false resumes them where they were"
    )


class WebhookOut(_Out):
    """A registered endpoint (its secret is shown once, when made or rotated)."""

    id: str
    url: str
    event_types: list[str]
    description: str
    disabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation still signs"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            event_types=list(endpoint.event_types),
            description=endpoint.description,
            disabled=endpoint.disabled,
            disabled_at=endpoint.disabled_at,
            disabled_reason=endpoint.disabled_reason,
            failing_since=endpoint.failing_since,
            previous_secret_expires_at=endpoint.previous_secret_until,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


class WebhookCreated(WebhookOut):
    """A new endpoint, with its signing secret: store it now, it is not shown again."""

    secret: str = Field(description="`whsec_` + base64: the key of every signature")


class DeliveryOut(_Out):
    """One event sent (or to be sent) to one endpoint."""

    id: str
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt")
    event_type: str
    withdrawal_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    replay_of: str | None
    created_at: datetime

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            webhook_id=delivery.event.id,
            event_type=delivery.event.type,
            withdrawal_id=delivery.event.withdrawal_id,
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_attempt_at=delivery.last_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            replay_of=delivery.replay_of,
            created_at=delivery.created_at,
        )


class DeliveryPage(_Out):
    """A page of an endpoint's delivery log, newest first."""

    items: list[DeliveryOut]
    next_cursor: str | None


class ReplaySince(_In):
    """Replay every event since a time."""

    since: StrictStr = Field(
        max_length=64,
        description="RFC 3339 with a zone: events at or after it are sent again",
        examples=["2026-12-02T10:00:00Z"],
        json_schema_extra={"format": "date-time"},
    )


class ReplayOut(_Out):
    """How many events were queued again."""

    replayed: int
