"""Stage 1: validate PENDING withdrawals and hold their funds, many to a database transaction."""

from __future__ import annotations

from sluice import metrics
from sluice.domain.addresses import ensure_payable_destination
from sluice.domain.ledger import EntryKind
from sluice.domain.policy import Decision, Policy, Verdict
from sluice.domain.withdrawal import StatusChange, Withdrawal, WithdrawalStatus, move
from sluice.errors import InsufficientFundsError, InvalidRequestError
from sluice.ports import Clock, UnitOfWork
from sluice.services import jobs
from sluice.services.batcher import batchable
from sluice.services.ledger import Move, hold_many
from sluice.services.policy import PolicyService
from sluice.services.registry import NetworkRegistry

#: Withdrawals one validation job takes at once on a network that batches: its own and the
#: oldest other PENDING ones. Their own jobs then find them validated, and end after one read.
VALIDATE_AT_ONCE = 50


class ValidationService:
    """PENDING → VALIDATING with the funds held, or → FAILED with a reason."""

    def __init__(
        self,
        registry: NetworkRegistry,
        clock: Clock,
        *,
        at_once: int = VALIDATE_AT_ONCE,
        policy: PolicyService | None = None,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._at_once = at_once
        self._policy = policy or PolicyService(registry, clock)

    async def validate(self, uow: UnitOfWork, withdrawal_id: str) -> WithdrawalStatus | None:
        """Validate one withdrawal, and with it, on a network that batches, the oldest other
        PENDING ones of that network (up to `VALIDATE_AT_ONCE` in all); a no-op unless it is
        PENDING.

        The withdrawal rows are locked (its own first, the others only where no other
        transaction holds them), then the balance rows in one global order: each status change
        and its hold commit together or not at all. Holds are made oldest first, so a user's
        earlier withdrawal is served first, as one by one.

        Returns:
            The new status of ``withdrawal_id``, or None if there was nothing to do.
        """
        withdrawal = await uow.withdrawals.get(withdrawal_id, lock=True)
        if withdrawal is None or withdrawal.status is not WithdrawalStatus.PENDING:
            return None
        others: list[Withdrawal] = []
        if self._feeds_batches(withdrawal.network):
            others = await uow.withdrawals.claim_pending(
                withdrawal.network, limit=self._at_once - 1, besides=withdrawal.id
            )
        group = sorted([withdrawal, *others], key=lambda w: w.seq or 0)
        changes: list[StatusChange] = []
        holds: list[Move] = []
        payable: list[Withdrawal] = []
        for each in group:
            refusal = self._refusal(each)
            if refusal is not None:
                changes.append(self._failed(each, refusal))
            else:
                payable.append(each)
        policy = await self._policy.in_force(uow)
        decisions = await self._policy.decide(uow, policy, payable)
        for each in payable:
            decision = decisions[each.id]
            each.policy_version, each.policy_rule = decision.version, decision.rule
            metrics.POLICY_DECISIONS.labels(
                each.network, decision.verdict.value, decision.rule
            ).inc()
            if decision.verdict is Verdict.DENY:
                changes.append(self._denied(each, decision))
                continue
            network = self._registry.get(each.network).network
            asset = network.asset_by_key(each.asset_key)
            holds.append(Move(each.user_id, asset, EntryKind.HOLD, each.held, each.id))
        refused = await hold_many(uow, holds, clock=self._clock)
        now = self._clock.now()
        by_id = {w.id: w for w in group}
        opened: set[str] = set()
        for hold in holds:
            each = by_id[hold.withdrawal_id]
            if hold.withdrawal_id in refused:
                short = InsufficientFundsError(
                    "available balance does not cover the amount"
                    + (" and its fee" if each.fee else "")
                )
                changes.append(self._failed(each, short))
                continue
            decision = decisions[each.id]
            data = {"policyVersion": decision.version, "policyRule": decision.rule}
            reason = f"funds held; policy rule {decision.rule!r}: {decision.why}"
            changes.append(
                move(each, WithdrawalStatus.VALIDATING, at=now, reason=reason, data=data)
            )
            if decision.verdict is Verdict.REQUIRE_APPROVAL:
                changes.append(self._await_approval(each, decision, policy))
                continue
            uow.enqueue(
                jobs.SIGN, {"withdrawalId": each.id}, delay_s=self._sign_delay(each, opened)
            )
        await uow.withdrawals.save_many(group)
        for change in changes:
            await uow.withdrawals.add_event(change)
        return withdrawal.status

    def _sign_delay(self, withdrawal: Withdrawal, opened: set[str]) -> float:
        """When its sign job first runs: at once for the first of its asset in this job, which
        opens or joins the batch window; a window later for the others, by when their batch is
        most likely signed (their job then ends after one read; one left out is planned then,
        `sluice.services.batcher`)."""
        entry = self._registry.get(withdrawal.network)
        if not batchable(entry, withdrawal):
            return 0.0
        if withdrawal.asset_key not in opened:
            opened.add(withdrawal.asset_key)
            return 0.0
        return entry.network.batching.window_s

    def _feeds_batches(self, network: str) -> bool:
        """Whether to validate this network's PENDING withdrawals many at once: where they may
        share transactions. Where each is a transaction of its own, signing (one nonce lock per
        wallet) is the narrow stage, and validating faster than it only piles up withdrawals
        that wait to be signed (docs/benchmarks.md: 33.8 → 18.7 completed/s)."""
        try:
            return self._registry.get(network).network.batching.on
        except InvalidRequestError:
            return False  # no longer configured: `_refusal` fails it

    def _refusal(self, withdrawal: Withdrawal) -> InvalidRequestError | None:
        """Why the withdrawal cannot be paid as configured now, if it cannot."""
        try:
            network = self._registry.get(withdrawal.network).network
            # Configuration may have changed since intake (a new hot wallet, a new token).
            ensure_payable_destination(
                withdrawal.to_address,
                hot_wallets=network.hot_wallets,
                token_contracts=network.token_addresses,
                batch_contracts=[c for _, c in network.batching.contracts],
            )
            network.asset_by_key(withdrawal.asset_key)
        # A refused destination, a network or token no longer configured: each error's code is
        # the withdrawal's error code (see ErrorCode).
        except InvalidRequestError as exc:
            return exc
        return None

    def _denied(self, withdrawal: Withdrawal, decision: Decision) -> StatusChange:
        message = decision.action.message or "refused by the withdrawal policy"
        return move(
            withdrawal,
            WithdrawalStatus.FAILED,
            at=self._clock.now(),
            reason=f"{message}: policy rule {decision.rule!r} ({decision.why})",
            error_code=decision.action.code,
            data={"policyVersion": decision.version, "policyRule": decision.rule},
        )

    def _await_approval(
        self, withdrawal: Withdrawal, decision: Decision, policy: Policy
    ) -> StatusChange:
        """Funds held, the withdrawal waits for its approvers until the policy's expiry."""
        now = self._clock.now()
        withdrawal.approval_expires_at = now + policy.approval_expiry
        action = decision.action
        return move(
            withdrawal,
            WithdrawalStatus.PENDING_APPROVAL,
            at=now,
            reason=(
                f"waiting for {action.approvals} approval(s) by operators with the"
                f" {action.role.value!r} role or above, until"
                f" {withdrawal.approval_expires_at.isoformat(timespec='seconds')}"
            ),
            data={"approvalsRequired": action.approvals, "approverRole": action.role.value},
        )

    def _failed(
        self, withdrawal: Withdrawal, exc: InvalidRequestError | InsufficientFundsError
    ) -> StatusChange:
        return move(
            withdrawal,
            WithdrawalStatus.FAILED,
            at=self._clock.now(),
            reason=exc.detail,
            error_code=exc.code,
        )
