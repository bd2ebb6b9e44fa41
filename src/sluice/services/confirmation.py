"""Stage 4: follow a sent transaction to finality, through replacements, re-orgs and faults.

Each round reads the chain first (`observe`, no lock held), then decides and records in one
database transaction (`apply`), and only then acts on the chain again (re-send, replace, fill a
gap), so a process killed at any line leaves either nothing or a stored decision to redo:

- A receipt for any attempt: the transaction is MINED (its withdrawals CONFIRMING); once the
  block is final (the network's depth or its ``finalized`` tag, and still canonical), the ledger
  settles: COMPLETED, FAILED (reverted) or, when the mined attempt is a cancel, CANCELLED.
- A MINED transaction without a receipt any more: a re-org removed its block. It goes back to
  BROADCAST (its withdrawals to BROADCASTING) and the attempt that was mined is sent again.
- The wallet's nonce used on chain while none of our attempts has a receipt: once that has held
  for the network's confirmation depth, the nonce went to a transaction that is not ours, none
  of ours can ever be mined, and the withdrawals are signed again with a new nonce.
- No receipt for `FeePolicy.stuck_after_s` since the latest attempt: replaced at higher fees, or
  re-sent unchanged when the fee cap or the wallet's balance leaves no room for a bump; a gap in
  the wallet's nonces below it is filled with a no-op first.
- An operator's cancel: a no-op self-transfer at the same nonce, priced as a replacement.
- The node knows none of the attempts: the latest is sent again, same bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

import structlog

from sluice import faults, metrics
from sluice.domain.addresses import Address
from sluice.domain.assets import Network
from sluice.domain.fees import Fees, Finality
from sluice.domain.ledger import EntryKind
from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    Attempt,
    AttemptPurpose,
    ChainTransaction,
    TransactionKind,
    TransactionStatus,
    noop_payload,
)
from sluice.domain.withdrawal import ErrorCode, EventData, WithdrawalStatus, move, note
from sluice.errors import ChainUnavailableError
from sluice.ports import ChainClient, Clock, Receipt, UnitOfWork
from sluice.services import jobs
from sluice.services.broadcast import send_note
from sluice.services.ledger import move_funds
from sluice.services.registry import NetworkRegistry
from sluice.services.signing import sign_attempt, sign_new
from sluice.services.watch import WATCH_LEASE_S

log = structlog.get_logger(__name__)

_TRACKED = (TransactionStatus.BROADCAST, TransactionStatus.MINED)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the chain says about a transaction right now."""

    head: int
    receipt: Receipt | None = None
    final: bool = False
    """The receipt's block is final and still canonical."""
    nonce_used: bool = False
    """The wallet's mined transaction count is past this nonce, and none of ours is mined."""
    nonce_final: bool = False
    """The nonce was used already at the latest final block (by a transaction not of ours)."""
    known: bool = True
    """The node knows at least one of the attempts (in its pool or mined)."""
    mined_count: int = 0
    """The wallet's transactions mined at the head (its next nonce on chain)."""


class StepKind(enum.Enum):
    """What the handler does after `ConfirmationService.apply`."""

    DONE = "done"
    WAIT = "wait"
    RESEND = "resend"
    REPLACE = "replace"
    CANCEL = "cancel"
    FILL_GAP = "fill_gap"


@dataclass(frozen=True, slots=True)
class Step:
    """The decision of one round, and what it needs."""

    kind: StepKind
    attempt: Attempt | None = None
    """RESEND: the attempt to send again. REPLACE and CANCEL: the latest, to replace."""
    nonce: int | None = None
    """FILL_GAP: the nonce to fill."""


class ConfirmationService:
    """BROADCAST → MINED → CONFIRMED | REVERTED | CANCELLED, or SUPERSEDED; see the module."""

    def __init__(self, registry: NetworkRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock

    # ── Reads ─────────────────────────────────────────────────────────────────────────────────

    async def tracked(
        self, uow: UnitOfWork, transaction_id: str, watch: str | None = None
    ) -> tuple[ChainTransaction, list[Attempt]] | None:
        """The transaction and its attempts, if it is still followed, by the chain ``watch``.

        A job from a chain that another took over (after a restart, or the sweep) is stale: None.
        """
        transaction = await uow.transactions.get(transaction_id)
        if transaction is None or transaction.status not in _TRACKED:
            return None
        if watch != transaction.watch and (watch is not None or transaction.watch is not None):
            return None
        return transaction, await uow.transactions.attempts(transaction_id)

    async def keep_watching(self, uow: UnitOfWork, transaction: ChainTransaction) -> None:
        """Renew the chain's lease when half of it is gone (one write a minute, not a poll)."""
        now = self._clock.now()
        if transaction.watch is None or (
            transaction.watch_until is not None
            and transaction.watch_until - now > timedelta(seconds=WATCH_LEASE_S / 2)
        ):
            return
        until = now + timedelta(seconds=self.poll_interval(transaction) + WATCH_LEASE_S)
        await uow.transactions.renew_watch(transaction.id, transaction.watch, until)

    async def observe(self, transaction: ChainTransaction, attempts: list[Attempt]) -> Observation:
        """Ask the chain about every attempt (any of them may be the one mined)."""
        entry = self._registry.get(transaction.network)
        chain = entry.chain
        head = await chain.block_number()
        receipt = await self._receipt(transaction, attempts)
        mined_count = 0
        if receipt is None:
            mined_count = await chain.transaction_count(transaction.from_address)
            if mined_count > transaction.nonce:
                # One of ours may have been mined between the two reads: look once more.
                receipt = await self._receipt(transaction, attempts)
                if receipt is None:
                    final = await self._final_block(entry.network, head)
                    final_count = (
                        await chain.transaction_count(transaction.from_address, at_block=final)
                        if final >= 0
                        else 0
                    )
                    return Observation(
                        head=head,
                        nonce_used=True,
                        nonce_final=final_count > transaction.nonce,
                        mined_count=mined_count,
                    )
        if receipt is not None:
            final = await self._is_final(entry.network, receipt, head)
            return Observation(head=head, receipt=receipt, final=final)
        known = False
        for attempt in reversed(attempts):
            if await chain.is_known(attempt.hash):
                known = True
                break
        return Observation(head=head, known=known, mined_count=mined_count)

    async def _receipt(
        self, transaction: ChainTransaction, attempts: list[Attempt]
    ) -> Receipt | None:
        chain = self._registry.get(transaction.network).chain
        for attempt in reversed(attempts):
            receipt = await chain.receipt(attempt.hash)
            if receipt is not None:
                return receipt
        return None

    async def _final_block(self, network: Network, head: int) -> int:
        """The latest block the network counts as final."""
        if network.finality is Finality.FINALIZED:
            return await self._registry.get(network.name).chain.finalized_block()
        return head - network.confirmations + 1

    async def _is_final(self, network: Network, receipt: Receipt, head: int) -> bool:
        chain = self._registry.get(network.name).chain
        if network.finality is Finality.FINALIZED:
            if await chain.finalized_block() < receipt.block_number:
                return False
        elif head - receipt.block_number + 1 < network.confirmations:
            return False
        # Deep enough; settle only if the block we saw is still the canonical one.
        return await chain.block_hash(receipt.block_number) == receipt.block_hash

    def chain(self, transaction: ChainTransaction) -> ChainClient:
        """The node of a transaction's network."""
        return self._registry.get(transaction.network).chain

    def poll_interval(self, transaction: ChainTransaction) -> float:
        """How long to wait before looking again."""
        return self._registry.get(transaction.network).network.poll_interval_s

    # ── Decisions ─────────────────────────────────────────────────────────────────────────────

    def nothing_to_record(
        self, transaction: ChainTransaction, attempts: list[Attempt], seen: Observation
    ) -> bool:
        """Whether `apply` would change nothing and ask for nothing but another look.

        The common round (sent, not mined yet, not stuck, the node has it) then needs no
        database transaction. Judged on the rows read before observing; if they changed
        meanwhile, the next round sees it.
        """
        if seen.receipt is not None or seen.nonce_used:
            return False
        if transaction.status is not TransactionStatus.BROADCAST:
            return False
        if transaction.nonce_used_at_block is not None:
            return False
        return self._unmined_step(transaction, attempts, seen).kind is StepKind.WAIT

    def _unmined_step(
        self, transaction: ChainTransaction, attempts: list[Attempt], seen: Observation
    ) -> Step:
        """What a sent, unmined transaction needs, before looking for a gap below it (REPLACE
        stands for "stuck": `_unmined` turns it into FILL_GAP when a nonce below is free)."""
        network = self._registry.get(transaction.network).network
        latest = attempts[-1]
        cancelled = any(a.purpose is AttemptPurpose.CANCEL for a in attempts)
        if transaction.cancel_requested_at is not None and not cancelled:
            return Step(StepKind.CANCEL, attempt=latest)
        if network.fees.is_stuck(latest.created_at, self._clock.now()):
            return Step(StepKind.REPLACE, attempt=latest)
        if not seen.known:
            return Step(StepKind.RESEND, attempt=latest)
        return Step(StepKind.WAIT)

    async def apply(self, uow: UnitOfWork, transaction_id: str, seen: Observation) -> Step:
        """Record what the observation means, and say what to do next on the chain."""
        transaction = await uow.transactions.get(transaction_id, lock=True)
        if transaction is None or transaction.status not in _TRACKED:
            return Step(StepKind.DONE)
        attempts = await uow.transactions.attempts(transaction_id)
        if seen.receipt is not None:
            if seen.final:
                await self._settle(uow, transaction, attempts, seen.receipt)
                return Step(StepKind.DONE)
            await self._mined(uow, transaction, attempts, seen.receipt)
            return Step(StepKind.WAIT)
        if transaction.status is TransactionStatus.MINED:
            return await self._reorged(uow, transaction, attempts)
        if seen.nonce_used:
            return await self._nonce_used(uow, transaction, seen)
        return await self._unmined(uow, transaction, attempts, seen)

    async def _nonce_used(
        self, uow: UnitOfWork, transaction: ChainTransaction, seen: Observation
    ) -> Step:
        if seen.nonce_final:
            # Used by a transaction not of ours in a block the network counts as final: none of
            # ours can ever be mined. (Judged at the final block itself, not by counting blocks
            # since it was first seen used: a re-org in between may have moved that transaction.)
            await self._superseded(uow, transaction, seen.head)
            return Step(StepKind.DONE)
        if transaction.nonce_used_at_block is None:
            transaction.nonce_used_at_block = seen.head
            await uow.transactions.save(transaction)
        return Step(StepKind.WAIT)

    async def _unmined(
        self,
        uow: UnitOfWork,
        transaction: ChainTransaction,
        attempts: list[Attempt],
        seen: Observation,
    ) -> Step:
        if transaction.nonce_used_at_block is not None:  # it was a re-org of someone else's
            transaction.nonce_used_at_block = None
            await uow.transactions.save(transaction)
        step = self._unmined_step(transaction, attempts, seen)
        if (
            step.kind is StepKind.REPLACE
            and seen.mined_count < transaction.nonce
            and await uow.transactions.at_nonce(
                transaction.network, transaction.from_address, seen.mined_count
            )
            is None
        ):
            return Step(StepKind.FILL_GAP, nonce=seen.mined_count)
        return step

    async def _mined(
        self,
        uow: UnitOfWork,
        transaction: ChainTransaction,
        attempts: list[Attempt],
        receipt: Receipt,
    ) -> None:
        if transaction.status is TransactionStatus.MINED and (
            transaction.block_hash == receipt.block_hash
            and transaction.mined_hash == receipt.transaction_hash
        ):
            return
        previous = transaction.block_number
        now = self._clock.now()
        transaction.status = TransactionStatus.MINED
        transaction.block_number = receipt.block_number
        transaction.block_hash = receipt.block_hash
        transaction.mined_hash = receipt.transaction_hash
        transaction.nonce_used_at_block = None
        transaction.updated_at = now
        await uow.transactions.save(transaction)
        attempt = _attempt_of(attempts, receipt.transaction_hash)
        what = "a no-op cancel" if attempt.purpose is AttemptPurpose.CANCEL else "the payout"
        data = _receipt_data(receipt, attempt)
        for withdrawal in await uow.withdrawals.for_transaction(transaction.id, lock=True):
            if withdrawal.status is WithdrawalStatus.BROADCASTING:
                change = move(
                    withdrawal,
                    WithdrawalStatus.CONFIRMING,
                    at=now,
                    reason=f"{what} (attempt {attempt.seq}) mined in block "
                    f"{receipt.block_number}; waiting for finality",
                    data=data,
                )
            elif withdrawal.status is WithdrawalStatus.CONFIRMING:
                metrics.TRANSACTION_EVENTS.labels(transaction.network, "reorged").inc()
                change = note(
                    withdrawal,
                    at=now,
                    reason=f"re-org: block {previous} replaced; {what} (attempt {attempt.seq}) "
                    f"is now in block {receipt.block_number}",
                    data=data,
                )
            else:
                continue
            withdrawal.transaction_hash = receipt.transaction_hash
            withdrawal.block_number = receipt.block_number
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)

    async def _reorged(
        self, uow: UnitOfWork, transaction: ChainTransaction, attempts: list[Attempt]
    ) -> Step:
        now = self._clock.now()
        block = transaction.block_number
        mined = next((a for a in attempts if a.hash == transaction.mined_hash), attempts[-1])
        transaction.status = TransactionStatus.BROADCAST
        transaction.block_number = None
        transaction.block_hash = None
        transaction.mined_hash = None
        transaction.updated_at = now
        await uow.transactions.save(transaction)
        metrics.TRANSACTION_EVENTS.labels(transaction.network, "reorged").inc()
        log.warning(
            "re-org removed a mined transaction; sending it again",
            transaction_id=transaction.id,
            block_number=block,
            transaction_hash=mined.hash,
        )
        for withdrawal in await uow.withdrawals.for_transaction(transaction.id, lock=True):
            if withdrawal.status is not WithdrawalStatus.CONFIRMING:
                continue
            withdrawal.block_number = None
            change = move(
                withdrawal,
                WithdrawalStatus.BROADCASTING,
                at=now,
                reason=f"re-org: block {block} is no longer on the chain; "
                f"attempt {mined.seq} sent again",
                data={"transactionHash": mined.hash, "attempt": mined.seq},
            )
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)
        return Step(StepKind.RESEND, attempt=mined)

    async def _settle(
        self,
        uow: UnitOfWork,
        transaction: ChainTransaction,
        attempts: list[Attempt],
        receipt: Receipt,
    ) -> None:
        """Record the final outcome and settle or release every hold, in one transaction."""
        await self._mined(uow, transaction, attempts, receipt)
        now = self._clock.now()
        attempt = _attempt_of(attempts, receipt.transaction_hash)
        cancelled = attempt.purpose is AttemptPurpose.CANCEL
        if cancelled:
            transaction.status = TransactionStatus.CANCELLED
        elif receipt.succeeded:
            transaction.status = TransactionStatus.CONFIRMED
        else:
            transaction.status = TransactionStatus.REVERTED
        transaction.updated_at = now
        await uow.transactions.save(transaction)
        await uow.transactions.set_outcomes(transaction.id, receipt.transaction_hash)
        network = self._registry.get(transaction.network).network
        data = _receipt_data(receipt, attempt)
        faults.checkpoint("before_settle")
        for withdrawal in await uow.withdrawals.for_transaction(transaction.id, lock=True):
            if withdrawal.status is not WithdrawalStatus.CONFIRMING:
                continue
            paid = receipt.succeeded and not cancelled
            await move_funds(
                uow,
                user_id=withdrawal.user_id,
                asset=network.asset_by_key(withdrawal.asset_key),
                kind=EntryKind.SETTLE if paid else EntryKind.RELEASE,
                amount=withdrawal.amount,
                clock=self._clock,
                withdrawal_id=withdrawal.id,
            )
            if cancelled:
                change = move(
                    withdrawal,
                    WithdrawalStatus.CANCELLED,
                    at=now,
                    reason=f"cancelled: the no-op replacement (attempt {attempt.seq}) is final "
                    f"in block {receipt.block_number}; nothing was paid",
                    data=data,
                )
            elif receipt.succeeded:
                change = move(
                    withdrawal,
                    WithdrawalStatus.COMPLETED,
                    at=now,
                    reason=f"final in block {receipt.block_number}",
                    data=data,
                )
            else:
                change = move(
                    withdrawal,
                    WithdrawalStatus.FAILED,
                    at=now,
                    reason=f"transaction reverted in block {receipt.block_number}",
                    error_code=ErrorCode.REVERTED,
                    data=data,
                )
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)

    async def _superseded(self, uow: UnitOfWork, transaction: ChainTransaction, head: int) -> None:
        """The nonce went to a transaction not of ours: sign the withdrawals again."""
        now = self._clock.now()
        transaction.status = TransactionStatus.SUPERSEDED
        transaction.updated_at = now
        await uow.transactions.save(transaction)
        await uow.transactions.set_outcomes(transaction.id, None)
        metrics.TRANSACTION_EVENTS.labels(transaction.network, "superseded").inc()
        log.error(
            "a hot wallet nonce was used by a transaction Sluice did not send",
            transaction_id=transaction.id,
            hot_wallet=transaction.from_address,
            nonce=transaction.nonce,
        )
        for withdrawal in await uow.withdrawals.for_transaction(transaction.id, lock=True):
            if withdrawal.status is not WithdrawalStatus.BROADCASTING:
                continue
            change = move(
                withdrawal,
                WithdrawalStatus.VALIDATING,
                at=now,
                reason=f"nonce {transaction.nonce} of {transaction.from_address} was used by "
                f"another transaction (final at block {head}); none of this withdrawal's "
                "attempts can be mined; signing again",
                data={"supersededTransactionId": transaction.id},
            )
            withdrawal.transaction_id = None
            withdrawal.transaction_hash = None
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)
            uow.enqueue(jobs.SIGN, {"withdrawalId": withdrawal.id})

    # ── Actions ───────────────────────────────────────────────────────────────────────────────

    async def replace(
        self,
        uow: UnitOfWork,
        transaction_id: str,
        latest: Attempt,
        *,
        market: Fees,
        wallet_balance: int,
        cancel: bool,
    ) -> Attempt | None:
        """Store a replacement of ``latest`` at higher fees (a no-op if ``cancel``).

        Returns:
            The attempt to send: the new one, or ``latest`` unchanged when a bump cannot help
            (the fee cap, or a wallet that could not pay the higher fees); None when the
            transaction moved on meanwhile (another process replaced it, or it was mined).
        """
        transaction = await uow.transactions.get(transaction_id, lock=True)
        if transaction is None or transaction.status is not TransactionStatus.BROADCAST:
            return None
        attempts = await uow.transactions.attempts(transaction_id)
        if attempts[-1].id != latest.id:
            return None
        entry = self._registry.get(transaction.network)
        as_cancel = cancel or latest.purpose is AttemptPurpose.CANCEL
        fees = entry.network.fees.replacement(latest.fees, market)
        gas = NATIVE_TRANSFER_GAS if as_cancel else transaction.gas_limit
        value = 0 if as_cancel else transaction.payload.value
        if fees is None or wallet_balance < value + fees.max_cost(gas):
            metrics.TRANSACTION_EVENTS.labels(transaction.network, "resent").inc()
            log.warning(
                "stuck transaction cannot be re-priced; sent again unchanged",
                transaction_id=transaction.id,
                reason="fee cap reached" if fees is None else "wallet cannot pay higher fees",
            )
            return latest
        now = self._clock.now()
        carried = await uow.withdrawals.for_transaction(transaction.id, lock=True)
        attempt = await sign_attempt(
            entry.network,
            entry.signer_for(transaction.from_address),
            transaction,
            seq=latest.seq + 1,
            fees=fees,
            at=now,
            purpose=AttemptPurpose.CANCEL if as_cancel else AttemptPurpose.PAYLOAD,
            withdrawal_ids=tuple(w.id for w in carried),
        )
        await uow.transactions.add_attempt(attempt)
        transaction.updated_at = now
        await uow.transactions.save(transaction)
        first_cancel = as_cancel and latest.purpose is not AttemptPurpose.CANCEL
        event = "cancel_sent" if first_cancel else "replaced"
        metrics.TRANSACTION_EVENTS.labels(transaction.network, event).inc()
        reason = (
            f"cancel: no-op replacement (attempt {attempt.seq}) at nonce {transaction.nonce}"
            if event == "cancel_sent"
            else f"no receipt after {entry.network.fees.stuck_after_s:g} s: replaced by attempt "
            f"{attempt.seq} at higher fees"
        )
        data: EventData = {
            "transactionHash": attempt.hash,
            "attempt": attempt.seq,
            "replaces": latest.hash,
            "maxFeePerGas": str(fees.max_fee_per_gas),
            "maxPriorityFeePerGas": str(fees.max_priority_fee_per_gas),
        }
        for withdrawal in carried:
            if withdrawal.status is not WithdrawalStatus.BROADCASTING:
                continue
            withdrawal.transaction_hash = attempt.hash
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(note(withdrawal, at=now, reason=reason, data=data))
        return attempt

    async def fill_gap(
        self,
        uow: UnitOfWork,
        network: str,
        wallet: Address,
        nonce: int,
        market: Fees,
        *,
        why: str,
    ) -> bool:
        """Store a no-op at a wallet's nonce that no stored transaction holds.

        Returns:
            True if a filler was stored (and its broadcast enqueued); False if the nonce is
            held already (another process filled it, or it is a real transaction's).
        """
        if await uow.transactions.at_nonce(network, wallet, nonce):
            return False
        entry = self._registry.get(network)
        signer = entry.signer_for(wallet)
        filler, attempt = await sign_new(
            entry.network,
            signer,
            nonce=nonce,
            payload=noop_payload(signer.address),
            gas=NATIVE_TRANSFER_GAS,
            fees=entry.network.fees.capped(market),
            at=self._clock.now(),
            request_id=None,
            kind=TransactionKind.FILLER,
        )
        await uow.transactions.add(filler, attempt)
        uow.enqueue(jobs.BROADCAST, {"transactionId": filler.id})
        metrics.TRANSACTION_EVENTS.labels(network, "gap_filled").inc()
        log.warning(
            "gap in hot wallet nonces filled with a no-op",
            hot_wallet=signer.address,
            nonce=nonce,
            why=why,
            filler_transaction_id=filler.id,
        )
        return True

    async def send(self, transaction: ChainTransaction, attempt: Attempt) -> str | None:
        """Send a stored attempt again; the node's answer as a note if not a plain acceptance."""
        chain = self._registry.get(transaction.network).chain
        try:
            result = await chain.send_raw_transaction(attempt.raw)
        except ChainUnavailableError as exc:
            return send_note(exc)
        return result.note or None

    async def record_sent(self, uow: UnitOfWork, attempt: Attempt, note_: str | None) -> None:
        """Remember that an attempt was sent, and how the node answered."""
        await uow.transactions.mark_sent(attempt.id, self._clock.now(), note_)


def _attempt_of(attempts: list[Attempt], transaction_hash: str) -> Attempt:
    for attempt in attempts:
        if attempt.hash == transaction_hash:
            return attempt
    raise ValueError(f"no attempt with hash {transaction_hash}")


def _receipt_data(receipt: Receipt, attempt: Attempt) -> EventData:
    return {
        "transactionHash": receipt.transaction_hash,
        "blockNumber": receipt.block_number,
        "blockHash": receipt.block_hash,
        "attempt": attempt.seq,
    }
