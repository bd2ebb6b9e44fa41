"""Stage 2: plan a transaction, choose a hot wallet, assign a nonce, sign, and store before
anything is sent.

Planning turns the withdrawals ready to pay into one transaction's payload (one withdrawal
today; a batch later). Before a nonce is taken, the wallet must be able to pay: its balance at
the latest block, less what its unmined transactions may still take, must cover the payload's
value (or token amount) and its gas at the fee cap; and it must have fewer than the network's
``max_in_flight`` transactions between signing and finality. When no wallet qualifies, the
withdrawal waits in VALIDATING with a visible ``waiting_reason`` (recorded once in its history,
logged at warning, counted in a metric) and signing is tried again later; it never fails for
that. Token balances are checked before any estimate (an ERC-20 transfer from a wallet short of
the token reverts), so a shortfall waits as ``underfunded`` like the native coin's.

A gas estimate that reverts from a wallet that could pay is the destination's answer (a
contract that refuses the coin, a token that refuses the recipient): the withdrawal FAILS with
``destination_reverts`` and its hold is released; nothing was signed.

A paused network (an operator's pause, a freeze of every network, a tripped circuit breaker:
`sluice.services.pauses`) signs no new payout: `PauseService.admit` is asked under the
withdrawals' locks right before a nonce is taken, by single payouts and batches alike, and the
withdrawals wait in VALIDATING with a ``paused: …`` or ``circuit_breaker: …`` reason. Only new
payouts stop: replacements, gap fillers and cancels of what is signed are the confirmation
stage's and keep running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from sluice import faults, metrics
from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Network
from sluice.domain.batches import batch_payload
from sluice.domain.fees import FeeLevel
from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    ChainTransaction,
    Fees,
    Payload,
    transfer_payload,
)
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.errors import CallRevertedError
from sluice.ports import Clock, InFlight, Signer, UnitOfWork
from sluice.services import jobs
from sluice.services.batcher import Batcher, BatchPlan, batchable
from sluice.services.engine import record
from sluice.services.fee_markets import FeeMarkets
from sluice.services.holdings import cannot_hold, underfunded
from sluice.services.holdings import l1_fee as l1_fee_of
from sluice.services.pauses import PAUSE_RETRY_S, PauseService
from sluice.services.registry import NetworkRegistry
from sluice.services.signatures import sign_new
from sluice.services.unsigned import Unsigned

log = structlog.get_logger(__name__)

#: Head-room on estimated gas: estimates are exact for the state they ran on, which moves.
GAS_MARGIN_PERCENT = 20

#: The kind of waiting reason of a withdrawal whose network's node is down (or misconfigured).
NETWORK_CLOSED = "network_unavailable"


@dataclass(frozen=True, slots=True)
class Ready:
    """Withdrawals ready to be paid by one transaction, and what each hot wallet has in flight,
    read from the database before the chain is asked anything."""

    withdrawals: tuple[Withdrawal, ...]
    in_flight: Mapping[Address, InFlight]
    own: str = ""
    """The withdrawal whose job this is."""
    wait_s: float | None = None
    """Set when the job waits for a batch to fill (`sluice.services.batcher.Batcher.group`):
    nothing is planned now; the job runs again after this long."""
    planning: tuple[str, str] | None = None
    """The group this job plans (released by `SigningService.done`)."""
    paused: str | None = None
    """Set when the network is paused (the waiting reason): nothing is planned or quoted; the
    job records why it waits (`SigningService.held`) and runs again later."""

    @property
    def network(self) -> str:
        """The network they are paid on."""
        return self.withdrawals[0].network

    @property
    def waiting_for_network(self) -> bool:
        """Whether they already say they wait for their network's node."""
        return all((w.waiting_reason or "").startswith(NETWORK_CLOSED) for w in self.withdrawals)

    def level(self, default: FeeLevel) -> FeeLevel:
        """The fee level their transaction is priced at: the most urgent of theirs, each one
        that asked for none counting as the network's ``default`` (a batch is never priced
        below what any of its withdrawals would get on its own)."""
        return max((w.priority or default for w in self.withdrawals), key=lambda x: x.rank)


def plan_payload(
    asset: Asset, withdrawals: tuple[Withdrawal, ...], contract: Address | None = None
) -> Payload:
    """The payload of one transaction that pays ``withdrawals``: a plain transfer for one, a
    call to the hot wallet's batch ``contract`` for several (in acceptance order)."""
    if len(withdrawals) == 1 and contract is None:
        (withdrawal,) = withdrawals
        return transfer_payload(asset, withdrawal.to_address, withdrawal.amount)
    if contract is None or not withdrawals:
        raise ValueError("a batch needs its contract and at least one withdrawal")
    ordered = sorted(withdrawals, key=lambda w: w.seq or 0)
    return batch_payload(contract, asset.token_address, [(w.to_address, w.amount) for w in ordered])


@dataclass(frozen=True, slots=True)
class Quote:
    """What the chain says the planned transaction needs, gathered before locking anything."""

    ready: Ready
    payload: Payload
    fees: Fees
    gas: int = 0
    wallet: Signer | None = None
    """The hot wallet chosen to pay it; None when none can now (see ``waiting_reason``)."""
    waiting_reason: str | None = None
    reverts: str | None = None
    """Why paying the destination reverts, if it does (the withdrawal then fails)."""
    level: FeeLevel | None = None
    """The fee level it is priced at."""
    batch: BatchPlan | None = None
    """For a group: the batch planned (its payload and wallet are the quote's) and what becomes
    of the members it does not carry."""


#: How long a withdrawal waits before it looks again by itself when every hot wallet of its
#: network has its most transactions in flight. A transaction of the network reaching finality
#: wakes the oldest waiting withdrawals sooner (`sluice.services.engine.record`), so thousands of
#: waiting withdrawals cost work per freed slot, not per second.
CAPACITY_RETRY_S = 15.0


@dataclass(frozen=True, slots=True)
class Signed:
    """What `SigningService.record` did."""

    commit: bool
    """Whether the caller commits (False: nothing changed, and a nonce must not be taken)."""
    signed: bool = False
    retry_after: float | None = None
    """When to try again; None when the withdrawal no longer waits to be signed."""


class SigningService:
    """VALIDATING → SIGNED: the transaction is planned, signed and stored with its nonce."""

    def __init__(
        self,
        registry: NetworkRegistry,
        clock: Clock,
        fees: FeeMarkets,
        pauses: PauseService | None = None,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._fees = fees
        self._pauses = pauses or PauseService(registry, clock)
        self._batcher = Batcher()
        self._unsigned = Unsigned(registry, clock)

    async def ready(self, uow: UnitOfWork, withdrawal_id: str) -> Ready | None:
        """The withdrawal, if it waits to be signed, and the hot wallets' load."""
        withdrawal = await uow.withdrawals.get(withdrawal_id)
        if withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING:
            return None
        pause = await self._pauses.holding(uow, withdrawal.network)
        if pause is not None:  # no chain reads for a paused network (`record` decides)
            reason = pause.waiting_reason(withdrawal.network)
            return Ready(withdrawals=(withdrawal,), in_flight={}, own=withdrawal.id, paused=reason)
        entry = self._registry.get(withdrawal.network)
        members: tuple[Withdrawal, ...] = (withdrawal,)
        planning = None
        if batchable(entry, withdrawal):
            found = await self._batcher.group(uow, entry, withdrawal, self._clock.now())
            if found.wait_s is not None:
                return Ready(
                    withdrawals=found.withdrawals,
                    in_flight={},
                    own=withdrawal.id,
                    wait_s=found.wait_s,
                )
            members, planning = found.withdrawals, found.planning
        in_flight = {
            s.address: await uow.transactions.in_flight(withdrawal.network, s.address)
            for s in entry.signers
        }
        return Ready(withdrawals=members, in_flight=in_flight, own=withdrawal.id, planning=planning)

    async def quote(self, ready: Ready) -> Quote:
        """Plan the payload, price it, and find a wallet that can pay it. Pure reads: safe to
        repeat, holds no lock.

        Raises:
            ChainUnavailableError: The node did not answer (the worker retries).
        """
        entry = self._registry.get(ready.network)
        network = entry.network
        asset = network.asset_by_key(ready.withdrawals[0].asset_key)
        level = ready.level(network.fees.default_level)
        fees = await self._fees.offer(network.name, level)
        if len(ready.withdrawals) > 1:
            plan = await self._batcher.plan(entry, ready.withdrawals, ready.in_flight, fees)
            return Quote(
                ready,
                plan.payload or plan_payload(asset, ready.withdrawals[:1]),
                fees,
                gas=plan.gas,
                wallet=plan.wallet,
                waiting_reason=plan.waiting_reason,
                level=level,
                batch=plan,
            )
        payload = plan_payload(asset, ready.withdrawals)
        tokens = sum(w.amount for w in ready.withdrawals) if asset.token_address else 0
        gas: int | None = None
        if (
            asset.is_native
            and network.fixed_transfer_gas
            and await entry.chain.code_size(payload.to) == 0
        ):
            gas = NATIVE_TRANSFER_GAS
        reasons: list[str] = []
        l1_fee: int | None = None
        for signer in sorted(entry.accepting, key=lambda s: ready.in_flight[s.address].count):
            flight = ready.in_flight[signer.address]
            reason = await cannot_hold(
                entry,
                signer=signer,
                asset=asset,
                payload=payload,
                tokens=tokens,
                flight=flight,
                estimating=gas is None,
            )
            if reason is None and gas is None:
                try:
                    estimate = await entry.chain.estimate_gas(
                        signer.address, payload.to, payload.value, payload.data
                    )
                except CallRevertedError as exc:
                    return Quote(ready, payload, fees, reverts=str(exc))
                gas = estimate + estimate * GAS_MARGIN_PERCENT // 100
            if reason is None and gas is not None:
                if l1_fee is None:  # the same for every wallet: asked once
                    l1_fee = await l1_fee_of(entry, payload)
                needed = flight.native + payload.value + fees.max_cost(gas) + l1_fee
                native = await entry.chain.balance(signer.address)
                if native >= needed:
                    return Quote(ready, payload, fees, gas=gas, wallet=signer, level=level)
                reason = underfunded(signer, native, needed)
            assert reason is not None  # noqa: S101 - every other path returned
            reasons.append(reason)
            metrics.HOT_WALLET_WAITS.labels(network.name, reason.split(":", 1)[0]).inc()
        return Quote(ready, payload, fees, waiting_reason="; ".join(reasons) or "no hot wallet")

    async def network_closed(self, uow: UnitOfWork, ready: Ready, why: str) -> bool:
        """Record that the withdrawals wait because their network takes no chain work now
        (``why``: ``down: timed out``), as their ``waiting_reason``.

        Returns:
            Whether anything changed (the caller commits).
        """
        withdrawals = []
        for planned in ready.withdrawals:
            withdrawal = await uow.withdrawals.get(planned.id, lock=True)
            if withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING:
                return False
            withdrawals.append(withdrawal)
        await self._unsigned.wait(
            uow, withdrawals, f"{NETWORK_CLOSED}: network {ready.network} is {why}"
        )
        return True

    async def held(self, uow: UnitOfWork, ready: Ready) -> float:
        """Record that the withdrawal waits for its network's pause (``ready.paused``).

        Returns:
            When its job looks again.
        """
        withdrawal = await uow.withdrawals.get(ready.own, lock=True)
        if withdrawal is not None and withdrawal.status is WithdrawalStatus.VALIDATING:
            await self._unsigned.wait(uow, [withdrawal], ready.paused or "paused", exact=True)
        return PAUSE_RETRY_S

    def done(self, ready: Ready) -> None:
        """The job that read ``ready`` is done with it: another may plan its group."""
        self._batcher.release(ready.planning)

    def retry_after(self, network: str) -> float:
        """How long a waiting withdrawal waits before signing is tried again."""
        return max(1.0, 5 * self._registry.get(network).network.poll_interval_s)

    async def record(self, uow: UnitOfWork, quote: Quote) -> Signed:
        """Act on a quote: sign and store the transaction, fail the withdrawals whose
        destination reverts, or record why they wait. A no-op unless they are VALIDATING.

        Signing locks the nonce counter until commit, so nonces are handed out one at a time
        per hot wallet across every process; the in-flight count is checked again under that
        lock, so the limit holds exactly. If anything fails before the commit, the nonce was
        never taken and nothing was stored or sent.
        """
        if quote.batch is not None:
            return await self._record_batch(uow, quote, quote.batch)
        withdrawals = []
        for planned in quote.ready.withdrawals:
            withdrawal = await uow.withdrawals.get(planned.id, lock=True)
            if withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING:
                return Signed(commit=False)  # moved on meanwhile: nothing to do
            withdrawals.append(withdrawal)
        blocked = await self._unsigned.blocklisted(uow, withdrawals)
        if blocked or quote.reverts is not None:
            if not blocked and quote.reverts is not None:
                await self._unsigned.destination_reverts(
                    uow, [(w, quote.reverts) for w in withdrawals]
                )
            return Signed(commit=True)
        retry = self.retry_after(quote.ready.network)
        if quote.wallet is None:
            await self._unsigned.wait(uow, withdrawals, quote.waiting_reason or "waiting")
            return Signed(commit=True, retry_after=self._waiting_retry(quote.ready, retry))
        network = self._registry.get(quote.ready.network).network
        outcome = await self._admit(uow, network, withdrawals, withdrawals)
        if outcome is None:  # neither paused nor over the breaker's limit: sign
            stored = await self._store(
                uow,
                network=network,
                quote=quote,
                signer=quote.wallet,
                payload=quote.payload,
                withdrawals=withdrawals,
            )
            if stored is None:
                return Signed(commit=False, retry_after=retry)  # the nonce is not taken
            outcome = Signed(commit=True, signed=True)
        return outcome

    async def _admit(
        self,
        uow: UnitOfWork,
        network: Network,
        paying: list[Withdrawal],
        waiting: list[Withdrawal],
    ) -> Signed | None:
        """Ask the network's pause and breaker whether ``paying`` (one asset) may be signed now,
        the withdrawals locked; if not, ``waiting`` (the locked ones still VALIDATING) record
        why, and the outcome says when to look again. None: sign."""
        amount = sum(w.amount for w in paying)
        pause = await self._pauses.admit(uow, network.name, paying[0].asset_key, amount)
        if pause is None:
            return None
        await self._unsigned.wait(uow, waiting, pause.waiting_reason(network.name), exact=True)
        return Signed(commit=True, retry_after=PAUSE_RETRY_S)

    async def _store(
        self,
        uow: UnitOfWork,
        *,
        network: Network,
        quote: Quote,
        signer: Signer,
        payload: Payload,
        withdrawals: list[Withdrawal],
    ) -> ChainTransaction | None:
        """Take the wallet's next nonce, sign ``payload`` for ``withdrawals`` and store it, its
        broadcast queued; None (and no nonce taken) when the wallet has too much in flight."""
        nonce = await uow.transactions.next_nonce(network.name, signer.address)
        faults.checkpoint("after_nonce")
        in_flight = await uow.transactions.count_in_flight(network.name, signer.address)
        if in_flight >= network.max_in_flight:
            return None
        transaction, attempt = await sign_new(
            network,
            signer,
            nonce=nonce,
            payload=payload,
            gas=quote.gas,
            fees=quote.fees,
            at=self._clock.now(),
            request_id=withdrawals[0].request_id,
            withdrawal_ids=tuple(w.id for w in withdrawals),
            priority=quote.level,
        )
        faults.checkpoint("after_sign")
        await uow.transactions.add(transaction, attempt)
        effects = transaction.signed(attempt, withdrawals)
        await record(uow, transaction, effects, registry=self._registry, clock=self._clock)
        uow.enqueue(jobs.BROADCAST, {"transactionId": transaction.id})
        return transaction

    async def _record_batch(self, uow: UnitOfWork, quote: Quote, plan: BatchPlan) -> Signed:
        """Apply a batch plan to the members still waiting to be signed (locked in acceptance
        order, so two batchers never deadlock): fail those whose payment reverts, mark those
        paid on their own (and start their jobs), then sign and store the batch of the rest."""
        ready = quote.ready
        locked, carried, changed = await self._claim(uow, ready, plan)
        retry = self.retry_after(ready.network)
        if not carried or quote.wallet is None:
            if plan.waiting_reason is not None and locked:
                await self._unsigned.wait(uow, list(locked.values()), plan.waiting_reason)
                return Signed(commit=True, retry_after=self._waiting_retry(ready, retry))
            return Signed(commit=changed, retry_after=self._again(ready, locked))
        entry = self._registry.get(ready.network)
        network = entry.network
        asset = network.asset_by_key(carried[0].asset_key)
        payload = quote.payload
        if len(carried) < len(plan.carried):
            contract = network.batching.contract_of(quote.wallet.address)
            payload = plan_payload(asset, tuple(carried), contract)
        held = await self._admit(uow, network, carried, list(locked.values()))
        if held is not None:
            return held
        transaction = await self._store(
            uow,
            network=network,
            quote=quote,
            signer=quote.wallet,
            payload=payload,
            withdrawals=carried,
        )
        if transaction is None:
            return Signed(commit=False, retry_after=retry)  # the nonce is not taken
        for withdrawal in carried:
            locked.pop(withdrawal.id, None)
        # The next group's oldest forms its batch now rather than when its job next looks.
        following = await uow.withdrawals.batchable(network.name, asset.key, limit=1)
        for withdrawal in following:
            uow.enqueue(jobs.SIGN, {"withdrawalId": withdrawal.id})
        log.info(
            "batch signed", network=network.name, size=len(carried), transaction=transaction.id
        )
        return Signed(commit=True, signed=True, retry_after=self._again(ready, locked))

    async def _claim(
        self, uow: UnitOfWork, ready: Ready, plan: BatchPlan
    ) -> tuple[dict[str, Withdrawal], list[Withdrawal], bool]:
        """Lock the group's members that still wait to be signed and settle those the batch
        does not carry. Returns the members left waiting, those the batch carries, and
        whether anything changed."""
        locked = {
            w.id: w
            for w in await uow.withdrawals.get_many([w.id for w in ready.withdrawals], lock=True)
            if w.status is WithdrawalStatus.VALIDATING and w.transaction_id is None
        }
        changed = False
        for withdrawal_id in await self._unsigned.blocklisted(uow, list(locked.values())):
            locked.pop(withdrawal_id)
            changed = True
        reverting = [(locked.pop(i), why) for i, why in plan.reverting if i in locked]
        if reverting:
            await self._unsigned.destination_reverts(uow, reverting)
            changed = True
        for withdrawal_id, why in plan.unbatch:
            if withdrawal_id in locked:
                await self._unsigned.unbatch(uow, locked.pop(withdrawal_id), why)
                changed = True
        carried = [locked[w.id] for w in plan.carried if w.id in locked]
        if len(carried) == 1:  # the others moved on meanwhile: no batch of one
            await self._unsigned.unbatch(uow, locked.pop(carried[0].id), "paid on its own")
            carried, changed = [], True
        return locked, carried, changed

    def _waiting_retry(self, ready: Ready, retry: float) -> float:
        """When a withdrawal that waits looks again: later if every wallet is full (finality
        wakes it), else after ``retry``."""
        entry = self._registry.get(ready.network)
        limit = entry.network.max_in_flight
        full = bool(entry.accepting) and all(
            ready.in_flight[s.address].count >= limit for s in entry.accepting
        )
        return max(retry, CAPACITY_RETRY_S) if full else retry

    @staticmethod
    def _again(ready: Ready, left: Mapping[str, Withdrawal]) -> float | None:
        """When the job runs again: soon if its own withdrawal still waits to be signed (the
        batch left it out, or it planned a full group it was not in), else never."""
        planned = any(w.id == ready.own for w in ready.withdrawals)
        return 0.1 if ready.own in left or not planned else None
