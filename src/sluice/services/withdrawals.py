"""Requesting, reading and cancelling withdrawals."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sluice.domain.addresses import Address, ensure_payable_destination, parse_address
from sluice.domain.amounts import parse_amount
from sluice.domain.fees import FeeLevel
from sluice.domain.ledger import EntryKind
from sluice.domain.transaction import Attempt, ChainTransaction
from sluice.domain.withdrawal import (
    CANCELLABLE,
    StatusChange,
    Withdrawal,
    WithdrawalStatus,
    move,
)
from sluice.errors import (
    IdempotencyConflictError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    about,
)
from sluice.ports import Clock, UnitOfWork
from sluice.services import jobs
from sluice.services.ids import new_id
from sluice.services.ledger import move_funds
from sluice.services.policy import PolicyService
from sluice.services.registry import NetworkRegistry


@dataclass(frozen=True, slots=True)
class PagePosition:
    """Where a page of withdrawals ended: the last row's ``seq``, and its ``updated_at`` when
    the listing is ordered by update time."""

    seq: int
    updated_at: datetime | None = None

    @property
    def key(self) -> tuple[datetime, int]:
        """The (updated_at, seq) keyset position of an update-ordered listing."""
        if self.updated_at is None:
            raise ValueError("not a position in an update-ordered listing")
        return self.updated_at, self.seq


@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    """A caller's request, as received (amount and addresses still text)."""

    user_id: str
    amount: str
    to_address: str
    network: str
    token_address: str | None = None
    id: str | None = None
    priority: FeeLevel | None = None
    """The fee level asked for (None: the network's default)."""


class WithdrawalService:
    """Intake, reads and cancellation."""

    def __init__(
        self, registry: NetworkRegistry, clock: Clock, policy: PolicyService | None = None
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._policy = policy or PolicyService(registry, clock)

    @property
    def policy(self) -> PolicyService:
        """The policy intake asks for fees and limits."""
        return self._policy

    async def submit(
        self,
        uow: UnitOfWork,
        request: WithdrawalRequest,
        *,
        request_id: str | None = None,
        api_key_id: str | None = None,
    ) -> tuple[Withdrawal, bool]:
        """Accept a withdrawal, or return the one already accepted under the same id.

        Everything that can be checked without the ledger is checked here, so bad input gets a
        4xx at once; the balance is checked by the validation stage under a lock.

        Returns:
            The withdrawal, and True if it was created now (False: an idempotent repeat).

        The policy in force sets the fee (held with the amount) and refuses an amount outside
        the asset's minimum and maximum (`AmountLimitError`).

        Raises:
            InvalidRequestError: Bad amount, address, network or token.
            IdempotencyConflictError: The id was used for a different withdrawal.
        """
        # Each check names the field it is about, so a refusal points the caller at it.
        with about("network"):
            network = self._registry.get(request.network).network
        with about("tokenAddress"):
            token: Address | None = (
                None if request.token_address is None else parse_address(request.token_address)
            )
            asset = network.asset(token)
        with about("amount"):
            amount = parse_amount(request.amount, asset.decimals)
            fee = self._policy.fee(await self._policy.in_force(uow), asset, amount)
        with about("toAddress"):
            destination = parse_address(request.to_address)
            ensure_payable_destination(
                destination,
                hot_wallets=network.hot_wallets,
                token_contracts=network.token_addresses,
                batch_contracts=[c for _, c in network.batching.contracts],
            )
        # A request without a priority keeps its fingerprint of before fee levels existed.
        body: list[object] = [request.user_id, network.name, asset.key, amount, destination]
        if request.priority is not None:
            body.append(request.priority.value)
        fingerprint = hashlib.sha256(json.dumps(body).encode()).hexdigest()
        # One INSERT that does nothing when the id is taken: a new withdrawal (by far the common
        # case) costs no read first, and only a repeat reads the existing row to compare.
        withdrawal_id = request.id or new_id("wd")
        now = self._clock.now()
        withdrawal = Withdrawal(
            id=withdrawal_id,
            user_id=request.user_id,
            network=network.name,
            asset_key=asset.key,
            token_address=asset.token_address,
            amount=amount,
            to_address=destination,
            status=WithdrawalStatus.PENDING,
            created_at=now,
            updated_at=now,
            fingerprint=fingerprint,
            request_id=request_id,
            priority=request.priority,
            fee=fee,
            api_key_id=api_key_id,
        )
        if not await uow.withdrawals.add(withdrawal):
            existing = await uow.withdrawals.get(withdrawal_id)
            if existing is None:  # pragma: no cover - the insert found the id, so the row exists
                raise RuntimeError("withdrawal insert conflicted but no row was found")
            return self._repeat(existing, fingerprint), False
        await uow.withdrawals.add_event(
            StatusChange(
                withdrawal_id=withdrawal.id,
                from_status=None,
                to_status=WithdrawalStatus.PENDING,
                at=now,
                reason="accepted",
                request_id=request_id,
            )
        )
        uow.enqueue(jobs.VALIDATE, {"withdrawalId": withdrawal.id})
        return withdrawal, True

    @staticmethod
    def _repeat(existing: Withdrawal, fingerprint: str) -> Withdrawal:
        if existing.fingerprint != fingerprint:
            raise IdempotencyConflictError(
                f"withdrawal {existing.id!r} exists with a different body"
            )
        return existing

    async def get(self, uow: UnitOfWork, withdrawal_id: str) -> Withdrawal:
        """Read one withdrawal.

        Raises:
            NotFoundError: No such withdrawal.
        """
        withdrawal = await uow.withdrawals.get(withdrawal_id)
        if withdrawal is None:
            raise NotFoundError(f"withdrawal {withdrawal_id!r} does not exist")
        return withdrawal

    async def page(
        self,
        uow: UnitOfWork,
        *,
        user_id: str | None,
        status: WithdrawalStatus | None,
        limit: int,
        cursor: PagePosition | None = None,
        updated_since: datetime | None = None,
    ) -> tuple[list[Withdrawal], PagePosition | None]:
        """A page of withdrawals and where the next one starts (None: this is the last).

        Newest first; with ``updated_since``, those updated at or after it, oldest change first
        (a platform catching up after downtime pages forward through what changed).

        Raises:
            InvalidRequestError: The cursor belongs to the other order (field ``cursor``).
        """
        if cursor is not None and (cursor.updated_at is None) != (updated_since is None):
            raise InvalidRequestError(
                "this cursor belongs to a listing "
                + ("without" if updated_since is not None else "with")
                + " updatedSince: pass the same parameters as for the first page",
                field="cursor",
                location="query",
            )
        if updated_since is None:
            before = None if cursor is None else cursor.seq
            items = await uow.withdrawals.page(
                user_id=user_id, status=status, limit=limit + 1, before_seq=before
            )
        else:
            after = None if cursor is None or cursor.updated_at is None else cursor.key
            items = await uow.withdrawals.changed_since(
                user_id=user_id, status=status, limit=limit + 1, since=updated_since, after=after
            )
        if len(items) <= limit:
            return items, None
        page = items[:limit]
        last = page[-1]
        if last.seq is None:  # pragma: no cover - rows read from the database have their seq
            raise RuntimeError("a stored withdrawal without seq")
        return page, PagePosition(last.seq, None if updated_since is None else last.updated_at)

    async def events(self, uow: UnitOfWork, withdrawal_id: str) -> list[StatusChange]:
        """A withdrawal's status history.

        Raises:
            NotFoundError: No such withdrawal.
        """
        await self.get(uow, withdrawal_id)
        return await uow.withdrawals.events(withdrawal_id)

    async def transaction(
        self, uow: UnitOfWork, withdrawal: Withdrawal
    ) -> tuple[ChainTransaction, list[Attempt]]:
        """The transaction that carries a withdrawal, and its attempts, oldest first; for a
        batch, with the withdrawals it carries (`ChainTransaction.withdrawals`, in position
        order).

        Raises:
            NotFoundError: The withdrawal has no transaction yet (before signing, or after its
                nonce was taken by another transaction and before it is signed again).
        """
        transaction_id = withdrawal.transaction_id
        transaction = None if transaction_id is None else await uow.transactions.get(transaction_id)
        if transaction is None:
            raise NotFoundError(f"withdrawal {withdrawal.id!r} has no transaction yet")
        if transaction.is_batch:
            transaction.withdrawals = await uow.withdrawals.for_transaction(transaction.id)
        return transaction, await uow.transactions.attempts(transaction.id)

    async def cancel(self, uow: UnitOfWork, withdrawal_id: str, *, reason: str) -> Withdrawal:
        """Cancel a withdrawal that is not signed yet, releasing any hold.

        Cancelling a cancelled withdrawal returns it unchanged.

        Raises:
            NotFoundError: No such withdrawal.
            InvalidStateError: It is signed or final already.
        """
        withdrawal = await uow.withdrawals.get(withdrawal_id, lock=True)
        if withdrawal is None:
            raise NotFoundError(f"withdrawal {withdrawal_id!r} does not exist")
        if withdrawal.status is WithdrawalStatus.CANCELLED:
            return withdrawal
        if withdrawal.status not in CANCELLABLE:
            raise InvalidStateError(f"a {withdrawal.status} withdrawal can no longer be cancelled")
        if withdrawal.status.holds_funds:
            asset = self._registry.get(withdrawal.network).network.asset_by_key(
                withdrawal.asset_key
            )
            await move_funds(
                uow,
                user_id=withdrawal.user_id,
                asset=asset,
                kind=EntryKind.RELEASE,
                amount=withdrawal.held,
                clock=self._clock,
                withdrawal_id=withdrawal.id,
            )
        change = move(withdrawal, WithdrawalStatus.CANCELLED, at=self._clock.now(), reason=reason)
        await uow.withdrawals.save(withdrawal)
        await uow.withdrawals.add_event(change)
        return withdrawal
