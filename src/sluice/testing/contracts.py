"""The test-only contracts of ``contracts/test/`` on a running node: deploy, mint, block; and the
``BatchPayout`` contract (``contracts/BatchPayout.sol``): deploy, pay, decode its errors.

``RevertingReceiver`` and ``InvalidReceiver`` refuse the native coin (REVERT, and the INVALID
opcode 0xfe, which uses all the gas); ``FalseToken`` is an ERC-20 whose ``transfer`` and
``transferFrom`` return false and move nothing; ``BlockingToken`` is an ERC-20 whose owner can
block accounts, whose transfers from or to a blocked account revert (as USDC's and USDT's do);
``NoReturnToken`` is a working ERC-20 whose ``transfer``, ``transferFrom`` and ``approve`` return
nothing (as Ethereum's USDT's); ``ReentrantReceiver`` calls back, from its ``receive()``, the
batch contract that pays it.

The test contracts' artifacts are committed beside their sources (``node contracts/build.mjs``
rebuilds them; ``tests/integration/test_contract_artifact.py`` checks them) and are not part of
the package: this module reads them from the source checkout, like the pinned Anvil it runs
beside. ``BatchPayout``'s is the packaged copy (``sluice/chains/BatchPayout.json``).

Everything goes through plain JSON-RPC (``eth_*`` methods only, no ``anvil_*``/``hardhat_*``)
and transactions signed here with eth_account, so it works on any development node (Anvil,
Hardhat) given a funded key. Calls block: async code runs them with ``asyncio.to_thread``.

This module must not import pytest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from types import TracebackType
from typing import Any, Final, Self

import httpx
from eth_abi.abi import decode, encode  # comes with web3 and eth-account (runtime.lock pins it)
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from sluice.devnet.anvil import repo_root
from sluice.devnet.artifacts import ContractArtifact, read_artifact
from sluice.domain.addresses import Address

__all__ = [
    "BATCH_ERRORS",
    "BATCH_PAYOUT",
    "BLOCKING_TOKEN",
    "FALSE_TOKEN",
    "INVALID_RECEIVER",
    "NO_RETURN_TOKEN",
    "REENTRANT_RECEIVER",
    "REVERTING_RECEIVER",
    "TRANSFER_TOPIC",
    "BatchError",
    "ChainSender",
    "DeployedTestContracts",
    "Log",
    "RpcError",
    "TxReceipt",
    "approve",
    "decode_batch_error",
    "deploy_batch_payout",
    "deploy_blocking_token",
    "deploy_false_token",
    "deploy_invalid_receiver",
    "deploy_no_return_token",
    "deploy_reentrant_receiver",
    "deploy_reverting_receiver",
    "deploy_test_contracts",
    "is_blocked",
    "load_batch_payout",
    "load_test_contract",
    "mint",
    "pay_native",
    "pay_native_calldata",
    "pay_token",
    "pay_token_calldata",
    "set_blocked",
    "token_balance",
    "transfer",
    "transfer_returns",
]

REVERTING_RECEIVER: Final = "RevertingReceiver"
INVALID_RECEIVER: Final = "InvalidReceiver"
FALSE_TOKEN: Final = "FalseToken"  # noqa: S105 - a contract name, not a password
BLOCKING_TOKEN: Final = "BlockingToken"  # noqa: S105 - a contract name, not a password
NO_RETURN_TOKEN: Final = "NoReturnToken"  # noqa: S105 - a contract name, not a password
REENTRANT_RECEIVER: Final = "ReentrantReceiver"
BATCH_PAYOUT: Final = "BatchPayout"

#: topic0 of ERC-20 ``Transfer(address,address,uint256)``.
TRANSFER_TOPIC: Final = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


#: BatchPayout's custom errors: each signature, and the types of its arguments.
BATCH_ERRORS: Final[dict[str, tuple[str, ...]]] = {
    "NotOwner()": (),
    "LengthMismatch()": (),
    "ValueMismatch(uint256,uint256)": ("uint256", "uint256"),
    "PaymentFailed(uint256)": ("uint256",),
    "NotAToken(address)": ("address",),
}

_BATCH_ARTIFACT_FILE: Final = "BatchPayout.json"

_TOKEN_CONSTRUCTOR: Final = ("string", "string", "uint8", "uint256")
_PRIORITY_FEE_WEI: Final = 10**9
_POLL_INTERVAL_S: Final = 0.05


def load_test_contract(name: str) -> ContractArtifact:
    """The committed artifact of one test contract (``contracts/test/<name>.json``).

    Raises:
        FileNotFoundError: Not in a source checkout, or no such contract.
    """
    root = repo_root()
    if root is None:
        raise FileNotFoundError(
            "the test contracts' artifacts live in the source checkout (contracts/test/),"
            " which this installation is not part of"
        )
    path = root / "contracts" / "test" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: build it with `node contracts/build.mjs`")
    return read_artifact(path)


class RpcError(RuntimeError):
    """The node answered a JSON-RPC request with an error (``data``: revert data, if any)."""

    def __init__(self, method: str, code: object, message: str, data: object = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message
        self.data = data

    @property
    def revert_data(self) -> bytes | None:
        """The revert data the node returned with the error, if it returned any."""
        if isinstance(self.data, str) and self.data.startswith("0x"):
            return bytes.fromhex(self.data[2:])
        return None


@dataclass(frozen=True, slots=True)
class Log:
    """One log of a receipt."""

    address: Address
    topics: tuple[str, ...]
    data: str


@dataclass(frozen=True, slots=True)
class TxReceipt:
    """A mined transaction's receipt, and the gas limit it was sent with."""

    transaction_hash: str
    status: int
    block_number: int
    gas_used: int
    gas_limit: int
    contract_address: Address | None
    logs: tuple[Log, ...]

    @property
    def succeeded(self) -> bool:
        """Whether it ran to the end (receipt status 1)."""
        return self.status == 1


class ChainSender:
    """Signs transactions with one key and sends them over plain JSON-RPC.

    Nonces are read from the node (``pending``) for each transaction, so several senders (or
    other tests) may share a chain as long as each uses its own key.
    """

    def __init__(self, rpc_url: str, private_key: str, *, timeout_s: float = 30.0) -> None:
        self._account = Account.from_key(private_key)
        self._http = httpx.Client(base_url=rpc_url, timeout=10.0)
        self._timeout_s = timeout_s
        self._chain_id: int | None = None
        self._next_id = 0

    @property
    def address(self) -> Address:
        """The sending account."""
        return Address(to_checksum_address(self._account.address))

    def close(self) -> None:
        """Close the HTTP connection."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def rpc(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC request; its ``result``.

        Raises:
            RpcError: The node answered with an error.
        """
        self._next_id += 1
        response = self._http.post(
            "", json={"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        )
        response.raise_for_status()
        body = response.json()
        error = body.get("error")
        if error is not None:
            raise RpcError(method, error.get("code"), str(error.get("message")), error.get("data"))
        return body.get("result")

    def chain_id(self) -> int:
        """The node's chain id (asked once)."""
        if self._chain_id is None:
            self._chain_id = int(self.rpc("eth_chainId", []), 16)
        return self._chain_id

    def native_balance(self, address: str) -> int:
        """The native-coin balance of ``address``, in wei."""
        return int(self.rpc("eth_getBalance", [to_checksum_address(address), "latest"]), 16)

    def call(self, to: str, data: bytes) -> bytes:
        """``eth_call`` from this account at ``latest``: what the call would return.

        Raises:
            RpcError: The call reverts (``revert_data`` holds the reason, if any).
        """
        request = {"from": self.address, "to": to_checksum_address(to), "data": "0x" + data.hex()}
        result = self.rpc("eth_call", [request, "latest"])
        return bytes.fromhex(str(result).removeprefix("0x"))

    def send(
        self, to: str | None, *, data: bytes = b"", value: int = 0, gas: int | None = None
    ) -> TxReceipt:
        """Sign and send one transaction and wait for its receipt, whatever its status.

        ``to`` None creates a contract. Without ``gas`` the node estimates it, which fails for
        a transaction that would revert: to see one fail on chain, give ``gas``.

        Raises:
            RpcError: The node refused the transaction (or its estimate), and did not mine it.
            TimeoutError: No receipt within the timeout.
        """
        request: dict[str, Any] = {"from": self.address, "value": hex(value)}
        if to is not None:
            request["to"] = to_checksum_address(to)
        if data:
            request["data"] = "0x" + data.hex()
        if gas is None:
            gas = int(self.rpc("eth_estimateGas", [request]), 16)
        tx: dict[str, Any] = {
            "chainId": self.chain_id(),
            "nonce": int(self.rpc("eth_getTransactionCount", [self.address, "pending"]), 16),
            "gas": gas,
            "value": value,
            "data": data,
            **self._fees(),
        }
        if to is not None:
            tx["to"] = to_checksum_address(to)
        signed = self._account.sign_transaction(tx)
        transaction_hash = "0x" + bytes(signed.hash).hex()
        try:
            self.rpc("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
        except RpcError:
            # Hardhat's node (throwOnTransactionFailures, its default) answers an error for a
            # transaction that reverts, after mining it: the receipt is what tells.
            receipt = self._receipt(transaction_hash, gas)
            if receipt is None:
                raise
            return receipt
        return self._wait_for_receipt(transaction_hash, gas)

    def deploy(self, artifact: ContractArtifact, constructor_args: bytes = b"") -> Address:
        """Create ``artifact``'s contract (``constructor_args``: ABI-encoded); its address.

        Raises:
            RpcError: The node refused the creation.
            RuntimeError: The creation reverted.
        """
        code = bytes.fromhex(artifact.bytecode.removeprefix("0x")) + constructor_args
        receipt = self.send(None, data=code)
        if not receipt.succeeded or receipt.contract_address is None:
            raise RuntimeError(f"deploying {artifact.name} reverted ({receipt.transaction_hash})")
        return receipt.contract_address

    def _fees(self) -> dict[str, int]:
        block = self.rpc("eth_getBlockByNumber", ["latest", False])
        base_fee = block.get("baseFeePerGas")
        if base_fee is None:  # a node configured before London: legacy pricing
            return {"gasPrice": int(self.rpc("eth_gasPrice", []), 16)}
        return {
            "maxFeePerGas": 2 * int(base_fee, 16) + _PRIORITY_FEE_WEI,
            "maxPriorityFeePerGas": _PRIORITY_FEE_WEI,
        }

    def _wait_for_receipt(self, transaction_hash: str, gas_limit: int) -> TxReceipt:
        deadline = time.monotonic() + self._timeout_s
        while True:
            receipt = self._receipt(transaction_hash, gas_limit)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise TimeoutError(f"no receipt for {transaction_hash} in {self._timeout_s} s")
            time.sleep(_POLL_INTERVAL_S)

    def _receipt(self, transaction_hash: str, gas_limit: int) -> TxReceipt | None:
        raw = self.rpc("eth_getTransactionReceipt", [transaction_hash])
        if raw is None:
            return None
        created = raw.get("contractAddress")
        return TxReceipt(
            transaction_hash=transaction_hash,
            status=int(raw["status"], 16),
            block_number=int(raw["blockNumber"], 16),
            gas_used=int(raw["gasUsed"], 16),
            gas_limit=gas_limit,
            contract_address=None if created is None else Address(to_checksum_address(created)),
            logs=tuple(
                Log(
                    address=Address(to_checksum_address(log["address"])),
                    topics=tuple(log["topics"]),
                    data=log["data"],
                )
                for log in raw.get("logs", [])
            ),
        )


def _calldata(signature: str, types: tuple[str, ...] = (), args: tuple[Any, ...] = ()) -> bytes:
    return keccak(text=signature)[:4] + encode(list(types), list(args))


def load_batch_payout() -> ContractArtifact:
    """The packaged ``BatchPayout`` artifact (``sluice/chains/BatchPayout.json``)."""
    resource = resources.files("sluice.chains").joinpath(_BATCH_ARTIFACT_FILE)
    with resources.as_file(resource) as path:
        return read_artifact(path)


# --- deployment ----------------------------------------------------------------------------


def deploy_reverting_receiver(sender: ChainSender) -> Address:
    """A contract that refuses the native coin with REVERT (``Error(string)``)."""
    return sender.deploy(load_test_contract(REVERTING_RECEIVER))


def deploy_invalid_receiver(sender: ChainSender) -> Address:
    """A contract that refuses the native coin with INVALID (0xfe): all the gas is used."""
    return sender.deploy(load_test_contract(INVALID_RECEIVER))


def deploy_false_token(
    sender: ChainSender,
    *,
    name: str = "False Token",
    symbol: str = "FALSE",
    decimals: int = 18,
    initial_supply: int = 0,
) -> Address:
    """An ERC-20 whose ``transfer`` and ``transferFrom`` return false and move nothing; the
    sender owns it."""
    args = encode(list(_TOKEN_CONSTRUCTOR), [name, symbol, decimals, initial_supply])
    return sender.deploy(load_test_contract(FALSE_TOKEN), args)


def deploy_blocking_token(
    sender: ChainSender,
    *,
    name: str = "Blocking Token",
    symbol: str = "BLOCK",
    decimals: int = 18,
    initial_supply: int = 0,
) -> Address:
    """An ERC-20 with a block list its owner (the sender) sets: see `set_blocked`."""
    args = encode(list(_TOKEN_CONSTRUCTOR), [name, symbol, decimals, initial_supply])
    return sender.deploy(load_test_contract(BLOCKING_TOKEN), args)


def deploy_no_return_token(
    sender: ChainSender,
    *,
    name: str = "No Return Token",
    symbol: str = "NORET",
    decimals: int = 18,
    initial_supply: int = 0,
) -> Address:
    """A working ERC-20 whose ``transfer``, ``transferFrom`` and ``approve`` return no data.

    USDT's ABI on Ethereum. The sender owns it and may `mint`.
    """
    args = encode(list(_TOKEN_CONSTRUCTOR), [name, symbol, decimals, initial_supply])
    return sender.deploy(load_test_contract(NO_RETURN_TOKEN), args)


def deploy_reentrant_receiver(
    sender: ChainSender, batch: str, token: str, *, bubble: bool = True
) -> Address:
    """A contract whose ``receive()`` calls ``batch`` back (``payNative`` then ``payToken`` of
    ``token``, each paying itself). It records each failure (``failed()``,
    ``lastRevertData()``); with ``bubble`` it then reverts with the first one's revert data, so
    the payment to it fails; otherwise it accepts the payment.
    """
    args = encode(["address", "address", "bool"], [batch, token, bubble])
    return sender.deploy(load_test_contract(REENTRANT_RECEIVER), args)


def deploy_batch_payout(sender: ChainSender) -> Address:
    """A ``BatchPayout`` contract (the packaged artifact), owned by the sender."""
    return sender.deploy(load_batch_payout())


@dataclass(frozen=True, slots=True)
class DeployedTestContracts:
    """Where `deploy_test_contracts` put each test contract."""

    reverting_receiver: Address
    invalid_receiver: Address
    false_token: Address
    blocking_token: Address


def deploy_test_contracts(
    rpc_url: str, private_key: str, *, timeout_s: float = 30.0
) -> DeployedTestContracts:
    """Deploy one of each test contract with ``private_key`` (which must hold some native coin).

    The tokens start with no supply, owned by ``private_key``'s account: fund with `mint`.
    """
    with ChainSender(rpc_url, private_key, timeout_s=timeout_s) as sender:
        return DeployedTestContracts(
            reverting_receiver=deploy_reverting_receiver(sender),
            invalid_receiver=deploy_invalid_receiver(sender),
            false_token=deploy_false_token(sender),
            blocking_token=deploy_blocking_token(sender),
        )


# --- tokens --------------------------------------------------------------------------------


def _checked(receipt: TxReceipt, what: str) -> TxReceipt:
    if not receipt.succeeded:
        raise RuntimeError(f"{what} reverted ({receipt.transaction_hash})")
    return receipt


def mint(sender: ChainSender, token: str, to: str, amount: int) -> TxReceipt:
    """Mint ``amount`` base units of ``token`` (a test token, owned by the sender) to ``to``.

    Raises:
        RpcError: The node refused it (the sender is not the owner; ``to`` is blocked).
    """
    data = _calldata("mint(address,uint256)", ("address", "uint256"), (to, amount))
    return _checked(sender.send(token, data=data), f"mint on {token}")


def set_blocked(sender: ChainSender, token: str, account: str, blocked: bool = True) -> TxReceipt:
    """Put ``account`` on a `BlockingToken`'s block list (or, ``blocked`` False, take it off).

    Raises:
        RpcError: The node refused it (the sender is not the token's owner).
    """
    data = _calldata("setBlocked(address,bool)", ("address", "bool"), (account, blocked))
    return _checked(sender.send(token, data=data), f"setBlocked on {token}")


def is_blocked(sender: ChainSender, token: str, account: str) -> bool:
    """Whether ``account`` is on a `BlockingToken`'s block list."""
    result = sender.call(token, _calldata("isBlocked(address)", ("address",), (account,)))
    (blocked,) = decode(["bool"], result)
    return bool(blocked)


def approve(sender: ChainSender, token: str, spender: str, amount: int) -> TxReceipt:
    """Send ERC-20 ``approve(spender, amount)`` from the sender (any return data, or none).

    Raises:
        RpcError: The node refused it.
    """
    data = _calldata("approve(address,uint256)", ("address", "uint256"), (spender, amount))
    return _checked(sender.send(token, data=data), f"approve on {token}")


def token_balance(sender: ChainSender, token: str, holder: str) -> int:
    """ERC-20 ``balanceOf(holder)``, in base units."""
    result = sender.call(token, _calldata("balanceOf(address)", ("address",), (holder,)))
    (balance,) = decode(["uint256"], result)
    return int(balance)


def transfer_returns(sender: ChainSender, token: str, to: str, amount: int) -> bool:
    """What ERC-20 ``transfer(to, amount)`` from the sender would return (an ``eth_call``).

    Raises:
        RpcError: It would revert.
    """
    data = _calldata("transfer(address,uint256)", ("address", "uint256"), (to, amount))
    (returned,) = decode(["bool"], sender.call(token, data))
    return bool(returned)


def transfer(
    sender: ChainSender, token: str, to: str, amount: int, *, gas: int | None = None
) -> TxReceipt:
    """Send ERC-20 ``transfer(to, amount)`` from the sender; its receipt, whatever its status.

    Without ``gas`` the node estimates it, and refuses (`RpcError`) a transfer that reverts.
    """
    data = _calldata("transfer(address,uint256)", ("address", "uint256"), (to, amount))
    return sender.send(token, data=data, gas=gas)


# --- BatchPayout ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchError:
    """A BatchPayout custom error decoded from revert data: its signature and arguments."""

    signature: str
    args: tuple[Any, ...]

    @property
    def name(self) -> str:
        """The error's name (``"PaymentFailed"``)."""
        return self.signature.split("(", 1)[0]


def decode_batch_error(revert_data: bytes | None) -> BatchError | None:
    """The BatchPayout error that ``revert_data`` holds; None if it is none of them."""
    if revert_data is None or len(revert_data) < 4:
        return None
    for signature, types in BATCH_ERRORS.items():
        if revert_data[:4] == keccak(text=signature)[:4]:
            if len(revert_data) != 4 + 32 * len(types):
                return None
            return BatchError(signature, tuple(decode(list(types), revert_data[4:])))
    return None


def pay_native_calldata(to: Sequence[str], amounts: Sequence[int]) -> bytes:
    """The call data of ``payNative(to, amounts)``."""
    return _calldata(
        "payNative(address[],uint256[])", ("address[]", "uint256[]"), (list(to), list(amounts))
    )


def pay_token_calldata(token: str, to: Sequence[str], amounts: Sequence[int]) -> bytes:
    """The call data of ``payToken(token, to, amounts)``."""
    return _calldata(
        "payToken(address,address[],uint256[])",
        ("address", "address[]", "uint256[]"),
        (token, list(to), list(amounts)),
    )


def pay_native(
    sender: ChainSender,
    batch: str,
    to: Sequence[str],
    amounts: Sequence[int],
    *,
    value: int | None = None,
    gas: int | None = None,
) -> TxReceipt:
    """Send ``payNative(to, amounts)`` with ``value`` (default: the sum of the amounts); its
    receipt, whatever its status.

    Without ``gas`` the node estimates it, and refuses (`RpcError`) a batch that reverts.
    """
    total = sum(amounts) if value is None else value
    return sender.send(batch, data=pay_native_calldata(to, amounts), value=total, gas=gas)


def pay_token(
    sender: ChainSender,
    batch: str,
    token: str,
    to: Sequence[str],
    amounts: Sequence[int],
    *,
    gas: int | None = None,
) -> TxReceipt:
    """Send ``payToken(token, to, amounts)``; its receipt, whatever its status (the sender must
    have approved ``batch`` for the total: `approve`).

    Without ``gas`` the node estimates it, and refuses (`RpcError`) a batch that reverts.
    """
    return sender.send(batch, data=pay_token_calldata(token, to, amounts), gas=gas)
