"""Several local EVM chains at once, and a Sluice serving all of them (issue 11's end-to-end tests).

Each chain is an Anvil node of its own with its own chain id; a legacy one runs the Berlin
hardfork (no EIP-1559: type-0 transactions only). Each gets the demo token, one funded hot wallet
and a network in one networks file. The first chain is set up exactly as `sluice dev` sets up its
chain (`sluice.testing.harness.prepare`, chain id 31337); the others reuse its pieces (keystore,
funding, the demo token's artifact) on their own chain ids. On Berlin the packaged token cannot
deploy (it is compiled for Cancun, whose PUSH0 Berlin does not know), so the same source is
compiled for Berlin with the pinned solc (`make tools`).

`running_multichain` runs API and workers in the test's event loop, as
`sluice.testing.harness.running_sluice` does (it is that function, with the other chains added to
its networks file). `prepare_multichain` prepares the same set-up for a `sluice serve`
subprocess. `CompletionTracker` follows many withdrawals through the list endpoint (one request a
round, not one per withdrawal), and the chain helpers read what each chain holds.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess  # nosec B404 # runs the pinned solc-js through node, fixed arguments
import warnings
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from eth_abi.abi import encode
from eth_account import Account

from sluice.config import Settings
from sluice.devnet import setup
from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess, LocalNode, free_port, repo_root
from sluice.devnet.artifacts import ContractArtifact, load_demo_token
from sluice.domain.addresses import Address
from sluice.testing import secret_scan
from sluice.testing.chaos import rpc_batch
from sluice.testing.harness import PASSPHRASE, RunningSluice, prepare, running_sluice

with warnings.catch_warnings():
    # web3 7 imports `websockets.legacy`, which websockets >= 14 deprecates on import.
    warnings.filterwarnings("ignore", message="websockets.legacy", category=DeprecationWarning)
    from web3 import HTTPProvider, Web3

__all__ = [
    "DEFAULT_SPECS",
    "LEGACY_HARDFORK",
    "Chain",
    "ChainSpec",
    "CompletionTracker",
    "MultiChainSluice",
    "anvil_nodes",
    "berlin_demo_token",
    "native_balance",
    "pause",
    "prepare_multichain",
    "resume",
    "rpc",
    "running_multichain",
    "token_balance",
    "wallet_transactions",
    "write_networks_file",
]

#: The hardfork of a legacy chain: the last before London (EIP-1559).
LEGACY_HARDFORK: Final = "berlin"
FINAL_STATUSES: Final = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
_TOKEN_NAME: Final = "Sluice Demo Token"  # noqa: S105 - a token name, not a password
_DEPLOYER: Final = DEV_ACCOUNTS[0].address
#: How far back each round of `CompletionTracker` looks again: commits are not instantaneous.
_LATE_COMMITS: Final = timedelta(seconds=3)


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """One chain of a run: its network name, chain id and kind.

    ``unreachable``: no node at all; its network's RPC URL is a closed port on 127.0.0.1.
    ``extra_toml``: more of the network's networks-file tables, written after its own
    (``[networks.<name>.circuit_breaker]`` …).
    """

    name: str
    chain_id: int
    legacy: bool = False
    unreachable: bool = False
    extra_toml: str = ""


#: Three chains: the dev chain's id first (`harness.prepare` sets that one up), a second EIP-1559
#: chain, and a legacy one.
DEFAULT_SPECS: Final = (
    ChainSpec("anvil", setup.CHAIN_ID),
    ChainSpec("beta", 31338),
    ChainSpec("legacy", 31339, legacy=True),
)


@dataclass(frozen=True, slots=True)
class Chain:
    """What a run made on one chain."""

    spec: ChainSpec
    rpc_url: str
    token: Address
    hot_wallet: Address
    keystore: Path
    node: LocalNode | None = None

    @property
    def name(self) -> str:
        """The network's name in the networks file."""
        return self.spec.name

    @property
    def chain_id(self) -> int:
        """The chain id."""
        return self.spec.chain_id


# ── nodes ─────────────────────────────────────────────────────────────────────────────────────


@asynccontextmanager
async def anvil_nodes(specs: Sequence[ChainSpec]) -> AsyncIterator[dict[str, AnvilProcess]]:
    """One auto-mining Anvil per reachable spec (by network name), each with its chain id, the
    legacy ones on `LEGACY_HARDFORK`; all stopped on exit (a paused one resumed first)."""
    nodes: dict[str, AnvilProcess] = {}
    try:
        for spec in specs:
            if spec.unreachable:
                continue
            node = AnvilProcess()
            nodes[spec.name] = node
            extra = ["--hardfork", LEGACY_HARDFORK] if spec.legacy else []
            await node.astart(chain_id=spec.chain_id, extra_args=extra)
        yield nodes
    finally:
        for node in nodes.values():
            if node.running:
                resume(node)
            await node.astop()


def _pid(node: LocalNode) -> int:
    """The node's process id (`LocalNode` keeps its process to itself)."""
    process = node._process  # the node's own Popen: the tests pause the process it started
    if process is None or process.poll() is not None:
        raise RuntimeError(f"{node!r} is not running")
    return process.pid


def pause(node: LocalNode) -> None:
    """Freeze the node (SIGSTOP): it keeps its state, its port accepts and never answers."""
    os.kill(_pid(node), signal.SIGSTOP)


def resume(node: LocalNode) -> None:
    """Let a paused node run on (SIGCONT; harmless on one that is not paused)."""
    os.kill(_pid(node), signal.SIGCONT)


def closed_port_url() -> str:
    """An RPC URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    return f"http://127.0.0.1:{free_port()}"


# ── set-up ────────────────────────────────────────────────────────────────────────────────────


@functools.cache
def berlin_demo_token() -> ContractArtifact:
    """The demo token compiled for Berlin, with the pinned solc-js (`make tools`) through node.

    Raises:
        RuntimeError: No source checkout, node or solc.
    """
    root = repo_root()
    if root is None:
        raise RuntimeError("the demo token's source is in the source checkout only")
    script = """
const solc = require(process.argv[1] + '/tools/node_modules/solc');
const source = require('fs').readFileSync(process.argv[1] + '/contracts/DemoToken.sol', 'utf8');
const input = {language: 'Solidity', sources: {'DemoToken.sol': {content: source}},
  settings: {optimizer: {enabled: true, runs: 200}, evmVersion: process.argv[2],
    metadata: {bytecodeHash: 'none'},
    outputSelection: {'DemoToken.sol': {DemoToken: ['abi', 'evm.bytecode.object']}}}};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
if (errors.length) { console.error(JSON.stringify(errors)); process.exit(1); }
const token = output.contracts['DemoToken.sol'].DemoToken;
console.log(JSON.stringify({abi: token.abi, bytecode: '0x' + token.evm.bytecode.object}));
"""
    try:
        done = subprocess.run(  # noqa: S603 - node from PATH, our script, fixed arguments
            ["node", "-e", script, str(root), LEGACY_HARDFORK],  # noqa: S607
            capture_output=True,
            check=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise RuntimeError(
            f"could not compile the demo token for {LEGACY_HARDFORK} (node and `make tools` "
            f"are needed): {exc} {detail.decode(errors='replace')[-500:]}"
        ) from exc
    compiled = json.loads(done.stdout)
    return ContractArtifact(
        name="DemoToken",
        abi=compiled["abi"],
        bytecode=compiled["bytecode"],
        source_sha256="",
    )


async def rpc(url: str, method: str, params: list[Any], *, timeout_s: float = 30.0) -> Any:
    """One JSON-RPC call's result.

    Raises:
        RuntimeError: The node answered with an error.
    """
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        answer = (await client.post(url, json=body)).json()
    if "error" in answer:
        raise RuntimeError(f"{method} failed: {answer['error']}")
    return answer["result"]


async def _send_from_deployer(url: str, tx: dict[str, Any], *, legacy: bool) -> dict[str, Any]:
    """Send from Anvil's first (unlocked) account: the node picks chain id, nonce, gas and
    (EIP-1559) fees; a legacy chain's gas price is given, as Anvil would offer EIP-1559 fees
    there too. Auto-mining: the receipt is there at once."""
    if legacy:
        tx = {**tx, "gasPrice": await rpc(url, "eth_gasPrice", [])}
    tx_hash = await rpc(url, "eth_sendTransaction", [{"from": _DEPLOYER, **tx}])
    for _ in range(100):
        receipt = await rpc(url, "eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            if receipt["status"] != "0x1":
                raise RuntimeError(f"set-up transaction {tx_hash} reverted")
            return dict(receipt)
        await asyncio.sleep(0.05)
    raise RuntimeError(f"set-up transaction {tx_hash} was not mined")


async def _deploy_and_fund(
    url: str, artifact: ContractArtifact, wallet: Address, *, legacy: bool
) -> Address:
    """The demo token deployed, the hot wallet given coin (`setup.fund_native`) and tokens."""
    arguments = encode(
        ["string", "string", "uint8", "uint256"],
        [_TOKEN_NAME, setup.TOKEN_SYMBOL, setup.TOKEN_DECIMALS, 0],
    )
    deploy = {"data": artifact.bytecode + arguments.hex()}
    receipt = await _send_from_deployer(url, deploy, legacy=legacy)
    token = Address(Web3.to_checksum_address(receipt["contractAddress"]))
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 30}))
    await asyncio.to_thread(setup.fund_native, w3, wallet, setup.HOT_WALLET_FUNDING)
    mint = (
        Web3()
        .eth.contract(abi=artifact.abi)
        .encode_abi("mint", args=[wallet, 1_000_000 * setup.ETHER])
    )
    await _send_from_deployer(url, {"to": token, "data": mint}, legacy=legacy)
    return token


def _keystore(directory: Path) -> tuple[Path, Address]:
    """A hot wallet keystore (as `sluice dev` makes it), its key registered as a secret."""
    keystore = setup.hot_wallet(directory, PASSPHRASE, fast_kdf=True)
    key = Account.decrypt(json.loads(keystore.read_text(encoding="utf-8")), PASSPHRASE)
    secret_scan.register(bytes(key).hex(), "a hot wallet's private key")
    return keystore, setup.hot_wallet_address(keystore)


async def _add_chains(
    settings: Settings,
    first: setup.DevChain,
    specs: Sequence[ChainSpec],
    nodes: dict[str, AnvilProcess],
    data_dir: Path,
) -> list[Chain]:
    """Set up every chain after the first (which `prepare` did) and write the networks file."""
    head, *rest = specs
    chains = [
        Chain(
            spec=head,
            rpc_url=nodes[head.name].rpc_url,
            token=first.token,
            hot_wallet=first.hot_wallet,
            keystore=setup.hot_wallet(data_dir, PASSPHRASE, fast_kdf=True),
            node=nodes[head.name],
        )
    ]
    for spec in rest:
        keystore, wallet = _keystore(data_dir / "chains" / spec.name)
        if spec.unreachable:
            token = Address(Account.create().address)  # never read: nothing answers there
            chains.append(Chain(spec, closed_port_url(), token, wallet, keystore))
            continue
        node = nodes[spec.name]
        artifact = await asyncio.to_thread(berlin_demo_token) if spec.legacy else load_demo_token()
        token = await _deploy_and_fund(node.rpc_url, artifact, wallet, legacy=spec.legacy)
        chains.append(Chain(spec, node.rpc_url, token, wallet, keystore, node))
    write_networks_file(settings.networks_file, chains, poll_interval_s=0.1)
    return chains


def write_networks_file(
    path: Path, chains: Iterable[Chain], *, confirmations: int = 1, poll_interval_s: float = 0.1
) -> None:
    """One custom network per chain (``fee_model = "legacy"`` on a legacy one)."""
    parts = ["# Written by sluice.testing.multichain.\n"]
    for chain in chains:
        fee_model = "legacy" if chain.spec.legacy else "eip1559"
        parts.append(
            f"""
[networks.{chain.name}]
chain_id = {chain.chain_id}
rpc_urls = ["{chain.rpc_url}"]
confirmations = {confirmations}
poll_interval_s = {poll_interval_s}
native_symbol = "ETH"
native_decimals = 18
fee_model = "{fee_model}"
hot_wallet_keystore = "{chain.keystore.resolve()}"

[[networks.{chain.name}.tokens]]
symbol = "{setup.TOKEN_SYMBOL}"
address = "{chain.token}"
decimals = {setup.TOKEN_DECIMALS}
{chain.spec.extra_toml}"""
        )
    path.write_text("".join(parts), encoding="utf-8")


def _check_specs(specs: Sequence[ChainSpec], nodes: dict[str, AnvilProcess]) -> None:
    if not specs or specs[0].chain_id != setup.CHAIN_ID or specs[0].unreachable:
        raise ValueError(f"the first chain is the dev chain (chain id {setup.CHAIN_ID}, a node)")
    missing = [s.name for s in specs if not s.unreachable and s.name not in nodes]
    if missing:
        raise ValueError(f"no node for {', '.join(missing)}")


async def prepare_multichain(
    nodes: dict[str, AnvilProcess],
    data_dir: Path,
    *,
    specs: Sequence[ChainSpec] = DEFAULT_SPECS,
    database_url: str | None = None,
    **overrides: Any,
) -> tuple[Settings, list[Chain]]:
    """Every chain of ``specs`` set up and in one networks file; the settings that use it (for
    a subprocess: `Settings.networks_file`, `harness.PASSPHRASE`, the database URL)."""
    _check_specs(specs, nodes)
    settings, first = await prepare(
        nodes[specs[0].name], data_dir, database_url=database_url, **overrides
    )
    chains = await _add_chains(settings, first, specs, nodes, data_dir)
    return settings, chains


@dataclass
class MultiChainSluice:
    """A running Sluice serving several chains."""

    sluice: RunningSluice
    chains: dict[str, Chain]

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client of the API with every scope (answers scanned for secrets)."""
        return self.sluice.client(**kwargs)

    async def credit(self, user_id: str, network: str, amount: str, *, token: bool) -> None:
        """Credit a user on a network, in its coin or its token (through the service)."""
        container = self.sluice.container
        chain = self.chains[network]
        async with container.uow() as uow:
            await container.ledger.credit(
                uow,
                user_id=user_id,
                network=network,
                token_address=chain.token if token else None,
                amount=amount,
                reference=f"multichain-credit:{user_id}:{network}:{token}:{amount}",
            )
            await uow.commit()


@asynccontextmanager
async def running_multichain(
    nodes: dict[str, AnvilProcess],
    data_dir: Path,
    *,
    specs: Sequence[ChainSpec] = DEFAULT_SPECS,
    database_url: str | None = None,
    **overrides: Any,
) -> AsyncIterator[MultiChainSluice]:
    """API and workers serving every chain of ``specs`` (`harness.running_sluice`)."""
    _check_specs(specs, nodes)
    chains: list[Chain] = []

    async def add_chains(settings: Settings, first: setup.DevChain) -> setup.DevChain:
        chains.extend(await _add_chains(settings, first, specs, nodes, data_dir))
        return first

    async with running_sluice(
        nodes[specs[0].name],
        data_dir,
        database_url=database_url,
        after_prepare=add_chains,
        **overrides,
    ) as instance:
        yield MultiChainSluice(sluice=instance, chains={c.name: c for c in chains})


# ── following withdrawals ─────────────────────────────────────────────────────────────────────


@dataclass
class CompletionTracker:
    """Which withdrawals reached a final status, and when (their ``updatedAt``), read from
    ``GET /v1/withdrawals?updatedSince=…`` a page at a time."""

    client: httpx.AsyncClient
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    _latest: datetime | None = None
    """The latest ``updatedAt`` seen."""

    async def poll(self) -> None:
        """Read what changed since the latest change seen (less a margin for late commits)."""
        since = (
            "1970-01-01T00:00:00+00:00"
            if self._latest is None
            else (self._latest - _LATE_COMMITS).isoformat()
        )
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200, "updatedSince": since}
            if cursor is not None:
                params["cursor"] = cursor
            response = await self.client.get("/v1/withdrawals", params=params)
            response.raise_for_status()
            page = response.json()
            for item in page["items"]:
                updated = datetime.fromisoformat(item["updatedAt"])
                if self._latest is None or updated > self._latest:
                    self._latest = updated
                if item["status"] in FINAL_STATUSES and item["id"] not in self.final:
                    self.final[item["id"]] = item
            cursor = page["nextCursor"]
            if cursor is None:
                return

    async def wait(self, ids: Iterable[str], *, timeout_s: float) -> dict[str, dict[str, Any]]:
        """Poll until every one of ``ids`` is final; their final bodies.

        Raises:
            TimeoutError: Some are not final in time (the message names a few).
        """
        wanted = set(ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            await self.poll()
            pending = wanted - self.final.keys()
            if not pending:
                return {i: self.final[i] for i in wanted}
            if loop.time() > deadline:
                raise TimeoutError(f"{len(pending)} withdrawals not final: {sorted(pending)[:5]}")
            await asyncio.sleep(0.25)


# ── what the chain holds ──────────────────────────────────────────────────────────────────────


async def native_balance(chain: Chain, holder: str) -> int:
    """``holder``'s coin balance on the chain, in wei."""
    return int(await rpc(chain.rpc_url, "eth_getBalance", [holder, "latest"]), 16)


async def token_balance(chain: Chain, holder: str) -> int:
    """``holder``'s balance of the chain's demo token, in base units."""
    data = "0x70a08231" + encode(["address"], [holder]).hex()  # balanceOf(address)
    return int(
        await rpc(chain.rpc_url, "eth_call", [{"to": chain.token, "data": data}, "latest"]), 16
    )


async def wallet_transactions(chain: Chain, wallet: str) -> list[dict[str, Any]]:
    """Every mined transaction sent by ``wallet``, in chain order (every block read)."""
    head = int(await rpc(chain.rpc_url, "eth_blockNumber", []), 16)
    async with httpx.AsyncClient(timeout=60) as client:
        blocks = await rpc_batch(
            client,
            chain.rpc_url,
            [("eth_getBlockByNumber", [hex(n), True]) for n in range(head + 1)],
        )
    sender = wallet.lower()
    return [
        tx for block in blocks for tx in block["transactions"] if str(tx["from"]).lower() == sender
    ]
