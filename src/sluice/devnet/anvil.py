"""A local Anvil node as a child process, for tests and for ``sluice dev``.

The binary is the one pinned in ``tools/package.json`` and installed by ``make tools`` (npm puts
the real executable in ``tools/node_modules/@foundry-rs/anvil-<platform>/bin``; the ``.bin/anvil``
next to it is a node wrapper, not used here). ``SLUICE_ANVIL_BIN`` overrides it.

`LocalNode` is what any local node run as a child process shares (start, readiness, stop, its
output); `AnvilProcess` is Anvil's. The tests' Hardhat node (`sluice.testing.hardhat`) is another.

This module must not import pytest: ``sluice dev`` uses it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import platform
import signal
import socket
import subprocess  # nosec B404 # starts the pinned anvil binary with a fixed argv
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Final, Self

import httpx

from sluice.domain.addresses import Address

__all__ = [
    "DEV_ACCOUNTS",
    "DEV_MNEMONIC",
    "AnvilError",
    "AnvilProcess",
    "DevAccount",
    "LocalNode",
    "NodeError",
    "anvil_binary",
    "free_port",
    "port_is_free",
]

#: Environment variable naming an Anvil executable to use instead of the pinned one.
ANVIL_BIN_ENV: Final = "SLUICE_ANVIL_BIN"

#: Anvil's default mnemonic. It and the accounts below are public, well-known test keys printed
#: by every Anvil and Hardhat node: anything sent to them on a real network is taken at once.
#: Never fund them anywhere but a local devnet.
DEV_MNEMONIC: Final = "test test test test test test test test test test test junk"


@dataclass(frozen=True, slots=True)
class DevAccount:
    """One of Anvil's prefunded default accounts (10 000 ETH each at genesis)."""

    address: Address
    private_key: str = field(repr=False)


#: The first three accounts of `DEV_MNEMONIC` (m/44'/60'/0'/0/0..2). Public test keys, see above.
DEV_ACCOUNTS: Final = (
    DevAccount(
        Address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    ),
    DevAccount(
        Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    ),
    DevAccount(
        Address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    ),
)

_HOST: Final = "127.0.0.1"
_PORT_ATTEMPTS: Final = 3
_LOG_TAIL_BYTES: Final = 4000
_POLL_INTERVAL_S: Final = 0.05

# npm's platform suffixes for @foundry-rs/anvil-<suffix>, by (sys.platform, machine).
_NPM_PLATFORMS: Final = {
    ("linux", "x86_64"): "linux-amd64",
    ("linux", "amd64"): "linux-amd64",
    ("linux", "aarch64"): "linux-arm64",
    ("linux", "arm64"): "linux-arm64",
    ("darwin", "x86_64"): "darwin-amd64",
    ("darwin", "arm64"): "darwin-arm64",
    ("win32", "amd64"): "win32-amd64",
    ("win32", "x86_64"): "win32-amd64",
}


class NodeError(RuntimeError):
    """A local node could not be found or started."""


class AnvilError(NodeError):
    """Anvil could not be found or started."""


def repo_root() -> Path | None:
    """The source checkout this module lives in (the directory with ``tools/package.json``)."""
    for directory in Path(__file__).resolve().parents:
        if (directory / "tools" / "package.json").is_file():
            return directory
    return None


def anvil_binary() -> Path | None:
    """The Anvil executable to run, or None if it is not installed (run ``make tools``).

    Raises:
        AnvilError: ``SLUICE_ANVIL_BIN`` is set but does not name an executable file.
    """
    override = os.environ.get(ANVIL_BIN_ENV)
    if override:
        path = Path(override)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise AnvilError(f"{ANVIL_BIN_ENV}={override} is not an executable file")
        return path
    root = repo_root()
    suffix = _NPM_PLATFORMS.get((sys.platform, platform.machine().lower()))
    if root is None or suffix is None:
        return None
    name = "anvil.exe" if sys.platform == "win32" else "anvil"
    path = root / "tools" / "node_modules" / "@foundry-rs" / f"anvil-{suffix}" / "bin" / name
    return path if path.is_file() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


if sys.platform == "linux":
    _PR_SET_PDEATHSIG: Final = 1
    _LIBC = ctypes.CDLL(None, use_errno=True)

    def _die_with_parent(parent_pid: int) -> None:
        """In the child, before exec: get SIGTERM when the thread that started us exits.

        Linux ties the death signal to the parent *thread*: start Anvil from a thread that lives
        as long as you need it (not a worker thread of an executor).
        """
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


class _ExitedEarly(Exception):  # noqa: N818 (a signal inside `start`, re-raised as NodeError)
    def __init__(self, error: NodeError, output: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.output = output


class LocalNode:
    """A local EVM node on 127.0.0.1, managed as a child process (`AnvilProcess`, Hardhat's).

    Use it synchronously (``start``/``stop``, ``with``) or from async code (``astart``/``astop``,
    ``async with``). ``with Node() as node:`` starts an auto-mining node on a free port; call
    ``start`` yourself first for other options. On Linux the node is sent SIGTERM if this process
    dies, so a killed test run leaves no node behind; Linux ties that to the thread that started
    the node, so start it from a long-lived thread (the main thread, or the event loop's:
    ``astart`` spawns on the loop's thread), never from an executor's worker thread.

    A kind of node says how it is started (`_command`) and names itself (`kind`, `error_type`).
    """

    #: The node's kind, as the tests name it: ``"anvil"``, ``"hardhat"``.
    kind: ClassVar[str] = "node"
    #: The error this kind raises.
    error_type: ClassVar[type[NodeError]] = NodeError

    def __init__(
        self,
        *,
        startup_timeout_s: float = 30.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None
        self._chain_id = 31337

    @property
    def running(self) -> bool:
        """Whether the node was started and has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def port(self) -> int:
        """The port the node listens on."""
        if self._port is None or self._process is None:
            raise self.error_type(f"{self.kind} is not started")
        return self._port

    @property
    def rpc_url(self) -> str:
        """The node's JSON-RPC URL."""
        return f"http://{_HOST}:{self.port}"

    @property
    def chain_id(self) -> int:
        """The chain id the node was started with."""
        return self._chain_id

    def start(
        self,
        port: int | None = None,
        *,
        block_time: float | None = None,
        state_path: Path | None = None,
        chain_id: int = 31337,
        extra_args: Sequence[str] = (),
    ) -> None:
        """Start the node and wait until it answers ``eth_chainId``.

        ``port`` None picks a free one. ``block_time`` None mines a block per transaction;
        otherwise a block every ``block_time`` seconds. ``state_path`` is loaded if it exists and
        written when the node stops.

        Raises:
            NodeError: Not installed, exited early (the message ends with its output), or did
                not answer within the startup timeout (`AnvilError` for Anvil).
        """
        for attempt in range(1 if port is not None else _PORT_ATTEMPTS):
            self._spawn(port, block_time, state_path, chain_id, extra_args)
            deadline = time.monotonic() + self._startup_timeout_s
            try:
                while not self._probe_sync():
                    if time.monotonic() > deadline:
                        raise self._not_answering()
                    time.sleep(_POLL_INTERVAL_S)
            except _ExitedEarly as exc:
                self.stop()
                if not _port_taken(exc.output) or port is not None or attempt + 1 == _PORT_ATTEMPTS:
                    raise exc.error from None
            except BaseException:
                self.stop()
                raise
            else:
                return

    async def astart(
        self,
        port: int | None = None,
        *,
        block_time: float | None = None,
        state_path: Path | None = None,
        chain_id: int = 31337,
        extra_args: Sequence[str] = (),
    ) -> None:
        """`start`, waiting without blocking the event loop."""
        for attempt in range(1 if port is not None else _PORT_ATTEMPTS):
            self._spawn(port, block_time, state_path, chain_id, extra_args)
            deadline = time.monotonic() + self._startup_timeout_s
            try:
                async with httpx.AsyncClient() as client:
                    while not await self._probe_async(client):
                        if time.monotonic() > deadline:
                            raise self._not_answering()
                        await asyncio.sleep(_POLL_INTERVAL_S)
            except _ExitedEarly as exc:
                await self.astop()
                if not _port_taken(exc.output) or port is not None or attempt + 1 == _PORT_ATTEMPTS:
                    raise exc.error from None
            except BaseException:
                await self.astop()
                raise
            else:
                return

    def stop(self) -> None:
        """Stop the node: SIGTERM (Anvil writes ``--state`` then), SIGKILL after a timeout."""
        try:
            self._stop_process()
        finally:
            self._stopped()

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            try:
                for sig, timeout_s in (
                    (signal.SIGTERM, self._stop_timeout_s),
                    (_SIGKILL, self._stop_timeout_s),
                ):
                    if process.poll() is not None:
                        break
                    _signal_group(process, sig)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=timeout_s)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def astop(self) -> None:
        """`stop`, waiting in a thread."""
        await asyncio.to_thread(self.stop)

    def output_tail(self) -> str:
        """The end of the node's stdout and stderr so far (for error messages)."""
        if self._log is None:
            return ""
        self._log.flush()
        size = self._log.seek(0, os.SEEK_END)
        self._log.seek(max(0, size - _LOG_TAIL_BYTES))
        return self._log.read().decode("utf-8", errors="replace")

    def __enter__(self) -> Self:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        if self._process is None:
            await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.astop()

    def __repr__(self) -> str:
        where = f"port={self._port}" if self._process is not None else "stopped"
        return f"<{type(self).__name__} {where}>"

    # ── what a kind of node provides ──────────────────────────────────────────────────────────

    def _command(
        self,
        port: int,
        block_time: float | None,
        state_path: Path | None,
        chain_id: int,
        extra_args: Sequence[str],
    ) -> tuple[list[str], dict[str, str] | None, Path | None]:
        """The argv, environment (None: ours) and working directory that start the node.

        Raises:
            NodeError: The node is not installed.
        """
        raise NotImplementedError

    def _stopped(self) -> None:
        """After the node has exited: remove what `_command` made for it."""

    # ── internals ─────────────────────────────────────────────────────────────────────────────

    def _spawn(
        self,
        port: int | None,
        block_time: float | None,
        state_path: Path | None,
        chain_id: int,
        extra_args: Sequence[str],
    ) -> None:
        if self._process is not None:
            raise self.error_type(f"{self.kind} is already started")
        if block_time is not None and block_time <= 0:
            raise ValueError("block_time must be positive")
        if port is not None and not port_is_free(port):
            # Checked first: otherwise the readiness probe could reach whatever holds the port.
            raise self.error_type(f"port {port} on {_HOST} is in use")
        chosen = port if port is not None else free_port()
        argv, env, cwd = self._command(chosen, block_time, state_path, chain_id, extra_args)
        self._port = chosen
        self._chain_id = chain_id
        # Linux: die with us. The death signal is tied to the thread that forks (see below).
        preexec = (
            functools.partial(_die_with_parent, os.getpid()) if sys.platform == "linux" else None
        )
        log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the node; stop closes it)
        try:
            self._process = subprocess.Popen(  # noqa: S603  # nosec B603 # argv built by _command: the pinned node, our flags
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                # Its own process group: stop() signals the group, and a terminal's Ctrl-C reaches
                # only us (the `with` block then stops the node).
                start_new_session=sys.platform != "win32",
                preexec_fn=preexec,  # noqa: PLW1509 (only calls prctl: no locks, no allocation)
            )
        except BaseException:
            log.close()
            self._stopped()
            raise
        self._log = log

    def _check_alive(self) -> None:
        process = self._process
        if process is None:
            raise self.error_type(f"{self.kind} is not started")
        if process.poll() is not None:
            output = self.output_tail()
            message = f"{self.kind} exited with status {process.returncode} while starting:\n"
            raise _ExitedEarly(self.error_type(message + output), output)

    def _answered(self, response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        try:
            body = response.json()
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("result") == hex(self._chain_id)

    def _probe_sync(self) -> bool:
        self._check_alive()
        try:
            response = httpx.post(self.rpc_url, json=_CHAIN_ID_REQUEST, timeout=1.0)
        except httpx.TransportError:
            return False
        return self._answered(response)

    async def _probe_async(self, client: httpx.AsyncClient) -> bool:
        self._check_alive()
        try:
            response = await client.post(self.rpc_url, json=_CHAIN_ID_REQUEST, timeout=1.0)
        except httpx.TransportError:
            return False
        return self._answered(response)

    def _not_answering(self) -> NodeError:
        return self.error_type(
            f"{self.kind} did not answer eth_chainId within {self._startup_timeout_s}s:\n"
            + self.output_tail()
        )


class AnvilProcess(LocalNode):
    """An Anvil node on 127.0.0.1, managed as a child process (see `LocalNode`).

    ``state_path`` (`start`) is loaded if it exists and written when the node stops.
    """

    kind: ClassVar[str] = "anvil"
    error_type: ClassVar[type[NodeError]] = AnvilError

    def __init__(
        self,
        binary: Path | None = None,
        *,
        startup_timeout_s: float = 30.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(startup_timeout_s=startup_timeout_s, stop_timeout_s=stop_timeout_s)
        self._binary = binary

    def _command(
        self,
        port: int,
        block_time: float | None,
        state_path: Path | None,
        chain_id: int,
        extra_args: Sequence[str],
    ) -> tuple[list[str], dict[str, str] | None, Path | None]:
        binary = self._binary or anvil_binary()
        if binary is None:
            raise AnvilError("the pinned anvil is not installed: run `make tools`")
        argv = [str(binary), "--host", _HOST, "--port", str(port), "--silent"]
        argv += ["--chain-id", str(chain_id)]
        if block_time is not None:
            argv += ["--block-time", f"{block_time:g}"]
        if state_path is not None:
            argv += ["--state", str(state_path)]
        argv += list(extra_args)
        return argv, None, None


_CHAIN_ID_REQUEST: Final = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
_SIGKILL: Final = getattr(signal, "SIGKILL", signal.SIGTERM)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` of 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers (Anvil included) bind: connections of a previous run lingering in TIME_WAIT
        # must not make the port look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
        return True


def _port_taken(output: str) -> bool:
    return "address already in use" in output.lower()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the node's process group (it has its own), or just the node on Windows."""
    if sys.platform == "win32":
        process.terminate()
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
