"""On-chain transactions and their attempts.

A `ChainTransaction` is one nonce of one hot wallet, carrying one payload; it may pay one
withdrawal or (later) many, in a batch. Each time its payload is signed, with whatever fees, that
signed form is an attempt; the first attempt is stored before anything is sent, and every attempt's
hash is kept, since any of them may be the one that is mined.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sluice.domain.addresses import Address
from sluice.domain.assets import Asset
from sluice.domain.effects import Effects, EngineEvent, LedgerMove
from sluice.domain.fees import FeeLevel, FeeModel, Fees
from sluice.domain.ledger import EntryKind
from sluice.domain.withdrawal import (
    ErrorCode,
    EventData,
    Withdrawal,
    WithdrawalStatus,
    move,
    note,
)
from sluice.errors import InvalidStateError

__all__ = [
    "FOLLOWED",
    "IN_FLIGHT",
    "NATIVE_TRANSFER_GAS",
    "TRANSACTION_TRANSITIONS",
    "TRANSFER_SELECTOR",
    "UNMINED",
    "Attempt",
    "AttemptOutcome",
    "AttemptPurpose",
    "ChainTransaction",
    "Fees",
    "Payload",
    "SignedTransaction",
    "TransactionKind",
    "TransactionStatus",
    "UnsignedTransaction",
    "noop_payload",
    "transfer_payload",
]

#: ERC-20 ``transfer(address,uint256)`` selector.
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")

#: Gas of a plain native transfer to an account without code.
NATIVE_TRANSFER_GAS = 21_000

#: The selectors of a batch contract's calls, ``payNative(address[],uint256[])`` and
#: ``payToken(address,address[],uint256[])`` (`sluice.domain.batches`).
BATCH_SELECTORS = frozenset({bytes.fromhex("f5d7dfcc"), bytes.fromhex("d06de941")})


class TransactionStatus(enum.StrEnum):
    """Where an on-chain transaction is.

    SIGNED ──► BROADCAST ◄──► MINED ──► CONFIRMED | REVERTED | CANCELLED
                   │        (re-org)
                   └──► SUPERSEDED (its nonce was used by a transaction not of ours)
    """

    SIGNED = "SIGNED"
    """Signed and stored with its nonce; maybe not yet sent."""
    BROADCAST = "BROADCAST"
    """Sent (or possibly sent: an unclear answer counts as sent); awaiting a receipt."""
    MINED = "MINED"
    """One of its attempts has a receipt; awaiting the network's finality."""
    CONFIRMED = "CONFIRMED"
    """Its payload was mined with status 1, and the block is final. Final."""
    REVERTED = "REVERTED"
    """Its payload was mined with status 0, and the block is final: nothing was paid. Final."""
    CANCELLED = "CANCELLED"
    """A no-op replacement was mined at its nonce, and the block is final: nothing was paid."""
    SUPERSEDED = "SUPERSEDED"
    """Its nonce was used, at a final block, by a transaction that is none of its attempts (sent
    from the same wallet by someone else): none of its attempts can ever be mined. Final."""

    @property
    def is_final(self) -> bool:
        """Whether the transaction's outcome is settled."""
        return self in FINAL_TRANSACTION_STATUSES

    @property
    def in_flight(self) -> bool:
        """Whether the transaction holds a nonce that is not settled yet."""
        return not self.is_final


FINAL_TRANSACTION_STATUSES = frozenset(
    {
        TransactionStatus.CONFIRMED,
        TransactionStatus.REVERTED,
        TransactionStatus.CANCELLED,
        TransactionStatus.SUPERSEDED,
    }
)


class TransactionKind(enum.StrEnum):
    """Why a transaction exists."""

    PAYOUT = "PAYOUT"
    """It pays one withdrawal (later: several, in a batch)."""
    FILLER = "FILLER"
    """A no-op self-transfer that fills a gap in the hot wallet's nonces; it pays nobody."""


class AttemptPurpose(enum.StrEnum):
    """What an attempt's signed bytes do."""

    PAYLOAD = "PAYLOAD"
    """The transaction's payload (first attempt, or a replacement at higher fees)."""
    CANCEL = "CANCEL"
    """A no-op self-transfer at the same nonce, replacing the payload on an operator's request."""


class AttemptOutcome(enum.StrEnum):
    """What became of an attempt once its transaction was settled."""

    MINED = "MINED"
    """This attempt is the one the chain included."""
    REPLACED = "REPLACED"
    """Another attempt (or, for a superseded transaction, another transaction) took the nonce."""


@dataclass(frozen=True, slots=True)
class Payload:
    """What a transaction does: its call, independent of nonce and fees."""

    to: Address
    value: int
    data: bytes


def transfer_payload(asset: Asset, destination: Address, amount: int) -> Payload:
    """The payload that pays ``amount`` base units of ``asset`` to ``destination``."""
    if asset.token_address is None:
        return Payload(to=destination, value=amount, data=b"")
    # ABI encoding of transfer(address,uint256): two left-padded 32-byte words after the selector.
    data = (
        TRANSFER_SELECTOR
        + bytes.fromhex(destination[2:]).rjust(32, b"\0")
        + amount.to_bytes(32, "big")
    )
    return Payload(to=asset.token_address, value=0, data=data)


def noop_payload(wallet: Address) -> Payload:
    """A transfer of nothing to the wallet itself: uses a nonce and pays nobody."""
    return Payload(to=wallet, value=0, data=b"")


@dataclass(frozen=True, slots=True)
class UnsignedTransaction:
    """Everything a signer needs: an EIP-1559 (type 2) transaction, or a legacy (type 0,
    EIP-155) one whose gas price is ``fees.max_fee_per_gas``. ``to`` None creates a contract
    (``data`` is its init code): only `sluice contracts deploy` signs one."""

    chain_id: int
    nonce: int
    to: Address | None
    value: int
    data: bytes
    gas: int
    fees: Fees
    fee_model: FeeModel = FeeModel.EIP1559


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A signed transaction's raw bytes and hash (0x-prefixed hex)."""

    raw: bytes
    hash: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One signed form of a transaction."""

    id: str
    transaction_id: str
    seq: int
    fees: Fees
    raw: bytes
    hash: str
    created_at: datetime
    sent_at: datetime | None = None
    purpose: AttemptPurpose = AttemptPurpose.PAYLOAD
    outcome: AttemptOutcome | None = None
    note: str | None = None
    """The node's last answer to sending it, when it was not a plain acceptance."""


#: Every allowed move of a transaction's status; anything else is refused.
TRANSACTION_TRANSITIONS: dict[TransactionStatus, frozenset[TransactionStatus]] = {
    TransactionStatus.SIGNED: frozenset({TransactionStatus.BROADCAST}),
    TransactionStatus.BROADCAST: frozenset({TransactionStatus.MINED, TransactionStatus.SUPERSEDED}),
    TransactionStatus.MINED: frozenset(
        {
            TransactionStatus.BROADCAST,
            TransactionStatus.CONFIRMED,
            TransactionStatus.REVERTED,
            TransactionStatus.CANCELLED,
        }
    ),
    TransactionStatus.CONFIRMED: frozenset(),
    TransactionStatus.REVERTED: frozenset(),
    TransactionStatus.CANCELLED: frozenset(),
    TransactionStatus.SUPERSEDED: frozenset(),
}

#: Holding a nonce whose payment is not yet deducted from the wallet's balance at the latest
#: block; also the statuses in which a cancel can still be asked for.
UNMINED = frozenset({TransactionStatus.SIGNED, TransactionStatus.BROADCAST})
#: Sent and followed by a confirmation chain until settled.
FOLLOWED = frozenset({TransactionStatus.BROADCAST, TransactionStatus.MINED})
#: Holding a nonce that is not settled yet.
IN_FLIGHT = UNMINED | FOLLOWED


@dataclass(slots=True)
class ChainTransaction:
    """One nonce of one hot wallet, the payload it carries, its attempts and its withdrawals.

    The aggregate of the engine: every change of its status goes through one of its methods,
    which checks the move against `TRANSACTION_TRANSITIONS`, moves the withdrawals it carries
    (in place) and returns the `Effects` (history entries, ledger moves, events) for a service
    to record in one database transaction. ``attempts`` and ``withdrawals`` are None when the
    row was read on its own (`TransactionRepository.get`); the methods need them loaded
    (`TransactionRepository.load`, which locks the transaction, then its withdrawals).
    """

    id: str
    network: str
    from_address: Address
    nonce: int
    payload: Payload
    gas_limit: int
    status: TransactionStatus
    created_at: datetime
    updated_at: datetime
    request_id: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    mined_hash: str | None = None
    kind: TransactionKind = TransactionKind.PAYOUT
    cancel_requested_at: datetime | None = None
    nonce_used_at_block: int | None = None
    """The head block when the chain was first seen to have used this nonce without any of our
    attempts being mined; cleared if that stops being true (a re-org)."""
    watch: str | None = None
    """The token of the confirmation chain following it: jobs with another token are stale."""
    watch_until: datetime | None = None
    """When that chain's lease lapses; a lapsed lease means its job was lost."""
    refusal: str | None = None
    """Why a node refused its payload for good (the same bytes can never be accepted): a no-op
    then takes its nonce, and its withdrawals fail with ``rejected`` once that is final."""
    priority: FeeLevel | None = None
    """The fee level its attempts are priced at (None: the network's default)."""
    fee_paid: int | None = None
    """What its mined attempt paid for gas, in wei, as the receipt says (an OP Stack chain's L1
    data fee included); None until mined."""
    attempts: list[Attempt] | None = None
    """Its signed forms, oldest first (None: not loaded)."""
    withdrawals: list[Withdrawal] | None = None
    """The withdrawals it pays, in the order they were accepted (None: not loaded)."""

    # ── Reads ─────────────────────────────────────────────────────────────────────────────────

    @property
    def carried(self) -> list[Withdrawal]:
        """The withdrawals it pays.

        Raises:
            InvalidStateError: They were not loaded with it.
        """
        if self.withdrawals is None:
            raise InvalidStateError(f"transaction {self.id} was read without its withdrawals")
        return self.withdrawals

    @property
    def signed_forms(self) -> list[Attempt]:
        """Its attempts, oldest first.

        Raises:
            InvalidStateError: They were not loaded with it.
        """
        if self.attempts is None:
            raise InvalidStateError(f"transaction {self.id} was read without its attempts")
        return self.attempts

    @property
    def latest(self) -> Attempt:
        """The attempt signed last (the one to re-send or to replace)."""
        return self.signed_forms[-1]

    @property
    def cancel_sent(self) -> bool:
        """Whether a no-op replacement of it has been signed."""
        return any(a.purpose is AttemptPurpose.CANCEL for a in self.signed_forms)

    def attempt(self, transaction_hash: str) -> Attempt:
        """The attempt with a hash.

        Raises:
            ValueError: None of its attempts has it.
        """
        for attempt in self.signed_forms:
            if attempt.hash == transaction_hash:
                return attempt
        raise ValueError(f"transaction {self.id} has no attempt {transaction_hash}")

    @property
    def is_batch(self) -> bool:
        """Whether its payload is a batch contract's call (`sluice.domain.batches`)."""
        return self.payload.data[:4] in BATCH_SELECTORS

    def position(self, withdrawal_id: str) -> int:
        """A carried withdrawal's position in its batch (0 for a single payout).

        Raises:
            ValueError: It does not carry that withdrawal.
        """
        for index, withdrawal in enumerate(self.carried):
            if withdrawal.id == withdrawal_id:
                return index
        raise ValueError(f"transaction {self.id} does not carry withdrawal {withdrawal_id}")

    def cost(self, fees: Fees, purpose: AttemptPurpose) -> int:
        """The most an attempt of this purpose at ``fees`` may take from the wallet."""
        if purpose is AttemptPurpose.CANCEL:
            return fees.max_cost(NATIVE_TRANSFER_GAS)
        return self.payload.value + fees.max_cost(self.gas_limit)

    # ── Transitions ───────────────────────────────────────────────────────────────────────────

    def _become(self, target: TransactionStatus, at: datetime) -> None:
        if target not in TRANSACTION_TRANSITIONS[self.status]:
            raise InvalidStateError(f"a {self.status} transaction cannot become {target}")
        self.status = target
        self.updated_at = at

    def signed(self, attempt: Attempt, withdrawals: list[Withdrawal]) -> Effects:
        """Its first attempt is signed: every withdrawal it pays is SIGNED with it."""
        if self.status is not TransactionStatus.SIGNED or self.attempts:
            raise InvalidStateError(f"transaction {self.id} is signed already")
        self.attempts = [attempt]
        self.withdrawals = list(withdrawals)
        effects = Effects()
        size = len(self.withdrawals)
        for position, withdrawal in enumerate(self.withdrawals):
            withdrawal.transaction_id = self.id
            withdrawal.transaction_hash = attempt.hash
            withdrawal.waiting_reason = None
            reason = f"signed with nonce {self.nonce} by hot wallet {self.from_address}"
            data: dict[str, str | int] = {
                "nonce": self.nonce,
                "transactionHash": attempt.hash,
                "hotWallet": self.from_address,
                "maxFeePerGas": str(attempt.fees.max_fee_per_gas),
                "maxPriorityFeePerGas": str(attempt.fees.max_priority_fee_per_gas),
            }
            if self.is_batch:
                reason += f", in a batch of {size} (position {position})"
                data |= {"batchSize": size, "batchPosition": position}
            effects.changes.append(
                move(
                    withdrawal,
                    WithdrawalStatus.SIGNED,
                    at=self.created_at,
                    reason=reason,
                    data=data,
                )
            )
        return effects

    def sent(self, attempt: Attempt, *, note_: str | None, at: datetime) -> Effects:
        """SIGNED → BROADCAST: its first attempt went out (or may have)."""
        self._become(TransactionStatus.BROADCAST, at)
        reason = f"sent {attempt.hash}" + (f" ({note_})" if note_ else "")
        effects = Effects(events=[EngineEvent.SENT])
        for withdrawal in self.carried:
            if withdrawal.status is WithdrawalStatus.SIGNED:
                effects.changes.append(
                    move(
                        withdrawal,
                        WithdrawalStatus.BROADCASTING,
                        at=at,
                        reason=reason,
                        data={"transactionHash": attempt.hash, "attempt": attempt.seq},
                    )
                )
        return effects

    def refused(self, reason: str, *, at: datetime) -> Effects:
        """A node refused its payload for good: a no-op will take the nonce instead.

        The nonce may still be taken by the payload if another node accepted the same bytes
        earlier, so nothing is released until the chain has decided (see `settle`).
        """
        if self.refusal is not None or self.status not in UNMINED:
            return Effects()
        self.refusal = reason
        if self.cancel_requested_at is None:
            self.cancel_requested_at = at
        self.updated_at = at
        effects = Effects(events=[EngineEvent.REFUSED])
        for withdrawal in self.carried:
            if withdrawal.status.is_final:
                continue
            effects.changes.append(
                note(
                    withdrawal,
                    at=at,
                    reason=f"the node refused the payout for good ({reason}): a no-op will take "
                    f"nonce {self.nonce}, then the withdrawal fails",
                    data={"transactionHash": self.latest.hash, "attempt": self.latest.seq},
                )
            )
        return effects

    def cancel_requested(self, reason: str, *, at: datetime) -> Effects:
        """An operator asks for a no-op at its nonce; asking twice changes nothing.

        Raises:
            InvalidStateError: It is mined (or settled): the chain has decided.
        """
        if self.status not in UNMINED:
            raise InvalidStateError("its transaction is mined; it can no longer be cancelled")
        if self.cancel_requested_at is not None:
            return Effects()
        self.cancel_requested_at = at
        self.updated_at = at
        effects = Effects(events=[EngineEvent.CANCEL_REQUESTED])
        for withdrawal in self.carried:
            effects.changes.append(
                note(
                    withdrawal,
                    at=at,
                    reason=f"cancel requested ({reason}): a no-op will replace nonce "
                    f"{self.nonce}; if the payout is mined first, it completes",
                )
            )
        return effects

    def resent(self, *, at: datetime) -> Effects:
        """Its latest attempt is sent again unchanged, since no replacement can help (the fee
        cap, or a wallet short of the higher fees): it counts as stuck again only
        ``stuck_after_s`` from now (`stuck_since`), not at every look."""
        self.updated_at = at
        return Effects(events=[EngineEvent.RESENT])

    @property
    def stuck_since(self) -> datetime:
        """Since when it has waited for a receipt: its latest attempt's signing, or the last
        change to it (sent, re-sent unchanged, sent again after a re-org), if later."""
        return max(self.latest.created_at, self.updated_at)

    def replaced(self, attempt: Attempt, *, at: datetime, stuck_after_s: float) -> Effects:
        """A new attempt at higher fees (a no-op for a cancel) is signed and stored."""
        if self.status is not TransactionStatus.BROADCAST:
            raise InvalidStateError(f"a {self.status} transaction is not replaced")
        previous = self.latest
        self.signed_forms.append(attempt)
        self.updated_at = at
        first_cancel = (
            attempt.purpose is AttemptPurpose.CANCEL
            and previous.purpose is not AttemptPurpose.CANCEL
        )
        if first_cancel and self.refusal is not None:
            reason = (
                f"refused for good ({self.refusal}): a no-op (attempt {attempt.seq}) takes "
                f"nonce {self.nonce}"
            )
        elif first_cancel:
            reason = f"cancel: no-op replacement (attempt {attempt.seq}) at nonce {self.nonce}"
        else:
            reason = (
                f"no receipt after {stuck_after_s:g} s: replaced by attempt {attempt.seq} "
                "at higher fees"
            )
        data: EventData = {
            "transactionHash": attempt.hash,
            "attempt": attempt.seq,
            "replaces": previous.hash,
            "maxFeePerGas": str(attempt.fees.max_fee_per_gas),
            "maxPriorityFeePerGas": str(attempt.fees.max_priority_fee_per_gas),
        }
        effects = Effects(
            events=[EngineEvent.CANCEL_SENT if first_cancel else EngineEvent.REPLACED]
        )
        for withdrawal in self.carried:
            if withdrawal.status is not WithdrawalStatus.BROADCASTING:
                continue
            withdrawal.transaction_hash = attempt.hash
            effects.changes.append(note(withdrawal, at=at, reason=reason, data=data))
        return effects

    def mined(
        self,
        *,
        block_number: int,
        block_hash: str,
        transaction_hash: str,
        at: datetime,
        fee_paid: int | None = None,
    ) -> Effects:
        """One of its attempts has a receipt (BROADCAST → MINED), or moved to another block.

        ``fee_paid``: what the receipt says the attempt paid for gas, in wei."""
        if (
            self.status is TransactionStatus.MINED
            and self.block_hash == block_hash
            and self.mined_hash == transaction_hash
        ):
            if self.fee_paid is None and fee_paid is not None:  # mined before fees were kept
                self._fee_paid(fee_paid)
            return Effects()
        self.fee_paid = fee_paid
        attempt = self.attempt(transaction_hash)
        previous = self.block_number
        moved = self.status is TransactionStatus.MINED
        if moved:
            self.updated_at = at
        else:
            self._become(TransactionStatus.MINED, at)
        self.block_number = block_number
        self.block_hash = block_hash
        self.mined_hash = transaction_hash
        self.nonce_used_at_block = None
        what = "a no-op cancel" if attempt.purpose is AttemptPurpose.CANCEL else "the payout"
        data = _inclusion_data(transaction_hash, block_number, block_hash, attempt)
        effects = Effects(events=[EngineEvent.REORGED if moved else EngineEvent.MINED])
        shares = self._shares(fee_paid)
        for withdrawal, share in zip(self.carried, shares, strict=True):
            if withdrawal.status is WithdrawalStatus.BROADCASTING:
                change = move(
                    withdrawal,
                    WithdrawalStatus.CONFIRMING,
                    at=at,
                    reason=f"{what} (attempt {attempt.seq}) mined in block {block_number}; "
                    "waiting for finality",
                    data=data,
                )
            elif withdrawal.status is WithdrawalStatus.CONFIRMING:
                change = note(
                    withdrawal,
                    at=at,
                    reason=f"re-org: block {previous} replaced; {what} (attempt {attempt.seq}) "
                    f"is now in block {block_number}",
                    data=data,
                )
            else:
                continue
            withdrawal.transaction_hash = transaction_hash
            withdrawal.block_number = block_number
            withdrawal.fee_paid = share
            effects.changes.append(change)
        return effects

    def _shares(self, fee_paid: int | None) -> list[int | None]:
        """Each carried withdrawal's share of the fee: all of it for a single payout, equal
        integer shares adding up to it for a batch (the first ones a wei more)."""
        count = len(self.carried)
        if fee_paid is None or count == 0:
            return [None] * count
        share, rest = divmod(fee_paid, count)
        return [share + (1 if i < rest else 0) for i in range(count)]

    def _fee_paid(self, fee_paid: int) -> None:
        self.fee_paid = fee_paid
        for withdrawal, share in zip(self.carried, self._shares(fee_paid), strict=True):
            withdrawal.fee_paid = share

    def reorged(self, *, at: datetime) -> tuple[Effects, Attempt]:
        """A re-org removed the block it was mined in: MINED → BROADCAST.

        Returns:
            The effects, and the attempt that was mined (to send again).
        """
        block = self.block_number
        mined = next((a for a in self.signed_forms if a.hash == self.mined_hash), self.latest)
        self._become(TransactionStatus.BROADCAST, at)
        self.block_number = None
        self.block_hash = None
        self.mined_hash = None
        self.fee_paid = None
        effects = Effects(events=[EngineEvent.REORGED])
        for withdrawal in self.carried:
            if withdrawal.status is not WithdrawalStatus.CONFIRMING:
                continue
            withdrawal.block_number = None
            withdrawal.fee_paid = None
            effects.changes.append(
                move(
                    withdrawal,
                    WithdrawalStatus.BROADCASTING,
                    at=at,
                    reason=f"re-org: block {block} is no longer on the chain; "
                    f"attempt {mined.seq} sent again",
                    data={"transactionHash": mined.hash, "attempt": mined.seq},
                )
            )
        return effects, mined

    def settle(
        self,
        *,
        block_number: int,
        block_hash: str,
        transaction_hash: str,
        succeeded: bool,
        unpaid: frozenset[str] = frozenset(),
        at: datetime,
        fee_paid: int | None = None,
    ) -> Effects:
        """Its receipt's block is final: the outcome of every withdrawal it carries.

        ``unpaid``: withdrawals that the receipt shows were not paid although the transaction
        succeeded (a token that returned false: no ``Transfer`` event for the payment).
        A mined no-op means nothing was paid: CANCELLED, or FAILED ``rejected`` when the no-op
        was sent because a node refused the payload for good. ``fee_paid``: what the receipt
        says it paid for gas, in wei.
        """
        effects = self.mined(
            block_number=block_number,
            block_hash=block_hash,
            transaction_hash=transaction_hash,
            at=at,
            fee_paid=fee_paid,
        )
        attempt = self.attempt(transaction_hash)
        noop = attempt.purpose is AttemptPurpose.CANCEL
        if noop:
            target = TransactionStatus.CANCELLED
        elif succeeded:
            target = TransactionStatus.CONFIRMED
        else:
            target = TransactionStatus.REVERTED
        self._become(target, at)
        effects.outcome = (transaction_hash,)
        effects.events.append(EngineEvent.SETTLED)
        data = _inclusion_data(transaction_hash, block_number, block_hash, attempt)
        if self.is_batch and ((not succeeded and not noop) or (noop and self.refusal)):
            # Nothing was paid by a batch that reverted, or whose payload a node refused for
            # good: its withdrawals are paid again, each on its own.
            why = (
                f"the batch of {len(self.carried)} reverted in block {block_number}"
                if not noop
                else f"a node refused the batch of {len(self.carried)} for good ({self.refusal}); "
                f"the no-op at its nonce is final in block {block_number}"
            )
            effects.extend(self._split(block_number, at, why))
            return effects
        for withdrawal in self.carried:
            if withdrawal.status is not WithdrawalStatus.CONFIRMING:
                continue
            paid = succeeded and not noop and withdrawal.id not in unpaid
            if paid:
                target_status, code = WithdrawalStatus.COMPLETED, None
                reason = f"final in block {block_number}"
            elif noop and self.refusal is not None:
                target_status, code = WithdrawalStatus.FAILED, ErrorCode.REJECTED
                reason = (
                    f"the node refused the payout ({self.refusal}); the no-op at its nonce "
                    f"(attempt {attempt.seq}) is final in block {block_number}; nothing was paid"
                )
            elif noop:
                target_status, code = WithdrawalStatus.CANCELLED, None
                reason = (
                    f"cancelled: the no-op replacement (attempt {attempt.seq}) is final "
                    f"in block {block_number}; nothing was paid"
                )
            elif not succeeded:
                target_status, code = WithdrawalStatus.FAILED, ErrorCode.REVERTED
                reason = f"transaction reverted in block {block_number}"
            elif self.is_batch and withdrawal.token_address is None:
                target_status, code = WithdrawalStatus.FAILED, ErrorCode.PAYMENT_NOT_FOUND
                reason = (
                    f"mined in block {block_number}, but the batch recorded no payment at this "
                    "withdrawal's position (no Paid event); nothing was paid"
                )
            else:
                target_status, code = WithdrawalStatus.FAILED, ErrorCode.TOKEN_TRANSFER_FAILED
                reason = (
                    f"mined in block {block_number}, but the token recorded no transfer of the "
                    "amount to the destination (its transfer returned false); nothing was paid"
                )
            effects.moves.append(
                LedgerMove(
                    withdrawal,
                    EntryKind.SETTLE if paid else EntryKind.RELEASE,
                    withdrawal.held,
                )
            )
            effects.changes.append(
                move(withdrawal, target_status, at=at, reason=reason, error_code=code, data=data)
            )
        return effects

    def _split(self, block_number: int, at: datetime, why: str) -> Effects:
        """A batch paid nothing (``why``, final): each withdrawal is signed again, on its own,
        with its hold kept (`Withdrawal.unbatched`)."""
        effects = Effects()
        for withdrawal in self.carried:
            if withdrawal.status is not WithdrawalStatus.CONFIRMING:
                continue
            effects.changes.append(
                move(
                    withdrawal,
                    WithdrawalStatus.VALIDATING,
                    at=at,
                    reason=f"{why}; nothing was paid; paying this withdrawal on its own",
                    data={"revertedTransactionId": self.id, "blockNumber": block_number},
                )
            )
            withdrawal.transaction_id = None
            withdrawal.transaction_hash = None
            withdrawal.block_number = None
            withdrawal.fee_paid = None
            withdrawal.unbatched = True
            effects.resign.append(withdrawal.id)
        return effects

    def superseded(self, *, head: int, at: datetime) -> Effects:
        """Its nonce was used, at a final block, by a transaction not of ours: none of its
        attempts can ever be mined, and its withdrawals are signed again with a new nonce."""
        self._become(TransactionStatus.SUPERSEDED, at)
        effects = Effects(events=[EngineEvent.SUPERSEDED], outcome=(None,))
        for withdrawal in self.carried:
            if withdrawal.status is not WithdrawalStatus.BROADCASTING:
                continue
            effects.changes.append(
                move(
                    withdrawal,
                    WithdrawalStatus.VALIDATING,
                    at=at,
                    reason=f"nonce {self.nonce} of {self.from_address} was used by another "
                    f"transaction (final at block {head}); none of this withdrawal's attempts "
                    "can be mined; signing again",
                    data={"supersededTransactionId": self.id},
                )
            )
            withdrawal.transaction_id = None
            withdrawal.transaction_hash = None
            effects.resign.append(withdrawal.id)
        return effects

    def nonce_seen_used(self, head: int) -> bool:
        """Remember when its nonce was first seen used by another; True if that is new."""
        if self.nonce_used_at_block is not None:
            return False
        self.nonce_used_at_block = head
        return True

    def nonce_free_again(self) -> bool:
        """Its nonce is unused after all (a re-org of someone else's); True if that is new."""
        if self.nonce_used_at_block is None:
            return False
        self.nonce_used_at_block = None
        return True


def _inclusion_data(
    transaction_hash: str, block_number: int, block_hash: str, attempt: Attempt
) -> EventData:
    return {
        "transactionHash": transaction_hash,
        "blockNumber": block_number,
        "blockHash": block_hash,
        "attempt": attempt.seq,
    }
