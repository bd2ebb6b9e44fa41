"""Webhooks on the database (SQLite, and PostgreSQL with SLUICE_TEST_DATABASE=postgresql):
events written with their changes, fan-out, claims and leases, outcomes, disabling, replay.

The pipeline is the real one (`sluice.testing.pipeline.wire`) on a fake chain; webhooks go
through `FakeWebhookSender`, whose signatures the `standardwebhooks` verifier checks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook

from sluice.db.tables import webhook_events
from sluice.domain.audit import Actor, AuditFilter
from sluice.domain.webhooks import DeliveryStatus, Schedule, WebhookEndpoint
from sluice.domain.withdrawal import WithdrawalStatus, move
from sluice.errors import InvalidRequestError, NotFoundError
from sluice.services.webhooks import WebhookDelivery, WebhookPolicy, WebhookService
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import CHAIN_ID, HOT_KEY, NET, CountingSigner, Pipeline, wire
from sluice.testing.webhooks import FakeWebhookSender
from sluice.worker.webhooks import WebhookWorker

pytestmark = pytest.mark.database

ACTOR = Actor("service_key", "test-key", api_key_id="test-key", address="127.0.0.1")

POLICY = WebhookPolicy(
    schedule=Schedule(scale=0.001, jitter=0),
    lease=timedelta(seconds=30),
    disable_after=timedelta(days=5),
)


class Hooks:
    """The pipeline with webhook services over a fake sender, on one fake clock."""

    def __init__(self, pipeline: Pipeline, policy: WebhookPolicy = POLICY) -> None:
        self.pipeline = pipeline
        self.sender = FakeWebhookSender()
        self.service = WebhookService(pipeline.clock, self.sender, policy)
        self.delivery = WebhookDelivery(pipeline.clock, self.sender, pipeline.registry, policy)
        self.worker = WebhookWorker(pipeline.uow, self.delivery, poll_s=0.01)

    async def endpoint(self, *types: str) -> WebhookEndpoint:
        async with self.pipeline.uow() as uow:
            endpoint = await self.service.create(
                uow,
                url="https://platform.example/hooks",
                event_types=types,
                description="t",
                actor=ACTOR,
            )
            await uow.commit()
        return endpoint

    async def drain(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            if not await self.worker.round():
                return

    async def counts(self, endpoint_id: str) -> dict[str, int]:
        async with self.pipeline.uow() as uow:
            return await uow.webhooks.counts(endpoint_id)


@pytest.fixture
async def hooks(engine: AsyncEngine) -> AsyncIterator[Hooks]:
    clock = FakeClock()
    chain = FakeChain(chain_id=CHAIN_ID)
    pipeline = wire(engine, chain, CountingSigner(LocalSigner(HOT_KEY)), clock)
    async with pipeline.uow() as uow:
        await uow.transactions.reconcile_nonce(NET, pipeline.signer.address, 0)
        await uow.commit()
    try:
        yield Hooks(pipeline)
    finally:
        await pipeline.queue.close()


async def _events(engine: AsyncEngine) -> list[tuple[str, str]]:
    query = select(webhook_events.c.withdrawal_id, webhook_events.c.type).order_by(
        webhook_events.c.seq
    )
    async with engine.connect() as connection:
        return [(row[0], row[1]) for row in await connection.execute(query)]


async def _pay(hooks: Hooks, withdrawal_id: str) -> None:
    p = hooks.pipeline
    await p.validate(withdrawal_id)
    await p.sign(withdrawal_id)
    await p.broadcast(withdrawal_id)
    _transaction, [attempt] = await p.transaction(withdrawal_id)
    p.chain.mine(attempt.hash)
    await p.confirm(withdrawal_id)


async def test_every_status_change_is_an_event_written_in_its_own_transaction(
    hooks: Hooks, engine: AsyncEngine
) -> None:
    p = hooks.pipeline
    await p.credit("alice", "5")
    withdrawal_id = await p.submit("alice", "1")
    assert await _events(engine) == [(withdrawal_id, "withdrawal.pending")]
    await _pay(hooks, withdrawal_id)
    assert await p.status(withdrawal_id) is WithdrawalStatus.COMPLETED
    history = [e for e in await p.events(withdrawal_id) if e.from_status != e.to_status]
    expected = [f"withdrawal.{e.to_status.value.lower()}" for e in history]
    assert [t for _, t in await _events(engine)] == expected
    assert expected[-1] == "withdrawal.completed"


async def test_a_rolled_back_change_leaves_no_event(hooks: Hooks, engine: AsyncEngine) -> None:
    p = hooks.pipeline
    await p.credit("alice", "5")
    withdrawal_id = await p.submit("alice", "1")
    async with p.uow() as uow:
        withdrawal = await uow.withdrawals.get(withdrawal_id, lock=True)
        assert withdrawal is not None
        change = move(withdrawal, WithdrawalStatus.CANCELLED, at=p.clock.now(), reason="x")
        await uow.withdrawals.save(withdrawal)
        await uow.withdrawals.add_event(change)
        await uow.rollback()
    assert await _events(engine) == [(withdrawal_id, "withdrawal.pending")]


async def test_every_event_reaches_a_subscribed_endpoint_signed_and_verifiable(
    hooks: Hooks,
) -> None:
    endpoint = await hooks.endpoint()
    p = hooks.pipeline
    await p.credit("alice", "5")
    withdrawal_id = await p.submit("alice", "1.5")
    await _pay(hooks, withdrawal_id)
    await hooks.drain()
    verifier = Webhook(endpoint.secret)
    bodies = [_verify_at_its_time(verifier, s.body, s.headers) for s in hooks.sender.sent]
    types = [b["type"] for b in bodies]
    assert types[0] == "withdrawal.pending"
    assert types[-1] == "withdrawal.completed"
    assert {b["data"]["amount"] for b in bodies} == {"1.5"}
    assert await hooks.counts(endpoint.id) == {"DELIVERED": len(bodies)}


def _verify_at_its_time(verifier: Webhook, body: bytes, headers: dict[str, str]) -> Any:
    """What `Webhook.verify` checks, at the attempt's own time (the fake clock's): the
    verifier's own signature of the id, timestamp and body is among those sent. (`verify`
    itself also refuses a timestamp 5 minutes from the wall clock, and the fake clock is not
    the wall clock.)"""
    stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    expected = verifier.sign(headers["webhook-id"], stamp, body)
    assert expected in headers["webhook-signature"].split(" ")
    return json.loads(body)


async def test_an_endpoint_receives_only_the_types_it_subscribes_to(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint("withdrawal.completed")
    p = hooks.pipeline
    await p.credit("alice", "5")
    await _pay(hooks, await p.submit("alice", "1"))
    await hooks.drain()
    assert [s.json["type"] for s in hooks.sender.sent] == ["withdrawal.completed"]
    assert await hooks.counts(endpoint.id) == {"DELIVERED": 1}


async def test_a_failed_attempt_is_retried_with_the_same_webhook_id_until_it_succeeds(
    hooks: Hooks,
) -> None:
    endpoint = await hooks.endpoint("withdrawal.pending")
    hooks.sender.answers = [500, 503, 302]
    p = hooks.pipeline
    await p.submit("alice", "1")
    for _ in range(6):
        await hooks.drain()
        p.clock.advance(60)
    ids = {s.headers["webhook-id"] for s in hooks.sender.sent}
    assert len(hooks.sender.sent) == 4
    assert len(ids) == 1
    async with p.uow() as uow:
        [delivery] = await uow.webhooks.deliveries(endpoint.id, limit=10, before_seq=None)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.attempts == 4
    assert delivery.last_status_code == 200


async def test_a_delivery_whose_schedule_is_spent_fails(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint("withdrawal.pending")
    hooks.sender.default = 500
    await hooks.pipeline.submit("alice", "1")
    for _ in range(15):
        await hooks.drain()
        hooks.pipeline.clock.advance(3600)
    assert len(hooks.sender.sent) == Schedule().attempts
    assert await hooks.counts(endpoint.id) == {"FAILED": 1}


async def test_410_disables_the_endpoint_and_nothing_more_is_sent(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint()
    hooks.sender.answers = [410]
    p = hooks.pipeline
    await p.credit("alice", "5")
    await p.submit("alice", "1")
    await hooks.drain()
    async with p.uow() as uow:
        disabled = await hooks.service.get(uow, endpoint.id)
    assert disabled.disabled
    assert "410" in str(disabled.disabled_reason)
    async with p.uow() as uow:
        [entry] = await uow.audit.page(AuditFilter(action="webhook.disabled"), limit=10)
    assert entry.record.actor.label == "system:sluice"
    assert entry.record.subject == f"webhook:{endpoint.id}"
    assert entry.record.after is not None
    assert entry.record.after["disabled"] is True
    await p.submit("alice", "1")
    p.clock.advance(3600)
    await hooks.drain()
    assert len(hooks.sender.sent) == 1
    async with p.uow() as uow:
        await hooks.service.update(uow, endpoint.id, disabled=False, actor=ACTOR)
        await uow.commit()
    await hooks.drain()
    assert len(hooks.sender.sent) == 2  # the first again (its schedule resumed)


async def test_an_endpoint_failing_for_the_set_time_is_disabled(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint("withdrawal.pending")
    hooks.sender.default = 500
    p = hooks.pipeline
    for n in range(8):
        await p.submit("alice", "1", withdrawal_id=f"w-{n}")
        await hooks.drain()
        p.clock.advance(timedelta(days=1))
    async with p.uow() as uow:
        disabled = await hooks.service.get(uow, endpoint.id)
    assert disabled.disabled
    assert "failing since" in str(disabled.disabled_reason)
    assert disabled.disabled_at is not None
    assert disabled.failing_since is not None
    assert disabled.disabled_at - disabled.failing_since >= timedelta(days=5)


async def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_lapses(
    hooks: Hooks,
) -> None:
    await hooks.endpoint("withdrawal.pending")
    p = hooks.pipeline
    await p.submit("alice", "1")
    d = hooks.delivery
    async with p.uow() as uow:
        await d.dispatch(uow)
        await uow.commit()
    async with p.uow() as uow:
        [first] = await d.claim(uow, limit=10)
        await uow.commit()
    async with p.uow() as uow:
        assert await d.claim(uow, limit=10) == []
        await uow.commit()
    p.clock.advance(POLICY.lease + timedelta(seconds=1))  # the first worker was killed
    async with p.uow() as uow:
        [second] = await d.claim(uow, limit=10)
        await uow.commit()
    assert second.delivery.id == first.delivery.id
    assert second.claim != first.claim
    outcome = await d.attempt(first)  # the first worker's late answer is not recorded
    async with p.uow() as uow:
        assert not await d.record(uow, first, outcome)
        assert await d.record(uow, second, await d.attempt(second))
        await uow.commit()
    assert {s.headers["webhook-id"] for s in hooks.sender.sent} == {first.delivery.event.id}


async def test_a_private_destination_is_refused_at_registration_and_at_delivery(
    hooks: Hooks,
) -> None:
    hooks.sender.addresses["internal.example"] = ["10.0.0.7"]
    async with hooks.pipeline.uow() as uow:
        with pytest.raises(InvalidRequestError, match="private") as raised:
            await hooks.service.create(
                uow, url="https://internal.example/h", event_types=(), description="", actor=ACTOR
            )
        with pytest.raises(InvalidRequestError, match="loopback"):
            await hooks.service.create(
                uow, url="http://127.0.0.1:9/h", event_types=(), description="", actor=ACTOR
            )
    assert raised.value.field == "url"
    endpoint = await hooks.endpoint("withdrawal.pending")
    hooks.sender.addresses["platform.example"] = ["169.254.169.254"]  # DNS changed since
    await hooks.pipeline.submit("alice", "1")
    await hooks.drain()
    assert hooks.sender.sent == []
    async with hooks.pipeline.uow() as uow:
        [delivery] = await uow.webhooks.deliveries(endpoint.id, limit=5, before_seq=None)
    assert "link-local" in str(delivery.last_error)


async def test_replays_resend_one_delivery_or_everything_since_a_time(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint()
    p = hooks.pipeline
    await p.credit("alice", "5")
    await _pay(hooks, await p.submit("alice", "1"))
    await hooks.drain()
    sent = len(hooks.sender.sent)
    async with p.uow() as uow:
        log = await hooks.service.deliveries(uow, endpoint.id, limit=100, before_seq=None)
        replayed = await hooks.service.replay(uow, endpoint.id, log[0].id, actor=ACTOR)
        await uow.commit()
    assert replayed.replay_of == log[0].id
    assert replayed.event.id == log[0].event.id
    await hooks.drain()
    assert len(hooks.sender.sent) == sent + 1
    assert hooks.sender.sent[-1].headers["webhook-id"] == log[0].event.id
    async with p.uow() as uow:
        count = await hooks.service.replay_since(
            uow, endpoint.id, p.clock.now() - timedelta(1), actor=ACTOR
        )
        await uow.commit()
    assert count == sent
    await hooks.drain()
    assert len(hooks.sender.sent) == 2 * sent + 1
    async with p.uow() as uow:
        with pytest.raises(NotFoundError):
            await hooks.service.replay(uow, endpoint.id, "dlv_missing", actor=ACTOR)


async def test_a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(
    hooks: Hooks,
) -> None:
    endpoint = await hooks.endpoint("withdrawal.pending")
    p = hooks.pipeline
    async with p.uow() as uow:
        rotated = await hooks.service.rotate_secret(uow, endpoint.id, actor=ACTOR)
        await uow.commit()
    assert rotated.secret != endpoint.secret
    await p.submit("alice", "1", withdrawal_id="during")
    await hooks.drain()
    during = hooks.sender.sent[-1]
    for secret in (endpoint.secret, rotated.secret):
        _verify_at_its_time(Webhook(secret), during.body, during.headers)
    p.clock.advance(POLICY.secret_overlap + timedelta(seconds=1))
    await p.submit("alice", "1", withdrawal_id="after")
    await hooks.drain()
    after = hooks.sender.sent[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    _verify_at_its_time(Webhook(rotated.secret), after.body, after.headers)
    async with p.uow() as uow:
        entries = await uow.audit.page(AuditFilter(subject=f"webhook:{endpoint.id}"), limit=10)
    assert [e.record.action for e in entries] == ["webhook.secret_rotated", "webhook.created"]
    assert {e.record.actor.label for e in entries} == {"service_key:test-key"}
    logged = json.dumps([[e.record.before, e.record.after, e.record.detail] for e in entries])
    assert endpoint.secret not in logged
    assert rotated.secret not in logged


async def test_deleting_an_endpoint_deletes_its_log_and_stops_its_deliveries(
    hooks: Hooks, engine: AsyncEngine
) -> None:
    endpoint = await hooks.endpoint()
    await hooks.pipeline.submit("alice", "1")
    async with hooks.pipeline.uow() as uow:
        await hooks.delivery.dispatch(uow)
        await hooks.service.delete(uow, endpoint.id, actor=ACTOR)
        await uow.commit()
    await hooks.drain()
    assert hooks.sender.sent == []
    async with engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(webhook_events))).scalar()


async def test_two_workers_claiming_at_once_take_different_deliveries(
    hooks: Hooks, engine: AsyncEngine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes whole transactions (BEGIN IMMEDIATE): nothing to race")
    await hooks.endpoint("withdrawal.pending")
    p = hooks.pipeline
    for n in range(6):
        await p.submit("alice", "1", withdrawal_id=f"w-{n}")
    async with p.uow() as uow:
        await hooks.delivery.dispatch(uow)
        await uow.commit()
    async with p.uow() as first, p.uow() as second:
        # The first claim's rows stay locked until it commits: the second skips them.
        a = await hooks.delivery.claim(first, limit=4)
        b = await hooks.delivery.claim(second, limit=4)
        await first.commit()
        await second.commit()
    assert len(a) == 4
    assert len(b) == 2
    assert not {c.delivery.id for c in a} & {c.delivery.id for c in b}
