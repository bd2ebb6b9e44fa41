"""The ports: what services need from the outside world, as Protocols.

Adapters live in `sluice.db`, `sluice.queue`, `sluice.chains` and `sluice.signers`; services see
only these. A unit of work is one database transaction; services never commit it, the entry
point (an HTTP route or a worker handler) does, and messages a service enqueues are published
only after that commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, Self

from sluice.domain.access import ApiKey
from sluice.domain.address_lists import Blocked, BookEntry
from sluice.domain.addresses import Address
from sluice.domain.approvals import Approval
from sluice.domain.audit import AuditEntry, AuditFilter, AuditRecord
from sluice.domain.fees import FeeMarket
from sluice.domain.ledger import Balance, EntryKind
from sluice.domain.operators import Operator
from sluice.domain.pauses import NetworkControl
from sluice.domain.policy import Scope, StoredPolicy, WindowTotals
from sluice.domain.receipts import Log
from sluice.domain.transaction import (
    Attempt,
    AttemptPurpose,
    ChainTransaction,
    SignedTransaction,
    TransactionKind,
    UnsignedTransaction,
)
from sluice.domain.webhooks import Delivery, DeliveryStatus, Outcome, WebhookEndpoint, WebhookEvent
from sluice.domain.withdrawal import StatusChange, Withdrawal, WithdrawalStatus


class Clock(Protocol):
    """Where time comes from (timezone-aware UTC)."""

    def now(self) -> datetime:
        """The current time, UTC."""
        ...


# ── Repositories ──────────────────────────────────────────────────────────────────────────────


class WithdrawalRepository(Protocol):
    """Withdrawals and their status history."""

    async def add(self, withdrawal: Withdrawal) -> bool:
        """Insert a new withdrawal; False if one with its id exists already."""
        ...

    async def get(self, withdrawal_id: str, *, lock: bool = False) -> Withdrawal | None:
        """Read one withdrawal, locking its row for this transaction if ``lock``."""
        ...

    async def save(self, withdrawal: Withdrawal) -> None:
        """Write back a withdrawal's mutable fields."""
        ...

    async def save_many(self, withdrawals: Sequence[Withdrawal]) -> None:
        """Write back the mutable fields of several withdrawals (one statement, for a batch)."""
        ...

    async def page(
        self,
        *,
        user_id: str | None,
        status: WithdrawalStatus | None,
        limit: int,
        before_seq: int | None,
    ) -> list[Withdrawal]:
        """Newest first, optionally filtered; ``before_seq`` is the keyset cursor."""
        ...

    async def changed_since(
        self,
        *,
        user_id: str | None,
        status: WithdrawalStatus | None,
        limit: int,
        since: datetime,
        after: tuple[datetime, int] | None,
    ) -> list[Withdrawal]:
        """Updated at or after ``since``, oldest change first (by ``updated_at``, then ``seq``),
        optionally filtered; ``after`` is the keyset cursor: the last row's (updated_at, seq)."""
        ...

    async def for_transaction(self, transaction_id: str, *, lock: bool = False) -> list[Withdrawal]:
        """Every withdrawal a transaction carries."""
        ...

    async def batchable(self, network: str, asset_key: str, *, limit: int) -> list[Withdrawal]:
        """Withdrawals of an asset waiting to be signed that may share a transaction (VALIDATING,
        not `Withdrawal.unbatched`, not asking for the ``fast`` level), oldest first."""
        ...

    async def batch_queue(
        self, network: str, asset_key: str, *, limit: int
    ) -> list[tuple[str, datetime]]:
        """The same withdrawals as `batchable`, read lightly: each one's id and when it became
        ready to be signed (its last change; its creation if it waits with a reason)."""
        ...

    async def get_many(self, ids: Sequence[str], *, lock: bool = False) -> list[Withdrawal]:
        """The withdrawals with these ids that exist, in acceptance order (locked in that order
        with ``lock``)."""
        ...

    async def waiting(self, network: str, *, limit: int) -> list[str]:
        """Ids of a network's VALIDATING withdrawals that wait with a reason, oldest first."""
        ...

    async def claim_pending(self, network: str, *, limit: int, besides: str) -> list[Withdrawal]:
        """Up to ``limit`` PENDING withdrawals of a network other than ``besides``, oldest first,
        locked for this transaction; on PostgreSQL those another transaction has locked are
        skipped (``SKIP LOCKED``), so claiming never waits."""
        ...

    async def ids_in_status(
        self,
        status: WithdrawalStatus,
        *,
        limit: int,
        updated_before: datetime | None = None,
    ) -> list[str]:
        """Ids of withdrawals in a status (untouched since ``updated_before``), oldest first."""
        ...

    async def approvals_expired(self, now: datetime, *, limit: int) -> list[str]:
        """Ids of withdrawals whose wait for approval ended before ``now``, oldest first."""
        ...

    async def add_event(self, change: StatusChange) -> None:
        """Append to a withdrawal's status history."""
        ...

    async def events(self, withdrawal_id: str) -> list[StatusChange]:
        """A withdrawal's status history, oldest first."""
        ...


#: A balance's key: (user id, network, asset key).
BalanceKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One journal line: what moved, for whom, and why."""

    user_id: str
    network: str
    asset_key: str
    kind: EntryKind
    amount: int
    at: datetime
    withdrawal_id: str | None = None
    reference: str | None = None


class LedgerRepository(Protocol):
    """User balances and the append-only journal that explains them."""

    async def balance(
        self, user_id: str, network: str, asset_key: str, *, lock: bool = False
    ) -> Balance:
        """A balance (zero if none yet), locking its row for this transaction if ``lock``."""
        ...

    async def set_balance(
        self, user_id: str, network: str, asset_key: str, balance: Balance, at: datetime
    ) -> None:
        """Write a balance computed by the ledger rules."""
        ...

    async def lock_balances(self, keys: Sequence[BalanceKey]) -> dict[BalanceKey, Balance]:
        """The existing balances among ``keys``, their rows locked in one global order
        (user, network, asset) for this transaction; a key without a row is left out."""
        ...

    async def set_balances(self, balances: Mapping[BalanceKey, Balance], at: datetime) -> None:
        """Write back balances whose rows exist (read with `lock_balances`), in one statement."""
        ...

    async def add_entries(self, entries: Sequence[LedgerEntry]) -> None:
        """Append journal entries that carry no ``reference``, in one statement."""
        ...

    async def balances(self, user_id: str) -> list[tuple[str, str, Balance]]:
        """Every (network, asset_key, balance) a user has."""
        ...

    async def add_entry(self, entry: LedgerEntry) -> bool:
        """Append a journal entry; False if its ``reference`` was used already."""
        ...

    async def entry_by_reference(self, reference: str) -> LedgerEntry | None:
        """The entry that used a reference, if any."""
        ...


@dataclass(frozen=True, slots=True)
class InFlight:
    """A hot wallet's transactions that are signed but not final."""

    count: int
    """Transactions holding a nonce and not final (signed, sent or mined)."""
    native: int
    """Wei that unmined ones may still take: values plus gas at their highest fee cap."""
    tokens: Mapping[str, int]
    """Token base units that unmined ones will pay, by asset key."""


class TransactionRepository(Protocol):
    """On-chain transactions, their attempts, and nonce assignment."""

    async def next_nonce(self, network: str, address: Address) -> int:
        """Take the next nonce of a hot wallet, locking the counter until commit.

        This is the one place nonces come from: the lock serializes assignment per
        (network, address), and a nonce is consumed only if the transaction commits.
        """
        ...

    async def reconcile_nonce(self, network: str, address: Address, chain_count: int) -> int:
        """Create or raise a wallet's nonce counter to at least the chain's transaction count."""
        ...

    async def add(self, transaction: ChainTransaction, attempt: Attempt) -> None:
        """Store a transaction with its first signed attempt."""
        ...

    async def add_attempt(self, attempt: Attempt) -> None:
        """Store another signed form of a transaction (a replacement or a cancel)."""
        ...

    async def get(self, transaction_id: str, *, lock: bool = False) -> ChainTransaction | None:
        """Read one transaction's row, without its attempts and withdrawals."""
        ...

    async def load(self, transaction_id: str) -> ChainTransaction | None:
        """Read a transaction with its attempts and withdrawals, for a change: the one loader
        of the aggregate. Locks the transaction's row, then its withdrawals' rows, in that
        order, so every process takes the engine's locks in one order."""
        ...

    async def save(self, transaction: ChainTransaction) -> None:
        """Write back a transaction's mutable fields."""
        ...

    async def attempts(self, transaction_id: str) -> list[Attempt]:
        """Every attempt of a transaction, oldest first."""
        ...

    async def mark_sent(self, attempt_id: str, at: datetime, note: str | None = None) -> None:
        """Record when an attempt was first sent, and the node's last answer if not plain."""
        ...

    async def set_outcomes(self, transaction_id: str, mined_hash: str | None) -> None:
        """Mark the attempt with ``mined_hash`` MINED and the others REPLACED (None: all)."""
        ...

    async def at_nonce(self, network: str, address: Address, nonce: int) -> ChainTransaction | None:
        """The transaction holding a wallet's nonce, if any."""
        ...

    async def nonces_from(self, network: str, address: Address, first: int) -> set[int]:
        """Every stored nonce of a wallet from ``first`` on."""
        ...

    async def count_in_flight(self, network: str, address: Address) -> int:
        """How many transactions a wallet has between signing and finality."""
        ...

    async def in_flight(self, network: str, address: Address) -> InFlight:
        """What a wallet has between signing and finality."""
        ...

    async def ids_in_status(
        self, status: str, *, limit: int, updated_before: datetime | None = None
    ) -> list[str]:
        """Ids of transactions in a status (untouched since ``updated_before``), oldest first."""
        ...

    async def renew_watch(self, transaction_id: str, watch: str, until: datetime) -> bool:
        """Extend the lease of the confirmation chain ``watch``; False if another chain took
        over (the caller's chain is stale)."""
        ...

    async def unwatched(self, now: datetime, *, limit: int) -> list[str]:
        """Sent or mined transactions whose confirmation chain's lease lapsed, oldest first."""
        ...


class ApiKeyRepository(Protocol):
    """Stored API keys."""

    async def add(self, key: ApiKey) -> None:
        """Store a new key."""
        ...

    async def get(self, key_id: str) -> ApiKey | None:
        """Read a key by id."""
        ...

    async def all(self) -> list[ApiKey]:
        """Every key, newest first."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> bool:
        """Revoke a key; False if there is no such live key."""
        ...


class OperatorRepository(Protocol):
    """Stored operators."""

    async def add(self, operator: Operator) -> bool:
        """Store a new operator; False if the name is taken."""
        ...

    async def get(self, operator_id: str, *, lock: bool = False) -> Operator | None:
        """An operator by id."""
        ...

    async def by_name(self, name: str) -> Operator | None:
        """An operator by name."""
        ...

    async def all(self) -> list[Operator]:
        """Every operator, by name."""
        ...

    async def save(self, operator: Operator, at: datetime) -> None:
        """Write an operator's role and disabled flag."""
        ...


class AuditLog(Protocol):
    """The append-only, hash-chained audit log (`sluice.domain.audit`)."""

    async def append(self, record: AuditRecord) -> AuditEntry:
        """Append an entry in the caller's transaction."""
        ...

    async def head(self) -> tuple[int, str]:
        """The seq and hash of the last entry appended."""
        ...

    async def page(
        self, where: AuditFilter, *, limit: int, before_seq: int | None = None
    ) -> list[AuditEntry]:
        """Entries matching ``where``, newest first."""
        ...

    def walk(self) -> AsyncIterator[AuditEntry]:
        """Every entry, oldest first."""
        ...


class PolicyRepository(Protocol):
    """Policy versions, address books, the blocklist and velocity windows
    (`sluice.db.policy`)."""

    async def current(self) -> StoredPolicy | None:
        """The policy loaded last."""
        ...

    async def add_version(
        self, *, version: str, label: str, body: str, at: datetime, by: str
    ) -> StoredPolicy:
        """Record a policy file as the one in force."""
        ...

    async def history(self, *, limit: int) -> list[StoredPolicy]:
        """Loaded policies, newest first."""
        ...

    async def by_version(self, version: str) -> StoredPolicy | None:
        """The last load of a version."""
        ...

    async def add_approval(self, approval: Approval) -> bool:
        """Record an operator's decision; False if they decided on it before."""
        ...

    async def approvals(self, withdrawal_ids: Sequence[str]) -> dict[str, list[Approval]]:
        """The decisions on each withdrawal, oldest first."""
        ...

    async def book_entries(
        self, keys: Iterable[tuple[str, str, Address]]
    ) -> dict[tuple[str, str, Address], datetime]:
        """When each (user, network, address) entered the user's address book."""
        ...

    async def add_to_book(self, entry: BookEntry) -> bool:
        """Add an address to a user's book; False if there already."""
        ...

    async def remove_from_book(self, user_id: str, network: str, address: Address) -> bool:
        """Remove an address from a user's book; False if not there."""
        ...

    async def book(self, user_id: str) -> list[BookEntry]:
        """A user's address book."""
        ...

    async def blocked(self, addresses: Iterable[Address]) -> set[Address]:
        """Which of ``addresses`` are blocklisted."""
        ...

    async def block(self, entries: Sequence[Blocked]) -> int:
        """Add addresses to the blocklist; how many were new."""
        ...

    async def unblock(self, address: Address) -> bool:
        """Take an address off the blocklist."""
        ...

    async def blocklist(
        self, *, limit: int, source: str | None = None, after: Address | None = None
    ) -> list[Blocked]:
        """Blocklisted addresses in address order, after ``after``."""
        ...

    async def lock_windows(self, keys: Iterable[str]) -> None:
        """Lock velocity window owners until the transaction ends."""
        ...

    async def window_totals(
        self, per: Scope, owner: str, *, network: str, since: datetime
    ) -> WindowTotals:
        """Per (network, asset key): sum and count of the window's withdrawals."""
        ...


class PauseRepository(Protocol):
    """Network pauses (`sluice.domain.pauses`) and what the circuit breaker sums."""

    async def get(
        self, network: str, *, lock: Literal["share", "update"] | None = None, at: datetime
    ) -> NetworkControl:
        """The network's pause state (``*``: every network's); with ``lock``, its row is made
        if missing and locked (shared or exclusive) until commit."""
        ...

    async def save(self, control: NetworkControl, at: datetime) -> None:
        """Write a network's pause state (its row locked with ``lock="update"``)."""
        ...

    async def many(self, networks: Sequence[str]) -> list[NetworkControl]:
        """The stored pause states of ``networks``, read without a lock, in one statement."""
        ...

    async def all(self) -> list[NetworkControl]:
        """Every stored pause state."""
        ...

    async def outflow(self, network: str, asset_key: str, since: datetime) -> int:
        """The base units of the network's payouts of the asset signed after ``since``,
        withdrawals FAILED or CANCELLED left out."""
        ...

    async def held(self, networks: Sequence[str] | None, *, limit: int) -> list[str]:
        """VALIDATING withdrawals waiting for a pause or a breaker, oldest first."""
        ...


class UnitOfWork(Protocol):
    """One database transaction and the repositories inside it."""

    @property
    def withdrawals(self) -> WithdrawalRepository:
        """Withdrawals in this transaction."""
        ...

    @property
    def ledger(self) -> LedgerRepository:
        """Balances and journal in this transaction."""
        ...

    @property
    def transactions(self) -> TransactionRepository:
        """On-chain transactions and nonces in this transaction."""
        ...

    @property
    def api_keys(self) -> ApiKeyRepository:
        """API keys in this transaction."""
        ...

    @property
    def operators(self) -> OperatorRepository:
        """Operators in this transaction."""
        ...

    @property
    def policy(self) -> PolicyRepository:
        """Policy data in this transaction."""
        ...

    @property
    def audit(self) -> AuditLog:
        """The audit log, appended in this transaction."""
        ...

    @property
    def pauses(self) -> PauseRepository:
        """Network pauses in this transaction."""
        ...

    @property
    def webhooks(self) -> WebhookRepository:
        """Webhook endpoints, events and deliveries in this transaction."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def enqueue(self, job: str, payload: Mapping[str, Any], *, delay_s: float = 0.0) -> None:
        """Publish a message once, and only if, this transaction commits."""
        ...

    async def commit(self) -> None:
        """Commit, then publish what was enqueued."""
        ...

    async def rollback(self) -> None:
        """Discard the transaction and what was enqueued."""
        ...


class UnitOfWorkFactory(Protocol):
    """Makes a fresh unit of work."""

    def __call__(self) -> UnitOfWork: ...


class BalanceCache(Protocol):
    """A read cache of user balances; never the authority for a balance check."""

    async def generation(self, user_id: str) -> str | None:
        """The user's cache generation before a database read, or None if unavailable."""
        ...

    async def get(self, user_id: str) -> list[tuple[str, str, Balance]] | None:
        """Cached (network, asset_key, balance) rows, or None."""
        ...

    async def put(
        self, user_id: str, generation: str, balances: list[tuple[str, str, Balance]]
    ) -> None:
        """Cache rows read at ``generation`` unless the user's ledger changed since."""
        ...

    async def invalidate(self, user_ids: set[str]) -> None:
        """Make cached balances of these users stale."""
        ...


class RequestGuard(Protocol):
    """Per-key request accounting for the API: rate limits and replay protection.

    Shared across API processes when backed by Redis; per process otherwise.
    """

    async def hit(self, key_id: str, limit_per_s: int) -> float | None:
        """Count a request; None if within ``limit_per_s``, else seconds until the next slot."""
        ...

    async def first_use(self, token: str, ttl_s: float) -> bool:
        """Remember ``token`` for ``ttl_s``; False if it was seen within that time (a replay)."""
        ...


# ── Queue ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class Message:
    """A unit of work on the queue. The database holds the truth; a message only points at it."""

    id: str
    job: str
    payload: dict[str, Any]
    attempts: int = 0
    request_id: str | None = None
    enqueued_at: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that exhausted its retries, kept for an operator."""

    message: Message
    reason: str
    dead_at: datetime


class Queue(Protocol):
    """At-least-once delivery of jobs, with retries and a dead-letter queue."""

    async def publish(
        self,
        job: str,
        payload: Mapping[str, Any],
        *,
        delay_s: float = 0.0,
        request_id: str | None = None,
    ) -> None:
        """Send a message, visible after ``delay_s`` seconds."""
        ...

    async def receive(self, *, max_messages: int, wait_s: float) -> list[Message]:
        """Take up to ``max_messages``, waiting up to ``wait_s`` for the first."""
        ...

    async def ack(self, message: Message) -> None:
        """The message is done; forget it."""
        ...

    async def retry(self, message: Message, *, delay_s: float, error: str) -> None:
        """Deliver the message again after ``delay_s``, counting an attempt."""
        ...

    async def dead_letter(self, message: Message, *, reason: str) -> None:
        """Move the message to the dead-letter queue."""
        ...

    async def dead_letters(self) -> list[DeadLetter]:
        """What is in the dead-letter queue, oldest first."""
        ...

    async def requeue(self, message_id: str) -> bool:
        """Move a dead letter back to the queue with fresh attempts; False if unknown."""
        ...

    async def ping(self) -> None:
        """Raise if the queue cannot be reached."""
        ...

    async def close(self) -> None:
        """Release connections; in-flight messages are handed back."""
        ...


# ── Chain ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the chain says about a mined transaction."""

    transaction_hash: str
    succeeded: bool
    block_number: int
    block_hash: str
    gas_used: int
    logs: tuple[Log, ...] = ()
    """The events it emitted, in order (none if it reverted)."""
    effective_gas_price: int = 0
    """What each unit of gas cost, in wei (``effectiveGasPrice``: a legacy transaction's gas
    price, or the block's base fee plus the tip actually paid); 0 if the node does not say."""
    l1_fee: int = 0
    """The L1 data fee an OP Stack chain charged on top (the receipt's ``l1Fee``), in wei; 0
    elsewhere."""

    @property
    def fee_paid(self) -> int:
        """What the receipt says the transaction paid in total, in wei: gas used times the
        effective gas price, plus the L1 data fee."""
        return self.gas_used * self.effective_gas_price + self.l1_fee


@dataclass(frozen=True, slots=True)
class SendResult:
    """The node's answer to a send, classified.

    ``accepted`` is True for a plain success and for every answer that means the transaction may
    already be known or mined ("already known", "nonce too low"): those go to confirmation
    tracking, never to failure.
    """

    accepted: bool
    note: str = ""


class ChainClient(Protocol):
    """One EVM network's JSON-RPC endpoint."""

    async def chain_id(self) -> int:
        """The chain id the node reports."""
        ...

    async def block_number(self) -> int:
        """The latest block number."""
        ...

    async def fee_market(self, *, blocks: int, percentiles: tuple[int, ...]) -> FeeMarket:
        """The next block's base fee, the tip the node suggests (1 gwei if it cannot), and the
        average reward at each of ``percentiles`` over the last ``blocks`` blocks (blocks that
        paid no reward left out; empty if the node keeps no such history).

        Raises:
            ChainUnavailableError: Unreachable, a malformed answer, or ``no_base_fee`` (a
                network without EIP-1559 and without ``eth_feeHistory``).
        """
        ...

    async def gas_price(self) -> int:
        """The node's ``eth_gasPrice``, in wei per gas: what a legacy transaction offers."""
        ...

    async def l1_fee(self, oracle: Address, unsigned_transaction: bytes) -> int:
        """The L1 data fee an OP Stack chain would charge for a transaction, in wei: its
        GasPriceOracle's ``getL1Fee(unsigned_transaction)`` at ``oracle``.

        Raises:
            CallRevertedError: The call reverts (no oracle at that address, say).
            ChainUnavailableError: The node could not be reached or did not answer usefully.
        """
        ...

    async def estimate_gas(self, sender: Address, to: Address, value: int, data: bytes) -> int:
        """Gas a call is expected to use.

        Raises:
            CallRevertedError: The call reverts or halts (the chain's answer: not retried).
            ChainUnavailableError: The node could not be reached or did not answer usefully.
        """
        ...

    async def code_size(self, address: Address) -> int:
        """Bytes of contract code at an address (0 for an account)."""
        ...

    async def code(self, address: Address) -> bytes:
        """The contract code at an address, at the latest block (empty for an account)."""
        ...

    async def call(self, to: Address, data: bytes) -> bytes:
        """What a read-only call (``eth_call``) of ``data`` on ``to`` returns, at the latest block.

        Raises:
            CallRevertedError: The call reverts or halts (the chain's answer: not retried).
            ChainUnavailableError: The node could not be reached or did not answer usefully.
        """
        ...

    async def estimate_creation_gas(self, sender: Address, data: bytes) -> int:
        """Gas a contract creation from ``sender`` with init code ``data`` is expected to use.

        Raises:
            CallRevertedError: The creation reverts or halts.
            ChainUnavailableError: The node could not be reached or did not answer usefully.
        """
        ...

    async def send_raw_transaction(self, raw: bytes) -> SendResult:
        """Send a signed transaction.

        Returns:
            ``accepted=True``, with a note (``already_known``, ``nonce_too_low``,
            ``replacement_underpriced``) when the node's refusal means this transaction, or
            another with its nonce, is already pooled or mined.

        Raises:
            TransactionRefusedError: The node refused these bytes (``reason``; ``permanent``
                if they can never be accepted): they are known not to be in its pool.
            ChainUnavailableError: The node could not be reached or did not answer usefully:
                the transaction may or may not have been taken.
        """
        ...

    async def receipt(self, transaction_hash: str) -> Receipt | None:
        """The receipt of a mined transaction, or None."""
        ...

    async def is_known(self, transaction_hash: str) -> bool:
        """Whether the node knows the transaction (in its pool or mined)."""
        ...

    async def balance(self, address: Address) -> int:
        """Native balance in wei."""
        ...

    async def transaction_count(
        self, address: Address, *, pending: bool = False, at_block: int | None = None
    ) -> int:
        """Nonces an address has used: mined by the latest block (or by ``at_block``), or
        counting the node's pool too (``pending``)."""
        ...

    async def token_balance(self, token: Address, holder: Address) -> int:
        """An ERC-20 balance (``balanceOf``), in base units."""
        ...

    async def token_allowance(self, token: Address, owner: Address, spender: Address) -> int:
        """What ``spender`` may move of ``owner``'s ERC-20 token (``allowance``), in base units."""
        ...

    async def block_hash(self, number: int) -> str | None:
        """The canonical chain's block hash at a height, or None above the head."""
        ...

    async def finalized_block(self) -> int:
        """The number of the latest block the node reports as ``finalized``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# ── Signer ────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class SigningContext:
    """What a transaction is for: a signer kept apart checks it against the records.

    ``transaction_id`` is the stored (or about to be stored) transaction the signature belongs
    to; ``withdrawal_ids`` the withdrawals its payload pays (none for a no-op).
    """

    network: str
    transaction_id: str
    kind: TransactionKind
    purpose: AttemptPurpose
    withdrawal_ids: tuple[str, ...] = ()


class Signer(Protocol):
    """Holds one hot wallet's key and signs with it; the key never leaves."""

    @property
    def address(self) -> Address:
        """The hot wallet's address."""
        ...

    async def sign(
        self, transaction: UnsignedTransaction, context: SigningContext | None = None
    ) -> SignedTransaction:
        """Sign an EIP-1559 (type 2) or, per its ``fee_model``, a legacy (type 0, EIP-155)
        transaction (``context``: what it is for; in-process signers ignore it, a signer in
        its own process checks it).

        Awaited while the wallet's nonce counter is locked, so it never blocks the event loop:
        a signer that asks another service (KMS, `sluice signer`) awaits it; one that holds its
        key computes the signature in place (well under a millisecond of CPU)."""
        ...

    async def close(self) -> None:
        """Release what signing holds open (a KMS client's connections); a no-op for most."""
        ...


# ── Webhooks (docs/webhooks.md) ──────────────────────────────────────────────────────────────


class WebhookRepository(Protocol):
    """Webhook endpoints, the events of withdrawals' status changes, and their deliveries.

    Events are written by the unit of work's commit itself (with the changes they tell of);
    this port is what services do with them afterwards.
    """

    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Store a new endpoint."""
        ...

    async def get_endpoint(self, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint | None:
        """One endpoint, its row locked for this transaction if ``lock``."""
        ...

    async def endpoints(self) -> list[WebhookEndpoint]:
        """Every endpoint, oldest first."""
        ...

    async def save_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Write back an endpoint's fields."""
        ...

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        """Delete an endpoint and its delivery log; False if there is none."""
        ...

    async def undispatched(self, *, limit: int) -> list[WebhookEvent]:
        """Events not fanned out to endpoints yet, oldest first, locked for this transaction
        (on PostgreSQL those another transaction holds are skipped)."""
        ...

    async def fan_out(
        self, events: Sequence[WebhookEvent], targets: Mapping[int, Sequence[str]], now: datetime
    ) -> int:
        """Make a pending delivery, due ``now``, of each event (by its seq) to each endpoint id
        ``targets`` names, and mark every one of ``events`` fanned out; the deliveries made."""
        ...

    async def claim_due(
        self, now: datetime, *, until: datetime, claim: str, limit: int
    ) -> list[tuple[Delivery, WebhookEndpoint]]:
        """Claim up to ``limit`` pending deliveries due by ``now`` whose endpoint is enabled and
        that no live claim holds, soonest due first: each gets ``claim`` until ``until`` (a
        lease), with its endpoint as it is now. On PostgreSQL rows another transaction is
        claiming are skipped (``SKIP LOCKED``)."""
        ...

    async def record_attempt(
        self,
        delivery_id: str,
        claim: str,
        *,
        status: DeliveryStatus,
        at: datetime,
        next_attempt_at: datetime | None,
        status_code: int | None,
        error: str | None,
    ) -> bool:
        """Write an attempt's outcome and release the claim; False (nothing written) if the
        claim is no longer this one (its lease lapsed and another worker took it)."""
        ...

    async def deliveries(
        self, endpoint_id: str, *, limit: int, before_seq: int | None
    ) -> list[Delivery]:
        """An endpoint's delivery log, newest first; ``before_seq`` is the keyset cursor."""
        ...

    async def get_delivery(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """One delivery of an endpoint."""
        ...

    async def replay(self, delivery: Delivery, now: datetime) -> str:
        """A new pending delivery of the same event to the same endpoint, due now; its id."""
        ...

    async def replay_since(
        self, endpoint_id: str, since: datetime, event_types: Sequence[str], now: datetime
    ) -> int:
        """A new pending delivery to the endpoint of every event at or after ``since`` of these
        types (empty: all), due now, at most `sluice.db.webhooks.REPLAY_LIMIT`; how many."""
        ...


class WebhookSender(Protocol):
    """Sends one signed webhook request, and resolves hosts for the SSRF check."""

    async def resolve(self, host: str) -> list[str]:
        """The IP addresses a host name resolves to (an IP literal: itself).

        Raises:
            InvalidRequestError: The host does not resolve (field ``url``).
        """
        ...

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, *, timeout_s: float
    ) -> Outcome:
        """POST ``body`` to ``url`` once, without following redirects; never raises for the
        endpoint's failures (an error status, a timeout, a refused connection): the outcome
        says what happened."""
        ...
