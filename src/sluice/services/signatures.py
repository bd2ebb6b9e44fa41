"""Signing one form of a transaction: a new transaction's first attempt, a replacement at
higher fees, or a no-op at its nonce. The signer is told which withdrawals it carries."""

from __future__ import annotations

from datetime import datetime

from sluice.domain.assets import Network
from sluice.domain.fees import FeeLevel
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
)
from sluice.ports import Signer, SigningContext
from sluice.services.ids import new_id


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
