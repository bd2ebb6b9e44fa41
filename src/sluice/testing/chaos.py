"""A fault-injection run: real Sluice processes on a private Anvil, checked from the chain.

`ChaosRun` sets up one scenario: the demo token and a funded hot wallet on the given Anvil
(`sluice.testing.harness.prepare`), a networks file (its RPC URL may be a fault proxy's), API key
and credits for several users in the given PostgreSQL database, then one ``sluice serve
--no-workers`` and N ``sluice worker`` subprocesses on a Redis Streams queue. It submits
withdrawals (native and token; every user has both; each to a fresh address, so the
chain shows what each one received), watches the workers (one that dies, killed at a
``SLUICE_FAULT_KILL_AT`` point or from outside, is started again, with the next kill point of
its plan or none), waits until every withdrawal is final, and `ChaosRun.verify` checks:

- lost: a withdrawal not final in time, or COMPLETED while its recipient received nothing
  (what it holds less what it held before the run);
- duplicated: a recipient that received more than its withdrawal's amount (paid twice);
- ledger mismatches: per user and asset, ``GET /v1/users/{id}/balances`` must show nothing
  held and available = credits - completed withdrawals; and a recipient paid by a withdrawal
  that is not COMPLETED counts here too;
- outflow mismatches: the hot wallet's balance of each token fell by exactly its completed sum,
  and its native balance by exactly the completed native sum plus the gas of every transaction
  it sent (``gasUsed * effectiveGasPrice`` of each receipt, found by scanning every block of the
  run on the canonical chain).

With `ChaosOptions.batching` the hot wallet's ``BatchPayout`` is deployed and approved for every
token of the run before Sluice starts, and ``[networks.anvil.batching]`` names it: a transaction
then pays many withdrawals. The checks read a batch from the chain as what it is: a successful
``payNative``/``payToken`` call to the contract pays each of its recipients its amount (the
contract is atomic), a reverted one pays nobody, and its gas counts like any other
transaction's. The report counts the hot wallet's transactions against the withdrawals, the
batches and the largest one. `ChaosOptions.blocking_token` adds a second token, a
``BlockingToken`` whose block list another account keeps (`ChaosRun.block`): a recipient can be
made to refuse its payment while its batch is pooled; `ChaosRun.expect` names a withdrawal the
scenario means to fail, and with which error code.

The scenario itself (kill plans, RPC faults, mining, re-orgs...) is the caller's: it calls
`ChaosRun.fault` for each fault it injects, so the report can say how long recovery took (from
the last fault until every withdrawal was final).

A failure says what broke: every wait that times out (`ChaosRun.wait_for`, `ChaosRun.wait_final`,
the API's health) names what it waited for, for how long, and the run's state then
(`ChaosRun.describe`: counts per status, the oldest unfinished withdrawals with their last
events and transaction, the chain's head and the hot wallet's nonces and pool, each worker's
lives and last error); every broken invariant is a line of `ChaosReport.details` naming the
invariant and the withdrawals at fault, with their history. A wait that reaches its timeout
while the run is still moving (statuses changing; for `ChaosRun.wait_final`, withdrawals still
becoming final) goes on, up to `GRACE` times its timeout: a loaded machine is slow, not stuck,
and a stuck run still fails at the timeout. `ChaosRun.margins` tells how close each wait came.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import decode
from eth_account import Account
from eth_utils.crypto import keccak
from sqlalchemy import NullPool, bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine

from sluice.bootstrap import build
from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess, free_port
from sluice.domain.access import ALL_SCOPES
from sluice.faults import ENV as KILL_AT_ENV
from sluice.testing.contracts import (
    ChainSender,
    approve,
    deploy_batch_payout,
    deploy_blocking_token,
    mint,
)
from sluice.testing.harness import PASSPHRASE, prepare

__all__ = [
    "BatchCall",
    "ChaosOptions",
    "ChaosReport",
    "ChaosRun",
    "Planned",
    "read_batch_call",
    "rpc_batch",
    "terminate_backends",
]

FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
UNIT = 10**15  # 0.001 of an 18-decimal asset
_BATCH = 100
_SHOWN = 10
"""How many withdrawals a failure message describes in full (the rest are counted)."""
_TRANSFER = "0xa9059cbb"  # transfer(address,uint256)
_PAY_NATIVE = "0x" + keccak(text="payNative(address[],uint256[])")[:4].hex()
_PAY_TOKEN = "0x" + keccak(text="payToken(address,address[],uint256[])")[:4].hex()
_SET_BLOCKED = keccak(text="setBlocked(address,bool)")[:4]
_MAX_ALLOWANCE = 2**256 - 1
_GWEI = 10**9
_BLOCK_LIST_OWNER = DEV_ACCOUNTS[2]
"""Deploys the blocking token and keeps its block list (not the hot wallet: its transactions
would take the hot wallet's nonces)."""
GRACE = 3.0
"""A wait still seeing progress at its timeout goes on, up to this many times the timeout."""
STALL_S = 150.0
"""`ChaosRun.wait_final` past its timeout: stuck when no withdrawal became final for this long
(more than a lost confirmation chain's lease, 120 s, and the sweep that takes it over)."""


@dataclass(frozen=True, slots=True)
class ChaosOptions:
    """How big a run is and how its network and processes are configured."""

    withdrawals: int
    users: int = 4
    workers: int = 2
    confirmations: int = 1
    poll_interval_s: float = 0.2
    network: dict[str, Any] = field(default_factory=dict)
    """Extra keys of the networks file (``stuck_after_s``, ``max_fee_gwei``...)."""
    kill_plans: Sequence[Sequence[str]] = ()
    """Per worker, the ``SLUICE_FAULT_KILL_AT`` of each of its lives, in order; then none."""
    final_timeout_s: float = 300.0
    worker_env: dict[str, str] = field(default_factory=dict)
    batching: bool = False
    """Batch payouts: the hot wallet's ``BatchPayout`` is deployed and approved for every token
    before Sluice starts, and the networks file names it. Nine in ten native recipients then
    hold 1 wei beforehand (the batcher pays the coin to an account that does not exist yet on
    its own, so without them no native withdrawal would share a transaction)."""
    batch_max_size: int = 50
    batch_window_s: float = 1.0
    blocking_token: bool = False
    """A second token, a ``BlockingToken`` (USDC-like: a transfer to a blocked address reverts)
    deployed by another account, which keeps its block list (`ChaosRun.block`); the hot wallet
    holds a million of it. Withdrawals then go round the coin, the demo token and this one."""


@dataclass(frozen=True, slots=True)
class Planned:
    """One withdrawal the run submits."""

    id: str
    user_id: str
    token: str | None
    """The token's address; None: the native coin."""
    amount: int  # base units
    to: str
    before: int = 0
    """What the recipient held before the run (base units of the withdrawal's asset)."""


@dataclass(frozen=True, slots=True)
class BatchCall:
    """A ``BatchPayout`` call read from its call data: the token (None: the coin) and each
    payment (recipient in lower case, amount), in position order."""

    token: str | None
    payments: tuple[tuple[str, int], ...]


def read_batch_call(data: str) -> BatchCall | None:
    """The ``payNative``/``payToken`` call ``data`` (hex) holds; None if it is neither."""
    body = bytes.fromhex(data.removeprefix("0x")[8:]) if len(data) >= 10 else b""
    try:
        if data.startswith(_PAY_NATIVE):
            recipients, amounts = decode(["address[]", "uint256[]"], body)
            token = None
        elif data.startswith(_PAY_TOKEN):
            token_address, recipients, amounts = decode(["address", "address[]", "uint256[]"], body)
            token = str(token_address).lower()
        else:
            return None
    except Exception:  # not a well-formed call: the contract would have refused it too
        return None
    if len(recipients) != len(amounts):  # the contract refuses it (LengthMismatch)
        return None
    payments = tuple(
        (str(to).lower(), int(amount)) for to, amount in zip(recipients, amounts, strict=True)
    )
    return BatchCall(token=token, payments=payments)


@dataclass
class _OnChain:
    """What the hot wallet's transactions of the run did, read from the canonical chain."""

    native_out: int = 0
    token_out: dict[str, int] = field(default_factory=dict)
    """By token address (lower case)."""
    gas: int = 0
    payments: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    """Each recipient's successful payments: (transaction hash, amount)s."""
    transactions: int = 0
    batches: dict[str, tuple[BatchCall, bool]] = field(default_factory=dict)
    """Each mined batch transaction by hash: its call, and whether it succeeded."""


@dataclass
class ChaosReport:
    """What a run found; `problems` is empty when every invariant held."""

    scenario: str
    withdrawals: int
    completed: int = 0
    lost: int = 0
    duplicated: int = 0
    ledger_mismatches: int = 0
    outflow_mismatches: int = 0
    expected_failed: int = 0
    """Withdrawals that FAILED with the error the scenario meant them to (`ChaosRun.expect`)."""
    transactions: int = 0
    """The hot wallet's transactions mined during the run (payouts, batches, no-ops)."""
    batches: int = 0
    """Of those, calls of its ``BatchPayout``; `largest_batch` is the most payments of one."""
    largest_batch: int = 0
    reverted_batches: int = 0
    recover_s: float = 0.0
    """From the last fault until every withdrawal was final."""
    run_s: float = 0.0
    """From the first submission until every withdrawal was final."""
    faults: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every broken invariant, and anything not COMPLETED but the failures the scenario
        meant (`expected_failed`)."""
        found = list(self.details)
        unexpected = self.withdrawals - self.completed - self.expected_failed
        if unexpected:
            found.append(f"{unexpected} not COMPLETED (nor meant to fail): {self.statuses}")
        return found

    def failure(self) -> str:
        """The summary line and every problem, one a line: an assertion's message."""
        return "\n".join([self.line(), *self.problems()])

    def line(self) -> str:
        """A one-line summary."""
        faults = ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items()))
        failed = f" ({self.expected_failed} failed as meant)" if self.expected_failed else ""
        return (
            f"{self.scenario}: {self.withdrawals} withdrawals, {self.completed} completed{failed}, "
            f"lost {self.lost}, duplicated {self.duplicated}, ledger mismatches "
            f"{self.ledger_mismatches}, outflow mismatches {self.outflow_mismatches}, "
            f"{self.transactions} transactions ({self.batches} batches, largest "
            f"{self.largest_batch}, {self.reverted_batches} reverted), all final "
            f"{self.recover_s:.1f} s after the last fault ({self.run_s:.1f} s after the first "
            f"submission); faults: {faults}"
        )


async def rpc_batch(
    client: httpx.AsyncClient, url: str, calls: Sequence[tuple[str, list[Any]]]
) -> list[Any]:
    """Results of JSON-RPC calls, sent in batches; an error answer raises RuntimeError."""
    results: list[Any] = []
    for start in range(0, len(calls), _BATCH):
        chunk = calls[start : start + _BATCH]
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in enumerate(chunk)
        ]
        answers = sorted((await client.post(url, json=batch)).json(), key=lambda a: a["id"])
        for answer in answers:
            if "error" in answer:
                raise RuntimeError(f"JSON-RPC error: {answer['error']}")
            results.append(answer["result"])
    return results


async def terminate_backends(server_url: str, database: str) -> int:
    """End every session on ``database`` (what a PostgreSQL restart looks like to clients)."""
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
            return sum(1 for row in rows if row[0])
    finally:
        await engine.dispose()


def _balance_of_call(token: str, holder: str) -> tuple[str, list[Any]]:
    data = "0x70a08231" + holder.lower().removeprefix("0x").rjust(64, "0")
    return ("eth_call", [{"to": token, "data": data}, "latest"])


def _key(token: str | None) -> str | None:
    """An asset's key in the run's sums: the token's address in lower case, None for the coin."""
    return token.lower() if token else None


def _short(value: object, width: int = 12) -> str:
    text_ = str(value)
    return text_ if len(text_) <= width else text_[:width] + "…"


def _log_tail(log: Path | None, lines: int = 2) -> list[str]:
    """The last ``lines`` error lines (or else any lines) of a process's log, shortened."""
    if log is None or not log.exists():
        return []
    tail = log.read_text("utf-8", "replace")[-20_000:].splitlines()
    bad = [
        line
        for line in tail
        if '"error"' in line or '"critical"' in line or "Traceback" in line or "Error" in line
    ]
    return [line[:400] for line in (bad or tail)[-lines:]]


@dataclass
class _Worker:
    index: int
    plan: list[str]
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    kill_at: str | None = None
    lives: int = 0


class ChaosRun:
    """One scenario's processes, withdrawals and checks; see the module docstring."""

    def __init__(
        self,
        anvil: AnvilProcess,
        data_dir: Path,
        *,
        database_url: str,
        queue_url: str,
        options: ChaosOptions,
        rpc_url: str | None = None,
    ) -> None:
        self.anvil = anvil
        self.data_dir = data_dir
        self.database_url = database_url
        self.queue_url = queue_url
        self.options = options
        self.sluice_rpc_url = rpc_url or anvil.rpc_url
        self.logs = data_dir / "logs"
        self.faults: dict[str, int] = {}
        self.last_fault_at: float | None = None
        self.planned: list[Planned] = []
        self.credits: dict[tuple[str, str | None], int] = {}
        """Per (user, token address in lower case or None for the coin)."""
        self.token = ""
        self.blocking_token = ""
        """The `ChaosOptions.blocking_token` (empty without it)."""
        self.batch_contract = ""
        """The hot wallet's ``BatchPayout`` (empty without `ChaosOptions.batching`)."""
        self.expected: dict[str, str] = {}
        """Withdrawals meant to fail, with their error code (`expect`)."""
        self.onchain = _OnChain()
        """What the run's transactions did on the chain (`verify` reads it)."""
        self.hot_wallet = ""
        self.hot_wallet_key = ""
        self.api_url = ""
        self.api_key = ""
        self.api: subprocess.Popen[bytes] | None = None
        self._api_log: Path | None = None
        self.workers: list[_Worker] = []
        self._env: dict[str, str] = {}
        self._start_block = 0
        self._start_native = 0
        self._start_tokens: dict[str, int] = {}
        self._stopping = False
        self._submitted_at: float | None = None
        self._final_at: float | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._http = httpx.AsyncClient(timeout=60)
        self._looked: tuple[float, int] | None = None
        self.timeouts: list[str] = []
        self.waited: dict[str, tuple[float, float]] = {}
        """Each wait's longest time and its timeout, by what it waited for (`margins`)."""
        """Every wait of `wait_final` that timed out, with the state then (`verify` reports it)."""

    # ── set-up ────────────────────────────────────────────────────────────────────────────────

    async def start(self) -> None:
        """Chain, networks file, key and credits; then the API and the workers."""
        options = self.options
        settings, chain = await prepare(
            self.anvil,
            self.data_dir,
            database_url=self.database_url,
            confirmations=options.confirmations,
            poll_interval_s=options.poll_interval_s,
        )
        self.token = str(chain.token)
        self.hot_wallet = str(chain.hot_wallet)
        keystore = json.loads((self.data_dir / "keys" / "hot-wallet.json").read_text("utf-8"))
        self.hot_wallet_key = "0x" + bytes(Account.decrypt(keystore, PASSPHRASE)).hex()
        if options.batching or options.blocking_token:
            await asyncio.to_thread(self._deploy_contracts)
        self._rewrite_networks_file(settings.networks_file)

        assets: list[str | None] = [None, *self.tokens]
        self.planned = self._plan(assets)
        held = [p for p in self.planned if p.before]
        if held:  # accounts that exist: 1 wei each, straight from the node (no transaction)
            await rpc_batch(
                self._http,
                self.anvil.rpc_url,
                [("anvil_setBalance", [p.to, hex(p.before)]) for p in held],
            )
        for planned in self.planned:
            key = (planned.user_id, _key(planned.token))
            self.credits[key] = self.credits.get(key, 3 * UNIT) + planned.amount
        container = await build(settings, run_migrations=False)
        try:
            async with container.uow() as uow:
                self.api_key, _ = await container.api_keys.create(
                    uow, name="chaos", scopes=ALL_SCOPES
                )
                await uow.commit()
            addresses = {_key(token): token for token in assets}
            for (user_id, token), amount in sorted(self.credits.items(), key=str):
                async with container.uow() as uow:
                    await container.ledger.credit(
                        uow,
                        user_id=user_id,
                        network="anvil",
                        token_address=addresses[token],
                        amount=str(Decimal(amount) / 10**18),
                        reference=f"chaos:{user_id}:{token or 'native'}",
                    )
                    await uow.commit()
        finally:
            await container.close()

        tokens = self.tokens
        block, native, *token_balances = await rpc_batch(
            self._http,
            self.anvil.rpc_url,
            [
                ("eth_blockNumber", []),
                ("eth_getBalance", [self.hot_wallet, "latest"]),
                *(_balance_of_call(token, self.hot_wallet) for token in tokens),
            ],
        )
        self._start_block = int(block, 16)
        self._start_native = int(native, 16)
        self._start_tokens = {
            token.lower(): int(value, 16)
            for token, value in zip(tokens, token_balances, strict=True)
        }

        self.logs.mkdir(exist_ok=True)
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        self._env.update(
            SLUICE_DATABASE_URL=self.database_url,
            SLUICE_QUEUE_URL=self.queue_url,
            SLUICE_NETWORKS_FILE=str(settings.networks_file),
            SLUICE_KEYSTORE_PASSPHRASE=PASSPHRASE,
            SLUICE_LOG_FORMAT="json",
            SLUICE_LOG_LEVEL="warning",
            SLUICE_RETRY_BASE_S="0.2",
            SLUICE_RETRY_MAX_S="2",
            # Lost jobs (a queue restarted without its data) are found within seconds here.
            SLUICE_SWEEP_INTERVAL_S="5",
            SLUICE_STALE_AFTER_S="30",
            **options.worker_env,
        )
        port = free_port()
        self.api, self._api_log = self._spawn(
            "serve", ["serve", "--no-workers", "--port", str(port)], None
        )
        self.api_url = f"http://127.0.0.1:{port}"
        for index in range(options.workers):
            plans = options.kill_plans[index] if index < len(options.kill_plans) else ()
            worker = _Worker(index=index, plan=list(plans))
            self.workers.append(worker)
            self._start_worker(worker)
        await self._wait_healthy()
        self._supervisor = asyncio.create_task(self._supervise(), name="chaos-supervisor")

    def _plan(self, assets: Sequence[str | None]) -> list[Planned]:
        """The withdrawals: users in turn, each user's going round ``assets``, amounts 1 to 5
        units, each to a fresh address (with batching, nine in ten native ones made to exist
        beforehand: `ChaosOptions.batching`)."""
        options = self.options
        planned: list[Planned] = []
        natives = 0
        for i in range(options.withdrawals):
            token = assets[(i // options.users) % len(assets)]
            existing = False
            if token is None:
                existing = options.batching and natives % 10 != 0
                natives += 1
            planned.append(
                Planned(
                    id=f"chaos-{uuid.uuid4().hex[:10]}-{i}",
                    user_id=f"user-{i % options.users}",
                    token=token,
                    amount=UNIT * (1 + i % 5),
                    to=Account.create().address,
                    before=1 if existing else 0,
                )
            )
        return planned

    @property
    def tokens(self) -> list[str]:
        """The run's tokens: the demo token, and the blocking token if there is one."""
        return [self.token, *([self.blocking_token] if self.blocking_token else [])]

    def _deploy_contracts(self) -> None:
        """The blocking token (deployed by its own owner, a million of it minted to the hot
        wallet) and the hot wallet's ``BatchPayout``, approved for each token (blocking: run in
        a thread, before Sluice starts, so these nonces of the hot wallet are the chain's)."""
        rpc = self.anvil.rpc_url
        with (
            ChainSender(rpc, self.hot_wallet_key) as wallet,
            ChainSender(rpc, _BLOCK_LIST_OWNER.private_key) as owner,
        ):
            if self.options.blocking_token:
                self.blocking_token = str(deploy_blocking_token(owner, symbol="BLOCK"))
                mint(owner, self.blocking_token, wallet.address, 1_000_000 * 10**18)
            if self.options.batching:
                self.batch_contract = str(deploy_batch_payout(wallet))
                for token in self.tokens:
                    approve(wallet, token, self.batch_contract, _MAX_ALLOWANCE)

    def _rewrite_networks_file(self, path: Path) -> None:
        lines = path.read_text("utf-8").splitlines()
        out: list[str] = []
        for original in lines:
            line = original
            if line.startswith("rpc_urls = "):
                line = f'rpc_urls = ["{self.sluice_rpc_url}"]'
            out.append(line)
            if line.startswith("hot_wallet_keystore = "):
                out.extend(f"{k} = {json.dumps(v)}" for k, v in self.options.network.items())
        if self.blocking_token:
            out.extend(
                [
                    "",
                    "[[networks.anvil.tokens]]",
                    'symbol = "BLOCK"',
                    f'address = "{self.blocking_token}"',
                    "decimals = 18",
                ]
            )
        if self.batch_contract:
            options = self.options
            out.extend(
                [
                    "",
                    "[networks.anvil.batching]",
                    f"max_size = {options.batch_max_size}",
                    f"window_s = {options.batch_window_s}",
                    f'contracts = {{ "{self.hot_wallet}" = "{self.batch_contract}" }}',
                ]
            )
        path.write_text("\n".join(out) + "\n", encoding="utf-8")

    def _spawn(
        self, name: str, args: list[str], kill_at: str | None
    ) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.logs / f"{name}-{uuid.uuid4().hex[:6]}.log"
        env = dict(self._env)
        if kill_at:
            env[KILL_AT_ENV] = kill_at
        with log.open("wb") as out:  # the child keeps its own copy
            process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [sys.executable, "-m", "sluice", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return process, log

    def _start_worker(self, worker: _Worker) -> None:
        worker.kill_at = worker.plan.pop(0) if worker.plan else None
        worker.lives += 1
        worker.process, worker.log = self._spawn(
            f"worker{worker.index}", ["worker"], worker.kill_at
        )

    async def _wait_healthy(self, timeout_s: float = 180) -> None:
        # 180 s: the API's start (beside two workers') took 15-18 s on 2 cores at load 7, and
        # 30-35 s at load 12; an API that exits fails at once, whatever the timeout.
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while True:
            try:
                response = await self._http.get(f"{self.api_url}/health")
                if response.status_code == 200:
                    self._waited(
                        "the API healthy", time.monotonic() - deadline + timeout_s, timeout_s
                    )
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            tail = "; ".join(_log_tail(self._api_log, 3)) or "(nothing)"
            if self.api is not None and self.api.poll() is not None:
                raise RuntimeError(
                    f"the API exited with {self.api.returncode} before it was healthy; "
                    f"its log ends: {tail}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"timed out after {timeout_s:.0f} s waiting for the API's GET /health to "
                    f"answer 200 (last: {last}); its log ends: {tail}; see {self.logs}"
                )
            await asyncio.sleep(0.1)

    # ── faults ────────────────────────────────────────────────────────────────────────────────

    def fault(self, kind: str, count: int = 1) -> None:
        """Record ``count`` injected faults of ``kind``, now."""
        self.faults[kind] = self.faults.get(kind, 0) + count
        self.last_fault_at = time.monotonic()

    def count(self, kind: str, count: int = 1) -> None:
        """Record something of note in the report's faults (a fault that could not be
        injected, a miner error...) without moving the time of the last fault."""
        self.faults[kind] = self.faults.get(kind, 0) + count

    def expect(self, withdrawal_id: str, error_code: str) -> None:
        """``withdrawal_id`` is meant to end FAILED with ``error_code`` (`verify` checks it; it
        is not counted as a withdrawal that did not complete)."""
        self.expected[withdrawal_id] = error_code

    async def block(self, address: str) -> str:
        """Put ``address`` on the blocking token's block list by a transaction of its owner,
        sent and not waited for (mining may be off), priced to go before the hot wallet's in
        its block (a 100 gwei tip); its hash."""
        owner = Account.from_key(_BLOCK_LIST_OWNER.private_key)
        nonce, latest = await rpc_batch(
            self._http,
            self.anvil.rpc_url,
            [
                ("eth_getTransactionCount", [owner.address, "pending"]),
                ("eth_getBlockByNumber", ["latest", False]),
            ],
        )
        base = int(latest.get("baseFeePerGas") or "0x0", 16)
        data = _SET_BLOCKED + bytes.fromhex(address.lower().removeprefix("0x").rjust(64, "0"))
        signed = owner.sign_transaction(
            {
                "chainId": self.anvil.chain_id,
                "nonce": int(nonce, 16),
                "to": self.blocking_token,
                "value": 0,
                "data": data + (1).to_bytes(32, "big"),
                "gas": 100_000,
                "maxFeePerGas": 2 * base + 100 * _GWEI,
                "maxPriorityFeePerGas": 100 * _GWEI,
            }
        )
        (sent,) = await rpc_batch(
            self._http,
            self.anvil.rpc_url,
            [("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])],
        )
        return str(sent)

    def kill_worker(self, index: int) -> None:
        """``kill -9`` a worker from outside; the supervisor starts it again."""
        process = self.workers[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)

    async def _supervise(self) -> None:
        while not self._stopping:
            for worker in self.workers:
                process = worker.process
                if process is None or process.poll() is None:
                    continue
                code = process.returncode
                tail = worker.log.read_text("utf-8", "replace")[-4000:] if worker.log else ""
                if worker.kill_at and "sluice fault injection: SIGKILL at" in tail:
                    point = tail.rsplit("SIGKILL at ", 1)[1].split(" ", 1)[0]
                    self.fault(f"kill:{point}")
                elif code == -signal.SIGKILL:
                    self.fault("kill:outside")
                else:
                    self.fault(f"worker exited {code}")
                self._start_worker(worker)
            await asyncio.sleep(0.1)

    # ── withdrawals ───────────────────────────────────────────────────────────────────────────

    async def submit(self, planned: Sequence[Planned] | None = None) -> None:
        """POST withdrawals (all planned ones by default), 16 at a time."""
        if self._submitted_at is None:
            self._submitted_at = time.monotonic()
        gate = asyncio.Semaphore(16)
        headers = {"Authorization": f"Bearer {self.api_key}"}

        async def one(item: Planned) -> None:
            body = {
                "id": item.id,
                "userId": item.user_id,
                "amount": str(Decimal(item.amount) / 10**18),
                "toAddress": item.to,
                "network": "anvil",
                "tokenAddress": item.token,
            }
            async with gate:
                started = time.monotonic()
                last = "no answer"
                for _ in range(100):  # the API answers 503 while its database is away
                    try:
                        response = await self._http.post(
                            f"{self.api_url}/v1/withdrawals", json=body, headers=headers
                        )
                    except httpx.TransportError as exc:
                        last = f"{type(exc).__name__}: {exc}"
                        await asyncio.sleep(0.2)
                        continue
                    if response.status_code in (200, 201, 202):
                        return
                    if response.status_code < 500:
                        raise AssertionError(
                            f"withdrawal {item.id} refused: HTTP {response.status_code} "
                            f"{response.text}"
                        )
                    last = f"HTTP {response.status_code} {response.text[:300]}"
                    await asyncio.sleep(0.2)
                raise AssertionError(
                    f"withdrawal {item.id} not accepted: 100 tries in "
                    f"{time.monotonic() - started:.0f} s, the last answer {last}; the API's log "
                    f"ends: {'; '.join(_log_tail(self._api_log, 3))}"
                )

        await asyncio.gather(*(one(item) for item in planned or self.planned))

    async def statuses(self) -> dict[str, str]:
        """Every planned withdrawal's status (read straight from the database)."""
        engine = create_async_engine(self.database_url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(text("SELECT id, status FROM withdrawals"))
                return {str(row[0]): str(row[1]) for row in rows}
        finally:
            await engine.dispose()

    async def counts(self) -> dict[str, int]:
        """How many withdrawals are in each status (an empty dict if the database is away)."""
        try:
            found = await self.statuses()
        except Exception:  # terminated sessions, a restarting database: try again later
            return {}
        counts: dict[str, int] = {}
        for status in found.values():
            counts[status] = counts.get(status, 0) + 1
        return counts

    async def wait_for(
        self, what: str, condition: Callable[[dict[str, int]], bool], timeout_s: float = 120
    ) -> dict[str, int]:
        """Wait until the withdrawals' status counts satisfy ``condition`` (described by
        ``what``); TimeoutError naming it, the wait and the state (`describe`).

        The time out is ``timeout_s``, unless the counts changed within the last ``timeout_s``
        (a loaded machine, still moving): then up to `GRACE` times ``timeout_s``.
        """
        start = changed = time.monotonic()
        previous: dict[str, int] | None = None
        while True:
            counts = await self.counts()
            now = time.monotonic()
            if condition(counts):
                self._waited(what, now - start, timeout_s)
                return counts
            if counts and counts != previous:
                previous, changed = counts, now
            if now - start > timeout_s and (
                now - changed > timeout_s or now - start > GRACE * timeout_s
            ):
                raise TimeoutError(
                    f"timed out after {now - start:.0f} s (timeout {timeout_s:.0f} s; the "
                    f"statuses last changed {now - changed:.0f} s ago) waiting for {what}; "
                    f"{await self.describe()}"
                )
            await asyncio.sleep(0.1)

    async def wait_final(self) -> float:
        """Wait until every withdrawal is final (or the timeout); the time it took since the
        last fault (or since now, without faults).

        The time out is `ChaosOptions.final_timeout_s`, unless a withdrawal became final within
        the last `STALL_S` (a loaded machine, slow but not stuck): then up to `GRACE` times it.
        On a timeout the state then (`describe`) goes into `timeouts`, and `verify` reports it
        first (the unfinished withdrawals count as lost there).
        """
        timeout_s = self.options.final_timeout_s
        start = progressed = time.monotonic()
        final = 0
        while True:
            counts = await self.counts()
            now = time.monotonic()
            done = sum(n for s, n in counts.items() if s in FINAL)
            if done == len(self.planned):
                break
            if done > final:
                final, progressed = done, now
            if now - start >= timeout_s and (
                now - progressed > STALL_S or now - start > GRACE * timeout_s
            ):
                message = (
                    f"timed out after {now - start:.0f} s (timeout {timeout_s:.0f} s; {done} "
                    f"final, none more in the last {now - progressed:.0f} s) waiting for all "
                    f"{len(self.planned)} withdrawals to be final ({', '.join(sorted(FINAL))}); "
                    f"{await self.describe()}"
                )
                self.timeouts.append(message)
                print(message)
                break
            await asyncio.sleep(0.25)
        self._final_at = end = time.monotonic()
        self._waited("every withdrawal final", end - start, timeout_s)
        return end - (self.last_fault_at or start)

    def _waited(self, what: str, took_s: float, timeout_s: float) -> None:
        # Numbers (rounds, waves) in the description make one wait per round: keep them apart
        # in the message, together here.
        key = "".join("#" if c.isdigit() else c for c in what)
        if took_s >= self.waited.get(key, (0.0, 0.0))[0]:
            self.waited[key] = (took_s, timeout_s)

    def margins(self) -> str:
        """Each kind of wait's longest time against its timeout: how close a run came."""
        return "; ".join(
            f"{what}: {took:.1f} s of {timeout:.0f} s"
            + (" (past the timeout, still moving)" if took > timeout else "")
            for what, (took, timeout) in sorted(self.waited.items())
        )

    # ── diagnosis ─────────────────────────────────────────────────────────────────────────────

    async def describe(self, limit: int = _SHOWN) -> str:
        """The run's state now, for a failure message (each part says so if it cannot be read):
        counts per status, the ``limit`` longest-untouched unfinished withdrawals with their
        transaction and last events, the chain, the workers and the faults so far."""
        since = (
            f"{time.monotonic() - self._submitted_at:.1f} s after the first submission"
            if self._submitted_at is not None
            else "before any submission"
        )
        parts = [f"state {since}:"]
        try:
            parts.extend(await self._describe_withdrawals(limit))
        except Exception as exc:  # the database may be away (scenario 5): say so, go on
            parts.append(f"withdrawals: unreadable ({type(exc).__name__}: {exc})")
        parts.append(await self._describe_chain())
        for worker in self.workers:
            process = worker.process
            alive = "running" if process is not None and process.poll() is None else "exited"
            code = "" if process is None or process.poll() is None else f" {process.returncode}"
            tail = " | ".join(_log_tail(worker.log))
            parts.append(
                f"worker{worker.index}: {alive}{code}, life {worker.lives}, kill point "
                f"{worker.kill_at or 'none'}; log ({worker.log}) ends: {tail or '(empty)'}"
            )
        if self.api is not None and self.api.poll() is not None:
            parts.append(f"the API exited with {self.api.returncode}")
        faults = ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items()))
        parts.append(f"faults so far: {faults or 'none'}")
        return "\n  ".join(parts)

    async def _describe_withdrawals(self, limit: int) -> list[str]:
        engine = create_async_engine(self.database_url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                rows = (
                    await connection.execute(
                        text(
                            "SELECT id, status FROM withdrawals WHERE status NOT IN "
                            "('COMPLETED', 'FAILED', 'CANCELLED') ORDER BY updated_at, seq"
                        )
                    )
                ).all()
                counts = await connection.execute(
                    text("SELECT status, count(*) FROM withdrawals GROUP BY status")
                )
                by_status = {str(row[0]): int(row[1]) for row in counts}
        finally:
            await engine.dispose()
        known = sum(by_status.values())
        lines = [
            f"statuses: {dict(sorted(by_status.items()))} ({known} of {len(self.planned)} "
            f"planned in the database)"
        ]
        stuck = [str(row[0]) for row in rows]
        if stuck:
            lines.append(f"{len(stuck)} not final; the {min(limit, len(stuck))} longest untouched:")
            lines.extend(await self.history(stuck[:limit]))
        return lines

    async def history(self, ids: Sequence[str], events: int = 3) -> list[str]:
        """A line per withdrawal: its status, transaction (nonce, status, block, attempts) and
        last ``events`` events (each at, from → to, reason)."""
        if not ids:
            return []
        expanding: Any = bindparam("ids", expanding=True)
        engine = create_async_engine(self.database_url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                withdrawals = (
                    await connection.execute(
                        text(
                            "SELECT id, status, updated_at, waiting_reason, transaction_id, "
                            "transaction_hash, block_number FROM withdrawals WHERE id IN :ids"
                        ).bindparams(expanding),
                        {"ids": list(ids)},
                    )
                ).all()
                tx_ids = sorted({str(row[4]) for row in withdrawals if row[4] is not None})
                transactions: dict[str, str] = {}
                if tx_ids:
                    for row in await connection.execute(
                        text(
                            "SELECT t.id, t.nonce, t.status, t.block_number, "
                            "(SELECT count(*) FROM transaction_attempts a "
                            "WHERE a.transaction_id = t.id), "
                            "(SELECT count(*) FROM withdrawals w WHERE w.transaction_id = t.id) "
                            "FROM chain_transactions t WHERE t.id IN :ids"
                        ).bindparams(expanding),
                        {"ids": tx_ids},
                    ):
                        carries = f", a batch of {row[5]}" if row[5] > 1 else ""
                        transactions[str(row[0])] = (
                            f"nonce {row[1]} {row[2]} block {row[3]}, {row[4]} attempts{carries}"
                        )
                history: dict[str, list[str]] = {}
                for row in await connection.execute(
                    text(
                        "SELECT withdrawal_id, at, from_status, to_status, reason "
                        "FROM withdrawal_events WHERE withdrawal_id IN :ids ORDER BY id"
                    ).bindparams(expanding),
                    {"ids": list(ids)},
                ):
                    at = row[1].strftime("%H:%M:%S.%f")[:-3] if row[1] is not None else "?"
                    history.setdefault(str(row[0]), []).append(f"{at} {row[2]}→{row[3]}: {row[4]}")
        finally:
            await engine.dispose()
        found = {str(row[0]): row for row in withdrawals}
        lines: list[str] = []
        for withdrawal_id in ids:
            if withdrawal_id not in found:
                lines.append(f"  {withdrawal_id}: not in the database")
                continue
            row = found[withdrawal_id]
            updated = row[2].strftime("%H:%M:%S") if row[2] is not None else "?"
            transaction = (
                f"tx {_short(row[4])} ({transactions.get(str(row[4]), 'not found')}), "
                f"hash {_short(row[5], 14)}, block {row[6]}"
                if row[4] is not None
                else "no transaction"
            )
            waiting = f", waiting: {row[3]}" if row[3] else ""
            last = " | ".join(history.get(withdrawal_id, [])[-events:]) or "no events"
            lines.append(
                f"  {withdrawal_id} {row[1]} (updated {updated}{waiting}), {transaction}; "
                f"last events: {last}"
            )
        return lines

    async def _describe_chain(self) -> str:
        try:
            head_hex, mined, pending, pool = await rpc_batch(
                self._http,
                self.anvil.rpc_url,
                [
                    ("eth_blockNumber", []),
                    ("eth_getTransactionCount", [self.hot_wallet, "latest"]),
                    ("eth_getTransactionCount", [self.hot_wallet, "pending"]),
                    ("txpool_status", []),
                ],
            )
        except Exception as exc:  # the node may be what broke: say so
            return f"chain: unreadable ({type(exc).__name__}: {exc})"
        head, now = int(head_hex, 16), time.monotonic()
        # Whether the chain moves: blocks since the previous look (block timestamps would not
        # tell; Anvil's run ahead of, or behind, the clock).
        moved = (
            f", {head - self._looked[1]} blocks in the last {now - self._looked[0]:.1f} s"
            if self._looked is not None
            else ""
        )
        self._looked = (now, head)
        return (
            f"chain: head {head}{moved} (the run started at {self._start_block}), hot wallet "
            f"nonce {int(mined, 16)} mined / {int(pending, 16)} pending, pool "
            f"{int(pool['pending'], 16)} pending + {int(pool['queued'], 16)} queued"
        )

    # ── checks ────────────────────────────────────────────────────────────────────────────────

    async def verify(self, scenario: str, recover_s: float) -> ChaosReport:
        """Check every invariant from the chain, the API and the database."""
        report = ChaosReport(
            scenario=scenario,
            withdrawals=len(self.planned),
            recover_s=round(recover_s, 1),
            run_s=round((self._final_at or 0.0) - (self._submitted_at or 0.0), 1),
            faults=dict(self.faults),
        )
        report.details.extend(self.timeouts)
        statuses = await self.statuses()
        for status in statuses.values():
            report.statuses[status] = report.statuses.get(status, 0) + 1
        report.completed = report.statuses.get("COMPLETED", 0)
        offenders: dict[str, list[str]] = {}
        await self._check_expected(report, statuses, offenders)
        completed = await self._check_recipients(report, statuses, offenders)
        await self._check_ledgers(report, statuses, completed)
        await self._check_outflow(report, statuses, completed)
        for invariant, ids in offenders.items():
            try:
                histories = await self.history(ids[:_SHOWN])
            except Exception as exc:  # the report stands without the histories
                histories = [f"  unreadable ({type(exc).__name__}: {exc})"]
            more = f" ({len(ids) - _SHOWN} more not shown)" if len(ids) > _SHOWN else ""
            report.details.append(f"{invariant}, the withdrawals' histories{more}:")
            report.details.extend(histories)
        return report

    async def _check_expected(
        self, report: ChaosReport, statuses: dict[str, str], offenders: dict[str, list[str]]
    ) -> None:
        """The withdrawals meant to fail (`expect`) FAILED with their error code."""
        if not self.expected:
            return
        expanding: Any = bindparam("ids", expanding=True)
        engine = create_async_engine(self.database_url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text("SELECT id, error_code FROM withdrawals WHERE id IN :ids").bindparams(
                        expanding
                    ),
                    {"ids": list(self.expected)},
                )
                codes = {str(row[0]): row[1] for row in rows}
        finally:
            await engine.dispose()
        for withdrawal_id, code in sorted(self.expected.items()):
            status = statuses.get(withdrawal_id, "MISSING")
            if status == "FAILED" and codes.get(withdrawal_id) == code:
                report.expected_failed += 1
                continue
            report.details.append(
                f"meant to fail: {withdrawal_id} is {status} ({codes.get(withdrawal_id)}), not "
                f"FAILED {code}"
            )
            offenders.setdefault("meant to fail", []).append(withdrawal_id)

    async def _check_recipients(
        self, report: ChaosReport, statuses: dict[str, str], offenders: dict[str, list[str]]
    ) -> dict[tuple[str, str | None], int]:
        """Lost, paid twice, wrong payments, from what each recipient received (what it holds
        less what it held before); the completed sum per (user, asset key)."""
        rpc = self.anvil.rpc_url
        calls = [
            _balance_of_call(p.token, p.to) if p.token else ("eth_getBalance", [p.to, "latest"])
            for p in self.planned
        ]
        held = [int(value, 16) for value in await rpc_batch(self._http, rpc, calls)]
        completed: dict[tuple[str, str | None], int] = {}
        lines: dict[str, list[str]] = {}
        for item, holds in zip(self.planned, held, strict=True):
            got = holds - item.before
            status = statuses.get(item.id, "MISSING")
            if status == "COMPLETED":
                key = (item.user_id, _key(item.token))
                completed[key] = completed.get(key, 0) + item.amount
            if status not in FINAL or (status == "COMPLETED" and got == 0):
                report.lost += 1
                invariant, line = "lost", f"lost: {item.id} is {status}, recipient received {got}"
            elif got > item.amount:
                report.duplicated += 1
                invariant, line = "paid twice", f"paid twice: {item.id} ({got} for {item.amount})"
            elif got not in (0, item.amount) or (got and status != "COMPLETED"):
                report.ledger_mismatches += 1
                invariant, line = (
                    "wrong payment",
                    f"wrong payment: {item.id} is {status}, received {got}",
                )
            else:
                continue
            offenders.setdefault(invariant, []).append(item.id)
            lines.setdefault(invariant, []).append(line)
        for invariant, found in lines.items():
            # A line each for the first ones; the rest by id only (300 lost are one line more).
            report.details.extend(found[: 2 * _SHOWN])
            if len(found) > 2 * _SHOWN:
                rest = offenders[invariant][2 * _SHOWN :]
                report.details.append(f"{invariant}, {len(rest)} more: {', '.join(rest)}")
        return completed

    async def _check_ledgers(
        self,
        report: ChaosReport,
        statuses: dict[str, str],
        completed: dict[tuple[str, str | None], int],
    ) -> None:
        """Every user's balances as the API shows them: nothing held, credits - completed."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        assets: list[str | None] = [None, *(token.lower() for token in self.tokens)]
        for user in sorted({p.user_id for p in self.planned}):
            response = await self._http.get(
                f"{self.api_url}/v1/users/{user}/balances", headers=headers
            )
            response.raise_for_status()
            shown = {_key(row.get("tokenAddress")): row for row in response.json()}
            for asset in assets:
                want = self.credits.get((user, asset), 0) - completed.get((user, asset), 0)
                row = shown.get(asset)
                ledger = (
                    (int(Decimal(row["available"]) * 10**18), int(Decimal(row["held"]) * 10**18))
                    if row is not None
                    else (0, 0)  # no row: never credited
                )
                if ledger != (want, 0):
                    report.ledger_mismatches += 1
                    unsettled = [
                        f"{p.id} {statuses.get(p.id, 'MISSING')}"
                        for p in self.planned
                        if p.user_id == user
                        and _key(p.token) == asset
                        and statuses.get(p.id) != "COMPLETED"
                    ]
                    report.details.append(
                        f"ledger: {user} {asset or 'native'} shows (available, held) {ledger}, "
                        f"expected ({want}, 0); its withdrawals not COMPLETED: "
                        f"{_listed(unsettled)}"
                    )

    async def _check_outflow(
        self,
        report: ChaosReport,
        statuses: dict[str, str],
        completed: dict[tuple[str, str | None], int],
    ) -> None:
        """The hot wallet's balances fell by the completed sums (and the gas); the transaction
        counts of the report."""
        self.onchain = onchain = await self._hot_wallet_outflow()
        report.transactions = onchain.transactions
        report.batches = len(onchain.batches)
        report.largest_batch = max(
            (len(call.payments) for call, _ in onchain.batches.values()), default=0
        )
        report.reverted_batches = sum(1 for _, ok in onchain.batches.values() if not ok)
        for token in self.tokens:
            key = token.lower()
            paid = sum(v for (_, asset), v in completed.items() if asset == key)
            out = onchain.token_out.get(key, 0)
            if out != paid:
                report.outflow_mismatches += 1
                report.details.append(f"token {token} outflow {out} != completed {paid}")
        paid_native = sum(v for (_, asset), v in completed.items() if asset is None)
        if onchain.native_out - onchain.gas != paid_native:
            report.outflow_mismatches += 1
            report.details.append(
                f"native outflow {onchain.native_out} - gas {onchain.gas} != completed "
                f"{paid_native}"
            )
        if report.outflow_mismatches:
            report.details.extend(self._payment_offenders(statuses, onchain.payments))

    def _payment_offenders(
        self, statuses: dict[str, str], payments: dict[str, list[tuple[str, int]]]
    ) -> list[str]:
        """Which withdrawals the hot wallet's successful transfers on the chain do not match:
        paid by more than one transaction, COMPLETED and paid by none, paid and not COMPLETED,
        paid another amount; and transfers to no planned recipient."""
        lines: list[str] = []
        planned = {p.to.lower(): p for p in self.planned}
        for item in self.planned:
            paid = payments.get(item.to.lower(), [])
            status = statuses.get(item.id, "MISSING")
            amounts = [amount for _, amount in paid]
            if (
                len(paid) > 1
                or (status == "COMPLETED") != bool(paid)
                or set(amounts) - {item.amount}
            ):
                hashes = ", ".join(f"{h} ({amount})" for h, amount in paid) or "none"
                lines.append(
                    f"outflow: {item.id} is {status}, {item.amount} planned; paid on the chain "
                    f"by: {hashes}"
                )
        for to, paid in sorted(payments.items()):
            if to not in planned and to != self.hot_wallet.lower():
                lines.append(f"outflow: transfers to {to}, no planned recipient: {paid}")
        return lines or ["outflow: every withdrawal was paid once by the chain's transfers"]

    async def _hot_wallet_outflow(self) -> _OnChain:
        """The hot wallet's balance falls since the run started, and what its transactions of
        the run did: the gas of each (its receipt's), and the payments of those that succeeded
        (a transfer, a token's ``transfer``, or each payment of a batch call)."""
        rpc = self.anvil.rpc_url
        tokens = self.tokens
        head_hex, native, *token_balances = await rpc_batch(
            self._http,
            rpc,
            [
                ("eth_blockNumber", []),
                ("eth_getBalance", [self.hot_wallet, "latest"]),
                *(_balance_of_call(token, self.hot_wallet) for token in tokens),
            ],
        )
        head = int(head_hex, 16)
        blocks = await rpc_batch(
            self._http,
            rpc,
            [
                ("eth_getBlockByNumber", [hex(n), True])
                for n in range(self._start_block + 1, head + 1)
            ],
        )
        wallet = self.hot_wallet.lower()
        sent = {
            tx["hash"]: tx
            for block in blocks
            for tx in block["transactions"]
            if str(tx["from"]).lower() == wallet
        }
        receipts = await rpc_batch(
            self._http, rpc, [("eth_getTransactionReceipt", [h]) for h in sent]
        )
        onchain = _OnChain(
            native_out=self._start_native - int(native, 16),
            token_out={
                token.lower(): self._start_tokens[token.lower()] - int(value, 16)
                for token, value in zip(tokens, token_balances, strict=True)
            },
            gas=sum(int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16) for r in receipts),
            transactions=len(sent),
        )
        token_set = {token.lower() for token in tokens}
        batch_contract = self.batch_contract.lower()
        for receipt in receipts:
            tx = sent[receipt["transactionHash"]]
            succeeded = int(receipt["status"], 16) == 1
            if tx.get("to") is None:
                continue
            to = str(tx["to"]).lower()
            data = str(tx.get("input") or tx.get("data") or "0x")
            paid: list[tuple[str, int]] = []
            call = read_batch_call(data) if batch_contract and to == batch_contract else None
            if call is not None:
                onchain.batches[tx["hash"]] = (call, succeeded)
                paid = list(call.payments)
            elif to in token_set and data.startswith(_TRANSFER) and len(data) >= 138:
                paid = [("0x" + data[34:74], int(data[74:138], 16))]
            elif int(tx["value"], 16) or to != wallet:
                paid = [(to, int(tx["value"], 16))]
            if succeeded:
                for recipient, amount in paid:
                    onchain.payments.setdefault(recipient, []).append((tx["hash"], amount))
        return onchain

    # ── tear-down ─────────────────────────────────────────────────────────────────────────────

    async def stop(self) -> list[int | None]:
        """SIGTERM every process (SIGKILL after 30 s); their exit codes."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        processes = [w.process for w in self.workers if w.process is not None]
        if self.api is not None:
            processes.append(self.api)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for process in processes:
            try:
                codes.append(await asyncio.to_thread(process.wait, 30))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(None)
        await self._http.aclose()
        return codes


def _listed(items: Sequence[str], limit: int = _SHOWN) -> str:
    """``items`` joined, the first ``limit`` of them (and how many more)."""
    if not items:
        return "none"
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def write_report(report: ChaosReport) -> None:
    """Append the report as a JSON line to ``$SLUICE_CHAOS_REPORT``, if set."""
    path = os.environ.get("SLUICE_CHAOS_REPORT")
    if path:
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(report)) + "\n")
