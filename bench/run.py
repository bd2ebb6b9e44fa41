"""`make bench`: Sluice's intake throughput, latency and pipeline rate on this machine.

A benchmark, not a test. It starts what it needs on 127.0.0.1 (fresh PostgreSQL databases on the
local server, an Anvil node, Sluice as real processes), drives them with compiled load generators
(``wrk`` with ``bench/withdrawals.lua``, ``hey``), prints a human summary and, as its very last
line, one JSON object with the figures.

Phases (each can be chosen with ``--phases``):

- **saturation**: ``POST /v1/withdrawals`` from 64 connections for 20 s (``wrk -t 2 -c 64``), on
  Sluice (``sluice serve --no-workers``) and on ``bench/baseline_app.py`` (FastAPI + one asyncpg
  INSERT and commit per request, served the same way): ``accepted_per_s``, ``baseline_per_s``.
- **latency**: a fixed offered load of 1 000 requests a second for 20 s: ``p50_ms``, ``p95_ms``,
  ``p99_ms`` and ``rate_per_s``, the 2xx rate actually achieved. The primary generator is wrk on
  a fixed schedule (slots 1 ms apart, see the Lua script); hey (``-c 50 -q 20``) runs as a
  cross-check: its 50 workers tick in step, so it offers bursts of 50 every 50 ms.
- **pipeline**: withdrawals offered at a steady rate (110/s, over 100 users) for 60 s, through
  API and workers to COMPLETED on Anvil (auto-mining; confirmations = 1). By default the API is
  ``sluice serve --no-workers`` and two ``sluice worker`` processes share a Redis Streams queue
  (a namespace of this run, deleted at the end); ``--pipeline-mode single`` runs one
  ``sluice serve`` with its in-process ``memory://`` queue instead. ``completed_per_s`` counts
  the withdrawals that reached COMPLETED inside the window, over the window.
- **batched**: the same topology with batch payouts on. Before any Sluice starts the hot wallet
  deploys its ``BatchPayout`` and approves it for the demo token, and 1 000 fixed recipients
  (``--batched-recipients``) are given 1 wei each, so that they exist: the batcher pays the coin
  to a new account on its own. The networks file gets ``[networks.anvil.batching]`` with
  ``window_s = 1.0``, ``max_size = 100``. Two runs, each on a fresh database and fresh processes,
  wrk drawing every recipient from the fixed set: withdrawals offered at 300/s
  (``--pipeline-batched-rate``, wrk with 96 connections; what intake achieved is reported) for
  the pipeline's window:
  ``completed_batched_per_s``, ``failed_batched``, ``transactions_batched`` (distinct
  transactions that paid them); then at 100/s (``--pipeline-batched-latency-rate``):
  ``request_to_broadcast_p95_ms``, from each withdrawal's ``created_at`` to its first
  BROADCASTING event in ``withdrawal_events``.
- **probe** (``--no-probe`` skips it): the same requests through counting proxies, to measure
  PostgreSQL round trips and connections per request, and per withdrawal through the pipeline
  (with the JSON-RPC calls to the node), unbatched (with ``pipeline``) and batched (with
  ``batched``: 100/s to 20 of the fixed recipients, after a warm-up that is not counted).

Servers log at ``warning``: at ``info`` Sluice writes a JSON line per request (and the workers
one per job), and rendering them would be part of what is measured. Before each phase the bench
waits (``--quiet-wait``) for the machine to be idle, and every phase reports the CPU used by each
part, "other" being someone else's work on the machine. ``--profile DIR`` records py-spy
profiles of the servers during the saturation and pipeline phases (collapsed stacks, summarised
by ``bench/profile_summary.py``).

Everything it starts (processes, databases, a temporary directory) is removed at the end, on
error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import urlsplit

import httpx
import redis
from sqlalchemy import NullPool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from sluice.devnet import setup
from sluice.devnet.anvil import AnvilProcess, anvil_binary, free_port
from sluice.domain.addresses import Address
from sluice.testing.harness import PASSPHRASE, prepare

# Run as `python bench/run.py`: make the repository root importable, for `bench.*`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import batching
from bench.profile_summary import summarize
from bench.wire_counters import PgCounter, ProxyThread, RpcCounter

BENCH: Final = Path(__file__).resolve().parent
LUA: Final = BENCH / "withdrawals.lua"
BASELINE_APP: Final = BENCH / "baseline_app.py"
DEFAULT_POSTGRES: Final = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
HOST: Final = "127.0.0.1"

TARGET_RATIO: Final = 0.8
TARGET_P99_MS: Final = 50.0
TARGET_COMPLETED_PER_S: Final = 100.0

PHASES: Final = ("saturation", "latency", "pipeline", "batched")
FINAL_STATUSES: Final = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
INTAKE_AMOUNT: Final = "0.001"
PIPELINE_AMOUNT: Final = "0.0001"
PROBE_WARMUP_S: Final = 2
USER_CREDIT: Final = "1000000"


class BenchError(RuntimeError):
    """Something the benchmark needs is missing or failed."""


def say(message: str) -> None:
    """Progress, on stderr (stdout carries the summary and the JSON line)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ── options ───────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Options:
    """What to run, and for how long."""

    saturation_s: int
    latency_s: int
    pipeline_s: int
    warmup_s: int
    connections: int
    wrk_threads: int
    rate: int
    latency_connections: int
    hey_workers: int
    hey: bool
    pipeline_rate: float
    pipeline_connections: int
    pipeline_batched_rate: float
    pipeline_batched_latency_rate: float
    pipeline_batched_connections: int
    batched_recipients: int
    users: int
    block_time: float | None
    poll_interval_s: float
    worker_concurrency: int | None
    drain_timeout_s: float
    phases: frozenset[str]
    probe: bool
    probe_s: int
    baseline_latency: bool
    profile_dir: Path | None
    postgres_url: str
    keep: bool
    server_env: dict[str, str]
    check: bool
    quiet_wait_s: float
    pipeline_mode: str
    pipeline_workers: int
    redis_url: str


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line (``--quick``: 3 s phases, for a smoke run)."""
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark Sluice against a minimal FastAPI + asyncpg baseline.",
    )
    parser.add_argument("--quick", action="store_true", help="3 s phases: a smoke run")
    parser.add_argument("--saturation-s", type=int, help="saturation phase length (default 20)")
    parser.add_argument("--latency-s", type=int, help="latency phase length (default 20)")
    parser.add_argument("--pipeline-s", type=int, help="pipeline window (default 60)")
    parser.add_argument("--warmup-s", type=int, help="unmeasured load before each (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="saturation connections")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rate", type=int, default=1000, help="latency phase: requests/s")
    parser.add_argument(
        "--latency-connections", type=int, default=100, help="latency phase: wrk connections"
    )
    parser.add_argument("--hey-workers", type=int, default=50, help="latency cross-check: hey -c")
    parser.add_argument("--no-hey", action="store_true", help="skip the hey cross-check")
    parser.add_argument("--pipeline-rate", type=float, default=110.0, help="offered per second")
    parser.add_argument("--pipeline-connections", type=int, default=32)
    parser.add_argument(
        "--pipeline-batched-rate",
        type=float,
        default=300.0,
        help="batched phase: withdrawals offered per second (default 300)",
    )
    parser.add_argument(
        "--pipeline-batched-latency-rate",
        type=float,
        default=100.0,
        help="batched phase: offered per second in the request → BROADCASTING run (default 100)",
    )
    parser.add_argument(
        "--pipeline-batched-connections",
        type=int,
        default=96,
        help="batched phase: wrk connections (default 96: 300/s while answers take < 320 ms)",
    )
    parser.add_argument(
        "--batched-recipients",
        type=int,
        default=1000,
        help="batched phase: existing recipients the withdrawals are drawn from (default 1000)",
    )
    parser.add_argument(
        "--pipeline-mode",
        choices=("redis", "single"),
        default="redis",
        help="redis: `serve --no-workers` + N `sluice worker` on Redis Streams (default); "
        "single: one `sluice serve` with its in-process memory:// queue",
    )
    parser.add_argument(
        "--pipeline-workers", type=int, default=2, help="`sluice worker` processes (redis mode)"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("SLUICE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for the redis pipeline mode; keys go under a namespace of this run",
    )
    parser.add_argument("--users", type=int, default=100, help="distinct users in the requests")
    parser.add_argument(
        "--block-time", type=float, help="Anvil seconds per block (default: a block per tx)"
    )
    parser.add_argument("--poll-interval", type=float, default=0.1, help="confirmation polling")
    parser.add_argument("--worker-concurrency", type=int, help="SLUICE_WORKER_CONCURRENCY")
    parser.add_argument("--drain-timeout", type=float, help="pipeline: wait for stragglers")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated, of: {', '.join(PHASES)} (default: all)",
    )
    parser.add_argument("--no-probe", action="store_true", help="skip the round-trip probes")
    parser.add_argument(
        "--no-baseline-latency", action="store_true", help="skip the baseline's latency run"
    )
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy profiles to DIR")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SLUICE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="server to create the databases on (SLUICE_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the servers (Sluice and baseline alike); repeatable",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        help="before each phase, wait up to this many seconds for the machine to be idle "
        "(default 300; 0 with --quick)",
    )
    args = parser.parse_args(argv)

    quick = 3 if args.quick else None
    phases = frozenset(p.strip() for p in args.phases.split(",") if p.strip())
    if unknown := phases - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    server_env: dict[str, str] = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--server-env wants NAME=VALUE, not {item!r}")
        server_env[name] = value
    pipeline_s = args.pipeline_s or (5 if quick else 60)
    return Options(
        saturation_s=args.saturation_s or quick or 20,
        latency_s=args.latency_s or quick or 20,
        pipeline_s=pipeline_s,
        warmup_s=args.warmup_s if args.warmup_s is not None else (1 if quick else 3),
        connections=args.connections,
        wrk_threads=args.wrk_threads,
        rate=args.rate,
        latency_connections=args.latency_connections,
        hey_workers=args.hey_workers,
        hey=not args.no_hey,
        pipeline_rate=args.pipeline_rate,
        pipeline_connections=args.pipeline_connections,
        pipeline_batched_rate=args.pipeline_batched_rate,
        pipeline_batched_latency_rate=args.pipeline_batched_latency_rate,
        pipeline_batched_connections=args.pipeline_batched_connections,
        batched_recipients=args.batched_recipients,
        users=args.users,
        block_time=args.block_time,
        poll_interval_s=args.poll_interval,
        worker_concurrency=args.worker_concurrency,
        drain_timeout_s=args.drain_timeout or max(30.0, float(pipeline_s)),
        phases=phases,
        probe=not args.no_probe,
        probe_s=quick or 5,
        baseline_latency=not args.no_baseline_latency,
        profile_dir=args.profile.resolve() if args.profile else None,
        postgres_url=args.postgres_url,
        keep=args.keep,
        server_env=server_env,
        check=args.check,
        quiet_wait_s=args.quiet_wait if args.quiet_wait is not None else (0 if quick else 300),
        pipeline_mode=args.pipeline_mode,
        pipeline_workers=args.pipeline_workers,
        redis_url=args.redis_url,
    )


# ── processes ─────────────────────────────────────────────────────────────────────────────────

if sys.platform == "linux":
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _PR_SET_PDEATHSIG: Final = 1

    def _die_with_parent() -> None:
        """In the child, before exec: SIGTERM when the bench dies, even by SIGKILL."""
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    _PREEXEC: Any = _die_with_parent
else:  # pragma: no cover - the bench runs on Linux
    _PREEXEC = None


class Child:
    """A server process in its own session, its output in a log file; stopped by signals."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out: IO[bytes] = log.open("ab")
        try:
            self.process = subprocess.Popen(  # noqa: S603 - argv is ours: this Python, our flags
                list(argv),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_PREEXEC,  # noqa: PLW1509 - only prctl: no locks, no allocation
            )
        except BaseException:
            self._out.close()
            raise

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        """The end of its output."""
        self._out.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def stop(self, graceful_s: float = 30.0) -> int | None:
        """SIGINT (graceful), then SIGTERM, then SIGKILL; its exit status."""
        for sig, wait_s in (
            (signal.SIGINT, graceful_s),
            (signal.SIGTERM, 5.0),
            (signal.SIGKILL, 5.0),
        ):
            if self.process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(wait_s)
        self._out.close()
        return self.process.returncode


def run_tool(argv: Sequence[str], *, timeout_s: float) -> str:
    """Run a load generator to the end; its stdout. Killed if we are interrupted."""
    process = subprocess.Popen(  # noqa: S603 - argv is ours: wrk or hey and our flags
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = process.communicate(timeout=timeout_s)
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise BenchError(f"{argv[0]} exited with {process.returncode}: {err.strip()[-2000:]}")
    return out


def wait_healthy(child: Child, url: str, timeout_s: float = 120.0) -> None:
    """Wait until ``url/health`` answers 200."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while True:
            if not child.alive():
                raise BenchError(f"{child.name} exited while starting:\n{child.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{url}/health").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"{child.name} did not answer /health in {timeout_s:g}s")
            time.sleep(0.2)


# ── CPU accounting ────────────────────────────────────────────────────────────────────────────

_TICK: Final = float(os.sysconf("SC_CLK_TCK"))


def _pid_cpu_split(pid: int) -> tuple[float, float]:
    """User and kernel CPU seconds of a process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def _pid_cpu_s(pid: int) -> float:
    return sum(_pid_cpu_split(pid))


def find_pid(executable: str, port: int) -> int | None:
    """The process running ``executable`` with ``--port PORT`` (Anvil: AnvilProcess hides it)."""
    wanted = f"--port\0{port}\0".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        argv0 = cmdline.split(b"\0", 1)[0]
        if argv0.endswith(executable.encode()) and wanted in cmdline:
            return int(entry.name)
    return None


def _machine_busy_s() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / _TICK


_LOADGEN: Final = frozenset({"wrk", "hey", "py-spy"})


class CpuMeter:
    """CPU used during a phase, in % of one core, by part: the server processes (Sluice's, or
    the baseline), PostgreSQL (the backends of our databases, whose title names them, and the
    server's shared processes: WAL writer, checkpointer...), Anvil, Redis, the load generator
    (wrk or hey, and py-spy when profiling), everything else ("other": someone else's work on
    this machine, which skews the figures), and the machine's total (100 % per core at most).

    A thread reads every process's CPU time every 0.2 s, so short-lived processes (PostgreSQL
    backends of connections a pool opened and closed during the phase) are counted up to their
    last reading."""

    def __init__(self, servers: Sequence[int], anvil_pid: int | None, db_prefix: str) -> None:
        self._servers = set(servers)
        self._anvil = anvil_pid
        self._prefix = db_prefix
        self._first: dict[int, float] = {}  # CPU seconds when first seen (0 if born later)
        self._last: dict[int, float] = {}
        self._part: dict[int, str] = {}  # the part each process counts in, or "other:<comm>"
        self._kernel_start = sum(_pid_cpu_split(p)[1] for p in self._servers)
        self._machine_start = _machine_busy_s()
        self._began = time.monotonic()
        self._read(initial=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-cpu", daemon=True)
        self._thread.start()
        self.top_other = ""

    def _classify(self, pid: int, comm: str) -> str:
        if comm.startswith("postgres") and pid not in self._servers:
            return self._classify_postgres(pid, comm)
        fixed = {self._anvil: "anvil"} | dict.fromkeys(self._servers, "server")
        if pid in fixed:
            return fixed[pid]
        if comm == "redis-server":
            return "redis"
        return "loadgen" if comm in _LOADGEN else f"other:{comm}"

    def _classify_postgres(self, pid: int, comm: str) -> str:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            return f"other:{comm}"
        if not title.startswith("postgres: "):
            return "pending"  # just forked: its title is not set yet; look again next time
        backend = "127.0.0.1(" in title or "[local]" in title or "::1(" in title
        return "postgres" if self._prefix in title or not backend else f"other:{comm}"

    def _read(self, *, initial: bool = False) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if self._part.get(pid, "pending") == "pending":
                try:
                    comm = (entry / "comm").read_text().strip()
                except OSError:
                    continue
                self._part[pid] = self._classify(pid, comm)
            cpu = _pid_cpu_s(pid)
            if cpu == 0.0 and pid in self._last:
                continue  # it is gone: keep its last reading
            self._first.setdefault(pid, cpu if initial else 0.0)
            self._last[pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._read()

    def stop(self) -> dict[str, float]:
        """Percent of one core per part since the meter started."""
        self._stop.set()
        self._thread.join()
        self._read()
        wall = time.monotonic() - self._began
        used: dict[str, float] = {}
        for pid, last in self._last.items():
            if pid == os.getpid():
                continue
            part = self._part[pid].replace("pending", "postgres")
            used[part] = used.get(part, 0.0) + max(0.0, last - self._first[pid])
        kernel = sum(_pid_cpu_split(p)[1] for p in self._servers) - self._kernel_start
        machine = _machine_busy_s() - self._machine_start
        others = {k.removeprefix("other:"): v for k, v in used.items() if k.startswith("other:")}
        top = sorted(others.items(), key=lambda kv: -kv[1])[:3]
        self.top_other = ", ".join(f"{c} {100 * v / wall:.0f}%" for c, v in top if v / wall > 0.02)
        parts = {name: used.get(name, 0.0) for name in ("server", "postgres", "anvil", "redis")}
        parts["loadgen"] = used.get("loadgen", 0.0)
        # Whatever no process accounts for (interrupts, processes shorter than a reading) goes
        # to "other" too.
        parts["other"] = max(0.0, machine - sum(parts.values()))
        parts["machine"] = machine
        result = {name: round(100 * value / wall, 1) for name, value in parts.items()}
        return {"server": result["server"], "server_kernel": round(100 * kernel / wall, 1)} | result


def machine_load(seconds: float = 3.0) -> float:
    """The machine's busy CPU over a few seconds, in % of one core."""
    start, began = _machine_busy_s(), time.monotonic()
    time.sleep(seconds)
    return 100 * (_machine_busy_s() - start) / (time.monotonic() - began)


def wait_quiet(max_wait_s: float, *, threshold: float = 25.0) -> float:
    """Wait (up to ``max_wait_s``) until the machine is nearly idle: others' work (tests run by
    someone else on this machine) would skew the figures. The load last seen, % of one core."""
    deadline = time.monotonic() + max_wait_s
    load = machine_load()
    while load > threshold and time.monotonic() < deadline:
        say(f"  the machine is busy ({load:.0f}% of one core, not ours): waiting for quiet")
        time.sleep(5)
        load = machine_load()
    if load > threshold:
        say(f"  still busy ({load:.0f}%): measuring anyway; see 'other' in the CPU figures")
    return load


def _other_note(meter: CpuMeter) -> str:
    return f" (other: {meter.top_other})" if meter.top_other else ""


def format_cpu(cpu: dict[str, float]) -> str:
    """``server 98% (kernel 30%) · postgres 41% · …`` (% of one core)."""
    parts = [f"{name} {value:.0f}%" for name, value in cpu.items() if name != "server_kernel"]
    if "server_kernel" in cpu and parts:
        parts[0] += f" (kernel {cpu['server_kernel']:.0f}%)"
    return " · ".join(parts)


# ── load generators ───────────────────────────────────────────────────────────────────────────


@dataclass
class LoadResult:
    """What a load generator saw."""

    tool: str
    duration_s: float
    ok: int
    non2xx: int
    transport_errors: int
    statuses: dict[str, int]
    latency_ms: dict[str, float]
    sample: str = ""
    cpu: dict[str, float] = field(default_factory=dict)
    db: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Non-2xx answers and requests that got no answer."""
        return self.non2xx + self.transport_errors

    @property
    def ok_per_s(self) -> float:
        """2xx answers per second."""
        return self.ok / self.duration_s if self.duration_s else 0.0


def run_wrk(
    url: str,
    *,
    duration_s: int,
    connections: int,
    threads: int,
    api_key: str,
    users: int,
    amount: str = INTAKE_AMOUNT,
    rate: float = 0.0,
    recipients: Path | None = None,
) -> LoadResult:
    """wrk with bench/withdrawals.lua: as fast as possible, or paced at ``rate`` per second; to
    fresh random recipients, or to ones drawn from the ``recipients`` file."""
    threads = max(1, min(threads, connections))
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration_s}s"]
    argv += ["--timeout", "10s", "-s", str(LUA), f"{url}/v1/withdrawals", "--"]
    argv += [api_key, str(users), amount, f"{rate / threads:.6f}"]
    if recipients is not None:
        argv.append(str(recipients))
    out = run_tool(argv, timeout_s=duration_s + 120)
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise BenchError(f"wrk printed no BENCH_JSON line:\n{out[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return LoadResult(
        tool="wrk",
        duration_s=data["duration_us"] / 1e6,
        ok=data["ok"],
        non2xx=data["non2xx"],
        transport_errors=sum(data["socket_errors"].values()),
        statuses=data["statuses"],
        latency_ms={k: v / 1000 for k, v in data["latency_us"].items()},
        sample=data["sample"],
    )


_HEY_TOTAL = re.compile(r"Total:\s+([\d.]+) secs")
_HEY_FIELD = re.compile(r"(Slowest|Fastest|Average):\s+([\d.]+) secs")
_HEY_PERCENTILE = re.compile(r"^\s*(\d+)%+ in ([\d.]+) secs", re.MULTILINE)
_HEY_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses", re.MULTILINE)
_HEY_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.*)$", re.MULTILINE)


def run_hey(url: str, *, duration_s: int, rate: int, workers: int, api_key: str) -> LoadResult:
    """hey at ``rate`` per second: ``workers`` workers each paced at rate/workers."""
    body = json.dumps(
        {
            "userId": "bench-user-1",
            "amount": INTAKE_AMOUNT,
            "network": setup.NETWORK,
            "toAddress": "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8],
        }
    )
    argv = ["hey", "-z", f"{duration_s}s", "-c", str(workers), "-q", f"{rate / workers:g}"]
    argv += ["-t", "10", "-m", "POST", "-T", "application/json", "-d", body]
    argv += ["-H", f"Authorization: Bearer {api_key}", f"{url}/v1/withdrawals"]
    out = run_tool(argv, timeout_s=duration_s + 120)
    total = _HEY_TOTAL.search(out)
    if total is None:
        raise BenchError(f"cannot read hey's output:\n{out[-2000:]}")
    statuses = {code: int(n) for code, n in _HEY_STATUS.findall(out)}
    ok = sum(n for code, n in statuses.items() if code.startswith("2"))
    errors_part = out.split("Error distribution:", 1)[1] if "Error distribution:" in out else ""
    transport = sum(int(n) for n, _ in _HEY_ERROR.findall(errors_part))
    latency = {f"p{p}": float(s) * 1000 for p, s in _HEY_PERCENTILE.findall(out)}
    for name, seconds in _HEY_FIELD.findall(out):
        latency[{"Slowest": "max", "Fastest": "min", "Average": "mean"}[name]] = (
            float(seconds) * 1000
        )
    return LoadResult(
        tool="hey",
        duration_s=float(total.group(1)),
        ok=ok,
        non2xx=sum(statuses.values()) - ok,
        transport_errors=transport,
        statuses=statuses,
        latency_ms=latency,
        sample=errors_part.strip()[:300],
    )


@contextlib.contextmanager
def profiling(directory: Path | None, targets: dict[str, int], duration_s: int) -> Iterator[None]:
    """py-spy record of each named pid while the block runs (nothing without a directory)."""
    if directory is None:
        yield
        return
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("py-spy is not installed (it is a dev dependency: make install)")
    directory.mkdir(parents=True, exist_ok=True)
    running: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    for name, pid in targets.items():
        out = directory / f"{name}.folded"
        argv = [py_spy, "record", "--pid", str(pid), "--duration", str(duration_s)]
        argv += ["--rate", "100", "--format", "raw", "--output", str(out), "--nonblocking"]
        process = subprocess.Popen(  # noqa: S603 - argv is ours: py-spy and our flags
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        running[name] = (process, out)
    try:
        yield
    finally:
        for name, (process, out) in running.items():
            try:
                _, err = process.communicate(timeout=duration_s + 30)
            except BaseException:
                process.kill()
                process.wait()
                raise
            if out.exists():
                report = summarize(out, top=30)
                (directory / f"{name}.summary.txt").write_text(report + "\n", encoding="utf-8")
                say(f"profile {out} (summary: {name}.summary.txt)")
            else:
                say(f"py-spy wrote no profile for {name}: {err.strip()[-500:]}")


# ── databases ─────────────────────────────────────────────────────────────────────────────────


class Databases:
    """Databases made on one PostgreSQL server for this run, dropped by `drop_all`."""

    def __init__(self, server_url: str, runner: asyncio.Runner) -> None:
        self._server = make_url(server_url)
        if self._server.get_backend_name() != "postgresql":
            raise BenchError(f"not a PostgreSQL URL: {self._server!r}")
        self._runner = runner
        self._made: list[str] = []
        self.prefix = f"sluice_bench_{uuid.uuid4().hex[:12]}"

    def url(self, name: str, *, port: int | None = None, driver: str = "postgresql+asyncpg") -> str:
        """The URL of one of our databases (optionally through another port, e.g. a proxy)."""
        url = self._server.set(database=name, drivername=driver)
        if port is not None:
            url = url.set(port=port)
        return url.render_as_string(hide_password=False)

    async def _execute(self, url: str, sql: str, *, autocommit: bool = False) -> list[Any]:
        engine = create_async_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT" if autocommit else "READ COMMITTED",
        )
        try:
            async with engine.connect() as connection:
                result = await connection.execute(text(sql))
                rows = list(result.fetchall()) if result.returns_rows else []
                if not autocommit:
                    await connection.commit()
                return rows
        finally:
            await engine.dispose()

    def create(self, suffix: str) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = f"{self.prefix}_{suffix}"
        server = self._server.render_as_string(hide_password=False)
        self._runner.run(self._execute(server, f'CREATE DATABASE "{name}"', autocommit=True))
        self._made.append(name)
        return self.url(name)

    def query(self, url: str, sql: str) -> list[Any]:
        """Rows of a query on one of our databases."""
        return self._runner.run(self._execute(url, sql))

    def stats(self, url: str) -> dict[str, int]:
        """PostgreSQL's counters for a database (they lag by up to a second or so)."""
        rows = self.query(
            url,
            "SELECT sessions, xact_commit, xact_rollback, tup_inserted, tup_deleted "
            "FROM pg_stat_database WHERE datname = current_database()",
        )
        names = ("sessions", "commits", "rollbacks", "inserted", "deleted")
        return dict(zip(names, (int(v) for v in rows[0]), strict=True))

    def server_version(self) -> str:
        """PostgreSQL's version string."""
        server = self._server.render_as_string(hide_password=False)
        rows = self._runner.run(self._execute(server, "SHOW server_version"))
        return str(rows[0][0])

    def drop_all(self) -> None:
        """Drop every database this run made (sessions still on them are ended)."""
        server = self._server.render_as_string(hide_password=False)
        while self._made:
            name = self._made.pop()
            try:
                self._runner.run(
                    self._execute(
                        server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', autocommit=True
                    )
                )
            except Exception as exc:  # report, and go on dropping the others
                say(f"could not drop database {name}: {exc}")


@dataclass
class PipelineResult:
    """The pipeline phase's figures."""

    window_s: int
    offered_per_s: float
    submitted: int
    submit: LoadResult
    completed: int
    completed_in_window: int
    completed_per_s: float
    completed_per_s_second_half: float
    drain_per_s: float
    failed: dict[str, int]
    not_final: int
    e2e_ms: dict[str, float]
    cpu: dict[str, float]
    topology: str
    process_cpu: dict[str, float]
    transactions: dict[str, int]
    broadcast_ms: dict[str, float]
    batched: bool = False

    @property
    def submitted_per_s(self) -> float:
        """What intake accepted per second (the offered rate, if it kept up)."""
        return self.submit.ok_per_s

    @property
    def failed_total(self) -> int:
        """Withdrawals that FAILED, whatever the reason."""
        return sum(self.failed.values())


@dataclass
class Results:
    """What the phases measured (None: not run)."""

    saturation: LoadResult | None = None
    baseline_saturation: LoadResult | None = None
    latency: LoadResult | None = None
    latency_hey: LoadResult | None = None
    baseline_latency: LoadResult | None = None
    pipeline: PipelineResult | None = None
    pipeline_batched: PipelineResult | None = None
    pipeline_batched_latency: PipelineResult | None = None
    probe: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """Sluice's accepted rate over the baseline's."""
        sat, base = self.saturation, self.baseline_saturation
        return sat.ok_per_s / base.ok_per_s if sat and base and base.ok_per_s else None

    def targets(self, rate: int) -> dict[str, bool | None]:
        """Each target: met, missed, or None if its phase did not run."""
        sat, lat, pipe, ratio = self.saturation, self.latency, self.pipeline, self.ratio
        return {
            "saturation": None
            if sat is None or ratio is None
            else ratio >= TARGET_RATIO and sat.errors == 0,
            "latency": None
            if lat is None
            else lat.latency_ms["p99"] <= TARGET_P99_MS and lat.ok_per_s >= 0.99 * rate,
            "pipeline": None if pipe is None else pipe.completed_per_s >= TARGET_COMPLETED_PER_S,
        }


def _redis(url: str) -> redis.Redis:
    client: redis.Redis = redis.Redis.from_url(url, socket_timeout=5)
    return client


def connected_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` has a TCP connection to ``port`` (on this host)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def wait_consumers(url: str, workers: Sequence[Child], timeout_s: float = 120) -> None:
    """Wait until every worker has connected to Redis: its queue connects when its consumers
    first receive, after migrations, nonce reconciliation and recovery (at warning level the
    worker logs nothing to say so)."""
    port = urlsplit(url).port or 6379
    deadline = time.monotonic() + timeout_s
    while True:
        for worker in workers:
            if not worker.alive():
                raise BenchError(f"{worker.name} exited while starting:\n{worker.tail()}")
        if all(connected_to(worker.pid, port) for worker in workers):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"the workers did not connect to Redis in {timeout_s:g}s")
        time.sleep(0.2)


def redis_cleanup(url: str, namespace: str) -> None:
    """Delete the keys of a namespace this run used, and of its lanes' (``<namespace>.<lane>``,
    `sluice.bootstrap`)."""
    try:
        with contextlib.closing(_redis(url)) as client:
            keys = [
                key
                for pattern in (f"{namespace}:*", f"{namespace}.*")
                for key in client.scan_iter(match=pattern, count=1000)
            ]
            if keys:
                client.delete(*keys)
    except redis.RedisError as exc:
        say(f"could not delete the Redis keys {namespace}:*: {exc}")


# ── the bench ─────────────────────────────────────────────────────────────────────────────────


@dataclass
class Env:
    """What every phase shares."""

    opts: Options
    workdir: Path
    runner: asyncio.Runner
    stack: contextlib.ExitStack
    dbs: Databases
    anvil: AnvilProcess
    networks_file: Path
    keystore: Path
    token: str
    retry_base_s: float
    retry_max_s: float
    anvil_pid: int | None
    batch: batching.BatchSetUp | None = None
    results: Results = field(default_factory=Results)

    def batched_networks_file(self, name: str, rpc_url: str) -> Path:
        """A networks file with batching on (the hot wallet's contract), for ``rpc_url``."""
        if self.batch is None:
            raise BenchError("the batch contract was not set up")
        return batching.write_networks_file(
            self.workdir / f"networks-{name}.toml",
            self.batch,
            rpc_url=rpc_url,
            keystore=self.keystore,
            token=Address(self.token),
            confirmations=1,
            poll_interval_s=self.opts.poll_interval_s,
        )

    def sluice_env(
        self,
        database_url: str,
        port: int,
        *,
        networks_file: Path | None = None,
        queue_url: str = "memory://",
    ) -> dict[str, str]:
        """The environment of a Sluice process (nothing inherited from SLUICE_* variables)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(
            SLUICE_DATABASE_URL=database_url,
            SLUICE_QUEUE_URL=queue_url,
            SLUICE_NETWORKS_FILE=str(networks_file or self.networks_file),
            SLUICE_KEYSTORE_PASSPHRASE=PASSPHRASE,
            SLUICE_HOST=HOST,
            SLUICE_PORT=str(port),
            SLUICE_LOG_LEVEL="warning",
            SLUICE_LOG_FORMAT="json",
            SLUICE_RETRY_BASE_S=str(self.retry_base_s),
            SLUICE_RETRY_MAX_S=str(self.retry_max_s),
            SLUICE_DATA_DIR=str(self.workdir),
        )
        if self.opts.worker_concurrency is not None:
            env["SLUICE_WORKER_CONCURRENCY"] = str(self.opts.worker_concurrency)
        env.update(self.opts.server_env)
        return env

    def start_sluice(
        self,
        name: str,
        database_url: str,
        *,
        workers: bool,
        networks_file: Path | None = None,
        queue_url: str = "memory://",
    ) -> tuple[Child, str]:
        """``sluice serve`` (``--no-workers`` unless ``workers``) on a free port, healthy."""
        port = free_port()
        env = self.sluice_env(database_url, port, networks_file=networks_file, queue_url=queue_url)
        argv = [sys.executable, "-m", "sluice", "serve"]
        if not workers:
            argv.append("--no-workers")
        child = Child(name, argv, env=env, log=self.workdir / f"{name}.log")
        self.stack.callback(child.stop)
        url = f"http://{HOST}:{port}"
        wait_healthy(child, url)
        return child, url

    def start_baseline(self, database_url: str, *, port: int | None = None) -> tuple[Child, str]:
        """bench/baseline_app.py on a free port, healthy."""
        listen = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(self.opts.server_env)
        dsn = make_url(database_url).set(drivername="postgresql")
        if port is not None:
            dsn = dsn.set(port=port)
        argv = [sys.executable, str(BASELINE_APP), "--port", str(listen), "--host", HOST]
        argv += ["--dsn", dsn.render_as_string(hide_password=False)]
        child = Child("baseline", argv, env=env, log=self.workdir / "baseline.log")
        self.stack.callback(child.stop)
        url = f"http://{HOST}:{listen}"
        wait_healthy(child, url)
        return child, url

    def start_pipeline(
        self, name: str, database_url: str, *, networks_file: Path | None = None
    ) -> tuple[dict[str, Child], str]:
        """API and workers: one ``sluice serve`` (single mode), or ``serve --no-workers`` and
        ``--pipeline-workers`` ``sluice worker`` processes on a Redis Streams namespace of their
        own (redis mode). The processes by role, and the API's URL."""
        opts = self.opts
        if opts.pipeline_mode == "single":
            child, url = self.start_sluice(
                name, database_url, workers=True, networks_file=networks_file
            )
            return {"api+workers": child}, url
        namespace = f"{self.dbs.prefix}-{name}"
        self.stack.callback(redis_cleanup, opts.redis_url, namespace)
        separator = "&" if "?" in opts.redis_url else "?"
        queue_url = f"{opts.redis_url}{separator}namespace={namespace}"
        api, url = self.start_sluice(
            f"{name}-api",
            database_url,
            workers=False,
            networks_file=networks_file,
            queue_url=queue_url,
        )
        children = {"api": api}
        env = self.sluice_env(database_url, 0, networks_file=networks_file, queue_url=queue_url)
        for n in range(opts.pipeline_workers):
            worker = Child(
                f"{name}-worker-{n}",
                [sys.executable, "-m", "sluice", "worker"],
                env=env,
                log=self.workdir / f"{name}-worker-{n}.log",
            )
            self.stack.callback(worker.stop)
            children[f"worker-{n}"] = worker
        wait_consumers(opts.redis_url, list(children.values())[1:])
        return children, url

    def api_key(self, database_url: str) -> str:
        """An API key with every scope, made by ``sluice apikey create`` after migrating."""
        env = self.sluice_env(database_url, 0)
        migrate = [sys.executable, "-m", "sluice", "migrate"]
        done = subprocess.run(  # noqa: S603 - argv is ours: this Python and our flags
            migrate, env=env, capture_output=True, text=True, timeout=180, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"sluice migrate failed:\n{done.stdout}\n{done.stderr}")
        argv = [sys.executable, "-m", "sluice", "apikey", "create", "--name", "bench"]
        for scope in ("admin", "withdrawals:read", "withdrawals:write"):
            argv += ["--scope", scope]
        done = subprocess.run(  # noqa: S603 - argv is ours: this Python and our flags
            argv, env=env, capture_output=True, text=True, timeout=180, check=False
        )
        # The secret is the line that starts with the key prefix (printed first since 0.2).
        secrets = [line.strip() for line in done.stdout.splitlines() if line.startswith("sluice_")]
        if done.returncode != 0 or len(secrets) != 1:
            raise BenchError(f"sluice apikey create failed:\n{done.stdout}\n{done.stderr}")
        return secrets[0]


def db_delta(env: Env, database: str, before: dict[str, int], result: LoadResult) -> None:
    """PostgreSQL's view of a phase: sessions opened a second, transactions a request."""
    after = env.dbs.stats(database)
    delta = {k: after[k] - before[k] for k in after}
    delta["sessions"] -= 1  # the stats query's own
    requests = max(1, result.ok + result.non2xx)
    result.db = {
        "sessions_per_s": round(delta["sessions"] / result.duration_s, 1),
        "commits_per_request": round(delta["commits"] / requests, 2),
        "rollbacks_per_request": round(delta["rollbacks"] / requests, 2),
        "rows_inserted_per_request": round(delta["inserted"] / requests, 2),
    }


@dataclass(frozen=True)
class Target:
    """A running server under test."""

    name: str
    child: Child
    url: str
    api_key: str
    database: str


def saturate(env: Env, target: Target) -> LoadResult:
    """Warm up, then wrk as fast as it goes from ``connections`` connections."""
    opts = env.opts
    name, child, url, api_key, database = (
        target.name,
        target.child,
        target.url,
        target.api_key,
        target.database,
    )
    wait_quiet(opts.quiet_wait_s)
    if opts.warmup_s:
        run_wrk(
            url,
            duration_s=opts.warmup_s,
            connections=opts.connections,
            threads=opts.wrk_threads,
            api_key=api_key,
            users=opts.users,
        )
    say(f"saturation on {name}: {opts.connections} connections for {opts.saturation_s}s")
    before = env.dbs.stats(database)
    meter = CpuMeter([child.pid], env.anvil_pid, env.dbs.prefix)
    with profiling(opts.profile_dir, {f"{name}-saturation": child.pid}, opts.saturation_s - 1):
        result = run_wrk(
            url,
            duration_s=opts.saturation_s,
            connections=opts.connections,
            threads=opts.wrk_threads,
            api_key=api_key,
            users=opts.users,
        )
    result.cpu = meter.stop()
    db_delta(env, database, before, result)
    say(
        f"  {name}: {result.ok_per_s:.1f} 2xx/s, {result.errors} errors, "
        f"p99 {result.latency_ms['p99']:.1f} ms; CPU {format_cpu(result.cpu)}"
        f"{_other_note(meter)}; PostgreSQL {result.db}"
    )
    return result


def fixed_rate(env: Env, target: Target) -> LoadResult:
    """wrk on a fixed schedule of ``rate`` requests a second."""
    opts = env.opts
    name, child, url, api_key, database = (
        target.name,
        target.child,
        target.url,
        target.api_key,
        target.database,
    )
    wait_quiet(opts.quiet_wait_s)
    say(f"latency on {name}: {opts.rate}/s on a fixed schedule for {opts.latency_s}s (wrk)")
    before = env.dbs.stats(database)
    meter = CpuMeter([child.pid], env.anvil_pid, env.dbs.prefix)
    result = run_wrk(
        url,
        duration_s=opts.latency_s,
        connections=opts.latency_connections,
        threads=opts.wrk_threads,
        api_key=api_key,
        users=opts.users,
        rate=opts.rate,
    )
    result.cpu = meter.stop()
    db_delta(env, database, before, result)
    lat = result.latency_ms
    say(
        f"  {name}: {result.ok_per_s:.1f} 2xx/s, p50 {lat['p50']:.1f} p95 {lat['p95']:.1f} "
        f"p99 {lat['p99']:.1f} ms, {result.errors} errors; CPU {format_cpu(result.cpu)}"
        f"{_other_note(meter)}; PostgreSQL {result.db}"
    )
    return result


def fixed_rate_hey(env: Env, target: Target) -> LoadResult:
    """hey -c workers -q rate/workers: the issue's recipe, as a cross-check."""
    opts = env.opts
    name, child, url, api_key = target.name, target.child, target.url, target.api_key
    wait_quiet(opts.quiet_wait_s)
    say(f"latency on {name}: hey -c {opts.hey_workers} at {opts.rate}/s for {opts.latency_s}s")
    meter = CpuMeter([child.pid], env.anvil_pid, env.dbs.prefix)
    result = run_hey(
        url, duration_s=opts.latency_s, rate=opts.rate, workers=opts.hey_workers, api_key=api_key
    )
    result.cpu = meter.stop()
    lat = result.latency_ms
    say(
        f"  {name} (hey): {result.ok_per_s:.1f} 2xx/s, p50 {lat.get('p50', 0):.1f} "
        f"p95 {lat.get('p95', 0):.1f} p99 {lat.get('p99', 0):.1f} ms, {result.errors} errors; "
        f"CPU {format_cpu(result.cpu)}{_other_note(meter)}"
    )
    return result


def intake_phases(env: Env) -> None:
    """Saturation and latency, on the baseline and on Sluice's API (no workers)."""
    opts = env.opts
    database = env.dbs.create("api")
    api_key = env.api_key(database)  # migrates the database too
    res = env.results

    child, url = env.start_baseline(database)
    target = Target("baseline", child, url, "", database)
    if "saturation" in opts.phases:
        res.baseline_saturation = saturate(env, target)
    if "latency" in opts.phases and opts.baseline_latency:
        res.baseline_latency = fixed_rate(env, target)
    child.stop()

    child, url = env.start_sluice("sluice-api", database, workers=False)
    target = Target("sluice", child, url, api_key, database)
    if "saturation" in opts.phases:
        res.saturation = saturate(env, target)
    if "latency" in opts.phases:
        res.latency = fixed_rate(env, target)
        if opts.hey:
            res.latency_hey = fixed_rate_hey(env, target)
    child.stop()


def credit_users(url: str, api_key: str, users: int) -> None:
    """Credit bench-user-1..N with plenty of ETH in Sluice's ledger (not on chain)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for n in range(1, users + 1):
            response = client.post(
                "/v1/admin/ledger/credits",
                json={
                    "userId": f"bench-user-{n}",
                    "network": setup.NETWORK,
                    "amount": USER_CREDIT,
                    "reference": f"bench-credit-{n}",
                },
            )
            if response.status_code not in (200, 201):
                raise BenchError(f"credit failed: {response.status_code} {response.text}")


def _statuses(env: Env, database: str) -> dict[str, int]:
    rows = env.dbs.query(database, "SELECT status, count(*) FROM withdrawals GROUP BY status")
    return {str(status): int(count) for status, count in rows}


def drain(env: Env, database: str) -> dict[str, int]:
    """Wait until every withdrawal is final (or the drain timeout); the counts by status."""
    deadline = time.monotonic() + env.opts.drain_timeout_s
    while True:
        counts = _statuses(env, database)
        open_ = sum(n for s, n in counts.items() if s not in FINAL_STATUSES)
        if open_ == 0:
            return counts
        if time.monotonic() > deadline:
            say(f"  drain timed out with {open_} withdrawals not final: {counts}")
            return counts
        time.sleep(1.0)


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def pipeline_stats(env: Env, database: str, window_s: int) -> dict[str, Any]:
    """Completion figures from the database: times are the withdrawals' and events' own."""
    rows = env.dbs.query(
        database,
        "SELECT w.status, w.error_code, w.created_at, e.at FROM withdrawals w "
        "LEFT JOIN withdrawal_events e ON e.withdrawal_id = w.id AND e.to_status = 'COMPLETED'",
    )
    if not rows:
        raise BenchError("the pipeline phase submitted nothing")
    start: datetime = min(row[2] for row in rows)
    end = start + timedelta(seconds=window_s)
    half = start + timedelta(seconds=window_s / 2)
    done_at: list[datetime] = [row[3] for row in rows if row[3] is not None]
    failed: dict[str, int] = {}
    for row in rows:
        if row[0] == "FAILED":
            failed[str(row[1])] = failed.get(str(row[1]), 0) + 1
    e2e = [(row[3] - row[2]).total_seconds() * 1000 for row in rows if row[3] is not None]
    in_window = sum(1 for at in done_at if at <= end)
    second_half = sum(1 for at in done_at if half < at <= end)
    span = (max(done_at) - start).total_seconds() if done_at else 0.0

    def query(sql: str) -> list[Any]:
        return env.dbs.query(database, sql)

    broadcast = batching.broadcast_delays_ms(query)
    return {
        "submitted": len(rows),
        "completed": len(done_at),
        "completed_in_window": in_window,
        "completed_per_s": in_window / window_s,
        "completed_per_s_second_half": second_half / (window_s / 2),
        "drain_per_s": len(done_at) / span if span > 0 else 0.0,
        "failed": failed,
        "not_final": sum(1 for row in rows if row[0] not in FINAL_STATUSES),
        "e2e_ms": {f"p{p}": _percentile(e2e, p) for p in (50, 95, 99)}
        | {"max": max(e2e, default=0)},
        "transactions": batching.transaction_figures(query),
        "broadcast_ms": {f"p{p}": _percentile(broadcast, p) for p in (50, 95, 99)}
        | {"max": max(broadcast, default=0)},
    }


def pipeline_run(
    env: Env,
    name: str,
    *,
    rate: float,
    connections: int,
    networks_file: Path | None = None,
    recipients: Path | None = None,
) -> PipelineResult:
    """Withdrawals at ``rate`` a second, for the window, through API and workers to COMPLETED
    on Anvil, on a fresh database; then the drain. Batching is on if ``networks_file`` says so
    (``recipients``: the file wrk draws the recipients from, else fresh ones)."""
    opts = env.opts
    batched = networks_file is not None
    database = env.dbs.create(name.replace("-", "_"))
    api_key = env.api_key(database)
    children, url = env.start_pipeline(f"sluice-{name}", database, networks_file=networks_file)
    credit_users(url, api_key, opts.users)
    wait_quiet(opts.quiet_wait_s)
    topology = (
        "one `sluice serve` (memory:// queue)"
        if opts.pipeline_mode == "single"
        else f"`serve --no-workers` + {opts.pipeline_workers} `sluice worker` (Redis Streams)"
    )
    if batched:
        topology += f", batching on (window {batching.WINDOW_S:g}s, max {batching.MAX_SIZE})"
    say(
        f"{name}: {rate:g}/s offered for {opts.pipeline_s}s to {topology}; "
        f"Anvil {f'block time {opts.block_time:g}s' if opts.block_time else 'auto-mining'}"
    )
    pids = [child.pid for child in children.values()]
    meter = CpuMeter(pids, env.anvil_pid, env.dbs.prefix)
    began = time.monotonic()
    before = {role: _pid_cpu_s(child.pid) for role, child in children.items()}
    targets = {f"{name}-{role}": child.pid for role, child in children.items()}
    with profiling(opts.profile_dir, targets, opts.pipeline_s - 1):
        submit = run_wrk(
            url,
            duration_s=opts.pipeline_s,
            connections=connections,
            threads=1,
            api_key=api_key,
            users=opts.users,
            amount=PIPELINE_AMOUNT,
            rate=rate,
            recipients=recipients,
        )
    cpu = meter.stop()
    elapsed = time.monotonic() - began
    per_process = {
        role: round(100 * (_pid_cpu_s(child.pid) - before[role]) / elapsed, 1)
        for role, child in children.items()
    }
    backlog = _statuses(env, database)
    say(
        f"  submitted {submit.ok} ({submit.ok_per_s:.1f}/s, {submit.errors} errors); "
        f"at the window's end: {backlog}"
    )
    counts = drain(env, database)
    for child in children.values():
        child.stop()
    stats = pipeline_stats(env, database, opts.pipeline_s)
    result = PipelineResult(
        window_s=opts.pipeline_s,
        offered_per_s=rate,
        submit=submit,
        cpu=cpu,
        topology=topology,
        process_cpu=per_process,
        batched=batched,
        **stats,
    )
    tx = result.transactions
    say(
        f"  completed {result.completed_in_window} in the window: "
        f"{result.completed_per_s:.1f}/s ({result.completed_per_s_second_half:.1f}/s in its "
        f"second half); final {counts}; {tx['transactions']} transactions ({tx['batches']} "
        f"batches, largest {tx['largest_batch']}); request → BROADCASTING p95 "
        f"{result.broadcast_ms['p95']:.0f} ms; CPU {format_cpu(cpu)}{_other_note(meter)}; "
        f"by process (% of a core) {result.process_cpu}"
    )
    return result


def pipeline_phase(env: Env) -> PipelineResult:
    """The pipeline at ``--pipeline-rate``, batching off, fresh recipients."""
    opts = env.opts
    return pipeline_run(
        env, "pipeline", rate=opts.pipeline_rate, connections=opts.pipeline_connections
    )


def set_up_batching(env: Env) -> None:
    """Before any Sluice starts: the hot wallet's batch contract, approved for the token, and
    the fixed recipients made to exist."""
    say(
        f"batching: deploying the hot wallet's BatchPayout, approving it for the token, "
        f"funding {env.opts.batched_recipients} fixed recipients with 1 wei each"
    )
    env.batch = batching.prepare(
        env.anvil.rpc_url,
        env.keystore,
        PASSPHRASE,
        token=env.token,
        recipients=env.opts.batched_recipients,
        workdir=env.workdir,
    )
    say(f"  BatchPayout {env.batch.contract} of hot wallet {env.batch.wallet}")


def batched_phase(env: Env) -> tuple[PipelineResult, PipelineResult]:
    """The pipeline with batching on: at ``--pipeline-batched-rate`` (throughput), then at
    ``--pipeline-batched-latency-rate`` (request → BROADCASTING), each on a fresh database."""
    opts = env.opts
    if env.batch is None:
        raise BenchError("the batch contract was not set up")
    networks = env.batched_networks_file("batched", env.anvil.rpc_url)
    throughput = pipeline_run(
        env,
        "pipeline-batched",
        rate=opts.pipeline_batched_rate,
        connections=opts.pipeline_batched_connections,
        networks_file=networks,
        recipients=env.batch.recipients_file,
    )
    if throughput.submitted_per_s < 0.95 * opts.pipeline_batched_rate:
        say(
            f"  intake accepted {throughput.submitted_per_s:.1f}/s of the "
            f"{opts.pipeline_batched_rate:g}/s offered"
        )
    latency = pipeline_run(
        env,
        "pipeline-batched-latency",
        rate=opts.pipeline_batched_latency_rate,
        connections=opts.pipeline_batched_connections,
        networks_file=networks,
        recipients=env.batch.recipients_file,
    )
    return throughput, latency


# ── probes: what a request costs on the wire ───────────────────────────────────────────────────


def probe_intake(env: Env) -> dict[str, Any]:
    """PostgreSQL round trips and connections per accepted request, Sluice and baseline."""
    opts = env.opts
    database = env.dbs.create("probe")
    api_key = env.api_key(database)
    server = make_url(opts.postgres_url)
    out: dict[str, Any] = {}
    for name in ("baseline", "sluice"):
        counter = PgCounter(server.host or HOST, server.port or 5432)
        proxy = ProxyThread(counter)
        port = proxy.start()
        try:
            if name == "sluice":
                through = env.dbs.url(make_url(database).database or "", port=port)
                child, url = env.start_sluice("sluice-probe", through, workers=False)
            else:
                child, url = env.start_baseline(database, port=port)
            run_wrk(
                url,
                duration_s=1,
                connections=opts.connections,
                threads=1,
                api_key=api_key,
                users=opts.users,
            )  # warm: prepared statements, pool
            before, conns_before = counter.snapshot()
            load = run_wrk(
                url,
                duration_s=opts.probe_s,
                connections=opts.connections,
                threads=opts.wrk_threads,
                api_key=api_key,
                users=opts.users,
            )
            after, conns_after = counter.snapshot()
            child.stop()
        finally:
            proxy.stop()
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        requests = max(1, load.ok + load.non2xx)
        out[name] = {
            "requests": requests,
            "round_trips_per_request": counter.round_trips(delta) / requests,
            "connections_per_request": (conns_after - conns_before) / requests,
            "messages_per_request": {k: round(v / requests, 2) for k, v in sorted(delta.items())},
        }
        say(
            f"probe {name}: {out[name]['round_trips_per_request']:.2f} PostgreSQL round trips "
            f"and {out[name]['connections_per_request']:.3f} new connections per request"
        )
    return out


def probe_pipeline(env: Env, *, batched: bool = False) -> dict[str, Any]:
    """PostgreSQL round trips and JSON-RPC calls per withdrawal, end to end: unbatched at up to
    50/s to fresh recipients, or ``batched`` at ``--pipeline-batched-latency-rate`` to 20 of the
    fixed recipients (`batching.PROBE_RECIPIENTS`), after a warm-up of `PROBE_WARMUP_S` run to
    the end and not counted: the batcher's look-ups of whether each recipient exists (one per
    recipient in each worker's first batches, then remembered) are behind it."""
    opts = env.opts
    database = env.dbs.create("probe_batched" if batched else "probe_pipeline")
    api_key = env.api_key(database)
    server = make_url(opts.postgres_url)
    pg = PgCounter(server.host or HOST, server.port or 5432)
    rpc = RpcCounter(HOST, env.anvil.port)
    pg_proxy, rpc_proxy = ProxyThread(pg), ProxyThread(rpc)
    pg_port, rpc_port = pg_proxy.start(), rpc_proxy.start()
    try:
        rpc_url = f"http://{HOST}:{rpc_port}"
        networks = env.workdir / "networks-probe.toml"
        recipients: Path | None = None
        rate = min(50.0, opts.pipeline_rate)
        if batched:
            networks = env.batched_networks_file("probe-batched", rpc_url)
            recipients = env.batch.probe_recipients_file if env.batch else None
            rate = opts.pipeline_batched_latency_rate
        else:
            setup.write_networks_file(
                networks,
                rpc_url=rpc_url,
                keystore=env.keystore,
                token=Address(env.token),
                confirmations=1,
                poll_interval_s=opts.poll_interval_s,
            )
        through = env.dbs.url(make_url(database).database or "", port=pg_port)
        name = "sluice-probe-batched" if batched else "sluice-probe"
        children, url = env.start_pipeline(name, through, networks_file=networks)
        credit_users(url, api_key, opts.users)
        warm: dict[str, int] = {}
        if batched:
            run_wrk(
                url,
                duration_s=PROBE_WARMUP_S,
                connections=8,
                threads=1,
                api_key=api_key,
                users=opts.users,
                amount=PIPELINE_AMOUNT,
                rate=rate,
                recipients=recipients,
            )
            warm = drain(env, database)
        first_seq = int(
            env.dbs.query(database, "SELECT coalesce(max(seq), 0) FROM withdrawals")[0][0]
        )
        pg_before, pg_conns_before = pg.snapshot()
        rpc_before, rpc_conns_before = rpc.snapshot()
        run_wrk(
            url,
            duration_s=opts.probe_s,
            connections=8,
            threads=1,
            api_key=api_key,
            users=opts.users,
            amount=PIPELINE_AMOUNT,
            rate=rate,
            recipients=recipients,
        )
        counts = drain(env, database)
        for child in children.values():
            child.stop()
        pg_after, pg_conns_after = pg.snapshot()
        rpc_after, rpc_conns_after = rpc.snapshot()
    finally:
        pg_proxy.stop()
        rpc_proxy.stop()
    transactions = batching.transaction_figures(
        lambda sql: env.dbs.query(database, sql), after_seq=first_seq
    )
    counts = {k: n - warm.get(k, 0) for k, n in counts.items()}
    completed = max(1, counts.get("COMPLETED", 0))
    pg_delta = {k: pg_after.get(k, 0) - pg_before.get(k, 0) for k in pg_after}
    rpc_delta = {k: rpc_after.get(k, 0) - rpc_before.get(k, 0) for k in rpc_after}
    result = {
        "offered_per_s": rate,
        "withdrawals": sum(counts.values()),
        "completed": counts.get("COMPLETED", 0),
        "transactions": transactions["transactions"],
        "round_trips_per_withdrawal": pg.round_trips(pg_delta) / completed,
        "rpc_calls_per_withdrawal": sum(rpc_delta.values()) / completed,
        "pg_connections_per_withdrawal": (pg_conns_after - pg_conns_before) / completed,
        "rpc_connections_per_withdrawal": (rpc_conns_after - rpc_conns_before) / completed,
        "rpc_calls_by_method": {
            k: round(v / completed, 2) for k, v in sorted(rpc_delta.items(), key=lambda kv: -kv[1])
        },
    }
    say(
        f"probe {'batched pipeline' if batched else 'pipeline'}: "
        f"{result['round_trips_per_withdrawal']:.1f} PostgreSQL round trips and "
        f"{result['rpc_calls_per_withdrawal']:.1f} JSON-RPC calls per completed withdrawal "
        f"({result['completed']} in {result['transactions']} transactions)"
    )
    return result


# ── report ────────────────────────────────────────────────────────────────────────────────────


def machine_info(dbs: Databases) -> dict[str, Any]:
    """The machine, the OS and the versions that matter."""
    cpu_model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gib = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')

    def version(argv: list[str]) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv of known tools
                argv, capture_output=True, text=True, timeout=10, check=False
            )
        except OSError:
            return "?"
        text_out = (done.stdout or done.stderr).strip().splitlines()
        return text_out[0] if text_out else "?"

    anvil = anvil_binary()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model,
        "memory_gib": memory_gib,
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": dbs.server_version(),
        "wrk": version(["wrk", "--version"]).split(" Copyright")[0],
        "hey": version(["dpkg-query", "-W", "-f", "${Version}", "hey"]),
        "anvil": version([str(anvil), "--version"]) if anvil else "?",
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _mark(ok: bool | None) -> str:
    return {True: "MET", False: "MISSED", None: "not run"}[ok]


def _r1(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _saturation_lines(res: Results, opts: Options) -> list[str]:
    lines = [
        f"Saturation — POST /v1/withdrawals, wrk -t {opts.wrk_threads} -c {opts.connections} "
        f"-d {opts.saturation_s}s (CPU in % of one core)"
    ]
    for name, r in (("Sluice", res.saturation), ("baseline", res.baseline_saturation)):
        if r is not None:
            lines.append(
                f"  {name:9} {r.ok_per_s:8.1f} accepted/s  errors {r.errors:<5} "
                f"p50 {_ms(r.latency_ms['p50'])}  p99 {_ms(r.latency_ms['p99'])}"
            )
            lines.append(f"            CPU {format_cpu(r.cpu)}")
            if r.db:
                lines.append(f"            PostgreSQL {r.db}")
    if res.ratio is not None:
        lines.append(
            f"  ratio     {res.ratio:.2f} of the baseline (target ≥ {TARGET_RATIO}, 0 errors): "
            f"{_mark(res.targets(opts.rate)['saturation'])}"
        )
    return [*lines, ""]


def _latency_lines(res: Results, opts: Options) -> list[str]:
    lines = [
        f"Latency — {opts.rate} requests/s offered on a fixed schedule for {opts.latency_s}s "
        f"(wrk -c {opts.latency_connections}; hey -c {opts.hey_workers} as a cross-check)"
    ]
    runs = (
        ("Sluice", res.latency),
        ("baseline", res.baseline_latency),
        ("Sluice/hey", res.latency_hey),
    )
    for name, r in runs:
        if r is not None:
            lines.append(
                f"  {name:10} {r.ok_per_s:7.1f}/s achieved  p50 {_ms(r.latency_ms.get('p50'))}"
                f"  p95 {_ms(r.latency_ms.get('p95'))}  p99 {_ms(r.latency_ms.get('p99'))}"
                f"  errors {r.errors}"
            )
            lines.append(f"             CPU {format_cpu(r.cpu)}")
    if res.latency is not None:
        met = res.targets(opts.rate)["latency"]
        lines.append(f"  target p99 ≤ {TARGET_P99_MS:g} ms at {opts.rate}/s: {_mark(met)}")
    return [*lines, ""]


def _pipeline_lines(pipe: PipelineResult, opts: Options) -> list[str]:
    chain = f"block time {opts.block_time:g}s" if opts.block_time else "auto-mining"
    e2e = pipe.e2e_ms
    met = pipe.completed_per_s >= TARGET_COMPLETED_PER_S
    return [
        f"Pipeline — {pipe.offered_per_s:g}/s offered for {pipe.window_s}s to {pipe.topology}, "
        f"Anvil {chain}, confirmations 1",
        f"  submitted {pipe.submitted} ({pipe.submit.errors} errors); COMPLETED in the window "
        f"{pipe.completed_in_window} → {pipe.completed_per_s:.1f}/s (second half "
        f"{pipe.completed_per_s_second_half:.1f}/s; until drained {pipe.drain_per_s:.1f}/s)",
        f"  request → COMPLETED: p50 {_ms(e2e['p50'])}  p95 {_ms(e2e['p95'])}  "
        f"p99 {_ms(e2e['p99'])}; failed {pipe.failed or 0}; not final {pipe.not_final}",
        f"  CPU {format_cpu(pipe.cpu)}; by process {pipe.process_cpu}",
        f"  target ≥ {TARGET_COMPLETED_PER_S:g} completed/s: {_mark(met)}",
        "",
    ]


def _batched_lines(res: Results, opts: Options) -> list[str]:
    chain = f"block time {opts.block_time:g}s" if opts.block_time else "auto-mining"
    lines = [
        f"Batched pipeline — batching on (window {batching.WINDOW_S:g}s, max "
        f"{batching.MAX_SIZE}), recipients drawn from {opts.batched_recipients} existing "
        f"accounts, wrk -c {opts.pipeline_batched_connections}, Anvil {chain}, confirmations 1"
    ]
    for label, pipe in (
        ("throughput", res.pipeline_batched),
        ("latency", res.pipeline_batched_latency),
    ):
        if pipe is None:
            continue
        tx, e2e, bc = pipe.transactions, pipe.e2e_ms, pipe.broadcast_ms
        lines += [
            f"  {label}: {pipe.offered_per_s:g}/s offered for {pipe.window_s}s, intake "
            f"accepted {pipe.submitted_per_s:.1f}/s ({pipe.submitted} submitted, "
            f"{pipe.submit.errors} errors)",
            f"    COMPLETED in the window {pipe.completed_in_window} → "
            f"{pipe.completed_per_s:.1f}/s (second half {pipe.completed_per_s_second_half:.1f}/s; "
            f"until drained {pipe.drain_per_s:.1f}/s); failed {pipe.failed or 0}; not final "
            f"{pipe.not_final}",
            f"    {tx['transactions']} transactions: {tx['batches']} batches carrying "
            f"{tx['batched_withdrawals']} withdrawals (largest {tx['largest_batch']})",
            f"    request → BROADCASTING: p50 {_ms(bc['p50'])}  p95 {_ms(bc['p95'])}  "
            f"p99 {_ms(bc['p99'])}; → COMPLETED: p50 {_ms(e2e['p50'])}  p95 {_ms(e2e['p95'])}",
            f"    CPU {format_cpu(pipe.cpu)}; by process {pipe.process_cpu}",
        ]
    return [*lines, ""]


def _probe_lines(probe: dict[str, Any]) -> list[str]:
    lines = ["Probe — the same requests through counting proxies (not timed)"]
    for name in ("sluice", "baseline"):
        if name in probe:
            p = probe[name]
            lines.append(
                f"  {name:9} {p['round_trips_per_request']:.2f} PostgreSQL round trips, "
                f"{p['connections_per_request']:.3f} new connections per request; "
                f"messages {p['messages_per_request']}"
            )
    for part, label in (("pipeline", "pipeline"), ("pipeline_batched", "batched ")):
        if part not in probe:
            continue
        p = probe[part]
        lines.append(
            f"  {label}  {p['round_trips_per_withdrawal']:.1f} PostgreSQL round trips "
            f"({p['pg_connections_per_withdrawal']:.2f} new connections) and "
            f"{p['rpc_calls_per_withdrawal']:.1f} JSON-RPC calls "
            f"({p['rpc_connections_per_withdrawal']:.2f} new connections) per completed "
            f"withdrawal, {p['offered_per_s']:g}/s offered, {p['completed']} completed in "
            f"{p['transactions']} transactions: {p['rpc_calls_by_method']}"
        )
    return [*lines, ""]


def summary(
    res: Results, opts: Options, machine: dict[str, Any], started: datetime, command: str
) -> str:
    """The human summary."""
    lines = [
        "",
        f"Sluice benchmark — {started:%Y-%m-%d %H:%M} UTC",
        f"machine: {machine['nproc']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, "
        f"{machine['os']}, Python {machine['python']}, PostgreSQL {machine['postgresql']}",
        f"command: {command}",
        "",
    ]
    if res.saturation or res.baseline_saturation:
        lines += _saturation_lines(res, opts)
    if res.latency or res.baseline_latency or res.latency_hey:
        lines += _latency_lines(res, opts)
    if res.pipeline:
        lines += _pipeline_lines(res.pipeline, opts)
    if res.pipeline_batched or res.pipeline_batched_latency:
        lines += _batched_lines(res, opts)
    if res.probe:
        lines += _probe_lines(res.probe)
    return "\n".join(lines)


def _probe_figures(probe: dict[str, Any]) -> dict[str, float | None]:
    def get(part: str, key: str, digits: int = 1) -> float | None:
        return round(probe[part][key], digits) if part in probe else None

    return {
        "pg_round_trips_per_request": get("sluice", "round_trips_per_request"),
        "baseline_pg_round_trips_per_request": get("baseline", "round_trips_per_request"),
        "pg_connections_per_request": get("sluice", "connections_per_request", 3),
        "pg_round_trips_per_withdrawal": get("pipeline", "round_trips_per_withdrawal"),
        "rpc_calls_per_withdrawal": get("pipeline", "rpc_calls_per_withdrawal"),
        "rpc_connections_per_withdrawal": get("pipeline", "rpc_connections_per_withdrawal", 2),
        "pg_round_trips_per_withdrawal_batched": get(
            "pipeline_batched", "round_trips_per_withdrawal"
        ),
        "rpc_calls_per_withdrawal_batched": get("pipeline_batched", "rpc_calls_per_withdrawal"),
    }


def _batched_figures(res: Results) -> dict[str, Any]:
    """The batched phase's details (None: not run)."""
    thr, lat = res.pipeline_batched, res.pipeline_batched_latency
    return {
        "pipeline_batched_offered_per_s": thr.offered_per_s if thr else None,
        "pipeline_batched_submitted_per_s": _r1(thr.submitted_per_s) if thr else None,
        "pipeline_batched_submitted": thr.submitted if thr else None,
        "pipeline_batched_submit_errors": thr.submit.errors if thr else None,
        "pipeline_batched_completed": thr.completed if thr else None,
        "pipeline_batched_not_final": thr.not_final if thr else None,
        "completed_batched_per_s_second_half": (
            _r1(thr.completed_per_s_second_half) if thr else None
        ),
        "batches_batched": thr.transactions["batches"] if thr else None,
        "largest_batch_batched": thr.transactions["largest_batch"] if thr else None,
        "pipeline_batched_e2e_p50_ms": _r1(thr.e2e_ms["p50"]) if thr else None,
        "pipeline_batched_e2e_p99_ms": _r1(thr.e2e_ms["p99"]) if thr else None,
        "batched_latency_offered_per_s": lat.offered_per_s if lat else None,
        "batched_latency_submitted_per_s": _r1(lat.submitted_per_s) if lat else None,
        "batched_latency_completed_per_s": _r1(lat.completed_per_s) if lat else None,
        "batched_latency_failed": lat.failed_total if lat else None,
        "batched_latency_transactions": lat.transactions["transactions"] if lat else None,
        "request_to_broadcast_p50_ms": _r1(lat.broadcast_ms["p50"]) if lat else None,
        "request_to_broadcast_p99_ms": _r1(lat.broadcast_ms["p99"]) if lat else None,
        "cpu_pipeline_batched": thr.cpu if thr else None,
        "cpu_pipeline_batched_by_process": thr.process_cpu if thr else None,
    }


def figures(
    res: Results, opts: Options, machine: dict[str, Any], started: datetime
) -> dict[str, Any]:
    """The JSON object: the issue's keys first, then the details."""
    sat, base, lat, hey = res.saturation, res.baseline_saturation, res.latency, res.latency_hey
    base_lat, pipe = res.baseline_latency, res.pipeline
    batched, batched_lat = res.pipeline_batched, res.pipeline_batched_latency
    errors = sum(r.errors for r in (sat, lat, hey) if r is not None)
    errors += sum(p.submit.errors for p in (pipe, batched, batched_lat) if p is not None)
    return {
        "accepted_per_s": _r1(sat.ok_per_s) if sat else None,
        "baseline_per_s": _r1(base.ok_per_s) if base else None,
        "ratio": None if res.ratio is None else round(res.ratio, 3),
        "errors": errors,
        "rate_per_s": _r1(lat.ok_per_s) if lat else None,
        "p50_ms": _r1(lat.latency_ms["p50"]) if lat else None,
        "p95_ms": _r1(lat.latency_ms["p95"]) if lat else None,
        "p99_ms": _r1(lat.latency_ms["p99"]) if lat else None,
        "completed_per_s": _r1(pipe.completed_per_s) if pipe else None,
        "completed_batched_per_s": _r1(batched.completed_per_s) if batched else None,
        "failed_batched": batched.failed_total if batched else None,
        "transactions_batched": batched.transactions["transactions"] if batched else None,
        "request_to_broadcast_p95_ms": _r1(batched_lat.broadcast_ms["p95"])
        if batched_lat
        else None,
        "saturation_errors": sat.errors if sat else None,
        "baseline_errors": base.errors if base else None,
        "latency_errors": lat.errors if lat else None,
        "baseline_rate_per_s": _r1(base_lat.ok_per_s) if base_lat else None,
        "baseline_p99_ms": _r1(base_lat.latency_ms["p99"]) if base_lat else None,
        "hey_rate_per_s": _r1(hey.ok_per_s) if hey else None,
        "hey_p50_ms": _r1(hey.latency_ms.get("p50")) if hey else None,
        "hey_p95_ms": _r1(hey.latency_ms.get("p95")) if hey else None,
        "hey_p99_ms": _r1(hey.latency_ms.get("p99")) if hey else None,
        "hey_errors": hey.errors if hey else None,
        "pipeline_topology": pipe.topology if pipe else None,
        "pipeline_offered_per_s": pipe.offered_per_s if pipe else None,
        "pipeline_submitted": pipe.submitted if pipe else None,
        "pipeline_submit_errors": pipe.submit.errors if pipe else None,
        "pipeline_completed": pipe.completed if pipe else None,
        "pipeline_failed": sum(pipe.failed.values()) if pipe else None,
        "completed_per_s_second_half": _r1(pipe.completed_per_s_second_half) if pipe else None,
        "pipeline_e2e_p50_ms": _r1(pipe.e2e_ms["p50"]) if pipe else None,
        "pipeline_e2e_p99_ms": _r1(pipe.e2e_ms["p99"]) if pipe else None,
        **_batched_figures(res),
        **_probe_figures(res.probe),
        "db_saturation": sat.db if sat else None,
        "db_baseline_saturation": base.db if base else None,
        "cpu_saturation": sat.cpu if sat else None,
        "cpu_baseline_saturation": base.cpu if base else None,
        "cpu_pipeline": pipe.cpu if pipe else None,
        "cpu_pipeline_by_process": pipe.process_cpu if pipe else None,
        "targets_met": res.targets(opts.rate),
        "durations_s": {
            "saturation": opts.saturation_s,
            "latency": opts.latency_s,
            "pipeline": opts.pipeline_s,
            "warmup": opts.warmup_s,
        },
        "date": started.isoformat(timespec="seconds"),
        "machine": machine,
    }


# ── main ──────────────────────────────────────────────────────────────────────────────────────


def _check_tools() -> None:
    missing = [tool for tool in ("wrk", "hey") if shutil.which(tool) is None]
    if missing:
        raise BenchError(
            f"missing {', '.join(missing)}: `make bench` installs them (apt-get install -y wrk hey)"
        )
    if anvil_binary() is None:
        raise BenchError("the pinned anvil is not installed: run `make tools`")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(opts: Options, command: str) -> dict[str, Any]:
    """Everything, inside one clean-up scope."""
    _check_tools()
    started = datetime.now(UTC)
    with asyncio.Runner() as runner, contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
        if opts.keep:
            stack.callback(say, f"kept the work directory {workdir}")
        else:
            stack.callback(shutil.rmtree, workdir, True)
        dbs = Databases(opts.postgres_url, runner)
        stack.callback(dbs.drop_all)  # runs after every process is stopped (LIFO)
        machine = machine_info(dbs)
        say(f"machine: {machine}")

        anvil = AnvilProcess()
        anvil.start(block_time=opts.block_time)
        stack.callback(anvil.stop)
        say(f"anvil on {anvil.rpc_url}; preparing keystore, token and networks file")
        settings, chain = runner.run(
            prepare(
                anvil,
                workdir,
                database_url=dbs.url("unused"),  # never opened: each phase makes its own
                confirmations=1,
                poll_interval_s=opts.poll_interval_s,
            )
        )
        env = Env(
            opts=opts,
            workdir=workdir,
            runner=runner,
            stack=stack,
            dbs=dbs,
            anvil=anvil,
            networks_file=settings.networks_file,
            keystore=setup.hot_wallet(workdir, PASSPHRASE, fast_kdf=True),
            token=str(chain.token),
            retry_base_s=settings.retry_base_s,
            retry_max_s=settings.retry_max_s,
            anvil_pid=find_pid("anvil", anvil.port),
        )
        if "batched" in opts.phases:
            set_up_batching(env)  # before any Sluice starts
        if opts.phases & {"saturation", "latency"}:
            intake_phases(env)
        if "pipeline" in opts.phases:
            env.results.pipeline = pipeline_phase(env)
        if "batched" in opts.phases:
            batched = batched_phase(env)
            env.results.pipeline_batched, env.results.pipeline_batched_latency = batched
        if opts.probe:
            probe: dict[str, Any] = {}
            if opts.phases & {"saturation", "latency"}:
                probe |= probe_intake(env)
            if "pipeline" in opts.phases:
                probe["pipeline"] = probe_pipeline(env)
            if "batched" in opts.phases:
                probe["pipeline_batched"] = probe_pipeline(env, batched=True)
            env.results.probe = probe
        say("stopping everything")
        print(summary(env.results, opts, machine, started, command), flush=True)
        return figures(env.results, opts, machine, started)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench; print the summary, then the JSON line last."""
    opts = parse_args(argv)
    command = " ".join([".venv/bin/python bench/run.py", *(argv or sys.argv[1:])])
    # Our own handler, not Python's default one: asyncio.Runner replaces the default one while it
    # runs and can then swallow the interrupt if its task finishes anyway.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        result = run(opts, command)
    except BenchError as exc:
        say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        say("interrupted; everything it started is stopped and removed")
        return 130
    print(json.dumps(result, separators=(",", ":")), flush=True)
    if opts.check and not all(v is not False for v in result["targets_met"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
