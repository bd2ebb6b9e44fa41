"""Request and response bodies. Field names follow the seed's TypeScript types (camelCase).

Amounts are strings on the wire in both directions, so no JSON client can turn them into floats;
a JSON number where an amount belongs is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    TypeAdapter,
)
from pydantic.alias_generators import to_camel
from typing_extensions import TypedDict

from sluice.domain.access import USER_ID_PATTERN
from sluice.domain.amounts import format_amount
from sluice.domain.assets import Asset, Network
from sluice.domain.fees import FeeLevel
from sluice.domain.transaction import (
    Attempt,
    AttemptOutcome,
    AttemptPurpose,
    ChainTransaction,
    TransactionKind,
    TransactionStatus,
)
from sluice.domain.withdrawal import StatusChange, Withdrawal, WithdrawalStatus
from sluice.services.ledger import AssetBalance

#: A client-chosen id (also the idempotency key).
CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
ClientId = Annotated[
    StrictStr,
    Field(
        pattern=CLIENT_ID_PATTERN,
        description="Client-chosen id, also the idempotency key: 1-64 of A-Z a-z 0-9 _ . : -",
        examples=["payout-20261202-0042"],
    ),
]
USER_ID_DESCRIPTION = (
    "The platform's user id: 1-128 of A-Z a-z 0-9 _ . : @ -, starting with a letter or digit"
)
UserId = Annotated[
    StrictStr,
    Field(pattern=USER_ID_PATTERN, description=USER_ID_DESCRIPTION, examples=["user-42"]),
]
AmountText = Annotated[
    StrictStr,
    Field(
        max_length=100,
        description='Decimal string in token units, e.g. "1.5"',
        examples=["1.5"],
    ),
]
AddressText = Annotated[StrictStr, Field(max_length=64, examples=["0x" + "ab" * 20])]
NetworkName = Annotated[StrictStr, Field(min_length=1, max_length=64, examples=["anvil"])]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class WithdrawalCreate(_In):
    """A withdrawal request."""

    id: ClientId | None = None
    user_id: UserId
    amount: AmountText
    to_address: AddressText
    token_address: AddressText | None = None
    network: NetworkName
    priority: FeeLevel | None = Field(
        default=None,
        description="The fee level to pay at: `slow`, `normal` or `fast` (default: the "
        "network's, see `listNetworks`); replacements of a stuck transaction rise to at least "
        "the current price of this level",
    )


class WithdrawalOut(_Out):
    """A withdrawal as the API shows it."""

    id: str
    user_id: str
    amount: str
    symbol: str | None
    to_address: str
    token_address: str | None
    network: str
    status: WithdrawalStatus
    transaction_hash: str | None = None
    block_number: int | None = None
    error: str | None = None
    error_code: str | None = None
    waiting_reason: str | None = Field(
        default=None,
        description="Why it is not moving on right now (e.g. the hot wallet is underfunded)",
    )
    priority: FeeLevel | None = Field(
        default=None, description="The fee level it is paid at (null: the network is unknown)"
    )
    fee_paid: str | None = Field(
        default=None,
        description="What its transaction paid for gas, in the network's native coin (decimal "
        "string; an OP Stack chain's L1 data fee included), as the receipt says; null until "
        "mined",
        examples=["0.000021"],
    )
    fee: str = Field(
        default="0",
        description="The withdrawal fee the policy charges, in the asset's units (decimal "
        "string): held with the amount, the fee account's once it completes",
        examples=["0.25"],
    )
    policy_version: str | None = Field(
        default=None, description="The policy version (SHA-256) that decided it, once decided"
    )
    policy_rule: str | None = Field(
        default=None, description="The rule of that policy that decided it (docs/policy.md)"
    )
    approval_expires_at: datetime | None = Field(
        default=None, description="While it waits for approval: when the wait ends (FAILED)"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(
        cls, withdrawal: Withdrawal, asset: Asset | None, network: Network | None = None
    ) -> WithdrawalOut:
        """Render a domain withdrawal (amounts in base units → decimal strings; without its
        ``network``, the fee paid is in wei)."""
        amount = (
            format_amount(withdrawal.amount, asset.decimals)
            if asset is not None
            else str(withdrawal.amount)
        )
        fee_paid = None
        if withdrawal.fee_paid is not None:
            fee_paid = (
                format_amount(withdrawal.fee_paid, network.native.decimals)
                if network is not None
                else str(withdrawal.fee_paid)
            )
        priority = withdrawal.priority or (
            network.fees.default_level if network is not None else None
        )
        return cls(
            id=withdrawal.id,
            user_id=withdrawal.user_id,
            amount=amount,
            symbol=asset.symbol if asset is not None else None,
            to_address=withdrawal.to_address,
            token_address=withdrawal.token_address,
            network=withdrawal.network,
            status=withdrawal.status,
            transaction_hash=withdrawal.transaction_hash,
            block_number=withdrawal.block_number,
            error=withdrawal.error,
            error_code=withdrawal.error_code,
            waiting_reason=withdrawal.waiting_reason,
            priority=priority,
            fee_paid=fee_paid,
            fee=format_amount(withdrawal.fee, asset.decimals)
            if asset is not None
            else str(withdrawal.fee),
            policy_version=withdrawal.policy_version,
            policy_rule=withdrawal.policy_rule,
            approval_expires_at=withdrawal.approval_expires_at,
            created_at=withdrawal.created_at,
            updated_at=withdrawal.updated_at,
        )


class WithdrawalPage(_Out):
    """A page of withdrawals, newest first."""

    items: list[WithdrawalOut]
    next_cursor: str | None


class EventData(TypedDict, total=False):
    """What an event records beside the change of status; each key only where it applies.

    Keys as on the wire (camelCase). Counts and positions are integers as in the resources;
    fees are wei per gas as decimal strings, as in a transaction's attempts.
    """

    nonce: Annotated[int, Field(description="The transaction's nonce (when signed)")]
    attempt: Annotated[int, Field(description="The attempt's `seq` (the transaction's attempts)")]
    transactionHash: str
    hotWallet: str
    maxFeePerGas: Annotated[str, Field(description="wei per gas, decimal string")]
    maxPriorityFeePerGas: Annotated[str, Field(description="wei per gas, decimal string")]
    replaces: Annotated[str, Field(description="The hash of the attempt this one replaces")]
    blockNumber: int
    blockHash: str
    supersededTransactionId: Annotated[
        str, Field(description="The transaction whose nonce another transaction took")
    ]
    revertedTransactionId: Annotated[
        str, Field(description="The batch that reverted (it is paid again on its own)")
    ]
    batchSize: Annotated[int, Field(description="How many withdrawals its batch pays")]
    batchPosition: Annotated[int, Field(description="Its position in the batch, from 0")]


_EVENT_DATA = TypeAdapter(EventData)


class EventOut(_Out):
    """One entry of a withdrawal's status history."""

    from_status: WithdrawalStatus | None
    status: WithdrawalStatus
    at: datetime
    reason: str
    error_code: str | None = None
    request_id: str | None = None
    data: EventData | None = None

    @classmethod
    def of(cls, change: StatusChange) -> EventOut:
        """Render a domain status change."""
        return cls(
            from_status=change.from_status,
            status=change.to_status,
            at=change.at,
            reason=change.reason,
            error_code=change.error_code,
            request_id=change.request_id,
            # Events before 0.2 stored every value as a string: "12" is read as 12.
            data=None if change.data is None else _EVENT_DATA.validate_python(change.data),
        )


class EventList(_Out):
    """A withdrawal's status history, oldest first."""

    withdrawal_id: str
    events: list[EventOut]


class AttemptOut(_Out):
    """One signed form of a transaction."""

    seq: int
    purpose: AttemptPurpose = Field(description="PAYLOAD, or CANCEL for a no-op replacement")
    transaction_hash: str
    max_fee_per_gas: str = Field(description="wei per gas, as a decimal string")
    max_priority_fee_per_gas: str = Field(description="wei per gas, as a decimal string")
    created_at: datetime
    sent_at: datetime | None
    outcome: AttemptOutcome | None = Field(description="MINED or REPLACED once settled")
    note: str | None = Field(description="The node's answer when it was not a plain acceptance")

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        """Render a domain attempt."""
        return cls(
            seq=attempt.seq,
            purpose=attempt.purpose,
            transaction_hash=attempt.hash,
            max_fee_per_gas=str(attempt.fees.max_fee_per_gas),
            max_priority_fee_per_gas=str(attempt.fees.max_priority_fee_per_gas),
            created_at=attempt.created_at,
            sent_at=attempt.sent_at,
            outcome=attempt.outcome,
            note=attempt.note,
        )


class BatchOut(_Out):
    """The batch a transaction is: one call to the hot wallet's batch contract paying many
    withdrawals."""

    contract: str = Field(description="The hot wallet's batch contract the transaction calls")
    size: int = Field(description="How many withdrawals the transaction pays")
    position: int = Field(
        description="This withdrawal's payment in the batch, from 0 (the contract's "
        "`Paid(index)` event names it)"
    )


class TransactionOut(_Out):
    """The on-chain transaction carrying a withdrawal, with every attempt at it."""

    id: str
    network: str
    hot_wallet: str
    nonce: int
    kind: TransactionKind
    status: TransactionStatus
    block_number: int | None
    block_hash: str | None
    mined_hash: str | None
    cancel_requested_at: datetime | None
    fee_paid: str | None = Field(
        description="What the mined attempt paid for gas, in wei, as its receipt says (the "
        "whole transaction's; a batch's withdrawals each show their share as `feePaid`)"
    )
    batch: BatchOut | None = Field(
        description="Set when the transaction is a batch paying several withdrawals"
    )
    attempts: list[AttemptOut]

    @classmethod
    def of(
        cls, transaction: ChainTransaction, attempts: list[Attempt], withdrawal_id: str = ""
    ) -> TransactionOut:
        """Render a domain transaction and its attempts (its batch as ``withdrawal_id`` sees
        it, when the transaction was read with its withdrawals)."""
        batch = None
        if transaction.is_batch and transaction.withdrawals is not None:
            batch = BatchOut(
                contract=transaction.payload.to,
                size=len(transaction.withdrawals),
                position=transaction.position(withdrawal_id),
            )
        return cls(
            id=transaction.id,
            network=transaction.network,
            hot_wallet=transaction.from_address,
            nonce=transaction.nonce,
            kind=transaction.kind,
            status=transaction.status,
            block_number=transaction.block_number,
            block_hash=transaction.block_hash,
            mined_hash=transaction.mined_hash,
            cancel_requested_at=transaction.cancel_requested_at,
            fee_paid=None if transaction.fee_paid is None else str(transaction.fee_paid),
            batch=batch,
            attempts=[AttemptOut.of(a) for a in attempts],
        )


class HotWalletOut(_Out):
    """A hot wallet as an operator sees it."""

    network: str
    address: str
    state: str = Field(description="`active`, or `draining` (takes no new withdrawals)")
    in_flight: int = Field(description="Transactions between signing and finality")
    native_symbol: str = Field(examples=["ETH"])
    native_balance: str | None = Field(
        description="The native coin at the latest block, in token units (decimal string); "
        "null while the network's node is down or slow",
        examples=["12.5"],
    )


class CancelRequest(_In):
    """Why an operator cancels."""

    reason: Annotated[StrictStr, Field(min_length=1, max_length=200)] = "cancelled by an operator"


class CreditCreate(_In):
    """An operator's credit to a user's available balance."""

    user_id: UserId
    network: NetworkName
    token_address: AddressText | None = None
    amount: AmountText
    reference: Annotated[StrictStr, Field(min_length=1, max_length=128)]


class CreditOut(_Out):
    """The outcome of a credit."""

    reference: str
    credited: bool = Field(description="False when the reference was credited before (no-op)")


class BalanceOut(_Out):
    """One balance, in token units."""

    network: str
    token_address: str | None
    symbol: str | None
    available: str
    held: str

    @classmethod
    def of(cls, item: AssetBalance) -> BalanceOut:
        """Render a balance (base units → decimal strings)."""
        asset = item.asset
        if asset is None:  # the network or token is no longer configured: show base units
            return cls(
                network=item.network,
                token_address=None if item.asset_key == "native" else item.asset_key,
                symbol=None,
                available=str(item.balance.available),
                held=str(item.balance.held),
            )
        return cls(
            network=item.network,
            token_address=asset.token_address,
            symbol=asset.symbol,
            available=format_amount(item.balance.available, asset.decimals),
            held=format_amount(item.balance.held, asset.decimals),
        )


class DeadLetterOut(_Out):
    """A message in the dead-letter queue."""

    id: str
    job: str
    payload: dict[str, object]
    attempts: int
    reason: str
    last_error: str | None
    dead_at: datetime


class Health(_Out):
    """The process answers."""

    status: str = Field(examples=["ok"])


class Check(_Out):
    """One readiness check."""

    ok: bool
    detail: str


class Readiness(_Out):
    """Whether this process can do its work."""

    status: str = Field(
        description="`ready`; `degraded` (200: some networks' nodes or the balance cache fail, "
        "everything else works); `not_ready` (503: the database or the queue fails)"
    )
    checks: dict[str, Check]
    degraded: list[str] = Field(
        default_factory=list,
        description="The failing checks that leave the process ready, e.g. `chain:polygon`",
    )
