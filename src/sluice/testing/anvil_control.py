"""`NodeControl`: an async client of a local node's test-only JSON-RPC methods, for tests.

`AnvilControl` speaks Anvil's methods, `HardhatControl` Hardhat's; `control_for(node)` picks the
one for a `sluice.devnet.anvil.LocalNode`. Tests use these, never the ``anvil_*`` /
``hardhat_*`` names themselves, so they run on either node.

Every method here was called against the pinned Anvil 1.7.1 by
``tests/integration/test_anvil_control.py``. What those calls showed (the engine's design rests
on these facts; the tests assert each of them, so an Anvil upgrade that changes one fails there):

Mining
    With automine on, a sent transaction is mined in a block of its own, but *after*
    ``eth_sendRawTransaction`` has answered: a receipt asked for at once can be null (poll:
    `AnvilControl.wait_for_receipt`). ``evm_setAutomine(false)`` leaves sent transactions in
    the pool until ``evm_mine`` / ``anvil_mine``; switching automine back on mines what is
    pooled (one block, soon after).
    ``evm_setIntervalMining(n)`` mines a block every n seconds (0 turns it off) and switches
    automine off. ``anvil_mine(n)`` mines n blocks (the first takes the pooled transactions).

Re-orgs: ``anvil_reorg(depth, [[tx, offset], ...])``
    Replaces the last ``depth`` blocks by ``depth`` new blocks: the head number stays the same,
    every replaced block gets a new hash (and the first block above the fork point links to it
    by ``parentHash``). The transactions of the replaced blocks are **gone**: no receipt, unknown
    to ``eth_getTransactionByHash``, *not* put back in the pool, and the sender's nonce goes back
    (``eth_getTransactionCount`` at ``latest`` and ``pending``). They are not re-included by later
    blocks; a client must re-send them (the same signed bytes are accepted again). The new blocks
    are empty unless ``txs`` are given: each pair puts a transaction (raw signed bytes, or a
    request object that Anvil signs for one of its own or an impersonated account) in the new
    block at ``offset`` (0 = the first replaced height, at most ``depth - 1``). A pair whose
    transaction is invalid on the new chain (say, its nonce) is skipped silently. A pooled
    transaction that depended on a re-orged one (the next nonce) stays listed in the pool until the
    next block is mined, which evicts it. ``depth`` above the chain height is an error (-32602).
Roll-back: ``anvil_rollback(depth)``
    Removes the last ``depth`` blocks (default 1) without replacing them: the head number goes
    down by ``depth``. Their transactions are gone as with a re-org (not pooled, nonce back).
Snapshots
    ``evm_snapshot`` returns ids ``"0x0"``, ``"0x1"``...; ``evm_revert(id)`` returns True once:
    the snapshot, and every later one, are used up. Reverting the same id again returns False;
    reverting a later one is an error (-32001, "Resource not found") the first time, False
    after that: `AnvilControl.revert` returns False for all of these.
Dropping: ``anvil_dropTransaction(hash)``
    Removes a pooled transaction and returns its hash; returns null for a transaction that is
    not in the pool, mined ones included (a mined transaction keeps its receipt). It also
    removes the pooled transactions that depended on it (the sender's next nonces, in a run
    from it); one already "queued" behind a nonce gap stays, still queued. The pending nonce
    goes back. ``anvil_dropAllTransactions`` empties the pool.
Base fee: ``anvil_setNextBlockBaseFeePerGas(wei)``
    Sets the base fee of the next block only (shown at once by the ``pending`` block and
    ``eth_gasPrice``; ``latest`` keeps its own); later blocks follow EIP-1559 from it (an empty
    block lowers it by 12.5%). ``eth_sendRawTransaction`` *refuses* a transaction whose
    ``maxFeePerGas`` is below the next block's base fee (code -32003, "max fee per gas less than
    block base fee"), so such a transaction never enters the pool. A transaction pooled before
    the base fee rose above its fee cap does *not* stay pending: the next mined block leaves it
    out and **evicts it from the pool** (unknown to ``eth_getTransactionByHash``, pending nonce
    back), together with the sender's later-nonce transactions that depended on it. It is not
    mined later when the base fee falls back: it must be re-sent.
Pool
    ``txpool_content`` lists ``{"pending": {sender: {nonce: tx}}, "queued": {...}}``, sender in
    lower case and nonce as a decimal string; a transaction with a nonce gap is "queued".
    ``txpool_status`` counts both. A pooled transaction is known to ``eth_getTransactionByHash``
    (``blockHash`` null) and counted by ``eth_getTransactionCount(..., "pending")``.
Other tags
    ``safe`` is head - 32 and ``finalized`` head - 64 (block 0 while the chain is shorter).
Impersonation
    ``anvil_impersonateAccount`` lets ``eth_sendTransaction`` send from any address (unsigned);
    after ``anvil_stopImpersonatingAccount`` it is refused ("No Signer available").

Hardhat (``HardhatControl``, the pinned Hardhat 2.29.1 / EDR)
    The same operations under ``hardhat_*`` names (`NodeMethods`: `ANVIL_METHODS`,
    `HARDHAT_METHODS`), with these differences, each asserted by the Hardhat tests in
    ``tests/integration/test_anvil_control.py``: no re-org, no roll-back and no ``txpool_*``
    (`NodeControl.supports` says so; calling them raises `UnsupportedByNodeError`); interval
    mining is set in milliseconds (`set_interval_mining` still takes seconds);
    ``hardhat_dropTransaction`` answers a boolean (an error for a mined transaction:
    `drop_transaction` says False), drops only that transaction (its later nonces stay pooled) and
    there is no drop-all (`drop_all_transactions` drops each of ``eth_pendingTransactions``);
    ``evm_revert`` of an unknown or used-up snapshot answers False; ``safe`` and ``finalized`` are
    the head; the ``pending`` block has a null number (`get_block` gives it the next one).
    Mining: switching automine back on does *not* mine what is pooled, and interval mining leaves
    automine on. Fees: a transaction whose fee cap is below the next base fee is pooled, not
    refused, and one priced out by a base fee rise stays pooled (not evicted) until mined or
    dropped.

Errors are raised as `NodeRpcError` (`AnvilRpcError` is the same class: method, code, message).
The node is local: its URL is not secret, but it is left out of messages anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, NamedTuple, Self

import httpx

if TYPE_CHECKING:
    from sluice.devnet.anvil import LocalNode

__all__ = [
    "ANVIL_METHODS",
    "HARDHAT_METHODS",
    "AnvilControl",
    "AnvilRpcError",
    "Block",
    "BlockRef",
    "BlockTag",
    "Feature",
    "HardhatControl",
    "NodeControl",
    "NodeMethods",
    "NodeRpcError",
    "PoolStatus",
    "PooledTransaction",
    "UnsupportedByNodeError",
    "control_class",
    "control_for",
]

BlockTag = int | Literal["latest", "pending", "safe", "finalized", "earliest"]

_RESOURCE_NOT_FOUND: Final = -32001


class NodeRpcError(RuntimeError):
    """The node answered a JSON-RPC error (or no usable answer)."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        super().__init__(f"{method} failed: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message


#: The name the Anvil-only tests know `NodeRpcError` by.
AnvilRpcError = NodeRpcError

#: What a node may lack: ``anvil_reorg``, ``anvil_rollback``, the ``txpool_*`` view.
Feature = Literal["reorg", "rollback", "txpool"]


class UnsupportedByNodeError(NotImplementedError):
    """The node has no method for this (Hardhat: re-orgs, roll-backs, the pool view)."""

    def __init__(self, kind: str, feature: Feature) -> None:
        super().__init__(f"a {kind} node has no {feature}")
        self.kind = kind
        self.feature = feature


@dataclass(frozen=True, slots=True)
class NodeMethods:
    """The JSON-RPC method a kind of node answers for each test operation (None: it has none).

    ``evm_setAutomine``, ``evm_setIntervalMining``, ``evm_mine``, ``evm_snapshot`` and
    ``evm_revert`` are common to both nodes and not listed.
    """

    kind: str
    get_automine: str
    #: ``evm_setIntervalMining`` counts in units of 1/this of a second (Anvil 1, Hardhat 1000).
    interval_mining_units_per_s: int
    mine: str
    set_balance: str
    set_nonce: str
    set_code: str
    set_next_block_base_fee: str
    impersonate: str
    stop_impersonating: str
    drop_transaction: str
    drop_all_transactions: str | None  # None: dropped one by one (`NodeControl`)
    reorg: str | None
    rollback: str | None
    txpool: bool


ANVIL_METHODS: Final = NodeMethods(
    kind="anvil",
    get_automine="anvil_getAutomine",
    interval_mining_units_per_s=1,
    mine="anvil_mine",
    set_balance="anvil_setBalance",
    set_nonce="anvil_setNonce",
    set_code="anvil_setCode",
    set_next_block_base_fee="anvil_setNextBlockBaseFeePerGas",
    impersonate="anvil_impersonateAccount",
    stop_impersonating="anvil_stopImpersonatingAccount",
    drop_transaction="anvil_dropTransaction",
    drop_all_transactions="anvil_dropAllTransactions",
    reorg="anvil_reorg",
    rollback="anvil_rollback",
    txpool=True,
)

HARDHAT_METHODS: Final = NodeMethods(
    kind="hardhat",
    get_automine="hardhat_getAutomine",
    interval_mining_units_per_s=1000,
    mine="hardhat_mine",
    set_balance="hardhat_setBalance",
    set_nonce="hardhat_setNonce",
    set_code="hardhat_setCode",
    set_next_block_base_fee="hardhat_setNextBlockBaseFeePerGas",
    impersonate="hardhat_impersonateAccount",
    stop_impersonating="hardhat_stopImpersonatingAccount",
    drop_transaction="hardhat_dropTransaction",
    drop_all_transactions=None,
    reorg=None,
    rollback=None,
    txpool=False,
)


class BlockRef(NamedTuple):
    """A block's number and hash: what a confirmation tracker records."""

    number: int
    hash: str


@dataclass(frozen=True, slots=True)
class Block:
    """The parts of a block the tests look at."""

    number: int
    hash: str
    parent_hash: str
    base_fee_per_gas: int | None
    timestamp: int
    transactions: tuple[str, ...]

    @property
    def ref(self) -> BlockRef:
        """The block's number and hash."""
        return BlockRef(self.number, self.hash)


@dataclass(frozen=True, slots=True)
class PooledTransaction:
    """A transaction in Anvil's pool, as ``txpool_content`` lists it."""

    hash: str
    sender: str
    nonce: int
    queued: bool  # True: waiting for an earlier nonce; False: ready ("pending")
    max_fee_per_gas: int | None
    raw: Mapping[str, Any]


class PoolStatus(NamedTuple):
    """``txpool_status``: ready and nonce-gapped transactions."""

    pending: int
    queued: int


def _tag(block: BlockTag) -> str:
    if isinstance(block, int):
        if block < 0:
            raise ValueError("a block number must not be negative")
        return hex(block)
    return block


def _hex_data(value: bytes | str) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value if value.startswith("0x") else "0x" + value


class NodeControl:
    """A node's test methods (and a few plain ones) over JSON-RPC, with httpx.

    ``async with control_for(node) as control:`` (or ``AnvilControl(url)``, ``HardhatControl(url)``
    for a node of a known kind); pass an `httpx.AsyncClient` to share (it is then not closed here).
    """

    #: The kind of node this speaks to, and its method names.
    methods: ClassVar[NodeMethods] = ANVIL_METHODS

    def __init__(
        self,
        rpc_url: str,
        *,
        timeout_s: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = rpc_url
        self._own_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout_s)
        self._next_id = 0

    async def aclose(self) -> None:
        """Close the HTTP client (unless it was given)."""
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    @property
    def kind(self) -> str:
        """The kind of node: ``"anvil"``, ``"hardhat"``."""
        return self.methods.kind

    @classmethod
    def supports(cls, feature: Feature) -> bool:
        """Whether the node has ``feature`` (a test that needs it skips otherwise)."""
        if feature == "txpool":
            return cls.methods.txpool
        return getattr(cls.methods, feature) is not None

    def _require(self, feature: Feature) -> None:
        if not self.supports(feature):
            raise UnsupportedByNodeError(self.kind, feature)

    def _method_for(self, feature: Literal["reorg", "rollback"]) -> str:
        method = getattr(self.methods, feature)
        if method is None:
            raise UnsupportedByNodeError(self.kind, feature)
        return str(method)

    # ── raw JSON-RPC ──────────────────────────────────────────────────────────────────────────

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One JSON-RPC call: its ``result``.

        Raises:
            NodeRpcError: An error answer, an HTTP error or a malformed answer.
        """
        self._next_id += 1
        request = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": list(params)}
        response = await self._client.post(self._url, json=request)
        if response.status_code != 200:
            raise NodeRpcError(method, None, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise NodeRpcError(method, None, "the answer is not JSON") from None
        if not isinstance(body, dict):
            raise NodeRpcError(method, None, "not a JSON-RPC answer")
        error = body.get("error")
        if error is not None:
            if isinstance(error, dict):
                code = error.get("code")
                raise NodeRpcError(
                    method, code if isinstance(code, int) else None, str(error.get("message"))
                )
            raise NodeRpcError(method, None, str(error))
        if "result" not in body:
            raise NodeRpcError(method, None, "no result")
        return body["result"]

    # ── mining ────────────────────────────────────────────────────────────────────────────────

    async def set_automine(self, enabled: bool) -> None:
        """Mine a block per transaction (True), or only when told / on an interval (False)."""
        await self.call("evm_setAutomine", [enabled])

    async def automine(self) -> bool:
        """Whether automine is on."""
        return bool(await self.call(self.methods.get_automine))

    async def set_interval_mining(self, seconds: float) -> None:
        """Mine a block every ``seconds`` (0: stop). Anvil turns automine off; Hardhat does not.

        Raises:
            ValueError: Negative, or finer than the node counts (Anvil: whole seconds).
        """
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        units = seconds * self.methods.interval_mining_units_per_s
        if abs(units - round(units)) > 1e-9:
            raise ValueError(
                f"a {self.kind} node sets interval mining in whole units of 1/"
                f"{self.methods.interval_mining_units_per_s} s, not {seconds} s"
            )
        await self.call("evm_setIntervalMining", [round(units)])

    async def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks now (the pool's transactions go in the first)."""
        if blocks < 1:
            raise ValueError("blocks must be at least 1")
        await self.call(self.methods.mine, [hex(blocks)])

    # ── snapshots, re-orgs ────────────────────────────────────────────────────────────────────

    async def snapshot(self) -> str:
        """Snapshot the chain state; the id for `revert`."""
        return str(await self.call("evm_snapshot"))

    async def revert(self, snapshot_id: str) -> bool:
        """Go back to a snapshot; False if it is unknown or used up (a snapshot reverts once)."""
        try:
            return bool(await self.call("evm_revert", [snapshot_id]))
        except NodeRpcError as exc:
            if exc.code == _RESOURCE_NOT_FOUND:
                return False
            raise

    async def reorg(
        self,
        depth: int,
        txs: Sequence[tuple[bytes | str | Mapping[str, Any], int]] = (),
    ) -> None:
        """Replace the last ``depth`` blocks by new ones (``anvil_reorg``).

        ``txs`` are ``(transaction, offset)`` pairs to include in the new blocks: raw signed
        bytes (or their 0x hex), or a request object for an account Anvil can sign for; offset
        0 is the first replaced height, at most ``depth - 1``. The replaced blocks' own
        transactions are dropped (see the module docstring).

        Raises:
            UnsupportedByNodeError: The node has no re-org (Hardhat).
        """
        method = self._method_for("reorg")
        if depth < 1:
            raise ValueError("depth must be at least 1")
        pairs: list[list[Any]] = []
        for tx, offset in txs:
            if not 0 <= offset < depth:
                raise ValueError("a transaction's offset must be in 0..depth-1")
            item = dict(tx) if isinstance(tx, Mapping) else _hex_data(tx)
            pairs.append([item, offset])
        await self.call(method, [depth, pairs])

    async def rollback(self, depth: int = 1) -> None:
        """Remove the last ``depth`` blocks without replacing them (``anvil_rollback``).

        Raises:
            UnsupportedByNodeError: The node has no roll-back (Hardhat).
        """
        method = self._method_for("rollback")
        if depth < 1:
            raise ValueError("depth must be at least 1")
        await self.call(method, [depth])

    # ── the pool ──────────────────────────────────────────────────────────────────────────────

    async def drop_transaction(self, tx_hash: str) -> bool:
        """Remove a pooled transaction; False if it was not in the pool (mined ones are not)."""
        # Anvil answers the hash or null, Hardhat true or false (and an error for a mined one).
        try:
            answer = await self.call(self.methods.drop_transaction, [tx_hash])
        except NodeRpcError as exc:
            if "already mined" in exc.message:
                return False
            raise
        return answer is not None and answer is not False

    async def drop_all_transactions(self) -> None:
        """Empty the pool."""
        if self.methods.drop_all_transactions is not None:
            await self.call(self.methods.drop_all_transactions)
            return
        pooled = await self.call("eth_pendingTransactions")
        for tx in pooled or ():
            await self.drop_transaction(str(tx["hash"]))

    async def txpool_content(self) -> dict[str, Any]:
        """``txpool_content`` as Anvil answers it.

        Raises:
            UnsupportedByNodeError: The node has no pool view (Hardhat).
        """
        self._require("txpool")
        content = await self.call("txpool_content")
        if not isinstance(content, dict):
            raise NodeRpcError("txpool_content", None, "not an object")
        return content

    async def pending_transactions(self) -> list[PooledTransaction]:
        """Every pooled transaction, ready ("pending") and nonce-gapped ("queued").

        Raises:
            UnsupportedByNodeError: The node has no pool view (Hardhat).
        """
        content = await self.txpool_content()
        pooled: list[PooledTransaction] = []
        for section in ("pending", "queued"):
            for sender, by_nonce in (content.get(section) or {}).items():
                for nonce, tx in by_nonce.items():
                    fee = tx.get("maxFeePerGas") or tx.get("gasPrice")
                    pooled.append(
                        PooledTransaction(
                            hash=str(tx["hash"]),
                            sender=str(sender),
                            nonce=int(nonce),
                            queued=section == "queued",
                            max_fee_per_gas=int(fee, 16) if isinstance(fee, str) else None,
                            raw=tx,
                        )
                    )
        return pooled

    async def pool_status(self) -> PoolStatus:
        """``txpool_status``.

        Raises:
            UnsupportedByNodeError: The node has no pool view (Hardhat).
        """
        self._require("txpool")
        status = await self.call("txpool_status")
        return PoolStatus(int(status["pending"], 16), int(status["queued"], 16))

    # ── accounts, fees ────────────────────────────────────────────────────────────────────────

    async def set_next_block_base_fee(self, wei: int) -> None:
        """The base fee of the next block (later ones follow EIP-1559 from it)."""
        await self.call(self.methods.set_next_block_base_fee, [hex(wei)])

    async def set_balance(self, address: str, wei: int) -> None:
        """Set an account's native balance."""
        await self.call(self.methods.set_balance, [address, hex(wei)])

    async def set_nonce(self, address: str, nonce: int) -> None:
        """Set an account's nonce (its next transaction's)."""
        await self.call(self.methods.set_nonce, [address, hex(nonce)])

    async def set_code(self, address: str, code: bytes | str) -> None:
        """Put ``code`` (runtime bytecode) at ``address``."""
        await self.call(self.methods.set_code, [address, _hex_data(code)])

    async def impersonate(self, address: str) -> None:
        """Let `send_unsigned` send from ``address``."""
        await self.call(self.methods.impersonate, [address])

    async def stop_impersonating(self, address: str) -> None:
        """Undo `impersonate`."""
        await self.call(self.methods.stop_impersonating, [address])

    async def send_unsigned(self, tx: Mapping[str, Any]) -> str:
        """``eth_sendTransaction`` from an impersonated (or the node's own) account; the hash."""
        return str(await self.call("eth_sendTransaction", [dict(tx)]))

    async def send_raw(self, raw: bytes | str) -> str:
        """``eth_sendRawTransaction``; the hash."""
        return str(await self.call("eth_sendRawTransaction", [_hex_data(raw)]))

    # ── reads ─────────────────────────────────────────────────────────────────────────────────

    async def block_number(self) -> int:
        """The head's number."""
        return int(await self.call("eth_blockNumber"), 16)

    async def get_block(self, block: BlockTag = "latest") -> Block | None:
        """A block by number or tag, None if there is none."""
        answer = await self.call("eth_getBlockByNumber", [_tag(block), False])
        if answer is None:
            return None
        base_fee = answer.get("baseFeePerGas")
        number = answer["number"]
        return Block(
            # Hardhat's pending block has no number (as the JSON-RPC spec allows): the next one.
            number=int(number, 16) if number is not None else await self.block_number() + 1,
            hash=str(answer["hash"]),
            parent_hash=str(answer["parentHash"]),
            base_fee_per_gas=int(base_fee, 16) if base_fee is not None else None,
            timestamp=int(answer["timestamp"], 16),
            transactions=tuple(str(h) for h in answer["transactions"]),
        )

    async def block(self, block: BlockTag = "latest") -> BlockRef:
        """``(number, hash)`` of a block by number or tag.

        Raises:
            NodeRpcError: There is no such block.
        """
        found = await self.get_block(block)
        if found is None:
            raise NodeRpcError("eth_getBlockByNumber", None, f"no block {_tag(block)}")
        return found.ref

    async def nonce(self, address: str, block: BlockTag = "latest") -> int:
        """``eth_getTransactionCount`` at a block (``"pending"`` counts the pool)."""
        return int(await self.call("eth_getTransactionCount", [address, _tag(block)]), 16)

    async def balance(self, address: str, block: BlockTag = "latest") -> int:
        """Native balance in wei."""
        return int(await self.call("eth_getBalance", [address, _tag(block)]), 16)

    async def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        """``eth_getTransactionByHash`` (pooled or mined), None if unknown."""
        answer = await self.call("eth_getTransactionByHash", [tx_hash])
        return dict(answer) if answer is not None else None

    async def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """``eth_getTransactionReceipt``, None if not mined."""
        answer = await self.call("eth_getTransactionReceipt", [tx_hash])
        return dict(answer) if answer is not None else None

    async def wait_for_receipt(
        self, tx_hash: str, *, timeout_s: float = 10.0, poll_s: float = 0.02
    ) -> dict[str, Any]:
        """Poll for a receipt (automine mines just after the send answers).

        Raises:
            TimeoutError: No receipt within ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s):
            while (receipt := await self.receipt(tx_hash)) is None:  # noqa: ASYNC110 (a node)
                await asyncio.sleep(poll_s)
        return receipt

    async def wait_for_block(
        self, number: int, *, timeout_s: float = 10.0, poll_s: float = 0.02
    ) -> None:
        """Poll until the head reaches block ``number``.

        Raises:
            TimeoutError: Not within ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s):
            while await self.block_number() < number:  # noqa: ASYNC110 (polling a node)
                await asyncio.sleep(poll_s)


class AnvilControl(NodeControl):
    """`NodeControl` for Anvil (``anvil_*`` methods)."""

    methods: ClassVar[NodeMethods] = ANVIL_METHODS


class HardhatControl(NodeControl):
    """`NodeControl` for Hardhat (``hardhat_*`` methods; no re-org, roll-back or pool view)."""

    methods: ClassVar[NodeMethods] = HARDHAT_METHODS


_CONTROLS: Final[dict[str, type[NodeControl]]] = {
    ANVIL_METHODS.kind: AnvilControl,
    HARDHAT_METHODS.kind: HardhatControl,
}


def control_class(kind: str) -> type[NodeControl]:
    """The control for a kind of node (``"anvil"``, ``"hardhat"``).

    Raises:
        ValueError: No control knows that kind of node.
    """
    try:
        return _CONTROLS[kind]
    except KeyError:
        raise ValueError(f"no control for a {kind} node") from None


def control_for(
    node: LocalNode, *, timeout_s: float = 30.0, client: httpx.AsyncClient | None = None
) -> NodeControl:
    """The control of a running local node, by its kind (`LocalNode.kind`).

    Raises:
        ValueError: No control knows that kind of node.
    """
    return control_class(node.kind)(node.rpc_url, timeout_s=timeout_s, client=client)
