"""Stage 2: assign a nonce, sign, and store the transaction before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    Attempt,
    ChainTransaction,
    Fees,
    Payload,
    TransactionStatus,
    UnsignedTransaction,
    transfer_payload,
)
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus, move
from sluice.ports import Clock, UnitOfWork
from sluice.services import jobs
from sluice.services.ids import new_id
from sluice.services.registry import NetworkRegistry

#: Head-room on estimated gas: estimates are exact for the state they ran on, which moves.
GAS_MARGIN_PERCENT = 20


@dataclass(frozen=True, slots=True)
class Quote:
    """What the chain says a withdrawal's transaction needs, gathered before locking anything."""

    payload: Payload
    gas: int
    fees: Fees


class SigningService:
    """VALIDATING → SIGNED: the transaction is signed and stored with its nonce."""

    def __init__(self, registry: NetworkRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock

    async def quote(self, withdrawal: Withdrawal) -> Quote:
        """Ask the node for fees and gas. Pure reads: safe to repeat, holds no lock.

        Raises:
            ChainUnavailableError: The node did not answer (the worker retries).
        """
        entry = self._registry.get(withdrawal.network)
        asset = entry.network.asset_by_key(withdrawal.asset_key)
        payload = transfer_payload(asset, withdrawal.to_address, withdrawal.amount)
        fees = await entry.chain.fees()
        if asset.is_native and await entry.chain.code_size(payload.to) == 0:
            gas = NATIVE_TRANSFER_GAS
        else:
            estimate = await entry.chain.estimate_gas(
                entry.signer.address, payload.to, payload.value, payload.data
            )
            gas = estimate + estimate * GAS_MARGIN_PERCENT // 100
        return Quote(payload=payload, gas=gas, fees=fees)

    async def sign(self, uow: UnitOfWork, withdrawal_id: str, quote: Quote) -> bool:
        """Sign and store the withdrawal's transaction; a no-op unless it is VALIDATING.

        The nonce counter is locked until commit, so nonces are handed out one at a time per hot
        wallet across every process; if anything fails before the commit, the nonce was never
        taken and nothing was stored or sent.

        Returns:
            True if a transaction was signed and stored.
        """
        withdrawal = await uow.withdrawals.get(withdrawal_id, lock=True)
        if withdrawal is None or withdrawal.status is not WithdrawalStatus.VALIDATING:
            return False
        entry = self._registry.get(withdrawal.network)
        signer = entry.signer
        nonce = await uow.transactions.next_nonce(withdrawal.network, signer.address)
        signed = signer.sign(
            UnsignedTransaction(
                chain_id=entry.network.chain_id,
                nonce=nonce,
                to=quote.payload.to,
                value=quote.payload.value,
                data=quote.payload.data,
                gas=quote.gas,
                fees=quote.fees,
            )
        )
        now = self._clock.now()
        transaction = ChainTransaction(
            id=new_id("tx"),
            network=withdrawal.network,
            from_address=signer.address,
            nonce=nonce,
            payload=quote.payload,
            gas_limit=quote.gas,
            status=TransactionStatus.SIGNED,
            created_at=now,
            updated_at=now,
            request_id=withdrawal.request_id,
        )
        attempt = Attempt(
            id=new_id("at"),
            transaction_id=transaction.id,
            seq=1,
            fees=quote.fees,
            raw=signed.raw,
            hash=signed.hash,
            created_at=now,
        )
        await uow.transactions.add(transaction, attempt)
        withdrawal.transaction_id = transaction.id
        withdrawal.transaction_hash = signed.hash
        change = move(
            withdrawal,
            WithdrawalStatus.SIGNED,
            at=now,
            reason=f"signed with nonce {nonce}",
            data={"nonce": str(nonce), "transactionHash": signed.hash},
        )
        await uow.withdrawals.save(withdrawal)
        await uow.withdrawals.add_event(change)
        uow.enqueue(jobs.BROADCAST, {"transactionId": transaction.id})
        return True
