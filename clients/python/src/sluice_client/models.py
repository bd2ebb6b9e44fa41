"""What the API answers, as frozen dataclasses read by hand from its JSON (no pydantic: the SDK
needs only httpx and cryptography).

Amounts (decimal strings in token units on the wire, fees paid in the native coin too) are
`decimal.Decimal`, exact; fees in wei per gas are `int`; times are timezone-aware `datetime`.
Each model keeps the JSON it was read from in ``raw``, so a field added by a newer Sluice is
reachable before the SDK knows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sluice_client._reader import Reader
from sluice_client.status import FeeLevel, WithdrawalStatus

__all__ = [
    "Attempt",
    "Balance",
    "CreditResult",
    "DeadLetter",
    "Event",
    "EventData",
    "Explorer",
    "FeeLevel",
    "FeeLevelPrice",
    "FeeLimits",
    "Finality",
    "Health",
    "HotWallet",
    "Network",
    "NetworkAsset",
    "NetworkHotWallet",
    "Readiness",
    "ReadinessCheck",
    "RpcHealth",
    "Transaction",
    "Withdrawal",
    "WithdrawalPage",
    "WithdrawalStatus",
]


def _raw() -> Any:
    """The ``raw`` field: the JSON a model was read from (not compared, not shown)."""
    return field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A withdrawal (``createWithdrawal``, ``getWithdrawal`` …).

    ``priority`` is the fee level it is paid at (None from a Sluice before fee levels, or when
    the network is unknown); ``fee_paid`` what its transaction paid for gas, in the network's
    native coin, as the receipt says (an OP Stack chain's L1 data fee included): None until
    mined, and again if a re-org removes the block.
    """

    id: str
    user_id: str
    amount: Decimal
    symbol: str | None
    to_address: str
    token_address: str | None
    network: str
    status: WithdrawalStatus
    transaction_hash: str | None
    block_number: int | None
    error: str | None
    error_code: str | None
    waiting_reason: str | None
    created_at: datetime
    updated_at: datetime
    priority: FeeLevel | None = None
    fee_paid: Decimal | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Withdrawal:
        """Read an API withdrawal."""
        r = Reader(value, "Withdrawal")
        return cls(
            id=r.text("id"),
            user_id=r.text("userId"),
            amount=r.amount("amount"),
            symbol=r.opt_text("symbol"),
            to_address=r.text("toAddress"),
            token_address=r.opt_text("tokenAddress"),
            network=r.text("network"),
            status=r.status("status"),
            transaction_hash=r.opt_text("transactionHash"),
            block_number=r.opt_integer("blockNumber"),
            error=r.opt_text("error"),
            error_code=r.opt_text("errorCode"),
            waiting_reason=r.opt_text("waitingReason"),
            created_at=r.moment("createdAt"),
            updated_at=r.moment("updatedAt"),
            priority=r.opt_level("priority"),
            fee_paid=r.opt_amount("feePaid"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class WithdrawalPage:
    """One page of ``listWithdrawals``; pass ``next_cursor`` back as ``cursor`` (None: the end)."""

    items: list[Withdrawal]
    next_cursor: str | None

    @classmethod
    def from_json(cls, value: object) -> WithdrawalPage:
        """Read a page."""
        r = Reader(value, "WithdrawalPage")
        return cls(
            items=[Withdrawal.from_json(item) for item in r.items("items")],
            next_cursor=r.opt_text("nextCursor"),
        )


@dataclass(frozen=True, slots=True)
class EventData:
    """What an event records beside its change of status; each field only where it applies."""

    nonce: int | None = None
    attempt: int | None = None
    transaction_hash: str | None = None
    hot_wallet: str | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    replaces: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    superseded_transaction_id: str | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> EventData:
        """Read an event's ``data``."""
        r = Reader(value, "EventData")
        return cls(
            nonce=r.opt_integer("nonce"),
            attempt=r.opt_integer("attempt"),
            transaction_hash=r.opt_text("transactionHash"),
            hot_wallet=r.opt_text("hotWallet"),
            max_fee_per_gas=r.opt_wei("maxFeePerGas"),
            max_priority_fee_per_gas=r.opt_wei("maxPriorityFeePerGas"),
            replaces=r.opt_text("replaces"),
            block_number=r.opt_integer("blockNumber"),
            block_hash=r.opt_text("blockHash"),
            superseded_transaction_id=r.opt_text("supersededTransactionId"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a withdrawal's history. ``from_status == status``: something happened
    without a change of status (a replacement at higher fees, a re-org, a wait)."""

    from_status: WithdrawalStatus | None
    status: WithdrawalStatus
    at: datetime
    reason: str
    error_code: str | None
    request_id: str | None
    data: EventData | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Event:
        """Read an event."""
        r = Reader(value, "Event")
        data = r.data.get("data")
        return cls(
            from_status=r.opt_status("fromStatus"),
            status=r.status("status"),
            at=r.moment("at"),
            reason=r.text("reason"),
            error_code=r.opt_text("errorCode"),
            request_id=r.opt_text("requestId"),
            data=None if data is None else EventData.from_json(data),
            raw=r.data,
        )


def read_events(value: object) -> list[Event]:
    """The ``events`` of ``listWithdrawalEvents``, oldest first."""
    r = Reader(value, "EventList")
    return [Event.from_json(item) for item in r.items("events")]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One signed form of a transaction.

    ``purpose`` is ``PAYLOAD`` or ``CANCEL`` (a no-op replacement); ``outcome`` ``MINED`` or
    ``REPLACED`` once settled, else None.
    """

    seq: int
    purpose: str
    transaction_hash: str
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    created_at: datetime
    sent_at: datetime | None
    outcome: str | None
    note: str | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Attempt:
        """Read an attempt."""
        r = Reader(value, "Attempt")
        return cls(
            seq=r.integer("seq"),
            purpose=r.text("purpose"),
            transaction_hash=r.text("transactionHash"),
            max_fee_per_gas=r.wei("maxFeePerGas"),
            max_priority_fee_per_gas=r.wei("maxPriorityFeePerGas"),
            created_at=r.moment("createdAt"),
            sent_at=r.opt_moment("sentAt"),
            outcome=r.opt_text("outcome"),
            note=r.opt_text("note"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """The batch a transaction is: one call to the hot wallet's batch ``contract`` paying
    ``size`` withdrawals, this one at ``position`` (from 0)."""

    contract: str
    size: int
    position: int
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Batch:
        """Read a batch."""
        r = Reader(value, "Batch")
        return cls(
            contract=r.text("contract"),
            size=r.integer("size"),
            position=r.integer("position"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Transaction:
    """The on-chain transaction carrying a withdrawal, with every attempt at it.

    ``kind`` is ``PAYOUT`` or ``FILLER``; ``status`` one of ``SIGNED``, ``BROADCAST``,
    ``MINED``, ``CONFIRMED``, ``REVERTED``, ``CANCELLED``, ``SUPERSEDED``; ``fee_paid`` what the
    mined attempt paid for gas, in wei (the whole transaction's); ``batch`` set when it pays
    several withdrawals.
    """

    id: str
    network: str
    hot_wallet: str
    nonce: int
    kind: str
    status: str
    block_number: int | None
    block_hash: str | None
    mined_hash: str | None
    cancel_requested_at: datetime | None
    attempts: list[Attempt]
    fee_paid: int | None = None
    batch: Batch | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Transaction:
        """Read a transaction."""
        r = Reader(value, "Transaction")
        return cls(
            id=r.text("id"),
            network=r.text("network"),
            hot_wallet=r.text("hotWallet"),
            nonce=r.integer("nonce"),
            kind=r.text("kind"),
            status=r.text("status"),
            block_number=r.opt_integer("blockNumber"),
            block_hash=r.opt_text("blockHash"),
            mined_hash=r.opt_text("minedHash"),
            cancel_requested_at=r.opt_moment("cancelRequestedAt"),
            attempts=[Attempt.from_json(item) for item in r.items("attempts")],
            fee_paid=r.opt_wei("feePaid"),
            batch=None if (batch := r.opt_mapping("batch")) is None else Batch.from_json(batch),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Balance:
    """A user's balance of one asset on one network, in token units."""

    network: str
    token_address: str | None
    symbol: str | None
    available: Decimal
    held: Decimal
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Balance:
        """Read a balance."""
        r = Reader(value, "Balance")
        return cls(
            network=r.text("network"),
            token_address=r.opt_text("tokenAddress"),
            symbol=r.opt_text("symbol"),
            available=r.amount("available"),
            held=r.amount("held"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class CreditResult:
    """The outcome of a credit: ``credited`` is False when the reference was credited before."""

    reference: str
    credited: bool
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> CreditResult:
        """Read a credit's outcome."""
        r = Reader(value, "CreditResult")
        return cls(reference=r.text("reference"), credited=r.flag("credited"), raw=r.data)


@dataclass(frozen=True, slots=True)
class HotWallet:
    """A hot wallet: ``state`` is ``active`` or ``draining``; ``native_balance`` in token units
    (None while its network's node is down or slow)."""

    network: str
    address: str
    state: str
    in_flight: int
    native_symbol: str
    native_balance: Decimal | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> HotWallet:
        """Read a hot wallet."""
        r = Reader(value, "HotWallet")
        return cls(
            network=r.text("network"),
            address=r.text("address"),
            state=r.text("state"),
            in_flight=r.integer("inFlight"),
            native_symbol=r.text("nativeSymbol"),
            native_balance=r.opt_amount("nativeBalance"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job that exhausted its retries (requeue it with `requeue_dead_letter`)."""

    id: str
    job: str
    payload: dict[str, Any]
    attempts: int
    reason: str
    last_error: str | None
    dead_at: datetime
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> DeadLetter:
        """Read a dead letter."""
        r = Reader(value, "DeadLetter")
        return cls(
            id=r.text("id"),
            job=r.text("job"),
            payload=r.mapping("payload"),
            attempts=r.integer("attempts"),
            reason=r.text("reason"),
            last_error=r.opt_text("lastError"),
            dead_at=r.moment("deadAt"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class NetworkAsset:
    """Something a network pays out: its native coin (``token_address`` None) or a token."""

    symbol: str
    decimals: int
    token_address: str | None

    @classmethod
    def from_json(cls, value: object) -> NetworkAsset:
        """Read an asset."""
        r = Reader(value, "NetworkAsset")
        return cls(
            symbol=r.text("symbol"),
            decimals=r.integer("decimals"),
            token_address=r.opt_text("tokenAddress"),
        )


@dataclass(frozen=True, slots=True)
class Finality:
    """When a network's payouts count as final: ``rule`` ``finalized`` (the node's finalized
    block tag) or ``depth`` (``confirmations`` blocks on top of it)."""

    rule: str
    confirmations: int

    @classmethod
    def from_json(cls, value: object) -> Finality:
        """Read a finality rule."""
        r = Reader(value, "Finality")
        return cls(rule=r.text("rule"), confirmations=r.integer("confirmations"))


@dataclass(frozen=True, slots=True)
class FeeLevelPrice:
    """What a fee level offers now, in wei per gas; on a legacy network both are the gas price."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    @classmethod
    def from_json(cls, value: object) -> FeeLevelPrice:
        """Read a fee level's price."""
        r = Reader(value, "FeeLevelPrice")
        return cls(
            max_fee_per_gas=r.wei("maxFeePerGas"),
            max_priority_fee_per_gas=r.wei("maxPriorityFeePerGas"),
        )


@dataclass(frozen=True, slots=True)
class FeeLimits:
    """A network's fee caps and floors, in wei per gas (``max_tip_per_gas`` None: no cap), and
    the least rise of a replacement, in percent."""

    max_fee_per_gas: int
    max_tip_per_gas: int | None
    min_tip_per_gas: int
    min_gas_price: int
    bump_percent: int

    @classmethod
    def from_json(cls, value: object) -> FeeLimits:
        """Read fee limits."""
        r = Reader(value, "FeeLimits")
        return cls(
            max_fee_per_gas=r.wei("maxFeePerGas"),
            max_tip_per_gas=r.opt_wei("maxTipPerGas"),
            min_tip_per_gas=r.wei("minTipPerGas"),
            min_gas_price=r.wei("minGasPrice"),
            bump_percent=r.integer("bumpPercent"),
        )


@dataclass(frozen=True, slots=True)
class RpcHealth:
    """A network's node as Sluice's health monitor last saw it (never a URL): ``status`` is
    ``up``, ``down``, ``starting`` or ``misconfigured``; ``head`` its latest block; ``providers``
    how many RPC providers are configured."""

    status: str
    detail: str
    head: int | None
    providers: int

    @property
    def up(self) -> bool:
        """Whether the node answers (``status`` is ``up``)."""
        return self.status == "up"

    @classmethod
    def from_json(cls, value: object) -> RpcHealth:
        """Read a node's health."""
        r = Reader(value, "RpcHealth")
        return cls(
            status=r.text("status"),
            detail=r.text("detail"),
            head=r.opt_integer("head"),
            providers=r.integer("providers"),
        )


@dataclass(frozen=True, slots=True)
class NetworkHotWallet:
    """A hot wallet of a network: ``state`` is ``active`` or ``draining``; ``native_balance`` in
    token units, None when the node was not asked (down) or too slow; ``batch_contract`` its
    BatchPayout contract, when it pays in batches."""

    address: str
    state: str
    native_balance: Decimal | None
    batch_contract: str | None = None

    @classmethod
    def from_json(cls, value: object) -> NetworkHotWallet:
        """Read a network's hot wallet."""
        r = Reader(value, "NetworkHotWallet")
        return cls(
            address=r.text("address"),
            state=r.text("state"),
            native_balance=r.opt_amount("nativeBalance"),
            batch_contract=r.opt_text("batchContract"),
        )


@dataclass(frozen=True, slots=True)
class NetworkBatching:
    """How a network pays withdrawals in batches: ``enabled`` (False: each on its own), at most
    ``max_size`` per transaction, a withdrawal waiting up to ``window_seconds`` for others."""

    enabled: bool
    max_size: int
    window_seconds: float

    @classmethod
    def from_json(cls, value: object) -> NetworkBatching:
        """Read a network's batching."""
        r = Reader(value, "NetworkBatching")
        return cls(
            enabled=r.flag("enabled"),
            max_size=r.integer("maxSize"),
            window_seconds=r.number("windowSeconds"),
        )


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """A network's circuit breaker: for each asset symbol, the most its payouts signed within
    ``window_seconds`` may add up to, in token units (``max_outflow``); past it the network's
    signing pauses until an operator resumes it."""

    window_seconds: int
    max_outflow: dict[str, Decimal]

    @classmethod
    def from_json(cls, value: object) -> CircuitBreaker:
        """Read a network's circuit breaker."""
        r = Reader(value, "CircuitBreaker")
        limits = Reader(r.mapping("maxOutflow"), "CircuitBreaker.maxOutflow")
        return cls(
            window_seconds=r.integer("windowSeconds"),
            max_outflow={symbol: limits.amount(symbol) for symbol in limits.data},
        )


@dataclass(frozen=True, slots=True)
class NetworkPause:
    """The pause holding a network's new payouts: ``kind`` ``manual`` (an operator) or
    ``circuit_breaker``; ``network`` ``"*"`` when every network is frozen. Its withdrawals wait
    in VALIDATING with a ``waiting_reason``."""

    network: str
    since: datetime
    kind: str
    reason: str
    actor: str

    @classmethod
    def from_json(cls, value: object) -> NetworkPause:
        """Read a pause."""
        r = Reader(value, "Pause")
        return cls(
            network=r.text("network"),
            since=r.moment("since"),
            kind=r.text("kind"),
            reason=r.text("reason"),
            actor=r.text("actor"),
        )


@dataclass(frozen=True, slots=True)
class Explorer:
    """A block explorer's URL templates: ``transaction`` with ``{hash}``, ``address`` with
    ``{address}``."""

    transaction: str
    address: str

    def transaction_url(self, transaction_hash: str) -> str:
        """The explorer's page of a transaction."""
        return self.transaction.replace("{hash}", transaction_hash)

    def address_url(self, address: str) -> str:
        """The explorer's page of an address."""
        return self.address.replace("{address}", address)

    @classmethod
    def from_json(cls, value: object) -> Explorer:
        """Read an explorer's templates."""
        r = Reader(value, "Explorer")
        return cls(transaction=r.text("transaction"), address=r.text("address"))


@dataclass(frozen=True, slots=True)
class Network:
    """A network the deployment pays out on (``listNetworks``).

    ``assets`` has the native coin first, then the tokens. ``fee_model`` is ``eip1559`` or
    ``legacy``. ``fee_levels`` is what a withdrawal of each `FeeLevel` would pay now (None while
    the network is down); ``default_priority`` the level of a withdrawal that names none.
    ``block_time_seconds`` is typical, not a promise.
    """

    name: str
    display_name: str
    preset: str | None
    chain_id: int
    assets: list[NetworkAsset]
    finality: Finality
    block_time_seconds: float
    fee_model: str
    default_priority: FeeLevel
    fee_levels: dict[FeeLevel, FeeLevelPrice] | None
    fee_limits: FeeLimits
    rpc: RpcHealth
    hot_wallets: list[NetworkHotWallet]
    explorer: Explorer | None
    batching: NetworkBatching | None = None
    circuit_breaker: CircuitBreaker | None = None
    paused: NetworkPause | None = None
    """None while the network signs (and from a Sluice without pauses)."""
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Network:
        """Read a network."""
        r = Reader(value, "Network")
        levels = r.opt_per_level("feeLevels")
        explorer = r.opt_mapping("explorer")
        batching = r.opt_mapping("batching")
        breaker = r.opt_mapping("circuitBreaker")
        paused = r.opt_mapping("paused")
        return cls(
            name=r.text("name"),
            display_name=r.text("displayName"),
            preset=r.opt_text("preset"),
            chain_id=r.integer("chainId"),
            assets=[NetworkAsset.from_json(item) for item in r.items("assets")],
            finality=Finality.from_json(r.mapping("finality")),
            block_time_seconds=r.number("blockTimeSeconds"),
            fee_model=r.text("feeModel"),
            default_priority=r.level("defaultPriority"),
            fee_levels=None
            if levels is None
            else {level: FeeLevelPrice.from_json(price) for level, price in levels.items()},
            fee_limits=FeeLimits.from_json(r.mapping("feeLimits")),
            rpc=RpcHealth.from_json(r.mapping("rpc")),
            hot_wallets=[NetworkHotWallet.from_json(item) for item in r.items("hotWallets")],
            explorer=None if explorer is None else Explorer.from_json(explorer),
            batching=None if batching is None else NetworkBatching.from_json(batching),
            circuit_breaker=None if breaker is None else CircuitBreaker.from_json(breaker),
            paused=None if paused is None else NetworkPause.from_json(paused),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """One readiness check (``database``, ``queue``, ``cache``, ``chain:<network>``)."""

    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Readiness:
    """``getReadiness``: ``status`` is ``ready``, ``degraded`` (ready: some networks' nodes, or
    the balance cache, fail; ``degraded`` names those checks, e.g. ``chain:polygon``) or
    ``not_ready`` (the database or the queue fails: answered with 503, which this SDK returns
    rather than raises)."""

    status: str
    checks: dict[str, ReadinessCheck]
    degraded: list[str] = field(default_factory=list)
    raw: Mapping[str, Any] = _raw()

    @property
    def ready(self) -> bool:
        """Whether the instance can do its work (``ready`` or ``degraded``)."""
        return self.status != "not_ready"

    @classmethod
    def from_json(cls, value: object) -> Readiness:
        """Read a readiness answer (``degraded`` is empty from a Sluice before it)."""
        r = Reader(value, "Readiness")
        checks = {}
        for name, item in r.mapping("checks").items():
            check = Reader(item, f"Readiness.checks.{name}")
            checks[name] = ReadinessCheck(ok=check.flag("ok"), detail=check.text("detail"))
        return cls(
            status=r.text("status"),
            checks=checks,
            degraded=r.texts("degraded", optional=True),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Health:
    """``getHealth``: ``status`` is ``ok`` while the process runs."""

    status: str

    @classmethod
    def from_json(cls, value: object) -> Health:
        """Read a liveness answer."""
        return cls(status=Reader(value, "Health").text("status"))
