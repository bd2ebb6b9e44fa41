"""Webhook routes: endpoints, their secrets, their delivery logs and replays (admin scope).

docs/webhooks.md describes what is sent, how to verify it, the retry schedule and ordering.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import Field, StrictBool, StrictStr

from sluice.api import cursors
from sluice.api.auth import container_of, require
from sluice.api.problems import AUTHENTICATED, WITH_BODY, problem_responses
from sluice.api.schemas import _In, _Out
from sluice.api.times import parse_rfc3339
from sluice.domain.access import Scope
from sluice.domain.webhooks import EVENT_TYPES, Delivery, DeliveryStatus, WebhookEndpoint
from sluice.services.withdrawals import PagePosition

router = APIRouter(
    tags=["webhooks"],
    dependencies=[Depends(require(Scope.ADMIN))],
    # 422: a malformed id in the path, or a bad body or query.
    responses=problem_responses(*AUTHENTICATED, 422),
)
#: A POST or PATCH passes the body guard even without a body parameter (413, 415).
_GUARDED = problem_responses(413, 415)

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

_AT = "2026-12-02T10:15:30.123456Z"
_ENDPOINT = {
    "id": "we_0f8fad5bd9cb469fa16570867728950e",
    "url": "https://platform.example/hooks/sluice",
    "eventTypes": ["withdrawal.completed", "withdrawal.failed"],
    "description": "Ledger service",
    "disabled": False,
    "disabledAt": None,
    "disabledReason": None,
    "failingSince": None,
    "previousSecretExpiresAt": None,
    "createdAt": _AT,
    "updatedAt": _AT,
}
_SECRET = "whsec_ZXhhbXBsZS1zZWNyZXQtbm90LWEtcmVhbC1vbmUhISE="  # noqa: S105 - an example
_DELIVERY = {
    "id": "dlv_7c9e6679742540de944be07fc1f90ae7",
    "webhookId": "msg_2b1e0c1d6f8a4c3e9d7b5a3f1e0d9c8b",
    "eventType": "withdrawal.completed",
    "withdrawalId": "payout-20261202-0042",
    "status": "DELIVERED",
    "attempts": 1,
    "nextAttemptAt": None,
    "lastAttemptAt": _AT,
    "lastStatusCode": 200,
    "lastError": None,
    "deliveredAt": _AT,
    "replayOf": None,
    "createdAt": _AT,
}


def _example(value: object, description: str) -> dict[str, object]:
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


_CREATE_KEYS = ("url", "eventTypes", "description")
_NOT_FOUND = problem_responses(404, s404="No such webhook endpoint")


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register a webhook endpoint",
    operation_id="createWebhook",
    responses={
        201: _example({**_ENDPOINT, "secret": _SECRET}, "Registered; the secret is shown once"),
        **problem_responses(*WITH_BODY),
    },
)
async def create_webhook(
    request: Request,
    body: Annotated[
        WebhookCreate,
        Body(openapi_examples={"endpoint": {"value": {k: _ENDPOINT[k] for k in _CREATE_KEYS}}}),
    ],
) -> WebhookCreated:
    """Every withdrawal status change of the subscribed types is sent to the URL, signed with
    the returned secret (Standard Webhooks). A URL whose host resolves to a private, loopback,
    link-local, multicast or reserved address is refused (422) unless the deployment allows it."""
    container = container_of(request)
    async with container.uow() as uow:
        endpoint = await container.webhooks.create(
            uow, url=body.url, event_types=body.event_types, description=body.description
        )
        await uow.commit()
    return WebhookCreated(**WebhookOut.of(endpoint).model_dump(), secret=endpoint.secret)


@router.get(
    "/v1/webhooks",
    response_model=list[WebhookOut],
    summary="List webhook endpoints",
    operation_id="listWebhooks",
    responses={200: _example([_ENDPOINT], "Oldest first")},
)
async def list_webhooks(request: Request) -> list[WebhookOut]:
    """Every endpoint, oldest first (secrets are never listed)."""
    container = container_of(request)
    async with container.uow() as uow:
        return [WebhookOut.of(e) for e in await container.webhooks.all(uow)]


@router.get(
    "/v1/webhooks/{endpointId}",
    response_model=WebhookOut,
    summary="Get a webhook endpoint",
    operation_id="getWebhook",
    responses={200: _example(_ENDPOINT, "The endpoint"), **_NOT_FOUND},
)
async def get_webhook(endpoint_id: EndpointId, request: Request) -> WebhookOut:
    """One endpoint, with why it is disabled if it is."""
    container = container_of(request)
    async with container.uow() as uow:
        return WebhookOut.of(await container.webhooks.get(uow, endpoint_id))


@router.patch(
    "/v1/webhooks/{endpointId}",
    response_model=WebhookOut,
    summary="Change a webhook endpoint",
    operation_id="updateWebhook",
    responses={
        200: _example(_ENDPOINT, "Changed"),
        **problem_responses(*WITH_BODY, 404, s404="No such webhook endpoint"),
    },
)
async def update_webhook(
    endpoint_id: EndpointId,
    request: Request,
    body: Annotated[
        WebhookUpdate, Body(openapi_examples={"enable": {"value": {"disabled": False}}})
    ],
) -> WebhookOut:
    """Change the URL, event types or description, or disable and enable it. Enabling resumes
    its pending deliveries where their schedule left them."""
    container = container_of(request)
    async with container.uow() as uow:
        endpoint = await container.webhooks.update(
            uow,
            endpoint_id,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            disabled=body.disabled,
        )
        await uow.commit()
    return WebhookOut.of(endpoint)


@router.delete(
    "/v1/webhooks/{endpointId}",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook endpoint",
    operation_id="deleteWebhook",
    responses={204: {"description": "Deleted, with its delivery log"}, **_NOT_FOUND},
)
async def delete_webhook(endpoint_id: EndpointId, request: Request) -> Response:
    """Delete it and its delivery log; nothing more is sent to it."""
    container = container_of(request)
    async with container.uow() as uow:
        await container.webhooks.delete(uow, endpoint_id)
        await uow.commit()
    return Response(status_code=204)


@router.post(
    "/v1/webhooks/{endpointId}/rotate-secret",
    response_model=WebhookCreated,
    summary="Rotate a webhook endpoint's secret",
    operation_id="rotateWebhookSecret",
    responses={
        200: _example(
            {**_ENDPOINT, "secret": _SECRET, "previousSecretExpiresAt": "2026-12-03T10:15:30Z"},
            "The new secret, shown once; the old one signs too until previousSecretExpiresAt",
        ),
        **_NOT_FOUND,
        **_GUARDED,
    },
)
async def rotate_secret(endpoint_id: EndpointId, request: Request) -> WebhookCreated:
    """A new secret. Until `previousSecretExpiresAt` (SLUICE_WEBHOOK_SECRET_OVERLAP_S, 24 h by
    default) every attempt carries two signatures, the new secret's and the old one's, so the
    platform can switch its verifier at any time in between."""
    container = container_of(request)
    async with container.uow() as uow:
        endpoint = await container.webhooks.rotate_secret(uow, endpoint_id)
        await uow.commit()
    return WebhookCreated(**WebhookOut.of(endpoint).model_dump(), secret=endpoint.secret)


@router.get(
    "/v1/webhooks/{endpointId}/deliveries",
    response_model=DeliveryPage,
    summary="An endpoint's delivery log",
    operation_id="listWebhookDeliveries",
    responses={
        200: _example({"items": [_DELIVERY], "nextCursor": None}, "Newest first"),
        **problem_responses(404, 422, s404="No such webhook endpoint"),
    },
)
async def list_deliveries(
    endpoint_id: EndpointId,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="`nextCursor` of the previous page, as it came"),
    ] = None,
) -> DeliveryPage:
    """Each delivery with its attempts so far and the last outcome, newest first; pass
    `nextCursor` back as `cursor` for the next page (`null`: none left)."""
    before = None if cursor is None else cursors.decode(cursor).seq
    container = container_of(request)
    async with container.uow() as uow:
        items = await container.webhooks.deliveries(
            uow, endpoint_id, limit=limit + 1, before_seq=before
        )
    page, more = items[:limit], len(items) > limit
    last = page[-1].seq if page and more else None
    return DeliveryPage(
        items=[DeliveryOut.of(d) for d in page],
        next_cursor=None if last is None else cursors.encode(PagePosition(seq=last)),
    )


@router.post(
    "/v1/webhooks/{endpointId}/deliveries/{deliveryId}/replay",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send one delivery's event again",
    operation_id="replayWebhookDelivery",
    responses={
        202: _example(
            {**_DELIVERY, "status": "PENDING", "attempts": 0, "deliveredAt": None},
            "A new delivery of the same event (same webhook-id), due now",
        ),
        **problem_responses(404, s404="No such endpoint or delivery"),
        **_GUARDED,
    },
)
async def replay_delivery(
    endpoint_id: EndpointId, delivery_id: DeliveryId, request: Request
) -> DeliveryOut:
    """A new delivery of the same event, due now, with the same `webhook-id` (a consumer that
    deduplicates by it sees it once)."""
    container = container_of(request)
    async with container.uow() as uow:
        delivery = await container.webhooks.replay(uow, endpoint_id, delivery_id)
        await uow.commit()
    return DeliveryOut.of(delivery)


@router.post(
    "/v1/webhooks/{endpointId}/replay",
    status_code=202,
    response_model=ReplayOut,
    summary="Send every event since a time again",
    operation_id="replayWebhookEvents",
    responses={
        202: _example({"replayed": 42}, "Queued again"),
        **problem_responses(*WITH_BODY, 404, s404="No such webhook endpoint"),
    },
)
async def replay_since(
    endpoint_id: EndpointId,
    request: Request,
    body: Annotated[
        ReplaySince, Body(openapi_examples={"since": {"value": {"since": "2026-12-02T10:00:00Z"}}})
    ],
) -> ReplayOut:
    """Every event at or after `since` of the endpoint's types, delivered again (new deliveries
    with their original `webhook-id`s), at most 10,000 per call: call again with a later
    `since` for more."""
    since = parse_rfc3339(body.since, field="since", location="body")
    container = container_of(request)
    async with container.uow() as uow:
        count = await container.webhooks.replay_since(uow, endpoint_id, since)
        await uow.commit()
    return ReplayOut(replayed=count)
