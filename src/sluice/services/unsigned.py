"""What happens to withdrawals the signing stage does not sign: they fail before signing (their
destination reverts, or was blocklisted since validation), with their holds released at once;
they wait, with a reason; or they leave their batch to be paid on their own."""

from __future__ import annotations

import structlog

from sluice.domain.ledger import EntryKind
from sluice.domain.policy import BLOCKLISTED
from sluice.domain.withdrawal import ErrorCode, Withdrawal, WithdrawalStatus, move, note
from sluice.ports import Clock, UnitOfWork
from sluice.services import jobs
from sluice.services.ledger import Move, move_many
from sluice.services.registry import NetworkRegistry

log = structlog.get_logger(__name__)


class Unsigned:
    """Fails, waits and unbatches VALIDATING withdrawals, in the caller's transaction."""

    def __init__(self, registry: NetworkRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock

    async def unbatch(self, uow: UnitOfWork, withdrawal: Withdrawal, why: str) -> None:
        """From now on ``withdrawal`` is paid by a transaction of its own; its job starts."""
        withdrawal.unbatched = True
        change = note(withdrawal, at=self._clock.now(), reason=why)
        await uow.withdrawals.save(withdrawal)
        await uow.withdrawals.add_event(change)
        uow.enqueue(jobs.SIGN, {"withdrawalId": withdrawal.id})

    async def destination_reverts(
        self, uow: UnitOfWork, failing: list[tuple[Withdrawal, str]]
    ) -> None:
        """Fail each withdrawal whose payment reverts (with why) and release its hold."""
        await self.fail_unsigned(
            uow,
            [(w, f"paying the destination reverts: {why}") for w, why in failing],
            ErrorCode.DESTINATION_REVERTS,
        )

    async def blocklisted(self, uow: UnitOfWork, withdrawals: list[Withdrawal]) -> set[str]:
        """Fail the withdrawals whose destination was blocklisted since their validation (the
        blocklist takes effect at once); their ids."""
        blocked = await uow.policy.blocked(w.to_address for w in withdrawals)
        failing = [
            (w, f"{w.to_address} is on the blocklist (checked again before signing)")
            for w in withdrawals
            if w.to_address in blocked
        ]
        if failing:
            await self.fail_unsigned(uow, failing, BLOCKLISTED)
        return {w.id for w, _ in failing}

    async def fail_unsigned(
        self, uow: UnitOfWork, failing: list[tuple[Withdrawal, str]], code: str
    ) -> None:
        """Fail withdrawals not signed yet (each with why) and release their holds at once,
        balances locked in the global order (`move_many`)."""
        now = self._clock.now()
        moves = []
        for withdrawal, _ in failing:
            network = self._registry.get(withdrawal.network).network
            asset = network.asset_by_key(withdrawal.asset_key)
            moves.append(
                Move(withdrawal.user_id, asset, EntryKind.RELEASE, withdrawal.held, withdrawal.id)
            )
        await move_many(uow, moves, clock=self._clock)
        for withdrawal, why in failing:
            withdrawal.waiting_reason = None
            change = move(withdrawal, WithdrawalStatus.FAILED, at=now, reason=why, error_code=code)
            await uow.withdrawals.add_event(change)
            log.warning(
                "withdrawal failed before signing",
                withdrawal_id=withdrawal.id,
                code=code,
                detail=why,
            )
        await uow.withdrawals.save_many([withdrawal for withdrawal, _ in failing])

    async def wait(
        self, uow: UnitOfWork, withdrawals: list[Withdrawal], reason: str, *, exact: bool = False
    ) -> None:
        """Record why VALIDATING withdrawals cannot be signed yet (once per kind of reason;
        ``exact``: once per reason, for reasons that change rarely and say who to ask, such as
        which pause holds them)."""
        kind = reason.split(":", 1)[0]
        for withdrawal in withdrawals:
            current = withdrawal.waiting_reason
            if current is not None and (current == reason if exact else current.startswith(kind)):
                # Still waiting: only touch it, so the sweep sees its job chain is alive.
                withdrawal.updated_at = self._clock.now()
                await uow.withdrawals.save(withdrawal)
                continue
            withdrawal.waiting_reason = reason
            change = note(withdrawal, at=self._clock.now(), reason=f"waiting: {reason}")
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)
            log.warning("withdrawal waits to be signed", reason=reason)
