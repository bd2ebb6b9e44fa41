"""In-memory stand-ins for the outside world, for service-level tests without a node.

- `FakeClock`: a `Clock` the test sets and advances.
- `FakeChain`: a `ChainClient` that keeps sent transactions in memory and mines them only when
  the test says so. A transaction's hash is ``keccak(raw)`` exactly as a node computes it; its
  sender and nonce are decoded, so the fake refuses to mine two transactions at one nonce,
  counts each sender's mined nonces, and can re-org blocks away (`reorg`). A successful ERC-20
  ``transfer(to, amount)`` it mines has the token's ``Transfer`` event in its receipt's logs,
  and every receipt the gas price the transaction paid (its legacy gas price, or the market's
  base fee plus its tip, within its fee cap) and the configured L1 data fee. It understands
  batch calls (`sluice.domain.batches`) as the ``BatchPayout`` contract runs them: atomic,
  ``PaymentFailed(index)`` for the first payment that fails (a destination in `reverting`, or
  a token batch beyond the contract's allowance), else each payment's ``Transfer`` (a token)
  and ``Paid(index)`` logs in order.
- `LocalSigner`: a `Signer` over an in-memory private key (real secp256k1 signatures, no
  keystore file).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from sluice.domain.addresses import Address
from sluice.domain.batches import PAYMENT_FAILED, Batch, UnreadableBatchError, read_batch
from sluice.domain.fees import FeeMarket
from sluice.domain.receipts import MAX_UINT256, TRANSFER_TOPIC, Log, address_topic
from sluice.domain.transaction import (
    BATCH_SELECTORS,
    TRANSFER_SELECTOR,
    Payload,
    SignedTransaction,
    UnsignedTransaction,
)
from sluice.errors import CallRevertedError, ChainUnavailableError
from sluice.ports import Message, Receipt, SendResult, SigningContext
from sluice.queue.memory import MemoryQueue
from sluice.signers.keystore import KeystoreSigner

__all__ = ["FakeChain", "FakeClock", "LocalSigner", "SentTransaction", "transaction_hash"]

#: Where a `FakeClock` starts unless told otherwise.
DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)


class FakeClock:
    """A `sluice.ports.Clock` that stands still until the test moves it."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        """Start at ``start`` (timezone-aware)."""
        self._now = _aware(start)

    def now(self) -> datetime:
        """The current fake time, timezone-aware UTC."""
        return self._now

    def set(self, at: datetime) -> None:
        """Jump to ``at`` (timezone-aware; may go backwards, as a real clock may)."""
        self._now = _aware(at)

    def advance(self, by: timedelta | float = 1.0) -> datetime:
        """Move forward by a timedelta or a number of seconds; returns the new time."""
        delta = by if isinstance(by, timedelta) else timedelta(seconds=by)
        self._now += delta
        return self._now


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a FakeClock needs a timezone-aware datetime")
    return at.astimezone(UTC)


def transaction_hash(raw: bytes) -> str:
    """The hash a node gives a signed transaction: 0x-prefixed lowercase hex of keccak(raw)."""
    return "0x" + keccak(raw).hex()


@dataclass(slots=True)
class SentTransaction:
    """What a `FakeChain` knows about one transaction it was sent."""

    hash: str
    raw: bytes
    sends: int = 0
    receipt: Receipt | None = None
    sender: str = ""
    nonce: int = -1
    to: str = ""
    """The recipient, checksummed ("" for bytes that are no transaction)."""
    data: bytes = b""
    value: int = 0
    """The coin it sends, in wei."""
    legacy: bool = False
    """Whether it is a legacy (type 0) transaction."""
    max_fee_per_gas: int = 0
    """Its fee cap (a legacy transaction's gas price)."""
    max_priority_fee_per_gas: int = 0
    """Its tip (a legacy transaction's gas price)."""


@dataclass(frozen=True, slots=True)
class _Decoded:
    sender: str = ""
    nonce: int = -1
    to: str = ""
    data: bytes = b""
    value: int = 0
    legacy: bool = False
    max_fee_per_gas: int = 0
    max_priority_fee_per_gas: int = 0


#: A first byte at or above this starts an RLP list: a legacy transaction, not a typed one.
_RLP_LIST = 0xC0


def _decode(raw: bytes) -> _Decoded:
    """Sender, nonce, recipient, call data and fees of a signed transaction, typed or legacy
    (no sender and nonce -1 if it is not one)."""
    try:
        sender = Account.recover_transaction(raw)
        legacy = bool(raw) and raw[0] >= _RLP_LIST
        fields = (
            LegacyTransaction.from_bytes(raw).as_dict()
            if legacy
            else TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        )
        to = to_checksum_address(bytes(fields["to"])) if fields.get("to") else ""
        cap = int(fields["gasPrice"] if legacy else fields["maxFeePerGas"])
        tip = cap if legacy else int(fields["maxPriorityFeePerGas"])
        return _Decoded(
            sender=str(sender),
            nonce=int(fields["nonce"]),
            to=str(to),
            data=bytes(fields.get("data") or b""),
            value=int(fields.get("value") or 0),
            legacy=legacy,
            max_fee_per_gas=cap,
            max_priority_fee_per_gas=tip,
        )
    except Exception:  # arbitrary bytes in tests that do not sign: no sender, no nonce
        return _Decoded()


def _token_transfer_logs(tx: SentTransaction) -> tuple[Log, ...]:
    """The ``Transfer`` event of an ERC-20 ``transfer(to, amount)`` call, if ``tx`` is one."""
    data = tx.data
    if not tx.to or len(data) != 68 or data[:4] != TRANSFER_SELECTOR or any(data[4:16]):
        return ()
    recipient = Address(to_checksum_address(data[16:36]))
    return (
        Log(
            address=Address(tx.to),
            topics=(TRANSFER_TOPIC, address_topic(Address(tx.sender)), address_topic(recipient)),
            data=data[36:68],
        ),
    )


def _transfer_log(token: Address, sender: Address, recipient: Address, amount: int) -> Log:
    return Log(
        address=token,
        topics=(TRANSFER_TOPIC, address_topic(sender), address_topic(recipient)),
        data=amount.to_bytes(32, "big"),
    )


def _payment_failed(index: int) -> CallRevertedError:
    """What a node answers to estimating a batch whose payment ``index`` fails."""
    return CallRevertedError(
        f"execution reverted: PaymentFailed({index})",
        data=PAYMENT_FAILED + index.to_bytes(32, "big"),
    )


def _batch_of(to: str, value: int, data: bytes) -> Batch | None:
    """The batch a call makes, if it is a well-formed batch call."""
    if not to or data[:4] not in BATCH_SELECTORS:
        return None
    try:
        return read_batch(Payload(to=Address(to), value=value, data=data))
    except UnreadableBatchError:
        return None


class FakeChain:
    """A `sluice.ports.ChainClient` in memory.

    Sent transactions wait in a pool until the test mines them (`mine`, `mine_pending`) or
    ``auto_mine`` is on; `drop` makes the node forget one. `fail_next` and `go_down` make calls
    raise `ChainUnavailableError` (or any error) as an unreachable node would. Every call is
    counted by method name in `calls`, every send per hash in `sends`.

    Paying a destination in `reverting` reverts, estimated or mined, alone or in a batch; a
    batch's estimate is `batch_gas_base` plus `batch_gas_per_payment` per payment. Balances do
    not move: an account exists if the test says so (`exist`).
    """

    batch_gas_base: int = 22_000
    batch_gas_per_payment: int = 9_000
    """A batch call's estimate (and, mined, its gas used) is the base plus this per payment: a
    coin batch of two already costs less than two 21,000-gas transfers, as on a real chain to
    existing accounts."""
    reverting: set[str]
    """Destinations (any case) that refuse payment: paying one reverts, estimated (a batch with
    ``PaymentFailed(index)``) or mined (status 0), from the moment it is added. Only a contract
    refuses the coin: give such a destination code (`code_sizes`) too, as the engine estimates
    no plain transfer to an account without code."""

    def __init__(  # noqa: PLR0915  # one documented attribute per knob of the fake
        self,
        *,
        chain_id: int = 31337,
        head: int = 100,
        market: FeeMarket | None = None,
        gas_estimate: int = 50_000,
        auto_mine: bool = False,
        gas_price: int = 2 * 10**9,
        l1_fee: int = 0,
    ) -> None:
        """A node at block ``head`` answering with a fixed fee ``market``, ``gas_price``,
        ``l1_fee`` and ``gas_estimate``."""
        self.chain_id_value = chain_id
        self.head = head
        self.market = market or FeeMarket(base_fee=10**9, priority_fee=10**9)
        """What `fee_market` answers, whatever it is asked: by default 1 gwei of base fee and
        1 gwei of tip and no reward history, which the default `sluice.domain.fees.FeePolicy`
        prices at the tip plus the base fee projected over 6 full blocks. Its ``base_fee`` is
        also what mined EIP-1559 transactions pay per gas, under their tip."""
        self.fee_history_asks: list[tuple[int, tuple[int, ...]]] = []
        """The (blocks, percentiles) of every `fee_market` call, in order."""
        self.gas_price_value = gas_price
        """What `gas_price` answers (``eth_gasPrice``), in wei per gas."""
        self.l1_fee_value = l1_fee
        """What `l1_fee` answers, and the ``l1_fee`` of every mined receipt (unless `mine` is
        told otherwise), in wei: nonzero for an OP Stack chain."""
        self.l1_fee_asks: list[tuple[Address, bytes]] = []
        """The (oracle, unsigned transaction) of every `l1_fee` call, in order."""
        self.l1_fee_error: Exception | None = None
        """Raised by every `l1_fee` while set (a `CallRevertedError`: no oracle there)."""
        self.gas_estimate = gas_estimate
        self.estimate_error: Exception | None = None
        """Raised by every `estimate_gas` while set (a `CallRevertedError`: the call reverts)."""
        self.reverting = set()
        self.auto_mine = auto_mine
        self.code_sizes: dict[str, int] = {}
        """Contract code size per address (checksummed); absent means an account (0)."""
        self.codes: dict[str, bytes] = {}
        """Contract code per address (checksummed), for `code`; absent: ``code_sizes`` zero
        bytes, or none."""
        self.call_answers: dict[tuple[str, bytes], bytes] = {}
        """What `call` answers per (address, call data); absent: the call reverts."""
        self.transaction_counts: dict[str, int] = {}
        """Mined transaction count per address; absent means 0."""
        self.pending_counts: dict[str, int] = {}
        """Count including the pool per address; absent falls back to `transaction_counts`."""
        self.balances: dict[str, int] = {}
        """Native balance per address; absent means 0."""
        self.token_balances: dict[tuple[str, str], int] = {}
        """ERC-20 balance per (token, holder); absent means 0."""
        self.token_allowances: dict[tuple[str, str, str], int] = {}
        """ERC-20 allowance per (token, owner, spender); absent means 0."""
        self.token_decimals_of: dict[str, int] = {}
        """ERC-20 ``decimals()`` per token; absent: the call reverts."""
        self.finalized_lag = 2
        """How far behind the head the ``finalized`` block is."""
        self.transactions: dict[str, SentTransaction] = {}
        """Every transaction ever sent, by hash, including dropped ones."""
        self.send_log: list[str] = []
        """Hashes in the order they were sent (one entry per send)."""
        self.calls: Counter[str] = Counter()
        """Calls per method name, failed ones included."""
        self.closed = False
        self._known: set[str] = set()
        self._forks: dict[int, int] = {}
        self._failures: list[Exception] = []
        self._outage: Exception | None = None

    # ── Test controls ─────────────────────────────────────────────────────────────────────────

    @property
    def sends(self) -> Counter[str]:
        """How many times each hash was sent (accepted or not)."""
        return Counter(self.send_log)

    @property
    def pool(self) -> list[str]:
        """Hashes the node knows but has not mined, in the order first sent."""
        return [h for h, tx in self.transactions.items() if h in self._known and tx.receipt is None]

    def exist(self, *addresses: str, balance: int = 1) -> None:
        """Make ``addresses`` existing accounts: a native balance (``balance`` wei) unless they
        have one already."""
        for address in addresses:
            if self.balances.get(address, 0) == 0:
                self.balances[address] = balance

    def refuses(self, destination: str) -> bool:
        """Whether paying ``destination`` reverts now (see `reverting`)."""
        return destination.lower() in {r.lower() for r in self.reverting}

    def batch_gas(self, payments: int) -> int:
        """The gas a batch of ``payments`` is estimated at (and uses, mined)."""
        return self.batch_gas_base + self.batch_gas_per_payment * payments

    def batches(self) -> list[tuple[SentTransaction, Batch]]:
        """Every batch call ever sent, in the order first sent, with what it pays."""
        found = []
        for tx in self.transactions.values():
            batch = _batch_of(tx.to, tx.value, tx.data)
            if batch is not None:
                found.append((tx, batch))
        return found

    def paid(self, sender: str) -> list[tuple[str, str | None, str, int]]:
        """What the chain paid from ``sender`` now: (transaction hash, token or None,
        destination, amount) of every payment its mined, successful transactions made, by
        nonce (a no-op to the sender itself pays nobody)."""
        payments: list[tuple[str, str | None, str, int]] = []
        for tx in self.mined_by(sender):
            receipt = tx.receipt
            if receipt is None or not receipt.succeeded:
                continue
            batch = _batch_of(tx.to, tx.value, tx.data)
            if batch is not None:
                token = batch.token
                payments.extend((tx.hash, token, to, amount) for to, amount in batch.payments)
            elif _token_transfer_logs(tx):
                recipient = to_checksum_address(tx.data[16:36])
                payments.append((tx.hash, tx.to, recipient, int.from_bytes(tx.data[36:68], "big")))
            elif tx.to and tx.to.lower() != sender.lower() and not tx.data:
                payments.append((tx.hash, None, tx.to, tx.value))
        return payments

    def raw(self, transaction_hash: str) -> bytes:
        """The raw bytes that were sent under a hash.

        Raises:
            KeyError: Nothing was ever sent under that hash.
        """
        return self.transactions[transaction_hash].raw

    def mine(
        self,
        transaction_hash: str,
        *,
        succeeded: bool = True,
        gas_used: int | None = None,
        logs: tuple[Log, ...] | None = None,
        effective_gas_price: int | None = None,
        l1_fee: int | None = None,
    ) -> Receipt:
        """Mine a known transaction in a new block (the head moves up by one); its receipt.

        A successful ERC-20 ``transfer`` gets the token's ``Transfer(sender, to, amount)`` log
        (balances in `token_balances` are the test's to set: they do not move); ``logs``
        replaces the receipt's logs (``()``: a token whose ``transfer`` returned false).
        A payment to a destination in `reverting` fails the transaction (status 0, no logs);
        so does a batch any of whose payments fails (one beyond a token allowance too). A
        successful batch gets, per payment in order, the token's ``Transfer`` (a token batch,
        its allowance spent unless unlimited) and the contract's ``Paid(index)``. ``gas_used``
        defaults to 21,000, or `batch_gas` for a batch.
        The receipt's ``effective_gas_price`` is, unless given, what a node charges: a legacy
        transaction's gas price, or the market's base fee plus the tip, at most the fee cap;
        its ``l1_fee`` is `l1_fee_value` unless given.

        Raises:
            KeyError: The node does not know the hash (never sent, or dropped).
            ValueError: It is mined already.
        """
        if transaction_hash not in self._known:
            raise KeyError(f"the node does not know {transaction_hash}")
        tx = self.transactions[transaction_hash]
        if tx.receipt is not None:
            raise ValueError(f"{transaction_hash} is mined already")
        if tx.sender and tx.nonce != self._mined_count(tx.sender):
            raise ValueError(
                f"{transaction_hash} has nonce {tx.nonce}; the chain expects "
                f"{self._mined_count(tx.sender)} from {tx.sender}"
            )
        batch = _batch_of(tx.to, tx.value, tx.data)
        outcome: tuple[Log, ...] = ()
        if batch is not None:
            paid = self._run_batch(Address(tx.sender), Address(tx.to), batch) if succeeded else None
            succeeded, outcome = paid is not None, paid or ()
        elif succeeded:
            succeeded = not self._single_reverts(tx.to, tx.data)
            outcome = _token_transfer_logs(tx) if succeeded else ()
        self.head += 1
        if gas_used is None:
            gas_used = 21_000 if batch is None else self.batch_gas(len(batch.payments))
        tx.receipt = Receipt(
            transaction_hash=transaction_hash,
            succeeded=succeeded,
            block_number=self.head,
            block_hash=self.hash_of_block(self.head),
            gas_used=gas_used,
            logs=logs if logs is not None else outcome,
            effective_gas_price=(
                self._effective_gas_price(tx)
                if effective_gas_price is None
                else effective_gas_price
            ),
            l1_fee=self.l1_fee_value if l1_fee is None else l1_fee,
        )
        return tx.receipt

    def _single_reverts(self, to: str, data: bytes) -> bool:
        """Whether a plain payment (the coin, or a token ``transfer``) to a refusing
        destination is what ``to`` and ``data`` make."""
        if data[:4] == TRANSFER_SELECTOR and len(data) == 68:
            return self.refuses(to_checksum_address(data[16:36]))
        return not data and bool(to) and self.refuses(to)

    def _batch_failure(self, sender: Address, contract: Address, batch: Batch) -> int | None:
        """The first payment of ``batch`` that fails now, if any."""
        allowance = (
            self.token_allowances.get((batch.token, sender, contract), 0) if batch.token else 0
        )
        spent = 0
        for index, (to, amount) in enumerate(batch.payments):
            spent += amount
            if self.refuses(to) or (batch.token is not None and spent > allowance):
                return index
        return None

    def _run_batch(
        self, sender: Address, contract: Address, batch: Batch
    ) -> tuple[Log, ...] | None:
        """Mine ``batch``: its logs, or None if it reverts."""
        if self._batch_failure(sender, contract, batch) is not None:
            return None
        logs: list[Log] = []
        for index, (to, amount) in enumerate(batch.payments):
            if batch.token is not None:
                logs.append(_transfer_log(batch.token, sender, to, amount))
            logs.append(Log(address=contract, topics=(), data=index.to_bytes(4, "big")))
        if batch.token is not None:
            key = (batch.token, sender, contract)
            allowance = self.token_allowances.get(key, 0)
            if allowance != MAX_UINT256:
                self.token_allowances[key] = allowance - sum(a for _, a in batch.payments)
        return tuple(logs)

    def _effective_gas_price(self, tx: SentTransaction) -> int:
        if tx.legacy:
            return tx.max_fee_per_gas
        return min(tx.max_fee_per_gas, self.market.base_fee + tx.max_priority_fee_per_gas)

    def mine_pending(self, *, succeeded: bool = True) -> list[Receipt]:
        """Mine every pooled transaction that can be mined, each in its own block, lowest nonce
        first; the ones whose nonce is taken are evicted (as a node does). Their receipts."""
        receipts = []
        progress = True
        while progress:
            progress = False
            for tx_hash in sorted(self.pool, key=lambda h: self.transactions[h].nonce):
                tx = self.transactions[tx_hash]
                if tx.sender and tx.nonce < self._mined_count(tx.sender):
                    self._known.discard(tx_hash)  # its nonce went to another transaction
                elif not tx.sender or tx.nonce == self._mined_count(tx.sender):
                    receipts.append(self.mine(tx_hash, succeeded=succeeded))
                    progress = True
        return receipts

    def reorg(self, depth: int, *, drop: bool = False) -> list[str]:
        """Replace the last ``depth`` blocks with empty ones (new hashes, same head).

        Transactions mined in them lose their receipts and go back to the pool (or, with
        ``drop``, are forgotten as well). Returns their hashes.
        """
        if depth < 1:
            raise ValueError("a re-org replaces at least one block")
        first = self.head - depth + 1
        for number in range(first, self.head + 1):
            self._forks[number] = self._forks.get(number, 0) + 1
        removed = []
        for tx in self.transactions.values():
            if tx.receipt is not None and tx.receipt.block_number >= first:
                tx.receipt = None
                removed.append(tx.hash)
                if drop:
                    self._known.discard(tx.hash)
        return removed

    def nonce_of(self, transaction_hash: str) -> int:
        """The nonce a sent transaction carries."""
        return self.transactions[transaction_hash].nonce

    def mined_by(self, sender: str) -> list[SentTransaction]:
        """Transactions of a sender that are mined now, by nonce."""
        return sorted(
            (
                t
                for t in self.transactions.values()
                if t.sender == sender and t.receipt is not None and t.hash in self._known
            ),
            key=lambda t: t.nonce,
        )

    def _mined_count(self, sender: str, *, at_block: int | None = None) -> int:
        mined = [
            t.nonce
            for t in self.mined_by(sender)
            if at_block is None or (t.receipt is not None and t.receipt.block_number <= at_block)
        ]
        return max([*mined, self.transaction_counts.get(sender, 0) - 1]) + 1

    def advance_blocks(self, n: int = 1) -> int:
        """Add ``n`` empty blocks; returns the new head."""
        if n < 0:
            raise ValueError("blocks only move forward")
        self.head += n
        return self.head

    def drop(self, transaction_hash: str) -> None:
        """Forget a transaction, as a restarted node or an evicting pool does: `is_known` and
        `receipt` no longer see it until it is sent again."""
        self._known.discard(transaction_hash)
        tx = self.transactions.get(transaction_hash)
        if tx is not None:
            tx.receipt = None

    def fail_next(self, n: int = 1, error: Exception | None = None) -> None:
        """Make the next ``n`` calls (of any method) raise ``error`` (default: unavailable)."""
        failure = error or ChainUnavailableError("fake node unavailable")
        self._failures.extend([failure] * n)

    def go_down(self, error: Exception | None = None) -> None:
        """Make every call raise ``error`` (default: unavailable) until `come_back`."""
        self._outage = error or ChainUnavailableError("fake node unavailable")

    def come_back(self) -> None:
        """End an outage started by `go_down` and forget failures armed by `fail_next`."""
        self._outage = None
        self._failures.clear()

    def hash_of_block(self, number: int) -> str:
        """The hash of block ``number`` on the current chain (it changes with each re-org)."""
        seed = number.to_bytes(32, "big") + self._forks.get(number, 0).to_bytes(8, "big")
        return "0x" + keccak(seed).hex()

    # ── The port ──────────────────────────────────────────────────────────────────────────────

    async def chain_id(self) -> int:
        """The configured chain id."""
        self._call("chain_id")
        return self.chain_id_value

    async def block_number(self) -> int:
        """The current head."""
        self._call("block_number")
        return self.head

    async def fee_market(self, *, blocks: int, percentiles: tuple[int, ...]) -> FeeMarket:
        """The configured `market` (the request is recorded in `fee_history_asks`)."""
        self._call("fee_market")
        self.fee_history_asks.append((blocks, percentiles))
        return self.market

    async def gas_price(self) -> int:
        """The configured `gas_price_value`."""
        self._call("gas_price")
        return self.gas_price_value

    async def l1_fee(self, oracle: Address, unsigned_transaction: bytes) -> int:
        """The configured `l1_fee_value` (or `l1_fee_error`, if set); the request is recorded
        in `l1_fee_asks`."""
        self._call("l1_fee")
        self.l1_fee_asks.append((oracle, unsigned_transaction))
        if self.l1_fee_error is not None:
            raise self.l1_fee_error
        return self.l1_fee_value

    async def estimate_gas(self, sender: Address, to: Address, value: int, data: bytes) -> int:
        """`estimate_error` if set; else, for a batch call, `batch_gas` of its size, or
        ``PaymentFailed(index)`` (a `CallRevertedError` with that revert data) for its first
        payment that fails; for any other call the configured `gas_estimate`, unless it pays a
        destination in `reverting` (then it reverts without data)."""
        self._call("estimate_gas")
        if self.estimate_error is not None:
            raise self.estimate_error
        batch = _batch_of(to, value, data)
        if batch is not None:
            failed = self._batch_failure(sender, to, batch)
            if failed is not None:
                raise _payment_failed(failed)
            return self.batch_gas(len(batch.payments))
        if self._single_reverts(to, data):
            raise CallRevertedError("execution reverted")
        return self.gas_estimate

    async def code_size(self, address: Address) -> int:
        """The configured code size of ``address`` (0 unless set in `code_sizes`)."""
        self._call("code_size")
        return self.code_sizes.get(address, 0)

    async def code(self, address: Address) -> bytes:
        """The configured `codes` entry of ``address``, else as many zero bytes as its
        `code_sizes` entry (none unless set)."""
        self._call("code")
        return self.codes.get(address, b"\0" * self.code_sizes.get(address, 0))

    async def call(self, to: Address, data: bytes) -> bytes:
        """The configured `call_answers` entry; a call without one reverts."""
        self._call("call")
        if (to, data) not in self.call_answers:
            raise CallRevertedError("eth_call failed: execution_reverted")
        return self.call_answers[(to, data)]

    async def estimate_creation_gas(self, sender: Address, data: bytes) -> int:
        """The configured `gas_estimate` (or `estimate_error`, if set), as `estimate_gas`."""
        self._call("estimate_creation_gas")
        if self.estimate_error is not None:
            raise self.estimate_error
        return self.gas_estimate

    async def send_raw_transaction(self, raw: bytes) -> SendResult:
        """Take a transaction into the pool; a repeat of a known one answers ``already_known``.

        Every send is counted, the repeat too. With ``auto_mine`` on, a new transaction is
        mined at once in a block of its own if its nonce is the sender's next (and then any
        pooled ones it unblocks); one below that is answered ``nonce_too_low``.
        """
        self._call("send_raw_transaction")
        tx_hash = transaction_hash(raw)
        self.send_log.append(tx_hash)
        tx = self.transactions.get(tx_hash)
        if tx is None:
            decoded = _decode(raw)
            tx = SentTransaction(
                hash=tx_hash,
                raw=raw,
                sender=decoded.sender,
                nonce=decoded.nonce,
                to=decoded.to,
                data=decoded.data,
                value=decoded.value,
                legacy=decoded.legacy,
                max_fee_per_gas=decoded.max_fee_per_gas,
                max_priority_fee_per_gas=decoded.max_priority_fee_per_gas,
            )
            self.transactions[tx_hash] = tx
        tx.sends += 1
        if tx_hash in self._known:
            return SendResult(accepted=True, note="already_known")
        if tx.sender and tx.nonce < self._mined_count(tx.sender):
            return SendResult(accepted=True, note="nonce_too_low")
        self._known.add(tx_hash)
        if self.auto_mine:
            self.mine_pending()  # this one, if its nonce is next, and any it unblocks
        return SendResult(accepted=True)

    async def receipt(self, transaction_hash: str) -> Receipt | None:
        """The receipt of a mined, known transaction, or None."""
        self._call("receipt")
        if transaction_hash not in self._known:
            return None
        return self.transactions[transaction_hash].receipt

    async def is_known(self, transaction_hash: str) -> bool:
        """Whether the transaction is pooled or mined (and not dropped)."""
        self._call("is_known")
        return transaction_hash in self._known

    async def balance(self, address: Address) -> int:
        """The configured native balance of ``address`` (0 unless set in `balances`)."""
        self._call("balance")
        return self.balances.get(address, 0)

    async def transaction_count(
        self, address: Address, *, pending: bool = False, at_block: int | None = None
    ) -> int:
        """Mined nonces of ``address`` (at least `transaction_counts`), by the head or by
        ``at_block``; `pending_counts` first when ``pending``."""
        self._call("transaction_count")
        mined = self._mined_count(address, at_block=at_block)
        return self.pending_counts.get(address, mined) if pending else mined

    async def token_balance(self, token: Address, holder: Address) -> int:
        """The configured `token_balances` entry (0 unless set)."""
        self._call("token_balance")
        return self.token_balances.get((token, holder), 0)

    async def token_allowance(self, token: Address, owner: Address, spender: Address) -> int:
        """The configured `token_allowances` entry (0 unless set)."""
        self._call("token_allowance")
        return self.token_allowances.get((token, owner, spender), 0)

    async def token_decimals(self, token: Address) -> int:
        """The configured `token_decimals_of` entry; a token without one reverts (not ERC-20)."""
        self._call("token_decimals")
        if token not in self.token_decimals_of:
            raise CallRevertedError("eth_call failed: execution_reverted")
        return self.token_decimals_of[token]

    async def block_hash(self, number: int) -> str | None:
        """The current hash of block ``number``, or None above the head."""
        self._call("block_hash")
        return None if number > self.head else self.hash_of_block(number)

    async def finalized_block(self) -> int:
        """The head less `finalized_lag`."""
        self._call("finalized_block")
        return max(0, self.head - self.finalized_lag)

    async def close(self) -> None:
        """Mark the client closed; later calls raise RuntimeError."""
        self.closed = True

    # ── Internals ─────────────────────────────────────────────────────────────────────────────

    def _call(self, method: str) -> None:
        self.calls[method] += 1
        if self.closed:
            raise RuntimeError("FakeChain is closed")
        if self._outage is not None:
            raise self._outage
        if self._failures:
            raise self._failures.pop(0)


class LocalSigner:
    """A `sluice.ports.Signer` over a private key held in memory (tests only).

    Signing is delegated to `KeystoreSigner`, so the bytes and hashes are exactly what a
    production signer would produce for the same key.
    """

    __slots__ = ("_inner",)

    def __init__(self, private_key: str | bytes | None = None) -> None:
        """Use ``private_key`` (hex or bytes), or a fresh random key if None."""
        account = Account.create() if private_key is None else Account.from_key(private_key)
        self._inner = KeystoreSigner(account)

    @property
    def address(self) -> Address:
        """The key's address, in checksum form."""
        return self._inner.address

    async def sign(
        self, transaction: UnsignedTransaction, context: SigningContext | None = None
    ) -> SignedTransaction:
        """Sign a transaction (type 2, or legacy per its ``fee_model``); the hash is keccak of
        the raw bytes."""
        return await self._inner.sign(transaction)

    async def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"LocalSigner(address={self.address!r})"


class RecordingQueue(MemoryQueue):
    """A `MemoryQueue` that remembers what was published, acknowledged and retried."""

    def __init__(self) -> None:
        super().__init__()
        #: (job, payload, delay_s, request_id) of every publish, in order.
        self.published: list[tuple[str, dict[str, Any], float, str | None]] = []
        self.acked: list[Message] = []
        #: (attempts before the retry, delay_s, error) of every retry, in order.
        self.retries: list[tuple[int, float, str]] = []

    async def publish(
        self,
        job: str,
        payload: Mapping[str, Any],
        *,
        delay_s: float = 0.0,
        request_id: str | None = None,
    ) -> None:
        """Record, then publish."""
        self.published.append((job, dict(payload), delay_s, request_id))
        await super().publish(job, payload, delay_s=delay_s, request_id=request_id)

    async def ack(self, message: Message) -> None:
        """Record, then acknowledge."""
        self.acked.append(message)
        await super().ack(message)

    async def retry(self, message: Message, *, delay_s: float, error: str) -> None:
        """Record, then retry."""
        self.retries.append((message.attempts, delay_s, error))
        await super().retry(message, delay_s=delay_s, error=error)
