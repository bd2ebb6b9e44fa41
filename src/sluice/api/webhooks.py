"""Webhook routes: endpoints, their secrets, their delivery logs and replays (admin scope).

docs/webhooks.md describes what is sent, how to verify it, the retry schedule and ordering.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from sluice.api import cursors
from sluice.api.auth import actor_of, container_of, require
from sluice.api.problems import AUTHENTICATED, WITH_BODY, problem_responses
from sluice.api.times import parse_rfc3339
from sluice.api.webhook_schemas import (
    DELIVERY,
    ENDPOINT,
    SECRET,
    DeliveryId,
    DeliveryOut,
    DeliveryPage,
    EndpointId,
    ReplayOut,
    ReplaySince,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
    example,
)
from sluice.domain.access import Scope
from sluice.services.withdrawals import PagePosition

router = APIRouter(
    tags=["webhooks"],
    dependencies=[Depends(require(Scope.ADMIN))],
    # 422: a malformed id in the path, or a bad body or query.
    responses=problem_responses(*AUTHENTICATED, 422),
)
#: A POST or PATCH passes the body guard even without a body parameter (413, 415).
_GUARDED = problem_responses(413, 415)

_CREATE_KEYS = ("url", "eventTypes", "description")
_NOT_FOUND = problem_responses(404, s404="No such webhook endpoint")


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register a webhook endpoint",
    operation_id="createWebhook",
    responses={
        201: example({**ENDPOINT, "secret": SECRET}, "Registered; the secret is shown once"),
        **problem_responses(*WITH_BODY),
    },
)
async def create_webhook(
    request: Request,
    body: Annotated[
        WebhookCreate,
        Body(openapi_examples={"endpoint": {"value": {k: ENDPOINT[k] for k in _CREATE_KEYS}}}),
    ],
) -> WebhookCreated:
    """Every withdrawal status change of the subscribed types is sent to the URL, signed with
    the returned secret (Standard Webhooks). A URL whose host resolves to a private, loopback,
    link-local, multicast or reserved address is refused (422) unless the deployment allows it."""
    container = container_of(request)
    async with container.uow() as uow:
        endpoint = await container.webhooks.create(
            uow,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            actor=actor_of(request),
        )
        await uow.commit()
    return WebhookCreated(**WebhookOut.of(endpoint).model_dump(), secret=endpoint.secret)


@router.get(
    "/v1/webhooks",
    response_model=list[WebhookOut],
    summary="List webhook endpoints",
    operation_id="listWebhooks",
    responses={200: example([ENDPOINT], "Oldest first")},
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
    responses={200: example(ENDPOINT, "The endpoint"), **_NOT_FOUND},
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
        200: example(ENDPOINT, "Changed"),
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
            actor=actor_of(request),
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
        await container.webhooks.delete(uow, endpoint_id, actor=actor_of(request))
        await uow.commit()
    return Response(status_code=204)


@router.post(
    "/v1/webhooks/{endpointId}/rotate-secret",
    response_model=WebhookCreated,
    summary="Rotate a webhook endpoint's secret",
    operation_id="rotateWebhookSecret",
    responses={
        200: example(
            {**ENDPOINT, "secret": SECRET, "previousSecretExpiresAt": "2026-12-03T10:15:30Z"},
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
        endpoint = await container.webhooks.rotate_secret(uow, endpoint_id, actor=actor_of(request))
        await uow.commit()
    return WebhookCreated(**WebhookOut.of(endpoint).model_dump(), secret=endpoint.secret)


@router.get(
    "/v1/webhooks/{endpointId}/deliveries",
    response_model=DeliveryPage,
    summary="An endpoint's delivery log",
    operation_id="listWebhookDeliveries",
    responses={
        200: example({"items": [DELIVERY], "nextCursor": None}, "Newest first"),
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
        202: example(
            {**DELIVERY, "status": "PENDING", "attempts": 0, "deliveredAt": None},
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
        delivery = await container.webhooks.replay(
            uow, endpoint_id, delivery_id, actor=actor_of(request)
        )
        await uow.commit()
    return DeliveryOut.of(delivery)


@router.post(
    "/v1/webhooks/{endpointId}/replay",
    status_code=202,
    response_model=ReplayOut,
    summary="Send every event since a time again",
    operation_id="replayWebhookEvents",
    responses={
        202: example({"replayed": 42}, "Queued again"),
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
        count = await container.webhooks.replay_since(
            uow, endpoint_id, since, actor=actor_of(request)
        )
        await uow.commit()
    return ReplayOut(replayed=count)
