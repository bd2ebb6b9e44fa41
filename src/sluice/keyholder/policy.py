"""What the signer signs: only what the withdrawal records call for.

A request names the network and wallet, the transaction (id, kind, nonce, fees, payload) and the
withdrawals it pays. The signer signs:

- **a no-op** (a transfer of nothing from the wallet to itself, 21 000 gas): it pays nobody, so
  it may fill a gap or cancel at any nonce, within the network's fee cap;
- **a payout**, only if its payload is exactly what the one withdrawal named calls for (its
  destination, amount and asset on that network), and either
  - a first signature: the withdrawal waits to be signed (VALIDATING, no transaction) and no
    stored transaction holds the nonce; or
  - a replacement: the stored transaction carries that withdrawal, from that wallet, at that
    nonce, with that payload, and is being followed (BROADCAST);
- and never a withdrawal at a second nonce while an earlier signature of it could still be
  mined: every earlier nonce it was signed at must be provably spent by another transaction
  (a final transaction there that is not one of its signatures, or its own SUPERSEDED one).
  Until then the request is refused and the worker tries again later.

Every payout signature is recorded before it is handed out (`sluice.keyholder.grants`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sluice.domain.addresses import Address
from sluice.domain.assets import Network
from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    AttemptPurpose,
    Payload,
    TransactionKind,
    TransactionStatus,
    transfer_payload,
)
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.errors import SigningRefusedError, SluiceError
from sluice.keyholder.grants import SqlGrantRepository
from sluice.keyholder.protocol import SignRequest
from sluice.ports import TransactionRepository, WithdrawalRepository

#: No payout needs more gas than this (a token transfer needs well under 100 000).
MAX_PAYOUT_GAS = 1_000_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the signer may sign, once checked."""

    payload: Payload
    noop: bool
    withdrawal_id: str | None = None


def refuse(detail: str) -> SigningRefusedError:
    """A refusal to sign."""
    return SigningRefusedError(detail)


async def check(
    request: SignRequest,
    *,
    network: Network,
    withdrawals: WithdrawalRepository,
    transactions: TransactionRepository,
    grants: SqlGrantRepository,
) -> Verdict:
    """Check a request against the records; the verdict, or `SigningRefusedError`."""
    wallet = Address(request.wallet)
    payload = Payload(
        to=Address(request.to), value=int(request.value), data=bytes.fromhex(request.data[2:])
    )
    if request.chain_id != network.chain_id:
        raise refuse(f"chain id {request.chain_id} is not {network.name}'s")
    max_fee, tip = int(request.max_fee_per_gas), int(request.max_priority_fee_per_gas)
    if max_fee > network.fees.max_fee_per_gas or tip > max_fee:
        raise refuse("fees above the network's cap")
    if payload == Payload(to=wallet, value=0, data=b"") and request.gas == NATIVE_TRANSFER_GAS:
        return Verdict(payload=payload, noop=True)
    if request.kind is TransactionKind.FILLER or request.purpose is AttemptPurpose.CANCEL:
        raise refuse("a filler or a cancel is a no-op transfer to the wallet itself")
    if len(request.withdrawal_ids) != 1:
        raise refuse("a payout pays exactly one withdrawal")
    withdrawal_id = request.withdrawal_ids[0]
    withdrawal = await withdrawals.get(withdrawal_id)
    if withdrawal is None or withdrawal.network != network.name:
        raise refuse(f"no withdrawal {withdrawal_id!r} on {network.name}")
    try:
        asset = network.asset_by_key(withdrawal.asset_key)
    except SluiceError:
        raise refuse("the withdrawal's asset is not configured") from None
    if payload != transfer_payload(asset, withdrawal.to_address, withdrawal.amount):
        raise refuse("the payload differs from the withdrawal record")
    if request.gas > MAX_PAYOUT_GAS:
        raise refuse("gas limit above what a payout needs")
    await _first_or_replacement(request, withdrawal, payload, transactions)
    await _earlier_signatures_spent(request, withdrawal_id, transactions, grants)
    return Verdict(payload=payload, noop=False, withdrawal_id=withdrawal_id)


async def _first_or_replacement(
    request: SignRequest,
    withdrawal: Withdrawal,
    payload: Payload,
    transactions: TransactionRepository,
) -> None:
    wallet = Address(request.wallet)
    stored = await transactions.get(request.transaction_id)
    if stored is None:
        if withdrawal.status is not WithdrawalStatus.VALIDATING or withdrawal.transaction_id:
            raise refuse(f"the withdrawal is {withdrawal.status}, not waiting to be signed")
        if await transactions.at_nonce(request.network, wallet, request.nonce) is not None:
            raise refuse(f"nonce {request.nonce} is held by another transaction")
    elif not (
        stored.status is TransactionStatus.BROADCAST
        and withdrawal.transaction_id == stored.id
        and stored.from_address == wallet
        and stored.nonce == request.nonce
        and stored.payload == payload
    ):
        raise refuse("not a replacement of the withdrawal's transaction being followed")


async def _earlier_signatures_spent(
    request: SignRequest,
    withdrawal_id: str,
    transactions: TransactionRepository,
    grants: SqlGrantRepository,
) -> None:
    earlier = await grants.for_withdrawal(withdrawal_id)
    ours = {g.hash for g in earlier}
    for nonce_key in {(g.network, g.wallet, g.nonce) for g in earlier}:
        network, wallet, nonce = nonce_key
        if (network, wallet, nonce) == (request.network, request.wallet, request.nonce):
            continue  # the same nonce again: a replacement, one of them at most is mined
        holder = await transactions.at_nonce(network, Address(wallet), nonce)
        # Final, and not by one of its signatures: another transaction's (or a cancel's) was
        # mined there, or its own was superseded by a transaction not of ours.
        if holder is None or not holder.status.is_final or holder.mined_hash in ours:
            raise refuse(
                f"withdrawal {withdrawal_id} was signed at nonce {nonce} of {wallet}, which is "
                "not provably spent by another transaction yet; try again later"
            )
