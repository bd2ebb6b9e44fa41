"""`kill -9` of `sluice dev` with withdrawals in every stage, then start it again.

The issue's must-hold: every withdrawal reaches a final status, and no transfer reaches the chain
twice. This runs the real command (Anvil child, SQLite, keystore, dev.json) in a subprocess, kills
it with SIGKILL while withdrawals are PENDING, VALIDATING, SIGNED and BROADCASTING, restarts it on
the same data directory and ports, and checks the chain and the ledger to the wei.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from eth_account import Account

from sluice.devnet.anvil import AnvilError, anvil_binary, free_port, port_is_free
from sluice.devnet.dev import _wait_for_port

PASSPHRASE = "crash-recovery-test-passphrase"
DEMO_USER = "demo-user"
NATIVE_CREDIT = Decimal("100")
TOKEN_CREDIT = Decimal("10000")
AMOUNT = "0.01"
WAVE_1 = 24
WAVE_2 = 36
BATCH = 6
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
ALL_STAGES = frozenset({"PENDING", "VALIDATING", "SIGNED", "BROADCASTING"})
NON_FINAL = ALL_STAGES | {"PENDING_APPROVAL"}

START_TIMEOUT_S = 60.0
PORT_FREE_TIMEOUT_S = 15.0
STAGES_TIMEOUT_S = 10.0
FINAL_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


@pytest.fixture
def anvil_installed() -> None:
    """Skip without the pinned Anvil (fail in CI), as the session's `anvil` fixture does."""
    if anvil_binary() is None:
        message = "the pinned anvil is not installed: run `make tools`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if sys.platform != "linux":
        pytest.skip("Anvil follows a killed `sluice dev` through PR_SET_PDEATHSIG (Linux only)")


# ── the `sluice dev` subprocess ───────────────────────────────────────────────────────────────


@dataclass
class DevProcess:
    """One run of `sluice dev` and where its output goes."""

    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    files: list[IO[bytes]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output_tail(self, limit: int = 4000) -> str:
        for handle in self.files:
            handle.flush()
        out = self.stdout_path.read_text(encoding="utf-8", errors="replace")[-limit:]
        err = self.stderr_path.read_text(encoding="utf-8", errors="replace")[-limit:]
        return f"--- stdout ({self.stdout_path.name}) ---\n{out}\n--- stderr ---\n{err}"

    def close_files(self) -> None:
        for handle in self.files:
            handle.close()
        self.files.clear()


@dataclass
class Instance:
    """Where a started `sluice dev` answers."""

    api_url: str
    api_key: str
    rpc_url: str
    hot_wallet: str
    token: str


def _environment(data_dir: Path) -> dict[str, str]:
    # Only the variables this test means to set: a developer's own SLUICE_DATABASE_URL & co. must
    # not leak into the subprocess. SLUICE_ANVIL_BIN (which Anvil to run) is kept.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    if "SLUICE_ANVIL_BIN" in os.environ:
        env["SLUICE_ANVIL_BIN"] = os.environ["SLUICE_ANVIL_BIN"]
    env.update(
        SLUICE_DATA_DIR=str(data_dir),
        SLUICE_LOG_FORMAT="json",
        SLUICE_KEYSTORE_PASSPHRASE=PASSPHRASE,
        PYTHONUNBUFFERED="1",
    )
    return env


def _spawn(tmp_path: Path, run: str, api_port: int, anvil_port: int) -> DevProcess:
    stdout_path = tmp_path / f"dev-{run}.stdout.log"
    stderr_path = tmp_path / f"dev-{run}.stderr.log"
    stdout = stdout_path.open("wb")
    stderr = stderr_path.open("wb")
    argv = [sys.executable, "-m", "sluice", "dev", "--port", str(api_port)]
    argv += ["--anvil-port", str(anvil_port), "--block-time", "0.5", "--confirmations", "2"]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and command
        argv,
        cwd=tmp_path,
        env=_environment(tmp_path / ".sluice"),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )
    return DevProcess(process, stdout_path, stderr_path, [stdout, stderr])


async def _wait_started(dev: DevProcess, data_dir: Path, api_port: int) -> Instance:
    """Wait until `sluice dev` has written dev.json and its API answers /health."""
    dev_file = data_dir / "dev.json"
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if dev.process.poll() is not None:
                pytest.fail(
                    f"`sluice dev` exited with {dev.process.returncode} while starting:\n"
                    + dev.output_tail()
                )
            if dev_file.exists():
                try:
                    response = await client.get(f"http://127.0.0.1:{api_port}/health")
                except httpx.TransportError:
                    pass
                else:
                    if response.status_code == 200:
                        break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`sluice dev` did not start in {START_TIMEOUT_S}s:\n{dev.output_tail()}"
                )
            await asyncio.sleep(0.1)
    info = json.loads(dev_file.read_text(encoding="utf-8"))
    return Instance(
        api_url=info["apiUrl"],
        api_key=info["apiKey"],
        rpc_url=info["rpcUrl"],
        hot_wallet=info["hotWallet"],
        token=info["tokens"]["DEMO"],
    )


# ── processes and ports (Linux /proc) ─────────────────────────────────────────────────────────


def _anvil_pids(anvil_port: int) -> list[int]:
    """Live Anvil processes serving ``anvil_port`` (zombies count as gone)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or not argv or not argv[0].endswith(b"anvil"):
            continue
        if any(
            a == b"--port" and b == str(anvil_port).encode() for a, b in itertools.pairwise(argv)
        ):
            pids.append(int(entry.name))
    return pids


async def _wait_anvil_gone(anvil_port: int, timeout_s: float = PORT_FREE_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while _anvil_pids(anvil_port) or not port_is_free(anvil_port):
        if time.monotonic() > deadline:
            pytest.fail(
                f"Anvil on port {anvil_port} still there {timeout_s}s after `sluice dev` died: "
                f"pids {_anvil_pids(anvil_port)}, port free: {port_is_free(anvil_port)}"
            )
        await asyncio.sleep(0.05)


# ── chain reads ───────────────────────────────────────────────────────────────────────────────


async def _rpc(client: httpx.AsyncClient, url: str, method: str, params: list[Any]) -> Any:
    response = await client.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    )
    body = response.json()
    assert "result" in body, body
    return body["result"]


async def _onchain_amount(client: httpx.AsyncClient, instance: Instance, w: Planned) -> int:
    if w.token:
        data = "0x70a08231" + w.to_address.lower().removeprefix("0x").rjust(64, "0")
        result = await _rpc(
            client, instance.rpc_url, "eth_call", [{"to": instance.token, "data": data}, "latest"]
        )
    else:
        result = await _rpc(client, instance.rpc_url, "eth_getBalance", [w.to_address, "latest"])
    return int(result, 16)


# ── the withdrawals ───────────────────────────────────────────────────────────────────────────


@dataclass
class Planned:
    """One withdrawal the test asks for, with its own id (so it can be asked for again)."""

    id: str
    to_address: str
    token: bool
    attempted: bool = False
    accepted: bool = False

    def body(self, token_address: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "userId": DEMO_USER,
            "amount": AMOUNT,
            "toAddress": self.to_address,
            "network": "anvil",
            "tokenAddress": token_address if self.token else None,
        }


def _plan(count: int, run: str) -> list[Planned]:
    return [
        Planned(id=f"crash-{run}-{i:02d}", to_address=Account.create().address, token=i % 2 == 1)
        for i in range(count)
    ]


async def _submit(client: httpx.AsyncClient, token: str, w: Planned) -> None:
    """POST once; a request cut by the kill leaves ``accepted`` False (asked again later)."""
    w.attempted = True
    try:
        response = await client.post("/v1/withdrawals", json=w.body(token))
    except httpx.TransportError:
        return
    assert response.status_code in (200, 202), response.text
    w.accepted = True


async def _stages(client: httpx.AsyncClient) -> dict[str, int]:
    page = (await client.get("/v1/withdrawals", params={"limit": 200})).json()
    counts: dict[str, int] = {}
    for item in page["items"]:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    return counts


def _every_stage(counts: dict[str, int]) -> bool:
    live = NON_FINAL & counts.keys()
    return (
        len(live) >= 3
        and bool(live & {"SIGNED", "BROADCASTING"})
        and bool(live & {"PENDING", "VALIDATING"})
    )


async def _load_and_kill(
    api: httpx.AsyncClient, token: str, first: DevProcess, run: str
) -> tuple[list[Planned], str]:
    """Send withdrawals and SIGKILL `sluice dev` while they are in every stage.

    Returns:
        The withdrawals asked for (some perhaps cut off by the kill), and what the polls saw.
    """
    wave_1, wave_2 = _plan(WAVE_1, f"{run}-a"), _plan(WAVE_2, f"{run}-b")
    seen: list[dict[str, int]] = []
    # Wave 1 goes all the way to the chain: its withdrawals are BROADCASTING (waiting for depth)
    # when wave 2 arrives, so one moment can hold every stage.
    await asyncio.gather(*(_submit(api, token, w) for w in wave_1))
    assert all(w.accepted for w in wave_1)
    deadline = time.monotonic() + STAGES_TIMEOUT_S
    while "BROADCASTING" not in (counts := await _stages(api)) and time.monotonic() < deadline:
        seen.append(counts)
        await asyncio.sleep(0.02)

    batches = [wave_2[i : i + BATCH] for i in range(0, len(wave_2), BATCH)]
    sent_batches = 0

    async def wave() -> None:
        # In small batches, so new PENDING ones keep arriving while others move on.
        nonlocal sent_batches
        for batch in batches:
            await asyncio.gather(*(_submit(api, token, w) for w in batch))
            sent_batches += 1
            await asyncio.sleep(0.02)

    async def watch() -> dict[str, int] | None:
        # Kill at the first poll showing all four stages; near the end of the wave, settle for
        # three (one on the chain side, one before signing); at the latest when the wave ends.
        deadline = time.monotonic() + STAGES_TIMEOUT_S
        while time.monotonic() < deadline:
            last_batch = sent_batches >= len(batches) - 1
            counts = await _stages(api)
            seen.append(counts)
            if counts.keys() >= ALL_STAGES or (last_batch and _every_stage(counts)):
                return counts
            if submitter.done():
                return None
            await asyncio.sleep(0.005)
        return None

    submitter = asyncio.create_task(wave())
    caught = await watch()
    os.kill(first.pid, signal.SIGKILL)
    submitter.cancel()  # requests in flight stay "attempted": they may or may not have landed
    await asyncio.gather(submitter, return_exceptions=True)
    # Withdrawals the kill came before were never asked for: not part of this story.
    planned = wave_1 + [w for w in wave_2 if w.attempted]
    cut = sum(1 for w in planned if not w.accepted)
    counted = f"{len(planned)} withdrawals, {cut} requests cut off by the kill"
    if caught is not None:
        return planned, f"{counted}; stages at the kill: {caught}"
    return planned, f"{counted}; not every stage seen at once, last polls: {seen[-5:]}"


async def _wait_all_final(
    api: httpx.AsyncClient, planned: list[Planned], dev: DevProcess, note: str
) -> dict[str, dict[str, Any]]:
    finals: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + FINAL_TIMEOUT_S
    while True:
        for w in planned:
            if w.id not in finals:
                body = (await api.get(f"/v1/withdrawals/{w.id}")).json()
                if body["status"] in FINAL:
                    finals[w.id] = body
        if len(finals) == len(planned):
            return finals
        if time.monotonic() > deadline:
            stuck = {
                w.id: (await api.get(f"/v1/withdrawals/{w.id}/events")).json()["events"]
                for w in planned
                if w.id not in finals
            }
            pytest.fail(
                f"{len(stuck)} withdrawals not final {FINAL_TIMEOUT_S}s after the restart "
                f"({note}); their events:\n{json.dumps(stuck, indent=1)}\n{dev.output_tail()}"
            )
        await asyncio.sleep(0.2)


@pytest.fixture
def processes() -> Iterator[list[DevProcess]]:
    """Every `sluice dev` the test starts; any still running at the end is killed."""
    started: list[DevProcess] = []
    yield started
    for dev in started:
        if dev.process.poll() is None:
            dev.process.kill()  # its Anvil follows through the parent-death signal
            dev.process.wait(timeout=STOP_TIMEOUT_S)
        dev.close_files()


#: Transactions `sluice dev` sends from the hot wallet at its first start: the batch contract's
#: creation and its approval for the demo token.
DEV_SET_UP = 2


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.mark.anvil
async def test_kill_9_with_withdrawals_in_every_stage_then_restart_pays_each_exactly_once(
    anvil_installed: None,
    tmp_path: Path,
    processes: list[DevProcess],
    http: httpx.AsyncClient,
) -> None:
    data_dir = tmp_path / ".sluice"
    api_port = free_port()
    anvil_port = free_port()
    while anvil_port == api_port:
        anvil_port = free_port()
    run = uuid.uuid4().hex[:8]

    # ── first run: load it, then kill -9 mid-flight ──────────────────────────────────────────
    first = _spawn(tmp_path, "1", api_port, anvil_port)
    processes.append(first)
    instance = await _wait_started(first, data_dir, api_port)
    headers = {"Authorization": f"Bearer {instance.api_key}"}
    async with httpx.AsyncClient(base_url=instance.api_url, headers=headers, timeout=10) as api:
        planned, note = await _load_and_kill(api, instance.token, first, run)
    await asyncio.to_thread(first.process.wait, STOP_TIMEOUT_S)
    assert first.process.returncode == -signal.SIGKILL
    print(note)  # shown with -s, and in every failure message below

    # ── second run: same data, same ports ────────────────────────────────────────────────────
    await _wait_anvil_gone(anvil_port)
    second = _spawn(tmp_path, "2", api_port, anvil_port)
    processes.append(second)
    instance = await _wait_started(second, data_dir, api_port)
    async with httpx.AsyncClient(base_url=instance.api_url, headers=headers, timeout=10) as api:
        # What the kill cut off is asked for again, under the same id: created once at most.
        for w in planned:
            if not w.accepted:
                await _submit(api, instance.token, w)
                assert w.accepted, f"{w.id} refused after the restart ({note})"

        finals = await _wait_all_final(api, planned, second, note)
        not_completed = {i: b for i, b in finals.items() if b["status"] != "COMPLETED"}
        assert not not_completed, f"not COMPLETED ({note}): {not_completed}"

        # One transaction per withdrawal, from signing to confirmation (`sluice dev` batches:
        # several withdrawals may share one).
        for w in planned:
            events = (await api.get(f"/v1/withdrawals/{w.id}/events")).json()["events"]
            hashes = {(e.get("data") or {}).get("transactionHash") for e in events} - {None}
            assert hashes == {finals[w.id]["transactionHash"]}, f"{w.id} ({note}): {events}"
        payouts = len({b["transactionHash"] for b in finals.values()})
        assert payouts <= len(planned)

        balances = (await api.get(f"/v1/users/{DEMO_USER}/balances")).json()

    # The chain: each recipient got its amount exactly once, and the hot wallet sent nothing else.
    one = 10**16  # 0.01 in base units (18 decimals for both assets)
    for w in planned:
        received = await _onchain_amount(http, instance, w)
        assert received == one, (
            f"{w.id} ({'DEMO' if w.token else 'ETH'}) recipient {w.to_address} holds {received}, "
            f"expected {one} ({note})"
        )
    sent = int(
        await _rpc(
            http, instance.rpc_url, "eth_getTransactionCount", [instance.hot_wallet, "latest"]
        ),
        16,
    )
    # Besides its payouts, `sluice dev`'s first start deployed the batch contract and approved it
    # for the demo token; the second kept them.
    assert sent == DEV_SET_UP + payouts, (
        f"the hot wallet sent {sent} transactions for {payouts} payouts and {DEV_SET_UP} set-up"
    )

    # The ledger: the initial credit minus exactly what was paid out, nothing held.
    withdrawn = {
        token: Decimal(AMOUNT) * sum(1 for w in planned if w.token is token)
        for token in (False, True)
    }
    by_asset = {b["tokenAddress"] is not None: b for b in balances}
    assert set(by_asset) == {False, True}, balances
    assert Decimal(by_asset[False]["available"]) == NATIVE_CREDIT - withdrawn[False], balances
    assert Decimal(by_asset[True]["available"]) == TOKEN_CREDIT - withdrawn[True], balances
    assert Decimal(by_asset[False]["held"]) == 0, balances
    assert Decimal(by_asset[True]["held"]) == 0, balances

    # A clean Ctrl-C: exit 0, and its Anvil goes with it.
    second.process.send_signal(signal.SIGINT)
    try:
        code = await asyncio.to_thread(second.process.wait, STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`sluice dev` did not stop within {STOP_TIMEOUT_S}s of SIGINT")
    assert code == 0, second.output_tail()
    assert _anvil_pids(anvil_port) == [], "Anvil outlived a clean stop of `sluice dev`"


async def test_sluice_dev_waits_for_its_anvil_port_to_be_freed() -> None:
    # What a restart right after a kill (or Ctrl-C) meets: the old node still saving its state.
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    with pytest.raises(AnvilError, match="still in use"):
        await _wait_for_port(port, timeout_s=0.2)
    asyncio.get_running_loop().call_later(0.3, holder.close)
    try:
        await asyncio.wait_for(_wait_for_port(port, timeout_s=10), timeout=5)
    finally:
        holder.close()
    assert port_is_free(port)
