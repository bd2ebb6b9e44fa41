"""What the signer signs: only what the withdrawal records call for.

A request names the network and wallet, the transaction (id, kind, nonce, fees, payload) and the
withdrawals it pays. The signer signs:

- **a no-op** (a transfer of nothing from the wallet to itself, 21 000 gas): it pays nobody, so
  it may fill a gap or cancel at any nonce, within the network's fee cap;
- **a payout**, only if the payments its payload makes (`sluice.domain.payments.payments_of`:
  asset, destination, amount) are exactly those the named withdrawals call for, as multisets:
  each named withdrawal (on that network, named once) paid once, nothing else paid
  (`match_withdrawals`); a batch (a call to a batch contract) only to the signing wallet's own
  contract, and within a payout's gas for each payment (`gas_cap`); and either
  - a first signature: every named withdrawal waits to be signed (VALIDATING, no transaction)
    and no stored transaction holds the nonce; or
  - a replacement: the stored transaction, from that wallet, at that nonce, with that payload,
    is being followed (BROADCAST) and carries exactly the named withdrawals, each BROADCASTING;
- and never a withdrawal at a second nonce while an earlier signature of it could still be
  mined: for each named withdrawal, every earlier nonce it was signed at must be provably spent
  by another transaction (a final transaction there that is not one of its signatures, or its
  own SUPERSEDED one), or by its own signature that reverted at a final block (a batch that
  failed as a whole paid nothing). Until then the request is refused and the worker tries
  again later.

Whatever it signs is of the network's fee model (type 0 on a legacy network, type 2 elsewhere).

Every payout signature is recorded before it is handed out, once per withdrawal it pays
(`sluice.keyholder.grants`).

The decoding and the matching are pure (`sluice.domain.payments`); this module reads the records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sluice.domain.addresses import Address
from sluice.domain.assets import Network
from sluice.domain.batches import MAX_TRANSACTION_GAS
from sluice.domain.payments import (
    PaymentMismatchError,
    UnreadablePayloadError,
    match_withdrawals,
    payments_of,
)
from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    AttemptPurpose,
    Payload,
    TransactionKind,
    TransactionStatus,
)
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.errors import SigningRefusedError, SluiceError
from sluice.keyholder.grants import SqlGrantRepository
from sluice.keyholder.protocol import SignRequest
from sluice.ports import TransactionRepository, WithdrawalRepository

#: No payout needs more gas than this (a token transfer needs well under 100 000).
MAX_PAYOUT_GAS = 1_000_000


def gas_cap(payments: int) -> int:
    """The most gas a transaction making ``payments`` payments may be signed with: a payout's
    allowance for each, within EIP-7825's cap on any transaction."""
    return min(MAX_PAYOUT_GAS * max(payments, 1), MAX_TRANSACTION_GAS)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the signer may sign, once checked."""

    payload: Payload
    noop: bool
    withdrawal_ids: tuple[str, ...] = ()
    """The withdrawals a payout pays, as named (none for a no-op): a grant is recorded for each."""


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
    if request.fee_model is not network.fees.model:
        raise refuse(
            f"{network.name} takes {network.fees.model} transactions, not {request.fee_model}"
        )
    max_fee, tip = int(request.max_fee_per_gas), int(request.max_priority_fee_per_gas)
    if max_fee > network.fees.max_fee_per_gas or tip > max_fee:
        raise refuse("fees above the network's cap")
    if payload == Payload(to=wallet, value=0, data=b"") and request.gas == NATIVE_TRANSFER_GAS:
        return Verdict(payload=payload, noop=True)
    if request.kind is TransactionKind.FILLER or request.purpose is AttemptPurpose.CANCEL:
        raise refuse("a filler or a cancel is a no-op transfer to the wallet itself")
    batch = network.batching.is_contract(payload.to)
    if batch and (network.batching.configured(wallet) or "").lower() != payload.to.lower():
        raise refuse(f"{payload.to} is not hot wallet {wallet}'s batch contract")
    if request.gas > gas_cap(len(request.withdrawal_ids) if batch else 1):
        raise refuse("gas limit above what a payout needs")
    named = await _named_withdrawals(request.withdrawal_ids, network, withdrawals)
    try:
        match_withdrawals(payments_of(payload, network), named)
    except UnreadablePayloadError as exc:
        raise refuse(f"the payload is no payment the signer reads: {exc}") from None
    except PaymentMismatchError as exc:
        raise refuse(f"the payload differs from the withdrawal records: {exc}") from None
    await _first_or_replacement(request, named, payload, withdrawals, transactions)
    for withdrawal in named:
        await _earlier_signatures_spent(request, withdrawal.id, transactions, grants)
    return Verdict(payload=payload, noop=False, withdrawal_ids=tuple(w.id for w in named))


async def _named_withdrawals(
    ids: Sequence[str], network: Network, withdrawals: WithdrawalRepository
) -> list[Withdrawal]:
    """The named withdrawals, in order: each on this network, of an asset configured here
    (naming none, or one twice, is refused by `match_withdrawals`)."""
    named = []
    for withdrawal_id in ids:
        withdrawal = await withdrawals.get(withdrawal_id)
        if withdrawal is None or withdrawal.network != network.name:
            raise refuse(f"no withdrawal {withdrawal_id!r} on {network.name}")
        try:
            network.asset_by_key(withdrawal.asset_key)
        except SluiceError:
            raise refuse(f"withdrawal {withdrawal_id}'s asset is not configured") from None
        named.append(withdrawal)
    return named


async def _first_or_replacement(
    request: SignRequest,
    named: list[Withdrawal],
    payload: Payload,
    withdrawals: WithdrawalRepository,
    transactions: TransactionRepository,
) -> None:
    wallet = Address(request.wallet)
    stored = await transactions.get(request.transaction_id)
    if stored is None:
        for withdrawal in named:
            if withdrawal.status is not WithdrawalStatus.VALIDATING or withdrawal.transaction_id:
                raise refuse(
                    f"withdrawal {withdrawal.id} is {withdrawal.status}, not waiting to be signed"
                )
        if await transactions.at_nonce(request.network, wallet, request.nonce) is not None:
            raise refuse(f"nonce {request.nonce} is held by another transaction")
        return
    if not (
        stored.status is TransactionStatus.BROADCAST
        and stored.from_address == wallet
        and stored.nonce == request.nonce
        and stored.payload == payload
    ):
        raise refuse("not a replacement of the withdrawals' transaction being followed")
    carried = {w.id for w in await withdrawals.for_transaction(stored.id)}
    for withdrawal in named:
        if (
            withdrawal.transaction_id != stored.id
            or withdrawal.status is not WithdrawalStatus.BROADCASTING
        ):
            raise refuse(
                f"withdrawal {withdrawal.id} ({withdrawal.status}) is not being paid by "
                f"transaction {stored.id}"
            )
    if carried != {w.id for w in named}:
        raise refuse(f"transaction {stored.id} carries other withdrawals than those named")


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
        # mined there, or its own was superseded by a transaction not of ours; or by its own
        # signature that reverted (a batch that failed as a whole: it paid nothing).
        reverted = holder is not None and holder.status is TransactionStatus.REVERTED
        if (
            holder is None
            or not holder.status.is_final
            or (holder.mined_hash in ours and not reverted)
        ):
            raise refuse(
                f"withdrawal {withdrawal_id} was signed at nonce {nonce} of {wallet}, which is "
                "not provably spent by another transaction yet; try again later"
            )
