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
from sluice.domain.batches import paid_indices
from sluice.domain.effects import Effects, EngineEvent
from sluice.domain.fees import Fees, Finality
from sluice.domain.receipts import token_transfer_paid, token_transfer_seen
from sluice.domain.transaction import (
    FOLLOWED,
    NATIVE_TRANSFER_GAS,
    Attempt,
    AttemptPurpose,
    ChainTransaction,
    TransactionKind,
    TransactionStatus,
    noop_payload,
)
from sluice.ports import ChainClient, Clock, Receipt, UnitOfWork
from sluice.services import jobs
from sluice.services.broadcast import SendAnswer, send_answer
from sluice.services.engine import record
from sluice.services.fee_markets import FeeMarkets
from sluice.services.registry import NetworkRegistry
from sluice.services.signatures import sign_attempt, sign_new
from sluice.services.watch import WATCH_LEASE_S

log = structlog.get_logger(__name__)


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


@dataclass(frozen=True, slots=True)
class Prices:
    """What a replacement or a filler is priced from, read from the chain (no lock held)."""

    market: Fees
    """The strategy's price for an attempt signed now, before the network's cap."""
    wallet_balance: int


class ConfirmationService:
    """BROADCAST → MINED → CONFIRMED | REVERTED | CANCELLED, or SUPERSEDED; see the module."""

    def __init__(self, registry: NetworkRegistry, clock: Clock, fees: FeeMarkets) -> None:
        self._registry = registry
        self._clock = clock
        self._fees = fees

    # ── Reads ─────────────────────────────────────────────────────────────────────────────────

    async def tracked(
        self, uow: UnitOfWork, transaction_id: str, watch: str | None = None
    ) -> ChainTransaction | None:
        """The transaction with its attempts, if it is still followed, by the chain ``watch``.

        A job from a chain that another took over (after a restart, or the sweep) is stale: None.
        The lease is renewed here when half of it is gone (one write a minute, not a poll).
        """
        transaction = await uow.transactions.get(transaction_id)
        if transaction is None or transaction.status not in FOLLOWED:
            return None
        if watch != transaction.watch and (watch is not None or transaction.watch is not None):
            return None
        transaction.attempts = await uow.transactions.attempts(transaction_id)
        now = self._clock.now()
        if transaction.watch is not None and (
            transaction.watch_until is None
            or transaction.watch_until - now <= timedelta(seconds=WATCH_LEASE_S / 2)
        ):
            until = now + timedelta(seconds=self.poll_interval(transaction) + WATCH_LEASE_S)
            await uow.transactions.renew_watch(transaction.id, transaction.watch, until)
        return transaction

    async def observe(self, transaction: ChainTransaction) -> Observation:
        """Ask the chain about every attempt (any of them may be the one mined)."""
        entry = self._registry.get(transaction.network)
        chain = entry.chain
        head = await chain.block_number()
        receipt = await self._receipt(transaction)
        mined_count = 0
        if receipt is None:
            mined_count = await chain.transaction_count(transaction.from_address)
            if mined_count > transaction.nonce:
                # One of ours may have been mined between the two reads: look once more.
                receipt = await self._receipt(transaction)
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
        for attempt in reversed(transaction.signed_forms):
            if await chain.is_known(attempt.hash):
                known = True
                break
        return Observation(head=head, known=known, mined_count=mined_count)

    async def _receipt(self, transaction: ChainTransaction) -> Receipt | None:
        chain = self._registry.get(transaction.network).chain
        for attempt in reversed(transaction.signed_forms):
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

    async def prices(self, transaction: ChainTransaction) -> Prices:
        """The market and the wallet's balance, for a replacement or a filler."""
        entry = self._registry.get(transaction.network)
        market = await self._fees.for_transaction(transaction)
        return Prices(
            market=market, wallet_balance=await entry.chain.balance(transaction.from_address)
        )

    def chain(self, transaction: ChainTransaction) -> ChainClient:
        """The node of a transaction's network."""
        return self._registry.get(transaction.network).chain

    def poll_interval(self, transaction: ChainTransaction) -> float:
        """How long to wait before looking again."""
        return self._registry.get(transaction.network).network.poll_interval_s

    # ── Decisions ─────────────────────────────────────────────────────────────────────────────

    def nothing_to_record(self, transaction: ChainTransaction, seen: Observation) -> bool:
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
        return self._unmined_step(transaction, seen).kind is StepKind.WAIT

    def _unmined_step(self, transaction: ChainTransaction, seen: Observation) -> Step:
        """What a sent, unmined transaction needs, before looking for a gap below it (REPLACE
        stands for "stuck": `apply` turns it into FILL_GAP when a nonce below is free)."""
        network = self._registry.get(transaction.network).network
        latest = transaction.latest
        if transaction.cancel_requested_at is not None and not transaction.cancel_sent:
            return Step(StepKind.CANCEL, attempt=latest)
        if network.fees.is_stuck(transaction.stuck_since, self._clock.now()):
            return Step(StepKind.REPLACE, attempt=latest)
        if not seen.known:
            return Step(StepKind.RESEND, attempt=latest)
        return Step(StepKind.WAIT)

    async def apply(self, uow: UnitOfWork, transaction_id: str, seen: Observation) -> Step:
        """Record what the observation means, and say what to do next on the chain."""
        transaction = await uow.transactions.load(transaction_id)
        if transaction is None or transaction.status not in FOLLOWED:
            return Step(StepKind.DONE)
        now = self._clock.now()
        if seen.receipt is not None:
            return await self._included(uow, transaction, seen.receipt, final=seen.final)
        if transaction.status is TransactionStatus.MINED:
            effects, mined = transaction.reorged(at=now)
            log.warning(
                "re-org removed a mined transaction; sending it again",
                transaction_id=transaction.id,
                transaction_hash=mined.hash,
            )
            await self._record(uow, transaction, effects)
            return Step(StepKind.RESEND, attempt=mined)
        if seen.nonce_used:
            return await self._nonce_used(uow, transaction, seen)
        if transaction.nonce_free_again():  # it was a re-org of someone else's transaction
            await uow.transactions.save(transaction)
        step = self._unmined_step(transaction, seen)
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

    async def _included(
        self, uow: UnitOfWork, transaction: ChainTransaction, receipt: Receipt, *, final: bool
    ) -> Step:
        """A receipt: MINED, or settled once its block is final."""
        now = self._clock.now()
        if not final:
            effects = transaction.mined(
                block_number=receipt.block_number,
                block_hash=receipt.block_hash,
                transaction_hash=receipt.transaction_hash,
                at=now,
                fee_paid=receipt.fee_paid,
            )
            await self._record(uow, transaction, effects)
            return Step(StepKind.WAIT)
        effects = transaction.settle(
            block_number=receipt.block_number,
            block_hash=receipt.block_hash,
            transaction_hash=receipt.transaction_hash,
            succeeded=receipt.succeeded,
            unpaid=_unpaid(transaction, receipt),
            at=now,
            fee_paid=receipt.fee_paid,
        )
        faults.checkpoint("before_settle")
        await self._record(uow, transaction, effects)
        return Step(StepKind.DONE)

    async def _nonce_used(
        self, uow: UnitOfWork, transaction: ChainTransaction, seen: Observation
    ) -> Step:
        """The wallet's nonce is used on chain and none of our attempts has a receipt."""
        if not seen.nonce_final:
            if transaction.nonce_seen_used(seen.head):
                await uow.transactions.save(transaction)
            return Step(StepKind.WAIT)
        # Used by a transaction not of ours in a block the network counts as final: none of
        # ours can ever be mined. (Judged at the final block itself, not by counting blocks
        # since it was first seen used: a re-org in between may have moved that transaction.)
        log.error(
            "a hot wallet nonce was used by a transaction Sluice did not send",
            transaction_id=transaction.id,
            hot_wallet=transaction.from_address,
            nonce=transaction.nonce,
        )
        effects = transaction.superseded(head=seen.head, at=self._clock.now())
        await self._record(uow, transaction, effects)
        return Step(StepKind.DONE)

    async def _record(
        self, uow: UnitOfWork, transaction: ChainTransaction, effects: Effects
    ) -> None:
        await record(uow, transaction, effects, registry=self._registry, clock=self._clock)

    # ── Actions ───────────────────────────────────────────────────────────────────────────────

    async def replace(
        self, uow: UnitOfWork, transaction_id: str, step: Step, prices: Prices
    ) -> Attempt | None:
        """Store a replacement of the step's attempt at higher fees (a no-op for a cancel).

        Returns:
            The attempt to send: the new one, or the latest unchanged when a bump cannot help
            (the fee cap, or a wallet that could not pay the higher fees); None when the
            transaction moved on meanwhile (another process replaced it, or it was mined).
        """
        transaction = await uow.transactions.load(transaction_id)
        if (
            transaction is None
            or transaction.status is not TransactionStatus.BROADCAST
            or step.attempt is None
            or transaction.latest.id != step.attempt.id
        ):
            return None
        latest = transaction.latest
        entry = self._registry.get(transaction.network)
        cancel = step.kind is StepKind.CANCEL or latest.purpose is AttemptPurpose.CANCEL
        purpose = AttemptPurpose.CANCEL if cancel else AttemptPurpose.PAYLOAD
        fees = entry.network.fees.replacement(latest.fees, prices.market)
        if fees is None or prices.wallet_balance < transaction.cost(fees, purpose):
            log.warning(
                "stuck transaction cannot be re-priced; sent again unchanged",
                transaction_id=transaction.id,
                reason="fee cap reached" if fees is None else "wallet cannot pay higher fees",
            )
            await self._record(uow, transaction, transaction.resent(at=self._clock.now()))
            return latest
        now = self._clock.now()
        attempt = await sign_attempt(
            entry.network,
            entry.signer_for(transaction.from_address),
            transaction,
            seq=latest.seq + 1,
            fees=fees,
            at=now,
            purpose=purpose,
            withdrawal_ids=tuple(w.id for w in transaction.carried),
        )
        await uow.transactions.add_attempt(attempt)
        effects = transaction.replaced(
            attempt, at=now, stuck_after_s=entry.network.fees.stuck_after_s
        )
        await self._record(uow, transaction, effects)
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
        metrics.TRANSACTION_EVENTS.labels(network, EngineEvent.GAP_FILLED.value).inc()
        log.warning(
            "gap in hot wallet nonces filled with a no-op",
            hot_wallet=signer.address,
            nonce=nonce,
            why=why,
            filler_transaction_id=filler.id,
        )
        return True

    async def send(self, transaction: ChainTransaction, attempt: Attempt) -> SendAnswer:
        """Send a stored attempt again; the node's answer, classified."""
        return await send_answer(self._registry.get(transaction.network).chain, attempt)

    async def record_sent(
        self, uow: UnitOfWork, transaction_id: str, attempt: Attempt, answer: SendAnswer
    ) -> None:
        """Remember that an attempt was sent and how the node answered; a refusal for good
        of the payload asks for a no-op at its nonce."""
        await uow.transactions.mark_sent(attempt.id, self._clock.now(), answer.note)
        if answer.refusal is None or attempt.purpose is not AttemptPurpose.PAYLOAD:
            return
        transaction = await uow.transactions.load(transaction_id)
        if transaction is not None:
            effects = transaction.refused(answer.refusal, at=self._clock.now())
            if effects:
                await self._record(uow, transaction, effects)


def _unpaid(transaction: ChainTransaction, receipt: Receipt) -> frozenset[str]:
    """Withdrawals the receipt shows nothing reached: a token's with no ``Transfer`` from the
    hot wallet to the destination emitted by the token (one whose ``transfer`` returned false),
    and, in a batch, any whose position has no ``Paid`` event of the batch contract.

    A ``Transfer`` to the destination of another amount (a token that takes a fee on transfer)
    is a payment: the hold settles in full, as the full amount left the hot wallet, and a
    warning says so. Only a receipt that proves nothing arrived releases a hold.
    """
    unpaid: set[str] = set()
    if transaction.is_batch:
        # A batch proves each payment by its contract's Paid(position) event as well.
        paid = paid_indices(receipt.logs, transaction.payload.to)
        unpaid.update(w.id for i, w in enumerate(transaction.carried) if i not in paid)
    for w in transaction.carried:
        if w.token_address is None or w.id in unpaid:
            continue
        sender, logs = transaction.from_address, receipt.logs
        if token_transfer_paid(logs, w.token_address, sender, w.to_address, w.amount):
            continue
        if token_transfer_seen(logs, w.token_address, sender, w.to_address):
            log.warning(
                "the token moved another amount than was sent (a fee on transfer?)",
                withdrawal_id=w.id,
                transaction_hash=receipt.transaction_hash,
            )
            continue
        unpaid.add(w.id)
    return frozenset(unpaid)
