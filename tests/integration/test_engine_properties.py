"""Invariants of the withdrawal engine as properties: a hypothesis state machine drives the
domain and services through random interleavings of credits, requests, cancels, worker steps,
faults, crashes, replacements, receipts, re-orgs and outside transactions, against `FakeChain`.

Batch payouts (docs/batching.md) are on in some examples and turned on or off between steps:
withdrawals of one asset then share transactions (at most `BATCH_MAX` to a batch, after a window
of `BATCH_WINDOW_S`), some go alone (``fast``, the coin to a new account), and a recipient
contract may start or stop refusing payment at any step, between a batch's simulation and its
mining too (the batch reverts and each of its withdrawals is paid again on its own).

After every step, from the database and from the chain:

- no balance is below zero; each user's held amount is the sum of their open (fund-holding)
  withdrawals; completed plus available plus held equals what was credited; each withdrawal's
  journal is what its status says (a hold, then at most one settle or release);
- at most one attempt per transaction is MINED, and per withdrawal outside reverted transactions;
  at most one transaction per withdrawal is paid on chain, exactly one once it is COMPLETED, none
  once CANCELLED or FAILED, and a paid one is BROADCASTING, CONFIRMING or COMPLETED;
- each transaction pays exactly the withdrawals signed into it (a transfer for one, a call to
  its wallet's batch contract paying them in acceptance order for several), and every member of
  a transaction in flight still points at it;
- no two payloads share a nonce: on chain (`FakeChain` refuses to mine two transactions at one
  nonce, and every mined transaction of the hot wallet is one of our attempts or a known outside
  one) and in the database (one transaction per (network, wallet, nonce); every attempt is signed
  at its transaction's nonce, and carries its payload or, for a cancel, a no-op);
- a withdrawal's status agrees with its transaction's; a final withdrawal never moves again.

At the end of each example, everything is driven to completion (faults off, the chain mines,
time passes) and nothing may be lost: every withdrawal is final and paid exactly as its status
says, and what the chain paid of each asset is what the ledger settled.

Faults: a node error before any chain call of a job, a send whose answer is lost after the node
took the transaction, and a worker killed (`Crash`) at any chain call, after its send too; the
killed job is delivered again later, as the queue would, and a restart reconciles nonces and
re-creates the jobs. Outside transactions are signed with the hot wallet's key by someone else,
at its next nonce. Re-orgs are at most ``CONFIRMATIONS - 1`` deep: a deeper one would undo a
block the network calls final, which no engine can survive.

Each example gets a fresh database from the session's `databases` (SQLite by default, PostgreSQL
with ``SLUICE_TEST_DATABASE=postgresql``, where fewer examples run).

The last test is a sequence the machine's rules allow but random search rarely reaches: a nonce
superseded on an outside transaction that a re-org made shallow, then paid twice (a known bug).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.engine import create_engine
from sluice.db.tables import (
    balances,
    chain_transactions,
    ledger_entries,
    transaction_attempts,
    withdrawal_events,
    withdrawals,
)
from sluice.domain.addresses import Address
from sluice.domain.batches import batch_payload, read_batch
from sluice.domain.fees import FeeLevel, FeePolicy
from sluice.domain.ledger import EntryKind
from sluice.domain.transaction import (
    BATCH_SELECTORS,
    TRANSFER_SELECTOR,
    AttemptOutcome,
    AttemptPurpose,
    Payload,
    TransactionKind,
    TransactionStatus,
    UnsignedTransaction,
    transfer_payload,
)
from sluice.domain.withdrawal import FINAL_STATUSES, HOLDING_STATUSES, WithdrawalStatus
from sluice.errors import ChainUnavailableError, InvalidStateError, TransactionRefusedError
from sluice.ports import SendResult
from sluice.services import jobs
from sluice.services.recovery import recover, sweep
from sluice.testing.databases import FreshDatabases
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import (
    CHAIN_ID,
    DEST,
    HOT_KEY,
    NET,
    TOKEN,
    CountingSigner,
    Pipeline,
    wire,
)

pytestmark = pytest.mark.database

T = TypeVar("T")
W = WithdrawalStatus
TS = TransactionStatus

CONFIRMATIONS = 4
MAX_REORG = CONFIRMATIONS - 1
STUCK_S = 60.0
USERS = ("alice", "bob")
#: Where outside transactions (sent with the hot wallet's key, not by Sluice) pay to.
OUTSIDER = Address("0x00000000000000000000000000000000000000A1")
#: Another existing account withdrawals pay to.
PAYEE = Address("0x00000000000000000000000000000000000000b2")
#: A recipient contract that starts and stops refusing payment (the coin and the token).
REFUSER = Address("0x00000000000000000000000000000000000000C3")
#: An account that does not exist: the coin to it is paid on its own, not batched.
NEWCOMER = Address("0x00000000000000000000000000000000000000D4")
RECIPIENTS = (DEST, PAYEE, REFUSER, NEWCOMER)
BATCH_WINDOW_S = 5.0
BATCH_MAX = 3
STAGES = ("validate", "sign", "broadcast", "confirm")
FAULTS = ("unavailable", "refused", "lost_answer", "crash")
DRAIN_ROUNDS = 30
#: Outside transactions per example, at most.
MAX_OUTSIDE = 2
LIMIT = 1000
#: Examples per run in `make test`: fewer on PostgreSQL, where it runs this test a second time.
#: ``SLUICE_PROPERTY_EXAMPLES`` sets both (`make chaos` runs a deep search with it).
EXAMPLES = {"sqlite": 70, "postgresql": 30}
EXAMPLES_ENV = "SLUICE_PROPERTY_EXAMPLES"
STEPS = 30


class Crash(Exception):  # noqa: N818  # a killed worker, not an error of ours
    """The worker was killed at a chain call: nothing after that point runs."""


class FaultyChain(FakeChain):
    """A `FakeChain` that fails, or kills the worker, at the k-th call from now.

    ``lost_answer`` and ``crash`` at a send let the node take the transaction first: the answer
    is lost on the way back (``ChainUnavailableError``) or the worker dies before it reads it.
    """

    def __init__(self) -> None:
        super().__init__(chain_id=CHAIN_ID)
        self._armed: tuple[int, str] | None = None
        self._after_send: str | None = None

    def arm(self, at: int, fault: str) -> None:
        self._armed = (at, fault)

    def disarm(self) -> None:
        self._armed = None
        self._after_send = None

    def _call(self, method: str) -> None:
        super()._call(method)
        if self._armed is None:
            return
        at, fault = self._armed
        if at > 0:
            self._armed = (at - 1, fault)
            return
        self._armed = None
        if method == "send_raw_transaction" and fault in ("lost_answer", "crash"):
            self._after_send = fault
            return
        raise _fault_error(fault)

    async def send_raw_transaction(self, raw: bytes) -> SendResult:
        result = await super().send_raw_transaction(raw)
        fault, self._after_send = self._after_send, None
        if fault is not None:
            raise _fault_error(fault)
        return result


def _fault_error(fault: str) -> Exception:
    if fault == "crash":
        return Crash("worker killed")
    if fault == "refused":
        return TransactionRefusedError("refused", reason="rejected")
    return ChainUnavailableError("fake node unavailable")


def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
    """No fsync on commit: an example's database never has to survive the machine crashing,
    and most of the time here went to waiting for the disk."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


@dataclass(frozen=True, slots=True)
class Decoded:
    """What an attempt's signed bytes say."""

    nonce: int
    to: str
    value: int
    data: bytes


def _decode(raw: bytes) -> Decoded:
    fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    return Decoded(
        nonce=int(fields["nonce"]),
        to="0x" + bytes(fields["to"]).hex(),
        value=int(fields["value"]),
        data=bytes(fields["data"]),
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The rows the invariants read, in one database transaction."""

    balances: list[Any]
    withdrawals: list[Any]
    transactions: list[Any]
    attempts: list[Any]
    entries: list[Any]
    signings: list[Any]
    """(withdrawal id, data) of every history entry that moved a withdrawal from VALIDATING to
    SIGNED (notes made while it is SIGNED do not count)."""


class EngineMachine(RuleBasedStateMachine):
    """The pipeline on a fresh database and a fake chain, driven at random."""

    withdrawal_ids = Bundle("withdrawal_ids")

    def __init__(self, databases: FreshDatabases, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.databases = databases
        self.url = self._run(databases.create())
        self.engine: AsyncEngine = create_engine(self.url)
        try:
            self._setup(databases)
        except BaseException:
            self._run(self._close())
            raise

    def _setup(self, databases: FreshDatabases) -> None:
        if databases.backend == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _no_fsync)
        self.chain = FaultyChain()
        self.p: Pipeline = wire(
            self.engine,
            self.chain,
            CountingSigner(LocalSigner(HOT_KEY)),
            FakeClock(),
            confirmations=CONFIRMATIONS,
            fees=FeePolicy(stuck_after_s=STUCK_S),
            batch_window_s=BATCH_WINDOW_S,
            batch_max_size=BATCH_MAX,
        )
        self.p.set_batching(False)  # `opening_credits` decides
        self.contracts = {w.lower(): c for w, c in self.p.network.batching.contracts}
        self.chain.exist(DEST, PAYEE)
        self.chain.code_sizes[REFUSER] = 100
        self.hot = self.p.signer.address
        self.outsider = LocalSigner(HOT_KEY)  # someone else holding the hot wallet's key
        self.outside_hashes: set[str] = set()
        self.credits: dict[tuple[str, str], int] = defaultdict(int)
        self.finals: dict[str, WithdrawalStatus] = {}
        self.decoded: dict[str, Decoded] = {}
        self.due = 0
        """Rows waiting for a job (as of the last check): the worker's rules need some."""
        self.validating = 0
        """Withdrawals waiting to be signed (as of the last check)."""
        self.refuses_late = False
        """At the end, `REFUSER` starts refusing once a transaction paying it is sent."""
        self.sent = 0
        """Transactions sent and not final (as of the last check): time matters to them."""
        self.dirty = False
        """A rule ran and its invariants have not been checked yet (it or they raised)."""
        self._run(self._restart())

    # ── Plumbing ──────────────────────────────────────────────────────────────────────────────

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def _step(self, coroutine: Coroutine[Any, Any, object]) -> None:
        self.dirty = True
        self._run(coroutine)

    async def _restart(self) -> None:
        """What a starting process does: reconcile nonces with the chain (filling gaps), re-create
        the jobs; with the services a process runs (`Services.nonces`)."""
        await self.p.services.nonces.run()
        async with self.p.uow() as uow:
            await recover(uow, now=self.p.clock.now(), poll_s=self._poll_interval)
            await uow.commit()

    def _poll_interval(self, network: str) -> float:
        return self.p.network.poll_interval_s

    async def _stage(self, withdrawal_id: str, stage: str) -> None:
        p = self.p
        if stage == "validate":
            await p.validate(withdrawal_id)
        elif stage == "sign":
            await p.sign(withdrawal_id)
        elif stage == "broadcast":
            await p.broadcast(withdrawal_id)
        else:
            await p.confirm(withdrawal_id)

    def _jobs(self) -> list[tuple[str, dict[str, Any]]]:
        """Every distinct job ever published, in order (the queue delivers at least once)."""
        seen: dict[str, tuple[str, dict[str, Any]]] = {}
        for job, payload, _delay, _request in self.p.queue.published:
            seen.setdefault(f"{job}:{sorted(payload.items())}", (job, payload))
        return list(seen.values())

    async def _deliver(self, pick: int) -> None:
        table = self.p.handlers.table()
        published = self._jobs()
        if published:
            job, payload = published[pick % len(published)]
            await table[job](payload)

    async def _due(self) -> list[tuple[str, dict[str, Any]]]:
        """The job each unfinished row waits for, as recovery would enqueue it.

        In an order that does not depend on random ids (withdrawals by arrival, transactions by
        nonce), so that hypothesis replays an example exactly.
        """
        w, t = withdrawals.c, chain_transactions.c
        stage = {W.PENDING.value: jobs.VALIDATE, W.VALIDATING.value: jobs.SIGN}
        tx_stage = {
            TS.SIGNED.value: jobs.BROADCAST,
            TS.BROADCAST.value: jobs.CONFIRM,
            TS.MINED.value: jobs.CONFIRM,
        }
        async with self.engine.connect() as c:
            wds = await c.execute(select(w.id, w.status).where(w.status.in_(stage)).order_by(w.seq))
            due = [(stage[row.status], {"withdrawalId": row.id}) for row in wds]
            txs = await c.execute(
                select(t.id, t.status, t.watch).where(t.status.in_(tx_stage)).order_by(t.nonce)
            )
            for row in txs:
                payload = {"transactionId": row.id}
                if row.status != TS.SIGNED.value and row.watch is not None:
                    payload["watch"] = row.watch  # the transaction's current confirmation chain
                due.append((tx_stage[row.status], payload))
        return due

    async def _work(self, pick: int, count: int) -> None:
        table = self.p.handlers.table()
        for n in range(count):
            due = await self._due()
            if not due:
                return
            job, payload = due[(pick + n) % len(due)]
            await table[job](payload)

    async def _sign_waiting(self) -> None:
        """Run the sign job of each withdrawal waiting to be signed, then the broadcast job of
        each transaction signed and not sent."""
        table = self.p.handlers.table()
        for stage in (jobs.SIGN, jobs.BROADCAST):
            for job, payload in await self._due():
                if job == stage:
                    await table[job](payload)

    async def _work_through(self) -> None:
        table = self.p.handlers.table()
        for job, payload in await self._due():
            await table[job](payload)

    async def _faulty(self, coroutine: Coroutine[Any, Any, None], at: int, fault: str) -> None:
        """Run a step with a fault armed; a failing step raises as it would in the worker (which
        retries the job later) or dies (the queue delivers the job again after a restart)."""
        self.chain.arm(at, fault)
        try:
            await coroutine
        except (ChainUnavailableError, Crash):
            pass
        finally:
            self.chain.disarm()

    def _minable(self) -> list[str]:
        """Pooled transactions at the hot wallet's next nonce."""
        nonce = self._next_nonce()
        return [h for h in self.chain.pool if self.chain.transactions[h].nonce == nonce]

    def _recently_mined(self) -> bool:
        """Whether a re-org of at most `MAX_REORG` blocks would remove a transaction."""
        newest = self.chain.head - MAX_REORG
        return any(
            t.receipt is not None and t.receipt.block_number > newest
            for t in self.chain.mined_by(self.hot)
        )

    def _next_nonce(self) -> int:
        mined = self.chain.mined_by(self.hot)
        return mined[-1].nonce + 1 if mined else 0

    # ── Users and operators ───────────────────────────────────────────────────────────────────

    @initialize(
        native=st.integers(3, 30),
        token=st.integers(3, 30),
        batching=st.sampled_from((True, True, False)),
        refuses_late=st.booleans(),
    )
    def opening_credits(self, native: int, token: int, batching: bool, refuses_late: bool) -> None:
        self.p.set_batching(batching)
        self.refuses_late = refuses_late
        for user in USERS:
            self.credit(user, False, native)
            self.credit(user, True, token)

    @rule(user=st.sampled_from(USERS), token=st.booleans(), amount=st.integers(1, 10))
    def credit(self, user: str, token: bool, amount: int) -> None:
        self._step(self.p.credit(user, str(amount), token=token))
        asset = self.p.network.asset(TOKEN if token else None)
        self.credits[(user, asset.key)] += amount * 10**asset.decimals

    @rule(
        target=withdrawal_ids,
        user=st.sampled_from(USERS),
        token=st.booleans(),
        amount=st.integers(1, 6),
        to=st.sampled_from(RECIPIENTS),
        fast=st.sampled_from((False, False, False, True)),
    )
    def submit(self, user: str, token: bool, amount: int, to: Address, fast: bool) -> str:
        self.dirty = True
        priority = FeeLevel.FAST if fast else None
        return self._run(self.p.submit(user, str(amount), token=token, to=to, priority=priority))

    @rule(
        target=withdrawal_ids,
        user=st.sampled_from(USERS),
        token=st.booleans(),
        count=st.integers(2, 4),
        first=st.integers(0, len(RECIPIENTS) - 1),
    )
    def submit_burst(self, user: str, token: bool, count: int, first: int) -> MultipleResults[str]:
        """A few withdrawals of one asset at once, to recipients in turn, and their validation:
        material for a batch."""
        self.dirty = True

        async def burst() -> list[str]:
            ids = []
            for n in range(count):
                to = RECIPIENTS[(first + n) % len(RECIPIENTS)]
                ids.append(await self.p.submit(user, "1", token=token, to=to))
            for withdrawal_id in ids:
                await self.p.validate(withdrawal_id)
            return ids

        return multiple(*self._run(burst()))

    @rule(withdrawal=withdrawal_ids)
    def user_cancel(self, withdrawal: str) -> None:
        async def cancel() -> None:
            with contextlib.suppress(InvalidStateError):
                async with self.p.uow() as uow:
                    await self.p.withdrawals.cancel(uow, withdrawal, reason="user")
                    await uow.commit()

        self._step(cancel())

    @rule(withdrawal=withdrawal_ids)
    def operator_cancel(self, withdrawal: str) -> None:
        async def cancel() -> None:
            with contextlib.suppress(InvalidStateError):
                await self.p.cancel(withdrawal)

        self._step(cancel())

    # ── The worker ────────────────────────────────────────────────────────────────────────────

    @precondition(lambda self: self.due > 0)
    @rule(pick=st.integers(0, 1000), jobs_=st.integers(1, 3))
    def work(self, pick: int, jobs_: int) -> None:
        """The worker runs a few of the jobs that are due (one per unfinished row)."""
        self._step(self._work(pick, jobs_))

    @precondition(lambda self: self.due > 0)
    @rule()
    def work_through(self) -> None:
        """The worker runs every job that is due, once each."""
        self._step(self._work_through())

    @precondition(lambda self: self.due > 0)
    @rule(pick=st.integers(0, 1000), at=st.integers(0, 6), fault=st.sampled_from(FAULTS))
    def faulty_work(self, pick: int, at: int, fault: str) -> None:
        """A due job meets a node fault, or the worker dies, at its ``at``-th chain call."""
        self._step(self._faulty(self._work(pick, 1), at, fault))

    @rule(withdrawal=withdrawal_ids, stage=st.sampled_from(STAGES))
    def step(self, withdrawal: str, stage: str) -> None:
        """One stage of one withdrawal, whatever its state (a no-op if it is not its turn)."""
        self._step(self._stage(withdrawal, stage))

    @rule(pick=st.integers(0, 1000))
    def deliver(self, pick: int) -> None:
        """Any job ever published, again: deliveries are at least once and in any order."""
        self._step(self._deliver(pick))

    @rule()
    def restart(self) -> None:
        """A process starts: nonce reconciliation and recovery of queued work."""
        self._step(self._restart())

    @rule()
    def sweep_lost_work(self) -> None:
        """A worker's periodic sweep for work whose job was lost."""

        async def run() -> None:
            async with self.p.uow() as uow:
                await sweep(uow, now=self.p.clock.now(), poll_s=self._poll_interval)
                await uow.commit()

        self._step(run())

    @precondition(lambda self: self.validating > 0)
    @rule()
    def window_closes(self) -> None:
        """A batch window passes: the sign job of every withdrawal waiting to be signed runs (a
        group's oldest forms its batch), then what was signed is sent."""
        self.dirty = True
        self.p.clock.advance(BATCH_WINDOW_S)
        self._run(self._sign_waiting())

    @precondition(lambda self: self.due > 0)
    @rule(seconds=st.sampled_from([BATCH_WINDOW_S, 30.0, STUCK_S, 2 * STUCK_S]))
    def time_passes(self, seconds: float) -> None:
        """Time passes: batch windows close, sent transactions count as stuck."""
        self.dirty = True
        self.p.clock.advance(seconds)

    @rule(on=st.booleans())
    def batching(self, on: bool) -> None:
        """An operator turns batch payouts on or off (a restart with the networks file
        changed); batches signed before stay as they are."""
        self.dirty = True
        self.p.set_batching(on)

    @rule(refuses=st.booleans())
    def recipient_refuses(self, refuses: bool) -> None:
        """`REFUSER` starts (or stops) refusing payment: at any step, so between a batch's
        simulation and its mining too."""
        self.dirty = True
        if refuses:
            self.chain.reverting.add(REFUSER)
        else:
            self.chain.reverting.discard(REFUSER)

    # ── The chain ─────────────────────────────────────────────────────────────────────────────

    @precondition(lambda self: self._minable() != [])
    @rule(pick=st.integers(0, 1000), blocks=st.integers(1, 3), revert=st.integers(0, 3))
    def mine(self, pick: int, blocks: int, revert: int) -> None:
        """Mine a few blocks, each with one pooled transaction that can be mined then, picked at
        random among those at the next nonce (one time in four the first one reverts; one time
        in four `REFUSER` starts refusing first, so what pays it reverts)."""
        self.dirty = True
        if revert == 1:
            self.chain.reverting.add(REFUSER)
        for n in range(blocks):
            minable = self._minable()
            if not minable:
                return
            self.chain.mine(minable[(pick + n) % len(minable)], succeeded=n > 0 or revert != 0)

    @precondition(lambda self: self._minable() != [])
    @rule()
    def mine_pending(self) -> None:
        self.dirty = True
        self.chain.mine_pending()

    @precondition(lambda self: self.sent > 0)
    @rule(blocks=st.integers(1, CONFIRMATIONS))
    def blocks_pass(self, blocks: int) -> None:
        self.dirty = True
        self.chain.advance_blocks(blocks)

    @precondition(lambda self: self._recently_mined())
    @rule(depth=st.integers(1, MAX_REORG), drop=st.booleans())
    def reorg(self, depth: int, drop: bool) -> None:
        self.dirty = True
        self.chain.reorg(depth, drop=drop)

    @precondition(lambda self: self.chain.pool != [])
    @rule(pick=st.integers(0, 1000))
    def drop_pooled(self, pick: int) -> None:
        """The node forgets a pooled transaction (a restart, an eviction)."""
        self.dirty = True
        pool = self.chain.pool
        if pool:
            self.chain.drop(pool[pick % len(pool)])

    @precondition(lambda self: len(self.outside_hashes) < MAX_OUTSIDE)
    @rule(mine_now=st.booleans())
    def outside_transaction(self, mine_now: bool) -> None:
        """Someone else with the hot wallet's key sends a transaction at its next nonce."""
        self.dirty = True
        nonce = self._next_nonce()
        signed = self._run(
            self.outsider.sign(
                UnsignedTransaction(
                    chain_id=CHAIN_ID,
                    nonce=nonce,
                    to=OUTSIDER,
                    value=len(self.outside_hashes) + 1,  # a distinct transaction each time
                    data=b"",
                    gas=21_000,
                    fees=FeePolicy().price(self.chain.market),
                )
            )
        )
        self.outside_hashes.add(signed.hash)
        self._run(self.chain.send_raw_transaction(signed.raw))
        if mine_now and signed.hash in self.chain.pool:
            self.chain.mine(signed.hash)

    # ── Invariants ────────────────────────────────────────────────────────────────────────────

    @invariant()
    def invariants_hold(self) -> None:
        self._check(self._run(self._snapshot()))
        self.dirty = False

    async def _snapshot(self) -> Snapshot:
        async with self.engine.connect() as c:
            return Snapshot(
                balances=list(await c.execute(select(balances))),
                withdrawals=list(await c.execute(select(withdrawals))),
                transactions=list(await c.execute(select(chain_transactions))),
                attempts=list(
                    await c.execute(
                        select(transaction_attempts).order_by(
                            transaction_attempts.c.transaction_id, transaction_attempts.c.seq
                        )
                    )
                ),
                entries=list(await c.execute(select(ledger_entries).order_by(ledger_entries.c.id))),
                signings=list(
                    await c.execute(
                        select(withdrawal_events.c.withdrawal_id, withdrawal_events.c.data).where(
                            withdrawal_events.c.from_status == W.VALIDATING.value,
                            withdrawal_events.c.to_status == W.SIGNED.value,
                        )
                    )
                ),
            )

    def _check(self, s: Snapshot) -> None:
        wds = {w.id: w for w in s.withdrawals}
        txs = {t.id: t for t in s.transactions}
        members = self._members(s, wds)
        for w in s.withdrawals:
            if w.transaction_id is not None:
                assert w.id in members.get(w.transaction_id, []), (
                    f"{w.id} points at {w.transaction_id}, which it was never signed into"
                )
        for tx_id, ids in members.items():
            if TS(txs[tx_id].status) in (TS.SIGNED, TS.BROADCAST, TS.MINED):
                current = {w.id for w in s.withdrawals if w.transaction_id == tx_id}
                assert current == set(ids), f"{tx_id} in flight carries {current}, signed {ids}"
        self._check_balances(s, wds)
        self._check_statuses(wds, txs)
        self._check_nonces(s, txs)
        self._check_payments(s, wds, txs, members)
        waiting = (W.PENDING, W.VALIDATING)
        tracked = (TS.BROADCAST, TS.MINED)
        self.sent = sum(TS(t.status) in tracked for t in s.transactions)
        self.validating = sum(W(w.status) is W.VALIDATING for w in s.withdrawals)
        self.due = (
            sum(W(w.status) in waiting for w in s.withdrawals)
            + sum(TS(t.status) is TS.SIGNED for t in s.transactions)
            + self.sent
        )

    @staticmethod
    def _members(s: Snapshot, wds: dict[str, Any]) -> dict[str, list[str]]:
        """Transaction id → the withdrawals signed into it (their SIGNED history entries name
        its first attempt), in acceptance order: what it pays, for good."""
        transaction_of = {a.hash: a.transaction_id for a in s.attempts}
        members: dict[str, list[str]] = defaultdict(list)
        for signing in s.signings:
            tx_id = transaction_of[signing.data["transactionHash"]]
            assert signing.withdrawal_id not in members[tx_id], (
                f"{signing.withdrawal_id} was signed into {tx_id} twice"
            )
            members[tx_id].append(signing.withdrawal_id)
        for ids in members.values():
            ids.sort(key=lambda i: wds[i].seq)
        return members

    def _expected_payload(self, t: Any, paid: list[Any]) -> Payload:
        """What a transaction carrying ``paid`` must do: a transfer for one withdrawal, a call to
        its wallet's batch contract for a batch."""
        asset = self.p.network.asset_by_key(paid[0].asset_key)
        if bytes(t.data)[:4] in BATCH_SELECTORS:
            assert all(w.asset_key == paid[0].asset_key for w in paid), f"{t.id} mixes assets"
            contract = self.contracts[t.from_address.lower()]
            payments = [(Address(w.to_address), w.amount) for w in paid]
            return batch_payload(contract, asset.token_address, payments)
        assert len(paid) == 1, f"transaction {t.id} pays {len(paid)} withdrawals without a batch"
        return transfer_payload(asset, Address(paid[0].to_address), paid[0].amount)

    def _check_balances(self, s: Snapshot, wds: dict[str, Any]) -> None:
        held: dict[tuple[str, str], int] = defaultdict(int)
        completed: dict[tuple[str, str], int] = defaultdict(int)
        for w in wds.values():
            if W(w.status) in HOLDING_STATUSES:
                held[(w.user_id, w.asset_key)] += w.amount
            elif W(w.status) is W.COMPLETED:
                completed[(w.user_id, w.asset_key)] += w.amount
        rows = {(b.user_id, b.asset_key): (b.available, b.held) for b in s.balances}
        for b in s.balances:
            assert b.network == NET
            assert b.available >= 0, f"negative available balance: {b}"
            assert b.held >= 0, f"negative held balance: {b}"
        for key in set(rows) | set(self.credits) | set(held) | set(completed):
            available, holding = rows.get(key, (0, 0))
            assert holding == held[key], f"{key}: held {holding}, open withdrawals hold {held[key]}"
            assert completed[key] + available + holding == self.credits[key], (
                f"{key}: completed {completed[key]} + available {available} + held {holding} "
                f"!= credited {self.credits[key]}"
            )
        self._check_journals(s, wds, rows)

    def _check_journals(
        self, s: Snapshot, wds: dict[str, Any], rows: dict[tuple[str, str], tuple[int, int]]
    ) -> None:
        sums: dict[tuple[str, str], dict[EntryKind, int]] = defaultdict(lambda: defaultdict(int))
        journals: dict[str, list[EntryKind]] = defaultdict(list)
        for e in s.entries:
            sums[(e.user_id, e.asset_key)][EntryKind(e.kind)] += e.amount
            if e.withdrawal_id is not None:
                journals[e.withdrawal_id].append(EntryKind(e.kind))
        for key, by_kind in sums.items():
            available, holding = rows.get(key, (0, 0))
            assert by_kind[EntryKind.CREDIT] == self.credits[key]
            assert by_kind[EntryKind.CREDIT] - by_kind[EntryKind.SETTLE] == available + holding
            assert (
                by_kind[EntryKind.HOLD] - by_kind[EntryKind.RELEASE] - by_kind[EntryKind.SETTLE]
                == holding
            )
        hold, release, settle = EntryKind.HOLD, EntryKind.RELEASE, EntryKind.SETTLE
        for w in wds.values():
            journal = journals.get(w.id, [])
            status = W(w.status)
            if status is W.PENDING:
                expected: list[list[EntryKind]] = [[]]
            elif status in HOLDING_STATUSES:
                expected = [[hold]]
            elif status is W.COMPLETED:
                expected = [[hold, settle]]
            else:
                expected = [[], [hold, release]]
            assert journal in expected, f"{w.id} is {status} with journal {journal}"

    def _check_statuses(self, wds: dict[str, Any], txs: dict[str, Any]) -> None:
        agree = {
            W.SIGNED: {TS.SIGNED},
            W.BROADCASTING: {TS.BROADCAST},
            W.CONFIRMING: {TS.MINED},
            W.COMPLETED: {TS.CONFIRMED},
            W.FAILED: {TS.REVERTED},
            W.CANCELLED: {TS.CANCELLED},
        }
        for w in wds.values():
            status = W(w.status)
            before = self.finals.get(w.id)
            assert before is None or before is status, f"{w.id} moved on from {before}"
            if status in FINAL_STATUSES:
                self.finals[w.id] = status
            if w.transaction_id is None:
                assert status in (W.PENDING, W.VALIDATING, W.FAILED, W.CANCELLED), (
                    f"{w.id} is {status} without a transaction"
                )
                continue
            tx_status = TS(txs[w.transaction_id].status)
            assert tx_status in agree.get(status, set()), (
                f"{w.id} is {status} but its transaction is {tx_status}"
            )

    def _check_nonces(self, s: Snapshot, txs: dict[str, Any]) -> None:
        # In the database: one transaction per nonce, and each attempt at its transaction's nonce
        # carrying its payload (or, for a cancel, a no-op to the wallet itself).
        nonces = [(t.network, t.from_address, t.nonce) for t in txs.values()]
        assert len(nonces) == len(set(nonces)), "two stored transactions share a nonce"
        for a in s.attempts:
            decoded = self.decoded.get(a.id)
            if decoded is None:
                decoded = self.decoded[a.id] = _decode(a.raw)
            t = txs[a.transaction_id]
            assert decoded.nonce == t.nonce, f"attempt {a.hash} is not at nonce {t.nonce}"
            if AttemptPurpose(a.purpose) is AttemptPurpose.CANCEL:
                expected = (t.from_address.lower(), 0, b"")
            else:
                expected = (t.to_address.lower(), t.value, bytes(t.data))
            assert (decoded.to, decoded.value, decoded.data) == expected, (
                f"attempt {a.hash} does not carry its transaction's payload"
            )
        # On the chain: one mined transaction per nonce, each ours or a known outside one.
        ours = {a.hash for a in s.attempts}
        mined = self.chain.mined_by(self.hot)
        assert [t.nonce for t in mined] == list(range(len(mined))), "mined nonces not 0..n-1"
        for t in mined:
            assert t.hash in ours or t.hash in self.outside_hashes, f"unknown mined {t.hash}"

    def _check_payments(
        self,
        s: Snapshot,
        wds: dict[str, Any],
        txs: dict[str, Any],
        members: dict[str, list[str]],
    ) -> None:
        by_tx: dict[str, list[Any]] = defaultdict(list)
        for a in s.attempts:
            by_tx[a.transaction_id].append(a)
        mined_outcomes: dict[str, int] = defaultdict(int)
        for tx_id, attempts in by_tx.items():
            t = txs[tx_id]
            winners = [a for a in attempts if a.outcome == AttemptOutcome.MINED.value]
            assert len(winners) <= 1, f"transaction {tx_id} has {len(winners)} mined attempts"
            if winners:
                assert TS(t.status) in (TS.CONFIRMED, TS.REVERTED, TS.CANCELLED)
                assert t.mined_hash == winners[0].hash
            if TransactionKind(t.kind) is TransactionKind.FILLER:
                assert tx_id not in members, "a filler pays a withdrawal"
                continue
            ids = members.get(tx_id)
            assert ids, f"payout {tx_id} pays no known withdrawal"
            payload = self._expected_payload(t, [wds[i] for i in ids])
            assert payload == Payload(Address(t.to_address), t.value, bytes(t.data)), (
                f"transaction {tx_id} does not pay withdrawals {ids}"
            )
            if TS(t.status) is not TS.REVERTED:  # a reverted batch's are paid again, alone
                for withdrawal_id in ids:
                    mined_outcomes[withdrawal_id] += len(winners)
        for withdrawal_id, count in mined_outcomes.items():
            assert count <= 1, f"{withdrawal_id} has {count} mined attempts"
        self._check_paid(s, wds, txs, members)

    def _check_paid(
        self,
        s: Snapshot,
        wds: dict[str, Any],
        txs: dict[str, Any],
        members: dict[str, list[str]],
    ) -> None:
        # Paid on chain: a mined payload attempt with a successful receipt pays every withdrawal
        # its transaction carries (a batch is atomic).
        purpose = {a.hash: (a.transaction_id, AttemptPurpose(a.purpose)) for a in s.attempts}
        paid: dict[str, list[str]] = defaultdict(list)
        for sent in self.chain.mined_by(self.hot):
            if sent.hash not in purpose or sent.receipt is None or not sent.receipt.succeeded:
                continue
            tx_id, kind = purpose[sent.hash]
            if kind is AttemptPurpose.PAYLOAD:
                for withdrawal_id in members.get(tx_id, []):
                    paid[withdrawal_id].append(sent.hash)
        for w in wds.values():
            hashes = paid.get(w.id, [])
            assert len(hashes) <= 1, f"{w.id} is paid {len(hashes)} times on chain"
            status = W(w.status)
            if status is W.COMPLETED:
                assert hashes == [txs[w.transaction_id].mined_hash], (
                    f"{w.id} is COMPLETED but the chain paid {hashes}"
                )
            elif status in (W.CANCELLED, W.FAILED):
                assert hashes == [], f"{w.id} is {status} but the chain paid it"
            elif hashes:
                assert status in (W.BROADCASTING, W.CONFIRMING), f"{w.id} is paid but {status}"

    def _check_chain_paid_what_settled(self, s: Snapshot) -> None:
        """What the chain paid from the hot wallet (outside transactions aside), per asset, is
        what the ledger settled."""
        on_chain: dict[str, int] = defaultdict(int)
        for tx_hash, token, _to, amount in self.chain.paid(self.hot):
            if tx_hash not in self.outside_hashes:
                on_chain[token.lower() if token else self.p.network.native.key] += amount
        settled: dict[str, int] = defaultdict(int)
        for e in s.entries:
            if EntryKind(e.kind) is EntryKind.SETTLE:
                settled[e.asset_key] += e.amount
        assert {k: v for k, v in on_chain.items() if v} == {k: v for k, v in settled.items() if v}

    # ── The end ───────────────────────────────────────────────────────────────────────────────

    def teardown(self) -> None:
        try:
            if not self.dirty:
                self._run(self._drain())
        finally:
            self._run(self._close())

    async def _drain(self) -> None:
        """Faults off, the node up: run every stage due until nothing is left unfinished."""
        self.chain.disarm()
        self.chain.come_back()
        await self._restart()
        for _ in range(DRAIN_ROUNDS):
            if not await self._due():
                break
            await self._work_through()
            self._check(await self._snapshot())
            if self.refuses_late and self._pays_refuser():
                self.chain.reverting.add(REFUSER)  # after its simulation, before its mining
            self.chain.mine_pending()
            self.chain.advance_blocks(CONFIRMATIONS)
            self.p.clock.advance(STUCK_S)
        snapshot = await self._snapshot()
        unfinished = {w.id: w.status for w in snapshot.withdrawals if not W(w.status).is_final}
        assert not unfinished, f"not finished after {DRAIN_ROUNDS} rounds: {unfinished}"
        self._check(snapshot)
        self._check_chain_paid_what_settled(snapshot)
        jobs_known = {job for job, *_ in self.p.queue.published}
        assert jobs_known <= {jobs.VALIDATE, jobs.SIGN, jobs.BROADCAST, jobs.CONFIRM}

    def _pays_refuser(self) -> bool:
        """Whether a pooled transaction pays `REFUSER` (a transfer or a batch)."""
        for tx_hash in self.chain.pool:
            tx = self.chain.transactions[tx_hash]
            if tx.data[:4] in BATCH_SELECTORS:
                batch = read_batch(Payload(Address(tx.to), tx.value, tx.data))
                recipients = [to for to, _ in batch.payments]
            elif tx.data[:4] == TRANSFER_SELECTOR:
                recipients = [Address(to_checksum_address(tx.data[16:36]))]
            else:
                recipients = [Address(tx.to)]
            if REFUSER in recipients:
                return True
        return False

    async def _close(self) -> None:
        try:
            if hasattr(self, "p"):
                await self.p.queue.close()
            await self.engine.dispose()
        finally:
            await self.databases.drop(self.url)


def test_the_engine_keeps_its_invariants_whatever_happens(
    databases: FreshDatabases,
) -> None:
    loop = asyncio.new_event_loop()

    class EngineOnThisDatabase(EngineMachine):
        def __init__(self) -> None:
            super().__init__(databases, loop)

    try:
        run_state_machine_as_test(
            EngineOnThisDatabase,
            settings=settings(
                max_examples=int(os.environ.get(EXAMPLES_ENV, EXAMPLES[databases.backend])),
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


# ── Found by reasoning about the machine's rules, kept as a plain sequence ─────────────────────
# (It failed until the engine judged a used nonce at the final block itself, not by counting
# blocks since it was first seen used.)


async def test_a_nonce_seen_used_before_a_reorg_is_not_superseded_while_the_outside_one_is_shallow(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    p = wire(
        engine,
        FakeChain(chain_id=CHAIN_ID),
        CountingSigner(LocalSigner(HOT_KEY)),
        FakeClock(),
        confirmations=CONFIRMATIONS,
    )
    try:
        async with p.uow() as uow:
            await uow.transactions.reconcile_nonce(NET, p.signer.address, 0)
            await uow.commit()
        await p.credit("alice", "10")
        wid = await p.submit("alice", "1")
        await p.validate(wid)
        await p.sign(wid)
        await p.broadcast(wid)
        _, [ours] = await p.transaction(wid)
        outside = await LocalSigner(HOT_KEY).sign(
            UnsignedTransaction(
                chain_id=CHAIN_ID,
                nonce=0,
                to=OUTSIDER,
                value=1,
                data=b"",
                gas=21_000,
                fees=FeePolicy().price(p.chain.market),
            )
        )
        await p.chain.send_raw_transaction(outside.raw)
        p.chain.mine(outside.hash)  # block 101: someone else used nonce 0
        await p.confirm(wid)  # seen used at head 101
        p.chain.advance_blocks(2)
        p.chain.reorg(3)  # blocks 101-103 replaced: the outside transaction is pooled again
        p.chain.mine(outside.hash)  # and mined in block 104, one confirmation deep

        await p.confirm(wid)  # 104 - 101 + 1 = 4 "confirmations": superseded, signed again
        await p.sign(wid)
        await p.broadcast(wid)
        p.chain.reorg(1)  # block 104 replaced: nonce 0 is free again
        p.chain.mine(ours.hash)
        p.chain.mine_pending()

        paid = [t.hash for t in p.chain.mined_by(p.signer.address) if t.hash != outside.hash]
        assert len(paid) == 1, f"the withdrawal was paid {len(paid)} times"
    finally:
        await p.queue.close()
        await engine.dispose()
