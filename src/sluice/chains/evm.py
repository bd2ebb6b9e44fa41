"""`ChainClient` for EVM networks, over JSON-RPC on a kept-alive aiohttp session.

The RPC URL is treated as a secret, since hosted providers put the API key in its path or query:
it never appears in an exception message, a ``repr`` or a log line. `EvmChainClient.redacted_url`
(``scheme://host[:port]``) is what callers may log. Errors are raised ``from None`` so tracebacks
do not carry aiohttp's messages, which quote the URL.

Calls go to the provider as raw JSON-RPC and every answer is validated here: an answer larger
than `MAX_RESPONSE_BYTES`, or malformed (a negative or non-hex quantity, a receipt status other
than 0 or 1, a hash that does not match the transaction sent, another request's id) is a broken
node, reported like an unreachable one, as `ChainRpcError`. Nothing is retried here: retrying is
the worker's job, with its backoff.

A JSON-RPC *error answer* is read for what it says (`sluice.chains.rpc_errors`): to a send it is
the node's verdict on the transaction (`TransactionRefusedRpcError`, or an acceptance when it
means the nonce is taken already); to ``eth_call``/``eth_estimateGas`` that reverts or halts it
is the call's answer (`sluice.errors.CallRevertedError`); a rate limit, a syncing node or a
method the provider does not serve is the provider's fault (`ChainRpcError`).

Why not web3's `AsyncHTTPProvider`: web3 7 opens a new TCP connection for every call
(``TCPConnector(force_close=True)``) and passes each call through a thread pool for its session
cache lock. On a local node that was 0.43 ms of CPU per call against 0.12 ms on one kept-alive
session (docs/benchmarks.md); and since every answer is validated here anyway, web3 added nothing
but the transport.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from sluice.chains.rpc_errors import (
    ALREADY_SENT,
    PERMANENT,
    call_failure,
    normalise,
    provider_fault,
    send_refusal,
)
from sluice.domain.addresses import Address
from sluice.domain.fees import FeeMarket
from sluice.domain.receipts import Log
from sluice.errors import (
    CallRevertedError,
    ChainUnavailableError,
    ConfigurationError,
    TransactionRefusedError,
)
from sluice.ports import Receipt, SendResult

__all__ = [
    "DEFAULT_PRIORITY_FEE",
    "MAX_RESPONSE_BYTES",
    "ChainRpcError",
    "EvmChainClient",
    "TransactionRefusedRpcError",
]

#: The tip used when the node cannot suggest one (1 gwei).
DEFAULT_PRIORITY_FEE: Final = 10**9

#: The largest JSON-RPC answer read from a node (a block with full transactions fits easily).
MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024

#: Kept-alive connections per client; calls beyond them wait for one to be free.
_CONNECTIONS: Final = 32

#: ERC-20 ``balanceOf(address)`` selector.
_BALANCE_OF: Final = bytes.fromhex("70a08231")

#: ERC-20 ``decimals()`` selector.
_DECIMALS: Final = bytes.fromhex("313ce567")
#: ERC-20 ``allowance(address,address)`` selector.
_ALLOWANCE: Final = bytes.fromhex("dd62ed3e")

#: OP Stack GasPriceOracle ``getL1Fee(bytes)`` selector.
_GET_L1_FEE: Final = bytes.fromhex("49948e0e")

#: The most blocks one ``eth_feeHistory`` may span (geth's and the spec's limit).
_MAX_HISTORY_BLOCKS: Final = 1024

#: How much of a node's error text an exception message may quote.
_MAX_DETAIL_CHARS: Final = 160

#: Topics an event log may carry (LOG0 to LOG4).
_MAX_TOPICS: Final = 4

#: Methods that execute a call, whose revert or halt is the call's answer.
_CALLS: Final = frozenset({"eth_call", "eth_estimateGas"})

_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_HASH = re.compile(r"0x[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_URLISH = re.compile(
    r"[a-zA-Z][a-zA-Z0-9+.-]*://\S*"  # anything with a scheme
    r"|\b(?:[\w-]+\.)+[a-zA-Z]{2,}(?::\d+)?/\S*"  # host.name/path without one
)


class ChainRpcError(ChainUnavailableError):
    """The node could not be reached, did not answer in time, answered nonsense, or refused.

    ``reason`` is a short classification (``timeout``, ``connection_failed``, ``http_503``,
    ``malformed_response``, ``rate_limited``, ``node_syncing``, ``rpc_error``...); ``method`` is
    the JSON-RPC method. The message holds both and at most a short, sanitised excerpt of the
    node's error text; never the RPC URL.
    """

    def __init__(self, method: str, reason: str, detail: str = "") -> None:
        super().__init__(_message(method, reason, detail), reason=reason)
        self.method = method


class TransactionRefusedRpcError(ChainRpcError, TransactionRefusedError):
    """A JSON-RPC error answer to ``eth_sendRawTransaction``: the node did not take the
    transaction. ``reason`` is from `sluice.chains.rpc_errors.send_refusal`; ``permanent`` says
    whether these bytes can never be accepted."""

    def __init__(
        self, method: str, reason: str, detail: str = "", *, permanent: bool = False
    ) -> None:
        super().__init__(method, reason, detail)
        self.permanent = permanent


class _NodeRefusalError(Exception):
    """A JSON-RPC error answer, before the caller decides what it means."""

    def __init__(self, code: object, message: str, data: object = None) -> None:
        super().__init__(message)
        self.rpc_code = code
        self.message = message
        self.data = data


def _redact(rpc_url: str) -> tuple[str, tuple[str, ...]]:
    """``scheme://host[:port]`` of an RPC URL, and its secret-bearing fragments for scrubbing."""
    try:
        parts = urlsplit(rpc_url)
        port = parts.port
    except ValueError:
        raise ConfigurationError("the RPC URL is malformed") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigurationError("the RPC URL must be an http:// or https:// URL with a host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    redacted = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    fragments = (rpc_url, parts.netloc, parts.path, parts.query, parts.username, parts.password)
    # Short fragments ("/", "v3") are not secrets and would mangle unrelated text.
    secrets = tuple(sorted({f for f in fragments if f and len(f) >= 6}, key=len, reverse=True))
    return redacted, secrets


class EvmChainClient:
    """One EVM network's JSON-RPC endpoint (implements `sluice.ports.ChainClient`).

    Every failure to get a useful answer, whether network, timeout, HTTP status or a malformed
    answer, raises `ChainRpcError`, a `ChainUnavailableError`: the worker retries it with
    backoff. A refused send raises `TransactionRefusedRpcError` (also a `ChainRpcError`); a call
    that reverts or halts raises `CallRevertedError`, which is not transient.
    """

    def __init__(self, rpc_url: str, *, timeout_s: float = 10.0) -> None:
        if timeout_s <= 0:
            raise ConfigurationError("the RPC timeout must be positive")
        self._redacted_url, self._secrets = _redact(rpc_url)
        self._url = rpc_url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)
        self._closed = False

    @property
    def redacted_url(self) -> str:
        """The endpoint as ``scheme://host[:port]``: safe to log, unlike the URL itself."""
        return self._redacted_url

    def __repr__(self) -> str:
        return f"EvmChainClient({self._redacted_url!r})"

    # ── ChainClient ───────────────────────────────────────────────────────────────────────────

    async def chain_id(self) -> int:
        """The chain id the node reports."""
        method = "eth_chainId"
        chain_id = _quantity(await self._checked(method, []), method, "chain id")
        if chain_id == 0:
            raise ChainRpcError(method, "malformed_response", "chain id 0")
        return chain_id

    async def block_number(self) -> int:
        """The latest block number."""
        method = "eth_blockNumber"
        return _quantity(await self._checked(method, []), method, "block number")

    async def fee_market(self, *, blocks: int, percentiles: tuple[int, ...]) -> FeeMarket:
        """The next block's base fee, the node's suggested tip, and the recent rewards at
        ``percentiles``, from one ``eth_feeHistory(blocks, "latest", percentiles)``.

        The base fee is the last of the history's ``baseFeePerGas``: it lists one entry per
        block asked for and one more, for the block after the newest (execution-apis
        ``eth/fee_market.yaml``). Each of ``rewards`` is the average, rounded up, of that
        percentile's ``reward`` over the blocks, leaving out the blocks whose rewards are all
        zero (empty blocks, which geth and Anvil answer with zero rewards: Chainlink's
        estimator leaves them out too); 0 when every block was empty, and ``()`` when the node
        answers no ``reward``. A node without ``eth_feeHistory`` (an error answer, or none) is
        read the older way: the latest block's ``baseFeePerGas``, one block behind, and no
        rewards. The tip is ``eth_maxPriorityFeePerGas``, or `DEFAULT_PRIORITY_FEE` if the
        node cannot suggest one.

        The adapter only reads the market: what a transaction offers is priced from it by the
        network's fee strategy (`sluice.domain.fees.FeePolicy.price`).

        Raises:
            ValueError: ``blocks`` is not 1-1024, or a percentile is not 0-100 in rising order.
            ChainRpcError: Unreachable, a malformed answer, or ``no_base_fee`` (a network
                without EIP-1559 and without ``eth_feeHistory``).
        """
        if not 1 <= blocks <= _MAX_HISTORY_BLOCKS:
            raise ValueError(f"the fee history spans 1 to {_MAX_HISTORY_BLOCKS} blocks")
        if list(percentiles) != sorted(percentiles) or not all(0 <= p <= 100 for p in percentiles):
            raise ValueError("reward percentiles are 0 to 100, in rising order")
        tip = await self._suggested_tip()
        method = "eth_feeHistory"
        try:
            history = await self._call(method, [hex(blocks), "latest", list(percentiles)])
        except _NodeRefusalError:
            history = None
        if history is None:
            return FeeMarket(base_fee=await self._latest_base_fee(), priority_fee=tip)
        if not isinstance(history, dict):
            raise ChainRpcError(method, "malformed_response", "fee history is not an object")
        base_fees = history.get("baseFeePerGas")
        if not isinstance(base_fees, list) or not base_fees:
            raise ChainRpcError(method, "malformed_response", "no baseFeePerGas")
        bases = [_quantity(fee, method, "base fee") for fee in base_fees]
        rewards = _average_rewards(history.get("reward"), len(percentiles), blocks)
        return FeeMarket(base_fee=bases[-1], priority_fee=tip, rewards=rewards)

    async def gas_price(self) -> int:
        """The node's ``eth_gasPrice``: the gas price it suggests for a legacy transaction."""
        method = "eth_gasPrice"
        return _quantity(await self._checked(method, []), method, "gas price")

    async def l1_fee(self, oracle: Address, unsigned_transaction: bytes) -> int:
        """The L1 data fee of a transaction on an OP Stack chain: ``getL1Fee(bytes)`` called on
        its GasPriceOracle (``oracle``; 0x420000000000000000000000000000000000000F on OP
        Mainnet and Base) at the latest block. ``unsigned_transaction`` is the transaction's
        unsigned serialization (`sluice.signers.eip1559.unsigned_serialization`): the oracle
        adds a signature's size itself.

        Raises:
            CallRevertedError: The call reverts or halts.
            ChainRpcError: Unreachable, or the answer is not one word (no contract there).
        """
        method = "eth_call"
        data = _GET_L1_FEE + _abi_bytes(unsigned_transaction)
        call = {"to": oracle, "data": "0x" + data.hex()}
        answer = _data(await self._checked(method, [call, "latest"]), method, "L1 fee")
        if len(answer) != 32:
            raise ChainRpcError(method, "malformed_response", "getL1Fee is not one word")
        return int.from_bytes(answer, "big")

    async def estimate_gas(self, sender: Address, to: Address, value: int, data: bytes) -> int:
        """Gas a call is expected to use.

        Raises:
            CallRevertedError: The call reverts or halts (``execution_reverted``,
                ``invalid_opcode``, ``out_of_gas``, ``execution_halted``).
            ChainRpcError: Unreachable, a malformed answer, or another error answer.
        """
        method = "eth_estimateGas"
        call = {"from": sender, "to": to, "value": hex(value), "data": "0x" + data.hex()}
        try:
            # At the pending state: what the wallet's transactions in the pool leave it with, as
            # the transaction signed from this estimate will find it (a batch's simulation).
            answer = await self._call(method, [call, "pending"])
        except _NodeRefusalError as refusal:
            raise self._refused(method, refusal) from None
        gas = _quantity(answer, method, "gas")
        if gas == 0:
            raise ChainRpcError(method, "malformed_response", "gas estimate 0")
        return gas

    async def code_size(self, address: Address) -> int:
        """Bytes of contract code at an address (0 for an account)."""
        method = "eth_getCode"
        return len(_data(await self._checked(method, [address, "latest"]), method, "code"))

    async def code(self, address: Address) -> bytes:
        """The contract code at an address, at the latest block (empty for an account)."""
        method = "eth_getCode"
        return _data(await self._checked(method, [address, "latest"]), method, "code")

    async def call(self, to: Address, data: bytes) -> bytes:
        """What ``eth_call`` of ``data`` on ``to`` returns, at the latest block.

        Raises:
            CallRevertedError: The call reverts or halts.
            ChainRpcError: Unreachable, a malformed answer, or another error answer.
        """
        method = "eth_call"
        call = {"to": to, "data": "0x" + data.hex()}
        return _data(await self._checked(method, [call, "latest"]), method, "call result")

    async def estimate_creation_gas(self, sender: Address, data: bytes) -> int:
        """Gas a contract creation (no ``to``) with init code ``data`` is expected to use.

        Raises:
            CallRevertedError: The creation reverts or halts.
            ChainRpcError: Unreachable, a malformed answer, or another error answer.
        """
        method = "eth_estimateGas"
        call = {"from": sender, "value": "0x0", "data": "0x" + data.hex()}
        try:
            answer = await self._call(method, [call])
        except _NodeRefusalError as refusal:
            raise self._refused(method, refusal) from None
        gas = _quantity(answer, method, "gas")
        if gas == 0:
            raise ChainRpcError(method, "malformed_response", "gas estimate 0")
        return gas

    async def send_raw_transaction(self, raw: bytes) -> SendResult:
        """Send a signed transaction, classifying the node's answer.

        Returns:
            ``accepted=True`` with an empty note on success, or with a note (``already_known``,
            ``nonce_too_low``, ``replacement_underpriced``) when the node's refusal means this
            transaction, or another with its nonce, is already pooled or mined.

        Raises:
            TransactionRefusedRpcError: Any other JSON-RPC error answer: the node refused the
                transaction (``insufficient_funds``, ``fee_too_low``, ``gas_too_low``,
                ``wrong_chain_id``, ``rejected``...; ``permanent`` for those these bytes can
                never get past).
            ChainRpcError: Unreachable, timed out, a malformed answer, or an error answer about
                the provider itself (``rate_limited``, ``node_syncing``,
                ``method_unavailable``): the transaction may or may not have been taken.
        """
        method = "eth_sendRawTransaction"
        expected_hash = "0x" + keccak(raw).hex()
        try:
            answer = await self._call(method, ["0x" + raw.hex()])
        except _NodeRefusalError as refusal:
            error = self._refused(method, refusal)
            if isinstance(error, TransactionRefusedRpcError) and error.reason in ALREADY_SENT:
                return SendResult(accepted=True, note=error.reason)
            raise error from None
        if not isinstance(answer, str) or answer.lower() != expected_hash:
            raise ChainRpcError(method, "malformed_response", "unexpected transaction hash")
        return SendResult(accepted=True)

    async def receipt(self, transaction_hash: str) -> Receipt | None:
        """The receipt of a mined transaction, or None if the node has none (yet)."""
        method = "eth_getTransactionReceipt"
        tx_hash = _require_hash(transaction_hash)
        try:
            answer = await self._call(method, [tx_hash])
        except _NodeRefusalError as refusal:
            if _says_not_found(refusal):
                return None
            raise self._refused(method, refusal) from None
        if answer is None:
            return None
        if not isinstance(answer, dict):
            raise ChainRpcError(method, "malformed_response", "receipt is not an object")
        if answer.get("blockHash") is None or answer.get("blockNumber") is None:
            return None  # some nodes answer for pooled transactions: not mined yet
        if not isinstance(answer.get("transactionHash"), str) or (
            answer["transactionHash"].lower() != tx_hash
        ):
            raise ChainRpcError(method, "malformed_response", "receipt of another transaction")
        status = answer.get("status")
        if status not in {"0x0", "0x1"}:
            raise ChainRpcError(method, "malformed_response", "receipt status is not 0 or 1")
        block_hash = answer["blockHash"]
        if not isinstance(block_hash, str) or not _HASH.fullmatch(block_hash.lower()):
            raise ChainRpcError(method, "malformed_response", "block hash")
        return Receipt(
            transaction_hash=tx_hash,
            succeeded=status == "0x1",
            block_number=_quantity(answer["blockNumber"], method, "block number"),
            block_hash=block_hash.lower(),
            gas_used=_quantity(answer.get("gasUsed"), method, "gas used"),
            logs=_logs(answer.get("logs"), method),
            effective_gas_price=_optional_quantity(
                answer.get("effectiveGasPrice"), method, "effective gas price"
            ),
            l1_fee=_optional_quantity(answer.get("l1Fee"), method, "L1 fee"),
        )

    async def is_known(self, transaction_hash: str) -> bool:
        """Whether the node knows the transaction (in its pool or mined)."""
        method = "eth_getTransactionByHash"
        tx_hash = _require_hash(transaction_hash)
        try:
            answer = await self._call(method, [tx_hash])
        except _NodeRefusalError as refusal:
            if _says_not_found(refusal):
                return False
            raise self._refused(method, refusal) from None
        if answer is None:
            return False
        if not isinstance(answer, dict):
            raise ChainRpcError(method, "malformed_response", "transaction is not an object")
        return True

    async def balance(self, address: Address) -> int:
        """Native balance in wei, at the latest block."""
        method = "eth_getBalance"
        return _quantity(await self._checked(method, [address, "latest"]), method, "balance")

    async def transaction_count(
        self, address: Address, *, pending: bool = False, at_block: int | None = None
    ) -> int:
        """Transactions sent from an address: mined by the latest block (or ``at_block``), or
        including the node's pool."""
        method = "eth_getTransactionCount"
        if at_block is not None and at_block < 0:
            raise ValueError("block numbers are not negative")
        block = "pending" if pending else ("latest" if at_block is None else hex(at_block))
        return _quantity(await self._checked(method, [address, block]), method, "nonce")

    async def token_balance(self, token: Address, holder: Address) -> int:
        """An ERC-20 balance: ``balanceOf(holder)`` called on ``token`` at the latest block."""
        method = "eth_call"
        data = _BALANCE_OF + bytes.fromhex(holder[2:]).rjust(32, b"\0")
        call = {"to": token, "data": "0x" + data.hex()}
        answer = _data(await self._checked(method, [call, "latest"]), method, "balance")
        if len(answer) != 32:
            raise ChainRpcError(method, "malformed_response", "balanceOf is not one word")
        return int.from_bytes(answer, "big")

    async def token_allowance(self, token: Address, owner: Address, spender: Address) -> int:
        """``allowance(owner, spender)`` called on ``token`` at the latest block."""
        method = "eth_call"
        data = (
            _ALLOWANCE
            + bytes.fromhex(owner[2:]).rjust(32, b"\0")
            + bytes.fromhex(spender[2:]).rjust(32, b"\0")
        )
        call = {"to": token, "data": "0x" + data.hex()}
        answer = _data(await self._checked(method, [call, "latest"]), method, "allowance")
        if len(answer) != 32:
            raise ChainRpcError(method, "malformed_response", "allowance is not one word")
        return int.from_bytes(answer, "big")

    async def token_decimals(self, token: Address) -> int:
        """An ERC-20 token's ``decimals()`` at the latest block (for `sluice config check`).

        Raises:
            ChainRpcError: Unreachable, the call reverts (not an ERC-20 token), or the answer is
                not one word holding a ``uint8``.
        """
        method = "eth_call"
        call = {"to": token, "data": "0x" + _DECIMALS.hex()}
        answer = _data(await self._checked(method, [call, "latest"]), method, "decimals")
        if len(answer) != 32:
            raise ChainRpcError(method, "malformed_response", "decimals is not one word")
        decimals = int.from_bytes(answer, "big")
        if decimals > 255:
            raise ChainRpcError(method, "malformed_response", "decimals is not a uint8")
        return decimals

    async def block_hash(self, number: int) -> str | None:
        """The canonical chain's hash of block ``number``, or None if there is no such block."""
        if number < 0:
            raise ValueError("block numbers are not negative")
        block = await self._block(hex(number))
        if block is None:
            return None
        if _quantity(block.get("number"), "eth_getBlockByNumber", "block number") != number:
            raise ChainRpcError("eth_getBlockByNumber", "malformed_response", "another block")
        return _block_hash(block)

    async def finalized_block(self) -> int:
        """The latest block the node calls ``finalized``."""
        block = await self._block("finalized")
        if block is None:
            raise ChainRpcError("eth_getBlockByNumber", "malformed_response", "no finalized block")
        return _quantity(block.get("number"), "eth_getBlockByNumber", "block number")

    async def close(self) -> None:
        """Close the HTTP session. The client cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ── JSON-RPC ──────────────────────────────────────────────────────────────────────────────

    async def _call(self, method: str, params: list[Any]) -> object:
        """One JSON-RPC call: its result, or `_NodeRefusalError` for an error answer.

        Raises:
            ChainRpcError: No usable answer (network, timeout, HTTP status, not JSON-RPC).
            _NodeRefusalError: The node answered with a JSON-RPC error.
        """
        if self._closed:
            raise RuntimeError("the chain client is closed")
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        try:
            async with self._http().post(self._url, json=body) as answer:
                if answer.status != 200:
                    raise ChainRpcError(method, f"http_{answer.status}")
                raw = await answer.content.read(MAX_RESPONSE_BYTES + 1)
        except TimeoutError:
            raise ChainRpcError(method, "timeout") from None
        except (aiohttp.ClientConnectionError, OSError):
            raise ChainRpcError(method, "connection_failed") from None
        except aiohttp.ClientError:
            raise ChainRpcError(method, "http_error") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise ChainRpcError(method, "malformed_response", "answer too large")
        try:
            response: object = json.loads(raw)
        except ValueError:  # the body was not JSON (a proxy's HTML error page, say)
            raise ChainRpcError(method, "malformed_response", "not JSON") from None
        if not isinstance(response, dict) or response.get("id") != request_id:
            raise ChainRpcError(method, "malformed_response", "not a JSON-RPC response")
        error = response.get("error")
        if error is not None:
            if isinstance(error, dict):
                message = error.get("message")
                raise _NodeRefusalError(
                    error.get("code"),
                    message if isinstance(message, str) else "",
                    error.get("data"),
                )
            raise _NodeRefusalError(None, error if isinstance(error, str) else "")
        if "result" not in response:
            raise ChainRpcError(method, "malformed_response", "no result")
        result: object = response["result"]
        return result

    async def _checked(self, method: str, params: list[Any]) -> object:
        """`_call`, with any JSON-RPC error raised as `ChainRpcError`."""
        try:
            return await self._call(method, params)
        except _NodeRefusalError as refusal:
            raise self._refused(method, refusal) from None

    async def _block(self, tag: str) -> dict[str, Any] | None:
        """A block header by number (hex) or tag, or None."""
        method = "eth_getBlockByNumber"
        block = await self._checked(method, [tag, False])
        if block is None:
            return None
        if not isinstance(block, dict):
            raise ChainRpcError(method, "malformed_response", "block is not an object")
        return block

    def _http(self) -> aiohttp.ClientSession:
        """The client's session, made on first use (inside the event loop that uses it)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=_CONNECTIONS, keepalive_timeout=30),
                # Nothing from the environment (proxies, .netrc) decides where calls go.
                trust_env=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def _suggested_tip(self) -> int:
        """``eth_maxPriorityFeePerGas``, or `DEFAULT_PRIORITY_FEE` if the node has none."""
        method = "eth_maxPriorityFeePerGas"
        try:
            return _quantity(await self._call(method, []), method, "priority fee")
        except _NodeRefusalError:
            return DEFAULT_PRIORITY_FEE

    async def _latest_base_fee(self) -> int:
        """The latest block's ``baseFeePerGas``."""
        method = "eth_getBlockByNumber"
        block = await self._checked(method, ["latest", False])
        if not isinstance(block, dict):
            raise ChainRpcError(method, "malformed_response", "no latest block")
        base_fee = block.get("baseFeePerGas")
        if base_fee is None:
            raise ChainRpcError(method, "no_base_fee", "the network does not support EIP-1559")
        return _quantity(base_fee, method, "base fee")

    def _refused(
        self, method: str, refusal: _NodeRefusalError
    ) -> ChainRpcError | CallRevertedError:
        """What a JSON-RPC error answer means, quoting a sanitised excerpt of the node's text.

        A call's revert or halt is the call's answer; then the few answers that are about the
        provider; then, for a send, the refusal of the transaction. Any other error answer to a
        read is ``rpc_error`` (the provider could not serve it: another one may).
        """
        detail = _sanitise(refusal.message, self._secrets)
        if method in _CALLS and (failure := call_failure(refusal.message, refusal.rpc_code)):
            return CallRevertedError(
                _message(method, failure, detail), reason=failure, data=_revert_data(refusal.data)
            )
        fault = provider_fault(refusal.message, refusal.rpc_code)
        if fault is not None:
            return ChainRpcError(method, fault, detail)
        if method == "eth_sendRawTransaction":
            reason = send_refusal(refusal.message)
            return TransactionRefusedRpcError(method, reason, detail, permanent=reason in PERMANENT)
        reason = send_refusal(refusal.message) if method in _CALLS else "rejected"
        return ChainRpcError(method, "rpc_error" if reason == "rejected" else reason, detail)


def _message(method: str, reason: str, detail: str) -> str:
    return f"{method} failed: {reason}" + (f" ({detail})" if detail else "")


def _revert_data(value: object) -> bytes:
    """The revert data of a reverted call's error answer: ``error.data`` (geth, reth, Anvil),
    or ``error.data.data`` (Hardhat)."""
    if isinstance(value, dict):
        value = value.get("data")
    if isinstance(value, str) and _DATA.fullmatch(value):
        return bytes.fromhex(value[2:])
    return b""


def _logs(value: object, method: str) -> tuple[Log, ...]:
    """A receipt's ``logs``, validated."""
    if not isinstance(value, list):
        raise ChainRpcError(method, "malformed_response", "receipt logs are not a list")
    logs = []
    for entry in value:
        if not isinstance(entry, dict):
            raise ChainRpcError(method, "malformed_response", "a log is not an object")
        address = entry.get("address")
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise ChainRpcError(method, "malformed_response", "log address")
        topics = entry.get("topics")
        if (
            not isinstance(topics, list)
            or len(topics) > _MAX_TOPICS
            or not all(isinstance(t, str) and _HASH.fullmatch(t.lower()) for t in topics)
        ):
            raise ChainRpcError(method, "malformed_response", "log topics")
        logs.append(
            Log(
                address=Address(to_checksum_address(address)),
                topics=tuple(t.lower() for t in topics),
                data=_data(entry.get("data"), method, "log data"),
            )
        )
    return tuple(logs)


def _sanitise(text: str, secrets: tuple[str, ...]) -> str:
    """A node's error text made safe to quote: no URLs, printable, one line, bounded."""
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    text = _URLISH.sub("<url>", text)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(text) > _MAX_DETAIL_CHARS:
        text = text[: _MAX_DETAIL_CHARS - 1] + "…"
    return text


def _block_hash(block: dict[str, Any]) -> str:
    value = block.get("hash")
    if not isinstance(value, str) or not _HASH.fullmatch(value.lower()):
        raise ChainRpcError("eth_getBlockByNumber", "malformed_response", "block hash")
    return value.lower()


def _says_not_found(refusal: _NodeRefusalError) -> bool:
    return "not found" in normalise(refusal.message)


def _require_hash(transaction_hash: str) -> str:
    tx_hash = transaction_hash.lower()
    if not _HASH.fullmatch(tx_hash):
        raise ValueError("a transaction hash is 0x followed by 64 hexadecimal digits")
    return tx_hash


def _quantity(value: object, method: str, what: str) -> int:
    """A JSON-RPC QUANTITY (0x-prefixed hex, at most 256 bits), validated."""
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise ChainRpcError(method, "malformed_response", f"{what} is not a hex quantity")
    return int(value, 16)


def _optional_quantity(value: object, method: str, what: str) -> int:
    """A QUANTITY a node may leave out (absent or null: 0), validated when present."""
    return 0 if value is None else _quantity(value, method, what)


def _average_rewards(value: object, percentiles: int, blocks: int) -> tuple[int, ...]:
    """Each percentile's average ``reward`` (rounded up) over the blocks that paid any,
    validated: a list of at most ``blocks`` rows of ``percentiles`` quantities each."""
    method = "eth_feeHistory"
    if value is None or percentiles == 0:
        return ()
    if not isinstance(value, list) or len(value) > blocks:
        raise ChainRpcError(method, "malformed_response", "reward is not a list of blocks")
    paid: list[list[int]] = []
    for row in value:
        if not isinstance(row, list) or len(row) != percentiles:
            raise ChainRpcError(method, "malformed_response", "a block's rewards")
        rewards = [_quantity(reward, method, "reward") for reward in row]
        if any(rewards):
            paid.append(rewards)
    if not paid:
        return (0,) * percentiles
    return tuple(-(-sum(column) // len(paid)) for column in zip(*paid, strict=True))


def _abi_bytes(value: bytes) -> bytes:
    """The ABI encoding of one ``bytes`` argument: its offset, its length, its bytes padded to
    whole 32-byte words."""
    padded = value + b"\0" * (-len(value) % 32)
    return (32).to_bytes(32, "big") + len(value).to_bytes(32, "big") + padded


def _data(value: object, method: str, what: str) -> bytes:
    """A JSON-RPC DATA value (0x-prefixed, whole bytes), validated."""
    if not isinstance(value, str) or not _DATA.fullmatch(value):
        raise ChainRpcError(method, "malformed_response", f"{what} is not hex data")
    return bytes.fromhex(value[2:])
