"""Approvals on the session's database: a quorum of distinct operators, no self-approval, no
double approval, no approval of a stale revision, one rejection ends it, the wait expires, the
policy is asked again at the last approval; holds kept or released; every decision audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.domain.access import Scope
from sluice.domain.address_lists import Blocked
from sluice.domain.addresses import Address
from sluice.domain.approvals import revision
from sluice.domain.audit import SYSTEM, Actor, AuditFilter
from sluice.domain.ledger import Balance
from sluice.domain.operators import Operator, Role
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.errors import (
    AlreadyDecidedError,
    InvalidStateError,
    OperatorRequiredError,
    SelfApprovalError,
    StaleRevisionError,
)
from sluice.services import jobs
from sluice.services.audit import verify
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import CHAIN_ID, ETH, HOT_KEY, NET, CountingSigner, Pipeline, wire

TO = Address("0x1111111111111111111111111111111111111111")
POLICY = """
label = "approvals"
[approvals]
expire_after = "1h"
[[assets]]
asset = "ETH"
fee = { fixed = "0.01" }
[[rules]]
name = "small"
max_amount = "1"
action = "allow"
[[rules]]
name = "huge"
min_amount = "100"
action = "require_approval"
approvals = 1
role = "admin"
[default]
action = "require_approval"
approvals = 2
"""
HELD = 5 * ETH + ETH // 100


@pytest.fixture
async def pipeline(engine: AsyncEngine) -> AsyncIterator[Pipeline]:
    p = wire(
        engine, FakeChain(chain_id=CHAIN_ID), CountingSigner(LocalSigner(HOT_KEY)), FakeClock()
    )
    async with p.uow() as uow:
        await uow.transactions.reconcile_nonce(NET, p.signer.address, 0)
        await p.services.policy.load(uow, POLICY.encode(), source="test", actor=SYSTEM)
        for name, role in (("ann", Role.APPROVER), ("ben", Role.APPROVER), ("cat", Role.ADMIN)):
            await uow.operators.add(Operator(f"op_{name}", name, role, p.clock.now()))
        await uow.operators.add(Operator("op_vic", "vic", Role.VIEWER, p.clock.now()))
        await uow.commit()
    await p.credit("alice", "1000")
    try:
        yield p
    finally:
        await p.queue.close()


async def _operator(pipeline: Pipeline, name: str) -> tuple[Operator, Actor]:
    async with pipeline.uow() as uow:
        operator = await uow.operators.by_name(name)
    assert operator is not None
    return operator, Actor("operator", operator.id, api_key_id=f"key-{name}", address="10.0.0.9")


async def _waiting(pipeline: Pipeline, amount: str = "5", key: str | None = None) -> str:
    withdrawal_id = await pipeline.submit("alice", amount, to=TO, api_key_id=key)
    await pipeline.validate(withdrawal_id)
    assert await pipeline.status(withdrawal_id) is WithdrawalStatus.PENDING_APPROVAL
    return withdrawal_id


async def _approve(
    pipeline: Pipeline, withdrawal_id: str, name: str, seen: str | None = None
) -> Withdrawal:
    operator, actor = await _operator(pipeline, name)
    if seen is None:
        seen = revision(await pipeline.get(withdrawal_id))
    async with pipeline.uow() as uow:
        withdrawal = await pipeline.services.approvals.approve(
            uow, withdrawal_id, operator=operator, actor=actor, seen=seen
        )
        await uow.commit()
    return withdrawal


async def _audit(pipeline: Pipeline, action: str) -> list[str]:
    async with pipeline.uow() as uow:
        entries = await uow.audit.page(AuditFilter(action=action), limit=50)
        assert (await verify(uow)).broken is None
    return [e.record.actor.label for e in reversed(entries)]


def _sign_jobs(pipeline: Pipeline, withdrawal_id: str) -> int:
    return sum(
        1
        for job, payload, *_ in pipeline.queue.published
        if job == jobs.SIGN and payload == {"withdrawalId": withdrawal_id}
    )


async def test_two_of_three_distinct_approvers_let_it_go_on(pipeline: Pipeline) -> None:
    withdrawal_id = await _waiting(pipeline)
    assert await pipeline.balance("alice") == Balance(1000 * ETH - HELD, HELD)

    first = await _approve(pipeline, withdrawal_id, "ann")
    assert first.status is WithdrawalStatus.PENDING_APPROVAL
    assert _sign_jobs(pipeline, withdrawal_id) == 0
    second = await _approve(pipeline, withdrawal_id, "ben")
    assert second.status is WithdrawalStatus.VALIDATING
    assert second.approval_expires_at is None
    assert _sign_jobs(pipeline, withdrawal_id) == 1
    assert await pipeline.balance("alice") == Balance(1000 * ETH - HELD, HELD)
    with pytest.raises(InvalidStateError, match="not waiting for approval"):
        await _approve(pipeline, withdrawal_id, "cat")
    assert await _audit(pipeline, "withdrawal.approved") == ["operator:op_ann", "operator:op_ben"]
    reasons = [e.reason for e in await pipeline.events(withdrawal_id)]
    assert "approved by ann (1 of 2)" in reasons
    assert any(r.startswith("approved by ann, ben; policy rule 'default'") for r in reasons)


async def test_nobody_approves_twice(pipeline: Pipeline) -> None:
    withdrawal_id = await _waiting(pipeline)
    await _approve(pipeline, withdrawal_id, "ann")
    with pytest.raises(AlreadyDecidedError):
        await _approve(pipeline, withdrawal_id, "ann")
    assert await pipeline.status(withdrawal_id) is WithdrawalStatus.PENDING_APPROVAL
    assert await _audit(pipeline, "withdrawal.approved") == ["operator:op_ann"]


async def test_nobody_approves_one_asked_for_with_their_own_key(pipeline: Pipeline) -> None:
    async with pipeline.uow() as uow:
        _, key = await pipeline.services.api_keys.create(
            uow, name="ann's", scopes=[Scope.WITHDRAWALS_WRITE], operator_id="op_ann"
        )
        await uow.commit()
    withdrawal_id = await _waiting(pipeline, key=key.id)
    with pytest.raises(SelfApprovalError):
        await _approve(pipeline, withdrawal_id, "ann")
    await _approve(pipeline, withdrawal_id, "ben")
    assert (await _approve(pipeline, withdrawal_id, "cat")).status is WithdrawalStatus.VALIDATING


async def test_an_approval_of_a_stale_revision_is_refused(pipeline: Pipeline) -> None:
    withdrawal_id = await _waiting(pipeline)
    other = await _waiting(pipeline, "6")
    with pytest.raises(StaleRevisionError, match="look at it again"):
        await _approve(pipeline, withdrawal_id, "ann", seen=revision(await pipeline.get(other)))
    assert await _audit(pipeline, "withdrawal.approved") == []


async def test_a_role_below_the_rules_cannot_approve(pipeline: Pipeline) -> None:
    withdrawal_id = await _waiting(pipeline, "150")
    with pytest.raises(OperatorRequiredError, match="'admin' role"):
        await _approve(pipeline, withdrawal_id, "ann")
    default = await _waiting(pipeline)
    with pytest.raises(OperatorRequiredError):
        await _approve(pipeline, default, "vic")
    assert (await _approve(pipeline, withdrawal_id, "cat")).status is WithdrawalStatus.VALIDATING


async def test_one_rejection_ends_it_and_releases_the_hold(pipeline: Pipeline) -> None:
    withdrawal_id = await _waiting(pipeline)
    await _approve(pipeline, withdrawal_id, "ann")
    operator, actor = await _operator(pipeline, "ben")
    async with pipeline.uow() as uow:
        rejected = await pipeline.services.approvals.reject(
            uow, withdrawal_id, operator=operator, actor=actor, reason="unknown destination"
        )
        await uow.commit()
    assert rejected.status is WithdrawalStatus.FAILED
    assert rejected.error_code == "rejected"
    assert rejected.error == "rejected by operator ben: unknown destination"
    assert await pipeline.balance("alice") == Balance(1000 * ETH, 0)
    assert await _audit(pipeline, "withdrawal.rejected") == ["operator:op_ben"]
    with pytest.raises(InvalidStateError):
        await _approve(pipeline, withdrawal_id, "cat")


async def test_the_wait_expires_and_releases_the_hold(pipeline: Pipeline) -> None:
    withdrawal_id = await _waiting(pipeline)
    await _approve(pipeline, withdrawal_id, "ann")
    pipeline.clock.advance(timedelta(minutes=59))
    async with pipeline.uow() as uow:
        assert await pipeline.services.approvals.expire(uow) == 0
        await uow.commit()
    pipeline.clock.advance(timedelta(minutes=2))
    async with pipeline.uow() as uow:
        assert await pipeline.services.approvals.expire(uow) == 1
        await uow.commit()
    expired = await pipeline.get(withdrawal_id)
    assert expired.status is WithdrawalStatus.FAILED
    assert expired.error_code == "approval_expired"
    assert await pipeline.balance("alice") == Balance(1000 * ETH, 0)
    assert await _audit(pipeline, "withdrawal.approval_expired") == ["system:sluice"]
    with pytest.raises(InvalidStateError):
        await _approve(pipeline, withdrawal_id, "ben")


async def test_the_last_approval_asks_the_policy_again_and_the_blocklist_wins(
    pipeline: Pipeline,
) -> None:
    withdrawal_id = await _waiting(pipeline)
    await _approve(pipeline, withdrawal_id, "ann")
    async with pipeline.uow() as uow:
        await uow.policy.block([Blocked(TO, "test", None, pipeline.clock.now())])
        await uow.commit()
    failed = await _approve(pipeline, withdrawal_id, "ben")
    assert failed.status is WithdrawalStatus.FAILED
    assert failed.error_code == "blocklisted"
    assert failed.policy_rule == "blocklist"
    assert await pipeline.balance("alice") == Balance(1000 * ETH, 0)
    assert _sign_jobs(pipeline, withdrawal_id) == 0


async def test_the_last_approval_follows_a_policy_that_now_asks_for_more(
    pipeline: Pipeline,
) -> None:
    withdrawal_id = await _waiting(pipeline)
    await _approve(pipeline, withdrawal_id, "ann")
    stricter = POLICY.replace("approvals = 2", "approvals = 3").replace('"approvals"', '"strict"')
    async with pipeline.uow() as uow:
        await pipeline.services.policy.load(uow, stricter.encode(), source="test", actor=SYSTEM)
        await uow.commit()
    waiting = await _approve(pipeline, withdrawal_id, "ben")
    assert waiting.status is WithdrawalStatus.PENDING_APPROVAL
    assert await pipeline.balance("alice") == Balance(1000 * ETH - HELD, HELD)
    going = await _approve(pipeline, withdrawal_id, "cat")
    assert going.status is WithdrawalStatus.VALIDATING
    async with pipeline.uow() as uow:
        current = await uow.policy.current()
    assert current is not None
    assert going.policy_version == current.version


async def test_a_small_one_needs_nobody(pipeline: Pipeline) -> None:
    withdrawal_id = await pipeline.submit("alice", "0.5", to=TO)
    await pipeline.validate(withdrawal_id)
    assert await pipeline.status(withdrawal_id) is WithdrawalStatus.VALIDATING
    async with pipeline.uow() as uow:
        assert await pipeline.services.approvals.waiting(uow, limit=10) == []


async def test_decisions_and_approval_outcomes_are_counted(pipeline: Pipeline) -> None:
    def count(metric: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(metric, labels) or 0.0

    before = count(
        "sluice_policy_decisions_total", network=NET, verdict="require_approval", rule="default"
    )
    rejected = count("sluice_approval_outcomes_total", outcome="rejected")
    withdrawal_id = await _waiting(pipeline)
    operator, actor = await _operator(pipeline, "ann")
    async with pipeline.uow() as uow:
        await pipeline.services.approvals.reject(
            uow, withdrawal_id, operator=operator, actor=actor, reason="no"
        )
        await uow.commit()
    assert (
        count(
            "sluice_policy_decisions_total", network=NET, verdict="require_approval", rule="default"
        )
        == before + 1
    )
    assert count("sluice_approval_outcomes_total", outcome="rejected") == rejected + 1
