"""The fault-injection suite: withdrawals through real processes while things go wrong.

Each scenario runs `ChaosRun` (see `sluice.testing.chaos`): a private Anvil, a fresh PostgreSQL
database, a Redis Streams queue, one ``sluice serve --no-workers`` and two ``sluice worker``
processes, a few hundred withdrawals (native and token, several users) with `make chaos`
(``SLUICE_CHAOS=1``; ``SLUICE_CHAOS_WITHDRAWALS`` sets the number, default 300), a short form
(``SHORT``) of scenarios 1 (without and with batching), 3 and 4 in `make test`. At the end the
chain itself must show: no withdrawal lost, none paid twice, every user's ledger equal to
credits minus completed withdrawals, and the hot wallet's outflow equal to the completed sum
plus its gas.

Scenarios 1, 3 and 4 run again with batch payouts on (``batched``: `ChaosOptions.batching`, a
``BatchPayout`` of the hot wallet, batches of up to ``BATCH_SIZE``), and scenario 7 needs them.

1. kill -9 of a worker at each boundary (`sluice.faults` kill points);
2. RPC faults through `RpcFaultProxy`: dropped send answers, timeouts, errors, a lagging node;
3. mining off and base-fee spikes: stuck transactions are replaced (or re-sent) and mined;
4. re-orgs of depth 1 to 5 while withdrawals are CONFIRMING, and pooled transactions dropped;
5. PostgreSQL sessions terminated again and again; the queue's Redis restarted;
6. outside transactions taking the hot wallet's nonces;
7. a recipient that starts refusing its token (blocked) while its batch is pooled: the batch
   reverts on the chain, its withdrawals are paid again each on its own, the blocked one fails.

``SLUICE_CHAOS_REPORT=<file>`` appends each report as a JSON line (the docs' table).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from sqlalchemy.engine import make_url

from sluice.devnet.anvil import AnvilProcess
from sluice.faults import KILL_POINTS
from sluice.testing.anvil_control import AnvilControl, AnvilRpcError
from sluice.testing.chaos import (
    BatchCall,
    ChaosOptions,
    ChaosReport,
    ChaosRun,
    read_batch_call,
    terminate_backends,
    write_report,
)
from sluice.testing.databases import postgres_server_url
from sluice.testing.redis_server import RedisServer, redis_server_binary
from sluice.testing.rpc_proxy import RpcFaultProxy

FULL = os.environ.get("SLUICE_CHAOS") == "1"
SHORT = 24
N = int(os.environ.get("SLUICE_CHAOS_WITHDRAWALS", "300")) if FULL else SHORT
GWEI = 10**9
BATCH_SIZE = 50 if N > SHORT else 4
"""The batch size of the batched scenarios: several batches of 50 in a full run (the short one
has a few of 4)."""

pytestmark = [pytest.mark.chaos, pytest.mark.anvil]

#: A scenario without and with batch payouts; the batched form only in `make chaos`.
BATCHING = [
    pytest.param(False, id="single"),
    pytest.param(True, id="batched", marks=pytest.mark.chaos_full),
]


def batch_options(batching: bool) -> dict[str, Any]:
    """`ChaosOptions` keywords for batch payouts on (or nothing)."""
    return {"batching": True, "batch_max_size": BATCH_SIZE} if batching else {}


def named(scenario: str, batching: bool) -> str:
    return f"{scenario}, batched" if batching else scenario


@asynccontextmanager
async def running(
    chain: AnvilProcess,
    tmp_path: Path,
    database_url: str,
    queue_url: str,
    options: ChaosOptions,
    *,
    rpc_url: str | None = None,
) -> AsyncIterator[ChaosRun]:
    run = ChaosRun(
        chain,
        tmp_path,
        database_url=database_url,
        queue_url=queue_url,
        options=options,
        rpc_url=rpc_url,
    )
    try:
        await run.start()
        yield run
    finally:
        codes = await run.stop()
        print(f"exit codes {codes}; logs in {run.logs}")


async def finish(run: ChaosRun, scenario: str) -> ChaosReport:
    """Wait until every withdrawal is final, check everything, and record the report."""
    recover_s = await run.wait_final()
    report = await run.verify(scenario, recover_s)
    write_report(report)
    print(report.line())
    print(f"longest waits: {run.margins()}")
    return report


async def until(
    run: ChaosRun,
    what: str,
    condition: Callable[[dict[str, int]], bool],
    timeout_s: float = 120,
) -> None:
    """Wait until the withdrawals' status counts satisfy ``condition`` (``what``, for the
    TimeoutError that names it, the wait and the run's state: `ChaosRun.wait_for`)."""
    await run.wait_for(what, condition, timeout_s)


def final_count(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in ("COMPLETED", "FAILED", "CANCELLED"))


class Miner:
    """Mines a block every ``interval_s`` (automine off); `lock` keeps faults between blocks.

    A failed ``evm_mine`` does not stop it (the chain would stand still and every wait time
    out far from the cause): it is printed, counted in the run's report, and tried again.
    """

    def __init__(self, control: AnvilControl, interval_s: float, run: ChaosRun) -> None:
        self.control = control
        self.interval_s = interval_s
        self.run = run
        self.lock = asyncio.Lock()
        self.paused = False
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if self.paused:
                continue
            async with self.lock:
                try:
                    await self.control.mine(1)
                except (AnvilRpcError, httpx.HTTPError) as exc:
                    print(f"miner: evm_mine failed ({type(exc).__name__}: {exc}); again")
                    self.run.count(f"miner error: {type(exc).__name__}")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="chaos-miner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def check(report: ChaosReport) -> None:
    """Every invariant held; a failure names the invariants broken and the withdrawals at fault
    (`ChaosReport.failure`: the summary line, then every problem with their histories)."""
    assert (report.lost, report.duplicated, report.ledger_mismatches) == (0, 0, 0), (
        "lost / paid twice / ledger mismatch: " + report.failure()
    )
    assert report.outflow_mismatches == 0, "outflow mismatch: " + report.failure()
    assert report.problems() == [], "not every withdrawal COMPLETED: " + report.failure()


def check_batched(report: ChaosReport) -> None:
    """Batches paid the withdrawals: fewer transactions than withdrawals, a batch mined."""
    assert report.largest_batch > 1, f"no batch was mined; {report.line()}"
    assert report.transactions < report.withdrawals, f"hardly batched; {report.line()}"


# ── 1. kill -9 at each boundary ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "batching", [pytest.param(False, id="single"), pytest.param(True, id="batched")]
)
async def test_kill_9_at_each_boundary(
    chain: AnvilProcess, tmp_path: Path, postgres_url: str, redis_queue_url: str, batching: bool
) -> None:
    # Every boundary is reached once per transaction (a batch is one), so with batches each
    # kill point fires the first time it is reached. The short form pays twice as many
    # withdrawals when batching: 24 made only 8 transactions, and a worker whose last kill
    # point is the settlement could find every transaction settled by the other (seen once).
    size = 2 * N if batching and N <= SHORT else N
    nth = 1 if batching else 2 if size <= SHORT else 5
    # Each worker dies at three different boundaries (twice over in the full run): all six
    # between them. A killed worker starts again with its next kill point, then with none.
    cycles = 1 if size <= SHORT else 2
    plans = [
        [f"{point}:{nth}" for point in KILL_POINTS[0::2]] * cycles,
        [f"{point}:{nth}" for point in KILL_POINTS[1::2]] * cycles,
    ]
    options = ChaosOptions(
        withdrawals=size, kill_plans=plans, final_timeout_s=60 + size, **batch_options(batching)
    )
    async with running(chain, tmp_path, postgres_url, redis_queue_url, options) as run:
        await run.submit()
        report = await finish(run, named("1. kill -9 at each boundary", batching))
    check(report)
    if batching:
        check_batched(report)
    killed = {kind.removeprefix("kill:") for kind in report.faults if kind.startswith("kill:")}
    assert killed == set(KILL_POINTS), (
        f"kill points not reached: {sorted(set(KILL_POINTS) - killed)}; {report.line()}"
    )


# ── 2. RPC faults through a proxy ─────────────────────────────────────────────────────────────


@pytest.mark.chaos_full
async def test_rpc_faults(
    chain: AnvilProcess, tmp_path: Path, postgres_url: str, redis_queue_url: str
) -> None:
    async with RpcFaultProxy(chain.rpc_url, seed=4) as proxy:
        options = ChaosOptions(withdrawals=N, final_timeout_s=120 + N)
        async with running(
            chain, tmp_path, postgres_url, redis_queue_url, options, rpc_url=proxy.url
        ) as run:
            submit = asyncio.create_task(run.submit())
            await until(
                run,
                "8 withdrawals BROADCASTING or final (the first sends, before the faults)",
                lambda c: c.get("BROADCASTING", 0) + final_count(c) >= 8,
            )
            phases: list[tuple[str, Callable[[], Any]]] = [
                (
                    "dropped send answers",
                    lambda: proxy.drop_response("eth_sendRawTransaction", probability=0.5),
                ),
                (
                    "timeouts",
                    lambda: (
                        proxy.timeout("eth_sendRawTransaction", 12, count=3),
                        proxy.timeout("eth_getTransactionReceipt", 12, count=3),
                        proxy.timeout("eth_blockNumber", 12, forward=False, count=2),
                    ),
                ),
                (
                    "errors",
                    lambda: (
                        proxy.error(code=-32603, message="internal error", probability=0.1),
                        proxy.error(http_status=502, probability=0.05),
                        proxy.error(
                            "eth_sendRawTransaction", code=-32000, message="busy", probability=0.3
                        ),
                    ),
                ),
                ("lagging node", lambda: proxy.lag(3)),
                ("node down", lambda: proxy.fail_all(503)),
            ]
            for name, start in phases:
                start()
                await asyncio.sleep(3 if name == "node down" else 6)
                proxy.heal()
                run.fault(name)
            await submit
            for (kind, _method), count in proxy.injected_by_method.items():
                run.faults[f"rpc {kind}"] = run.faults.get(f"rpc {kind}", 0) + count
            report = await finish(run, "2. RPC faults (proxy)")
    check(report)


# ── 3. mining off, base-fee spikes ────────────────────────────────────────────────────────────


@pytest.mark.parametrize("batching", BATCHING)
async def test_mining_off_and_base_fee_spike(
    chain: AnvilProcess, tmp_path: Path, postgres_url: str, redis_queue_url: str, batching: bool
) -> None:
    options = ChaosOptions(
        withdrawals=N,
        network={"stuck_after_s": 2.0, "fee_bump_percent": 25, "max_fee_gwei": 5000},
        final_timeout_s=90 + N,
        **batch_options(batching),
    )
    async with (
        running(chain, tmp_path, postgres_url, redis_queue_url, options) as run,
        AnvilControl(chain.rpc_url) as control,
    ):
        await control.set_automine(False)
        run.fault("mining off")
        miner = Miner(control, 1.0, run)
        rounds = 2 if N <= SHORT else 4
        waves = [run.planned[i::rounds] for i in range(rounds)]
        submits: list[asyncio.Task[None]] = []
        try:
            for spike, wave in enumerate(waves):
                submits.append(asyncio.create_task(run.submit(wave)))
                # Nothing is mined: transactions wait in the pool, go stuck, are replaced.
                await until(
                    run,
                    f"a withdrawal BROADCASTING (wave {spike + 1} of {rounds}, mining off)",
                    lambda c: c.get("BROADCASTING", 0) > 0,
                    timeout_s=60,
                )
                await asyncio.sleep(3.0)
                # A base fee far above every pooled fee cap: the next block evicts them all.
                pooled = await control.pending_transactions()
                await control.set_next_block_base_fee((60 + 40 * spike) * GWEI)
                await control.mine(1)
                run.fault("base-fee spike")
                run.fault("pooled at spike", len(pooled))
                left = await control.pending_transactions()
                run.fault("evicted", len(pooled) - len(left))
                # Blocks again, one a second, while the base fee comes down.
                miner.start()
                await asyncio.sleep(4.0)
                await miner.stop()
                if spike + 1 < rounds:
                    run.fault("mining off")
            miner.interval_s = 0.5
            miner.start()
            await asyncio.gather(*submits)
            report = await finish(run, named("3. mining off, base-fee spikes", batching))
        finally:
            await miner.stop()
    replaced = await _history_count(run, "replaced by attempt", batched=batching)
    print(f"replacements in withdrawals' histories: {replaced}")
    check(report)
    what = "batch" if batching else "transaction"
    assert replaced > 0, f"no stuck {what} was replaced; {report.line()}"
    if batching:
        check_batched(report)


# ── 4. re-orgs and dropped transactions ───────────────────────────────────────────────────────


@pytest.mark.parametrize("batching", BATCHING)
async def test_reorgs_and_dropped_transactions(
    chain: AnvilProcess, tmp_path: Path, postgres_url: str, redis_queue_url: str, batching: bool
) -> None:
    options = ChaosOptions(
        withdrawals=N,
        confirmations=8,
        network={"stuck_after_s": 5.0},
        final_timeout_s=120 + N,
        **batch_options(batching),
    )
    async with (
        running(chain, tmp_path, postgres_url, redis_queue_url, options) as run,
        AnvilControl(chain.rpc_url) as control,
    ):
        await control.set_automine(False)
        miner = Miner(control, 0.4, run)
        miner.start()
        depths = [1, 2, 3, 4, 5] * (1 if N <= SHORT else 4)
        # Batches pay everything in a few dozen transactions: the withdrawals come in a wave
        # before every second re-org, so that some are CONFIRMING at each.
        waves = [run.planned[i :: len(depths) // 2] for i in range(len(depths) // 2)]
        if not batching:
            waves = [run.planned]
        every = len(depths) // len(waves)
        submits: list[asyncio.Task[None]] = []
        try:
            for n, depth in enumerate(depths):
                if n % every == 0 and n // every < len(waves):
                    submits.append(asyncio.create_task(run.submit(waves[n // every])))
                await until(
                    run,
                    f"a withdrawal CONFIRMING (before re-org {n + 1} of {len(depths)}, depth "
                    f"{depth})",
                    lambda c: c.get("CONFIRMING", 0) > 0,
                    timeout_s=60,
                )
                await asyncio.sleep(1.0)
                async with miner.lock:
                    confirming = (await run.counts()).get("CONFIRMING", 0)
                    await control.reorg(depth)
                    run.fault(f"re-org depth {depth}")
                    run.fault("CONFIRMING withdrawals at re-orgs", confirming)
                if n % 2 == 1:
                    await drop_one(run, control, miner)
            await asyncio.gather(*submits)
            report = await finish(run, named("4. re-orgs depth 1-5, dropped txs", batching))
        finally:
            await miner.stop()
    reorged = await _history_count(run, "re-org", batched=batching)
    print(f"re-orgs in withdrawals' histories: {reorged}")
    check(report)
    what = "batched withdrawal's" if batching else "withdrawal's"
    assert reorged > 0, f"no {what} history shows a re-org; {report.line()}"
    if batching:
        check_batched(report)
        assert report.faults.get("batch dropped from the pool", 0) > 0, (
            f"no pooled batch was dropped; {report.line()}"
        )


async def drop_one(run: ChaosRun, control: AnvilControl, miner: Miner) -> None:
    """Hold mining until a hot wallet transaction is pooled, and drop it from the pool (with
    batching, a batch if one is pooled within 2.5 s)."""
    miner.paused = True
    try:
        wallet = run.hot_wallet.lower()
        start = time.monotonic()
        while time.monotonic() < start + 5:
            pooled = [p for p in await control.pending_transactions() if p.sender == wallet]
            batches = [p for p in pooled if pooled_batch(run, p.raw) is not None]
            if run.batch_contract and not batches and time.monotonic() < start + 2.5:
                await asyncio.sleep(0.1)
                continue
            if pooled:
                # The lowest nonce (its later nonces go with it), a batch's if there is one.
                dropped = min(batches or pooled, key=lambda p: p.nonce)
                if await control.drop_transaction(dropped.hash):
                    run.fault("dropped from the pool")
                    if batches:
                        run.fault("batch dropped from the pool")
                    return
            await asyncio.sleep(0.1)
        # Nothing of the hot wallet's pooled in 5 s: this drop is skipped (the scenario's other
        # drops and its re-orgs stand); the report counts it, and the state then is printed.
        run.count("drop skipped: no hot wallet transaction pooled within 5 s")
        print(f"drop skipped: no hot wallet transaction pooled within 5 s; {await run.describe(3)}")
    finally:
        miner.paused = False


# ── 5. the database and the queue restarted ───────────────────────────────────────────────────


@pytest.mark.chaos_full
async def test_postgres_sessions_terminated(
    chain: AnvilProcess, tmp_path: Path, postgres_url: str, redis_queue_url: str
) -> None:
    database = make_url(postgres_url).database
    assert database is not None
    options = ChaosOptions(withdrawals=N, final_timeout_s=120 + N)
    async with running(chain, tmp_path, postgres_url, redis_queue_url, options) as run:
        submit = asyncio.create_task(run.submit())
        for _ in range(8):
            await asyncio.sleep(2.0)
            ended = await terminate_backends(postgres_server_url(), database)
            run.fault("PostgreSQL sessions terminated", ended)
            run.fault("termination rounds")
        await submit
        report = await finish(run, "5a. PostgreSQL sessions terminated")
    check(report)


@pytest.mark.chaos_full
@pytest.mark.parametrize(
    "keeps_data",
    [
        pytest.param(True, id="data-kept"),
        pytest.param(False, id="data-lost"),
    ],
)
async def test_queue_backend_restarted(
    chain: AnvilProcess, tmp_path: Path, postgres_url: str, keeps_data: bool
) -> None:
    """Redis stopped and started twice: saved to disk on shutdown and loaded again (a planned
    restart, or one with persistence), or with nothing kept (a restart without persistence)."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed")
    import redis  # noqa: PLC0415 - only this test needs the sync client

    workdir = tmp_path / "redis"
    workdir.mkdir()
    with RedisServer(workdir) as redis_server:
        queue_url = f"{redis_server.url}?namespace=chaos&visibility_timeout_s=5"
        options = ChaosOptions(withdrawals=N, final_timeout_s=60 + N / 2)  # ~60 s are enough
        async with running(chain, tmp_path, postgres_url, queue_url, options) as run:
            submit = asyncio.create_task(run.submit())
            for _ in range(2):
                await asyncio.sleep(4.0)
                if keeps_data:  # SHUTDOWN SAVE writes dump.rdb; the next start loads it
                    client = redis.Redis.from_url(redis_server.url)
                    with contextlib.suppress(redis.ConnectionError):
                        await asyncio.to_thread(client.shutdown, save=True)
                    client.close()
                await asyncio.to_thread(redis_server.stop)
                run.fault("queue down")
                await asyncio.sleep(3.0)
                await asyncio.to_thread(redis_server.start)
                run.fault("queue restarted")
            await submit
            kind = "data kept" if keeps_data else "data lost"
            report = await finish(run, f"5b. queue (Redis) restarted, {kind}")
    check(report)


# ── 6. a nonce taken from outside ─────────────────────────────────────────────────────────────


@pytest.mark.chaos_full
async def test_outside_transactions_take_nonces(
    chain: AnvilProcess, tmp_path: Path, postgres_url: str, redis_queue_url: str
) -> None:
    options = ChaosOptions(withdrawals=N, final_timeout_s=120 + N)
    async with (
        running(chain, tmp_path, postgres_url, redis_queue_url, options) as run,
        AnvilControl(chain.rpc_url) as control,
    ):
        submit = asyncio.create_task(run.submit())
        account = Account.from_key(run.hot_wallet_key)
        refusals: list[str] = []
        for _ in range(6):
            counts = await run.wait_for(
                "a withdrawal SIGNED or BROADCASTING (to take its nonce from outside), or all paid",
                lambda c: c.get("SIGNED", 0) + c.get("BROADCASTING", 0) > 0 or final_count(c) >= N,
            )
            if final_count(counts) >= N:
                break  # paid before six were taken (the engine outran the scenario): enough
            for _try in range(5):  # Sluice may take the nonce first: read it again and retry
                nonce = await control.nonce(run.hot_wallet, "pending")
                block = await control.get_block("latest")
                base = block.base_fee_per_gas if block is not None else None
                # Priced well above Sluice's attempts: it wins its nonce, even against a pooled
                # transaction of Sluice's at the same nonce (which it then replaces).
                signed = account.sign_transaction(
                    {
                        "chainId": chain.chain_id,
                        "nonce": nonce,
                        "to": run.hot_wallet,  # a no-op: only its gas leaves the wallet
                        "value": 0,
                        "gas": 21_000,
                        "maxFeePerGas": 2 * (base or GWEI) + 50 * GWEI,
                        "maxPriorityFeePerGas": 50 * GWEI,
                    }
                )
                try:
                    await control.send_raw(bytes(signed.raw_transaction))
                except AnvilRpcError as exc:
                    refusals.append(exc.message)
                    continue
                run.fault("outside transaction")
                break
            await asyncio.sleep(1.5)
        if refusals:
            run.fault("outside send refused (retried)", len(refusals))
        await submit
        report = await finish(run, "6. nonces taken from outside")
    superseded = await _history_count(run, "was used by another transaction")
    check(report)
    assert superseded > 0, f"no withdrawal was re-signed after losing its nonce; {report.line()}"


# ── 7. a recipient blocked while its batch is pooled ─────────────────────────────────────────


@pytest.mark.chaos_full
async def test_recipient_blocked_while_its_batch_is_pooled(
    chain: AnvilProcess, tmp_path: Path, postgres_url: str, redis_queue_url: str
) -> None:
    """Mining off; every withdrawal submitted; the largest pooled batch of the blocking token
    (simulated when its recipients were all fine); one of its recipients blocked by the token's
    owner, in the same block and before it: the batch reverts. Its withdrawals are paid again,
    each on its own; the blocked one FAILS ``destination_reverts``."""
    options = ChaosOptions(
        withdrawals=N,
        final_timeout_s=120 + N,
        blocking_token=True,
        **batch_options(True),
    )
    async with (
        running(chain, tmp_path, postgres_url, redis_queue_url, options) as run,
        AnvilControl(chain.rpc_url) as control,
    ):
        by_address = {p.to.lower(): p for p in run.planned}
        blocking = run.blocking_token.lower()
        await control.set_automine(False)
        run.fault("mining off")
        reverted: BatchCall | None = None
        blocked = ""
        try:
            await run.submit()  # every withdrawal accepted: the batches in the pool are full
            for attempt in range(5):
                nonce, call = await _pooled_token_batch(run, control, blocking)
                blocked = call.payments[len(call.payments) // 2][0]
                run.expect(by_address[blocked].id, "destination_reverts")
                await run.block(blocked)
                run.fault("recipient blocked in a pooled batch")
                outcome = None
                for _block in range(10):  # mined in the next block, unless a re-send is due
                    await control.mine(1)
                    outcome = await _outcome_at(run, control, nonce)
                    if outcome is not None:
                        break
                if outcome is None:
                    raise AssertionError(
                        f"the batch at nonce {nonce} was not mined in 10 blocks; "
                        f"{await run.describe(3)}"
                    )
                if not outcome:
                    reverted = call
                    break
                # Mined before the block-list change after all: that payment stands.
                del run.expected[by_address[blocked].id]
                run.count("blocked after its batch was mined")
                print(f"attempt {attempt + 1}: the batch at nonce {nonce} was mined first")
        finally:
            await control.set_automine(True)
        report = await finish(run, "7. a recipient blocked while its batch is pooled")
    check(report)
    check_batched(report)
    assert reverted is not None, f"no batch reverted for its blocked recipient; {report.line()}"
    print(f"the reverted batch paid {len(reverted.payments)}; the blocked recipient {blocked}")
    assert report.expected_failed == 1, report.line()
    # Everyone else of the reverted batch was paid once, by a transaction of its own.
    for to, amount in reverted.payments:
        paid = run.onchain.payments.get(to, [])
        if to == blocked:
            assert paid == [], f"the blocked recipient was paid: {paid}"
            continue
        assert [a for _, a in paid] == [amount], (to, paid)
        assert paid[0][0] not in run.onchain.batches, (
            f"{to} of the reverted batch was paid by another batch ({paid[0][0]}), not alone"
        )


async def _pooled_token_batch(
    run: ChaosRun, control: AnvilControl, token: str, timeout_s: float = 90
) -> tuple[int, BatchCall]:
    """The largest pooled batch of ``token`` (at least 3 payments): its nonce and call."""
    wallet = run.hot_wallet.lower()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = []
        for pooled in await control.pending_transactions():
            call = pooled_batch(run, pooled.raw) if pooled.sender == wallet else None
            if call is not None and call.token == token and len(call.payments) >= 3:
                found.append((pooled.nonce, call))
        if found:
            return max(found, key=lambda item: len(item[1].payments))
        await asyncio.sleep(0.2)
    raise TimeoutError(
        f"no batch of {token} pooled within {timeout_s:.0f} s; {await run.describe(3)}"
    )


async def _outcome_at(run: ChaosRun, control: AnvilControl, nonce: int) -> bool | None:
    """Whether the hot wallet's transaction at ``nonce`` in the latest block succeeded; None
    if the block has none at that nonce."""
    block = await control.call("eth_getBlockByNumber", ["latest", True])
    wallet = run.hot_wallet.lower()
    for tx in block["transactions"]:
        if str(tx["from"]).lower() == wallet and int(tx["nonce"], 16) == nonce:
            receipt = await control.call("eth_getTransactionReceipt", [tx["hash"]])
            return int(receipt["status"], 16) == 1
    return None


def pooled_batch(run: ChaosRun, raw: Any) -> BatchCall | None:
    """The batch call a pooled transaction (its ``txpool_content`` entry) makes to the hot
    wallet's batch contract; None for anything else."""
    to = str(raw.get("to") or "").lower()
    if not run.batch_contract or to != run.batch_contract.lower():
        return None
    return read_batch_call(str(raw.get("input") or raw.get("data") or "0x"))


async def _history_count(run: ChaosRun, fragment: str, *, batched: bool = False) -> int:
    """How many withdrawal events mention ``fragment`` (their history shows the faults);
    ``batched``: only of withdrawals whose transaction is a batch (it carries several)."""
    from sqlalchemy import NullPool, text  # noqa: PLC0415
    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415

    query = "SELECT count(*) FROM withdrawal_events e WHERE e.reason LIKE :pattern"
    if batched:
        query += (
            " AND (SELECT count(*) FROM withdrawals o WHERE o.transaction_id = "
            "(SELECT w.transaction_id FROM withdrawals w WHERE w.id = e.withdrawal_id)) > 1"
        )
    engine = create_async_engine(run.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text(query), {"pattern": f"%{fragment}%"})
            return int(result.scalar_one())
    finally:
        await engine.dispose()
