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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog

from sluice import faults, metrics
from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Network
from sluice.domain.fees import FeeLevel
from sluice.domain.ledger import EntryKind
from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    Attempt,
    AttemptPurpose,
    ChainTransaction,
    Fees,
    Payload,
    TransactionKind,
    TransactionStatus,
    UnsignedTransaction,
    noop_payload,
    transfer_payload,
)
from sluice.domain.withdrawal import ErrorCode, Withdrawal, WithdrawalStatus, move, note
from sluice.errors import CallRevertedError
from sluice.ports import Clock, InFlight, Signer, SigningContext, UnitOfWork
from sluice.services import jobs
from sluice.services.engine import record
from sluice.services.fee_markets import FeeMarkets
from sluice.services.ids import new_id
from sluice.services.ledger import move_funds
from sluice.services.registry import NetworkEntry, NetworkRegistry

log = structlog.get_logger(__name__)

#: Head-room on estimated gas: estimates are exact for the state they ran on, which moves.
GAS_MARGIN_PERCENT = 20

#: The kind of waiting reason of a withdrawal whose network's node is down (or misconfigured).
NETWORK_CLOSED = "network_unavailable"

#: Bytes standing for a transaction's fields and signature when an L1 data fee is estimated.
L1_ENVELOPE = 120


@dataclass(frozen=True, slots=True)
class Ready:
    """Withdrawals ready to be paid by one transaction, and what each hot wallet has in flight,
    read from the database before the chain is asked anything."""

    withdrawals: tuple[Withdrawal, ...]
    in_flight: Mapping[Address, InFlight]

    @property
    def network(self) -> str:
        """The network they are paid on."""
        return self.withdrawals[0].network

    @property
    def waiting_for_network(self) -> bool:
        """Whether they already say they wait for their network's node."""
        return all((w.waiting_reason or "").startswith(NETWORK_CLOSED) for w in self.withdrawals)

    @property
    def priority(self) -> FeeLevel | None:
        """The most urgent fee level any of them asked for (None: none asked)."""
        asked = [w.priority for w in self.withdrawals if w.priority is not None]
        return max(asked, key=lambda level: level.rank) if asked else None


def plan_payload(asset: Asset, withdrawals: tuple[Withdrawal, ...]) -> Payload:
    """The payload of one transaction that pays ``withdrawals`` (one today; the batch issue
    adds a call that pays many)."""
    if len(withdrawals) != 1:
        raise ValueError("a transaction pays one withdrawal until batch payouts exist")
    (withdrawal,) = withdrawals
    return transfer_payload(asset, withdrawal.to_address, withdrawal.amount)


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

    def __init__(self, registry: NetworkRegistry, clock: Clock, fees: FeeMarkets) -> None:
        self._registry = registry
        self._clock = clock
        self._fees = fees

    async def ready(self, uow: UnitOfWork, withdrawal_id: str) -> Ready | None:
        """The withdrawal, if it waits to be signed, and the hot wallets' load."""
        withdrawal = await uow.withdrawals.get(withdrawal_id)
        if withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING:
            return None
        entry = self._registry.get(withdrawal.network)
        in_flight = {
            s.address: await uow.transactions.in_flight(withdrawal.network, s.address)
            for s in entry.signers
        }
        return Ready(withdrawals=(withdrawal,), in_flight=in_flight)

    async def quote(self, ready: Ready) -> Quote:
        """Plan the payload, price it, and find a wallet that can pay it. Pure reads: safe to
        repeat, holds no lock.

        Raises:
            ChainUnavailableError: The node did not answer (the worker retries).
        """
        entry = self._registry.get(ready.network)
        network = entry.network
        asset = network.asset_by_key(ready.withdrawals[0].asset_key)
        payload = plan_payload(asset, ready.withdrawals)
        level = ready.priority or network.fees.default_level
        fees = await self._fees.offer(network.name, level)
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
            reason = await self._cannot_hold(
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
                    l1_fee = await self._l1_fee(entry, payload)
                needed = flight.native + payload.value + fees.max_cost(gas) + l1_fee
                native = await entry.chain.balance(signer.address)
                if native >= needed:
                    return Quote(ready, payload, fees, gas=gas, wallet=signer, level=level)
                reason = (
                    f"underfunded: hot wallet {signer.address} holds {native} wei, "
                    f"needs {needed} (gas and transactions in flight included)"
                )
            assert reason is not None  # noqa: S101 - every other path returned
            reasons.append(reason)
            metrics.HOT_WALLET_WAITS.labels(network.name, reason.split(":", 1)[0]).inc()
        return Quote(ready, payload, fees, waiting_reason="; ".join(reasons) or "no hot wallet")

    @staticmethod
    async def _l1_fee(entry: NetworkEntry, payload: Payload) -> int:
        """An OP Stack chain's L1 data fee for the payload, over-estimated (0 elsewhere).

        The oracle prices a signed transaction's bytes, which do not exist before the nonce is
        taken: it is asked for the payload's data after `L1_ENVELOPE` incompressible bytes (an
        envelope larger than any EIP-1559 transaction's fields and signature), and the answer
        is doubled, since the L1 fee moves with Ethereum's fees while the transaction waits.
        The fee recorded is the receipt's (`Receipt.fee_paid`).
        """
        oracle = entry.network.l1_fee_oracle
        if oracle is None:
            return 0
        return 2 * await entry.chain.l1_fee(oracle, b"\xff" * L1_ENVELOPE + payload.data)

    async def _cannot_hold(
        self,
        entry: NetworkEntry,
        *,
        signer: Signer,
        asset: Asset,
        payload: Payload,
        tokens: int,
        flight: InFlight,
        estimating: bool,
    ) -> str | None:
        """Why a wallet cannot take the payload before its gas is known, if it cannot: too much
        in flight, too few tokens, or (before an estimate, which needs it) too little of the
        coin for the value. The common payout (the coin to an account: no estimate) reads the
        wallet's balance once, after this."""
        network = entry.network
        if flight.count >= network.max_in_flight:
            return (
                f"in_flight: hot wallet {signer.address} has {flight.count} transactions "
                f"in flight (limit {network.max_in_flight})"
            )
        if asset.token_address is not None:
            needed = flight.tokens.get(asset.key, 0) + tokens
            held = await entry.chain.token_balance(asset.token_address, signer.address)
            if held < needed:
                return (
                    f"underfunded: hot wallet {signer.address} holds {held} {asset.symbol} "
                    f"base units, needs {needed}"
                )
        elif payload.value and estimating:
            native = await entry.chain.balance(signer.address)
            if native < flight.native + payload.value:
                return (
                    f"underfunded: hot wallet {signer.address} holds {native} wei, "
                    f"needs {flight.native + payload.value} before gas"
                )
        return None

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
        await self._wait(uow, withdrawals, f"{NETWORK_CLOSED}: network {ready.network} is {why}")
        return True

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
        withdrawals = []
        for planned in quote.ready.withdrawals:
            withdrawal = await uow.withdrawals.get(planned.id, lock=True)
            if withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING:
                return Signed(commit=False)  # moved on meanwhile: nothing to do
            withdrawals.append(withdrawal)
        retry = self.retry_after(quote.ready.network)
        if quote.reverts is not None:
            await self._destination_reverts(uow, withdrawals, quote.reverts)
            return Signed(commit=True)
        if quote.wallet is None:
            await self._wait(uow, withdrawals, quote.waiting_reason or "waiting")
            return Signed(commit=True, retry_after=retry)
        entry = self._registry.get(quote.ready.network)
        signer = quote.wallet
        nonce = await uow.transactions.next_nonce(entry.network.name, signer.address)
        faults.checkpoint("after_nonce")
        in_flight = await uow.transactions.count_in_flight(entry.network.name, signer.address)
        if in_flight >= entry.network.max_in_flight:
            return Signed(commit=False, retry_after=retry)  # the nonce is not taken
        transaction, attempt = await sign_new(
            entry.network,
            signer,
            nonce=nonce,
            payload=quote.payload,
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
        return Signed(commit=True, signed=True)

    async def _destination_reverts(
        self, uow: UnitOfWork, withdrawals: list[Withdrawal], why: str
    ) -> None:
        now = self._clock.now()
        for withdrawal in withdrawals:
            network = self._registry.get(withdrawal.network).network
            await move_funds(
                uow,
                user_id=withdrawal.user_id,
                asset=network.asset_by_key(withdrawal.asset_key),
                kind=EntryKind.RELEASE,
                amount=withdrawal.amount,
                clock=self._clock,
                withdrawal_id=withdrawal.id,
            )
            withdrawal.waiting_reason = None
            change = move(
                withdrawal,
                WithdrawalStatus.FAILED,
                at=now,
                reason=f"paying the destination reverts: {why}",
                error_code=ErrorCode.DESTINATION_REVERTS,
            )
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)
            log.warning(
                "withdrawal failed: paying its destination reverts",
                withdrawal_id=withdrawal.id,
                detail=why,
            )

    async def _wait(self, uow: UnitOfWork, withdrawals: list[Withdrawal], reason: str) -> None:
        """Record why VALIDATING withdrawals cannot be signed yet (once per kind of reason)."""
        kind = reason.split(":", 1)[0]
        for withdrawal in withdrawals:
            if withdrawal.waiting_reason is not None and withdrawal.waiting_reason.startswith(kind):
                # Still waiting: only touch it, so the sweep sees its job chain is alive.
                withdrawal.updated_at = self._clock.now()
                await uow.withdrawals.save(withdrawal)
                continue
            withdrawal.waiting_reason = reason
            change = note(withdrawal, at=self._clock.now(), reason=f"waiting: {reason}")
            await uow.withdrawals.save(withdrawal)
            await uow.withdrawals.add_event(change)
            log.warning("withdrawal waits to be signed", reason=reason)


async def sign_new(
    network: Network,
    signer: Signer,
    *,
    nonce: int,
    payload: Payload,
    gas: int,
    fees: Fees,
    at: datetime,
    request_id: str | None,
    kind: TransactionKind = TransactionKind.PAYOUT,
    withdrawal_ids: tuple[str, ...] = (),
    priority: FeeLevel | None = None,
) -> tuple[ChainTransaction, Attempt]:
    """A new transaction at ``nonce`` and its first signed attempt (neither stored yet)."""
    transaction = ChainTransaction(
        id=new_id("tx"),
        network=network.name,
        from_address=signer.address,
        nonce=nonce,
        payload=payload,
        gas_limit=gas,
        status=TransactionStatus.SIGNED,
        created_at=at,
        updated_at=at,
        request_id=request_id,
        kind=kind,
        priority=priority,
    )
    return transaction, await sign_attempt(
        network,
        signer,
        transaction,
        seq=1,
        fees=fees,
        at=at,
        purpose=AttemptPurpose.PAYLOAD,
        withdrawal_ids=withdrawal_ids,
    )


async def sign_attempt(
    network: Network,
    signer: Signer,
    transaction: ChainTransaction,
    *,
    seq: int,
    fees: Fees,
    at: datetime,
    purpose: AttemptPurpose,
    withdrawal_ids: tuple[str, ...] = (),
) -> Attempt:
    """Sign one form of a transaction: its payload, or a no-op at its nonce (a cancel).

    ``withdrawal_ids``: the withdrawals the transaction carries, for a signer that checks them.
    """
    payload = (
        transaction.payload
        if purpose is AttemptPurpose.PAYLOAD
        else noop_payload(transaction.from_address)
    )
    gas = transaction.gas_limit if purpose is AttemptPurpose.PAYLOAD else NATIVE_TRANSFER_GAS
    signed = await signer.sign(
        UnsignedTransaction(
            chain_id=network.chain_id,
            nonce=transaction.nonce,
            to=payload.to,
            value=payload.value,
            data=payload.data,
            gas=gas,
            fees=fees,
            fee_model=network.fees.model,
        ),
        SigningContext(
            network=network.name,
            transaction_id=transaction.id,
            kind=transaction.kind,
            purpose=purpose,
            withdrawal_ids=withdrawal_ids,
        ),
    )
    return Attempt(
        id=new_id("at"),
        transaction_id=transaction.id,
        seq=seq,
        fees=fees,
        raw=signed.raw,
        hash=signed.hash,
        created_at=at,
        purpose=purpose,
    )
