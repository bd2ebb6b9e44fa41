"""`sluice serve` validates its networks at start against a real Anvil (issue 11).

A networks file that contradicts the chain makes `python -m sluice serve` exit 2 with one clear
``error:`` line on stderr that names the network and the numbers, with no traceback and never
the RPC URL's path (where a provider's API key lives): an RPC serving another chain id, a token
whose on-chain ``decimals()`` differs from the file's, two networks with one chain id, an unknown
preset. A network whose node is unreachable is not a mistake: the process serves the others,
`/ready` answers 200 ``degraded`` naming it, and SIGTERM stops it with exit status 0.

The RPC URLs that answer go through `RpcFaultProxy` (it forwards any path to the node), so they
carry a secret-looking path as an Infura or Alchemy URL does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.devnet import setup
from sluice.devnet.anvil import AnvilProcess, free_port
from sluice.domain.addresses import Address
from sluice.testing.harness import PASSPHRASE, prepare
from sluice.testing.multichain import closed_port_url
from sluice.testing.rpc_proxy import RpcFaultProxy

#: Where a provider's API key sits in an RPC URL: it must never reach stderr.
SECRET_PATH = "/v3/rpc-key-a1b2c3d4e5f6"
WRONG_CHAIN_ID = 31999
EXIT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SetUp:
    """The dev chain's set-up (hot wallet keystore, demo token) and where a run keeps its data."""

    data_dir: Path
    keystore: Path
    token: Address
    rpc_url: str
    """The node through the proxy, with `SECRET_PATH`."""


@pytest.fixture
async def proxy(anvil: AnvilProcess) -> AsyncIterator[RpcFaultProxy]:
    """A pass-through proxy in front of the session's node (any path is forwarded)."""
    async with RpcFaultProxy(anvil.rpc_url) as started:
        yield started


@pytest.fixture
async def dev_chain(anvil: AnvilProcess, proxy: RpcFaultProxy, tmp_path: Path) -> SetUp:
    """The demo token deployed and a hot wallet funded, as `sluice dev` and the harness do."""
    data_dir = tmp_path / "data"
    _settings, chain = await prepare(anvil, data_dir)
    keystore = setup.hot_wallet(data_dir, PASSPHRASE, fast_kdf=True)
    return SetUp(data_dir, keystore, chain.token, proxy.url + SECRET_PATH)


def _network(
    name: str,
    keystore: Path,
    *,
    rpc_url: str,
    chain_id: int | None = setup.CHAIN_ID,
    token: Address | None = None,
    decimals: int = setup.TOKEN_DECIMALS,
    preset: str | None = None,
) -> str:
    """One ``[networks.<name>]`` table of a networks file."""
    lines = [f"[networks.{name}]"]
    if preset is not None:
        lines.append(f'preset = "{preset}"')
    if chain_id is not None:
        lines.append(f"chain_id = {chain_id}")
    lines += [
        f'rpc_urls = ["{rpc_url}"]',
        "confirmations = 1",
        "poll_interval_s = 0.1",
        f'hot_wallet_keystore = "{keystore.resolve()}"',
    ]
    if token is not None:
        lines += [
            "",
            f"[[networks.{name}.tokens]]",
            f'symbol = "{setup.TOKEN_SYMBOL}"',
            f'address = "{token}"',
            f"decimals = {decimals}",
        ]
    return "\n".join(lines) + "\n"


def _env(data_dir: Path, networks: str) -> dict[str, str]:
    """The environment of a `sluice serve` over ``networks`` (its own SQLite in ``data_dir``)."""
    networks_file = data_dir / "validation-networks.toml"
    networks_file.write_text(networks, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_DATA_DIR=str(data_dir),
        SLUICE_NETWORKS_FILE=str(networks_file),
        SLUICE_DATABASE_URL=f"sqlite+aiosqlite:///{data_dir / 'validation.db'}",
        SLUICE_KEYSTORE_PASSPHRASE=PASSPHRASE,
        SLUICE_LOG_FORMAT="json",
        SLUICE_LOG_LEVEL="warning",
    )
    return env


@dataclass(frozen=True)
class Exited:
    """How a `sluice serve` that stopped by itself ended."""

    code: int
    stderr: str
    errors: list[str]
    """The lines of stderr that are not JSON log records (the CLI's own output)."""


async def _serve_until_exit(env: dict[str, str]) -> Exited:
    """Run `sluice serve` and wait for it to exit by itself (killed and failed if it does not:
    the proxy runs in this event loop, so the wait must not block it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice",
        "serve",
        "--port",
        str(free_port()),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _out, err = await asyncio.wait_for(process.communicate(), EXIT_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"sluice serve did not exit within {EXIT_TIMEOUT_S:.0f} s")
    assert process.returncode is not None
    text = err.decode(errors="replace")
    return Exited(
        process.returncode, text, [line for line in text.splitlines() if not _is_log(line)]
    )


def _is_log(line: str) -> bool:
    """Whether a stderr line is a JSON log record (structlog's, `SLUICE_LOG_FORMAT=json`)."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "event" in record


def _assert_refused(exited: Exited, *fragments: str) -> str:
    """Exit 2, one ``error:`` line naming every fragment, no traceback, no URL path; the line."""
    assert exited.code == 2, exited.stderr
    assert len(exited.errors) == 1, exited.stderr
    line = exited.errors[0]
    assert line.startswith("error: "), exited.stderr
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert "Traceback" not in exited.stderr, exited.stderr
    assert SECRET_PATH not in exited.stderr, exited.stderr
    assert SECRET_PATH.rsplit("/", 1)[1] not in exited.stderr, exited.stderr
    return line


# ── refused at start ──────────────────────────────────────────────────────────────────────────


async def test_an_rpc_serving_another_chain_id_exits_2_naming_both_ids(
    dev_chain: SetUp,
) -> None:
    networks = _network(
        "mainnet_like", dev_chain.keystore, rpc_url=dev_chain.rpc_url, chain_id=WRONG_CHAIN_ID
    )
    exited = await _serve_until_exit(_env(dev_chain.data_dir, networks))
    line = _assert_refused(exited, "mainnet_like", str(WRONG_CHAIN_ID), str(setup.CHAIN_ID))
    assert "RPC URL #1" in line, line


async def test_a_token_with_other_decimals_on_chain_exits_2_naming_both(
    dev_chain: SetUp,
) -> None:
    networks = _network(
        "anvil",
        dev_chain.keystore,
        rpc_url=dev_chain.rpc_url,
        token=dev_chain.token,
        decimals=6,
    )
    exited = await _serve_until_exit(_env(dev_chain.data_dir, networks))
    line = _assert_refused(
        exited, "anvil", setup.TOKEN_SYMBOL, dev_chain.token, "18 decimals", "says 6"
    )
    assert "chain" in line, line


async def test_two_networks_with_one_chain_id_exit_2_naming_both(dev_chain: SetUp) -> None:
    networks = "\n".join(
        _network(name, dev_chain.keystore, rpc_url=dev_chain.rpc_url)
        for name in ("first_name", "second_name")
    )
    exited = await _serve_until_exit(_env(dev_chain.data_dir, networks))
    _assert_refused(exited, "first_name", "second_name", f"chain id {setup.CHAIN_ID}")


async def test_an_unknown_preset_exits_2_naming_it(dev_chain: SetUp) -> None:
    networks = _network(
        "typo_net",
        dev_chain.keystore,
        rpc_url=dev_chain.rpc_url,
        chain_id=None,
        preset="etherium",
    )
    exited = await _serve_until_exit(_env(dev_chain.data_dir, networks))
    line = _assert_refused(exited, "typo_net", "unknown preset 'etherium'")
    assert "ethereum" in line, f"the known presets are not listed: {line}"


# ── not refused: an unreachable network ───────────────────────────────────────────────────────


async def test_an_unreachable_network_does_not_stop_the_start(dev_chain: SetUp) -> None:
    networks = "\n".join(
        [
            _network("anvil", dev_chain.keystore, rpc_url=dev_chain.rpc_url, token=dev_chain.token),
            _network(
                "offline",
                dev_chain.keystore,
                rpc_url=closed_port_url() + SECRET_PATH,
                chain_id=WRONG_CHAIN_ID,
            ),
        ]
    )
    env = _env(dev_chain.data_dir, networks)
    port = free_port()
    log = dev_chain.data_dir / "serve.log"
    with log.open("wb") as out:  # the child keeps its own copy
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sluice",
            "serve",
            "--port",
            str(port),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            body = await _ready_once_serving(client, process, log)
            assert body["status"] == "degraded", body
            assert body["degraded"] == ["chain:offline"], body
            assert body["checks"]["chain:anvil"]["ok"], body
            assert not body["checks"]["chain:offline"]["ok"], body
            assert SECRET_PATH not in json.dumps(body), body
        assert process.returncode is None, "sluice serve exited"
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    output = _tail(log, chars=None)
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert SECRET_PATH not in output, output[-3000:]


def _tail(log: Path, chars: int | None = 3000) -> str:
    """The end of a log file (all of it with ``chars=None``)."""
    text = log.read_text(encoding="utf-8", errors="replace")
    return text if chars is None else text[-chars:]


async def _ready_once_serving(
    client: httpx.AsyncClient, process: asyncio.subprocess.Process, log: Path
) -> dict[str, Any]:
    """`/ready`'s body once `/health` answers (failed if the process exits or never answers)."""
    for _ in range(600):
        if process.returncode is not None:
            pytest.fail(f"sluice serve exited with {process.returncode}:\n{_tail(log)}")
        try:
            if (await client.get("/health")).status_code == 200:
                response = await client.get("/ready")
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                return body
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail("sluice serve did not answer /health within 60 s")
