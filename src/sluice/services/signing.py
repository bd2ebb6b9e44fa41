"""Stage 2: choose a hot wallet, assign a nonce, sign, and store before anything is sent.

Before a nonce is taken, the wallet must be able to pay: its balance at the latest block, less
what its unmined transactions may still take, must cover this transaction's value (or token
amount) and its gas at the fee cap; and it must have fewer than the network's ``max_in_flight``
transactions between signing and finality. When no wallet qualifies, the withdrawal waits in
VALIDATING with a visible ``waiting_reason`` (recorded once in its history, logged at warning,
counted in a metric) and signing is tried again later; it never fails for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog

from sluice import faults, metrics
from sluice.domain.addresses import Address
from sluice.domain.assets import Network
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
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus, move, note
from sluice.errors import ChainUnavailableError
from sluice.ports import Clock, InFlight, Signer, SigningContext, UnitOfWork
from sluice.services import jobs
from sluice.services.ids import new_id
from sluice.services.registry import NetworkEntry, NetworkRegistry

log = structlog.get_logger(__name__)

#: Head-room on estimated gas: estimates are exact for the state they ran on, which moves.
GAS_MARGIN_PERCENT = 20


@dataclass(frozen=True, slots=True)
class Quote:
    """What the chain says a withdrawal's transaction needs, gathered before locking anything."""

    payload: Payload
    gas: int
    fees: Fees
    wallet: Signer | None = None
    """The hot wallet chosen to pay it; None when none can now (see ``waiting_reason``)."""
    waiting_reason: str | None = None


class SigningService:
    """VALIDATING → SIGNED: the transaction is signed and stored with its nonce."""

    def __init__(self, registry: NetworkRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock

    def entry(self, withdrawal: Withdrawal) -> NetworkEntry:
        """The network (and hot wallets) a withdrawal is paid on."""
        return self._registry.get(withdrawal.network)

    async def quote(self, withdrawal: Withdrawal) -> tuple[Payload, int, Fees]:
        """Ask the node for fees and gas. Pure reads: safe to repeat, holds no lock.

        Raises:
            ChainUnavailableError: The node did not answer (the worker retries).
        """
        entry = self._registry.get(withdrawal.network)
        asset = entry.network.asset_by_key(withdrawal.asset_key)
        payload = transfer_payload(asset, withdrawal.to_address, withdrawal.amount)
        fees = entry.network.fees.capped(await entry.chain.fees())
        if asset.is_native and await entry.chain.code_size(payload.to) == 0:
            gas = NATIVE_TRANSFER_GAS
        else:
            estimate = await self._estimate(entry, payload)
            gas = estimate + estimate * GAS_MARGIN_PERCENT // 100
        return payload, gas, fees

    async def _estimate(self, entry: NetworkEntry, payload: Payload) -> int:
        """Gas for the payload, from the first hot wallet whose estimate does not revert (a
        token transfer reverts from a wallet that lacks the token)."""
        refused: ChainUnavailableError | None = None
        for signer in entry.signers:
            try:
                return await entry.chain.estimate_gas(
                    signer.address, payload.to, payload.value, payload.data
                )
            except ChainUnavailableError as exc:
                if getattr(exc, "reason", None) != "execution_reverted":
                    raise
                refused = exc
        assert refused is not None  # noqa: S101 - a network has at least one hot wallet
        raise refused

    async def choose_wallet(
        self,
        withdrawal: Withdrawal,
        payload: Payload,
        gas: int,
        fees: Fees,
        in_flight: Mapping[Address, InFlight],
    ) -> Quote:
        """The wallet with the fewest transactions in flight that can pay, or why none can.

        ``in_flight`` is what each wallet (by address) has between signing and finality, read
        from the database just before; balances are read from the chain here.
        """
        entry = self._registry.get(withdrawal.network)
        network = entry.network
        reasons: list[str] = []
        for signer in sorted(entry.accepting, key=lambda s: in_flight[s.address].count):
            reason = await self._cannot_pay(
                entry,
                signer=signer,
                withdrawal=withdrawal,
                payload=payload,
                gas=gas,
                fees=fees,
                in_flight=in_flight[signer.address],
            )
            if reason is None:
                return Quote(payload, gas, fees, wallet=signer)
            reasons.append(reason)
            metrics.HOT_WALLET_WAITS.labels(network.name, reason.split(":", 1)[0]).inc()
        return Quote(payload, gas, fees, waiting_reason="; ".join(reasons))

    async def _cannot_pay(
        self,
        entry: NetworkEntry,
        *,
        signer: Signer,
        withdrawal: Withdrawal,
        payload: Payload,
        gas: int,
        fees: Fees,
        in_flight: InFlight,
    ) -> str | None:
        network = entry.network
        if in_flight.count >= network.max_in_flight:
            return (
                f"in_flight: hot wallet {signer.address} has {in_flight.count} transactions "
                f"in flight (limit {network.max_in_flight})"
            )
        native_needed = in_flight.native + payload.value + fees.max_cost(gas)
        native = await entry.chain.balance(signer.address)
        if native < native_needed:
            return (
                f"underfunded: hot wallet {signer.address} holds {native} wei, "
                f"needs {native_needed} (gas and transactions in flight included)"
            )
        asset = network.asset_by_key(withdrawal.asset_key)
        if asset.token_address is not None:
            needed = in_flight.tokens.get(asset.key, 0) + withdrawal.amount
            held = await entry.chain.token_balance(asset.token_address, signer.address)
            if held < needed:
                return (
                    f"underfunded: hot wallet {signer.address} holds {held} {asset.symbol} "
                    f"base units, needs {needed}"
                )
        return None

    async def wait(self, uow: UnitOfWork, withdrawal_id: str, reason: str) -> bool:
        """Record why a VALIDATING withdrawal cannot be signed yet (once per reason).

        Returns:
            True if the reason is new (and was logged and added to the history).
        """
        withdrawal = await uow.withdrawals.get(withdrawal_id, lock=True)
        if withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING:
            return False
        kind = reason.split(":", 1)[0]
        if withdrawal.waiting_reason is not None and withdrawal.waiting_reason.startswith(kind):
            # Still waiting: only touch it, so the sweep sees its job chain is alive.
            withdrawal.updated_at = self._clock.now()
            await uow.withdrawals.save(withdrawal)
            return False
        withdrawal.waiting_reason = reason
        change = note(withdrawal, at=self._clock.now(), reason=f"waiting: {reason}")
        await uow.withdrawals.save(withdrawal)
        await uow.withdrawals.add_event(change)
        log.warning("withdrawal waits for its hot wallet", reason=reason)
        return True

    def retry_after(self, withdrawal: Withdrawal) -> float:
        """How long a waiting withdrawal waits before signing is tried again."""
        return max(1.0, 5 * self._registry.get(withdrawal.network).network.poll_interval_s)

    async def sign(self, uow: UnitOfWork, withdrawal_id: str, quote: Quote) -> bool:
        """Sign and store the withdrawal's transaction; a no-op unless it is VALIDATING.

        The nonce counter is locked until commit, so nonces are handed out one at a time per hot
        wallet across every process; the in-flight count is checked again under that lock, so
        the limit holds exactly. If anything fails before the commit, the nonce was never taken
        and nothing was stored or sent.

        Returns:
            True if a transaction was signed and stored; False if there was nothing to do or the
            wallet reached its in-flight limit meanwhile (then the caller must not commit, and
            tries again later).
        """
        withdrawal = await uow.withdrawals.get(withdrawal_id, lock=True)
        if withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING:
            return False
        if quote.wallet is None:
            raise ValueError("a quote without a wallet cannot be signed")
        entry = self._registry.get(withdrawal.network)
        signer = quote.wallet
        nonce = await uow.transactions.next_nonce(withdrawal.network, signer.address)
        faults.checkpoint("after_nonce")
        in_flight = await uow.transactions.count_in_flight(withdrawal.network, signer.address)
        if in_flight >= entry.network.max_in_flight:
            return False  # the caller does not commit: the nonce is not taken
        transaction, attempt = await sign_new(
            entry.network,
            signer,
            nonce=nonce,
            payload=quote.payload,
            gas=quote.gas,
            fees=quote.fees,
            at=self._clock.now(),
            request_id=withdrawal.request_id,
            withdrawal_ids=(withdrawal.id,),
        )
        faults.checkpoint("after_sign")
        await uow.transactions.add(transaction, attempt)
        withdrawal.transaction_id = transaction.id
        withdrawal.transaction_hash = attempt.hash
        withdrawal.waiting_reason = None
        change = move(
            withdrawal,
            WithdrawalStatus.SIGNED,
            at=transaction.created_at,
            reason=f"signed with nonce {nonce} by hot wallet {signer.address}",
            data={
                "nonce": nonce,
                "transactionHash": attempt.hash,
                "hotWallet": signer.address,
                "maxFeePerGas": str(attempt.fees.max_fee_per_gas),
                "maxPriorityFeePerGas": str(attempt.fees.max_priority_fee_per_gas),
            },
        )
        await uow.withdrawals.save(withdrawal)
        await uow.withdrawals.add_event(change)
        uow.enqueue(jobs.BROADCAST, {"transactionId": transaction.id})
        return True


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
