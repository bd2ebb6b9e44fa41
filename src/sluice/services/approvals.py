"""Withdrawals waiting for approval: operators approve or reject them, and they expire.

The quorum and the role come from the rule that sent the withdrawal for approval (in the policy
version that decided it). At the last approval the policy in force is asked again, blocklist
and velocity windows included: what it says then wins (a blocklisted address fails, a rule now
wanting more approvals keeps it waiting). Every decision is in the audit log; every status
change releases or keeps the hold in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from sluice import metrics
from sluice.domain.approvals import Approval, Vote, revision
from sluice.domain.audit import SYSTEM, Actor, AuditRecord
from sluice.domain.ledger import EntryKind
from sluice.domain.operators import Operator
from sluice.domain.policy import Action, Policy, Verdict
from sluice.domain.policy_file import load
from sluice.domain.withdrawal import ErrorCode, Withdrawal, WithdrawalStatus, move, note
from sluice.errors import (
    AlreadyDecidedError,
    InvalidStateError,
    NotFoundError,
    OperatorRequiredError,
    SelfApprovalError,
    StaleRevisionError,
)
from sluice.ports import Clock, UnitOfWork
from sluice.services import jobs
from sluice.services.ledger import Move, move_many
from sluice.services.policy import PolicyService
from sluice.services.registry import NetworkRegistry

log = structlog.get_logger(__name__)

#: Withdrawals one sweep expires at most.
EXPIRE_AT_ONCE = 200
#: The error code of a withdrawal an operator rejected.
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Waiting:
    """A withdrawal waiting for approval, what it needs and what it has."""

    withdrawal: Withdrawal
    revision: str
    required: Action
    votes: list[Approval]

    @property
    def approvals(self) -> int:
        """Approvals given so far."""
        return sum(1 for v in self.votes if v.vote is Vote.APPROVE)


class ApprovalService:
    """Approve, reject, list and expire withdrawals waiting for approval."""

    def __init__(self, registry: NetworkRegistry, clock: Clock, policy: PolicyService) -> None:
        self._registry = registry
        self._clock = clock
        self._policy = policy
        self._versions: dict[str, Policy] = {}

    async def waiting(
        self, uow: UnitOfWork, *, limit: int, before_seq: int | None = None
    ) -> list[Waiting]:
        """Withdrawals waiting for approval, newest first."""
        found = await uow.withdrawals.page(
            user_id=None,
            status=WithdrawalStatus.PENDING_APPROVAL,
            limit=limit,
            before_seq=before_seq,
        )
        votes = await uow.policy.approvals([w.id for w in found])
        return [Waiting(w, revision(w), await self.requirement(uow, w), votes[w.id]) for w in found]

    async def requirement(self, uow: UnitOfWork, withdrawal: Withdrawal) -> Action:
        """What the rule that sent it for approval asks: how many approvers, of which role."""
        version = withdrawal.policy_version
        policy = self._versions.get(version or "")
        if policy is None and version is not None:
            stored = await uow.policy.by_version(version)
            if stored is not None:
                policy = self._versions[version] = load(stored.body.encode("utf-8"))
        if policy is not None:
            for rule in policy.rules:
                if rule.name == withdrawal.policy_rule:
                    return rule.action
            if withdrawal.policy_rule == "default":
                return policy.default
        return Action(Verdict.REQUIRE_APPROVAL, approvals=1)

    async def approve(
        self,
        uow: UnitOfWork,
        withdrawal_id: str,
        *,
        operator: Operator,
        actor: Actor,
        seen: str,
    ) -> Withdrawal:
        """Record an operator's approval of the revision ``seen``; at the quorum, ask the
        policy again and let the withdrawal go on (or fail, or wait for more).

        Raises:
            NotFoundError: No such withdrawal.
            InvalidStateError: It is not waiting for approval.
            StaleRevisionError: It changed since the operator saw it.
            OperatorRequiredError: The operator's role is below the rule's.
            SelfApprovalError: It was asked for with the operator's own key.
            AlreadyDecidedError: The operator decided on it before.
        """
        withdrawal, required = await self._open(uow, withdrawal_id, operator, seen)
        if withdrawal.api_key_id is not None:
            key = await uow.api_keys.get(withdrawal.api_key_id)
            if key is not None and key.operator_id == operator.id:
                raise SelfApprovalError("nobody approves a withdrawal asked for with their own key")
        votes = await self._vote(
            uow, withdrawal, operator, actor, vote=Vote.APPROVE, seen=seen, reason=None
        )
        approvers = [v.operator_id for v in votes if v.vote is Vote.APPROVE]
        now = self._clock.now()
        await uow.audit.append(
            AuditRecord(
                actor=actor,
                action="withdrawal.approved",
                subject=f"withdrawal:{withdrawal.id}",
                at=now,
                before={"approvals": len(approvers) - 1, "required": required.approvals},
                after={"approvals": len(approvers), "required": required.approvals},
                detail={"revision": seen},
            )
        )
        if len(approvers) < required.approvals:
            change = note(
                withdrawal,
                at=now,
                reason=f"approved by {operator.name} ({len(approvers)} of {required.approvals})",
            )
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)
            return withdrawal
        return await self._quorum(uow, withdrawal, approvers)

    async def _quorum(
        self, uow: UnitOfWork, withdrawal: Withdrawal, approvers: list[str]
    ) -> Withdrawal:
        """The last approval: the policy in force decides again."""
        policy = await self._policy.in_force(uow)
        decision = (await self._policy.decide(uow, policy, [withdrawal], counted=True))[
            withdrawal.id
        ]
        withdrawal.policy_version, withdrawal.policy_rule = decision.version, decision.rule
        data = {"policyVersion": decision.version, "policyRule": decision.rule}
        names = [await self._name(uow, o) for o in approvers]
        now = self._clock.now()
        if decision.verdict is Verdict.DENY:
            metrics.APPROVAL_OUTCOMES.labels("denied").inc()
            message = decision.action.message or "refused by the withdrawal policy"
            return await self._end(
                uow,
                withdrawal,
                decision.action.code,
                f"{message} when approved: policy rule {decision.rule!r} ({decision.why})",
            )
        if decision.verdict is Verdict.REQUIRE_APPROVAL:
            enough = [
                o
                for o in approvers
                if (op := await uow.operators.get(o)) is not None and op.may(decision.action.role)
            ]
            if len(enough) < decision.action.approvals:
                change = note(
                    withdrawal,
                    at=now,
                    reason=(
                        f"approved by {', '.join(names)}, but the policy now asks for "
                        f"{decision.action.approvals} approvals ({decision.action.role.value} or "
                        f"above): rule {decision.rule!r} ({decision.why})"
                    ),
                    data=data,
                )
                await uow.withdrawals.save(withdrawal)
                await uow.withdrawals.add_event(change)
                return withdrawal
        metrics.APPROVAL_OUTCOMES.labels("approved").inc()
        withdrawal.approval_expires_at = None
        change = move(
            withdrawal,
            WithdrawalStatus.VALIDATING,
            at=now,
            reason=(
                f"approved by {', '.join(names)}; policy rule {decision.rule!r} ({decision.why})"
            ),
            data=data,
        )
        await uow.withdrawals.save(withdrawal)
        await uow.withdrawals.add_event(change)
        uow.enqueue(jobs.SIGN, {"withdrawalId": withdrawal.id})
        return withdrawal

    async def reject(
        self,
        uow: UnitOfWork,
        withdrawal_id: str,
        *,
        operator: Operator,
        actor: Actor,
        reason: str,
        seen: str | None = None,
    ) -> Withdrawal:
        """One rejection ends it: FAILED ``rejected``, its hold released.

        Raises:
            NotFoundError, InvalidStateError, StaleRevisionError, OperatorRequiredError,
            AlreadyDecidedError: As for `approve`.
        """
        withdrawal, _ = await self._open(uow, withdrawal_id, operator, seen)
        await self._vote(
            uow,
            withdrawal,
            operator,
            actor,
            vote=Vote.REJECT,
            seen=seen or revision(withdrawal),
            reason=reason,
        )
        await uow.audit.append(
            AuditRecord(
                actor=actor,
                action="withdrawal.rejected",
                subject=f"withdrawal:{withdrawal.id}",
                at=self._clock.now(),
                before={"status": withdrawal.status.value},
                after={"status": WithdrawalStatus.FAILED.value},
                detail={"reason": reason},
            )
        )
        metrics.APPROVAL_OUTCOMES.labels("rejected").inc()
        return await self._end(
            uow, withdrawal, REJECTED, f"rejected by operator {operator.name}: {reason}"
        )

    async def expire(self, uow: UnitOfWork, *, limit: int = EXPIRE_AT_ONCE) -> int:
        """Fail the withdrawals whose wait for approval is over (``approval_expired``)."""
        now = self._clock.now()
        count = 0
        for withdrawal_id in await uow.withdrawals.approvals_expired(now, limit=limit):
            withdrawal = await uow.withdrawals.get(withdrawal_id, lock=True)
            if withdrawal is None or withdrawal.status is not WithdrawalStatus.PENDING_APPROVAL:
                continue
            expired_at = withdrawal.approval_expires_at
            await uow.audit.append(
                AuditRecord(
                    actor=SYSTEM,
                    action="withdrawal.approval_expired",
                    subject=f"withdrawal:{withdrawal.id}",
                    at=now,
                    before={"status": withdrawal.status.value},
                    after={"status": WithdrawalStatus.FAILED.value},
                )
            )
            await self._end(
                uow,
                withdrawal,
                ErrorCode.APPROVAL_EXPIRED,
                "not approved in time: the wait ended "
                + ("" if expired_at is None else expired_at.isoformat(timespec="seconds")),
            )
            metrics.APPROVAL_OUTCOMES.labels("expired").inc()
            count += 1
        return count

    async def _open(
        self, uow: UnitOfWork, withdrawal_id: str, operator: Operator, seen: str | None
    ) -> tuple[Withdrawal, Action]:
        withdrawal = await uow.withdrawals.get(withdrawal_id, lock=True)
        if withdrawal is None:
            raise NotFoundError(f"withdrawal {withdrawal_id!r} does not exist")
        if withdrawal.status is not WithdrawalStatus.PENDING_APPROVAL:
            raise InvalidStateError(f"a {withdrawal.status} withdrawal is not waiting for approval")
        if seen is not None and seen != revision(withdrawal):
            raise StaleRevisionError(
                f"withdrawal {withdrawal.id!r} is at revision {revision(withdrawal)}, not {seen}:"
                " look at it again"
            )
        required = await self.requirement(uow, withdrawal)
        if not operator.may(required.role):
            raise OperatorRequiredError(
                f"this withdrawal needs operators with the {required.role.value!r} role"
            )
        return withdrawal, required

    async def _vote(
        self,
        uow: UnitOfWork,
        withdrawal: Withdrawal,
        operator: Operator,
        actor: Actor,
        *,
        vote: Vote,
        seen: str,
        reason: str | None,
    ) -> list[Approval]:
        approval = Approval(
            withdrawal_id=withdrawal.id,
            operator_id=operator.id,
            vote=vote,
            revision=seen,
            at=self._clock.now(),
            reason=reason,
            api_key_id=actor.api_key_id,
            address=actor.address,
        )
        if not await uow.policy.add_approval(approval):
            raise AlreadyDecidedError(f"operator {operator.name!r} decided on it already")
        return (await uow.policy.approvals([withdrawal.id]))[withdrawal.id]

    async def _end(
        self, uow: UnitOfWork, withdrawal: Withdrawal, code: str, reason: str
    ) -> Withdrawal:
        """FAILED with ``code``; the hold (amount and fee) released in the same transaction."""
        asset = self._registry.get(withdrawal.network).network.asset_by_key(withdrawal.asset_key)
        await move_many(
            uow,
            [Move(withdrawal.user_id, asset, EntryKind.RELEASE, withdrawal.held, withdrawal.id)],
            clock=self._clock,
        )
        withdrawal.approval_expires_at = None
        change = move(
            withdrawal,
            WithdrawalStatus.FAILED,
            at=self._clock.now(),
            reason=reason,
            error_code=code,
        )
        await uow.withdrawals.save(withdrawal)
        await uow.withdrawals.add_event(change)
        log.warning("withdrawal failed", withdrawal_id=withdrawal.id, code=code, detail=reason)
        return withdrawal

    @staticmethod
    async def _name(uow: UnitOfWork, operator_id: str) -> str:
        operator = await uow.operators.get(operator_id)
        return operator_id if operator is None else operator.name
