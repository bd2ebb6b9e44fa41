"""`AnvilControl`: an async client of Anvil's test-only JSON-RPC methods, for fault-injection tests.

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

Errors are raised as `AnvilRpcError` (method, code, message). The node is local: its URL is not
secret, but it is left out of messages anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, NamedTuple, Self

import httpx

__all__ = [
    "AnvilControl",
    "AnvilRpcError",
    "Block",
    "BlockRef",
    "BlockTag",
    "PoolStatus",
    "PooledTransaction",
]

BlockTag = int | Literal["latest", "pending", "safe", "finalized", "earliest"]

_RESOURCE_NOT_FOUND: Final = -32001


class AnvilRpcError(RuntimeError):
    """Anvil answered a JSON-RPC error (or no usable answer)."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        super().__init__(f"{method} failed: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message


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


class AnvilControl:
    """Anvil's test methods (and a few plain ones) over JSON-RPC, with httpx.

    ``async with AnvilControl(anvil.rpc_url) as control:``, or pass an `httpx.AsyncClient` to
    share (it is then not closed here).
    """

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
        return "<AnvilControl>"

    # ── raw JSON-RPC ──────────────────────────────────────────────────────────────────────────

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One JSON-RPC call: its ``result``.

        Raises:
            AnvilRpcError: An error answer, an HTTP error or a malformed answer.
        """
        self._next_id += 1
        request = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": list(params)}
        response = await self._client.post(self._url, json=request)
        if response.status_code != 200:
            raise AnvilRpcError(method, None, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise AnvilRpcError(method, None, "the answer is not JSON") from None
        if not isinstance(body, dict):
            raise AnvilRpcError(method, None, "not a JSON-RPC answer")
        error = body.get("error")
        if error is not None:
            if isinstance(error, dict):
                code = error.get("code")
                raise AnvilRpcError(
                    method, code if isinstance(code, int) else None, str(error.get("message"))
                )
            raise AnvilRpcError(method, None, str(error))
        if "result" not in body:
            raise AnvilRpcError(method, None, "no result")
        return body["result"]

    # ── mining ────────────────────────────────────────────────────────────────────────────────

    async def set_automine(self, enabled: bool) -> None:
        """Mine a block per transaction (True), or only when told / on an interval (False)."""
        await self.call("evm_setAutomine", [enabled])

    async def automine(self) -> bool:
        """Whether automine is on."""
        return bool(await self.call("anvil_getAutomine"))

    async def set_interval_mining(self, seconds: int) -> None:
        """Mine a block every ``seconds`` (0: stop). Turns automine off."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        await self.call("evm_setIntervalMining", [seconds])

    async def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks now (the pool's transactions go in the first)."""
        if blocks < 1:
            raise ValueError("blocks must be at least 1")
        await self.call("anvil_mine", [hex(blocks)])

    # ── snapshots, re-orgs ────────────────────────────────────────────────────────────────────

    async def snapshot(self) -> str:
        """Snapshot the chain state; the id for `revert`."""
        return str(await self.call("evm_snapshot"))

    async def revert(self, snapshot_id: str) -> bool:
        """Go back to a snapshot; False if it is unknown or used up (a snapshot reverts once)."""
        try:
            return bool(await self.call("evm_revert", [snapshot_id]))
        except AnvilRpcError as exc:
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
        """
        if depth < 1:
            raise ValueError("depth must be at least 1")
        pairs: list[list[Any]] = []
        for tx, offset in txs:
            if not 0 <= offset < depth:
                raise ValueError("a transaction's offset must be in 0..depth-1")
            item = dict(tx) if isinstance(tx, Mapping) else _hex_data(tx)
            pairs.append([item, offset])
        await self.call("anvil_reorg", [depth, pairs])

    async def rollback(self, depth: int = 1) -> None:
        """Remove the last ``depth`` blocks without replacing them (``anvil_rollback``)."""
        if depth < 1:
            raise ValueError("depth must be at least 1")
        await self.call("anvil_rollback", [depth])

    # ── the pool ──────────────────────────────────────────────────────────────────────────────

    async def drop_transaction(self, tx_hash: str) -> bool:
        """Remove a pooled transaction; False if it was not in the pool (mined ones are not)."""
        return await self.call("anvil_dropTransaction", [tx_hash]) is not None

    async def drop_all_transactions(self) -> None:
        """Empty the pool."""
        await self.call("anvil_dropAllTransactions")

    async def txpool_content(self) -> dict[str, Any]:
        """``txpool_content`` as Anvil answers it."""
        content = await self.call("txpool_content")
        if not isinstance(content, dict):
            raise AnvilRpcError("txpool_content", None, "not an object")
        return content

    async def pending_transactions(self) -> list[PooledTransaction]:
        """Every pooled transaction, ready ("pending") and nonce-gapped ("queued")."""
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
        """``txpool_status``."""
        status = await self.call("txpool_status")
        return PoolStatus(int(status["pending"], 16), int(status["queued"], 16))

    # ── accounts, fees ────────────────────────────────────────────────────────────────────────

    async def set_next_block_base_fee(self, wei: int) -> None:
        """The base fee of the next block (later ones follow EIP-1559 from it)."""
        await self.call("anvil_setNextBlockBaseFeePerGas", [hex(wei)])

    async def set_balance(self, address: str, wei: int) -> None:
        """Set an account's native balance."""
        await self.call("anvil_setBalance", [address, hex(wei)])

    async def impersonate(self, address: str) -> None:
        """Let `send_unsigned` send from ``address``."""
        await self.call("anvil_impersonateAccount", [address])

    async def stop_impersonating(self, address: str) -> None:
        """Undo `impersonate`."""
        await self.call("anvil_stopImpersonatingAccount", [address])

    async def send_unsigned(self, tx: Mapping[str, Any]) -> str:
        """``eth_sendTransaction`` from an impersonated (or Anvil's own) account; the hash."""
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
        return Block(
            number=int(answer["number"], 16),
            hash=str(answer["hash"]),
            parent_hash=str(answer["parentHash"]),
            base_fee_per_gas=int(base_fee, 16) if base_fee is not None else None,
            timestamp=int(answer["timestamp"], 16),
            transactions=tuple(str(h) for h in answer["transactions"]),
        )

    async def block(self, block: BlockTag = "latest") -> BlockRef:
        """``(number, hash)`` of a block by number or tag.

        Raises:
            AnvilRpcError: There is no such block.
        """
        found = await self.get_block(block)
        if found is None:
            raise AnvilRpcError("eth_getBlockByNumber", None, f"no block {_tag(block)}")
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
